//! `delete`: remove a stopped container (or, with force, stop it first), running poststop
//! hooks and removing its cgroup and state dir. A non-stopped container without force is an
//! error that changes nothing.

use std::os::fd::AsFd;
use std::path::Path;

use super::ops::{init_pidfd, pidfd_signal};
use super::{hook_state, load, manager, stored_spec};
use crate::RuntimeError;
use crate::hooks::{self, Kind};
use crate::state::Status;

/// How long a forced delete waits for SIGKILL to take effect.
const KILL_WAIT_MS: i32 = 10_000;

/// Delete a container.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), RuntimeError> {
    crate::state::validate_id(id)?;
    let c = match load(root, id) {
        Ok(c) => c,
        // A dir without state.json: a create that died before its first write. Nothing runs
        // and nothing else was made; remove the dir so the id is usable again. The same for an
        // unparsable record: state.json is renamed into place whole, so only a power cut (the
        // record is not fsynced) leaves one, and that killed whatever it described.
        Err(RuntimeError::State(
            crate::state::StateError::NotFound(_) | crate::state::StateError::Parse { .. },
        )) if root.join(id).is_dir() => {
            return std::fs::remove_dir_all(root.join(id))
                .map_err(|e| RuntimeError::io(format!("removing {}", root.join(id).display()), e));
        }
        Err(e) => return Err(e),
    };
    let status = c.status();
    if status != Status::Stopped {
        if !force {
            return Err(RuntimeError::InvalidStatus {
                id: id.to_string(),
                status,
                op: "delete without --force",
            });
        }
        let cg = manager(&c.record.cgroup_path)?;
        if let Ok(fd) = init_pidfd(&c) {
            if let Some(cg) = &cg {
                if status == Status::Paused {
                    let _ = cg.thaw();
                }
                let _ = cg.kill_all(libc::SIGKILL);
            }
            let _ = pidfd_signal(&fd, libc::SIGKILL);
            wait_exit(&fd);
            // Reap it if it is our child (run, shim); otherwise its parent does.
            // SAFETY: waitpid with WNOHANG on a pid; harmless if not our child.
            unsafe { libc::waitpid(c.pid(), std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
    if let Ok(spec) = stored_spec(&c.dir) {
        hooks::run_all_warn(
            Kind::Poststop,
            &hooks::of(&spec, Kind::Poststop),
            &hook_state(&c.record, Status::Stopped),
        );
    }
    let mut errors = Vec::new();
    if let Some(cg) = manager(&c.record.cgroup_path)?
        && let Err(cg_err) = cg.destroy()
    {
        errors.push(RuntimeError::from(cg_err));
    }
    if let Err(e) = c.dir.remove() {
        errors.push(e.into());
    }
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn wait_exit(fd: &std::os::fd::OwnedFd) {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout =
        nix::poll::PollTimeout::try_from(KILL_WAIT_MS).unwrap_or(nix::poll::PollTimeout::MAX);
    while let Err(nix::Error::EINTR) = nix::poll::poll(&mut fds, timeout) {}
}
