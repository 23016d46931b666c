//! Image transfer through the docker CLI: save/load round trip, commit, export/import, and
//! pull being refused honestly.

#![allow(clippy::unwrap_used)]

mod common;

use common::Berthd;

fn dk(d: &Berthd, args: &[&str]) -> (i32, String, String) {
    let o = d.docker(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        String::from_utf8_lossy(&o.stderr).trim().to_owned(),
    )
}

fn ok(d: &Berthd, args: &[&str]) -> String {
    let (code, o, e) = dk(d, args);
    assert_eq!(code, 0, "docker {args:?}: {e}");
    o
}

#[test]
fn save_load_round_trip() {
    let d = Berthd::start();
    d.load_busybox();
    let id = ok(&d, &["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    let tar = d.root.path().join("saved.tar");
    ok(&d, &["save", "-o", tar.to_str().unwrap(), "busybox"]);
    ok(&d, &["rmi", "busybox"]);
    let out = ok(&d, &["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox:latest");
    assert_eq!(
        ok(&d, &["image", "inspect", "-f", "{{.Id}}", "busybox"]),
        id
    );
}

#[test]
fn commit_export_import() {
    let d = Berthd::start();
    d.load_busybox();
    ok(
        &d,
        &[
            "run",
            "--name",
            "cm",
            "busybox",
            "sh",
            "-c",
            "echo committed > /marker",
        ],
    );
    ok(&d, &["commit", "-m", "msg", "cm", "mine:v1"]);
    assert_eq!(
        ok(&d, &["run", "--rm", "mine:v1", "cat", "/marker"]),
        "committed"
    );
    let tar = d.root.path().join("export.tar");
    ok(&d, &["export", "-o", tar.to_str().unwrap(), "cm"]);
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .any(|l| l.trim_start_matches("./") == "marker")
    );
    ok(&d, &["import", tar.to_str().unwrap(), "imported:1"]);
    assert_eq!(
        ok(&d, &["run", "--rm", "imported:1", "cat", "/marker"]),
        "committed"
    );
    ok(&d, &["rm", "cm"]);
}

#[test]
fn pull_is_refused_not_faked() {
    let d = Berthd::start();
    let (code, _, e) = dk(&d, &["pull", "alpine"]);
    assert_ne!(code, 0);
    assert!(e.contains("not implemented: pulling images"), "{e}");
}

#[test]
fn history_df_prune() {
    let d = Berthd::start();
    d.load_busybox();
    let h = ok(&d, &["history", "--format", "{{.CreatedBy}}", "busybox"]);
    assert!(!h.is_empty());
    let df = ok(
        &d,
        &["system", "df", "--format", "{{.Type}} {{.TotalCount}}"],
    );
    assert!(df.lines().any(|l| l == "Images 1"), "{df}");
    assert!(df.lines().any(|l| l == "Containers 0"), "{df}");
    ok(&d, &["create", "--name", "keepme", "busybox", "true"]);
    // In use: `prune -a` keeps it.
    ok(&d, &["image", "prune", "-af"]);
    assert_eq!(ok(&d, &["images", "-q"]).lines().count(), 1);
    ok(&d, &["rm", "keepme"]);
    let out = ok(&d, &["image", "prune", "-af"]);
    assert!(out.contains("untagged: busybox:latest"), "{out}");
    assert_eq!(ok(&d, &["images", "-q"]), "");
}
