//! End to end with the real docker CLI (v28) against a private berthd: image load, run with
//! exit codes, detached containers, logs, exec, stop, rm, name conflicts.

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

#[test]
fn run_rm_echo_hi() {
    let d = ready();
    let (code, stdout, stderr) = out(&d.docker(&["run", "--rm", "busybox", "echo", "hi"]));
    assert_eq!(
        (code, stdout.as_str()),
        (0, "hi\n"),
        "stderr: {stderr}\nberthd: {}",
        d.log()
    );
    // --rm: nothing left behind.
    let (_, ps, _) = out(&d.docker(&["ps", "-aq"]));
    assert_eq!(ps, "");
}

#[test]
fn run_exit_codes_match_docker() {
    let d = ready();
    let (code, _, e) = out(&d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]));
    assert_eq!(code, 3, "{e}");
    let (code, _, e) = out(&d.docker(&["run", "--rm", "busybox", "nonexistent-cmd"]));
    assert_eq!(code, 127, "{e}");
    assert!(e.contains("executable file not found"), "{e}");
    let (code, _, e) = out(&d.docker(&["run", "--rm", "busybox", "/etc"]));
    assert_eq!(code, 126, "{e}");
    let (code, _, e) = out(&d.docker(&["run", "--rm", "--no-such-flag", "busybox", "true"]));
    assert_eq!(code, 125, "{e}");
    let (code, _, e) = out(&d.docker(&["run", "--rm", "--pull", "never", "nosuchimage", "true"]));
    assert_eq!(code, 125, "{e}");
    assert!(e.contains("No such image: nosuchimage:latest"), "{e}");
    let (_, ps, _) = out(&d.docker(&["ps", "-aq"]));
    assert_eq!(ps, "", "failed --rm runs leave nothing");
}

#[test]
fn run_stdout_and_stderr_are_separate() {
    let d = ready();
    let (code, o, e) = out(&d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]));
    assert_eq!(code, 0);
    assert_eq!(o, "out\n");
    assert_eq!(e, "err\n");
}

#[test]
fn detached_ps_logs_exec_stop_rm() {
    let d = ready();
    let (code, id, e) = out(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]));
    assert_eq!(code, 0, "{e}");
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 64);
    let (_, ps, _) = out(&d.docker(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]));
    assert!(ps.starts_with(&format!("{} web Up", &id[..12])), "{ps}");
    let (code, o, e) = out(&d.docker(&["exec", "web", "sh", "-c", "echo from-exec; exit 4"]));
    assert_eq!((code, o.as_str()), (4, "from-exec\n"), "{e}");
    let (code, _, e) = out(&d.docker(&["stop", "-t", "10", "web"]));
    assert_eq!(code, 0, "{e}");
    let (_, logs, _) = out(&d.docker(&["logs", "web"]));
    assert_eq!(logs, "started\nbye\n");
    let (_, st, _) = out(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]));
    assert_eq!(st.trim(), "exited 0");
    let (code, _, e) = out(&d.docker(&["rm", "web"]));
    assert_eq!(code, 0, "{e}");
    let (_, ps, _) = out(&d.docker(&["ps", "-aq"]));
    assert_eq!(ps, "");
}

#[test]
fn name_conflict_is_409_with_docker_text() {
    let d = ready();
    let (code, id, e) = out(&d.docker(&["create", "--name", "dup", "busybox", "true"]));
    assert_eq!(code, 0, "{e}");
    // `docker run` reports daemon errors as 125 (`docker create` as 1).
    let (code, _, e) = out(&d.docker(&["run", "--name", "dup", "busybox", "true"]));
    assert_eq!(code, 125);
    assert!(
        e.contains(&format!(
            "Conflict. The container name \"/dup\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
            id.trim()
        )),
        "{e}"
    );
    let r = d.post_json(
        "/v1.41/containers/create?name=dup",
        &serde_json::json!({"Image": "busybox", "Cmd": ["true"]}),
    );
    assert_eq!(r.status, 409);
}

