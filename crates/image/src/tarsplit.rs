//! tar-split: remember a layer tar's exact bytes except file contents, so the original tar
//! (and therefore its diff id) can be rebuilt from the extracted diff dir. `docker save` and
//! `docker push` need this: re-exporting a tree never reproduces another tool's tar headers.
//!
//! The format is Docker's (`layerdb/sha256/<chain>/tar-split.json.gz`, vbatts/tar-split):
//! gzip of JSON lines, `{"type":2,"payload":<base64 raw bytes>,"position":n}` for header
//! bytes and padding, `{"type":1,"name":<path>,"size":n,"payload":<base64 crc64-ISO>,
//! "position":n}` per entry whose content lives in the diff dir.
//!
//! [`Recorder`] wraps the uncompressed tar stream on its way to the extractor and parses
//! blocks as they pass; [`reassemble`] writes the tar back.

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

/// File name inside a layerdb entry.
pub const FILE_NAME: &str = "tar-split.json.gz";

/// Errors rebuilding a tar from its tar-split.
#[derive(Debug, thiserror::Error)]
pub enum TarSplitError {
    /// The tar-split file is unreadable or malformed.
    #[error("tar-split: reading {0}")]
    Read(String, #[source] io::Error),
    /// A file's content in the diff dir no longer matches what the tar held.
    #[error("tar-split: content of {name:?} changed since the layer was extracted")]
    Mismatch {
        /// Path in the layer.
        name: String,
    },
    /// Writing the tar failed.
    #[error("tar-split: writing the tar stream")]
    Write(#[source] io::Error),
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name_raw: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    size: u64,
    payload: Option<String>,
    position: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

// ---------------------------------------------------------------- crc64 (ISO) and base64

/// Slicing-by-8 tables for CRC-64/ISO (reflected, poly 0xD800000000000000): table 0 is the
/// classic byte table, table k advances a byte k positions further.
fn crc64_tables() -> &'static [[u64; 256]; 8] {
    static TABLES: std::sync::OnceLock<[[u64; 256]; 8]> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        const POLY: u64 = 0xD800_0000_0000_0000;
        let mut t = [[0u64; 256]; 8];
        for (i, slot) in t[0].iter_mut().enumerate() {
            let mut crc = i as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        for k in 1..8 {
            for i in 0..256 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            }
        }
        t
    })
}

fn crc64_update(crc: u64, data: &[u8]) -> u64 {
    let t = crc64_tables();
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(ch);
        c ^= u64::from_le_bytes(word);
        c = t[7][(c & 0xff) as usize]
            ^ t[6][((c >> 8) & 0xff) as usize]
            ^ t[5][((c >> 16) & 0xff) as usize]
            ^ t[4][((c >> 24) & 0xff) as usize]
            ^ t[3][((c >> 32) & 0xff) as usize]
            ^ t[2][((c >> 40) & 0xff) as usize]
            ^ t[1][((c >> 48) & 0xff) as usize]
            ^ t[0][(c >> 56) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][usize::from((c as u8) ^ b)] ^ (c >> 8);
    }
    !c
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- recording

enum State {
    /// Collecting a 512-byte header block.
    Header,
    /// Inside a metadata payload (PAX, GNU long name) that is kept raw: `left` bytes.
    Meta { left: u64, kind: u8 },
    /// Inside file content (not kept): `left` bytes, then `pad` bytes of padding (kept).
    Content { left: u64, pad: u64 },
}

/// A `Read` adapter that records the tar-split of the tar stream flowing through it.
pub struct Recorder<R> {
    inner: R,
    state: State,
    block: Vec<u8>,
    meta: Vec<u8>,
    raw: Vec<u8>,
    out: flate2::write::GzEncoder<Vec<u8>>,
    position: u64,
    pending_name: Option<Vec<u8>>,
    crc: u64,
    file_entry: Option<(Vec<u8>, u64)>,
    error: Option<io::Error>,
}

impl<R: Read> Recorder<R> {
    /// Record what passes through `inner` (an uncompressed tar stream).
    pub fn new(inner: R) -> Self {
        Recorder {
            inner,
            state: State::Header,
            block: Vec::with_capacity(512),
            meta: Vec::new(),
            raw: Vec::new(),
            out: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
            position: 0,
            pending_name: None,
            crc: 0,
            file_entry: None,
            error: None,
        }
    }

