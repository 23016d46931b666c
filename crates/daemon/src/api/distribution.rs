//! `docker pull` (`POST /images/create?fromImage=`) and `docker push`
//! (`POST /images/{name}/push`) on top of `berth_image::registry`.
//!
//! The registry operation runs as a task whose progress lines go through a channel into the
//! chunked response body. Like dockerd, an error before the first progress line is a proper
//! HTTP error; once streaming has started (status 200 sent) it becomes a final
//! `{"errorDetail":{"message":..},"error":..}` line, which the CLI prints before exiting 1.
//! The task is aborted when the body is dropped, so a client that disconnects cancels the
//! pull or push (the registry module leaves nothing partial behind).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use berth_api::ApiError;
use berth_image::ErrorKind;
use berth_image::registry::{
    self, AuthConfig, ProgressEvent, PullOptions, PushOptions, RegistryError,
};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::ApiResult;
use crate::daemon::Daemon;

/// What the registry task sends to the response body.
enum Msg {
    /// One JSON progress line (without newline).
    Line(String),
    /// The operation ended; `Ok` carries final lines (push's `aux`), `Err` the error.
    Done(Result<Vec<String>, RegistryError>),
}

/// Aborts the registry task when the response body (or the handler) is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Maps a registry error to the API's kinds, keeping the whole cause chain in the message.
fn api_error(e: &RegistryError) -> ApiError {
    let message = crate::images::error_chain(e);
    match e.kind() {
        ErrorKind::NotFound => ApiError::not_found(message),
        ErrorKind::InvalidParameter => ApiError::invalid(message),
        ErrorKind::Conflict => ApiError::conflict(message),
        ErrorKind::Internal => ApiError::internal(message),
    }
}

/// Docker's in-stream error line.
fn error_line(message: &str) -> String {
    json!({"errorDetail": {"message": message}, "error": message}).to_string()
}

/// Decodes the `X-Registry-Auth` header (absent or empty: anonymous).
fn auth_from(headers: &HeaderMap) -> Result<AuthConfig, ApiError> {
    match headers.get("x-registry-auth") {
        None => Ok(AuthConfig::default()),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::invalid("X-Registry-Auth is not valid ASCII"))?;
            if v.trim().is_empty() {
                return Ok(AuthConfig::default());
            }
            AuthConfig::from_x_registry_auth(v).map_err(|e| ApiError::invalid(e.to_string()))
        }
    }
}

/// Joins `name` and `tag` the way the CLI splits them: a tag that looks like a digest is
/// appended with `@`.
fn join_reference(name: &str, tag: Option<&str>) -> String {
    match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{name}@{t}"),
        Some(t) => format!("{name}:{t}"),
        None => name.to_owned(),
    }
}

