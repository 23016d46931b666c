//! Image routes on top of the image store: load, list, inspect, tag, delete.
//! Image names contain `/`, so `/images/{name}/json` and `/images/{name}/tag` are routed
//! through one catch-all and split on their last segment here.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::ApiError;
use berth_api::query::{ImageListQuery, ImageLoadQuery, ImageRemoveQuery, ImageTagQuery};
use berth_api::types::ProgressMessage;
use futures_util::StreamExt;

use super::error::ApiResult;
use super::query::DockerQuery;
use crate::daemon::Daemon;

type D = State<Arc<Daemon>>;

/// `POST /images/load`: the body (a `docker save` tar) streams into the store as it
/// arrives; the answer is Docker's JSON lines.
pub async fn load(
    State(d): D,
    DockerQuery(_q): DockerQuery<ImageLoadQuery>,
    req: Request,
) -> ApiResult<Response> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let loader = d.blocking(move |d| {
        let reader = super::transfer::ChannelReader::new(rx);
        d.images.load(reader).map_err(crate::images::api_error)
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
    let (loaded, ()) = tokio::join!(loader, feed);
    let loaded = loaded?;
    let mut out = String::new();
    for img in loaded {
        let name = img
            .repo_tags
            .first()
            .cloned()
            .unwrap_or_else(|| img.id.clone());
        d.events.image("load", &img.id, &name);
        for m in img.messages() {
            let line = ProgressMessage {
                stream: Some(format!("{m}\n")),
                ..Default::default()
            };
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
        }
    }
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `GET /images/json`.
pub async fn list(State(d): D, DockerQuery(q): DockerQuery<ImageListQuery>) -> ApiResult<Response> {
    let filters = berth_api::Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    filters.validate(&["dangling", "label", "before", "since", "reference"])?;
    let uses = crate::images::uses(&d);
    let mut images = d
        .blocking(move |d| d.images.list(Some(&uses)).map_err(crate::images::api_error))
        .await?;
    if filters.contains("reference") {
        let wanted: Vec<String> = filters
            .get("reference")
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        images.retain(|i| {
            i.repo_tags.iter().any(|t| {
                wanted
                    .iter()
                    .any(|w| t == w || t.rsplit_once(':').map(|(repo, _)| repo) == Some(w.as_str()))
            })
        });
    }
    if filters.contains("dangling") {
        let dangling = filters.get("dangling").contains(&"true");
        images.retain(|i| i.repo_tags.is_empty() == dangling);
    }
    if filters.contains("label") {
        images.retain(|i| {
            let labels: std::collections::HashMap<String, String> = i
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            filters.match_labels("label", &labels)
        });
    }
    Ok(Json(images).into_response())
}

/// `GET|POST /images/{name}/{json|tag|history|push}`.
pub async fn by_name(
    State(d): D,
    method: Method,
    Path(rest): Path<String>,
    DockerQuery(tq): DockerQuery<ImageTagQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (name, action) = rest.rsplit_once('/').unwrap_or((rest.as_str(), ""));
    let name = name.to_owned();
    match (method, action) {
        (Method::GET, "json") => {
            let img = d
                .blocking(move |d| d.images.inspect(&name).map_err(crate::images::api_error))
                .await?;
            Ok(Json(img).into_response())
        }
        (Method::GET, "get") => super::transfer::save_names(&d, vec![name]).await,
        (Method::GET, "history") => {
            let h = d
                .blocking(move |d| d.images.history(&name).map_err(crate::images::api_error))
                .await?;
            Ok(Json(h).into_response())
        }
        (Method::POST, "tag") => {
            let repo = tq.repo.unwrap_or_default();
            if repo.is_empty() {
                return Err(
                    ApiError::invalid("repository name must have at least one component").into(),
                );
            }
            let tag = tq
                .tag
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "latest".to_owned());
            let target = format!("{repo}:{tag}");
            let t2 = target.clone();
            let id = d
                .blocking(move |d| {
                    d.images.tag(&name, &t2).map_err(crate::images::api_error)?;
                    d.images.resolve(&t2).map_err(crate::images::api_error)
                })
                .await?;
            d.events.image("tag", &id, &target);
            Ok(StatusCode::CREATED.into_response())
        }
        (Method::POST, "push") => super::distribution::push(d, name, tq.tag, &headers).await,
        (m, _) => {
            Err(ApiError::not_implemented(format!("not implemented: {m} /images/{rest}")).into())
        }
    }
}

/// `DELETE /images/{name}`.
pub async fn remove(
    State(d): D,
    Path(name): Path<String>,
    DockerQuery(q): DockerQuery<ImageRemoveQuery>,
) -> ApiResult<Response> {
    let uses = crate::images::uses(&d);
    let items = d
        .blocking(move |d| {
            d.images
                .delete(&name, q.force, q.noprune, &uses)
                .map_err(crate::images::api_error)
        })
        .await?;
    for it in &items {
        match it {
            berth_image::delete::DeleteResponseItem::Untagged(r) => d.events.image("untag", r, r),
            berth_image::delete::DeleteResponseItem::Deleted(id) => {
                d.events.image("delete", id, id)
            }
        }
    }
    Ok(Json(items).into_response())
}

/// `POST /images/prune` (`dangling=false` in the filters prunes every unused image).
pub async fn prune(
    State(d): D,
    DockerQuery(q): DockerQuery<berth_api::query::PruneQuery>,
) -> ApiResult<Response> {
    let filters = berth_api::Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    filters.validate(&["dangling"])?;
    let dangling_only = !filters
        .get("dangling")
        .iter()
        .any(|v| matches!(*v, "false" | "0"));
    let uses = crate::images::uses(&d);
    let (items, reclaimed) = d
        .blocking(move |d| {
            d.images
                .prune(dangling_only, &uses)
                .map_err(crate::images::api_error)
        })
        .await?;
    Ok(Json(serde_json::json!({"ImagesDeleted": if items.is_empty() { None } else { Some(items) }, "SpaceReclaimed": reclaimed})).into_response())
}
