//! Image configs by content: `imagedb/content/sha256/<id>` holds the config bytes verbatim
//! (the id is their sha256), `imagedb/metadata/sha256/<id>/{parent,lastUpdated}` the local
//! metadata Docker keeps beside them.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::atomic::{self, AtomicError};
use crate::config::{ConfigError, ImageConfigView};
use crate::ids;
use crate::layout::Layout;

/// Errors of the image database.
#[derive(Debug, thiserror::Error)]
pub enum ImageDbError {
    /// The config is not a valid image config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No image with that id.
    #[error("No such image: {0}")]
    NotFound(String),
    /// Reading a config or metadata file failed.
    #[error("image store: reading {path}")]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// The stored bytes do not hash to the id (corruption).
    #[error("image store: {path} does not match its digest")]
    Corrupt {
        /// File.
        path: PathBuf,
    },
    /// Writing failed.
    #[error("image store: writing image")]
    Write(#[from] AtomicError),
    /// Removing failed.
    #[error("image store: removing {path}")]
    Remove {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
}

/// The image database (configs + metadata). Stateless: the files are the truth.
#[derive(Debug)]
pub struct ImageDb {
    layout: Layout,
}

impl ImageDb {
    /// Image db over `layout`.
    pub fn new(layout: Layout) -> Self {
        ImageDb { layout }
    }

    /// Store config bytes verbatim; returns the image id (`sha256:<hex>`). Idempotent.
    pub fn put(&self, config: &[u8]) -> Result<(String, ImageConfigView), ImageDbError> {
        let view = ImageConfigView::parse(config)?;
        let id = ids::sha256_digest(config);
        let path = self.layout.image_config(&id);
        if !path.is_file() {
            atomic::write_file(&path, config)?;
        }
        Ok((id, view))
    }

    /// The config bytes of an image, verified against the id.
    pub fn get_bytes(&self, id: &str) -> Result<Vec<u8>, ImageDbError> {
        let path = self.layout.image_config(id);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageDbError::NotFound(id.to_string()));
            }
            Err(source) => return Err(ImageDbError::Read { path, source }),
        };
        if ids::sha256_digest(&data) != format!("sha256:{}", ids::hex_of(id)) {
            return Err(ImageDbError::Corrupt { path });
        }
        Ok(data)
    }

    /// The parsed config of an image.
    pub fn get(&self, id: &str) -> Result<ImageConfigView, ImageDbError> {
        Ok(ImageConfigView::parse(&self.get_bytes(id)?)?)
    }

    /// Whether an image exists.
    pub fn exists(&self, id: &str) -> bool {
        ids::is_hex64(ids::hex_of(id)) && self.layout.image_config(id).is_file()
    }

    /// Every image id.
    pub fn list(&self) -> Result<Vec<String>, ImageDbError> {
        let dir = self.layout.imagedb_content();
        let rd = fs::read_dir(&dir).map_err(|source| ImageDbError::Read {
            path: dir.clone(),
            source,
        })?;
        Ok(rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| ids::is_hex64(n))
            .map(|n| format!("sha256:{n}"))
            .collect())
    }

    /// Remove an image's config and metadata (config first: it is what makes the image exist).
    pub fn delete(&self, id: &str) -> Result<(), ImageDbError> {
        let path = self.layout.image_config(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ImageDbError::Remove { path, source }),
        }
        atomic::fsync_dir(&self.layout.imagedb_content())?;
        let meta = self.layout.image_metadata(id);
        match fs::remove_dir_all(&meta) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ImageDbError::Remove { path: meta, source }),
        }
    }

    fn write_meta(&self, id: &str, key: &str, value: &str) -> Result<(), ImageDbError> {
        let dir = self.layout.image_metadata(id);
        fs::create_dir_all(&dir).map_err(|source| ImageDbError::Read {
            path: dir.clone(),
            source,
        })?;
        atomic::write_file(&dir.join(key), value.as_bytes())?;
        Ok(())
    }

    fn read_meta(&self, id: &str, key: &str) -> Option<String> {
        fs::read_to_string(self.layout.image_metadata(id).join(key))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Record the parent image (for committed images).
    pub fn set_parent(&self, id: &str, parent: &str) -> Result<(), ImageDbError> {
        self.write_meta(id, "parent", parent)
    }

    /// Parent image id, if recorded.
    pub fn parent(&self, id: &str) -> Option<String> {
        self.read_meta(id, "parent")
    }

    /// Record when the image was last loaded/pulled/tagged (RFC 3339 with nanoseconds).
    pub fn set_last_updated(&self, id: &str) -> Result<(), ImageDbError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        self.write_meta(id, "lastUpdated", &now)
    }

    /// When the image was last updated, if recorded.
    pub fn last_updated(&self, id: &str) -> Option<String> {
        self.read_meta(id, "lastUpdated")
    }

    /// Ids of images whose recorded parent is `id`.
    pub fn children(&self, id: &str) -> Vec<String> {
        self.list()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| self.parent(c).as_deref() == Some(id))
            .collect()
    }
}
