//! The HTTP API: one route table per resource, the `/v1.xx` prefix, Docker's headers on every
//! response, and a 501 fallback for everything not implemented (never a fake success).
//!
//! Handlers parse, call the backend (`crate::containers`, `crate::images`), and serialize.

pub mod archive;
pub mod auth;
pub mod containers;
pub mod distribution;
pub mod error;
pub mod events;
pub mod exec;
pub mod images;
pub mod json;
pub mod networks;
pub mod query;
pub mod stream;
pub mod system;
pub mod transfer;
pub mod version;
pub mod volumes;

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
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/stats", get(containers::stats))
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/containers/{id}/export", get(transfer::export))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::get).put(archive::put),
        )
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
        .route("/images/get", get(transfer::save))
        .route("/images/create", post(transfer::create))
        .route("/commit", post(transfer::commit))
        .route("/images/json", get(images::list))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::by_name)
                .post(images::by_name)
                .delete(images::remove),
        )
}

fn volume_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
}

/// berthd has no plugins: looking one up by name is an honest 404 (the docker CLI's
/// type-less `inspect` walks these after containers, images, networks and volumes).
fn lookup_only_routes() -> Router<Arc<Daemon>> {
    async fn plugin(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
        error_response(&ApiError::not_found(format!("plugin \"{name}\" not found")))
    }
    Router::new().route("/plugins/{name}/json", get(plugin))
}

fn network_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
}

fn system_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(events::events))
        .route("/system/df", get(system::df))
        .route("/auth", post(auth::auth))
}

/// The whole route table (paths without the version prefix).
pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .merge(system_routes())
        .merge(container_routes())
        .merge(exec_routes())
        .merge(image_routes())
        .merge(network_routes())
        .merge(volume_routes())
        .merge(lookup_only_routes())
        .fallback(not_implemented)
        .method_not_allowed_fallback(not_implemented)
        // Bodies are bounded by our own extractors (json::MAX_JSON_BODY) or streamed (load).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(daemon)
}

/// Error responses produced outside our handlers (axum's extractor rejections: a path that
/// is not UTF-8, a bad query) get Docker's JSON shape too.
async fn json_errors(resp: Response) -> Response {
    use http_body_util::BodyExt;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (_, body) = resp.into_parts();
    let limited = http_body_util::Limited::new(body, 64 * 1024);
    let text = match limited.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let kind = match status.as_u16() {
        404 => berth_api::ErrorKind::NotFound,
        409 => berth_api::ErrorKind::Conflict,
        413 => berth_api::ErrorKind::PayloadTooLarge,
        501 => berth_api::ErrorKind::NotImplemented,
        503 => berth_api::ErrorKind::Unavailable,
        s if s < 500 => berth_api::ErrorKind::InvalidParameter,
        _ => berth_api::ErrorKind::Internal,
    };
    let mut r = error_response(&ApiError::new(kind, text.trim().to_owned()));
    *r.status_mut() = status;
    r
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
    let resp = match ver.map(version::check_version) {
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
            let _busy = crate::idle::busy();
            let resp = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            tracing::debug!(%method, %uri, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
            resp
        }
    };
    let mut resp = json_errors(resp).await;
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static("Docker/berth-0.1.0 (linux)"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Flags};
    use clap::Parser;
    use http_body_util::BodyExt;

    fn daemon(dir: &std::path::Path) -> Arc<Daemon> {
        let flags = Flags::parse_from([
            "berthd",
            "--data-root",
            dir.to_str().unwrap(),
            "--exec-root",
            dir.join("exec").to_str().unwrap(),
        ]);
        let config = Config::merge(&flags, Default::default()).unwrap();
        let (store, _) =
            berth_image::Store::open(&config.data_root, berth_image::StoreOptions::default())
                .unwrap();
        Daemon::new(config, store)
    }

    async fn call(d: &Arc<Daemon>, method: &str, uri: &str) -> (u16, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = handle(router(d.clone()), req).await;
        let status = resp.status().as_u16();
        assert_eq!(resp.headers()["Api-Version"], "1.41");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn routes_versions_and_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let d = daemon(dir.path());
        assert_eq!(call(&d, "GET", "/v1.41/containers/json").await.0, 200);
        assert_eq!(call(&d, "GET", "/containers/json?all=1").await.0, 200);
        let (s, v) = call(&d, "GET", "/v1.99/containers/json").await;
        assert_eq!(s, 400);
        assert!(v["message"].as_str().unwrap().contains("too new"));
        let (s, v) = call(&d, "GET", "/v1.41/secrets").await;
        assert_eq!(
            (s, v["message"].as_str().unwrap()),
            (501, "not implemented: GET /secrets")
        );
        // A known path with an unsupported method is not a fake success either.
        let (s, v) = call(&d, "PUT", "/v1.41/containers/json").await;
        assert_eq!(
            (s, v["message"].as_str().unwrap()),
            (501, "not implemented: PUT /containers/json")
        );
        let (s, v) = call(&d, "GET", "/v1.41/images/nope/json").await;
        assert_eq!(
            (s, v["message"].as_str().unwrap()),
            (404, "No such image: nope:latest")
        );
    }
}
