//! berthd's configuration: dockerd-compatible flags merged with a `daemon.json` file.
//!
//! The file uses Docker's keys. Keys berthd implements are applied; keys dockerd knows but
//! berthd does not act on yet are accepted with a warning (so an existing daemon.json keeps
//! working); anything else is rejected, like dockerd does, and so is a setting given both as a
//! flag and in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;

/// Command-line flags, named as dockerd's.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "berthd",
    version = "berth-0.1.0",
    about = "berth's Docker-compatible daemon"
)]
pub struct Flags {
    /// Daemon socket(s) to listen on: unix:///path or tcp://127.0.0.1:PORT.
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Root of persistent state.
    #[arg(long = "data-root")]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state (tmpfs).
    #[arg(long = "exec-root")]
    pub exec_root: Option<PathBuf>,
    /// Path of the daemon's pid file.
    #[arg(short = 'p', long = "pidfile")]
    pub pidfile: Option<PathBuf>,
    /// Default bridge interface (`berth0`); `none` disables the default bridge network.
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Option<String>,
    /// Inter-container communication on the default bridge (`--icc=false` isolates).
    #[arg(long = "icc")]
    pub icc: Option<bool>,
    /// MTU of the default bridge and its veths.
    #[arg(long = "mtu")]
    pub mtu: Option<u32>,
    /// Default bridge IP (CIDR).
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// Default address pools (`base=...,size=...`).
    #[arg(long = "default-address-pool")]
    pub default_address_pools: Vec<String>,
    /// Registries allowed over plain HTTP.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Registry mirrors.
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// Log level: debug, info, warn, error, fatal.
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// Debug logging.
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// daemon.json path.
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    pub config_file: PathBuf,
    /// Default OCI runtime name.
    #[arg(long = "default-runtime")]
    pub default_runtime: Option<String>,
    /// Extra OCI runtimes as NAME=PATH.
    #[arg(long = "add-runtime")]
    pub add_runtimes: Vec<String>,
    /// Parallel layer downloads per pull.
    #[arg(long = "max-concurrent-downloads")]
    pub max_concurrent_downloads: Option<u32>,
    /// Path of the berth-shim binary (default: next to berthd, then $PATH).
    #[arg(long = "shim-binary", env = "BERTH_SHIM")]
    pub shim_binary: Option<PathBuf>,
}

/// Errors while assembling the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("unable to read configuration file {path}")]
    Read {
        /// File path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or not an object.
    #[error("unable to parse configuration file {path}: {reason}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Keys dockerd does not know either.
    #[error("the following directives don't match any configuration option: {0}")]
    UnknownKeys(String),
    /// A setting both in flags and file.
    #[error(
        "the following directives are specified both as a flag and in the configuration file: {0}"
    )]
    Conflict(String),
    /// A value is invalid.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen addresses.
    pub hosts: Vec<String>,
    /// Persistent state root.
    pub data_root: PathBuf,
    /// Runtime state root.
    pub exec_root: PathBuf,
    /// Pid file.
    pub pidfile: PathBuf,
    /// Default bridge name (`none`: containers in the default network mode get only `lo`).
    pub bridge: String,
    /// `--icc` for the default bridge.
    pub icc: bool,
    /// `--mtu` for the default bridge.
    pub mtu: Option<u32>,
    /// Default bridge address.
    pub bip: Option<String>,
    /// Address pools.
    pub default_address_pools: Vec<String>,
    /// Plain-HTTP registries.
    pub insecure_registries: Vec<String>,
    /// Mirrors.
    pub registry_mirrors: Vec<String>,
    /// Log level.
    pub log_level: String,
    /// Default runtime name.
    pub default_runtime: String,
    /// Runtimes by name → path.
    pub runtimes: BTreeMap<String, String>,
    /// Parallel downloads.
    pub max_concurrent_downloads: u32,
    /// Where daemon.json was read from.
    pub config_file: PathBuf,
    /// berth-shim binary to exec.
    pub shim_binary: PathBuf,
    /// Warnings to log at startup (ignored-but-known keys and the like).
    pub warnings: Vec<String>,
}

