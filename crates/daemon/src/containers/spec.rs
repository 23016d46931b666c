//! The OCI runtime spec berthd hands to the shim: Docker's defaults (capabilities, seccomp,
//! masked/read-only paths, device rules, /dev/shm 64 MB, cgroup `/berth/<id>`) plus what the
//! container's Config and HostConfig ask for.

use std::path::Path;

use berth_api::ApiError;
use berth_api::models::HostConfig;
use serde_json::{Value, json};

use super::network::NetMode;
use super::record::ContainerRecord;

/// Docker's default PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's size strings (`10m`, `1g`, `512k`, `100`) in bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n > 0.0).then_some((n * mult as f64) as u64)
}

/// json-file rotation from `--log-opt max-size=.. max-file=..`: (max size, max files).
pub fn log_rotation(h: &HostConfig) -> Result<(Option<u64>, Option<u32>), ApiError> {
    let Some(lc) = &h.log_config else {
        return Ok((None, None));
    };
    let typ = lc.typ.as_deref().unwrap_or("");
    if !typ.is_empty() && typ != "json-file" {
        return Err(ApiError::not_implemented(format!(
            "logging driver {typ:?} not supported yet (berthd supports json-file)"
        )));
    }
    let opts = lc.config.clone().unwrap_or_default();
    let mut size = None;
    let mut files = None;
    for (k, v) in &opts {
        match k.as_str() {
            "max-size" => {
                size = Some(parse_size(v).ok_or_else(|| {
                    ApiError::invalid(format!("invalid log option max-size: {v:?}"))
                })?)
            }
            "max-file" => {
                files = Some(v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ApiError::invalid(format!("invalid log option max-file: {v:?}"))
                })?)
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown log opt '{other}' for json-file log driver"
                )));
            }
        }
    }
    if files.is_some_and(|n| n > 1) && size.is_none() {
        return Err(ApiError::invalid("max-file cannot be set without max-size"));
    }
    Ok((size, files))
}

/// HostConfig settings berthd cannot honour yet are refused at create, not ignored.
pub fn validate_host_config(h: &HostConfig) -> Result<(), ApiError> {
    log_rotation(h)?;
    if let Some(m) = h.memory.filter(|m| *m != 0)
        && m < 6 * 1024 * 1024
    {
        return Err(ApiError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if h.memory_swap
        .is_some_and(|s| s > 0 && s < h.memory.unwrap_or(0))
    {
        return Err(ApiError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if h.cpu_shares.is_some_and(|s| s < 0) || h.nano_cpus.is_some_and(|n| n < 0) {
        return Err(ApiError::invalid(
            "invalid CPU setting: must not be negative",
        ));
    }
    if h.shm_size.is_some_and(|s| s < 0) {
        return Err(ApiError::invalid("SHM size can not be less than 0"));
    }
    for (what, mode) in [
        ("pid", h.pid_mode.as_deref()),
        ("ipc", h.ipc_mode.as_deref()),
        ("uts", h.uts_mode.as_deref()),
    ] {
        if let Some(m) = mode
            && m.starts_with("container:")
        {
            return Err(ApiError::not_implemented(format!(
                "{what} mode {m} not supported yet"
            )));
        }
    }
    // Binds, Mounts and VolumesFrom are checked by `crate::volumes::plan`.
    Ok(())
}

/// Resolves `user` (`uid[:gid]` or names) against the rootfs' /etc/passwd and /etc/group.
fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), ApiError> {
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_root(rootfs, "etc/passwd");
    let group = read_in_root(rootfs, "etc/group");
    let (uid, mut gid) = if let Ok(n) = u.parse::<u32>() {
        let gid = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[2] == u)
                    .then(|| f[3].parse::<u32>().ok())
                    .flatten()
            })
            .next()
            .unwrap_or(0);
        (n, gid)
    } else {
        passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() >= 4 && f[0] == u {
                    Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?))
                } else {
                    None
                }
            })
            .next()
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?
    };
    if let Some(g) = g {
        gid = if let Ok(n) = g.parse::<u32>() {
            n
        } else {
            group
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .next()
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?
        };
    }
    Ok((uid, gid, Vec::new()))
}

/// Reads a file inside the rootfs with symlinks resolved inside it (never escaping it).
fn read_in_root(rootfs: &Path, rel: &str) -> String {
    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    let Ok(root) = std::fs::File::open(rootfs) else {
        return String::new();
    };
    match openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    ) {
        Ok(fd) => {
            let mut s = String::new();
            let mut f = std::fs::File::from(fd);
            let _ = std::io::Read::read_to_string(&mut f, &mut s);
            s
        }
        Err(_) => String::new(),
    }
}

