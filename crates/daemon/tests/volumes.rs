//! Volumes end to end with the real docker CLI against a private berthd: the volume verbs,
//! named and anonymous volumes in containers, read-only mounts, in-use refusal, prune,
//! `rm -v` and `--rm`, copy-up from the image, `--volumes-from`, tmpfs driver options.

#![allow(clippy::unwrap_used)]

mod common;

use common::Berthd;

fn out(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ready() -> Berthd {
    let d = Berthd::start();
    d.load_busybox();
    d
}

/// Runs docker, asserts success, returns stdout.
fn ok(d: &Berthd, args: &[&str]) -> String {
    let (code, o, e) = out(&d.docker(args));
    assert_eq!(code, 0, "docker {args:?}: {e}\nberthd: {}", d.log());
    o
}

fn volume_names(d: &Berthd) -> Vec<String> {
    ok(d, &["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether `path` is a mount point in this (the host's) mount namespace.
fn is_mounted(path: &std::path::Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&p))
}

#[test]
fn volume_verbs_like_docker() {
    let d = Berthd::start();
    assert_eq!(
        ok(&d, &["volume", "create", "--label", "team=a", "myvol"]),
        "myvol\n"
    );
    // Creating an existing volume again is not an error.
    assert_eq!(ok(&d, &["volume", "create", "myvol"]), "myvol\n");
    let anon = ok(&d, &["volume", "create"]).trim().to_owned();
    assert_eq!(anon.len(), 64, "{anon}");
    assert!(anon.bytes().all(|b| b.is_ascii_hexdigit()));

    let ls = ok(&d, &["volume", "ls"]);
    let mut want = vec!["DRIVER    VOLUME NAME".to_owned()];
    let mut rows = vec![format!("local     {anon}"), "local     myvol".to_owned()];
    rows.sort();
    want.extend(rows);
    assert_eq!(ls.lines().collect::<Vec<_>>(), want);
    assert_eq!(
        ok(&d, &["volume", "ls", "-q", "-f", "label=team=a"]),
        "myvol\n"
    );
    assert_eq!(ok(&d, &["volume", "ls", "-q", "-f", "name=myv"]), "myvol\n");
    assert_eq!(
        ok(
            &d,
            &[
                "volume",
                "ls",
                "--format",
                "{{.Name}} {{.Driver}} {{.Scope}}",
                "-f",
                "driver=local",
                "-f",
                "name=myvol"
            ]
        ),
        "myvol local local\n"
    );

    let v: serde_json::Value =
        serde_json::from_str(&ok(&d, &["volume", "inspect", "myvol"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "myvol");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"], serde_json::json!({"team": "a"}));
    assert!(v.get("UsageData").is_none());
    let mp = d.data_root().join("volumes/myvol/_data");
    assert_eq!(v["Mountpoint"], mp.to_str().unwrap());
    assert!(mp.is_dir());
    chrono::DateTime::parse_from_rfc3339(v["CreatedAt"].as_str().unwrap()).unwrap();
    assert_eq!(
        ok(
            &d,
            &["volume", "inspect", "-f", "{{.Name}}:{{.Driver}}", "myvol"]
        ),
        "myvol:local\n"
    );

    // Errors are Docker's: missing volume, bad names, unknown options.
    let (code, _, e) = out(&d.docker(&["volume", "inspect", "nosuch"]));
    assert_eq!(code, 1);
    assert!(e.contains("no such volume"), "{e}");
    let r = d.get("/v1.41/volumes/nosuch");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "get nosuch: no such volume");
    let r = d.post_json(
        "/v1.41/volumes/create",
        &serde_json::json!({"Name": "bad/name"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let (code, _, e) = out(&d.docker(&["volume", "create", "-o", "foo=bar", "optvol"]));
    assert_eq!(code, 1);
    assert!(e.contains("invalid option: \"foo\""), "{e}");
    let (code, _, e) = out(&d.docker(&["volume", "create", "-d", "nfsplugin", "pv"]));
    assert_eq!(code, 1);
    assert!(e.contains("plugin \"nfsplugin\" not found"), "{e}");

    assert_eq!(
        ok(&d, &["volume", "rm", "myvol", &anon]),
        format!("myvol\n{anon}\n")
    );
    assert!(!mp.exists());
    assert!(volume_names(&d).is_empty());
    let (code, _, e) = out(&d.docker(&["volume", "rm", "myvol"]));
    assert_eq!(code, 1);
    assert!(e.contains("no such volume"), "{e}");
    // -f: a missing volume is fine.
    assert_eq!(ok(&d, &["volume", "rm", "-f", "myvol"]), "myvol\n");
}

#[test]
fn named_volume_persists_and_ro_is_read_only() {
    let d = ready();
    ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data1:/data",
            "busybox",
            "sh",
            "-c",
            "echo persisted > /data/f",
        ],
    );
    // Created on demand by the first run.
    assert_eq!(volume_names(&d), vec!["data1"]);
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "data1:/data",
                "busybox",
                "cat",
                "/data/f"
            ]
        ),
        "persisted\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.data_root().join("volumes/data1/_data/f")).unwrap(),
        "persisted\n"
    );
    for args in [
        &["-v", "data1:/data:ro"][..],
        &["--mount", "type=volume,src=data1,dst=/data,readonly"][..],
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "sh", "-c", "cat /data/f; echo x > /data/f"]);
        let (code, o, e) = out(&d.docker(&a));
        assert_ne!(code, 0, "write to a read-only volume succeeded ({args:?})");
        assert_eq!(o, "persisted\n");
        assert!(e.contains("Read-only file system"), "{e}");
    }
    // The named volume outlives --rm containers.
    assert_eq!(volume_names(&d), vec!["data1"]);
}

