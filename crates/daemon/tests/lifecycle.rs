//! Container verbs through the docker CLI: pause/unpause, rename, top, kill, wait, restart,
//! restart policies, logs --follow, exec with a TTY, bind mounts, image delete conflicts.

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
    assert_eq!(code, 0, "docker {args:?}: {e}\n{}", d.log());
    o
}

fn ready() -> Berthd {
    let d = Berthd::start();
    d.load_busybox();
    d
}

#[test]
fn pause_unpause_rename_top_kill_wait() {
    let d = ready();
    ok(
        &d,
        &["run", "-d", "--name", "p1", "busybox", "sleep", "1000"],
    );
    ok(&d, &["pause", "p1"]);
    assert_eq!(
        ok(
            &d,
            &["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "p1"]
        ),
        "paused true"
    );
    let (code, _, e) = dk(&d, &["pause", "p1"]);
    assert_ne!(code, 0);
    assert!(e.contains("is already paused"), "{e}");
    ok(&d, &["unpause", "p1"]);
    assert_eq!(
        ok(&d, &["inspect", "-f", "{{.State.Status}}", "p1"]),
        "running"
    );
    ok(&d, &["rename", "p1", "p2"]);
    assert_eq!(ok(&d, &["inspect", "-f", "{{.Name}}", "p2"]), "/p2");
    let top = ok(&d, &["top", "p2"]);
    assert!(top.lines().nth(1).unwrap().ends_with("sleep 1000"), "{top}");
    // PID 1 ignores signals it has no handler for; KILL always works.
    ok(&d, &["kill", "-s", "USR1", "p2"]);
    assert_eq!(
        ok(&d, &["inspect", "-f", "{{.State.Running}}", "p2"]),
        "true"
    );
    ok(&d, &["kill", "p2"]);
    assert_eq!(ok(&d, &["wait", "p2"]), "137");
    let (code, _, e) = dk(&d, &["kill", "p2"]);
    assert_ne!(code, 0);
    assert!(e.contains("is not running"), "{e}");
    ok(&d, &["rm", "p2"]);
}

#[test]
fn wait_returns_exit_code_and_restart_runs_again() {
    let d = ready();
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "w1",
            "busybox",
            "sh",
            "-c",
            "echo run; exit 5",
        ],
    );
    assert_eq!(ok(&d, &["wait", "w1"]), "5");
    ok(&d, &["restart", "w1"]);
    assert_eq!(ok(&d, &["wait", "w1"]), "5");
    assert_eq!(ok(&d, &["logs", "w1"]), "run\nrun");
    ok(&d, &["rm", "w1"]);
}

#[test]
fn restart_policy_on_failure_counts() {
    let d = ready();
    ok(
        &d,
        &[
            "run",
            "-d",
            "--restart",
            "on-failure:2",
            "--name",
            "rp",
            "busybox",
            "sh",
            "-c",
            "echo once; exit 1",
        ],
    );
    // Three runs in all: the first and two restarts; then it stays exited.
    let mut n = String::new();
    for _ in 0..400 {
        n = ok(
            &d,
            &["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "rp"],
        );
        if n == "2 exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(n, "2 exited");
    assert_eq!(ok(&d, &["logs", "rp"]), "once\nonce\nonce");
    ok(&d, &["rm", "rp"]);
}

#[test]
fn logs_follow_ends_when_container_exits() {
    let d = ready();
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "lf",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3; do echo $i; sleep 0.1; done; echo err >&2",
        ],
    );
    let o = d.docker(&["logs", "-f", "lf"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n2\n3\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let (_, o, e) = dk(&d, &["logs", "--tail", "2", "lf"]);
    assert_eq!((o.as_str(), e.as_str()), ("3", "err"));
    let ts = ok(&d, &["logs", "-t", "lf"]);
    assert!(
        ts.lines().all(|l| l.len() > 30 && l.as_bytes()[4] == b'-'),
        "{ts}"
    );
    ok(&d, &["rm", "lf"]);
}

#[test]
fn exec_tty_and_bind_mounts() {
    let d = ready();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello.txt"), "from host\n").unwrap();
    let bind = format!("{}:/data:ro", host.path().display());
    ok(
        &d,
        &[
            "run", "-d", "--name", "ex", "-v", &bind, "busybox", "sleep", "1000",
        ],
    );
    assert_eq!(
        ok(&d, &["exec", "ex", "cat", "/data/hello.txt"]),
        "from host"
    );
    let (code, _, _) = dk(&d, &["exec", "ex", "touch", "/data/x"]);
    assert_ne!(code, 0, "read-only bind is writable");
    assert_eq!(ok(&d, &["exec", "-t", "ex", "tty"]), "/dev/pts/0");
    let mounts = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}}{{end}}",
            "ex",
        ],
    );
    assert_eq!(mounts, format!("{}:/data:false", host.path().display()));
    ok(&d, &["rm", "-f", "ex"]);
}

