//! Crash-safe metadata writes: a temp file (or dir) in the same directory, fsync, rename over
//! the final name, fsync the directory. A crash at any instant leaves the old or the new
//! version, never a torn one; leftovers are named `*.tmp-*` so [`crate::store::Store::open`]
//! can sweep them.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Marker every temporary name carries, so garbage collection can recognise leftovers.
pub const TMP_MARKER: &str = ".tmp-";

/// Errors of atomic writes; each names the step and the path.
#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    /// Creating or writing the temporary file failed.
    #[error("atomic write: writing temp file {path}")]
    Write {
        /// The temporary path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Renaming the temporary file or dir into place failed.
    #[error("atomic write: renaming {from} to {to}")]
    Rename {
        /// Temporary path.
        from: PathBuf,
        /// Final path.
        to: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// fsync of a file or directory failed.
    #[error("atomic write: fsync {path}")]
    Sync {
        /// What was synced.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
}

/// A unique temporary name next to `final_path` (`<name>.tmp-<pid>-<seq>`).
pub fn tmp_path_for(final_path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(
        "{name}{TMP_MARKER}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Whether a directory entry name is a leftover temporary of this module.
pub fn is_tmp_name(name: &str) -> bool {
    name.contains(TMP_MARKER)
}

/// fsync a directory so a rename or create inside it is durable.
pub fn fsync_dir(dir: &Path) -> Result<(), AtomicError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|source| AtomicError::Sync {
            path: dir.to_path_buf(),
            source,
        })
}

fn parent_of(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

/// Write `data` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn write_file(path: &Path, data: &[u8]) -> Result<(), AtomicError> {
    let tmp = tmp_path_for(path);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(source) = res {
        let _ = fs::remove_file(&tmp);
        return Err(AtomicError::Write { path: tmp, source });
    }
    rename_into_place(&tmp, path)
}

/// Rename `tmp` to `dest` and fsync the parent directory of `dest`.
pub fn rename_into_place(tmp: &Path, dest: &Path) -> Result<(), AtomicError> {
    rename_into_place_as(tmp, dest, Durability::Durable)
}

/// Whether a write must survive a host crash (fsync) or only a crash of the process (the
/// rename alone is atomic for every reader on the running system).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync files and directories.
    Durable,
    /// No fsync: for what a host crash discards anyway (an AutoRemove container's layers).
    Volatile,
}

/// [`rename_into_place`], with the directory fsync only when `durability` asks for it.
pub fn rename_into_place_as(
    tmp: &Path,
    dest: &Path,
    durability: Durability,
) -> Result<(), AtomicError> {
    if let Err(source) = fs::rename(tmp, dest) {
        return Err(AtomicError::Rename {
            from: tmp.to_path_buf(),
            to: dest.to_path_buf(),
            source,
        });
    }
    match durability {
        Durability::Durable => fsync_dir(parent_of(dest)),
        Durability::Volatile => Ok(()),
    }
}

/// Create directory `dest` holding `files` (name, content) as one atomic step: the files are
/// written and synced in a temp dir that is then renamed to `dest`. Fails with
/// [`AtomicError::Rename`] (`EEXIST`/`ENOTEMPTY`) if `dest` already exists, which callers use
/// to detect that a concurrent writer won.
pub fn write_dir(dest: &Path, files: &[(&str, &[u8])]) -> Result<(), AtomicError> {
    write_dir_as(dest, files, Durability::Durable)
}

/// [`write_dir`], with fsyncs only when `durability` asks for them.
pub fn write_dir_as(
    dest: &Path,
    files: &[(&str, &[u8])],
    durability: Durability,
) -> Result<(), AtomicError> {
    let tmp = tmp_path_for(dest);
    let sync = durability == Durability::Durable;
    let res = (|| {
        fs::create_dir(&tmp)?;
        for (name, data) in files {
            let mut f = File::create(tmp.join(name))?;
            f.write_all(data)?;
            if sync {
                f.sync_all()?;
            }
        }
        if sync {
            File::open(&tmp)?.sync_all()?;
        }
        Ok::<(), io::Error>(())
    })();
    if let Err(source) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(AtomicError::Write { path: tmp, source });
    }
    let r = rename_into_place_as(&tmp, dest, durability);
    if r.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_file(&p, b"one").unwrap();
        write_file(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn write_dir_is_exclusive() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_dir(&p, &[("a", b"1"), ("b", b"2")]).unwrap();
        assert_eq!(fs::read(p.join("b")).unwrap(), b"2");
        assert!(write_dir(&p, &[("a", b"3")]).is_err());
        assert_eq!(fs::read(p.join("a")).unwrap(), b"1");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(is_tmp_name(
            &tmp_path_for(&p).file_name().unwrap().to_string_lossy()
        ));
    }

    #[test]
    fn volatile_write_dir_is_exclusive_too() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_dir_as(&p, &[("a", b"1")], Durability::Volatile).unwrap();
        assert_eq!(fs::read(p.join("a")).unwrap(), b"1");
        assert!(write_dir_as(&p, &[("a", b"3")], Durability::Volatile).is_err());
        assert_eq!(fs::read(p.join("a")).unwrap(), b"1");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
