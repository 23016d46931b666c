//! `berth network …`, `run -p`, `port` and network-related `ps`/`inspect` output against a
//! private berthd with bridge networking (in its own network namespace), compared with what the
//! real docker CLI prints for the same daemon.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Daemon, assert_aligned, cells, stderr, stdout};

/// stdout of `berth ARGS` and of `docker ARGS`, both required to succeed.
fn both(d: &Daemon, args: &[&str]) -> (String, String) {
    let ours = d.berth().args(args).output().unwrap();
    assert!(ours.status.success(), "berth {args:?}: {}", stderr(&ours));
    let theirs = d.docker().args(args).output().unwrap();
    assert!(
        theirs.status.success(),
        "docker {args:?}: {}",
        stderr(&theirs)
    );
    (stdout(&ours), stdout(&theirs))
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth().args(args).output().unwrap();
    assert!(o.status.success(), "berth {args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn network_commands_match_docker() {
    let d = Daemon::start_networked();
    d.load_busybox();
    let id = ok(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.91.0.0/24",
            "--gateway",
            "10.91.0.254",
            "--label",
            "team=web",
            "front",
        ],
    );
    assert_eq!(id.trim().len(), 64, "{id}");
    ok(&d, &["network", "create", "--internal", "back"]);

    // Same daemon, same answers: tables, -q, filters and templates.
    for args in [
        &["network", "ls"][..],
        &["network", "ls", "-q"][..],
        &["network", "ls", "--no-trunc"][..],
        &["network", "ls", "-f", "label=team=web"][..],
        &[
            "network",
            "ls",
            "-f",
            "driver=bridge",
            "--format",
            "{{.Name}}",
        ][..],
        &["network", "ls", "--format", "table {{.Name}}\t{{.Driver}}"][..],
        &["network", "inspect", "front"][..],
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Internal}}",
            "front",
            "back",
        ][..],
    ] {
        let (ours, theirs) = both(&d, args);
        if args.len() == 2 {
            assert_aligned(&ours);
            assert_eq!(cells(&ours), cells(&theirs), "berth {args:?}");
        } else {
            assert_eq!(ours, theirs, "berth {args:?}");
        }
    }
    let ls = ok(&d, &["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["back", "bridge", "front", "host", "none"]);

    // Errors: duplicate name, predefined network, unknown network — Docker's texts and codes.
    let o = d
        .berth()
        .args(["network", "create", "front"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("network with name front already exists"),
        "{}",
        stderr(&o)
    );
    let o = d
        .berth()
        .args(["network", "rm", "bridge"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bridge is a pre-defined network and cannot be removed"),
        "{}",
        stderr(&o)
    );
    let o = d
        .berth()
        .args(["network", "inspect", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));

    // A container with a static address and an alias, connected to a second network.
    let cid = ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web1",
            "--network",
            "front",
            "--ip",
            "10.91.0.10",
            "--network-alias",
            "www",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let cid = cid.trim();
    let (ours, theirs) = both(
        &d,
        &[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
            "web1",
        ],
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours.trim(), "front=10.91.0.10");
    let resolved = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "front",
            "busybox",
            "nslookup",
            "www",
        ],
    );
    assert!(resolved.contains("10.91.0.10"), "{resolved}");

    ok(&d, &["network", "connect", "back", "web1"]);
    let addrs = ok(&d, &["exec", "web1", "ip", "-4", "-o", "addr"]);
    assert!(addrs.contains("eth1"), "{addrs}");
    let o = d.berth().args(["network", "rm", "back"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("has active endpoints"),
        "{}",
        stderr(&o)
    );
    ok(&d, &["network", "disconnect", "back", "web1"]);
    let addrs = ok(&d, &["exec", "web1", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains("eth1"), "{addrs}");

    // prune removes only networks no container belongs to.
    let pruned = ok(&d, &["network", "prune", "-f"]);
    assert!(pruned.contains("back"), "{pruned}");
    assert!(!pruned.contains("front"), "{pruned}");
    ok(&d, &["rm", "-f", cid]);
    ok(&d, &["network", "rm", "front"]);
    let ls = ok(&d, &["network", "ls", "-q"]);
    assert_eq!(ls.lines().count(), 3, "{ls}");
}

#[test]
fn published_ports_in_ps_port_and_inspect_match_docker() {
    let d = Daemon::start_networked();
    d.load_busybox();
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "srv",
            "-p",
            "127.0.0.1:18080:80",
            "-p",
            "18081:81/udp",
            "busybox",
            "sleep",
            "300",
        ],
    );
    for args in [
        &["port", "srv"][..],
        &["port", "srv", "80"][..],
        &["port", "srv", "81/udp"][..],
        &["ps", "--format", "{{.Names}} {{.Ports}}"][..],
        &["inspect", "-f", "{{json .NetworkSettings.Ports}}", "srv"][..],
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"][..],
    ] {
        let (ours, theirs) = both(&d, args);
        assert_eq!(ours, theirs, "berth {args:?}");
    }
    let (ours, _) = both(&d, &["port", "srv"]);
    assert_eq!(
        ours, "80/tcp -> 127.0.0.1:18080\n81/udp -> 0.0.0.0:18081\n",
        "Docker's `port` lines"
    );
    let ip = ok(
        &d,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"],
    );
    assert!(
        ip.trim().starts_with("172."),
        "default bridge address: {ip}"
    );

    // The same host port twice: Docker's error, exit 125.
    let o = d
        .berth()
        .args(["run", "-d", "-p", "127.0.0.1:18080:80", "busybox", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("port is already allocated"),
        "{}",
        stderr(&o)
    );
    // container: mode refuses -p like Docker.
    let o = d
        .berth()
        .args([
            "run",
            "--rm",
            "--network",
            "container:srv",
            "-p",
            "80:80",
            "busybox",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("conflicting options: port publishing and the container type network mode"),
        "{}",
        stderr(&o)
    );
    ok(&d, &["rm", "-f", "srv"]);
}
