//! The backend behind the API handlers: configuration, the image store, the container table.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::ApiError;

use crate::config::Config;
use crate::containers::store::{Store, lock};
use crate::exec::ExecTable;

/// How many removed containers' exit codes are remembered for late `wait?condition=removed`.
const REMEMBER_REMOVED: usize = 256;

/// Everything a request handler can reach.
pub struct Daemon {
    /// Effective configuration.
    pub config: Config,
    /// Image store (shared with registry pulls/pushes, which run as async tasks).
    pub images: Arc<berth_image::Store>,
    /// Containers.
    pub containers: Store,
    /// Exec instances.
    pub execs: ExecTable,
    /// The events bus.
    pub events: crate::events::Events,
    /// Networks and the bridge driver (initialised by `Networks::init` at start-up).
    pub networks: Arc<crate::networks::Networks>,
    /// Volumes (`<data-root>/volumes`).
    pub volumes: crate::volumes::Volumes,
    /// Recently removed containers: (id, name, exit code), newest last.
    removed: Mutex<VecDeque<(String, String, i64)>>,
    /// When berthd started (for `/info` SystemTime only; never for logic).
    pub started: chrono::DateTime<chrono::Utc>,
    /// Turns true on SIGTERM: long polls (wait, logs --follow) end so shutdown is prompt.
    pub shutting_down: tokio::sync::watch::Sender<bool>,
    /// Starts berth-shim processes (sealed view, spare shim).
    pub shims: Arc<crate::containers::launcher::Launcher>,
    /// Clean-up work that runs after the request it belongs to has been answered (the host
    /// side of a `--rm` removal); shutdown waits for it.
    pub background: Background,
}

/// Tasks spawned to finish after their request, counted so shutdown can wait for them.
#[derive(Debug, Default)]
pub struct Background {
    running: Arc<std::sync::atomic::AtomicUsize>,
    idle: Arc<tokio::sync::Notify>,
}

impl Background {
    /// Run `fut` as a task counted until it ends.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        use std::sync::atomic::Ordering;
        self.running.fetch_add(1, Ordering::SeqCst);
        let (running, idle) = (self.running.clone(), self.idle.clone());
        tokio::spawn(async move {
            fut.await;
            if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                idle.notify_waiters();
            }
        });
    }

    /// Wait until no task runs, at most `limit`; returns how many still run.
    pub async fn wait_idle(&self, limit: std::time::Duration) -> usize {
        use std::sync::atomic::Ordering;
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.idle.notified();
                if self.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
        self.running.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// A daemon over `config` and `images`; containers are loaded by `recovery`.
    pub fn new(config: Config, images: berth_image::Store) -> Arc<Daemon> {
        let volumes = crate::volumes::Volumes::new(config.data_root.join("volumes"));
        let shims = Arc::new(crate::containers::launcher::Launcher::new(
            &config.shim_binary,
        ));
        Arc::new(Daemon {
            shims,
            background: Background::default(),
            config,
            images: Arc::new(images),
            containers: Store::default(),
            execs: ExecTable::default(),
            events: crate::events::Events::default(),
            networks: Arc::default(),
            volumes,
            removed: Mutex::new(VecDeque::new()),
            started: chrono::Utc::now(),
            shutting_down: tokio::sync::watch::Sender::new(false),
        })
    }

    /// `<data-root>/containers`.
    pub fn containers_dir(&self) -> PathBuf {
        self.config.data_root.join("containers")
    }

    /// `<data-root>/containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// `<exec-root>/<id>`: the shim's state dir and the bundle.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join(id)
    }

    /// `<exec-root>/runtime`: the runtime's state root.
    pub fn runtime_root(&self) -> PathBuf {
        self.config.exec_root.join("runtime")
    }

    /// The runtime binary the shim should exec for a container asking for `runtime` (None:
    /// the shim's in-process berth runtime). Unknown names are Docker's 400.
    pub fn runtime_binary(&self, runtime: Option<&str>) -> Result<Option<PathBuf>, ApiError> {
        let name = runtime
            .filter(|r| !r.is_empty())
            .unwrap_or(&self.config.default_runtime);
        if name == "berth" {
            return Ok(None);
        }
        self.config
            .runtimes
            .get(name)
            .map(|p| Some(PathBuf::from(p)))
            .ok_or_else(|| ApiError::invalid(format!("unknown or invalid runtime name: {name}")))
    }

    /// Remembers a removed container's exit code.
    pub fn note_removed(&self, id: &str, name: &str, exit_code: i64) {
        let mut r = lock(&self.removed);
        r.push_back((id.to_owned(), name.to_owned(), exit_code));
        while r.len() > REMEMBER_REMOVED {
            r.pop_front();
        }
    }

    /// The exit code of a container removed recently, by id, id prefix or name.
    pub fn recently_removed(&self, key: &str) -> Option<i64> {
        let r = lock(&self.removed);
        let name = if key.starts_with('/') {
            key.to_owned()
        } else {
            format!("/{key}")
        };
        r.iter()
            .rev()
            .find(|(id, n, _)| id == key || *n == name || (key.len() >= 12 && id.starts_with(key)))
            .map(|(_, _, code)| *code)
    }

    /// Runs blocking image-store work off the async workers.
    pub async fn blocking<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Daemon) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
    }
}
