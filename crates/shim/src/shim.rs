//! The shim's single poll(2) loop: container output → log + attach clients, attach stdin →
//! container, control requests, SIGCHLD → reaping. Nothing here ever blocks on a peer.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::args::Args;
use crate::files;
use crate::log::{JsonLog, Stream};
use crate::proc::{Proc, STDIN_CAP};
use crate::proto;
use crate::runtime::Runtime;
use crate::sys::{self, SysError};

/// Bytes kept per attach client that reads slower than the container writes; more is dropped
/// (the log is never held up by a client).
pub const CLIENT_CAP: usize = 1024 * 1024;
/// Longest request line accepted.
const MAX_REQUEST: usize = 1024 * 1024;
/// How long an exited container's shim waits for a client before exiting on its own.
pub const IDLE_AFTER_EXIT: Duration = Duration::from_secs(300);

/// Why the loop stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("event loop")]
    Poll(#[source] SysError),
}

/// Lifecycle state reported by `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Which process a client is about: the init (`None`) or an exec (its [`Exec::key`]).
pub type Target = Option<u64>;

/// Exit codes of forgotten execs kept for a late `exec_wait`.
const DONE_EXECS_KEPT: usize = 256;

/// An exec'd process.
pub struct Exec {
    /// Stable key (never reused), also names its scratch files.
    pub key: u64,
    /// berthd's exec id.
    pub id: String,
    pub proc: Proc,
    /// An `exec_wait` got the exit code.
    pub waited: bool,
    pub exited: Option<Instant>,
}

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

/// The exit status as berthd reads it from the `exit` file.
#[derive(Debug, Clone)]
pub struct ExitInfo {
    pub code: i32,
    pub at: String,
    pub oom_killed: bool,
}

/// Everything the shim owns.
pub struct Shim {
    pub args: Args,
    pub rt: Runtime,
    pub log: Option<JsonLog>,
    pub sig: OwnedFd,
    pub listener: UnixListener,
    /// The state dir, held open for socket paths longer than `sun_path`.
    pub sock_dir: crate::sockpath::SockDir,
    pub init: Proc,
    pub execs: Vec<Exec>,
    /// Execs already forgotten: (exec id, exit code), oldest first.
    pub done_execs: std::collections::VecDeque<(String, i32)>,
    pub next_exec_key: u64,
    pub clients: Vec<Client>,
    pub status: Status,
    pub exit: Option<ExitInfo>,
    pub oom_file: Option<PathBuf>,
    pub quit: bool,
    /// When the shim last had a client (or the init exited): start of the idle countdown.
    pub idle_since: Instant,
    buf: Box<[u8]>,
}

#[derive(Clone, Copy)]
enum Tok {
    Sig,
    Listen,
    Client(usize),
    Out(Target, usize),
    Stdin(Target),
}