#[test]
fn inspect_mounts_like_docker() {
    let d = ready();
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/b:ro", host.path().display());
    let id = ok(
        &d,
        &[
            "create",
            "-v",
            "named1:/n",
            "-v",
            "/anon",
            "-v",
            &bind,
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
            "--mount",
            "type=volume,src=named2,dst=/m",
            "busybox",
            "true",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&d, &["inspect", id.trim()])).unwrap();
    let mounts = v[0]["Mounts"].as_array().unwrap();
    let by = |dest: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == dest)
            .unwrap_or_else(|| panic!("no mount at {dest}: {mounts:?}"))
            .clone()
    };
    let n = by("/n");
    assert_eq!(
        (
            n["Type"].as_str(),
            n["Name"].as_str(),
            n["Driver"].as_str(),
            n["Mode"].as_str(),
            n["RW"].as_bool(),
            n["Propagation"].as_str()
        ),
        (
            Some("volume"),
            Some("named1"),
            Some("local"),
            Some("z"),
            Some(true),
            Some("")
        )
    );
    assert_eq!(
        n["Source"],
        d.data_root().join("volumes/named1/_data").to_str().unwrap()
    );
    let a = by("/anon");
    assert_eq!(a["Name"].as_str().unwrap().len(), 64);
    assert_eq!(a["Mode"], "");
    let b = by("/b");
    assert_eq!(
        (
            b["Type"].as_str(),
            b["Mode"].as_str(),
            b["RW"].as_bool(),
            b["Propagation"].as_str()
        ),
        (Some("bind"), Some("ro"), Some(false), Some("rprivate"))
    );
    assert!(b.get("Name").is_none() && b.get("Driver").is_none());
    let t = by("/t");
    assert_eq!(
        (t["Type"].as_str(), t["Source"].as_str()),
        (Some("tmpfs"), Some(""))
    );
    assert_eq!(by("/m")["Name"], "named2");
    // The anonymous volume carries Docker's label.
    let anon = a["Name"].as_str().unwrap();
    assert_eq!(
        ok(&d, &["volume", "inspect", "-f", "{{json .Labels}}", anon]),
        "{\"com.docker.volume.anonymous\":\"\"}\n"
    );
    // And the mounts work in the running container.
    std::fs::write(host.path().join("hostfile"), "fromhost").unwrap();
    let o = ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &bind,
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
            "busybox",
            "sh",
            "-c",
            "cat /b/hostfile; echo; grep ' /t ' /proc/mounts | cut -d' ' -f3",
        ],
    );
    assert_eq!(o, "fromhost\ntmpfs\n");
}

