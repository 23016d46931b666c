//! Thin cgroup manager for cgroup v1 (hybrid hosts) and v2 (unified hosts).
//!
//! STUB: interface agreed between work streams; the cgroups stream implements it.

use oci_spec::runtime::LinuxResources;

/// Errors from cgroup operations.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Placeholder until implemented.
    #[error("cgroups: not implemented yet")]
    NotImplemented,
}

/// Resource usage read from the cgroup (for `docker stats`, `runc events`).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct CgroupStats {
    /// Memory usage in bytes.
    pub memory_usage: u64,
    /// Memory limit in bytes (u64::MAX when unlimited).
    pub memory_limit: u64,
    /// Total CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of tasks.
    pub pids_current: u64,
}

/// One container's cgroup, on whichever hierarchy the host has.
pub trait CgroupManager {
    /// The cgroup path relative to the hierarchy root(s), e.g. `/berth/<id>`.
    fn path(&self) -> &str;
    /// Create the cgroup (every hierarchy on v1) and move `pid` into it.
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
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
}

/// A manager for `path` (the spec's `linux.cgroupsPath`, or `/berth/<id>` when absent) on the
/// host's cgroup layout, detected from /proc/self/mountinfo.
pub fn manager(_path: &str) -> Result<Box<dyn CgroupManager>, CgroupError> {
    Err(CgroupError::NotImplemented)
}
