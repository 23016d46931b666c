//! A container's side of networking: which networks it belongs to (kept in its
//! `config.v2.json` as `NetworkSettings`), connecting them when it starts (netns, veth per
//! network, published ports on the first, `/etc/hosts` and `resolv.conf`, embedded DNS on
//! user networks) and releasing everything when it stops.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::ApiError;
use berth_api::models::{EndpointSettings, PortBinding, PortMap};
use berth_network::etcfiles::{self, DnsConfig, HostsConfig};
use berth_network::{Endpoint, EndpointRequest, PortRequest, Proto, VethTeardown};
use serde::{Deserialize, Serialize};

use super::record::NetworkRecord;
use crate::containers::record::ContainerRecord;
use crate::containers::store::Entry;
use crate::daemon::Daemon;
use crate::fsutil::{Durability, write_file};
use crate::images::error_chain;

/// A container's membership in one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `--network-alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default, rename = "IPv4Address")]
    pub ipv4_address: Option<Ipv4Addr>,
    /// Connection order: 0 is the primary network (eth0, published ports, default route).
    #[serde(default)]
    pub order: u32,
    /// The live endpoint while the container runs.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
}

/// `NetworkSettings` of `config.v2.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettingsRecord {
    /// The pinned netns while running, else empty.
    #[serde(default)]
    pub sandbox_key: String,
    /// By network name.
    #[serde(default)]
    pub networks: BTreeMap<String, Attachment>,
}

impl NetworkSettingsRecord {
    /// Attachments by connection order.
    pub fn ordered(&self) -> Vec<(&String, &Attachment)> {
        let mut v: Vec<_> = self.networks.iter().collect();
        v.sort_by_key(|(name, a)| (a.order, (*name).clone()));
        v
    }

    /// The primary attachment's live endpoint.
    pub fn primary_endpoint(&self) -> Option<&Endpoint> {
        self.ordered()
            .into_iter()
            .find_map(|(_, a)| a.endpoint.as_ref())
    }
}

/// The settings of `network` in a create/connect request (keyed by name or id).
pub fn endpoint_config<'a>(
    cfg: Option<&'a berth_api::models::NetworkingConfig>,
    net: &NetworkRecord,
    given: &str,
) -> Option<&'a EndpointSettings> {
    let map = cfg?.endpoints_config.as_ref()?;
    map.get(given)
        .or_else(|| map.get(&net.name))
        .or_else(|| map.get(&net.id))
        // The CLI keys the default bridge's settings by the network mode, `default`.
        .or_else(|| {
            net.is_default_bridge()
                .then(|| map.get("default"))
                .flatten()
        })
}

/// Builds the attachment for `net` from an endpoint config, checking what Docker checks.
pub fn attachment_for(
    net: &NetworkRecord,
    settings: Option<&EndpointSettings>,
    order: u32,
) -> Result<Attachment, ApiError> {
    let aliases = settings.and_then(|s| s.aliases.clone()).unwrap_or_default();
    let ip = settings
        .and_then(|s| s.ipam_config.as_ref())
        .and_then(|c| c.ipv4_address.as_deref())
        .filter(|s| !s.is_empty());
    let ipv4_address = match ip {
        Some(s) => Some(
            s.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::invalid(format!("invalid IPv4 address: {s}")))?,
        ),
        None => None,
    };
    if net.is_default_bridge() {
        if !aliases.is_empty() {
            return Err(ApiError::invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        if ipv4_address.is_some() {
            return Err(ApiError::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
    }
    if let (Some(ip), Some(b)) = (ipv4_address, &net.bridge)
        && !b.ipam.subnet.contains(ip)
    {
        return Err(ApiError::invalid(format!(
            "no configured subnet or ip-range contain the IP address {ip}"
        )));
    }
    Ok(Attachment {
        network_id: net.id.clone(),
        aliases,
        ipv4_address,
        order,
        endpoint: None,
    })
}

/// Where a running container's netns is pinned.
pub fn netns_path(daemon: &Daemon, id: &str) -> PathBuf {
    daemon.config.exec_root.join("netns").join(id)
}

fn parse_port_key(key: &str) -> Result<(u16, Proto), ApiError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(ApiError::invalid(format!(
                "publishing {other} ports is not supported by berthd"
            )));
        }
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::invalid(format!("invalid port specification: {key:?}")))?;
    Ok((port, proto))
}

