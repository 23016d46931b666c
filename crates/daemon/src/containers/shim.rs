//! berthd's side of the shim contract (SHIM_PROTOCOL.md): spawning `berth-shim` with its
//! ready pipe on fd 3, and one-line JSON requests on `STATE_DIR/shim.sock`.

use std::os::fd::AsRawFd;
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

pub(super) fn check_ok(v: Value) -> Result<Value, ShimError> {
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
