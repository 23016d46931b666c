//! References, shared layers, rmi/prune semantics and import.
#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod store_common;

use std::fs;

use berth_image::archive::import::ImportOptions;
use berth_image::delete::DeleteResponseItem::{Deleted, Untagged};
use berth_image::{ErrorKind, ids, reference};
use store_common::{LayerBuilder, cache_dirs, open_store};

fn image(layers: &[Vec<u8>], tag: &str) -> Vec<u8> {
    berth_fixtures::docker_save_archive(
        layers,
        serde_json::json!({"created": "2026-02-02T00:00:00Z"}),
        tag,
    )
    .unwrap()
}

#[test]
fn shared_layers_are_stored_once_and_rmi_frees_only_unshared() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let base = LayerBuilder::new().file("base", 0o644, b"base").build();
    let a1 = LayerBuilder::new().file("a", 0o644, b"a").build();
    let b1 = LayerBuilder::new().file("b", 0o644, b"b").build();
    let a = store.load(&image(&[base.clone(), a1], "a:1")[..]).unwrap()[0]
        .id
        .clone();
    let b = store.load(&image(&[base, b1], "b:1")[..]).unwrap()[0]
        .id
        .clone();
    assert_eq!(
        cache_dirs(tmp.path()).len(),
        3,
        "the shared base is stored once"
    );
    let a_layers = store.image_layers(&a).unwrap();
    let b_layers = store.image_layers(&b).unwrap();
    assert_eq!(a_layers[0], b_layers[0]);

    let items = store.delete("a:1", false, false, &[]).unwrap();
    assert_eq!(
        items,
        vec![
            Untagged("a:1".into()),
            Deleted(a.clone()),
            Deleted(a_layers[1].chain_id.clone())
        ]
    );
    assert_eq!(cache_dirs(tmp.path()).len(), 2);
    assert!(store.resolve("a:1").is_err());

    let items = store.delete("b", false, false, &[]).unwrap_err();
    assert_eq!(items.kind(), ErrorKind::NotFound);
    assert_eq!(items.to_string(), "No such image: b:latest");
    let items = store.delete("b:1", false, false, &[]).unwrap();
    assert_eq!(
        items,
        vec![
            Untagged("b:1".into()),
            Deleted(b.clone()),
            Deleted(b_layers[1].chain_id.clone()),
            Deleted(b_layers[0].chain_id.clone())
        ]
    );
    assert!(cache_dirs(tmp.path()).is_empty());
    assert_eq!(
        fs::read_dir(tmp.path().join("overlay2/l")).unwrap().count(),
        0
    );
    assert_eq!(
        fs::read_dir(tmp.path().join("image/overlay2/layerdb/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn tag_untag_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let l = LayerBuilder::new().file("f", 0o644, b"f").build();
    let id = store.load(&image(&[l], "busybox:latest")[..]).unwrap()[0]
        .id
        .clone();
    let hex = ids::hex_of(&id).to_string();

    assert_eq!(store.resolve("busybox").unwrap(), id);
    assert_eq!(
        store.resolve("docker.io/library/busybox:latest").unwrap(),
        id
    );
    assert_eq!(store.resolve(&hex).unwrap(), id);
    assert_eq!(store.resolve(&hex[..12]).unwrap(), id);
    assert_eq!(store.resolve(&format!("sha256:{}", &hex[..8])).unwrap(), id);
    assert_eq!(store.resolve(&id).unwrap(), id);
    assert_eq!(
        store.resolve("nope").unwrap_err().to_string(),
        "No such image: nope:latest"
    );
    assert_eq!(
        store.resolve("Nope").unwrap_err().to_string(),
        "invalid reference format: repository name must be lowercase"
    );

    let r = store.tag(&hex[..12], "localhost:5000/team/app:v2").unwrap();
    assert_eq!(r.familiar_string(), "localhost:5000/team/app:v2");
    assert_eq!(store.resolve("localhost:5000/team/app:v2").unwrap(), id);
    store.tag("busybox", "user/img").unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let dref = reference::parse_normalized(&format!("busybox@{digest}")).unwrap();
    store.add_reference(&dref, &id).unwrap();
    assert_eq!(store.resolve(&format!("busybox@{digest}")).unwrap(), id);
    assert_eq!(
        store
            .resolve(&format!("busybox:whatever@{digest}"))
            .unwrap(),
        id
    );
    assert!(store.tag("busybox", &format!("x@{digest}")).is_err());

    let repos: serde_json::Value = serde_json::from_slice(
        &fs::read(tmp.path().join("image/overlay2/repositories.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        repos["Repositories"]["localhost:5000/team/app"]["localhost:5000/team/app:v2"],
        serde_json::json!(id)
    );
    assert_eq!(
        repos["Repositories"]["user/img"]["user/img:latest"],
        serde_json::json!(id)
    );
    assert_eq!(
        repos["Repositories"]["busybox"][format!("busybox@{digest}")],
        serde_json::json!(id)
    );

    let mut tags = store.repo_tags(&id);
    tags.sort();
    assert_eq!(
        tags,
        vec![
            "busybox:latest",
            "localhost:5000/team/app:v2",
            "user/img:latest"
        ]
    );
    assert_eq!(store.repo_digests(&id), vec![format!("busybox@{digest}")]);

    // By id with several repositories: Docker's soft conflict.
    let err = store.delete(&hex[..12], false, false, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            &hex[..12]
        )
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // By tag with other tags left: only untagged.
    assert_eq!(
        store.delete("user/img", false, false, &[]).unwrap(),
        vec![Untagged("user/img:latest".into())]
    );
    assert_eq!(
        store.untag("localhost:5000/team/app:v2").unwrap(),
        "localhost:5000/team/app:v2"
    );
    assert!(store.resolve("localhost:5000/team/app:v2").is_err());

    // Removing the last tag of a repository also drops its digest references, then the image.
    let items = store.delete("busybox", false, false, &[]).unwrap();
    assert_eq!(items[0], Untagged("busybox:latest".into()));
    assert_eq!(items[1], Untagged(format!("busybox@{digest}")));
    assert_eq!(items[2], Deleted(id.clone()));

    // References survive a reopen.
    let l = LayerBuilder::new().file("g", 0o644, b"g").build();
    let id2 = store.load(&image(&[l], "again:1")[..]).unwrap()[0]
        .id
        .clone();
    drop(store);
    let store = open_store(tmp.path());
    assert_eq!(store.resolve("again:1").unwrap(), id2);
}

#[test]
fn running_container_blocks_forced_delete_and_prune_keeps_used() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let l = LayerBuilder::new().file("f", 0o644, b"f").build();
    let id = store.load(&image(&[l], "used:1")[..]).unwrap()[0]
        .id
        .clone();
    let uses = [berth_image::ImageUse {
        container_id: "f".repeat(64),
        image_id: id.clone(),
        running: true,
    }];
    let err = store.delete(&id, true, false, &uses).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container ffffffffffff",
            &ids::hex_of(&id)[..12]
        )
    );
    // Forced delete by tag just untags when a container uses the image.
    let l2 = LayerBuilder::new().file("dangling", 0o644, b"d").build();
    let dangling = store.load(&image(&[l2], "dang:1")[..]).unwrap()[0]
        .id
        .clone();
    store.untag("dang:1").unwrap();
    let (items, reclaimed) = store.prune(true, &uses).unwrap();
    assert!(items.contains(&Deleted(dangling.clone())), "{items:?}");
    assert_eq!(reclaimed, 1);
    assert!(store.resolve(&id).is_ok());
    let (items, _) = store.prune(false, &uses).unwrap();
    assert!(items.is_empty(), "used image must stay: {items:?}");
    let (items, reclaimed) = store.prune(false, &[]).unwrap();
    assert!(items.contains(&Untagged("used:1".into())) && items.contains(&Deleted(id)));
    assert_eq!(reclaimed, 1);
    assert!(store.list(None).unwrap().is_empty());
}

#[test]
fn import_rootfs_tarball() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let rootfs = LayerBuilder::new()
        .dir("bin", 0o755)
        .file("bin/tool", 0o755, b"#!/bin/sh\n")
        .build();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &rootfs).unwrap();
    let gz = gz.finish().unwrap();
    let id = store
        .import(
            &gz[..],
            &ImportOptions {
                repo_tag: Some("imported".into()),
                config: Some(serde_json::json!({"Cmd": ["/bin/tool"]})),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(store.resolve("imported:latest").unwrap(), id);
    let cfg = store.image_config(&id).unwrap();
    assert_eq!(cfg.rootfs.diff_ids, vec![ids::sha256_digest(&rootfs)]);
    assert_eq!(cfg.comment.as_deref(), Some("Imported from -"));
    assert_eq!(cfg.config.unwrap()["Cmd"][0], "/bin/tool");
    let list = store.list(None).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].repo_tags, vec!["imported:latest".to_string()]);
    assert_eq!(list[0].size, 10);
    let hist = store.history("imported").unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].id, id);
    assert_eq!(hist[0].comment, "Imported from -");
    // The saved layer is the uncompressed tar.
    let mut out = Vec::new();
    store.save(&["imported"], &mut out).unwrap();
    let other = tempfile::tempdir().unwrap();
    assert_eq!(open_store(other.path()).load(&out[..]).unwrap()[0].id, id);
}

