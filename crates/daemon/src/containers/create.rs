//! `POST /containers/create`: validate, resolve the image, merge its defaults, reserve the
//! name, create the layers and write the container's directory.

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::ApiError;
use berth_api::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use berth_api::types::CreateResponse;

use super::files;
use super::names;
use super::network::NetMode;
use super::record::{ContainerRecord, GraphRecord, StateRecord};
use super::store::Entry;
use crate::daemon::Daemon;
use crate::fsutil::random_hex;
use crate::networks::attach::{self, NetworkSettingsRecord};

/// Splits the create body into the container config and host config.
fn split_body(
    body: ContainerCreateBody,
) -> Result<
    (
        ContainerConfig,
        HostConfig,
        Option<berth_api::models::NetworkingConfig>,
    ),
    ApiError,
> {
    let host = body.host_config.clone().unwrap_or_default();
    let net = body.networking_config.clone();
    let mut v = serde_json::to_value(&body)
        .map_err(|e| ApiError::internal(format!("re-encoding create body: {e}")))?;
    if let Some(obj) = v.as_object_mut() {
        obj.remove("HostConfig");
        obj.remove("NetworkingConfig");
    }
    let config: ContainerConfig = serde_json::from_value(v)
        .map_err(|e| ApiError::invalid(format!("invalid container config: {e}")))?;
    Ok((config, host, net))
}

/// A fresh 64-hex id whose 12-char short form is not all digits (Docker's rule, so the short
/// id never looks like a number).
fn new_id() -> Result<String, ApiError> {
    loop {
        let id = random_hex(32).map_err(|e| ApiError::internal(format!("generating id: {e}")))?;
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

/// Overlays `user` env entries onto `image` ones by key.
fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let mut out: Vec<String> = image.to_vec();
    for kv in user {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        if let Some(slot) = out
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            *slot = kv.clone();
        } else {
            out.push(kv.clone());
        }
    }
    out
}

/// Checks the network mode against the rest of the request as Docker does and returns the
/// networks the container will belong to. `container:<x>` is normalised to the full id.
fn initial_network_settings(
    daemon: &Daemon,
    netmode: &NetMode,
    host: &mut HostConfig,
    networking: Option<&berth_api::models::NetworkingConfig>,
    warnings: &mut Vec<String>,
) -> Result<NetworkSettingsRecord, ApiError> {
    let mode = host.network_mode.clone().unwrap_or_default();
    let publishes = host.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
        || host.publish_all_ports == Some(true);
    let endpoints: Vec<&String> = networking
        .and_then(|n| n.endpoints_config.as_ref())
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let mut settings = NetworkSettingsRecord::default();
    match netmode {
        NetMode::Container(other) => {
            if publishes {
                return Err(ApiError::invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            if host.dns.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(ApiError::invalid(
                    "conflicting options: dns and the network mode",
                ));
            }
            if host.extra_hosts.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(ApiError::invalid(
                    "conflicting options: custom host-to-IP mapping and the network mode",
                ));
            }
            // A container that does not exist (yet) fails the start, not the create (a create
            // 404 makes the docker CLI try to pull the image).
            match daemon.containers.get(other) {
                Ok(target) => host.network_mode = Some(format!("container:{}", target.id)),
                Err(e) if e.http_status() == 404 => {}
                Err(e) => return Err(e),
            }
        }
        NetMode::Host | NetMode::None => {
            if *netmode == NetMode::Host && publishes {
                warnings
                    .push("Published ports are discarded when using host network mode".to_owned());
            }
            let name = if *netmode == NetMode::Host {
                "host"
            } else {
                "none"
            };
            let net = daemon.networks.get(name)?;
            settings
                .networks
                .insert(net.name.clone(), attach::attachment_for(&net, None, 0)?);
        }
        NetMode::Bridge => {
            let given = NetMode::primary_network(&mode);
            // Like dockerd, a network that does not exist (yet) fails the start, not the
            // create (a 404 here would make the docker CLI try to pull the image).
            let net = match daemon.networks.get(given) {
                Ok(n) => n,
                Err(e) if e.http_status() == 404 => {
                    settings
                        .networks
                        .insert(given.to_owned(), attach::Attachment::default());
                    return Ok(settings);
                }
                Err(e) => return Err(e),
            };
            if endpoints.len() > 1 {
                let mut names: Vec<&str> = endpoints.iter().map(|s| s.as_str()).collect();
                names.sort_unstable();
                return Err(ApiError::invalid(format!(
                    "Container cannot be connected to network endpoints: {}",
                    names.join(", ")
                )));
            }
            let cfg = attach::endpoint_config(networking, &net, given);
            settings
                .networks
                .insert(net.name.clone(), attach::attachment_for(&net, cfg, 0)?);
        }
    }
    Ok(settings)
}

