//! start / stop / kill / pause / wait / remove, and the per-container exit watcher that
//! records exits, removes `--rm` containers and applies restart policies.

use std::sync::Arc;
use std::time::Duration;

use berth_api::ApiError;
use berth_api::types::{WaitError, WaitResponse};
use serde_json::{Value, json};

use super::files::{self, now_rfc3339, save_record};
use super::launcher::SpawnArgs;
use super::network::NetMode;
use super::phases::Phases;
use super::shim::{self, ShimError};
use super::signal;
use super::store::{Entry, lock};
use crate::daemon::Daemon;
use crate::fsutil::{Durability, write_file};
use crate::networks::attach;

/// Outcome of a start/stop that may have been a no-op (HTTP 304).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Something changed.
    Done,
    /// Already in the requested state.
    NotModified,
}

fn shim_sock(daemon: &Daemon, id: &str) -> std::path::PathBuf {
    daemon.state_dir(id).join("shim.sock")
}

fn persist(daemon: &Daemon, entry: &Entry) -> Result<(), ApiError> {
    let rec = entry.snapshot();
    save_record(&daemon.container_dir(&entry.id), &rec)
}

/// Maps a shim failure at create/start to Docker's error, keeping the substrings the docker
/// CLI turns into exit codes 127 ("executable file not found", "no such file or directory")
/// and 126 ("permission denied").
fn start_error(err: &ShimError, path: &str) -> (ApiError, i64) {
    let (msg, code) = match err {
        ShimError::Failed { message, exit_code } => (message.clone(), exit_code.unwrap_or(125)),
        other => (other.to_string(), 125),
    };
    let mut full = format!("failed to create task for container: OCI runtime create failed: {msg}");
    match code {
        127 if !(msg.contains("executable file not found")
            || msg.contains("no such file or directory")) =>
        {
            full.push_str(&format!(
                ": exec: \"{path}\": executable file not found in $PATH"
            ));
        }
        126 if !msg.contains("permission denied") && !msg.contains("is a directory") => {
            full.push_str(&format!(": exec: \"{path}\": permission denied"));
        }
        _ => {}
    }
    let api = if code == 126 || code == 127 {
        ApiError::invalid(full)
    } else {
        ApiError::internal(full)
    };
    (api, if code == 125 { 128 } else { code })
}

/// `POST /containers/{id}/start`.
pub async fn start(daemon: &Arc<Daemon>, entry: &Arc<Entry>) -> Result<Outcome, ApiError> {
    let _op = entry.op.lock().await;
    let st = entry.with(|r| r.state.clone());
    if st.removal_in_progress || st.dead {
        return Err(ApiError::conflict(format!(
            "container {} is marked for removal and cannot be started",
            entry.id
        )));
    }
    if st.running {
        return Ok(Outcome::NotModified);
    }
    entry.with(|r| {
        r.has_been_manually_stopped = false;
        r.restart_count = 0;
    });
    let res = start_locked(daemon, entry).await;
    drop(_op);
    if let Err(e) = res {
        // Like dockerd: a failed start of an AutoRemove container removes it (the docker
        // CLI waits for `removed` before reporting the start error).
        if entry.with(|r| r.host_config.auto_remove == Some(true))
            && let Err(re) = remove(daemon, entry, true).await
        {
            tracing::warn!(id = %entry.id, error = %re, "removing auto-remove container after failed start");
        }
        return Err(e);
    }
    Ok(Outcome::Done)
}

