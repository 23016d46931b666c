#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! Helpers shared by the apply test files: building tar streams in memory.
#![allow(dead_code)]

use std::io::Write;

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// A GNU header for `kind` with sane defaults.
pub fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

/// Write `name` into the raw name field (no cleaning by the tar crate, so `../x` and `/x`
/// survive), using a GNU long-name entry when it does not fit.
pub fn raw_name(b: &mut tar::Builder<Vec<u8>>, h: &mut tar::Header, name: &[u8]) {
    if name.len() < 100 {
        let f = &mut h.as_old_mut().name;
        f.fill(0);
        f[..name.len()].copy_from_slice(name);
    } else {
        let mut l = header(tar::EntryType::GNULongName, name.len() as u64 + 1, 0o644);
        let f = &mut l.as_old_mut().name;
        f[..13].copy_from_slice(b"././@LongLink");
        l.set_cksum();
        let mut data = name.to_vec();
        data.push(0);
        b.append(&l, &data[..]).unwrap();
        let f = &mut h.as_old_mut().name;
        f.fill(0);
        f[..99].copy_from_slice(&name[..99]);
    }
}

/// Raw link name (same rules as [`raw_name`]).
pub fn raw_link(b: &mut tar::Builder<Vec<u8>>, h: &mut tar::Header, link: &[u8]) {
    if link.len() < 100 {
        let f = &mut h.as_old_mut().linkname;
        f.fill(0);
        f[..link.len()].copy_from_slice(link);
    } else {
        let mut l = header(tar::EntryType::GNULongLink, link.len() as u64 + 1, 0o644);
        let f = &mut l.as_old_mut().name;
        f[..13].copy_from_slice(b"././@LongLink");
        l.set_cksum();
        let mut data = link.to_vec();
        data.push(0);
        b.append(&l, &data[..]).unwrap();
    }
}

/// A tiny tar writer for hostile and hand-made layers.
pub struct TarBuilder {
    pub b: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, data.len() as u64, mode);
        raw_name(&mut self.b, &mut h, name.as_bytes());
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, 0, mode);
        raw_name(&mut self.b, &mut h, name.as_bytes());
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn link(&mut self, kind: tar::EntryType, name: &str, target: &str) -> &mut Self {
        let mut h = header(kind, 0, 0o777);
        raw_name(&mut self.b, &mut h, name.as_bytes());
        raw_link(&mut self.b, &mut h, target.as_bytes());
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Symlink, name, target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Link, name, target)
    }

    pub fn device(
        &mut self,
        kind: tar::EntryType,
        name: &str,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = header(kind, 0, 0o660);
        raw_name(&mut self.b, &mut h, name.as_bytes());
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Everything the tests compare about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub content: Option<String>,
    pub link: Option<std::path::PathBuf>,
    pub rdev: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// First path (in sorted order) sharing this inode, for files with several links.
    pub hardlink_of: Option<String>,
    /// Fewer bytes allocated than half the size.
    pub sparse: bool,
}

/// Snapshot of a tree (not following symlinks), keyed by relative path; the root is
/// left out. Xattrs in `trusted.overlay.` are included: tests look at them too.
pub fn snapshot(root: &std::path::Path) -> std::collections::BTreeMap<String, NodeInfo> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = std::collections::BTreeMap::new();
    let mut inodes: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    let mut all = Vec::new();
    while let Some(dir) = stack.pop() {
        for ent in std::fs::read_dir(&dir).unwrap() {
            let p = ent.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            all.push(p);
        }
    }
    all.sort();
    for p in all {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let m = std::fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let content = ft.is_file().then(|| content_fingerprint(&p));
        let hardlink_of = if ft.is_file() && m.nlink() > 1 {
            Some(inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone())
        } else {
            None
        };
        out.insert(
            rel,
            NodeInfo {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: m.mtime(),
                size: if ft.is_file() { m.len() } else { 0 },
                content,
                link: ft.is_symlink().then(|| std::fs::read_link(&p).unwrap()),
                rdev: m.rdev(),
                xattrs: xattrs_of(&p),
                hardlink_of,
                sparse: ft.is_file() && m.blocks() * 512 < m.len() / 2,
            },
        );
    }
    out
}

/// Sorted xattrs of `p` (not following symlinks).
pub fn xattrs_of(p: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(p, &mut names[..]) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(raw).into_owned();
        let mut v = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]) {
            v.truncate(len);
            out.push((name, v));
        }
    }
    out.sort();
    out
}

/// sha256 over (offset, bytes) of every non-zero 64 KiB chunk plus the length: equal for
/// equal contents, and cheap for big sparse files even in debug builds (zero chunks are
/// found with a memcmp, not hashed).
pub fn content_fingerprint(p: &std::path::Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    static ZERO: [u8; 65536] = [0; 65536];
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut off = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            let k = f.read(&mut buf[n..]).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == 0 {
            break;
        }
        if buf[..n] != ZERO[..n] {
            h.update(off.to_le_bytes());
            h.update(&buf[..n]);
        }
        off += n as u64;
    }
    h.update(off.to_le_bytes());
    hex::encode(h.finalize())
}
