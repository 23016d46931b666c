//! The local volume store on disk: `<data-root>/volumes/<name>/{_data,volume.json}`.
//!
//! The disk is the only source of truth (no in-memory cache to fall out of step after a
//! crash): a volume appears as one `rename` of a fully written temp directory, and disappears
//! as one `rename` to a hidden trash name before its contents are deleted. A crash therefore
//! leaves a whole volume or none; hidden leftovers are swept by [`Store::sweep`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_api::ApiError;
use serde::{Deserialize, Serialize};

use super::local::LocalOptions;
use crate::fsutil::write_atomic;

/// The label Docker (23+) puts on volumes it creates for anonymous mounts; prune in API ≥ 1.42
/// removes only these unless asked for all.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only volume driver berthd has.
pub const LOCAL_DRIVER: &str = "local";

/// The metadata file inside a volume's directory.
const META_FILE: &str = "volume.json";

/// Unique suffixes for temp/trash dirs within this process.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// What can go wrong in the volume store; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// No volume by that name.
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// The name breaks the local driver's rules.
    #[error("create {name}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Docker's wording of the rule.
        reason: String,
    },
    /// A driver other than `local`.
    #[error("error looking up volume plugin {0}: plugin \"{0}\" not found")]
    UnknownDriver(String),
    /// Bad DriverOpts.
    #[error("create {name}: {reason}")]
    InvalidOptions {
        /// The volume.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Referenced by containers.
    #[error("remove {name}: volume is in use - [{}]", refs.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// Ids of the containers using it.
        refs: Vec<String>,
    },
    /// A file system step failed.
    #[error("{step} {}: {source}", path.display())]
    Io {
        /// What was being done.
        step: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// volume.json could not be encoded or decoded.
    #[error("{step} {}: {source}", path.display())]
    Meta {
        /// Encoding or decoding.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// Mounting or unmounting a volume with driver options failed.
    #[error("error while mounting volume '{}': {reason}", path.display())]
    Mount {
        /// The `_data` dir.
        path: PathBuf,
        /// The mount error.
        reason: String,
    },
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> ApiError {
        let msg = e.to_string();
        match e {
            VolumeError::NotFound(_) | VolumeError::UnknownDriver(_) => ApiError::not_found(msg),
            VolumeError::InvalidName { .. } | VolumeError::InvalidOptions { .. } => {
                ApiError::invalid(msg)
            }
            VolumeError::InUse { .. } => ApiError::conflict(msg),
            VolumeError::Io { .. } | VolumeError::Meta { .. } | VolumeError::Mount { .. } => {
                ApiError::internal(msg)
            }
        }
    }
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + use<> {
    let path = path.to_owned();
    move |source| VolumeError::Io { step, path, source }
}

/// A volume's persisted metadata (`volume.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeMeta {
    /// The name (also the directory name).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// Labels as given (None: the request had none; Docker shows `null`).
    pub labels: Option<BTreeMap<String, String>>,
    /// DriverOpts as given.
    pub options: Option<BTreeMap<String, String>>,
    /// RFC 3339, seconds, UTC.
    pub created_at: String,
}

impl VolumeMeta {
    /// Created for an anonymous mount.
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }

    /// Options for the local driver (mount type/device/o), parsed.
    pub fn local_options(&self) -> Result<Option<LocalOptions>, VolumeError> {
        LocalOptions::parse(&self.name, self.options.as_ref())
    }
}

/// What `POST /volumes/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Name (None or empty: a random 64-hex name).
    pub name: Option<String>,
    /// Driver (None or empty: local).
    pub driver: Option<String>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// DriverOpts.
    pub options: Option<BTreeMap<String, String>>,
}

/// Docker's local-driver name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    if name.len() == 1 {
        return Err(VolumeError::InvalidName {
            name: name.to_owned(),
            reason:
                "volume name is too short, names should be at least two alphanumeric characters"
                    .into(),
        });
    }
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        return Err(VolumeError::InvalidName {
            name: name.to_owned(),
            reason: format!(
                "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            ),
        });
    }
    Ok(())
}

