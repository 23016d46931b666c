//! `exec`: create the exec, then start it detached or hijacked, and exit with its code.

use berth_client::query;
use serde_json::{Value, json};

use super::Ctx;
use super::run::monitor_tty_size;
use super::streams::{StreamEnd, StreamOpts, pump};
use crate::cli::ExecArgs;
use crate::error::{CliError, Result};
use crate::opts::env_list;
use crate::tty::{self, RawGuard};

/// `exec`.
pub async fn exec(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    let env = env_list(&a.env_file, &a.env)?;
    let attach = !a.detach;
    let stdin = attach && a.interactive;
    if stdin && a.tty && !tty::stdin_is_tty() {
        return Err(CliError::Msg("the input device is not a TTY".into()));
    }
    let mut cfg = json!({
        "AttachStdin": stdin,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Tty": a.tty,
        "Cmd": a.command,
        "Privileged": a.privileged,
    });
    if !env.is_empty() {
        cfg["Env"] = json!(env);
    }
    if let Some(u) = &a.user {
        cfg["User"] = json!(u);
    }
    if let Some(w) = &a.workdir {
        cfg["WorkingDir"] = json!(w);
    }
    if let Some(k) = &a.detach_keys {
        cfg["DetachKeys"] = json!(k);
    }
    let created: Value = ctx
        .client
        .post_json(
            &format!("/containers/{}/exec", query::path_segment(&a.container)),
            Some(&cfg),
        )
        .await?;
    let id = created
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    if a.detach {
        ctx.client
            .post_bytes(&format!("/exec/{id}/start"), Some(&start))
            .await?;
        return Ok(0);
    }
    let keys = tty::parse_detach_keys(a.detach_keys.as_deref().unwrap_or("ctrl-p,ctrl-q"))
        .map_err(CliError::Msg)?;
    let conn = ctx
        .client
        .upgrade(&format!("/exec/{id}/start"), Some(&start))
        .await?;
    let raw = if stdin && a.tty {
        RawGuard::enable().map_err(|e| CliError::io("setting the terminal to raw mode", e))?
    } else {
        None
    };
    if a.tty && tty::stdout_is_tty() {
        monitor_tty_size(ctx, format!("/exec/{id}/resize"));
    }
    let end = pump(
        conn,
        StreamOpts {
            stdin,
            tty: a.tty,
            detach_keys: keys,
        },
    )
    .await;
    drop(raw);
    if end? == StreamEnd::Detached {
        return Ok(0);
    }
    let info = ctx.get_json(&format!("/exec/{id}/json")).await?;
    Ok(info.get("ExitCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}
