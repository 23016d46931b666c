//! `/_ping`, `/version`, `/info`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_api::{API_VERSION, MIN_API_VERSION};
use serde_json::{Value, json};

use crate::daemon::Daemon;

/// berthd's version string.
pub const VERSION: &str = "berth-0.1.0";

/// `GET`/`HEAD /_ping`.
pub async fn ping(method: axum::http::Method) -> Response {
    let body = if method == axum::http::Method::HEAD {
        ""
    } else {
        "OK"
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /version`.
pub async fn version() -> Json<Value> {
    Json(json!({
        "Platform": {"Name": "berth"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": go_arch(),
                "KernelVersion": kernel_version(),
                "Experimental": "false",
            }
        }],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel_version(),
        "BuildTime": "",
        "Experimental": false,
    }))
}

/// `GET /system/df`: images, containers and volumes with their sizes; berthd has no build
/// cache, so that list is empty (true, not a placeholder).
pub async fn df(State(d): State<Arc<Daemon>>) -> crate::api::error::ApiResult<Json<Value>> {
    let uses = crate::images::uses(&d);
    let recs: Vec<_> = d.containers.all().iter().map(|e| e.snapshot()).collect();
    let (images, sizes) = d
        .blocking(move |d| {
            let images = d
                .images
                .list(Some(&uses))
                .map_err(crate::images::api_error)?;
            let sizes: Vec<Option<(u64, u64)>> = recs
                .iter()
                .map(|r| d.images.container_size(&r.id).ok())
                .collect();
            Ok((images, sizes))
        })
        .await?;
    let volumes = d.blocking(crate::volumes::disk_usage).await?;
    let layers_size: u64 = images.iter().map(|i| i.size).sum();
    let containers: Vec<Value> = d
        .containers
        .all()
        .iter()
        .zip(sizes)
        .map(|(e, size)| {
            let mut v = serde_json::to_value(crate::containers::inspect::summary(&e.snapshot()))
                .unwrap_or(Value::Null);
            if let Some((rw, root)) = size {
                v["SizeRw"] = json!(rw);
                v["SizeRootFs"] = json!(root);
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })))
}

/// "1" or "2": cgroup2 mounted at /sys/fs/cgroup means a unified host.
pub fn cgroup_version() -> &'static str {
    const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
    match rustix::fs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.f_type as u64 == CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

fn meminfo_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "Linux".to_owned())
}

/// `GET /info`.
pub async fn info(State(d): State<Arc<Daemon>>) -> Json<Value> {
    let mut running = 0;
    let mut paused = 0;
    let mut stopped = 0;
    let all = d.containers.all();
    for e in &all {
        let st = e.with(|r| r.state.clone());
        if st.running && st.paused {
            paused += 1;
        } else if st.running {
            running += 1;
        } else {
            stopped += 1;
        }
    }
    let images = {
        let d2 = d.clone();
        d.blocking(move |_| Ok(d2.images.image_ids().map(|v| v.len()).unwrap_or(0)))
            .await
            .unwrap_or(0)
    };
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let runtimes: serde_json::Map<String, Value> = d
        .config
        .runtimes
        .iter()
        .map(|(k, v)| (k.clone(), json!({"path": v})))
        .collect();
    let nfd = std::fs::read_dir("/proc/self/fd").map_or(0, |r| r.count());
    Json(json!({
        "ID": name,
        "Containers": all.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": d.config.log_level == "debug",
        "NFd": nfd,
        "OomKillDisable": true,
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(&d.config.insecure_registries),
        "NCPU": ncpu,
        "MemTotal": meminfo_total(),
        "GenericResources": null,
        "DockerRootDir": d.config.data_root,
        "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
        "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
        "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
        "Name": name,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": runtimes,
        "DefaultRuntime": d.config.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }))
}

/// `RegistryConfig` of `/info`, shaped like dockerd's: insecure CIDRs (loopback always) and
/// one index entry per insecure host name. Mirrors are not used by pulls (berthd warns at
/// start-up), so none are reported.
fn registry_config(insecure: &[String]) -> serde_json::Value {
    let mut cidrs = vec!["127.0.0.0/8".to_owned()];
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
    );
    for r in insecure {
        if r.contains('/') {
            if !cidrs.contains(r) {
                cidrs.push(r.clone());
            }
        } else {
            index.insert(
                r.clone(),
                json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index,
        "Mirrors": [],
    })
}
