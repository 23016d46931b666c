//! The parts of an image config (Docker/OCI `application/vnd.oci.image.config.v1+json`) the
//! store reads. The config bytes themselves are stored verbatim; this is only a view.

use serde::{Deserialize, Serialize};

/// Errors reading an image config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON or not an object of the expected shape.
    #[error("invalid image config")]
    Parse(#[source] serde_json::Error),
    /// `rootfs.type` is not `layers`.
    #[error("invalid image config: rootfs type {0:?} is not \"layers\"")]
    RootfsType(String),
    /// A diff id is not `sha256:<64 hex>`.
    #[error("invalid image config: bad diff id {0:?}")]
    DiffId(String),
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Diff ids, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Comment (commit message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The fields of an image config the store uses; everything else is kept in `rest`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfigView {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Architecture variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created: Option<String>,
    /// Author.
    #[serde(default)]
    pub author: Option<String>,
    /// Docker version that built it.
    #[serde(default)]
    pub docker_version: Option<String>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Container id the image was committed from.
    #[serde(default)]
    pub container: Option<String>,
    /// Run configuration (Env, Cmd, Labels, ...), kept as JSON.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Docker's `container_config`.
    #[serde(default)]
    pub container_config: Option<serde_json::Value>,
    /// Layers.
    #[serde(default)]
    pub rootfs: RootFs,
    /// Build history.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl ImageConfigView {
    /// Parse and validate (rootfs type, diff id shapes).
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let v: ImageConfigView = serde_json::from_slice(bytes).map_err(ConfigError::Parse)?;
        if v.rootfs.kind != "layers" && !(v.rootfs.kind.is_empty() && v.rootfs.diff_ids.is_empty())
        {
            return Err(ConfigError::RootfsType(v.rootfs.kind));
        }
        if let Some(bad) = v
            .rootfs
            .diff_ids
            .iter()
            .find(|d| !crate::ids::is_sha256_digest(d))
        {
            return Err(ConfigError::DiffId(bad.clone()));
        }
        Ok(v)
    }

    /// Labels from `config.Labels`.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.get("Labels"))
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default()
    }

    /// Chain id of the top layer, `None` for an image without layers.
    pub fn top_chain_id(&self) -> Option<String> {
        crate::ids::chain_ids(&self.rootfs.diff_ids).pop()
    }
}
