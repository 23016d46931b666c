//! Thin cgroup manager for cgroup v1 (legacy and hybrid hosts) and v2 (unified hosts).
//!
//! How the runtime uses it:
//! - `create`: `let cg = cgroups::manager(path)?; cg.apply(init_pid)?; cg.set(resources)?;` where
//!   `path` is the spec's `linux.cgroupsPath` or `/berth/<id>`; store `path` in the state dir.
//! - `pause`/`resume`/`kill --all`/`delete`/`events`: `cgroups::manager(stored_path)?` again (or
//!   [`open`], the same call under a clearer name): building a manager touches nothing, so it
//!   re-opens an existing cgroup; then `freeze`/`thaw`/`kill_all`/`destroy`/`stats`.
//!
//! Paths follow runc: an absolute path (`/berth/<id>`) is relative to each hierarchy's mount
//! root, a relative one to the caller's own cgroup in that hierarchy. The layout is detected from
//! `/proc/self/mountinfo` ([`detect`]); tests build managers over explicit roots with
//! [`V1Manager::with_dirs`] and [`V2Manager::new`].

mod detect;
mod devices;
mod ebpf;
mod fs;
mod stats;
mod v1;
mod v1_resources;
mod v2;
mod v2_resources;

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

pub use detect::{
    CgroupLayout, CgroupMode, Hierarchy, ProcCgroup, cgroup_version, detect, own_cgroups,
    parse_mountinfo, parse_proc_cgroup, resolve_dir,
};
pub use devices::{DeviceRule, is_allow_all};
pub use ebpf::{Insn, apply_device_rules, device_program};
pub use stats::{keyed_value, v1_blkio_bytes, v2_io_bytes};
pub use v1::{V1Dir, V1Manager};
pub use v2::V2Manager;
pub use v2_resources::shares_to_weight;

