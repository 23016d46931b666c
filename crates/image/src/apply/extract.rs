//! The reading side of an apply: decompress, hash and parse the tar, and describe each
//! entry as an [`Op`] for the writing side ([`super::write`]), which runs on its own thread
//! so decompression and filesystem work overlap. The channel between them is bounded, so
//! memory stays at a few MiB whatever the layer size.

use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};

use rustix::fs::FileType;
use tar::EntryType;

use super::guard::TarGuard;
use super::meta::{EntryMeta, numeric};
use super::root::{CleanPath, Root};
use super::stream::{BlobReadFailure, DecodeFailure, Decoder, HashingReader};
use super::whiteout::{WhiteoutKind, classify};
use super::write::{Op, Writer};
use super::{ApplyError, ApplyOptions, ApplyOutcome};

/// File content chunk size.
const CHUNK: usize = 256 * 1024;
/// A batch of ops is handed to the writer once it holds this much file content...
const BATCH_BYTES: usize = 1 << 20;
/// ...or this many ops (small files, directories, links).
const BATCH_OPS: usize = 256;
/// Batches in flight between the threads (at most ~5 MiB buffered with the one being built).
const QUEUE: usize = 4;

/// The reading side's end of the channel: ops are collected into batches so the writer
/// thread is woken once per batch, not once per op (a layer of small files is tens of
/// thousands of ops; each hand-off is a futex wake and, on a busy machine, a wait for a CPU).
struct Batcher<'a> {
    tx: &'a SyncSender<Vec<Op>>,
    ops: Vec<Op>,
    bytes: usize,
}

impl<'a> Batcher<'a> {
    fn new(tx: &'a SyncSender<Vec<Op>>) -> Self {
        Batcher {
            tx,
            ops: Vec::with_capacity(BATCH_OPS),
            bytes: 0,
        }
    }

    fn push(&mut self, op: Op) -> Result<(), Stop> {
        if let Op::Data(d) = &op {
            self.bytes += d.len();
        }
        self.ops.push(op);
        if self.bytes >= BATCH_BYTES || self.ops.len() >= BATCH_OPS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Stop> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.ops, Vec::with_capacity(BATCH_OPS));
        self.bytes = 0;
        self.tx.send(batch).map_err(|_| Stop::WriterGone)
    }
}

/// Why the reading side stopped early.
enum Stop {
    /// The writer hung up: it failed, and its error is the one to report.
    WriterGone,
    Err(ApplyError),
}

impl From<ApplyError> for Stop {
    fn from(e: ApplyError) -> Self {
        Stop::Err(e)
    }
}

pub(crate) fn apply<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyOutcome, ApplyError> {
    let writer = Writer::new(Root::open(dest)?, opts.preserve_owner);
    let (tx, rx) = sync_channel::<Vec<Op>>(QUEUE);
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("layer-write".into())
            .spawn_scoped(s, move || writer.run(rx))
            .map_err(|e| ApplyError::io("start writer thread", dest.display().to_string(), e))?;
        let mut batcher = Batcher::new(&tx);
        let read = read_side(reader, &mut batcher);
        if read.is_ok() {
            // A failed send means the writer already stopped; join reports why.
            let _ = batcher.push(Op::Finish).and_then(|()| batcher.flush());
        }
        drop(batcher);
        drop(tx);
        let written = handle.join().map_err(|_| {
            ApplyError::io(
                "writer thread",
                dest.display().to_string(),
                io::Error::other("panicked"),
            )
        })?;
        match read {
            Ok((diff_id, compressed_digest)) => Ok(ApplyOutcome {
                diff_id,
                compressed_digest,
                size: written?,
            }),
            Err(Stop::Err(e)) => Err(e),
            Err(Stop::WriterGone) => match written {
                Err(e) => Err(e),
                Ok(_) => Err(ApplyError::io(
                    "writer thread",
                    dest.display().to_string(),
                    io::Error::other("stopped without an error"),
                )),
            },
        }
    })
}

