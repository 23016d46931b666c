//! Paths of Docker's overlay2 on-disk layout under a data root, in one place.

use std::path::{Path, PathBuf};

use crate::ids::hex_of;

/// Every path the store uses, derived from the data root (`/var/lib/berth`).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Layout under `root`.
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }
    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `image/overlay2`.
    pub fn image_dir(&self) -> PathBuf {
        self.root.join("image/overlay2")
    }
    /// `image/overlay2/repositories.json`.
    pub fn repositories_json(&self) -> PathBuf {
        self.image_dir().join("repositories.json")
    }
    /// `image/overlay2/imagedb/content/sha256`.
    pub fn imagedb_content(&self) -> PathBuf {
        self.image_dir().join("imagedb/content/sha256")
    }
    /// `image/overlay2/imagedb/content/sha256/<id hex>`.
    pub fn image_config(&self, id: &str) -> PathBuf {
        self.imagedb_content().join(hex_of(id))
    }
    /// `image/overlay2/imagedb/metadata/sha256`.
    pub fn imagedb_metadata(&self) -> PathBuf {
        self.image_dir().join("imagedb/metadata/sha256")
    }
    /// `image/overlay2/imagedb/metadata/sha256/<id hex>`.
    pub fn image_metadata(&self, id: &str) -> PathBuf {
        self.imagedb_metadata().join(hex_of(id))
    }
    /// `image/overlay2/layerdb/sha256`.
    pub fn layerdb(&self) -> PathBuf {
        self.image_dir().join("layerdb/sha256")
    }
    /// `image/overlay2/layerdb/sha256/<chain hex>`.
    pub fn layer_meta(&self, chain_id: &str) -> PathBuf {
        self.layerdb().join(hex_of(chain_id))
    }
    /// `image/overlay2/layerdb/mounts`.
    pub fn mounts_db(&self) -> PathBuf {
        self.image_dir().join("layerdb/mounts")
    }
    /// `image/overlay2/layerdb/mounts/<container id>`.
    pub fn mount_meta(&self, container_id: &str) -> PathBuf {
        self.mounts_db().join(container_id)
    }
    /// `image/overlay2/distribution`.
    pub fn distribution(&self) -> PathBuf {
        self.image_dir().join("distribution")
    }
    /// `overlay2`: the driver home holding one dir per layer.
    pub fn driver_home(&self) -> PathBuf {
        self.root.join("overlay2")
    }
    /// `overlay2/<cache id>`.
    pub fn cache_dir(&self, cache_id: &str) -> PathBuf {
        self.driver_home().join(cache_id)
    }
    /// `overlay2/l`.
    pub fn links_dir(&self) -> PathBuf {
        self.driver_home().join("l")
    }
    /// `tmp` under the data root: spool space for archives on the same filesystem.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// Create every directory the layout needs.
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for d in [
            self.imagedb_content(),
            self.imagedb_metadata(),
            self.layerdb(),
            self.mounts_db(),
            self.distribution().join("diffid-by-digest/sha256"),
            self.distribution().join("v2metadata-by-diffid/sha256"),
            self.links_dir(),
            self.tmp_dir(),
        ] {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }
}
