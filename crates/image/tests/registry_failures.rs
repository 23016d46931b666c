//! Pulls that fail: a corrupted blob (digest mismatch), a blob missing from the registry, and
//! the registry killed mid-download. Each fails with a clear message, leaves no image, layer
//! or temp dir behind, and a pull after the cause is fixed succeeds.
#![allow(clippy::unwrap_used)]

mod registry_common;

use std::fs;

use berth_image::registry::{PullOptions, PushOptions};
use registry_common::*;

/// Push a multi-layer image; returns (reference, image id, layer blob digests).
fn pushed(
    reg: &Registry,
    rt: &tokio::runtime::Runtime,
    mb: usize,
) -> (String, String, Vec<String>) {
    let src = temp_store();
    let name = format!("{}/fail/multi:latest", reg.host());
    let id = load(&src.store, &multi_layer_archive(&name, mb));
    let (res, _) = push(rt, &src.store, &name, PushOptions::default());
    let res = res.unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(reg.blob_path(&res.digest)).unwrap()).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (name, id, layers)
}

fn assert_nothing_stored(s: &TempStore) {
    assert!(s.store.image_ids().unwrap().is_empty());
    assert_eq!(layer_count(&s.store), 0);
    assert!(leftovers(&s.store).is_empty(), "{:?}", leftovers(&s.store));
}

#[test]
fn corrupted_blob_fails_cleanly_then_succeeds_when_restored() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(None);
    let rt = runtime();
    let (name, id, layers) = pushed(&reg, &rt, 2);
    let blob = reg.blob_path(&layers[1]);
    let good = fs::read(&blob).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 64] {
        *b ^= 0x5a;
    }
    fs::write(&blob, &bad).unwrap();

    let dst = temp_store();
    let (r, events) = pull(&rt, &dst.store, &name, PullOptions::default());
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "filesystem layer verification failed for digest {}",
            layers[1]
        )) && e.contains("digest mismatch"),
        "{e}\n{events:?}"
    );
    assert_nothing_stored(&dst);

    fs::write(&blob, &good).unwrap();
    let (r, events) = pull(&rt, &dst.store, &name, PullOptions::default());
    assert_eq!(r.unwrap_or_else(|e| panic!("{e}: {events:?}")).image_id, id);
    assert!(leftovers(&dst.store).is_empty());
}

#[test]
fn missing_blob_fails_cleanly() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(None);
    let rt = runtime();
    let (name, id, layers) = pushed(&reg, &rt, 1);
    let blob = reg.blob_path(&layers[2]);
    let saved = fs::read(&blob).unwrap();
    fs::remove_file(&blob).unwrap();

    let dst = temp_store();
    let (r, events) = pull(&rt, &dst.store, &name, PullOptions::default());
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("blob unknown") || e.contains("not found"),
        "{e}\n{events:?}"
    );
    assert_nothing_stored(&dst);

    fs::write(&blob, &saved).unwrap();
    let (r, _) = pull(&rt, &dst.store, &name, PullOptions::default());
    assert_eq!(r.unwrap().image_id, id);
}

#[test]
fn registry_killed_mid_pull_fails_cleanly() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let mut reg = Registry::start(None);
    let rt = runtime();
    let (name, id, layers) = pushed(&reg, &rt, 24);
    let big = berth_image::registry::progress::short_id(&layers[1]);
    let pid = reg.pid();

    let dst = temp_store();
    let mut events = Vec::new();
    let mut killed = false;
    let r = rt.block_on(berth_image::registry::pull(
        dst.store.clone(),
        &name,
        PullOptions::default(),
        |e| {
            if !killed && e.status == "Downloading" && e.id.as_deref() == Some(big.as_str()) {
                killed = true;
                // SAFETY: plain kill(2) of our own child process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            events.push(e.to_json());
        },
    ));
    assert!(killed, "{events:?}");
    let e = r.unwrap_err();
    let msg = format!(
        "{e}: {:?}",
        std::error::Error::source(&e).map(|s| s.to_string())
    );
    assert!(
        msg.contains("dial tcp") || msg.contains("connection") || msg.contains("EOF"),
        "{msg}\n{events:?}"
    );
    assert_nothing_stored(&dst);

    reg.restart();
    let (r, events) = pull(&rt, &dst.store, &name, PullOptions::default());
    assert_eq!(r.unwrap_or_else(|e| panic!("{e}: {events:?}")).image_id, id);
}

#[test]
fn cancelled_pull_leaves_nothing() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(None);
    let rt = runtime();
    let (name, _, _) = pushed(&reg, &rt, 16);
    let dst = temp_store();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut tx = Some(tx);
    let finished = rt.block_on(async {
        let fut =
            berth_image::registry::pull(dst.store.clone(), &name, PullOptions::default(), |e| {
                if e.status == "Downloading"
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(());
                }
            });
        // Dropping the pull future is what a cancelled API request does.
        tokio::select! {
            biased;
            _ = rx => false,
            _ = fut => true,
        }
    });
    assert!(!finished, "the pull finished before it could be cancelled");
    // Extractors still running see the closed stream and remove their temp dirs; wait for
    // that (no timing assertion: only an upper bound against hanging forever).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !leftovers(&dst.store).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(rt);
    assert_nothing_stored(&dst);
}
