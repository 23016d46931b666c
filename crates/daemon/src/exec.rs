//! Exec instances: created by `POST /containers/{id}/exec`, run through the container's
//! shim (`exec` / `exec_wait` ops), inspected by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api::ApiError;
use berth_api::models::ExecConfig;

use crate::containers::store::lock;

/// One exec instance.
#[derive(Debug, Clone)]
pub struct ExecInstance {
    /// 64 hex.
    pub id: String,
    /// Owning container.
    pub container_id: String,
    /// What to run.
    pub config: ExecConfig,
    /// Started and not yet exited.
    pub running: bool,
    /// Ever started.
    pub started: bool,
    /// Exit code once exited.
    pub exit_code: Option<i64>,
    /// Host pid while running.
    pub pid: i64,
}

/// All exec instances.
#[derive(Debug, Default)]
pub struct ExecTable {
    map: Mutex<HashMap<String, ExecInstance>>,
}

impl ExecTable {
    /// Adds an instance.
    pub fn insert(&self, e: ExecInstance) {
        lock(&self.map).insert(e.id.clone(), e);
    }

    /// A copy of the instance; Docker's 404 text when unknown.
    pub fn get(&self, id: &str) -> Result<ExecInstance, ApiError> {
        lock(&self.map)
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    /// Updates an instance in place.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut ExecInstance)) {
        if let Some(e) = lock(&self.map).get_mut(id) {
            f(e);
        }
    }

    /// Ids of a container's execs.
    pub fn of_container(&self, cid: &str) -> Vec<String> {
        lock(&self.map)
            .values()
            .filter(|e| e.container_id == cid)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Drops a container's execs (on container removal).
    pub fn remove_container(&self, cid: &str) {
        lock(&self.map).retain(|_, e| e.container_id != cid);
    }
}

/// Shared handle type.
pub type SharedExecs = Arc<ExecTable>;
