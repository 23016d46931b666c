//! `version`, `info`, `events`, `system df`, `system prune`, `login`, `logout`.

use berth_client::{CLIENT_API_VERSION, body, query};
use hyper::Method;
use serde_json::{Value as Json, json};

use super::lifecycle::{confirm, print_pruned};
use super::{Ctx, filters_json};
use crate::cli::{DfArgs, EventsArgs, FormatArgs, LoginArgs, LogoutArgs, SystemPruneArgs};
use crate::error::{CliError, Result};
use crate::format::units::human_size;
use crate::format::{Format, tabwriter};
use crate::output;
use crate::template::{Template, Value};

/// berth's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Docker's version template (client and server sections), minus Go-specific lines.
const VERSION_TEMPLATE: &str = "{{with .Client -}}
Client:
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if .ServerOK}}{{with .Server}}

Server:{{if ne .Platform.Name \"\"}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name \"Engine\" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details \"ApiVersion\"}} (minimum version {{index .Details \"MinAPIVersion\"}})
  Git commit:\t{{index .Details \"GitCommit\"}}
  Built:\t{{index .Details \"BuildTime\"}}
  OS/Arch:\t{{index .Details \"Os\"}}/{{index .Details \"Arch\"}}
  Experimental:\t{{index .Details \"Experimental\"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:\t{{$value}}
  {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}";

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `version`: the client section always; the server section when the daemon answers.
pub async fn version(host: Option<&str>, a: FormatArgs) -> Result<i32> {
    let custom = a.format.as_deref().filter(|f| !f.is_empty());
    let tmpl = match custom {
        Some("json") => Template::parse("{{json .}}"),
        Some(f) => Template::parse(&crate::format::prepare(f).1),
        None => Template::parse(VERSION_TEMPLATE),
    }
    .map_err(|e| CliError::Status {
        code: 64,
        msg: Some(format!("template parsing error: {e}")),
    })?;
    let (server, err, api) = match Ctx::connect(host).await {
        Ok(ctx) => {
            let api = ctx
                .client
                .api_version()
                .unwrap_or(CLIENT_API_VERSION)
                .to_owned();
            match ctx.get_value("/version").await {
                Ok(v) => (Some(v), None, api),
                Err(e) => (None, Some(e), api),
            }
        }
        Err(e) => (None, Some(e), CLIENT_API_VERSION.to_owned()),
    };
    let client = Value::map([
        ("Platform", Value::map([("Name", Value::str(""))])),
        ("Version", Value::str(VERSION)),
        ("APIVersion", Value::Str(api)),
        ("DefaultAPIVersion", Value::str(CLIENT_API_VERSION)),
        ("Os", Value::str("linux")),
        ("Arch", Value::str(go_arch())),
        ("Context", Value::str("default")),
    ]);
    // Docker's Details is a string map: missing keys print as "".
    let server = server.map(|mut s| {
        if let Value::Map(m) = &mut s
            && let Some((_, Value::List(comps))) = m.iter_mut().find(|(k, _)| k == "Components")
        {
            for c in comps {
                if let Value::Map(cm) = c
                    && let Some((_, Value::Map(details))) =
                        cm.iter_mut().find(|(k, _)| k == "Details")
                {
                    for key in [
                        "ApiVersion",
                        "MinAPIVersion",
                        "GitCommit",
                        "BuildTime",
                        "Os",
                        "Arch",
                        "Experimental",
                        "GoVersion",
                    ] {
                        if !details.iter().any(|(k, _)| k == key) {
                            details.push((key.to_owned(), Value::str("")));
                        }
                    }
                }
            }
        }
        s
    });
    let data = Value::map([
        ("Client", client),
        ("ServerOK", Value::Bool(server.is_some())),
        ("Server", server.unwrap_or(Value::Null)),
    ]);
    let text = tmpl
        .render(&data)
        .map_err(|e| CliError::Msg(format!("template: {e}")))?;
    if custom.is_some() {
        output::outln(&text);
    } else {
        output::out(&tabwriter::align(&format!("{text}\n"), 20, 1));
    }
    match err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// `info`: Docker's layout for the fields berthd reports.
pub async fn info(ctx: &Ctx, a: FormatArgs) -> Result<i32> {
    let v = ctx.get_value("/info").await?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let f = if f == "json" { "{{json .}}" } else { f };
        let t = Template::parse(&crate::format::prepare(f).1).map_err(|e| CliError::Status {
            code: 64,
            msg: Some(format!("template parsing error: {e}")),
        })?;
        // `docker info --format` runs on {Client, Server…}: accept both `.X` and `.Server.X`.
        let mut data = match &v {
            Value::Map(m) => m.clone(),
            _ => Vec::new(),
        };
        data.push(("Server".into(), v.clone()));
        output::outln(
            &t.render(&Value::Map(data))
                .map_err(|e| CliError::Msg(e.to_string()))?,
        );
        return Ok(0);
    }
    let g = |k: &str| v.get(k).map(Value::go_string).unwrap_or_default();
    let mut s = String::new();
    s.push_str("Client:\n");
    s.push_str(&format!(" Version:    {VERSION}\n"));
    s.push_str(" Context:    default\n");
    s.push_str(" Debug Mode: false\n\n");
    s.push_str("Server:\n");
    s.push_str(&format!(" Containers: {}\n", g("Containers")));
    s.push_str(&format!("  Running: {}\n", g("ContainersRunning")));
    s.push_str(&format!("  Paused: {}\n", g("ContainersPaused")));
    s.push_str(&format!("  Stopped: {}\n", g("ContainersStopped")));
    s.push_str(&format!(" Images: {}\n", g("Images")));
    for (label, key) in [
        ("Server Version", "ServerVersion"),
        ("Storage Driver", "Driver"),
        ("Logging Driver", "LoggingDriver"),
        ("Cgroup Driver", "CgroupDriver"),
        ("Cgroup Version", "CgroupVersion"),
        ("Default Runtime", "DefaultRuntime"),
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("OSType", "OSType"),
        ("Architecture", "Architecture"),
        ("CPUs", "NCPU"),
    ] {
        if v.get(key).is_some() {
            s.push_str(&format!(" {label}: {}\n", g(key)));
        }
    }
    if let Some(m) = v.get("MemTotal").and_then(Value::as_i64) {
        s.push_str(&format!(
            " Total Memory: {}\n",
            crate::format::units::bytes_size(m as f64)
        ));
    }
    for (label, key) in [
        ("Name", "Name"),
        ("ID", "ID"),
        ("Docker Root Dir", "DockerRootDir"),
        ("Debug Mode", "Debug"),
        ("Experimental", "ExperimentalBuild"),
        ("Live Restore Enabled", "LiveRestoreEnabled"),
    ] {
        if v.get(key).is_some() {
            s.push_str(&format!(" {label}: {}\n", g(key)));
        }
    }
    output::out(&s);
    Ok(0)
}

/// Go's RFC3339Nano for an event's `timeNano`.
fn event_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let ns = nanos.rem_euclid(1_000_000_000) as u32;
    match chrono::DateTime::from_timestamp(secs, ns) {
        Some(t) => {
            let frac = format!("{ns:09}");
            let frac = frac.trim_end_matches('0');
            let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            if frac.is_empty() {
                format!("{base}Z")
            } else {
                format!("{base}.{frac}Z")
            }
        }
        None => String::new(),
    }
}

/// Docker's default event line.
pub fn event_line(e: &Value) -> String {
    let nanos = e
        .get("timeNano")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| e.get("time").and_then(Value::as_i64).unwrap_or(0) * 1_000_000_000);
    let typ = e.get("Type").map(Value::go_string).unwrap_or_default();
    let action = e.get("Action").map(Value::go_string).unwrap_or_default();
    let id = e
        .get("Actor")
        .and_then(|a| a.get("ID"))
        .map(Value::go_string)
        .unwrap_or_default();
    let attrs = match e.get("Actor").and_then(|a| a.get("Attributes")) {
        Some(Value::Map(m)) if !m.is_empty() => {
            let mut kv: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.go_string()))
                .collect();
            kv.sort();
            format!(" ({})", kv.join(", "))
        }
        _ => String::new(),
    };
    format!("{} {typ} {action} {id}{attrs}", event_time(nanos))
}

/// `events`.
pub async fn events(ctx: &Ctx, a: EventsArgs) -> Result<i32> {
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(Format::new(Some(f), "")?),
        None => None,
    };
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &a.since {
        q.push((
            "since",
            crate::opts::units::timestamp(s, chrono::Utc::now())?,
        ));
    }
    if let Some(u) = &a.until {
        q.push((
            "until",
            crate::opts::units::timestamp(u, chrono::Utc::now())?,
        ));
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let mut stream = ctx
        .client
        .json_lines(
            Method::GET,
            &format!("/events{}", query::encode(&q)),
            body::empty(),
            None,
        )
        .await?;
    while let Some(e) = stream.next::<Value>().await {
        let e = e?;
        match &tmpl {
            Some(t) => output::out(&t.render(&[e], &Value::Null)?),
            None => output::outln(&event_line(&e)),
        }
    }
    Ok(0)
}

/// `system df`.
pub async fn df(ctx: &Ctx, a: DfArgs) -> Result<i32> {
    let v = ctx.get_value("/system/df").await?;
    let list = |k: &str| match v.get(k) {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    };
    let sum = |items: &[Value], k: &str| {
        items
            .iter()
            .filter_map(|i| i.get(k).and_then(Value::as_i64))
            .filter(|n| *n > 0)
            .sum::<i64>()
    };
    let images = list("Images");
    let containers = list("Containers");
    let volumes = match v.get("Volumes") {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    };
    // A volume's UsageData field (Size, RefCount); -1 (not computed) counts as 0.
    let usage = |x: &Value, k: &str| {
        x.get("UsageData")
            .and_then(|u| u.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0)
    };
    let active_images = images
        .iter()
        .filter(|i| i.get("Containers").and_then(Value::as_i64).unwrap_or(0) > 0)
        .count();
    let active_containers = containers
        .iter()
        .filter(|c| c.get("State").and_then(Value::as_str) == Some("running"))
        .count();
    let layers = v.get("LayersSize").and_then(Value::as_i64).unwrap_or(0);
    let img_size = if layers > 0 {
        layers
    } else {
        sum(&images, "Size")
    };
    let row = |t: &str, total: usize, active: usize, size: i64, reclaim: i64| {
        // Docker shows a percentage only when there is a size to take it of.
        let reclaimable = if size > 0 {
            format!("{} ({}%)", human_size(reclaim as f64), reclaim * 100 / size)
        } else {
            human_size(reclaim as f64)
        };
        Value::map([
            ("Type", Value::str(t)),
            ("TotalCount", Value::Str(total.to_string())),
            ("Active", Value::Str(active.to_string())),
            ("Size", Value::Str(human_size(size as f64))),
            ("Reclaimable", Value::Str(reclaimable)),
        ])
    };
    let used_images: i64 = images
        .iter()
        .filter(|i| i.get("Containers").and_then(Value::as_i64).unwrap_or(0) > 0)
        .filter_map(|i| i.get("Size").and_then(Value::as_i64))
        .sum();
    let rows = vec![
        row(
            "Images",
            images.len(),
            active_images,
            img_size,
            (img_size - used_images).max(0),
        ),
        row(
            "Containers",
            containers.len(),
            active_containers,
            sum(&containers, "SizeRw"),
            sum(&containers, "SizeRw"),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|x| usage(x, "RefCount") > 0).count(),
            volumes.iter().map(|x| usage(x, "Size")).sum(),
            volumes
                .iter()
                .filter(|x| usage(x, "RefCount") == 0)
                .map(|x| usage(x, "Size"))
                .sum(),
        ),
        row("Build Cache", 0, 0, 0, 0),
    ];
    let _ = a.verbose;
    let fmt = Format::new(
        a.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    )?;
    let header = Value::map(
        [
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    output::out(&fmt.render(&rows, &header)?);
    Ok(0)
}

/// `system prune`.
pub async fn prune(ctx: &Ctx, a: SystemPruneArgs) -> Result<i32> {
    if !a.force {
        let mut w = String::from(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
        );
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        w.push_str(if a.all { "  - all images without at least one container associated to them\n  - unused build cache\n" } else { "  - all dangling images\n  - unused build cache\n" });
        if !confirm(w.trim_end())? {
            return Ok(0);
        }
    }
    let f = filters_json(&a.filter)?
        .map(|f| query::encode(&[("filters", f)]))
        .unwrap_or_default();
    let c = ctx.post_value(&format!("/containers/prune{f}")).await?;
    print_pruned(&c, "ContainersDeleted", "Deleted Containers:");
    let n = ctx.post_value(&format!("/networks/prune{f}")).await?;
    print_pruned(&n, "NetworksDeleted", "Deleted Networks:");
    if a.volumes {
        let v = ctx.post_value(&format!("/volumes/prune{f}")).await?;
        print_pruned(&v, "VolumesDeleted", "Deleted Volumes:");
    }
    let mut imgf = a.filter.clone();
    imgf.push(format!("dangling={}", !a.all));
    let q = filters_json(&imgf)?
        .map(|f| query::encode(&[("filters", f)]))
        .unwrap_or_default();
    let i = ctx.post_value(&format!("/images/prune{q}")).await?;
    print_pruned(&i, "ImagesDeleted", "Deleted Images:");
    Ok(0)
}

const DEFAULT_REGISTRY: &str = "https://index.docker.io/v1/";

fn config_path() -> std::path::PathBuf {
    if let Ok(d) = std::env::var("DOCKER_CONFIG")
        && !d.is_empty()
    {
        return std::path::PathBuf::from(d).join("config.json");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    std::path::PathBuf::from(home)
        .join(".docker")
        .join("config.json")
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn read_config(p: &std::path::Path) -> Result<Json> {
    match std::fs::read(p) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| CliError::Msg(format!("loading config file {}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({"auths": {}})),
        Err(e) => Err(CliError::io(format!("reading {}", p.display()), e)),
    }
}

fn write_config(p: &std::path::Path, v: &Json) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)
            .map_err(|e| CliError::io(format!("creating {}", d.display()), e))?;
    }
    let tmp = p.with_extension(format!("json.tmp{}", std::process::id()));
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Msg(e.to_string()))?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| CliError::io(format!("writing {}", tmp.display()), e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| CliError::io(format!("writing {}", tmp.display()), e))?;
    }
    std::fs::rename(&tmp, p).map_err(|e| CliError::io(format!("replacing {}", p.display()), e))
}

/// `login`: validated by the daemon (`POST /auth`), then stored in docker's config.json.
pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<i32> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
    let user = a.username.clone().ok_or_else(|| {
        CliError::Msg("Error: Cannot perform an interactive login from a non TTY device".into())
    })?;
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .map_err(|e| CliError::io("reading the password", e))?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        a.password.clone().ok_or_else(|| {
            CliError::Msg("Error: Cannot perform an interactive login from a non TTY device".into())
        })?
    };
    if a.password.is_some() {
        output::errln("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let resp: Json = ctx
        .client
        .post_json(
            "/auth",
            Some(&json!({"username": user, "password": password, "serveraddress": server})),
        )
        .await?;
    let p = config_path();
    let mut cfg = read_config(&p)?;
    let entry = match resp
        .get("IdentityToken")
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty())
    {
        Some(t) => json!({"auth": base64(format!("{user}:").as_bytes()), "identitytoken": t}),
        None => json!({"auth": base64(format!("{user}:{password}").as_bytes())}),
    };
    if !cfg.get("auths").is_some_and(Json::is_object) {
        cfg["auths"] = json!({});
    }
    cfg["auths"][&server] = entry;
    write_config(&p, &cfg)?;
    output::outln("Login Succeeded");
    Ok(0)
}

/// `logout`.
pub async fn logout(a: LogoutArgs) -> Result<i32> {
    let server = a.server.unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
    let p = config_path();
    let mut cfg = read_config(&p)?;
    let removed = cfg
        .get_mut("auths")
        .and_then(Json::as_object_mut)
        .and_then(|m| m.remove(&server))
        .is_some();
    if !removed {
        output::outln(&format!("Not logged in to {server}"));
        return Ok(0);
    }
    output::outln(&format!("Removing login credentials for {server}"));
    write_config(&p, &cfg)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn event_lines_like_docker() {
        let e: Value = serde_json::from_str(r#"{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web","image":"busybox"}},"time":1,"timeNano":1000000001}"#).unwrap();
        assert_eq!(
            event_line(&e),
            "1970-01-01T00:00:01.000000001Z container start abc (image=busybox, name=web)"
        );
    }

    #[test]
    fn version_template_parses() {
        assert!(Template::parse(VERSION_TEMPLATE).is_ok());
    }
}