/// Decompress, hash and parse; send one op per entry. Returns (diff id, compressed digest).
fn read_side<R: Read>(reader: R, tx: &mut Batcher<'_>) -> Result<(String, String), Stop> {
    let decoder = Decoder::new(reader).map_err(|e| stream_error(e, None))?;
    let mut archive = tar::Archive::new(TarGuard::new(HashingReader::new(decoder)));
    {
        let entries = archive.entries().map_err(|e| stream_error(e, None))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| stream_error(e, None))?;
            describe(&mut entry, tx)?;
        }
    }
    // Read what follows the end-of-archive marker (the second zero block, record padding) so
    // the diff id covers the whole uncompressed stream, then whatever follows the compressed
    // stream so the compressed digest covers the whole blob.
    let (diff_id, _, decoder) = archive
        .into_inner()
        .into_inner()
        .drain_and_finish()
        .map_err(|e| stream_error(e, None))?;
    let plain = decoder.is_plain();
    let (blob_digest, _, _) = decoder
        .into_blob()
        .drain_and_finish()
        .map_err(|e| stream_error(e, None))?;
    // A plain blob was read to its end by the tar side (drained above), so its digest is
    // exactly the diff id; the blob reader did not hash it a second time.
    let compressed_digest = if plain { diff_id.clone() } else { blob_digest };
    Ok((diff_id, compressed_digest))
}

fn send(tx: &mut Batcher<'_>, op: Op) -> Result<(), Stop> {
    tx.push(op)
}

/// Turn one tar entry into ops (file content streamed in chunks).
fn describe<R: Read>(entry: &mut tar::Entry<'_, R>, tx: &mut Batcher<'_>) -> Result<(), Stop> {
    let raw = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let path = CleanPath::new(&raw);
    let mut kind = entry.header().entry_type();
    // Legacy archives mark directories with type NUL and a trailing slash (Go's archive/tar,
    // and so Docker, reads those as directories too).
    if entry.header().as_bytes()[156] == 0 && raw.ends_with(b"/") {
        kind = EntryType::Directory;
    }

    if let Some(name) = path.name() {
        match classify(name) {
            WhiteoutKind::None => {}
            WhiteoutKind::Meta => {
                tracing::debug!(path = %shown, "layer apply: skipping whiteout metadata");
                return Ok(());
            }
            WhiteoutKind::Opaque => {
                return send(
                    tx,
                    Op::Opaque {
                        dir: path.parent(),
                        shown,
                    },
                );
            }
            WhiteoutKind::Remove(target) => {
                let target = target.to_owned();
                let meta = EntryMeta::from_entry(entry, &shown)?;
                return send(
                    tx,
                    Op::Whiteout {
                        dir: path.parent(),
                        target,
                        shown,
                        meta,
                    },
                );
            }
        }
    }

    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let meta = EntryMeta::from_entry(entry, &shown)?;
            let expected = entry.size();
            send(
                tx,
                Op::File {
                    path,
                    shown: shown.clone(),
                    meta,
                    sparse: kind == EntryType::GNUSparse,
                },
            )?;
            let mut total = 0u64;
            loop {
                let want = usize::try_from(expected.saturating_sub(total))
                    .unwrap_or(CHUNK)
                    .clamp(1, CHUNK);
                let mut buf = vec![0u8; want];
                let n = fill(entry, &mut buf).map_err(|e| stream_error(e, Some(&shown)))?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                total += n as u64;
                send(tx, Op::Data(buf))?;
            }
            if total != expected {
                return Err(Stop::Err(ApplyError::Tar {
                    entry: Some(shown),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("entry truncated: {total} of {expected} bytes"),
                    ),
                }));
            }
            send(tx, Op::FileEnd)
        }
        EntryType::Directory => {
            let meta = EntryMeta::from_entry(entry, &shown)?;
            send(tx, Op::Dir { path, shown, meta })
        }
        EntryType::Symlink => {
            let meta = EntryMeta::from_entry(entry, &shown)?;
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .ok_or_else(|| ApplyError::unsafe_path(&shown, "symlink without a target"))?;
            send(
                tx,
                Op::Symlink {
                    path,
                    shown,
                    meta,
                    target,
                },
            )
        }
        EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .map(|t| CleanPath::new(&t))
                .ok_or_else(|| ApplyError::unsafe_path(&shown, "hardlink without a target"))?;
            send(
                tx,
                Op::Hardlink {
                    path,
                    shown,
                    target,
                },
            )
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let meta = EntryMeta::from_entry(entry, &shown)?;
            let (ftype, dev) = match kind {
                EntryType::Fifo => (FileType::Fifo, 0),
                EntryType::Char => (FileType::CharacterDevice, device(entry.header(), &shown)?),
                _ => (FileType::BlockDevice, device(entry.header(), &shown)?),
            };
            send(
                tx,
                Op::Special {
                    path,
                    shown,
                    meta,
                    ftype,
                    dev,
                },
            )
        }
        EntryType::XGlobalHeader => {
            tracing::debug!(path = %shown, "layer apply: ignoring PAX global header");
            Ok(())
        }
        other => {
            tracing::warn!(path = %shown, kind = ?other, "layer apply: skipping unsupported entry type");
            Ok(())
        }
    }
}

