//! Whole files in the state dir: a reader (berthd after a restart) sees the old or the new
//! content, never a torn one.
//!
//! No fsync: the state dir lives in the exec root (`/run/berth`, tmpfs by design), which does
//! not survive the host crashes fsync protects against, while a rename is already atomic for
//! every reader on the running system, a restarted berthd included. An fsync here cost
//! milliseconds per file on a busy disk, on the path of every `run`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a state file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("write temp file {path}")]
    WriteTemp {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rename {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Write `data` to `path` atomically: temp file in the same dir, then rename over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), FilesError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> io::Result<()> { File::create(&tmp)?.write_all(data) };
    write().map_err(|source| FilesError::WriteTemp {
        path: tmp.clone(),
        source,
    })?;
    fs::rename(&tmp, path).map_err(|source| FilesError::Rename {
        from: tmp.clone(),
        to: path.to_path_buf(),
        source,
    })
}

/// Docker's timestamp format: RFC 3339 in UTC with exactly nine fractional digits.
pub fn rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// [`rfc3339_nano`] of now.
pub fn now_rfc3339_nano() -> String {
    rfc3339_nano(chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content() {
        let dir = std::env::temp_dir().join(format!("berth-shim-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("exit");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // No temp file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timestamps_have_nine_digits_and_z() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 120).unwrap();
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.000000120Z");
    }
}
