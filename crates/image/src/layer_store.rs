//! Read-only image layers: `layerdb/sha256/<chain id>/{diff,size,cache-id,parent}` plus the
//! driver dir `overlay2/<cache id>/{diff,link,lower,work}` and its short link `overlay2/l/<id>`.
//!
//! Registering extracts into a temp cache dir, then commits in two renames: the cache dir
//! first, then the layerdb dir. The layerdb entry is the commit point: a cache dir without one
//! is garbage that [`crate::gc`] removes on open. Deleting reverses the order.

use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::apply::{self, ApplyError, ApplyOptions};
use crate::atomic::{self, AtomicError};
use crate::ids::{self, hex_of};
use crate::layout::Layout;
use crate::tarsplit;

/// Errors of the layer store.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Creating the temporary cache dir failed.
    #[error("layer store: creating temp layer dir {path}")]
    CreateTemp {
        /// Dir being created.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Extracting the layer tar failed.
    #[error("layer store: extracting layer")]
    Apply(#[from] ApplyError),
    /// The layer's content does not hash to the diff id the image config names.
    #[error("invalid diffID for layer: expected {expected:?}, got {got:?}")]
    DiffIdMismatch {
        /// From the image config.
        expected: String,
        /// Computed from the tar stream.
        got: String,
    },
    /// The parent layer does not exist.
    #[error("layer store: parent layer {0} does not exist")]
    MissingParent(String),
    /// A layer is not in the layerdb.
    #[error("layer {0} does not exist")]
    NotFound(String),
    /// A layerdb file could not be read or is malformed.
    #[error("layer store: reading {path}")]
    ReadMeta {
        /// File read.
        path: PathBuf,
        /// OS error or a description of the malformed content.
        #[source]
        source: io::Error,
    },
    /// Reading the start of the blob or setting up decompression failed.
    #[error("layer store: opening the layer stream for {path}")]
    Decompress {
        /// Layer being extracted.
        path: PathBuf,
        /// OS or decoder error.
        #[source]
        source: io::Error,
    },
    /// Recording the layer's tar-split failed.
    #[error("layer store: recording tar-split for {path}")]
    TarSplit {
        /// Layer being extracted.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Rebuilding a layer's tar failed.
    #[error("layer store: rebuilding layer tar")]
    Reassemble(#[from] tarsplit::TarSplitError),
    /// Writing the driver dir (link, lower, work, short link) failed.
    #[error("layer store: preparing driver dir {path}")]
    Driver {
        /// Path being written.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// A metadata write failed.
    #[error("layer store: committing layer metadata")]
    Commit(#[from] AtomicError),
    /// Removing a layer failed.
    #[error("layer store: removing {path}")]
    Remove {
        /// Path removed.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
}

/// One committed layer as recorded in the layerdb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:<hex>` chain id.
    pub chain_id: String,
    /// `sha256:<hex>` digest of the uncompressed layer tar.
    pub diff_id: String,
    /// Parent chain id.
    pub parent: Option<String>,
    /// Name of the driver dir under `overlay2/`.
    pub cache_id: String,
    /// Bytes of file content (Docker's `size`).
    pub size: u64,
}

/// A layer extracted but not yet committed (see [`LayerStore::extract`]).
#[derive(Debug)]
pub struct Extracted {
    tmp: PathBuf,
    cache_id: String,
    outcome: apply::ApplyOutcome,
    tar_split: Vec<u8>,
    guard: TempDirGuard,
}

impl Extracted {
    /// Diff id of the extracted content.
    pub fn diff_id(&self) -> &str {
        &self.outcome.diff_id
    }
}

/// Result of [`LayerStore::register`].
#[derive(Debug, Clone)]
pub struct Registered {
    /// The layer (new or the already existing one with the same chain id).
    pub layer: LayerInfo,
    /// Digest of the bytes as read (the compressed blob digest).
    pub compressed_digest: String,
    /// Whether the layer existed already and the new extraction was discarded.
    pub deduplicated: bool,
}

/// The layer store. Cheap to share; one commit at a time (extraction runs unlocked).
#[derive(Debug)]
pub struct LayerStore {
    layout: Layout,
    commit_lock: Mutex<()>,
    sync: bool,
}

fn read_trimmed(path: &Path) -> Result<String, LayerError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| LayerError::ReadMeta {
            path: path.to_path_buf(),
            source,
        })
}

fn malformed(path: &Path, what: &str) -> LayerError {
    LayerError::ReadMeta {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, what.to_string()),
    }
}

impl LayerStore {
    /// Layer store over `layout`; `sync` makes registration flush the filesystem (syncfs)
    /// before the commit so a power loss cannot leave a committed layer with missing content.
    pub fn new(layout: Layout, sync: bool) -> Self {
        LayerStore {
            layout,
            commit_lock: Mutex::new(()),
            sync,
        }
    }

    /// Whether a layer with this chain id is committed.
    pub fn exists(&self, chain_id: &str) -> bool {
        self.layout.layer_meta(chain_id).join("cache-id").is_file()
    }

    /// Read a committed layer.
    pub fn get(&self, chain_id: &str) -> Result<LayerInfo, LayerError> {
        let dir = self.layout.layer_meta(chain_id);
        if !dir.is_dir() {
            return Err(LayerError::NotFound(chain_id.to_string()));
        }
        let diff_id = read_trimmed(&dir.join("diff"))?;
        if !ids::is_sha256_digest(&diff_id) {
            return Err(malformed(&dir.join("diff"), "not a sha256 digest"));
        }
        let cache_id = read_trimmed(&dir.join("cache-id"))?;
        if cache_id.is_empty() || cache_id.contains('/') || cache_id.starts_with('.') {
            return Err(malformed(&dir.join("cache-id"), "not a cache id"));
        }
        let size_path = dir.join("size");
        let size = read_trimmed(&size_path)?
            .parse()
            .map_err(|_| malformed(&size_path, "not a number"))?;
        let parent_path = dir.join("parent");
        let parent = if parent_path.exists() {
            let p = read_trimmed(&parent_path)?;
            if !ids::is_sha256_digest(&p) {
                return Err(malformed(&parent_path, "not a sha256 digest"));
            }
            Some(p)
        } else {
            None
        };
        Ok(LayerInfo {
            chain_id: format!("sha256:{}", hex_of(chain_id)),
            diff_id,
            parent,
            cache_id,
            size,
        })
    }

    /// Every committed chain id (entries that are not temporaries).
    pub fn list(&self) -> Result<Vec<String>, LayerError> {
        let dir = self.layout.layerdb();
        let rd = fs::read_dir(&dir).map_err(|source| LayerError::ReadMeta {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if ids::is_hex64(&name) {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }

    /// The layer and its ancestors, top first.
    pub fn chain(&self, chain_id: &str) -> Result<Vec<LayerInfo>, LayerError> {
        let mut out = Vec::new();
        let mut cur = Some(chain_id.to_string());
        while let Some(c) = cur {
            let l = self.get(&c)?;
            cur = l.parent.clone();
            out.push(l);
        }
        Ok(out)
    }

    /// Extract a layer tar on top of `parent` and commit it. When `expected_diff_id` is given
    /// and the content hashes differently, nothing is committed. When the chain id already
    /// exists, the new extraction is discarded and the existing layer returned.
    pub fn register<R: Read>(
        &self,
        reader: R,
        parent: Option<&str>,
        expected_diff_id: Option<&str>,
    ) -> Result<Registered, LayerError> {
        if let Some(p) = parent
            && !self.exists(p)
        {
            return Err(LayerError::MissingParent(p.to_string()));
        }
        let ex = self.extract(reader)?;
        self.commit(ex, parent, expected_diff_id)
    }

    /// First half of [`register`](Self::register): extract into a temporary driver dir
    /// (independent of any parent: overlay layers are plain directories) and record the
    /// digests and tar-split. Dropping the result removes the extraction.
    pub fn extract<R: Read>(&self, reader: R) -> Result<Extracted, LayerError> {
        let cache_id = ids::random_id();
        let final_dir = self.layout.cache_dir(&cache_id);
        let tmp = atomic::tmp_path_for(&final_dir);
        let guard = TempDirGuard(Some(tmp.clone()));
        fs::create_dir_all(tmp.join("diff")).map_err(|source| LayerError::CreateTemp {
            path: tmp.clone(),
            source,
        })?;
        let opts = ApplyOptions {
            preserve_owner: rustix::process::geteuid().is_root(),
        };
        let mut br = io::BufReader::with_capacity(256 * 1024, reader);
        let compressed = match br.fill_buf() {
            Ok(head) => compression_of(head),
            Err(source) => {
                return Err(LayerError::Decompress {
                    path: tmp.clone(),
                    source,
                });
            }
        };
        let decompress_err = |source| LayerError::Decompress {
            path: tmp.clone(),
            source,
        };
        let tar_split_err = |source| LayerError::TarSplit {
            path: tmp.clone(),
            source,
        };
        let diff = tmp.join("diff");
        let (outcome, tar_split) = match compressed {
            // Plain tar: the blob digest is the diff id; hash it once (apply does).
            None => {
                let mut rec = tarsplit::Recorder::new(br);
                let outcome = apply::apply_layer(&mut rec, &diff, &opts)?;
                let ts = rec.finish().map_err(tar_split_err)?;
                let mut outcome = outcome;
                outcome.compressed_digest = outcome.diff_id.clone();
                (outcome, ts)
            }
            Some(kind) => {
                let mut raw = HashingReader::new(br);
                let (mut outcome, ts) = {
                    let plain: Box<dyn Read> = match kind {
                        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut raw)),
                        Compression::Zstd => Box::new(
                            zstd::stream::read::Decoder::new(&mut raw).map_err(decompress_err)?,
                        ),
                    };
                    let mut rec = tarsplit::Recorder::new(plain);
                    let outcome = apply::apply_layer(&mut rec, &diff, &opts)?;
                    (outcome, rec.finish().map_err(tar_split_err)?)
                };
                io::copy(&mut raw, &mut io::sink()).map_err(tar_split_err)?;
                outcome.compressed_digest = raw.digest();
                (outcome, ts)
            }
        };
        Ok(Extracted {
            tmp,
            cache_id,
            outcome,
            tar_split,
            guard,
        })
    }

    /// Second half of [`register`](Self::register): verify the diff id, then commit the
    /// extraction as the layer above `parent` (or discard it when that chain id exists).
    pub fn commit(
        &self,
        ex: Extracted,
        parent: Option<&str>,
        expected_diff_id: Option<&str>,
    ) -> Result<Registered, LayerError> {
        let Extracted {
            tmp,
            cache_id,
            outcome,
            tar_split,
            guard,
        } = ex;
        let final_dir = self.layout.cache_dir(&cache_id);
        if let Some(exp) = expected_diff_id
            && exp != outcome.diff_id
        {
            return Err(LayerError::DiffIdMismatch {
                expected: exp.to_string(),
                got: outcome.diff_id,
            });
        }
        let parent_info = match parent {
            Some(p) => Some(
                self.get(p)
                    .map_err(|_| LayerError::MissingParent(p.to_string()))?,
            ),
            None => None,
        };
        let chain_id = ids::chain_id(parent, &outcome.diff_id);
        if self.sync {
            sync_fs(&tmp)?;
        }
        let _commit = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.exists(&chain_id) {
            drop(guard);
            return Ok(Registered {
                layer: self.get(&chain_id)?,
                compressed_digest: outcome.compressed_digest,
                deduplicated: true,
            });
        }
        self.finish_driver_dir(&tmp, &cache_id, parent_info.as_ref())?;
        atomic::rename_into_place(&tmp, &final_dir)?;
        guard.disarm();
        let size = outcome.size.to_string();
        let mut files: Vec<(&str, &[u8])> = vec![
            ("diff", outcome.diff_id.as_bytes()),
            ("size", size.as_bytes()),
            ("cache-id", cache_id.as_bytes()),
        ];
        if let Some(p) = parent {
            files.push(("parent", p.as_bytes()));
        }
        files.push((tarsplit::FILE_NAME, &tar_split));
        if let Err(e) = atomic::write_dir(&self.layout.layer_meta(&chain_id), &files) {
            // Not committed: the cache dir is garbage now.
            let _ = remove_cache_dir(&self.layout, &cache_id);
            return Err(e.into());
        }
        Ok(Registered {
            layer: LayerInfo {
                chain_id,
                diff_id: outcome.diff_id,
                parent: parent.map(str::to_string),
                cache_id,
                size: outcome.size,
            },
            compressed_digest: outcome.compressed_digest,
            deduplicated: false,
        })
    }

    /// Write `link`, `lower` and `work/` into a driver dir (still at its temp path) and create
    /// its short link, as Docker's overlay2 `create` does: a layer without parent has only
    /// `diff` and `link`.
    pub(crate) fn finish_driver_dir(
        &self,
        dir: &Path,
        cache_id: &str,
        parent: Option<&LayerInfo>,
    ) -> Result<(), LayerError> {
        let driver = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LayerError::Driver { path, source }
        };
        let link = create_short_link(&self.layout, cache_id)?;
        fs::write(dir.join("link"), &link).map_err(driver(&dir.join("link")))?;
        if let Some(p) = parent {
            fs::create_dir(dir.join("work")).map_err(driver(&dir.join("work")))?;
            let lower = lower_string_above(&self.layout, &p.cache_id)?;
            fs::write(dir.join("lower"), lower).map_err(driver(&dir.join("lower")))?;
        }
        Ok(())
    }

    /// Remove a layer: the layerdb entry first (the commit point), then its driver dir.
    pub fn remove(&self, chain_id: &str) -> Result<LayerInfo, LayerError> {
        let info = self.get(chain_id)?;
        let _commit = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let meta = self.layout.layer_meta(chain_id);
        let tmp = atomic::tmp_path_for(&meta);
        atomic::rename_into_place(&meta, &tmp)?;
        remove_cache_dir(&self.layout, &info.cache_id)?;
        fs::remove_dir_all(&tmp).map_err(|source| LayerError::Remove { path: tmp, source })?;
        Ok(info)
    }

    /// Write the layer's tar exactly as it was registered (its digest is the diff id):
    /// rebuilt from the tar-split when there is one, else exported from the diff dir.
    pub fn tar_stream<W: Write>(&self, info: &LayerInfo, out: &mut W) -> Result<(), LayerError> {
        let ts_path = self
            .layout
            .layer_meta(&info.chain_id)
            .join(tarsplit::FILE_NAME);
        match fs::read(&ts_path) {
            Ok(ts) => Ok(tarsplit::reassemble(&ts, &self.diff_dir(info), out)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(apply::export_layer(&self.diff_dir(info), out)?)
            }
            Err(source) => Err(LayerError::ReadMeta {
                path: ts_path,
                source,
            }),
        }
    }

    /// `overlay2/<cache id>/diff` of a layer.
    pub fn diff_dir(&self, info: &LayerInfo) -> PathBuf {
        self.layout.cache_dir(&info.cache_id).join("diff")
    }
}

/// The `lower` value for a layer whose parent's driver dir is `parent_cache`:
/// `l/<parent link>` followed by the parent's own `lower` (nearest first).
pub(crate) fn lower_string_above(
    layout: &Layout,
    parent_cache: &str,
) -> Result<String, LayerError> {
    let pdir = layout.cache_dir(parent_cache);
    let plink = read_trimmed(&pdir.join("link"))?;
    let mut lower = format!("l/{plink}");
    let plower_path = pdir.join("lower");
    if plower_path.exists() {
        let plower = read_trimmed(&plower_path)?;
        if !plower.is_empty() {
            lower.push(':');
            lower.push_str(&plower);
        }
    }
    Ok(lower)
}

/// Create `overlay2/l/<26 chars>` → `../<cache id>/diff`, retrying on a name clash.
pub(crate) fn create_short_link(layout: &Layout, cache_id: &str) -> Result<String, LayerError> {
    let links = layout.links_dir();
    let target = Path::new("..").join(cache_id).join("diff");
    loop {
        let id = ids::random_short_link();
        let path = links.join(&id);
        match std::os::unix::fs::symlink(&target, &path) {
            Ok(()) => return Ok(id),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(LayerError::Driver { path, source }),
        }
    }
}

/// Remove a driver dir and its short link. Refuses (error) when its `merged` is still a mount
/// point after a lazy unmount, because removing through a live mount would delete the
/// content of the layers below.
pub(crate) fn remove_cache_dir(layout: &Layout, cache_id: &str) -> Result<(), LayerError> {
    let dir = release_cache_dir(layout, cache_id)?;
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LayerError::Remove { path: dir, source }),
    }
}

