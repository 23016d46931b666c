//! Image routes on top of the image store: load, list, inspect, tag, delete.
//! Image names contain `/`, so `/images/{name}/json` and `/images/{name}/tag` are routed
//! through one catch-all and split on their last segment here.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::ApiError;
use berth_api::query::{ImageListQuery, ImageLoadQuery, ImageRemoveQuery, ImageTagQuery};
use berth_api::types::ProgressMessage;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::error::ApiResult;
use super::query::DockerQuery;
use crate::daemon::Daemon;

type D = State<Arc<Daemon>>;

/// Largest image archive accepted by `/images/load`.
const MAX_ARCHIVE: u64 = 64 * 1024 * 1024 * 1024;

/// `POST /images/load`: the body (a `docker save` tar) is spooled to a temp file in the data
/// root, then loaded by the store; progress is Docker's JSON lines.
pub async fn load(State(d): D, DockerQuery(q): DockerQuery<ImageLoadQuery>, req: Request) -> ApiResult<Response> {
    let tmp_dir = d.config.data_root.join("tmp");
    std::fs::create_dir_all(&tmp_dir).map_err(|e| ApiError::internal(format!("creating {}: {e}", tmp_dir.display())))?;
    let path = tmp_dir.join(format!("load-{}.tar", crate::fsutil::random_hex(8).unwrap_or_default()));
    let guard = TempFile(path.clone());
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", path.display())))?;
    let mut body = req.into_body().into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading request body: {e}")))?;
        total += chunk.len() as u64;
        if total > MAX_ARCHIVE {
            return Err(ApiError::new(berth_api::ErrorKind::PayloadTooLarge, "image archive too large").into());
        }
        file.write_all(&chunk).await.map_err(|e| ApiError::internal(format!("spooling archive: {e}")))?;
    }
    file.flush().await.map_err(|e| ApiError::internal(format!("spooling archive: {e}")))?;
    drop(file);
    let p2 = path.clone();
    let messages = d.blocking(move |d| d.images.load(&p2)).await?;
    drop(guard);
    let mut out = String::new();
    for m in messages {
        let line = ProgressMessage { stream: Some(format!("{m}\n")), ..Default::default() };
        out.push_str(&serde_json::to_string(&line).unwrap_or_default());
        out.push('\n');
    }
    let _ = q.quiet;
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

struct TempFile(std::path::PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `GET /images/json`.
pub async fn list(State(d): D, DockerQuery(q): DockerQuery<ImageListQuery>) -> ApiResult<Response> {
    let filters = berth_api::Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    filters.validate(&["dangling", "label", "before", "since", "reference"])?;
    let all = q.all;
    let mut images = d.blocking(move |d| d.images.list(all)).await?;
    if filters.contains("reference") {
        let wanted = filters.get("reference").iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        images.retain(|i| {
            i.repo_tags.iter().any(|t| {
                wanted.iter().any(|w| t == w || t.split(':').next() == Some(w.as_str()))
            })
        });
    }
    if filters.contains("dangling") {
        let dangling = filters.get("dangling").contains(&"true");
        images.retain(|i| i.repo_tags.is_empty() == dangling);
    }
    if filters.contains("label") {
        images.retain(|i| filters.match_labels("label", &i.labels));
    }
    Ok(Json(images).into_response())
}

/// `GET|POST /images/{name}/{json|tag|history|push}`.
pub async fn by_name(
    State(d): D,
    method: Method,
    Path(rest): Path<String>,
    DockerQuery(tq): DockerQuery<ImageTagQuery>,
) -> ApiResult<Response> {
    let (name, action) = rest.rsplit_once('/').unwrap_or((rest.as_str(), ""));
    let name = name.to_owned();
    match (method, action) {
        (Method::GET, "json") => {
            let img = d.blocking(move |d| d.images.inspect(&name)).await?;
            Ok(Json(img).into_response())
        }
        (Method::POST, "tag") => {
            let repo = tq.repo.unwrap_or_default();
            if repo.is_empty() {
                return Err(ApiError::invalid("repository name must have at least one component").into());
            }
            let tag = tq.tag.filter(|t| !t.is_empty()).unwrap_or_else(|| "latest".to_owned());
            d.blocking(move |d| d.images.tag(&name, &repo, &tag)).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        (m, a) => Err(ApiError::not_implemented(format!("not implemented: {m} /images/{rest}", rest = format!("{name}/{a}"))).into()),
    }
}

/// `DELETE /images/{name}`.
pub async fn remove(State(d): D, Path(name): Path<String>, DockerQuery(q): DockerQuery<ImageRemoveQuery>) -> ApiResult<Response> {
    let used: Vec<(String, String)> = d
        .containers
        .all()
        .iter()
        .map(|e| e.with(|r| (r.image_id.clone(), r.id.clone())))
        .collect();
    let items = d
        .blocking(move |d| {
            let in_use = |image_id: &str| used.iter().any(|(i, _)| i == image_id);
            d.images.delete(&name, q.force, q.noprune, &in_use)
        })
        .await?;
    Ok(Json(items).into_response())
}
