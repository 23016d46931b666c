//! The registry module's error type. Messages users see are Docker's where Docker has one
//! ("unauthorized: authentication required", "pull access denied for x, repository does not
//! exist or may require 'docker login': denied: ...", "manifest for x:y not found: ...").

use crate::distribution::DistributionError;
use crate::layer_store::LayerError;
use crate::reference::ReferenceError;
use crate::store::{ErrorKind, StoreError};

use super::auth::AuthError;
use super::http::HttpError;

/// Errors of pull and push.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference could not be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Credentials could not be decoded.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Talking to the registry failed (connection refused, dropped, TLS).
    #[error("{context}")]
    Http {
        /// Request being made (`GET http://.../v2/`).
        context: String,
        /// Transport error.
        #[source]
        source: HttpError,
    },
    /// The registry answered with an error code (`errcode` JSON or a bare status): message
    /// as Docker prints it, e.g. `unauthorized: authentication required`.
    #[error("{message}")]
    Registry {
        /// HTTP status.
        status: u16,
        /// Docker's errcode value (`UNAUTHORIZED`, `DENIED`, `MANIFEST_UNKNOWN`, ...).
        code: String,
        /// The full message.
        message: String,
    },
    /// Docker's translated pull errors (denied / manifest unknown / name unknown).
    #[error("{0}")]
    NotFound(String),
    /// The manifest is malformed or of an unsupported kind.
    #[error("{0}")]
    Manifest(String),
    /// No manifest in the list matches the requested platform.
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoPlatform(String),
    /// A foreign (non-distributable) layer.
    #[error(
        "refusing to pull foreign layer {digest} (media type {media_type}): non-distributable layers are not supported"
    )]
    ForeignLayer {
        /// Blob digest.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// Downloaded content does not match its digest.
    #[error("{what}: digest mismatch: expected {expected}, got {got}")]
    DigestMismatch {
        /// What was downloaded (`layer sha256:..`, `manifest`, `image config`).
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest of the bytes received.
        got: String,
    },
    /// The diff id of a layer differs from the image config's.
    #[error("layer {digest}: diff id {got} does not match the image config's {expected}")]
    DiffIdMismatch {
        /// Blob digest.
        digest: String,
        /// From the config.
        expected: String,
        /// Computed.
        got: String,
    },
    /// The blob stream ended early or carried too much.
    #[error("{0}")]
    Stream(String),
    /// The store refused (missing image, metadata write failure).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The layer store failed (extracting, committing).
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Distribution metadata could not be read or written.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    /// A local file operation failed (temp files for push).
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A worker task died (panic or cancellation).
    #[error("pull/push worker failed: {0}")]
    Task(String),
    /// The operation was given something it cannot work with.
    #[error("{0}")]
    Invalid(String),
}

impl RegistryError {
    /// The kind the API edge maps to an HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::NotFound(_) => ErrorKind::NotFound,
            RegistryError::Reference(_)
            | RegistryError::Auth(_)
            | RegistryError::NoPlatform(_)
            | RegistryError::Invalid(_) => ErrorKind::InvalidParameter,
            RegistryError::Store(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }

    /// Whether retrying may help (connection trouble, 5xx, a dropped stream).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Http { source, .. } => source.is_transient(),
            RegistryError::Registry { status, .. } => super::http::transient_status(
                http::StatusCode::from_u16(*status)
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
            ),
            RegistryError::Stream(_) => true,
            _ => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RegistryError::Io {
            context: context.into(),
            source,
        }
    }
}
