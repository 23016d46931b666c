//! `docker diff` of an overlay upper dir.

use std::path::{Path, PathBuf};

use super::ApplyError;

/// Kind of a change, numbered like the Docker API's `Kind` (0 modified, 1 added, 2 deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `C`: the path exists below and was changed (or is an opaque dir).
    Modified = 0,
    /// `A`: the path is new.
    Added = 1,
    /// `D`: the path was deleted (whiteout).
    Deleted = 2,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the container (`/etc/hosts`).
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

pub(crate) fn changes(_upper: &Path, _lowers: &[PathBuf]) -> Result<Vec<Change>, ApplyError> {
    Ok(Vec::new())
}
