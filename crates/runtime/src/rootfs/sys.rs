//! Thin wrappers over the mount syscalls, all taking the target as an fd (never a path string
//! that the kernel would resolve again).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::mount::MsFlags;

use super::options::Attrs;
use super::path_safety::proc_fd_path;

/// `mount(2)` onto the object `target` refers to, via `/proc/self/fd/N`.
pub(crate) fn mount_at(
    source: Option<&Path>,
    target: BorrowedFd<'_>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    nix::mount::mount(source, &proc_fd_path(target), fstype, flags, data)?;
    Ok(())
}

/// Change the propagation of the mount at `target` (`MS_SHARED|MS_REC`, ...).
pub(crate) fn set_propagation(target: BorrowedFd<'_>, flags: MsFlags) -> io::Result<()> {
    mount_at(None, target, None, flags, None)
}

/// `mount_setattr(2)` on the mount at `target` (`AT_EMPTY_PATH`), optionally the whole subtree.
///
/// Unlike a `MS_REMOUNT|MS_BIND` remount it only touches the bits named, so flags that a user
/// namespace locked (nosuid, nodev, ...) are kept without having to read them back first.
pub(crate) fn mount_setattr(
    target: BorrowedFd<'_>,
    recursive: bool,
    attrs: Attrs,
) -> io::Result<()> {
    if attrs.is_empty() {
        return Ok(());
    }
    let mut ma = libc::mount_attr {
        attr_set: attrs.set,
        attr_clr: attrs.clr,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: mount_setattr reads `size` bytes from a valid, initialised `mount_attr` that lives
    // across the call; the path is a static NUL-terminated empty string; the fd is borrowed
    // and therefore open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &mut ma as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
