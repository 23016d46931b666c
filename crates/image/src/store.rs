//! The facade the daemon calls: one [`Store`] per data root, `Send + Sync`, combining the
//! layer store, image db, reference store and container layers with Docker's semantics.
//!
//! Locking: `refs` (repositories.json) is one mutex; `gc` is a read/write lock that creators
//! of images (load, import, commit, pull) hold shared while their fresh layers are not yet
//! referenced by an image, and deleters (rmi, prune) hold exclusively, so a delete never frees
//! a layer a concurrent load is about to use. Layer commits serialise inside the layer store.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use crate::atomic::AtomicError;
use crate::config::ImageConfigView;
use crate::container_layers::{self, ContainerLayerError, InitLayerSpec, MountRecord};
use crate::ids;
use crate::image_store::{ImageDb, ImageDbError};
use crate::layer_store::{LayerError, LayerInfo, LayerStore};
use crate::layout::Layout;
use crate::overlay::{self, MountMethod, OverlayError, OverlaySpec};
use crate::reference::{self, AnyReference, Reference, ReferenceError};
use crate::repositories::{Repositories, RepositoriesError};

/// A closed set of error kinds the API edge maps to HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404.
    NotFound,
    /// 400.
    InvalidParameter,
    /// 409.
    Conflict,
    /// 500.
    Internal,
}

/// Errors of the store facade.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The image does not exist (`No such image: busybox:latest`).
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// A reference could not be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Docker's delete/tag conflicts, message verbatim.
    #[error("{0}")]
    Conflict(String),
    /// Invalid input (bad archive, bad config, bad changes).
    #[error("{0}")]
    Invalid(String),
    /// Layer store failure.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Image db failure.
    #[error(transparent)]
    ImageDb(#[from] ImageDbError),
    /// repositories.json failure.
    #[error(transparent)]
    Repositories(#[from] RepositoriesError),
    /// Container layer failure.
    #[error(transparent)]
    ContainerLayers(#[from] ContainerLayerError),
    /// Overlay mount failure.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// Metadata write failure.
    #[error(transparent)]
    Atomic(#[from] AtomicError),
    /// Layer apply/export failure.
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    /// Archive reading or writing failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The HTTP-ish kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NoSuchImage(_) => ErrorKind::NotFound,
            StoreError::Reference(_) | StoreError::Invalid(_) => ErrorKind::InvalidParameter,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Layer(LayerError::DiffIdMismatch { .. }) => ErrorKind::InvalidParameter,
            StoreError::Layer(LayerError::Apply(_)) => ErrorKind::InvalidParameter,
            StoreError::ImageDb(ImageDbError::NotFound(_)) => ErrorKind::NotFound,
            StoreError::ImageDb(ImageDbError::Config(_)) => ErrorKind::InvalidParameter,
            StoreError::ContainerLayers(ContainerLayerError::NotFound(_)) => ErrorKind::NotFound,
            StoreError::ContainerLayers(ContainerLayerError::Exists(_)) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Options for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// syncfs before committing a layer (durability across power loss; costs a flush).
    pub sync_layers: bool,
    /// How overlays are mounted.
    pub mount_method: MountMethod,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync_layers: true,
            mount_method: MountMethod::Auto,
        }
    }
}

/// Something `Store::open` found and could not repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWarning {
    /// The object concerned (layer chain id, image id, container id, path).
    pub object: String,
    /// What is wrong.
    pub message: String,
}

/// A container's use of an image, as the daemon knows it (the store does not know
/// containers): used for Docker's delete conflicts and by prune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// Container id.
    pub container_id: String,
    /// Image id (`sha256:<hex>`) the container was created from.
    pub image_id: String,
    /// Whether the container is running.
    pub running: bool,
}

