//! Basic apply behaviour: compression detection, digests, whiteouts, duplicates.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod apply_common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use apply_common::*;
use berth_image::apply::{ApplyError, ApplyOptions, apply_layer};

fn sample() -> Vec<u8> {
    TarBuilder::new()
        .dir("etc/", 0o755)
        .file("etc/hostname", b"box\n", 0o644)
        .file("bin/tool", b"#!/bin/sh\necho hi\n", 0o4755)
        .symlink("bin/sh", "/bin/busybox")
        .hardlink("bin/tool2", "bin/tool")
        .finish()
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        preserve_owner: is_root(),
    }
}

#[test]
fn plain_gzip_zstd_give_same_tree_and_diff_id() {
    let tar = sample();
    let diff_id = sha256(&tar);
    for (name, blob) in [
        ("plain", tar.clone()),
        ("gzip", gzip(&tar)),
        ("zstd", zstd(&tar)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = apply_layer(&blob[..], dir.path(), &opts()).unwrap();
        assert_eq!(out.diff_id, diff_id, "{name}");
        assert_eq!(out.compressed_digest, sha256(&blob), "{name}");
        assert_eq!(out.size, 4 + 18, "{name}");
        assert_eq!(fs::read(dir.path().join("etc/hostname")).unwrap(), b"box\n");
        let m = fs::metadata(dir.path().join("bin/tool")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755, "{name}");
        assert_eq!(m.nlink(), 2);
        assert_eq!(
            fs::metadata(dir.path().join("bin/tool2")).unwrap().ino(),
            m.ino()
        );
        assert_eq!(
            fs::read_link(dir.path().join("bin/sh")).unwrap().to_str(),
            Some("/bin/busybox")
        );
        assert_eq!(
            fs::metadata(dir.path().join("etc")).unwrap().mtime(),
            1_600_000_000
        );
    }
}

#[test]
fn digest_covers_trailing_padding() {
    let mut tar = sample();
    // Extra zero records after the end-of-archive marker, as some writers pad to 10 KiB.
    tar.extend(std::iter::repeat_n(0u8, 8192));
    let dir = tempfile::tempdir().unwrap();
    let out = apply_layer(&tar[..], dir.path(), &opts()).unwrap();
    assert_eq!(out.diff_id, sha256(&tar));
    let gz = gzip(&tar);
    let dir = tempfile::tempdir().unwrap();
    let out = apply_layer(&gz[..], dir.path(), &opts()).unwrap();
    assert_eq!(out.diff_id, sha256(&tar));
    assert_eq!(out.compressed_digest, sha256(&gz));
}

#[test]
fn empty_input_is_an_empty_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = apply_layer(&[][..], dir.path(), &opts()).unwrap();
    assert_eq!(out.diff_id, sha256(b""));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !is_root() {
        eprintln!("SKIP: whiteouts need CAP_MKNOD (run as root)");
        return;
    }
    let tar = TarBuilder::new()
        .file("a/gone", b"x", 0o644)
        .file("a/.wh.gone", b"", 0o644)
        .file("a/.wh.lower-file", b"", 0o644)
        .dir("o/", 0o755)
        .file("o/.wh..wh..opq", b"", 0o644)
        .file("o/kept", b"k", 0o644)
        .finish();
    let dir = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], dir.path(), &opts()).unwrap();
    for n in ["a/gone", "a/lower-file"] {
        let m = fs::symlink_metadata(dir.path().join(n)).unwrap();
        assert!(m.file_type().is_char_device(), "{n}");
        assert_eq!(m.rdev(), 0, "{n}");
    }
    assert!(!dir.path().join("a/.wh.gone").exists());
    assert!(!dir.path().join("o/.wh..wh..opq").exists());
    let mut buf = [0u8; 8];
    let n =
        rustix::fs::getxattr(dir.path().join("o"), "trusted.overlay.opaque", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert_eq!(fs::read(dir.path().join("o/kept")).unwrap(), b"k");
}

#[test]
fn duplicate_entries_later_wins() {
    let tar = TarBuilder::new()
        .file("x", b"first", 0o644)
        .dir("x/", 0o755)
        .file("x/inner", b"i", 0o644)
        .symlink("x", "target")
        .file("y", b"one", 0o644)
        .file("y", b"two", 0o600)
        .finish();
    let dir = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], dir.path(), &opts()).unwrap();
    assert_eq!(
        fs::read_link(dir.path().join("x")).unwrap().to_str(),
        Some("target")
    );
    assert_eq!(fs::read(dir.path().join("y")).unwrap(), b"two");
    assert_eq!(
        fs::metadata(dir.path().join("y"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn corrupt_streams_are_clean_errors() {
    let tar = sample();
    let gz = gzip(&tar);
    let dir = tempfile::tempdir().unwrap();
    let err = apply_layer(&gz[..gz.len() / 2], dir.path(), &opts()).unwrap_err();
    assert!(
        matches!(err, ApplyError::Decompress { format: "gzip", .. }),
        "{err:?}"
    );
    let zs = zstd(&tar);
    let dir = tempfile::tempdir().unwrap();
    let err = apply_layer(&zs[..zs.len() / 2], dir.path(), &opts()).unwrap_err();
    assert!(
        matches!(err, ApplyError::Decompress { format: "zstd", .. }),
        "{err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = apply_layer(&tar[..700], dir.path(), &opts()).unwrap_err();
    assert!(matches!(err, ApplyError::Tar { .. }), "{err:?}");
}
