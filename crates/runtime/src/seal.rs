//! CVE-2019-5736: whatever enters a container must not run from a host binary it could reach
//! for writing through `/proc/<pid>/exe`. The container's init is a clone of the runtime, so
//! the runtime re-executes itself from a copy the container cannot write before it clones.
//!
//! Two ways, tried in this order:
//! 1. **A private read-only overlayfs** (the approach of runc ≥ 1.2): a detached overlay mount
//!    (`fsopen`/`fsmount`, never attached anywhere, reachable only through our fds) whose top
//!    lower layer is the binary's own directory and whose second lower layer is an empty
//!    detached tmpfs (overlayfs is lower-only, i.e. read-only for good, only with ≥ 2 lower
//!    layers). The binary is exec'd from it: `/proc/<pid>/exe` then names the overlay file,
//!    which cannot be opened for writing (`EROFS`) and, unlike a read-only bind mount, cannot be
//!    remounted writable (an overlay without an upper layer has nothing to write to). No copy:
//!    the overlay shares the lower file's page cache. Costs ~0.15 ms instead of the ~2-4 ms of
//!    copying the 4 MB binary. Needs root and Linux ≥ 6.13 (layers passed as fds).
//! 2. **A sealed memfd copy** (`pentacle`), where the overlay cannot be built.
//!
//! After the re-exec the new image must recognise that it is sealed (else it would loop). A
//! sealed memfd proves itself (its seals). For the overlay, the pre-exec process passes the
//! overlay file's device and inode in [`SEALED_ENV`]; the new image accepts it only if
//! `/proc/self/exe` is that very file, on an overlayfs, read-only — a stale or inherited value
//! never matches another binary — and removes the variable so nothing it starts inherits it.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

/// Carries `<st_dev>:<st_ino>` of the overlay view across the re-exec (see the module docs).
pub const SEALED_ENV: &str = "_BERTH_RUNTIME_SEALED";

/// `OVERLAYFS_SUPER_MAGIC` from linux/magic.h.
const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;
/// `ST_RDONLY` in statfs `f_flags`.
const ST_RDONLY: u64 = 0x0001;

