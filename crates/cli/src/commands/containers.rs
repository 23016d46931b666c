//! Less common container commands: `top`, `stats`, `update`, `cp`, `diff`, `commit`, `export`,
//! `port`.

use berth_client::{body, query};
use hyper::Method;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use super::Ctx;
use crate::cli::{
    CommitArgs, ContainerArgs, CpArgs, ExportArgs, PortArgs, StatsArgs, TopArgs, UpdateArgs,
};
use crate::error::{CliError, Result};
use crate::format::Format;
use crate::format::tabwriter;
use crate::format::units::{bytes_size, human_size};
use crate::opts::units;
use crate::output;
use crate::template;
use crate::tty;

fn seg(s: &str) -> String {
    query::path_segment(s)
}

/// `top`.
pub async fn top(ctx: &Ctx, a: TopArgs) -> Result<i32> {
    let q = if a.ps_args.is_empty() {
        String::new()
    } else {
        query::encode(&[("ps_args", a.ps_args.join(" "))])
    };
    let v = ctx
        .get_json(&format!("/containers/{}/top{q}", seg(&a.container)))
        .await?;
    let mut text = String::new();
    let titles: Vec<&str> = v
        .get("Titles")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    text.push_str(&titles.join("\t"));
    text.push('\n');
    for p in v
        .get("Processes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cells: Vec<&str> = p
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    output::out(&tabwriter::align(&text, 20, 3));
    Ok(0)
}

/// One stats sample → the `stats` table fields (docker/cli's calculations).
pub fn stats_row(name: &str, id: &str, s: &Value, trunc: bool) -> template::Value {
    let n = |p: &str| s.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let cpu_delta =
        n("/cpu_stats/cpu_usage/total_usage") - n("/precpu_stats/cpu_usage/total_usage");
    let sys_delta = n("/cpu_stats/system_cpu_usage") - n("/precpu_stats/system_cpu_usage");
    let online = match n("/cpu_stats/online_cpus") {
        x if x > 0.0 => x,
        _ => s
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map(|a| a.len() as f64)
            .unwrap_or(1.0),
    };
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let cache = s
        .pointer("/memory_stats/stats/total_inactive_file")
        .or_else(|| s.pointer("/memory_stats/stats/inactive_file"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let mem = (n("/memory_stats/usage") - cache).max(0.0);
    let limit = n("/memory_stats/limit");
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s.get("networks").and_then(Value::as_object) {
        for v in nets.values() {
            rx += v.get("rx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
            tx += v.get("tx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
        }
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in s
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let v = e.get("value").and_then(Value::as_f64).unwrap_or(0.0);
        match e
            .get("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("read") => br += v,
            Some("write") => bw += v,
            _ => {}
        }
    }
    let pids = s
        .pointer("/pids_stats/current")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let id = if trunc {
        super::ps::short_id(id)
    } else {
        id.to_owned()
    };
    template::Value::map([
        ("ID", template::Value::Str(id.clone())),
        ("Container", template::Value::Str(id)),
        ("Name", template::Value::str(name.trim_start_matches('/'))),
        ("CPUPerc", template::Value::Str(format!("{cpu:.2}%"))),
        (
            "MemUsage",
            template::Value::Str(format!("{} / {}", bytes_size(mem), bytes_size(limit))),
        ),
        ("MemPerc", template::Value::Str(format!("{mem_pct:.2}%"))),
        (
            "NetIO",
            template::Value::Str(format!("{} / {}", human_size(rx), human_size(tx))),
        ),
        (
            "BlockIO",
            template::Value::Str(format!("{} / {}", human_size(br), human_size(bw))),
        ),
        ("PIDs", template::Value::Str(pids.to_string())),
    ])
}

/// `stats` (one sample per container per refresh).
pub async fn stats(ctx: &Ctx, a: StatsArgs) -> Result<i32> {
    let fmt = Format::new(
        a.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    )?;
    let header = template::Value::map(
        [
            ("ID", "CONTAINER ID"),
            ("Container", "CONTAINER"),
            ("Name", "NAME"),
            ("CPUPerc", "CPU %"),
            ("MemUsage", "MEM USAGE / LIMIT"),
            ("MemPerc", "MEM %"),
            ("NetIO", "NET I/O"),
            ("BlockIO", "BLOCK I/O"),
            ("PIDs", "PIDS"),
        ]
        .map(|(k, v)| (k, template::Value::str(v))),
    );
    let live = !a.no_stream && tty::stdout_is_tty();
    loop {
        let names: Vec<(String, String)> = if a.containers.is_empty() {
            let list = ctx
                .get_json(&format!(
                    "/containers/json{}",
                    if a.all { "?all=1" } else { "" }
                ))
                .await?;
            list.as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let id = c.get("Id").and_then(Value::as_str).unwrap_or("").to_owned();
                    let name = c
                        .pointer("/Names/0")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    (id, name)
                })
                .collect()
        } else {
            a.containers
                .iter()
                .map(|c| (c.clone(), String::new()))
                .collect()
        };
        let mut rows = Vec::new();
        for (id, name) in &names {
            let s = ctx
                .get_json(&format!("/containers/{}/stats?stream=false", seg(id)))
                .await?;
            let name = if name.is_empty() {
                s.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(id)
                    .to_owned()
            } else {
                name.clone()
            };
            let full_id = s.get("id").and_then(Value::as_str).unwrap_or(id).to_owned();
            rows.push(stats_row(&name, &full_id, &s, !a.no_trunc));
        }
        let text = fmt.render(&rows, &header)?;
        if live {
            output::out(&format!("\x1b[2J\x1b[H{text}"));
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        } else {
            output::out(&text);
            return Ok(0);
        }
    }
}

/// `update`.
pub async fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    let mut b = Map::new();
    let mut put = |k: &str, v: Value| {
        b.insert(k.to_owned(), v);
    };
    if let Some(v) = a.blkio_weight {
        put("BlkioWeight", json!(v));
    }
    if let Some(v) = a.cpu_period {
        put("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        put("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        put("CpuShares", json!(v));
    }
    if let Some(v) = a.cpus {
        put("NanoCpus", json!((v * 1e9).round() as i64));
    }
    if let Some(v) = &a.cpuset_cpus {
        put("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.memory {
        put("Memory", json!(units::ram_in_bytes(v)?));
    }
    if let Some(v) = &a.memory_reservation {
        put("MemoryReservation", json!(units::ram_in_bytes(v)?));
    }
    if let Some(v) = &a.memory_swap {
        put("MemorySwap", json!(units::swap_bytes(v)?));
    }
    if let Some(v) = a.pids_limit {
        put("PidsLimit", json!(v));
    }
    if let Some(v) = &a.restart {
        put("RestartPolicy", units::restart_policy(v)?);
    }
    if b.is_empty() {
        return Err(CliError::Msg(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let body = Value::Object(b);
    let mut errors = Vec::new();
    for c in &a.containers {
        match ctx
            .client
            .post_json::<Value, Value>(&format!("/containers/{}/update", seg(c)), Some(&body))
            .await
        {
            Ok(v) => {
                for w in v
                    .get("Warnings")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    output::errln(&format!("WARNING: {w}"));
                }
                output::outln(c);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::Msg(errors.join("\n")))
    }
}

/// Splits `container:path`; a local path has no colon before its first slash.
fn split_cp(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
}

/// `cp` as tar streams: `CONTAINER:SRC -` writes the archive to stdout, `- CONTAINER:DEST`
/// reads one from stdin; local paths are packed/unpacked by `tar(1)`-compatible archives.
pub async fn cp(ctx: &Ctx, a: CpArgs) -> Result<i32> {
    match (split_cp(&a.src), split_cp(&a.dest)) {
        (Some((c, path)), None) => {
            let q = query::encode(&[("path", path)]);
            let mut s = ctx
                .client
                .send(
                    Method::GET,
                    &format!("/containers/{}/archive{q}", seg(c)),
                    body::empty(),
                    None,
                )
                .await?;
            let mut data = Vec::new();
            while let Some(chunk) = s.chunk().await? {
                if a.dest == "-" {
                    output::out_bytes(&chunk);
                } else {
                    data.extend_from_slice(&chunk);
                }
            }
            if a.dest != "-" {
                extract_to(&data, std::path::Path::new(&a.dest))?;
                if !a.quiet && tty::stderr_is_tty() {
                    output::errln(&format!(
                        "Successfully copied {} to {}",
                        human_size(data.len() as f64),
                        a.dest
                    ));
                }
            }
            Ok(0)
        }
        (None, Some((c, path))) => {
            let (dir, data) = if a.src == "-" {
                let mut v = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut v)
                    .await
                    .map_err(|e| CliError::io("reading stdin", e))?;
                (path.to_owned(), v)
            } else {
                let src = std::path::Path::new(&a.src);
                let (dir, name) = if path.ends_with('/') {
                    (
                        path.to_owned(),
                        src.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    )
                } else {
                    let p = std::path::Path::new(path);
                    let dir = p
                        .parent()
                        .map(|d| d.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "/".into());
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    (if dir.is_empty() { "/".into() } else { dir }, name)
                };
                (dir, pack(src, &name)?)
            };
            let q = query::encode(&[("path", dir.as_str())]);
            ctx.client
                .send(
                    Method::PUT,
                    &format!("/containers/{}/archive{q}", seg(c)),
                    body::bytes(data),
                    Some("application/x-tar"),
                )
                .await?;
            Ok(0)
        }
        (Some(_), Some(_)) => Err(CliError::Msg(
            "copying between containers is not supported".into(),
        )),
        (None, None) => Err(CliError::Msg(
            "must specify at least one container source".into(),
        )),
    }
}

fn pack(src: &std::path::Path, name: &str) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let res = if src.is_dir() {
        b.append_dir_all(name, src)
    } else {
        b.append_path_with_name(src, name)
    };
    res.map_err(|e| CliError::io(format!("archiving {}", src.display()), e))?;
    b.into_inner()
        .map_err(|e| CliError::io("finishing the archive", e))
}

fn extract_to(data: &[u8], dest: &std::path::Path) -> Result<()> {
    if dest.is_dir() {
        let mut ar = tar::Archive::new(data);
        ar.set_preserve_permissions(true);
        return ar
            .unpack(dest)
            .map_err(|e| CliError::io(format!("extracting into {}", dest.display()), e));
    }
    // Copy to a new name: unpack beside it, then rename the archive's top entry.
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempdir_in(parent)?;
    let mut ar = tar::Archive::new(data);
    ar.unpack(&tmp)
        .map_err(|e| CliError::io(format!("extracting into {}", tmp.display()), e))?;
    let top = std::fs::read_dir(&tmp)
        .map_err(|e| CliError::io("reading the extracted archive", e))?
        .next()
        .ok_or_else(|| CliError::Msg("the archive was empty".into()))?
        .map_err(|e| CliError::io("reading the extracted archive", e))?;
    let r = std::fs::rename(top.path(), dest)
        .map_err(|e| CliError::io(format!("moving into {}", dest.display()), e));
    let _ = std::fs::remove_dir_all(&tmp);
    r
}

fn tempdir_in(parent: &std::path::Path) -> Result<std::path::PathBuf> {
    let p = parent.join(format!(".berth-cp-{}", std::process::id()));
    std::fs::create_dir_all(&p)
        .map_err(|e| CliError::io(format!("creating {}", p.display()), e))?;
    Ok(p)
}

/// `diff`.
pub async fn diff(ctx: &Ctx, a: ContainerArgs) -> Result<i32> {
    let v = ctx
        .get_json(&format!("/containers/{}/changes", seg(&a.container)))
        .await?;
    for c in v.as_array().into_iter().flatten() {
        let kind = match c.get("Kind").and_then(Value::as_i64) {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        output::outln(&format!(
            "{kind} {}",
            c.get("Path").and_then(Value::as_str).unwrap_or("")
        ));
    }
    Ok(0)
}

/// `commit`.
pub async fn commit(ctx: &Ctx, a: CommitArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = vec![
        ("container", a.container.clone()),
        ("pause", a.pause.to_string()),
    ];
    if let Some(r) = &a.repo {
        let (repo, tag) = super::images::split_tag(r);
        q.push(("repo", repo.to_owned()));
        if !tag.is_empty() {
            q.push(("tag", tag.to_owned()));
        }
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    let v: Value = ctx
        .client
        .post_json(&format!("/commit{}", query::encode(&q)), Some(&json!({})))
        .await?;
    output::outln(v.get("Id").and_then(Value::as_str).unwrap_or(""));
    Ok(0)
}

/// `export`.
pub async fn export(ctx: &Ctx, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && tty::stdout_is_tty() {
        return Err(CliError::Msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let mut s = ctx
        .client
        .send(
            Method::GET,
            &format!("/containers/{}/export", seg(&a.container)),
            body::empty(),
            None,
        )
        .await?;
    let mut file = match &a.output {
        Some(p) => Some(tokio::fs::File::create(p).await.map_err(|e| {
            CliError::io(
                format!("failed to export container: unable to create file {p}"),
                e,
            )
        })?),
        None => None,
    };
    while let Some(chunk) = s.chunk().await? {
        match file.as_mut() {
            Some(f) => f
                .write_all(&chunk)
                .await
                .map_err(|e| CliError::io("failed to export container", e))?,
            None => output::out_bytes(&chunk),
        }
    }
    Ok(0)
}

/// `port`.
pub async fn port(ctx: &Ctx, a: PortArgs) -> Result<i32> {
    let v = ctx
        .get_json(&format!("/containers/{}/json", seg(&a.container)))
        .await?;
    let ports = v
        .pointer("/NetworkSettings/Ports")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut lines = Vec::new();
    let want = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort();
    for k in keys {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in ports[k].as_array().into_iter().flatten() {
            let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
            let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
            let host = if ip.contains(':') {
                format!("[{ip}]:{hp}")
            } else {
                format!("{ip}:{hp}")
            };
            lines.push(if want.is_some() {
                host
            } else {
                format!("{k} -> {host}")
            });
        }
    }
    if let (Some(w), true) = (&a.port, lines.is_empty()) {
        return Err(CliError::Msg(format!(
            "Error: No public port '{}' published for {}",
            if w.contains('/') {
                w.clone()
            } else {
                format!("{w}/tcp")
            },
            a.container
        )));
    }
    for l in lines {
        output::outln(&l);
    }
    Ok(0)
}
