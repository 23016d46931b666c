//! `docker commit`: the container's read-write layer becomes a new layer on top of its image,
//! with a new config (diff id appended, history entry added, run config replaced if given).

use std::io::{BufReader, Write};

use crate::reference;
use crate::store::{Store, StoreError};

/// What `docker commit` takes.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Image the container was created from (`None`: scratch).
    pub image_id: Option<String>,
    /// New run config (`Env`, `Cmd`, ...), already merged with `--change` by the caller;
    /// `None` keeps the image's.
    pub config: Option<serde_json::Value>,
    /// The container's config, recorded as `container_config`.
    pub container_config: Option<serde_json::Value>,
    /// Commit message.
    pub comment: String,
    /// Author.
    pub author: String,
    /// History `created_by` (Docker puts the container's command there).
    pub created_by: String,
    /// Tag for the new image.
    pub repo_tag: Option<String>,
}

impl Store {
    /// Commit a container's changes as a new image; returns its id.
    pub fn commit(&self, container_id: &str, opts: &CommitOptions) -> Result<String, StoreError> {
        let tag = opts
            .repo_tag
            .as_deref()
            .map(|t| reference::parse_normalized(t).map(|r| r.with_default_tag()))
            .transpose()?;
        let rec = self.container_layers(container_id)?;
        let base: serde_json::Value = match &opts.image_id {
            Some(i) => {
                let id = self.resolve(i)?;
                serde_json::from_slice(&self.image_config_bytes(&id)?)
                    .map_err(|e| StoreError::Invalid(format!("image config: {e}")))?
            }
            None => serde_json::json!({
                "architecture": crate::archive::load::host_arch(),
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
        };
        let parent_image = opts
            .image_id
            .as_deref()
            .map(|i| self.resolve(i))
            .transpose()?;
        let upper = self.layout.cache_dir(&rec.mount_id).join("diff");
        let _gc = self.gc.read().unwrap_or_else(|e| e.into_inner());
        let (reader, writer) =
            std::io::pipe().map_err(|e| StoreError::io("creating the commit pipe", e))?;
        let layer = std::thread::scope(|s| {
            let exporter = s.spawn(move || -> Result<(), StoreError> {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, writer);
                crate::apply::export_layer(&upper, &mut w)?;
                w.flush()
                    .map_err(|e| StoreError::io("writing the committed layer", e))
            });
            let layer = self.add_layer(BufReader::new(reader), rec.parent.as_deref(), None);
            let exported = exporter.join().unwrap_or_else(|_| {
                Err(StoreError::io(
                    "exporting the container layer",
                    std::io::Error::other("export thread panicked"),
                ))
            });
            // The extraction's error is the cause; the exporter's is then just a broken pipe.
            let layer = layer?;
            exported?;
            Ok::<_, StoreError>(layer)
        })?;
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut cfg = base;
        let obj = cfg
            .as_object_mut()
            .ok_or_else(|| StoreError::Invalid("image config is not an object".into()))?;
        obj.insert("created".into(), created.clone().into());
        obj.insert("container".into(), container_id.into());
        if !opts.author.is_empty() {
            obj.insert("author".into(), opts.author.clone().into());
        } else {
            obj.remove("author");
        }
        if !opts.comment.is_empty() {
            obj.insert("comment".into(), opts.comment.clone().into());
        } else {
            obj.remove("comment");
        }
        if let Some(c) = &opts.config {
            obj.insert("config".into(), c.clone());
        }
        if let Some(c) = &opts.container_config {
            obj.insert("container_config".into(), c.clone());
        }
        let rootfs = obj
            .entry("rootfs")
            .or_insert_with(|| serde_json::json!({"type": "layers", "diff_ids": []}));
        match rootfs.get_mut("diff_ids").and_then(|d| d.as_array_mut()) {
            Some(d) => d.push(layer.diff_id.clone().into()),
            None => rootfs["diff_ids"] = serde_json::json!([layer.diff_id]),
        }
        let mut h = serde_json::json!({"created": created, "created_by": opts.created_by});
        if !opts.author.is_empty() {
            h["author"] = opts.author.clone().into();
        }
        if !opts.comment.is_empty() {
            h["comment"] = opts.comment.clone().into();
        }
        match obj.get_mut("history").and_then(|v| v.as_array_mut()) {
            Some(a) => a.push(h),
            None => {
                obj.insert("history".into(), serde_json::json!([h]));
            }
        }
        let bytes = serde_json::to_vec(&cfg)
            .map_err(|e| StoreError::Invalid(format!("commit config: {e}")))?;
        let id = self.put_image(&bytes, parent_image.as_deref())?;
        drop(_gc);
        if let Some(r) = tag {
            self.set_ref(r, &id)?;
        }
        Ok(id)
    }
}
