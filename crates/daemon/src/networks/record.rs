//! What berthd persists per network (`<data-root>/network/networks/<id>.json`) and the Docker
//! JSON shape it is shown in (`GET /networks`, `GET /networks/{id}`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_network::BridgeNetwork;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fsutil::write_atomic;

/// Driver names as Docker reports them.
pub const DRIVER_BRIDGE: &str = "bridge";
/// `--network host`.
pub const DRIVER_HOST: &str = "host";
/// `--network none`.
pub const DRIVER_NULL: &str = "null";

/// One network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkRecord {
    /// Unique name.
    pub name: String,
    /// 64 hex.
    pub id: String,
    /// RFC 3339 nanoseconds.
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable` (kept for the JSON; every local network is attachable).
    pub attachable: bool,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options as given (`com.docker.network.bridge.name`, …).
    pub options: BTreeMap<String, String>,
    /// The predefined `bridge`, `host`, `none`: cannot be removed.
    pub predefined: bool,
    /// Bridge driver config (bridge name, IPAM, MTU, ICC); `None` for host/null.
    pub bridge: Option<BridgeNetwork>,
}

impl NetworkRecord {
    /// The default bridge network `bridge` has no embedded DNS and shows Docker's option set.
    pub fn is_default_bridge(&self) -> bool {
        self.predefined && self.driver == DRIVER_BRIDGE
    }

    /// Docker's network JSON; `containers` is the `Containers` map (active endpoints).
    pub fn to_json(&self, containers: Value) -> Value {
        let config: Vec<Value> = match &self.bridge {
            Some(b) => {
                let mut c = json!({
                    "Subnet": b.ipam.subnet.trunc().to_string(),
                    "Gateway": b.ipam.gateway.to_string(),
                });
                if let Some(r) = &b.ipam.ip_range {
                    c["IPRange"] = json!(r.trunc().to_string());
                }
                vec![c]
            }
            None => Vec::new(),
        };
        let mut options = self.options.clone();
        if self.is_default_bridge()
            && let Some(b) = &self.bridge
        {
            options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
            options.insert(
                "com.docker.network.bridge.enable_icc".into(),
                b.icc.to_string(),
            );
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                "true".into(),
            );
            options.insert(
                "com.docker.network.bridge.host_binding_ipv4".into(),
                "0.0.0.0".into(),
            );
            options.insert("com.docker.network.bridge.name".into(), b.bridge.clone());
            options.insert(
                "com.docker.network.driver.mtu".into(),
                b.mtu.unwrap_or(1500).to_string(),
            );
        }
        json!({
            "Name": self.name,
            "Id": self.id,
            "Created": self.created,
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": null, "Config": config},
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": self.labels,
        })
    }
}

/// Errors reading or writing network records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading the directory or a file failed.
    #[error("reading {path}")]
    Read {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a record we wrote.
    #[error("parsing {path}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing a record failed.
    #[error("writing {path}")]
    Write {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Removing a record failed.
    #[error("removing {path}")]
    Remove {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

fn file_of(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Writes a record atomically.
pub fn save(dir: &Path, rec: &NetworkRecord) -> Result<(), RecordError> {
    let path = file_of(dir, &rec.id);
    let bytes = serde_json::to_vec_pretty(rec).map_err(|source| RecordError::Parse {
        path: path.clone(),
        source,
    })?;
    std::fs::create_dir_all(dir).map_err(|source| RecordError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_atomic(&path, &bytes).map_err(|source| RecordError::Write { path, source })
}

/// Removes a record (a missing file is fine).
pub fn delete(dir: &Path, id: &str) -> Result<(), RecordError> {
    let path = file_of(dir, id);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RecordError::Remove { path, source: e })
        }
        _ => Ok(()),
    }
}

/// Loads every record; unreadable files are returned as errors beside the good records so
/// one bad file does not hide the others.
pub fn load_all(dir: &Path) -> (Vec<NetworkRecord>, Vec<RecordError>) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (out, errs),
        Err(source) => {
            errs.push(RecordError::Read {
                path: dir.to_path_buf(),
                source,
            });
            return (out, errs);
        }
    };
    for ent in read.flatten() {
        let path = ent.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<NetworkRecord>(&bytes) {
                Ok(r) => out.push(r),
                Err(source) => errs.push(RecordError::Parse { path, source }),
            },
            Err(source) => errs.push(RecordError::Read { path, source }),
        }
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    (out, errs)
}
