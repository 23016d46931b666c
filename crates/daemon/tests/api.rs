//! berthd's HTTP surface over a real unix socket: headers, shapes, error statuses and texts.

#![allow(clippy::unwrap_used)]

mod common;

use common::Berthd;
use serde_json::json;

#[test]
fn ping_headers() {
    let d = Berthd::start();
    for path in ["/_ping", "/v1.41/_ping", "/v1.24/_ping"] {
        let r = d.get(path);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "OK");
        assert_eq!(r.header("API-Version"), Some("1.41"));
        assert_eq!(r.header("OSType"), Some("linux"));
        assert_eq!(r.header("Docker-Experimental"), Some("false"));
        assert_eq!(r.header("Builder-Version"), Some("1"));
        assert!(r.header("Cache-Control").unwrap().contains("no-cache"));
    }
    let head = d.request("HEAD", "/_ping", None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn version_and_info_shapes() {
    let d = Berthd::start();
    let v = d.get("/v1.41/version").json();
    assert_eq!(v["ApiVersion"], "1.41");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Version"], "berth-0.1.0");
    let uname = String::from_utf8(
        std::process::Command::new("uname")
            .arg("-r")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["KernelVersion"], uname.trim());

    let i = d.get("/v1.41/info").json();
    assert_eq!(i["Driver"], "overlay2");
    assert_eq!(i["CgroupDriver"], "cgroupfs");
    let cg = i["CgroupVersion"].as_str().unwrap();
    let unified = std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|l| {
            l.split_whitespace().nth(1) == Some("/sys/fs/cgroup")
                && l.split_whitespace().nth(2) == Some("cgroup2")
        });
    assert_eq!(cg, if unified { "2" } else { "1" });
    assert_eq!(i["Containers"], 0);
    assert_eq!(
        i["NCPU"].as_u64().unwrap() as usize,
        std::thread::available_parallelism().unwrap().get()
    );
    assert!(i["MemTotal"].as_i64().unwrap() > 0);
    assert_eq!(i["DockerRootDir"], d.data_root().display().to_string());
    assert_eq!(i["KernelVersion"], uname.trim());
}

#[test]
fn version_out_of_range_is_400() {
    let d = Berthd::start();
    let r = d.get("/v1.50/info");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "client version 1.50 is too new. Maximum supported API version is 1.41"
    );
    let r = d.get("/v1.12/info");
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("too old"));
}

#[test]
fn unimplemented_is_501_with_method_and_path() {
    let d = Berthd::start();
    let r = d.get("/v1.41/secrets");
    assert_eq!(r.status, 501);
    assert_eq!(r.json()["message"], "not implemented: GET /secrets");
    let r = d.request("POST", "/swarm/init", Some(b"{}"));
    assert_eq!(r.status, 501);
    assert_eq!(r.json()["message"], "not implemented: POST /swarm/init");
}

#[test]
fn malformed_json_is_400() {
    let d = Berthd::start();
    let r = d.request("POST", "/v1.41/containers/create", Some(b"{not json"));
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    assert_eq!(r.header("Content-Type"), Some("application/json"));
}

#[test]
fn oversized_body_is_rejected_cleanly() {
    let d = Berthd::start();
    let big = vec![b' '; 11 * 1024 * 1024];
    let r = d.request("POST", "/v1.41/containers/create", Some(&big));
    assert_eq!(r.status, 413);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );
}

#[test]
fn unknown_container_is_404_with_docker_text() {
    let d = Berthd::start();
    for (m, p) in [
        ("GET", "/v1.41/containers/nosuch/json"),
        ("POST", "/v1.41/containers/nosuch/start"),
        ("DELETE", "/v1.41/containers/nosuch"),
    ] {
        let r = d.request(m, p, None);
        assert_eq!(r.status, 404, "{m} {p}");
        assert_eq!(r.json()["message"], "No such container: nosuch");
    }
}

