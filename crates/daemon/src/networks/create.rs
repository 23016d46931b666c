//! Network operations behind `/networks`: create, remove, prune, list, connect, disconnect.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_api::models::{EndpointSettings, NetworkCreateRequest};
use berth_api::{ApiError, Filters};
use berth_network::{BridgeNetwork, IpamConfig, Ipv4Net, VethTeardown};
use serde_json::{Value, json};

use super::attach::{self, Attachment};
use super::record::{DRIVER_BRIDGE, DRIVER_HOST, DRIVER_NULL, NetworkRecord};
use crate::containers::files::{now_rfc3339, save_record};
use crate::containers::network::NetMode;
use crate::containers::store::Entry;
use crate::daemon::Daemon;
use crate::images::error_chain;

const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const OPT_MTU: &str = "com.docker.network.driver.mtu";
const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";

fn parse_net(what: &str, s: &str) -> Result<Ipv4Net, ApiError> {
    s.parse::<Ipv4Net>()
        .map_err(|_| ApiError::invalid(format!("invalid {what}: {s:?}")))
}

/// Emits a network event (`create`, `destroy`, `connect`, `disconnect`).
pub fn event(daemon: &Daemon, action: &str, net: &NetworkRecord, container: Option<&str>) {
    let mut attrs = HashMap::new();
    attrs.insert("name".to_owned(), net.name.clone());
    attrs.insert("type".to_owned(), net.driver.clone());
    if let Some(c) = container {
        attrs.insert("container".to_owned(), c.to_owned());
    }
    daemon.events.emit("network", action, &net.id, None, attrs);
}

/// `POST /networks/create`.
pub async fn create(daemon: &Arc<Daemon>, req: NetworkCreateRequest) -> Result<Value, ApiError> {
    let nets = &daemon.networks;
    let _admin = nets.admin.lock().await;
    let name = req.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::invalid("network name must not be empty"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        || !name.as_bytes()[0].is_ascii_alphanumeric()
    {
        return Err(ApiError::invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    let driver = req.driver.clone().filter(|d| !d.is_empty());
    let driver = driver.as_deref().unwrap_or(DRIVER_BRIDGE);
    match driver {
        DRIVER_BRIDGE => {}
        DRIVER_HOST | DRIVER_NULL => {
            return Err(ApiError::forbidden(format!(
                "only one instance of \"{driver}\" network is allowed"
            )));
        }
        other => return Err(ApiError::not_found(format!("plugin \"{other}\" not found"))),
    }
    if nets.all().iter().any(|n| n.name == name) {
        return Err(ApiError::conflict(format!(
            "network with name {name} already exists"
        )));
    }
    if req.enable_ipv6 == Some(true) {
        return Err(ApiError::not_implemented(
            "IPv6 networks are not supported by berthd yet",
        ));
    }
    if let Some(d) = req
        .ipam
        .as_ref()
        .and_then(|i| i.driver.as_deref())
        .filter(|d| !d.is_empty() && *d != "default")
    {
        return Err(ApiError::not_found(format!("plugin \"{d}\" not found")));
    }
    let options: BTreeMap<String, String> = req
        .options
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let id =
        crate::fsutil::random_hex(32).map_err(|e| ApiError::internal(format!("random id: {e}")))?;
    let bridge_name = options
        .get(OPT_BRIDGE_NAME)
        .cloned()
        .unwrap_or_else(|| format!("br-{}", &id[..12]));
    if nets
        .all()
        .iter()
        .any(|n| n.bridge.as_ref().is_some_and(|b| b.bridge == bridge_name))
    {
        return Err(ApiError::conflict(format!(
            "bridge name {bridge_name} is already used by another network"
        )));
    }
    let mtu = match options.get(OPT_MTU) {
        Some(m) => Some(
            m.parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| ApiError::invalid(format!("invalid {OPT_MTU}: {m:?}")))?,
        ),
        None => None,
    };
    let icc = match options.get(OPT_ICC).map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(v) => return Err(ApiError::invalid(format!("invalid {OPT_ICC}: {v:?}"))),
    };
    let configs = req
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::not_implemented(
            "berthd supports one IPv4 subnet per network",
        ));
    }
    let driver_obj = nets.driver()?;
    let taken: Vec<Ipv4Net> = nets
        .all()
        .iter()
        .filter_map(|n| n.bridge.as_ref().map(|b| b.ipam.subnet))
        .collect();
    let conf = configs.first();
    let subnet = match conf
        .and_then(|c| c.subnet.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(s) => {
            let s = parse_net("subnet", s)?.trunc();
            if taken.iter().any(|t| t.overlaps(&s)) {
                return Err(ApiError::forbidden(
                    "Pool overlaps with other one on this address space",
                ));
            }
            s
        }
        None => {
            let pools = nets.pools();
            driver_obj
                .choose_subnet((!pools.is_empty()).then_some(pools.as_slice()), &taken)
                .await
                .map_err(|e| {
                    ApiError::forbidden(format!(
                        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: {}",
                        error_chain(&e)
                    ))
                })?
        }
    };
    let gateway = match conf
        .and_then(|c| c.gateway.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(g) => g
            .parse::<Ipv4Addr>()
            .map_err(|_| ApiError::invalid(format!("invalid gateway address {g:?}")))?,
        None => subnet.first_host(),
    };
    let ip_range = match conf
        .and_then(|c| c.ip_range.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(r) => Some(parse_net("ip-range", r)?),
        None => None,
    };
    let ipam = IpamConfig {
        subnet,
        gateway,
        ip_range,
    };
    ipam.validate()
        .map_err(|e| ApiError::invalid(error_chain(&e)))?;
    let bridge = BridgeNetwork {
        id: id.clone(),
        bridge: bridge_name,
        ipam,
        mtu,
        internal: req.internal == Some(true),
        icc,
    };
    let rec = NetworkRecord {
        name,
        id: id.clone(),
        created: now_rfc3339(),
        driver: DRIVER_BRIDGE.to_owned(),
        internal: bridge.internal,
        attachable: req.attachable == Some(true),
        labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
        options,
        predefined: false,
        bridge: Some(bridge.clone()),
    };
    driver_obj.create_network(&bridge).await.map_err(|e| {
        ApiError::internal(format!(
            "creating bridge {}: {}",
            bridge.bridge,
            error_chain(&e)
        ))
    })?;
    if let Err(e) = nets.put(rec.clone()) {
        let _ = driver_obj.remove_network(&bridge).await;
        return Err(e);
    }
    event(daemon, "create", &rec, None);
    Ok(json!({"Id": id, "Warning": ""}))
}

