//! The daemon's side of the image store (`berth_image::Store`): error mapping to API kinds,
//! and the image defaults container creation needs.

use std::path::PathBuf;

use berth_api::ApiError;
use berth_image::{ImageUse, InitLayerSpec, Store, StoreError};
use serde_json::Value;

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

/// Maps a store error to the API's kinds; the store's messages are already Docker's.
pub fn api_error(e: StoreError) -> ApiError {
    use berth_image::ErrorKind as K;
    let message = match &e {
        StoreError::NoSuchImage(_) | StoreError::Conflict(_) | StoreError::Invalid(_) => {
            e.to_string()
        }
        other => error_chain(other),
    };
    match e.kind() {
        K::NotFound => ApiError::not_found(message),
        K::InvalidParameter => ApiError::invalid(message),
        K::Conflict => ApiError::conflict(message),
        K::Internal => ApiError::internal(message),
    }
}

/// "a: b: c" for an error and its sources.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.ends_with(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Resolves `reference` and reads the run defaults from its config.
pub fn resolve(store: &Store, reference: &str) -> Result<ImageConfig, ApiError> {
    let id = store.resolve(reference).map_err(api_error)?;
    let view = store.image_config(&id).map_err(api_error)?;
    let c = view.config.unwrap_or(Value::Null);
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    Ok(ImageConfig {
        id,
        env: strings(c.get("Env")),
        cmd: strings(c.get("Cmd")),
        entrypoint: strings(c.get("Entrypoint")),
        working_dir: s("WorkingDir"),
        user: s("User"),
        stop_signal: Some(s("StopSignal")).filter(|x| !x.is_empty()),
        labels: c
            .get("Labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default(),
        exposed_ports: keys(c.get("ExposedPorts")),
        volumes: keys(c.get("Volumes")),
    })
}

/// Creates init + rw layers and reports their paths. `ephemeral` (AutoRemove): unsynced
/// layers mounted `volatile` (see [`InitLayerSpec::ephemeral`]).
pub fn create_container_layers(
    store: &Store,
    container_id: &str,
    image_id: &str,
    ephemeral: bool,
) -> Result<ContainerLayers, ApiError> {
    let spec = InitLayerSpec {
        ephemeral,
        ..InitLayerSpec::default()
    };
    let rec = store
        .create_container_layers(container_id, Some(image_id), &spec)
        .map_err(api_error)?;
    let layout = store.layout();
    let home = layout.driver_home();
    let lowers = berth_image::container_layers::lowers(layout, &rec)
        .map_err(|e| api_error(StoreError::from(e)))?;
    let dir = layout.cache_dir(&rec.mount_id);
    Ok(ContainerLayers {
        lower_dir: lowers
            .iter()
            .map(|l| home.join(l).display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
        merged_dir: dir.join("merged"),
        upper_dir: dir.join("diff"),
        work_dir: dir.join("work"),
    })
}

/// How containers use images, for delete conflicts and `Containers` counts.
pub fn uses(daemon: &crate::daemon::Daemon) -> Vec<ImageUse> {
    daemon
        .containers
        .all()
        .iter()
        .map(|e| {
            e.with(|r| ImageUse {
                container_id: r.id.clone(),
                image_id: r.image_id.clone(),
                running: r.state.running,
            })
        })
        .collect()
}
