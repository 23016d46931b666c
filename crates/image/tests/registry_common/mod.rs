//! Helpers for the registry suites: Debian's `docker-registry` on a free loopback port with
//! its own storage dir (killed on drop), an optional htpasswd file, a token-auth proxy in
//! front of it, stores on temp roots, and image fixtures loaded into them.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::registry::{ProgressEvent, PullOptions, PushOptions};
use berth_image::{Store, StoreOptions};

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
    htpasswd: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Start a registry; with `htpasswd = Some((user, pass))` it requires basic auth.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-registry-{}-", std::process::id()))
            .tempdir()
            .unwrap();
        if let Some((u, p)) = htpasswd {
            let hash = bcrypt::hash(p, 5).unwrap();
            fs::write(dir.path().join("htpasswd"), format!("{u}:{hash}\n")).unwrap();
        }
        let mut r = Registry {
            dir,
            port: 0,
            child: None,
            htpasswd: htpasswd.is_some(),
        };
        r.restart();
        r
    }

    fn write_config(&self) {
        let d = self.dir.path();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n  secret: berth-test\n",
            d.join("data").display(),
            self.port
        );
        if self.htpasswd {
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        fs::write(d.join("config.yml"), cfg).unwrap();
    }

    /// (Re)start on the same storage (a new port the first time).
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..20 {
            if self.port == 0 {
                self.port = free_port();
            }
            self.write_config();
            let log = fs::File::create(self.dir.path().join("registry.log")).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(self.dir.path().join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    let log = fs::read_to_string(self.dir.path().join("registry.log"))
                        .unwrap_or_default();
                    if log.contains("address already in use") {
                        break;
                    }
                    panic!("registry exited: {st}\n{log}");
                }
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.kill();
            self.port = 0;
        }
        panic!("registry did not start");
    }

    /// Stop it (SIGKILL) and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// pid of the registry process.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The data file of a blob in the registry's storage.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A store on a temp root.
pub struct TempStore {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
}

pub fn temp_store() -> TempStore {
    let dir = tempfile::Builder::new()
        .prefix(&format!("berth-regstore-{}-", std::process::id()))
        .tempdir()
        .unwrap();
    let (s, _) = Store::open(
        dir.path(),
        StoreOptions {
            sync_layers: false,
            ..Default::default()
        },
    )
    .unwrap();
    TempStore {
        dir,
        store: Arc::new(s),
    }
}

/// Load a `docker save` archive; returns the image id.
pub fn load(store: &Store, archive: &[u8]) -> String {
    store.load(archive).unwrap()[0].id.clone()
}

/// Load the busybox fixture (`busybox:latest`); returns the image id.
pub fn load_busybox(store: &Store) -> String {
    let data = fs::read(berth_fixtures::busybox_image_archive().unwrap()).unwrap();
    load(store, &data)
}

/// A 3-layer image: busybox, a layer with a random 20 MB file, a layer deleting a file.
pub fn multi_layer_archive(tag: &str, random_mb: usize) -> Vec<u8> {
    let bb = berth_fixtures::layer_tar_of(&berth_fixtures::busybox_rootfs().unwrap()).unwrap();
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("data")).unwrap();
    let mut buf = vec![0u8; random_mb << 20];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    fs::write(d.path().join("data/random.bin"), &buf).unwrap();
    fs::write(d.path().join("data/hello.txt"), b"hello\n").unwrap();
    let l2 = berth_fixtures::layer_tar_of(d.path()).unwrap();
    let d3 = tempfile::tempdir().unwrap();
    fs::create_dir_all(d3.path().join("data")).unwrap();
    fs::write(d3.path().join("data/.wh.hello.txt"), b"").unwrap();
    fs::write(d3.path().join("data/new.txt"), b"new\n").unwrap();
    let l3 = berth_fixtures::layer_tar_of(d3.path()).unwrap();
    berth_fixtures::docker_save_archive(&[bb, l2, l3], serde_json::json!({}), tag).unwrap()
}

/// A multi-thread runtime for a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Pull, collecting the progress messages as JSON lines.
pub fn pull(
    rt: &tokio::runtime::Runtime,
    store: &Arc<Store>,
    reference: &str,
    opts: PullOptions,
) -> (
    Result<berth_image::registry::PullResult, berth_image::registry::RegistryError>,
    Vec<String>,
) {
    let mut events = Vec::new();
    let r = rt.block_on(berth_image::registry::pull(
        store.clone(),
        reference,
        opts,
        |e: ProgressEvent| events.push(e.to_json()),
    ));
    (r, events)
}

/// Push, collecting the progress messages.
pub fn push(
    rt: &tokio::runtime::Runtime,
    store: &Arc<Store>,
    reference: &str,
    opts: PushOptions,
) -> (
    Result<berth_image::registry::PushResult, berth_image::registry::RegistryError>,
    Vec<String>,
) {
    let mut events = Vec::new();
    let r = rt.block_on(berth_image::registry::push(
        store.clone(),
        reference,
        opts,
        |e: ProgressEvent| events.push(e.to_json()),
    ));
    (r, events)
}

/// Whether some message has this status (and id, when given).
pub fn has_status(events: &[String], status: &str) -> bool {
    events.iter().any(|e| {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        v["status"].as_str() == Some(status)
    })
}

/// Every `(id, status)` pair.
pub fn statuses(events: &[String]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            (
                v["id"].as_str().unwrap_or("").to_string(),
                v["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The diff ids and a content snapshot of each layer of an image.
pub fn image_trees(store: &Store, id: &str) -> Vec<(String, BTreeMap<String, String>)> {
    store
        .image_layers(id)
        .unwrap()
        .iter()
        .map(|l| {
            let diff = store.layout().cache_dir(&l.cache_id).join("diff");
            (l.diff_id.clone(), tree(&diff))
        })
        .collect()
}

/// path → "kind mode uid gid size sha256/target" of a tree.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                format!(
                    "file {}",
                    hex::encode(sha2::Sha256::digest(fs::read(&p).unwrap()))
                )
            } else {
                format!("other {}", m.rdev())
            };
            out.insert(
                rel,
                format!("{what} {:o} {}:{} {}", m.mode(), m.uid(), m.gid(), m.size()),
            );
        }
    }
    out
}

/// Temp entries left in a store (layer temp dirs, push temp files).
pub fn leftovers(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        store.layout().driver_home(),
        store.layout().layerdb(),
        store.layout().tmp_dir(),
    ] {
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if berth_image::atomic::is_tmp_name(&n) || n.starts_with("push-") {
                    out.push(format!("{}/{n}", dir.display()));
                }
            }
        }
    }
    out
}

/// Committed layers of a store.
pub fn layer_count(store: &Store) -> usize {
    fs::read_dir(store.layout().layerdb())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().len() == 64)
                .count()
        })
        .unwrap_or(0)
}

/// Bind address helper.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