#[test]
fn create_inspect_list_rm_over_http() {
    let d = ready();
    let r = d.post_json(
        "/v1.41/containers/create?name=c1",
        &serde_json::json!({"Image": "busybox", "Cmd": ["echo", "x"], "Labels": {"a": "b"}, "Unknown": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_owned();
    let i = d
        .get(&format!("/v1.41/containers/{}/json", &id[..8]))
        .json();
    assert_eq!(i["Id"], id);
    assert_eq!(i["Name"], "/c1");
    assert_eq!(i["Path"], "echo");
    assert_eq!(i["Args"], serde_json::json!(["x"]));
    assert_eq!(i["State"]["Status"], "created");
    assert_eq!(i["State"]["Running"], false);
    assert_eq!(i["Driver"], "overlay2");
    assert_eq!(i["GraphDriver"]["Name"], "overlay2");
    assert!(
        i["GraphDriver"]["Data"]["UpperDir"]
            .as_str()
            .unwrap()
            .ends_with("/diff")
    );
    assert!(i["Image"].as_str().unwrap().starts_with("sha256:"));
    for f in ["ResolvConfPath", "HostnamePath", "HostsPath"] {
        assert!(
            std::path::Path::new(i[f].as_str().unwrap()).is_file(),
            "{f}"
        );
    }
    let cfg = d
        .data_root()
        .join("containers")
        .join(&id)
        .join("config.v2.json");
    assert!(cfg.is_file());
    // Listed with all=1 only (it is not running), label filter works.
    assert_eq!(
        d.get("/v1.41/containers/json").json(),
        serde_json::json!([])
    );
    let l = d
        .get("/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D")
        .json();
    assert_eq!(l[0]["Id"], id);
    assert_eq!(l[0]["Names"], serde_json::json!(["/c1"]));
    assert_eq!(l[0]["State"], "created");
    let r = d.request("DELETE", &format!("/v1.41/containers/{id}"), None);
    assert_eq!(r.status, 204);
    assert!(!cfg.exists());
    let r = d.get(&format!("/v1.41/containers/{id}/json"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], format!("No such container: {id}"));
}

#[test]
fn unknown_image_is_404_with_docker_text() {
    let d = Berthd::start();
    let r = d.post_json(
        "/v1.41/containers/create",
        &serde_json::json!({"Image": "busybox"}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: busybox:latest");
}

#[test]
fn images_list_inspect_tag_delete() {
    let d = ready();
    let (code, o, e) = out(&d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert_eq!(code, 0, "{e}");
    assert_eq!(o, "busybox:latest\n");
    let (code, _, e) = out(&d.docker(&["tag", "busybox", "mybox:1"]));
    assert_eq!(code, 0, "{e}");
    let (_, o, _) = out(&d.docker(&["image", "inspect", "-f", "{{.RepoTags}}", "mybox:1"]));
    assert!(o.contains("mybox:1") && o.contains("busybox:latest"), "{o}");
    let (code, o, e) = out(&d.docker(&["rmi", "mybox:1"]));
    assert_eq!(code, 0, "{e}");
    assert!(o.contains("Untagged: mybox:1"), "{o}");
}

#[test]
fn network_none_has_loopback_up_host_shares_host_no_bridge_without_default_bridge() {
    let d = ready();
    let (code, o, e) = out(&d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -o link | grep -c ': lo: <LOOPBACK,UP'; ip -o link | wc -l",
    ]));
    assert_eq!(code, 0, "{e}");
    assert_eq!(o, "1\n1\n", "only lo, and up");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let (code, o, e) = out(&d.docker(&["run", "--rm", "--network", "host", "busybox", "hostname"]));
    assert_eq!(code, 0, "{e}");
    assert_eq!(o.trim(), host.trim());
    let (code, _, e) = out(&d.docker(&["run", "--rm", "--network", "bridge", "busybox", "true"]));
    assert_eq!(code, 125);
    assert!(e.contains("network bridge not found"), "{e}");
}

#[test]
fn sigterm_leaves_containers_running_and_ends_long_polls() {
    let mut d = ready();
    let (code, id, e) = out(&d.docker(&["run", "-d", "busybox", "sleep", "1000"]));
    assert_eq!(code, 0, "{e}");
    let id = id.trim().to_owned();
    let (_, pid, _) = out(&d.docker(&["inspect", "-f", "{{.State.Pid}}", &id]));
    // A long poll in flight: `docker wait` on the running container.
    let mut waiter = std::process::Command::new(common::DOCKER)
        .args(["wait", &id])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", &d.docker_config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Make sure the wait reached berthd (its headers are sent at once).
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.stop();
    let _ = waiter.wait();
    assert!(
        std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "container died with berthd"
    );
    d.kill9_and_restart();
    let (_, ps, _) = out(&d.docker(&["ps", "-q", "--no-trunc"]));
    assert_eq!(ps.trim(), id);
    let (code, _, e) = out(&d.docker(&["rm", "-f", &id]));
    assert_eq!(code, 0, "{e}");
}

#[test]
fn stdin_reaches_run_and_exec() {
    use std::io::Write;
    let d = ready();
    let feed = |args: &[&str], input: &str| {
        let mut c = std::process::Command::new(common::DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
            .env("DOCKER_CONFIG", &d.docker_config)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        out(&c.wait_with_output().unwrap())
    };
    let (code, o, e) = feed(
        &["run", "-i", "--rm", "busybox", "sh"],
        "echo hello\nexit 4\n",
    );
    assert_eq!((code, o.as_str()), (4, "hello\n"), "{e}");
    let (code, _, e) = out(&d.docker(&["run", "-d", "--name", "ie", "busybox", "sleep", "1000"]));
    assert_eq!(code, 0, "{e}");
    let (code, o, e) = feed(&["exec", "-i", "ie", "sh"], "cat /etc/hostname; exit 6\n");
    assert_eq!(code, 6, "{e}");
    let (_, id, _) = out(&d.docker(&["inspect", "-f", "{{.Id}}", "ie"]));
    assert_eq!(o.trim(), &id.trim()[..12]);
    out(&d.docker(&["rm", "-f", "ie"]));
}

#[test]
fn container_gets_dockers_default_confinement() {
    let d = ready();
    let script = "grep -E '^(CapEff|Seccomp):' /proc/self/status; grep pids /proc/self/cgroup; \
                  mount | grep ' /dev/shm '; cat /proc/kcore 2>&1 | head -c 0; hostname";
    let (code, o, e) = out(&d.docker(&[
        "run", "--rm", "--name", "conf", "busybox", "sh", "-c", script,
    ]));
    assert_eq!(code, 0, "{e}");
    let lines: Vec<&str> = o.lines().collect();
    // Docker's 14 default capabilities, and its seccomp filter.
    assert_eq!(lines[0], "CapEff:\t00000000a80425fb");
    assert_eq!(lines[1], "Seccomp:\t2");
    assert!(lines[2].contains(":pids:/berth/"), "{o}");
    assert!(lines[3].contains("size=65536k"), "{o}");
    assert_eq!(lines[4].len(), 12, "hostname is the short id");
    let (code, o, _) = out(&d.docker(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]));
    assert_eq!(code, 0);
    assert_eq!(o.trim(), "CapEff:\t0000000000001000");
}

#[test]
fn runtime_selection_runc_and_unknown() {
    let d = ready();
    if !std::path::Path::new("/usr/sbin/runc").exists()
        && !std::path::Path::new("/usr/bin/runc").exists()
    {
        panic!("runc is part of the machine setup (apt: runc) and is missing");
    }
    let (code, o, e) = out(&d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "busybox",
        "echo",
        "via-runc",
    ]));
    assert_eq!((code, o.as_str()), (0, "via-runc\n"), "{e}");
    let (code, _, e) = out(&d.docker(&["run", "--rm", "--runtime", "nope", "busybox", "true"]));
    assert_eq!(code, 125);
    assert!(e.contains("unknown or invalid runtime name: nope"), "{e}");
}
