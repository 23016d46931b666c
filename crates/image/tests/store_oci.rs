//! `docker load` of an OCI image layout (oci-layout, index.json, blobs/sha256) with a gzip
//! layer, and of a `docker save` archive whose layer is compressed.
#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod store_common;

use std::io::Write;

use berth_image::ids::{self, hex_of};
use store_common::{LayerBuilder, cache_dirs, open_store};

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

#[test]
fn load_oci_layout_with_gzip_layers() {
    let l1 = LayerBuilder::new().file("one", 0o644, b"1").build();
    let l2 = LayerBuilder::new().file("two", 0o644, b"2").build();
    let (g1, g2) = (gz(&l1), gz(&l2));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [ids::sha256_digest(&l1), ids::sha256_digest(&l2)]},
        "config": {"Cmd": ["sh"]},
    }))
    .unwrap();
    let desc = |media: &str, data: &[u8]| serde_json::json!({"mediaType": media, "digest": ids::sha256_digest(data), "size": data.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [
            desc("application/vnd.oci.image.layer.v1.tar+gzip", &g1),
            desc("application/vnd.oci.image.layer.v1.tar+gzip", &g2),
        ],
    }))
    .unwrap();
    let mut mdesc = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    mdesc["annotations"] = serde_json::json!({
        "io.containerd.image.name": "docker.io/library/ocitest:v1",
        "org.opencontainers.image.ref.name": "v1",
    });
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [mdesc]})).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add(&mut b, "index.json", &index);
    for blob in [&config, &manifest, &g1, &g2] {
        add(
            &mut b,
            &format!("blobs/sha256/{}", hex_of(&ids::sha256_digest(blob))),
            blob,
        );
    }
    let archive = b.into_inner().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let loaded = store.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, ids::sha256_digest(&config));
    assert_eq!(loaded[0].repo_tags, vec!["ocitest:v1".to_string()]);
    assert_eq!(cache_dirs(tmp.path()).len(), 2);
    // The layerdb records the uncompressed diff ids; save writes the uncompressed tars.
    let layers = store.image_layers(&loaded[0].id).unwrap();
    assert_eq!(layers[1].diff_id, ids::sha256_digest(&l2));
    let mut out = Vec::new();
    store.save(&["ocitest:v1"], &mut out).unwrap();
    let other = tempfile::tempdir().unwrap();
    assert_eq!(
        open_store(other.path()).load(&out[..]).unwrap()[0].id,
        loaded[0].id
    );
}

#[test]
fn load_gzip_archive_and_compressed_layer() {
    let l1 = LayerBuilder::new().file("f", 0o644, b"data").build();
    let diff = ids::sha256_digest(&l1);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "layer.tar.gz", &gz(&l1));
    add(&mut b, "cfg.json", &config);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&serde_json::json!([{"Config": "cfg.json", "RepoTags": null, "Layers": ["layer.tar.gz"]}]))
            .unwrap(),
    );
    let archive = gz(&b.into_inner().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let loaded = store.load(&archive[..]).unwrap();
    assert_eq!(loaded[0].id, ids::sha256_digest(&config));
    assert!(loaded[0].repo_tags.is_empty());
    assert_eq!(
        loaded[0].messages(),
        vec![format!("Loaded image ID: {}", loaded[0].id)]
    );
    // A manifest whose layer count disagrees with the config is refused.
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "cfg.json", &config);
    add(
        &mut b,
        "manifest.json",
        br#"[{"Config": "cfg.json", "Layers": []}]"#,
    );
    let err = store.load(&b.into_inner().unwrap()[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid manifest, layers length mismatch: expected 1, got 0"
    );
}

#[test]
fn load_follows_symlinked_layer_and_refuses_missing_layer() {
    // Older `docker save` writes a layer shared by two positions once and symlinks the other.
    let l = LayerBuilder::new().file("same", 0o644, b"s").build();
    let diff = ids::sha256_digest(&l);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff, diff]},
    }))
    .unwrap();
    let manifest = |layers: serde_json::Value| {
        serde_json::to_vec(
            &serde_json::json!([{"Config": "c.json", "RepoTags": ["twice:1"], "Layers": layers}]),
        )
        .unwrap()
    };
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "a/layer.tar", &l);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "b/layer.tar", "../a/layer.tar")
        .unwrap();
    add(&mut b, "c.json", &config);
    add(
        &mut b,
        "manifest.json",
        &manifest(serde_json::json!(["a/layer.tar", "b/layer.tar"])),
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(tmp.path());
    let id = store.load(&b.into_inner().unwrap()[..]).unwrap()[0]
        .id
        .clone();
    assert_eq!(store.image_layers(&id).unwrap().len(), 2);
    assert_eq!(cache_dirs(tmp.path()).len(), 2);

    // A symlink pointing outside the archive resolves to nothing, not to a host file.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "x/layer.tar", "/etc/passwd").unwrap();
    add(&mut b, "c.json", &config);
    add(
        &mut b,
        "manifest.json",
        &manifest(serde_json::json!(["x/layer.tar", "x/layer.tar"])),
    );
    let other = tempfile::tempdir().unwrap();
    let err = open_store(other.path())
        .load(&b.into_inner().unwrap()[..])
        .unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
    assert!(cache_dirs(other.path()).is_empty());
}
