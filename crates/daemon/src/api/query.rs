//! Query-string extractor with Docker's error shape.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use berth_api::ApiError;
use serde::de::DeserializeOwned;

use super::error::HttpError;

/// Like axum's `Query`, but a bad query string is a 400 `{"message": ...}`.
#[derive(Debug)]
pub struct DockerQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for DockerQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| DockerQuery(v))
            .map_err(|rej| HttpError(ApiError::invalid(rej.body_text())))
    }
}
