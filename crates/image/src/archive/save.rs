//! `docker save`: images as a `docker save` archive: per layer `<dir>/layer.tar` (+ `VERSION`,
//! `json`), `<config hex>.json`, `manifest.json` and the legacy `repositories` file.
//!
//! Layers are exported from their diff dirs with [`crate::apply::export_layer`] into a temp
//! file, hashed, and checked against the diff id before they are written: a layer whose
//! export does not reproduce its diff id would make the archive unloadable, so that is an
//! error rather than a silently broken archive.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, Write};

use sha2::{Digest, Sha256};

use crate::ids::hex_of;
use crate::layer_store::TempDirGuard;
use crate::reference::{self, AnyReference};
use crate::store::{Store, StoreError, lookup_form};

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(kind);
    h
}

impl Store {
    /// Write the images named by `names` (references or ids) as one `docker save` archive.
    pub fn save<W: Write>(&self, names: &[&str], writer: W) -> Result<(), StoreError> {
        // Resolve everything first: an unknown name fails before any byte is written.
        let mut images: Vec<(String, Vec<String>)> = Vec::new();
        for n in names {
            let id = self.resolve(n)?;
            let tag = match reference::parse_any(n)? {
                AnyReference::Named(r) if !crate::store::is_id_prefix_of(&id, n) => {
                    let r = lookup_form(r);
                    r.tag().map(|_| r.familiar_string())
                }
                _ => None,
            };
            match images.iter_mut().find(|(i, _)| *i == id) {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((id, tag.into_iter().collect())),
            }
        }
        let mut tar = tar::Builder::new(writer);
        let mut written: HashSet<String> = HashSet::new();
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let spool_dir = crate::atomic::tmp_path_for(&self.layout.tmp_dir().join("save"));
        let _guard = TempDirGuard(Some(spool_dir.clone()));
        std::fs::create_dir_all(&spool_dir)
            .map_err(|e| StoreError::io(format!("creating {}", spool_dir.display()), e))?;
        let werr = |e: io::Error| StoreError::io("writing the save archive", e);
        for (id, tags) in &images {
            let config = self.image_config_bytes(id)?;
            let layers = self.image_layers(id)?;
            let mut layer_paths = Vec::new();
            let mut parent_dir: Option<String> = None;
            for l in &layers {
                let dir = hex_of(&l.chain_id).to_string();
                let path = format!("{dir}/layer.tar");
                if written.insert(dir.clone()) {
                    let mut spool = tempfile_in(&spool_dir)?;
                    let mut hw = HashingWriter {
                        inner: io::BufWriter::new(&mut spool),
                        hash: Sha256::new(),
                        len: 0,
                    };
                    self.layers.tar_stream(l, &mut hw)?;
                    hw.flush().map_err(werr)?;
                    let digest = format!("sha256:{}", hex::encode(hw.hash.finalize_reset()));
                    let len = hw.len;
                    drop(hw);
                    if digest != l.diff_id {
                        return Err(StoreError::Invalid(format!(
                            "exporting layer {}: the tar does not reproduce diff id {} (got {digest})",
                            l.chain_id, l.diff_id
                        )));
                    }
                    spool.rewind().map_err(werr)?;
                    let mut h = header(0, 0o755, tar::EntryType::Directory);
                    tar.append_data(&mut h, format!("{dir}/"), io::empty())
                        .map_err(werr)?;
                    let mut h = header(3, 0o644, tar::EntryType::Regular);
                    tar.append_data(&mut h, format!("{dir}/VERSION"), &b"1.0"[..])
                        .map_err(werr)?;
                    let mut v1 = serde_json::json!({"id": dir});
                    if let Some(p) = &parent_dir {
                        v1["parent"] = serde_json::Value::String(p.clone());
                    }
                    let v1 = serde_json::to_vec(&v1).unwrap_or_default();
                    let mut h = header(v1.len() as u64, 0o644, tar::EntryType::Regular);
                    tar.append_data(&mut h, format!("{dir}/json"), &v1[..])
                        .map_err(werr)?;
                    let mut h = header(len, 0o644, tar::EntryType::Regular);
                    tar.append_data(&mut h, &path, (&mut spool).take(len))
                        .map_err(werr)?;
                }
                parent_dir = Some(dir);
                layer_paths.push(path);
            }
            let config_name = format!("{}.json", hex_of(id));
            if written.insert(config_name.clone()) {
                let mut h = header(config.len() as u64, 0o644, tar::EntryType::Regular);
                tar.append_data(&mut h, &config_name, &config[..])
                    .map_err(werr)?;
            }
            for t in tags {
                if let Ok(r) = reference::parse_normalized(t)
                    && let (Some(tag), Some(top)) = (r.tag(), parent_dir.as_ref())
                {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(tag.to_string(), top.clone());
                }
            }
            manifest.push(serde_json::json!({
                "Config": config_name,
                "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { serde_json::json!(tags) },
                "Layers": layer_paths,
            }));
        }
        let m = serde_json::to_vec(&manifest).unwrap_or_default();
        let mut h = header(m.len() as u64, 0o644, tar::EntryType::Regular);
        tar.append_data(&mut h, "manifest.json", &m[..])
            .map_err(werr)?;
        if !repositories.is_empty() {
            let r = serde_json::to_vec(&repositories).unwrap_or_default();
            let mut h = header(r.len() as u64, 0o644, tar::EntryType::Regular);
            tar.append_data(&mut h, "repositories", &r[..])
                .map_err(werr)?;
        }
        tar.into_inner().and_then(|mut w| w.flush()).map_err(werr)?;
        Ok(())
    }
}

fn tempfile_in(dir: &std::path::Path) -> Result<File, StoreError> {
    let p = crate::atomic::tmp_path_for(&dir.join("layer"));
    let f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .map_err(|e| StoreError::io(format!("creating {}", p.display()), e))?;
    let _ = std::fs::remove_file(&p);
    Ok(f)
}
