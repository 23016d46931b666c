//! A cap on tar extension headers, in front of the tar reader.
//!
//! The `tar` crate reads PAX (`x`, `g`) and GNU long-name (`L`, `K`) data whole into memory,
//! as large as the header says and the stream supplies — and a compressed stream supplies a
//! gigabyte from a megabyte. This reader follows the tar framing as the bytes go by (header,
//! GNU sparse extension blocks, data padded to 512 bytes, PAX `size` overrides) and fails
//! the stream when an extension entry is larger than [`MAX_EXTENSION`] (Go's archive/tar,
//! and so Docker, has the same 1 MiB limit). It is best-effort by design: if its view of
//! the framing ever stops making sense (bad checksum, unparsable number) it stands aside
//! and leaves the verdict to the tar reader, which then fails on the same bytes; it never
//! rejects a stream for any other reason.

use std::io::{self, Read};

/// Largest PAX or GNU long-name data accepted.
pub(crate) const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: usize = 512;

#[derive(Debug, thiserror::Error)]
#[error("tar extension entry of type {kind:?} is {size} bytes (limit {MAX_EXTENSION})")]
pub(crate) struct ExtensionTooLarge {
    kind: char,
    size: u64,
}

enum State {
    /// Collecting a header block.
    Header,
    /// Collecting a GNU sparse extension block.
    SparseExt,
    /// Passing `left` bytes of entry data (padding included).
    Data { left: u64 },
    /// End of archive reached, or the framing no longer parses: pass everything through.
    Off,
}

pub(crate) struct TarGuard<R> {
    inner: R,
    state: State,
    block: [u8; BLOCK],
    filled: usize,
    /// Data size and padded size of the current entry, for after the sparse blocks.
    pending_data: u64,
    /// PAX data being collected (for its `size` record), with the bytes still expected.
    pax: Option<(Vec<u8>, u64)>,
    /// `size` from the last PAX header, for the next ordinary entry.
    pax_size: Option<u64>,
}

impl<R: Read> TarGuard<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarGuard {
            inner,
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            pending_data: 0,
            pax: None,
            pax_size: None,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// Advance the framing over `buf` (bytes just read).
    fn scan(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.state {
                State::Off => return Ok(()),
                State::Data { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    if let Some((data, want)) = self.pax.as_mut() {
                        let take = usize::try_from(*want).unwrap_or(usize::MAX).min(n);
                        data.extend_from_slice(&buf[..take]);
                        *want -= take as u64;
                    }
                    buf = &buf[n..];
                    let left = left - n as u64;
                    self.state = State::Data { left };
                    if left == 0 {
                        self.end_of_data();
                    }
                }
                State::Header | State::SparseExt => {
                    let n = (BLOCK - self.filled).min(buf.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
                    self.filled += n;
                    buf = &buf[n..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        if matches!(self.state, State::Header) {
                            self.header()?;
                        } else {
                            self.sparse_ext();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn header(&mut self) -> io::Result<()> {
        let b = &self.block;
        if b.iter().all(|x| *x == 0) || !checksum_ok(b) {
            // End of archive, or something the tar reader will reject itself.
            self.state = State::Off;
            return Ok(());
        }
        let Some(mut size) = number(&b[124..136]) else {
            self.state = State::Off;
            return Ok(());
        };
        let kind = b[156];
        let modern = &b[257..263] == b"ustar\0" || &b[257..263] == b"ustar ";
        let extension = modern && matches!(kind, b'x' | b'g' | b'L' | b'K');
        if extension {
            if size > MAX_EXTENSION {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    ExtensionTooLarge {
                        kind: char::from(kind),
                        size,
                    },
                ));
            }
            if kind == b'x' {
                self.pax = Some((Vec::new(), size));
            }
        } else if let Some(s) = self.pax_size.take() {
            size = s;
        }
        self.pending_data = padded(size);
        // GNU sparse: extension blocks follow the header when `isextended` is set.
        if kind == b'S' && b[482] != 0 {
            self.state = State::SparseExt;
        } else {
            self.start_data();
        }
        Ok(())
    }

    fn sparse_ext(&mut self) {
        if self.block[504] == 0 {
            self.start_data();
        }
    }

    fn start_data(&mut self) {
        if self.pending_data == 0 {
            self.end_of_data();
        } else {
            self.state = State::Data {
                left: self.pending_data,
            };
        }
    }

    fn end_of_data(&mut self) {
        self.state = State::Header;
        if let Some((data, _)) = self.pax.take() {
            self.pax_size = pax_size(&data);
        }
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n])?;
        Ok(n)
    }
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64)
}

/// The tar checksum: all bytes summed with the checksum field counted as spaces.
fn checksum_ok(b: &[u8; BLOCK]) -> bool {
    let sum: u64 = b[..148]
        .iter()
        .chain(&b[156..])
        .map(|x| u64::from(*x))
        .sum::<u64>()
        + 8 * 32;
    number(&b[148..156]) == Some(sum)
}

/// A numeric header field: octal text (spaces/NULs around) or GNU base-256.
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let (high, low) = field.split_at(field.len().saturating_sub(8));
        if high.iter().skip(1).any(|b| *b != 0) || high.first().is_some_and(|b| b & 0x7f != 0) {
            return None;
        }
        let mut v = 0u64;
        for b in low {
            v = (v << 8) | u64::from(*b);
        }
        return Some(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != 0 && *b != b' ')
        .collect();
    if text.is_empty() {
        return Some(0);
    }
    let s = std::str::from_utf8(&text).ok()?;
    u64::from_str_radix(s, 8).ok()
}

/// The `size` record of PAX data (`<len> size=<n>\n`), if any and valid.
fn pax_size(data: &[u8]) -> Option<u64> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > rest.len() {
            return None;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(v) = record.strip_prefix(b"size=") {
            return std::str::from_utf8(v).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_tar() {
        assert_eq!(number(b"00000000644\0"), Some(0o644));
        assert_eq!(number(b"  644 \0\0\0\0\0\0"), Some(0o644));
        assert_eq!(number(b"\0\0\0\0\0\0\0\0"), Some(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 5;
        assert_eq!(number(&big), Some(5));
        assert_eq!(number(b"zz"), None);
    }

    #[test]
    fn pax_size_record() {
        assert_eq!(pax_size(b"11 size=42\n"), Some(42));
        assert_eq!(pax_size(b"12 path=abc\n11 size=42\n"), Some(42));
        assert_eq!(pax_size(b"12 path=abc\n"), None);
        assert_eq!(pax_size(b"99 size=1\n"), None);
    }
}
