//! `run` in the foreground and `exec` without `--detach`: wait for the process, forward the
//! usual terminal/termination signals to it, and pass its exit status through (128+signal
//! when killed).

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::RuntimeError;
use crate::container::{self, CreateOptions};

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// `run`: create, start, and (unless detached) wait, then delete unless `keep`.
pub fn run(opts: CreateOptions, detach: bool, keep: bool) -> Result<i32, RuntimeError> {
    let root = opts.root.clone();
    let id = opts.id.clone();
    let mut c = container::create(opts)?;
    // Block the forwarded signals now that the init exists (it must not inherit the mask).
    let sfd = if detach { None } else { Some(block_signals()?) };
    if let Err(e) = c.start() {
        let _ = container::delete(&root, &id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_with(c.pid(), c.pidfd(), sfd);
    crate::timing::mark("run: exited");
    if !keep {
        container::delete(&root, &id, true)?;
    }
    crate::timing::mark("run: deleted");
    code
}

/// Wait for our child `pid`, forwarding signals.
pub fn wait_forwarding(pid: i32, pidfd: Option<BorrowedFd<'_>>) -> Result<i32, RuntimeError> {
    let sfd = block_signals()?;
    wait_with(pid, pidfd, Some(sfd))
}

fn block_signals() -> Result<SignalFd, RuntimeError> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| RuntimeError::io("blocking signals", e.into()))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| RuntimeError::io("signalfd", e.into()))
}

fn wait_with(
    pid: i32,
    pidfd: Option<BorrowedFd<'_>>,
    sfd: Option<SignalFd>,
) -> Result<i32, RuntimeError> {
    if let (Some(pidfd), Some(sfd)) = (pidfd, sfd) {
        loop {
            let mut fds = [
                nix::poll::PollFd::new(pidfd, nix::poll::PollFlags::POLLIN),
                nix::poll::PollFd::new(sfd.as_fd(), nix::poll::PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(RuntimeError::io("poll", e.into())),
                Ok(_) => {}
            }
            let exited = fds[0].revents().is_some_and(|r| !r.is_empty());
            let signalled = fds[1].revents().is_some_and(|r| !r.is_empty());
            if signalled && let Ok(Some(info)) = sfd.read_signal() {
                // SAFETY: kill on our own child's pid (it is unreaped, so not reused).
                unsafe { libc::kill(pid, info.ssi_signo as i32) };
            }
            if exited {
                break;
            }
        }
    }
    crate::container::wait_status(pid)
}
