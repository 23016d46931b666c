//! `--console-socket`: the container's pty, handed to the caller as runc does.
//!
//! The init (or exec'd process) opens `/dev/ptmx` of the container's own devpts instance (after
//! its mounts), makes the slave its controlling terminal and stdio, and sends the master over
//! the unix socket with SCM_RIGHTS; the payload is the pty name, as in runc's `utils.SendFd`.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Errors setting up or handing over the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Connecting to the console socket failed.
    #[error("connecting to console socket {path}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// A pty step failed.
    #[error("console: {step}")]
    Pty {
        /// What failed.
        step: &'static str,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// `process.terminal` is true but no console socket was given.
    #[error("process.terminal is true: --console-socket is required")]
    NoSocket,
}

/// Connect to the caller's console socket (in the runtime's mount namespace, before clone).
pub fn connect(path: &Path) -> Result<OwnedFd, ConsoleError> {
    let s = UnixStream::connect(path).map_err(|source| ConsoleError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(s.into())
}

fn pty(step: &'static str) -> impl FnOnce(nix::Error) -> ConsoleError {
    move |e| ConsoleError::Pty {
        step,
        source: e.into(),
    }
}

/// In the container: open a pty, make the slave the controlling terminal and stdio, send the
/// master over `socket`. `size` is (rows, cols) from `process.consoleSize`.
pub fn setup_pty(socket: RawFd, size: Option<(u16, u16)>) -> Result<(), ConsoleError> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(pty("opening /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(pty("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(pty("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(pty("ptsname"))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct we own.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(pty("opening pty slave"))?;
    nix::unistd::setsid().map_err(pty("setsid"))?;
    // SAFETY: TIOCSCTTY takes an int argument; the fd is a tty we opened.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(ConsoleError::Pty {
            step: "TIOCSCTTY",
            source: io::Error::last_os_error(),
        });
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the stdio numbers; both fds are valid.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(ConsoleError::Pty {
                step: "dup2 pty slave",
                source: io::Error::last_os_error(),
            });
        }
    }
    drop(slave);
    // SAFETY: `socket` is the console socket fd the runtime kept open for us.
    let sock = unsafe { BorrowedFd::borrow_raw(socket) };
    send_fd(sock, name.as_bytes(), master.as_raw_fd())
}

/// Send `fd` with `payload` over a unix socket (SCM_RIGHTS).
pub fn send_fd(sock: BorrowedFd<'_>, payload: &[u8], fd: RawFd) -> Result<(), ConsoleError> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(|e| {
        ConsoleError::Pty {
            step: "sending pty master",
            source: e.into(),
        }
    })?;
    Ok(())
}

/// Receive one fd sent with [`send_fd`] (for callers acting as the console socket).
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<(OwnedFd, Vec<u8>)> {
    let mut buf = vec![0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let n = msg.bytes;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            got = fds.first().copied();
        }
    }
    let fd = got.ok_or_else(|| io::Error::other("no fd in console socket message"))?;
    buf.truncate(n);
    // SAFETY: the kernel installed this fd for us via SCM_RIGHTS.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, buf))
}
