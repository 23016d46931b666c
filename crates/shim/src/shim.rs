//! The shim's single poll(2) loop: container output → log + attach clients, attach stdin →
//! container, control requests, SIGCHLD → reaping. Nothing here ever blocks on a peer.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::args::Args;
use crate::client::{Client, Kind};
use crate::files;
use crate::log::JsonLog;
use crate::proc::{Proc, STDIN_CAP};
use crate::proto;
use crate::runtime::Runtime;
use crate::sys::{self, SysError};

/// Idle time after create/start/exec before shedding their memory (see `Shim::shed_due`).
const SHED_AFTER_IDLE_MS: i32 = 50;
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
    /// Memory that create or exec needed is to be given back ([`berth_runtime::mem::shed`]) once the
    /// shim has been idle for [`SHED_AFTER_IDLE_MS`]: not on the path of the reply, nor of a
    /// short-lived container's whole life.
    pub shed_due: bool,
    pub(crate) buf: Box<[u8]>,
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
            shed_due: true,
            buf: vec![0u8; 32 * 1024].into_boxed_slice(),
        }
    }

    /// The process a client targets (None: an exec that is gone).
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

    /// Shared view of [`Shim::proc_mut`].
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
            let timeout = match (self.shed_due, self.timeout_ms()) {
                (false, t) => t,
                (true, -1) => SHED_AFTER_IDLE_MS,
                (true, t) => t.min(SHED_AFTER_IDLE_MS),
            };
            sys::poll(&mut fds, timeout).map_err(ShimError::Poll)?;
            if self.shed_due && fds.iter().all(|f| f.revents == 0) {
                self.shed_due = false;
                berth_runtime::mem::shed();
            }
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
}