/// Starts the container; the caller holds `entry.op`.
async fn start_locked(daemon: &Arc<Daemon>, entry: &Arc<Entry>) -> Result<(), ApiError> {
    let id = entry.id.clone();
    let mut t = Phases::new("start", &id);
    let rec = entry.snapshot();
    let netmode = NetMode::parse(
        rec.host_config.network_mode.as_deref().unwrap_or("default"),
        &daemon.config.bridge,
    )?;
    let rootfs = {
        let id = id.clone();
        daemon
            .blocking(move |d| d.images.mount(&id).map_err(crate::images::api_error))
            .await?
    };
    t.mark("mount");
    let state_dir = daemon.state_dir(&id);
    // The shim of the previous run may still be there (its exit not yet cleaned up by
    // after_exit): let it delete its runtime state and go, or the new create would find the
    // container existing and the stale socket removed below would strand the old shim.
    let old_sock = shim_sock(daemon, &id);
    if old_sock.exists()
        && let Err(e) = shim::discard(&old_sock).await
    {
        tracing::debug!(id = %id, error = %e, "discarding the previous run's shim");
    }
    let prep = || -> std::io::Result<()> {
        std::fs::create_dir_all(&state_dir)?;
        std::fs::create_dir_all(daemon.runtime_root())?;
        for stale in ["exit", "shim.sock", "shim.pid", "pid"] {
            match std::fs::remove_file(state_dir.join(stale)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    };
    prep().map_err(|e| ApiError::internal(format!("preparing {}: {e}", state_dir.display())))?;
    let fail = |err: ApiError, code: i64| {
        // Attach clients waiting for this start get EOF.
        lock(&entry.pending_attach).clear();
        entry.with(|r| {
            r.state.error = err.message.clone();
            r.state.exit_code = code;
        });
        let _ = persist(daemon, entry);
        err
    };
    let vrec = rec.clone();
    if let Err(e) = daemon
        .blocking(move |d| crate::volumes::activate(d, &vrec))
        .await
    {
        return Err(fail(e, 128));
    }
    let unmount = || async {
        let did = id.clone();
        let _ = daemon
            .blocking(move |d| d.images.unmount(&did).map_err(crate::images::api_error))
            .await;
    };
    let netns = match join_network(daemon, entry, &netmode).await {
        Ok(p) => p,
        Err(e) => {
            unmount().await;
            return Err(fail(e, 128));
        }
    };
    let rec = entry.snapshot();
    let spec = match super::spec::generate(&rec, &rootfs, &netmode, netns.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            attach::release_all(daemon, entry).await;
            unmount().await;
            return Err(fail(e, 128));
        }
    };
    let spec_bytes = serde_json::to_vec_pretty(&spec)
        .map_err(|e| ApiError::internal(format!("encoding config.json: {e}")))?;
    // The bundle lives in the exec root (tmpfs by design): atomic, never synced.
    write_file(
        &state_dir.join("config.json"),
        &spec_bytes,
        Durability::Volatile,
    )
    .map_err(|e| ApiError::internal(format!("writing config.json: {e}")))?;
    t.mark("spec");

    let tty = rec.config.tty == Some(true);
    let log_path = std::path::PathBuf::from(&rec.log_path);
    let runtime_root = daemon.runtime_root();
    let runtime_binary = daemon.runtime_binary(rec.host_config.runtime.as_deref())?;
    let (log_max_size, log_max_files) = super::spec::log_rotation(&rec.host_config)?;
    let ready = daemon
        .shims
        .spawn(&SpawnArgs {
            id: &id,
            bundle: &state_dir,
            state_dir: &state_dir,
            runtime_root: &runtime_root,
            log_path: &log_path,
            terminal: tty,
            stdin: rec.config.open_stdin == Some(true),
            runtime_binary: runtime_binary.as_deref(),
            log_max_size,
            log_max_files,
        })
        .await;
    t.mark("shim_create");
    if let Err(e) = &ready {
        let (api, code) = start_error(e, &rec.path);
        attach::release_all(daemon, entry).await;
        unmount().await;
        return Err(fail(api, code));
    }
    let sock = shim_sock(daemon, &id);
    if let Ok(r) = &ready
        && netmode == NetMode::None
    {
        loopback_up(r.pid).await;
        t.mark("lo_up");
    }

    // Clients that attached before start get their streams now, before the process runs.
    let pending: Vec<_> = std::mem::take(&mut *lock(&entry.pending_attach));
    for p in pending {
        let r = shim::attach(&sock, p.stdin, p.stdout, p.stderr, None)
            .await
            .map_err(|e| ApiError::internal(format!("attaching to the container: {e}")));
        let _ = p.tx.send(r);
    }
    t.mark("attach");

    match shim::call(&sock, json!({"op": "start"})).await {
        Ok(v) => {
            t.mark("shim_start");
            let pid = v.get("pid").and_then(Value::as_i64).unwrap_or(0);
            entry.with(|r| {
                r.state.running = true;
                r.state.paused = false;
                r.state.restarting = false;
                r.state.oom_killed = false;
                r.state.pid = pid;
                r.state.exit_code = 0;
                r.state.error.clear();
                r.state.started_at = now_rfc3339();
                r.has_been_started_before = true;
            });
            *lock(&entry.unclaimed_exit) = false;
            entry.lifecycle.send_modify(|l| l.running = true);
            persist(daemon, entry)?;
            t.mark("persist");
            daemon.events.container(&entry.snapshot(), "start", &[]);
            spawn_watcher(daemon.clone(), entry.clone());
            Ok(())
        }
        Err(e) => {
            let (api, code) = start_error(&e, &rec.path);
            // The init may still sit in "created": delete alone would leave the shim behind.
            if let Err(e) = shim::discard(&sock).await {
                tracing::warn!(id = %id, error = %e, "releasing the shim after a failed start");
            }
            attach::release_all(daemon, entry).await;
            unmount().await;
            Err(fail(api, code))
        }
    }
}

/// Sets up the container's network before its spec is written: bridge endpoints in a pinned
/// netns, or the namespace, hostname and /etc files of the container it shares (`container:`).
/// Returns the netns to join (`None`: the runtime makes one, or none for `host`).
async fn join_network(
    daemon: &Arc<Daemon>,
    entry: &Arc<Entry>,
    netmode: &NetMode,
) -> Result<Option<std::path::PathBuf>, ApiError> {
    match netmode {
        NetMode::Bridge => Ok(Some(attach::connect_all(daemon, entry).await?)),
        NetMode::Container(other) => {
            let o = daemon.containers.get(other)?;
            let orec = o.snapshot();
            if !orec.state.running || orec.state.pid <= 0 {
                return Err(ApiError::conflict(format!(
                    "cannot join network of a non running container: {}",
                    orec.id
                )));
            }
            entry.with(|r| {
                r.hosts_path = orec.hosts_path.clone();
                r.resolv_conf_path = orec.resolv_conf_path.clone();
                r.hostname_path = orec.hostname_path.clone();
                r.config.hostname = orec.config.hostname.clone();
                r.config.domainname = orec.config.domainname.clone();
            });
            Ok(Some(std::path::PathBuf::from(format!(
                "/proc/{}/ns/net",
                orec.state.pid
            ))))
        }
        NetMode::None | NetMode::Host => Ok(None),
    }
}

/// Brings `lo` up in the created container's net namespace (Docker's `none` network has a
/// working loopback), from a short-lived thread ([`super::loopback`]).
async fn loopback_up(pid: i64) {
    if pid <= 0 {
        return;
    }
    match tokio::task::spawn_blocking(move || super::loopback::up(pid)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(pid, error = %e, "bringing up lo failed; the container's loopback stays down")
        }
        Err(e) => {
            tracing::warn!(pid, error = %e, "bringing up lo failed; the container's loopback stays down")
        }
    }
}

