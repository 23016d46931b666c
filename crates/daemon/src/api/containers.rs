//! Container routes: parse, call the backend in `crate::containers`, serialize.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::ApiError;
use berth_api::models::ContainerCreateBody;
use berth_api::query::{
    ContainerAttachQuery, ContainerCreateQuery, ContainerKillQuery, ContainerListQuery,
    ContainerLogsQuery, ContainerRemoveQuery, ContainerRenameQuery, ContainerStopQuery,
    ContainerTopQuery, ContainerWaitQuery, PruneQuery, ResizeQuery,
};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::error::ApiResult;
use super::json::DockerJson;
use super::query::DockerQuery;
use super::stream::{AttachGuard, bridge, upgrade_response};
use crate::containers::lifecycle::{self, Outcome};
use crate::containers::logs::{self, LogOptions};
use crate::containers::store::{PendingAttach, lock};
use crate::containers::{create, files, inspect, list, names, shim};
use crate::daemon::Daemon;

type D = State<Arc<Daemon>>;

fn status(o: Outcome) -> StatusCode {
    match o {
        Outcome::Done => StatusCode::NO_CONTENT,
        Outcome::NotModified => StatusCode::NOT_MODIFIED,
    }
}

/// `POST /containers/create`.
pub async fn create(
    State(d): D,
    DockerQuery(q): DockerQuery<ContainerCreateQuery>,
    DockerJson(body): DockerJson<ContainerCreateBody>,
) -> ApiResult<Response> {
    let resp = create::create(&d, q.name, body).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

/// `GET /containers/json`.
pub async fn list(
    State(d): D,
    DockerQuery(q): DockerQuery<ContainerListQuery>,
) -> ApiResult<Response> {
    let mut items = list::list(&d, &q)?;
    if q.size {
        let ids: Vec<String> = items.iter().filter_map(|s| s.id.clone()).collect();
        let sizes = d
            .blocking(move |d| {
                Ok(ids
                    .iter()
                    .map(|id| d.images.container_size(id).ok())
                    .collect::<Vec<_>>())
            })
            .await?;
        for (s, size) in items.iter_mut().zip(sizes) {
            if let Some((rw, root)) = size {
                s.size_rw = i64::try_from(rw).ok();
                s.size_root_fs = i64::try_from(root).ok();
            }
        }
    }
    Ok(Json(items).into_response())
}

/// `GET /containers/{id}/json`.
pub async fn inspect(State(d): D, Path(id): Path<String>) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    let rec = e.snapshot();
    let mut body = inspect::inspect(&rec);
    let execs = d.execs.of_container(&e.id);
    body.exec_ids = if execs.is_empty() { None } else { Some(execs) };
    let mut v = serde_json::to_value(&body)
        .map_err(|e| ApiError::internal(format!("encoding inspect: {e}")))?;
    if let Some(ns) = v.get_mut("NetworkSettings").and_then(|n| n.as_object_mut()) {
        ns.extend(inspect::legacy_network_fields(&rec));
    }
    Ok(Json(v).into_response())
}

/// `GET /containers/{id}/changes` (`docker diff`).
pub async fn changes(State(d): D, Path(id): Path<String>) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    let cid = e.id.clone();
    let list = d
        .blocking(move |d| d.images.changes(&cid).map_err(crate::images::api_error))
        .await?;
    let out: Vec<serde_json::Value> = list
        .iter()
        .map(|c| json!({"Path": c.path, "Kind": c.kind as u8}))
        .collect();
    Ok(Json(out).into_response())
}

/// `POST /containers/{id}/start`.
pub async fn start(State(d): D, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    Ok(status(lifecycle::start(&d, &e).await?))
}

/// `POST /containers/{id}/stop`.
pub async fn stop(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerStopQuery>,
) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    Ok(status(
        lifecycle::stop(&d, &e, q.t, q.signal.as_deref()).await?,
    ))
}

