//! IPv4 address management for one bridge network: which address belongs to which endpoint.
//!
//! State lives in `<state dir>/<network id>.json` (design.md: `network/ipam/<network id>.json`) and is
//! rewritten atomically on every change, so a berthd crash never loses or tears an allocation.
//! After a restart [`Ipam::reconcile`] frees the addresses of endpoints that no longer exist and
//! re-records those that do: the file is derived state. So it is not fsynced (every bridge
//! container's start and exit change it: four fsyncs per `run --rm` otherwise), and a file a
//! host crash tore is set aside (`.corrupt`) and started over — after a host crash no endpoint
//! is alive, and berthd's start-up reconcile re-adds those of containers it restarts.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::subnet::Ipv4Net;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The gateway or ip-range does not fit the subnet.
    #[error("invalid IPAM configuration: {0}")]
    Config(String),
    /// Every address of the pool is taken.
    #[error("no available IPv4 addresses on network {network} ({pool})")]
    Exhausted {
        /// Network id.
        network: String,
        /// The pool searched.
        pool: Ipv4Net,
    },
    /// A static address outside the subnet, or a reserved one.
    #[error("requested address {ip} is not usable in subnet {subnet}")]
    OutOfRange {
        /// Requested address.
        ip: Ipv4Addr,
        /// The network's subnet.
        subnet: Ipv4Net,
    },
    /// A static address already held by another endpoint (Docker's wording).
    #[error("Address already in use: {ip} is held by endpoint {holder}")]
    InUse {
        /// Requested address.
        ip: Ipv4Addr,
        /// Endpoint that holds it.
        holder: String,
    },
    /// Reading the state file failed.
    #[error("reading IPAM state {path}")]
    Read {
        /// State file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Writing the state file failed.
    #[error("writing IPAM state {path}")]
    Write {
        /// State file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// The address plan of one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfig {
    /// The network's subnet (`--subnet`).
    pub subnet: Ipv4Net,
    /// The gateway (`--gateway`); usually the bridge's own address.
    pub gateway: Ipv4Addr,
    /// Dynamic allocations come only from here when set (`--ip-range`); static ones may use the
    /// whole subnet, as in Docker.
    pub ip_range: Option<Ipv4Net>,
}

impl IpamConfig {
    /// Checks that gateway and range fit the subnet.
    pub fn validate(&self) -> Result<(), IpamError> {
        if !self.subnet.contains(self.gateway) {
            return Err(IpamError::Config(format!(
                "gateway {} is not in subnet {}",
                self.gateway, self.subnet
            )));
        }
        if let Some(r) = self.ip_range
            && !self.subnet.contains_net(&r)
        {
            return Err(IpamError::Config(format!(
                "ip-range {r} is not in subnet {}",
                self.subnet
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    config: IpamConfig,
    /// address → endpoint id
    allocations: BTreeMap<Ipv4Addr, String>,
    /// last dynamically allocated address: the search continues after it, so a just-released
    /// address is not handed out again at once (stale ARP caches of peers).
    last: Option<Ipv4Addr>,
}

/// The allocations of one network, backed by its state file.
#[derive(Debug)]
pub struct Ipam {
    network: String,
    path: PathBuf,
    state: State,
}

impl Ipam {
    /// Opens (or creates) the state of network `network_id` under `dir`. When a state file exists
    /// with a different configuration, the allocations that still fit the new subnet are kept.
    pub fn open(dir: &Path, network_id: &str, config: IpamConfig) -> Result<Self, IpamError> {
        config.validate()?;
        let path = dir.join(format!("{network_id}.json"));
        let state = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(mut st) => {
                    if st.config != config {
                        st.allocations.retain(|ip, _| config.subnet.contains(*ip));
                        st.config = config;
                    }
                    st
                }
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    tracing::warn!(path = %path.display(), error = %e, aside = %aside.display(), "unreadable IPAM state set aside; starting over (reconcile re-adds live endpoints)");
                    std::fs::rename(&path, &aside).map_err(|source| IpamError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    State {
                        config,
                        allocations: BTreeMap::new(),
                        last: None,
                    }
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => State {
                config,
                allocations: BTreeMap::new(),
                last: None,
            },
            Err(source) => return Err(IpamError::Read { path, source }),
        };
        let ipam = Self {
            network: network_id.to_string(),
            path,
            state,
        };
        ipam.save()?;
        Ok(ipam)
    }

    /// Removes the temp files a crash left behind in the middle of a save (`.<id>.json.tmp<pid>`,
    /// see `write_atomic`). Call at daemon start, before anything saves; returns how many went.
    pub fn remove_stale_temp_files(dir: &Path) -> Result<usize, IpamError> {
        let read = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(IpamError::Read {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut removed = 0;
        for ent in read.flatten() {
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".json.tmp") {
                let path = ent.path();
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(IpamError::Write { path, source }),
                }
            }
        }
        Ok(removed)
    }

    /// Deletes the state file of a removed network. Missing is fine.
    pub fn remove(dir: &Path, network_id: &str) -> Result<(), IpamError> {
        let path = dir.join(format!("{network_id}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IpamError::Write { path, source }),
        }
    }

    /// The configuration this state was opened with.
    pub fn config(&self) -> &IpamConfig {
        &self.state.config
    }

    fn save(&self) -> Result<(), IpamError> {
        let data = serde_json::to_vec_pretty(&self.state).map_err(|e| IpamError::Write {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&self.path, &data).map_err(|source| IpamError::Write {
            path: self.path.clone(),
            source,
        })
    }

    fn reserved(&self, ip: Ipv4Addr) -> bool {
        let s = &self.state.config.subnet;
        ip == self.state.config.gateway
            || (s.prefix_len() < 31 && (ip == s.network() || ip == s.broadcast()))
    }

    /// Allocates an address for `endpoint`: `requested` if given (static `--ip`), else the next
    /// free one after the last allocation. An endpoint that already holds an address gets the
    /// same one back (idempotent after a crash between allocate and save of the caller).
    pub fn allocate(
        &mut self,
        endpoint: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        if let Some((ip, _)) = self
            .state
            .allocations
            .iter()
            .find(|(ip, e)| e.as_str() == endpoint && requested.is_none_or(|r| r == **ip))
        {
            return Ok(*ip);
        }
        let ip = match requested {
            Some(ip) => {
                let subnet = self.state.config.subnet;
                if !subnet.contains(ip) || self.reserved(ip) {
                    return Err(IpamError::OutOfRange { ip, subnet });
                }
                if let Some(holder) = self.state.allocations.get(&ip) {
                    return Err(IpamError::InUse {
                        ip,
                        holder: holder.clone(),
                    });
                }
                ip
            }
            None => self.next_free()?,
        };
        self.state.allocations.insert(ip, endpoint.to_string());
        if requested.is_none() {
            self.state.last = Some(ip);
        }
        if let Err(e) = self.save() {
            self.state.allocations.remove(&ip);
            return Err(e);
        }
        Ok(ip)
    }

    fn next_free(&self) -> Result<Ipv4Addr, IpamError> {
        let pool = self
            .state
            .config
            .ip_range
            .unwrap_or(self.state.config.subnet);
        let first = u32::from(pool.network());
        let last = u32::from(pool.broadcast());
        let start = match self.state.last {
            Some(l) if pool.contains(l) => u32::from(l).wrapping_add(1),
            _ => first,
        };
        let size = u64::from(last - first) + 1;
        let mut cur = if start > last { first } else { start };
        for _ in 0..size {
            let ip = Ipv4Addr::from(cur);
            if !self.reserved(ip) && !self.state.allocations.contains_key(&ip) {
                return Ok(ip);
            }
            cur = if cur == last { first } else { cur + 1 };
        }
        Err(IpamError::Exhausted {
            network: self.network.clone(),
            pool,
        })
    }

    /// Frees every address held by `endpoint`. Releasing an unknown endpoint is a no-op.
    pub fn release(&mut self, endpoint: &str) -> Result<(), IpamError> {
        let before = self.state.allocations.len();
        self.state.allocations.retain(|_, e| e != endpoint);
        if self.state.allocations.len() != before {
            self.save()?;
        }
        Ok(())
    }

    /// The endpoint holding `ip`, if any.
    pub fn holder(&self, ip: Ipv4Addr) -> Option<&str> {
        self.state.allocations.get(&ip).map(String::as_str)
    }

    /// All allocations, address → endpoint id.
    pub fn allocations(&self) -> &BTreeMap<Ipv4Addr, String> {
        &self.state.allocations
    }

    /// Frees the addresses of endpoints not in `live` (after a berthd restart: containers removed
    /// while it was down, or a crash between allocation and endpoint creation). Returns what was
    /// freed.
    pub fn reconcile(
        &mut self,
        live: &HashSet<String>,
    ) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let stale: Vec<(Ipv4Addr, String)> = self
            .state
            .allocations
            .iter()
            .filter(|(_, e)| !live.contains(*e))
            .map(|(ip, e)| (*ip, e.clone()))
            .collect();
        if !stale.is_empty() {
            for (ip, _) in &stale {
                self.state.allocations.remove(ip);
            }
            self.save()?;
        }
        Ok(stale)
    }
}