/// Reads `STATE_DIR/exit` as the shim wrote it.
pub fn read_exit_file(daemon: &Daemon, id: &str) -> Option<(i64, String, bool)> {
    let raw = std::fs::read(daemon.state_dir(id).join("exit")).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some((
        v.get("exit_code")?.as_i64()?,
        v.get("exited_at")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        v.get("oom_killed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    ))
}

/// Watches a running container's shim until the init exits, then records the exit.
pub fn spawn_watcher(daemon: Arc<Daemon>, entry: Arc<Entry>) {
    tokio::spawn(async move {
        let sock = shim_sock(&daemon, &entry.id);
        let waited = shim::call(&sock, json!({"op": "wait"})).await;
        let (code, at, oom) = match waited {
            Ok(v) => {
                let code = v.get("exit_code").and_then(Value::as_i64).unwrap_or(255);
                let at = v
                    .get("exited_at")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let oom = read_exit_file(&daemon, &entry.id).is_some_and(|(_, _, o)| o);
                (code, at, oom)
            }
            Err(e) => match read_exit_file(&daemon, &entry.id) {
                Some(x) => x,
                None => {
                    tracing::warn!(id = %entry.id, error = %e, "lost the shim; marking the container exited");
                    (255, String::new(), false)
                }
            },
        };
        let t = Phases::new("record_exit", &entry.id);
        record_exit(&daemon, &entry, code, at, oom);
        drop(t);
        after_exit(daemon, entry).await;
    });
}

/// Records an exit in the record and wakes waiters.
pub fn record_exit(daemon: &Daemon, entry: &Entry, code: i64, at: String, oom: bool) {
    entry.with(|r| {
        r.state.running = false;
        r.state.paused = false;
        r.state.pid = 0;
        r.state.exit_code = code;
        r.state.oom_killed = oom;
        r.state.finished_at = if at.is_empty() { now_rfc3339() } else { at };
    });
    if let Err(e) = persist(daemon, entry) {
        tracing::warn!(id = %entry.id, error = %e, "saving exit state");
    }
    daemon
        .events
        .container(&entry.snapshot(), "die", &[("exitCode", code.to_string())]);
    *lock(&entry.unclaimed_exit) = true;
    entry.lifecycle.send_modify(|l| {
        l.running = false;
        l.exits += 1;
        l.exit_code = code;
    });
}

/// After an exit: let attach streams drain, release the shim and the rootfs, then apply
/// AutoRemove or the restart policy.
pub async fn after_exit(daemon: Arc<Daemon>, entry: Arc<Entry>) {
    let mut t = Phases::new("after_exit", &entry.id);
    let mut attached = entry.attached.subscribe();
    let _ = attached.wait_for(|n| *n == 0).await;
    t.mark("attach_drained");
    if entry.with(|r| r.host_config.auto_remove == Some(true))
        && super::autoremove::remove_exited(&daemon, &entry).await
    {
        return;
    }
    let sock = shim_sock(&daemon, &entry.id);
    if let Err(e) = shim::call(&sock, json!({"op": "delete"})).await {
        // No shim to delete the container through the runtime: its cgroups stay unless we go.
        tracing::debug!(id = %entry.id, error = %e, "shim delete after exit");
        remove_leftover_cgroups(&entry.id);
    }
    t.mark("shim_delete");
    attach::release_all(&daemon, &entry).await;
    let id = entry.id.clone();
    if let Err(e) = daemon
        .blocking(move |d| d.images.unmount(&id).map_err(crate::images::api_error))
        .await
    {
        tracing::warn!(id = %entry.id, error = %e, "unmounting rootfs after exit");
    }
    t.mark("unmount");
    let rec = entry.snapshot();
    let vrec = rec.clone();
    let _ = daemon
        .blocking(move |d| {
            crate::volumes::deactivate(d, &vrec);
            Ok(())
        })
        .await;
    if rec.host_config.auto_remove == Some(true) {
        let res = remove(&daemon, &entry, true).await;
        t.mark("remove");
        if let Err(e) = res {
            tracing::warn!(id = %entry.id, error = %e, "auto-removing container");
        }
        return;
    }
    let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
    let name = policy.name.map(|n| n.to_string()).unwrap_or_default();
    let max = policy.maximum_retry_count.unwrap_or(0);
    let code = rec.state.exit_code;
    let restart = !rec.has_been_manually_stopped
        && match name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (max == 0 || rec.restart_count < max),
            _ => false,
        };
    if !restart {
        return;
    }
    let delay = Duration::from_millis(100u64 << rec.restart_count.clamp(0, 9));
    entry.with(|r| r.state.restarting = true);
    tokio::time::sleep(delay).await;
    let _op = entry.op.lock().await;
    // `restarting` stays set until the new start succeeded or failed, so no one sees an
    // "exited" container with the new restart count in between.
    let still = entry.with(|r| {
        let go = r.state.restarting && !r.has_been_manually_stopped && !r.state.removal_in_progress;
        if go {
            r.restart_count += 1;
        } else {
            r.state.restarting = false;
        }
        go
    });
    if still
        && daemon.containers.get(&entry.id).is_ok()
        && let Err(e) = start_locked(&daemon, &entry).await
    {
        tracing::warn!(id = %entry.id, error = %e, "restart by policy failed");
    }
    entry.with(|r| r.state.restarting = false);
}

/// Sends `sig` to the init; 409 when not running.
async fn signal_running(daemon: &Daemon, entry: &Entry, sig: i32) -> Result<(), ApiError> {
    if !entry.with(|r| r.state.running) {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            entry.id
        )));
    }
    match shim::call(
        &shim_sock(daemon, &entry.id),
        json!({"op": "kill", "signal": sig, "all": false}),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(ShimError::Io { .. }) if entry.with(|r| r.state.running) => {
            // The shim is gone (crashed, or killed by hand): nobody will report this exit.
            // Record it from the exit file if the shim left one, else as killed, so waiters
            // (stop, rm -f, wait) do not hang.
            let (code, at, oom) = read_exit_file(daemon, &entry.id).unwrap_or((
                128 + i64::from(libc::SIGKILL),
                String::new(),
                false,
            ));
            tracing::warn!(id = %entry.id, code, "shim unreachable; recording the container as exited");
            record_exit(daemon, entry, code, at, oom);
            Ok(())
        }
        Err(e) => Err(ApiError::internal(format!(
            "Cannot kill container: {}: {e}",
            entry.id
        ))),
    }
}

