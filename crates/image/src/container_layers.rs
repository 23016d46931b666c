//! Container layers: per container an init layer `overlay2/<mount id>-init` (placeholders the
//! runtime bind-mounts over, as Docker's initlayer makes) and a read-write layer
//! `overlay2/<mount id>` whose `lower` stacks init + image layers. Recorded in
//! `layerdb/mounts/<container id>/{mount-id,init-id,parent}`; that record is the commit
//! point, written last (driver dirs without a record are garbage collected on open).

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::atomic::{self, AtomicError, Durability};
use crate::ids;
use crate::layer_store::{self, LayerError, LayerStore, TempDirGuard};
use crate::layout::Layout;

/// Errors creating, reading or removing container layers.
#[derive(Debug, thiserror::Error)]
pub enum ContainerLayerError {
    /// Layers for this container exist already.
    #[error("container layers for {0} already exist")]
    Exists(String),
    /// No layers for this container.
    #[error("no container layers for {0}")]
    NotFound(String),
    /// The container id is not a plain name.
    #[error("invalid container id {0:?}")]
    BadId(String),
    /// Writing the init layer or driver dirs failed.
    #[error("container layers: creating {path}")]
    Create {
        /// Path created.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Reading the mount record failed.
    #[error("container layers: reading {path}")]
    Read {
        /// File read.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// The image's layer is missing or broken.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Committing the mount record failed.
    #[error("container layers: committing mount record")]
    Commit(#[from] AtomicError),
}

/// What the init layer holds beyond Docker's fixed set of placeholders.
#[derive(Debug, Clone)]
pub struct InitLayerSpec {
    /// Create `/.dockerenv` (programs use it to detect they run in a container).
    pub dockerenv: bool,
    /// Owner of the placeholders (the remapped root with user namespaces).
    pub uid: u32,
    /// Group of the placeholders.
    pub gid: u32,
    /// The container is removed when it exits (AutoRemove) and never outlives a host crash:
    /// its layers are created without fsync and mounted with overlay's `volatile` option (no
    /// sync at copy-up, and none of the whole upper filesystem at unmount).
    pub ephemeral: bool,
}

impl Default for InitLayerSpec {
    fn default() -> Self {
        InitLayerSpec {
            dockerenv: true,
            uid: 0,
            gid: 0,
            ephemeral: false,
        }
    }
}

/// Marker file in the mount record of an ephemeral container (see [`InitLayerSpec::ephemeral`]).
const EPHEMERAL_FILE: &str = "ephemeral";

/// The mount record of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRecord {
    /// Container id.
    pub container_id: String,
    /// Driver dir of the read-write layer.
    pub mount_id: String,
    /// Driver dir of the init layer (`<mount id>-init`).
    pub init_id: Option<String>,
    /// Chain id of the image's top layer (none for `FROM scratch`).
    pub parent: Option<String>,
    /// Created for an AutoRemove container: mounted `volatile`, never synced.
    pub ephemeral: bool,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !atomic::is_tmp_name(id)
}

/// Docker's init layer content: (path, kind) with kind `dir`, `file` or a symlink target.
const INIT_ENTRIES: &[(&str, &str)] = &[
    ("dev/pts", "dir"),
    ("dev/shm", "dir"),
    ("proc", "dir"),
    ("sys", "dir"),
    ("etc/resolv.conf", "file"),
    ("etc/hosts", "file"),
    ("etc/hostname", "file"),
    ("dev/console", "file"),
    ("etc/mtab", "/proc/mounts"),
];

fn write_init_content(diff: &Path, spec: &InitLayerSpec) -> io::Result<()> {
    let mut entries: Vec<(&str, &str)> = INIT_ENTRIES.to_vec();
    if spec.dockerenv {
        entries.push((".dockerenv", "file"));
    }
    // Created by us: already owned by our uid/gid, which is what is asked without user
    // namespaces (root:root); only a remapped root needs the chowns (a dozen syscalls less).
    // SAFETY: geteuid/getegid have no preconditions.
    let ours = unsafe { libc::geteuid() == spec.uid && libc::getegid() == spec.gid };
    let chown = |p: &Path| -> io::Result<()> {
        if ours {
            return Ok(());
        }
        std::os::unix::fs::lchown(p, Some(spec.uid), Some(spec.gid))
    };
    for (rel, kind) in entries {
        let path = diff.join(rel);
        if let Some(parent) = path.parent()
            && !parent.exists()
        {
            fs::create_dir_all(parent)?;
            fs::set_permissions(parent, fs::Permissions::from_mode(0o755))?;
            chown(parent)?;
        }
        match kind {
            "dir" => {
                fs::create_dir_all(&path)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            }
            "file" => {
                fs::File::create(&path)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            }
            target => symlink(target, &path)?,
        }
        chown(&path)?;
    }
    Ok(())
}

/// Create the init and read-write layers of `container_id` on top of the layer `parent`
/// (the image's top chain id; `None` for scratch).
pub fn create(
    layout: &Layout,
    layers: &LayerStore,
    container_id: &str,
    parent: Option<&str>,
    init: &InitLayerSpec,
) -> Result<MountRecord, ContainerLayerError> {
    if !valid_id(container_id) {
        return Err(ContainerLayerError::BadId(container_id.to_string()));
    }
    let record_dir = layout.mount_meta(container_id);
    if record_dir.exists() {
        return Err(ContainerLayerError::Exists(container_id.to_string()));
    }
    let parent_info = parent.map(|p| layers.get(p)).transpose()?;
    let durability = if init.ephemeral {
        Durability::Volatile
    } else {
        Durability::Durable
    };
    let mount_id = ids::random_id();
    let init_id = format!("{mount_id}-init");
    let create_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContainerLayerError::Create { path, source }
    };

    // Init layer.
    let init_final = layout.cache_dir(&init_id);
    let init_tmp = atomic::tmp_path_for(&init_final);
    let init_guard = TempDirGuard(Some(init_tmp.clone()));
    fs::create_dir_all(init_tmp.join("diff")).map_err(create_err(&init_tmp))?;
    write_init_content(&init_tmp.join("diff"), init).map_err(create_err(&init_tmp))?;
    layers.finish_driver_dir(&init_tmp, &init_id, parent_info.as_ref())?;
    atomic::rename_into_place_as(&init_tmp, &init_final, durability)?;
    init_guard.disarm();
    let init_cleanup = TempDirGuard(Some(init_final.clone()));

    // Read-write layer.
    let rw_final = layout.cache_dir(&mount_id);
    let rw_tmp = atomic::tmp_path_for(&rw_final);
    let rw_guard = TempDirGuard(Some(rw_tmp.clone()));
    for d in ["diff", "merged"] {
        fs::create_dir_all(rw_tmp.join(d)).map_err(create_err(&rw_tmp))?;
    }
    let link = layer_store::create_short_link(layout, &mount_id)?;
    fs::write(rw_tmp.join("link"), &link).map_err(create_err(&rw_tmp))?;
    fs::create_dir(rw_tmp.join("work")).map_err(create_err(&rw_tmp))?;
    let lower = layer_store::lower_string_above(layout, &init_id)?;
    fs::write(rw_tmp.join("lower"), lower).map_err(create_err(&rw_tmp))?;
    atomic::rename_into_place_as(&rw_tmp, &rw_final, durability)?;
    rw_guard.disarm();
    let rw_cleanup = TempDirGuard(Some(rw_final));

    // Commit point.
    let mut files: Vec<(&str, &[u8])> = vec![
        ("mount-id", mount_id.as_bytes()),
        ("init-id", init_id.as_bytes()),
    ];
    if let Some(p) = parent {
        files.push(("parent", p.as_bytes()));
    }
    if init.ephemeral {
        files.push((EPHEMERAL_FILE, b"1"));
    }
    atomic::write_dir_as(&record_dir, &files, durability)?;
    init_cleanup.disarm();
    rw_cleanup.disarm();
    Ok(MountRecord {
        container_id: container_id.to_string(),
        mount_id,
        init_id: Some(init_id),
        parent: parent.map(str::to_string),
        ephemeral: init.ephemeral,
    })
}

fn read_opt(path: &Path) -> Result<Option<String>, ContainerLayerError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ContainerLayerError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Read the mount record of a container.
pub fn get(layout: &Layout, container_id: &str) -> Result<MountRecord, ContainerLayerError> {
    if !valid_id(container_id) {
        return Err(ContainerLayerError::BadId(container_id.to_string()));
    }
    let dir = layout.mount_meta(container_id);
    let Some(mount_id) = read_opt(&dir.join("mount-id"))? else {
        return Err(ContainerLayerError::NotFound(container_id.to_string()));
    };
    let init_id = read_opt(&dir.join("init-id"))?;
    for id in std::iter::once(&mount_id).chain(init_id.iter()) {
        if !valid_id(id) {
            return Err(ContainerLayerError::Read {
                path: dir.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, "bad mount id"),
            });
        }
    }
    Ok(MountRecord {
        container_id: container_id.to_string(),
        mount_id,
        init_id,
        parent: read_opt(&dir.join("parent"))?,
        ephemeral: read_opt(&dir.join(EPHEMERAL_FILE))?.is_some(),
    })
}