/// Runs `op` as a task (its progress callback given as the argument) and answers with the
/// streamed progress, or with an HTTP error if it fails before its first line.
async fn stream_operation<F, Fut>(op: F) -> ApiResult<Response>
where
    F: FnOnce(Box<dyn FnMut(ProgressEvent) + Send>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, RegistryError>> + Send + 'static,
{
    // Unbounded: the callback is synchronous; progress is a handful of lines per layer
    // (byte progress is throttled by the registry module).
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let progress_tx = tx.clone();
    let fut = op(Box::new(move |ev: ProgressEvent| {
        let _ = progress_tx.send(Msg::Line(ev.to_json()));
    }));
    let guard = AbortOnDrop(tokio::spawn(async move {
        let res = fut.await;
        let _ = tx.send(Msg::Done(res));
    }));
    // The registry module announces itself ("Pulling from x", "The push refers to ...")
    // before it talks to the registry; dockerd only starts the stream after resolving the
    // manifest, so an unknown tag or repository is an HTTP error there. Hold the first line
    // back until something follows it to answer the same way.
    let mut held = Vec::new();
    let first = loop {
        match rx.recv().await {
            Some(Msg::Done(Err(e))) => return Err(api_error(&e).into()),
            Some(Msg::Line(l)) if held.is_empty() => held.push(Msg::Line(l)),
            Some(m) => {
                held.push(m);
                break held;
            }
            None => {
                return Err(ApiError::internal("registry task ended without a result").into());
            }
        }
    };
    let render = |m: Msg| -> (String, bool) {
        match m {
            Msg::Line(l) => (format!("{l}\n"), false),
            Msg::Done(Ok(lines)) => (lines.iter().map(|l| format!("{l}\n")).collect(), true),
            Msg::Done(Err(e)) => {
                tracing::debug!(error = %e, "registry operation failed after streaming started");
                (
                    format!("{}\n", error_line(&crate::images::error_chain(&e))),
                    true,
                )
            }
        }
    };
    let mut first_chunk = String::new();
    let mut first_done = false;
    for m in first {
        let (chunk, done) = render(m);
        first_chunk.push_str(&chunk);
        first_done |= done;
    }
    // State: (receiver, guard, done). The guard lives as long as the body.
    let rest = futures_util::stream::unfold(
        (rx, guard, first_done),
        move |(mut rx, guard, done)| async move {
            if done {
                return None;
            }
            match rx.recv().await {
                Some(m) => {
                    let (chunk, done) = render(m);
                    Some((Bytes::from(chunk), (rx, guard, done)))
                }
                None => Some((
                    Bytes::from(format!(
                        "{}\n",
                        error_line("registry operation ended unexpectedly")
                    )),
                    (rx, guard, true),
                )),
            }
        },
    );
    let stream = futures_util::stream::once(async move { Bytes::from(first_chunk) })
        .chain(rest)
        .map(Ok::<_, std::convert::Infallible>);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `POST /images/create?fromImage=..&tag=..&platform=..` (`docker pull`, and `docker run`
/// of an image that is not present).
pub async fn pull(
    d: Arc<Daemon>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let from = q.get("fromImage").cloned().unwrap_or_default();
    if from.is_empty() {
        return Err(ApiError::invalid("fromImage must not be empty").into());
    }
    let reference = join_reference(&from, q.get("tag").map(String::as_str));
    let opts = PullOptions {
        platform: q.get("platform").filter(|p| !p.is_empty()).cloned(),
        auth: auth_from(headers)?,
        insecure_registries: d.config.insecure_registries.clone(),
        max_concurrent_downloads: usize::try_from(d.config.max_concurrent_downloads)
            .unwrap_or(3)
            .max(1),
    };
    let store = d.images.clone();
    stream_operation(move |progress| async move {
        let res = registry::pull(store, &reference, opts, progress).await?;
        d.events.image(
            "pull",
            &res.reference.familiar_string(),
            &res.reference.familiar_name(),
        );
        Ok(Vec::new())
    })
    .await
}

/// `POST /images/{name}/push?tag=..` (`docker push`).
pub async fn push(
    d: Arc<Daemon>,
    name: String,
    tag: Option<String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let reference = join_reference(&name, tag.as_deref());
    let opts = PushOptions {
        auth: auth_from(headers)?,
        insecure_registries: d.config.insecure_registries.clone(),
    };
    let store = d.images.clone();
    stream_operation(move |progress| async move {
        let res = registry::push(store, &reference, opts, progress).await?;
        let aux = json!({
            "progressDetail": {},
            "aux": {"Tag": res.tag, "Digest": res.digest, "Size": res.size},
        });
        match berth_image::reference::parse_normalized(&reference) {
            Ok(r) => d
                .events
                .image("push", &r.familiar_string(), &r.familiar_name()),
            Err(_) => d.events.image("push", &reference, &reference),
        }
        Ok(vec![aux.to_string()])
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_errors() {
        assert_eq!(join_reference("busybox", Some("1")), "busybox:1");
        assert_eq!(join_reference("busybox", Some("")), "busybox");
        assert_eq!(join_reference("bb", Some("sha256:ab")), "bb@sha256:ab");
        let v: serde_json::Value = serde_json::from_str(&error_line("boom")).unwrap();
        assert_eq!(v["error"], "boom");
        assert_eq!(v["errorDetail"]["message"], "boom");
        assert!(auth_from(&HeaderMap::new()).unwrap().is_anonymous());
        let mut h = HeaderMap::new();
        h.insert("x-registry-auth", HeaderValue::from_static("%%%"));
        assert!(auth_from(&h).is_err());
    }
}