/// `POST /containers/{id}/kill`.
pub async fn kill(
    daemon: &Arc<Daemon>,
    entry: &Arc<Entry>,
    sig: Option<&str>,
) -> Result<(), ApiError> {
    let sig = signal::parse(sig.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
    if entry.with(|r| r.state.paused) && sig == libc::SIGKILL {
        let _ = shim::call(&shim_sock(daemon, &entry.id), json!({"op": "resume"})).await;
    }
    signal_running(daemon, entry, sig).await?;
    daemon
        .events
        .container(&entry.snapshot(), "kill", &[("signal", sig.to_string())]);
    Ok(())
}

/// Waits until the exit counter moves past `before`.
async fn wait_exit_after(entry: &Entry, before: u64) {
    let mut rx = entry.lifecycle.subscribe();
    let _ = rx.wait_for(|l| l.exits > before || l.removed).await;
}

/// `POST /containers/{id}/stop`: StopSignal, then SIGKILL after the timeout.
pub async fn stop(
    daemon: &Arc<Daemon>,
    entry: &Arc<Entry>,
    t: Option<i64>,
    sig: Option<&str>,
) -> Result<Outcome, ApiError> {
    let _op = entry.op.lock().await;
    stop_locked(daemon, entry, t, sig).await
}

async fn stop_locked(
    daemon: &Arc<Daemon>,
    entry: &Arc<Entry>,
    t: Option<i64>,
    sig: Option<&str>,
) -> Result<Outcome, ApiError> {
    let rec = entry.snapshot();
    entry.with(|r| {
        r.has_been_manually_stopped = true;
        r.state.restarting = false;
    });
    // On disk before the signal: a berthd killed mid-stop must not restart an
    // `unless-stopped` container the user stopped.
    let _ = persist(daemon, entry);
    if !rec.state.running {
        return Ok(Outcome::NotModified);
    }
    let sig = signal::parse(
        sig.filter(|s| !s.is_empty())
            .or(rec.config.stop_signal.as_deref())
            .unwrap_or("SIGTERM"),
    )?;
    let timeout = t.or(rec.config.stop_timeout).unwrap_or(10);
    let before = entry.lifecycle.borrow().exits;
    if rec.state.paused {
        let _ = shim::call(&shim_sock(daemon, &entry.id), json!({"op": "resume"})).await;
    }
    let _ = signal_running(daemon, entry, sig).await;
    let waited = if timeout < 0 {
        wait_exit_after(entry, before).await;
        true
    } else {
        tokio::time::timeout(
            Duration::from_secs(timeout as u64),
            wait_exit_after(entry, before),
        )
        .await
        .is_ok()
    };
    if !waited {
        let _ = signal_running(daemon, entry, libc::SIGKILL).await;
        wait_exit_after(entry, before).await;
    }
    daemon.events.container(&entry.snapshot(), "stop", &[]);
    Ok(Outcome::Done)
}

/// `POST /containers/{id}/restart`.
pub async fn restart(
    daemon: &Arc<Daemon>,
    entry: &Arc<Entry>,
    t: Option<i64>,
    sig: Option<&str>,
) -> Result<(), ApiError> {
    let _op = entry.op.lock().await;
    stop_locked(daemon, entry, t, sig).await?;
    // Let the exit handling release the shim before starting a new one.
    let mut attached = entry.attached.subscribe();
    let _ = attached.wait_for(|n| *n == 0).await;
    entry.with(|r| r.has_been_manually_stopped = false);
    start_locked(daemon, entry).await?;
    daemon.events.container(&entry.snapshot(), "restart", &[]);
    Ok(())
}

/// `pause`/`unpause`.
pub async fn set_paused(
    daemon: &Arc<Daemon>,
    entry: &Arc<Entry>,
    pause: bool,
) -> Result<(), ApiError> {
    let _op = entry.op.lock().await;
    let st = entry.with(|r| r.state.clone());
    if !st.running {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            entry.id
        )));
    }
    if pause && st.paused {
        return Err(ApiError::conflict(format!(
            "Container {} is already paused",
            entry.id
        )));
    }
    if !pause && !st.paused {
        return Err(ApiError::conflict(format!(
            "Container {} is not paused",
            entry.id
        )));
    }
    let op = if pause { "pause" } else { "resume" };
    shim::call(&shim_sock(daemon, &entry.id), json!({"op": op}))
        .await
        .map_err(|e| ApiError::internal(format!("Cannot {op} container {}: {e}", entry.id)))?;
    entry.with(|r| r.state.paused = pause);
    persist(daemon, entry)?;
    daemon.events.container(
        &entry.snapshot(),
        if pause { "pause" } else { "unpause" },
        &[],
    );
    Ok(())
}

