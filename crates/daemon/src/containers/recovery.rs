//! berthd start-up: load every `containers/*/config.v2.json`, reconnect to live shims, pick
//! up exits that happened while berthd was down, finish what a crash cut short (removals,
//! creates, starts) and restart containers whose policy says so.
//!
//! A SIGKILL can land between any two steps of an operation, so each container is reconciled
//! from what is really there (the shim's answer, its exit file, the mount table) rather than
//! from what the record says alone:
//! - shim running/paused: adopt it (even if the record missed the start);
//! - shim stopped, or gone, with an exit the record does not have: record it, then the usual
//!   after-exit work (release shim and rootfs, `--rm`, restart policy);
//! - shim only created (a start cut short), or stopped with the exit already recorded: release
//!   it and the rootfs, then treat the container as not running;
//! - removal in progress: finish it.
//!
//! Leftovers that belong to no container (a create cut short before `config.v2.json` was
//! written, a removal cut short after it was deleted) are removed: layers, state dirs,
//! runtime state.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::files::{load_record, now_rfc3339, save_record};
use super::lifecycle::{after_exit, read_exit_file, record_exit, spawn_watcher};
use super::record::ZERO_TIME;
use super::shim;
use super::store::Entry;
use crate::daemon::Daemon;

/// How long a shim may take to answer at start-up before it counts as gone (a wedged shim
/// must not keep berthd from serving).
const SHIM_ANSWER: Duration = Duration::from_secs(5);

/// What the shim of a container says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShimView {
    /// The init runs (maybe frozen).
    Up { paused: bool, pid: i64 },
    /// Created but never started: a start was cut short.
    Created,
    /// The init exited; the shim waits for berthd to collect it.
    Stopped,
    /// No shim answers.
    Gone,
}

async fn call(sock: &Path, op: &str) -> Option<serde_json::Value> {
    if !sock.exists() {
        return None;
    }
    tokio::time::timeout(SHIM_ANSWER, shim::call(sock, json!({ "op": op })))
        .await
        .ok()?
        .ok()
}

async fn shim_view(daemon: &Daemon, id: &str) -> ShimView {
    let Some(v) = call(&daemon.state_dir(id).join("shim.sock"), "state").await else {
        return ShimView::Gone;
    };
    match v.get("status").and_then(|s| s.as_str()) {
        Some(s @ ("running" | "paused")) => ShimView::Up {
            paused: s == "paused",
            pid: v.get("pid").and_then(|p| p.as_i64()).unwrap_or(0),
        },
        Some("created") => ShimView::Created,
        _ => ShimView::Stopped,
    }
}

