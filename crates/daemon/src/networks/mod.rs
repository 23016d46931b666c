//! berthd's networks: the predefined `bridge` (the default bridge, absent with `--bridge none`),
//! `host` and `none`, and user-defined bridge networks. Each is a [`NetworkRecord`] persisted
//! under `<data-root>/network/networks/<id>.json`; the kernel side (bridges, veths, IPAM,
//! nftables, embedded DNS) is `berth_network`'s [`BridgeDriver`].
//!
//! Containers attach through [`attach`] at start and detach at exit; berthd start re-asserts
//! bridges, IPAM, ports and firewall rules against the running containers ([`Networks::reassert`]).

pub mod attach;
pub mod create;
pub mod record;
pub mod recovery;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use berth_api::ApiError;
use berth_network::dns::{DnsRegistry, DnsServer};
use berth_network::{BridgeDriver, DefaultBridgeOptions, Ipv4Net};

use crate::config::Config;
use crate::containers::store::lock;
use crate::images::error_chain;
use record::{DRIVER_BRIDGE, DRIVER_HOST, DRIVER_NULL, NetworkRecord};

/// The networks table and the bridge driver. One per daemon.
#[derive(Default)]
pub struct Networks {
    /// Set by [`Networks::init`]; `Err` says why bridge networking is unavailable.
    driver: OnceLock<Result<Arc<BridgeDriver>, String>>,
    /// `<data-root>/network/networks`.
    dir: OnceLock<PathBuf>,
    /// By id.
    nets: Mutex<BTreeMap<String, NetworkRecord>>,
    /// Names on user-defined networks, for the embedded DNS servers.
    pub dns: Arc<DnsRegistry>,
    /// Embedded DNS server per running container on a user-defined network.
    dns_servers: Mutex<HashMap<String, DnsServer>>,
    /// Endpoint setups/teardowns hold it shared; [`Networks::reassert`] exclusively, so the set
    /// of live endpoints it reads is not changing under it.
    pub gate: tokio::sync::RwLock<()>,
    /// Serialises network create/remove (name uniqueness, subnet overlap checks).
    pub admin: tokio::sync::Mutex<()>,
    /// Candidate subnets for new networks (`--default-address-pool`), empty = Docker's.
    pools: OnceLock<Vec<Ipv4Net>>,
}

impl std::fmt::Debug for Networks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Networks").finish_non_exhaustive()
    }
}

/// Expands `--default-address-pool base=10.10.0.0/16,size=24` entries into candidate subnets
/// (at most 4096 per pool), in order.
pub fn parse_pools(specs: &[String]) -> Result<Vec<Ipv4Net>, String> {
    let mut out = Vec::new();
    for spec in specs {
        let mut base = None;
        let mut size = None;
        for kv in spec.split(',') {
            match kv.trim().split_once('=') {
                Some(("base", v)) => {
                    base = Some(v.parse::<Ipv4Net>().map_err(|e| format!("{spec:?}: {e}"))?)
                }
                Some(("size", v)) => {
                    size = Some(v.parse::<u8>().map_err(|_| format!("{spec:?}: bad size"))?)
                }
                _ => return Err(format!("{spec:?}: expected base=CIDR,size=N")),
            }
        }
        let base = base
            .ok_or_else(|| format!("{spec:?}: missing base"))?
            .trunc();
        let size = size.unwrap_or(base.prefix_len());
        if size < base.prefix_len() || size > 30 {
            return Err(format!(
                "{spec:?}: size must be between the base's prefix and 30"
            ));
        }
        let count = 1u64 << (size - base.prefix_len()).min(12);
        let step = 1u64 << (32 - size);
        for i in 0..count {
            let addr = u64::from(u32::from(base.network())) + i * step;
            let Ok(addr) = u32::try_from(addr) else { break };
            let net = Ipv4Net::new(addr.into(), size).map_err(|e| format!("{spec:?}: {e}"))?;
            out.push(net);
        }
    }
    Ok(out)
}

fn io_api(what: &str) -> impl Fn(record::RecordError) -> ApiError + '_ {
    move |e| ApiError::internal(format!("{what}: {}", error_chain(&e)))
}

impl Networks {
    /// The bridge driver, or Docker-style 500 saying why bridge networking is unavailable.
    pub fn driver(&self) -> Result<Arc<BridgeDriver>, ApiError> {
        match self.driver.get() {
            Some(Ok(d)) => Ok(d.clone()),
            Some(Err(e)) => Err(ApiError::internal(format!(
                "bridge networking is unavailable: {e}"
            ))),
            None => Err(ApiError::internal("networking is not initialised yet")),
        }
    }

