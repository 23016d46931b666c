//! After the pivot: `readonlyPaths`, `maskedPaths` and `root.readonly`.
//!
//! Paths are resolved inside the new root like everything else (a container-controlled symlink
//! cannot turn a mask into a mount somewhere unexpected); a path that does not exist is skipped,
//! since default lists name files many kernels lack (/proc/kcore, /proc/sched_debug here).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;
use rustix::fs::FileType;

use super::RootfsError;
use super::options::{Attrs, attr};
use super::path_safety::{Create, open_host_dir, proc_fd_path, resolve_in_root};
use super::sys::{mount_at, mount_setattr};

fn open_root() -> io::Result<OwnedFd> {
    open_host_dir(Path::new("/"))
}

/// Resolve `path` in the root; `None` if it does not exist (or a parent is not a directory).
fn lookup(root: &OwnedFd, path: &str) -> io::Result<Option<OwnedFd>> {
    match resolve_in_root(root.as_fd(), Path::new(path), Create::No) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Bind each path onto itself and make the bind (and everything below it) read-only, nosuid,
/// nodev, noexec.
pub(crate) fn readonly_paths(paths: &[String]) -> Result<(), RootfsError> {
    let err = |path: &str, step| {
        let path = path.to_string();
        move |source| RootfsError::ReadonlyPath { path, step, source }
    };
    if paths.is_empty() {
        return Ok(());
    }
    let root = open_root().map_err(err("/", "open /"))?;
    for p in paths {
        let Some(fd) = lookup(&root, p).map_err(err(p, "resolve"))? else {
            continue;
        };
        let src = proc_fd_path(fd.as_fd());
        mount_at(
            Some(&src),
            fd.as_fd(),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(err(p, "bind onto itself"))?;
        let fd =
            resolve_in_root(root.as_fd(), Path::new(p), Create::No).map_err(err(p, "reopen"))?;
        let attrs = Attrs {
            set: attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
            clr: 0,
        };
        mount_setattr(fd.as_fd(), true, attrs).map_err(err(p, "make read-only"))?;
    }
    Ok(())
}

/// Hide each path: a read-only empty tmpfs over directories, /dev/null over anything else.
pub(crate) fn masked_paths(paths: &[String]) -> Result<(), RootfsError> {
    let err = |path: &str, step| {
        let path = path.to_string();
        move |source| RootfsError::Mask { path, step, source }
    };
    if paths.is_empty() {
        return Ok(());
    }
    let root = open_root().map_err(err("/", "open /"))?;
    let mut null: Option<OwnedFd> = None;
    for p in paths {
        let Some(fd) = lookup(&root, p).map_err(err(p, "resolve"))? else {
            continue;
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| err(p, "stat")(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            mount_at(
                Some(Path::new("tmpfs")),
                fd.as_fd(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )
            .map_err(err(p, "mount an empty tmpfs"))?;
            continue;
        }
        let null = match &null {
            Some(n) => n,
            None => null.insert(dev_null(&root).map_err(err(p, "open /dev/null"))?),
        };
        mount_at(
            Some(&proc_fd_path(null.as_fd())),
            fd.as_fd(),
            None,
            MsFlags::MS_BIND,
            None,
        )
        .map_err(err(p, "bind /dev/null"))?;
    }
    Ok(())
}

/// The container's /dev/null, checked to really be the null device (the image could have put
/// anything there if the spec mounts no /dev).
fn dev_null(root: &OwnedFd) -> io::Result<OwnedFd> {
    let fd = resolve_in_root(root.as_fd(), Path::new("/dev/null"), Create::No)?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice
        || st.st_rdev != rustix::fs::makedev(1, 3)
    {
        return Err(io::Error::other("/dev/null is not the null device (1:3)"));
    }
    Ok(fd)
}

/// `root.readonly`: make the root mount read-only. Only that mount (as runc): /proc, /dev, /tmp
/// mounts keep their own flags; the other attributes of `/` stay untouched.
pub(crate) fn root_readonly() -> Result<(), RootfsError> {
    let root = open_root().map_err(RootfsError::RootReadonly)?;
    mount_setattr(
        root.as_fd(),
        false,
        Attrs {
            set: attr::RDONLY,
            clr: 0,
        },
    )
    .map_err(RootfsError::RootReadonly)
}
