//! `docker diff` of an overlay upper dir against its lower layers.
//!
//! Walks the upper dir fd-based, in name order: a whiteout (char 0:0) is a deletion (its
//! subtree is not walked), an opaque dir a modification whose children are all additions
//! (the lowers are hidden under it), anything else a modification when the path exists in
//! the lowers and an addition otherwise. Existence in the lowers follows overlayfs: the
//! topmost lower holding the path decides, a whiteout there means absent, and an opaque
//! ancestor in a lower hides the layers below it.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::ApplyError;
use super::whiteout::{is_opaque, is_whiteout};

/// Kind of a change, numbered like the Docker API's `Kind` (0 modified, 1 added, 2 deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// `C`: the path exists below and was changed (or is an opaque dir).
    Modified = 0,
    /// `A`: the path is new.
    Added = 1,
    /// `D`: the path was deleted (whiteout).
    Deleted = 2,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Absolute path inside the container (`/etc/hosts`).
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

pub(crate) fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, ApplyError> {
    let root = open_dir_path(upper)?;
    let lower_fds = lowers
        .iter()
        .map(|l| open_dir_path(l))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    let mut w = Walker {
        lowers: &lower_fds,
        out: &mut out,
    };
    w.walk(root.as_fd(), &mut Vec::new(), false)?;
    Ok(out)
}

fn open_dir_path(p: &Path) -> Result<OwnedFd, ApplyError> {
    rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::os("open layer dir", p.display().to_string(), e))
}

struct Walker<'a> {
    lowers: &'a [OwnedFd],
    out: &'a mut Vec<Change>,
}

impl Walker<'_> {
    /// `parts` is the path of `dir` below the upper root; `hidden` is true under an opaque
    /// dir (nothing below exists in the lowers).
    fn walk(
        &mut self,
        dir: BorrowedFd<'_>,
        parts: &mut Vec<OsString>,
        hidden: bool,
    ) -> Result<(), ApplyError> {
        let shown = display(parts);
        let mut names: Vec<OsString> = Vec::new();
        {
            let mut it = rustix::fs::Dir::read_from(dir)
                .map_err(|e| ApplyError::os("read directory", &shown, e))?;
            while let Some(ent) = it.read() {
                let ent = ent.map_err(|e| ApplyError::os("read directory", &shown, e))?;
                let n = ent.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(OsStr::from_bytes(n).to_owned());
                }
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            parts.push(name.clone());
            let path = display(parts);
            let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| ApplyError::os("lstat", &path, e))?;
            if is_whiteout(&st) {
                self.out.push(Change {
                    path,
                    kind: ChangeKind::Deleted,
                });
                parts.pop();
                continue;
            }
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            let sub = if is_dir {
                Some(
                    rustix::fs::openat(
                        dir,
                        &name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| ApplyError::os("open directory", &path, e))?,
                )
            } else {
                None
            };
            let opaque = sub.as_ref().is_some_and(|fd| is_opaque(fd.as_fd()));
            let in_lower = !hidden && self.exists_below(parts);
            let kind = if opaque || in_lower {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            self.out.push(Change { path, kind });
            if let Some(fd) = sub {
                self.walk(fd.as_fd(), parts, hidden || opaque || !in_lower)?;
            }
            parts.pop();
        }
        Ok(())
    }

    /// Whether `parts` is visible in the merged view of the lowers (topmost first). Each
    /// layer is looked up by name without following symlinks, like overlayfs does.
    fn exists_below(&self, parts: &[OsString]) -> bool {
        let Some((name, parent)) = parts.split_last() else {
            return true;
        };
        'layers: for lower in self.lowers {
            let mut opaque_seen = false;
            let mut prefix = PathBuf::from(".");
            for p in parent {
                prefix.push(p);
                match rustix::fs::openat(
                    lower,
                    &prefix,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => opaque_seen |= is_opaque(fd.as_fd()),
                    // Missing here: look further down unless an opaque ancestor hides it.
                    Err(Errno::NOENT) if !opaque_seen => continue 'layers,
                    // A whiteout, file or symlink at an ancestor hides every layer below.
                    Err(_) => return false,
                }
            }
            match rustix::fs::statat(lower, prefix.join(name), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => return !is_whiteout(&st),
                Err(Errno::NOENT) if !opaque_seen => {}
                Err(_) => return false,
            }
        }
        false
    }
}

fn display(parts: &[OsString]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(&p.to_string_lossy());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}
