//! The apply loop: walk the tar entries and create each one inside the layer root.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use super::meta::EntryMeta;
use super::root::{CleanPath, Root, lstat_at, remove_all_at};
use super::stream::{DecodeFailure, Decoder, HashingReader};
use super::whiteout::{OPAQUE_XATTR, WhiteoutKind, classify};
use super::{ApplyError, ApplyOptions, ApplyOutcome};

/// Copy buffer for file contents.
const COPY_BUF: usize = 256 * 1024;
/// Granularity of hole detection in sparse entries (the usual filesystem block size).
const HOLE_BLOCK: usize = 4096;

pub(crate) fn apply<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyOutcome, ApplyError> {
    let root = Root::open(dest)?;
    let decoder = Decoder::new(reader).map_err(|e| match downcast_decode(e) {
        Ok(d) => ApplyError::Decompress {
            format: d.format,
            source: d.source,
        },
        Err(e) => ApplyError::ReadMagic(e),
    })?;
    let mut archive = tar::Archive::new(HashingReader::new(decoder));
    let mut ex = Extractor {
        root,
        preserve_owner: opts.preserve_owner,
        can_mknod: rustix::process::geteuid().is_root(),
        size: 0,
        dirs: Vec::new(),
        buf: vec![0; COPY_BUF],
    };
    {
        let entries = archive.entries().map_err(|e| stream_error(e, None))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| stream_error(e, None))?;
            ex.entry(&mut entry)?;
        }
    }
    ex.finish_dirs()?;
    // Read what follows the end-of-archive marker (the second zero block, record padding) so
    // the diff id covers the whole uncompressed stream, then whatever follows the compressed
    // stream so the compressed digest covers the whole blob.
    let (diff_id, _, decoder) = archive
        .into_inner()
        .drain_and_finish()
        .map_err(|e| stream_error(e, None))?;
    let (compressed_digest, _, _) =
        decoder
            .into_blob()
            .drain_and_finish()
            .map_err(|e| ApplyError::Tar {
                entry: None,
                source: e,
            })?;
    Ok(ApplyOutcome {
        diff_id,
        compressed_digest,
        size: ex.size,
    })
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

