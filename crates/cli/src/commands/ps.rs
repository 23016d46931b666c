//! `ps`: Docker's container table and its formatter fields.

use berth_client::query;

use super::{Ctx, filters_json};
use crate::cli::PsArgs;
use crate::error::Result;
use crate::format::Format;
use crate::format::units::{ellipsis, human_duration, human_size};
use crate::output;
use crate::template::Value;

/// Docker's default `ps` table.
pub const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Field → column title.
pub fn header() -> Value {
    Value::map(
        [
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Ports", "PORTS"),
            ("State", "STATE"),
            ("Status", "STATUS"),
            ("Size", "SIZE"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Mounts", "MOUNTS"),
            ("Networks", "NETWORKS"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Platform", "PLATFORM"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    )
}

/// Docker's short id: 12 hex characters without the algorithm prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Go's `time.Unix(t, 0).String()` in UTC (`2026-11-23 12:47:15 +0000 UTC`).
pub fn go_time(secs: i64) -> String {
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        None => String::new(),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Docker's port column: `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn ports_text(ports: Option<&Value>) -> String {
    let Some(Value::List(ps)) = ports else {
        return String::new();
    };
    let mut items: Vec<(String, i64)> = Vec::new();
    for p in ps {
        let private = p.get("PrivatePort").and_then(Value::as_i64).unwrap_or(0);
        let kind = p.get("Type").and_then(Value::as_str).unwrap_or("tcp");
        let public = p.get("PublicPort").and_then(Value::as_i64);
        let ip = p.get("IP").and_then(Value::as_str).unwrap_or("");
        let s = match public {
            Some(pp) if pp != 0 => {
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_owned()
                };
                format!("{host}:{pp}->{private}/{kind}")
            }
            _ => format!("{private}/{kind}"),
        };
        if !items.iter().any(|(x, _)| *x == s) {
            items.push((s, private));
        }
    }
    items.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    items
        .into_iter()
        .map(|(s, _)| s)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `/containers/json` entry → the formatter's fields.
pub fn row(c: &Value, trunc: bool, now: i64) -> Value {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let id = s("Id");
    let mut image = s("Image");
    if trunc {
        if image.starts_with("sha256:") {
            image = short_id(&image);
        } else if let Some((name, _)) = image.split_once("@sha256:") {
            image = name.to_owned();
        }
    }
    let command = if trunc {
        ellipsis(&s("Command"), 20)
    } else {
        s("Command")
    };
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let mut names: Vec<String> = match c.get("Names") {
        Some(Value::List(l)) => l
            .iter()
            .filter_map(Value::as_str)
            .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
            .collect(),
        _ => Vec::new(),
    };
    if trunc && let Some(n) = names.iter().find(|n| !n.contains('/')) {
        names = vec![n.clone()];
    }
    let labels = match c.get("Labels") {
        Some(Value::Map(m)) => {
            let mut kv: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            kv.sort();
            kv.join(",")
        }
        _ => String::new(),
    };
    let mounts = match c.get("Mounts") {
        Some(Value::List(l)) => l
            .iter()
            .map(|m| {
                let name = m
                    .get("Name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty());
                let src = name
                    .or_else(|| m.get("Source").and_then(Value::as_str))
                    .unwrap_or("");
                if trunc {
                    ellipsis(src, 15)
                } else {
                    src.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let local_volumes = match c.get("Mounts") {
        Some(Value::List(l)) => l
            .iter()
            .filter(|m| m.get("Driver").and_then(Value::as_str) == Some("local"))
            .count(),
        _ => 0,
    };
    let networks = match c.get("NetworkSettings").and_then(|n| n.get("Networks")) {
        Some(Value::Map(m)) => {
            let mut n: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
            n.sort();
            n.join(",")
        }
        _ => String::new(),
    };
    let size = match (
        c.get("SizeRw").and_then(Value::as_i64),
        c.get("SizeRootFs").and_then(Value::as_i64),
    ) {
        (Some(rw), Some(root)) => format!(
            "{} (virtual {})",
            human_size(rw as f64),
            human_size(root as f64)
        ),
        (Some(rw), None) => human_size(rw as f64),
        _ => "0B".to_owned(),
    };
    let id_shown = if trunc { short_id(&id) } else { id };
    Value::map([
        ("ID", Value::Str(id_shown)),
        ("Image", Value::Str(image)),
        ("Command", Value::Str(format!("{command:?}"))),
        ("CreatedAt", Value::Str(go_time(created))),
        (
            "RunningFor",
            Value::Str(format!("{} ago", human_duration(now - created))),
        ),
        ("Ports", Value::Str(ports_text(c.get("Ports")))),
        ("State", Value::Str(s("State"))),
        ("Status", Value::Str(s("Status"))),
        ("Size", Value::Str(size)),
        ("Names", Value::Str(names.join(","))),
        ("Labels", Value::Str(labels)),
        ("Mounts", Value::Str(mounts)),
        ("Networks", Value::Str(networks)),
        ("LocalVolumes", Value::Str(local_volumes.to_string())),
        ("Platform", Value::Null),
    ])
}

/// `ps`.
pub async fn ps(ctx: &Ctx, a: PsArgs) -> Result<i32> {
    let default = if a.quiet {
        "{{.ID}}".to_owned()
    } else if a.size {
        format!("{DEFAULT_TABLE}\t{{{{.Size}}}}")
    } else {
        DEFAULT_TABLE.to_owned()
    };
    // -q wins over a --format only when no format is given (Docker).
    let fmt = Format::new(if a.quiet { None } else { a.format.as_deref() }, &default)?
        .context("*formatter.ContainerContext");
    let mut q: Vec<(&str, String)> = Vec::new();
    if a.all {
        q.push(("all", "1".into()));
    }
    let limit = if a.latest { 1 } else { a.last };
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if a.size {
        q.push(("size", "1".into()));
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let list = ctx
        .get_value(&format!("/containers/json{}", query::encode(&q)))
        .await?;
    let now = now();
    let rows: Vec<Value> = match list {
        Value::List(l) => l.iter().map(|c| row(c, !a.no_trunc, now)).collect(),
        _ => Vec::new(),
    };
    output::out(&fmt.render(&rows, &header())?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::from_str(
            r#"{"Id":"0123456789abcdef0123","Names":["/web"],"Image":"busybox","Command":"sh -c 'while true; do sleep 1; done'",
               "Created":1000,"State":"running","Status":"Up 3 seconds","Ports":[{"PrivatePort":80,"PublicPort":8080,"Type":"tcp","IP":"0.0.0.0"},{"PrivatePort":443,"Type":"tcp"}],
               "Labels":{"b":"2","a":"1"},"Mounts":[]}"#,
        )
        .unwrap()
    }

    #[test]
    fn table_matches_docker_layout() {
        let fmt = Format::new(None, DEFAULT_TABLE).unwrap();
        let out = fmt
            .render(&[row(&sample(), true, 1063)], &header())
            .unwrap();
        insta::assert_snapshot!(out, @r#"
        CONTAINER ID   IMAGE     COMMAND                  CREATED              STATUS         PORTS                           NAMES
        0123456789ab   busybox   "sh -c 'while true; …"   About a minute ago   Up 3 seconds   0.0.0.0:8080->80/tcp, 443/tcp   web
        "#);
    }

    #[test]
    fn fields_for_templates() {
        let r = row(&sample(), false, 1000);
        assert_eq!(r.get("ID").unwrap().as_str(), Some("0123456789abcdef0123"));
        assert_eq!(r.get("Labels").unwrap().as_str(), Some("a=1,b=2"));
        assert_eq!(
            r.get("RunningFor").unwrap().as_str(),
            Some("Less than a second ago")
        );
        assert_eq!(
            r.get("CreatedAt").unwrap().as_str(),
            Some("1970-01-01 00:16:40 +0000 UTC")
        );
    }
}
