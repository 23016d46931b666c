//! The container directory: generated /etc files and the persisted record.

use std::path::{Path, PathBuf};

use berth_api::ApiError;
use berth_api::models::HostConfig;

use super::network::NetMode;
use super::record::ContainerRecord;
use crate::fsutil::{Durability, write_file};

/// Paths of the generated files.
#[derive(Debug, Clone)]
pub struct EtcPaths {
    /// hostname.
    pub hostname: PathBuf,
    /// hosts.
    pub hosts: PathBuf,
    /// resolv.conf.
    pub resolv_conf: PathBuf,
}

/// Now in Docker's RFC 3339 nanosecond format.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> ApiError {
    ApiError::internal(format!("{what} {}: {e}", path.display()))
}

/// How much crash safety the files of a container with this host config need: an AutoRemove
/// container never outlives a host crash (it is removed at the next start, as dockerd does),
/// so its files are written without fsync.
pub fn durability(host: &HostConfig) -> Durability {
    if host.auto_remove == Some(true) {
        Durability::Volatile
    } else {
        Durability::Durable
    }
}

/// Writes hostname, hosts and resolv.conf for the container into `dir`.
pub fn write_container_files(
    dir: &Path,
    hostname: &str,
    host: &HostConfig,
    netmode: &NetMode,
) -> Result<EtcPaths, ApiError> {
    let paths = EtcPaths {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    };
    let dur = durability(host);
    write_file(&paths.hostname, format!("{hostname}\n").as_bytes(), dur)
        .map_err(|e| io_err("writing", &paths.hostname, e))?;

    let mut hosts = match netmode {
        NetMode::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        _ => String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        ),
    };
    for extra in host.extra_hosts.as_deref().unwrap_or(&[]) {
        // Docker's form is host:ip (ip may contain colons for IPv6).
        if let Some((name, ip)) = extra.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    write_file(&paths.hosts, hosts.as_bytes(), dur)
        .map_err(|e| io_err("writing", &paths.hosts, e))?;

    let resolv = resolv_conf(host, netmode);
    write_file(&paths.resolv_conf, resolv.as_bytes(), dur)
        .map_err(|e| io_err("writing", &paths.resolv_conf, e))?;
    Ok(paths)
}

/// The container's resolv.conf: the host's, minus loopback nameservers (unreachable from a
/// separate net namespace), with --dns/--dns-search/--dns-option applied.
fn resolv_conf(host: &HostConfig, netmode: &NetMode) -> String {
    let base = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let dns = host.dns.clone().unwrap_or_default();
    let search = host.dns_search.clone().unwrap_or_default();
    let opts = host.dns_options.clone().unwrap_or_default();
    let mut out = String::new();
    for line in base.lines() {
        let t = line.trim();
        if t.starts_with("nameserver") {
            if !dns.is_empty() {
                continue;
            }
            let addr = t.split_whitespace().nth(1).unwrap_or("");
            if *netmode != NetMode::Host && (addr.starts_with("127.") || addr == "::1") {
                continue;
            }
        }
        if (t.starts_with("search") || t.starts_with("domain")) && !search.is_empty() {
            continue;
        }
        if t.starts_with("options") && !opts.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    for d in dns {
        out.push_str(&format!("nameserver {d}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

/// Writes hostconfig.json and config.v2.json atomically (durably unless AutoRemove),
/// config.v2.json last: it is the commit point of a create (recovery treats a dir without it
/// as a create cut short), so it must never exist without its hostconfig.json.
pub fn save_record(dir: &Path, rec: &ContainerRecord) -> Result<(), ApiError> {
    let cfg = serde_json::to_vec(rec)
        .map_err(|e| ApiError::internal(format!("encoding config.v2.json: {e}")))?;
    let hc = serde_json::to_vec(&rec.host_config)
        .map_err(|e| ApiError::internal(format!("encoding hostconfig.json: {e}")))?;
    let dur = durability(&rec.host_config);
    let p = dir.join("hostconfig.json");
    write_file(&p, &hc, dur).map_err(|e| io_err("writing", &p, e))?;
    let p = dir.join("config.v2.json");
    write_file(&p, &cfg, dur).map_err(|e| io_err("writing", &p, e))
}

/// Suffix of a container dir being deleted (renamed away at `rm`, swept by recovery).
pub const REMOVING_SUFFIX: &str = ".removing";

/// Where a removed container's dir `dir` goes until its content is deleted.
pub fn removing_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(REMOVING_SUFFIX);
    dir.with_file_name(name)
}

/// Whether `name` (an entry of the containers dir) is a removed container's leftover.
pub fn is_removing(name: &str) -> bool {
    name.ends_with(REMOVING_SUFFIX)
}

/// Errors loading a container directory.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("reading {path}")]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not the JSON we wrote.
    #[error("parsing {path}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The id inside does not match the directory.
    #[error("{path}: id {found} does not match the directory")]
    IdMismatch {
        /// File.
        path: PathBuf,
        /// Id in the file.
        found: String,
    },
}

/// Reads a container directory back.
pub fn load_record(dir: &Path) -> Result<ContainerRecord, LoadError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| LoadError::Read { path, source })
    };
    let cfg_path = dir.join("config.v2.json");
    let mut rec: ContainerRecord =
        serde_json::from_slice(&read("config.v2.json")?).map_err(|source| LoadError::Parse {
            path: cfg_path.clone(),
            source,
        })?;
    let expected = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if rec.id != expected || rec.id.len() != 64 || !rec.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LoadError::IdMismatch {
            path: cfg_path,
            found: rec.id,
        });
    }
    let hc_path = dir.join("hostconfig.json");
    rec.host_config =
        serde_json::from_slice(&read("hostconfig.json")?).map_err(|source| LoadError::Parse {
            path: hc_path,
            source,
        })?;
    Ok(rec)
}
