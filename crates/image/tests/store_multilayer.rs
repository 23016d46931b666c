//! Multi-layer images: whiteouts, opaque dirs, hardlinks, symlinks, xattrs and ownership
//! survive load → mount → export; save reproduces the layer tars byte for byte; deep
//! stacks mount beyond the mount(2) option-size limit.
#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod store_common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_image::InitLayerSpec;
use berth_image::apply::{ApplyOptions, apply_layer};
use store_common::{LayerBuilder, MTIME, in_mount_ns, is_root, open_store, snapshot};

fn layers() -> Vec<Vec<u8>> {
    let l1 = LayerBuilder::new()
        .dir("a", 0o755)
        .file("a/file1", 0o644, b"one")
        .file("a/file2", 0o600, b"two")
        .dir("d", 0o755)
        .file("d/x", 0o644, b"x")
        .file("d/y", 0o644, b"y")
        .dir("keep", 0o750)
        .file("keep/k", 0o755, b"k")
        .file_owned("owned", 1000, 1001, b"o")
        .dir("w", 0o755)
        .file("w/gone", 0o644, b"bye")
        .build();
    let l2 = LayerBuilder::new()
        .dir("a", 0o755)
        .file("a/.wh.file1", 0o644, b"")
        .dir("d", 0o755)
        .file("d/.wh..wh..opq", 0o644, b"")
        .file("d/z", 0o644, b"z")
        .file("h1", 0o644, b"hard")
        .hardlink("h2", "h1")
        .symlink("s", "a/file2")
        .file_xattr("x", "user.foo", b"bar", b"xattr file")
        .file(".wh.w", 0o644, b"")
        .build();
    let l3 = LayerBuilder::new()
        .dir("a", 0o755)
        .file("a/file3", 0o644, b"three")
        .dir("n", 0o755)
        .dir("n/e", 0o700)
        .file("n/e/deep", 0o644, b"deep")
        .build();
    vec![l1, l2, l3]
}