/// The device number of a char/block entry (blank fields read as 0).
fn device(h: &tar::Header, shown: &str) -> Result<u64, ApplyError> {
    let tar_err = |source| ApplyError::Tar {
        entry: Some(shown.to_string()),
        source,
    };
    let fields = h
        .as_ustar()
        .map(|u| (u.dev_major, u.dev_minor))
        .or_else(|| h.as_gnu().map(|g| (g.dev_major, g.dev_minor)));
    let Some((raw_major, raw_minor)) = fields else {
        return Ok(0);
    };
    let major = numeric(&raw_major, || {
        h.device_major().map(|v| u64::from(v.unwrap_or(0)))
    })
    .map_err(tar_err)?;
    let minor = numeric(&raw_minor, || {
        h.device_minor().map(|v| u64::from(v.unwrap_or(0)))
    })
    .map_err(tar_err)?;
    match (u32::try_from(major), u32::try_from(minor)) {
        (Ok(a), Ok(b)) => Ok(rustix::fs::makedev(a, b)),
        _ => Err(tar_err(io::Error::other("device number out of range"))),
    }
}

/// Split a decoder failure out of an `io::Error` (Ok) or give the error back (Err).
fn downcast_decode(e: io::Error) -> Result<DecodeFailure, io::Error> {
    if e.get_ref().is_some_and(|inner| inner.is::<DecodeFailure>()) {
        let inner = e.into_inner().ok_or_else(|| io::Error::other("vanished"))?;
        return inner
            .downcast::<DecodeFailure>()
            .map(|b| *b)
            .map_err(io::Error::other);
    }
    Err(e)
}

/// A read error from the stream: the caller's reader failed, the compressed stream is
/// corrupt, or the tar is malformed.
fn stream_error(e: io::Error, entry: Option<&str>) -> ApplyError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<BlobReadFailure>())
    {
        return match e.into_inner().map(|b| b.downcast::<BlobReadFailure>()) {
            Some(Ok(b)) => ApplyError::ReadBlob(b.0),
            Some(Err(other)) => ApplyError::ReadBlob(io::Error::other(other)),
            None => ApplyError::ReadBlob(io::Error::other("read failed")),
        };
    }
    match downcast_decode(e) {
        Ok(d) => ApplyError::Decompress {
            format: d.format,
            source: d.source,
        },
        Err(source) => ApplyError::Tar {
            entry: entry.map(str::to_string),
            source,
        },
    }
}

/// Read until `buf` is full or the entry ends (full buffers keep hole detection aligned).
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