impl Shim {
    /// Assemble a shim around an already created init.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        args: Args,
        rt: Runtime,
        log: Option<JsonLog>,
        sig: OwnedFd,
        listener: UnixListener,
        sock_dir: crate::sockpath::SockDir,
        init: Proc,
        oom_file: Option<PathBuf>,
    ) -> Shim {
        Shim {
            args,
            rt,
            log,
            sig,
            listener,
            sock_dir,
            init,
            execs: Vec::new(),
            done_execs: std::collections::VecDeque::new(),
            next_exec_key: 0,
            clients: Vec::new(),
            status: Status::Created,
            exit: None,
            oom_file,
            quit: false,
            idle_since: Instant::now(),
            buf: vec![0u8; 32 * 1024].into_boxed_slice(),
        }
    }

    pub fn proc_mut(&mut self, t: Target) -> Option<&mut Proc> {
        match t {
            None => Some(&mut self.init),
            Some(k) => self
                .execs
                .iter_mut()
                .find(|e| e.key == k)
                .map(|e| &mut e.proc),
        }
    }

    pub fn proc_ref(&self, t: Target) -> Option<&Proc> {
        match t {
            None => Some(&self.init),
            Some(k) => self.execs.iter().find(|e| e.key == k).map(|e| &e.proc),
        }
    }

    /// Run until `delete`/`shutdown` or the idle timeout after the exit.
    pub fn run(&mut self) -> Result<(), ShimError> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut toks: Vec<Tok> = Vec::new();
        while !self.quit {
            fds.clear();
            toks.clear();
            let mut add = |fd: RawFd, events: i16, t: Tok| {
                fds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
                toks.push(t);
            };
            add(self.sig.as_raw_fd(), libc::POLLIN, Tok::Sig);
            add(self.listener.as_raw_fd(), libc::POLLIN, Tok::Listen);
            let procs = std::iter::once((None, &self.init))
                .chain(self.execs.iter().map(|e| (Some(e.key), &e.proc)));
            for (t, p) in procs {
                for (j, o) in p.outs.iter().enumerate() {
                    if let Some(fd) = &o.fd {
                        add(fd.as_raw_fd(), libc::POLLIN, Tok::Out(t, j));
                    }
                }
                if let Some(fd) = &p.stdin
                    && !p.stdin_buf.is_empty()
                {
                    add(fd.as_raw_fd(), libc::POLLOUT, Tok::Stdin(t));
                }
            }
            for (i, c) in self.clients.iter().enumerate() {
                let mut ev = 0;
                if !c.read_closed && !self.client_stdin_full(c) {
                    ev |= libc::POLLIN;
                }
                if !c.wbuf.is_empty() {
                    ev |= libc::POLLOUT;
                }
                add(c.sock.as_raw_fd(), ev, Tok::Client(i));
            }
            sys::poll(&mut fds, self.timeout_ms()).map_err(ShimError::Poll)?;
            for (pfd, tok) in fds.iter().zip(toks.iter()) {
                if pfd.revents == 0 {
                    continue;
                }
                match *tok {
                    Tok::Sig => self.on_sigchld(),
                    Tok::Listen => self.accept(),
                    Tok::Out(t, j) => {
                        self.read_output(t, j);
                    }
                    Tok::Stdin(t) => self.flush_stdin(t),
                    Tok::Client(i) => self.on_client(i, pfd.revents),
                }
            }
            self.housekeeping();
        }
        // Best effort: the last responses are small and fit in the socket buffers.
        for c in &mut self.clients {
            c.flush();
        }
        // No one may connect to a shim that is gone; the exit and pid files stay.
        let _ = std::fs::remove_file(self.args.state_dir.join("shim.sock"));
        let _ = std::fs::remove_file(self.args.state_dir.join("shim.pid"));
        Ok(())
    }

    fn client_stdin_full(&self, c: &Client) -> bool {
        match c.kind {
            Kind::Attach {
                target,
                stdin: true,
                ..
            } => self
                .proc_ref(target)
                .is_some_and(|p| p.stdin_buf.len() >= STDIN_CAP),
            _ => false,
        }
    }

    fn timeout_ms(&self) -> i32 {
        if self.exit.is_none() || !self.clients.is_empty() {
            return -1;
        }
        let left = IDLE_AFTER_EXIT.saturating_sub(self.idle_since.elapsed());
        i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1)
    }

    fn housekeeping(&mut self) {
        // Attach clients of finished processes are closed once their output is flushed.
        for i in 0..self.clients.len() {
            if let Kind::Attach { target, .. } = self.clients[i].kind
                && self.proc_ref(target).is_none_or(|p| p.finished())
                && !self.clients[i].closing
            {
                self.clients[i].closing = true;
                self.clients[i].flush();
            }
        }
        // A control client that half-closed is closed once everything it asked is answered.
        for c in &mut self.clients {
            if c.read_closed && matches!(c.kind, Kind::Control) && !c.closing {
                c.closing = true;
                c.flush();
            }
        }
        self.forget_execs();
        let before = self.clients.len();
        self.clients.retain(|c| !c.dead);
        if before > 0 && self.clients.is_empty() {
            self.idle_since = Instant::now();
        }
        if self.exit.is_some()
            && self.clients.is_empty()
            && self.idle_since.elapsed() >= IDLE_AFTER_EXIT
        {
            // Nobody came for the exit: clean the runtime's state (cgroups) like `delete`
            // would, since no one else will; the exit file stays for berthd.
            let _ = self.rt.delete(&self.args.id);
            self.quit = true;
        }
    }

    /// Drop finished execs nobody needs any more (Docker health checks exec every few seconds
    /// for the container's whole life): exited, output drained, no client on it, and either
    /// waited for or exited longer than [`IDLE_AFTER_EXIT`] ago. Their exit codes stay
    /// available to `exec_wait` in `done_execs`.
    fn forget_execs(&mut self) {
        let clients = &self.clients;
        let in_use = |key: u64| {
            clients.iter().any(|c| match c.kind {
                Kind::Wait(t) | Kind::Attach { target: t, .. } => t == Some(key),
                Kind::Control => false,
            })
        };
        let mut i = 0;
        while i < self.execs.len() {
            let e = &self.execs[i];
            let old = e.exited.is_some_and(|t| t.elapsed() >= IDLE_AFTER_EXIT);
            if e.proc.finished() && (e.waited || old) && !in_use(e.key) {
                let e = self.execs.swap_remove(i);
                if let Some((code, _)) = e.proc.exit {
                    if self.done_execs.len() >= DONE_EXECS_KEPT {
                        self.done_execs.pop_front();
                    }
                    self.done_execs.push_back((e.id, code));
                }
            } else {
                i += 1;
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    let _ = sock.set_nonblocking(true);
                    self.clients.push(Client {
                        sock,
                        rbuf: Vec::new(),
                        wbuf: Vec::new(),
                        kind: Kind::Control,
                        read_closed: false,
                        closing: false,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock, or EMFILE and friends: try again on the next wake-up.
                Err(_) => break,
            }
        }
    }

    fn on_sigchld(&mut self) {
        sys::drain(self.sig.as_fd());
        for r in sys::reap_all() {
            if r.pid == self.init.pid && self.init.exit.is_none() {
                self.on_init_exit(r.status);
            } else if let Some(e) = self
                .execs
                .iter_mut()
                .find(|e| e.proc.pid == r.pid && e.proc.exit.is_none())
            {
                e.proc.exit = Some((r.status, files::now_rfc3339_nano()));
                e.exited = Some(Instant::now());
                // Nobody reads stdin or needs a resize any more.
                e.proc.stdin = None;
                e.proc.stdin_buf = Vec::new();
                e.proc.master = None;
                let key = Some(e.key);
                self.drain_outputs(key);
                self.answer_waits(key);
            }
        }
    }

    /// Record the init's end (reaped here or, after a failed start, by the runtime).
    pub fn record_init_exit(&mut self, status: i32) {
        if self.init.exit.is_none() {
            self.on_init_exit(status);
        }
    }

    fn on_init_exit(&mut self, status: i32) {
        let at = files::now_rfc3339_nano();
        self.init.exit = Some((status, at.clone()));
        // What the container wrote before exiting belongs in the log before anyone hears of
        // the exit (berthd reads logs right after wait).
        self.drain_outputs(None);
        let oom_killed = crate::oom::oom_kills(&self.oom_file) > 0;
        let info = ExitInfo {
            code: status,
            at,
            oom_killed,
        };
        let body = json!({"exit_code": info.code, "exited_at": info.at, "oom_killed": oom_killed});
        // The exit file is written before any wait is answered; a failure to write it leaves
        // berthd with only the live answer, which is all we can do.
        let _ = files::write_atomic(
            &self.args.state_dir.join("exit"),
            body.to_string().as_bytes(),
        );
        self.exit = Some(info);
        self.status = Status::Stopped;
        self.init.stdin = None;
        self.init.stdin_buf = Vec::new();
        self.init.master = None;
        self.idle_since = Instant::now();
        self.answer_waits(None);
    }

    fn answer_waits(&mut self, t: Target) {
        let Some((code, at)) = self.proc_ref(t).and_then(|p| p.exit.clone()) else {
            return;
        };
        let resp = match t {
            None => proto::ok(json!({"exit_code": code, "exited_at": at})),
            Some(_) => proto::ok(json!({"exit_code": code})),
        };
        let mut answered = false;
        for c in &mut self.clients {
            if matches!(c.kind, Kind::Wait(w) if w == t) {
                c.queue(&resp);
                c.kind = Kind::Control;
                c.flush();
                answered = true;
            }
        }
        if answered
            && let Some(k) = t
            && let Some(e) = self.execs.iter_mut().find(|e| e.key == k)
        {
            e.waited = true;
        }
        // Pipelined requests sent behind the wait are served now.
        for i in 0..self.clients.len() {
            self.process_lines(i);
        }
    }

    /// Read whatever output is available now without blocking (used at exit).
    fn drain_outputs(&mut self, t: Target) {
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
    fn read_output(&mut self, t: Target, j: usize) -> bool {
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

    fn on_output_eof(&mut self, t: Target, j: usize, stream: Stream) {
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
    fn deliver(&mut self, t: Target, stream: Stream, data: &[u8]) {
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

    fn flush_stdin(&mut self, t: Target) {
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

    fn on_client(&mut self, i: usize, revents: i16) {
        if revents & libc::POLLOUT != 0 {
            self.clients[i].flush();
        }
        if revents & libc::POLLIN != 0 {
            self.read_client(i);
        } else if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            self.clients[i].dead = true;
        }
    }

    fn read_client(&mut self, i: usize) {
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

    fn on_client_eof(&mut self, i: usize) {
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

    pub fn stdin_data(&mut self, t: Target, data: &[u8]) {
        if let Some(p) = self.proc_mut(t)
            && p.stdin.is_some()
        {
            p.stdin_buf.extend_from_slice(data);
            self.flush_stdin(t);
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

/// Docker's stdcopy header: stream byte, three zero bytes, big-endian payload length.
pub fn frame_header(stream: Stream, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}