/// Keys berthd applies (file name → flag name for conflict messages).
const SUPPORTED_KEYS: &[&str] = &[
    "hosts",
    "data-root",
    "exec-root",
    "pidfile",
    "bridge",
    "bip",
    "icc",
    "mtu",
    "default-address-pools",
    "insecure-registries",
    "registry-mirrors",
    "log-level",
    "debug",
    "default-runtime",
    "runtimes",
    "max-concurrent-downloads",
];

/// dockerd keys berthd accepts but does not act on yet.
const KNOWN_IGNORED_KEYS: &[&str] = &[
    "allow-nondistributable-artifacts",
    "api-cors-header",
    "authorization-plugins",
    "builder",
    "cgroup-parent",
    "containerd",
    "containerd-namespace",
    "containerd-plugin-namespace",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cri-containerd",
    "default-cgroupns-mode",
    "default-gateway",
    "default-gateway-v6",
    "default-ipc-mode",
    "default-network-opts",
    "default-shm-size",
    "default-ulimits",
    "dns",
    "dns-opts",
    "dns-search",
    "exec-opts",
    "experimental",
    "features",
    "fixed-cidr",
    "fixed-cidr-v6",
    "group",
    "init",
    "init-path",
    "ip",
    "ip-forward",
    "ip-masq",
    "ip6tables",
    "iptables",
    "ipv6",
    "labels",
    "live-restore",
    "log-driver",
    "log-format",
    "log-opts",
    "max-concurrent-uploads",
    "max-download-attempts",
    "metrics-addr",
    "mtu",
    "no-new-privileges",
    "node-generic-resources",
    "oom-score-adjust",
    "seccomp-profile",
    "selinux-enabled",
    "shutdown-timeout",
    "storage-driver",
    "storage-opts",
    "swarm-default-advertise-addr",
    "tls",
    "tlscacert",
    "tlscert",
    "tlskey",
    "tlsverify",
    "userland-proxy",
    "userland-proxy-path",
    "userns-remap",
];

