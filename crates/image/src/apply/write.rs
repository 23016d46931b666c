//! The writing side of an apply: filesystem operations inside the layer root, executed in
//! tar order by one thread while the reading side decompresses, hashes and parses. All path
//! safety lives here (see [`super::root`]); the reading side only describes entries.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::Receiver;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, XattrFlags};
use rustix::io::Errno;

use super::ApplyError;
use super::meta::EntryMeta;
use super::root::{CleanPath, Root, lstat_at, remove_all_at};
use super::whiteout::OPAQUE_XATTR;

/// Granularity of hole detection in sparse entries (the usual filesystem block size).
const HOLE_BLOCK: usize = 4096;
static ZEROS: [u8; HOLE_BLOCK] = [0; HOLE_BLOCK];

/// One step of an apply, in tar order. `shown` is the entry name as found in the tar, for
/// errors.
#[derive(Debug)]
pub(crate) enum Op {
    /// Start a regular file; its content follows as `Data`, then `FileEnd`.
    File {
        path: CleanPath,
        shown: String,
        meta: EntryMeta,
        /// GNU sparse entry: all-zero blocks become holes.
        sparse: bool,
    },
    Data(Vec<u8>),
    FileEnd,
    Dir {
        path: CleanPath,
        shown: String,
        meta: EntryMeta,
    },
    Symlink {
        path: CleanPath,
        shown: String,
        meta: EntryMeta,
        target: Vec<u8>,
    },
    Hardlink {
        path: CleanPath,
        shown: String,
        target: CleanPath,
    },
    /// Char/block device (`dev` from makedev) or fifo.
    Special {
        path: CleanPath,
        shown: String,
        meta: EntryMeta,
        ftype: FileType,
        dev: u64,
    },
    /// `.wh.<target>` in `dir`.
    Whiteout {
        dir: CleanPath,
        target: OsString,
        shown: String,
        meta: EntryMeta,
    },
    /// `.wh..wh..opq` in `dir`.
    Opaque {
        dir: CleanPath,
        shown: String,
    },
    /// The tar ended cleanly: set directory times and report.
    Finish,
}

/// A file being written.
struct Open {
    file: File,
    shown: String,
    meta: EntryMeta,
    sparse: bool,
    off: u64,
}

pub(crate) struct Writer {
    root: Root,
    preserve_owner: bool,
    /// Device nodes are only attempted when running as root.
    can_mknod: bool,
    size: u64,
    /// Directories whose times are set once everything is written.
    dirs: Vec<(CleanPath, EntryMeta)>,
    open: Option<Open>,
}

impl Writer {
    pub(crate) fn new(root: Root, preserve_owner: bool) -> Writer {
        Writer {
            root,
            preserve_owner,
            can_mknod: rustix::process::geteuid().is_root(),
            size: 0,
            dirs: Vec::new(),
            open: None,
        }
    }

    /// Execute ops until `Finish` (returns the content size written) or until the reading
    /// side hangs up without finishing (it failed; its error is the one reported, so the
    /// value returned then does not matter). The first failing op ends the run, which
    /// drops `ops` so the reading side stops at its next send.
    ///
    /// Ops arrive in batches (see `extract`): one channel hand-off per batch rather than per
    /// op keeps thread wake-ups few, which matters when the CPUs are busy.
    pub(crate) fn run(mut self, batches: Receiver<Vec<Op>>) -> Result<u64, ApplyError> {
        for batch in batches {
            for op in batch {
                if let Op::Finish = op {
                    self.finish_dirs()?;
                    return Ok(self.size);
                }
                self.op(op)?;
            }
        }
        Ok(self.size)
    }

    /// Run ops on the calling thread (tests and tiny layers need no thread).
    pub(crate) fn op(&mut self, op: Op) -> Result<(), ApplyError> {
        match op {
            Op::File {
                path,
                shown,
                meta,
                sparse,
            } => self.file(&path, shown, meta, sparse),
            Op::Data(buf) => self.data(&buf),
            Op::FileEnd => self.file_end(),
            Op::Dir { path, shown, meta } => self.dir(&path, &shown, meta),
            Op::Symlink {
                path,
                shown,
                meta,
                target,
            } => self.symlink(&path, &shown, &meta, &target),
            Op::Hardlink {
                path,
                shown,
                target,
            } => self.hardlink(&path, &shown, &target),
            Op::Special {
                path,
                shown,
                meta,
                ftype,
                dev,
            } => self.special(&path, &shown, &meta, ftype, dev),
            Op::Whiteout {
                dir,
                target,
                shown,
                meta,
            } => self.whiteout(&dir, &target, &meta, &shown),
            Op::Opaque { dir, shown } => self.opaque(&dir, &shown),
            Op::Finish => self.finish_dirs(),
        }
    }