/// The port requests of `-p` (`PortBindings`) and `-P` (every exposed port not bound).
pub fn port_requests(rec: &ContainerRecord) -> Result<Vec<PortRequest>, ApiError> {
    let h = &rec.host_config;
    let mut out = Vec::new();
    let mut bound = Vec::new();
    let mut keys: Vec<_> = h.port_bindings.iter().flatten().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (key, bindings) in keys {
        let (container_port, proto) = parse_port_key(key)?;
        bound.push((container_port, proto));
        for b in bindings.iter().flatten() {
            let ip = b.host_ip.as_deref().unwrap_or("");
            let host_ip = if ip.is_empty() {
                Ipv4Addr::UNSPECIFIED
            } else if ip.contains(':') {
                // IPv6 host addresses: berth publishes on IPv4 only.
                continue;
            } else {
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| ApiError::invalid(format!("invalid host IP {ip:?}")))?
            };
            let hp = b.host_port.as_deref().unwrap_or("");
            let host_port = if hp.is_empty() {
                None
            } else {
                // A range publishes on its first free port; berth takes its first.
                let first = hp.split_once('-').map_or(hp, |(a, _)| a);
                Some(first.parse::<u16>().map_err(|_| {
                    ApiError::invalid(format!("invalid host port {hp:?} for {key}"))
                })?)
            };
            out.push(PortRequest {
                host_ip,
                host_port: host_port.filter(|p| *p != 0),
                container_port,
                proto,
            });
        }
    }
    if h.publish_all_ports == Some(true) {
        let mut exposed: Vec<&String> = rec.config.exposed_ports.iter().flatten().collect();
        exposed.sort();
        for key in exposed {
            let (container_port, proto) = parse_port_key(key)?;
            if !bound.contains(&(container_port, proto)) {
                out.push(PortRequest {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: None,
                    container_port,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// `NetworkSettings.Ports`: every exposed or published port, with its live bindings.
pub fn ports_map(rec: &ContainerRecord) -> PortMap {
    let mut map = PortMap::new();
    for key in rec.config.exposed_ports.iter().flatten() {
        map.insert(normalise_key(key), None);
    }
    for key in rec
        .host_config
        .port_bindings
        .iter()
        .flatten()
        .map(|(k, _)| k)
    {
        map.insert(normalise_key(key), None);
    }
    if let Some(ep) = rec.network_settings.primary_endpoint() {
        for p in &ep.ports {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            map.entry(key)
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.to_string()),
                    host_port: Some(p.host_port.to_string()),
                });
        }
    }
    map
}

fn normalise_key(key: &str) -> String {
    if key.contains('/') {
        key.to_owned()
    } else {
        format!("{key}/tcp")
    }
}

/// The DNS names a container answers to on a user network.
fn dns_names(rec: &ContainerRecord, att: &Attachment) -> Vec<String> {
    let mut names = vec![rec.name.trim_start_matches('/').to_owned()];
    names.extend(att.aliases.iter().cloned());
    names.push(rec.id[..12].to_owned());
    if let Some(h) = rec.config.hostname.as_deref().filter(|h| !h.is_empty())
        && !names.iter().any(|n| n == h)
    {
        names.push(h.to_owned());
    }
    names
}

/// Connects a container being started to all its networks; returns the netns path to put in
/// its spec. On failure nothing stays behind.
pub async fn connect_all(daemon: &Arc<Daemon>, entry: &Entry) -> Result<PathBuf, ApiError> {
    let nets = &daemon.networks;
    let driver = nets.driver()?;
    let mut t = crate::containers::phases::Phases::new("connect", &entry.id);
    let _gate = nets.gate.read().await;
    t.mark("gate");
    let rec = entry.snapshot();
    let path = netns_path(daemon, &entry.id);
    // A leftover of a crash at the previous start: the netns (and its veths) go with it.
    let _ = berth_network::netns::remove_netns(&path);
    {
        let p = path.clone();
        tokio::task::spawn_blocking(move || berth_network::netns::create_netns(&p))
            .await
            .map_err(|e| ApiError::internal(format!("netns task: {e}")))?
            .map_err(|e| {
                ApiError::internal(format!(
                    "creating the network namespace: {}",
                    error_chain(&e)
                ))
            })?;
    }
    t.mark("netns");
    entry.with(|r| r.network_settings.sandbox_key = path.display().to_string());
    let result = connect_inner(daemon, entry, &rec, &driver, &path, &mut t).await;
    if let Err(e) = result {
        drop(_gate);
        release_all(daemon, entry).await;
        return Err(e);
    }
    Ok(path)
}

async fn connect_inner(
    daemon: &Arc<Daemon>,
    entry: &Entry,
    rec: &ContainerRecord,
    driver: &berth_network::BridgeDriver,
    netns: &Path,
    t: &mut crate::containers::phases::Phases,
) -> Result<(), ApiError> {
    let ports = port_requests(rec)?;
    let mut embedded_dns = false;
    for (i, (name, att)) in rec.network_settings.ordered().into_iter().enumerate() {
        // An empty id: the network did not exist when the container was created.
        let key = if att.network_id.is_empty() {
            name.as_str()
        } else {
            att.network_id.as_str()
        };
        let net = daemon
            .networks
            .get(key)
            .map_err(|_| ApiError::not_found(format!("network {name} not found")))?;
        if net.bridge.is_none() {
            return Err(ApiError::invalid(format!(
                "container cannot be connected to network {name} with driver {}",
                net.driver
            )));
        }
        let ports = if i == 0 { ports.clone() } else { Vec::new() };
        let req = endpoint_request(netns, i, att, ports, i == 0)?;
        let ep = setup_endpoint(daemon, driver, rec, &net, att, &req).await?;
        t.mark("endpoint");
        embedded_dns |= !net.is_default_bridge();
        let name = name.clone();
        entry.with(|r| {
            if let Some(a) = r.network_settings.networks.get_mut(&name) {
                a.network_id = net.id.clone();
                a.endpoint = Some(ep);
            }
        });
    }
    let rec = entry.snapshot();
    write_etc_files(&rec, embedded_dns)?;
    t.mark("etc_files");
    refresh_dns_server(daemon, &rec).await?;
    t.mark("dns");
    Ok(())
}

/// The request for endpoint `eth<index>` of an attachment.
fn endpoint_request(
    netns: &Path,
    index: usize,
    att: &Attachment,
    ports: Vec<PortRequest>,
    default_route: bool,
) -> Result<EndpointRequest, ApiError> {
    Ok(EndpointRequest {
        id: crate::fsutil::random_hex(32)
            .map_err(|e| ApiError::internal(format!("random id: {e}")))?,
        netns: netns.to_path_buf(),
        ifname: format!("eth{index}"),
        ip: att.ipv4_address,
        ports,
        default_route,
    })
}

/// Creates the endpoint on `net`'s bridge, registers the container's names on user networks
/// and reports Docker's `connect` event (one per endpoint, as a stop reports `disconnect`).
async fn setup_endpoint(
    daemon: &Daemon,
    driver: &berth_network::BridgeDriver,
    rec: &ContainerRecord,
    net: &NetworkRecord,
    att: &Attachment,
    req: &EndpointRequest,
) -> Result<Endpoint, ApiError> {
    let bridge = net.bridge.as_ref().ok_or_else(|| {
        ApiError::invalid(format!("network {} is not a bridge network", net.name))
    })?;
    let ep = driver.setup(bridge, req).await.map_err(|e| {
        setup_error(
            &e,
            &net.name,
            &format!("{} ({})", rec.name.trim_start_matches('/'), req.id),
        )
    })?;
    if !net.is_default_bridge() {
        daemon
            .networks
            .dns
            .add(&net.id, &dns_names(rec, att), ep.ip);
    }
    super::create::event(daemon, "connect", net, Some(&rec.id));
    Ok(ep)
}

fn setup_error(e: &berth_network::BridgeError, network: &str, endpoint: &str) -> ApiError {
    use berth_network::BridgeError as B;
    let msg = error_chain(e);
    match e {
        B::Port(_) => ApiError::internal(format!(
            "driver failed programming external connectivity on endpoint {endpoint}: {msg}"
        )),
        B::Ipam(_) | B::Config(_) => ApiError::invalid(format!("network {network}: {msg}")),
        _ => ApiError::internal(format!("connecting to network {network}: {msg}")),
    }
}

/// Writes `/etc/hosts` (own address) and `resolv.conf` (embedded DNS on user networks) for a
/// container whose endpoints are up.
pub fn write_etc_files(rec: &ContainerRecord, embedded_dns: bool) -> Result<(), ApiError> {
    let primary = rec.network_settings.primary_endpoint();
    let hosts = etcfiles::hosts(&HostsConfig {
        hostname: rec.config.hostname.clone().unwrap_or_default(),
        domainname: rec.config.domainname.clone().unwrap_or_default(),
        ip: primary.map(|e| e.ip),
        aliases: Vec::new(),
        extra_hosts: rec.host_config.extra_hosts.clone().unwrap_or_default(),
        host_gateway: primary.and_then(|e| e.gateway),
    })
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    // Rewritten at every start (nothing reads them before): a host crash loses nothing.
    write_file(
        Path::new(&rec.hosts_path),
        hosts.as_bytes(),
        Durability::Volatile,
    )
    .map_err(|e| ApiError::internal(format!("writing {}: {e}", rec.hosts_path)))?;
    let host = std::fs::read_to_string(etcfiles::host_resolv_conf_path()).unwrap_or_default();
    let dns = DnsConfig {
        servers: rec.host_config.dns.clone().unwrap_or_default(),
        search: rec.host_config.dns_search.clone().unwrap_or_default(),
        options: rec.host_config.dns_options.clone().unwrap_or_default(),
    };
    let resolv = if embedded_dns {
        etcfiles::resolv_conf_embedded(&host, &dns)
    } else {
        etcfiles::resolv_conf(&host, &dns)
    };
    write_file(
        Path::new(&rec.resolv_conf_path),
        resolv.as_bytes(),
        Durability::Volatile,
    )
    .map_err(|e| ApiError::internal(format!("writing {}: {e}", rec.resolv_conf_path)))
}

/// Releases everything a container's networking holds: its DNS server and names, every
/// endpoint (rules, ports, addresses), the netns (which takes the veths with it). Errors are
/// logged; every step is tried. Safe to call when nothing is connected.
pub async fn release_all(daemon: &Arc<Daemon>, entry: &Entry) {
    let nets = &daemon.networks;
    nets.stop_dns_server(&entry.id).await;
    let rec = entry.snapshot();
    let sandbox = rec.network_settings.sandbox_key.clone();
    let has_endpoint = rec
        .network_settings
        .networks
        .values()
        .any(|a| a.endpoint.is_some());
    if !has_endpoint && sandbox.is_empty() {
        return;
    }
    let _gate = nets.gate.read().await;
    for (name, att) in rec.network_settings.networks.iter() {
        let Some(ep) = &att.endpoint else { continue };
        nets.dns.remove(&att.network_id, ep.ip);
        match (nets.driver(), nets.get(&att.network_id)) {
            (Ok(d), Ok(net)) => {
                if let Some(b) = &net.bridge
                    && let Err(e) = d.teardown(b, ep, VethTeardown::WithNetns).await
                {
                    tracing::warn!(id = %entry.id, network = %name, error = %e, "releasing endpoint");
                }
                super::create::event(daemon, "disconnect", &net, Some(&entry.id));
            }
            _ => {
                tracing::warn!(id = %entry.id, network = %name, "network gone; its endpoint is cleaned up at the next berthd start")
            }
        }
    }
    if !sandbox.is_empty()
        && let Err(e) = berth_network::netns::remove_netns(Path::new(&sandbox))
    {
        tracing::warn!(id = %entry.id, error = %e, "removing the network namespace");
    }
    entry.with(|r| {
        r.network_settings.sandbox_key.clear();
        for a in r.network_settings.networks.values_mut() {
            a.endpoint = None;
        }
    });
}

/// Restarts the container's embedded DNS server for the user networks it now has endpoints
/// on (the server's network list is fixed when it starts); stops it when there are none.
async fn refresh_dns_server(daemon: &Daemon, rec: &ContainerRecord) -> Result<(), ApiError> {
    let user: Vec<String> = rec
        .network_settings
        .networks
        .values()
        .filter(|a| a.endpoint.is_some())
        .filter(|a| {
            daemon
                .networks
                .get(&a.network_id)
                .is_ok_and(|n| !n.is_default_bridge())
        })
        .map(|a| a.network_id.clone())
        .collect();
    daemon.networks.stop_dns_server(&rec.id).await;
    if user.is_empty() || rec.network_settings.sandbox_key.is_empty() {
        return Ok(());
    }
    let host = std::fs::read_to_string(etcfiles::host_resolv_conf_path()).unwrap_or_default();
    let upstreams =
        berth_network::dns::upstreams(&host, rec.host_config.dns.as_deref().unwrap_or(&[]));
    let server = berth_network::dns::serve(
        Path::new(&rec.network_settings.sandbox_key),
        daemon.networks.dns.clone(),
        user,
        upstreams,
    )
    .map_err(|e| {
        ApiError::internal(format!(
            "starting the embedded DNS server: {}",
            error_chain(&e)
        ))
    })?;
    daemon.networks.set_dns_server(&rec.id, server);
    Ok(())
}

/// `network connect` of a running container: a new veth `eth<N>` in its netns.
pub async fn connect_running(
    daemon: &Arc<Daemon>,
    entry: &Entry,
    net: &NetworkRecord,
    att: Attachment,
) -> Result<(), ApiError> {
    let rec = entry.snapshot();
    if net.bridge.is_none() {
        return Err(ApiError::invalid(format!(
            "network {} is not a bridge network",
            net.name
        )));
    }
    if rec.network_settings.sandbox_key.is_empty() {
        return Err(ApiError::conflict(format!(
            "container {} has no network namespace of its own",
            entry.id
        )));
    }
    let used: Vec<usize> = rec
        .network_settings
        .networks
        .values()
        .filter_map(|a| a.endpoint.as_ref())
        .filter_map(|e| e.ifname.strip_prefix("eth")?.parse().ok())
        .collect();
    let n = (0..).find(|i| !used.contains(i)).unwrap_or(0);
    let driver = daemon.networks.driver()?;
    let _gate = daemon.networks.gate.read().await;
    let has_gateway = rec
        .network_settings
        .networks
        .values()
        .any(|a| a.endpoint.as_ref().is_some_and(|e| e.gateway.is_some()));
    let netns = PathBuf::from(&rec.network_settings.sandbox_key);
    let req = endpoint_request(&netns, n, &att, Vec::new(), !has_gateway)?;
    let ep = setup_endpoint(daemon, &driver, &rec, net, &att, &req).await?;
    let name = net.name.clone();
    entry.with(|r| {
        let mut att = att;
        att.endpoint = Some(ep);
        r.network_settings.networks.insert(name, att);
    });
    refresh_dns_server(daemon, &entry.snapshot()).await
}

/// After a berthd restart: the embedded DNS servers of running containers (they lived in the
/// old process) and their names.
pub async fn restore_dns(daemon: &Daemon, rec: &ContainerRecord) {
    for att in rec.network_settings.networks.values() {
        if let Some(ep) = &att.endpoint
            && daemon
                .networks
                .get(&att.network_id)
                .is_ok_and(|n| !n.is_default_bridge())
        {
            daemon
                .networks
                .dns
                .add(&att.network_id, &dns_names(rec, att), ep.ip);
        }
    }
    if let Err(e) = refresh_dns_server(daemon, rec).await {
        tracing::warn!(id = %rec.id, error = %e.message, "restoring the embedded DNS server");
    }
}
