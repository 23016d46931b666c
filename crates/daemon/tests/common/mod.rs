//! A private berthd per test: temp data root, exec root and socket; raw HTTP over the unix
//! socket; the real docker CLI pointed at it. Dropping the guard stops berthd, kills what its
//! containers left running, and unmounts anything under the temp dirs.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub mod registry;

pub const DOCKER: &str = "/usr/local/bin/docker";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A raw HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Berthd {
    child: Option<Child>,
    pub root: tempfile::TempDir,
    pub exec_root: PathBuf,
    pub sock: PathBuf,
    pub docker_config: PathBuf,
    extra: Vec<String>,
    /// The private network namespace berthd runs in (`start_networked`), removed on drop with
    /// everything berthd created in it (bridges, veths, nftables table).
    pub netns: Option<String>,
}

/// The berth-shim binary next to berthd (built on demand: cargo only builds this package's
/// binaries for its tests).
pub fn shim_binary() -> PathBuf {
    let berthd = PathBuf::from(env!("CARGO_BIN_EXE_berthd"));
    let shim = berthd.with_file_name("berth-shim");
    if !shim.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "berth-shim"])
            .status()
            .expect("running cargo build -p berth-shim");
        assert!(status.success(), "cargo build -p berth-shim failed");
    }
    shim
}

impl Berthd {
    /// Starts berthd in a network namespace of its own with bridge networking on (default
    /// bridge `berth0`): its bridges, veths and nftables table cannot meet another test's.
    pub fn start_networked(extra: &[&str]) -> Berthd {
        let name = format!(
            "berth-t{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        let ok = Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "lo up in {name}");
        let mut args: Vec<&str> = vec!["--bridge", "berth0"];
        args.extend_from_slice(extra);
        Self::start_inner(&args, Some(name))
    }

    /// Runs a command in berthd's network namespace (the "host" of its containers).
    pub fn host_cmd(&self, args: &[&str]) -> Output {
        let ns = self.netns.as_deref().expect("start_networked");
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts berthd with extra flags and waits until `/_ping` answers. Without a `--bridge`
    /// flag it runs with `--bridge none` (no default bridge in the host's namespace).
    pub fn start_with(extra: &[&str]) -> Berthd {
        let mut args: Vec<&str> = extra.to_vec();
        if !extra
            .iter()
            .any(|a| *a == "--bridge" || a.starts_with("--bridge="))
        {
            args.extend(["--bridge", "none"]);
        }
        Self::start_inner(&args, None)
    }

    fn start_inner(extra: &[&str], netns: Option<String>) -> Berthd {
        let root = tempfile::Builder::new()
            .prefix("berthd-test")
            .tempdir()
            .unwrap();
        // The exec root holds shim sockets: keep it short (sun_path is 108 bytes).
        let exec_root = PathBuf::from(format!(
            "/tmp/bx{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&exec_root);
        let sock = root.path().join("berth.sock");
        let docker_config = root.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        let mut b = Berthd {
            child: None,
            root,
            exec_root,
            sock,
            docker_config,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            netns,
        };
        b.spawn();
        b
    }

    /// Launches berthd on this instance's dirs and waits for `/_ping`.
    fn spawn(&mut self) {
        let shim = shim_binary();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("berthd.log"))
            .unwrap();
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_berthd"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_berthd")),
        };
        let child = cmd
            .arg("--data-root")
            .arg(self.root.path().join("data"))
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--config-file")
            .arg(self.root.path().join("daemon.json"))
            .arg("--shim-binary")
            .arg(&shim)
            .args(&self.extra)
            .env("BERTHD_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..500 {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("berthd exited early ({st}): {}", self.log());
            }
            if UnixStream::connect(&self.sock).is_ok() && self.get("/_ping").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not answer /_ping: {}", self.log());
    }

    /// Hands out the berthd child (the caller kills it); `kill9_and_restart` starts a new one.
    pub fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }

    /// SIGKILLs berthd (containers must survive) and starts a new one on the same roots.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Stops berthd (SIGTERM) and starts it again on the same roots with `extra` as its only
    /// extra flags (in place of the ones it was started with).
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.stop();
        self.extra = extra.iter().map(|s| (*s).to_owned()).collect();
        self.spawn();
    }

    pub fn start() -> Berthd {
        Self::start_with(&[])
    }

    pub fn data_root(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("berthd.log")).unwrap_or_default()
    }

    /// One request on a fresh connection.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Resp {
        request(&self.sock, method, path, body, "application/json")
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None)
    }

    pub fn post_json(&self, path: &str, v: &serde_json::Value) -> Resp {
        let b = serde_json::to_vec(v).unwrap();
        self.request("POST", path, Some(&b))
    }

    /// The docker CLI against this berthd.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Loads the busybox fixture image through `POST /images/load`.
    pub fn load_busybox(&self) {
        let archive = berth_fixtures::busybox_image_archive().unwrap();
        let data = std::fs::read(archive).unwrap();
        let r = request(
            &self.sock,
            "POST",
            "/v1.41/images/load?quiet=1",
            Some(&data),
            "application/x-tar",
        );
        assert_eq!(r.status, 200, "load: {}", r.text());
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.stop();
        berth_fixtures::cleanup::private_daemon(self.root.path(), &self.exec_root);
        if let Some(ns) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Decodes a chunked body; the flag is false when it was cut short (then the body holds the
/// whole chunks that arrived).
fn decode_chunked(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let Some(size) = std::str::from_utf8(&b[..pos])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
        else {
            return (out, false);
        };
        b = &b[pos + 2..];
        if size == 0 {
            return (out, true);
        }
        if b.len() < size {
            return (out, false);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    (out, false)
}

/// Parses a whole HTTP/1.1 response (read to EOF); None without a header end or status. The
/// flag is false when a chunked body was cut short.
pub fn parse_response(raw: &[u8]) -> Option<(Resp, bool)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let mut complete = true;
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        (body, complete) = decode_chunked(&body);
    }
    Some((
        Resp {
            status,
            headers,
            body,
        },
        complete,
    ))
}

/// A raw HTTP/1.1 request with `Connection: close`.
pub fn request(sock: &Path, method: &str, path: &str, body: Option<&[u8]>, ctype: &str) -> Resp {
    let mut s = UnixStream::connect(sock).unwrap();
    let body = body.unwrap_or(b"");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The server may answer (413) and close before the whole body is sent: keep the answer.
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let mut raw = Vec::new();
    // A server that closed with our unread body in its queue makes the kernel report
    // ECONNRESET once the answer it already sent has been read: keep that answer.
    if let Err(e) = s.read_to_end(&mut raw) {
        assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty(),
            "reading the answer: {e}"
        );
    }
    parse_response(&raw).expect("a malformed HTTP response").0
}
