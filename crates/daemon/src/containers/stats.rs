//! `docker stats` data read from the container's cgroup (`/berth/<id>`): cgroup v1 per
//! controller hierarchy, or the unified v2 tree. berthd only reads files here.

use std::path::PathBuf;

use serde_json::{Value, json};

/// Where each v1 controller is mounted, or the v2 root.
#[derive(Debug, Clone)]
pub enum Hierarchy {
    /// v1: controller name → mount point.
    V1(Vec<(String, PathBuf)>),
    /// v2 unified mount point.
    V2(PathBuf),
}

/// Finds the cgroup mounts from /proc/self/mountinfo.
pub fn hierarchy() -> Hierarchy {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v1 = Vec::new();
    let mut v2 = None;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split_whitespace().nth(4).unwrap_or("");
        let mut r = right.split_whitespace();
        let fstype = r.next().unwrap_or("");
        let _source = r.next();
        let opts = r.next().unwrap_or("");
        match fstype {
            "cgroup" => {
                for o in opts.split(',') {
                    if matches!(o, "memory" | "cpuacct" | "pids" | "blkio" | "cpu") {
                        v1.push((o.to_owned(), PathBuf::from(mount_point)));
                    }
                }
            }
            "cgroup2" if mount_point == "/sys/fs/cgroup" => v2 = Some(PathBuf::from(mount_point)),
            _ => {}
        }
    }
    match v2 {
        Some(p) if v1.is_empty() => Hierarchy::V2(p),
        _ => Hierarchy::V1(v1),
    }
}

fn read_u64(p: PathBuf) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn read_kv(p: PathBuf) -> serde_json::Map<String, Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

/// Host CPU time in nanoseconds (Docker's `system_cpu_usage`).
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

/// One stats sample in Docker's shape (without `precpu_stats`, filled by the caller).
pub fn sample(h: &Hierarchy, id: &str, name: &str) -> Value {
    let rel = format!("berth/{id}");
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (cpu, mem, pids) = match h {
        Hierarchy::V1(ctrls) => {
            let dir = |c: &str| {
                ctrls
                    .iter()
                    .find(|(n, _)| n == c)
                    .map(|(_, p)| p.join(&rel))
                    .unwrap_or_default()
            };
            let acct = dir("cpuacct");
            let percpu: Vec<u64> = std::fs::read_to_string(acct.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let st = read_kv(acct.join("cpuacct.stat"));
            let ticks_ns = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
            let cpu = json!({
                "cpu_usage": {
                    "total_usage": read_u64(acct.join("cpuacct.usage")).unwrap_or(0),
                    "percpu_usage": percpu,
                    "usage_in_kernelmode": ticks_ns("system"),
                    "usage_in_usermode": ticks_ns("user"),
                },
                "system_cpu_usage": system_cpu_ns(),
                "online_cpus": online,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
            });
            let m = dir("memory");
            let mem = json!({
                "usage": read_u64(m.join("memory.usage_in_bytes")).unwrap_or(0),
                "max_usage": read_u64(m.join("memory.max_usage_in_bytes")).unwrap_or(0),
                "limit": read_u64(m.join("memory.limit_in_bytes")).unwrap_or(0),
                "stats": read_kv(m.join("memory.stat")),
            });
            let pids = json!({
                "current": read_u64(dir("pids").join("pids.current")).unwrap_or(0),
            });
            (cpu, mem, pids)
        }
        Hierarchy::V2(root) => {
            let dir = root.join(&rel);
            let st = read_kv(dir.join("cpu.stat"));
            let us = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
            let cpu = json!({
                "cpu_usage": {
                    "total_usage": us("usage_usec"),
                    "usage_in_kernelmode": us("system_usec"),
                    "usage_in_usermode": us("user_usec"),
                },
                "system_cpu_usage": system_cpu_ns(),
                "online_cpus": online,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
            });
            let limit = std::fs::read_to_string(dir.join("memory.max"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let mem = json!({
                "usage": read_u64(dir.join("memory.current")).unwrap_or(0),
                "limit": limit,
                "stats": read_kv(dir.join("memory.stat")),
            });
            let pids = json!({"current": read_u64(dir.join("pids.current")).unwrap_or(0)});
            (cpu, mem, pids)
        }
    };
    let mem = with_host_limit(mem);
    json!({
        "read": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": pids,
        "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": mem,
        "name": name,
        "id": id,
    })
}

/// An unlimited cgroup reports a huge limit; Docker shows the host's memory instead.
fn with_host_limit(mut mem: Value) -> Value {
    let host = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let limit = mem.get("limit").and_then(Value::as_u64).unwrap_or(0);
    if limit == 0 || (host > 0 && limit > host) {
        mem["limit"] = json!(host);
    }
    mem
}
