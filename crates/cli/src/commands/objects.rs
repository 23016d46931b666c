//! `network …` and `volume …`.

use berth_client::query;
use serde_json::{Map, Value as Json, json};

use super::lifecycle::{confirm, print_pruned};
use super::ps::short_id;
use super::{Ctx, filters_json};
use crate::cli::{
    ListArgs, NamesArgs, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, PruneArgs,
    VolumeCreateArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::error::{CliError, Result};
use crate::format::Format;
use crate::output;
use crate::template::Value;

fn kv(items: &[String]) -> Map<String, Json> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i, ""));
            (k.to_owned(), json!(v))
        })
        .collect()
}

fn filter_query(f: &[String]) -> Result<String> {
    Ok(filters_json(f)?
        .map(|f| query::encode(&[("filters", f)]))
        .unwrap_or_default())
}

/// Network list fields.
pub fn network_row(n: &Value, trunc: bool) -> Value {
    let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let id = s("Id");
    Value::map([
        ("ID", Value::Str(if trunc { short_id(&id) } else { id })),
        ("Name", Value::Str(s("Name"))),
        ("Driver", Value::Str(s("Driver"))),
        ("Scope", Value::Str(s("Scope"))),
        (
            "IPv6",
            Value::Str(
                n.get("EnableIPv6")
                    .map(Value::go_string)
                    .unwrap_or_else(|| "false".into()),
            ),
        ),
        (
            "Internal",
            Value::Str(
                n.get("Internal")
                    .map(Value::go_string)
                    .unwrap_or_else(|| "false".into()),
            ),
        ),
        ("CreatedAt", Value::Str(s("Created"))),
    ])
}

/// `network ls`.
pub async fn network_ls(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let fmt = Format::new(
        if a.quiet {
            Some("{{.ID}}")
        } else {
            a.format.as_deref()
        },
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    )?;
    let list = ctx
        .get_value(&format!("/networks{}", filter_query(&a.filter)?))
        .await?;
    let mut items = match list {
        Value::List(l) => l,
        _ => Vec::new(),
    };
    items.sort_by_key(|n| n.get("Name").map(Value::go_string).unwrap_or_default());
    let rows: Vec<Value> = items.iter().map(|n| network_row(n, !a.no_trunc)).collect();
    let header = Value::map(
        [
            ("ID", "NETWORK ID"),
            ("Name", "NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("IPv6", "IPV6"),
            ("Internal", "INTERNAL"),
            ("CreatedAt", "CREATED"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    output::out(&fmt.render(&rows, &header)?);
    Ok(0)
}

/// `network create`.
pub async fn network_create(ctx: &Ctx, a: NetworkCreateArgs) -> Result<i32> {
    let config: Vec<Json> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = json!({"Subnet": s});
            if let Some(g) = a.gateway.get(i) {
                c["Gateway"] = json!(g);
            }
            c
        })
        .collect();
    let mut body = json!({
        "Name": a.name, "Driver": a.driver, "Internal": a.internal, "EnableIPv6": a.ipv6,
        "Options": kv(&a.opt), "Labels": kv(&a.label),
    });
    if !config.is_empty() {
        body["IPAM"] = json!({"Driver": "default", "Config": config});
    }
    let v: Json = ctx
        .client
        .post_json("/networks/create", Some(&body))
        .await?;
    output::outln(v.get("Id").and_then(Json::as_str).unwrap_or(""));
    Ok(0)
}

/// `network rm`.
pub async fn network_rm(ctx: &Ctx, a: NamesArgs) -> Result<i32> {
    let mut errors = Vec::new();
    for n in &a.names {
        match ctx
            .client
            .delete(&format!("/networks/{}", query::path_segment(n)))
            .await
        {
            Ok(_) => output::outln(n),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::Msg(errors.join("\n")))
    }
}

/// `network connect`.
pub async fn network_connect(ctx: &Ctx, a: NetworkConnectArgs) -> Result<i32> {
    let mut ep = json!({});
    if !a.alias.is_empty() {
        ep["Aliases"] = json!(a.alias);
    }
    if let Some(ip) = &a.ip {
        ep["IPAMConfig"] = json!({"IPv4Address": ip});
    }
    let body = json!({"Container": a.container, "EndpointConfig": ep});
    ctx.client
        .post_bytes(
            &format!("/networks/{}/connect", query::path_segment(&a.network)),
            Some(&body),
        )
        .await?;
    Ok(0)
}

/// `network disconnect`.
pub async fn network_disconnect(ctx: &Ctx, a: NetworkDisconnectArgs) -> Result<i32> {
    let body = json!({"Container": a.container, "Force": a.force});
    ctx.client
        .post_bytes(
            &format!("/networks/{}/disconnect", query::path_segment(&a.network)),
            Some(&body),
        )
        .await?;
    Ok(0)
}

/// `network prune`.
pub async fn network_prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(0);
    }
    let v = ctx
        .post_value(&format!("/networks/prune{}", filter_query(&a.filter)?))
        .await?;
    if let Some(Value::List(items)) = v.get("NetworksDeleted")
        && !items.is_empty()
    {
        output::outln("Deleted Networks:");
        for it in items {
            output::outln(&it.go_string());
        }
    }
    Ok(0)
}