    fn dir(&self) -> Result<&PathBuf, ApiError> {
        self.dir
            .get()
            .ok_or_else(|| ApiError::internal("networking is not initialised yet"))
    }

    /// Loads the stored networks, creates the predefined ones, brings up the default bridge
    /// and every user bridge. Returns warnings for the log; fails only when the default bridge
    /// was asked for and cannot be set up.
    pub async fn init(&self, config: &Config) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
        let dir = config.data_root.join("network").join("networks");
        let _ = self.dir.set(dir.clone());
        let pools = parse_pools(&config.default_address_pools)
            .map_err(|e| ApiError::invalid(format!("invalid --default-address-pool: {e}")))?;
        let _ = self.pools.set(pools.clone());
        let driver = BridgeDriver::new(&config.data_root.join("network").join("ipam"))
            .map(Arc::new)
            .map_err(|e| error_chain(&e));
        if let Err(e) = &driver {
            warnings.push(format!("bridge networking is unavailable: {e}"));
        }
        let _ = self.driver.set(driver);

        let (loaded, errs) = record::load_all(&dir);
        for e in errs {
            warnings.push(format!("skipping network record: {}", error_chain(&e)));
        }
        {
            let mut nets = lock(&self.nets);
            for n in loaded {
                nets.insert(n.id.clone(), n);
            }
        }
        for (name, driver) in [("host", DRIVER_HOST), ("none", DRIVER_NULL)] {
            if self.find_predefined(driver).is_none() {
                let rec = NetworkRecord {
                    name: name.to_owned(),
                    id: crate::fsutil::random_hex(32)
                        .map_err(|e| ApiError::internal(format!("random id: {e}")))?,
                    created: crate::containers::files::now_rfc3339(),
                    driver: driver.to_owned(),
                    internal: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    predefined: true,
                    bridge: None,
                };
                record::save(&dir, &rec).map_err(io_api("saving network"))?;
                lock(&self.nets).insert(rec.id.clone(), rec);
            }
        }
        self.init_default_bridge(config, &pools, &mut warnings)
            .await?;
        if let Ok(d) = self.driver() {
            for net in self.all() {
                if net.predefined {
                    continue;
                }
                if let Some(b) = &net.bridge
                    && let Err(e) = d.create_network(b).await
                {
                    warnings.push(format!(
                        "network {}: setting up bridge {}: {}",
                        net.name,
                        b.bridge,
                        error_chain(&e)
                    ));
                }
            }
        }
        Ok(warnings)
    }

    async fn init_default_bridge(
        &self,
        config: &Config,
        pools: &[Ipv4Net],
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let dir = self.dir()?.clone();
        let existing = self.find_predefined(DRIVER_BRIDGE);
        if config.bridge == "none" {
            if let Some(old) = existing {
                if let (Ok(d), Some(b)) = (self.driver(), &old.bridge)
                    && let Err(e) = d.remove_network(b).await
                {
                    warnings.push(format!("removing the old default bridge: {e}"));
                }
                record::delete(&dir, &old.id).map_err(io_api("removing network"))?;
                lock(&self.nets).remove(&old.id);
            }
            return Ok(());
        }
        let d = self.driver()?;
        let bip = match &config.bip {
            Some(s) => Some(
                s.parse::<Ipv4Net>()
                    .map_err(|e| ApiError::invalid(format!("invalid --bip {s:?}: {e}")))?,
            ),
            None => None,
        };
        let id = match &existing {
            Some(e) => e.id.clone(),
            None => crate::fsutil::random_hex(32)
                .map_err(|e| ApiError::internal(format!("random id: {e}")))?,
        };
        let taken: Vec<Ipv4Net> = self
            .all()
            .iter()
            .filter(|n| n.id != id)
            .filter_map(|n| n.bridge.as_ref().map(|b| b.ipam.subnet))
            .collect();
        let mut bn = match existing.as_ref().and_then(|e| e.bridge.clone()) {
            // Keep the stored subnet across restarts (and reboots), unless --bip or the
            // bridge name changed.
            Some(b) if bip.is_none() && b.bridge == config.bridge => b,
            _ => d
                .default_network(
                    &id,
                    &DefaultBridgeOptions {
                        bridge: config.bridge.clone(),
                        bip,
                        pool: (!pools.is_empty()).then(|| pools.to_vec()),
                        mtu: config.mtu,
                        icc: config.icc,
                        taken,
                    },
                )
                .await
                .map_err(|e| {
                    ApiError::internal(format!(
                        "choosing the default bridge's subnet: {}",
                        error_chain(&e)
                    ))
                })?,
        };
        if let Some(old) = existing.as_ref().and_then(|e| e.bridge.as_ref())
            && old.bridge != bn.bridge
            && let Err(e) = d.remove_network(old).await
        {
            warnings.push(format!(
                "removing the old default bridge {}: {e}",
                old.bridge
            ));
        }
        bn.mtu = config.mtu;
        bn.icc = config.icc;
        d.create_network(&bn).await.map_err(|e| {
            ApiError::internal(format!(
                "setting up the default bridge {}: {}",
                bn.bridge,
                error_chain(&e)
            ))
        })?;
        let rec = NetworkRecord {
            name: "bridge".to_owned(),
            id,
            created: existing
                .as_ref()
                .map(|e| e.created.clone())
                .unwrap_or_else(crate::containers::files::now_rfc3339),
            driver: DRIVER_BRIDGE.to_owned(),
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            predefined: true,
            bridge: Some(bn),
        };
        if existing.as_ref() != Some(&rec) {
            record::save(&dir, &rec).map_err(io_api("saving network"))?;
        }
        lock(&self.nets).insert(rec.id.clone(), rec);
        Ok(())
    }

    fn find_predefined(&self, driver: &str) -> Option<NetworkRecord> {
        lock(&self.nets)
            .values()
            .find(|n| n.predefined && n.driver == driver)
            .cloned()
    }

    /// Every network, oldest first.
    pub fn all(&self) -> Vec<NetworkRecord> {
        let mut v: Vec<NetworkRecord> = lock(&self.nets).values().cloned().collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        v
    }

    /// By full id, exact name, or unique id prefix — Docker's lookup order.
    pub fn get(&self, key: &str) -> Result<NetworkRecord, ApiError> {
        let nets = lock(&self.nets);
        if let Some(n) = nets.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = nets.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let hits: Vec<&NetworkRecord> = if key.is_empty() {
            Vec::new()
        } else {
            nets.values().filter(|n| n.id.starts_with(key)).collect()
        };
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::not_found(format!("network {key} not found"))),
            _ => Err(ApiError::invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                hits.len()
            ))),
        }
    }

    /// Stores a new or changed record.
    pub fn put(&self, rec: NetworkRecord) -> Result<(), ApiError> {
        record::save(self.dir()?, &rec).map_err(io_api("saving network"))?;
        lock(&self.nets).insert(rec.id.clone(), rec);
        Ok(())
    }

    /// Forgets a record.
    pub fn forget(&self, id: &str) -> Result<(), ApiError> {
        record::delete(self.dir()?, id).map_err(io_api("removing network"))?;
        lock(&self.nets).remove(id);
        Ok(())
    }

    /// Candidate subnets for a new network.
    pub fn pools(&self) -> Vec<Ipv4Net> {
        self.pools.get().cloned().unwrap_or_default()
    }

    /// Registers a container's embedded DNS server (replacing an older one).
    pub fn set_dns_server(&self, container: &str, server: DnsServer) {
        lock(&self.dns_servers).insert(container.to_owned(), server);
    }

    /// Stops a container's embedded DNS server, if any, and waits until its socket is closed.
    pub async fn stop_dns_server(&self, container: &str) {
        let server = lock(&self.dns_servers).remove(container);
        if let Some(s) = server {
            s.shutdown().await;
        }
    }

    /// Keeps dockerd's DOCKER-USER chain holding berth's accepts (a dockerd started after
    /// berthd creates the chain without them). Runs for the daemon's life.
    pub fn spawn_docker_user_refresher(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Ok(d) = me.driver() else { return };
                // Held until the chain is updated: a network removed between the snapshot and
                // the update would otherwise get its accepts back (until the next tick).
                let _admin = me.admin.lock().await;
                let bridges: Vec<_> = me.all().into_iter().filter_map(|n| n.bridge).collect();
                if bridges.is_empty() {
                    continue;
                }
                if let Err(e) = d.refresh_docker_user(&bridges).await {
                    tracing::debug!(error = %e, "refreshing DOCKER-USER accepts");
                }
            }
        });
    }
}
