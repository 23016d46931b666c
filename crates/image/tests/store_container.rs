//! Container layers on the busybox image: init layer content, overlay mount, changes,
//! export, commit. Mounting tests run in a child process in its own mount namespace.
#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod store_common;

use std::fs;

use berth_image::apply::ChangeKind;
use berth_image::commit::CommitOptions;
use berth_image::{ImageUse, InitLayerSpec};
use store_common::{in_mount_ns, is_root, open_store};

fn load_busybox(store: &berth_image::Store) -> String {
    let a = fs::read(berth_fixtures::busybox_image_archive().unwrap()).unwrap();
    store.load(&a[..]).unwrap()[0].id.clone()
}

#[test]
fn container_layers_have_docker_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = open_store(root);
    let id = load_busybox(&store);
    let top = store.image_layers(&id).unwrap().pop().unwrap();
    let cid = "c0ffee".repeat(10) + "abcd";
    let rec = store
        .create_container_layers(&cid, Some("busybox"), &InitLayerSpec::default())
        .unwrap();
    let meta = root.join("image/overlay2/layerdb/mounts").join(&cid);
    assert_eq!(
        fs::read_to_string(meta.join("mount-id")).unwrap(),
        rec.mount_id
    );
    assert_eq!(
        fs::read_to_string(meta.join("init-id")).unwrap(),
        format!("{}-init", rec.mount_id)
    );
    assert_eq!(
        fs::read_to_string(meta.join("parent")).unwrap(),
        top.chain_id
    );

    let init = root.join("overlay2").join(format!("{}-init", rec.mount_id));
    for d in ["dev/pts", "dev/shm", "proc", "sys"] {
        assert!(init.join("diff").join(d).is_dir(), "{d}");
    }
    for f in [
        "dev/console",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        ".dockerenv",
    ] {
        let m = fs::metadata(init.join("diff").join(f)).unwrap();
        assert!(m.is_file() && m.len() == 0, "{f}");
    }
    assert_eq!(
        fs::read_link(init.join("diff/etc/mtab")).unwrap().to_str(),
        Some("/proc/mounts")
    );
    let image_link =
        fs::read_to_string(root.join("overlay2").join(&top.cache_id).join("link")).unwrap();
    assert_eq!(
        fs::read_to_string(init.join("lower")).unwrap(),
        format!("l/{image_link}")
    );
    let init_link = fs::read_to_string(init.join("link")).unwrap();
    let rw = root.join("overlay2").join(&rec.mount_id);
    assert_eq!(
        fs::read_to_string(rw.join("lower")).unwrap(),
        format!("l/{init_link}:l/{image_link}")
    );
    for d in ["diff", "work", "merged"] {
        assert!(rw.join(d).is_dir(), "{d}");
    }
    assert!(
        store
            .create_container_layers(&cid, Some("busybox"), &InitLayerSpec::default())
            .is_err()
    );

    // The image cannot be removed without force while the container uses it.
    let uses = [ImageUse {
        container_id: cid.clone(),
        image_id: id.clone(),
        running: false,
    }];
    let err = store.delete("busybox", false, false, &uses).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container {} is using its referenced image {}",
            &cid[..12],
            &berth_image::ids::hex_of(&id)[..12]
        )
    );
    // Removing the container layers leaves only the image's dir.
    store.remove_container_layers(&cid).unwrap();
    assert!(!meta.exists() && !rw.exists() && !init.exists());
    assert_eq!(store_common::cache_dirs(root), vec![top.cache_id]);
}

