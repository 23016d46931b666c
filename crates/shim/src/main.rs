//! berth-shim: per-container parent process that outlives berthd.
//!
//! One small process per container (no tokio, no threads; one poll(2) loop): it creates the
//! container through the runtime, is the only parent of its init, holds its stdio, writes the
//! json-file log, serves attach/exec/wait on `STATE_DIR/shim.sock`, and records the exit status
//! on disk so a berthd that was down finds it. The wire contract is `PROTOCOL.md`.

// Tests may unwrap (PREAMBLE: no unwrap on input or I/O paths of the shim itself).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod args;
mod client;
mod console;
mod daemon;
mod files;
mod log;
mod oom;
mod ops;
mod proc;
mod proto;
mod runtime;
mod shim;
mod sockpath;
mod spare;
mod streams;
mod sys;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use serde_json::json;

use crate::args::Args;
use crate::proc::Pending;
use crate::runtime::{CreateRequest, Runtime};

/// Why the shim could not get the container to the "created" state.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("create state dir {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signals")]
    Signals(#[source] sys::SysError),
    #[error("listen on {path}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open the container log")]
    Log(#[source] log::LogError),
    #[error("container stdio")]
    Stdio(#[source] proc::ProcError),
    #[error("create container")]
    Create(#[source] runtime::RuntimeError),
    #[error("write {0}")]
    StateFile(&'static str, #[source] files::FilesError),
}

impl SetupError {
    fn exit_code(&self) -> i32 {
        match self {
            SetupError::Create(e) => e.exit_code(),
            _ => 125,
        }
    }
}

fn main() {
    // CVE-2019-5736: the container's init and exec'd processes are forked from this process,
    // and until they execve, /proc/<pid>/exe is this binary. Re-exec from a view of it they
    // cannot write (fd 3, the ready pipe, is inherited across the re-exec).
    berth_runtime::timing::mark("shim: main");
    let sealed = berth_runtime::seal::ensure_sealed();
    berth_runtime::timing::mark("shim: sealed");
    // fd 3 first, before anything else can be given that number.
    let ready = sys::inherited_fd(3);
    if let Err(e) = sealed {
        let msg = format!("sealing berth-shim against CVE-2019-5736: {e}");
        eprintln!("berth-shim: {msg}");
        daemon::send_ready(ready, &json!({"ok": false, "error": msg, "exit_code": 125}));
        std::process::exit(125);
    }
    let spare = std::env::args_os().nth(1).is_some_and(|a| a == spare::FLAG);
    let argv: Vec<std::ffi::OsString> = if spare {
        // Detach and settle now, while nobody waits; then wait for a container to serve.
        if let Err(e) = daemon::daemonize().and_then(|()| daemon::prepare_process()) {
            let msg = ops::error_chain(&e);
            daemon::send_ready(ready, &json!({"ok": false, "error": msg, "exit_code": 125}));
            std::process::exit(125);
        }
        match spare::wait_for_args() {
            Some(a) => {
                let program = std::env::args_os().next().unwrap_or_default();
                spare::retitle(&program, &a);
                a
            }
            None => std::process::exit(0),
        }
    } else {
        std::env::args_os().skip(1).collect()
    };
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            daemon::send_ready(
                ready,
                &json!({"ok": false, "error": e.to_string(), "exit_code": 125}),
            );
            std::process::exit(125);
        }
    };
    if !spare
        && !args.foreground
        && let Err(e) = daemon::daemonize()
    {
        let msg = ops::error_chain(&e);
        daemon::send_ready(ready, &json!({"ok": false, "error": msg, "exit_code": 125}));
        std::process::exit(125);
    }
    if !spare && let Err(e) = daemon::prepare_process() {
        let msg = ops::error_chain(&e);
        daemon::send_ready(ready, &json!({"ok": false, "error": msg, "exit_code": 125}));
        std::process::exit(125);
    }
    let mut shim = match setup(args) {
        Ok(s) => s,
        Err(e) => {
            let msg = ops::error_chain(&e);
            daemon::send_ready(
                ready,
                &json!({"ok": false, "error": msg, "exit_code": e.exit_code()}),
            );
            std::process::exit(1);
        }
    };
    berth_runtime::timing::mark("shim: created");
    let told = daemon::send_ready(
        ready,
        &json!({"ok": true, "shim_pid": std::process::id(), "pid": shim.init.pid}),
    );
    if !told {
        // berthd died while starting this container and never recorded it: no one will start
        // or delete it (a restarted berthd may have looked before the socket existed). Leave
        // nothing behind: kill and reap the created init, delete the runtime state, go.
        abandon(&mut shim);
        std::process::exit(1);
    }
    let code = match shim.run() {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code);
}

/// Undo a created container nobody will ever ask about.
fn abandon(shim: &mut shim::Shim) {
    let pid = nix::unistd::Pid::from_raw(shim.init.pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    let _ = shim.rt.delete(&shim.args.id);
    for f in ["shim.sock", "shim.pid"] {
        let _ = std::fs::remove_file(shim.args.state_dir.join(f));
    }
}

/// Socket, log, stdio, create; on error nothing is left running.
fn setup(args: Args) -> Result<shim::Shim, SetupError> {
    let dir = args.state_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| SetupError::StateDir {
        path: dir.clone(),
        source,
    })?;
    let sig: OwnedFd = sys::install_signals().map_err(SetupError::Signals)?;
    let sock_dir = sockpath::SockDir::open(&dir).map_err(|source| SetupError::StateDir {
        path: dir.clone(),
        source,
    })?;
    let sock_path = sock_dir.sock_path("shim.sock");
    let _ = std::fs::remove_file(&sock_path);
    let listener = UnixListener::bind(&sock_path).map_err(|source| SetupError::Listen {
        path: sock_path.clone(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| SetupError::Listen {
            path: sock_path.clone(),
            source,
        })?;
    let log = log::JsonLog::open(&args.log_path, args.log_max_size, args.log_max_files)
        .map_err(SetupError::Log)?;
    let mut rt = Runtime::new(&args.runtime_root, args.runtime_binary.as_deref());
    let mut pending = Pending::new(
        args.terminal,
        args.stdin,
        &sock_dir.sock_path("console.sock"),
    )
    .map_err(SetupError::Stdio)?;
    let console = pending.console.as_ref().map(|c| c.path().to_path_buf());
    let pid_file = dir.join("runtime.pid");
    berth_runtime::timing::mark("shim: setup done, creating");
    let created = rt.create(CreateRequest {
        id: &args.id,
        bundle: &args.bundle,
        console_socket: console.as_deref(),
        pid_file: &pid_file,
        stdio: pending.for_runtime.take(),
    });
    let pid = match created {
        Ok(pid) => pid,
        Err(e) => {
            let _ = std::fs::remove_file(&sock_path);
            return Err(SetupError::Create(e));
        }
    };
    let _ = std::fs::remove_file(&pid_file);
    let cleanup = |rt: &mut Runtime| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = rt.delete(&args.id);
        let _ = std::fs::remove_file(&sock_path);
    };
    let init = match pending.finish(pid, false) {
        Ok(p) => p,
        Err(e) => {
            cleanup(&mut rt);
            return Err(SetupError::Stdio(e));
        }
    };
    let oom_file = oom::counter_file(pid);
    let write = |name: &'static str, data: String| {
        files::write_atomic(&dir.join(name), data.as_bytes())
            .map_err(|e| SetupError::StateFile(name, e))
    };
    if let Err(e) = write("pid", pid.to_string())
        .and_then(|()| write("shim.pid", std::process::id().to_string()))
    {
        cleanup(&mut rt);
        return Err(e);
    }
    Ok(shim::Shim::new(
        args,
        rt,
        Some(log),
        sig,
        listener,
        sock_dir,
        init,
        oom_file,
    ))
}