/// Live `berth-shim` processes by the container id of their `--state-dir` under `exec_root`
/// (found by command line: a shim spawned just before berthd died may not have bound its
/// socket yet, so the socket alone does not tell whether one is there).
fn live_shims(exec_root: &Path) -> HashMap<String, Vec<i32>> {
    let mut out: HashMap<String, Vec<i32>> = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let mut args = cmd.split(|b| *b == 0);
        if !args.next().is_some_and(|a0| a0.ends_with(b"berth-shim")) {
            continue;
        }
        let mut args = args.skip_while(|a| *a != b"--state-dir");
        if let Some(dir) = args
            .nth(1)
            .map(|d| Path::new(std::ffi::OsStr::from_bytes(d)))
            && dir.parent() == Some(exec_root)
            && let Some(id) = dir.file_name()
        {
            out.entry(id.to_string_lossy().into_owned())
                .or_default()
                .push(pid);
        }
    }
    out
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// The shim's view, waiting (bounded) for a shim that is still coming up: it either binds
/// its socket or, finding berthd gone, removes its container and exits.
async fn settled_view(daemon: &Daemon, id: &str, pids: Option<&Vec<i32>>) -> ShimView {
    let deadline = tokio::time::Instant::now() + SHIM_ANSWER;
    loop {
        let view = shim_view(daemon, id).await;
        let coming = pids.is_some_and(|p| p.iter().any(|&p| alive(p)));
        if view != ShimView::Gone || !coming || tokio::time::Instant::now() >= deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Loads and reconciles all containers. Bad directories are logged and skipped.
pub async fn recover(daemon: &Arc<Daemon>) {
    let (entries, keep) = load_all(daemon);
    sweep_orphans(daemon, &keep).await;
    let shims = live_shims(&daemon.config.exec_root);
    for entry in entries {
        let view = settled_view(daemon, &entry.id, shims.get(&entry.id)).await;
        reconcile(daemon, entry, view).await;
    }
}

/// Loads every container dir; a dir without `config.v2.json` is a create cut short and is
/// removed. Returns the entries and the ids whose layers and state must be kept (loaded, or
/// present but unreadable: those stay for inspection).
fn load_all(daemon: &Arc<Daemon>) -> (Vec<Arc<Entry>>, HashSet<String>) {
    let mut entries = Vec::new();
    let mut keep = HashSet::new();
    let Ok(read) = std::fs::read_dir(daemon.containers_dir()) else {
        return (entries, keep);
    };
    for ent in read.flatten() {
        let path = ent.path();
        if !path.is_dir() {
            continue;
        }
        let name = ent.file_name().to_string_lossy().into_owned();
        if super::files::is_removing(&name) {
            // Removed, content not yet deleted when berthd stopped.
            tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), error = %e, "removing a removed container's dir");
                }
            });
            continue;
        }
        if !path.join("config.v2.json").exists() || !path.join("hostconfig.json").exists() {
            // create writes config.v2.json last (after hostconfig.json), remove deletes it
            // first: nothing here is a container yet (or any more). A record without its
            // hostconfig.json is a removal cut short inside remove_dir_all (or a create
            // cut short by a berthd that wrote config.v2.json first).
            tracing::info!(dir = %path.display(), "removing an unfinished container dir");
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "removing unfinished container dir");
                keep.insert(name);
            }
            continue;
        }
        keep.insert(name);
        let rec = match load_record(&path) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "skipping unreadable container");
                continue;
            }
        };
        let entry = Entry::new(rec);
        if let Err(e) = daemon
            .containers
            .reserve_name(&entry.with(|r| r.name.clone()), &entry.id)
        {
            tracing::warn!(id = %entry.id, error = %e, "name clash while loading");
        }
        daemon.containers.insert(entry.clone());
        entries.push(entry);
    }
    (entries, keep)
}

/// Removes layers, state dirs and runtime state of containers that do not exist.
async fn sweep_orphans(daemon: &Arc<Daemon>, keep: &HashSet<String>) {
    let keep_layers = keep.clone();
    let _ = daemon
        .blocking(move |d| {
            for id in d.images.container_ids() {
                if keep_layers.contains(&id) {
                    continue;
                }
                tracing::info!(id = %id, "removing layers of a container that does not exist");
                if let Err(e) = d.images.remove_container_layers(&id) {
                    tracing::warn!(id = %id, error = %e, "removing orphaned container layers");
                }
            }
            Ok(())
        })
        .await;
    let is_id = |n: &str| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit());
    for dir in [daemon.config.exec_root.clone(), daemon.runtime_root()] {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for ent in read.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            if !is_id(&name) || keep.contains(&name) {
                continue;
            }
            let path = ent.path();
            // A shim left for a container that is gone: let it clean its container first.
            let sock = path.join("shim.sock");
            if sock.exists() {
                let _ = shim::discard(&sock).await;
            }
            tracing::info!(dir = %path.display(), "removing state of a container that does not exist");
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "removing orphaned state");
            }
        }
    }
}

