//! Exec routes: create, start (detached or hijacked), resize, inspect.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::ApiError;
use berth_api::models::{ExecConfig, ExecStartConfig};
use berth_api::query::ResizeQuery;
use berth_api::types::IdResponse;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::error::ApiResult;
use super::json::{DockerJson, read_limited};
use super::query::DockerQuery;
use super::stream::{AttachGuard, bridge, upgrade_response};
use crate::containers::{shim, spec};
use crate::daemon::Daemon;
use crate::exec::ExecInstance;

type D = State<Arc<Daemon>>;

/// `POST /containers/{id}/exec`.
pub async fn create(
    State(d): D,
    Path(id): Path<String>,
    DockerJson(cfg): DockerJson<ExecConfig>,
) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    let (running, paused) = e.with(|r| (r.state.running, r.state.paused));
    if !running {
        return Err(ApiError::conflict(format!("Container {} is not running", e.id)).into());
    }
    if paused {
        return Err(ApiError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            e.id
        ))
        .into());
    }
    if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::invalid("No exec command specified").into());
    }
    let exec_id = crate::fsutil::random_hex(32)
        .map_err(|err| ApiError::internal(format!("generating id: {err}")))?;
    d.execs.insert(ExecInstance {
        id: exec_id.clone(),
        container_id: e.id.clone(),
        config: cfg,
        running: false,
        started: false,
        exit_code: None,
        pid: 0,
    });
    Ok((StatusCode::CREATED, Json(IdResponse { id: exec_id })).into_response())
}

async fn launch(
    d: &Arc<Daemon>,
    ex: &ExecInstance,
    tty: bool,
) -> Result<std::path::PathBuf, ApiError> {
    let entry = d.containers.get(&ex.container_id)?;
    let rec = entry.snapshot();
    if !rec.state.running {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            rec.id
        )));
    }
    let mut env = spec::init_env(&rec);
    for kv in ex.config.env.as_deref().unwrap_or(&[]) {
        env.push(kv.clone());
    }
    let process = spec::process(
        std::path::Path::new(&rec.graph_driver.merged_dir),
        &rec.host_config,
        spec::ProcessArgs {
            args: ex.config.cmd.clone().unwrap_or_default(),
            env,
            cwd: ex
                .config
                .working_dir
                .as_deref()
                .filter(|w| !w.is_empty())
                .or(rec.config.working_dir.as_deref())
                .unwrap_or("/"),
            user: ex
                .config
                .user
                .as_deref()
                .filter(|u| !u.is_empty())
                .or(rec.config.user.as_deref())
                .unwrap_or(""),
            terminal: tty,
        },
    )?;
    let sock = d.state_dir(&rec.id).join("shim.sock");
    let v = shim::call(
        &sock,
        json!({"op":"exec","exec_id":ex.id,"process":process,"terminal":tty,"stdin":ex.config.attach_stdin == Some(true)}),
    )
    .await
    .map_err(|err| match err {
        shim::ShimError::Failed { message, exit_code: Some(126 | 127) } => ApiError::invalid(format!("OCI runtime exec failed: {message}")),
        other => ApiError::internal(format!("OCI runtime exec failed: {other}")),
    })?;
    let pid = v.get("pid").and_then(Value::as_i64).unwrap_or(0);
    d.execs.update(&ex.id, |e| {
        e.running = true;
        e.started = true;
        e.pid = pid;
    });
    Ok(sock)
}

async fn wait_exec(d: &Arc<Daemon>, sock: &std::path::Path, exec_id: &str) {
    let code = match shim::call(sock, json!({"op":"exec_wait","exec_id":exec_id})).await {
        Ok(v) => v.get("exit_code").and_then(Value::as_i64).unwrap_or(-1),
        Err(_) => -1,
    };
    d.execs.update(exec_id, |e| {
        e.running = false;
        e.exit_code = Some(code);
        e.pid = 0;
    });
}