#[test]
fn load_retags_and_history_marks_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let l1 = LayerBuilder::new().file("one", 0o644, b"1").build();
    let l2 = LayerBuilder::new().file("two", 0o644, b"22").build();
    let old = store
        .load(&image(std::slice::from_ref(&l1), "app:1")[..])
        .unwrap()[0]
        .id
        .clone();
    let loaded = store.load(&image(&[l1, l2], "app:1")[..]).unwrap();
    let new = loaded[0].id.clone();
    assert_eq!(loaded[0].replaced, vec![("app:1".to_string(), old.clone())]);
    assert_eq!(
        loaded[0].messages()[0],
        format!(
            "The image app:1 already exists, renaming the old one with ID {old} to empty string"
        )
    );
    assert_eq!(store.resolve("app:1").unwrap(), new);
    assert!(
        store.repo_tags(&old).is_empty(),
        "the old image is dangling now"
    );

    let hist = store.history("app:1").unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!((hist[0].id.as_str(), hist[0].size), (new.as_str(), 2));
    assert_eq!((hist[1].id.as_str(), hist[1].size), ("<missing>", 1));
    assert_eq!(hist[0].created_by, "berth-fixtures");
    assert_eq!(hist[0].created, 1_767_225_600); // 2026-01-01T00:00:00Z in the fixture history
    let list = store.list(None).unwrap();
    assert_eq!(list.len(), 2);
    let summary = list.iter().find(|s| s.id == new).unwrap();
    assert_eq!(
        (summary.size, summary.containers, summary.shared_size),
        (3, -1, -1)
    );
}
