//! `run`/`create` flags → the `POST /containers/create` body (Config + HostConfig +
//! NetworkingConfig), as the docker CLI builds it.

pub mod ports;
pub mod units;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::cli::CreateOpts;

/// Errors in flag values (the CLI reports them with exit 125 for run/create).
#[derive(Debug, thiserror::Error)]
pub enum OptsError {
    /// A value is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A file named by a flag could not be read.
    #[error("{what} {path}: {source}")]
    File {
        /// Which flag.
        what: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What `create` sends and what `run` needs to know to attach.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The JSON body.
    pub body: Value,
    /// `?name=`.
    pub name: Option<String>,
    /// `?platform=`.
    pub platform: Option<String>,
}

/// Reads `KEY=VALUE` lines (comments and blank lines skipped), as `--env-file`/`--label-file`.
fn read_kv_file(what: &'static str, path: &str) -> Result<Vec<String>, OptsError> {
    let text = std::fs::read_to_string(path).map_err(|source| OptsError::File {
        what,
        path: path.to_owned(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// `A` without `=` takes the local value when set (and is kept bare otherwise), as Docker.
fn env_entry(e: &str) -> String {
    if e.contains('=') {
        return e.to_owned();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_owned(),
    }
}

/// Environment from `--env-file` then `-e`.
pub fn env_list(env_files: &[String], env: &[String]) -> Result<Vec<String>, OptsError> {
    let mut out = Vec::new();
    for f in env_files {
        out.extend(read_kv_file("open", f)?.iter().map(|e| env_entry(e)));
    }
    out.extend(env.iter().map(|e| env_entry(e)));
    Ok(out)
}

fn kv_map(items: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for it in items {
        let (k, v) = it.split_once('=').unwrap_or((it, ""));
        m.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    m
}

fn set_opt<T: Into<Value>>(m: &mut Map<String, Value>, k: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(k.to_owned(), v.into());
    }
}

fn set_list(m: &mut Map<String, Value>, k: &str, v: &[String]) {
    if !v.is_empty() {
        m.insert(k.to_owned(), json!(v));
    }
}

/// `--mount type=bind,source=/a,target=/b,readonly`.
pub fn parse_mount(spec: &str) -> Result<Value, OptsError> {
    let mut m = Map::new();
    let mut kind = "volume".to_owned();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let truthy = |v: &Option<String>| -> Result<bool, OptsError> {
            match v.as_deref() {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(x) => Err(OptsError::Invalid(format!("invalid value for {k}: {x}"))),
            }
        };
        match k.as_str() {
            "type" => kind = v.unwrap_or_default(),
            "source" | "src" => {
                m.insert("Source".into(), json!(v.unwrap_or_default()));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(v.unwrap_or_default()));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(truthy(&v)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(v.unwrap_or_default()));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(v.unwrap_or_default()));
            }
            "bind-recursive" => {
                bind.insert(
                    "NonRecursive".into(),
                    json!(v.as_deref() == Some("disabled")),
                );
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(truthy(&v)?));
            }
            "volume-driver" => {
                vol.insert(
                    "DriverConfig".into(),
                    json!({"Name": v.unwrap_or_default()}),
                );
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(v.unwrap_or_default()));
            }
            "tmpfs-size" => {
                tmpfs.insert(
                    "SizeBytes".into(),
                    json!(units::ram_in_bytes(v.as_deref().unwrap_or(""))?),
                );
            }
            "tmpfs-mode" => {
                let mode = i64::from_str_radix(v.as_deref().unwrap_or(""), 8).map_err(|_| {
                    OptsError::Invalid(format!(
                        "invalid value for tmpfs-mode: {}",
                        v.unwrap_or_default()
                    ))
                })?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => {
                return Err(OptsError::Invalid(format!(
                    "unexpected key '{k}' in '{field}'"
                )));
            }
        }
    }
    if !m.contains_key("Target") {
        return Err(OptsError::Invalid("target is required".into()));
    }
    m.insert("Type".into(), json!(kind));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

/// `--security-opt seccomp=/path` sends the profile's contents, as the docker CLI does.
fn security_opts(opts: &[String]) -> Result<Vec<String>, OptsError> {
    let mut out = Vec::new();
    for o in opts {
        let o = o.replacen(':', "=", usize::from(!o.contains('=')));
        if let Some(path) = o.strip_prefix("seccomp=")
            && path != "unconfined"
            && path != "builtin"
        {
            let text = std::fs::read_to_string(path).map_err(|source| OptsError::File {
                what: "opening seccomp profile",
                path: path.to_owned(),
                source,
            })?;
            let compact: Value = serde_json::from_str(&text)
                .map_err(|e| OptsError::Invalid(format!("parsing seccomp profile {path}: {e}")))?;
            out.push(format!("seccomp={compact}"));
        } else {
            out.push(o);
        }
    }
    Ok(out)
}

/// Builds the create request from the flags.
pub fn create_request(o: &CreateOpts) -> Result<CreateRequest, OptsError> {
    let mut cfg = Map::new();
    let mut hc = Map::new();

    // Attach and stdin, as docker/cli's parse: -a picks streams, -d attaches none.
    let attach: Vec<String> = o.attach.iter().map(|a| a.to_ascii_lowercase()).collect();
    for a in &attach {
        if !matches!(a.as_str(), "stdin" | "stdout" | "stderr") {
            return Err(OptsError::Invalid(format!(
                "invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
            )));
        }
    }
    if o.detach && !attach.is_empty() {
        return Err(OptsError::Invalid(
            "conflicting options: cannot specify both --attach and --detach".into(),
        ));
    }
    let (a_in, a_out, a_err) = if o.detach {
        (false, false, false)
    } else if attach.is_empty() {
        (o.interactive, true, true)
    } else {
        (
            attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    set_opt(&mut cfg, "Hostname", o.hostname.clone());
    set_opt(&mut cfg, "Domainname", o.domainname.clone());
    set_opt(&mut cfg, "User", o.user.clone());
    cfg.insert("AttachStdin".into(), json!(a_in));
    cfg.insert("AttachStdout".into(), json!(a_out));
    cfg.insert("AttachStderr".into(), json!(a_err));

    let ports = ports::parse(&o.publish, &o.expose)?;
    if !ports.exposed.is_empty() {
        let m: Map<String, Value> = ports
            .exposed
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        cfg.insert("ExposedPorts".into(), Value::Object(m));
    }
    cfg.insert("Tty".into(), json!(o.tty));
    cfg.insert("OpenStdin".into(), json!(o.interactive));
    cfg.insert("StdinOnce".into(), json!(o.interactive && a_in));
    let env = env_list(&o.env_file, &o.env)?;
    if !env.is_empty() {
        cfg.insert("Env".into(), json!(env));
    }
    if !o.command.is_empty() {
        cfg.insert("Cmd".into(), json!(o.command));
    }
    // Healthcheck.
    if o.no_healthcheck {
        let conflicting = o.health_cmd.is_some()
            || o.health_interval.is_some()
            || o.health_timeout.is_some()
            || o.health_retries.is_some()
            || o.health_start_period.is_some();
        if conflicting {
            return Err(OptsError::Invalid(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        cfg.insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
    } else {
        let mut h = Map::new();
        if let Some(c) = &o.health_cmd {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (flag, key) in [
            (&o.health_interval, "Interval"),
            (&o.health_timeout, "Timeout"),
            (&o.health_start_period, "StartPeriod"),
            (&o.health_start_interval, "StartInterval"),
        ] {
            if let Some(d) = flag {
                let ns = units::go_duration_ns(d)?;
                if ns < 0 {
                    return Err(OptsError::Invalid(format!(
                        "--health-{} cannot be negative",
                        key.to_ascii_lowercase()
                    )));
                }
                h.insert(key.into(), json!(ns));
            }
        }
        if let Some(r) = o.health_retries {
            if r < 0 {
                return Err(OptsError::Invalid(
                    "--health-retries cannot be negative".into(),
                ));
            }
            h.insert("Retries".into(), json!(r));
        }
        if !h.is_empty() {
            cfg.insert("Healthcheck".into(), Value::Object(h));
        }
    }
    cfg.insert("Image".into(), json!(o.image));

    // Volumes: "/dst" alone is anonymous (Config.Volumes); "src:dst[:opts]" is a bind.
    let mut binds = Vec::new();
    let mut anon = Map::new();
    for v in &o.volume {
        if v.split(':').count() == 1 {
            anon.insert(v.clone(), json!({}));
        } else {
            binds.push(v.clone());
        }
    }
    if !anon.is_empty() {
        cfg.insert("Volumes".into(), Value::Object(anon));
    }
    set_opt(&mut cfg, "WorkingDir", o.workdir.clone());
    if let Some(ep) = &o.entrypoint {
        cfg.insert("Entrypoint".into(), json!([ep]));
    }
    let mut labels = Vec::new();
    for f in &o.label_file {
        labels.extend(read_kv_file("open", f)?);
    }
    labels.extend(o.label.iter().cloned());
    if !labels.is_empty() {
        cfg.insert("Labels".into(), Value::Object(kv_map(&labels)));
    }
    set_opt(&mut cfg, "StopSignal", o.stop_signal.clone());
    set_opt(&mut cfg, "StopTimeout", o.stop_timeout);
    set_opt(&mut cfg, "MacAddress", o.mac_address.clone());

    // HostConfig.
    set_list(&mut hc, "Binds", &binds);
    let network = o.network.clone().unwrap_or_else(|| "default".to_owned());
    hc.insert("NetworkMode".into(), json!(network));
    if !ports.bindings.is_empty() {
        let m: Map<String, Value> = ports
            .bindings
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(
                        v.iter()
                            .map(|(ip, p)| json!({"HostIp": ip, "HostPort": p}))
                            .collect::<Vec<_>>()
                    ),
                )
            })
            .collect();
        hc.insert("PortBindings".into(), Value::Object(m));
    }
    hc.insert(
        "RestartPolicy".into(),
        match &o.restart {
            Some(r) => units::restart_policy(r)?,
            None => json!({"Name": "no", "MaximumRetryCount": 0}),
        },
    );
    if o.rm
        && o.restart
            .as_deref()
            .is_some_and(|r| r != "no" && !r.is_empty())
    {
        return Err(OptsError::Invalid(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    hc.insert("AutoRemove".into(), json!(o.rm));
    set_opt(&mut hc, "VolumeDriver", o.volume_driver.clone());
    set_list(&mut hc, "VolumesFrom", &o.volumes_from);
    set_list(&mut hc, "CapAdd", &o.cap_add);
    set_list(&mut hc, "CapDrop", &o.cap_drop);
    set_opt(&mut hc, "CgroupnsMode", o.cgroupns.clone());
    set_list(&mut hc, "Dns", &o.dns);
    set_list(&mut hc, "DnsOptions", &o.dns_option);
    set_list(&mut hc, "DnsSearch", &o.dns_search);
    set_list(&mut hc, "ExtraHosts", &o.add_host);
    set_list(&mut hc, "GroupAdd", &o.group_add);
    set_opt(&mut hc, "IpcMode", o.ipc.clone());
    set_list(&mut hc, "Links", &o.link);
    set_opt(&mut hc, "OomScoreAdj", o.oom_score_adj);
    set_opt(&mut hc, "PidMode", o.pid.clone());
    hc.insert("Privileged".into(), json!(o.privileged));
    hc.insert("PublishAllPorts".into(), json!(o.publish_all));
    hc.insert("ReadonlyRootfs".into(), json!(o.read_only));
    let sec = security_opts(&o.security_opt)?;
    set_list(&mut hc, "SecurityOpt", &sec);
    if !o.storage_opt.is_empty() {
        hc.insert("StorageOpt".into(), Value::Object(kv_map(&o.storage_opt)));
    }
    if !o.tmpfs.is_empty() {
        let mut m = Map::new();
        for t in &o.tmpfs {
            let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
            m.insert(dst.to_owned(), json!(opts));
        }
        hc.insert("Tmpfs".into(), Value::Object(m));
    }
    set_opt(&mut hc, "UTSMode", o.uts.clone());
    set_opt(&mut hc, "UsernsMode", o.userns.clone());
    if let Some(s) = &o.shm_size {
        hc.insert("ShmSize".into(), json!(units::ram_in_bytes(s)?));
    }
    if !o.sysctl.is_empty() {
        hc.insert("Sysctls".into(), Value::Object(kv_map(&o.sysctl)));
    }
    set_opt(&mut hc, "Runtime", o.runtime.clone());
    set_opt(&mut hc, "Isolation", o.isolation.clone());
    if !o.annotation.is_empty() {
        hc.insert("Annotations".into(), Value::Object(kv_map(&o.annotation)));
    }
    // Resources.
    if let Some(m) = &o.memory {
        hc.insert("Memory".into(), json!(units::ram_in_bytes(m)?));
    }
    if let Some(m) = &o.memory_reservation {
        hc.insert("MemoryReservation".into(), json!(units::ram_in_bytes(m)?));
    }
    if let Some(m) = &o.memory_swap {
        hc.insert("MemorySwap".into(), json!(units::swap_bytes(m)?));
    }
    set_opt(&mut hc, "MemorySwappiness", o.memory_swappiness);
    if let Some(c) = o.cpus {
        if o.cpu_period.is_some() || o.cpu_quota.is_some() {
            return Err(OptsError::Invalid(
                "conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        hc.insert("NanoCpus".into(), json!((c * 1e9).round() as i64));
    }
    set_opt(&mut hc, "CpuShares", o.cpu_shares);
    set_opt(&mut hc, "CpuPeriod", o.cpu_period);
    set_opt(&mut hc, "CpuQuota", o.cpu_quota);
    set_opt(&mut hc, "CpuRealtimePeriod", o.cpu_rt_period);
    set_opt(&mut hc, "CpuRealtimeRuntime", o.cpu_rt_runtime);
    set_opt(&mut hc, "CpusetCpus", o.cpuset_cpus.clone());
    set_opt(&mut hc, "CpusetMems", o.cpuset_mems.clone());
    set_opt(&mut hc, "BlkioWeight", o.blkio_weight);
    set_opt(&mut hc, "PidsLimit", o.pids_limit);
    if o.oom_kill_disable {
        hc.insert("OomKillDisable".into(), json!(true));
    }
    if !o.ulimit.is_empty() {
        let u: Vec<Value> = o
            .ulimit
            .iter()
            .map(|u| units::ulimit(u))
            .collect::<Result<_, _>>()?;
        hc.insert("Ulimits".into(), json!(u));
    }
    if !o.device.is_empty() {
        let d: Vec<Value> = o
            .device
            .iter()
            .map(|d| {
                let mut p = d.splitn(3, ':');
                let host = p.next().unwrap_or_default();
                let cont = p.next().unwrap_or(host);
                let perms = p.next().unwrap_or("rwm");
                json!({"PathOnHost": host, "PathInContainer": cont, "CgroupPermissions": perms})
            })
            .collect();
        hc.insert("Devices".into(), json!(d));
    }
    set_list(&mut hc, "DeviceCgroupRules", &o.device_cgroup_rule);
    if o.init {
        hc.insert("Init".into(), json!(true));
    }
    if !o.mount.is_empty() {
        let m: Vec<Value> = o
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<_, _>>()?;
        hc.insert("Mounts".into(), json!(m));
    }
    if o.log_driver.is_some() || !o.log_opt.is_empty() {
        hc.insert(
            "LogConfig".into(),
            json!({"Type": o.log_driver.clone().unwrap_or_default(), "Config": Value::Object(kv_map(&o.log_opt))}),
        );
    }
    set_opt(&mut hc, "CgroupParent", o.cgroup_parent.clone());

    cfg.insert("HostConfig".into(), Value::Object(hc));

    // Networking: aliases and static IPs for a user-defined network.
    let mut ep = Map::new();
    if !o.network_alias.is_empty() {
        ep.insert("Aliases".into(), json!(o.network_alias));
    }
    if o.ip.is_some() || o.ip6.is_some() {
        let mut ipam = Map::new();
        set_opt(&mut ipam, "IPv4Address", o.ip.clone());
        set_opt(&mut ipam, "IPv6Address", o.ip6.clone());
        ep.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    if !ep.is_empty() {
        let mut eps = BTreeMap::new();
        eps.insert(network, Value::Object(ep));
        cfg.insert("NetworkingConfig".into(), json!({"EndpointsConfig": eps}));
    }
    Ok(CreateRequest {
        body: Value::Object(cfg),
        name: o.name.clone(),
        platform: o.platform.clone(),
    })
}

#[cfg(test)]
mod tests;
