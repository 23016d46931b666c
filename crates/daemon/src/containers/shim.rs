//! berthd's side of the shim contract (SHIM_PROTOCOL.md): spawning `berth-shim` with its
//! ready pipe on fd 3, and one-line JSON requests on `STATE_DIR/shim.sock`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Errors talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// Creating the ready pipe failed.
    #[error("creating the shim ready pipe")]
    Pipe(#[source] std::io::Error),
    /// exec of berth-shim failed.
    #[error("starting {binary}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The shim exited or closed fd 3 without a ready line.
    #[error("shim exited before reporting ready")]
    NoReady,
    /// Connecting to or talking over shim.sock failed.
    #[error("talking to the shim at {path}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The shim answered something that is not the contract's JSON.
    #[error("bad shim response {0:?}")]
    BadResponse(String),
    /// The shim reported a failure.
    #[error("{message}")]
    Failed {
        /// The shim's message.
        message: String,
        /// 125/126/127 when the shim classified the failure.
        exit_code: Option<i64>,
    },
}

/// The shim's ready line.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    /// The long-lived shim's pid.
    pub shim_pid: i64,
    /// The container init's pid.
    pub pid: i64,
}

/// Arguments for one shim.
#[derive(Debug, Clone)]
pub struct SpawnArgs<'a> {
    /// berth-shim binary.
    pub binary: &'a Path,
    /// Container id.
    pub id: &'a str,
    /// Bundle dir (config.json).
    pub bundle: &'a Path,
    /// exec-root/<id>.
    pub state_dir: &'a Path,
    /// exec-root/runtime.
    pub runtime_root: &'a Path,
    /// json-file log path.
    pub log_path: &'a Path,
    /// Allocate a TTY.
    pub terminal: bool,
    /// Keep stdin open.
    pub stdin: bool,
    /// json-file rotation: bytes per file.
    pub log_max_size: Option<u64>,
    /// json-file rotation: files kept.
    pub log_max_files: Option<u32>,
    /// An external runc-compatible runtime instead of the shim's in-process berth_runtime
    /// (the shim's `--runtime-binary` extension of the contract).
    pub runtime_binary: Option<&'a Path>,
    /// `binary` through the daemon's sealed view, when there is one.
    pub sealed: Option<&'a berth_runtime::seal::SealedBinary>,
}

/// Spawns the shim and waits for its ready line.
pub async fn spawn(args: SpawnArgs<'_>) -> Result<Ready, ShimError> {
    let (read_end, write_end): (OwnedFd, OwnedFd) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| ShimError::Pipe(e.into()))?;
    let mut cmd = match args.sealed {
        Some(view) => tokio::process::Command::from(view.command()),
        None => tokio::process::Command::new(args.binary),
    };
    cmd.arg("--id")
        .arg(args.id)
        .arg("--bundle")
        .arg(args.bundle)
        .arg("--state-dir")
        .arg(args.state_dir)
        .arg("--runtime-root")
        .arg(args.runtime_root)
        .arg("--log-path")
        .arg(args.log_path);
    if args.terminal {
        cmd.arg("--terminal");
    }
    if args.stdin {
        cmd.arg("--stdin");
    }
    if let Some(n) = args.log_max_size {
        cmd.arg("--log-max-size").arg(n.to_string());
        cmd.arg("--log-max-files")
            .arg(args.log_max_files.unwrap_or(1).to_string());
    }
    if let Some(rt) = args.runtime_binary {
        cmd.arg("--runtime-binary").arg(rt);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let fd = write_end.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls dup2/fcntl,
    // which are async-signal-safe; it touches no memory shared with other threads.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| ShimError::Spawn {
        binary: args.binary.to_owned(),
        source,
    })?;
    drop(write_end);
    // The shim double-forks; reap the intermediate whenever it exits.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let mut rx =
        tokio::net::unix::pipe::Receiver::from_owned_fd(read_end).map_err(ShimError::Pipe)?;
    // Read one line only: a process that inherited the write end must not delay us.
    let mut buf = Vec::new();
    let mut byte = [0u8; 256];
    loop {
        let n = rx.read(&mut byte).await.map_err(ShimError::Pipe)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&byte[..n]);
        if buf.contains(&b'\n') || buf.len() > 1 << 16 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().ok_or(ShimError::NoReady)?;
    let v: Value =
        serde_json::from_str(line).map_err(|_| ShimError::BadResponse(line.to_owned()))?;
    let v = check_ok(v)?;
    Ok(Ready {
        shim_pid: v.get("shim_pid").and_then(Value::as_i64).unwrap_or(0),
        pid: v.get("pid").and_then(Value::as_i64).unwrap_or(0),
    })
}

