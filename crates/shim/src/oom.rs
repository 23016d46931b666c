//! Did the kernel OOM-kill something in the container's memory cgroup?
//!
//! cgroup v1: `memory.oom_control` has `oom_kill N`; v2: `memory.events` has `oom_kill N`.
//! The cgroup is found once, from /proc/<init>/cgroup, while the init is alive.

use std::fs;
use std::path::PathBuf;

/// The file whose `oom_kill` counter belongs to the container, if there is one.
pub fn counter_file(pid: i32) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "memory") {
            let p = PathBuf::from("/sys/fs/cgroup/memory")
                .join(rel)
                .join("memory.oom_control");
            if p.exists() {
                return Some(p);
            }
        } else if ctrls.is_empty() {
            v2 = Some(
                PathBuf::from("/sys/fs/cgroup")
                    .join(rel)
                    .join("memory.events"),
            );
        }
    }
    v2.filter(|p| p.exists())
}

/// The `oom_kill` counter now (0 when unknown).
pub fn oom_kills(file: &Option<PathBuf>) -> u64 {
    let Some(f) = file else { return 0 };
    let Ok(text) = fs::read_to_string(f) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
