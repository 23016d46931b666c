//! Our JSON body extractor: Docker's error shape for bad bodies, unknown fields ignored,
//! an empty body treated as `{}` (the docker CLI sends empty bodies to some POSTs).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use berth_api::ApiError;
use serde::de::DeserializeOwned;

use super::error::HttpError;

/// Largest JSON body accepted (container create bodies are a few KiB).
pub const MAX_JSON_BODY: usize = 10 * 1024 * 1024;

/// JSON request body; malformed → 400 with Docker's message, too large → 413.
#[derive(Debug)]
pub struct DockerJson<T>(pub T);

impl<S, T> FromRequest<S> for DockerJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_limited(req, state).await?;
        let trimmed = bytes.iter().all(u8::is_ascii_whitespace);
        let result = if trimmed {
            serde_json::from_slice::<T>(b"{}")
        } else {
            serde_json::from_slice::<T>(&bytes)
        };
        result
            .map(DockerJson)
            .map_err(|e| HttpError(ApiError::invalid(format!("invalid JSON: {e}"))))
    }
}

/// Reads the whole body up to [`MAX_JSON_BODY`].
pub async fn read_limited<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, HttpError> {
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, MAX_JSON_BODY)));
    Bytes::from_request(req, state).await.map_err(|rej| {
        let status = rej.status();
        if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            HttpError(ApiError::new(
                berth_api::ErrorKind::PayloadTooLarge,
                format!("request body larger than {MAX_JSON_BODY} bytes"),
            ))
        } else {
            HttpError(ApiError::invalid(format!(
                "reading request body: {}",
                rej.body_text()
            )))
        }
    })
}

/// An optional JSON body: absent/empty → `None`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_limited(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        serde_json::from_slice::<T>(&bytes)
            .map(|v| OptionalJson(Some(v)))
            .map_err(|e| HttpError(ApiError::invalid(format!("invalid JSON: {e}"))))
    }
}
