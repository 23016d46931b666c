//! Crash-safe metadata writes: temp file in the same dir, (fsync,) rename, (fsync the dir).

use std::io::Write;
use std::path::Path;

/// What a write must survive.
///
/// Every write is atomic (temp file + rename): a berthd crash at any instant leaves the old or
/// the new file, because the page cache outlives the process. Only a host crash can lose or tear
/// an unsynced file, and fsync costs milliseconds per file on a busy disk, so it is spent only
/// where a host crash must not lose the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory: survives a host crash.
    Durable,
    /// Rename only: for what a host crash discards anyway (the exec root is tmpfs; an
    /// AutoRemove container is removed at the next start, as dockerd does).
    Volatile,
}

/// Writes `data` to `path` atomically and durably: a crash leaves the old or the new file,
/// never a torn one.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_file(path, data, Durability::Durable)
}

/// Writes `data` to `path` atomically, with fsyncs only when `durability` asks for them.
pub fn write_file(path: &Path, data: &[u8], durability: Durability) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no parent")
    })?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if durability == Durability::Durable {
            f.sync_all()?;
        }
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if durability == Durability::Durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `n` random bytes from the kernel, hex encoded.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn volatile_write_replaces_whole_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_file(&p, b"one", Durability::Volatile).unwrap();
        write_file(&p, b"second", Durability::Volatile).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn random_ids_differ() {
        let a = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex(32).unwrap());
    }
}
