//! The HTTP API: one route table per resource, the `/v1.xx` prefix, Docker's headers on every
//! response, and a 501 fallback for everything not implemented (never a fake success).
//!
//! Handlers parse, call the backend (`crate::containers`, `crate::images`), and serialize.

pub mod containers;
pub mod error;
pub mod exec;
pub mod images;
pub mod json;
pub mod query;
pub mod stream;
pub mod system;
pub mod version;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post};
use berth_api::{API_VERSION, ApiError};
use tower::ServiceExt;

use crate::daemon::Daemon;
use error::error_response;

async fn not_implemented(method: Method, uri: Uri) -> Response {
    error_response(&ApiError::not_implemented(format!(
        "not implemented: {method} {}",
        uri.path()
    )))
}

fn container_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/containers/{id}", delete(containers::remove))
}

fn exec_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
}

fn image_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/images/load", post(images::load))
        .route("/images/json", get(images::list))
        .route("/images/{*rest}", get(images::by_name).post(images::by_name).delete(images::remove))
}

fn system_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
}

/// The whole route table (paths without the version prefix).
pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .merge(system_routes())
        .merge(container_routes())
        .merge(exec_routes())
        .merge(image_routes())
        .fallback(not_implemented)
        .method_not_allowed_fallback(not_implemented)
        .with_state(daemon)
}

/// Serves one request: strips and checks `/v1.xx`, routes, adds Docker's headers.
pub async fn handle<B>(router: Router, req: Request<B>) -> Response
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let mut req = req.map(Body::new);
    let path = req.uri().path().to_owned();
    let (ver, rest) = version::split_version(&path);
    let mut resp = match ver.map(version::check_version) {
        Some(Err(e)) => error_response(&e),
        other => {
            let v = match other {
                Some(Ok(v)) => v,
                _ => version::ApiVersion::max(),
            };
            if ver.is_some() {
                let pq = match req.uri().query() {
                    Some(q) => format!("{rest}?{q}"),
                    None => rest.to_owned(),
                };
                let mut parts = req.uri().clone().into_parts();
                parts.path_and_query = pq.parse().ok();
                if let Ok(uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
            req.extensions_mut().insert(v);
            let method = req.method().clone();
            let uri = req.uri().clone();
            let started = std::time::Instant::now();
            let resp = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            tracing::debug!(%method, %uri, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
            resp
        }
    };
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", HeaderValue::from_static("Docker/berth-0.1.0 (linux)"));
    resp
}
