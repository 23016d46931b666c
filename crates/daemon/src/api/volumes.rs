//! Volume routes: parse, call `crate::volumes`, serialize.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use berth_api::models::VolumeCreateRequest;
use berth_api::query::{PruneQuery, VolumeRemoveQuery};
use serde_json::{Value, json};

use super::error::ApiResult;
use super::json::OptionalJson;
use super::query::DockerQuery;
use super::version::ApiVersion;
use crate::daemon::Daemon;
use crate::volumes::{self, CreateRequest};

type D = State<Arc<Daemon>>;

fn filters(q: &PruneQuery) -> Result<berth_api::Filters, berth_api::ApiError> {
    berth_api::Filters::parse(q.filters.as_deref().unwrap_or(""))
}

/// `GET /volumes`.
pub async fn list(State(d): D, DockerQuery(q): DockerQuery<PruneQuery>) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    let list = d
        .blocking(move |d| {
            let vols = volumes::list(d, &f)?;
            Ok(vols
                .iter()
                .map(|v| volumes::to_json(d, v))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(json!({"Volumes": list, "Warnings": null})))
}

/// `POST /volumes/create`.
pub async fn create(
    State(d): D,
    OptionalJson(body): OptionalJson<VolumeCreateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body.unwrap_or_default();
    let req = CreateRequest {
        name: body.name,
        driver: body.driver,
        labels: body.labels.map(|l| l.into_iter().collect()),
        options: body.driver_opts.map(|o| o.into_iter().collect()),
    };
    let v = d
        .blocking(move |d| {
            let v = volumes::create(d, req)?;
            Ok(volumes::to_json(d, &v))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /volumes/{name}`.
pub async fn inspect(State(d): D, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let v = d
        .blocking(move |d| {
            let v = volumes::get(d, &name)?;
            Ok(volumes::to_json(d, &v))
        })
        .await?;
    Ok(Json(v))
}

/// `DELETE /volumes/{name}`.
pub async fn remove(
    State(d): D,
    Path(name): Path<String>,
    DockerQuery(q): DockerQuery<VolumeRemoveQuery>,
) -> ApiResult<StatusCode> {
    d.blocking(move |d| volumes::remove(d, &name, q.force))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /volumes/prune`.
pub async fn prune(
    State(d): D,
    version: Option<Extension<ApiVersion>>,
    DockerQuery(q): DockerQuery<PruneQuery>,
) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    let api_1_42 = version.is_some_and(|Extension(v)| {
        v >= ApiVersion {
            major: 1,
            minor: 42,
        }
    });
    let (deleted, space) = d.blocking(move |d| volumes::prune(d, &f, api_1_42)).await?;
    Ok(Json(
        json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}),
    ))
}
