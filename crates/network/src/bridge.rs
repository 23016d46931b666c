//! The bridge driver: what berthd calls. A network is a Linux bridge plus its IPAM state and
//! firewall rules; an endpoint is a veth pair between the bridge and a container's netns, an
//! address, and its published ports.
//!
//! Setup undoes its own partial work on failure. Teardown is setup's inverse, collects every
//! error and keeps going; it does not delete the veth when the netns is about to be removed
//! (`VethTeardown::WithNetns`): removing the netns takes the veth with it, ~1 ms against ~17 ms.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::firewall::{BridgeRules, EndpointRules, Firewall, FirewallError, PortMapping};
use crate::ipam::{Ipam, IpamConfig, IpamError};
use crate::netlink::{ContainerSide, Netlink, NetlinkError, format_mac, mac_from_ip};
use crate::ports::{PortError, PortRequest, PortTable};
use crate::subnet::{Ipv4Net, SubnetError, choose_free, default_pools};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Invalid network or endpoint configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Address management failed.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// Publishing a port failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A netlink step failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// An nftables step failed.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// No free subnet.
    #[error(transparent)]
    Subnet(#[from] SubnetError),
    /// Writing a sysctl failed.
    #[error("setting sysctl {path}")]
    Sysctl {
        /// The /proc/sys path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Every candidate host-side veth name was taken.
    #[error("no free host-side veth name for endpoint {0}")]
    VethName(String),
}

/// Every error of one teardown, in order. Teardown never stops at the first.
#[derive(Debug, Default)]
pub struct TeardownError {
    /// The failures.
    pub errors: Vec<BridgeError>,
}

impl fmt::Display for TeardownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "teardown failed: ")?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{e}")?;
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                write!(f, ": {s}")?;
                src = s.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for TeardownError {}

impl TeardownError {
    fn push<T>(&mut self, r: Result<T, impl Into<BridgeError>>) {
        if let Err(e) = r {
            self.errors.push(e.into());
        }
    }
    fn into_result(self) -> Result<(), TeardownError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// A bridge network as berthd stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeNetwork {
    /// Network id (names the IPAM state file).
    pub id: String,
    /// Bridge interface name (≤ 15 bytes): `berth0` or `com.docker.network.bridge.name`.
    pub bridge: String,
    /// Subnet, gateway, ip-range.
    pub ipam: IpamConfig,
    /// MTU of the bridge and veths (`com.docker.network.driver.mtu`); kernel default if `None`.
    pub mtu: Option<u32>,
    /// `--internal`: no default route, no traffic leaving the bridge.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc` (default true).
    pub icc: bool,
}

impl BridgeNetwork {
    fn rules(&self) -> BridgeRules {
        BridgeRules {
            bridge: self.bridge.clone(),
            subnet: self.ipam.subnet.trunc(),
            internal: self.internal,
            icc: self.icc,
        }
    }

    fn validate(&self) -> Result<(), BridgeError> {
        if self.bridge.is_empty() || self.bridge.len() > 15 || self.bridge.contains(['/', ' ']) {
            return Err(BridgeError::Config(format!(
                "invalid bridge name {:?}",
                self.bridge
            )));
        }
        self.ipam.validate()?;
        Ok(())
    }
}

/// What berthd asks for when connecting a container to a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    /// Endpoint id (unique; owns IPAM entries and firewall rules).
    pub id: String,
    /// The container's netns (from [`crate::netns::create_netns`]).
    pub netns: PathBuf,
    /// Interface name inside the container (`eth0`, `eth1` for a second network).
    pub ifname: String,
    /// Static address (`--ip`).
    pub ip: Option<Ipv4Addr>,
    /// Ports to publish.
    pub ports: Vec<PortRequest>,
    /// Install the default route via this network's gateway: only the container's first
    /// network does (a second default route is EEXIST; Docker picks one gateway endpoint).
    #[serde(default = "yes")]
    pub default_route: bool,
}