impl Config {
    /// Merges `flags` with the daemon.json at `flags.config_file` (absent file = no file).
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        let file = read_file(&flags.config_file)?;
        Self::merge(flags, file)
    }

    /// Merges `flags` with an already-parsed daemon.json object.
    pub fn merge(
        flags: &Flags,
        file: serde_json::Map<String, Value>,
    ) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let mut unknown: Vec<&str> = Vec::new();
        for key in file.keys() {
            if SUPPORTED_KEYS.contains(&key.as_str()) {
                continue;
            }
            if KNOWN_IGNORED_KEYS.contains(&key.as_str()) {
                warnings.push(format!(
                    "daemon.json: {key:?} is not supported by berthd yet; ignored"
                ));
            } else {
                unknown.push(key);
            }
        }
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys(unknown.join(", ")));
        }

        let mut conflicts = Vec::new();
        let mut check = |key: &str, flag_set: bool, flag_repr: String| {
            if flag_set && let Some(v) = file.get(key) {
                conflicts.push(format!("{key}: (from flag: {flag_repr}, from file: {v})"));
            }
        };
        check(
            "hosts",
            !flags.hosts.is_empty(),
            format!("{:?}", flags.hosts),
        );
        check(
            "data-root",
            flags.data_root.is_some(),
            format!("{:?}", flags.data_root),
        );
        check(
            "exec-root",
            flags.exec_root.is_some(),
            format!("{:?}", flags.exec_root),
        );
        check(
            "pidfile",
            flags.pidfile.is_some(),
            format!("{:?}", flags.pidfile),
        );
        check(
            "bridge",
            flags.bridge.is_some(),
            format!("{:?}", flags.bridge),
        );
        check("bip", flags.bip.is_some(), format!("{:?}", flags.bip));
        check(
            "log-level",
            flags.log_level.is_some(),
            format!("{:?}", flags.log_level),
        );
        check(
            "default-runtime",
            flags.default_runtime.is_some(),
            format!("{:?}", flags.default_runtime),
        );
        check(
            "max-concurrent-downloads",
            flags.max_concurrent_downloads.is_some(),
            format!("{:?}", flags.max_concurrent_downloads),
        );
        check(
            "insecure-registries",
            !flags.insecure_registries.is_empty(),
            format!("{:?}", flags.insecure_registries),
        );
        check(
            "registry-mirrors",
            !flags.registry_mirrors.is_empty(),
            format!("{:?}", flags.registry_mirrors),
        );
        if !conflicts.is_empty() {
            return Err(ConfigError::Conflict(conflicts.join(", ")));
        }

        let str_of = |key: &str| -> Result<Option<String>, ConfigError> {
            match file.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(ConfigError::Invalid(format!(
                    "{key}: expected a string, got {v}"
                ))),
            }
        };
        let list_of = |key: &str| -> Result<Vec<String>, ConfigError> {
            match file.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        // default-address-pools are objects {"base":..,"size":..}.
                        Value::Object(_) => Ok(v.to_string()),
                        other => Err(ConfigError::Invalid(format!("{key}: bad entry {other}"))),
                    })
                    .collect(),
                Some(v) => Err(ConfigError::Invalid(format!(
                    "{key}: expected a list, got {v}"
                ))),
            }
        };

        let hosts = if flags.hosts.is_empty() {
            list_of("hosts")?
        } else {
            flags.hosts.clone()
        };
        let exec_root = flags
            .exec_root
            .clone()
            .or(str_of("exec-root")?.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/run/berth"));
        let hosts = if hosts.is_empty() {
            vec![format!("unix://{}", exec_root.join("berth.sock").display())]
        } else {
            hosts
        };
        for h in &hosts {
            if !(h.starts_with("unix://") || h.starts_with("tcp://")) {
                return Err(ConfigError::Invalid(format!(
                    "invalid host {h:?}: expected unix:///path or tcp://HOST:PORT"
                )));
            }
        }
        let debug = flags.debug || file.get("debug").and_then(Value::as_bool).unwrap_or(false);
        let log_level = flags
            .log_level
            .clone()
            .or(str_of("log-level")?)
            .unwrap_or_else(|| if debug { "debug".into() } else { "info".into() });
        let log_level = if debug { "debug".to_owned() } else { log_level };
        if !["debug", "info", "warn", "error", "fatal"].contains(&log_level.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "unable to parse logging level: {log_level}"
            )));
        }

        let mut runtimes = BTreeMap::new();
        runtimes.insert("berth".to_owned(), "berth-runtime".to_owned());
        runtimes.insert("runc".to_owned(), "runc".to_owned());
        if let Some(Value::Object(map)) = file.get("runtimes") {
            for (name, v) in map {
                let path = v.get("path").and_then(Value::as_str).ok_or_else(|| {
                    ConfigError::Invalid(format!("runtimes.{name}: missing \"path\""))
                })?;
                runtimes.insert(name.clone(), path.to_owned());
            }
        }
        for spec in &flags.add_runtimes {
            let (name, path) = spec.split_once('=').ok_or_else(|| {
                ConfigError::Invalid(format!("--add-runtime {spec:?}: expected NAME=PATH"))
            })?;
            runtimes.insert(name.to_owned(), path.to_owned());
        }
        let default_runtime = flags
            .default_runtime
            .clone()
            .or(str_of("default-runtime")?)
            .unwrap_or_else(|| "berth".to_owned());
        if !runtimes.contains_key(&default_runtime) {
            return Err(ConfigError::Invalid(format!(
                "default runtime {default_runtime:?} is not a configured runtime"
            )));
        }

        let bridge = flags
            .bridge
            .clone()
            .or(str_of("bridge")?)
            .unwrap_or_else(|| "berth0".to_owned());
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ', ':']) {
            return Err(ConfigError::Invalid(format!(
                "--bridge {bridge:?}: an interface name is 1 to 15 characters without '/', ':' or spaces"
            )));
        }
        let bool_of = |key: &str| -> Result<Option<bool>, ConfigError> {
            match file.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_bool()
                    .map(Some)
                    .ok_or_else(|| ConfigError::Invalid(format!("{key}: {v}"))),
            }
        };
        let u32_of = |key: &str| -> Result<Option<u32>, ConfigError> {
            match file.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| ConfigError::Invalid(format!("{key}: {v}"))),
            }
        };
        let icc = flags.icc.or(bool_of("icc")?).unwrap_or(true);
        let mtu = flags.mtu.or(u32_of("mtu")?);
        if let Some(m) = mtu
            && !(68..=65535).contains(&m)
        {
            return Err(ConfigError::Invalid(format!("mtu {m}: must be 68..65535")));
        }
        let max_concurrent_downloads = flags
            .max_concurrent_downloads
            .or(u32_of("max-concurrent-downloads")?)
            .unwrap_or(3);

        Ok(Config {
            hosts,
            data_root: flags
                .data_root
                .clone()
                .or(str_of("data-root")?.map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/var/lib/berth")),
            pidfile: flags
                .pidfile
                .clone()
                .or(str_of("pidfile")?.map(PathBuf::from))
                .unwrap_or_else(|| exec_root.join("berthd.pid")),
            exec_root,
            bridge,
            icc,
            mtu,
            bip: flags.bip.clone().or(str_of("bip")?),
            default_address_pools: if flags.default_address_pools.is_empty() {
                list_of("default-address-pools")?
            } else {
                flags.default_address_pools.clone()
            },
            insecure_registries: if flags.insecure_registries.is_empty() {
                list_of("insecure-registries")?
            } else {
                flags.insecure_registries.clone()
            },
            registry_mirrors: if flags.registry_mirrors.is_empty() {
                list_of("registry-mirrors")?
            } else {
                flags.registry_mirrors.clone()
            },
            log_level,
            default_runtime,
            runtimes,
            max_concurrent_downloads,
            config_file: flags.config_file.clone(),
            shim_binary: flags
                .shim_binary
                .clone()
                .unwrap_or_else(default_shim_binary),
            warnings,
        })
    }
}