/// Errors from cgroup operations; each variant names the step and the cgroupfs path involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup or cgroup2 filesystem in mountinfo.
    #[error("cgroups: no cgroup filesystem mounted (checked /proc/self/mountinfo)")]
    NoCgroupFs,
    /// A relative cgroup path needs the caller's cgroup, and /proc/self/cgroup lacks it.
    #[error("cgroups: /proc/self/cgroup has no entry for hierarchy {0}")]
    OwnCgroupMissing(String),
    /// Reading a cgroupfs or proc file failed.
    #[error("cgroups: reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a value to a cgroupfs file failed (a missing file means a missing controller).
    #[error("cgroups: writing {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content could not be parsed.
    #[error("cgroups: parsing {path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// Creating a cgroup dir failed.
    #[error("cgroups: creating {path}")]
    Create {
        /// The dir.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Moving a process into the cgroup failed.
    #[error("cgroups: moving pid {pid} into {path}")]
    Attach {
        /// The process.
        pid: i32,
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Removing a cgroup dir failed (after retrying EBUSY).
    #[error("cgroups: removing {path}")]
    Remove {
        /// The dir.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Signalling a task failed.
    #[error("cgroups: signalling pid {pid}")]
    Signal {
        /// The task.
        pid: i32,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Freeze or thaw did not complete in time.
    #[error("cgroups: {path} did not reach state {state} in time")]
    StateTimeout {
        /// The cgroup dir.
        path: PathBuf,
        /// The state waited for.
        state: String,
    },
    /// The spec asks for something this host's cgroup layout cannot do.
    #[error("cgroups: {what} is not supported here: {why}")]
    Unsupported {
        /// The resource or operation.
        what: String,
        /// Why not.
        why: String,
    },
    /// A value in the spec is out of range or malformed.
    #[error("cgroups: invalid {what}: {why}")]
    Invalid {
        /// The field.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// A bpf(2) step of the v2 device policy failed; `log` holds the verifier's output if any.
    #[error("cgroups: bpf: {step}{}", if .log.is_empty() { String::new() } else { format!(" (verifier: {})", .log.trim()) })]
    Bpf {
        /// Which step.
        step: &'static str,
        /// Verifier log (load failures only).
        log: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Teardown kept going past failures; every one is listed.
    #[error("cgroups: destroy left {}: {}", .0.len(), join_errors(.0))]
    Destroy(Vec<CgroupError>),
}

fn join_errors(errors: &[CgroupError]) -> String {
    errors
        .iter()
        .map(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(cause) = src {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                src = cause.source();
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Resource usage read from the cgroup (for `docker stats`, `runc events`). Fields whose
/// controller or file is absent read as 0; limits read as `u64::MAX` when unlimited.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CgroupStats {
    /// Memory usage in bytes.
    pub memory_usage: u64,
    /// Memory limit in bytes (u64::MAX when unlimited).
    pub memory_limit: u64,
    /// Peak memory usage (v1 `max_usage_in_bytes`, v2 `memory.peak`).
    pub memory_max_usage: u64,
    /// Inactive file cache, which `docker stats` subtracts from usage.
    pub memory_inactive_file: u64,
    /// Total CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    /// User CPU time in nanoseconds.
    pub cpu_user_ns: u64,
    /// System CPU time in nanoseconds.
    pub cpu_system_ns: u64,
    /// Number of tasks.
    pub pids_current: u64,
    /// Task limit (u64::MAX when unlimited).
    pub pids_limit: u64,
    /// Bytes read from block devices.
    pub io_read_bytes: u64,
    /// Bytes written to block devices.
    pub io_write_bytes: u64,
}

/// How a freshly cloned, single-threaded child enters its cgroup without the kernel's global
/// `cgroup_threadgroup_rwsem` write lock. Writing a pid to `cgroup.procs` takes that lock, and
/// its first writer after a quiet spell waits a whole RCU grace period (8-30 ms on this VM,
/// more than the rest of `run`). Two ways avoid it: `clone3(CLONE_INTO_CGROUP)` into a cgroup2
/// dir (placed at fork, under the lock's cheap read side), and a single thread moving *itself*
/// by writing `0` to a v1 hierarchy's `tasks` file (the kernel skips the lock for that case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfJoin {
    /// The cgroup2 dir to clone into, if any.
    pub clone_into: Option<PathBuf>,
    /// v1 `tasks` files the child writes `0` to, first thing after clone.
    pub tasks: Vec<PathBuf>,
}

/// One container's cgroup, on whichever hierarchy the host has.
pub trait CgroupManager {
    /// The cgroup path relative to the hierarchy root(s), e.g. `/berth/<id>`.
    fn path(&self) -> &str;
    /// Create the cgroup (every hierarchy on v1) and move `pid` into it.
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
    /// Create the cgroup (every hierarchy on v1) without moving anything into it; the child
    /// then joins per [`CgroupManager::self_join`].
    fn create_dirs(&self) -> Result<(), CgroupError>;
    /// Where a new child places itself (see [`SelfJoin`]); valid after `create_dirs`.
    fn self_join(&self) -> SelfJoin;
    /// Write the spec's resource limits.
    fn set(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// Freeze every task (pause).
    fn freeze(&self) -> Result<(), CgroupError>;
    /// Thaw (resume).
    fn thaw(&self) -> Result<(), CgroupError>;
    /// Pids of every task in the cgroup.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Send `signal` to every task (`kill --all`).
    fn kill_all(&self, signal: i32) -> Result<(), CgroupError>;
    /// Current usage.
    fn stats(&self) -> Result<CgroupStats, CgroupError>;
    /// Remove the cgroup (every hierarchy on v1); missing dirs are not an error.
    fn destroy(&self) -> Result<(), CgroupError>;
    /// Whether the cgroup dir exists (on v1: in any hierarchy), e.g. to tell `delete` whether
    /// there is anything to clean.
    fn exists(&self) -> bool;
    /// Whether the cgroup is frozen now (for `state` to report `paused`).
    fn is_frozen(&self) -> Result<bool, CgroupError>;
}

/// A manager for `path` (the spec's `linux.cgroupsPath`, or `/berth/<id>` when absent) on the
/// host's cgroup layout, detected from /proc/self/mountinfo. Touches no cgroupfs file: call
/// `apply` to create and join.
pub fn manager(path: &str) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let layout = detect()?;
    let own = own_cgroups()?;
    from_layout(&layout, path, &own)
}

/// Re-open an existing container's cgroup from its stored path (same as [`manager`]; named for
/// the `pause`/`kill`/`delete` call sites).
pub fn open(path: &str) -> Result<Box<dyn CgroupManager>, CgroupError> {
    manager(path)
}

/// A manager for `path` on an explicit layout (tests, or a caller that already parsed it).
pub fn from_layout(
    layout: &CgroupLayout,
    path: &str,
    own: &[ProcCgroup],
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    match (layout.mode, &layout.unified) {
        (CgroupMode::Unified, Some(u)) => {
            let dir = resolve_dir(u, path, own)?;
            Ok(Box::new(V2Manager::with_dir(path, &u.mount_point, dir)))
        }
        _ => Ok(Box::new(V1Manager::from_layout(path, layout, own)?)),
    }
}