#[test]
fn mount_write_changes_unmount_commit() {
    if !is_root() {
        eprintln!("SKIP: needs root for overlay mounts");
        return;
    }
    in_mount_ns("mount_write_changes_unmount_commit", || {
        let tmp = tempfile::tempdir().unwrap();
        let store = open_store(tmp.path());
        let id = load_busybox(&store);
        let cid = format!("ctr{}", std::process::id());
        store
            .create_container_layers(&cid, Some(&id), &InitLayerSpec::default())
            .unwrap();
        let merged = store.mount(&cid).unwrap();
        assert!(merged.join("bin/busybox").is_file());
        assert!(merged.join(".dockerenv").is_file());
        // Refcounted: a second mount is free, the first unmount keeps it.
        assert_eq!(store.mount(&cid).unwrap(), merged);
        fs::write(merged.join("hello.txt"), b"hi").unwrap();
        fs::remove_file(merged.join("bin/ls")).unwrap();
        fs::write(merged.join("etc/passwd"), b"root:x:0:0::/:/bin/sh\n").unwrap();
        let (rw, rootfs) = store.container_size(&cid).unwrap();
        assert_eq!(rw, 2 + 22, "hello.txt + the new /etc/passwd");
        assert_eq!(rootfs, rw + store.image_size(&id).unwrap());
        let changes = store.changes(&cid).unwrap();
        let find = |p: &str| changes.iter().find(|c| c.path == p).map(|c| c.kind);
        assert_eq!(find("/hello.txt"), Some(ChangeKind::Added));
        assert_eq!(find("/bin/ls"), Some(ChangeKind::Deleted));
        assert_eq!(find("/etc/passwd"), Some(ChangeKind::Modified));
        store.unmount(&cid).unwrap();
        assert!(
            merged.join("bin/busybox").exists(),
            "first unmount must keep the mount"
        );
        store.unmount(&cid).unwrap();
        assert!(!merged.join("bin/busybox").exists());

        // Export (mounts for the duration).
        let mut tar = Vec::new();
        store.export_container(&cid, &mut tar).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.trim_end_matches('/') == "hello.txt"));
        assert!(!names.iter().any(|n| n == "bin/ls"));

        // Commit: one more layer, diff id appended, history entry, parent recorded.
        let new_id = store
            .commit(
                &cid,
                &CommitOptions {
                    image_id: Some(id.clone()),
                    comment: "msg".into(),
                    author: "me".into(),
                    created_by: "sh".into(),
                    repo_tag: Some("committed:v1".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let cfg = store.image_config(&new_id).unwrap();
        let old = store.image_config(&id).unwrap();
        assert_eq!(cfg.rootfs.diff_ids.len(), old.rootfs.diff_ids.len() + 1);
        assert_eq!(cfg.history.len(), old.history.len() + 1);
        assert_eq!(cfg.author.as_deref(), Some("me"));
        assert_eq!(store.inspect("committed:v1").unwrap().parent, id);
        let hist = store.history("committed:v1").unwrap();
        assert_eq!(hist[0].id, new_id);
        assert_eq!(hist[0].comment, "msg");
        assert_eq!(hist[0].tags, vec!["committed:v1".to_string()]);
        assert_eq!(hist[1].id, id);

        // A container of the committed image sees the change.
        let c2 = format!("c2{}", std::process::id());
        store
            .create_container_layers(&c2, Some("committed:v1"), &InitLayerSpec::default())
            .unwrap();
        let m2 = store.mount(&c2).unwrap();
        assert_eq!(fs::read(m2.join("hello.txt")).unwrap(), b"hi");
        assert!(!m2.join("bin/ls").exists());
        store.unmount(&c2).unwrap();
        store.remove_container_layers(&c2).unwrap();
        store.remove_container_layers(&cid).unwrap();

        // The parent can't go while the child image exists.
        let err = store.delete(&id, true, false, &[]).unwrap_err();
        assert!(
            err.to_string().contains("image has dependent child images"),
            "{err}"
        );
    });
}

#[test]
fn legacy_mount_path_works() {
    if !is_root() {
        eprintln!("SKIP: needs root for overlay mounts");
        return;
    }
    in_mount_ns("legacy_mount_path_works", || {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = berth_image::Store::open(
            tmp.path(),
            berth_image::StoreOptions {
                sync_layers: false,
                mount_method: berth_image::overlay::MountMethod::Legacy,
            },
        )
        .unwrap();
        let id = load_busybox(&store);
        store
            .create_container_layers("legacy", Some(&id), &InitLayerSpec::default())
            .unwrap();
        let merged = store.mount("legacy").unwrap();
        assert!(merged.join("bin/busybox").is_file());
        // The mount(2) path must not have changed this thread's cwd.
        assert_ne!(
            std::env::current_dir().unwrap(),
            tmp.path().join("overlay2")
        );
        store.unmount("legacy").unwrap();
        store.remove_container_layers("legacy").unwrap();
    });
}

#[test]
fn ephemeral_layers_mount_volatile_remount_and_detach() {
    if !is_root() {
        eprintln!("SKIP: needs root for overlay mounts");
        return;
    }
    in_mount_ns("ephemeral_layers_mount_volatile_remount_and_detach", || {
        let tmp = tempfile::tempdir().unwrap();
        let store = open_store(tmp.path());
        let id = load_busybox(&store);
        let cid = format!("eph{}", std::process::id());
        let spec = InitLayerSpec {
            ephemeral: true,
            ..InitLayerSpec::default()
        };
        let rec = store
            .create_container_layers(&cid, Some(&id), &spec)
            .unwrap();
        assert!(rec.ephemeral);
        assert!(store.container_layers(&cid).unwrap().ephemeral);
        let merged = store.mount(&cid).unwrap();
        let rw = tmp.path().join("overlay2").join(&rec.mount_id);
        // The kernel marks the work dir of a volatile mount.
        assert!(rw.join("work/work/incompat/volatile").is_dir());
        fs::write(merged.join("kept.txt"), b"x").unwrap();
        store.unmount(&cid).unwrap();
        // The kernel refuses to remount a work dir a volatile mount marked, unless cleared.
        let merged = store.mount(&cid).unwrap();
        assert_eq!(fs::read(merged.join("kept.txt")).unwrap(), b"x");
        let trash = store.detach_container_layers(&cid).unwrap();
        assert!(!rw.exists());
        assert!(store.container_layers(&cid).is_err());
        trash.purge();
        let left: Vec<_> = fs::read_dir(tmp.path().join("overlay2"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(&rec.mount_id) || n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    });
}
