//! The in-memory container table: id → entry, name → id, lookups by id, name or unique id
//! prefix with Docker's error texts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use berth_api::ApiError;
use tokio::sync::watch;

use super::record::ContainerRecord;

/// Lifecycle facts waiters watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// The init is alive.
    pub running: bool,
    /// Number of exits observed since berthd loaded the container.
    pub exits: u64,
    /// Exit code of the last exit.
    pub exit_code: i64,
    /// The container is gone from the table.
    pub removed: bool,
}

/// A client waiting to be connected to the shim's attach stream when the container starts.
#[derive(Debug)]
pub struct PendingAttach {
    /// Attach stdin.
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr.
    pub stderr: bool,
    /// Receives the connected shim stream (or the error).
    pub tx: tokio::sync::oneshot::Sender<Result<tokio::net::UnixStream, ApiError>>,
}

/// One container.
#[derive(Debug)]
pub struct Entry {
    /// Its id (immutable).
    pub id: String,
    /// Record: short critical sections only, never held across an await.
    pub rec: Mutex<ContainerRecord>,
    /// Serializes lifecycle operations (start/stop/kill/remove) on this container.
    pub op: tokio::sync::Mutex<()>,
    /// Broadcasts state changes to waiters.
    pub lifecycle: watch::Sender<Lifecycle>,
    /// Attach requests made before start.
    pub pending_attach: Mutex<Vec<PendingAttach>>,
    /// Number of live attach bridges (the shim is deleted only after they drained).
    pub attached: watch::Sender<usize>,
    /// The last exit has not yet been handed to a `next-exit` waiter (closes the race where
    /// the docker CLI's wait request arrives after a very fast container already exited).
    pub unclaimed_exit: Mutex<bool>,
}

impl Entry {
    /// A new entry for `rec`.
    pub fn new(rec: ContainerRecord) -> Arc<Entry> {
        let running = rec.state.running;
        Arc::new(Entry {
            id: rec.id.clone(),
            lifecycle: watch::Sender::new(Lifecycle {
                running,
                exits: 0,
                exit_code: rec.state.exit_code,
                removed: false,
            }),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            pending_attach: Mutex::new(Vec::new()),
            attached: watch::Sender::new(0),
            unclaimed_exit: Mutex::new(false),
        })
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> ContainerRecord {
        lock(&self.rec).clone()
    }

    /// Runs `f` on the record under its lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut ContainerRecord) -> R) -> R {
        f(&mut lock(&self.rec))
    }
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it (the records
/// stay consistent field by field; refusing every later request would be worse).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Arc<Entry>>,
    names: HashMap<String, String>,
}

/// The table.
#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Inner>,
}

impl Store {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Finds a container by full id, name (with or without `/`), or unique id prefix.
    pub fn get(&self, key: &str) -> Result<Arc<Entry>, ApiError> {
        let inner = self.read();
        if key.is_empty() {
            return Err(ApiError::not_found("No such container: "));
        }
        if let Some(e) = inner.by_id.get(key) {
            return Ok(e.clone());
        }
        let name = if key.starts_with('/') {
            key.to_owned()
        } else {
            format!("/{key}")
        };
        if let Some(id) = inner.names.get(&name)
            && let Some(e) = inner.by_id.get(id)
        {
            return Ok(e.clone());
        }
        let mut found: Option<&Arc<Entry>> = None;
        for (id, e) in &inner.by_id {
            if id.starts_with(key) {
                if found.is_some() {
                    return Err(ApiError::invalid(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
                found = Some(e);
            }
        }
        found
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such container: {key}")))
    }

    /// Reserves `name` (`/x`) for `id`; Docker's 409 when taken.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), ApiError> {
        let mut inner = self.write();
        if let Some(holder) = inner.names.get(name) {
            if holder == id {
                return Ok(());
            }
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        inner.names.insert(name.to_owned(), id.to_owned());
        Ok(())
    }

    /// Releases a name reservation.
    pub fn release_name(&self, name: &str) {
        self.write().names.remove(name);
    }

    /// Adds a container whose name is already reserved.
    pub fn insert(&self, entry: Arc<Entry>) {
        let name = entry.with(|r| r.name.clone());
        let mut inner = self.write();
        inner.names.insert(name, entry.id.clone());
        inner.by_id.insert(entry.id.clone(), entry);
    }

    /// Removes a container and its name.
    pub fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        let mut inner = self.write();
        let e = inner.by_id.remove(id)?;
        inner.names.retain(|_, v| v != id);
        Some(e)
    }

    /// Every container.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.read().by_id.values().cloned().collect()
    }

    /// Number of containers.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
