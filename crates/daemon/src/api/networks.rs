//! Network routes: parse, call `crate::networks::create`, serialize.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::Filters;
use berth_api::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use berth_api::query::PruneQuery;
use serde_json::json;

use super::error::ApiResult;
use super::json::DockerJson;
use super::query::DockerQuery;
use crate::daemon::Daemon;
use crate::networks::create as ops;

type D = State<Arc<Daemon>>;

/// `GET /networks`.
pub async fn list(State(d): D, DockerQuery(q): DockerQuery<PruneQuery>) -> ApiResult<Response> {
    let filters = Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    Ok(Json(ops::list(&d, &filters)?).into_response())
}

/// `GET /networks/{id}`.
pub async fn inspect(State(d): D, Path(id): Path<String>) -> ApiResult<Response> {
    let net = d.networks.get(&id)?;
    Ok(Json(net.to_json(ops::containers_json(&d, &net))).into_response())
}

/// `POST /networks/create`.
pub async fn create(
    State(d): D,
    DockerJson(body): DockerJson<NetworkCreateRequest>,
) -> ApiResult<Response> {
    let v = ops::create(&d, body).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `DELETE /networks/{id}`.
pub async fn remove(State(d): D, Path(id): Path<String>) -> ApiResult<Response> {
    ops::remove(&d, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /networks/prune`.
pub async fn prune(State(d): D, DockerQuery(q): DockerQuery<PruneQuery>) -> ApiResult<Response> {
    let filters = Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    let deleted = ops::prune(&d, &filters).await?;
    Ok(Json(json!({"NetworksDeleted": deleted})).into_response())
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    State(d): D,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<NetworkConnectRequest>,
) -> ApiResult<Response> {
    ops::connect(&d, &id, &body.container, body.endpoint_config).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    State(d): D,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<NetworkDisconnectRequest>,
) -> ApiResult<Response> {
    ops::disconnect(&d, &id, &body.container, body.force == Some(true)).await?;
    Ok(StatusCode::OK.into_response())
}
