//! The data-root lock: one berthd per data root.
//!
//! `flock(LOCK_EX|LOCK_NB)` on `<data-root>/berthd.lock`, which holds the owner's pid so a
//! second berthd can say who holds it. The kernel drops the lock when the holder dies, so a
//! SIGKILLed berthd never leaves a stale lock behind.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// Errors taking the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Could not open/create the lock file.
    #[error("opening lock file {path}")]
    Open {
        /// Lock file path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds it.
    #[error("data root {root} is in use by another berthd (pid {holder}); lock file {path}")]
    Held {
        /// The data root.
        root: PathBuf,
        /// Lock file path.
        path: PathBuf,
        /// Pid written by the holder (or "unknown").
        holder: String,
    },
    /// flock failed for another reason, or the pid could not be written.
    #[error("locking {path}")]
    Lock {
        /// Lock file path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Held for the daemon's lifetime; the lock goes away with the file descriptor.
#[derive(Debug)]
pub struct DataRootLock {
    _file: File,
}

impl DataRootLock {
    /// Takes the lock on `data_root` (which must exist) and records our pid in it.
    pub fn acquire(data_root: &Path) -> Result<DataRootLock, LockError> {
        let path = data_root.join("berthd.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    root: data_root.to_owned(),
                    path,
                    holder: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(e) => {
                return Err(LockError::Lock {
                    path,
                    source: e.into(),
                });
            }
        }
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_all()
        };
        write(&mut file).map_err(|source| LockError::Lock { path, source })?;
        Ok(DataRootLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DataRootLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just like another process would.
        let err = DataRootLock::acquire(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
}