/// `POST /exec/{id}/start`.
pub async fn start(State(d): D, Path(id): Path<String>, mut req: Request) -> ApiResult<Response> {
    let ex = d.execs.get(&id)?;
    let upgrade_requested = req.headers().contains_key(axum::http::header::UPGRADE);
    let on_upgrade = upgrade_requested.then(|| hyper::upgrade::on(&mut req));
    let bytes = read_limited(req, &()).await?;
    let body: Option<ExecStartConfig> = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?,
        )
    };
    if ex.started {
        return Err(ApiError::conflict(format!("Error: Exec command {id} has already run")).into());
    }
    let body = body.unwrap_or_default();
    let tty = body.tty.or(ex.config.tty).unwrap_or(false);
    if body.detach == Some(true) {
        let sock = launch(&d, &ex, tty).await?;
        let d2 = d.clone();
        tokio::spawn(async move { wait_exec(&d2, &sock, &ex.id).await });
        return Ok(StatusCode::OK.into_response());
    }
    let Some(on_upgrade) = on_upgrade else {
        return Err(ApiError::invalid(
            "exec start requires an HTTP upgrade (Connection: Upgrade, Upgrade: tcp)",
        )
        .into());
    };
    let entry = d.containers.get(&ex.container_id)?;
    let sock = launch(&d, &ex, tty).await?;
    let stream = shim::attach(
        &sock,
        ex.config.attach_stdin == Some(true),
        ex.config.attach_stdout != Some(false),
        ex.config.attach_stderr != Some(false),
        Some(&ex.id),
    )
    .await
    .map_err(|err| ApiError::internal(format!("attaching to exec: {err}")))?;
    let guard = AttachGuard::new(entry);
    let d2 = d.clone();
    tokio::spawn(async move {
        let _guard = guard;
        match on_upgrade.await {
            Ok(up) => {
                let client = TokioIo::new(up);
                let stdin = ex.config.attach_stdin == Some(true);
                // Record the exit code before the client sees EOF: the CLI inspects the exec
                // right after the stream ends.
                let (c2, s2) = (client, stream);
                let d3 = d2.clone();
                let sock2 = sock.clone();
                let id2 = ex.id.clone();
                bridge_then(
                    c2,
                    s2,
                    stdin,
                    async move { wait_exec(&d3, &sock2, &id2).await },
                )
                .await;
            }
            Err(err) => {
                tracing::debug!(error = %err, "exec upgrade failed");
                wait_exec(&d2, &sock, &ex.id).await;
            }
        }
    });
    Ok(upgrade_response())
}

/// Bridges, running `before_close` after the shim side ended but before the client sees EOF.
async fn bridge_then<C, F>(
    client: C,
    shim_stream: tokio::net::UnixStream,
    stdin: bool,
    before_close: F,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let gate = GateIo {
        inner: client,
        release: Some(rx),
    };
    let bridged = bridge(gate, shim_stream, stdin);
    let hook = async move {
        before_close.await;
        let _ = tx.send(());
    };
    tokio::join!(bridged, hook);
}

/// An IO wrapper whose shutdown waits until `release` fires (so EOF reaches the client only
/// after the exec's exit code is recorded).
struct GateIo<C> {
    inner: C,
    release: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl<C: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for GateIo<C> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<C: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for GateIo<C> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if let Some(rx) = me.release.as_mut() {
            match std::pin::Pin::new(rx).poll(cx) {
                std::task::Poll::Pending => return std::task::Poll::Pending,
                std::task::Poll::Ready(_) => me.release = None,
            }
        }
        std::pin::Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

use std::future::Future as _;

/// `POST /exec/{id}/resize`.
pub async fn resize(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ResizeQuery>,
) -> ApiResult<StatusCode> {
    let ex = d.execs.get(&id)?;
    let sock = d.state_dir(&ex.container_id).join("shim.sock");
    shim::call(
        &sock,
        json!({"op":"resize","height":q.h.unwrap_or(0),"width":q.w.unwrap_or(0),"exec_id":ex.id}),
    )
    .await
    .map_err(|err| ApiError::internal(format!("resizing exec: {err}")))?;
    Ok(StatusCode::OK)
}

/// `GET /exec/{id}/json`.
pub async fn inspect(State(d): D, Path(id): Path<String>) -> ApiResult<Response> {
    let ex = d.execs.get(&id)?;
    let cmd = ex.config.cmd.clone().unwrap_or_default();
    Ok(Json(json!({
        "ID": ex.id,
        "Running": ex.running,
        "ExitCode": ex.exit_code,
        "ProcessConfig": {
            "tty": ex.config.tty.unwrap_or(false),
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.get(1..).map(<[String]>::to_vec).unwrap_or_default(),
            "privileged": ex.config.privileged.unwrap_or(false),
            "user": ex.config.user.clone().unwrap_or_default(),
        },
        "OpenStdin": ex.config.attach_stdin.unwrap_or(false),
        "OpenStderr": ex.config.attach_stderr.unwrap_or(false),
        "OpenStdout": ex.config.attach_stdout.unwrap_or(false),
        "CanRemove": false,
        "ContainerID": ex.container_id,
        "DetachKeys": "",
        "Pid": ex.pid,
    }))
    .into_response())
}