    /// Resolve the parent of `path` (creating missing dirs) and clear the slot for a new
    /// entry: anything already there is removed (later entries win), except that a
    /// directory entry over an existing directory merges. Returns the parent fd and whether
    /// an existing directory was kept.
    fn slot(
        &self,
        path: &CleanPath,
        shown: &str,
        new_is_dir: bool,
    ) -> Result<(OwnedFd, bool), ApplyError> {
        let Some(name) = path.name() else {
            return Err(ApplyError::unsafe_path(
                shown,
                "non-directory entry would replace the layer root",
            ));
        };
        let parent = self.root.ensure_dir(&path.parent(), shown)?;
        let existing = lstat_at(parent.as_fd(), name).map_err(|e| fs_error("lstat", shown, e))?;
        let kept = match existing {
            None => false,
            Some(st)
                if new_is_dir && FileType::from_raw_mode(st.st_mode) == FileType::Directory =>
            {
                true
            }
            Some(_) => {
                remove_all_at(parent.as_fd(), name)
                    .map_err(|e| fs_error("remove earlier entry", shown, e))?;
                false
            }
        };
        Ok((parent, kept))
    }

    fn file(
        &mut self,
        path: &CleanPath,
        shown: String,
        meta: EntryMeta,
        sparse: bool,
    ) -> Result<(), ApplyError> {
        let (parent, _) = self.slot(path, &shown, false)?;
        let name = path.name().unwrap_or_else(|| OsStr::new("."));
        let fd = rustix::fs::openat(
            &parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| fs_error("create file", &shown, e))?;
        self.open = Some(Open {
            file: File::from(fd),
            shown,
            meta,
            sparse,
            off: 0,
        });
        Ok(())
    }

    /// Write the next chunk of the open file; for sparse entries, all-zero blocks are
    /// skipped (left as holes).
    fn data(&mut self, buf: &[u8]) -> Result<(), ApplyError> {
        let Some(open) = self.open.as_mut() else {
            return Err(ApplyError::unsafe_path("?", "file data without a file"));
        };
        if open.sparse {
            let mut pos = 0;
            for block in buf.chunks(HOLE_BLOCK) {
                // Slice equality is memcmp: fast even in unoptimised builds.
                if block != &ZEROS[..block.len()] {
                    open.file
                        .write_all_at(block, open.off + pos as u64)
                        .map_err(|e| ApplyError::io("write file", &open.shown, e))?;
                }
                pos += block.len();
            }
        } else {
            open.file
                .write_all_at(buf, open.off)
                .map_err(|e| ApplyError::io("write file", &open.shown, e))?;
        }
        open.off += buf.len() as u64;
        Ok(())
    }

    fn file_end(&mut self) -> Result<(), ApplyError> {
        let Some(open) = self.open.take() else {
            return Err(ApplyError::unsafe_path("?", "file end without a file"));
        };
        if open.sparse {
            // Trailing holes were skipped, not written: give the file its full length.
            open.file
                .set_len(open.off)
                .map_err(|e| ApplyError::io("set file length", &open.shown, e))?;
        }
        self.size += open.off;
        open.meta
            .apply_fd(open.file.as_fd(), self.preserve_owner, true, &open.shown)
    }

