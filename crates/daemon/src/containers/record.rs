//! What berthd persists per container: `config.v2.json` (this record, in the field names
//! Docker's own file uses) and `hostconfig.json` (the HostConfig as sent by the client).

use berth_api::models::{ContainerConfig, HostConfig, NetworkingConfig};
use serde::{Deserialize, Serialize};

/// Docker's zero time, used for StartedAt/FinishedAt before the first start/exit.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The runtime state part of the record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct StateRecord {
    /// The init process is alive (maybe paused).
    pub running: bool,
    /// Frozen.
    pub paused: bool,
    /// Waiting to be restarted by its restart policy.
    pub restarting: bool,
    /// Killed by the OOM killer at its last exit.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Being removed.
    pub removal_in_progress: bool,
    /// Removal failed halfway.
    pub dead: bool,
    /// Init pid on the host (0 when not running).
    pub pid: i64,
    /// Last exit code.
    pub exit_code: i64,
    /// Last start error.
    pub error: String,
    /// RFC 3339 (nanoseconds) of the last start.
    pub started_at: String,
    /// RFC 3339 of the last exit.
    pub finished_at: String,
}

impl Default for StateRecord {
    fn default() -> Self {
        StateRecord {
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            removal_in_progress: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.to_owned(),
            finished_at: ZERO_TIME.to_owned(),
        }
    }
}

impl StateRecord {
    /// Docker's status string.
    pub fn status(&self) -> &'static str {
        if self.running {
            if self.paused {
                return "paused";
            }
            return "running";
        }
        if self.restarting {
            return "restarting";
        }
        if self.removal_in_progress {
            return "removing";
        }
        if self.dead {
            return "dead";
        }
        if self.started_at == ZERO_TIME {
            return "created";
        }
        "exited"
    }
}

/// Overlay paths of the container's layers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct GraphRecord {
    /// Colon-separated lower dirs.
    pub lower_dir: String,
    /// Mount point.
    pub merged_dir: String,
    /// rw diff dir.
    pub upper_dir: String,
    /// overlay work dir.
    pub work_dir: String,
}

/// `config.v2.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerRecord {
    /// 64 hex.
    #[serde(rename = "ID")]
    pub id: String,
    /// RFC 3339 nanoseconds.
    pub created: String,
    /// argv[0] of the init process.
    pub path: String,
    /// argv[1..].
    pub args: Vec<String>,
    /// The container config (image defaults merged in).
    pub config: ContainerConfig,
    /// `sha256:<hex>` of the image.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// `/name`.
    pub name: String,
    /// Storage driver.
    pub driver: String,
    /// `linux`.
    #[serde(rename = "OS")]
    pub os: String,
    /// Restarts by the restart policy since the last manual start.
    pub restart_count: i64,
    /// Started at least once.
    pub has_been_started_before: bool,
    /// Stopped by the user (restart policies `unless-stopped`/`always` honour it).
    pub has_been_manually_stopped: bool,
    /// Runtime state.
    pub state: StateRecord,
    /// json-file log.
    pub log_path: String,
    /// Generated /etc/hostname.
    pub hostname_path: String,
    /// Generated /etc/hosts.
    pub hosts_path: String,
    /// Generated /etc/resolv.conf.
    pub resolv_conf_path: String,
    /// Layer paths.
    pub graph_driver: GraphRecord,
    /// Volumes, binds and tmpfs mounts by destination (see `crate::volumes::mounts`).
    #[serde(default)]
    pub mount_points: crate::volumes::MountPoints,
    /// Networking config as sent at create.
    #[serde(default)]
    pub networking_config: Option<NetworkingConfig>,
    /// The networks the container belongs to and, while it runs, its endpoints.
    #[serde(default)]
    pub network_settings: crate::networks::attach::NetworkSettingsRecord,
    /// Not part of config.v2.json: stored as hostconfig.json next to it.
    #[serde(skip)]
    pub host_config: HostConfig,
}
