//! Metadata of a tar entry (mode, owner, times, xattrs) and applying it to what was created.
//!
//! Order matters: owner first (chown clears setuid/setgid and `security.capability`), then
//! mode, then xattrs, then times (every earlier step may touch ctime but not mtime; for
//! directories the times are set at the very end, after their children are written).

use std::ffi::OsStr;
use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::ApplyError;
use super::root::proc_path;
use super::whiteout::OVERLAY_XATTR_PREFIX;

/// PAX record prefix carrying an xattr (GNU tar, bsdtar, Go, Docker).
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Metadata from one tar entry.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    /// Permission bits incl. setuid/setgid/sticky.
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) atime: Timespec,
    pub(crate) mtime: Timespec,
    pub(crate) xattrs: Vec<(String, Vec<u8>)>,
}

impl EntryMeta {
    /// Read the metadata of `entry`; numeric fields that do not parse or overflow are errors.
    pub(crate) fn from_entry<R: io::Read>(
        entry: &mut tar::Entry<'_, R>,
        path: &str,
    ) -> Result<EntryMeta, ApplyError> {
        let tar_err = |source: io::Error| ApplyError::Tar {
            entry: Some(path.to_string()),
            source,
        };
        let header = entry.header();
        let old = header.as_old();
        let mode =
            numeric(&old.mode, || header.mode().map(u64::from)).map_err(tar_err)? as u32 & 0o7777;
        let uid = u32::try_from(numeric(&old.uid, || header.uid()).map_err(tar_err)?)
            .map_err(|_| tar_err(io::Error::other("uid out of range")))?;
        let gid = u32::try_from(numeric(&old.gid, || header.gid()).map_err(tar_err)?)
            .map_err(|_| tar_err(io::Error::other("gid out of range")))?;
        let header_mtime = numeric(&old.mtime, || header.mtime()).map_err(tar_err)?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(header_mtime)
                .map_err(|_| tar_err(io::Error::other("mtime out of range")))?,
            tv_nsec: 0,
        };
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(tar_err)? {
            for ext in pax {
                let ext = ext.map_err(tar_err)?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    if name.is_empty() || name.contains('\0') {
                        continue;
                    }
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                } else if key == "mtime" {
                    if let Some(t) = ext.value().ok().and_then(parse_pax_time) {
                        mtime = t;
                    }
                } else if key == "atime" {
                    atime = ext.value().ok().and_then(parse_pax_time);
                }
            }
        }
        Ok(EntryMeta {
            mode,
            uid,
            gid,
            atime: atime.unwrap_or(mtime),
            mtime,
            xattrs,
        })
    }

    fn timestamps(&self) -> Timestamps {
        Timestamps {
            last_access: self.atime,
            last_modification: self.mtime,
        }
    }

    /// Apply owner, mode, xattrs and (when `times`) times to an open regular file or dir.
    pub(crate) fn apply_fd(
        &self,
        fd: BorrowedFd<'_>,
        preserve_owner: bool,
        times: bool,
        path: &str,
    ) -> Result<(), ApplyError> {
        if preserve_owner {
            rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(self.uid)),
                Some(Gid::from_raw(self.gid)),
            )
            .map_err(|e| ApplyError::os("chown", path, e))?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(self.mode))
            .map_err(|e| ApplyError::os("chmod", path, e))?;
        for (name, value) in &self.xattrs {
            if skip_xattr(name, path) {
                continue;
            }
            xattr_result(
                rustix::fs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty()),
                name,
                path,
            )?;
        }
        if times {
            self.set_times_fd(fd, path)?;
        }
        Ok(())
    }

    pub(crate) fn set_times_fd(&self, fd: BorrowedFd<'_>, path: &str) -> Result<(), ApplyError> {
        rustix::fs::futimens(fd, &self.timestamps())
            .map_err(|e| ApplyError::os("set times", path, e))
    }

    /// Set times of `name` in `dir` without following it.
    pub(crate) fn set_times_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &str,
    ) -> Result<(), ApplyError> {
        rustix::fs::utimensat(dir, name, &self.timestamps(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ApplyError::os("set times", path, e))
    }

    /// Apply metadata to `name` in `dir` without following it (symlinks, device nodes,
    /// fifos, sockets). `chmod` is skipped for symlinks (Linux ignores their mode).
    pub(crate) fn apply_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        is_symlink: bool,
        preserve_owner: bool,
        path: &str,
    ) -> Result<(), ApplyError> {
        if preserve_owner {
            rustix::fs::chownat(
                dir,
                name,
                Some(Uid::from_raw(self.uid)),
                Some(Gid::from_raw(self.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| ApplyError::os("chown", path, e))?;
        }
        if !is_symlink {
            // Not a symlink (we just created it with mknodat), so following is moot; the
            // kernel's fchmodat has no working NOFOLLOW before fchmodat2.
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(self.mode), AtFlags::empty())
                .map_err(|e| ApplyError::os("chmod", path, e))?;
        }
        if !self.xattrs.is_empty() {
            let p = proc_path(dir, name);
            for (xname, value) in &self.xattrs {
                if skip_xattr(xname, path) {
                    continue;
                }
                xattr_result(
                    rustix::fs::lsetxattr(&p, xname.as_str(), value, XattrFlags::empty()),
                    xname,
                    path,
                )?;
            }
        }
        self.set_times_at(dir, name, path)
    }
}

/// A header number; a field left blank (NULs/spaces) reads as 0, as in Go's archive/tar
/// (and so Docker) and GNU tar, instead of failing the whole layer.
pub(crate) fn numeric(field: &[u8], parse: impl FnOnce() -> io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|b| *b == 0 || *b == b' ') {
        return Ok(0);
    }
    parse()
}

/// xattrs overlayfs interprets (`trusted.overlay.*`: opaque, redirect, origin, metacopy) are
/// never taken from a layer: a layer could otherwise redirect lookups into other layers.
/// Opaque directories come only from `.wh..wh..opq` entries.
fn skip_xattr(name: &str, path: &str) -> bool {
    if name.starts_with(OVERLAY_XATTR_PREFIX) {
        tracing::warn!(
            path,
            xattr = name,
            "layer apply: ignoring overlayfs xattr from layer"
        );
        return true;
    }
    false
}

/// Like Docker: xattrs the filesystem or our privileges cannot store are a warning, not a
/// failed pull (e.g. `trusted.*` when not root, or a filesystem without user xattrs).
fn xattr_result(res: Result<(), Errno>, name: &str, path: &str) -> Result<(), ApplyError> {
    match res {
        Ok(()) => Ok(()),
        Err(e @ (Errno::NOTSUP | Errno::PERM | Errno::ACCESS)) => {
            tracing::warn!(path, xattr = name, error = %e, "layer apply: xattr not set");
            Ok(())
        }
        Err(e) => Err(ApplyError::os("set xattr", path, e)),
    }
}

/// Parse a PAX time (`123`, `123.456`, `-1.5`) into a timespec; None if malformed.
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (sec, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    if sec.is_empty() || !sec.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(if neg {
        if nsec == 0 {
            Timespec {
                tv_sec: -sec,
                tv_nsec: 0,
            }
        } else {
            Timespec {
                tv_sec: -sec - 1,
                tv_nsec: 1_000_000_000 - nsec,
            }
        }
    } else {
        Timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_parse() {
        let t = parse_pax_time("1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time("-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time("x").is_none());
        assert!(parse_pax_time("1.2.3").is_none());
    }
}