/// `POST /containers/{id}/restart`.
pub async fn restart(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerStopQuery>,
) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    lifecycle::restart(&d, &e, q.t, q.signal.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/kill`.
pub async fn kill(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerKillQuery>,
) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    lifecycle::kill(&d, &e, q.signal.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/pause`.
pub async fn pause(State(d): D, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    lifecycle::set_paused(&d, &e, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(State(d): D, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    lifecycle::set_paused(&d, &e, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/wait`.
pub async fn wait(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerWaitQuery>,
) -> ApiResult<Response> {
    let cond = q.condition.unwrap_or_default();
    let e = match d.containers.get(&id) {
        Ok(e) => e,
        Err(err) => {
            if cond == "removed"
                && let Some(code) = d.recently_removed(&id)
            {
                return Ok(Json(berth_api::types::WaitResponse {
                    status_code: code,
                    error: None,
                })
                .into_response());
            }
            return Err(err.into());
        }
    };
    let pending = lifecycle::wait_begin(&e, &cond)?;
    // Headers go out now; the body when the condition is met (the docker CLI waits for the
    // headers before it sends `start`).
    let mut shutdown = d.shutting_down.subscribe();
    let body = futures_util::stream::once(async move {
        let resp = tokio::select! {
            r = pending.finish() => match r {
                Ok(b) => b,
                Err(err) => lifecycle::wait_failed(err.message),
            },
            _ = shutdown.wait_for(|s| *s) => lifecycle::wait_failed("berthd is shutting down".to_owned()),
        };
        let mut v = serde_json::to_vec(&resp).unwrap_or_default();
        v.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(v))
    });
    let mut r = Response::new(axum::body::Body::from_stream(body));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `DELETE /containers/{id}`.
pub async fn remove(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerRemoveQuery>,
) -> ApiResult<StatusCode> {
    if q.link {
        return Err(ApiError::not_implemented("legacy links are not supported").into());
    }
    let e = d.containers.get(&id)?;
    lifecycle::remove(&d, &e, q.force).await?;
    d.execs.remove_container(&e.id);
    if q.v {
        let rec = e.snapshot();
        d.blocking(move |d| {
            crate::volumes::release(d, &rec, true);
            Ok(())
        })
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/prune`.
pub async fn prune(State(d): D, DockerQuery(q): DockerQuery<PruneQuery>) -> ApiResult<Response> {
    let filters = berth_api::Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    filters.validate(&["label", "until"])?;
    let mut deleted = Vec::new();
    for e in d.containers.all() {
        let rec = e.snapshot();
        if rec.state.running
            || !filters.match_labels("label", &rec.config.labels.clone().unwrap_or_default())
        {
            continue;
        }
        if lifecycle::remove(&d, &e, false).await.is_ok() {
            deleted.push(e.id.clone());
        }
    }
    Ok(Json(json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0})).into_response())
}

/// `POST /containers/{id}/rename`.
pub async fn rename(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerRenameQuery>,
) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    let new = names::validate(q.name.as_deref().unwrap_or(""))?;
    let old = e.with(|r| r.name.clone());
    if old == new {
        return Err(ApiError::conflict(
            "Renaming a container with the same name as its current name",
        )
        .into());
    }
    d.containers.reserve_name(&new, &e.id)?;
    e.with(|r| r.name = new.clone());
    d.containers.release_name(&old);
    files::save_record(&d.container_dir(&e.id), &e.snapshot())?;
    d.events
        .container(&e.snapshot(), "rename", &[("oldName", old.clone())]);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/resize`.
pub async fn resize(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ResizeQuery>,
) -> ApiResult<StatusCode> {
    let e = d.containers.get(&id)?;
    let (h, w) = (q.h.unwrap_or(0), q.w.unwrap_or(0));
    if h < 0 || w < 0 || h > 65535 || w > 65535 {
        return Err(ApiError::invalid("invalid terminal size").into());
    }
    if !e.with(|r| r.state.running) {
        return Err(ApiError::conflict(format!("Container {} is not running", e.id)).into());
    }
    shim::call(
        &d.state_dir(&e.id).join("shim.sock"),
        json!({"op":"resize","height":h,"width":w,"exec_id":null}),
    )
    .await
    .map_err(|err| ApiError::internal(format!("resizing: {err}")))?;
    Ok(StatusCode::OK)
}

/// Pids of `root` and all its descendants.
fn descendants(root: i64) -> Vec<i64> {
    let mut children: std::collections::HashMap<i64, Vec<i64>> = Default::default();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for ent in rd.flatten() {
            let Ok(pid) = ent.file_name().to_string_lossy().parse::<i64>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            if let Some(ppid) = after
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i64>().ok())
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c.iter().copied());
        }
        i += 1;
    }
    out
}

/// `GET /containers/{id}/top`: the host's `ps`, filtered to the container's processes.
pub async fn top(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerTopQuery>,
) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    let (running, pid) = e.with(|r| (r.state.running, r.state.pid));
    if !running {
        return Err(ApiError::conflict(format!("Container {} is not running", e.id)).into());
    }
    let args = q.ps_args.unwrap_or_else(|| "-ef".to_owned());
    let out = tokio::process::Command::new("ps")
        .args(args.split_whitespace())
        .output()
        .await
        .map_err(|err| ApiError::internal(format!("running ps: {err}")))?;
    if !out.status.success() {
        return Err(ApiError::internal(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
    let pids = descendants(pid);
    let mut procs = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(p) = fields.get(pid_col).and_then(|p| p.parse::<i64>().ok()) else {
            continue;
        };
        if !pids.contains(&p) {
            continue;
        }
        let n = titles.len();
        let mut row: Vec<String> = fields.iter().take(n - 1).map(|s| (*s).to_owned()).collect();
        row.push(fields.get(n - 1..).map(|r| r.join(" ")).unwrap_or_default());
        procs.push(row);
    }
    Ok(Json(json!({"Titles": titles, "Processes": procs})).into_response())
}

fn byte_stream(rx: tokio::sync::mpsc::Receiver<Bytes>) -> axum::body::Body {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    axum::body::Body::from_stream(s)
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerLogsQuery>,
) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    let rec = e.snapshot();
    let opts = LogOptions::from_query(&q, rec.config.tty == Some(true))?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let e2 = e.clone();
    let shutdown = d.shutting_down.subscribe();
    logs::stream(rec.log_path.into(), opts, tx, move || {
        e2.lifecycle.borrow().running && !*shutdown.borrow()
    });
    let mut r = Response::new(byte_stream(rx));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    Ok(r)
}

/// `POST /containers/{id}/attach`: hijack, then bridge to the shim's attach stream (now, or
/// when the container starts).
pub async fn attach(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ContainerAttachQuery>,
    mut req: Request,
) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    if !req.headers().contains_key(axum::http::header::UPGRADE) {
        return Err(ApiError::invalid(
            "attach requires an HTTP upgrade (Connection: Upgrade, Upgrade: tcp)",
        )
        .into());
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let rec = e.snapshot();
    let tty = rec.config.tty == Some(true);
    let (tx, rx) = tokio::sync::oneshot::channel();
    if q.stream {
        let _op = e.op.lock().await;
        if e.with(|r| r.state.running) {
            let s = shim::attach(
                &d.state_dir(&e.id).join("shim.sock"),
                q.stdin,
                q.stdout,
                q.stderr,
                None,
            )
            .await
            .map_err(|err| ApiError::internal(format!("attaching: {err}")))?;
            let _ = tx.send(Ok(s));
        } else if !rec.state.removal_in_progress && !rec.state.dead {
            // Not running: connect when it next starts (`docker start -a`, `docker run`).
            lock(&e.pending_attach).push(PendingAttach {
                stdin: q.stdin,
                stdout: q.stdout,
                stderr: q.stderr,
                tx,
            });
        } else {
            drop(tx);
        }
    } else {
        drop(tx);
    }
    let guard = AttachGuard::new(e.clone());
    let log_path = rec.log_path.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(err) => {
                tracing::debug!(error = %err, "attach upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        if q.logs {
            let (ltx, mut lrx) = tokio::sync::mpsc::channel(64);
            logs::stream(
                log_path.into(),
                LogOptions::replay(q.stdout, q.stderr, tty),
                ltx,
                || false,
            );
            while let Some(b) = lrx.recv().await {
                if client.write_all(&b).await.is_err() {
                    return;
                }
            }
        }
        match rx.await {
            Ok(Ok(shim_stream)) => bridge(client, shim_stream, q.stdin).await,
            Ok(Err(err)) => tracing::warn!(error = %err, "attach to shim failed"),
            Err(_) => {
                let _ = client.shutdown().await;
            }
        }
    });
    Ok(upgrade_response())
}

/// `stream` and `one-shot` of `GET /containers/{id}/stats`.
#[derive(Debug, serde::Deserialize)]
pub struct StatsQuery {
    /// Keep sending a sample per second (default true).
    #[serde(default)]
    stream: Option<String>,
    /// One sample without waiting for a second one (no precpu).
    #[serde(
        default,
        rename = "one-shot",
        deserialize_with = "berth_api::query::docker_bool"
    )]
    one_shot: bool,
}

/// `GET /containers/{id}/stats`: samples from the container's cgroup; `precpu_stats` is the
/// previous sample, so the docker CLI can compute CPU %.
pub async fn stats(
    State(d): D,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<StatsQuery>,
) -> ApiResult<Response> {
    use crate::containers::stats;
    let e = d.containers.get(&id)?;
    let stream = q
        .stream
        .as_deref()
        .is_none_or(berth_api::query::parse_docker_bool);
    let hier = stats::hierarchy();
    let name = e.with(|r| r.name.clone());
    let cid = e.id.clone();
    let running = move || e.with(|r| r.state.running);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let mut shutdown = d.shutting_down.subscribe();
    tokio::spawn(async move {
        let line = |v: &serde_json::Value| {
            let mut b = serde_json::to_vec(v).unwrap_or_default();
            b.push(b'\n');
            Bytes::from(b)
        };
        let mut prev = stats::sample(&hier, &cid, &name);
        if !stream && q.one_shot {
            let _ = tx.send(line(&prev)).await;
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
                _ = shut(&mut shutdown) => return,
            }
            let mut cur = stats::sample(&hier, &cid, &name);
            cur["precpu_stats"] = prev["cpu_stats"].clone();
            cur["preread"] = prev["read"].clone();
            if tx.send(line(&cur)).await.is_err() || !stream || !running() {
                return;
            }
            prev = cur;
        }
    });
    let mut r = Response::new(byte_stream(rx));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn shut(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// `POST /containers/{id}/update`: the restart policy always; resource limits of stopped
/// containers (applied at the next start). Changing the limits of a running container needs
/// a cgroup update through the shim, which does not exist yet: refused, not faked.
pub async fn update(
    State(d): D,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<serde_json::Value>,
) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("update body must be a JSON object"))?;
    let (running, hc) = e.with(|r| (r.state.running, r.host_config.clone()));
    let mut hc_json = serde_json::to_value(&hc)
        .map_err(|err| ApiError::internal(format!("encoding host config: {err}")))?;
    let mut resources_changed = false;
    for (k, v) in obj {
        let is_zero = v.is_null()
            || v.as_i64() == Some(0)
            || v.as_str() == Some("")
            || v.as_array().is_some_and(Vec::is_empty);
        if is_zero {
            continue;
        }
        if k == "RestartPolicy" {
            if v.get("Name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .is_empty()
            {
                continue;
            }
        } else {
            resources_changed = true;
        }
        hc_json[k] = v.clone();
    }
    if running && resources_changed {
        return Err(ApiError::not_implemented(
            "updating the resources of a running container is not supported yet; stop it first",
        )
        .into());
    }
    let new_hc: berth_api::models::HostConfig = serde_json::from_value(hc_json)
        .map_err(|err| ApiError::invalid(format!("invalid update: {err}")))?;
    crate::containers::spec::validate_host_config(&new_hc)?;
    if new_hc.auto_remove == Some(true)
        && new_hc
            .restart_policy
            .as_ref()
            .and_then(|p| p.name)
            .is_some_and(|n| !matches!(n.to_string().as_str(), "" | "no"))
    {
        return Err(ApiError::invalid(
            "Restart policy cannot be updated because AutoRemove is enabled for the container",
        )
        .into());
    }
    e.with(|r| r.host_config = new_hc);
    files::save_record(&d.container_dir(&e.id), &e.snapshot())?;
    d.events.container(&e.snapshot(), "update", &[]);
    Ok(Json(json!({"Warnings": []})).into_response())
}
