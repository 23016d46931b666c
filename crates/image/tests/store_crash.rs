//! Crash safety: a child process loading an image (and creating/removing container layers,
//! deleting the image) is SIGKILLed at random points, ≥ 50 times. After every kill,
//! `Store::open` must report nothing broken, the image must be either absent or fully
//! mountable, and no unreferenced driver dir, temporary or dangling short link may remain.
#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod store_common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_image::{InitLayerSpec, Store, StoreOptions};
use store_common::{LayerBuilder, in_mount_ns, is_root};

const ROOT_ENV: &str = "BERTH_IMAGE_CRASH_ROOT";
const ARCHIVE_ENV: &str = "BERTH_IMAGE_CRASH_ARCHIVE";
const ITERATIONS: usize = 60;
const PAUSE_MS: u64 = 100;

fn archive() -> Vec<u8> {
    let mut layers = Vec::new();
    for i in 0..4 {
        let mut b = LayerBuilder::new().dir(&format!("d{i}"), 0o755);
        for j in 0..50 {
            b = b.file(
                &format!("d{i}/f{j}"),
                0o644,
                format!("{i}-{j}").repeat(100).as_bytes(),
            );
        }
        layers.push(b.file(".wh.tmp", 0o644, b"").build());
    }
    berth_fixtures::docker_save_archive(&layers, serde_json::json!({}), "crash:1").unwrap()
}

/// The child's work loop; run only as a child of `kill_during_load_leaves_consistent_store`.
#[test]
#[ignore = "helper: run as a child process by kill_during_load_leaves_consistent_store"]
fn crash_child() {
    let (Some(root), Some(archive)) = (std::env::var_os(ROOT_ENV), std::env::var_os(ARCHIVE_ENV))
    else {
        return;
    };
    let archive = fs::read(archive).unwrap();
    let (store, _) = Store::open(Path::new(&root), opts()).unwrap();
    let cid = format!("crash{}", std::process::id());
    loop {
        let id = store.load(&archive[..]).unwrap()[0].id.clone();
        store
            .create_container_layers(&cid, Some(&id), &InitLayerSpec::default())
            .unwrap();
        store.remove_container_layers(&cid).unwrap();
        // Linger with the image complete so some kills land here too.
        std::thread::sleep(Duration::from_millis(PAUSE_MS));
        store.delete("crash:1", false, false, &[]).unwrap();
    }
}

/// No syncfs: SIGKILL loses no page cache, and the test must stay fast.
fn opts() -> StoreOptions {
    StoreOptions {
        sync_layers: false,
        ..Default::default()
    }
}

fn random_ms(max: u64) -> u64 {
    let id = berth_image::ids::random_id();
    u64::from_str_radix(&id[..8], 16).unwrap() % (max + 1)
}

fn check_no_garbage(root: &Path) {
    let home = root.join("overlay2");
    let mut referenced = HashSet::new();
    for e in fs::read_dir(root.join("image/overlay2/layerdb/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "leftover temp {name}");
        referenced.insert(fs::read_to_string(e.path().join("cache-id")).unwrap());
    }
    for e in fs::read_dir(root.join("image/overlay2/layerdb/mounts")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "leftover temp {name}");
        referenced.insert(fs::read_to_string(e.path().join("mount-id")).unwrap());
        referenced.insert(fs::read_to_string(e.path().join("init-id")).unwrap());
    }
    for e in fs::read_dir(&home).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "l" || referenced.contains(&name),
            "unreferenced driver dir {name}"
        );
    }
    for e in fs::read_dir(home.join("l")).unwrap() {
        let e = e.unwrap();
        assert!(
            fs::metadata(e.path()).is_ok(),
            "dangling short link {:?}",
            e.file_name()
        );
    }
    for e in fs::read_dir(root.join("image/overlay2/imagedb/content/sha256")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "leftover temp {name}");
    }
    assert_eq!(
        fs::read_dir(root.join("tmp")).unwrap().count(),
        0,
        "spool leftovers"
    );
}

#[test]
fn kill_during_load_leaves_consistent_store() {
    let body = || {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let archive_path = tmp.path().join("image.tar");
        fs::write(&archive_path, archive()).unwrap();
        let exe = std::env::current_exe().unwrap();
        // Kill anywhere in one load/create/remove/delete cycle: time one (debug builds are
        // slow, release builds fast) and draw the kill point from up to 1.5 cycles after a
        // typical process start.
        let cycle_ms = {
            let scratch = tmp.path().join("scratch");
            let (store, _) = Store::open(&scratch, opts()).unwrap();
            let t = std::time::Instant::now();
            let id = store.load(&fs::read(&archive_path).unwrap()[..]).unwrap()[0]
                .id
                .clone();
            store
                .create_container_layers("t", Some(&id), &InitLayerSpec::default())
                .unwrap();
            store.remove_container_layers("t").unwrap();
            store.delete("crash:1", false, false, &[]).unwrap();
            t.elapsed().as_millis() as u64
        };
        let max_sleep = 10 + (cycle_ms + PAUSE_MS) * 3 / 2;
        let mut with_image = 0;
        for i in 0..ITERATIONS {
            let mut child = Command::new(&exe)
                .args(["crash_child", "--exact", "--ignored", "--nocapture"])
                .env(ROOT_ENV, &root)
                .env(ARCHIVE_ENV, &archive_path)
                .env_remove(store_common::CHILD_ENV)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(random_ms(max_sleep)));
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("child ended by itself ({status}) at iteration {i}: {err}");
            }
            child.kill().unwrap();
            child.wait().unwrap();

            let (store, warnings) = Store::open(&root, opts()).unwrap();
            assert!(warnings.is_empty(), "iteration {i}: {warnings:?}");
            check_no_garbage(&root);
            for cid in store.container_ids() {
                store.remove_container_layers(&cid).unwrap();
            }
            match store.resolve("crash:1") {
                Err(e) => assert_eq!(e.kind(), berth_image::ErrorKind::NotFound, "{e}"),
                Ok(id) => {
                    with_image += 1;
                    store
                        .create_container_layers("check", Some(&id), &InitLayerSpec::default())
                        .unwrap();
                    if is_root() {
                        let merged = store.mount("check").unwrap();
                        assert!(merged.join("d0/f49").is_file());
                        assert_eq!(fs::read_dir(merged.join("d2")).unwrap().count(), 50);
                        store.unmount("check").unwrap();
                    }
                    store.remove_container_layers("check").unwrap();
                }
            }
            // Dangling images (killed between config write and tag) count as "present".
            for id in store.image_ids().unwrap() {
                let _ = store.delete(&id, true, false, &[]).unwrap();
            }
            drop(store);
            let (_, warnings) = Store::open(&root, opts()).unwrap();
            assert!(warnings.is_empty());
            check_no_garbage(&root);
        }
        eprintln!(
            "crash test: {with_image}/{ITERATIONS} kills left a complete image (cycle {cycle_ms} ms)"
        );
    };
    if is_root() {
        in_mount_ns("kill_during_load_leaves_consistent_store", body);
    } else {
        body();
    }
}