#[test]
fn bad_query_values_are_400() {
    let d = Berthd::start();
    let r = d.get("/v1.41/containers/json?filters=%7Bbad");
    assert_eq!(r.status, 400);
    let r = d.get("/v1.41/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "invalid filter 'bogus'");
    let r = d.get("/v1.41/containers/json?limit=abc");
    assert_eq!(r.status, 400);
}

#[test]
fn empty_list() {
    let d = Berthd::start();
    let r = d.get("/v1.41/containers/json?all=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([]));
}

#[test]
fn invalid_container_name_is_400() {
    let d = Berthd::start();
    let r = d.post_json(
        "/v1.41/containers/create?name=bad%20name",
        &json!({"Image": "busybox"}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Invalid container name")
    );
}

#[test]
fn bridge_mode_without_a_default_bridge_is_refused_not_downgraded() {
    // `--bridge none`: like dockerd started that way there is no `bridge` network.
    let d = Berthd::start();
    d.load_busybox();
    let r = d.post_json(
        "/v1.41/containers/create",
        &json!({"Image": "busybox", "HostConfig": {"NetworkMode": "bridge"}}),
    );
    // As with dockerd, the create succeeds and the start fails.
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_owned();
    let r = d.request("POST", &format!("/v1.41/containers/{id}/start"), None);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["message"], "network bridge not found");
}

#[test]
fn second_berthd_on_same_root_refuses_naming_pid() {
    let d = Berthd::start();
    let pid = std::fs::read_to_string(d.data_root().join("berthd.lock")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--exec-root")
        .arg(d.root.path().join("exec2"))
        .arg("-H")
        .arg(format!(
            "unix://{}",
            d.root.path().join("second.sock").display()
        ))
        .arg("--config-file")
        .arg("/nonexistent/daemon.json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("pid {}", pid.trim())), "{err}");
    // The first one still serves.
    assert_eq!(d.get("/_ping").status, 200);
}

#[test]
fn unknown_daemon_json_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"no-such-option": true}"#).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--config-file")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("don't match any configuration option: no-such-option")
    );
}

#[test]
fn docker_cli_version_and_info() {
    let d = Berthd::start();
    let out = d.docker(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}}",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "berth-0.1.0 1.41"
    );
    let out = d.docker(&[
        "info",
        "--format",
        "{{.Driver}} {{.CgroupDriver}} {{.Containers}}",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "overlay2 cgroupfs 0"
    );
}

#[test]
fn sigterm_stops_cleanly_and_removes_socket() {
    let mut d = Berthd::start();
    let sock = d.sock.clone();
    d.stop();
    assert!(!sock.exists());
}

#[test]
fn extractor_rejections_have_docker_json_shape() {
    let d = Berthd::start();
    let r = d.get("/v1.41/containers/%ff/json");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.json()["message"].as_str().unwrap().contains("UTF-8"));
    let r = d.post_json(
        "/v1.41/containers/create",
        &json!({"Image": "busybox", "HostConfig": {"Memory": 1024}}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Minimum memory limit allowed is 6MB");
    let r = d.post_json(
        "/v1.41/containers/create",
        &json!({"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "bogus"}}}),
    );
    assert_eq!(r.status, 400);
}

/// A bare berthd for flag-level tests (no helper defaults).
fn spawn_raw(dir: &std::path::Path, extra: &[&str]) -> std::process::Child {
    let log = std::fs::File::create(dir.join("log")).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        // No default bridge in the host's namespace.
        .args(["--bridge", "none"])
        .args(extra)
        .env_remove("BERTHD_LOG")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn wait_ping(sock: &std::path::Path) {
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("no socket {}", sock.display());
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sighup_reloads_log_level_and_pidfile_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"log-level": "info"}"#).unwrap();
    let sock = dir.path().join("b.sock");
    let pidfile = dir.path().join("berthd.pid");
    let child = Kill(spawn_raw(
        dir.path(),
        &[
            "-H",
            &format!("unix://{}", sock.display()),
            "--config-file",
            cfg.to_str().unwrap(),
            "--pidfile",
            pidfile.to_str().unwrap(),
        ],
    ));
    wait_ping(&sock);
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        child.0.id().to_string()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o660);
    common::request(&sock, "GET", "/_ping", None, "text/plain");
    let log = || std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(!log().contains("uri=/_ping"), "debug line at info level");
    std::fs::write(&cfg, r#"{"log-level": "debug"}"#).unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGHUP);
    }
    let mut seen = false;
    for _ in 0..200 {
        common::request(&sock, "GET", "/_ping", None, "text/plain");
        if log().contains("uri=/_ping") {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(seen, "SIGHUP did not apply the new log level: {}", log());
}

#[test]
fn tcp_listener_works_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sock = dir.path().join("b.sock");
    let _child = Kill(spawn_raw(
        dir.path(),
        &[
            "-H",
            &format!("unix://{}", sock.display()),
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "--config-file",
            "/nonexistent/daemon.json",
        ],
    ));
    wait_ping(&sock);
    let o = std::process::Command::new(common::DOCKER)
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env("DOCKER_CONFIG", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "1.41",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(log.contains("without TLS or authentication"), "{log}");
}
