//! Push to and pull from Debian's docker-registry on loopback: the busybox fixture and a
//! multi-layer image round-trip by tag and by digest with identical ids and trees; a second
//! push reports "Layer already exists"; a second pull is "up to date"; progress messages
//! are Docker's.
#![allow(clippy::unwrap_used)]

mod registry_common;

use berth_image::registry::{PullOptions, PushOptions};
use registry_common::*;

#[test]
fn busybox_push_then_pull_by_tag_and_digest() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(None);
    let rt = runtime();
    let src = temp_store();
    let id = load_busybox(&src.store);
    let name = format!("{}/test/busybox", reg.host());
    src.store.tag(&id, &format!("{name}:v1")).unwrap();

    let (res, events) = push(
        &rt,
        &src.store,
        &format!("{name}:v1"),
        PushOptions::default(),
    );
    let res = res.unwrap();
    assert_eq!(
        events[0],
        format!(r#"{{"status":"The push refers to repository [{name}]"}}"#)
    );
    let st = statuses(&events);
    assert!(st.iter().any(|(_, s)| s == "Preparing"), "{events:?}");
    assert!(st.iter().any(|(_, s)| s == "Pushed"), "{events:?}");
    assert!(st.iter().any(|(_, s)| s == "Pushing"), "{events:?}");
    assert_eq!(
        st.last().unwrap().1,
        format!("v1: digest: {} size: {}", res.digest, res.size)
    );
    assert!(
        src.store
            .repo_digests(&id)
            .contains(&format!("{name}@{}", res.digest))
    );

    // Second push: every layer already exists, same digest (deterministic compression).
    let (res2, events2) = push(
        &rt,
        &src.store,
        &format!("{name}:v1"),
        PushOptions::default(),
    );
    assert_eq!(res2.unwrap(), res);
    assert!(has_status(&events2, "Layer already exists"), "{events2:?}");
    assert!(!has_status(&events2, "Pushed"), "{events2:?}");

    // Pull by tag into a fresh store.
    let dst = temp_store();
    let (pulled, events) = pull(
        &rt,
        &dst.store,
        &format!("{name}:v1"),
        PullOptions::default(),
    );
    let pulled = pulled.unwrap();
    assert_eq!(pulled.image_id, id);
    assert_eq!(pulled.manifest_digest, res.digest);
    assert_eq!(
        events[0],
        r#"{"status":"Pulling from test/busybox","id":"v1"}"#
    );
    let layer_id = {
        let v: serde_json::Value = serde_json::from_str(&events[1]).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    assert_eq!(layer_id.len(), 12);
    let seq: Vec<String> = statuses(&events)
        .into_iter()
        .filter(|(i, _)| *i == layer_id)
        .map(|(_, s)| s)
        .collect();
    let mut dedup = seq.clone();
    dedup.dedup();
    assert_eq!(
        dedup,
        [
            "Pulling fs layer",
            "Downloading",
            "Verifying Checksum",
            "Download complete",
            "Extracting",
            "Pull complete"
        ],
        "{events:?}"
    );
    let n = events.len();
    assert_eq!(
        events[n - 2],
        format!(r#"{{"status":"Digest: {}"}}"#, res.digest)
    );
    assert_eq!(
        events[n - 1],
        format!(r#"{{"status":"Status: Downloaded newer image for {name}:v1"}}"#)
    );
    assert_eq!(image_trees(&dst.store, &id), image_trees(&src.store, &id));
    assert_eq!(dst.store.repo_tags(&id), vec![format!("{name}:v1")]);
    assert_eq!(
        dst.store.repo_digests(&id),
        vec![format!("{name}@{}", res.digest)]
    );
    assert!(leftovers(&dst.store).is_empty());

    // Again: nothing downloaded.
    let (again, events) = pull(
        &rt,
        &dst.store,
        &format!("{name}:v1"),
        PullOptions::default(),
    );
    assert!(!again.unwrap().updated);
    assert!(has_status(&events, "Already exists"), "{events:?}");
    assert!(!has_status(&events, "Downloading"), "{events:?}");
    assert_eq!(
        events.last().unwrap(),
        &format!(r#"{{"status":"Status: Image is up to date for {name}:v1"}}"#)
    );

    // By digest into a third store.
    let dst2 = temp_store();
    let by_digest = format!("{name}@{}", res.digest);
    let (pulled, events) = pull(&rt, &dst2.store, &by_digest, PullOptions::default());
    assert_eq!(pulled.unwrap().image_id, id);
    assert_eq!(
        events[0],
        format!(
            r#"{{"status":"Pulling from test/busybox","id":"{}"}}"#,
            res.digest
        )
    );
    assert_eq!(image_trees(&dst2.store, &id), image_trees(&src.store, &id));
    assert!(dst2.store.repo_tags(&id).is_empty());
    assert_eq!(dst2.store.resolve(&by_digest).unwrap(), id);
}

#[test]
fn multi_layer_round_trip_and_mount() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(None);
    let rt = runtime();
    let src = temp_store();
    let name = format!("{}/multi", reg.host());
    let id = load(
        &src.store,
        &multi_layer_archive(&format!("{name}:latest"), 4),
    );
    let (res, events) = push(&rt, &src.store, &name, PushOptions::default());
    let res = res.unwrap();
    assert_eq!(res.tag, "latest");
    assert_eq!(
        statuses(&events)
            .iter()
            .filter(|(_, s)| s == "Pushed")
            .count(),
        3,
        "{events:?}"
    );

    // The same image under another repository of the same registry: blobs are mounted.
    let other = format!("{}/other/multi:x", reg.host());
    src.store.tag(&id, &other).unwrap();
    let (res2, events) = push(&rt, &src.store, &other, PushOptions::default());
    assert_eq!(res2.unwrap().digest, res.digest);
    assert_eq!(
        statuses(&events)
            .iter()
            .filter(|(_, s)| s == "Mounted from multi")
            .count(),
        3,
        "{events:?}"
    );

    for (i, reference) in [format!("{name}:latest"), format!("{name}@{}", res.digest)]
        .iter()
        .enumerate()
    {
        let dst = temp_store();
        let opts = PullOptions {
            max_concurrent_downloads: 1 + i,
            ..Default::default()
        };
        let (pulled, events) = pull(&rt, &dst.store, reference, opts);
        let pulled = pulled.unwrap_or_else(|e| panic!("{e}: {events:?}"));
        assert_eq!(pulled.image_id, id);
        if i == 0 {
            assert!(has_status(&events, "Waiting"), "{events:?}");
        }
        assert_eq!(image_trees(&dst.store, &id), image_trees(&src.store, &id));
        // Distribution metadata lets a later push skip the layers.
        dst.store.tag(&id, &format!("{name}:latest")).unwrap();
        let (again, events) = push(
            &rt,
            &dst.store,
            &format!("{name}:latest"),
            PushOptions::default(),
        );
        assert_eq!(again.unwrap().digest, res.digest);
        assert_eq!(
            statuses(&events)
                .iter()
                .filter(|(_, s)| s == "Layer already exists")
                .count(),
            3,
            "{events:?}"
        );
    }
}

#[test]
fn push_of_missing_image_and_pull_of_missing_tag() {
    if !have_registry() {
        eprintln!("SKIP: needs {REGISTRY_BIN} (apt: docker-registry)");
        return;
    }
    let reg = Registry::start(None);
    let rt = runtime();
    let s = temp_store();
    let name = format!("{}/nothing", reg.host());
    let (r, _) = push(&rt, &s.store, &name, PushOptions::default());
    assert_eq!(
        r.unwrap_err().to_string(),
        format!("An image does not exist locally with the tag: {name}")
    );
    let (r, _) = pull(
        &rt,
        &s.store,
        &format!("{name}:nope"),
        PullOptions::default(),
    );
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("manifest for {name}:nope not found: ")) || e.contains("repository"),
        "{e}"
    );
    assert!(s.store.image_ids().unwrap().is_empty());
}