/// The image and layer store of one data root.
#[derive(Debug)]
pub struct Store {
    pub(crate) layout: Layout,
    pub(crate) layers: LayerStore,
    pub(crate) images: ImageDb,
    pub(crate) refs: Mutex<Repositories>,
    pub(crate) gc: RwLock<()>,
    mounts: Mutex<HashMap<String, usize>>,
    mount_method: MountMethod,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Open (creating if needed) the store under `root`, sweep leftovers of interrupted
    /// operations, and return what could not be repaired.
    pub fn open(root: &Path, opts: StoreOptions) -> Result<(Store, Vec<StoreWarning>), StoreError> {
        let layout = Layout::new(root);
        layout.create_dirs().map_err(|e| {
            StoreError::io(format!("creating store dirs under {}", root.display()), e)
        })?;
        let refs = Repositories::load(&layout.repositories_json())?;
        let store = Store {
            layers: LayerStore::new(layout.clone(), opts.sync_layers),
            images: ImageDb::new(layout.clone()),
            refs: Mutex::new(refs),
            gc: RwLock::new(()),
            mounts: Mutex::new(HashMap::new()),
            mount_method: opts.mount_method,
            layout,
        };
        let warnings = crate::gc::sweep(&store)?;
        for w in &warnings {
            tracing::warn!(object = %w.object, "{}", w.message);
        }
        Ok((store, warnings))
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The path layout (for inspect data and tests).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    // ---------------------------------------------------------------- references

    /// Resolve a user string to an image id (`sha256:<hex>`): a reference (`busybox`,
    /// `busybox:1`, `name@sha256:..`), a full id, or a unique id prefix, in Docker's order.
    pub fn resolve(&self, s: &str) -> Result<String, StoreError> {
        let parsed = reference::parse_any(s)?;
        match parsed {
            AnyReference::Digest(d) => {
                if self.images.exists(&d) {
                    Ok(d)
                } else {
                    Err(StoreError::NoSuchImage(d))
                }
            }
            AnyReference::Named(r) => {
                let r = lookup_form(r);
                if let Some(id) = lock(&self.refs).get(&r)
                    && self.images.exists(id)
                {
                    return Ok(id.to_string());
                }
                if let Some(id) = self.search_id_prefix(s)? {
                    return Ok(id);
                }
                Err(StoreError::NoSuchImage(r.familiar_string()))
            }
        }
    }

    fn search_id_prefix(&self, s: &str) -> Result<Option<String>, StoreError> {
        let prefix = s.strip_prefix("sha256:").unwrap_or(s);
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let prefix = prefix.to_ascii_lowercase();
        let matches: Vec<String> = self
            .images
            .list()?
            .into_iter()
            .filter(|id| ids::hex_of(id).starts_with(&prefix))
            .collect();
        Ok(if matches.len() == 1 {
            matches.into_iter().next()
        } else {
            None
        })
    }

    /// Point `new_ref` (default tag `latest`) at the image `image` resolves to.
    pub fn tag(&self, image: &str, new_ref: &str) -> Result<Reference, StoreError> {
        let id = self.resolve(image)?;
        let r = reference::parse_normalized(new_ref)?;
        if r.digest().is_some() {
            return Err(StoreError::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let r = r.with_default_tag();
        self.set_ref(r.clone(), &id)?;
        self.images.set_last_updated(&id)?;
        Ok(r)
    }

    /// Point any reference (tag or `name@digest`, as pull records them) at an image id.
    /// Returns the id it pointed at before, if different.
    pub fn add_reference(
        &self,
        r: &Reference,
        image_id: &str,
    ) -> Result<Option<String>, StoreError> {
        if !self.images.exists(image_id) {
            return Err(StoreError::NoSuchImage(image_id.to_string()));
        }
        self.set_ref(lookup_form(r.clone()), image_id)
    }

    /// Set a reference and persist repositories.json; returns the id it pointed at before.
    pub(crate) fn set_ref(&self, r: Reference, id: &str) -> Result<Option<String>, StoreError> {
        let mut refs = lock(&self.refs);
        let old = refs.set(r.clone(), id);
        if let Err(e) = refs.save(&self.layout.repositories_json()) {
            match &old {
                Some(o) => refs.set(r, o),
                None => refs.remove(&r),
            };
            return Err(e.into());
        }
        Ok(old.filter(|o| o != id))
    }

    /// Remove a reference (default tag `latest`); returns the familiar string removed.
    pub fn untag(&self, r: &str) -> Result<String, StoreError> {
        let parsed = lookup_form(reference::parse_normalized(r)?);
        self.remove_ref(&parsed)?;
        Ok(parsed.familiar_string())
    }

    pub(crate) fn remove_ref(&self, r: &Reference) -> Result<String, StoreError> {
        let mut refs = lock(&self.refs);
        let Some(old) = refs.remove(r) else {
            return Err(StoreError::NoSuchImage(r.familiar_string()));
        };
        if let Err(e) = refs.save(&self.layout.repositories_json()) {
            refs.set(r.clone(), &old);
            return Err(e.into());
        }
        Ok(old)
    }

    /// All references to an image.
    pub fn references(&self, image_id: &str) -> Vec<Reference> {
        lock(&self.refs).refs_of(image_id)
    }

    /// `RepoTags` of an image (familiar `name:tag`).
    pub fn repo_tags(&self, image_id: &str) -> Vec<String> {
        self.references(image_id)
            .iter()
            .filter(|r| r.digest().is_none())
            .map(Reference::familiar_string)
            .collect()
    }

    /// `RepoDigests` of an image (familiar `name@sha256:...`).
    pub fn repo_digests(&self, image_id: &str) -> Vec<String> {
        self.references(image_id)
            .iter()
            .filter_map(|r| r.digest().map(|d| format!("{}@{d}", r.familiar_name())))
            .collect()
    }

    // ---------------------------------------------------------------- images

    /// Every image id.
    pub fn image_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.images.list()?)
    }

    /// The config bytes of an image (verbatim, as `docker save` and the registry need them).
    pub fn image_config_bytes(&self, image_id: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.images.get_bytes(image_id)?)
    }

