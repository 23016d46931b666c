//! Container state changes on a list of containers: `stop`, `restart`, `kill`, `rm`, `wait`,
//! `pause`, `unpause`, `rename`, `container prune`. Each name that succeeds is echoed; errors
//! are collected and printed together (exit 1), as Docker.

use berth_client::query;

use super::{Ctx, filters_json};
use crate::cli::{ContainersArgs, KillArgs, PruneArgs, RenameArgs, RmArgs, StopArgs};
use crate::error::{CliError, Result};
use crate::format::units::human_size;
use crate::output;
use crate::template::Value;

fn seg(s: &str) -> String {
    query::path_segment(s)
}

fn finish(errors: Vec<String>) -> Result<i32> {
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::Msg(errors.join("\n")))
    }
}

/// `stop` / `restart`.
pub async fn stop(ctx: &Ctx, a: StopArgs, verb: &str) -> Result<i32> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(t) = a.timeout {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    let q = query::encode(&q);
    let mut errors = Vec::new();
    for c in &a.containers {
        match ctx
            .client
            .post_bytes::<()>(&format!("/containers/{}/{verb}{q}", seg(c)), None)
            .await
        {
            Ok(_) => output::outln(c),
            Err(e) => errors.push(e.to_string()),
        }
    }
    finish(errors)
}

/// `kill`.
pub async fn kill(ctx: &Ctx, a: KillArgs) -> Result<i32> {
    let q = a
        .signal
        .as_deref()
        .map(|s| query::encode(&[("signal", s)]))
        .unwrap_or_default();
    let mut errors = Vec::new();
    for c in &a.containers {
        match ctx
            .client
            .post_bytes::<()>(&format!("/containers/{}/kill{q}", seg(c)), None)
            .await
        {
            Ok(_) => output::outln(c),
            Err(e) => errors.push(e.to_string()),
        }
    }
    finish(errors)
}

/// `rm`.
pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1"));
    }
    if a.volumes {
        q.push(("v", "1"));
    }
    if a.link {
        q.push(("link", "1"));
    }
    let q = query::encode(&q);
    let mut errors = Vec::new();
    for c in &a.containers {
        let c = c.trim_matches('/');
        if c.is_empty() {
            errors.push("Container name cannot be empty".to_owned());
            continue;
        }
        match ctx
            .client
            .delete(&format!("/containers/{}{q}", seg(c)))
            .await
        {
            Ok(_) => output::outln(c),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    finish(errors)
}

/// `wait`: prints each exit code.
pub async fn wait(ctx: &Ctx, a: ContainersArgs) -> Result<i32> {
    let mut errors = Vec::new();
    for c in &a.containers {
        match ctx
            .client
            .post_json::<(), serde_json::Value>(&format!("/containers/{}/wait", seg(c)), None)
            .await
        {
            Ok(v) => output::outln(
                &v.get("StatusCode")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0)
                    .to_string(),
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    finish(errors)
}

/// `pause` / `unpause`.
pub async fn simple(ctx: &Ctx, a: ContainersArgs, verb: &str) -> Result<i32> {
    let mut errors = Vec::new();
    for c in &a.containers {
        match ctx
            .client
            .post_bytes::<()>(&format!("/containers/{}/{verb}", seg(c)), None)
            .await
        {
            Ok(_) => output::outln(c),
            Err(e) => errors.push(e.to_string()),
        }
    }
    finish(errors)
}

/// `rename`.
pub async fn rename(ctx: &Ctx, a: RenameArgs) -> Result<i32> {
    let new = a.new_name.trim();
    if new.is_empty() || a.container.trim().is_empty() {
        return Err(CliError::Msg(
            "Error: Neither old nor new names may be empty".into(),
        ));
    }
    ctx.client
        .post_bytes::<()>(
            &format!(
                "/containers/{}/rename{}",
                seg(&a.container),
                query::encode(&[("name", new)])
            ),
            None,
        )
        .await
        .map_err(|e| {
            CliError::Msg(format!(
                "{e}\nError: failed to rename container named {}",
                a.container
            ))
        })?;
    Ok(0)
}

/// `container prune`.
pub async fn container_prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let q = filters_json(&a.filter)?
        .map(|f| query::encode(&[("filters", f)]))
        .unwrap_or_default();
    let v = ctx.post_value(&format!("/containers/prune{q}")).await?;
    print_pruned(&v, "ContainersDeleted", "Deleted Containers:");
    Ok(0)
}

/// Prints a prune report (`Deleted …:` list and the reclaimed space).
pub fn print_pruned(v: &Value, key: &str, title: &str) {
    if let Some(Value::List(items)) = v.get(key)
        && !items.is_empty()
    {
        output::outln(title);
        for it in items {
            output::outln(&it.go_string());
        }
        output::outln("");
    }
    let reclaimed = v.get("SpaceReclaimed").and_then(Value::as_i64).unwrap_or(0);
    output::outln(&format!(
        "Total reclaimed space: {}",
        human_size(reclaimed as f64)
    ));
}

/// Docker's prune prompt: `… Are you sure you want to continue? [y/N] `.
pub fn confirm(warning: &str) -> Result<bool> {
    output::out(&format!(
        "{warning}\nAre you sure you want to continue? [y/N] "
    ));
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::io("reading the answer", e))?;
    let a = line.trim().to_ascii_lowercase();
    Ok(a == "y" || a == "yes")
}