/// A read error from the stream: a corrupt compressed stream or a malformed tar.
fn stream_error(e: io::Error, entry: Option<&str>) -> ApplyError {
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

struct Extractor {
    root: Root,
    preserve_owner: bool,
    /// Device nodes (and whiteouts) are only attempted when running as root.
    can_mknod: bool,
    size: u64,
    /// Directories whose times are set once everything is written.
    dirs: Vec<(CleanPath, EntryMeta)>,
    buf: Vec<u8>,
}

impl Extractor {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = CleanPath::new(&raw);
        let kind = entry.header().entry_type();

        if let Some(name) = path.name() {
            match classify(name) {
                WhiteoutKind::None => {}
                WhiteoutKind::Meta => {
                    tracing::debug!(path = %shown, "layer apply: skipping whiteout metadata");
                    return Ok(());
                }
                WhiteoutKind::Opaque => return self.opaque(&path.parent(), &shown),
                WhiteoutKind::Remove(target) => {
                    let target = target.to_owned();
                    let meta = EntryMeta::from_entry(entry, &shown)?;
                    return self.whiteout(&path.parent(), &target, &meta, &shown);
                }
            }
        }

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(entry, &path, &shown, kind == EntryType::GNUSparse)
            }
            EntryType::Directory => self.dir(entry, &path, &shown),
            EntryType::Symlink => self.symlink(entry, &path, &shown),
            EntryType::Link => self.hardlink(entry, &path, &shown),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.special(entry, &path, &shown, kind)
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

    /// Resolve the parent of `path` (creating missing dirs) and clear the slot for a new
    /// entry: anything already there is removed (later entries win), except that a
    /// directory entry over an existing directory merges. Returns the parent fd and whether
    /// an existing directory was kept.
    fn slot(
        &self,
        path: &CleanPath,
        shown: &str,
        new_is_dir: bool,
    ) -> Result<(std::os::fd::OwnedFd, bool), ApplyError> {
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

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &CleanPath,
        shown: &str,
        sparse: bool,
    ) -> Result<(), ApplyError> {
        let meta = EntryMeta::from_entry(entry, shown)?;
        let (parent, _) = self.slot(path, shown, false)?;
        let name = path.name().unwrap_or_else(|| OsStr::new("."));
        let fd = rustix::fs::openat(
            &parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| fs_error("create file", shown, e))?;
        let file = File::from(fd);
        let written = self.copy(entry, &file, sparse, shown)?;
        if sparse {
            // Trailing holes were skipped, not written: give the file its full length.
            file.set_len(written)
                .map_err(|e| ApplyError::io("set file length", shown, e))?;
        }
        self.size += written;
        meta.apply_fd(file.as_fd(), self.preserve_owner, true, shown)
    }

    /// Stream the entry's data into `file`; for sparse entries, all-zero blocks are skipped
    /// (left as holes) instead of written. Returns the logical length.
    fn copy<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &File,
        sparse: bool,
        shown: &str,
    ) -> Result<u64, ApplyError> {
        let mut off: u64 = 0;
        loop {
            let n = fill(entry, &mut self.buf).map_err(|e| stream_error(e, Some(shown)))?;
            if n == 0 {
                return Ok(off);
            }
            let data = &self.buf[..n];
            if sparse {
                let mut pos = 0;
                for block in data.chunks(HOLE_BLOCK) {
                    if block.iter().any(|b| *b != 0) {
                        file.write_all_at(block, off + pos as u64)
                            .map_err(|e| ApplyError::io("write file", shown, e))?;
                    }
                    pos += block.len();
                }
            } else {
                file.write_all_at(data, off)
                    .map_err(|e| ApplyError::io("write file", shown, e))?;
            }
            off += n as u64;
        }
    }

    fn dir<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &CleanPath,
        shown: &str,
    ) -> Result<(), ApplyError> {
        let meta = EntryMeta::from_entry(entry, shown)?;
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

    fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &CleanPath,
        shown: &str,
    ) -> Result<(), ApplyError> {
        let meta = EntryMeta::from_entry(entry, shown)?;
        let target = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .ok_or_else(|| ApplyError::unsafe_path(shown, "symlink without a target"))?;
        let (parent, _) = self.slot(path, shown, false)?;
        let name = path.name().unwrap_or_else(|| OsStr::new("."));
        // The target is stored verbatim; it is only ever followed by in-root resolution.
        rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, name)
            .map_err(|e| fs_error("symlink", shown, e))?;
        meta.apply_at(parent.as_fd(), name, true, self.preserve_owner, shown)
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &CleanPath,
        shown: &str,
    ) -> Result<(), ApplyError> {
        let target_raw = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .ok_or_else(|| ApplyError::unsafe_path(shown, "hardlink without a target"))?;
        let target = CleanPath::new(&target_raw);
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

    fn special<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &CleanPath,
        shown: &str,
        kind: EntryType,
    ) -> Result<(), ApplyError> {
        let meta = EntryMeta::from_entry(entry, shown)?;
        let (ftype, dev) = match kind {
            EntryType::Fifo => (FileType::Fifo, 0),
            _ => {
                if !self.can_mknod {
                    tracing::warn!(path = shown, "layer apply: skipping device node (not root)");
                    return Ok(());
                }
                let h = entry.header();
                let tar_err = |source| ApplyError::Tar {
                    entry: Some(shown.to_string()),
                    source,
                };
                let major = h.device_major().map_err(tar_err)?.unwrap_or(0);
                let minor = h.device_minor().map_err(tar_err)?.unwrap_or(0);
                let ftype = if kind == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (ftype, rustix::fs::makedev(major, minor))
            }
        };
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
        let t = target.as_encoded_bytes();
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
        Ok(())
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

fn fs_error(op: &'static str, shown: &str, e: Errno) -> ApplyError {
    ApplyError::os(op, shown, e)
}