    /// The parsed config of an image.
    pub fn image_config(&self, image_id: &str) -> Result<ImageConfigView, StoreError> {
        Ok(self.images.get(image_id)?)
    }

    /// The layers of an image, bottom first.
    pub fn image_layers(&self, image_id: &str) -> Result<Vec<LayerInfo>, StoreError> {
        let cfg = self.images.get(image_id)?;
        match cfg.top_chain_id() {
            None => Ok(Vec::new()),
            Some(top) => {
                let mut chain = self.layers.chain(&top)?;
                chain.reverse();
                Ok(chain)
            }
        }
    }

    /// Extract one layer on top of `parent` (a chain id), verifying its diff id when known;
    /// when the chain id is already present the stream is not read at all.
    /// Callers hold `gc` shared until the image that references the layer exists.
    pub(crate) fn add_layer<R: Read>(
        &self,
        reader: R,
        parent: Option<&str>,
        expected_diff_id: Option<&str>,
    ) -> Result<LayerInfo, StoreError> {
        if let Some(d) = expected_diff_id {
            let chain = ids::chain_id(parent, d);
            if self.layers.exists(&chain) {
                return Ok(self.layers.get(&chain)?);
            }
        }
        Ok(self
            .layers
            .register(reader, parent, expected_diff_id)?
            .layer)
    }

    /// Store an image config whose layers are all present; returns the image id.
    pub(crate) fn put_image(
        &self,
        config: &[u8],
        parent: Option<&str>,
    ) -> Result<String, StoreError> {
        let view = ImageConfigView::parse(config).map_err(ImageDbError::from)?;
        if let Some(top) = view.top_chain_id()
            && !self.layers.exists(&top)
        {
            return Err(StoreError::Invalid(format!(
                "image config references layer {top} which is not present"
            )));
        }
        let (id, _) = self.images.put(config)?;
        if let Some(p) = parent {
            self.images.set_parent(&id, p)?;
        }
        self.images.set_last_updated(&id)?;
        Ok(id)
    }

    // ---------------------------------------------------------------- containers

    /// Create the init and read-write layers of a container on top of `image_id` (or scratch).
    pub fn create_container_layers(
        &self,
        container_id: &str,
        image_id: Option<&str>,
        init: &InitLayerSpec,
    ) -> Result<MountRecord, StoreError> {
        let _gc = self.gc.read().unwrap_or_else(|e| e.into_inner());
        let parent = match image_id {
            Some(i) => self.images.get(&self.resolve(i)?)?.top_chain_id(),
            None => None,
        };
        Ok(container_layers::create(
            &self.layout,
            &self.layers,
            container_id,
            parent.as_deref(),
            init,
        )?)
    }

    /// The mount record of a container.
    pub fn container_layers(&self, container_id: &str) -> Result<MountRecord, StoreError> {
        Ok(container_layers::get(&self.layout, container_id)?)
    }

    /// Containers with layers.
    pub fn container_ids(&self) -> Vec<String> {
        container_layers::list(&self.layout)
    }

    /// `overlay2/<mount id>/merged` of a container (mounted or not).
    pub fn merged_dir(&self, container_id: &str) -> Result<PathBuf, StoreError> {
        let rec = self.container_layers(container_id)?;
        Ok(self.layout.cache_dir(&rec.mount_id).join("merged"))
    }

    /// Mount a container's rootfs (refcounted) and return the merged dir.
    pub fn mount(&self, container_id: &str) -> Result<PathBuf, StoreError> {
        let rec = self.container_layers(container_id)?;
        let dir = self.layout.cache_dir(&rec.mount_id);
        let merged = dir.join("merged");
        let mut mounts = lock(&self.mounts);
        let count = mounts.entry(container_id.to_string()).or_insert(0);
        if overlay::is_mountpoint(&merged) {
            // Ours, or left by a previous daemon (live restore): count it.
            *count += 1;
            return Ok(merged);
        }
        std::fs::create_dir_all(&merged)
            .map_err(|e| StoreError::io(format!("creating {}", merged.display()), e))?;
        let lowers = container_layers::lowers(&self.layout, &rec)?;
        let home = self.layout.driver_home();
        let upper = format!("{}/diff", rec.mount_id);
        let work = format!("{}/work", rec.mount_id);
        if rec.ephemeral {
            // Left by an earlier volatile mount of this container in this boot (`docker cp`
            // before start); after a host crash the container is removed, never remounted.
            overlay::clear_volatile_marker(&dir.join("work"))
                .map_err(|e| StoreError::io(format!("clearing {}/work", dir.display()), e))?;
        }
        let spec = OverlaySpec {
            home: &home,
            lowers: &lowers,
            upper: &upper,
            work: &work,
            target: &merged,
            volatile: rec.ephemeral,
        };
        if let Err(e) = overlay::mount(&spec, self.mount_method) {
            if *count == 0 {
                mounts.remove(container_id);
            }
            return Err(e.into());
        }
        *count = 1;
        Ok(merged)
    }

