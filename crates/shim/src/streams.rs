//! Process output and input: container stdout/stderr (or the pty) to the json log and to attach
//! clients, attach stdin to the process.

use std::io;
use std::os::fd::AsRawFd;

use crate::client::{Kind, frame_header};
use crate::log::Stream;
use crate::shim::{Shim, Target};
use crate::sys;

impl Shim {
    /// Read whatever output is available now without blocking (used at exit).
    pub(crate) fn drain_outputs(&mut self, t: Target) {
        let n = self.proc_ref(t).map_or(0, |p| p.outs.len());
        for j in 0..n {
            for _ in 0..1024 {
                let open = self
                    .proc_ref(t)
                    .and_then(|p| p.outs.get(j))
                    .is_some_and(|o| o.fd.is_some());
                if !open || !self.read_output(t, j) {
                    break;
                }
            }
        }
    }

    /// Read one chunk from an output; false when nothing more is available now.
    pub(crate) fn read_output(&mut self, t: Target, j: usize) -> bool {
        let Some(p) = self.proc_ref(t) else {
            return false;
        };
        let Some(out) = p.outs.get(j) else {
            return false;
        };
        let Some(fd) = &out.fd else { return false };
        let stream = out.stream;
        let raw = fd.as_raw_fd();
        let mut buf = std::mem::take(&mut self.buf);
        let more = match sys::read(raw, &mut buf) {
            Ok(0) => {
                self.on_output_eof(t, j, stream);
                false
            }
            Ok(n) => {
                self.deliver(t, stream, &buf[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            // EIO on a pty master: every slave is closed; same as EOF.
            Err(_) => {
                self.on_output_eof(t, j, stream);
                false
            }
        };
        self.buf = buf;
        more
    }

    pub(crate) fn on_output_eof(&mut self, t: Target, j: usize, stream: Stream) {
        if let Some(p) = self.proc_mut(t)
            && let Some(o) = p.outs.get_mut(j)
        {
            o.fd = None;
        }
        if t.is_none()
            && let Some(log) = &mut self.log
        {
            let _ = log.flush_stream(stream);
        }
    }

    /// Output of a process: to the log (init only) and to every attach client that wants it.
    pub(crate) fn deliver(&mut self, t: Target, stream: Stream, data: &[u8]) {
        if t.is_none()
            && let Some(log) = &mut self.log
        {
            // A full disk must not stop the container; the line is lost like with Docker.
            let _ = log.write(stream, data);
        }
        let tty = self.proc_ref(t).is_some_and(|p| p.tty);
        let mut any = false;
        for c in &mut self.clients {
            if let Kind::Attach {
                target,
                stdout,
                stderr,
                ..
            } = c.kind
                && target == t
            {
                any = true;
                let wants = match stream {
                    Stream::Stdout => stdout,
                    Stream::Stderr => stderr,
                };
                if !wants {
                    continue;
                }
                if !tty {
                    c.queue(&frame_header(stream, data.len()));
                }
                c.queue(data);
                c.flush();
            }
        }
        if !any && let Some(p) = self.proc_mut(t) {
            p.keep_backlog(stream, data);
        }
    }

    pub(crate) fn flush_stdin(&mut self, t: Target) {
        let Some(p) = self.proc_mut(t) else { return };
        while let Some(fd) = &p.stdin {
            if p.stdin_buf.is_empty() {
                break;
            }
            match sys::write(fd.as_raw_fd(), &p.stdin_buf, false) {
                Ok(n) => {
                    p.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EPIPE: the process closed its stdin; the rest is discarded.
                Err(_) => {
                    p.stdin = None;
                    p.stdin_buf = Vec::new();
                }
            }
        }
        if p.stdin_buf.is_empty() && p.stdin_close && !p.tty {
            p.stdin = None;
        }
        if p.stdin_buf.capacity() > 64 * 1024 && p.stdin_buf.is_empty() {
            p.stdin_buf = Vec::new();
        }
    }

    /// Attach stdin for a process: buffered (capped by backpressure) and written when possible.
    pub fn stdin_data(&mut self, t: Target, data: &[u8]) {
        if let Some(p) = self.proc_mut(t)
            && p.stdin.is_some()
        {
            p.stdin_buf.extend_from_slice(data);
            self.flush_stdin(t);
        }
    }
}
