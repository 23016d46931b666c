//! `docker import`: a rootfs tarball (plain or compressed) becomes a one-layer image with a
//! fresh config.

use std::io::Read;

use crate::reference;
use crate::store::{Store, StoreError};

/// What `docker import` takes besides the tarball.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Reference to tag the image with (`repo[:tag]`).
    pub repo_tag: Option<String>,
    /// The run config (`Env`, `Cmd`, ...) after `--change` instructions were applied by the
    /// caller; `None` leaves it empty.
    pub config: Option<serde_json::Value>,
    /// Commit message (Docker defaults to `Imported from <src>`).
    pub message: Option<String>,
    /// Where the tarball came from (`-` for stdin, a URL) for the default message.
    pub source: String,
}

impl Store {
    /// Import a rootfs tarball; returns the new image id.
    pub fn import<R: Read>(&self, reader: R, opts: &ImportOptions) -> Result<String, StoreError> {
        let tag = opts
            .repo_tag
            .as_deref()
            .map(|t| reference::parse_normalized(t).map(|r| r.with_default_tag()))
            .transpose()?;
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let message = opts.message.clone().unwrap_or_else(|| {
            let src = if opts.source.is_empty() {
                "-"
            } else {
                &opts.source
            };
            format!("Imported from {src}")
        });
        let id = {
            let _gc = self.gc.read().unwrap_or_else(|e| e.into_inner());
            let layer = self.add_layer(
                std::io::BufReader::with_capacity(1 << 20, reader),
                None,
                None,
            )?;
            let config = serde_json::json!({
                "architecture": super::load::host_arch(),
                "comment": message,
                "config": opts.config,
                "created": created,
                "history": [{"created": created, "comment": message}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            });
            let bytes = serde_json::to_vec(&config)
                .map_err(|e| StoreError::Invalid(format!("import config: {e}")))?;
            self.put_image(&bytes, None)?
        };
        if let Some(r) = tag {
            self.set_ref(r, &id)?;
        }
        Ok(id)
    }
}