/// Creates a container; returns Docker's create response.
pub async fn create(
    daemon: &Arc<Daemon>,
    name: Option<String>,
    body: ContainerCreateBody,
) -> Result<CreateResponse, ApiError> {
    let (mut config, mut host, networking) = split_body(body)?;
    let image_ref = config.image.clone().unwrap_or_default();
    if image_ref.is_empty() {
        return Err(ApiError::invalid("config.Image must not be empty"));
    }
    let mut warnings: Vec<String> = Vec::new();
    let name = name
        .filter(|n| !n.is_empty())
        .map(|n| names::validate(&n))
        .transpose()?;
    let netmode = NetMode::parse(
        host.network_mode.as_deref().unwrap_or(""),
        &daemon.config.bridge,
    )?;
    // Docker's check on the request itself (the hostname is filled in later).
    if matches!(netmode, NetMode::Container(_))
        && config.hostname.as_deref().is_some_and(|h| !h.is_empty())
    {
        return Err(ApiError::invalid(
            "conflicting options: hostname and the network mode",
        ));
    }
    let network_settings = initial_network_settings(
        daemon,
        &netmode,
        &mut host,
        networking.as_ref(),
        &mut warnings,
    )?;
    // After the publishing check, as Docker orders them (the CLI exposes what -p publishes).
    if matches!(netmode, NetMode::Container(_))
        && config.exposed_ports.as_ref().is_some_and(|p| !p.is_empty())
    {
        return Err(ApiError::invalid(
            "conflicting options: port exposing and the container type network mode",
        ));
    }
    super::spec::validate_host_config(&host)?;
    daemon.runtime_binary(host.runtime.as_deref())?;

    let image = {
        let r = image_ref.clone();
        daemon
            .blocking(move |d| crate::images::resolve(&d.images, &r))
            .await?
    };

    // Merge image defaults (Docker's merge rules).
    let user_entrypoint = config.entrypoint.clone().filter(|e| !e.is_empty());
    let user_cmd = config.cmd.clone().filter(|c| !c.is_empty());
    let (entrypoint, cmd) = match (user_entrypoint, user_cmd) {
        (Some(ep), cmd) => (ep, cmd.unwrap_or_default()),
        (None, Some(cmd)) => (image.entrypoint.clone(), cmd),
        (None, None) => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let mut argv = entrypoint.clone();
    argv.extend(cmd.iter().cloned());
    if argv.is_empty() {
        return Err(ApiError::invalid("No command specified"));
    }
    config.entrypoint = if entrypoint.is_empty() {
        None
    } else {
        Some(entrypoint)
    };
    config.cmd = Some(cmd);
    config.env = Some(merge_env(&image.env, config.env.as_deref().unwrap_or(&[])));
    if config.working_dir.as_deref().unwrap_or("").is_empty() && !image.working_dir.is_empty() {
        config.working_dir = Some(image.working_dir.clone());
    }
    if config.user.as_deref().unwrap_or("").is_empty() && !image.user.is_empty() {
        config.user = Some(image.user.clone());
    }
    if config.stop_signal.is_none() {
        config.stop_signal = image.stop_signal.clone();
    }
    let mut labels: HashMap<String, String> = image.labels.clone();
    labels.extend(config.labels.clone().unwrap_or_default());
    config.labels = Some(labels);
    if !image.exposed_ports.is_empty() {
        let mut ports = config.exposed_ports.clone().unwrap_or_default();
        for p in &image.exposed_ports {
            if !ports.contains(p) {
                ports.push(p.clone());
            }
        }
        config.exposed_ports = Some(ports);
    }
    if !image.volumes.is_empty() {
        let mut vols = config.volumes.clone().unwrap_or_default();
        for v in &image.volumes {
            if !vols.contains(v) {
                vols.push(v.clone());
            }
        }
        config.volumes = Some(vols);
    }
    let planned_mounts = crate::volumes::plan(daemon, &config, &host)?;

    let id = new_id()?;
    if config.hostname.as_deref().unwrap_or("").is_empty() {
        config.hostname = Some(match &netmode {
            NetMode::Host => rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            _ => id[..12].to_owned(),
        });
    }
    if host.network_mode.as_deref().unwrap_or("").is_empty() {
        host.network_mode = Some("default".to_owned());
    }

    // Name: given and valid, or random until free.
    let name = match name {
        Some(n) => {
            daemon.containers.reserve_name(&n, &id)?;
            n
        }
        None => {
            let mut attempt = 0;
            loop {
                let n = format!("/{}", names::random_name(u32::from(attempt >= 3)));
                match daemon.containers.reserve_name(&n, &id) {
                    Ok(()) => break n,
                    Err(e) if attempt >= 20 => return Err(e),
                    Err(_) => attempt += 1,
                }
            }
        }
    };

    let result = create_on_disk(
        daemon,
        &id,
        &name,
        &image.id,
        config,
        host,
        networking,
        &netmode,
        network_settings,
        planned_mounts,
    )
    .await;
    match result {
        Ok(entry) => {
            daemon.events.container(&entry.snapshot(), "create", &[]);
            daemon.containers.insert(entry);
            crate::volumes::created(daemon, &id);
            Ok(CreateResponse { id, warnings })
        }
        Err(e) => {
            daemon.containers.release_name(&name);
            let vid = id.clone();
            let _ = daemon
                .blocking(move |d| {
                    crate::volumes::discard(d, &vid);
                    Ok(())
                })
                .await;
            let cleanup_id = id.clone();
            let _ = daemon
                .blocking(move |d| {
                    d.images
                        .remove_container_layers(&cleanup_id)
                        .map_err(crate::images::api_error)
                })
                .await;
            let _ = std::fs::remove_dir_all(daemon.container_dir(&id));
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn create_on_disk(
    daemon: &Arc<Daemon>,
    id: &str,
    name: &str,
    image_id: &str,
    config: ContainerConfig,
    host: HostConfig,
    networking: Option<berth_api::models::NetworkingConfig>,
    netmode: &NetMode,
    network_settings: NetworkSettingsRecord,
    planned_mounts: crate::volumes::MountPoints,
) -> Result<Arc<Entry>, ApiError> {
    let mut t = super::phases::Phases::new("create", id);
    let layers = {
        let (cid, iid) = (id.to_owned(), image_id.to_owned());
        let ephemeral = host.auto_remove == Some(true);
        daemon
            .blocking(move |d| {
                crate::images::create_container_layers(&d.images, &cid, &iid, ephemeral)
            })
            .await?
    };
    t.mark("layers");
    let mount_points = {
        let cid = id.to_owned();
        daemon
            .blocking(move |d| {
                let points = crate::volumes::claim(d, &cid, planned_mounts)?;
                crate::volumes::populate(d, &cid, &points)?;
                Ok(points)
            })
            .await?
    };
    let dir = daemon.container_dir(id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    let hostname = config.hostname.clone().unwrap_or_default();
    let paths = files::write_container_files(&dir, &hostname, &host, netmode)?;
    t.mark("etc_files");
    let (path, args) = {
        let mut argv = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        let mut it = argv.into_iter();
        (it.next().unwrap_or_default(), it.collect::<Vec<_>>())
    };
    let rec = ContainerRecord {
        id: id.to_owned(),
        created: files::now_rfc3339(),
        path,
        args,
        config,
        image_id: image_id.to_owned(),
        name: name.to_owned(),
        driver: "overlay2".to_owned(),
        os: "linux".to_owned(),
        restart_count: 0,
        has_been_started_before: false,
        has_been_manually_stopped: false,
        state: StateRecord::default(),
        log_path: dir.join(format!("{id}-json.log")).display().to_string(),
        hostname_path: paths.hostname.display().to_string(),
        hosts_path: paths.hosts.display().to_string(),
        resolv_conf_path: paths.resolv_conf.display().to_string(),
        graph_driver: GraphRecord {
            lower_dir: layers.lower_dir,
            merged_dir: layers.merged_dir.display().to_string(),
            upper_dir: layers.upper_dir.display().to_string(),
            work_dir: layers.work_dir.display().to_string(),
        },
        mount_points,
        networking_config: networking,
        network_settings,
        host_config: host,
    };
    files::save_record(&dir, &rec)?;
    t.mark("record");
    Ok(Entry::new(rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge_overrides_by_key() {
        let img = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        let user = vec!["A=2".to_owned(), "B=3".to_owned(), "C".to_owned()];
        assert_eq!(merge_env(&img, &user), vec!["PATH=/bin", "A=2", "B=3", "C"]);
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
