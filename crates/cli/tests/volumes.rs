//! `berth volume …` and volumes in `berth run` against a private berthd, compared with the
//! real docker CLI on the same daemon.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Daemon, stderr, stdout};

/// (exit code, stdout, stderr) of berth and of docker for the same arguments.
fn both(d: &Daemon, args: &[&str]) -> ((i32, String, String), (i32, String, String)) {
    let run = |mut c: assert_cmd::Command| {
        let o = c.args(args).output().unwrap();
        (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
    };
    (run(d.berth()), run(d.docker()))
}

fn berth_ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth().args(args).assert().success().get_output().clone();
    stdout(&o)
}

#[test]
fn volume_commands_match_docker() {
    let d = Daemon::start();
    assert_eq!(
        berth_ok(
            &d,
            &[
                "volume",
                "create",
                "--label",
                "tier=db",
                "-o",
                "type=tmpfs",
                "-o",
                "device=tmpfs",
                "dbdata"
            ]
        ),
        "dbdata\n"
    );
    assert_eq!(berth_ok(&d, &["volume", "create", "cache1"]), "cache1\n");
    let anon = berth_ok(&d, &["volume", "create"]).trim().to_owned();
    assert_eq!(anon.len(), 64);
    for args in [
        &["volume", "ls"][..],
        &["volume", "list", "-q"][..],
        &[
            "volume",
            "ls",
            "--format",
            "{{.Name}}\t{{.Driver}}\t{{.Scope}}\t{{.Mountpoint}}",
        ][..],
        &[
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Mountpoint}}",
        ][..],
        &["volume", "ls", "--format", "{{json .}}"][..],
        &["volume", "ls", "-f", "label=tier=db"][..],
        &[
            "volume",
            "ls",
            "-q",
            "-f",
            "dangling=true",
            "-f",
            "name=cache",
        ][..],
        &["volume", "ls", "-f", "driver=local", "-q"][..],
        &["volume", "inspect", "dbdata", "cache1"][..],
        &[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Labels}} {{.Options}} {{.Scope}}",
            "dbdata",
        ][..],
        &["volume", "inspect", "nosuch"][..],
        &["volume", "inspect", "cache1", "nosuch"][..],
        &["volume", "ls", "-f", "bogus=1"][..],
        &["volume", "create", "-o", "size=1g", "quota"][..],
        &["volume", "create", "a"][..],
        &["volume", "rm", "nosuch"][..],
        &["volume", "rm", "-f", "nosuch"][..],
        &["volume", "prune", "-a", "-f"][..],
    ] {
        let (ours, theirs) = both(&d, args);
        assert_eq!(ours, theirs, "berth {args:?}");
    }
    // Removing and pruning change state: compare output shapes on twin volumes.
    berth_ok(&d, &["volume", "create", "twin1"]);
    berth_ok(&d, &["volume", "create", "twin2"]);
    let (ours, theirs) = (
        berth_ok(&d, &["volume", "rm", "twin1"]),
        stdout(
            &d.docker()
                .args(["volume", "rm", "twin2"])
                .assert()
                .success()
                .get_output()
                .clone(),
        ),
    );
    assert_eq!((ours.as_str(), theirs.as_str()), ("twin1\n", "twin2\n"));
    let o = berth_ok(&d, &["volume", "prune", "-f"]);
    let mut gone: Vec<&str> = vec!["cache1", "dbdata", &anon];
    gone.sort();
    let want = format!(
        "Deleted Volumes:\n{}\n\nTotal reclaimed space: 0B\n",
        gone.join("\n")
    );
    assert_eq!(o, want);
    let (ours, theirs) = both(&d, &["volume", "prune", "-f"]);
    assert_eq!(ours, theirs);
    assert_eq!(ours.1, "Total reclaimed space: 0B\n");
    // The prompt (API 1.41: every unused volume goes) and a "no".
    let o = d
        .berth()
        .args(["volume", "prune"])
        .write_stdin("n\n")
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(
        stdout(&o),
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
}

#[test]
fn run_with_volumes() {
    let d = Daemon::start();
    d.load_busybox();
    berth_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "shared:/data",
            "busybox",
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
    );
    assert_eq!(
        berth_ok(
            &d,
            &[
                "run",
                "--rm",
                "--mount",
                "source=shared,target=/d,readonly",
                "busybox",
                "cat",
                "/d/f"
            ]
        ),
        "kept\n"
    );
    let o = d
        .berth()
        .args([
            "run",
            "--rm",
            "-v",
            "shared:/data:ro",
            "busybox",
            "touch",
            "/data/x",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );

    // In use: both CLIs say the same thing.
    let id = berth_ok(
        &d,
        &[
            "create",
            "--name",
            "holder",
            "-v",
            "shared:/data",
            "-v",
            "/scratch",
            "busybox",
            "true",
        ],
    );
    let (ours, theirs) = both(&d, &["volume", "rm", "shared"]);
    assert_eq!(ours, theirs);
    assert_eq!(ours.0, 1);
    assert_eq!(
        ours.2,
        format!(
            "Error response from daemon: remove shared: volume is in use - [{}]\n",
            id.trim()
        )
    );
    // Mounts in inspect and ps, as docker shows them.
    for args in [
        &["inspect", "-f", "{{json .Mounts}}", "holder"][..],
        &["ps", "-a", "--format", "{{.Mounts}}"][..],
        &["container", "ls", "-a", "--format", "{{.LocalVolumes}}"][..],
    ] {
        let (ours, theirs) = both(&d, args);
        assert_eq!(ours, theirs, "berth {args:?}");
    }
    // --volumes-from and rm -v.
    assert_eq!(
        berth_ok(
            &d,
            &[
                "run",
                "--rm",
                "--volumes-from",
                "holder:ro",
                "busybox",
                "cat",
                "/data/f"
            ]
        ),
        "kept\n"
    );
    let anon = berth_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{if eq .Destination \"/scratch\"}}{{.Name}}{{end}}{{end}}",
            "holder",
        ],
    );
    let anon = anon.trim();
    assert_eq!(anon.len(), 64);
    berth_ok(&d, &["rm", "-v", "holder"]);
    assert_eq!(berth_ok(&d, &["volume", "ls", "-q"]), "shared\n");
    // --rm takes the anonymous volume, keeps the named one.
    berth_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "/tmpvol",
            "-v",
            "shared:/s",
            "busybox",
            "true",
        ],
    );
    assert_eq!(berth_ok(&d, &["volume", "ls", "-q"]), "shared\n");
}
