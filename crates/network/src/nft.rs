//! Running nftables JSON batches through `nft -j -f -` and reading rulesets back with
//! `nft -j list ...`. nft applies a batch as one kernel transaction: all of it or nothing.

use std::io;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be started (not installed?).
    #[error("running nft")]
    Spawn(#[source] io::Error),
    /// nft rejected the batch or the listing.
    #[error("nft {what} failed: {stderr}")]
    Failed {
        /// `-f -` or the list command.
        what: String,
        /// nft's message.
        stderr: String,
    },
    /// nft printed something that is not the JSON we expect.
    #[error("parsing nft output of {what}")]
    Parse {
        /// The command.
        what: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// One rule as listed by nft: where it is, its handle and its comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedRule {
    /// `inet`, `ip`, ...
    pub family: String,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// Kernel handle (stable for the life of the table).
    pub handle: u64,
    /// The rule's comment, if any.
    pub comment: Option<String>,
}

/// What `nft -j list table|chain` showed: rules, and set elements by set name.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Every rule.
    pub rules: Vec<ListedRule>,
    /// Elements of named sets whose elements are plain strings (ifname sets).
    pub set_elems: Vec<(String, Vec<String>)>,
    /// Chains present.
    pub chains: Vec<String>,
}

/// Applies `cmds` (each one `{"add": ...}`, `{"delete": ...}`, ...) as one transaction.
/// An empty batch does nothing.
pub async fn apply(cmds: Vec<Value>) -> Result<(), NftError> {
    run_batch(cmds, false).await.map(|_| ())
}

/// Like [`apply`], and returns the rules the batch added, with the handles the kernel gave them
/// (`nft --echo --handle`), so they can later be deleted without listing the table.
pub async fn apply_echo(cmds: Vec<Value>) -> Result<Vec<ListedRule>, NftError> {
    let out = run_batch(cmds, true).await?;
    if out.is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_slice(&out).map_err(|source| NftError::Parse {
        what: "-j -e -a -f -".into(),
        source,
    })?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|i| i.get("add").or_else(|| i.get("insert")))
        .filter_map(|a| a.get("rule"))
        .filter_map(parse_rule)
        .collect())
}

async fn run_batch(cmds: Vec<Value>, echo: bool) -> Result<Vec<u8>, NftError> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let batch = json!({ "nftables": cmds }).to_string();
    let args: &[&str] = if echo {
        &["-j", "-e", "-a", "-f", "-"]
    } else {
        &["-j", "-f", "-"]
    };
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(if echo { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(batch.as_bytes())
            .await
            .map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().await.map_err(NftError::Spawn)?;
    if !out.status.success() {
        return Err(NftError::Failed {
            what: "-j -f -".into(),
            stderr: format!(
                "{} (batch: {batch})",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out.stdout)
}

fn parse_rule(r: &Value) -> Option<ListedRule> {
    let s = |k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(ListedRule {
        family: s("family"),
        table: s("table"),
        chain: s("chain"),
        handle: r.get("handle").and_then(Value::as_u64)?,
        comment: r.get("comment").and_then(Value::as_str).map(str::to_string),
    })
}

/// Lists `args` (e.g. `["table", "inet", "berth"]`). `Ok(None)` when the object does not exist.
pub async fn list(args: &[&str]) -> Result<Option<Listing>, NftError> {
    let what = format!("list {}", args.join(" "));
    let out = Command::new("nft")
        .args(["-j", "list"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(NftError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if stderr.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(NftError::Failed {
            what,
            stderr: stderr.trim().to_string(),
        });
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|source| NftError::Parse { what, source })?;
    Ok(Some(parse_listing(&v)))
}

fn parse_listing(v: &Value) -> Listing {
    let mut l = Listing::default();
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for item in items {
        if let Some(r) = item.get("rule") {
            let s = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            if let Some(handle) = r.get("handle").and_then(Value::as_u64) {
                l.rules.push(ListedRule {
                    family: s("family"),
                    table: s("table"),
                    chain: s("chain"),
                    handle,
                    comment: r.get("comment").and_then(Value::as_str).map(str::to_string),
                });
            }
        } else if let Some(set) = item.get("set") {
            let name = set
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let elems = set
                .get("elem")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            l.set_elems.push((name, elems));
        } else if let Some(c) = item.get("chain")
            && let Some(n) = c.get("name").and_then(Value::as_str)
        {
            l.chains.push(n.to_string());
        }
    }
    l
}

/// `{"delete": {"rule": ...}}` for a listed rule.
pub fn delete_rule(r: &ListedRule) -> Value {
    json!({"delete": {"rule": {
        "family": r.family, "table": r.table, "chain": r.chain, "handle": r.handle
    }}})
}
