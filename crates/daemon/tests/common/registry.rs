//! Debian's `docker-registry` on a free loopback port with its own temp storage and config,
//! killed on drop.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Whether the registry binary is installed.
pub fn have_registry() -> bool {
    Path::new(REGISTRY_BIN).is_file()
}

/// A running registry.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry (retrying on another port if the chosen one got taken meanwhile).
    pub fn start() -> Registry {
        Self::start_with_auth(None)
    }

    /// Starts a registry; with `Some((user, password))` it requires basic auth (htpasswd).
    pub fn start_with_auth(htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berthd-registry-{}-", std::process::id()))
            .tempdir()
            .unwrap();
        let mut r = Registry {
            dir,
            port: 0,
            child: None,
        };
        let mut auth = String::new();
        if let Some((u, p)) = htpasswd {
            let path = r.dir.path().join("htpasswd");
            fs::write(&path, format!("{u}:{}\n", bcrypt::hash(p, 5).unwrap())).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                path.display()
            );
        }
        for _ in 0..20 {
            r.port = free_port();
            let d = r.dir.path();
            let mut cfg = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n  secret: berth-test\n",
                d.join("data").display(),
                r.port
            );
            cfg.push_str(&auth);
            fs::write(d.join("config.yml"), cfg).unwrap();
            let log = fs::File::create(d.join("registry.log")).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(d.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            r.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Some(st) = r.child.as_mut().unwrap().try_wait().unwrap() {
                    let log = fs::read_to_string(d.join("registry.log")).unwrap_or_default();
                    if log.contains("address already in use") {
                        break;
                    }
                    panic!("registry exited: {st}\n{log}");
                }
                if TcpStream::connect(("127.0.0.1", r.port)).is_ok() {
                    return r;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            r.kill();
        }
        panic!("registry did not start");
    }

    /// Stops it (SIGKILL) and reaps.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
