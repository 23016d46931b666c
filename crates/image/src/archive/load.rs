//! `docker load`: read a `docker save` archive (manifest.json, config json, layer tars, plain
//! or compressed) or an OCI image layout (oci-layout, index.json, blobs/sha256), register its
//! layers and images and apply its tags.
//!
//! The archive is spooled into a private dir under `<root>/tmp` (the entries come in any
//! order and manifest.json may be last); every file is then opened with
//! `openat2(RESOLVE_IN_ROOT)` so a symlink in a hostile archive cannot point outside it.
//! Layers whose chain id is present already are not extracted again.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageManifest};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Deserialize;

use crate::atomic;
use crate::config::ImageConfigView;
use crate::ids;
use crate::layer_store::TempDirGuard;
use crate::reference;
use crate::store::{Store, StoreError};

/// One image an archive held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Image id (`sha256:<hex>`).
    pub id: String,
    /// Tags applied (familiar form), empty for an untagged image.
    pub repo_tags: Vec<String>,
    /// Tags that pointed at another image before, with that image's id (Docker prints
    /// "The image X already exists, renaming the old one with ID Y to empty string").
    pub replaced: Vec<(String, String)>,
}

impl LoadedImage {
    /// The lines `docker load` prints for this image.
    pub fn messages(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .replaced
            .iter()
            .map(|(t, old)| {
                format!("The image {t} already exists, renaming the old one with ID {old} to empty string")
            })
            .collect();
        if self.repo_tags.is_empty() {
            out.push(format!("Loaded image ID: {}", self.id));
        } else {
            out.extend(self.repo_tags.iter().map(|t| format!("Loaded image: {t}")));
        }
        out
    }
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// What to load, however the archive described it.
struct Plan {
    config: Vec<u8>,
    layers: Vec<String>,
    tags: Vec<String>,
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// Open `rel` inside `root` without ever leaving it.
fn open_in(root: &File, rel: &str) -> Result<File, StoreError> {
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| StoreError::io(format!("opening {rel:?} in the archive"), e.into()))?;
    Ok(File::from(fd))
}

fn read_in(root: &File, rel: &str) -> Result<Vec<u8>, StoreError> {
    let mut f = open_in(root, rel)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| StoreError::io(format!("reading {rel:?} in the archive"), e))?;
    Ok(buf)
}

fn exists_in(root: &File, rel: &str) -> bool {
    open_in(root, rel).is_ok()
}

impl Store {
    /// `docker load` from a tar stream (uncompressed; `docker load` accepts gzip too, so a
    /// compressed archive is decompressed transparently).
    pub fn load<R: Read>(&self, reader: R) -> Result<Vec<LoadedImage>, StoreError> {
        let spool = atomic::tmp_path_for(&self.layout.tmp_dir().join("load"));
        let _guard = TempDirGuard(Some(spool.clone()));
        std::fs::create_dir_all(&spool)
            .map_err(|e| StoreError::io(format!("creating {}", spool.display()), e))?;
        unpack(reader, &spool)?;
        let root = File::open(&spool)
            .map_err(|e| StoreError::io(format!("opening {}", spool.display()), e))?;
        let plans = if exists_in(&root, "manifest.json") {
            docker_plans(&root)?
        } else if exists_in(&root, "index.json") {
            oci_plans(&root)?
        } else {
            return Err(invalid(
                "invalid archive: no manifest.json (docker save) or index.json (OCI layout)",
            ));
        };
        let mut out = Vec::new();
        for p in plans {
            out.push(self.load_one(&root, p)?);
        }
        Ok(out)
    }

    fn load_one(&self, root: &File, plan: Plan) -> Result<LoadedImage, StoreError> {
        let cfg = ImageConfigView::parse(&plan.config)
            .map_err(|e| invalid(format!("invalid image config: {e}")))?;
        let diff_ids = &cfg.rootfs.diff_ids;
        if diff_ids.len() != plan.layers.len() {
            return Err(invalid(format!(
                "invalid manifest, layers length mismatch: expected {}, got {}",
                diff_ids.len(),
                plan.layers.len()
            )));
        }
        let id = {
            let _gc = self.gc.read().unwrap_or_else(|e| e.into_inner());
            let mut parent: Option<String> = None;
            for (diff_id, path) in diff_ids.iter().zip(&plan.layers) {
                let chain = ids::chain_id(parent.as_deref(), diff_id);
                let layer = if self.layers.exists(&chain) {
                    self.layers.get(&chain)?
                } else {
                    let f = open_in(root, path)?;
                    self.add_layer(
                        io::BufReader::with_capacity(1 << 20, f),
                        parent.as_deref(),
                        Some(diff_id),
                    )?
                };
                parent = Some(layer.chain_id);
            }
            self.put_image(&plan.config, None)?
        };
        let mut loaded = LoadedImage {
            id: id.clone(),
            repo_tags: Vec::new(),
            replaced: Vec::new(),
        };
        for t in plan.tags {
            let r = reference::parse_normalized(&t)?;
            if r.tag().is_none() || r.digest().is_some() {
                return Err(invalid(format!("invalid tag {t:?}")));
            }
            let name = r.familiar_string();
            if let Some(old) = self.set_ref(r, &id)? {
                loaded.replaced.push((name.clone(), old));
            }
            loaded.repo_tags.push(name);
        }
        Ok(loaded)
    }
}

