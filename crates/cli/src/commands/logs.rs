//! `logs`: the log stream, demultiplexed unless the container has a TTY.

use berth_client::{body, query};
use hyper::Method;

use super::Ctx;
use super::streams::OutputSink;
use crate::cli::LogsArgs;
use crate::error::Result;

/// `logs`.
pub async fn logs(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    let info = ctx
        .get_json(&format!(
            "/containers/{}/json",
            query::path_segment(&a.container)
        ))
        .await?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let mut q: Vec<(&str, String)> = vec![("stdout", "1".into()), ("stderr", "1".into())];
    if a.follow {
        q.push(("follow", "1".into()));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.details {
        q.push(("details", "1".into()));
    }
    if let Some(t) = &a.tail {
        q.push(("tail", t.clone()));
    }
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
    let mut s = ctx
        .client
        .send(
            Method::GET,
            &format!(
                "/containers/{}/logs{}",
                query::path_segment(&a.container),
                query::encode(&q)
            ),
            body::empty(),
            None,
        )
        .await?;
    let mut sink = OutputSink::new(tty);
    while let Some(chunk) = s.chunk().await? {
        sink.write(&chunk)?;
    }
    Ok(0)
}