#[test]
fn in_use_volume_is_not_removed() {
    let d = ready();
    let id = ok(
        &d,
        &[
            "create", "--name", "user", "-v", "busy:/x", "busybox", "true",
        ],
    );
    let id = id.trim();
    let (code, _, e) = out(&d.docker(&["volume", "rm", "busy"]));
    assert_eq!(code, 1);
    assert!(
        e.contains(&format!("remove busy: volume is in use - [{id}]")),
        "{e}"
    );
    let r = d.request("DELETE", "/v1.41/volumes/busy?force=1", None);
    assert_eq!(r.status, 409, "force does not remove a volume in use");
    assert_eq!(
        ok(&d, &["volume", "ls", "-q", "-f", "dangling=false"]),
        "busy\n"
    );
    // docker ps finds the user by volume name or by mount destination.
    for f in ["volume=busy", "volume=/x"] {
        assert_eq!(
            ok(&d, &["ps", "-aq", "--no-trunc", "-f", f]),
            format!("{id}\n")
        );
    }
    assert_eq!(ok(&d, &["ps", "-aq", "-f", "volume=other"]), "");
    assert_eq!(ok(&d, &["volume", "ls", "-q", "-f", "dangling=true"]), "");
    ok(&d, &["rm", "user"]);
    assert_eq!(
        ok(&d, &["volume", "ls", "-q", "-f", "dangling=true"]),
        "busy\n"
    );
    assert_eq!(ok(&d, &["volume", "rm", "busy"]), "busy\n");
}

#[test]
fn prune_removes_unused_volumes() {
    let d = ready();
    ok(&d, &["create", "-v", "kept:/x", "busybox", "true"]);
    ok(&d, &["volume", "create", "unused1"]);
    ok(&d, &["volume", "create", "--label", "keep=1", "unused2"]);
    std::fs::write(
        d.data_root().join("volumes/unused1/_data/blob"),
        vec![7u8; 4096],
    )
    .unwrap();
    // Label filters narrow what goes.
    let o = ok(&d, &["volume", "prune", "-f", "--filter", "label!=keep"]);
    assert!(o.starts_with("Deleted Volumes:\nunused1\n"), "{o}");
    assert!(o.contains("Total reclaimed space: 4.096kB"), "{o}");
    let o = ok(&d, &["volume", "prune", "-f"]);
    assert!(o.contains("unused2"), "{o}");
    assert_eq!(volume_names(&d), vec!["kept"]);
    let r = d.post_json("/v1.41/volumes/prune", &serde_json::json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["VolumesDeleted"], serde_json::json!([]));
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_auto_remove() {
    let d = ready();
    // --rm: the anonymous volume goes with the container, a named one stays.
    ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "/anon",
            "-v",
            "stays:/s",
            "busybox",
            "sh",
            "-c",
            "echo x > /anon/f",
        ],
    );
    assert_eq!(volume_names(&d), vec!["stays"]);
    // rm without -v keeps it; rm -v removes it.
    let id = ok(&d, &["create", "-v", "/anon", "busybox", "true"]);
    let anon = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Name}}{{end}}",
            id.trim(),
        ],
    );
    let anon = anon.trim().to_owned();
    assert_eq!(anon.len(), 64);
    ok(&d, &["rm", id.trim()]);
    assert!(volume_names(&d).contains(&anon));
    let id = ok(&d, &["create", "-v", "/anon", "busybox", "true"]);
    let anon2 = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Name}}{{end}}",
            id.trim(),
        ],
    );
    ok(&d, &["rm", "-v", id.trim()]);
    let names = volume_names(&d);
    assert!(!names.contains(&anon2.trim().to_owned()), "{names:?}");
    assert!(names.contains(&anon));
}