/// `berth-shim` next to the running berthd, else from `$PATH`.
fn default_shim_binary() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let candidate = dir.join("berth-shim");
        if candidate.exists() {
            return candidate;
        }
    }
    PathBuf::from("berth-shim")
}

fn read_file(path: &Path) -> Result<serde_json::Map<String, Value>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ConfigError::Parse {
            path: path.to_owned(),
            reason: "expected a JSON object".into(),
        }),
        Err(e) => Err(ConfigError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut v = vec!["berthd"];
        v.extend_from_slice(args);
        Flags::parse_from(v)
    }

    fn obj(s: &str) -> serde_json::Map<String, Value> {
        match serde_json::from_str(s).unwrap() {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn defaults_like_dockerd() {
        let c = Config::merge(&flags(&[]), Default::default()).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.exec_root, PathBuf::from("/run/berth"));
        assert_eq!(c.hosts, vec!["unix:///run/berth/berth.sock".to_owned()]);
        assert_eq!(c.default_runtime, "berth");
    }

    #[test]
    fn unknown_keys_rejected_known_ones_warned() {
        let e = Config::merge(&flags(&[]), obj(r#"{"bogus-key":1}"#)).unwrap_err();
        assert!(
            e.to_string()
                .contains("don't match any configuration option: bogus-key"),
            "{e}"
        );
        let c = Config::merge(&flags(&[]), obj(r#"{"live-restore":true}"#)).unwrap();
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn flag_and_file_conflict() {
        let e = Config::merge(&flags(&["--data-root", "/a"]), obj(r#"{"data-root":"/b"}"#))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("both as a flag and in the configuration file"),
            "{e}"
        );
    }

    #[test]
    fn file_values_apply() {
        let c = Config::merge(
            &flags(&[]),
            obj(r#"{"data-root":"/d","hosts":["unix:///x.sock"],"runtimes":{"crun":{"path":"/usr/bin/crun"}},"default-runtime":"crun"}"#),
        )
        .unwrap();
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.hosts, vec!["unix:///x.sock".to_owned()]);
        assert_eq!(c.default_runtime, "crun");
    }
}
