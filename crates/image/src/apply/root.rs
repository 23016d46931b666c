//! The layer root: a dirfd plus the kernel-checked resolution of entry paths inside it.
//!
//! Entry names are cleaned lexically into components (no `.`/`..`/empty parts), then their
//! parent directory is opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative
//! to the root fd: symlinks met on the way resolve as if the root were `/`, so nothing an
//! earlier entry created can point a later one outside. The final component is a single name
//! used with `*at` syscalls on the parent fd and is never followed.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::ApplyError;

/// How every in-root lookup resolves: `..` and absolute symlinks stay at the root, and
/// `/proc/self/...` style magic links are refused outright.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// An entry path split into clean components. Empty means the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CleanPath {
    parts: Vec<OsString>,
}

impl CleanPath {
    /// Clean `raw` the way Docker cleans `/`+name: empty and `.` parts are dropped, `..` pops
    /// (never above the root), so absolute and `../` names land inside the root.
    pub(crate) fn new(raw: &[u8]) -> CleanPath {
        let mut parts: Vec<OsString> = Vec::new();
        for part in raw.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                p => parts.push(OsStr::from_bytes(p).to_owned()),
            }
        }
        CleanPath { parts }
    }

    pub(crate) fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last component (None for the root).
    pub(crate) fn name(&self) -> Option<&OsStr> {
        self.parts.last().map(OsString::as_os_str)
    }

    pub(crate) fn parent(&self) -> CleanPath {
        let mut parts = self.parts.clone();
        parts.pop();
        CleanPath { parts }
    }

    /// Relative path (`.` for the root) for syscalls relative to the root fd.
    pub(crate) fn rel(&self) -> PathBuf {
        if self.parts.is_empty() {
            return PathBuf::from(".");
        }
        self.parts.iter().collect()
    }

    /// `/a/b` form for messages.
    pub(crate) fn display(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            s.push('/');
            s.push_str(&p.to_string_lossy());
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }
}

/// An open layer root.
pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    pub(crate) fn open(dest: &Path) -> Result<Root, ApplyError> {
        let fd = rustix::fs::open(
            dest,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ApplyError::os("open layer root", dest.display().to_string(), e))?;
        Ok(Root { fd })
    }

    /// Open the directory `path` (following symlinks inside the root) as an `O_PATH` fd.
    pub(crate) fn open_dir(&self, path: &CleanPath) -> Result<OwnedFd, Errno> {
        rustix::fs::openat2(
            &self.fd,
            path.rel(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }

    /// Open `path` with `flags` (plus `O_CLOEXEC`); the final component is not followed when
    /// `flags` holds `O_NOFOLLOW`.
    pub(crate) fn open_at(&self, path: &CleanPath, flags: OFlags) -> Result<OwnedFd, Errno> {
        rustix::fs::openat2(
            &self.fd,
            path.rel(),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
    }

    /// Open the directory `dir`, creating missing components (mode 0755, like Docker's
    /// `MkdirAll` for parents a tar leaves out). `entry` names the tar entry for errors.
    pub(crate) fn ensure_dir(&self, dir: &CleanPath, entry: &str) -> Result<OwnedFd, ApplyError> {
        match self.open_dir(dir) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(dir_error(entry, e)),
        }
        // Slow path: walk prefix by prefix from the root, creating what is missing. Each
        // prefix is resolved by the kernel from the root again, so a symlink among them is
        // still confined.
        let mut cur = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
            .map_err(|e| ApplyError::os("dup layer root fd", entry, e))?;
        let mut prefix = CleanPath { parts: Vec::new() };
        for part in &dir.parts {
            prefix.parts.push(part.clone());
            cur = match self.open_dir(&prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&cur, part.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(dir_error(entry, e)),
                    }
                    // EEXIST with ENOENT above means a dangling symlink: refuse below.
                    self.open_dir(&prefix).map_err(|e| dir_error(entry, e))?
                }
                Err(e) => return Err(dir_error(entry, e)),
            };
        }
        Ok(cur)
    }
}

fn dir_error(entry: &str, e: Errno) -> ApplyError {
    match e {
        Errno::XDEV | Errno::LOOP => {
            ApplyError::unsafe_path(entry, "parent resolves through a magic link or loop")
        }
        e => ApplyError::os("open parent directory", entry, e),
    }
}

/// `lstat` of `name` in `dir`, `None` when it does not exist.
pub(crate) fn lstat_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
) -> Result<Option<rustix::fs::Stat>, Errno> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove `name` in `dir` and, for a directory, everything under it. Never follows symlinks:
/// subdirectories are opened with `O_NOFOLLOW` relative to their parent's fd.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    {
        let mut it = rustix::fs::Dir::read_from(&sub)?;
        while let Some(ent) = it.read() {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_owned());
            }
        }
    }
    for n in names {
        remove_all_at(sub.as_fd(), &n)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// `/proc/self/fd/<dir>/<name>`: a path naming `name` in an already-resolved directory, for
/// the few calls that have no fd or `*at` form (`lsetxattr` on symlinks and device nodes).
/// The only magic link in it is our own trusted dirfd; `name` is a single component and is
/// not followed by the `l*` calls it is used with.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        CleanPath::new(s.as_bytes()).display()
    }

    #[test]
    fn cleaning_clamps_at_root() {
        assert_eq!(clean("../x"), "/x");
        assert_eq!(clean("a/../../x"), "/x");
        assert_eq!(clean("./../x"), "/x");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("/etc/passwd"), "/etc/passwd");
        assert_eq!(clean("a//b/./c/"), "/a/b/c");
        assert_eq!(clean("./"), "/");
        assert_eq!(clean(".."), "/");
        assert!(CleanPath::new(b"").is_root());
    }
}