/// The volumes directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store over `root` (`<data-root>/volumes`); nothing is touched until first use.
    pub fn new(root: PathBuf) -> Store {
        Store { root }
    }

    /// `<data-root>/volumes`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<data-root>/volumes/<name>/_data`: what containers mount.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Reads one volume.
    pub fn get(&self, name: &str) -> Result<VolumeMeta, VolumeError> {
        if validate_name(name).is_err() {
            return Err(VolumeError::NotFound(name.to_owned()));
        }
        let dir = self.root.join(name);
        let path = dir.join(META_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| VolumeError::Meta {
                step: "decoding",
                path,
                source,
            }),
            // A `_data` dir without our metadata (a data root carried over from Docker): a
            // plain local volume created when the dir was.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.join("_data").is_dir() => {
                let created = std::fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .unwrap_or_else(|_| chrono::Utc::now());
                Ok(VolumeMeta {
                    name: name.to_owned(),
                    driver: LOCAL_DRIVER.to_owned(),
                    labels: None,
                    options: None,
                    created_at: rfc3339(created),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(VolumeError::NotFound(name.to_owned()))
            }
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Result<Vec<VolumeMeta>, VolumeError> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("listing", &self.root)(e)),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(io("listing", &self.root))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || validate_name(&name).is_err() {
                continue;
            }
            match self.get(&name) {
                Ok(v) => out.push(v),
                // Removed concurrently, or not a volume dir at all.
                Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates a volume, or returns the existing one of that name (Docker's create is
    /// idempotent for the same driver). The bool says whether it was created now.
    pub fn create(&self, req: CreateRequest) -> Result<(VolumeMeta, bool), VolumeError> {
        let driver = req
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| LOCAL_DRIVER.to_owned());
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => crate::fsutil::random_hex(32).map_err(io("generating a name", &self.root))?,
        };
        validate_name(&name)?;
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::UnknownDriver(driver));
        }
        match self.get(&name) {
            Ok(v) => return Ok((v, false)),
            Err(VolumeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let meta = VolumeMeta {
            name: name.clone(),
            driver,
            labels: req.labels,
            options: req.options.filter(|o| !o.is_empty()),
            created_at: rfc3339(chrono::Utc::now()),
        };
        meta.local_options()?;
        std::fs::create_dir_all(&self.root).map_err(io("creating", &self.root))?;
        let tmp = self.root.join(format!(
            ".tmp-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let res = (|| {
            std::fs::create_dir(&tmp).map_err(io("creating", &tmp))?;
            let data = tmp.join("_data");
            std::fs::create_dir(&data).map_err(io("creating", &data))?;
            let meta_path = tmp.join(META_FILE);
            let bytes = serde_json::to_vec_pretty(&meta).map_err(|source| VolumeError::Meta {
                step: "encoding",
                path: meta_path.clone(),
                source,
            })?;
            write_atomic(&meta_path, &bytes).map_err(io("writing", &meta_path))?;
            let dest = self.root.join(&name);
            std::fs::rename(&tmp, &dest).map_err(io("renaming into place", &dest))?;
            sync_dir(&self.root)
        })();
        match res {
            Ok(()) => Ok((meta, true)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                // Lost a race with another creator of the same name: theirs is the volume.
                match self.get(&name) {
                    Ok(v) => Ok((v, false)),
                    Err(_) => Err(e),
                }
            }
        }
    }

    /// Deletes a volume's directory (the caller checked references and unmounted it).
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        self.get(name)?;
        let dir = self.root.join(name);
        let trash = self.root.join(format!(
            ".rm-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::rename(&dir, &trash).map_err(io("removing", &dir))?;
        sync_dir(&self.root)?;
        std::fs::remove_dir_all(&trash).map_err(io("removing", &trash))
    }

    /// Deletes hidden temp/trash dirs left by a crash. Best effort.
    pub fn sweep(&self) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for ent in rd.flatten() {
            let n = ent.file_name().to_string_lossy().into_owned();
            if n.starts_with(".tmp-") || n.starts_with(".rm-") {
                let _ = std::fs::remove_dir_all(ent.path());
            }
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), VolumeError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", dir))
}

/// Docker's volume timestamps: RFC 3339, whole seconds.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Bytes used under `dir` (files counted once per inode; symlinks not followed).
pub fn dir_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let Ok(m) = ent.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(ent.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        assert!(validate_name("ab").is_ok());
        assert!(validate_name("my_vol.1-x").is_ok());
        let e = validate_name("a").unwrap_err().to_string();
        assert_eq!(
            e,
            "create a: volume name is too short, names should be at least two alphanumeric characters"
        );
        for bad in ["-ab", "a/b", "../x", ".hidden", "a b", ""] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_get_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("volumes"));
        assert!(s.list().unwrap().is_empty());
        let (v, created) = s
            .create(CreateRequest {
                name: Some("data1".into()),
                labels: Some(BTreeMap::from([("a".into(), "1".into())])),
                ..Default::default()
            })
            .unwrap();
        assert!(created);
        assert_eq!(v.driver, "local");
        assert!(s.data_dir("data1").is_dir());
        // Idempotent: the same name returns the existing volume unchanged.
        let (again, created) = s
            .create(CreateRequest {
                name: Some("data1".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(!created);
        assert_eq!(again, v);
        let (anon, _) = s.create(CreateRequest::default()).unwrap();
        assert_eq!(anon.name.len(), 64);
        let names: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
        let mut want = vec!["data1".to_owned(), anon.name.clone()];
        want.sort();
        assert_eq!(names, want);
        s.remove("data1").unwrap();
        assert!(matches!(s.get("data1"), Err(VolumeError::NotFound(_))));
        assert!(matches!(s.remove("data1"), Err(VolumeError::NotFound(_))));
        // Nothing hidden left behind.
        let left: Vec<_> = std::fs::read_dir(s.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec![anon.name]);
    }

    #[test]
    fn refuses_other_drivers_and_bad_options() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("volumes"));
        let e = s
            .create(CreateRequest {
                name: Some("v1".into()),
                driver: Some("nfs-plugin".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(ApiError::from(e).http_status(), 404);
        let e = s
            .create(CreateRequest {
                name: Some("v1".into()),
                options: Some(BTreeMap::from([("bogus".into(), "1".into())])),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(ApiError::from(e).http_status(), 400);
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn sweep_and_foreign_dirs() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("volumes"));
        std::fs::create_dir_all(s.root().join(".tmp-x-1-1/_data")).unwrap();
        std::fs::create_dir_all(s.root().join("fromdocker/_data")).unwrap();
        assert_eq!(s.list().unwrap().len(), 1);
        assert_eq!(s.get("fromdocker").unwrap().driver, "local");
        s.sweep();
        assert!(!s.root().join(".tmp-x-1-1").exists());
    }
}
