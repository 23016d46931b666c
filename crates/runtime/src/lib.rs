//! berth's OCI runtime: turns an OCI bundle into an isolated process.
//!
//! The chain the seeds describe, `clone` with namespaces → mounts → `pivot_root` →
//! capabilities/seccomp/rlimits/cgroups → `execve`, done by a single-threaded library (no tokio,
//! no threads: it forks and clones, which is only safe single-threaded). Used two ways: by the
//! runc-compatible `berth-runtime` binary, and in-process by `berth-shim`.
//!
//! Module map (one job each):
//! - [`spec`]: load and validate `config.json`.
//! - [`state`]: the per-container state dir and runc's state JSON.
//! - [`process`]: clone3 with namespaces, the parent/child sync channel, the container init.
//! - [`rootfs`]: mounts, devices, `pivot_root`, masked and read-only paths.
//! - [`security`]: capabilities, seccomp, rlimits, and Docker's default profile.
//! - [`cgroups`]: a thin v1/v2 cgroup manager.
//! - [`hooks`]: OCI lifecycle hooks.
//! - [`console`]: `--console-socket` pty handover.
//! - [`cli`]: the runc-compatible command line.

pub mod cgroups;
pub mod cli;
pub mod console;
pub mod hooks;
pub mod process;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod state;