/// A wait registered at request time: the state is captured before the response headers go
/// out (the docker CLI sends `start` only after the wait's headers arrived).
#[derive(Debug)]
pub struct PendingWait {
    rx: tokio::sync::watch::Receiver<super::store::Lifecycle>,
    now: super::store::Lifecycle,
    condition: String,
    entry: Arc<Entry>,
}

/// `POST /containers/{id}/wait`, first half: validate and capture the current state.
pub fn wait_begin(entry: &Arc<Entry>, condition: &str) -> Result<PendingWait, ApiError> {
    if !matches!(condition, "" | "not-running" | "next-exit" | "removed") {
        return Err(ApiError::invalid(format!(
            "invalid condition: {condition:?}"
        )));
    }
    let rx = entry.lifecycle.subscribe();
    let now = *rx.borrow();
    Ok(PendingWait {
        rx,
        now,
        condition: condition.to_owned(),
        entry: entry.clone(),
    })
}

impl PendingWait {
    /// Second half: resolves when the condition is met.
    pub async fn finish(mut self) -> Result<WaitResponse, ApiError> {
        let now = self.now;
        let entry = self.entry;
        let done = |l: &super::store::Lifecycle| WaitResponse {
            status_code: l.exit_code,
            error: None,
        };
        let closed = |_| ApiError::internal("container state channel closed");
        match self.condition.as_str() {
            "removed" => {
                let l = *self.rx.wait_for(|l| l.removed).await.map_err(closed)?;
                Ok(done(&l))
            }
            cond => {
                if !now.running {
                    let mut unclaimed = lock(&entry.unclaimed_exit);
                    if cond != "next-exit" || *unclaimed {
                        *unclaimed = false;
                        return Ok(done(&now));
                    }
                }
                let l = *self
                    .rx
                    .wait_for(|l| l.exits > now.exits || l.removed)
                    .await
                    .map_err(closed)?;
                *lock(&entry.unclaimed_exit) = false;
                Ok(done(&l))
            }
        }
    }
}

