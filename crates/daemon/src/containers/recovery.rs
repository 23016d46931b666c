//! berthd start-up: load every `containers/*/config.v2.json`, reconnect to live shims, pick
//! up exits that happened while berthd was down, remove `--rm` leftovers and restart
//! containers whose policy says so.

use std::sync::Arc;

use serde_json::json;

use super::files::load_record;
use super::lifecycle::{after_exit, read_exit_file, record_exit, spawn_watcher};
use super::shim;
use super::store::Entry;
use crate::daemon::Daemon;

/// Loads and reconciles all containers. Bad directories are logged and skipped.
pub async fn recover(daemon: &Arc<Daemon>) {
    let dir = daemon.containers_dir();
    let Ok(read) = std::fs::read_dir(&dir) else {
        return;
    };
    for ent in read.flatten() {
        let path = ent.path();
        if !path.is_dir() {
            continue;
        }
        if super::files::is_removing(&ent.file_name().to_string_lossy()) {
            // Removed, content not yet deleted when berthd stopped.
            tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), error = %e, "removing a removed container's dir");
                }
            });
            continue;
        }
        let rec = match load_record(&path) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "skipping unreadable container");
                continue;
            }
        };
        let was_running = rec.state.running;
        // A removal cut short by a crash: finish it (dockerd does the same at restore).
        let removing = rec.state.removal_in_progress;
        let entry = Entry::new(rec);
        if removing {
            entry.with(|r| r.state.removal_in_progress = false);
        }
        if let Err(e) = daemon
            .containers
            .reserve_name(&entry.with(|r| r.name.clone()), &entry.id)
        {
            tracing::warn!(id = %entry.id, error = %e, "name clash while loading");
        }
        daemon.containers.insert(entry.clone());
        let sock = daemon.state_dir(&entry.id).join("shim.sock");
        let alive = shim::call(&sock, json!({"op": "state"})).await;
        match alive {
            Ok(v)
                if matches!(
                    v.get("status").and_then(|s| s.as_str()),
                    Some("running" | "paused")
                ) =>
            {
                let paused = v.get("status").and_then(|s| s.as_str()) == Some("paused");
                let pid = v.get("pid").and_then(|p| p.as_i64()).unwrap_or(0);
                entry.with(|r| {
                    r.state.running = true;
                    r.state.paused = paused;
                    r.state.pid = pid;
                });
                entry.lifecycle.send_modify(|l| l.running = true);
                tracing::info!(id = %entry.id, "reconnected to running container");
                spawn_watcher(daemon.clone(), entry.clone());
            }
            _ if was_running || entry.with(|r| r.state.restarting) => {
                // Exited while we were away (or the shim is gone).
                let (code, at, oom) =
                    read_exit_file(daemon, &entry.id).unwrap_or((255, String::new(), false));
                tracing::info!(id = %entry.id, code, "container exited while berthd was down");
                record_exit(daemon, &entry, code, at, oom);
                let d = daemon.clone();
                tokio::spawn(after_exit(d, entry.clone()));
            }
            _ if removing
                || entry.with(|r| {
                    r.host_config.auto_remove == Some(true) && r.has_been_started_before
                }) =>
            {
                // An --rm container whose removal was cut short by a berthd crash, or any
                // container whose `rm` was.
                let d = daemon.clone();
                let e = entry.clone();
                tokio::spawn(async move {
                    if let Err(err) = super::lifecycle::remove(&d, &e, true).await {
                        tracing::warn!(id = %e.id, error = %err, "removing leftover --rm container");
                    }
                });
            }
            _ => {
                let rec = entry.snapshot();
                let policy = rec
                    .host_config
                    .restart_policy
                    .as_ref()
                    .and_then(|p| p.name)
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                let restart_at_boot = policy == "always"
                    || (policy == "unless-stopped" && !rec.has_been_manually_stopped);
                if rec.has_been_started_before && restart_at_boot {
                    let d = daemon.clone();
                    let e = entry.clone();
                    tokio::spawn(async move {
                        if let Err(err) = super::lifecycle::start(&d, &e).await {
                            tracing::warn!(id = %e.id, error = %err, "restart at daemon start failed");
                        }
                    });
                }
            }
        }
    }
}
