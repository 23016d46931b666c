//! `Store::open` repairs what interrupted operations leave and reports what it cannot repair;
//! the store is usable from many threads at once.
#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod store_common;

use std::fs;
use std::sync::Arc;

use berth_image::{Store, StoreOptions};
use store_common::{LayerBuilder, cache_dirs, open_store};

fn image(tag: &str, files: &[&str]) -> Vec<u8> {
    let layers: Vec<Vec<u8>> = files
        .iter()
        .map(|f| LayerBuilder::new().file(f, 0o644, f.as_bytes()).build())
        .collect();
    berth_fixtures::docker_save_archive(&layers, serde_json::json!({}), tag).unwrap()
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn open_removes_leftovers_and_reports_missing_content() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = open_store(root);
    let id = store.load(&image("r:1", &["a", "b"])[..]).unwrap()[0]
        .id
        .clone();
    let layers = store.image_layers(&id).unwrap();
    drop(store);

    // Leftovers of interrupted operations.
    fs::create_dir_all(root.join("overlay2/deadbeef.tmp-1-1/diff")).unwrap();
    fs::create_dir_all(root.join("overlay2/orphan/diff")).unwrap();
    std::os::unix::fs::symlink(
        "../orphan/diff",
        root.join("overlay2/l/ORPHANLINKAAAAAAAAAAAAAAAA"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../gone/diff",
        root.join("overlay2/l/DANGLINGAAAAAAAAAAAAAAAAAA"),
    )
    .unwrap();
    fs::create_dir_all(root.join("image/overlay2/layerdb/sha256/abc.tmp-2-2")).unwrap();
    fs::write(root.join("image/overlay2/repositories.json.tmp-3-3"), b"{").unwrap();
    fs::write(root.join("tmp/spool"), b"x").unwrap();
    let store = open_store(root);
    assert_eq!(cache_dirs(root).len(), 2);
    assert_eq!(fs::read_dir(root.join("overlay2/l")).unwrap().count(), 2);
    assert!(
        !root
            .join("image/overlay2/layerdb/sha256/abc.tmp-2-2")
            .exists()
    );
    assert!(
        !root
            .join("image/overlay2/repositories.json.tmp-3-3")
            .exists()
    );
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert_eq!(store.resolve("r:1").unwrap(), id);
    drop(store);

    // A committed layer whose content vanished is reported, with the image, not deleted.
    fs::remove_dir_all(root.join("overlay2").join(&layers[0].cache_id)).unwrap();
    let (store, warnings) = Store::open(
        root,
        StoreOptions {
            sync_layers: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.object == layers[0].chain_id && w.message.contains("missing")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|w| w.object == id), "{warnings:?}");
    assert!(
        root.join("image/overlay2/layerdb/sha256")
            .join(&layers[0].chain_id[7..])
            .exists()
    );
    assert_eq!(store.resolve("r:1").unwrap(), id);
}

#[test]
fn concurrent_loads_and_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(open_store(tmp.path()));
    let shared = image("same:1", &["s1", "s2"]);
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                for j in 0..3 {
                    store.load(&shared[..]).unwrap();
                    let own = image(&format!("own{i}:{j}"), &["s1", &format!("t{i}{j}")]);
                    let id = store.load(&own[..]).unwrap()[0].id.clone();
                    store
                        .delete(&format!("own{i}:{j}"), false, false, &[])
                        .unwrap();
                    assert!(store.resolve(&id).is_err());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Only the shared image is left, stored once; a reopen finds nothing to repair.
    assert_eq!(store.image_ids().unwrap().len(), 1);
    assert_eq!(cache_dirs(tmp.path()).len(), 2);
    drop(store);
    let _ = open_store(tmp.path());
    assert_eq!(cache_dirs(tmp.path()).len(), 2);
}
