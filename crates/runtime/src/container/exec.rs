//! `exec`: run another process in a running container. The child is cloned while the
//! caller's pid_for_children points at the container's pid namespace (so it is a direct child
//! of the caller and inside the container's pid ns), placed in the container's cgroup, then
//! joins every other namespace of the init at once via `setns(pidfd)` and finishes like the
//! init (user, caps, seccomp, rlimits, cwd, fd hygiene).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use super::ops::init_pidfd;
use super::{load, manager, stored_spec, write_pid_file};
use crate::RuntimeError;
use crate::process::channel::{Channel, ChannelError, Msg};
use crate::process::clone::{self, Child};
use crate::process::finish::{FinishOptions, finish_and_exec};
use crate::process::namespaces::{self, PidForChildren};
use crate::process::socket;
use crate::state::Status;

/// Options for [`exec`].
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// stdin, stdout, stderr; `None` inherits the caller's.
    pub stdio: Option<[OwnedFd; 3]>,
    /// Socket for the pty master when `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// Write the process's host pid here.
    pub pid_file: Option<PathBuf>,
    /// fds 3..3+n survive into the process.
    pub preserve_fds: u32,
    /// The caller will not wait for the process (`exec -d`). The library never waits either
    /// way ([`ExecProcess::wait`] is the caller's choice); kept so callers can pass it through.
    pub detach: bool,
}

/// A process started by [`exec`], a direct child of the caller.
#[derive(Debug)]
pub struct ExecProcess {
    pid: i32,
    pidfd: Option<OwnedFd>,
}

impl ExecProcess {
    /// Host pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A pidfd on the process.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// Wait for the process; its exit code, or 128+signal when killed.
    pub fn wait(&self) -> Result<i32, RuntimeError> {
        wait_status(self.pid)
    }
}

/// waitpid for a child: exit code, or 128+signal.
pub fn wait_status(pid: i32) -> Result<i32, RuntimeError> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(RuntimeError::io(format!("waiting for pid {pid}"), e));
        }
        if libc::WIFEXITED(status) {
            return Ok(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(128 + libc::WTERMSIG(status));
        }
    }
}