    /// Drop one mount reference; the last one unmounts.
    pub fn unmount(&self, container_id: &str) -> Result<(), StoreError> {
        let merged = self.merged_dir(container_id)?;
        let mut mounts = lock(&self.mounts);
        let count = mounts.get(container_id).copied().unwrap_or(0);
        if count > 1 {
            mounts.insert(container_id.to_string(), count - 1);
            return Ok(());
        }
        overlay::unmount(&merged)?;
        mounts.remove(container_id);
        Ok(())
    }

    /// The committing half of [`Store::remove_container_layers`] (unmount, renames): the
    /// layers are gone when it returns; the returned [`container_layers::Trash`] deletes their
    /// content, which the caller may do off its request path.
    pub fn detach_container_layers(
        &self,
        container_id: &str,
    ) -> Result<container_layers::Trash, StoreError> {
        if let Ok(merged) = self.merged_dir(container_id) {
            overlay::unmount(&merged)?;
        }
        lock(&self.mounts).remove(container_id);
        Ok(container_layers::detach(&self.layout, container_id)?)
    }

    /// Remove a container's layers (unmounting first).
    pub fn remove_container_layers(&self, container_id: &str) -> Result<(), StoreError> {
        if let Ok(merged) = self.merged_dir(container_id) {
            overlay::unmount(&merged)?;
        }
        lock(&self.mounts).remove(container_id);
        Ok(container_layers::remove(&self.layout, container_id)?)
    }

    /// `docker diff`: changes of the container's read-write layer against init + image.
    pub fn changes(&self, container_id: &str) -> Result<Vec<crate::apply::Change>, StoreError> {
        let rec = self.container_layers(container_id)?;
        let home = self.layout.driver_home();
        let lowers: Vec<PathBuf> = container_layers::lowers(&self.layout, &rec)?
            .iter()
            .map(|l| home.join(l))
            .collect();
        let upper = self.layout.cache_dir(&rec.mount_id).join("diff");
        Ok(crate::apply::changes(&upper, &lowers)?)
    }

    /// `SizeRw` and `SizeRootFs` of a container: bytes of regular files in its read-write
    /// layer (hardlinks counted once, like Docker's `directory.Size`), and that plus the
    /// image's size.
    pub fn container_size(&self, container_id: &str) -> Result<(u64, u64), StoreError> {
        let rec = self.container_layers(container_id)?;
        let upper = self.layout.cache_dir(&rec.mount_id).join("diff");
        let rw = dir_size(&upper)
            .map_err(|e| StoreError::io(format!("sizing {}", upper.display()), e))?;
        let image = match &rec.parent {
            Some(top) => self.layers.chain(top)?.iter().map(|l| l.size).sum(),
            None => 0,
        };
        Ok((rw, rw + image))
    }

    /// Write a layer's tar exactly as registered (digest = its diff id), for push.
    pub fn layer_tar<W: std::io::Write>(
        &self,
        chain_id: &str,
        out: &mut W,
    ) -> Result<(), StoreError> {
        let info = self.layers.get(chain_id)?;
        Ok(self.layers.tar_stream(&info, out)?)
    }

    /// Sum of the sizes of the layers of an image (Docker's image `Size`).
    pub fn image_size(&self, image_id: &str) -> Result<u64, StoreError> {
        Ok(self.image_layers(image_id)?.iter().map(|l| l.size).sum())
    }
}

/// The form a reference is stored and looked up in: `:latest` when neither tag nor digest;
/// `name:tag@digest` looks up by digest.
pub(crate) fn lookup_form(r: Reference) -> Reference {
    match (r.tag(), r.digest()) {
        (Some(_), Some(d)) => r.with_digest(d).unwrap_or(r),
        _ => r.with_default_tag(),
    }
}

/// Docker's `isImageIDPrefix`: whether the user named the image by (a prefix of) its id.
pub(crate) fn is_id_prefix_of(image_id: &str, s: &str) -> bool {
    image_id.starts_with(s) || crate::ids::hex_of(image_id).starts_with(s)
}

/// Bytes of regular files under `dir` (not following symlinks; each inode once).
fn dir_size(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = std::fs::symlink_metadata(e.path())?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    Ok(total)
}