fn yes() -> bool {
    true
}

/// A connected endpoint; berthd persists it (NetworkSettings) and hands it back to
/// [`BridgeDriver::teardown`] and [`BridgeDriver::reassert`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Endpoint id.
    pub id: String,
    /// Network id.
    pub network_id: String,
    /// Bridge name.
    pub bridge: String,
    /// The container's netns path.
    pub netns: PathBuf,
    /// Interface name inside.
    pub ifname: String,
    /// Address.
    pub ip: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
    /// Default gateway (`None` on `--internal` networks).
    pub gateway: Option<Ipv4Addr>,
    /// MAC inside, `02:42:…`.
    pub mac: String,
    /// Host-side veth name.
    pub veth_host: String,
    /// Published ports with host ports resolved.
    pub ports: Vec<PortMapping>,
}

impl Endpoint {
    fn rules(&self) -> EndpointRules {
        EndpointRules {
            id: self.id.clone(),
            ip: self.ip,
            ports: self.ports.clone(),
        }
    }
}

/// berthd's flags for the default bridge network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefaultBridgeOptions {
    /// `--bridge`: the interface name (`berth0` when empty).
    pub bridge: String,
    /// `--bip`: the bridge's address with prefix, e.g. `172.30.0.1/16`.
    pub bip: Option<Ipv4Net>,
    /// `--default-address-pool` bases to choose from instead of 172.17–172.31/16.
    pub pool: Option<Vec<Ipv4Net>>,
    /// `--mtu`.
    pub mtu: Option<u32>,
    /// `--icc` (true by default in Docker).
    pub icc: bool,
    /// Subnets of berth's other networks, never chosen.
    pub taken: Vec<Ipv4Net>,
}

/// How teardown treats the veth pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VethTeardown {
    /// The caller removes the netns next (container stop/rm): leave the veth to die with it.
    WithNetns,
    /// The container keeps running (`network disconnect`): delete the veth now.
    Delete,
}

/// What [`BridgeDriver::reassert`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassertReport {
    /// Firewall rules added.
    pub rules_added: usize,
    /// Firewall rules removed.
    pub rules_removed: usize,
    /// Addresses freed by IPAM reconciliation (address, endpoint id).
    pub addresses_freed: Vec<(Ipv4Addr, String)>,
    /// Host-side veths on berth's bridges that belonged to no endpoint, deleted.
    pub veths_removed: Vec<String>,
}

/// The bridge driver. One per berthd; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct BridgeDriver {
    nl: Netlink,
    fw: Firewall,
    ipam_dir: PathBuf,
    ipams: Mutex<HashMap<String, Ipam>>,
    ports: Mutex<PortTable>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn write_sysctl(path: &str, value: &str) -> Result<(), BridgeError> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| BridgeError::Sysctl {
        path: path.to_string(),
        source,
    })
}

