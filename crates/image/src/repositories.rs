//! `repositories.json`: `{"Repositories": {"busybox": {"busybox:latest": "sha256:<id>",
//! "busybox@sha256:<digest>": "sha256:<id>"}}}`, keyed by familiar names as Docker writes it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::{self, AtomicError};
use crate::reference::{self, Reference};

/// Errors loading or saving the reference store.
#[derive(Debug, thiserror::Error)]
pub enum RepositoriesError {
    /// repositories.json could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// repositories.json is not valid JSON of the expected shape.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing repositories.json failed.
    #[error("writing repositories.json")]
    Write(#[from] AtomicError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(rename = "Repositories", default)]
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

/// In-memory copy of repositories.json: full reference → image id.
#[derive(Debug, Default, Clone)]
pub struct Repositories {
    refs: BTreeMap<Reference, String>,
}

impl Repositories {
    /// Load from `path` (absent file = empty). Entries that do not parse are skipped with a
    /// warning, like Docker does.
    pub fn load(path: &Path) -> Result<Self, RepositoriesError> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(RepositoriesError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let f: File = serde_json::from_slice(&data).map_err(|source| RepositoriesError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let mut refs = BTreeMap::new();
        for (_, entries) in f.repositories {
            for (r, id) in entries {
                match reference::parse_normalized(&r) {
                    Ok(parsed) => {
                        refs.insert(parsed, id);
                    }
                    Err(e) => tracing::warn!(reference = %r, error = %e, "skipping bad reference"),
                }
            }
        }
        Ok(Repositories { refs })
    }

    /// Write atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), RepositoriesError> {
        let mut f = File::default();
        for (r, id) in &self.refs {
            f.repositories
                .entry(r.familiar_name())
                .or_default()
                .insert(r.familiar_string(), id.clone());
        }
        let data = serde_json::to_vec(&f).map_err(|source| RepositoriesError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        atomic::write_file(path, &data)?;
        Ok(())
    }

    /// Image id a reference points at.
    pub fn get(&self, r: &Reference) -> Option<&str> {
        self.refs.get(r).map(String::as_str)
    }

    /// Point `r` at `id`, returning the previous id.
    pub fn set(&mut self, r: Reference, id: &str) -> Option<String> {
        self.refs.insert(r, id.to_string())
    }

    /// Remove `r`, returning the id it pointed at.
    pub fn remove(&mut self, r: &Reference) -> Option<String> {
        self.refs.remove(r)
    }

    /// All references to `id`.
    pub fn refs_of(&self, id: &str) -> Vec<Reference> {
        self.refs
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every (reference, id).
    pub fn iter(&self) -> impl Iterator<Item = (&Reference, &str)> {
        self.refs.iter().map(|(k, v)| (k, v.as_str()))
    }
}