    /// The finished `tar-split.json.gz` bytes. Bytes the extractor did not read are drained
    /// from the inner reader first so the record covers the whole stream.
    pub fn finish(mut self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.inner.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.observe(&buf[..n]);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((name, size)) = self.file_entry.take() {
            self.emit_file(name, size);
        }
        self.flush_raw();
        self.out.finish()
    }

    fn emit(&mut self, e: &Entry) {
        if self.error.is_some() {
            return;
        }
        let res = serde_json::to_writer(&mut self.out, e)
            .map_err(io::Error::other)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(err) = res {
            self.error = Some(err);
        }
        self.position += 1;
    }

    fn flush_raw(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let payload = b64_encode(&std::mem::take(&mut self.raw));
        let e = Entry {
            kind: 2,
            name: None,
            name_raw: None,
            size: 0,
            payload: Some(payload),
            position: self.position,
        };
        self.emit(&e);
    }

    fn emit_file(&mut self, name: Vec<u8>, size: u64) {
        let (name, name_raw) = match String::from_utf8(name) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(b64_encode(e.as_bytes()))),
        };
        let payload = (size > 0).then(|| b64_encode(&self.crc.to_be_bytes()));
        let e = Entry {
            kind: 1,
            name,
            name_raw,
            size,
            payload,
            position: self.position,
        };
        self.emit(&e);
    }

    fn observe(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Header => {
                    let take = (512 - self.block.len()).min(data.len());
                    self.block.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.block.len() == 512 {
                        let block = std::mem::take(&mut self.block);
                        self.header(&block);
                    }
                }
                State::Meta { left, kind } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    let kind = *kind;
                    self.raw.extend_from_slice(&data[..take]);
                    self.meta.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    *left -= take as u64;
                    if *left == 0 {
                        let meta = std::mem::take(&mut self.meta);
                        self.state = State::Header;
                        self.meta_done(kind, &meta);
                    }
                }
                State::Content { left, pad } => {
                    if *left > 0 {
                        let take = (*left).min(data.len() as u64) as usize;
                        self.crc = crc64_update(self.crc, &data[..take]);
                        data = &data[take..];
                        *left -= take as u64;
                    } else {
                        let take = (*pad).min(data.len() as u64) as usize;
                        self.raw.extend_from_slice(&data[..take]);
                        data = &data[take..];
                        *pad -= take as u64;
                    }
                    if let State::Content { left: 0, pad: 0 } = self.state {
                        self.state = State::Header;
                    }
                }
            }
        }
    }

    fn header(&mut self, block: &[u8]) {
        // Entry boundary: the previous entry's file record goes before this header's bytes.
        if let Some((name, size)) = self.file_entry.take() {
            self.emit_file(name, size);
        }
        self.raw.extend_from_slice(block);
        if block.iter().all(|b| *b == 0) {
            return;
        }
        let size = parse_size(&block[124..136]);
        let kind = block[156];
        let padded = size.div_ceil(512) * 512;
        match kind {
            b'x' | b'g' | b'L' | b'K' => {
                if padded > 0 {
                    self.state = State::Meta { left: padded, kind };
                }
            }
            _ => {
                let name = self
                    .pending_name
                    .take()
                    .unwrap_or_else(|| header_name(block));
                let has_content = matches!(kind, b'0' | 0 | b'7' | b'S') && size > 0;
                // Make the header + metadata bytes one segment, then the file record.
                self.flush_raw();
                self.crc = 0;
                if has_content {
                    self.file_entry = Some((name, size));
                    self.state = State::Content {
                        left: size,
                        pad: padded - size,
                    };
                } else {
                    self.file_entry = Some((name, 0));
                    if padded > 0 {
                        // Content of a non-file entry: keep it raw.
                        self.state = State::Meta {
                            left: padded,
                            kind: 0,
                        };
                    }
                }
            }
        }
    }

    fn meta_done(&mut self, kind: u8, meta: &[u8]) {
        match kind {
            b'L' => {
                let end = meta.iter().position(|b| *b == 0).unwrap_or(meta.len());
                self.pending_name = Some(meta[..end].to_vec());
            }
            b'x' => {
                if let Some(p) = pax_path(meta) {
                    self.pending_name = Some(p);
                }
            }
            _ => {}
        }
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n]);
        Ok(n)
    }
}

fn parse_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        // base-256
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = (v << 8) | u64::from(*b);
        }
        return v;
    }
    let s: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    u64::from_str_radix(s.trim(), 8).unwrap_or(0)
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

fn header_name(block: &[u8]) -> Vec<u8> {
    let name = cstr(&block[0..100]);
    let is_ustar = &block[257..263] == b"ustar\0";
    let prefix = cstr(&block[345..500]);
    if is_ustar && !prefix.is_empty() {
        let mut p = prefix.to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    } else {
        name.to_vec()
    }
}

