//! Thin, safe wrappers over the few syscalls the event loop needs: SIGCHLD self-pipe, poll(2),
//! non-blocking reads/writes, pipes and reaping.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

/// Why a syscall wrapper failed.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("create pipe")]
    Pipe(#[source] Errno),
    #[error("install signal handler for {0}")]
    Signal(Signal, #[source] Errno),
    #[error("poll")]
    Poll(#[source] io::Error),
}

/// Write end of the SIGCHLD self-pipe, used by the async-signal-safe handler.
static SIGCHLD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a valid 1-byte local. A full pipe
        // (EAGAIN) is fine: a wake-up is already pending. errno is saved and restored.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, (&b as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// Install the SIGCHLD handler (self-pipe, so the signal mask of children is untouched, unlike
/// signalfd which needs SIGCHLD blocked) and ignore SIGPIPE (EPIPE is handled per write).
/// Returns the read end to poll.
pub fn install_signals() -> Result<OwnedFd, SysError> {
    reset_signal_state();
    let (rd, wr) = pipe_cloexec()?;
    set_nonblocking(rd.as_raw_fd());
    set_nonblocking(wr.as_raw_fd());
    // The write end lives for the whole process: the handler may run at any time.
    let wr_raw = std::os::fd::IntoRawFd::into_raw_fd(wr);
    SIGCHLD_PIPE.store(wr_raw, Ordering::Relaxed);
    let act = SigAction::new(
        SigHandler::Handler(on_sigchld),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handler only calls write(2) on an fd stored before installation.
    unsafe { sigaction(Signal::SIGCHLD, &act) }
        .map_err(|e| SysError::Signal(Signal::SIGCHLD, e))?;
    set_sigpipe(SigHandler::SigIgn)?;
    Ok(rd)
}

/// Give every signal its default disposition and unblock all signals. Ignored dispositions and
/// the mask survive execve, so whatever the spawner left (glibc's posix_spawn leaves its
/// internal signal 32 ignored, and cargo/tokio spawn that way) would reach the container.
/// glibc's sigaction refuses its internal signals, hence the raw syscall.
pub fn reset_signal_state() {
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid kernel-layout struct, no old-action pointer and
        // the kernel's sigset size (8); SIG_DFL runs no code in this process.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
}

/// Set SIGPIPE's disposition. An ignored SIGPIPE is inherited across execve, so the in-process
/// runtime call restores the default around its fork (see `runtime`).
pub fn set_sigpipe(h: SigHandler) -> Result<(), SysError> {
    let act = SigAction::new(h, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN/SIG_DFL are not Rust handlers; nothing unsafe runs in signal context.
    unsafe { sigaction(Signal::SIGPIPE, &act) }
        .map_err(|e| SysError::Signal(Signal::SIGPIPE, e))?;
    Ok(())
}

/// Drain the self-pipe after a wake-up.
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 64];
    while let Ok(n) = read(fd.as_raw_fd(), &mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// A child's end: its pid and Docker's exit status (code, or 128+signal).
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub pid: i32,
    pub status: i32,
}

/// Reap every exited child (the shim is a subreaper: orphans of the container land here too).
pub fn reap_all() -> Vec<Reaped> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push(Reaped {
                pid: pid.as_raw(),
                status: code,
            }),
            Ok(WaitStatus::Signaled(pid, sig, _)) => out.push(Reaped {
                pid: pid.as_raw(),
                status: 128 + sig as i32,
            }),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    out
}

/// A pipe with O_CLOEXEC on both ends.
pub fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd), SysError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SysError::Pipe)
}

/// Put `fd` in non-blocking mode (the shim never blocks on a client or a container).
pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd we own with plain integer flags; errors leave the fd as it was.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// read(2) into `buf`.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` writable bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// write(2) for pipes and ptys, send(2) with MSG_NOSIGNAL for sockets.
pub fn write(fd: RawFd, buf: &[u8], socket: bool) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` readable bytes.
    let n = unsafe {
        if socket {
            libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
        } else {
            libc::write(fd, buf.as_ptr().cast(), buf.len())
        }
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// poll(2) over `fds`; `timeout_ms` < 0 waits forever. EINTR counts as "nothing ready".
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<(), SysError> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            for f in fds.iter_mut() {
                f.revents = 0;
            }
            return Ok(());
        }
        return Err(SysError::Poll(e));
    }
    Ok(())
}

/// Set the window size of a pty (TIOCSWINSZ on the master).
pub fn set_winsize(fd: RawFd, height: u16, width: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the valid pointer.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Open /dev/null read-write (stdin of a container without `--stdin`).
pub fn dev_null() -> io::Result<OwnedFd> {
    Ok(OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    ))
}

/// Take ownership of an inherited fd number if it is open.
pub fn inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only queries; a closed fd gives -1.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the fd is open and nothing else in this process owns it (it was inherited).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain flag set on an fd we now own; the ready pipe must not leak into containers.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(owned)
}
