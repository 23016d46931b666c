//! The daemon issue's scenario list with `berth` in place of `docker`: logs -f, top, pause/unpause,
//! rename, kill -s, wait, start, restart, attach, events --since/--until, container prune.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, stderr, stdout};

fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth().args(args).output().unwrap();
    assert!(o.status.success(), "berth {args:?}: {}", stderr(&o));
    stdout(&o)
}

fn status(d: &Daemon, name: &str) -> String {
    ok(d, &["inspect", "-f", "{{.State.Status}}", name])
        .trim()
        .to_owned()
}

#[test]
fn lifecycle_scenarios_like_docker() {
    let d = Daemon::start();
    d.load_busybox();
    let t0 = ok(&d, &["version", "-f", "{{.Server.Version}}"]);
    assert!(!t0.trim().is_empty());
    let since = chrono::Utc::now().timestamp().to_string();
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.1; done",
        ],
    );

    // logs -f follows until the client goes away.
    let mut follow = Command::new(assert_cmd::cargo::cargo_bin("berth"))
        .args(["logs", "-f", "ticker"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &d.config_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = follow.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("line 5") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "logs -f ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen.starts_with("line 0\n"), "{seen}");

    // top shows the container's processes with ps's header.
    let top = ok(&d, &["top", "ticker"]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sh -c"), "{top}");

    ok(&d, &["pause", "ticker"]);
    assert_eq!(status(&d, "ticker"), "paused");
    ok(&d, &["unpause", "ticker"]);
    assert_eq!(status(&d, "ticker"), "running");

    ok(&d, &["rename", "ticker", "ticker2"]);
    assert_eq!(
        ok(&d, &["inspect", "-f", "{{.Name}}", "ticker2"]).trim(),
        "/ticker2"
    );

    // kill -s KILL, then wait gives 137; start and restart bring it back.
    ok(&d, &["kill", "-s", "KILL", "ticker2"]);
    assert_eq!(ok(&d, &["wait", "ticker2"]).trim(), "137");
    assert_eq!(status(&d, "ticker2"), "exited");
    ok(&d, &["start", "ticker2"]);
    assert_eq!(status(&d, "ticker2"), "running");
    let pid1 = ok(&d, &["inspect", "-f", "{{.State.Pid}}", "ticker2"]);
    ok(&d, &["restart", "-t", "1", "ticker2"]);
    assert_eq!(status(&d, "ticker2"), "running");
    let pid2 = ok(&d, &["inspect", "-f", "{{.State.Pid}}", "ticker2"]);
    assert_ne!(pid1, pid2, "restart runs a new init");
    ok(&d, &["stop", "-t", "1", "ticker2"]);
    assert_eq!(status(&d, "ticker2"), "exited");

    // attach to a running container: its output, then its exit code.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "later",
            "busybox",
            "sh",
            "-c",
            "sleep 1; echo attached-out; exit 5",
        ],
    );
    let o = d.berth().args(["attach", "later"]).output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stdout(&o).contains("attached-out"), "{}", stdout(&o));

    // events between two times, filtered.
    std::thread::sleep(Duration::from_millis(1100));
    let until = chrono::Utc::now().timestamp().to_string();
    let ev = ok(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=container",
            "--format",
            "{{.Action}}",
        ],
    );
    for action in [
        "create", "start", "pause", "unpause", "rename", "kill", "die", "restart", "stop",
    ] {
        assert!(
            ev.lines().any(|l| l == action),
            "no {action} event in:\n{ev}"
        );
    }
    // Relative durations work like docker's.
    let recent = ok(
        &d,
        &[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--format",
            "{{.Action}}",
        ],
    );
    assert!(recent.lines().any(|l| l == "rename"), "{recent}");

    // container prune removes the stopped ones only.
    ok(
        &d,
        &["run", "-d", "--name", "stays", "busybox", "sleep", "300"],
    );
    let pruned = ok(&d, &["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    let left = ok(&d, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left.trim(), "stays");
    ok(&d, &["rm", "-f", "stays"]);
}