fn docker_plans(root: &File) -> Result<Vec<Plan>, StoreError> {
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&read_in(root, "manifest.json")?)
        .map_err(|e| invalid(format!("invalid manifest.json: {e}")))?;
    entries
        .into_iter()
        .map(|e| {
            Ok(Plan {
                config: read_in(root, &e.config)?,
                layers: e.layers,
                tags: e.repo_tags.unwrap_or_default(),
            })
        })
        .collect()
}

fn blob_path(digest: &str) -> Result<String, StoreError> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| invalid(format!("invalid digest {digest:?}")))?;
    if alg != "sha256" || !ids::is_hex64(hex) {
        return Err(invalid(format!("unsupported digest {digest:?}")));
    }
    Ok(format!("blobs/{alg}/{hex}"))
}

fn oci_plans(root: &File) -> Result<Vec<Plan>, StoreError> {
    let index: ImageIndex = serde_json::from_slice(&read_in(root, "index.json")?)
        .map_err(|e| invalid(format!("invalid index.json: {e}")))?;
    let mut plans = Vec::new();
    for desc in index.manifests() {
        let ann = desc.annotations().clone().unwrap_or_default();
        let tag = ann
            .get("io.containerd.image.name")
            .cloned()
            .or_else(|| ann.get("org.opencontainers.image.ref.name").cloned());
        let manifest = resolve_manifest(root, desc.digest().to_string(), 0)?;
        let config = read_in(root, &blob_path(manifest.config().digest().as_ref())?)?;
        let layers = manifest
            .layers()
            .iter()
            .map(|l| blob_path(l.digest().as_ref()))
            .collect::<Result<_, _>>()?;
        let tags = match tag {
            // A bare tag (`latest`) names no repository: Docker ignores it.
            Some(t) if reference::parse_normalized(&t).is_ok() && t.contains([':', '/']) => {
                vec![t]
            }
            _ => Vec::new(),
        };
        plans.push(Plan {
            config,
            layers,
            tags,
        });
    }
    Ok(plans)
}

/// Follow nested indexes down to the manifest for linux/amd64 (or the only/first one).
fn resolve_manifest(root: &File, digest: String, depth: u32) -> Result<ImageManifest, StoreError> {
    if depth > 4 {
        return Err(invalid("OCI index nesting too deep"));
    }
    let bytes = read_in(root, &blob_path(&digest)?)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("invalid blob {digest}: {e}")))?;
    if v.get("manifests").is_some() {
        let idx: ImageIndex = serde_json::from_value(v)
            .map_err(|e| invalid(format!("invalid index {digest}: {e}")))?;
        let pick = idx
            .manifests()
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == "linux" && p.architecture().to_string() == host_arch()
                })
            })
            .or_else(|| idx.manifests().first())
            .ok_or_else(|| invalid(format!("index {digest} lists no manifests")))?;
        return resolve_manifest(root, pick.digest().to_string(), depth + 1);
    }
    serde_json::from_value(v).map_err(|e| invalid(format!("invalid manifest {digest}: {e}")))
}

/// The OCI architecture name of this host.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Spool the archive's regular files, dirs and symlinks into `dest` (decompressing a
/// gzip/zstd archive). The tar crate refuses entries that would land outside `dest`.
fn unpack<R: Read>(reader: R, dest: &Path) -> Result<(), StoreError> {
    let mut br = io::BufReader::with_capacity(1 << 20, reader);
    let magic = {
        let buf =
            io::BufRead::fill_buf(&mut br).map_err(|e| StoreError::io("reading the archive", e))?;
        buf.get(..4).map(<[u8]>::to_vec).unwrap_or_default()
    };
    let inner: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(br)
                .map_err(|e| StoreError::io("reading the zstd archive", e))?,
        )
    } else {
        Box::new(br)
    };
    let mut ar = tar::Archive::new(inner);
    ar.set_preserve_permissions(false);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let entries = ar
        .entries()
        .map_err(|e| StoreError::io("reading the archive", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| StoreError::io("reading the archive", e))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        let path: PathBuf = entry
            .path()
            .map_err(|e| StoreError::io("reading an archive entry name", e))?
            .into_owned();
        entry.unpack_in(dest).map_err(|e| {
            StoreError::io(format!("unpacking {} from the archive", path.display()), e)
        })?;
    }
    Ok(())
}
