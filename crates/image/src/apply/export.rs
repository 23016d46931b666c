//! Export an overlay diff dir as a layer tar.
//!
//! The walk is fd-based (every directory is opened `O_NOFOLLOW` relative to its parent), in
//! name-byte order, so the same tree always gives the same bytes. Headers are GNU format
//! with only what the tree holds (no user/group names, whole-second mtimes); long names and
//! link targets and xattrs go in a PAX header before the entry; files with holes are written
//! as GNU sparse entries so a re-apply recreates the holes.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, SeekFrom};
use rustix::io::Errno;
use tar::{EntryType, GnuExtSparseHeader, Header};

use super::ApplyError;
use super::root::proc_path;
use super::whiteout::{OPAQUE_MARKER, OVERLAY_XATTR_PREFIX, is_opaque, is_whiteout};

const BLOCK: u64 = 512;
/// Longest name/link target that fits the header's 100-byte field (NUL-terminated).
const NAME_FIELD: usize = 99;

pub(crate) fn export<W: Write>(diff: &Path, out: W) -> Result<(), ApplyError> {
    let root = rustix::fs::open(
        diff,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::os("open diff dir", diff.display().to_string(), e))?;
    let mut ex = Exporter {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
    };
    if is_opaque(root.as_fd()) {
        ex.marker(
            OPAQUE_MARKER.as_bytes(),
            &rustix::fs::fstat(&root).map_err(|e| ApplyError::os("stat diff dir", "/", e))?,
            0o600,
        )?;
    }
    ex.walk(root.as_fd(), b"")?;
    ex.tar
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| ApplyError::Write {
            path: "end of archive".into(),
            source: e,
        })
}

