//! Tar streams in and out of the image store: `docker save`, `docker export`, `docker import`
//! and `docker commit`. The store's blocking readers/writers are bridged to the HTTP body with
//! bounded channels, so nothing is spooled in memory or on disk.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_api::ApiError;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::error::ApiResult;
use super::json::read_limited;
use crate::daemon::Daemon;

type D = State<Arc<Daemon>>;

/// Writes into a channel from a blocking thread.
struct ChannelWriter(tokio::sync::mpsc::Sender<Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads from a channel on a blocking thread.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    buf: Bytes,
}

impl ChannelReader {
    /// A reader over the chunks `rx` delivers (an `Err` chunk fails the read).
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>) -> Self {
        ChannelReader {
            rx,
            buf: Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

/// Runs `produce` on a blocking thread writing into the response body. Errors before the
/// first byte become a proper error response; later ones cut the stream (as Docker does).
async fn tar_response(
    d: &Arc<Daemon>,
    produce: impl FnOnce(&Daemon, ChannelWriter) -> Result<(), ApiError> + Send + 'static,
) -> ApiResult<Response> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let me = d.clone();
    let job = tokio::task::spawn_blocking(move || produce(&me, ChannelWriter(tx)));
    let first = rx.recv().await;
    let Some(first) = first else {
        // Nothing written: the producer finished (empty) or failed.
        job.await
            .map_err(|e| ApiError::internal(format!("export task failed: {e}")))??;
        return Ok(Response::new(Body::empty()));
    };
    tokio::spawn(async move {
        if let Ok(Err(e)) = job.await {
            tracing::warn!(error = %e, "tar stream failed midway");
        }
    });
    let stream = futures_util::stream::once(async move { first })
        .chain(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (b, rx))
        }))
        .map(Ok::<_, std::convert::Infallible>);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(url_decode_pairs).unwrap_or_default()
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /images/get?names=a&names=b` (`docker save`).
pub async fn save(State(d): D, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let names: Vec<String> = query_pairs(raw.as_deref())
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    if names.is_empty() {
        return Err(ApiError::invalid("no images given to save (names=...)").into());
    }
    save_names(&d, names).await
}

/// `docker save` of `names`.
pub async fn save_names(d: &Arc<Daemon>, names: Vec<String>) -> ApiResult<Response> {
    // Resolve first so a missing image is a clean 404 rather than a cut stream.
    for n in &names {
        d.images.resolve(n).map_err(crate::images::api_error)?;
    }
    tar_response(d, move |d, w| {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        d.images.save(&refs, w).map_err(crate::images::api_error)
    })
    .await
}

/// `GET /containers/{id}/export`.
pub async fn export(State(d): D, Path(id): Path<String>) -> ApiResult<Response> {
    let e = d.containers.get(&id)?;
    let cid = e.id.clone();
    tar_response(&d, move |d, w| {
        d.images
            .export_container(&cid, w)
            .map_err(crate::images::api_error)
    })
    .await
}

/// `POST /images/create`: `fromImage=` pulls from a registry; `fromSrc=-` imports the body.
pub async fn create(State(d): D, RawQuery(raw): RawQuery, req: Request) -> ApiResult<Response> {
    let q: HashMap<String, String> = query_pairs(raw.as_deref()).into_iter().collect();
    if q.contains_key("fromImage") {
        return super::distribution::pull(d, &q, req.headers()).await;
    }
    let Some(src) = q.get("fromSrc") else {
        return Err(ApiError::invalid("fromImage or fromSrc is required").into());
    };
    if src != "-" {
        return Err(ApiError::not_implemented("importing from a URL is not supported yet").into());
    }
    if q.get("changes").is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::not_implemented("--change on import is not supported yet").into());
    }
    let repo_tag = q.get("repo").filter(|r| !r.is_empty()).map(|r| {
        match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{r}:{t}"),
            None => r.clone(),
        }
    });
    let opts = berth_image::archive::import::ImportOptions {
        repo_tag,
        config: None,
        message: q.get("message").filter(|m| !m.is_empty()).cloned(),
        source: "-".to_owned(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let importer = d.blocking(move |d| {
        d.images
            .import(ChannelReader::new(rx), &opts)
            .map_err(crate::images::api_error)
    });
    let feed = async move {
        let mut body = req.into_body().into_data_stream();
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|e| format!("reading request body: {e}"));
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    };
    let (id, ()) = tokio::join!(importer, feed);
    let id = id?;
    d.events.image("import", &id, &id);
    let line = json!({"status": id});
    Ok((StatusCode::OK, format!("{line}\n")).into_response())
}

/// `POST /commit?container=..&repo=..&tag=..&comment=..&author=..`.
pub async fn commit(State(d): D, RawQuery(raw): RawQuery, req: Request) -> ApiResult<Response> {
    let q: HashMap<String, String> = query_pairs(raw.as_deref()).into_iter().collect();
    let key = q.get("container").cloned().unwrap_or_default();
    let e = d.containers.get(&key)?;
    if q.get("changes").is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::not_implemented("--change on commit is not supported yet").into());
    }
    let body = read_limited(req, &()).await?;
    let user: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::invalid(format!("invalid JSON: {err}")))?
    };
    let rec = e.snapshot();
    let mut config = serde_json::to_value(&rec.config).unwrap_or(Value::Null);
    if let (Some(base), Some(over)) = (config.as_object_mut(), user.as_object()) {
        for (k, v) in over {
            if !v.is_null() {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    let repo_tag = q.get("repo").filter(|r| !r.is_empty()).map(|r| {
        match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{r}:{t}"),
            None => r.clone(),
        }
    });
    let mut created_by = rec.path.clone();
    for a in &rec.args {
        created_by.push(' ');
        created_by.push_str(a);
    }
    let opts = berth_image::commit::CommitOptions {
        image_id: Some(rec.image_id.clone()),
        config: Some(config),
        container_config: serde_json::to_value(&rec.config).ok(),
        comment: q.get("comment").cloned().unwrap_or_default(),
        author: q.get("author").cloned().unwrap_or_default(),
        created_by,
        repo_tag,
    };
    let cid = e.id.clone();
    let id = d
        .blocking(move |d| {
            d.images
                .commit(&cid, &opts)
                .map_err(crate::images::api_error)
        })
        .await?;
    d.events.image("commit", &id, &id);
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let p = url_decode_pairs("names=busybox%3Alatest&names=a+b&x=%zz");
        assert_eq!(p[0], ("names".into(), "busybox:latest".into()));
        assert_eq!(p[1], ("names".into(), "a b".into()));
        assert_eq!(p[2], ("x".into(), "%zz".into()));
        assert_eq!(percent_decode("%4"), "%4");
    }
}