/// Containers with a live endpoint on `net`: Docker's `Containers` map.
pub fn containers_json(daemon: &Daemon, net: &NetworkRecord) -> Value {
    let mut map = serde_json::Map::new();
    for e in daemon.containers.all() {
        let rec = e.snapshot();
        for att in rec.network_settings.networks.values() {
            if att.network_id != net.id {
                continue;
            }
            if let Some(ep) = &att.endpoint {
                map.insert(
                    rec.id.clone(),
                    json!({
                        "Name": rec.name.trim_start_matches('/'),
                        "EndpointID": ep.id,
                        "MacAddress": ep.mac,
                        "IPv4Address": format!("{}/{}", ep.ip, ep.prefix_len),
                        "IPv6Address": "",
                    }),
                );
            }
        }
    }
    Value::Object(map)
}

/// Containers that name `net` in their settings (running or not).
fn users(daemon: &Daemon, net: &NetworkRecord) -> Vec<Arc<Entry>> {
    on_network(daemon, net, false)
}

/// Containers with an endpoint on `net` now.
fn active(daemon: &Daemon, net: &NetworkRecord) -> Vec<Arc<Entry>> {
    on_network(daemon, net, true)
}

fn on_network(daemon: &Daemon, net: &NetworkRecord, with_endpoint: bool) -> Vec<Arc<Entry>> {
    daemon
        .containers
        .all()
        .into_iter()
        .filter(|e| {
            e.with(|r| {
                r.network_settings
                    .networks
                    .values()
                    .any(|a| a.network_id == net.id && (!with_endpoint || a.endpoint.is_some()))
            })
        })
        .collect()
}

/// `DELETE /networks/{id}`.
pub async fn remove(daemon: &Arc<Daemon>, key: &str) -> Result<(), ApiError> {
    let nets = &daemon.networks;
    let _admin = nets.admin.lock().await;
    let net = nets.get(key)?;
    if net.predefined {
        return Err(ApiError::forbidden(format!(
            "{} is a pre-defined network and cannot be removed",
            net.name
        )));
    }
    if !active(daemon, &net).is_empty() {
        return Err(ApiError::forbidden(format!(
            "error while removing network: network {} id {} has active endpoints",
            net.name, net.id
        )));
    }
    remove_unchecked(daemon, &net).await
}

async fn remove_unchecked(daemon: &Arc<Daemon>, net: &NetworkRecord) -> Result<(), ApiError> {
    let nets = &daemon.networks;
    if let Some(b) = &net.bridge {
        nets.driver()?.remove_network(b).await.map_err(|e| {
            ApiError::internal(format!("removing bridge {}: {}", b.bridge, error_chain(&e)))
        })?;
    }
    nets.dns.remove_network(&net.id);
    nets.forget(&net.id)?;
    event(daemon, "destroy", net, None);
    Ok(())
}

fn filter_match(daemon: &Daemon, f: &Filters, n: &NetworkRecord) -> bool {
    let check = |name: &str, ok: &dyn Fn(&str) -> bool| -> bool {
        !f.contains(name) || f.get(name).iter().any(|w| ok(w))
    };
    let typ = if n.predefined { "builtin" } else { "custom" };
    check("name", &|w| n.name.contains(w))
        && check("id", &|w| n.id.starts_with(w))
        && check("driver", &|w| n.driver == w)
        && check("scope", &|w| w == "local")
        && check("type", &|w| w == typ)
        && check("dangling", &|w| {
            let dangling = !n.predefined && users(daemon, n).is_empty();
            (w == "true" || w == "1") == dangling
        })
        && f.match_labels("label", &labels_of(n))
}

