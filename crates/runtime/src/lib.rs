//! berth's OCI runtime: turns an OCI bundle into an isolated process.
//!
//! The chain the seeds describe, `clone3` with namespaces → mounts → `pivot_root` →
//! capabilities/seccomp/rlimits/cgroups → `execve`, done by a single-threaded library (no tokio,
//! no threads: it forks and clones, which is only safe single-threaded). Used two ways: by the
//! runc-compatible `berth-runtime` binary, and in-process by `berth-shim` through
//! [`container`], the one implementation both share.
//!
//! Module map (one job each):
//! - [`container`]: the library API (create/start/state/kill/delete/exec/pause/resume/ps/list).
//! - [`spec`]: load and validate `config.json`.
//! - [`state`]: the per-container state dir and runc's state JSON.
//! - [`process`]: clone3 with namespaces, the parent/child sync channel, the container init.
//! - [`rootfs`]: mounts, devices, `pivot_root`, masked and read-only paths.
//! - [`seal`]: re-exec from a copy of the binary the container cannot write (CVE-2019-5736).
//! - [`security`]: capabilities, seccomp, rlimits, and Docker's default profile.
//! - [`cgroups`]: a thin v1/v2 cgroup manager.
//! - [`hooks`]: OCI lifecycle hooks.
//! - [`console`]: `--console-socket` pty handover.
//! - [`cli`]: the runc-compatible command line.
//! - [`timing`]: `BERTH_RUNTIME_TIMING=1` step timestamps for profiling.
//!
//! Security notes: the binary re-executes itself from a copy the container cannot write before
//! `create`/`run`/`exec` (CVE-2019-5736, [`seal`]: a private read-only overlayfs view of its
//! own directory, ~0.15 ms, else a sealed memfd copy, ~3-4 ms). A long-lived in-process user
//! such as `berth-shim` must do the same once at its own start ([`seal::ensure_sealed`]).
//! Before `execve` every fd above the preserved ones becomes close-on-exec and the cwd must
//! resolve inside the container root (CVE-2024-21626).

pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
pub mod mem;
pub mod process;
pub mod rootfs;
pub mod seal;
pub mod security;
pub mod spec;
pub mod state;
pub mod timing;

pub use error::RuntimeError;

/// An error and its `source()` chain on one line, each cause once ("a: b: c").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
