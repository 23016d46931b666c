//! Response bodies of our own where the bollard-stubs models do not fit Docker's wire shape.

use serde::{Deserialize, Serialize};

/// Body of `POST /containers/{id}/wait`: Docker always sends both fields... except `Error`,
/// which is present (possibly null) only when there is one; the CLI reads `Error.Message`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitResponse {
    /// Exit status of the container.
    #[serde(rename = "StatusCode")]
    pub status_code: i64,
    /// Set when waiting failed.
    #[serde(rename = "Error", skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

/// The `Error` object of a wait response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitError {
    /// What went wrong.
    #[serde(rename = "Message")]
    pub message: String,
}

/// `POST /containers/create` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateResponse {
    /// The new container's id.
    #[serde(rename = "Id")]
    pub id: String,
    /// Non-fatal notes for the user; Docker always sends a list (maybe empty).
    #[serde(rename = "Warnings")]
    pub warnings: Vec<String>,
}

/// `POST /containers/{id}/exec` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdResponse {
    /// The new object's id.
    #[serde(rename = "Id")]
    pub id: String,
}

/// One line of a JSON-lines progress stream (`/images/load`, `/images/create`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressMessage {
    /// Status text (e.g. `Loaded image: busybox:latest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Free text stream output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Object id the line is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Error text, when the operation failed midway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Structured error.
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
}

/// `errorDetail` of a progress line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The error text.
    pub message: String,
}