/// Wraps a wait failure into the wait body (the CLI reads `Error.Message`).
pub fn wait_failed(msg: String) -> WaitResponse {
    WaitResponse {
        status_code: -1,
        error: Some(WaitError { message: msg }),
    }
}

/// Removes `/berth/<id>` in every cgroup hierarchy if it is still there: the runtime removes it
/// when the shim deletes the container, but a shim that died (or was killed) never did.
/// Best effort: a cgroup that still has processes stays.
pub(super) fn remove_leftover_cgroups(id: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let cg = h.path().join("berth").join(id);
        if cg.is_dir()
            && let Err(e) = std::fs::remove_dir(&cg)
        {
            tracing::debug!(path = %cg.display(), error = %e, "removing a leftover cgroup");
        }
    }
}

/// `DELETE /containers/{id}`.
pub async fn remove(daemon: &Arc<Daemon>, entry: &Arc<Entry>, force: bool) -> Result<(), ApiError> {
    let _op = entry.op.lock().await;
    let mut t = Phases::new("remove", &entry.id);
    let st = entry.with(|r| r.state.clone());
    if st.removal_in_progress {
        return Err(ApiError::conflict(format!(
            "removal of container {} is already in progress",
            entry.id
        )));
    }
    if st.running {
        if !force {
            let what = if st.paused { "paused" } else { "running" };
            return Err(ApiError::conflict(format!(
                "cannot remove container \"{}\": container is {what}: stop the container before removing or force remove",
                entry.with(|r| r.name.clone())
            )));
        }
        entry.with(|r| r.has_been_manually_stopped = true);
        let before = entry.lifecycle.borrow().exits;
        if st.paused {
            let _ = shim::call(&shim_sock(daemon, &entry.id), json!({"op": "resume"})).await;
        }
        let _ = signal_running(daemon, entry, libc::SIGKILL).await;
        wait_exit_after(entry, before).await;
    }
    entry.with(|r| {
        r.state.removal_in_progress = true;
        r.state.restarting = false;
    });
    let _ = persist(daemon, entry);
    t.mark("persist");
    let sock = shim_sock(daemon, &entry.id);
    if sock.exists() {
        let _ = shim::discard(&sock).await;
    }
    t.mark("shim_delete");
    attach::release_all(daemon, entry).await;
    let id = entry.id.clone();
    let res = daemon
        .blocking(move |d| {
            d.images
                .detach_container_layers(&id)
                .map_err(crate::images::api_error)
        })
        .await;
    t.mark("layers");
    // No layers left is what removal wants (a removal cut short by a crash got that far).
    let trash = match res {
        Ok(trash) => Some(trash),
        Err(e) if e.http_status() == 404 => None,
        Err(e) => {
            entry.with(|r| {
                r.state.removal_in_progress = false;
                r.state.dead = true;
            });
            let _ = persist(daemon, entry);
            return Err(ApiError::internal(format!(
                "unable to remove filesystem for {}: {}",
                entry.id, e.message
            )));
        }
    };
    // The container dir leaves under a name recovery sweeps; its content (and the layers'
    // and the state dir's) is deleted off the request path: unlinking dozens of entries
    // waits on the filesystem journal, tens of ms on a busy disk.
    let dir = daemon.container_dir(&entry.id);
    let gone = files::removing_path(&dir);
    if let Err(e) = std::fs::rename(&dir, &gone)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        if let Some(t) = trash {
            t.purge();
        }
        return Err(ApiError::internal(format!(
            "removing {}: {e}",
            dir.display()
        )));
    }
    let state_dir = daemon.state_dir(&entry.id);
    tokio::task::spawn_blocking(move || delete_removed(trash, [state_dir, gone]));
    t.mark("dirs");
    forget(daemon, entry).await;
    Ok(())
}

