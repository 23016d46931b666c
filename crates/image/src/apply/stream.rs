//! The reading side of an apply: hash the bytes as read, detect the compression by magic
//! bytes, decompress, hash the decompressed stream. Errors from a decoder are tagged so the
//! apply can report "corrupt gzip" rather than a generic tar error.

use std::io::{self, BufReader, Read};

use sha2::{Digest, Sha256};

/// Buffer for the compressed side; large reads keep syscalls and decoder calls few.
const READ_BUF: usize = 256 * 1024;

/// A reader that hashes (sha256) and counts everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    /// Wrap read errors in [`BlobReadFailure`] (the caller's reader: network, disk).
    tag_errors: bool,
    /// Hash what passes (off for a plain blob, whose digest is the diff id computed anyway).
    hashing: bool,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            tag_errors: false,
            hashing: true,
        }
    }

    /// A hashing reader over the caller's blob reader, whose errors are tagged so they are
    /// reported as "reading the blob" and not as a corrupt stream.
    pub(crate) fn blob(inner: R) -> Self {
        HashingReader {
            tag_errors: true,
            ..HashingReader::new(inner)
        }
    }

    /// Read everything left (so the digest covers the whole stream) and return
    /// (`sha256:<hex>`, bytes read, inner reader).
    pub(crate) fn drain_and_finish(mut self) -> io::Result<(String, u64, R)> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        Ok((digest, self.count, self.inner))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if self.tag_errors && e.kind() != io::ErrorKind::Interrupted => {
                return Err(io::Error::new(e.kind(), BlobReadFailure(e)));
            }
            Err(e) => return Err(e),
        };
        if self.hashing {
            self.hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// Marker wrapped into `io::Error`s from the caller's blob reader, so they pass through the
/// decoders and the tar reader and are reported as such.
#[derive(Debug, thiserror::Error)]
#[error("reading the blob: {0}")]
pub(crate) struct BlobReadFailure(#[source] pub(crate) io::Error);

/// Marker wrapped into `io::Error`s that come from a decompressor, so callers can tell a
/// corrupt compressed stream from a malformed tar.
#[derive(Debug, thiserror::Error)]
#[error("{format} stream: {source}")]
pub(crate) struct DecodeFailure {
    pub(crate) format: &'static str,
    #[source]
    pub(crate) source: io::Error,
}

/// The compression of a blob, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

type Compressed<R> = BufReader<io::Chain<io::Cursor<Vec<u8>>, HashingReader<R>>>;

/// A decompressing reader over the hashed blob; keeps the concrete decoder so the blob reader
/// can be recovered (and drained) at the end.
pub(crate) enum Decoder<R: Read> {
    Plain(Compressed<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Compressed<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Compressed<R>>>),
}

impl<R: Read> Decoder<R> {
    /// Wrap `reader` (hashing it) and pick the decoder from its magic bytes.
    pub(crate) fn new(reader: R) -> io::Result<Self> {
        let mut hashed = HashingReader::blob(reader);
        // Read the magic through the hasher (a reader may hand out one byte at a time), then
        // put it back in front of the rest of the stream.
        let head = read_head(&mut hashed, 4)?;
        let compression = Compression::detect(&head);
        // A plain blob is the tar itself: its digest is the diff id, which the tar side
        // hashes anyway, so hashing it here too would only double the sha256 work.
        hashed.hashing = compression != Compression::None;
        let buffered = BufReader::with_capacity(READ_BUF, io::Cursor::new(head).chain(hashed));
        Ok(match compression {
            Compression::None => Decoder::Plain(buffered),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
            }
            Compression::Zstd => Decoder::Zstd(Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered).map_err(|source| {
                    io::Error::other(DecodeFailure {
                        format: "zstd",
                        source,
                    })
                })?,
            )),
        })
    }

    /// Whether the blob is a plain tar (its digest is then the diff id; the blob reader
    /// does not hash).
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Decoder::Plain(_))
    }

    /// Give back the hashed blob reader, for draining trailing bytes.
    pub(crate) fn into_blob(self) -> HashingReader<R> {
        match self {
            Decoder::Plain(b) => b.into_inner().into_inner().1,
            Decoder::Gzip(d) => d.into_inner().into_inner().into_inner().1,
            Decoder::Zstd(d) => d.finish().into_inner().into_inner().1,
        }
    }
}

/// Read up to `n` bytes (fewer only at end of stream).
fn read_head<R: Read>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.by_ref().take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (format, res) = match self {
            Decoder::Plain(b) => return b.read(buf),
            Decoder::Gzip(d) => ("gzip", d.read(buf)),
            Decoder::Zstd(d) => ("zstd", d.read(buf)),
        };
        res.map_err(|source| {
            if source.get_ref().is_some_and(|e| e.is::<BlobReadFailure>()) {
                source
            } else {
                io::Error::other(DecodeFailure { format, source })
            }
        })
    }
}