/// The tree the three layers should produce, built directly.
fn expected_tree(dir: &Path) {
    let mk = |p: &str, mode: u32| {
        fs::create_dir_all(dir.join(p)).unwrap();
        fs::set_permissions(dir.join(p), fs::Permissions::from_mode(mode)).unwrap();
    };
    let file = |p: &str, mode: u32, data: &[u8]| {
        fs::write(dir.join(p), data).unwrap();
        fs::set_permissions(dir.join(p), fs::Permissions::from_mode(mode)).unwrap();
    };
    mk("a", 0o755);
    file("a/file2", 0o600, b"two");
    file("a/file3", 0o644, b"three");
    mk("d", 0o755);
    file("d/z", 0o644, b"z");
    mk("keep", 0o750);
    file("keep/k", 0o755, b"k");
    file("owned", 0o640, b"o");
    std::os::unix::fs::chown(dir.join("owned"), Some(1000), Some(1001)).unwrap();
    file("h1", 0o644, b"hard");
    fs::hard_link(dir.join("h1"), dir.join("h2")).unwrap();
    std::os::unix::fs::symlink("a/file2", dir.join("s")).unwrap();
    file("x", 0o644, b"xattr file");
    rustix::fs::setxattr(
        dir.join("x"),
        "user.foo",
        b"bar",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    mk("n", 0o755);
    mk("n/e", 0o700);
    file("n/e/deep", 0o644, b"deep");
    for (p, _) in snapshot(dir) {
        let ts = rustix::fs::Timespec {
            tv_sec: MTIME as i64,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            dir.join(&p),
            &rustix::fs::Timestamps {
                last_access: ts,
                last_modification: ts,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
}

const INIT_PATHS: &[&str] = &[".dockerenv", "dev", "etc", "proc", "sys"];

fn without_init(s: BTreeMap<String, store_common::Node>) -> BTreeMap<String, store_common::Node> {
    s.into_iter()
        .filter(|(p, _)| {
            !INIT_PATHS
                .iter()
                .any(|i| p == i || p.starts_with(&format!("{i}/")))
        })
        .collect()
}

#[test]
fn multilayer_roundtrip_load_mount_export_save() {
    if !is_root() {
        eprintln!("SKIP: needs root (overlay mounts, file ownership)");
        return;
    }
    in_mount_ns("multilayer_roundtrip_load_mount_export_save", || {
        let tmp = tempfile::tempdir().unwrap();
        let store = open_store(&tmp.path().join("root"));
        let ls = layers();
        let archive =
            berth_fixtures::docker_save_archive(&ls, serde_json::json!({}), "multi:1").unwrap();
        let id = store.load(&archive[..]).unwrap()[0].id.clone();
        assert_eq!(store.image_layers(&id).unwrap().len(), 3);

        let want_dir = tmp.path().join("want");
        fs::create_dir(&want_dir).unwrap();
        expected_tree(&want_dir);
        let want = snapshot(&want_dir);
        // The comparison covers what it claims to.
        assert_eq!(want["x"].xattrs["user.foo"], b"bar");
        assert_eq!(want["h2"].hardlink_of.as_deref(), Some("h1"));
        assert_eq!((want["owned"].uid, want["owned"].gid), (1000, 1001));
        assert_eq!(want["s"].link.as_deref(), Some("a/file2"));
        assert!(
            !want.contains_key("a/file1") && !want.contains_key("w") && !want.contains_key("d/x")
        );

        store
            .create_container_layers("multi", Some("multi:1"), &InitLayerSpec::default())
            .unwrap();
        let merged = store.mount("multi").unwrap();
        let got = without_init(snapshot(&merged));
        assert_eq!(got, want, "merged view differs from the expected tree");

        // Export the container and re-extract: same tree as the merged view.
        let mut tar = Vec::new();
        berth_image::apply::export_layer(&merged, &mut tar).unwrap();
        let mut tar2 = Vec::new();
        store.export_container("multi", &mut tar2).unwrap();
        assert!(tar == tar2, "container export is not deterministic");
        let back = tmp.path().join("back");
        fs::create_dir(&back).unwrap();
        apply_layer(
            &tar[..],
            &back,
            &ApplyOptions {
                preserve_owner: true,
            },
        )
        .unwrap();
        assert_eq!(snapshot(&back), snapshot(&merged));
        store.unmount("multi").unwrap();

        // save reproduces the original layer tars byte for byte.
        let mut saved = Vec::new();
        store.save(&["multi:1"], &mut saved).unwrap();
        let mut found = Vec::new();
        for e in tar::Archive::new(&saved[..]).entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().ends_with("layer.tar") {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut v).unwrap();
                found.push(v);
            }
        }
        assert_eq!(found.len(), 3);
        for (i, l) in ls.iter().enumerate() {
            assert!(found.contains(l), "layer {i} not reproduced byte for byte");
        }
        store.remove_container_layers("multi").unwrap();
    });
}

fn deep_image(n: usize) -> Vec<u8> {
    let layers: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            LayerBuilder::new()
                .file(&format!("f{i}"), 0o644, format!("{i}").as_bytes())
                .file("common", 0o644, format!("layer {i}").as_bytes())
                .build()
        })
        .collect();
    berth_fixtures::docker_save_archive(&layers, serde_json::json!({}), &format!("deep:{n}"))
        .unwrap()
}

#[test]
fn deep_images_mount() {
    if !is_root() {
        eprintln!("SKIP: needs root for overlay mounts");
        return;
    }
    in_mount_ns("deep_images_mount", || {
        let tmp = tempfile::tempdir().unwrap();
        let store = open_store(tmp.path());
        for n in [64usize, 160] {
            let id = store.load(&deep_image(n)[..]).unwrap()[0].id.clone();
            let cid = format!("deep{n}");
            store
                .create_container_layers(&cid, Some(&id), &InitLayerSpec::default())
                .unwrap();
            let merged = store.mount(&cid).unwrap();
            for i in 0..n {
                assert_eq!(
                    fs::read_to_string(merged.join(format!("f{i}"))).unwrap(),
                    format!("{i}")
                );
            }
            assert_eq!(
                fs::read_to_string(merged.join("common")).unwrap(),
                format!("layer {}", n - 1)
            );
            store.unmount(&cid).unwrap();
            assert!(!merged.join("common").exists());
        }
        // The classic mount(2) string cannot hold 160 + init layers; the store says so.
        let (legacy, _) = berth_image::Store::open(
            tmp.path(),
            berth_image::StoreOptions {
                sync_layers: false,
                mount_method: berth_image::overlay::MountMethod::Legacy,
            },
        )
        .unwrap();
        let err = legacy.mount("deep160").unwrap_err();
        assert!(
            err.to_string()
                .contains("exceed the mount(2) option size limit"),
            "{err}"
        );
        legacy.mount("deep64").unwrap();
        legacy.unmount("deep64").unwrap();
    });
}
