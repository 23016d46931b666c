//! `kill`, `pause`, `resume`, `ps`, `list`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::{Container, load, manager};
use crate::RuntimeError;
use crate::process::clone::pidfd_open;
use crate::state::{self, State, Status};

/// A pidfd on the container's init, checked against the recorded start time so a reused pid
/// is never signalled.
pub(crate) fn init_pidfd(c: &Container) -> Result<OwnedFd, RuntimeError> {
    let not_running = || RuntimeError::InvalidStatus {
        id: c.id().to_string(),
        status: Status::Stopped,
        op: "signal",
    };
    let fd = pidfd_open(c.pid()).map_err(|_| not_running())?;
    if !state::init_alive(&c.record) {
        return Err(not_running());
    }
    Ok(fd)
}

/// Send `signal` to `pidfd`.
pub(crate) fn pidfd_signal(pidfd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Send `signal` to the init, or with `all` to every process in the container's cgroup.
pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
    let c = load(root, id)?;
    let status = c.status();
    if status == Status::Stopped && !all {
        return Err(RuntimeError::InvalidStatus {
            id: id.to_string(),
            status,
            op: "kill",
        });
    }
    if all && let Some(cg) = manager(&c.record.cgroup_path)? {
        cg.kill_all(signal)?;
        return Ok(());
    }
    let fd = init_pidfd(&c)?;
    pidfd_signal(&fd, signal).map_err(|e| RuntimeError::io(format!("signalling {id}"), e))
}

/// Freeze the container's cgroup.
pub fn pause(root: &Path, id: &str) -> Result<(), RuntimeError> {
    let mut c = load(root, id)?;
    let status = c.status();
    if status != Status::Running {
        return Err(RuntimeError::InvalidStatus {
            id: id.to_string(),
            status,
            op: "pause",
        });
    }
    let cg = manager(&c.record.cgroup_path)?
        .ok_or_else(|| RuntimeError::Unsupported("pause needs the cgroup manager".into()))?;
    cg.freeze()?;
    c.record.paused = true;
    c.dir.write_record(&c.record)?;
    Ok(())
}

/// Thaw the container's cgroup.
pub fn resume(root: &Path, id: &str) -> Result<(), RuntimeError> {
    let mut c = load(root, id)?;
    let status = c.status();
    if status != Status::Paused {
        return Err(RuntimeError::InvalidStatus {
            id: id.to_string(),
            status,
            op: "resume",
        });
    }
    let cg = manager(&c.record.cgroup_path)?
        .ok_or_else(|| RuntimeError::Unsupported("resume needs the cgroup manager".into()))?;
    cg.thaw()?;
    c.record.paused = false;
    c.dir.write_record(&c.record)?;
    Ok(())
}

/// Host pids of every process in the container's cgroup.
pub fn ps(root: &Path, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let c = load(root, id)?;
    match manager(&c.record.cgroup_path)? {
        Some(cg) => Ok(cg.pids()?),
        None if state::init_alive(&c.record) => Ok(vec![c.pid()]),
        None => Ok(Vec::new()),
    }
}

/// Every container under `root`, sorted by id (unreadable entries are skipped).
pub fn list(root: &Path) -> Result<Vec<State>, RuntimeError> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(format!("reading {}", root.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str() else { continue };
        if let Ok(c) = load(root, id) {
            out.push(c.state());
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
