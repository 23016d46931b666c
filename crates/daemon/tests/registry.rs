//! `docker push`, `docker pull` and `docker run` of a missing image with the real docker CLI
//! (v28) against a private berthd and a private `docker-registry` on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use common::Berthd;
use common::registry::{Registry, have_registry};

fn out(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// berthd with busybox loaded through `docker load`, and a registry.
fn setup() -> Option<(Berthd, Registry)> {
    if !have_registry() {
        eprintln!("SKIP: needs {}", common::registry::REGISTRY_BIN);
        return None;
    }
    let reg = Registry::start();
    let d = Berthd::start();
    let archive = berth_fixtures::busybox_image_archive().unwrap();
    let (code, stdout, stderr) = out(&d.docker(&["load", "-i", archive.to_str().unwrap()]));
    assert_eq!(code, 0, "docker load: {stdout}{stderr}");
    Some((d, reg))
}

/// Runs docker and asserts success, returning (stdout, stderr).
fn ok(d: &Berthd, args: &[&str]) -> (String, String) {
    let (code, stdout, stderr) = out(&d.docker(args));
    assert_eq!(
        code,
        0,
        "docker {args:?} failed: {stdout}{stderr}\nberthd log:\n{}",
        d.log()
    );
    (stdout, stderr)
}

#[test]
fn push_pull_run_and_auto_pull() {
    let Some((d, reg)) = setup() else { return };
    let image = format!("{}/bb:1", reg.host());
    ok(&d, &["tag", "busybox", &image]);

    let (stdout, _) = ok(&d, &["push", &image]);
    assert!(stdout.contains("digest: sha256:"), "push output: {stdout}");
    assert!(stdout.contains("Pushed"), "push output: {stdout}");

    let (stdout, _) = ok(&d, &["push", &image]);
    assert!(
        stdout.contains("Layer already exists"),
        "second push output: {stdout}"
    );

    ok(&d, &["rmi", &image, "busybox"]);
    let (code, _, stderr) = out(&d.docker(&["image", "inspect", &image]));
    assert_ne!(code, 0, "image still present after rmi: {stderr}");

    let (stdout, _) = ok(&d, &["pull", &image]);
    assert!(stdout.contains("Pull complete"), "pull output: {stdout}");
    assert!(
        stdout.contains("Downloaded newer image"),
        "pull output: {stdout}"
    );
    let (stdout, _) = ok(&d, &["pull", &image]);
    assert!(stdout.contains("Image is up to date"), "re-pull: {stdout}");

    let (stdout, _) = ok(&d, &["run", "--rm", &image, "echo", "pulled"]);
    assert_eq!(stdout, "pulled\n");

    ok(&d, &["rmi", &image]);
    let (stdout, stderr) = ok(&d, &["run", "--rm", &image, "echo", "auto"]);
    assert!(
        stderr.contains("Unable to find image"),
        "auto-pull stderr: {stderr}"
    );
    assert_eq!(stdout, "auto\n");

    // The events bus saw the push and the pulls (Docker's actions on type image).
    let now = chrono_now();
    let r = d.get(&format!(
        "/v1.41/events?since=0&until={now}&filters=%7B%22type%22%3A%5B%22image%22%5D%7D"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let actions: Vec<String> = r
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["Actor"]["ID"] == image.as_str())
        .map(|v| v["Action"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(actions.iter().any(|a| a == "push"), "events: {actions:?}");
    assert!(actions.iter().any(|a| a == "pull"), "events: {actions:?}");
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1
}

#[test]
fn pull_of_missing_tag_fails_like_docker() {
    let Some((d, reg)) = setup() else { return };
    // The repository exists, the tag does not.
    let image = format!("{}/bb:1", reg.host());
    ok(&d, &["tag", "busybox", &image]);
    ok(&d, &["push", &image]);
    let missing = format!("{}/bb:nope", reg.host());
    let (code, stdout, stderr) = out(&d.docker(&["pull", &missing]));
    assert_eq!(code, 1, "pull of a missing tag: {stdout}{stderr}");
    // dockerd's text: resolved before the stream starts, so an HTTP error.
    assert!(
        stderr.contains(&format!(
            "Error response from daemon: manifest for {missing} not found: manifest unknown"
        )),
        "stderr: {stderr}"
    );
    // A repository that does not exist at all.
    let missing = format!("{}/nothing-here:1", reg.host());
    let (code, stdout, stderr) = out(&d.docker(&["pull", &missing]));
    assert_eq!(code, 1, "pull of a missing repo: {stdout}{stderr}");
    assert!(!stderr.is_empty());
    // And run of it reports the pull error and exits 125 as docker does.
    let (code, _, stderr) = out(&d.docker(&["run", "--rm", &missing, "true"]));
    assert_eq!(code, 125, "run of a missing image: {stderr}");
    assert!(stderr.contains("Unable to find image"), "stderr: {stderr}");
}

#[test]
fn push_of_missing_image_is_an_error() {
    let Some((d, reg)) = setup() else { return };
    let image = format!("{}/absent:1", reg.host());
    let (code, stdout, stderr) = out(&d.docker(&["push", &image]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("An image does not exist locally"),
        "stderr: {stderr}"
    );
}

/// A client that goes away mid-pull cancels it: berthd drops the pull, which closes its
/// connection to the registry. The "registry" here accepts one connection, reads the request
/// and never answers, so the pull can only end by being cancelled.
#[test]
fn client_disconnect_cancels_the_pull() {
    use std::io::{Read, Write};
    let d = Berthd::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_request, request_seen) = std::sync::mpsc::channel();
    let registry = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        // A deadline so a broken cancel fails the test instead of hanging it.
        conn.set_read_timeout(Some(std::time::Duration::from_secs(120)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "berthd closed before sending a request");
            buf.extend_from_slice(&chunk[..n]);
        }
        got_request.send(()).unwrap();
        // Never answer; report how the connection ended.
        loop {
            match conn.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    let mut client = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    let req = format!(
        "POST /v1.41/images/create?fromImage=127.0.0.1:{port}/slow&tag=1 HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\n\r\n"
    );
    client.write_all(req.as_bytes()).unwrap();
    request_seen.recv().unwrap();
    drop(client);
    let ended = registry.join().unwrap();
    assert_eq!(
        ended,
        Ok(()),
        "berthd kept its registry connection open after the client left"
    );
    // berthd is still fine.
    assert_eq!(d.get("/_ping").status, 200);
}

/// `--insecure-registry` host names and CIDRs show in `docker info` as dockerd's do.
#[test]
fn insecure_registries_show_in_docker_info() {
    let d = Berthd::start_with(&[
        "--insecure-registry",
        "myreg.example:5000",
        "--insecure-registry",
        "10.77.0.0/16",
        "--max-concurrent-downloads",
        "1",
    ]);
    let (info, _) = ok(&d, &["info"]);
    let section: Vec<&str> = info
        .lines()
        .skip_while(|l| !l.contains("Insecure Registries:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert!(section.contains(&"myreg.example:5000"), "{info}");
    assert!(section.contains(&"10.77.0.0/16"), "{info}");
    assert!(section.contains(&"127.0.0.0/8"), "{info}");
}

/// Credentials travel as X-Registry-Auth: without them a push to an htpasswd registry is
/// refused with the registry's message; with them (the CLI reads config.json) push and pull work.
#[test]
fn push_and_pull_with_credentials() {
    use base64::Engine;
    if !have_registry() {
        eprintln!("SKIP: needs {}", common::registry::REGISTRY_BIN);
        return;
    }
    let reg = Registry::start_with_auth(Some(("berth", "s3cret")));
    let d = Berthd::start();
    d.load_busybox();
    let image = format!("{}/private:1", reg.host());
    ok(&d, &["tag", "busybox", &image]);

    let (code, stdout, stderr) = out(&d.docker(&["push", &image]));
    assert_eq!(code, 1, "anonymous push: {stdout}{stderr}");
    // Docker's text for a basic-auth challenge without credentials.
    assert!(
        stderr.contains("no basic auth credentials"),
        "anonymous push: {stdout}{stderr}"
    );

    let token = base64::engine::general_purpose::STANDARD.encode("berth:s3cret");
    let cfg = serde_json::json!({"auths": {reg.host(): {"auth": token}}});
    std::fs::write(
        d.docker_config.join("config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    let (stdout, _) = ok(&d, &["push", &image]);
    assert!(stdout.contains("digest: sha256:"), "push output: {stdout}");
    // Remove busybox too so the layer blob has to come through the authenticated registry.
    ok(&d, &["rmi", &image, "busybox"]);
    let (stdout, _) = ok(&d, &["pull", &image]);
    assert!(stdout.contains("Pull complete"), "pull output: {stdout}");
}

#[test]
fn docker_login_checks_credentials_through_berthd() {
    if !have_registry() {
        eprintln!("SKIP: needs {}", common::registry::REGISTRY_BIN);
        return;
    }
    let reg = Registry::start_with_auth(Some(("berth", "s3cret")));
    let d = Berthd::start();
    let login = |pass: &str| {
        std::process::Command::new(common::DOCKER)
            .args(["login", "-u", "berth", "--password-stdin", &reg.host()])
            .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
            .env("DOCKER_CONFIG", &d.docker_config)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(pass.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap()
    };
    let bad = login("wrong");
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(err.contains("401 Unauthorized"), "{err}");
    let good = login("s3cret");
    let out = String::from_utf8_lossy(&good.stdout).into_owned();
    assert!(
        good.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(out.contains("Login Succeeded"), "{out}");
    let cfg = std::fs::read_to_string(d.docker_config.join("config.json")).unwrap();
    assert!(cfg.contains(&reg.host()), "{cfg}");
}
