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

#[test]
fn busybox_fixture_layer_applies_and_round_trips() {
    if !berth_fixtures::busybox_available() {
        eprintln!("SKIP: needs busybox-static (/bin/busybox)");
        return;
    }
    let rootfs = berth_fixtures::busybox_rootfs().unwrap();
    let tar = berth_fixtures::layer_tar_of(&rootfs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = apply_layer(&gzip(&tar)[..], dir.path(), &opts()).unwrap();
    assert_eq!(out.diff_id, sha256(&tar));
    let want = snapshot(&rootfs);
    let got = snapshot(dir.path());
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, w) in &want {
        let g = &got[path];
        assert_eq!(
            (g.kind, g.mode, &g.content, &g.link),
            (w.kind, w.mode, &w.content, &w.link),
            "{path}"
        );
        assert_eq!(g.mtime, 0, "{path}");
    }
    // Export of the applied tree re-applies to the same tree.
    let mut exported = Vec::new();
    berth_image::apply::export_layer(dir.path(), &mut exported).unwrap();
    let again = tempfile::tempdir().unwrap();
    apply_layer(&exported[..], again.path(), &opts()).unwrap();
    assert_eq!(snapshot(again.path()), got);
}

/// A reader that hands out `data` in small pieces, then fails like a dropped connection.
struct FailingReader {
    data: Vec<u8>,
    pos: usize,
}

impl std::io::Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.data.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let n = buf.len().min(7).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn reader_failures_are_reported_as_blob_read_errors() {
    let tar = sample();
    for (name, blob) in [
        ("plain", tar.clone()),
        ("gzip", gzip(&tar)),
        ("zstd", zstd(&tar)),
    ] {
        for cut in [0, 3, blob.len() / 2] {
            let dir = tempfile::tempdir().unwrap();
            let r = FailingReader {
                data: blob[..cut].to_vec(),
                pos: 0,
            };
            let err = apply_layer(r, dir.path(), &opts()).unwrap_err();
            match &err {
                ApplyError::ReadBlob(e) => {
                    assert_eq!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset,
                        "{name}/{cut}"
                    )
                }
                other => panic!("{name}/{cut}: expected ReadBlob, got {other:?}"),
            }
        }
    }
}

#[test]
fn legacy_nul_type_with_trailing_slash_is_a_directory() {
    let mut t = TarBuilder::new();
    let mut h = header(tar::EntryType::Regular, 0, 0o750);
    h.as_old_mut().linkflag = [0];
    raw_name(&mut t.b, &mut h, b"olddir/");
    h.set_cksum();
    t.b.append(&h, &[][..]).unwrap();
    t.file("olddir/f", b"x", 0o644);
    let tar = t.finish();
    let dir = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], dir.path(), &opts()).unwrap();
    let m = fs::metadata(dir.path().join("olddir")).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.permissions().mode() & 0o7777, 0o750);
}