fn cap_names() -> Vec<String> {
    berth_runtime::security::defaults::docker_default_capabilities()
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Normalises `chown` / `CAP_CHOWN` to `CAP_CHOWN`.
fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn capabilities(h: &HostConfig) -> Vec<String> {
    if h.privileged == Some(true) {
        return ALL_CAPS.iter().map(|s| (*s).to_owned()).collect();
    }
    let mut caps = cap_names();
    let adds: Vec<String> = h.cap_add.clone().unwrap_or_default();
    let drops: Vec<String> = h.cap_drop.clone().unwrap_or_default();
    if drops.iter().any(|d| d.eq_ignore_ascii_case("all")) {
        caps.clear();
    } else {
        let drops: Vec<String> = drops.iter().map(|d| cap_name(d)).collect();
        caps.retain(|c| !drops.contains(c));
    }
    if adds.iter().any(|a| a.eq_ignore_ascii_case("all")) {
        return ALL_CAPS.iter().map(|s| (*s).to_owned()).collect();
    }
    for a in adds {
        let a = cap_name(&a);
        if !caps.contains(&a) {
            caps.push(a);
        }
    }
    caps
}

fn device_rules(privileged: bool) -> Value {
    if privileged {
        return json!([{"allow": true, "access": "rwm"}]);
    }
    json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"}
    ])
}

fn resources(h: &HostConfig) -> Value {
    let mut r = serde_json::Map::new();
    r.insert("devices".into(), device_rules(h.privileged == Some(true)));
    let mut mem = serde_json::Map::new();
    if let Some(m) = h.memory.filter(|m| *m > 0) {
        mem.insert("limit".into(), json!(m));
        match h.memory_swap {
            Some(s) if s > 0 || s == -1 => {
                mem.insert("swap".into(), json!(s));
            }
            _ => {
                mem.insert("swap".into(), json!(m * 2));
            }
        }
    }
    if let Some(m) = h.memory_reservation.filter(|m| *m > 0) {
        mem.insert("reservation".into(), json!(m));
    }
    if let Some(s) = h.memory_swappiness.filter(|s| *s >= 0) {
        mem.insert("swappiness".into(), json!(s));
    }
    if h.oom_kill_disable == Some(true) {
        mem.insert("disableOOMKiller".into(), json!(true));
    }
    if !mem.is_empty() {
        r.insert("memory".into(), Value::Object(mem));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(s) = h.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(n) = h.nano_cpus.filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(n / 10_000));
    } else {
        if let Some(q) = h.cpu_quota.filter(|q| *q > 0) {
            cpu.insert("quota".into(), json!(q));
        }
        if let Some(p) = h.cpu_period.filter(|p| *p > 0) {
            cpu.insert("period".into(), json!(p));
        }
    }
    if let Some(c) = h.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = h.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        r.insert("pids".into(), json!({"limit": p}));
    }
    Value::Object(r)
}

fn mounts(rec: &ContainerRecord, h: &HostConfig) -> Vec<Value> {
    let shm = h.shm_size.filter(|s| *s > 0).unwrap_or(64 * 1024 * 1024);
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    for (dest, src) in [
        ("/etc/resolv.conf", &rec.resolv_conf_path),
        ("/etc/hostname", &rec.hostname_path),
        ("/etc/hosts", &rec.hosts_path),
    ] {
        m.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    // Volumes, binds and `--mount`s, parsed at create (`crate::volumes::mounts`).
    m.extend(crate::volumes::mounts::oci_mounts(
        &crate::volumes::mounts::of_record(&rec.mount_points, h),
    ));
    for (dest, opts) in h.tmpfs.clone().unwrap_or_default() {
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
        m.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    m
}

/// A process spec (for the init and for exec).
pub struct ProcessArgs<'a> {
    /// argv.
    pub args: Vec<String>,
    /// Env as K=V (already merged).
    pub env: Vec<String>,
    /// Working dir.
    pub cwd: &'a str,
    /// User string.
    pub user: &'a str,
    /// TTY.
    pub terminal: bool,
}

/// Builds an OCI `process` object.
pub fn process(rootfs: &Path, h: &HostConfig, p: ProcessArgs<'_>) -> Result<Value, ApiError> {
    let (uid, gid, mut extra) = resolve_user(rootfs, p.user)?;
    for g in h.group_add.as_deref().unwrap_or(&[]) {
        if let Ok(n) = g.parse::<u32>() {
            extra.push(n);
        }
    }
    let caps = capabilities(h);
    let mut rlimits = Vec::new();
    for u in h.ulimits.as_deref().unwrap_or(&[]) {
        let name = u.name.clone().unwrap_or_default();
        rlimits.push(json!({
            "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
            "soft": u.soft.unwrap_or(0),
            "hard": u.hard.unwrap_or(0),
        }));
    }
    let cwd = if p.cwd.is_empty() { "/" } else { p.cwd };
    let mut proc_ = json!({
        "terminal": p.terminal,
        "user": {"uid": uid, "gid": gid},
        "args": p.args,
        "env": p.env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": h.security_opt.as_deref().unwrap_or(&[]).iter().any(|o| o.starts_with("no-new-privileges") && !o.ends_with("false")),
    });
    if !extra.is_empty() {
        proc_["user"]["additionalGids"] = json!(extra);
    }
    if !rlimits.is_empty() {
        proc_["rlimits"] = json!(rlimits);
    }
    if let Some(adj) = h.oom_score_adj.filter(|a| *a != 0) {
        proc_["oomScoreAdj"] = json!(adj);
    }
    Ok(proc_)
}

/// The init's environment: PATH and HOSTNAME (and TERM with a TTY) under the container's.
pub fn init_env(rec: &ContainerRecord) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!(
            "HOSTNAME={}",
            rec.config.hostname.clone().unwrap_or_default()
        ),
    ];
    if rec.config.tty == Some(true) {
        env.push("TERM=xterm".to_owned());
    }
    for kv in rec.config.env.as_deref().unwrap_or(&[]) {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        if let Some(slot) = env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            *slot = kv.clone();
        } else {
            env.push(kv.clone());
        }
    }
    env
}

