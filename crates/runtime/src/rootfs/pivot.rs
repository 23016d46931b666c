//! Changing the root: `pivot_root(".", ".")`, or for `--no-pivot` a move of the rootfs onto `/`
//! and `chroot`.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use rustix::fs::{Mode, OFlags};

use super::RootfsError;
use super::mountinfo;

fn step(step: &'static str) -> impl FnOnce(io::Error) -> RootfsError {
    move |source| RootfsError::Pivot { step, source }
}

fn nix_step(s: &'static str) -> impl FnOnce(nix::Error) -> RootfsError {
    move |e| step(s)(e.into())
}

/// `pivot_root` refuses a new root whose parent mount is shared (and `MS_MOVE` does too), so
/// make the mount that holds `rootfs` private when it is shared. Only that one mount: private
/// there does not leak anywhere, we are in our own mount namespace.
pub(crate) fn make_parent_private(rootfs: &Path) -> io::Result<()> {
    let mounts = mountinfo::read_self()?;
    if let Some(m) = mountinfo::mount_of(&mounts, rootfs)
        && m.is_shared()
    {
        nix::mount::mount(
            None::<&str>,
            &m.mount_point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )?;
    }
    Ok(())
}

fn open_dir(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `pivot_root(".", ".")`: the old root ends up stacked on the new one, where `umount2(".",
/// MNT_DETACH)` from inside it removes it — no put_old directory needed in the rootfs.
pub(crate) fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let old_root = open_dir(Path::new("/")).map_err(step("open /"))?;
    let new_root = open_dir(rootfs).map_err(step("open the rootfs"))?;
    rustix::process::fchdir(&new_root).map_err(|e| step("chdir into the rootfs")(e.into()))?;
    rustix::process::pivot_root(".", ".").map_err(|e| step("pivot_root")(e.into()))?;
    rustix::process::fchdir(&old_root).map_err(|e| step("chdir into the old root")(e.into()))?;
    // Make sure the detach below cannot propagate to the host's mounts.
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_step("make the old root rslave"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(nix_step("detach the old root"))?;
    rustix::process::chdir("/").map_err(|e| step("chdir /")(e.into()))?;
    Ok(())
}

/// `--no-pivot` (for a rootfs on a ramfs, where `pivot_root` is impossible): detach what the host
/// mounted outside the rootfs (so the host's /proc and /sys do not stay reachable in our
/// namespace), move the rootfs onto `/`, `chroot` into it.
pub(crate) fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let rootfs = std::fs::canonicalize(rootfs).map_err(step("canonicalize the rootfs"))?;
    detach_outside(&rootfs).map_err(step("read mountinfo"))?;
    rustix::process::chdir(&rootfs).map_err(|e| step("chdir into the rootfs")(e.into()))?;
    nix::mount::mount(
        Some(&rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(nix_step("move the rootfs onto /"))?;
    rustix::process::chroot(".").map_err(|e| step("chroot")(e.into()))?;
    rustix::process::chdir("/").map_err(|e| step("chdir /")(e.into()))?;
    Ok(())
}

fn detach_outside(rootfs: &Path) -> io::Result<()> {
    let mut points: Vec<PathBuf> = mountinfo::read_self()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| !p.starts_with(rootfs) && !rootfs.starts_with(p))
        .collect();
    // Deepest first; a parent's detach takes its children with it, so failures are expected.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if nix::mount::umount2(&p, MntFlags::MNT_DETACH).is_err()
            && (p == Path::new("/proc") || p == Path::new("/sys"))
        {
            // Still there: at least hide it.
            let _ = nix::mount::mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            );
        }
    }
    Ok(())
}