/// Host-side veth name for attempt `n`: `veth` + 7 hex digits from the endpoint id.
fn veth_name(endpoint: &str, n: u32) -> String {
    let h = format!("{endpoint}/{n}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("veth{:07x}", h & 0x0fff_ffff)
}

impl BridgeDriver {
    /// A driver keeping IPAM state under `ipam_dir` (design.md: `<data-root>/network/ipam`).
    /// Opens a netlink socket in the calling thread's netns; must run inside a tokio runtime.
    /// Removes IPAM temp files a crash (SIGKILL mid-save) left behind.
    pub fn new(ipam_dir: &Path) -> Result<Self, BridgeError> {
        Ipam::remove_stale_temp_files(ipam_dir)?;
        Ok(Self {
            nl: Netlink::connect()?,
            fw: Firewall::new(),
            ipam_dir: ipam_dir.to_path_buf(),
            ipams: Mutex::new(HashMap::new()),
            ports: Mutex::new(PortTable::new()),
        })
    }

    /// The netlink handle (host netns), for callers needing more (e.g. listing links).
    pub fn netlink(&self) -> &Netlink {
        &self.nl
    }

    /// The firewall, e.g. to delete the table on a non-live-restore shutdown.
    pub fn firewall(&self) -> &Firewall {
        &self.fw
    }

    /// Chooses a subnet for a new network: the first of `pool` (default 172.17–172.31/16) that
    /// overlaps neither a route of the host nor one of `taken` (other networks' subnets).
    pub async fn choose_subnet(
        &self,
        pool: Option<&[Ipv4Net]>,
        taken: &[Ipv4Net],
    ) -> Result<Ipv4Net, BridgeError> {
        let mut used = self.nl.ipv4_routes().await?;
        used.extend_from_slice(taken);
        let defaults = default_pools();
        Ok(choose_free(pool.unwrap_or(&defaults), &used)?)
    }

    /// Works out the default bridge network `id` for daemon start: `--bip` if given; else the
    /// address the bridge already carries (a berthd restart keeps its subnet even though the
    /// bridge's own route now "overlaps" it); else the first free pool subnet, gateway = first
    /// host. The caller then passes the result to [`BridgeDriver::create_network`].
    pub async fn default_network(
        &self,
        id: &str,
        opts: &DefaultBridgeOptions,
    ) -> Result<BridgeNetwork, BridgeError> {
        let bridge = if opts.bridge.is_empty() {
            "berth0".to_string()
        } else {
            opts.bridge.clone()
        };
        let addr = match opts.bip {
            Some(bip) => bip,
            None => {
                let existing = match self.nl.link_index(&bridge).await? {
                    Some(i) => self.nl.ipv4_addrs(i).await?.into_iter().next(),
                    None => None,
                };
                match existing {
                    Some(a) => a,
                    None => {
                        let s = self
                            .choose_subnet(opts.pool.as_deref(), &opts.taken)
                            .await?;
                        Ipv4Net::new(s.first_host(), s.prefix_len())?
                    }
                }
            }
        };
        Ok(BridgeNetwork {
            id: id.to_string(),
            bridge,
            ipam: IpamConfig {
                subnet: addr.trunc(),
                gateway: addr.addr(),
                ip_range: None,
            },
            mtu: opts.mtu,
            internal: false,
            icc: opts.icc,
        })
    }

    fn with_ipam<T>(
        &self,
        net: &BridgeNetwork,
        f: impl FnOnce(&mut Ipam) -> Result<T, IpamError>,
    ) -> Result<T, IpamError> {
        let mut map = lock(&self.ipams);
        if !map.contains_key(&net.id) {
            let ipam = Ipam::open(&self.ipam_dir, &net.id, net.ipam.clone())?;
            map.insert(net.id.clone(), ipam);
        }
        match map.get_mut(&net.id) {
            Some(ipam) => f(ipam),
            None => Err(IpamError::Config(format!("network {} vanished", net.id))),
        }
    }

    /// Creates (or re-asserts) the network: IPAM state, bridge with gateway address, MTU, up;
    /// `route_localnet=1` on this bridge only and `ip_forward=1`; firewall rules (and
    /// DOCKER-USER accepts when dockerd is around). Idempotent.
    pub async fn create_network(&self, net: &BridgeNetwork) -> Result<(), BridgeError> {
        net.validate()?;
        self.with_ipam(net, |_| Ok(()))?;
        let addr = Ipv4Net::new(net.ipam.gateway, net.ipam.subnet.prefix_len())?;
        self.nl.ensure_bridge(&net.bridge, addr, net.mtu).await?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )?;
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        self.fw.add_bridge(&net.rules()).await?;
        Ok(())
    }

    /// Re-inserts berth's DOCKER-USER accepts for `networks` (a dockerd started after berthd
    /// creates the chain without them). Cheap when nothing changed: call it periodically.
    pub async fn refresh_docker_user(&self, networks: &[BridgeNetwork]) -> Result<(), BridgeError> {
        let rules: Vec<BridgeRules> = networks.iter().map(BridgeNetwork::rules).collect();
        Ok(self.fw.refresh_docker_user(&rules).await?)
    }

    /// Removes the network: firewall rules (incl. DOCKER-USER), the bridge, the IPAM state.
    /// Every step is tried.
    pub async fn remove_network(&self, net: &BridgeNetwork) -> Result<(), TeardownError> {
        let mut errs = TeardownError::default();
        errs.push(self.fw.remove_bridge(&net.bridge).await);
        errs.push(self.nl.delete_link(&net.bridge).await);
        lock(&self.ipams).remove(&net.id);
        errs.push(Ipam::remove(&self.ipam_dir, &net.id));
        errs.into_result()
    }

    /// Connects a container: allocates the address, reserves the host ports, creates the veth
    /// pair (container end created directly in `req.netns` as `req.ifname` with a MAC derived
    /// from the address), configures address/up/default route inside, and adds the DNAT rules.
    /// On failure everything done so far is undone.
    pub async fn setup(
        &self,
        net: &BridgeNetwork,
        req: &EndpointRequest,
    ) -> Result<Endpoint, BridgeError> {
        if req.ifname.is_empty() || req.ifname.len() > 15 {
            return Err(BridgeError::Config(format!(
                "invalid interface name {:?}",
                req.ifname
            )));
        }
        let ip = self.with_ipam(net, |i| i.allocate(&req.id, req.ip))?;
        let ports = match lock(&self.ports).reserve(&req.id, &req.ports, true) {
            Ok(p) => p,
            Err(e) => {
                let _ = self.with_ipam(net, |i| i.release(&req.id));
                return Err(e.into());
            }
        };
        let mac = mac_from_ip(ip);
        let ep = Endpoint {
            id: req.id.clone(),
            network_id: net.id.clone(),
            bridge: net.bridge.clone(),
            netns: req.netns.clone(),
            ifname: req.ifname.clone(),
            ip,
            prefix_len: net.ipam.subnet.prefix_len(),
            gateway: (!net.internal).then_some(net.ipam.gateway),
            mac: format_mac(&mac),
            veth_host: String::new(),
            ports,
        };
        match self.connect(net, req, ep, mac).await {
            Ok(ep) => Ok(ep),
            Err((e, veth)) => {
                if let Some(v) = veth {
                    let _ = self.nl.delete_link(&v).await;
                }
                lock(&self.ports).release(&req.id);
                let _ = self.with_ipam(net, |i| i.release(&req.id));
                Err(e)
            }
        }
    }

    async fn connect(
        &self,
        net: &BridgeNetwork,
        req: &EndpointRequest,
        mut ep: Endpoint,
        mac: [u8; 6],
    ) -> Result<Endpoint, (BridgeError, Option<String>)> {
        let br = self
            .nl
            .link_index(&net.bridge)
            .await
            .map_err(|e| (e.into(), None))?
            .ok_or_else(|| (NetlinkError::NoLink(net.bridge.clone()).into(), None))?;
        let mut attempt = 0;
        let veth = loop {
            let name = veth_name(&req.id, attempt);
            match self
                .nl
                .add_veth(&name, br, &req.netns, &req.ifname, mac, net.mtu)
                .await
            {
                Ok(()) => break name,
                // The name may still be held by the veth of a netns removed a moment ago.
                Err(e) if e.errno() == Some(libc::EEXIST) && attempt < 16 => attempt += 1,
                Err(e) => return Err((e.into(), None)),
            }
        };
        ep.veth_host = veth.clone();
        self.nl
            .set_hairpin(&veth)
            .await
            .map_err(|e| (e.into(), Some(veth.clone())))?;
        let side = ContainerSide {
            ifname: req.ifname.clone(),
            addr: Ipv4Net::new(ep.ip, ep.prefix_len).map_err(|e| (e.into(), Some(veth.clone())))?,
            gateway: ep.gateway.filter(|_| req.default_route),
        };
        crate::netlink::configure_container_side(&req.netns, side)
            .await
            .map_err(|e| (e.into(), Some(veth.clone())))?;
        self.fw
            .add_endpoint(&ep.rules())
            .await
            .map_err(|e| (e.into(), Some(veth.clone())))?;
        Ok(ep)
    }

    /// Disconnects an endpoint: removes its DNAT rules, frees its host ports and address, and
    /// deletes the veth if `veth` says so. Every step is tried; all failures are returned.
    /// A veth already gone (netns removed) is not an error.
    pub async fn teardown(
        &self,
        net: &BridgeNetwork,
        ep: &Endpoint,
        veth: VethTeardown,
    ) -> Result<(), TeardownError> {
        let mut errs = TeardownError::default();
        if !ep.ports.is_empty() {
            errs.push(self.fw.remove_endpoint(&ep.id).await);
        }
        lock(&self.ports).release(&ep.id);
        errs.push(self.with_ipam(net, |i| i.release(&ep.id)));
        if veth == VethTeardown::Delete {
            errs.push(self.nl.delete_link(&ep.veth_host).await);
        }
        errs.into_result()
    }

    /// After a berthd restart (or to repair drift): re-creates the networks' bridges if missing,
    /// frees IPAM entries of endpoints not in `endpoints` and records the addresses of those
    /// that are, re-registers published ports, deletes host-side veths on these bridges that
    /// belong to no endpoint, and makes the firewall hold exactly the rules of `networks` and
    /// `endpoints` (stale ones, e.g. of networks removed while berthd was down, go away).
    pub async fn reassert(
        &self,
        networks: &[BridgeNetwork],
        endpoints: &[Endpoint],
    ) -> Result<ReassertReport, BridgeError> {
        let mut report = ReassertReport::default();
        for net in networks {
            self.create_network(net).await?;
            let live: HashSet<String> = endpoints
                .iter()
                .filter(|e| e.network_id == net.id)
                .map(|e| e.id.clone())
                .collect();
            let freed = self.with_ipam(net, |i| {
                let freed = i.reconcile(&live)?;
                for e in endpoints.iter().filter(|e| e.network_id == net.id) {
                    if i.holder(e.ip) != Some(e.id.as_str()) {
                        i.allocate(&e.id, Some(e.ip))?;
                    }
                }
                Ok(freed)
            })?;
            report.addresses_freed.extend(freed);
        }
        {
            let mut ports = lock(&self.ports);
            for e in endpoints {
                ports.release(&e.id);
                let reqs: Vec<PortRequest> = e
                    .ports
                    .iter()
                    .map(|p| PortRequest {
                        host_ip: p.host_ip,
                        host_port: Some(p.host_port),
                        container_port: p.container_port,
                        proto: p.proto,
                    })
                    .collect();
                // Try to re-reserve with sockets; fall back to bookkeeping only.
                if ports.reserve(&e.id, &reqs, true).is_err() {
                    let _ = ports.reserve(&e.id, &reqs, false);
                }
            }
        }
        let known: HashSet<&str> = endpoints.iter().map(|e| e.veth_host.as_str()).collect();
        for net in networks {
            if let Some(br) = self.nl.link_index(&net.bridge).await? {
                for v in self.nl.ports_of(br).await? {
                    if v.starts_with("veth") && !known.contains(v.as_str()) {
                        self.nl.delete_link(&v).await?;
                        report.veths_removed.push(v);
                    }
                }
            }
        }
        let bridges: Vec<BridgeRules> = networks.iter().map(BridgeNetwork::rules).collect();
        let eps: Vec<EndpointRules> = endpoints.iter().map(Endpoint::rules).collect();
        let (a, r) = self.fw.reassert(&bridges, &eps).await?;
        report.rules_added = a;
        report.rules_removed = r;
        Ok(report)
    }
}
