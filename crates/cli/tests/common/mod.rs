//! A private berthd per test (temp data root, exec root and socket; killed and cleaned up on
//! drop) and helpers to drive `berth` and the real docker CLI against it.
//!
//! berthd and berth-shim come from this workspace (`cargo build -p berth-daemon -p berth-shim`
//! on first use), or from `BERTH_TEST_BIN_DIR`. Extra daemon flags: `BERTH_TEST_BERTHD_ARGS`
//! (space-separated, e.g. `--default-runtime runc`).

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const DOCKER: &str = "/usr/local/bin/docker";

static SEQ: AtomicU32 = AtomicU32::new(0);

fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_TEST_BIN_DIR") {
        return PathBuf::from(d);
    }
    let berth = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let dir = berth.parent().unwrap().to_path_buf();
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "berth-daemon", "-p", "berth-shim"])
            .status()
            .expect("running cargo build for berthd");
        assert!(
            st.success(),
            "cargo build -p berth-daemon -p berth-shim failed"
        );
    });
    dir
}

/// A running private berthd.
pub struct Daemon {
    child: Option<Child>,
    pub root: tempfile::TempDir,
    pub exec_root: PathBuf,
    pub sock: PathBuf,
    pub config_dir: PathBuf,
    /// The private network namespace of a `start_networked` daemon (deleted on drop, with the
    /// bridges, veths and nftables table berthd made in it).
    pub netns: Option<String>,
}

impl Daemon {
    /// berthd with `--bridge none` in the host's network namespace.
    pub fn start() -> Daemon {
        Self::start_inner(None)
    }

    /// berthd with its default bridge `berth0`, in a network namespace of its own.
    pub fn start_networked() -> Daemon {
        let name = format!(
            "berth-c{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        for args in [
            vec!["netns", "add", name.as_str()],
            vec!["-n", name.as_str(), "link", "set", "lo", "up"],
        ] {
            let ok = Command::new("ip").args(&args).status().unwrap().success();
            assert!(ok, "ip {args:?}");
        }
        Self::start_inner(Some(name))
    }

    fn start_inner(netns: Option<String>) -> Daemon {
        let bins = bin_dir();
        let root = tempfile::Builder::new()
            .prefix("berth-cli-e2e")
            .tempdir()
            .unwrap();
        // Shim sockets live in the exec root: keep its path short (sun_path is 108 bytes).
        let exec_root = PathBuf::from(format!(
            "/tmp/bc{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&exec_root);
        let sock = root.path().join("berth.sock");
        let config_dir = root.path().join("docker-config");
        std::fs::create_dir_all(&config_dir).unwrap();
        let log = std::fs::File::create(root.path().join("berthd.log")).unwrap();
        let extra: Vec<String> = std::env::var("BERTH_TEST_BERTHD_ARGS")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(bins.join("berthd"));
                c
            }
            None => Command::new(bins.join("berthd")),
        };
        let bridge = if netns.is_some() { "berth0" } else { "none" };
        let child = cmd
            .arg("--data-root")
            .arg(root.path().join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--config-file")
            .arg(root.path().join("daemon.json"))
            .arg("--pidfile")
            .arg(root.path().join("berthd.pid"))
            .arg("--shim-binary")
            .arg(bins.join("berth-shim"))
            // No default bridge in the host's namespace: parallel tests would share berth0.
            .args(["--bridge", bridge])
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child: Some(child),
            root,
            exec_root,
            sock,
            config_dir,
            netns,
        };
        for _ in 0..500 {
            if let Some(Ok(Some(st))) = d.child.as_mut().map(Child::try_wait) {
                panic!("berthd exited early ({st}): {}", d.log());
            }
            if UnixStream::connect(&d.sock).is_ok() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not listen: {}", d.log());
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("berthd.log")).unwrap_or_default()
    }

    /// `berth` pointed at this daemon (by `DOCKER_HOST`, as a user would).
    pub fn berth(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("berth").unwrap();
        c.env("DOCKER_HOST", self.host())
            .env_remove("BERTH_HOST")
            .env("DOCKER_CONFIG", &self.config_dir)
            .timeout(Duration::from_secs(60));
        c
    }

    /// The real docker CLI against this daemon.
    pub fn docker(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(DOCKER);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &self.config_dir)
            .env_remove("DOCKER_CONTEXT")
            .timeout(Duration::from_secs(60));
        c
    }

    /// Loads the busybox fixture with `berth load -i`.
    pub fn load_busybox(&self) {
        let archive = berth_fixtures::busybox_image_archive().unwrap();
        self.berth()
            .args(["load", "-i"])
            .arg(archive)
            .assert()
            .success();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        berth_fixtures::cleanup::private_daemon(self.root.path(), &self.exec_root);
        if let Some(ns) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// stdout of a finished command as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Replaces what differs between two runs (ids, relative times) so layouts can be compared.
pub fn redact(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = line.to_owned();
        for pat in [
            "Less than a second ago",
            "About a minute ago",
            "About an hour ago",
        ] {
            l = l.replace(pat, "<TIME>");
        }
        let words: Vec<&str> = l.split(' ').collect();
        let mut w2 = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let is_num = !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
            if is_num && i + 2 < words.len() && words[i + 2] == "ago" {
                w2.push("<TIME>".to_owned());
                i += 3;
                continue;
            }
            if w.len() >= 12 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                w2.push("<ID>".to_owned());
            } else {
                w2.push(w.to_owned());
            }
            i += 1;
        }
        out.push_str(&w2.join(" "));
        out.push('\n');
    }
    out
}

/// A table split into cells (columns are separated by two or more spaces), with times and
/// ids redacted, so two tables can be compared without depending on when they were taken.
pub fn cells(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| redact(c).trim_end().to_owned())
                .collect()
        })
        .collect()
}

/// Column start offsets of the header line; every row must start its cells there (tabwriter
/// alignment), except empty trailing cells.
pub fn assert_aligned(table: &str) {
    // Character columns (cells may hold multi-byte text such as `…`).
    let starts_of = |line: &str| -> Vec<usize> {
        let chars: Vec<char> = line.chars().collect();
        (0..chars.len())
            .filter(|&i| {
                chars[i] != ' ' && (i == 0 || (i >= 3 && chars[i - 3..i].iter().all(|c| *c == ' ')))
            })
            .collect()
    };
    let mut lines = table.lines();
    let starts = starts_of(lines.next().unwrap_or(""));
    for row in lines {
        for i in starts_of(row) {
            assert!(
                starts.contains(&i),
                "cell at column {i} not under a header in:\n{table}"
            );
        }
    }
}
