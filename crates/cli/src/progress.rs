//! Pull/push/load progress from the daemon's JSON-lines stream, drawn as Docker does: one line
//! per layer id updated in place on a terminal (indicatif), plain status lines otherwise.

use std::collections::HashMap;

use berth_client::JsonLines;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;

use crate::error::{CliError, Result};
use crate::output;

/// One progress message (docker's jsonmessage.JSONMessage subset).
#[derive(Debug, Default, Deserialize)]
pub struct Message {
    /// Status text.
    #[serde(default)]
    pub status: Option<String>,
    /// Free text (`Loaded image: …`).
    #[serde(default)]
    pub stream: Option<String>,
    /// Layer or object id.
    #[serde(default)]
    pub id: Option<String>,
    /// Rendered progress bar text.
    #[serde(default)]
    pub progress: Option<String>,
    /// Structured progress.
    #[serde(default, rename = "progressDetail")]
    pub progress_detail: Option<serde_json::Value>,
    /// Error text.
    #[serde(default)]
    pub error: Option<String>,
    /// Structured error.
    #[serde(default, rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    /// Auxiliary data (push digests, build ids).
    #[serde(default)]
    pub aux: Option<serde_json::Value>,
}

/// `errorDetail`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// The line printed for a message without a terminal: Docker prints only state changes
/// (`<id>: Pull complete`), not each progress tick, and free `stream` text as is.
pub fn plain_line(m: &Message) -> Option<String> {
    if let Some(s) = &m.stream {
        return Some(s.clone());
    }
    let status = m.status.as_deref().unwrap_or("");
    match &m.id {
        Some(_) if has_progress(m) => None,
        Some(id) => Some(format!("{id}: {status}\n")),
        None => Some(format!("{status}\n")),
    }
}

fn has_progress(m: &Message) -> bool {
    m.progress.as_deref().is_some_and(|p| !p.is_empty())
        || m.progress_detail
            .as_ref()
            .is_some_and(|d| d.as_object().is_some_and(|o| !o.is_empty()))
}

/// Renders a stream to stdout (or stderr, for `run`'s implicit pull); returns the messages'
/// `aux` values. An `error` line ends it with that error.
pub async fn display(
    mut stream: JsonLines,
    tty: bool,
    quiet: bool,
    to_stderr: bool,
) -> Result<Vec<serde_json::Value>> {
    let mut aux = Vec::new();
    let multi = MultiProgress::with_draw_target(match (tty && !quiet, to_stderr) {
        (true, false) => ProgressDrawTarget::stdout(),
        (true, true) => ProgressDrawTarget::stderr(),
        (false, _) => ProgressDrawTarget::hidden(),
    });
    let print = |s: &str| {
        if to_stderr {
            output::err_bytes(s.as_bytes());
        } else {
            output::out(s);
        }
    };
    let style =
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    while let Some(m) = stream.next::<Message>().await {
        let m = m?;
        if let Some(e) = m
            .error
            .clone()
            .or_else(|| m.error_detail.as_ref().map(|d| d.message.clone()))
        {
            for b in bars.values() {
                b.abandon();
            }
            return Err(CliError::Msg(e));
        }
        if let Some(a) = m.aux {
            aux.push(a);
            continue;
        }
        if quiet {
            continue;
        }
        let status = m.status.clone().unwrap_or_default();
        if let Some(s) = &m.stream {
            if tty {
                multi.suspend(|| print(s));
            } else {
                print(s);
            }
            continue;
        }
        match (&m.id, tty) {
            (Some(id), true) => {
                let text = match &m.progress {
                    Some(p) if !p.is_empty() => format!("{id}: {status} {p}"),
                    _ => format!("{id}: {status}"),
                };
                let bar = bars.entry(id.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(style.clone());
                    b
                });
                bar.set_message(text);
                bar.tick();
            }
            (Some(_), false) => {
                if let Some(line) = plain_line(&m) {
                    print(&line);
                }
            }
            (None, _) => {
                if tty {
                    multi.suspend(|| print(&format!("{status}\n")));
                } else {
                    print(&format!("{status}\n"));
                }
            }
        }
    }
    for b in bars.values() {
        b.finish();
    }
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> Message {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plain_lines_skip_progress_ticks() {
        assert_eq!(
            plain_line(&msg(r#"{"status":"Pulling fs layer","id":"a1"}"#)).as_deref(),
            Some("a1: Pulling fs layer\n")
        );
        assert_eq!(
            plain_line(&msg(
                r#"{"status":"Downloading","id":"a1","progress":"[=>  ] 1MB/4MB","progressDetail":{"current":1,"total":4}}"#
            )),
            None
        );
        assert_eq!(
            plain_line(&msg(
                r#"{"status":"Download complete","id":"a1","progressDetail":{}}"#
            ))
            .as_deref(),
            Some("a1: Download complete\n")
        );
        assert_eq!(
            plain_line(&msg(
                r#"{"status":"Status: Downloaded newer image for busybox:latest"}"#
            ))
            .as_deref(),
            Some("Status: Downloaded newer image for busybox:latest\n")
        );
        assert_eq!(
            plain_line(&msg(r#"{"stream":"Loaded image: busybox:latest\n"}"#)).as_deref(),
            Some("Loaded image: busybox:latest\n")
        );
    }
}