    fn dir(&mut self, path: &CleanPath, shown: &str, meta: EntryMeta) -> Result<(), ApplyError> {
        let fd = if path.is_root() {
            self.root
                .open_at(path, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|e| fs_error("open layer root", shown, e))?
        } else {
            let (parent, kept) = self.slot(path, shown, true)?;
            let name = path.name().unwrap_or_else(|| OsStr::new("."));
            if !kept {
                rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| fs_error("mkdir", shown, e))?;
            }
            rustix::fs::openat(
                &parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| fs_error("open directory", shown, e))?
        };
        meta.apply_fd(fd.as_fd(), self.preserve_owner, false, shown)?;
        self.dirs.push((path.clone(), meta));
        Ok(())
    }

    fn symlink(
        &mut self,
        path: &CleanPath,
        shown: &str,
        meta: &EntryMeta,
        target: &[u8],
    ) -> Result<(), ApplyError> {
        let (parent, _) = self.slot(path, shown, false)?;
        let name = path.name().unwrap_or_else(|| OsStr::new("."));
        // The target is stored verbatim; it is only ever followed by in-root resolution.
        rustix::fs::symlinkat(OsStr::from_bytes(target), &parent, name)
            .map_err(|e| fs_error("symlink", shown, e))?;
        meta.apply_at(parent.as_fd(), name, true, self.preserve_owner, shown)
    }

    fn hardlink(
        &mut self,
        path: &CleanPath,
        shown: &str,
        target: &CleanPath,
    ) -> Result<(), ApplyError> {
        let Some(target_name) = target.name() else {
            return Err(ApplyError::unsafe_path(shown, "hardlink to the layer root"));
        };
        let (parent, _) = self.slot(path, shown, false)?;
        // The target's directory is resolved inside the root like any entry path; its last
        // component is not followed (linkat without AT_SYMLINK_FOLLOW), so a link to a
        // symlink links the symlink itself.
        let target_dir = self
            .root
            .open_dir(&target.parent())
            .map_err(|e| fs_error("resolve hardlink target", shown, e))?;
        let name = path.name().unwrap_or_else(|| OsStr::new("."));
        rustix::fs::linkat(&target_dir, target_name, &parent, name, AtFlags::empty())
            .map_err(|e| fs_error("hardlink", shown, e))
    }

    fn special(
        &mut self,
        path: &CleanPath,
        shown: &str,
        meta: &EntryMeta,
        ftype: FileType,
        dev: u64,
    ) -> Result<(), ApplyError> {
        if ftype != FileType::Fifo && !self.can_mknod {
            tracing::warn!(path = shown, "layer apply: skipping device node (not root)");
            return Ok(());
        }
        let (parent, _) = self.slot(path, shown, false)?;
        let name = path.name().unwrap_or_else(|| OsStr::new("."));
        rustix::fs::mknodat(&parent, name, ftype, Mode::from_raw_mode(0o600), dev)
            .map_err(|e| fs_error("mknod", shown, e))?;
        meta.apply_at(parent.as_fd(), name, false, self.preserve_owner, shown)
    }

    /// `.wh.<target>` in `dir`: remove this layer's own `<target>` and leave an overlayfs
    /// whiteout (char 0:0) in its place.
    fn whiteout(
        &mut self,
        dir: &CleanPath,
        target: &OsStr,
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<(), ApplyError> {
        let t = target.as_bytes();
        if t.is_empty() || t == b"." || t == b".." {
            return Err(ApplyError::unsafe_path(
                shown,
                "whiteout of an empty, `.` or `..` name",
            ));
        }
        let parent = self.root.ensure_dir(dir, shown)?;
        remove_all_at(parent.as_fd(), target)
            .map_err(|e| fs_error("remove whited-out entry", shown, e))?;
        rustix::fs::mknodat(
            &parent,
            target,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|e| fs_error("create whiteout", shown, e))?;
        if self.preserve_owner {
            rustix::fs::chownat(
                &parent,
                target,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| fs_error("chown whiteout", shown, e))?;
        }
        // Keep the entry's times so an export of this layer gives the same bytes back.
        meta.set_times_at(parent.as_fd(), target, shown)
    }

    /// `.wh..wh..opq` in `dir`: mark `dir` opaque for overlayfs.
    fn opaque(&mut self, dir: &CleanPath, shown: &str) -> Result<(), ApplyError> {
        let fd = self.root.ensure_dir(dir, shown)?;
        let dirfd = rustix::fs::openat(
            &fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fs_error("open opaque directory", shown, e))?;
        rustix::fs::fsetxattr(&dirfd, OPAQUE_XATTR, b"y", XattrFlags::empty())
            .map_err(|e| fs_error("set opaque xattr", shown, e))
    }

    /// Set directory times last: writing children changed them.
    fn finish_dirs(&mut self) -> Result<(), ApplyError> {
        for (path, meta) in self.dirs.iter().rev() {
            let shown = path.display();
            match self
                .root
                .open_at(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW)
            {
                Ok(fd) => meta.set_times_fd(fd.as_fd(), &shown)?,
                // Replaced by a later entry (file, symlink) or removed by a whiteout.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(fs_error("open directory", &shown, e)),
            }
        }
        Ok(())
    }
}

fn fs_error(op: &'static str, shown: &str, e: Errno) -> ApplyError {
    ApplyError::os(op, shown, e)
}
