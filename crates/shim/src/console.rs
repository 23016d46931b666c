//! Receiving a pty master over runc's `--console-socket` protocol: the runtime connects to a
//! unix socket we listen on and sends the master with SCM_RIGHTS.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

/// Why no pty master arrived.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("listen on console socket {path}")]
    Listen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the runtime did not connect to the console socket")]
    NoConnection(#[source] io::Error),
    #[error("receive the pty master")]
    Recv(#[source] Errno),
    #[error("the runtime sent no file descriptor over the console socket")]
    NoFd,
}

/// A listening console socket; removed from disk on drop.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Listen at `path` (a stale socket file from an earlier run is replaced).
    pub fn bind(path: &Path) -> Result<ConsoleSocket, ConsoleError> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|source| ConsoleError::Listen {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        })
    }

    /// The path to hand to the runtime.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the master the runtime sent. Called after the runtime's create/exec returned, so the
    /// connection is already queued; non-blocking to never hang the shim on a broken runtime.
    pub fn receive(&self) -> Result<OwnedFd, ConsoleError> {
        self.listener
            .set_nonblocking(true)
            .map_err(ConsoleError::NoConnection)?;
        let (conn, _) = self.listener.accept().map_err(ConsoleError::NoConnection)?;
        let mut buf = [0u8; 512];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(ConsoleError::Recv)?;
        let mut master = None;
        for c in msg.cmsgs().map_err(ConsoleError::Recv)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: the kernel just installed this fd in our table for us alone.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    if master.is_none() {
                        master = Some(owned);
                    }
                }
            }
        }
        master.ok_or(ConsoleError::NoFd)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
