//! The typed parent/child sync channel: a unix stream socketpair carrying length-prefixed JSON
//! messages (a stream, not seqpacket, so a large state JSON for hooks never hits a datagram
//! size limit). Each step of the handshake has its own message, and `expect` reports "expected X,
//! got Y"; a failing child sends [`Msg::Error`] with its cause before exiting, so the parent
//! shows the cause rather than a bare EOF.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::{Deserialize, Serialize};

/// Largest message accepted (a sanity bound; state JSON with big annotations fits).
const MAX_MSG: usize = 64 * 1024 * 1024;

/// One handshake step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Parent → child: cgroup placement and id maps are done, go on.
    Continue,
    /// Child → parent: namespaces and mounts are ready; run prestart/createRuntime hooks.
    RunRuntimeHooks,
    /// Parent → child: hooks done; the state JSON (status `creating`) for createContainer hooks.
    HooksDone {
        /// State JSON for the init's own hooks.
        state_json: String,
    },
    /// Child → parent: the init is set up and waits for `start`.
    Ready,
    /// Either side: the step failed; the text is the cause.
    Error(String),
    /// `start` → init: go; the state JSON (status `created`) for startContainer hooks.
    Start {
        /// State JSON for startContainer hooks.
        state_json: String,
    },
}

impl Msg {
    fn name(&self) -> &'static str {
        match self {
            Msg::Continue => "continue",
            Msg::RunRuntimeHooks => "run-runtime-hooks",
            Msg::HooksDone { .. } => "hooks-done",
            Msg::Ready => "ready",
            Msg::Error(_) => "error",
            Msg::Start { .. } => "start",
        }
    }
}

/// Errors on the channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// socketpair/send/recv failed.
    #[error("sync channel {step}")]
    Io {
        /// What we were doing.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The peer closed without a message (it exited or exec'd).
    #[error("peer closed the sync channel while we waited for {expected}")]
    Closed {
        /// The step we waited for.
        expected: &'static str,
    },
    /// The peer reported a failure.
    #[error("{0}")]
    Peer(String),
    /// The peer sent a different step.
    #[error("sync channel: expected {expected}, got {got}")]
    Unexpected {
        /// What we waited for.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// A packet did not decode.
    #[error("sync channel: bad message")]
    Decode(#[source] serde_json::Error),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair (parent end, child end), both close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| ChannelError::Io {
            step: "socketpair",
            source: e.into(),
        })?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Wrap an already connected seqpacket/stream socket.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel { fd }
    }

    /// Send one message.
    pub fn send(&self, msg: &Msg) -> Result<(), ChannelError> {
        let body = serde_json::to_vec(msg).map_err(ChannelError::Decode)?;
        let mut buf = (body.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&body);
        let mut off = 0;
        while off < buf.len() {
            match rustix::net::send(&self.fd, &buf[off..], rustix::net::SendFlags::NOSIGNAL) {
                Ok(n) => off += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(ChannelError::Io {
                        step: "send",
                        source: e.into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Read exactly `buf.len()` bytes; `Ok(false)` on EOF before the first byte.
    fn read_exact(&self, buf: &mut [u8]) -> Result<bool, ChannelError> {
        let mut off = 0;
        while off < buf.len() {
            match rustix::net::recv(&self.fd, &mut buf[off..], rustix::net::RecvFlags::empty()) {
                Ok((0, _)) if off == 0 => return Ok(false),
                Ok((0, _)) => {
                    return Err(ChannelError::Io {
                        step: "recv",
                        source: io::Error::new(io::ErrorKind::UnexpectedEof, "truncated message"),
                    });
                }
                Ok((n, _)) => off += n,
                Err(rustix::io::Errno::INTR) => continue,
                // A peer that exits with unread data makes the socket report a reset.
                Err(rustix::io::Errno::CONNRESET) if off == 0 => return Ok(false),
                Err(e) => {
                    return Err(ChannelError::Io {
                        step: "recv",
                        source: e.into(),
                    });
                }
            }
        }
        Ok(true)
    }

    /// Receive one message; `Ok(None)` on EOF.
    pub fn recv(&self) -> Result<Option<Msg>, ChannelError> {
        let mut len = [0u8; 4];
        if !self.read_exact(&mut len)? {
            return Ok(None);
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_MSG {
            return Err(ChannelError::Io {
                step: "recv",
                source: io::Error::new(io::ErrorKind::InvalidData, "message too large"),
            });
        }
        let mut body = vec![0u8; len];
        if !self.read_exact(&mut body)? {
            return Err(ChannelError::Closed {
                expected: "message body",
            });
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(ChannelError::Decode)
    }

    /// Wait for a message of the kind `expected` names; errors from the peer come back as
    /// [`ChannelError::Peer`].
    pub fn expect(
        &self,
        expected: &'static str,
        pred: impl Fn(&Msg) -> bool,
    ) -> Result<Msg, ChannelError> {
        match self.recv()? {
            None => Err(ChannelError::Closed { expected }),
            Some(Msg::Error(text)) => Err(ChannelError::Peer(text)),
            Some(m) if pred(&m) => Ok(m),
            Some(m) => Err(ChannelError::Unexpected {
                expected,
                got: m.name(),
            }),
        }
    }

    /// Wait for the peer to close its end (it exec'd: the fd was close-on-exec); an error
    /// message instead is returned as [`ChannelError::Peer`].
    pub fn wait_closed(&self) -> Result<(), ChannelError> {
        match self.recv()? {
            None => Ok(()),
            Some(Msg::Error(text)) => Err(ChannelError::Peer(text)),
            Some(m) => Err(ChannelError::Unexpected {
                expected: "exec",
                got: m.name(),
            }),
        }
    }

    /// Raw fd number (to keep it across `close_range`).
    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Consume into the fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&Msg::Continue).unwrap();
        assert_eq!(
            b.expect("continue", |m| *m == Msg::Continue).unwrap(),
            Msg::Continue
        );
        a.send(&Msg::Ready).unwrap();
        let e = b.expect("continue", |m| *m == Msg::Continue).unwrap_err();
        assert!(
            e.to_string().contains("expected continue, got ready"),
            "{e}"
        );
        a.send(&Msg::Error("mount failed".into())).unwrap();
        assert_eq!(b.wait_closed().unwrap_err().to_string(), "mount failed");
        // Larger than any socket buffer: the stream framing carries it whole.
        let big = "x".repeat(1 << 20);
        let sent = big.clone();
        let t = std::thread::spawn(move || {
            a.send(&Msg::Start { state_json: sent }).unwrap();
        });
        assert_eq!(b.recv().unwrap(), Some(Msg::Start { state_json: big }));
        t.join().unwrap();
        assert!(matches!(
            b.expect("ready", |_| true),
            Err(ChannelError::Closed { .. })
        ));
    }
}
