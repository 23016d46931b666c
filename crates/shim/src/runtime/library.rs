//! The in-process backend: berth_runtime's library API (rt-core). Until `berth_runtime::container`
//! is merged, every operation answers [`RuntimeError::Unavailable`].

use std::path::{Path, PathBuf};

use super::{CreateRequest, ExecRequest, RuntimeError};

const MISSING: &str = "berth_runtime::container is not merged yet; use --runtime-binary";

/// berth_runtime called in-process.
pub struct Library {
    #[allow(dead_code)] // used once berth_runtime::container is merged (rt-core).
    root: PathBuf,
}

impl Library {
    pub fn new(root: &Path) -> Library {
        Library {
            root: root.to_path_buf(),
        }
    }

    pub fn create(&mut self, _req: CreateRequest<'_>) -> Result<i32, RuntimeError> {
        Err(RuntimeError::Unavailable(MISSING))
    }

    pub fn start(&mut self, _id: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable(MISSING))
    }

    pub fn kill_all(&mut self, _id: &str, _signal: i32) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable(MISSING))
    }

    pub fn pause(&mut self, _id: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable(MISSING))
    }

    pub fn resume(&mut self, _id: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable(MISSING))
    }

    pub fn delete(&mut self, _id: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable(MISSING))
    }

    pub fn exec(&mut self, _req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
        Err(RuntimeError::Unavailable(MISSING))
    }
}