struct Exporter<W: Write> {
    tar: tar::Builder<W>,
    /// First path seen for each multiply-linked inode, for hardlink entries.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> Exporter<W> {
    fn walk(&mut self, dir: BorrowedFd<'_>, prefix: &[u8]) -> Result<(), ApplyError> {
        let shown = || String::from_utf8_lossy(prefix).into_owned();
        let mut names: Vec<OsString> = Vec::new();
        {
            let mut it = rustix::fs::Dir::read_from(dir)
                .map_err(|e| ApplyError::os("read directory", shown(), e))?;
            while let Some(ent) = it.read() {
                let ent = ent.map_err(|e| ApplyError::os("read directory", shown(), e))?;
                let n = ent.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(OsStr::from_bytes(n).to_owned());
                }
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let mut rel = prefix.to_vec();
            rel.extend_from_slice(name.as_bytes());
            self.entry(dir, &name, rel)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: Vec<u8>) -> Result<(), ApplyError> {
        let shown = String::from_utf8_lossy(&rel).into_owned();
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ApplyError::os("lstat", &shown, e))?;
        let ftype = FileType::from_raw_mode(st.st_mode);
        if is_whiteout(&st) {
            let mut wh = rel[..rel.len() - name.len()].to_vec();
            wh.extend_from_slice(b".wh.");
            wh.extend_from_slice(name.as_bytes());
            return self.marker(&wh, &st, 0o600);
        }
        match ftype {
            FileType::Directory => {
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ApplyError::os("open directory", &shown, e))?;
                let mut path = rel.clone();
                path.push(b'/');
                let mut h = base_header(&st, EntryType::Directory);
                h.set_size(0);
                self.write_header(h, &path, None, xattrs_fd(fd.as_fd(), &shown)?, &shown)?;
                if is_opaque(fd.as_fd()) {
                    let mut m = path.clone();
                    m.extend_from_slice(OPAQUE_MARKER.as_bytes());
                    self.marker(&m, &st, st.st_mode & 0o777)?;
                }
                self.walk(fd.as_fd(), &path)
            }
            FileType::RegularFile => self.file(dir, name, rel, &st, &shown),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())
                    .map_err(|e| ApplyError::os("readlink", &shown, e))?;
                let mut h = base_header(&st, EntryType::Symlink);
                h.set_size(0);
                let x = xattrs_path(dir, name, &shown)?;
                self.write_header(h, &rel, Some(target.as_bytes()), x, &shown)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let kind = match ftype {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = base_header(&st, kind);
                h.set_size(0);
                if kind != EntryType::Fifo {
                    let major = rustix::fs::major(st.st_rdev);
                    let minor = rustix::fs::minor(st.st_rdev);
                    h.set_device_major(major)
                        .map_err(|e| write_error(&shown, e))?;
                    h.set_device_minor(minor)
                        .map_err(|e| write_error(&shown, e))?;
                }
                let x = xattrs_path(dir, name, &shown)?;
                self.write_header(h, &rel, None, x, &shown)
            }
            _ => {
                // Sockets and anything else have no tar form (Docker skips sockets too).
                tracing::debug!(path = %shown, "layer export: skipping socket or unknown type");
                Ok(())
            }
        }
    }

    fn file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: Vec<u8>,
        st: &rustix::fs::Stat,
        shown: &str,
    ) -> Result<(), ApplyError> {
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = base_header(st, EntryType::Link);
                h.set_size(0);
                return self.write_header(h, &rel, Some(&first), Vec::new(), shown);
            }
            self.links.insert(key, rel.clone());
        }
        let fd: OwnedFd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ApplyError::os("open file", shown, e))?;
        let xattrs = xattrs_fd(fd.as_fd(), shown)?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let allocated = u64::try_from(st.st_blocks)
            .unwrap_or(u64::MAX)
            .saturating_mul(512);
        let segments = if allocated < size {
            data_segments(fd.as_fd(), size).map_err(|e| ApplyError::os("find holes", shown, e))?
        } else {
            None
        };
        let mut file = File::from(fd);
        match segments {
            None => {
                let mut h = base_header(st, EntryType::Regular);
                h.set_size(size);
                self.write_header(h, &rel, None, xattrs, shown)?;
                copy_exact(&mut file, self.tar.get_mut(), size, shown)?;
                pad(self.tar.get_mut(), size, shown)
            }
            Some(segs) => self.sparse_file(st, &rel, xattrs, &mut file, size, &segs, shown),
        }
    }

    /// A GNU sparse entry: the map (4 entries in the header, 21 per extension block), then
    /// the data segments back to back.
    #[allow(clippy::too_many_arguments)]
    fn sparse_file(
        &mut self,
        st: &rustix::fs::Stat,
        rel: &[u8],
        xattrs: Vec<(String, Vec<u8>)>,
        file: &mut File,
        size: u64,
        segs: &[(u64, u64)],
        shown: &str,
    ) -> Result<(), ApplyError> {
        let mut map: Vec<(u64, u64)> = segs.to_vec();
        if map.last().is_none_or(|(o, l)| o + l < size) {
            map.push((size, 0));
        }
        let on_disk: u64 = segs.iter().map(|(_, l)| l).sum();
        let mut h = base_header(st, EntryType::GNUSparse);
        h.set_size(on_disk);
        {
            let gnu = h
                .as_gnu_mut()
                .ok_or_else(|| write_error(shown, io::Error::other("not a GNU header")))?;
            gnu.set_real_size(size);
            for (slot, (o, l)) in gnu.sparse.iter_mut().zip(map.iter()) {
                slot.set_offset(*o);
                slot.set_length(*l);
            }
            gnu.set_is_extended(map.len() > 4);
        }
        self.write_header(h, rel, None, xattrs, shown)?;
        let rest: Vec<_> = map.iter().skip(4).collect();
        let chunks: Vec<_> = rest.chunks(21).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut ext = GnuExtSparseHeader::new();
            for (slot, (o, l)) in ext.sparse_mut().iter_mut().zip(chunk.iter()) {
                slot.set_offset(*o);
                slot.set_length(*l);
            }
            ext.set_is_extended(i + 1 < chunks.len());
            self.tar
                .get_mut()
                .write_all(ext.as_bytes())
                .map_err(|e| write_error(shown, e))?;
        }
        for (off, len) in segs {
            file.seek(io::SeekFrom::Start(*off))
                .map_err(|e| ApplyError::io("seek", shown, e))?;
            copy_exact(file, self.tar.get_mut(), *len, shown)?;
        }
        pad(self.tar.get_mut(), on_disk, shown)
    }

    /// An empty regular file standing for a whiteout or opaque marker.
    fn marker(&mut self, path: &[u8], st: &rustix::fs::Stat, mode: u32) -> Result<(), ApplyError> {
        let shown = String::from_utf8_lossy(path).into_owned();
        let mut h = base_header(st, EntryType::Regular);
        h.set_mode(mode);
        h.set_size(0);
        self.write_header(h, path, None, Vec::new(), &shown)
    }

    /// Header (plus a PAX header first when needed: long path or link, xattrs).
    fn write_header(
        &mut self,
        mut h: Header,
        path: &[u8],
        link: Option<&[u8]>,
        xattrs: Vec<(String, Vec<u8>)>,
        shown: &str,
    ) -> Result<(), ApplyError> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        set_name_field(&mut h.as_old_mut().name, path);
        if path.len() > NAME_FIELD {
            pax.push(("path".into(), path.to_vec()));
        }
        if let Some(link) = link {
            set_name_field(&mut h.as_old_mut().linkname, link);
            if link.len() > NAME_FIELD {
                pax.push(("linkpath".into(), link.to_vec()));
            }
        }
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v));
        }
        if !pax.is_empty() {
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| write_error(shown, e))?;
        }
        h.set_cksum();
        self.tar
            .get_mut()
            .write_all(h.as_bytes())
            .map_err(|e| write_error(shown, e))
    }
}

