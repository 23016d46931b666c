//! berthd start: make the kernel hold exactly the networking of the containers that still run.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::attach;
use crate::daemon::Daemon;
use crate::images::error_chain;

/// Re-asserts bridges, IPAM, published ports and firewall rules against the endpoints the
/// container records hold, removes netns pins no record names, releases what stopped
/// containers still hold (a crash between exit and release), and restarts the embedded DNS
/// servers of running containers. Call after container recovery.
pub async fn reassert(daemon: &Arc<Daemon>) {
    let nets = &daemon.networks;
    let Ok(driver) = nets.driver() else { return };
    let gate = nets.gate.write().await;
    // Under the gate no endpoint setup or teardown is half-done: every record is whole.
    let records: Vec<_> = daemon
        .containers
        .all()
        .into_iter()
        .map(|e| e.snapshot())
        .collect();
    let endpoints: Vec<_> = records
        .iter()
        .flat_map(|r| r.network_settings.networks.values())
        .filter_map(|a| a.endpoint.clone())
        .collect();
    let bridges: Vec<_> = nets.all().into_iter().filter_map(|n| n.bridge).collect();
    // Without a bridge network (`--bridge none`, no user networks) there is nothing to assert:
    // do not create berth's nft table for nothing.
    let result = if bridges.is_empty() && endpoints.is_empty() {
        Ok(Default::default())
    } else {
        driver.reassert(&bridges, &endpoints).await
    };
    match result {
        Ok(r) => tracing::info!(
            rules_added = r.rules_added,
            rules_removed = r.rules_removed,
            addresses_freed = r.addresses_freed.len(),
            veths_removed = r.veths_removed.len(),
            "networking re-asserted"
        ),
        Err(e) => tracing::warn!(error = %error_chain(&e), "re-asserting networking"),
    }
    let keep: HashSet<PathBuf> = records
        .iter()
        .filter(|r| !r.network_settings.sandbox_key.is_empty())
        .map(|r| PathBuf::from(&r.network_settings.sandbox_key))
        .collect();
    let dir = daemon.config.exec_root.join("netns");
    if let Ok(read) = std::fs::read_dir(&dir) {
        for ent in read.flatten() {
            let p = ent.path();
            if !keep.contains(&p) {
                tracing::info!(path = %p.display(), "removing a stale network namespace");
                if let Err(e) = berth_network::netns::remove_netns(&p) {
                    tracing::warn!(path = %p.display(), error = %e, "removing a stale network namespace");
                }
            }
        }
    }
    drop(gate);
    for entry in daemon.containers.all() {
        let rec = entry.snapshot();
        if rec.state.running {
            attach::restore_dns(daemon, &rec).await;
            continue;
        }
        let holds = !rec.network_settings.sandbox_key.is_empty()
            || rec
                .network_settings
                .networks
                .values()
                .any(|a| a.endpoint.is_some());
        // A container being started or stopped right now is left to that operation.
        if holds && let Ok(_op) = entry.op.try_lock() {
            attach::release_all(daemon, &entry).await;
            if let Err(e) = crate::containers::files::save_record(
                &daemon.container_dir(&entry.id),
                &entry.snapshot(),
            ) {
                tracing::warn!(id = %entry.id, error = %e.message, "saving released network state");
            }
        }
    }
}
