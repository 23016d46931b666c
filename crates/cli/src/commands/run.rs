//! `run`, `create`, `start`, `attach`: docker/cli's run sequence — create (pull on "No such
//! image"), attach before start, wait (`next-exit`, or `removed` with `--rm`) registered before
//! start, start, stream, exit with the container's status.

use berth_client::{ClientError, query};
use serde_json::Value;

use super::Ctx;
use super::images::{pull_image, split_tag};
use super::streams::{StreamEnd, StreamOpts, pump};
use crate::cli::{AttachArgs, RunArgs, StartArgs};
use crate::error::{CliError, Result};
use crate::opts::{CreateRequest, create_request};
use crate::output;
use crate::tty::{self, RawGuard};

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Docker's `withHelp`: `berth: <msg>\n\nRun 'berth run --help' for more information`.
fn with_help(msg: &str, cmd: &str, code: i32) -> CliError {
    CliError::Status {
        code,
        msg: Some(format!(
            "berth: {msg}\n\nRun 'berth {cmd} --help' for more information"
        )),
    }
}

/// Docker's `toStatusError`: 127 for a missing executable, 126 for permission problems, else 125.
pub fn status_error(err: &CliError, cmd: &str) -> CliError {
    let msg = err.to_string();
    let code = if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    };
    with_help(&msg, cmd, code)
}

/// The name Docker shows in "Unable to find image" (`busybox` → `busybox:latest`).
fn familiar(image: &str) -> String {
    if image.contains('@') || !split_tag(image).1.is_empty() {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Creates the container, pulling the image per `--pull`; returns its id.
async fn create_container(
    ctx: &Ctx,
    req: &CreateRequest,
    image: &str,
    pull: &str,
    quiet: bool,
    cidfile: Option<&str>,
) -> Result<String> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(n) = &req.name {
        q.push(("name", n.clone()));
    }
    if let Some(p) = &req.platform {
        q.push(("platform", p.clone()));
    }
    let path = format!("/containers/create{}", query::encode(&q));
    if let Some(f) = cidfile
        && std::path::Path::new(f).exists()
    {
        return Err(CliError::Msg(format!(
            "container ID file found, make sure the other container isn't running or delete {f}"
        )));
    }
    if pull == "always" {
        pull_image(ctx, &familiar(image), req.platform.as_deref(), quiet, true).await?;
    } else if !matches!(pull, "missing" | "never") {
        return Err(CliError::Msg(format!(
            "invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\""
        )));
    }
    let resp: Value = match ctx.client.post_json(&path, Some(&req.body)).await {
        Ok(v) => v,
        Err(e)
            if e.is_not_found()
                && pull == "missing"
                && e.daemon_message()
                    .is_some_and(|m| m.contains("No such image")) =>
        {
            output::errln(&format!(
                "Unable to find image '{}' locally",
                familiar(image)
            ));
            pull_image(ctx, &familiar(image), req.platform.as_deref(), quiet, true).await?;
            ctx.client.post_json(&path, Some(&req.body)).await?
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(Value::Array(w)) = resp.get("Warnings") {
        for w in w.iter().filter_map(Value::as_str) {
            output::errln(&format!("WARNING: {w}"));
        }
    }
    let id = resp
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(f) = cidfile {
        std::fs::write(f, &id).map_err(|e| {
            CliError::io(
                format!("failed to write the container ID to the file {f}"),
                e,
            )
        })?;
    }
    Ok(id)
}

/// `create`.
pub async fn create_cmd(host: Option<&str>, a: RunArgs) -> Result<i32> {
    let o = &a.opts;
    let go = async {
        let req = create_request(o)?;
        let ctx = Ctx::connect(host).await?;
        create_container(&ctx, &req, &o.image, &o.pull, o.quiet, o.cidfile.as_deref()).await
    };
    match go.await {
        Ok(id) => {
            output::outln(&id);
            Ok(0)
        }
        Err(e) => Err(with_help(&e.to_string(), "create", 125)),
    }
}

/// Forwards the signals a user sends to `berth` to the container (`--sig-proxy`).
fn forward_signals(ctx: &Ctx, id: &str) {
    use tokio::signal::unix::{SignalKind, signal};
    let sigs = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
        (SignalKind::alarm(), "ALRM"),
    ];
    for (kind, name) in sigs {
        let Ok(mut s) = signal(kind) else { continue };
        let ctx = ctx.clone();
        let path = format!("/containers/{}/kill?signal={name}", query::path_segment(id));
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if let Err(e) = ctx.client.post_bytes::<()>(&path, None).await {
                    output::errln(&format!("error forwarding signal {name}: {e}"));
                }
            }
        });
    }
}

