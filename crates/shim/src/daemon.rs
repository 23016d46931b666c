//! Becoming a daemon: detached from berthd so the shim (and its container) outlives it.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, fork, setsid};

/// Why the shim could not detach.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("fork")]
    Fork(#[source] Errno),
    #[error("setsid")]
    Setsid(#[source] Errno),
    #[error("become a child subreaper")]
    Subreaper(#[source] Errno),
    #[error("redirect stdio to /dev/null")]
    Stdio(#[source] io::Error),
}

/// setsid + double fork: the caller (berthd) reaps the first process at once, the second is
/// reparented to init. Returns in the final process only.
pub fn daemonize() -> Result<(), DaemonError> {
    // SAFETY: the shim is single-threaded here (no threads are ever started), so the child may
    // run arbitrary code after fork.
    match unsafe { fork() }.map_err(DaemonError::Fork)? {
        // SAFETY: _exit skips atexit handlers and destructors that belong to the child now.
        ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        ForkResult::Child => {}
    }
    setsid().map_err(DaemonError::Setsid)?;
    // SAFETY: as above, still single-threaded.
    match unsafe { fork() }.map_err(DaemonError::Fork)? {
        // SAFETY: as above.
        ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        ForkResult::Child => {}
    }
    Ok(())
}

/// Make the shim the reaper of orphans below it, chdir to `/`, and point stdio at /dev/null.
pub fn prepare_process() -> Result<(), DaemonError> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r != 0 {
        return Err(DaemonError::Subreaper(Errno::last()));
    }
    let _ = std::env::set_current_dir("/");
    let null = crate::sys::dev_null().map_err(DaemonError::Stdio)?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard fds; `null` stays valid for the call.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(DaemonError::Stdio(io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Write the single ready line to fd 3 and close it. Returns false only when nobody reads
/// fd 3 any more (EPIPE): the berthd that asked for this shim died before it learned of it.
pub fn send_ready(fd: Option<OwnedFd>, line: &serde_json::Value) -> bool {
    let Some(fd) = fd else {
        return true;
    };
    let mut f = std::fs::File::from(fd);
    let mut text = line.to_string();
    text.push('\n');
    !matches!(f.write_all(text.as_bytes()), Err(e) if e.kind() == io::ErrorKind::BrokenPipe)
}