/// The whole config.json for the container's init. `netns` is the network namespace to join
/// (a pinned one for bridge networks, another container's for `container:`); `None` makes
/// the runtime create a fresh one (`none`) unless the mode is `host`.
pub fn generate(
    rec: &ContainerRecord,
    rootfs: &Path,
    netmode: &NetMode,
    netns: Option<&Path>,
) -> Result<Value, ApiError> {
    let h = &rec.host_config;
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let process = process(
        rootfs,
        h,
        ProcessArgs {
            args,
            env: init_env(rec),
            cwd: rec.config.working_dir.as_deref().unwrap_or(""),
            user: rec.config.user.as_deref().unwrap_or(""),
            terminal: rec.config.tty == Some(true),
        },
    )?;
    let privileged = h.privileged == Some(true);
    let mut namespaces = vec![json!({"type": "mount"})];
    match (netmode, netns) {
        (NetMode::Host, _) => {}
        (_, Some(p)) => namespaces.push(json!({"type": "network", "path": p})),
        (_, None) => namespaces.push(json!({"type": "network"})),
    }
    if h.uts_mode.as_deref() != Some("host") && *netmode != NetMode::Host {
        namespaces.push(json!({"type": "uts"}));
    }
    if h.pid_mode.as_deref() != Some("host") {
        namespaces.push(json!({"type": "pid"}));
    }
    if h.ipc_mode.as_deref() != Some("host") {
        namespaces.push(json!({"type": "ipc"}));
    }
    if h.cgroupns_mode.map(|m| m.to_string()).as_deref() == Some("private") {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut linux = json!({
        "resources": resources(h),
        "cgroupsPath": format!("/berth/{}", rec.id),
        "namespaces": namespaces,
    });
    if !privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        let caps = berth_runtime::security::defaults::docker_default_capabilities();
        let seccomp = berth_runtime::security::defaults::docker_default_seccomp(&caps);
        let unconfined = h
            .security_opt
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
        if !unconfined && let Ok(v) = serde_json::to_value(&seccomp) {
            linux["seccomp"] = v;
        }
    }
    if let Some(sysctls) = &h.sysctls {
        linux["sysctl"] = json!(sysctls);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": h.readonly_rootfs == Some(true)},
        "mounts": mounts(rec, h),
        "linux": linux,
    });
    if *netmode != NetMode::Host {
        spec["hostname"] = json!(rec.config.hostname.clone().unwrap_or_default());
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_resolution() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nusers:x:100:\n").unwrap();
        assert_eq!(resolve_user(d.path(), "").unwrap().0, 0);
        let (u, g, _) = resolve_user(d.path(), "nobody").unwrap();
        assert_eq!((u, g), (65534, 65534));
        let (u, g, _) = resolve_user(d.path(), "1000:users").unwrap();
        assert_eq!((u, g), (1000, 100));
        let e = resolve_user(d.path(), "ghost").unwrap_err();
        assert!(e.message.contains("unable to find user ghost"));
    }

    #[test]
    fn log_options() {
        use berth_api::models::HostConfigLogConfig;
        let hc = |typ: &str, opts: &[(&str, &str)]| HostConfig {
            log_config: Some(HostConfigLogConfig {
                typ: Some(typ.into()),
                config: Some(
                    opts.iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };
        assert_eq!(
            log_rotation(&hc("json-file", &[("max-size", "10m"), ("max-file", "3")])).unwrap(),
            (Some(10 << 20), Some(3))
        );
        assert_eq!(log_rotation(&hc("", &[])).unwrap(), (None, None));
        assert_eq!(
            log_rotation(&hc("syslog", &[])).unwrap_err().http_status(),
            501
        );
        assert_eq!(
            log_rotation(&hc("json-file", &[("max-size", "x")]))
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(
            log_rotation(&hc("json-file", &[("bogus", "1")]))
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
    }

    #[test]
    fn cap_add_drop() {
        let h = HostConfig {
            cap_add: Some(vec!["net_admin".into()]),
            cap_drop: Some(vec!["ALL".into()]),
            ..Default::default()
        };
        assert_eq!(capabilities(&h), vec!["CAP_NET_ADMIN".to_owned()]);
    }
}