/// Sends the terminal size now and on every SIGWINCH (`resize_path` is the resize endpoint).
pub fn monitor_tty_size(ctx: &Ctx, resize_path: String) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let send = |ctx: Ctx, p: String| async move {
            if let Some((h, w)) = tty::size() {
                let _ = ctx
                    .client
                    .post_bytes::<()>(&format!("{p}?h={h}&w={w}"), None)
                    .await;
            }
        };
        send(ctx.clone(), resize_path.clone()).await;
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            send(ctx.clone(), resize_path.clone()).await;
        }
    });
}

/// Waits on the container (`condition`), mapping the answer to an exit status as Docker.
fn spawn_wait(ctx: &Ctx, id: &str, condition: &str) -> tokio::task::JoinHandle<i32> {
    let ctx = ctx.clone();
    let path = format!(
        "/containers/{}/wait?condition={condition}",
        query::path_segment(id)
    );
    tokio::spawn(async move {
        match ctx.client.post_json::<(), Value>(&path, None).await {
            Ok(v) => {
                if let Some(m) = v
                    .pointer("/Error/Message")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                {
                    output::errln(&format!("Error waiting for container: {m}"));
                    return 125;
                }
                v.get("StatusCode").and_then(Value::as_i64).unwrap_or(125) as i32
            }
            Err(e) => {
                output::errln(&format!("Error waiting for container: {e}"));
                125
            }
        }
    })
}

fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>> {
    tty::parse_detach_keys(flag.unwrap_or(DEFAULT_DETACH_KEYS)).map_err(CliError::Msg)
}

/// `run`.
pub async fn run(host: Option<&str>, a: RunArgs) -> Result<i32> {
    let o = a.opts;
    let req = create_request(&o).map_err(|e| with_help(&e.to_string(), "run", 125))?;
    let body = &req.body;
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (a_in, a_out, a_err, tty_mode) = (
        flag("AttachStdin"),
        flag("AttachStdout"),
        flag("AttachStderr"),
        flag("Tty"),
    );
    if a_in && tty_mode && !tty::stdin_is_tty() {
        return Err(CliError::Msg("the input device is not a TTY".into()));
    }
    let keys =
        detach_keys(o.detach_keys.as_deref()).map_err(|e| with_help(&e.to_string(), "run", 125))?;
    let ctx = Ctx::connect(host)
        .await
        .map_err(|e| with_help(&e.to_string(), "run", 125))?;
    let id = create_container(&ctx, &req, &o.image, &o.pull, o.quiet, o.cidfile.as_deref())
        .await
        .map_err(|e| status_error(&e, "run"))?;
    let attach = a_in || a_out || a_err;
    if o.sig_proxy && attach && !tty_mode {
        forward_signals(&ctx, &id);
    }
    let seg = query::path_segment(&id);
    let mut conn = None;
    if attach {
        let mut q = vec![
            ("stream", "1"),
            ("stdin", if a_in { "1" } else { "0" }),
            ("stdout", if a_out { "1" } else { "0" }),
            ("stderr", if a_err { "1" } else { "0" }),
        ];
        let dk = o
            .detach_keys
            .clone()
            .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_owned());
        q.push(("detachKeys", dk.as_str()));
        let path = format!("/containers/{seg}/attach{}", query::encode(&q));
        conn = Some(
            ctx.client
                .upgrade::<()>(&path, None)
                .await
                .map_err(|e| with_help(&e.to_string(), "run", 125))?,
        );
    }
    let status = spawn_wait(&ctx, &id, if o.rm { "removed" } else { "next-exit" });
    // Raw mode only while streaming a TTY with stdin, restored by the guard on every path.
    let raw = if attach && a_in && tty_mode {
        RawGuard::enable().map_err(|e| CliError::io("setting the terminal to raw mode", e))?
    } else {
        None
    };
    if let Err(e) = ctx
        .client
        .post_bytes::<()>(&format!("/containers/{seg}/start"), None)
        .await
    {
        drop(conn);
        drop(raw);
        status.abort();
        if o.rm {
            // dockerd removes an auto-remove container whose start failed; make sure of it
            // here too rather than wait for a removal that may never come.
            let _ = ctx
                .client
                .delete(&format!("/containers/{seg}?force=1"))
                .await;
        }
        return Err(status_error(&CliError::Client(e), "run"));
    }
    let Some(conn) = conn else {
        output::outln(&id);
        return Ok(0);
    };
    if tty_mode && tty::stdout_is_tty() {
        monitor_tty_size(&ctx, format!("/containers/{seg}/resize"));
    }
    let opts = StreamOpts {
        stdin: a_in,
        tty: tty_mode,
        detach_keys: keys,
    };
    let mut pumping = tokio::spawn(pump(conn, opts));
    let mut status = status;
    let code = tokio::select! {
        end = &mut pumping => {
            match end {
                Ok(Ok(StreamEnd::Detached)) => {
                    drop(raw);
                    return Ok(0);
                }
                Ok(Err(e)) => {
                    drop(raw);
                    return Err(e);
                }
                Ok(Ok(StreamEnd::Done)) | Err(_) => status.await.unwrap_or(125),
            }
        }
        code = &mut status => {
            let code = code.unwrap_or(125);
            if a_out || a_err {
                let _ = pumping.await;
            } else {
                pumping.abort();
            }
            code
        }
    };
    drop(raw);
    Ok(code)
}

