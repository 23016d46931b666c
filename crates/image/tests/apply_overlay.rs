//! Multi-layer apply checked through a real overlayfs mount: deletions and opaque dirs of
//! the upper layer hide lower content; export gives the `.wh.` entries back; `changes()`
//! reports `docker diff` kinds.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod apply_common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use apply_common::*;
use berth_image::apply::{ApplyOptions, Change, ChangeKind, apply_layer, changes, export_layer};

fn opts() -> ApplyOptions {
    ApplyOptions {
        preserve_owner: true,
    }
}

fn layer1() -> Vec<u8> {
    TarBuilder::new()
        .dir("etc/", 0o755)
        .file("etc/a", b"a1", 0o644)
        .file("etc/b", b"b1", 0o644)
        .dir("opq/", 0o755)
        .file("opq/x", b"x1", 0o644)
        .file("opq/sub/y", b"y1", 0o644)
        .file("keep/file", b"k1", 0o644)
        .file("gone-dir/inner/f", b"f1", 0o644)
        .file("hid/old", b"o1", 0o644)
        .finish()
}

fn layer2() -> Vec<u8> {
    TarBuilder::new()
        .file("etc/.wh.a", b"", 0o644)
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/z", b"z2", 0o644)
        .file("keep/file", b"k2", 0o644)
        .file(".wh.gone-dir", b"", 0o644)
        .file("new", b"n2", 0o644)
        .dir("hid/", 0o755)
        .file("hid/.wh..wh..opq", b"", 0o644)
        .file("hid/new2", b"h2", 0o644)
        .finish()
}

/// Apply `tar` into a fresh dir `name` under `work`.
fn apply_into(work: &Path, name: &str, tar: &[u8]) -> std::path::PathBuf {
    let d = work.join(name);
    fs::create_dir(&d).unwrap();
    apply_layer(tar, &d, &opts()).unwrap();
    d
}

/// Mount overlay(lowerdir=l2:l1) in a private mount namespace of a child shell and list
/// the merged tree (`find`) plus one file's content. The namespace, and with it the mount,
/// goes away with the child: nothing to clean up on failure.
fn merged_listing(l1: &Path, l2: &Path, merged: &Path) -> (BTreeSet<String>, String) {
    let script = format!(
        "set -e; mount --make-rprivate /; mount -t overlay overlay -o lowerdir={}:{} {}; \
         cd {}; find . | sort; echo '--'; cat keep/file",
        l2.display(),
        l1.display(),
        merged.display(),
        merged.display()
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    // SAFETY: between fork and exec the child only calls unshare(2), which is
    // async-signal-safe and touches no locks or allocator state.
    unsafe {
        cmd.pre_exec(|| {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "overlay mount script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (list, content) = text.split_once("--\n").unwrap();
    (
        list.lines().map(str::to_string).collect(),
        content.trim().to_string(),
    )
}

#[test]
fn overlay_hides_deleted_and_opaque_content() {
    if !is_root() {
        eprintln!("SKIP: needs root (whiteouts, overlay mount)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let l1 = apply_into(work.path(), "l1", &layer1());
    let l2 = apply_into(work.path(), "l2", &layer2());
    let merged = work.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let (list, content) = merged_listing(&l1, &l2, &merged);
    let want: BTreeSet<String> = [
        ".",
        "./etc",
        "./etc/b",
        "./hid",
        "./hid/new2",
        "./keep",
        "./keep/file",
        "./new",
        "./opq",
        "./opq/z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(list, want);
    assert_eq!(content, "k2");

    // Export of the upper layer carries the whiteouts and opaque markers as `.wh.` entries.
    let mut tar = Vec::new();
    export_layer(&l2, &mut tar).unwrap();
    let mut names = BTreeSet::new();
    let mut ar = tar::Archive::new(&tar[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        names.insert(String::from_utf8_lossy(&e.path_bytes()).into_owned());
    }
    for n in [
        "etc/.wh.a",
        ".wh.gone-dir",
        "opq/.wh..wh..opq",
        "hid/.wh..wh..opq",
        "opq/z",
        "keep/file",
    ] {
        assert!(names.contains(n), "export lacks {n}: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.ends_with("/a") || n == "a"),
        "{names:?}"
    );
    // Re-applying the export recreates the same layer (whiteouts keep their times), and
    // exporting that gives the same bytes.
    let l2b = apply_into(work.path(), "l2b", &tar);
    assert_eq!(snapshot(&l2b), snapshot(&l2));
    let mut again = Vec::new();
    export_layer(&l2b, &mut again).unwrap();
    assert!(again == tar, "export of the re-applied layer differs");
    // Whiteouts carry the tar entry's mtime, not the time of the apply.
    let m = std::os::unix::fs::MetadataExt::mtime(&fs::symlink_metadata(l2.join("etc/a")).unwrap());
    assert_eq!(m, 1_600_000_000);
}

#[test]
fn changes_reports_docker_diff_kinds() {
    if !is_root() {
        eprintln!("SKIP: needs root (whiteouts)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let l1 = apply_into(work.path(), "l1", &layer1());
    let l2 = apply_into(work.path(), "l2", &layer2());
    let upper_tar = TarBuilder::new()
        .file("etc/.wh.b", b"", 0o644)
        .file("etc/c", b"c", 0o644)
        .file("etc/a", b"back", 0o644)
        .file("keep/file", b"k3", 0o644)
        .file("newdir/f", b"f", 0o644)
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/w", b"w", 0o644)
        .file("gone-dir/again", b"g", 0o644)
        .file("hid/old", b"o3", 0o644)
        .file("hid/new2", b"h3", 0o644)
        .finish();
    let upper = apply_into(work.path(), "upper", &upper_tar);
    let got = changes(&upper, &[l2.clone(), l1.clone()]).unwrap();
    use ChangeKind::*;
    let want: Vec<Change> = [
        ("/etc", Modified),
        ("/etc/a", Added), // whited out in l2, so new again
        ("/etc/b", Deleted),
        ("/etc/c", Added),
        ("/gone-dir", Added), // whited out in l2
        ("/gone-dir/again", Added),
        ("/hid", Modified),
        ("/hid/new2", Modified),
        ("/hid/old", Added), // hidden by l2's opaque hid/
        ("/keep", Modified),
        ("/keep/file", Modified),
        ("/newdir", Added),
        ("/newdir/f", Added),
        ("/opq", Modified), // opaque in the upper
        ("/opq/w", Added),
    ]
    .iter()
    .map(|(p, k)| Change {
        path: p.to_string(),
        kind: *k,
    })
    .collect();
    assert_eq!(got, want);
    let letters: String = got.iter().map(|c| c.kind.letter()).collect();
    assert_eq!(letters, "CADAAACCACCAACA");
    // Without lowers everything is an addition except deletions and opaque dirs.
    let alone = changes(&upper, &[]).unwrap();
    assert!(alone.iter().all(|c| match c.path.as_str() {
        "/etc/b" => c.kind == Deleted,
        "/opq" => c.kind == Modified,
        _ => c.kind == Added,
    }));
}
