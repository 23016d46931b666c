//! `berth` end to end against a private berthd, compared with the real docker CLI.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Daemon, assert_aligned, cells, stderr, stdout};
use predicates::prelude::*;

#[test]
fn version_shows_client_and_server() {
    let d = Daemon::start();
    let o = d
        .berth()
        .arg("version")
        .assert()
        .success()
        .get_output()
        .clone();
    let out = stdout(&o);
    assert!(out.starts_with("Client:\n Version:           "), "{out}");
    assert!(
        out.contains("\nServer: berth\n Engine:\n  Version:          berth-"),
        "{out}"
    );
    // The server section is laid out as docker's.
    let theirs = stdout(
        &d.docker()
            .arg("version")
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let server = |s: &str| {
        s.split("\nServer:")
            .nth(1)
            .unwrap_or("")
            .lines()
            .filter(|l| !l.contains("Go version"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(server(&out), server(&theirs));
}

#[test]
fn daemon_down_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let o = assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .args(["-H", &format!("unix://{}", sock.display()), "ps"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(
        stderr(&o),
        format!(
            "Cannot connect to the berth daemon at unix://{}. Is berthd running?\n",
            sock.display()
        )
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn usage_errors_use_dockers_codes() {
    let d = Daemon::start();
    d.berth().arg("run").assert().code(1).stderr(
        predicate::str::contains("'berth run' requires at least 1 argument")
            .and(predicate::str::contains("See 'berth run --help'")),
    );
    d.berth()
        .args(["run", "--bogus", "busybox"])
        .assert()
        .code(125)
        .stderr(predicate::str::starts_with("unknown flag: --bogus\n"));
    d.berth()
        .args(["ps", "--bogus"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains(
            "Run 'berth ps --help' for more information",
        ));
    d.berth()
        .arg("frob")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown command"));
    d.berth()
        .args(["run", "-m", "12q", "busybox"])
        .assert()
        .code(125)
        .stderr(predicate::str::starts_with("berth: invalid size: '12q'"));
}

#[test]
fn bad_templates_fail_like_docker() {
    let d = Daemon::start();
    let ours = d
        .berth()
        .args(["ps", "--format", "{{.ID"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let theirs = d
        .docker()
        .args(["ps", "--format", "{{.ID"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(stderr(&ours), stderr(&theirs));
    let ours = d
        .berth()
        .args(["inspect", "-f", "{{.Foo", "x"])
        .assert()
        .code(64)
        .get_output()
        .clone();
    let theirs = d
        .docker()
        .args(["inspect", "-f", "{{.Foo", "x"])
        .assert()
        .code(64)
        .get_output()
        .clone();
    assert_eq!(stderr(&ours), stderr(&theirs));
}

#[test]
fn empty_tables_match_docker() {
    let d = Daemon::start();
    for args in [
        &["ps", "-a"][..],
        &["images"][..],
        &["ps", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Status}}"][..],
    ] {
        let ours = stdout(&d.berth().args(args).assert().success().get_output().clone());
        let theirs = stdout(
            &d.docker()
                .args(args)
                .assert()
                .success()
                .get_output()
                .clone(),
        );
        assert_eq!(ours, theirs, "berth {args:?}");
    }
}

#[test]
fn inspect_missing_object() {
    let d = Daemon::start();
    d.berth()
        .args(["inspect", "nosuch"])
        .assert()
        .code(1)
        .stdout("[]\n")
        .stderr("Error: No such object: nosuch\n");
}

#[test]
fn run_rm_echo_and_exit_codes() {
    let d = Daemon::start();
    d.load_busybox();
    d.berth()
        .args(["run", "--rm", "busybox", "echo", "hi"])
        .assert()
        .success()
        .stdout("hi\n");
    d.berth()
        .args(["run", "--rm", "busybox", "sh", "-c", "exit 3"])
        .assert()
        .code(3);
    d.berth()
        .args(["run", "--rm", "busybox", "/nonexistent"])
        .assert()
        .code(127)
        .stderr(
            predicate::str::starts_with("berth: Error response from daemon: ").and(
                predicate::str::contains("Run 'berth run --help' for more information"),
            ),
        );
    d.berth()
        .args(["run", "--rm", "--name", "bad name!", "busybox", "true"])
        .assert()
        .code(125);
    // Not executable: 126, like docker.
    d.berth()
        .args(["run", "--rm", "busybox", "/etc/passwd"])
        .assert()
        .code(126);
    // No such image and a bad flag: 125.
    d.berth()
        .args(["run", "--rm", "--pull", "never", "nosuchimage:1", "true"])
        .assert()
        .code(125);
    d.berth()
        .args(["run", "--no-such-flag", "busybox", "true"])
        .assert()
        .code(125);
    // Nothing is left behind by --rm.
    let ps = stdout(
        &d.berth()
            .args(["ps", "-aq"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert_eq!(ps, "");
}

#[test]
fn run_stdin_and_stderr() {
    let d = Daemon::start();
    d.load_busybox();
    d.berth()
        .args(["run", "--rm", "-i", "busybox", "cat"])
        .write_stdin("piped in\n")
        .assert()
        .success()
        .stdout("piped in\n");
    d.berth()
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ])
        .assert()
        .success()
        .stdout("out\n")
        .stderr("err\n");
}

#[test]
fn detached_lifecycle_ps_logs_inspect_stop_rm() {
    let d = Daemon::start();
    d.load_busybox();
    let id = stdout(
        &d.berth()
            .args([
                "run",
                "-d",
                "--name",
                "web",
                "busybox",
                "sh",
                "-c",
                "echo started; exec sleep 300",
            ])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    // logs -f would block; plain logs after the line is there.
    let mut logs = String::new();
    for _ in 0..100 {
        logs = stdout(
            &d.berth()
                .args(["logs", "web"])
                .assert()
                .success()
                .get_output()
                .clone(),
        );
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logs, "started\n");
    d.berth()
        .args(["inspect", "-f", "{{.State.Status}}", "web"])
        .assert()
        .success()
        .stdout("running\n");
    d.berth()
        .args(["inspect", "-f", "{{.Id}}", "web"])
        .assert()
        .success()
        .stdout(format!("{id}\n"));

    // ps and inspect have docker's layout against the same daemon.
    let ours = stdout(&d.berth().arg("ps").assert().success().get_output().clone());
    let theirs = stdout(&d.docker().arg("ps").assert().success().get_output().clone());
    assert_aligned(&ours);
    assert_eq!(cells(&ours), cells(&theirs));
    assert!(ours.contains(&id[..12]) && ours.contains("web"), "{ours}");
    let ours = stdout(
        &d.berth()
            .args([
                "ps",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Names}} {{.Command}} {{.State}}",
            ])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let theirs = stdout(
        &d.docker()
            .args([
                "ps",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Names}} {{.Command}} {{.State}}",
            ])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert_eq!(ours, theirs);
    // Same JSON, same indentation and line layout (berthd's map key order may differ between
    // two requests, so lines are compared as a multiset).
    let ours = stdout(
        &d.berth()
            .args(["inspect", "web"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let theirs = stdout(
        &d.docker()
            .args(["inspect", "web"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(parse(&ours), parse(&theirs));
    let sorted = |s: &str| {
        let mut l: Vec<String> = s
            .lines()
            .map(|l| l.trim_end_matches(',').to_owned())
            .collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&ours), sorted(&theirs));
    for f in [
        "{{json .State}}",
        "{{.Config.Cmd}}",
        "{{range .Config.Env}}{{.}};{{end}}",
        "{{.HostConfig.RestartPolicy.Name}}",
    ] {
        let ours = stdout(
            &d.berth()
                .args(["inspect", "-f", f, "web"])
                .assert()
                .success()
                .get_output()
                .clone(),
        );
        let theirs = stdout(
            &d.docker()
                .args(["inspect", "-f", f, "web"])
                .assert()
                .success()
                .get_output()
                .clone(),
        );
        assert_eq!(ours, theirs, "template {f}");
    }

    // Unknown fields of Docker's formatter context are errors; `json` rows match.
    let ours = d
        .berth()
        .args(["ps", "--format", "{{.Foo}}"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let theirs = d
        .docker()
        .args(["ps", "--format", "{{.Foo}}"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(stderr(&ours), stderr(&theirs));
    let strip = |s: String| s.split("\"RunningFor\"").next().unwrap_or("").to_owned();
    let ours = stdout(
        &d.berth()
            .args(["ps", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let theirs = stdout(
        &d.docker()
            .args(["ps", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert_eq!(strip(ours), strip(theirs));
    d.berth()
        .args(["exec", "web", "echo", "from exec"])
        .assert()
        .success()
        .stdout("from exec\n");
    d.berth()
        .args(["exec", "web", "sh", "-c", "exit 5"])
        .assert()
        .code(5);

    d.berth()
        .args(["stop", "-t", "1", "web"])
        .assert()
        .success()
        .stdout("web\n");
    d.berth()
        .args(["inspect", "-f", "{{.State.Status}}", "web"])
        .assert()
        .success()
        .stdout("exited\n");
    let status = stdout(
        &d.berth()
            .args(["ps", "-a", "--format", "{{.Status}}"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert!(
        status.starts_with("Exited (") && status.contains(" ago"),
        "{status}"
    );
    d.berth()
        .args(["rm", "web"])
        .assert()
        .success()
        .stdout("web\n");
    d.berth()
        .args(["rm", "web"])
        .assert()
        .code(1)
        .stderr("Error response from daemon: No such container: web\n");
}

#[test]
fn images_match_docker() {
    let d = Daemon::start();
    d.load_busybox();
    let ours = stdout(
        &d.berth()
            .arg("images")
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let theirs = stdout(
        &d.docker()
            .arg("images")
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert_aligned(&ours);
    assert_eq!(cells(&ours), cells(&theirs));
    assert!(ours.contains("busybox"), "{ours}");
    let ours = stdout(
        &d.berth()
            .args(["images", "-q"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let theirs = stdout(
        &d.docker()
            .args(["images", "-q"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert_eq!(ours, theirs);
}

#[test]
fn broken_pipe_is_clean() {
    let d = Daemon::start();
    let berth = env!("CARGO_BIN_EXE_berth");
    // A megabyte of output: far more than the pipe holds once head has exited.
    let script = format!(
        "'{berth}' version --format '{{{{range $i := 100000}}}}xxxxxxxxxx{{{{end}}}}' | head -c1 >/dev/null; echo ${{PIPESTATUS[0]}}"
    );
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    let code = stdout(&o);
    assert!(
        code.trim() == "0",
        "exit status {code:?}, stderr {}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn signals_are_forwarded_to_the_container() {
    let d = Daemon::start();
    d.load_busybox();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "run",
            "--rm",
            "--name",
            "sig",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .env("DOCKER_HOST", d.host())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(rest, "got TERM\n");
    assert_eq!(st.code(), Some(7));
}

#[test]
fn missing_image_is_pulled_like_docker() {
    let d = Daemon::start();
    // berthd cannot pull yet (501): both CLIs show the same sequence and exit 125.
    let ours = d
        .berth()
        .args(["run", "--rm", "nosuch"])
        .assert()
        .code(125)
        .get_output()
        .clone();
    let theirs = d
        .docker()
        .args(["run", "--rm", "nosuch"])
        .assert()
        .code(125)
        .get_output()
        .clone();
    let theirs = stderr(&theirs)
        .replace("docker: Error", "berth: Error")
        .replace("'docker run --help'", "'berth run --help'");
    assert_eq!(stderr(&ours), theirs);
    assert!(stderr(&ours).starts_with("Unable to find image 'nosuch:latest' locally\n"));
}

#[test]
fn image_commands_match_docker() {
    let d = Daemon::start();
    d.load_busybox();
    d.berth()
        .args(["tag", "busybox", "me/bb:1"])
        .assert()
        .success()
        .stdout("");
    for args in [
        &["images"][..],
        &["images", "--no-trunc"][..],
        &["history", "busybox"][..],
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ][..],
    ] {
        let ours = stdout(&d.berth().args(args).assert().success().get_output().clone());
        let theirs = stdout(
            &d.docker()
                .args(args)
                .assert()
                .success()
                .get_output()
                .clone(),
        );
        // berthd lists an image's tags in no fixed order between two requests: compare rows
        // as a set, the header (if any) first.
        let rows = |s: &str| {
            let mut c = cells(s);
            let start = usize::from(!args.contains(&"--format"));
            c[start..].sort();
            c
        };
        assert_eq!(rows(&ours), rows(&theirs), "berth {args:?}");
    }
    d.berth()
        .args(["rmi", "me/bb:1"])
        .assert()
        .success()
        .stdout("Untagged: me/bb:1\n");
    // save | load round trip.
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("bb.tar");
    d.berth()
        .args(["save", "-o"])
        .arg(&tar)
        .arg("busybox")
        .assert()
        .success();
    assert!(std::fs::metadata(&tar).unwrap().len() > 1024);
    d.berth()
        .args(["load", "-i"])
        .arg(&tar)
        .assert()
        .success()
        .stdout(predicate::str::contains("busybox:latest"));
}

#[test]
fn shell_completion_scripts() {
    let bash = stdout(
        &assert_cmd::Command::cargo_bin("berth")
            .unwrap()
            .args(["completion", "bash"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    // The script is valid bash and knows the subcommands.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("berth.bash");
    std::fs::write(&script, &bash).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        bash.contains("inspect") && bash.contains("--detach-keys"),
        "incomplete script"
    );
    let fish = stdout(
        &assert_cmd::Command::cargo_bin("berth")
            .unwrap()
            .args(["completion", "fish"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert!(fish.contains("complete -c berth"));
    assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .args(["completion", "tcsh"])
        .assert()
        .code(1)
        .stderr("unsupported shell type \"tcsh\"\n");
}

#[test]
fn garbage_from_the_daemon_is_an_error_not_a_panic() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("garbage.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        // Answer every connection (ping, then the request) with bytes that are not HTTP.
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"this is not http\r\n\r\n");
        }
    });
    let o = assert_cmd::Command::cargo_bin("berth")
        .unwrap()
        .args(["-H", &format!("unix://{}", sock.display()), "ps"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = stderr(&o);
    assert!(err.contains("talking to the daemon at unix://"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    server.join().unwrap();
}