/// Why the runtime could not re-execute itself from a safe copy.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Opening `/proc/self/exe` to check it.
    #[error("opening /proc/self/exe")]
    OpenExe(#[source] io::Error),
    /// Neither way worked; the memfd fallback's error (the overlay's is in the debug log).
    #[error("re-executing from a sealed memfd copy")]
    Memfd(#[source] io::Error),
}

/// Whether this process already runs from a safe copy (sealed memfd or our overlay view).
pub fn is_sealed() -> bool {
    pentacle::is_sealed()
        || File::open("/proc/self/exe")
            .map(|exe| overlay_marker_matches(&exe))
            .unwrap_or(false)
}

/// Return `Ok` if this process runs from a safe copy; otherwise re-execute it from one (this
/// call then does not return on success). Single-threaded callers only (it edits the env).
pub fn ensure_sealed() -> Result<(), SealError> {
    let exe = File::open("/proc/self/exe").map_err(SealError::OpenExe)?;
    if overlay_marker_matches(&exe) {
        // SAFETY: single-threaded (this function's contract); nothing reads the env concurrently.
        unsafe { std::env::remove_var(SEALED_ENV) };
        // Started as `/proc/self/fd/N` (SealedBinary::command), the kernel named the task "N":
        // give it back its program name, which `ps`, `pgrep berth-shim` and tools look for.
        if let Some(name) = std::env::args_os().next()
            && let Some(base) = std::path::Path::new(&name).file_name()
        {
            crate::process::clone::set_name(&base.to_string_lossy());
        }
        return Ok(());
    }
    if pentacle::is_sealed() {
        return Ok(());
    }
    match overlay_view(&exe) {
        Ok((file, marker)) => {
            let err = exec_fd(&file, &marker);
            crate::timing::mark(&format!("seal: overlay exec failed: {err}"));
        }
        Err(e) => crate::timing::mark(&format!("seal: no overlay view: {e}")),
    }
    drop(exe);
    pentacle::ensure_sealed().map_err(SealError::Memfd)
}

/// `/proc/self/exe` is the overlay file named by [`SEALED_ENV`], on a read-only overlayfs.
fn overlay_marker_matches(exe: &File) -> bool {
    marker_matches(exe, std::env::var_os(SEALED_ENV))
}

/// `exe` is the file `marker` names, on a read-only overlayfs.
fn marker_matches(exe: &File, marker: Option<OsString>) -> bool {
    let Some(marker) = marker else {
        return false;
    };
    let (Ok(st), Ok(fs)) = (rustix::fs::fstat(exe), rustix::fs::fstatfs(exe)) else {
        return false;
    };
    marker == OsString::from(marker_of(&st))
        && fs.f_type as u64 == OVERLAYFS_SUPER_MAGIC
        && fs.f_flags as u64 & ST_RDONLY != 0
}

fn marker_of(st: &rustix::fs::Stat) -> String {
    format!("{}:{}", st.st_dev, st.st_ino)
}

/// A binary seen through its own private read-only overlay view, held open by a long-lived
/// process that starts it many times (berthd and berth-shim): started with
/// [`SealedBinary::command`], the binary finds itself sealed at [`ensure_sealed`] and skips the
/// re-exec it would otherwise do (~2 ms per container).
#[derive(Debug)]
pub struct SealedBinary {
    file: OwnedFd,
    marker: String,
    path: std::path::PathBuf,
}

impl SealedBinary {
    /// A view of the binary at `path` (needs root and Linux ≥ 6.13, like the re-exec).
    pub fn open(path: &std::path::Path) -> io::Result<SealedBinary> {
        let file = File::open(path)?;
        let (file, marker) = overlay_view_of(path, &file)?;
        Ok(SealedBinary {
            file,
            marker,
            path: path.to_path_buf(),
        })
    }

    /// A command running the view: `/proc/self/fd/N` (resolved by the child before its exec,
    /// so the fd may stay close-on-exec), argv\[0\] the binary's real path, and the marker.
    pub fn command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut cmd =
            std::process::Command::new(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
        cmd.arg0(&self.path).env(SEALED_ENV, &self.marker);
        cmd
    }
}

/// The running binary seen through a fresh private lower-only overlay, and its marker.
fn overlay_view(exe: &File) -> io::Result<(OwnedFd, String)> {
    let path = std::fs::read_link("/proc/self/exe")?;
    overlay_view_of(&path, exe)
}

/// The binary at `path` (which must still be the file `exe`) through a fresh private
/// lower-only overlay of its directory, and its marker.
fn overlay_view_of(path: &std::path::Path, exe: &File) -> io::Result<(OwnedFd, String)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other(format!(
            "{} has no directory",
            path.display()
        )));
    };
    let dir = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let empty = empty_tmpfs()?;
    let ctx = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    // The binary's directory on top, so nothing in the (empty) second layer can shadow it.
    rustix::mount::fsconfig_set_fd(&ctx, "lowerdir+", &dir)?;
    rustix::mount::fsconfig_set_fd(&ctx, "lowerdir+", &empty)?;
    // Only to avoid xino's dmesg noise when the layers are on different filesystems.
    let _ = rustix::mount::fsconfig_set_string(&ctx, "xino", "off");
    rustix::mount::fsconfig_create(&ctx)?;
    let mnt = rustix::mount::fsmount(
        &ctx,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )?;
    let file = rustix::fs::openat(
        &mnt,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // The name must still be the running binary (not replaced since we started): overlayfs
    // reports the lower file's inode number, so compare that and the size.
    let (seen, running) = (rustix::fs::fstat(&file)?, rustix::fs::fstat(exe)?);
    if seen.st_ino != running.st_ino
        || seen.st_size != running.st_size
        || seen.st_mode & libc::S_IFMT != libc::S_IFREG
    {
        return Err(io::Error::other(format!(
            "{} is no longer the running binary",
            path.display()
        )));
    }
    let fs = rustix::fs::fstatfs(&file)?;
    if fs.f_type as u64 != OVERLAYFS_SUPER_MAGIC || fs.f_flags as u64 & ST_RDONLY == 0 {
        return Err(io::Error::other(
            "overlay view is not a read-only overlayfs",
        ));
    }
    let marker = marker_of(&seen);
    Ok((file, marker))
}

