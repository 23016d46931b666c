//! One supervised process (the container init or an exec): its stdio ends held by the shim,
//! its pty master, and its exit status once reaped.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::console::{ConsoleError, ConsoleSocket};
use crate::log::Stream;
use crate::runtime::StdioFds;
use crate::sys::{self, SysError};

/// Most bytes of stdin kept for a container that does not read; attach clients wait beyond it.
pub const STDIN_CAP: usize = 256 * 1024;
/// Most exec output kept until the first attach client of that exec arrives.
pub const BACKLOG_CAP: usize = 64 * 1024;

/// Why the stdio of a process could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("create stdio pipes")]
    Pipe(#[source] SysError),
    #[error("open /dev/null for stdin")]
    DevNull(#[source] std::io::Error),
    #[error("console socket")]
    Console(#[source] ConsoleError),
    #[error("duplicate pty master")]
    Dup(#[source] std::io::Error),
}

/// A readable output end (pipe or pty master).
pub struct Out {
    pub fd: Option<OwnedFd>,
    pub stream: Stream,
}

/// A process the shim is the parent of.
pub struct Proc {
    pub pid: i32,
    pub tty: bool,
    /// Where attach stdin goes (pipe write end, or a dup of the pty master).
    pub stdin: Option<OwnedFd>,
    pub stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written (an attach client half-closed).
    pub stdin_close: bool,
    pub outs: Vec<Out>,
    /// The pty master for resize.
    pub master: Option<OwnedFd>,
    /// Docker exit status and RFC 3339 time, once reaped.
    pub exit: Option<(i32, String)>,
    /// Output kept for the first attach client (exec only; None once someone attached).
    pub backlog: Option<Vec<(Stream, Vec<u8>)>>,
}

impl Proc {
    /// All output ends reached EOF.
    pub fn drained(&self) -> bool {
        self.outs.iter().all(|o| o.fd.is_none())
    }

    /// Exited and all output read: attach clients can be closed.
    pub fn finished(&self) -> bool {
        self.exit.is_some() && self.drained()
    }

    /// Keep output for a later first attach client, up to [`BACKLOG_CAP`].
    pub fn keep_backlog(&mut self, stream: Stream, data: &[u8]) {
        if let Some(b) = &mut self.backlog {
            let used: usize = b.iter().map(|(_, d)| d.len()).sum();
            let take = data.len().min(BACKLOG_CAP.saturating_sub(used));
            if take > 0 {
                b.push((stream, data[..take].to_vec()));
            }
        }
    }
}

/// The stdio being prepared for a create/exec: what goes to the runtime, and what the shim keeps.
pub struct Pending {
    pub for_runtime: Option<StdioFds>,
    pub console: Option<ConsoleSocket>,
    stdin: Option<OwnedFd>,
    outs: Vec<Out>,
    tty: bool,
    want_stdin: bool,
}

impl Pending {
    /// Pipes for stdin (if `want_stdin`), stdout and stderr, or a console socket at
    /// `console_path` when `tty`.
    pub fn new(tty: bool, want_stdin: bool, console_path: &Path) -> Result<Pending, ProcError> {
        if tty {
            let console = ConsoleSocket::bind(console_path).map_err(ProcError::Console)?;
            return Ok(Pending {
                for_runtime: None,
                console: Some(console),
                stdin: None,
                outs: Vec::new(),
                tty,
                want_stdin,
            });
        }
        let (stdin_theirs, stdin_ours) = if want_stdin {
            let (r, w) = sys::pipe_cloexec().map_err(ProcError::Pipe)?;
            sys::set_nonblocking(w.as_raw_fd());
            (r, Some(w))
        } else {
            (sys::dev_null().map_err(ProcError::DevNull)?, None)
        };
        let (out_r, out_w) = sys::pipe_cloexec().map_err(ProcError::Pipe)?;
        let (err_r, err_w) = sys::pipe_cloexec().map_err(ProcError::Pipe)?;
        sys::set_nonblocking(out_r.as_raw_fd());
        sys::set_nonblocking(err_r.as_raw_fd());
        Ok(Pending {
            for_runtime: Some([stdin_theirs, out_w, err_w]),
            console: None,
            stdin: stdin_ours,
            outs: vec![
                Out {
                    fd: Some(out_r),
                    stream: Stream::Stdout,
                },
                Out {
                    fd: Some(err_r),
                    stream: Stream::Stderr,
                },
            ],
            tty,
            want_stdin,
        })
    }

    /// The runtime created the process: collect the pty master (if any) and build the [`Proc`].
    pub fn finish(mut self, pid: i32, exec: bool) -> Result<Proc, ProcError> {
        // Our copies of the container's ends must be gone, or EOF never comes.
        self.for_runtime = None;
        let mut master = None;
        if let Some(console) = self.console.take() {
            let m = console.receive().map_err(ProcError::Console)?;
            sys::set_nonblocking(m.as_raw_fd());
            let out = m.try_clone().map_err(ProcError::Dup)?;
            if self.want_stdin {
                self.stdin = Some(m.try_clone().map_err(ProcError::Dup)?);
            }
            self.outs = vec![Out {
                fd: Some(out),
                stream: Stream::Stdout,
            }];
            master = Some(m);
        }
        Ok(Proc {
            pid,
            tty: self.tty,
            stdin: self.stdin,
            stdin_buf: Vec::new(),
            stdin_close: false,
            outs: self.outs,
            master,
            exit: None,
            backlog: if exec { Some(Vec::new()) } else { None },
        })
    }
}
