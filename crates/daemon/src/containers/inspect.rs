//! Records → Docker's inspect and list shapes.

use std::collections::HashMap;

use berth_api::models::{
    ContainerInspectResponse, ContainerState, ContainerSummary, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, DriverData, EndpointIpamConfig, EndpointSettings, MountPoint,
    NetworkSettings, PortSummary,
};

use super::record::ContainerRecord;

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = d.num_minutes();
    if mins == 1 {
        return "About a minute".into();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = (secs as f64 / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

/// `docker ps`'s STATUS column.
pub fn status_text(rec: &ContainerRecord) -> String {
    let now = chrono::Utc::now();
    let st = &rec.state;
    match st.status() {
        "running" | "paused" => {
            let since = parse_time(&st.started_at)
                .map(|t| now - t)
                .unwrap_or_default();
            let mut s = format!("Up {}", human_duration(since));
            if st.paused {
                s.push_str(" (Paused)");
            }
            s
        }
        "restarting" => {
            let since = parse_time(&st.finished_at)
                .map(|t| now - t)
                .unwrap_or_default();
            format!(
                "Restarting ({}) {} ago",
                st.exit_code,
                human_duration(since)
            )
        }
        "removing" => "Removal In Progress".into(),
        "dead" => "Dead".into(),
        "created" => "Created".into(),
        _ => {
            let since = parse_time(&st.finished_at)
                .map(|t| now - t)
                .unwrap_or_default();
            format!("Exited ({}) {} ago", st.exit_code, human_duration(since))
        }
    }
}

fn mounts(rec: &ContainerRecord) -> Vec<MountPoint> {
    crate::volumes::mounts::inspect_mounts(&crate::volumes::mounts::of_record(
        &rec.mount_points,
        &rec.host_config,
    ))
}

/// A stable id for the container's network stack while it runs (Docker shows a sandbox id).
fn sandbox_id(rec: &ContainerRecord) -> String {
    if rec.network_settings.sandbox_key.is_empty() {
        return String::new();
    }
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        rec.network_settings.sandbox_key.as_bytes(),
    ))
}

/// `NetworkSettings.Networks`: every network the container belongs to, with its live
/// address while it runs.
fn endpoint_settings(rec: &ContainerRecord) -> HashMap<String, EndpointSettings> {
    rec.network_settings
        .networks
        .iter()
        .map(|(name, a)| {
            let ep = a.endpoint.as_ref();
            let mut aliases = a.aliases.clone();
            if ep.is_some() && !a.aliases.is_empty() {
                aliases.push(rec.id[..12].to_owned());
            }
            let settings = EndpointSettings {
                ipam_config: a.ipv4_address.map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip.to_string()),
                    ..Default::default()
                }),
                links: None,
                aliases: (!aliases.is_empty()).then_some(aliases),
                mac_address: Some(ep.map(|e| e.mac.clone()).unwrap_or_default()),
                driver_opts: None,
                network_id: Some(a.network_id.clone()),
                endpoint_id: Some(ep.map(|e| e.id.clone()).unwrap_or_default()),
                gateway: Some(
                    ep.and_then(|e| e.gateway)
                        .map(|g| g.to_string())
                        .unwrap_or_default(),
                ),
                ip_address: Some(ep.map(|e| e.ip.to_string()).unwrap_or_default()),
                ip_prefix_len: Some(ep.map(|e| i64::from(e.prefix_len)).unwrap_or(0)),
                ipv6_gateway: Some(String::new()),
                global_ipv6_address: Some(String::new()),
                global_ipv6_prefix_len: Some(0),
                ..Default::default()
            };
            (name.clone(), settings)
        })
        .collect()
}