/// An empty, read-only, detached tmpfs: the second lower layer.
fn empty_tmpfs() -> io::Result<OwnedFd> {
    let ctx = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_set_string(&ctx, "size", "4k")?;
    rustix::mount::fsconfig_set_string(&ctx, "mode", "0500")?;
    rustix::mount::fsconfig_create(&ctx)?;
    Ok(rustix::mount::fsmount(
        &ctx,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )?)
}

/// `execveat(fd, "", argv, env + marker, AT_EMPTY_PATH)`: returns only on failure.
fn exec_fd(file: &OwnedFd, marker: &str) -> io::Error {
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| io::Error::other("NUL in argv or env"));
    let build = || -> io::Result<(Vec<CString>, Vec<CString>)> {
        let argv = std::env::args_os()
            .map(|a| cstr(a.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let mut env = Vec::new();
        for (k, v) in std::env::vars_os() {
            if k.as_bytes() == SEALED_ENV.as_bytes() {
                continue;
            }
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            env.push(cstr(&kv)?);
        }
        env.push(cstr(format!("{SEALED_ENV}={marker}").as_bytes())?);
        Ok((argv, env))
    };
    let (argv, env) = match build() {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_p.push(std::ptr::null());
    // SAFETY: argv/env are NUL-terminated arrays of valid C strings that outlive the call; the
    // fd is open (O_PATH, which execveat accepts with AT_EMPTY_PATH).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            file.as_fd().as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            env_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_view_is_the_running_binary_and_read_only() {
        if !rustix::process::geteuid().is_root() {
            println!("SKIP: needs root (fsopen of overlay)");
            return;
        }
        let exe = File::open("/proc/self/exe").unwrap();
        let (file, marker) = overlay_view(&exe).unwrap();
        let st = rustix::fs::fstat(&file).unwrap();
        assert_eq!(marker, marker_of(&st));
        assert_eq!(st.st_ino, rustix::fs::fstat(&exe).unwrap().st_ino);
        // The point of it: no write access through the view, even for root.
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        // Same bytes as the running binary.
        let via_view = std::fs::read(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
        assert_eq!(via_view, std::fs::read("/proc/self/exe").unwrap());
    }

    #[test]
    fn a_marker_is_trusted_only_for_its_read_only_overlay_file() {
        let exe = File::open("/proc/self/exe").unwrap();
        // The test binary runs from disk, not from an overlay: even a marker with its own
        // device and inode is refused (not an overlayfs).
        let st = rustix::fs::fstat(&exe).unwrap();
        assert!(!marker_matches(&exe, Some(marker_of(&st).into())));
        assert!(!marker_matches(&exe, None));
        if !rustix::process::geteuid().is_root() {
            println!("SKIP (rest): needs root (fsopen of overlay)");
            return;
        }
        let (file, marker) = overlay_view(&exe).unwrap();
        let view = File::from(file.try_clone().unwrap());
        // O_PATH fds cannot be fstatfs'd portably: reopen read-only through /proc.
        let view = File::open(format!("/proc/self/fd/{}", view.as_raw_fd())).unwrap();
        assert!(marker_matches(&view, Some(marker.clone().into())));
        assert!(!marker_matches(&view, Some(format!("{marker}0").into())));
        assert!(!marker_matches(&exe, Some(marker.into())));
    }
}
