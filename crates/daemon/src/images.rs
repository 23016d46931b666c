//! The image side berthd needs, as one trait, so the handlers and the container code do not
//! care how the image store (crate `berth-image`) spells things. [`unavailable`] stands in
//! while no store is linked in.

use std::path::{Path, PathBuf};

use berth_api::ApiError;
use berth_api::models::{ImageDeleteResponseItem, ImageInspect, ImageSummary};

/// What container creation needs from an image's config.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// `sha256:<hex>`.
    pub id: String,
    /// Env as `K=V`.
    pub env: Vec<String>,
    /// Default command.
    pub cmd: Vec<String>,
    /// Default entrypoint.
    pub entrypoint: Vec<String>,
    /// Default working directory.
    pub working_dir: String,
    /// Default user.
    pub user: String,
    /// Stop signal.
    pub stop_signal: Option<String>,
    /// Labels.
    pub labels: std::collections::HashMap<String, String>,
    /// Exposed ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Declared volumes.
    pub volumes: Vec<String>,
}

/// Paths of a container's layers (for inspect's GraphDriver).
#[derive(Debug, Clone, Default)]
pub struct ContainerLayers {
    /// `lowerdir` (colon-separated, init layer first).
    pub lower_dir: String,
    /// The overlay mount point.
    pub merged_dir: PathBuf,
    /// The rw layer's diff dir.
    pub upper_dir: PathBuf,
    /// overlay's work dir.
    pub work_dir: PathBuf,
}

/// Image store operations used by berthd.
pub trait ImageBackend: Send + Sync + 'static {
    /// Loads a `docker save` archive; returns the progress messages (`Loaded image: x:y`).
    fn load(&self, archive: &Path) -> Result<Vec<String>, ApiError>;
    /// Resolves a reference (name, name:tag, id, id prefix) to its config; NotFound with
    /// Docker's text `No such image: busybox:latest`.
    fn resolve(&self, reference: &str) -> Result<ImageConfig, ApiError>;
    /// `GET /images/json`.
    fn list(&self, all: bool) -> Result<Vec<ImageSummary>, ApiError>;
    /// `GET /images/{name}/json`.
    fn inspect(&self, reference: &str) -> Result<ImageInspect, ApiError>;
    /// `POST /images/{name}/tag`.
    fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), ApiError>;
    /// `DELETE /images/{name}`; `in_use` tells whether containers use the image.
    fn delete(
        &self,
        reference: &str,
        force: bool,
        noprune: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, ApiError>;
    /// Creates the init + rw layers of a container on top of `image_id`.
    fn create_container_layers(
        &self,
        container_id: &str,
        image_id: &str,
    ) -> Result<ContainerLayers, ApiError>;
    /// Mounts the container's rootfs; returns the merged dir.
    fn mount(&self, container_id: &str) -> Result<PathBuf, ApiError>;
    /// Unmounts the container's rootfs (no error if not mounted).
    fn unmount(&self, container_id: &str) -> Result<(), ApiError>;
    /// Removes the container's init + rw layers.
    fn remove_container_layers(&self, container_id: &str) -> Result<(), ApiError>;
    /// Number of images (for `/info`).
    fn count(&self) -> usize {
        self.list(false).map(|l| l.len()).unwrap_or(0)
    }
}

/// A backend for builds without an image store: every call is 503 with the reason.
pub fn unavailable() -> Box<dyn ImageBackend> {
    Box::new(Unavailable)
}

struct Unavailable;

fn no_store() -> ApiError {
    ApiError::unavailable("image store not available in this berthd build")
}

impl ImageBackend for Unavailable {
    fn load(&self, _: &Path) -> Result<Vec<String>, ApiError> {
        Err(no_store())
    }
    fn resolve(&self, reference: &str) -> Result<ImageConfig, ApiError> {
        Err(ApiError::not_found(format!("No such image: {reference}")))
    }
    fn list(&self, _: bool) -> Result<Vec<ImageSummary>, ApiError> {
        Ok(Vec::new())
    }
    fn inspect(&self, reference: &str) -> Result<ImageInspect, ApiError> {
        Err(ApiError::not_found(format!("No such image: {reference}")))
    }
    fn tag(&self, source: &str, _: &str, _: &str) -> Result<(), ApiError> {
        Err(ApiError::not_found(format!("No such image: {source}")))
    }
    fn delete(
        &self,
        reference: &str,
        _: bool,
        _: bool,
        _: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, ApiError> {
        Err(ApiError::not_found(format!("No such image: {reference}")))
    }
    fn create_container_layers(&self, _: &str, _: &str) -> Result<ContainerLayers, ApiError> {
        Err(no_store())
    }
    fn mount(&self, _: &str) -> Result<PathBuf, ApiError> {
        Err(no_store())
    }
    fn unmount(&self, _: &str) -> Result<(), ApiError> {
        Ok(())
    }
    fn remove_container_layers(&self, _: &str) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The image backend for this build: the real store once `berth-image` exposes it; until
/// then every image operation answers 503/404 with the reason.
pub fn open_store_or_unavailable_for(_flags: &crate::config::Flags) -> Box<dyn ImageBackend> {
    unavailable()
}
