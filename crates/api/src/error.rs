//! Error kinds shared by every backend and their single mapping to HTTP.
//!
//! Backends never pick HTTP statuses: they tag errors with an [`ErrorKind`] and the API edge
//! turns that into a status with [`ErrorKind::http_status`] (the same idea as moby's
//! `errdefs` + `httpstatus`), with Docker's JSON body `{"message": "..."}`.

use serde::{Deserialize, Serialize};

/// What kind of failure an error is; decides the HTTP status and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object does not exist (404).
    NotFound,
    /// The request itself is wrong: bad parameter, malformed body (400).
    InvalidParameter,
    /// The request conflicts with the current state, e.g. a name in use (409).
    Conflict,
    /// berthd does not implement this (yet) (501).
    NotImplemented,
    /// A dependency is temporarily unavailable (503).
    Unavailable,
    /// The operation is not allowed (403).
    Forbidden,
    /// Credentials were refused (401), e.g. by a registry at `POST /auth`.
    Unauthorized,
    /// The request body is too large (413).
    PayloadTooLarge,
    /// Anything else: a bug or an OS failure inside berthd (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status Docker answers with for this kind of error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::InvalidParameter => 400,
            ErrorKind::Conflict => 409,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unauthorized => 401,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Internal => 500,
        }
    }
}

/// An error as the API returns it: a kind (→ status) and the message the client shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Decides the HTTP status.
    pub kind: ErrorKind,
    /// Shown to the user verbatim by the docker CLI (`Error response from daemon: <message>`).
    pub message: String,
}

/// Docker's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error text.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// 400.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// 501.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }
    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
    /// Docker's JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            message: self.message.clone(),
        }
    }
    /// The JSON body serialized (`{"message":"..."}`).
    pub fn body_json(&self) -> String {
        // Serializing a struct with one String field cannot fail; fall back to a fixed text
        // anyway rather than panic.
        serde_json::to_string(&self.body())
            .unwrap_or_else(|_| String::from("{\"message\":\"internal error\"}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_docker() {
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
        assert_eq!(ErrorKind::InvalidParameter.http_status(), 400);
        assert_eq!(ErrorKind::Conflict.http_status(), 409);
        assert_eq!(ErrorKind::NotImplemented.http_status(), 501);
        assert_eq!(ErrorKind::Unavailable.http_status(), 503);
        assert_eq!(ErrorKind::Forbidden.http_status(), 403);
        assert_eq!(ErrorKind::Internal.http_status(), 500);
    }

    #[test]
    fn body_is_docker_shape_and_escaped() {
        let e = ApiError::not_found("No such container: \"x\"");
        assert_eq!(e.body_json(), r#"{"message":"No such container: \"x\""}"#);
    }
}
