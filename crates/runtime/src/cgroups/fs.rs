//! Small cgroupfs file helpers shared by v1 and v2: one value per `write(2)`, errors naming the
//! file and value, rmdir with a short EBUSY retry, signalling a list of pids.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::CgroupError;

/// How long `destroy` waits for exiting tasks to leave, and freeze waits for the state change.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Write `value` to `dir/file` in a single write, without creating the file: a missing file
/// means the controller (or feature) is absent, which the caller reports.
pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let res = OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| CgroupError::Write {
        path,
        value: value.to_owned(),
        source,
    })
}

/// Read `dir/file` as text.
pub(crate) fn read_file(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Read `dir/file` if it exists (None when missing).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Parse a single-number file; `max` (v2) reads as `u64::MAX`; a missing file reads as 0.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let Some(text) = read_optional(dir, file)? else {
        return Ok(0);
    };
    parse_u64(&text).ok_or_else(|| CgroupError::Parse {
        path: dir.join(file),
        detail: format!("not a number: {:?}", text.trim()),
    })
}

/// `max` or a decimal number.
pub(crate) fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok()
}

/// Pids in `dir/cgroup.procs`.
pub(crate) fn read_procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = read_file(dir, "cgroup.procs")?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: dir.join("cgroup.procs"),
                detail: format!("not a pid: {l:?}"),
            })
        })
        .collect()
}

/// Pids in `dir` and every child cgroup below it (a container may create its own sub-cgroups);
/// a missing `dir` has none.
pub(crate) fn read_procs_recursive(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut pids = read_procs(dir)?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(read_procs_recursive(&entry.path())?);
            }
        }
    }
    Ok(pids)
}

/// v1 reports "unlimited" as the largest page-aligned i64; normalise it to `u64::MAX`.
pub(crate) fn normalize_limit(v: u64) -> u64 {
    if v >= 0x7FFF_FFFF_FFFF_F000 {
        u64::MAX
    } else {
        v
    }
}

/// Move `pid` into the cgroup at `dir`.
pub(crate) fn attach(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
        .map_err(|source| CgroupError::Attach { pid, path, source })
}

/// `mkdir -p`, naming the dir on failure.
pub(crate) fn create_dir_all(dir: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(dir).map_err(|source| CgroupError::Create {
        path: dir.to_path_buf(),
        source,
    })
}

/// rmdir `dir` and any child cgroups (the container may have made some), deepest first;
/// missing is fine; EBUSY (tasks still exiting) is retried for a short while.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_dir(&entry.path())?;
            }
        }
    }
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < SETTLE_TIMEOUT => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Repeat `step` (write the request, report whether the target state was reached) until it
/// says done or [`SETTLE_TIMEOUT`] passes.
pub(crate) fn wait_for_state(
    dir: &Path,
    state: &str,
    mut step: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut delay = Duration::from_micros(100);
    loop {
        if step()? {
            return Ok(());
        }
        if start.elapsed() > SETTLE_TIMEOUT {
            return Err(CgroupError::StateTimeout {
                path: dir.to_path_buf(),
                state: state.to_owned(),
            });
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

/// Send `signal` to every pid; a pid that already exited is skipped.
pub(crate) fn signal_all(pids: &[i32], signal: i32) -> Result<(), CgroupError> {
    let sig = nix::sys::signal::Signal::try_from(signal).map_err(|_| CgroupError::Invalid {
        what: "signal".into(),
        why: format!("{signal} is not a signal number"),
    })?;
    for &pid in pids {
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(CgroupError::Signal {
                    pid,
                    source: std::io::Error::from(e),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn write_needs_existing_file() {
        let d = tempfile::tempdir().unwrap();
        let err = write_file(d.path(), "memory.max", "1").unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
        std::fs::write(d.path().join("memory.max"), "").unwrap();
        write_file(d.path(), "memory.max", "42").unwrap();
        assert_eq!(read_u64(d.path(), "memory.max").unwrap(), 42);
        assert_eq!(read_u64(d.path(), "missing").unwrap(), 0);
        std::fs::write(d.path().join("m"), "max\n").unwrap();
        assert_eq!(read_u64(d.path(), "m").unwrap(), u64::MAX);
        std::fs::write(d.path().join("cgroup.procs"), "1\n22\n").unwrap();
        assert_eq!(read_procs(d.path()).unwrap(), [1, 22]);
        let sub = d.path().join("child");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("cgroup.procs"), "7\n").unwrap();
        assert_eq!(read_procs_recursive(d.path()).unwrap(), [1, 22, 7]);
        assert!(
            read_procs_recursive(&d.path().join("gone"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(normalize_limit(9_223_372_036_854_771_712), u64::MAX);
        assert_eq!(normalize_limit(4096), 4096);
    }

    #[test]
    fn remove_missing_is_ok() {
        let d = tempfile::tempdir().unwrap();
        remove_dir(&d.path().join("nope")).unwrap();
        let sub = d.path().join("x");
        std::fs::create_dir(&sub).unwrap();
        remove_dir(&sub).unwrap();
        assert!(!sub.exists());
    }
}