/// Brings one container's record in line with reality (`view`: what its shim says).
async fn reconcile(daemon: &Arc<Daemon>, entry: Arc<Entry>, view: ShimView) {
    let rec = entry.snapshot();
    if rec.state.removal_in_progress {
        // A removal cut short: finish it (remove refuses a removal "in progress").
        entry.with(|r| r.state.removal_in_progress = false);
        tracing::info!(id = %entry.id, "finishing a removal cut short");
        let d = daemon.clone();
        tokio::spawn(async move {
            if let Err(err) = super::lifecycle::remove(&d, &entry, true).await {
                tracing::warn!(id = %entry.id, error = %err, "finishing a removal");
            }
        });
        return;
    }
    tracing::debug!(id = %entry.id, ?view, state = rec.state.status(), "reconciling");
    if let ShimView::Up { paused, pid } = view {
        adopt(daemon, &entry, paused, pid).await;
        return;
    }
    if view != ShimView::Created {
        let exit = read_exit_file(daemon, &entry.id);
        // An exit the record does not have: it was running (or about to be restarted) when
        // berthd died, or a start finished in the shim but not in the record.
        let unrecorded = rec.state.running
            || rec.state.restarting
            || exit
                .as_ref()
                .is_some_and(|(_, at, _)| !at.is_empty() && *at != rec.state.finished_at);
        if unrecorded {
            let (code, at, oom) = exit.unwrap_or((255, String::new(), false));
            tracing::info!(id = %entry.id, code, "container exited while berthd was down");
            if !rec.has_been_started_before {
                entry.with(|r| r.has_been_started_before = true);
            }
            record_exit(daemon, &entry, code, at, oom);
            tokio::spawn(after_exit(daemon.clone(), entry));
            return;
        }
    }
    // Not running: nothing of a run may stay behind.
    if view != ShimView::Gone
        && let Err(e) = shim::discard(&daemon.state_dir(&entry.id).join("shim.sock")).await
    {
        tracing::warn!(id = %entry.id, error = %e, "releasing the shim of a stopped container");
    }
    let id = entry.id.clone();
    if let Err(e) = daemon
        .blocking(move |d| d.images.unmount(&id).map_err(crate::images::api_error))
        .await
    {
        tracing::warn!(id = %entry.id, error = %e, "unmounting the rootfs of a stopped container");
    }
    let stale = entry.with(|r| {
        let stale = r.state.restarting || r.state.running;
        r.state.restarting = false;
        r.state.running = false;
        r.state.paused = false;
        r.state.pid = 0;
        stale
    });
    if stale {
        entry.lifecycle.send_modify(|l| l.running = false);
        persist(daemon, &entry);
    }
    not_running(daemon, entry);
}

/// Takes over a container whose init runs.
async fn adopt(daemon: &Arc<Daemon>, entry: &Arc<Entry>, paused: bool, pid: i64) {
    entry.with(|r| {
        if !r.state.running {
            // The start reached the shim but not the record.
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            if r.state.started_at == ZERO_TIME || !r.has_been_started_before {
                r.state.started_at = now_rfc3339();
            }
            r.has_been_started_before = true;
        }
        r.state.running = true;
        r.state.restarting = false;
        r.state.paused = paused;
        r.state.pid = pid;
    });
    entry.lifecycle.send_modify(|l| l.running = true);
    // Count the rootfs mount the previous berthd made, so the exit (not an earlier
    // mount/unmount pair such as `docker cp`) is what unmounts it.
    let id = entry.id.clone();
    if let Err(e) = daemon
        .blocking(move |d| d.images.mount(&id).map_err(crate::images::api_error))
        .await
    {
        tracing::warn!(id = %entry.id, error = %e, "counting the rootfs mount of a running container");
    }
    persist(daemon, entry);
    tracing::info!(id = %entry.id, pid, "reconnected to running container");
    spawn_watcher(daemon.clone(), entry.clone());
}

fn persist(daemon: &Daemon, entry: &Entry) {
    if let Err(e) = save_record(&daemon.container_dir(&entry.id), &entry.snapshot()) {
        tracing::warn!(id = %entry.id, error = %e, "saving recovered state");
    }
}

/// A stopped container at daemon start: finish an `--rm` whose removal a crash cut short, or
/// restart it when its policy says so (Docker's rules: `always`, even when stopped by hand;
/// `unless-stopped` unless stopped by hand; `on-failure` after a failure within the retry
/// limit, unless stopped by hand).
fn not_running(daemon: &Arc<Daemon>, entry: Arc<Entry>) {
    let rec = entry.snapshot();
    if !rec.has_been_started_before {
        return;
    }
    if rec.host_config.auto_remove == Some(true) {
        let d = daemon.clone();
        tokio::spawn(async move {
            if let Err(err) = super::lifecycle::remove(&d, &entry, true).await {
                tracing::warn!(id = %entry.id, error = %err, "removing leftover --rm container");
            }
        });
        return;
    }
    let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
    let name = policy.name.map(|n| n.to_string()).unwrap_or_default();
    let max = policy.maximum_retry_count.unwrap_or(0);
    let restart = match name.as_str() {
        "always" => true,
        "unless-stopped" => !rec.has_been_manually_stopped,
        "on-failure" => {
            !rec.has_been_manually_stopped
                && rec.state.exit_code != 0
                && (max == 0 || rec.restart_count < max)
        }
        _ => false,
    };
    if restart {
        let d = daemon.clone();
        tokio::spawn(async move {
            if let Err(err) = super::lifecycle::start(&d, &entry).await {
                tracing::warn!(id = %entry.id, error = %err, "restart at daemon start failed");
            }
        });
    }
}