/// The fields of a `volume ls` row, as the docker CLI (v28) offers them to `--format`
/// (cluster-volume fields are `N/A`; Size and Links only when the daemon sent UsageData).
fn volume_row(vol: &Value) -> Value {
    let s = |k: &str| vol.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut labels: Vec<String> = match vol.get("Labels") {
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.go_string()))
            .collect(),
        _ => Vec::new(),
    };
    labels.sort();
    let usage = |k: &str| {
        vol.get("UsageData")
            .and_then(|u| u.get(k))
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
    };
    let na = || Value::str("N/A");
    Value::map([
        ("Availability", na()),
        ("Driver", Value::Str(s("Driver"))),
        ("Group", na()),
        ("Labels", Value::Str(labels.join(","))),
        (
            "Links",
            usage("RefCount").map_or_else(na, |n| Value::Str(n.to_string())),
        ),
        ("Mountpoint", Value::Str(s("Mountpoint"))),
        ("Name", Value::Str(s("Name"))),
        ("Scope", Value::Str(s("Scope"))),
        (
            "Size",
            usage("Size").map_or_else(na, |n| {
                Value::Str(crate::format::units::human_size(n as f64))
            }),
        ),
        ("Status", na()),
    ])
}

/// `volume ls`.
pub async fn volume_ls(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let fmt = Format::new(
        if a.quiet {
            Some("{{.Name}}")
        } else {
            a.format.as_deref()
        },
        "table {{.Driver}}\t{{.Name}}",
    )?;
    let v = ctx
        .get_value(&format!("/volumes{}", filter_query(&a.filter)?))
        .await?;
    let mut items = match v.get("Volumes") {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    };
    items.sort_by_key(|n| n.get("Name").map(Value::go_string).unwrap_or_default());
    let rows: Vec<Value> = items.iter().map(volume_row).collect();
    let header = Value::map(
        [
            ("Availability", "AVAILABILITY"),
            ("Driver", "DRIVER"),
            ("Group", "GROUP"),
            ("Labels", "LABELS"),
            ("Links", "LINKS"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Name", "VOLUME NAME"),
            ("Scope", "SCOPE"),
            ("Size", "SIZE"),
            ("Status", "STATUS"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    output::out(&fmt.render(&rows, &header)?);
    for w in match v.get("Warnings") {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    } {
        output::errln(&w.go_string());
    }
    Ok(0)
}

/// `volume create`.
pub async fn volume_create(ctx: &Ctx, a: VolumeCreateArgs) -> Result<i32> {
    let body = json!({"Name": a.name.clone().unwrap_or_default(), "Driver": a.driver, "DriverOpts": kv(&a.opt), "Labels": kv(&a.label)});
    let v: Json = ctx.client.post_json("/volumes/create", Some(&body)).await?;
    output::outln(v.get("Name").and_then(Json::as_str).unwrap_or(""));
    Ok(0)
}

/// `volume rm`.
pub async fn volume_rm(ctx: &Ctx, a: VolumeRmArgs) -> Result<i32> {
    let q = if a.force { "?force=1" } else { "" };
    let mut errors = Vec::new();
    for n in &a.names {
        match ctx
            .client
            .delete(&format!("/volumes/{}{q}", query::path_segment(n)))
            .await
        {
            Ok(_) => output::outln(n),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::Msg(errors.join("\n")))
    }
}

/// `volume prune`: before API 1.42 the daemon prunes every unused volume (and knows no
/// `all` filter); from 1.42 only anonymous ones unless `--all`.
pub async fn volume_prune(ctx: &Ctx, a: VolumePruneArgs) -> Result<i32> {
    // Not negotiated (DOCKER_API_VERSION unset and no ping): the docker CLI's own default.
    let api = ctx.client.api_version().unwrap_or("1.50");
    let before_1_42 = berth_client::version_lt(api, "1.42");
    if a.all && before_1_42 {
        return Err(CliError::Msg(format!(
            "\"--all\" requires API version 1.42, but the Docker daemon API version is {api}"
        )));
    }
    let warning = if a.all || before_1_42 {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let mut f = a.filter.clone();
    if a.all {
        f.push("all=true".into());
    }
    let v = ctx
        .post_value(&format!("/volumes/prune{}", filter_query(&f)?))
        .await?;
    print_pruned(&v, "VolumesDeleted", "Deleted Volumes:");
    Ok(0)
}
