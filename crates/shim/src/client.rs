//! Connections on shim.sock: request lines, waiters, attach streams. Reading requests and
//! attach stdin; writes are non-blocking with a per-client buffer so no client holds up the shim.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::log::Stream;
use crate::proto;
use crate::shim::{Shim, Target};
use crate::sys;

/// Bytes kept per attach client that reads slower than the container writes; more is dropped
/// (the log is never held up by a client).
pub const CLIENT_CAP: usize = 1024 * 1024;
/// Longest request line accepted.
const MAX_REQUEST: usize = 1024 * 1024;

/// What a connection is doing.
pub enum Kind {
    /// Sending request lines.
    Control,
    /// Waiting for a process to exit (`wait` / `exec_wait`).
    Wait(Target),
    /// A raw attach stream.
    Attach {
        target: Target,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
}

/// One connection on shim.sock.
pub struct Client {
    pub sock: UnixStream,
    pub rbuf: Vec<u8>,
    pub wbuf: Vec<u8>,
    pub kind: Kind,
    /// The peer half-closed (no more reads).
    pub read_closed: bool,
    /// Close once `wbuf` is flushed.
    pub closing: bool,
    pub dead: bool,
}

impl Client {
    /// Queue bytes, dropping them if the client is too far behind.
    pub fn queue(&mut self, data: &[u8]) {
        if self.wbuf.len() + data.len() <= CLIENT_CAP {
            self.wbuf.extend_from_slice(data);
        }
    }

    /// Write as much of `wbuf` as the socket takes now.
    pub fn flush(&mut self) {
        while !self.wbuf.is_empty() && !self.dead {
            match sys::write(self.sock.as_raw_fd(), &self.wbuf, true) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EPIPE, ECONNRESET, ...: the client is gone; never fatal for the shim.
                Err(_) => self.dead = true,
            }
        }
        if self.wbuf.is_empty() {
            if self.wbuf.capacity() > 64 * 1024 {
                self.wbuf = Vec::new();
            }
            if self.closing && !self.dead {
                let _ = self.sock.shutdown(std::net::Shutdown::Both);
                self.dead = true;
            }
        }
    }
}

/// Docker's stdcopy header: stream byte, three zero bytes, big-endian payload length.
pub fn frame_header(stream: Stream, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

impl Shim {
    pub(crate) fn on_client(&mut self, i: usize, revents: i16) {
        if revents & libc::POLLOUT != 0 {
            self.clients[i].flush();
        }
        if revents & libc::POLLIN != 0 {
            self.read_client(i);
        } else if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            self.clients[i].dead = true;
        }
    }

    pub(crate) fn read_client(&mut self, i: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        let r = sys::read(self.clients[i].sock.as_raw_fd(), &mut buf);
        match r {
            Ok(0) => self.on_client_eof(i),
            Ok(n) => match self.clients[i].kind {
                Kind::Attach { target, stdin, .. } => {
                    if stdin {
                        self.stdin_data(target, &buf[..n]);
                    }
                }
                _ => {
                    let c = &mut self.clients[i];
                    c.rbuf.extend_from_slice(&buf[..n]);
                    if c.rbuf.len() > MAX_REQUEST {
                        c.rbuf = Vec::new();
                        c.queue(&proto::err("request line too long", None));
                        c.closing = true;
                        c.read_closed = true;
                        c.flush();
                    } else {
                        self.process_lines(i);
                    }
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => self.clients[i].dead = true,
        }
        self.buf = buf;
    }

    pub(crate) fn on_client_eof(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.read_closed = true;
        match c.kind {
            Kind::Attach {
                target,
                stdin: true,
                ..
            } => {
                if let Some(p) = self.proc_mut(target) {
                    p.stdin_close = true;
                }
                self.flush_stdin(target);
            }
            Kind::Attach { .. } => {}
            Kind::Control => {
                // Serve what was sent, then close once answered.
                self.process_lines(i);
                let c = &mut self.clients[i];
                if matches!(c.kind, Kind::Control) {
                    c.closing = true;
                    c.flush();
                }
            }
            // A waiter that half-closed still gets its answer.
            Kind::Wait(_) => {}
        }
    }

    /// Handle every complete request line of a control client.
    pub fn process_lines(&mut self, i: usize) {
        loop {
            let c = &mut self.clients[i];
            if !matches!(c.kind, Kind::Control) || c.dead {
                return;
            }
            let Some(nl) = c.rbuf.iter().position(|&b| b == b'\n') else {
                return;
            };
            let line: Vec<u8> = c.rbuf.drain(..=nl).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let resp = match proto::parse(line) {
                Ok(req) => self.handle(i, req),
                Err(e) => Some(proto::err(&e, None)),
            };
            let c = &mut self.clients[i];
            if let Some(resp) = resp {
                c.queue(&resp);
            }
            if let Kind::Attach { stdin, target, .. } = c.kind {
                // Bytes after the attach line are already stdin.
                let rest = std::mem::take(&mut c.rbuf);
                c.flush();
                if stdin && !rest.is_empty() {
                    self.stdin_data(target, &rest);
                }
                return;
            }
            c.flush();
        }
    }
}
