//! `GET /events`: replay (`since`), then live events until `until`, filtered.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_api::Filters;
use berth_api::query::EventsQuery;
use bytes::Bytes;

use super::error::ApiResult;
use super::query::DockerQuery;
use crate::daemon::Daemon;
use crate::events::{matches, parse_time};

const FILTERS: &[&str] = &["type", "event", "container", "image", "label"];

/// `GET /events`.
pub async fn events(
    State(d): State<Arc<Daemon>>,
    DockerQuery(q): DockerQuery<EventsQuery>,
) -> ApiResult<Response> {
    let filters = Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    filters.validate(FILTERS)?;
    let since = parse_time(q.since.as_deref().unwrap_or(""))?;
    let until = parse_time(q.until.as_deref().unwrap_or(""))?;
    let (past, mut rx) = d.events.subscribe();
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut shutdown = d.shutting_down.subscribe();
    let line = |v: &serde_json::Value| {
        let mut b = serde_json::to_vec(v).unwrap_or_default();
        b.push(b'\n');
        Bytes::from(b)
    };
    tokio::spawn(async move {
        let in_range = |t: i64| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u);
        if since.is_some() {
            for ev in past {
                if in_range(ev.time_nano)
                    && matches(&filters, &ev.json)
                    && tx.send(line(&ev.json)).await.is_err()
                {
                    return;
                }
            }
        }
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        if until.is_some_and(|u| u <= now) {
            return;
        }
        let deadline =
            until.map(|u| std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64));
        let sleep = async move {
            match deadline {
                Some(dl) => tokio::time::sleep(dl).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                _ = shut(&mut shutdown) => return,
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if matches(&filters, &ev.json) && tx.send(line(&ev.json)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(out, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let mut r = Response::new(axum::body::Body::from_stream(stream));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn shut(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}