#[test]
fn image_in_use_cannot_be_deleted_without_force() {
    let d = ready();
    ok(&d, &["create", "--name", "user", "busybox", "true"]);
    let (code, _, e) = dk(&d, &["rmi", "busybox"]);
    assert_ne!(code, 0);
    assert!(
        e.contains("container") && e.contains("is using its referenced image"),
        "{e}"
    );
    ok(&d, &["rm", "user"]);
    ok(&d, &["rmi", "busybox"]);
    let (code, _, e) = dk(&d, &["run", "--rm", "--pull", "never", "busybox", "true"]);
    assert_eq!(code, 125);
    assert!(e.contains("No such image: busybox:latest"), "{e}");
}

#[test]
fn start_attach_on_created_and_exited_containers() {
    let d = ready();
    ok(
        &d,
        &[
            "create",
            "--name",
            "sa",
            "busybox",
            "sh",
            "-c",
            "echo again; exit 2",
        ],
    );
    for _ in 0..2 {
        let (code, o, _) = dk(&d, &["start", "-a", "sa"]);
        assert_eq!((code, o.as_str()), (2, "again"));
    }
    ok(&d, &["rm", "sa"]);
}

#[test]
fn events_replay_with_since_until_and_filters() {
    let d = ready();
    let epoch = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let since = format!("{:.3}", epoch() - 5.0);
    let (code, _, e) = dk(
        &d,
        &[
            "run", "--rm", "--name", "evt", "busybox", "sh", "-c", "exit 3",
        ],
    );
    assert_eq!(code, 3, "{e}");
    // `until` just after now: replay only, the stream ends by itself.
    let until = format!("{:.3}", epoch() + 0.001);
    let q = |extra: &[&str]| {
        let mut a = vec!["events", "--since", &since, "--until", &until];
        a.extend_from_slice(extra);
        ok(&d, &a)
    };
    assert_eq!(
        q(&["--filter", "container=evt", "--format", "{{.Action}}"]),
        "create\nstart\ndie\ndestroy"
    );
    assert_eq!(
        q(&[
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.Attributes.exitCode}} {{.Actor.Attributes.name}}"
        ]),
        "3 evt"
    );
    assert_eq!(
        q(&["--filter", "type=image", "--format", "{{.Action}}"]),
        "load"
    );
}

#[test]
fn stats_read_the_containers_cgroup() {
    let d = ready();
    ok(
        &d,
        &[
            "run", "-d", "--name", "st", "-m", "64m", "busybox", "sleep", "1000",
        ],
    );
    let s = ok(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            "st",
        ],
    );
    let parts: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(parts[0], "st", "{s}");
    assert_eq!(parts[3], "64MiB", "{s}");
    assert_eq!(parts[4], "1", "{s}");
    ok(&d, &["rm", "-f", "st"]);
}

#[test]
fn attach_to_a_running_container_gets_output_and_exit_code() {
    let d = ready();
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "att",
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo late; exit 4",
        ],
    );
    let child = std::process::Command::new(common::DOCKER)
        .args(["attach", "--no-stdin", "att"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", &d.docker_config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Release the container only once the attach is registered with the shim.
    let mut attached = false;
    for _ in 0..400 {
        if d.log().contains("/attach?") {
            attached = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(attached, "attach request never reached berthd");
    ok(&d, &["exec", "att", "touch", "/tmp/go"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "late\n");
    assert_eq!(out.status.code(), Some(4));
    ok(&d, &["rm", "att"]);
}

#[test]
fn update_restart_policy_and_stopped_resources() {
    let d = ready();
    ok(
        &d,
        &["run", "-d", "--name", "up", "busybox", "sleep", "1000"],
    );
    ok(&d, &["update", "--restart", "unless-stopped", "up"]);
    assert_eq!(
        ok(
            &d,
            &["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "up"]
        ),
        "unless-stopped"
    );
    let (code, _, e) = dk(&d, &["update", "-m", "64m", "up"]);
    assert_ne!(code, 0);
    assert!(e.contains("not supported yet"), "{e}");
    ok(&d, &["stop", "-t", "0", "up"]);
    ok(&d, &["update", "-m", "64m", "--memory-swap", "128m", "up"]);
    assert_eq!(
        ok(&d, &["inspect", "-f", "{{.HostConfig.Memory}}", "up"]),
        "67108864"
    );
    ok(&d, &["start", "up"]);
    assert_eq!(
        ok(
            &d,
            &["stats", "--no-stream", "--format", "{{.MemUsage}}", "up"]
        )
        .split(" / ")
        .nth(1),
        Some("64MiB")
    );
    ok(&d, &["rm", "-f", "up"]);
}
