//! Loading the busybox `docker save` fixture lays out Docker's overlay2 files.
#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod store_common;

use std::fs;
use std::path::Path;

use berth_image::ids;
use store_common::{cache_dirs, open_store};

fn busybox_archive() -> Vec<u8> {
    fs::read(berth_fixtures::busybox_image_archive().unwrap()).unwrap()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn load_busybox_writes_docker_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = open_store(root);
    let archive = busybox_archive();
    let loaded = store.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].repo_tags, vec!["busybox:latest".to_string()]);
    assert_eq!(
        loaded[0].messages(),
        vec!["Loaded image: busybox:latest".to_string()]
    );
    let id = loaded[0].id.clone();

    // The config is stored verbatim under its digest.
    let content = fs::read(
        root.join("image/overlay2/imagedb/content/sha256")
            .join(ids::hex_of(&id)),
    )
    .unwrap();
    assert_eq!(ids::sha256_digest(&content), id);
    let mut ar = tar::Archive::new(&archive[..]);
    let cfg_in_archive = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find_map(|mut e| {
            let p = e.path().unwrap().to_string_lossy().into_owned();
            (p.ends_with(".json") && p != "manifest.json").then(|| {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut v).unwrap();
                v
            })
        })
        .unwrap();
    assert_eq!(content, cfg_in_archive);
    assert!(
        root.join("image/overlay2/imagedb/metadata/sha256")
            .join(ids::hex_of(&id))
            .join("lastUpdated")
            .is_file()
    );

    // repositories.json as Docker writes it.
    let repos: serde_json::Value =
        serde_json::from_str(&read(&root.join("image/overlay2/repositories.json"))).unwrap();
    assert_eq!(
        repos["Repositories"]["busybox"]["busybox:latest"],
        serde_json::json!(id)
    );

    // layerdb: one layer, chain id = diff id, diff/size/cache-id, no parent.
    let cfg: serde_json::Value = serde_json::from_slice(&content).unwrap();
    let diff_id = cfg["rootfs"]["diff_ids"][0].as_str().unwrap().to_string();
    let layer_dir = root
        .join("image/overlay2/layerdb/sha256")
        .join(ids::hex_of(&diff_id));
    assert_eq!(read(&layer_dir.join("diff")), diff_id);
    assert!(!layer_dir.join("parent").exists());
    let cache_id = read(&layer_dir.join("cache-id"));
    let size: u64 = read(&layer_dir.join("size")).parse().unwrap();
    let busybox_len = fs::metadata("/bin/busybox").unwrap().len();
    assert!(size >= busybox_len, "size {size} < busybox {busybox_len}");

    // overlay2/<cache>: diff + link, no lower/work for a base layer; l/<link> → ../<cache>/diff.
    let cdir = root.join("overlay2").join(&cache_id);
    assert!(cdir.join("diff/bin/busybox").is_file());
    assert!(
        fs::symlink_metadata(cdir.join("diff/bin/sh"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let link = read(&cdir.join("link"));
    assert_eq!(link.len(), 26);
    assert_eq!(
        fs::read_link(root.join("overlay2/l").join(&link)).unwrap(),
        Path::new("..").join(&cache_id).join("diff")
    );
    assert!(!cdir.join("lower").exists());
    assert!(!cdir.join("work").exists());
    assert_eq!(cache_dirs(root), vec![cache_id.clone()]);

    // Loading again dedupes: same id, no new cache dir.
    let again = store.load(&archive[..]).unwrap();
    assert_eq!(again[0].id, id);
    assert!(again[0].replaced.is_empty());
    assert_eq!(cache_dirs(root), vec![cache_id]);

    // Reopen: nothing to repair, image resolvable.
    drop(store);
    let store = open_store(root);
    assert_eq!(store.resolve("busybox").unwrap(), id);
    let inspect = store.inspect("busybox:latest").unwrap();
    assert_eq!(inspect.root_fs.layers, vec![diff_id]);
    assert_eq!(inspect.size, size);
    assert_eq!(inspect.repo_tags, vec!["busybox:latest".to_string()]);
    assert_eq!(inspect.graph_driver.name, "overlay2");
    assert!(inspect.graph_driver.data["UpperDir"].ends_with("/diff"));
}

#[test]
fn save_then_load_into_another_store_gives_same_id() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = open_store(a.path());
    let id = sa.load(&busybox_archive()[..]).unwrap()[0].id.clone();
    let mut out = Vec::new();
    sa.save(&["busybox"], &mut out).unwrap();
    let sb = open_store(b.path());
    let loaded = sb.load(&out[..]).unwrap();
    assert_eq!(loaded[0].id, id);
    assert_eq!(loaded[0].repo_tags, vec!["busybox:latest".to_string()]);
    // Saving twice gives the same bytes (deterministic export).
    let mut out2 = Vec::new();
    sb.save(&["busybox:latest"], &mut out2).unwrap();
    assert!(out == out2, "save is not deterministic");
}

#[test]
fn load_rejects_layer_not_matching_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let good = berth_fixtures::layer_tar_of(&berth_fixtures::busybox_rootfs().unwrap()).unwrap();
    let mut archive =
        berth_fixtures::docker_save_archive(&[good], serde_json::json!({}), "x:y").unwrap();
    // Corrupt one byte of a file's content inside the layer tar (past the outer headers).
    let pos = archive.len() / 2;
    archive[pos] ^= 0xff;
    let err = store.load(&archive[..]).unwrap_err();
    assert!(
        err.to_string().contains("invalid diffID") || err.to_string().contains("layer"),
        "{err}"
    );
    assert!(store.image_ids().unwrap().is_empty());
    drop(store);
    // Nothing half-made survives a reopen.
    let _ = open_store(tmp.path());
    assert!(cache_dirs(tmp.path()).is_empty());
}