/// `start`.
pub async fn start(ctx: &Ctx, a: StartArgs) -> Result<i32> {
    if !(a.attach || a.interactive) {
        let mut errors = Vec::new();
        for c in &a.containers {
            match ctx
                .client
                .post_bytes::<()>(
                    &format!("/containers/{}/start", query::path_segment(c)),
                    None,
                )
                .await
            {
                Ok(_) => output::outln(c),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            errors.push(format!(
                "Error: failed to start containers: {}",
                a.containers.join(", ")
            ));
            return Err(CliError::Msg(errors.join("\n")));
        }
        return Ok(0);
    }
    if a.containers.len() > 1 {
        return Err(CliError::Msg(
            "you cannot start and attach multiple containers at once".into(),
        ));
    }
    let name = &a.containers[0];
    let info = ctx
        .get_json(&format!("/containers/{}/json", query::path_segment(name)))
        .await?;
    let id = info
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_owned();
    let tty_mode = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let open_stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = a.interactive && open_stdin;
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let seg = query::path_segment(&id);
    let q = format!(
        "?stream=1&stdout=1&stderr=1&stdin={}",
        if stdin { 1 } else { 0 }
    );
    let conn = ctx
        .client
        .upgrade::<()>(&format!("/containers/{seg}/attach{q}"), None)
        .await?;
    if !tty_mode {
        forward_signals(ctx, &id);
    }
    let status = spawn_wait(ctx, &id, "next-exit");
    let raw = if stdin && tty_mode {
        RawGuard::enable().map_err(|e| CliError::io("setting the terminal to raw mode", e))?
    } else {
        None
    };
    if let Err(e) = ctx
        .client
        .post_bytes::<()>(&format!("/containers/{seg}/start"), None)
        .await
    {
        drop(raw);
        return Err(e.into());
    }
    if tty_mode && tty::stdout_is_tty() {
        monitor_tty_size(ctx, format!("/containers/{seg}/resize"));
    }
    let end = pump(
        conn,
        StreamOpts {
            stdin,
            tty: tty_mode,
            detach_keys: keys,
        },
    )
    .await;
    drop(raw);
    match end? {
        StreamEnd::Detached => Ok(0),
        StreamEnd::Done => Ok(status.await.unwrap_or(125)),
    }
}

/// `attach`.
pub async fn attach_cmd(ctx: &Ctx, a: AttachArgs) -> Result<i32> {
    let info = ctx
        .get_json(&format!(
            "/containers/{}/json",
            query::path_segment(&a.container)
        ))
        .await?;
    let running = info
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !running {
        return Err(CliError::Msg(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if info
        .pointer("/State/Paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(CliError::Msg(
            "You cannot attach to a paused container, unpause it first".into(),
        ));
    }
    let id = info
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(&a.container)
        .to_owned();
    let tty_mode = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = !a.no_stdin
        && info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if stdin && tty_mode && !tty::stdin_is_tty() {
        return Err(CliError::Msg("the input device is not a TTY".into()));
    }
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let seg = query::path_segment(&id);
    let q = format!(
        "?stream=1&stdout=1&stderr=1&stdin={}",
        if stdin { 1 } else { 0 }
    );
    let conn = ctx
        .client
        .upgrade::<()>(&format!("/containers/{seg}/attach{q}"), None)
        .await?;
    if a.sig_proxy && !tty_mode {
        forward_signals(ctx, &id);
    }
    let raw = if stdin && tty_mode {
        RawGuard::enable().map_err(|e| CliError::io("setting the terminal to raw mode", e))?
    } else {
        None
    };
    if tty_mode && tty::stdout_is_tty() {
        monitor_tty_size(ctx, format!("/containers/{seg}/resize"));
    }
    let end = pump(
        conn,
        StreamOpts {
            stdin,
            tty: tty_mode,
            detach_keys: keys,
        },
    )
    .await;
    drop(raw);
    match end? {
        StreamEnd::Detached => Ok(0),
        StreamEnd::Done => {
            // The exit status, once the container has stopped.
            let v: std::result::Result<Value, ClientError> = ctx
                .client
                .post_json::<(), Value>(&format!("/containers/{seg}/wait"), None)
                .await;
            Ok(v.ok()
                .and_then(|v| v.get("StatusCode").and_then(Value::as_i64))
                .unwrap_or(0) as i32)
        }
    }
}