fn pax_path(data: &[u8]) -> Option<Vec<u8>> {
    let mut rest = data;
    let mut found = None;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len == 0 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(v) = rec.strip_prefix(b"path=") {
            found = Some(v.to_vec());
        }
        rest = &rest[len..];
    }
    found
}

// ---------------------------------------------------------------- reassembly

/// Rebuild the original tar from `tar_split` (the gz file's bytes) and the diff dir.
pub fn reassemble<W: Write>(
    tar_split: &[u8],
    diff: &Path,
    out: &mut W,
) -> Result<(), TarSplitError> {
    let root = File::open(diff).map_err(|e| TarSplitError::Read(diff.display().to_string(), e))?;
    let gz = io::BufReader::new(flate2::read::GzDecoder::new(tar_split));
    let mut buf = vec![0u8; 256 * 1024];
    for line in gz.lines() {
        let line = line.map_err(|e| TarSplitError::Read(FILE_NAME.into(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_str(&line)
            .map_err(|e| TarSplitError::Read(FILE_NAME.into(), io::Error::other(e)))?;
        match e.kind {
            2 => {
                let raw = e.payload.as_deref().and_then(b64_decode).ok_or_else(|| {
                    TarSplitError::Read(FILE_NAME.into(), io::Error::other("bad payload"))
                })?;
                out.write_all(&raw).map_err(TarSplitError::Write)?;
            }
            1 if e.size > 0 => {
                let name_bytes = match (&e.name, &e.name_raw) {
                    (Some(n), _) => n.as_bytes().to_vec(),
                    (None, Some(r)) => b64_decode(r).unwrap_or_default(),
                    _ => Vec::new(),
                };
                let name = String::from_utf8_lossy(&name_bytes).into_owned();
                let rel = std::ffi::OsStr::new(std::str::from_utf8(&name_bytes).unwrap_or(&name));
                let mismatch = || TarSplitError::Mismatch { name: name.clone() };
                let fd = rustix::fs::openat2(
                    root.as_fd(),
                    rel,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                )
                .map_err(|_| mismatch())?;
                let mut f = File::from(fd);
                let mut left = e.size;
                let mut crc = 0u64;
                while left > 0 {
                    let want = (left as usize).min(buf.len());
                    let n = f.read(&mut buf[..want]).map_err(|_| mismatch())?;
                    if n == 0 {
                        return Err(mismatch());
                    }
                    crc = crc64_update(crc, &buf[..n]);
                    out.write_all(&buf[..n]).map_err(TarSplitError::Write)?;
                    left -= n as u64;
                }
                if let Some(p) = e.payload.as_deref().and_then(b64_decode)
                    && p.len() == 8
                    && p != crc.to_be_bytes()
                {
                    return Err(mismatch());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_crc_match_known_values() {
        assert_eq!(b64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(b64_encode(b"hel"), "aGVs");
        assert_eq!(b64_decode("aGVsbG8=").unwrap(), b"hello");
        // Go: crc64.Checksum([]byte("hello"), crc64.MakeTable(crc64.ISO))
        assert_eq!(crc64_update(0, b"123456789"), 0xb909_56c7_75a4_1001);
        // Slicing and byte-wise agree across chunk boundaries and incremental updates.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = crc64_update(0, &data);
        let mut inc = 0;
        for part in data.chunks(13) {
            inc = crc64_update(inc, part);
        }
        assert_eq!(whole, inc);
    }

    #[test]
    fn records_and_reassembles_a_tar() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/file", "d".repeat(120));
        for (name, data) in [
            ("a.txt", &b"hello"[..]),
            (long.as_str(), &b"x"[..]),
            ("e", &b""[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut rec = Recorder::new(&tar[..]);
        let mut sink = Vec::new();
        // Read only part: finish() must drain the rest.
        let mut part = vec![0u8; 700];
        rec.read_exact(&mut part).unwrap();
        sink.extend_from_slice(&part);
        let ts = rec.finish().unwrap();
        let mut out = Vec::new();
        reassemble(&ts, dir.path(), &mut out).unwrap();
        assert!(out == tar, "reassembled tar differs");
        std::fs::write(dir.path().join("a.txt"), b"HELLO").unwrap();
        assert!(matches!(
            reassemble(&ts, dir.path(), &mut Vec::new()),
            Err(TarSplitError::Mismatch { .. })
        ));
    }
}