/// An image with `VOLUME /data` and a file there, on top of busybox.
fn load_volume_image(d: &Berthd) {
    let base = berth_fixtures::layer_tar_of(&berth_fixtures::busybox_rootfs().unwrap()).unwrap();
    let extra = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(extra.path().join("data/sub")).unwrap();
    std::fs::write(extra.path().join("data/hello.txt"), "from the image\n").unwrap();
    std::fs::write(extra.path().join("data/sub/x"), "x").unwrap();
    let layer = berth_fixtures::layer_tar_of(extra.path()).unwrap();
    let archive = berth_fixtures::docker_save_archive(
        &[base, layer],
        serde_json::json!({"config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "Volumes": {"/data": {}}
        }}),
        "voltest:latest",
    )
    .unwrap();
    let r = common::request(
        &d.sock,
        "POST",
        "/v1.41/images/load?quiet=1",
        Some(&archive),
        "application/x-tar",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn new_volumes_get_the_image_content() {
    let d = ready();
    load_volume_image(&d);
    // The image's VOLUME becomes an anonymous volume holding the image's files.
    let id = ok(&d, &["create", "voltest", "cat", "/data/hello.txt"]);
    let id = id.trim();
    let anon = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Name}} {{.Destination}}{{end}}",
            id,
        ],
    );
    let (anon, dest) = anon.trim().split_once(' ').unwrap();
    assert_eq!(dest, "/data");
    assert_eq!(
        std::fs::read_to_string(
            d.data_root()
                .join(format!("volumes/{anon}/_data/hello.txt"))
        )
        .unwrap(),
        "from the image\n"
    );
    assert_eq!(ok(&d, &["start", "-a", id]), "from the image\n");
    // A named volume is filled on first use only; later changes persist.
    ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "filled:/data",
            "voltest",
            "sh",
            "-c",
            "echo changed > /data/hello.txt; rm /data/sub/x",
        ],
    );
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "filled:/data",
                "voltest",
                "sh",
                "-c",
                "cat /data/hello.txt; ls /data/sub"
            ]
        ),
        "changed\n"
    );
    // nocopy: the volume stays empty.
    assert_eq!(
        ok(
            &d,
            &[
                "run",
                "--rm",
                "--mount",
                "type=volume,src=empty,dst=/data,volume-nocopy",
                "voltest",
                "ls",
                "-A",
                "/data"
            ]
        ),
        ""
    );
    // A bind mount never gets image content.
    let host = tempfile::tempdir().unwrap();
    ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/data", host.path().display()),
            "voltest",
            "true",
        ],
    );
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 0);
}

#[test]
fn volumes_from_shares_mounts() {
    let d = ready();
    ok(
        &d,
        &[
            "create",
            "--name",
            "source",
            "-v",
            "/shared",
            "-v",
            "named:/named",
            "busybox",
            "true",
        ],
    );
    ok(
        &d,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "source",
            "busybox",
            "sh",
            "-c",
            "echo one > /shared/f; echo two > /named/g",
        ],
    );
    let (code, o, e) = out(&d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "source:ro",
        "busybox",
        "sh",
        "-c",
        "cat /shared/f /named/g; touch /shared/new",
    ]));
    assert_eq!(o, "one\ntwo\n");
    assert_ne!(code, 0, ":ro volumes-from is read-only");
    assert!(e.contains("Read-only file system"), "{e}");
    // A missing source container is Docker's 404 (which makes the docker CLI try a pull,
    // as it does against dockerd), so ask the API directly.
    let r = d.post_json(
        "/v1.41/containers/create",
        &serde_json::json!({"Image": "busybox", "HostConfig": {"VolumesFrom": ["nosuch"]}}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["message"], "No such container: nosuch");
    // The shared anonymous volume is still the source's: --rm of the borrower left it.
    let src_anon = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{if eq .Destination \"/shared\"}}{{.Name}}{{end}}{{end}}",
            "source",
        ],
    );
    assert!(volume_names(&d).contains(&src_anon.trim().to_owned()));
}