/// Start `process` inside container `id`; returns once it has exec'd.
pub fn exec(
    root: &Path,
    id: &str,
    process: &Process,
    opts: ExecOptions,
) -> Result<ExecProcess, RuntimeError> {
    let c = load(root, id)?;
    let status = c.status();
    if !matches!(status, Status::Running | Status::Created) {
        return Err(RuntimeError::InvalidStatus {
            id: id.to_string(),
            status,
            op: "exec",
        });
    }
    let spec = stored_spec(&c.dir)?;
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::security::seccomp::program(
            s,
            Some(&super::create::seccomp_cache(root)),
        )?),
        None => None,
    };
    let terminal = process.terminal().unwrap_or(false);
    let min_fd = 3 + opts.preserve_fds as i32;
    let io_err = |step: &'static str| move |e| RuntimeError::io(step, e);
    let console = match (&opts.console_socket, terminal) {
        (Some(p), true) => Some(
            socket::fd_above(crate::console::connect(p)?, min_fd).map_err(io_err("moving fd"))?,
        ),
        (None, true) => return Err(crate::console::ConsoleError::NoSocket.into()),
        _ => None,
    };
    let init = socket::fd_above(init_pidfd(&c)?, min_fd).map_err(io_err("moving fd"))?;
    let ns_flags = namespaces::differing(c.pid());
    let (parent_ch, child_ch) = Channel::pair()?;
    let child_ch = Channel::from_fd(
        socket::fd_above(child_ch.into_fd(), min_fd).map_err(io_err("moving fd"))?,
    );
    // Like create: the new process enters the cgroup at clone (cgroup2) and by moving itself
    // (v1 `tasks`, through fds opened here), not through the global attach lock's grace period.
    let cg = manager(&c.record.cgroup_path)?;
    let mut join = match &cg {
        Some(cg) if rustix::process::geteuid().is_root() => {
            open_self_join(&cg.self_join(), min_fd).ok()
        }
        _ => None,
    };
    let mut primer = join.is_none().then(crate::process::prime::start);
    let pid_guard = if ns_flags & libc::CLONE_NEWPID as u64 != 0 {
        Some(PidForChildren::enter(&init)?)
    } else {
        None
    };
    let forked = match join.as_ref().and_then(|(_, dir)| dir.as_ref()) {
        Some(dir) => clone::fork_into(0, Some(dir.as_fd())).or_else(|_| {
            join = None;
            primer = Some(crate::process::prime::start());
            clone::fork_with_namespaces(0)
        }),
        None => clone::fork_with_namespaces(0),
    }
    .map_err(|e| RuntimeError::io("clone3", e))?;
    let Some(Child { pid, pidfd }) = forked else {
        drop(parent_ch);
        let stdio = opts.stdio;
        let tasks = join.map(|(tasks, _)| tasks).unwrap_or_default();
        clone::run_child(|| {
            child_main(
                tasks,
                &child_ch,
                &init,
                ns_flags & !(libc::CLONE_NEWPID as u64),
                process,
                filter.as_ref(),
                console.as_ref().map(|c| c.as_raw_fd()),
                stdio,
                opts.preserve_fds,
            )
        });
    };
    drop(pid_guard);
    drop((child_ch, console, opts.stdio));
    let result = (|| -> Result<(), RuntimeError> {
        if join.is_none()
            && let Some(cg) = &cg
        {
            if let Some(p) = primer.as_mut() {
                p.reap();
            }
            cg.apply(pid)?;
        }
        parent_ch.send(&Msg::Continue)?;
        parent_ch.wait_closed().map_err(|e| match e {
            ChannelError::Peer(message) => RuntimeError::ExecFailed {
                message,
                code: wait_status(pid).unwrap_or(1),
            },
            other => other.into(),
        })
    })();
    if let Err(e) = result {
        // An exec failure already reaped the child; anything else: stop and reap it.
        if !matches!(e, RuntimeError::ExecFailed { .. }) {
            // SAFETY: kill/waitpid on our own, unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        return Err(e);
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(ExecProcess { pid, pidfd })
}

/// The v1 `tasks` files (opened for writing, moved above the preserved fds) and the cgroup2
/// dir of a [`crate::cgroups::SelfJoin`].
fn open_self_join(
    join: &crate::cgroups::SelfJoin,
    min_fd: i32,
) -> std::io::Result<(Vec<OwnedFd>, Option<OwnedFd>)> {
    let tasks = join
        .tasks
        .iter()
        .map(|p| {
            let f = std::fs::OpenOptions::new().write(true).open(p)?;
            socket::fd_above(f.into(), min_fd)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let dir = match &join.clone_into {
        Some(d) => Some(socket::fd_above(
            rustix::fs::open(
                d,
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?,
            min_fd,
        )?),
        None => None,
    };
    Ok((tasks, dir))
}

#[allow(clippy::too_many_arguments)]
fn child_main(
    tasks: Vec<OwnedFd>,
    ch: &Channel,
    init: &OwnedFd,
    ns_flags: u64,
    process: &Process,
    filter: Option<&crate::security::seccomp::Program>,
    console: Option<i32>,
    stdio: Option<[OwnedFd; 3]>,
    preserve_fds: u32,
) -> i32 {
    clone::set_name("berth:exec");
    let fail = |text: String| {
        let _ = ch.send(&Msg::Error(text));
        1
    };
    // Enter the container's v1 cgroups first thing: a single thread moving itself (`0`).
    for fd in tasks {
        if let Err(e) = rustix::io::write(&fd, b"0") {
            return fail(format!("joining the container's cgroup: {e}"));
        }
    }
    if let Some(fds) = stdio
        && let Err(e) = socket::install_stdio(fds)
    {
        return fail(format!("installing stdio: {e}"));
    }
    if let Err(e) = ch.expect("continue", |m| *m == Msg::Continue) {
        return fail(e.to_string());
    }
    if let Err(e) = namespaces::setns_pidfd(init, ns_flags) {
        return fail(crate::error_chain(&e));
    }
    if let Some(sock) = console {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        if let Err(e) = crate::console::setup_pty(sock, size) {
            return fail(crate::error_chain(&e));
        }
    }
    let f = finish_and_exec(&FinishOptions {
        process,
        seccomp: filter,
        preserve_fds,
        set_oom_score: false,
    });
    let _ = ch.send(&Msg::Error(f.message));
    f.code
}
