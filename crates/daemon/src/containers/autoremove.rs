//! `--rm` (AutoRemove) once the container has exited: commit and report the removal first,
//! clean the host afterwards.
//!
//! A `run --rm` client waits for `removed` before it exits, so everything between the exit and
//! that answer is on the user's clock. What a later request can observe is released before it:
//! the container leaves the table (its name is free), its network endpoints and IP addresses,
//! its anonymous volumes. What only the host sees — the shim and the runtime's cgroups, the
//! rootfs mount, the layers, the state dirs — is cleaned by a background task the daemon
//! waits for at shutdown ([`crate::daemon::Background`]).
//!
//! The commit is the rename of the container dir to `<id>.removing`. A crash after it leaves
//! that dir, the layers and the exec-root state of an id no record names: recovery's orphan
//! sweep removes all three (discarding a shim it still finds).

use std::sync::Arc;

use super::files;
use super::lifecycle::{delete_removed, forget, remove_leftover_cgroups};
use super::phases::Phases;
use super::shim;
use super::store::Entry;
use crate::daemon::Daemon;
use crate::networks::attach;

/// Removes an exited AutoRemove container the fast way. False when it could not commit the
/// removal (a removal already under way, the container running again, the rename refused):
/// the caller then takes the ordinary path.
pub async fn remove_exited(daemon: &Arc<Daemon>, entry: &Arc<Entry>) -> bool {
    let _op = entry.op.lock().await;
    let mut t = Phases::new("auto_remove", &entry.id);
    let (running, removing) = entry.with(|r| (r.state.running, r.state.removal_in_progress));
    if running || removing {
        return false;
    }
    let dir = daemon.container_dir(&entry.id);
    let gone = files::removing_path(&dir);
    if let Err(e) = std::fs::rename(&dir, &gone) {
        tracing::warn!(id = %entry.id, error = %e, "committing the removal of an exited --rm container");
        return false;
    }
    entry.with(|r| r.state.removal_in_progress = true);
    t.mark("commit");
    attach::release_all(daemon, entry).await;
    t.mark("network");
    forget(daemon, entry).await;
    t.mark("forget");
    let d = daemon.clone();
    let id = entry.id.clone();
    daemon
        .background
        .spawn(async move { clean_host(&d, &id, gone).await });
    true
}

/// Runtime state and cgroups (through the shim), rootfs mount, layers, dirs.
async fn clean_host(daemon: &Arc<Daemon>, id: &str, gone: std::path::PathBuf) {
    let mut t = Phases::new("auto_remove_cleanup", id);
    let sock = daemon.state_dir(id).join("shim.sock");
    // discard, not a bare delete: an init that never started (a start cut short by a crash,
    // found at recovery) must be killed before its shim lets go.
    if let Err(e) = shim::discard(&sock).await {
        tracing::debug!(id = %id, error = %e, "discarding the shim after exit");
        remove_leftover_cgroups(id);
    }
    t.mark("shim_delete");
    let owned = id.to_owned();
    let state_dir = daemon.state_dir(id);
    let res = daemon
        .blocking(move |d| {
            let trash = match d.images.detach_container_layers(&owned) {
                Ok(trash) => Some(trash),
                Err(e) => {
                    let e = crate::images::api_error(e);
                    if e.http_status() != 404 {
                        tracing::warn!(id = %owned, error = %e.message, "removing an auto-removed container's layers");
                    }
                    None
                }
            };
            delete_removed(trash, [state_dir, gone]);
            Ok(())
        })
        .await;
    if let Err(e) = res {
        tracing::warn!(id = %id, error = %e.message, "cleaning up after an auto-removed container");
    }
    t.mark("layers_dirs");
}
