//! Open-time sweep: remove what interrupted operations left behind and report what cannot be
//! repaired. Safe because every operation commits by one rename (see [`crate::atomic`]):
//! temporaries (`*.tmp-*`), driver dirs no layerdb entry or mount record names, layers no image
//! or container uses, and dangling short links are garbage. Missing content under a committed
//! entry is not guessable and is only reported.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use crate::atomic;
use crate::container_layers;
use crate::layer_store;
use crate::store::{Store, StoreError, StoreWarning, lock};

fn warn(out: &mut Vec<StoreWarning>, object: impl Into<String>, message: impl Into<String>) {
    out.push(StoreWarning {
        object: object.into(),
        message: message.into(),
    });
}

/// Remove every `*.tmp-*` entry directly inside `dir`.
fn sweep_tmp(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if atomic::is_tmp_name(&name) {
            let p = e.path();
            tracing::debug!(path = %p.display(), "removing leftover temporary");
            let r = if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            if let Err(err) = r {
                tracing::warn!(path = %p.display(), error = %err, "cannot remove leftover");
            }
        }
    }
}

/// Run the sweep (called by [`Store::open`] before the store is shared).
pub(crate) fn sweep(store: &Store) -> Result<Vec<StoreWarning>, StoreError> {
    let layout = &store.layout;
    let mut warnings = Vec::new();

    // 1. Temporaries.
    for d in [
        layout.image_dir(),
        layout.layerdb(),
        layout.mounts_db(),
        layout.imagedb_content(),
        layout.imagedb_metadata(),
        layout.driver_home(),
    ] {
        sweep_tmp(&d);
    }
    if let Ok(rd) = fs::read_dir(layout.imagedb_metadata()) {
        for e in rd.flatten() {
            sweep_tmp(&e.path());
        }
    }
    if let Ok(rd) = fs::read_dir(layout.tmp_dir()) {
        for e in rd.flatten() {
            let _ = fs::remove_dir_all(e.path()).or_else(|_| fs::remove_file(e.path()));
        }
    }

    // 2. Layers whose metadata or content is broken.
    let mut good_layers = HashSet::new();
    for chain in store.layers.list()? {
        match store.layers.get(&chain) {
            Err(e) => warn(
                &mut warnings,
                &chain,
                format!("unreadable layer metadata: {e}"),
            ),
            Ok(l) => {
                if !layout.cache_dir(&l.cache_id).join("diff").is_dir() {
                    warn(
                        &mut warnings,
                        &chain,
                        format!("layer content overlay2/{}/diff is missing", l.cache_id),
                    );
                } else if let Some(p) = l.parent.as_ref().filter(|p| !store.layers.exists(p)) {
                    warn(
                        &mut warnings,
                        &chain,
                        format!("parent layer {p} is missing"),
                    );
                } else {
                    good_layers.insert(chain);
                }
            }
        }
    }

    // 3. What images and containers reference (whole chains).
    let mut referenced: HashSet<String> = HashSet::new();
    let mark = |top: &str, referenced: &mut HashSet<String>| -> Result<(), String> {
        let mut cur = Some(top.to_string());
        while let Some(c) = cur {
            referenced.insert(c.clone());
            match store.layers.get(&c) {
                Ok(l) => cur = l.parent,
                Err(e) => return Err(format!("layer {c}: {e}")),
            }
        }
        Ok(())
    };
    for id in store.images.list()? {
        match store.images.get(&id) {
            Err(e) => warn(&mut warnings, &id, format!("unreadable image config: {e}")),
            Ok(cfg) => {
                if let Some(top) = cfg.top_chain_id() {
                    let broken = store.layers.chain(&top).map_or(true, |chain| {
                        chain.iter().any(|l| !good_layers.contains(&l.chain_id))
                    });
                    if let Err(e) = mark(&top, &mut referenced) {
                        warn(
                            &mut warnings,
                            &id,
                            format!("image depends on a missing layer: {e}"),
                        );
                    } else if broken {
                        warn(&mut warnings, &id, "image depends on a broken layer");
                    }
                }
            }
        }
    }
    let mut live_cache: HashSet<String> = HashSet::new();
    for cid in container_layers::list(layout) {
        match container_layers::get(layout, &cid) {
            Err(e) => warn(
                &mut warnings,
                &cid,
                format!("unreadable container mount record: {e}"),
            ),
            Ok(rec) => {
                if !layout.cache_dir(&rec.mount_id).join("diff").is_dir() {
                    warn(&mut warnings, &cid, "container read-write layer is missing");
                }
                live_cache.insert(rec.mount_id.clone());
                if let Some(i) = rec.init_id {
                    live_cache.insert(i);
                }
                if let Some(p) = rec.parent
                    && let Err(e) = mark(&p, &mut referenced)
                {
                    warn(
                        &mut warnings,
                        &cid,
                        format!("container depends on a missing layer: {e}"),
                    );
                }
            }
        }
    }

    // 4. Unreferenced layers (left by a load interrupted before its image was written).
    let _gc = store.gc.write().unwrap_or_else(|e| e.into_inner());
    for chain in store.layers.list()? {
        if referenced.contains(&chain) {
            continue;
        }
        // Broken layers were reported above and stay for inspection.
        if good_layers.contains(&chain)
            && let Err(e) = store.layers.remove(&chain)
        {
            warn(
                &mut warnings,
                &chain,
                format!("cannot remove unused layer: {e}"),
            );
        }
    }
    for chain in store.layers.list()? {
        if let Ok(l) = store.layers.get(&chain) {
            live_cache.insert(l.cache_id);
        }
    }

    // 5. Driver dirs nobody references, then dangling short links.
    if let Ok(rd) = fs::read_dir(layout.driver_home()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "l" || live_cache.contains(&name) {
                continue;
            }
            tracing::debug!(cache_id = %name, "removing unreferenced layer dir");
            if let Err(err) = layer_store::remove_cache_dir(layout, &name) {
                warn(
                    &mut warnings,
                    format!("overlay2/{name}"),
                    format!("cannot remove: {err}"),
                );
            }
        }
    }
    if let Ok(rd) = fs::read_dir(layout.links_dir()) {
        for e in rd.flatten() {
            // metadata() follows the link: an error means the target is gone.
            if fs::metadata(e.path()).is_err() {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    // 6. References to images that do not exist.
    for (r, id) in lock(&store.refs).iter() {
        if !store.images.exists(id) {
            warn(
                &mut warnings,
                r.familiar_string(),
                format!("refers to missing image {id}"),
            );
        }
    }
    Ok(warnings)
}