/// [`remove_cache_dir`] without the deletion: the same unmount check and short-link removal,
/// then the dir is renamed to a temporary name (swept at the next open), which is returned for
/// the caller to delete. `None` when the dir does not exist.
pub(crate) fn detach_cache_dir(
    layout: &Layout,
    cache_id: &str,
) -> Result<Option<PathBuf>, LayerError> {
    let dir = release_cache_dir(layout, cache_id)?;
    let tmp = atomic::tmp_path_for(&dir);
    match fs::rename(&dir, &tmp) {
        Ok(()) => Ok(Some(tmp)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LayerError::Remove { path: dir, source }),
    }
}

/// What removing or detaching a driver dir does first: make sure its `merged` is no mount
/// point any more (lazy unmount; EBUSY if it stays one) and drop its short link. Returns the
/// dir.
fn release_cache_dir(layout: &Layout, cache_id: &str) -> Result<PathBuf, LayerError> {
    let dir = layout.cache_dir(cache_id);
    let merged = dir.join("merged");
    if merged.exists() && crate::overlay::is_mountpoint(&merged) {
        let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
        if crate::overlay::is_mountpoint(&merged) {
            return Err(LayerError::Remove {
                path: merged,
                source: io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
    }
    if let Ok(link) = fs::read_to_string(dir.join("link")) {
        let link = link.trim();
        if !link.is_empty() && !link.contains('/') {
            let _ = fs::remove_file(layout.links_dir().join(link));
        }
    }
    Ok(dir)
}

fn sync_fs(dir: &Path) -> Result<(), LayerError> {
    let f = fs::File::open(dir).map_err(|source| LayerError::Driver {
        path: dir.to_path_buf(),
        source,
    })?;
    rustix::fs::syncfs(&f).map_err(|e| LayerError::Driver {
        path: dir.to_path_buf(),
        source: e.into(),
    })
}

/// Removes a temporary dir on drop unless disarmed (error paths clean up after themselves).
#[derive(Debug)]
pub(crate) struct TempDirGuard(pub(crate) Option<PathBuf>);

impl TempDirGuard {
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Hashes the bytes read through it (the compressed blob digest).
struct HashingReader<R> {
    inner: R,
    hash: sha2::Sha256,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hash: sha2::Digest::new(),
        }
    }
    fn digest(&self) -> String {
        format!(
            "sha256:{}",
            hex::encode(sha2::Digest::finalize(self.hash.clone()))
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
}

enum Compression {
    Gzip,
    Zstd,
}

/// Compression of a layer blob by its magic bytes (`None`: a plain tar).
fn compression_of(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else {
        None
    }
}