/// Every container id with a mount record.
pub fn list(layout: &Layout) -> Vec<String> {
    fs::read_dir(layout.mounts_db())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| valid_id(n))
                .collect()
        })
        .unwrap_or_default()
}

/// The lower dirs of the read-write layer (`l/<id>`, topmost first: init, then the image).
pub fn lowers(layout: &Layout, rec: &MountRecord) -> Result<Vec<String>, ContainerLayerError> {
    let path = layout.cache_dir(&rec.mount_id).join("lower");
    Ok(read_opt(&path)?
        .map(|s| s.split(':').map(str::to_string).collect())
        .unwrap_or_default())
}

/// Remove a container's layers: the record first (the commit point), then the driver dirs.
/// The removal of an ephemeral container is not synced: a host crash discards it anyway.
pub fn remove(layout: &Layout, container_id: &str) -> Result<(), ContainerLayerError> {
    detach(layout, container_id)?.purge();
    Ok(())
}

/// What [`detach`] left to delete: temporary names that [`crate::store::Store::open`] sweeps
/// if nobody purges them.
#[derive(Debug, Default)]
#[must_use = "purge() deletes the detached dirs; dropping the Trash leaves them to the next open"]
pub struct Trash(Vec<PathBuf>);

impl Trash {
    /// Delete the detached dirs (the slow part of a removal: one unlink per entry).
    pub fn purge(self) {
        for p in self.0 {
            if let Err(e) = fs::remove_dir_all(&p)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %p.display(), error = %e, "removing detached container layer");
            }
        }
    }
}

/// The fast, committing half of [`remove`]: the record is renamed away (the commit point), and
/// each driver dir, once verified unmounted, is renamed to a temporary name and loses its short
/// link. The container's layers are gone for every reader when this returns; their content is
/// deleted by [`Trash::purge`] (off the request path) or by the sweep at the next open.
pub fn detach(layout: &Layout, container_id: &str) -> Result<Trash, ContainerLayerError> {
    let rec = get(layout, container_id)?;
    let dir = layout.mount_meta(container_id);
    let tmp = atomic::tmp_path_for(&dir);
    let durability = if rec.ephemeral {
        Durability::Volatile
    } else {
        Durability::Durable
    };
    atomic::rename_into_place_as(&dir, &tmp, durability)?;
    let mut trash = vec![tmp];
    for cache in std::iter::once(&rec.mount_id).chain(rec.init_id.iter()) {
        if let Some(p) = layer_store::detach_cache_dir(layout, cache)? {
            trash.push(p);
        }
    }
    Ok(Trash(trash))
}