/// Header with the metadata every entry carries: mode bits, owner, whole-second mtime.
fn base_header(st: &rustix::fs::Stat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h
}

/// Copy `name` into a fixed header field, truncated (the full name then lives in PAX).
fn set_name_field(field: &mut [u8; 100], name: &[u8]) {
    field.fill(0);
    let n = name.len().min(NAME_FIELD);
    field[..n].copy_from_slice(&name[..n]);
}

/// Xattrs of an open file or dir, sorted, without overlayfs' own.
fn xattrs_fd(fd: BorrowedFd<'_>, shown: &str) -> Result<Vec<(String, Vec<u8>)>, ApplyError> {
    read_xattrs(
        |buf| rustix::fs::flistxattr(fd, buf),
        |name, buf| rustix::fs::fgetxattr(fd, name, buf),
        shown,
    )
}

/// Xattrs of `name` in `dir` without following it (symlinks, devices).
fn xattrs_path(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    shown: &str,
) -> Result<Vec<(String, Vec<u8>)>, ApplyError> {
    let p = proc_path(dir, name);
    read_xattrs(
        |buf| rustix::fs::llistxattr(&p, buf),
        |xname, buf| rustix::fs::lgetxattr(&p, xname, buf),
        shown,
    )
}

fn read_xattrs(
    list: impl Fn(&mut [u8]) -> Result<usize, Errno>,
    get: impl Fn(&str, &mut [u8]) -> Result<usize, Errno>,
    shown: &str,
) -> Result<Vec<(String, Vec<u8>)>, ApplyError> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match list(&mut names) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(ApplyError::os("list xattrs", shown, e)),
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let Ok(xname) = std::str::from_utf8(raw) else {
            continue;
        };
        if xname.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        match get(xname, &mut value) {
            Ok(len) => {
                value.truncate(len);
                out.push((xname.to_string(), value));
            }
            // Removed in between, or not readable by us: not part of the layer.
            Err(Errno::NODATA | Errno::PERM | Errno::ACCESS) => {}
            Err(e) => return Err(ApplyError::os("read xattr", shown, e)),
        }
    }
    out.sort();
    Ok(out)
}

/// Data segments of a file with holes, or None when it is one segment (write it plainly)
/// or its segments do not suit the GNU format (every segment but the last must be a multiple
/// of 512 bytes).
fn data_segments(fd: BorrowedFd<'_>, size: u64) -> Result<Option<Vec<(u64, u64)>>, Errno> {
    let mut segs = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let start = match rustix::fs::seek(fd, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(Errno::NXIO) => break,
            Err(e) => return Err(e),
        };
        if start >= size {
            break;
        }
        let end = rustix::fs::seek(fd, SeekFrom::Hole(start))?.min(size);
        segs.push((start, end - start));
        pos = end;
    }
    if segs.len() == 1 && segs[0] == (0, size) {
        return Ok(None);
    }
    let aligned = segs.iter().rev().skip(1).all(|(_, l)| l % BLOCK == 0);
    Ok(aligned.then_some(segs))
}

/// Copy exactly `len` bytes; a file that shrank meanwhile is an error, not a corrupt tar.
fn copy_exact(
    src: &mut File,
    dst: &mut impl Write,
    len: u64,
    shown: &str,
) -> Result<(), ApplyError> {
    let n = io::copy(&mut src.take(len), dst).map_err(|e| ApplyError::io("copy file", shown, e))?;
    if n != len {
        return Err(ApplyError::io(
            "copy file",
            shown,
            io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank during export"),
        ));
    }
    Ok(())
}

fn pad(dst: &mut impl Write, len: u64, shown: &str) -> Result<(), ApplyError> {
    let rem = (len % BLOCK) as usize;
    if rem != 0 {
        dst.write_all(&[0u8; BLOCK as usize][..BLOCK as usize - rem])
            .map_err(|e| write_error(shown, e))?;
    }
    Ok(())
}

fn write_error(shown: &str, e: io::Error) -> ApplyError {
    ApplyError::Write {
        path: shown.to_string(),
        source: e,
    }
}
