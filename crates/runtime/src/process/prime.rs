//! Overlap the cgroup attach lock's RCU grace period with the rest of `create`/`exec`, for the
//! cases that still place the init by writing its pid to `cgroup.procs` (a user-namespaced
//! init, or no `CLONE_INTO_CGROUP`). Otherwise the init places itself without the lock
//! (`cgroups::SelfJoin`) and no primer is started.
//!
//! On cgroup v1 the first write to any `cgroup.procs` after a fork takes the global
//! `cgroup_threadgroup_rwsem` for writing, and a percpu rwsem's writer must first wait for an
//! RCU grace period: 10-17 ms on this machine, more than everything else `run` does. Once a
//! writer has passed it, later writers within the next grace period are fast. So `create`
//! starts a throwaway child at its very beginning that "moves" itself into the cgroup it is
//! already in (a no-op that still takes the lock); the grace period then elapses while the
//! runtime parses the spec, writes state and clones the init, and the real placement of the
//! init finds the lock primed. Failures are ignored: this only changes timing, never results.

use std::io::Write;

/// The throwaway child; reap it with [`Primer::reap`].
#[derive(Debug)]
pub struct Primer {
    pid: Option<i32>,
}

/// The calling process's cgroup.procs on a v2 (or hybrid "unified") hierarchy.
fn own_procs_file() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let rel = path.trim_start_matches('/');
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(|base| std::path::Path::new(base).join(rel).join("cgroup.procs"))
        .find(|p| p.exists())
}

/// Start the primer (see the module docs).
pub fn start() -> Primer {
    let Some(procs) = own_procs_file() else {
        return Primer { pid: None };
    };
    // SAFETY: the runtime is single-threaded; the child only writes one file and `_exit`s.
    match unsafe { libc::fork() } {
        0 => {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&procs) {
                let _ = f.write_all(b"0");
            }
            // SAFETY: leave without running the parent's destructors or atexit handlers.
            unsafe { libc::_exit(0) }
        }
        pid if pid > 0 => Primer { pid: Some(pid) },
        _ => Primer { pid: None },
    }
}

impl Primer {
    /// Wait for the primer to finish (it has, or is about to, once the init is placed).
    pub fn reap(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SAFETY: waitpid on our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        }
    }
}

impl Drop for Primer {
    fn drop(&mut self) {
        self.reap();
    }
}