/// Deletes what a committed removal left: the detached layers and the container's dirs (its
/// state dir, its renamed `<id>.removing`). Blocking.
pub(super) fn delete_removed(
    trash: Option<berth_image::container_layers::Trash>,
    dirs: [std::path::PathBuf; 2],
) {
    if let Some(t) = trash {
        t.purge();
    }
    for d in dirs {
        if let Err(e) = std::fs::remove_dir_all(&d)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %d.display(), error = %e, "removing a removed container's dir");
        }
    }
}

/// The last step of a removal, once the container dir is gone: the container leaves the
/// table (its name is free), its volumes are released, `removed` waiters wake.
pub(super) async fn forget(daemon: &Arc<Daemon>, entry: &Arc<Entry>) {
    let (name, code) = entry.with(|r| (r.name.clone(), r.state.exit_code));
    daemon.events.container(&entry.snapshot(), "destroy", &[]);
    daemon.containers.remove(&entry.id);
    daemon.note_removed(&entry.id, &name, code);
    // AutoRemove (`--rm`) takes the container's anonymous volumes with it, as dockerd does.
    let vrec = entry.snapshot();
    let _ = daemon
        .blocking(move |d| {
            let anon = vrec.host_config.auto_remove == Some(true);
            crate::volumes::release(d, &vrec, anon);
            Ok(())
        })
        .await;
    entry.lifecycle.send_modify(|l| l.removed = true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_keep_cli_exit_code_markers() {
        let e = ShimError::Failed {
            message: "exec failed".into(),
            exit_code: Some(127),
        };
        let (api, code) = start_error(&e, "nope");
        assert_eq!(code, 127);
        assert!(
            api.message.contains("executable file not found"),
            "{}",
            api.message
        );
        let e = ShimError::Failed {
            message: "exec failed".into(),
            exit_code: Some(126),
        };
        let (api, code) = start_error(&e, "/etc");
        assert_eq!(code, 126);
        assert!(api.message.contains("permission denied"));
        let e = ShimError::NoReady;
        let (api, _) = start_error(&e, "x");
        assert_eq!(api.http_status(), 500);
        assert!(!api.message.contains("not found"));
    }
}
