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
fn pull_from_an_unreachable_registry_fails_honestly() {
    let d = Berthd::start();
    // A loopback port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let image = format!("127.0.0.1:{port}/x:1");
    let (code, _, e) = dk(&d, &["pull", &image]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("onnection refused"), "{e}");
    assert_eq!(ok(&d, &["images", "-q"]), "");
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

#[test]
fn docker_cp_out_of_a_container_stays_inside_it() {
    let d = Berthd::start();
    d.load_busybox();
    ok(
        &d,
        &[
            "run",
            "--name",
            "cpx",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /d/sub; echo one > /d/a; echo two > /d/sub/b; ln -s ../../../../../../etc /esc; echo inside > /etc/motd",
        ],
    );
    let out = d.root.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    ok(&d, &["cp", "cpx:/d/a", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("a")).unwrap(), "one\n");
    ok(&d, &["cp", "cpx:/d", out.join("dd").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("dd/sub/b")).unwrap(),
        "two\n"
    );
    // A symlink climbing out of the rootfs resolves inside it.
    ok(
        &d,
        &["cp", "cpx:/esc/motd", out.join("motd").to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("motd")).unwrap(),
        "inside\n"
    );
    let (code, _, e) = dk(&d, &["cp", "cpx:/nope", out.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        e.contains("Could not find the file /nope in container"),
        "{e}"
    );
    ok(&d, &["rm", "cpx"]);
}

#[test]
fn docker_cp_into_running_and_created_containers() {
    let d = Berthd::start();
    d.load_busybox();
    let src = d.root.path().join("in");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("f.txt"), "hello\n").unwrap();
    std::fs::write(src.join("dir/n"), "nested\n").unwrap();
    ok(
        &d,
        &["run", "-d", "--name", "cpi", "busybox", "sleep", "1000"],
    );
    ok(
        &d,
        &["cp", src.join("f.txt").to_str().unwrap(), "cpi:/tmp/"],
    );
    ok(&d, &["cp", src.join("dir").to_str().unwrap(), "cpi:/tmp/"]);
    assert_eq!(
        ok(&d, &["exec", "cpi", "cat", "/tmp/f.txt", "/tmp/dir/n"]),
        "hello\nnested"
    );
    ok(&d, &["rm", "-f", "cpi"]);
    // A created (never started) container: its rootfs is mounted for the copy.
    ok(&d, &["create", "--name", "cps", "busybox", "cat", "/f.txt"]);
    ok(&d, &["cp", src.join("f.txt").to_str().unwrap(), "cps:/"]);
    assert_eq!(ok(&d, &["start", "-a", "cps"]), "hello");
    ok(&d, &["rm", "cps"]);
}
