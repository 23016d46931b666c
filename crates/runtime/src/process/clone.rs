//! `clone3` straight into new namespaces, falling back to `clone` only on ENOSYS.
//!
//! Both are used fork-style (no new stack): the child continues on a copy of the caller's
//! stack and must leave through [`run_child`], which never returns. Only safe from a
//! single-threaded process, which the runtime is.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The parent's view of a new child.
#[derive(Debug)]
pub struct Child {
    /// Host pid.
    pub pid: i32,
    /// A pidfd for the child (from CLONE_PIDFD, or pidfd_open after the fallback).
    pub pidfd: Option<OwnedFd>,
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7; not in every libc release).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork with `ns_flags` (CLONE_NEW*). Returns `Ok(None)` in the child.
pub fn fork_with_namespaces(ns_flags: u64) -> io::Result<Option<Child>> {
    fork_into(ns_flags, None)
}

/// [`fork_with_namespaces`], the child starting in the cgroup2 dir `cgroup` (an fd on the dir)
/// when given: placed at fork, without the write lock a later `cgroup.procs` write takes. With a
/// cgroup this never falls back to `clone` (which cannot do it): ENOSYS is returned instead.
pub fn fork_into(ns_flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Option<Child>> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: ns_flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 with no stack behaves like fork: the child gets a copy of this address
    // space and returns here with 0; `args` and `pidfd` are valid for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret == 0 {
        return Ok(None);
    }
    if ret > 0 {
        // SAFETY: CLONE_PIDFD stored a new fd we now own.
        let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
        return Ok(Some(Child {
            pid: ret as i32,
            pidfd,
        }));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) || cgroup.is_some() {
        return Err(err);
    }
    // SAFETY: raw clone with a null stack is fork with namespace flags; the child returns 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            ns_flags | libc::SIGCHLD as u64,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        0 => Ok(None),
        r if r > 0 => {
            let pid = r as i32;
            Ok(Some(Child {
                pid,
                pidfd: pidfd_open(pid).ok(),
            }))
        }
        _ => Err(io::Error::last_os_error()),
    }
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Run `f` as the child's whole life: panics are caught, the exit code comes from `f`, and
/// the child never returns into the caller's frames.
pub fn run_child(f: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(255);
    // SAFETY: _exit ends this process without running the parent's atexit handlers or
    // destructors, which belong to the parent's copy of the state.
    unsafe { libc::_exit(code) }
}

/// Name the calling task (`ps`/`comm` show where a hang is). Truncated to 15 bytes.
pub fn set_name(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of at most 16 bytes, which `buf` is.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, buf.as_ptr());
    }
}
