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