#[test]
fn tmpfs_driver_options_volume() {
    let d = ready();
    ok(
        &d,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=2m,mode=0770",
            "tv",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&d, &["volume", "inspect", "tv"])).unwrap();
    assert_eq!(
        v[0]["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=2m,mode=0770", "type": "tmpfs"})
    );
    let o = ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "tv:/t",
            "busybox",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts | cut -d' ' -f3; stat -c %a /t",
        ],
    );
    assert_eq!(o, "tmpfs\n770\n");
    // Unmounted again once no container uses it.
    let data = d.data_root().join("volumes/tv/_data");
    assert!(
        !is_mounted(&data),
        "tmpfs still mounted on {}",
        data.display()
    );
    ok(&d, &["volume", "rm", "tv"]);

    // type=none,o=bind: the volume is a host directory.
    let host = tempfile::tempdir().unwrap();
    let dev = format!("device={}", host.path().display());
    ok(
        &d,
        &[
            "volume",
            "create",
            "-o",
            "type=none",
            "-o",
            "o=bind",
            "-o",
            &dev,
            "bv",
        ],
    );
    ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "bv:/b",
            "busybox",
            "sh",
            "-c",
            "echo via-volume > /b/f",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("f")).unwrap(),
        "via-volume\n"
    );
    assert!(!is_mounted(&d.data_root().join("volumes/bv/_data")));
    ok(&d, &["volume", "rm", "bv"]);
    assert!(
        host.path().join("f").exists(),
        "removing the volume keeps the host dir"
    );
}

#[test]
fn system_df_counts_volumes() {
    let d = ready();
    ok(&d, &["create", "-v", "dfvol:/x", "busybox", "true"]);
    std::fs::write(d.data_root().join("volumes/dfvol/_data/f"), vec![1u8; 1000]).unwrap();
    let r = d.get("/v1.41/system/df");
    assert_eq!(r.status, 200);
    let vols = r.json()["Volumes"].as_array().unwrap().clone();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0]["Name"], "dfvol");
    assert_eq!(
        vols[0]["UsageData"],
        serde_json::json!({"Size": 1000, "RefCount": 1})
    );
    let o = ok(&d, &["system", "df"]);
    let line = o.lines().find(|l| l.starts_with("Local Volumes")).unwrap();
    assert!(
        line.split_whitespace()
            .collect::<Vec<_>>()
            .starts_with(&["Local", "Volumes", "1", "1", "1kB"]),
        "{o}"
    );
}

#[test]
fn volumes_and_references_survive_a_daemon_restart() {
    let mut d = ready();
    ok(&d, &["volume", "create", "--label", "k=v", "durable"]);
    let id = ok(
        &d,
        &[
            "create",
            "-v",
            "durable:/d",
            "-v",
            "/anon",
            "busybox",
            "true",
        ],
    );
    let id = id.trim().to_owned();
    d.kill9_and_restart();
    assert_eq!(
        ok(&d, &["volume", "inspect", "-f", "{{.Labels}}", "durable"]),
        "map[k:v]\n"
    );
    // The container's mount points were persisted: the volume is still in use.
    let (code, _, e) = out(&d.docker(&["volume", "rm", "durable"]));
    assert_eq!(code, 1);
    assert!(e.contains(&format!("volume is in use - [{id}]")), "{e}");
    ok(&d, &["rm", "-v", &id]);
    assert_eq!(volume_names(&d), vec!["durable"]);
}