fn labels_of(n: &NetworkRecord) -> HashMap<String, String> {
    n.labels.clone().into_iter().collect()
}

/// `GET /networks`.
pub fn list(daemon: &Daemon, filters: &Filters) -> Result<Vec<Value>, ApiError> {
    filters.validate(&["name", "id", "driver", "scope", "type", "label", "dangling"])?;
    Ok(daemon
        .networks
        .all()
        .iter()
        .filter(|n| filter_match(daemon, filters, n))
        .map(|n| n.to_json(containers_json(daemon, n)))
        .collect())
}

/// `POST /networks/prune`: removes user networks no container uses.
pub async fn prune(daemon: &Arc<Daemon>, filters: &Filters) -> Result<Vec<String>, ApiError> {
    filters.validate(&["label", "label!", "until"])?;
    let nets = &daemon.networks;
    let _admin = nets.admin.lock().await;
    let mut deleted = Vec::new();
    for n in nets.all() {
        if n.predefined || !users(daemon, &n).is_empty() {
            continue;
        }
        let labels_ok = filters.match_labels("label", &labels_of(&n))
            && filters
                .get("label!")
                .iter()
                .all(|w| match w.split_once('=') {
                    Some((k, v)) => n.labels.get(k).map(String::as_str) != Some(v),
                    None => !n.labels.contains_key(*w),
                });
        if !labels_ok {
            continue;
        }
        match remove_unchecked(daemon, &n).await {
            Ok(()) => deleted.push(n.name.clone()),
            Err(e) => tracing::warn!(network = %n.name, error = %e.message, "prune"),
        }
    }
    Ok(deleted)
}

fn persist(daemon: &Daemon, entry: &Entry) -> Result<(), ApiError> {
    save_record(&daemon.container_dir(&entry.id), &entry.snapshot())
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    daemon: &Arc<Daemon>,
    key: &str,
    container: &str,
    settings: Option<EndpointSettings>,
) -> Result<(), ApiError> {
    let net = daemon.networks.get(key)?;
    let entry = daemon.containers.get(container)?;
    let _op = entry.op.lock().await;
    let rec = entry.snapshot();
    let mode = rec.host_config.network_mode.clone().unwrap_or_default();
    let netmode = NetMode::parse(&mode, &daemon.config.bridge)?;
    if net.bridge.is_none() || !matches!(netmode, NetMode::Bridge) {
        return Err(ApiError::forbidden(format!(
            "container cannot be disconnected from host network or connected to host network: container sharing network namespace with another container or host cannot be connected to any other network ({} is on network mode {mode})",
            rec.name.trim_start_matches('/')
        )));
    }
    if rec.network_settings.networks.contains_key(&net.name) {
        return Err(ApiError::forbidden(format!(
            "endpoint with name {} already exists in network {}",
            rec.name.trim_start_matches('/'),
            net.name
        )));
    }
    let order = rec
        .network_settings
        .networks
        .values()
        .map(|a| a.order + 1)
        .max()
        .unwrap_or(0);
    let att: Attachment = attach::attachment_for(&net, settings.as_ref(), order)?;
    if rec.state.running {
        // Reports the `connect` event with the endpoint.
        attach::connect_running(daemon, &entry, &net, att).await?;
    } else {
        entry.with(|r| r.network_settings.networks.insert(net.name.clone(), att));
        event(daemon, "connect", &net, Some(&entry.id));
    }
    persist(daemon, &entry)?;
    Ok(())
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    daemon: &Arc<Daemon>,
    key: &str,
    container: &str,
    force: bool,
) -> Result<(), ApiError> {
    let net = daemon.networks.get(key)?;
    let entry = match daemon.containers.get(container) {
        Ok(e) => e,
        Err(e) if force => {
            tracing::debug!(error = %e.message, "disconnect --force of an unknown container");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let _op = entry.op.lock().await;
    let att = entry.with(|r| r.network_settings.networks.get(&net.name).cloned());
    let Some(att) = att else {
        return Err(ApiError::forbidden(format!(
            "container {} is not connected to network {}",
            entry.id, net.name
        )));
    };
    if net.bridge.is_none() {
        return Err(ApiError::forbidden(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    if let Some(ep) = &att.endpoint {
        let _gate = daemon.networks.gate.read().await;
        daemon.networks.dns.remove(&net.id, ep.ip);
        if let (Ok(d), Some(b)) = (daemon.networks.driver(), &net.bridge)
            && let Err(e) = d.teardown(b, ep, VethTeardown::Delete).await
        {
            tracing::warn!(id = %entry.id, network = %net.name, error = %e, "disconnect");
        }
    }
    entry.with(|r| r.network_settings.networks.remove(&net.name));
    persist(daemon, &entry)?;
    event(daemon, "disconnect", &net, Some(&entry.id));
    Ok(())
}
