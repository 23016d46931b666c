//! Helpers shared by the store suites: a store on a temp root, a child-process runner for
//! tests that mount (own mount namespace, so the harness never sees the mounts), and a
//! metadata snapshot of a tree for comparisons.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use berth_image::{Store, StoreOptions};
use sha2::{Digest, Sha256};

/// Env var telling a re-executed test binary which test body to run in the child.
pub const CHILD_ENV: &str = "BERTH_IMAGE_TEST_CHILD";

/// Open a store on `root` (no syncfs: the tests do not simulate power loss).
pub fn open_store(root: &Path) -> Store {
    let (s, warnings) = Store::open(
        root,
        StoreOptions {
            sync_layers: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        warnings.is_empty(),
        "fresh store has warnings: {warnings:?}"
    );
    s
}

/// Whether we are root (mount tests need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Run `body` in a child process (this test binary re-executed for just this test) that
/// first enters a private mount namespace. In the child, `body` runs; in the parent, the
/// child's exit status is asserted. `name` must be the test's own function name.
pub fn in_mount_ns(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        // SAFETY: CLONE_NEWNS only gives this thread a private copy of the mount table; the
        // test body runs on this thread and the process exits after it.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.unwrap();
        rustix::mount::mount_change(
            "/",
            rustix::mount::MountPropagationFlags::PRIVATE
                | rustix::mount::MountPropagationFlags::REC,
        )
        .unwrap();
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

/// One path's metadata in a [`snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: Option<String>,
    pub link: Option<String>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// First path (in sorted order) sharing this inode, for hardlinks.
    pub hardlink_of: Option<String>,
}

fn xattrs_of(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names) else {
        return out;
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if !name.starts_with("user.") {
            continue;
        }
        let mut val = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(p, name.as_str(), &mut val) {
            out.insert(name, val[..len].to_vec());
        }
    }
    out
}

/// Metadata of every path below `root` (root itself excluded), keyed by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, Node>,
    inodes: &mut BTreeMap<(u64, u64), String>,
) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        let hardlink_of = if ft.is_file() && m.nlink() > 1 {
            let key = (m.dev(), m.ino());
            match inodes.get(&key) {
                Some(first) => Some(first.clone()),
                None => {
                    inodes.insert(key, rel.clone());
                    None
                }
            }
        } else {
            None
        };
        out.insert(
            rel.clone(),
            Node {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: if ft.is_dir() { 0 } else { m.mtime() },
                content: ft
                    .is_file()
                    .then(|| hex::encode(Sha256::digest(fs::read(&p).unwrap()))),
                link: ft
                    .is_symlink()
                    .then(|| fs::read_link(&p).unwrap().to_string_lossy().into_owned()),
                xattrs: xattrs_of(&p),
                hardlink_of,
            },
        );
        if ft.is_dir() {
            walk(root, &p, out, inodes);
        }
    }
}

/// Names of the driver dirs under `<root>/overlay2` (excluding `l`).
pub fn cache_dirs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join("overlay2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "l")
        .collect();
    v.sort();
    v
}

/// A tar builder for hand-made layers: every entry with a fixed mtime.
pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
}

pub const MTIME: u64 = 1_700_000_000;

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.b.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    pub fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn file_owned(mut self, path: &str, uid: u64, gid: u64, data: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o640, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn file_xattr(mut self, path: &str, key: &str, value: &[u8], data: &[u8]) -> Self {
        let pax = [(format!("SCHILY.xattr.{key}"), value.to_vec())];
        self.b
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .unwrap();
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    pub fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}