/// The top-level `NetworkSettings` fields API < 1.44 has (the docker CLI's
/// `{{.NetworkSettings.IPAddress}}`): filled from the default bridge's endpoint only, as
/// Docker does; empty on user-defined networks.
pub fn legacy_network_fields(rec: &ContainerRecord) -> serde_json::Map<String, serde_json::Value> {
    let ep = rec
        .network_settings
        .networks
        .get("bridge")
        .and_then(|a| a.endpoint.as_ref());
    let s = |f: &dyn Fn(&berth_network::Endpoint) -> String| ep.map(f).unwrap_or_default();
    let v = serde_json::json!({
        "Bridge": "",
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": s(&|e| e.id.clone()),
        "Gateway": s(&|e| e.gateway.map(|g| g.to_string()).unwrap_or_default()),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": s(&|e| e.ip.to_string()),
        "IPPrefixLen": ep.map(|e| e.prefix_len).unwrap_or(0),
        "IPv6Gateway": "",
        "MacAddress": s(&|e| e.mac.clone()),
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// `Ports` of a `GET /containers/json` row.
fn summary_ports(rec: &ContainerRecord) -> Vec<PortSummary> {
    let mut out = Vec::new();
    let ep = rec.network_settings.primary_endpoint();
    for key in rec.config.exposed_ports.iter().flatten() {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let typ = serde_json::from_value(serde_json::json!(proto)).ok();
        let published: Vec<_> = ep
            .map(|e| {
                e.ports
                    .iter()
                    .filter(|p| p.container_port == port && p.proto.as_str() == proto)
                    .collect()
            })
            .unwrap_or_default();
        if published.is_empty() {
            out.push(PortSummary {
                ip: None,
                private_port: port,
                public_port: None,
                typ,
            });
        }
    }
    if let Some(e) = ep {
        for p in &e.ports {
            out.push(PortSummary {
                ip: Some(p.host_ip.to_string()),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                typ: serde_json::from_value(serde_json::json!(p.proto.as_str())).ok(),
            });
        }
    }
    out
}

/// `GET /containers/{id}/json`.
pub fn inspect(rec: &ContainerRecord) -> ContainerInspectResponse {
    let st = &rec.state;
    let mut data = HashMap::new();
    data.insert("LowerDir".to_owned(), rec.graph_driver.lower_dir.clone());
    data.insert("MergedDir".to_owned(), rec.graph_driver.merged_dir.clone());
    data.insert("UpperDir".to_owned(), rec.graph_driver.upper_dir.clone());
    data.insert("WorkDir".to_owned(), rec.graph_driver.work_dir.clone());
    ContainerInspectResponse {
        id: Some(rec.id.clone()),
        created: Some(rec.created.clone()),
        path: Some(rec.path.clone()),
        args: Some(rec.args.clone()),
        state: Some(ContainerState {
            status: serde_json::from_value(serde_json::json!(st.status())).ok(),
            running: Some(st.running),
            paused: Some(st.paused),
            restarting: Some(st.restarting),
            oom_killed: Some(st.oom_killed),
            dead: Some(st.dead),
            pid: Some(st.pid),
            exit_code: Some(st.exit_code),
            error: Some(st.error.clone()),
            started_at: Some(st.started_at.clone()),
            finished_at: Some(st.finished_at.clone()),
            health: None,
        }),
        image: Some(rec.image_id.clone()),
        resolv_conf_path: Some(rec.resolv_conf_path.clone()),
        hostname_path: Some(rec.hostname_path.clone()),
        hosts_path: Some(rec.hosts_path.clone()),
        log_path: Some(rec.log_path.clone()),
        name: Some(rec.name.clone()),
        restart_count: Some(rec.restart_count),
        driver: Some(rec.driver.clone()),
        platform: Some(rec.os.clone()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        exec_ids: None,
        host_config: Some(rec.host_config.clone()),
        graph_driver: Some(DriverData {
            name: "overlay2".into(),
            data,
        }),
        mounts: Some(mounts(rec)),
        config: Some(rec.config.clone()),
        network_settings: Some(NetworkSettings {
            sandbox_id: Some(sandbox_id(rec)),
            sandbox_key: Some(rec.network_settings.sandbox_key.clone()),
            ports: Some(crate::networks::attach::ports_map(rec)),
            networks: Some(endpoint_settings(rec)),
        }),
        ..Default::default()
    }
}

/// One row of `GET /containers/json`.
pub fn summary(rec: &ContainerRecord) -> ContainerSummary {
    let mut command = rec.path.clone();
    for a in &rec.args {
        command.push(' ');
        command.push_str(a);
    }
    let net_mode = rec.host_config.network_mode.clone().unwrap_or_default();
    ContainerSummary {
        id: Some(rec.id.clone()),
        names: Some(vec![rec.name.clone()]),
        image: rec.config.image.clone(),
        image_id: Some(rec.image_id.clone()),
        command: Some(command),
        created: parse_time(&rec.created).map(|t| t.timestamp()),
        ports: Some(summary_ports(rec)),
        labels: Some(rec.config.labels.clone().unwrap_or_default()),
        state: serde_json::from_value(serde_json::json!(rec.state.status())).ok(),
        status: Some(status_text(rec)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(net_mode.clone()),
            ..Default::default()
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(endpoint_settings(rec)),
        }),
        mounts: Some(mounts(rec)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        assert_eq!(
            human_duration(chrono::Duration::milliseconds(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(chrono::Duration::seconds(5)), "5 seconds");
        assert_eq!(
            human_duration(chrono::Duration::seconds(90)),
            "About a minute"
        );
        assert_eq!(human_duration(chrono::Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(chrono::Duration::hours(3)), "3 hours");
    }
}