fn check_ok(v: Value) -> Result<Value, ShimError> {
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(v);
    }
    let message = v
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("shim reported an unspecified error")
        .to_owned();
    Err(ShimError::Failed {
        message,
        exit_code: v.get("exit_code").and_then(Value::as_i64),
    })
}

/// Connects to a shim socket, going through `/proc/self/fd` when the path is longer than
/// `sun_path` allows (temp data roots in tests).
pub async fn connect(sock: &Path) -> Result<UnixStream, ShimError> {
    let io = |source| ShimError::Io {
        path: sock.to_owned(),
        source,
    };
    if sock.as_os_str().len() < 100 {
        return UnixStream::connect(sock).await.map_err(io);
    }
    let dir = sock.parent().unwrap_or(Path::new("/"));
    let name = sock.file_name().unwrap_or_default();
    let dirfd = std::fs::File::open(dir).map_err(io)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dirfd.as_raw_fd())).join(name);
    let s = UnixStream::connect(&short).await.map_err(io);
    drop(dirfd);
    s
}

/// Reads one `\n`-terminated line byte by byte, so nothing after it is consumed (attach
/// switches the same connection to a raw stream right after the response line).
async fn read_line_exact(stream: &mut UnixStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = stream.read(&mut b).await?;
        if n == 0 || b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
        if out.len() > 1 << 20 {
            return Err(std::io::Error::other("shim response line too long"));
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One request → one response on a fresh connection.
pub async fn call(sock: &Path, req: Value) -> Result<Value, ShimError> {
    let mut s = connect(sock).await?;
    let io = |source| ShimError::Io {
        path: sock.to_owned(),
        source,
    };
    let mut line = req.to_string();
    line.push('\n');
    s.write_all(line.as_bytes()).await.map_err(io)?;
    let mut r = BufReader::new(s);
    let mut resp = String::new();
    r.read_line(&mut resp).await.map_err(io)?;
    if resp.trim().is_empty() {
        return Err(ShimError::BadResponse(
            "connection closed without a response".into(),
        ));
    }
    let v: Value =
        serde_json::from_str(resp.trim()).map_err(|_| ShimError::BadResponse(resp.clone()))?;
    check_ok(v)
}

/// How long [`discard`] may take before the shim is given up on.
const DISCARD_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Gets rid of a shim whatever state its container is in. `delete` alone only works after the
/// init exited; a container that was created but never started (a start that failed, or was
/// cut short by a berthd crash) or is still running would keep its shim, init, cgroups and
/// runtime state forever. So: thaw, SIGKILL the init, wait for its exit, then delete.
pub async fn discard(sock: &Path) -> Result<(), ShimError> {
    let work = async {
        let st = call(sock, json!({"op": "state"})).await?;
        let status = st.get("status").and_then(Value::as_str).unwrap_or("");
        if status != "stopped" {
            if status == "paused" {
                let _ = call(sock, json!({"op": "resume"})).await;
            }
            let _ = call(
                sock,
                json!({"op": "kill", "signal": libc::SIGKILL, "all": false}),
            )
            .await;
            call(sock, json!({"op": "wait"})).await?;
        }
        call(sock, json!({"op": "delete"})).await.map(|_| ())
    };
    tokio::time::timeout(DISCARD_LIMIT, work)
        .await
        .unwrap_or_else(|_| {
            Err(ShimError::Io {
                path: sock.to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::TimedOut),
            })
        })
}

/// Opens an attach stream: after the `ok` line the connection carries the raw streams.
pub async fn attach(
    sock: &Path,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    exec_id: Option<&str>,
) -> Result<UnixStream, ShimError> {
    let mut s = connect(sock).await?;
    let io = |source| ShimError::Io {
        path: sock.to_owned(),
        source,
    };
    let mut line =
        json!({"op":"attach","stdin":stdin,"stdout":stdout,"stderr":stderr,"exec_id":exec_id})
            .to_string();
    line.push('\n');
    s.write_all(line.as_bytes()).await.map_err(io)?;
    let resp = read_line_exact(&mut s).await.map_err(io)?;
    let v: Value = serde_json::from_str(resp.trim()).map_err(|_| ShimError::BadResponse(resp))?;
    check_ok(v)?;
    Ok(s)
}
