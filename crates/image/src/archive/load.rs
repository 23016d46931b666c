//! `docker load`: read a `docker save` archive (manifest.json, config json, layer tars, plain
//! or compressed) or an OCI image layout (oci-layout, index.json, blobs/sha256), register its
//! layers and images and apply its tags.
//!
//! One streaming pass, no spool copy: JSON entries (they start with `{` or `[`) are kept in
//! memory (capped), every other entry is extracted as a layer candidate straight into a
//! temporary driver dir while it streams by. Overlay layers are independent directories, so
//! extraction needs no parent; once manifest.json (often the last entry) is read, the
//! extractions are committed bottom-up against the config's diff ids, and the ones nothing
//! references are dropped. Entry names are only ever map keys, never filesystem paths.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};

use oci_spec::image::{ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::config::ImageConfigView;
use crate::ids;
use crate::layer_store::{Extracted, LayerInfo};
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

/// Largest JSON entry kept in memory, and all of them together.
const JSON_MAX: u64 = 16 << 20;
const JSON_TOTAL_MAX: u64 = 64 << 20;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// Everything the archive held, indexed by normalised entry name.
#[derive(Default)]
struct Contents {
    json: HashMap<String, Vec<u8>>,
    layers: HashMap<String, Extracted>,
    /// Entries that failed to extract as a layer (only an error if a manifest names them).
    failed: HashMap<String, String>,
    /// Layers already committed from an extraction, by entry name.
    committed: HashMap<String, LayerInfo>,
    /// Symlink and hardlink entries: name → normalised target name.
    links: HashMap<String, String>,
}

impl Contents {
    fn resolve(&self, name: &str) -> String {
        let mut cur = normalize(name);
        for _ in 0..16 {
            match self.links.get(&cur) {
                Some(t) => cur = t.clone(),
                None => break,
            }
        }
        cur
    }
    fn json(&self, name: &str) -> Result<&[u8], StoreError> {
        let n = self.resolve(name);
        self.json
            .get(&n)
            .map(Vec::as_slice)
            .ok_or_else(|| invalid(format!("invalid archive: {name:?} is missing or not JSON")))
    }
}

/// Lexically clean an archive name (`./a//b/../c` → `a/c`), never above the root.
fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

impl Store {
    /// `docker load` from a tar stream (the archive itself may be gzip or zstd compressed).
    pub fn load<R: Read>(&self, reader: R) -> Result<Vec<LoadedImage>, StoreError> {
        let contents = self.read_archive(reader)?;
        let plans = if contents.json.contains_key("manifest.json") {
            docker_plans(&contents)?
        } else if contents.json.contains_key("index.json") {
            oci_plans(&contents)?
        } else {
            return Err(invalid(
                "invalid archive: no manifest.json (docker save) or index.json (OCI layout)",
            ));
        };
        let mut contents = contents;
        let mut out = Vec::new();
        for p in plans {
            out.push(self.load_one(&mut contents, p)?);
        }
        Ok(out)
    }

    fn read_archive<R: Read>(&self, reader: R) -> Result<Contents, StoreError> {
        let mut c = Contents::default();
        let mut json_total = 0u64;
        let mut ar = tar::Archive::new(decompressed(reader)?);
        let entries = ar
            .entries()
            .map_err(|e| StoreError::io("reading the archive", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("reading the archive", e))?;
            let kind = entry.header().entry_type();
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if kind.is_symlink() && !target.starts_with('/') {
                    let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    normalize(&format!("{dir}/{target}"))
                } else {
                    normalize(&target)
                };
                c.links.insert(name, resolved);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.size();
            let mut br = io::BufReader::with_capacity(1 << 20, entry);
            let head = br
                .fill_buf()
                .map_err(|e| StoreError::io(format!("reading {name:?} from the archive"), e))?;
            let is_json = head
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{' || *b == b'[');
            if is_json {
                json_total += size;
                if size > JSON_MAX || json_total > JSON_TOTAL_MAX {
                    return Err(invalid(format!("invalid archive: {name:?} is too large")));
                }
                let mut buf = Vec::with_capacity(size as usize);
                br.read_to_end(&mut buf)
                    .map_err(|e| StoreError::io(format!("reading {name:?} from the archive"), e))?;
                c.json.insert(name, buf);
            } else {
                match self.layers.extract(&mut br) {
                    Ok(ex) => {
                        c.layers.insert(name, ex);
                    }
                    Err(e) => {
                        // Not a layer (VERSION files...) or a broken one: drain the entry and
                        // remember why, in case a manifest names it.
                        io::copy(&mut br, &mut io::sink())
                            .map_err(|e| StoreError::io("reading the archive", e))?;
                        c.failed.insert(name, e.to_string());
                    }
                }
            }
        }
        Ok(c)
    }

    fn load_one(&self, c: &mut Contents, plan: Plan) -> Result<LoadedImage, StoreError> {
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
                let name = c.resolve(path);
                let layer = if self.layers.exists(&chain) {
                    self.layers.get(&chain)?
                } else if let Some(ex) = c.layers.remove(&name) {
                    let l = self
                        .layers
                        .commit(ex, parent.as_deref(), Some(diff_id))?
                        .layer;
                    c.committed.insert(name, l.clone());
                    l
                } else if let Some(done) = c.committed.get(&name) {
                    // The same blob at a second position (other parent): its extraction was
                    // used, so replay the exact tar from the committed layer.
                    self.replay_layer(done, parent.as_deref(), diff_id)?
                } else if let Some(bytes) = c.json.get(&name) {
                    self.add_layer(&bytes[..], parent.as_deref(), Some(diff_id))?
                } else if let Some(err) = c.failed.get(&name) {
                    return Err(invalid(format!("invalid layer {path:?}: {err}")));
                } else {
                    return Err(invalid(format!(
                        "invalid archive: layer {path:?} is missing"
                    )));
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

impl Store {
    fn replay_layer(
        &self,
        src: &LayerInfo,
        parent: Option<&str>,
        diff_id: &str,
    ) -> Result<LayerInfo, StoreError> {
        let (reader, writer) =
            std::io::pipe().map_err(|e| StoreError::io("creating the replay pipe", e))?;
        std::thread::scope(|s| {
            let feeder = s.spawn(move || {
                let mut w = io::BufWriter::with_capacity(1 << 20, writer);
                self.layers.tar_stream(src, &mut w)?;
                io::Write::flush(&mut w).map_err(|e| StoreError::io("replaying a layer", e))
            });
            let layer = self.add_layer(io::BufReader::new(reader), parent, Some(diff_id));
            feeder.join().unwrap_or_else(|_| {
                Err(StoreError::io(
                    "replaying a layer",
                    io::Error::other("thread panicked"),
                ))
            })?;
            layer
        })
    }
}

fn docker_plans(c: &Contents) -> Result<Vec<Plan>, StoreError> {
    let entries: Vec<ManifestEntry> = serde_json::from_slice(c.json("manifest.json")?)
        .map_err(|e| invalid(format!("invalid manifest.json: {e}")))?;
    entries
        .into_iter()
        .map(|e| {
            Ok(Plan {
                config: c.json(&e.config)?.to_vec(),
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

fn oci_plans(c: &Contents) -> Result<Vec<Plan>, StoreError> {
    let index: ImageIndex = serde_json::from_slice(c.json("index.json")?)
        .map_err(|e| invalid(format!("invalid index.json: {e}")))?;
    let mut plans = Vec::new();
    for desc in index.manifests() {
        let ann = desc.annotations().clone().unwrap_or_default();
        let tag = ann
            .get("io.containerd.image.name")
            .cloned()
            .or_else(|| ann.get("org.opencontainers.image.ref.name").cloned());
        let manifest = resolve_manifest(c, desc.digest().as_ref(), 0)?;
        let config = c
            .json(&blob_path(manifest.config().digest().as_ref())?)?
            .to_vec();
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

/// Follow nested indexes down to the manifest for linux/<host arch> (or the first one).
fn resolve_manifest(c: &Contents, digest: &str, depth: u32) -> Result<ImageManifest, StoreError> {
    if depth > 4 {
        return Err(invalid("OCI index nesting too deep"));
    }
    let v: serde_json::Value = serde_json::from_slice(c.json(&blob_path(digest)?)?)
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
        return resolve_manifest(c, pick.digest().as_ref(), depth + 1);
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

/// The archive's tar stream, decompressing a gzip or zstd archive.
fn decompressed<'a, R: Read + 'a>(reader: R) -> Result<Box<dyn Read + 'a>, StoreError> {
    let mut br = io::BufReader::with_capacity(1 << 20, reader);
    let magic = br
        .fill_buf()
        .map_err(|e| StoreError::io("reading the archive", e))?
        .get(..4)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(br)
                .map_err(|e| StoreError::io("reading the zstd archive", e))?,
        )
    } else {
        Box::new(br)
    })
}
