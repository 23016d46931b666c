//! Reading usage counters (for `docker stats` / `runc events`) from v1 and v2 files. Parsers are
//! pure functions over file text; a counter whose controller or file is absent reads as 0.

use std::path::Path;

use super::fs::{normalize_limit, read_optional, read_u64};
use super::{CgroupError, CgroupStats, V1Manager};

/// The value of `key` in a flat-keyed file (`memory.stat`, `cpu.stat`: one `key value` a line).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Bytes read and written, summed over devices, from v1
/// `blkio.throttle.io_service_bytes_recursive` (`8:0 Read 123` lines, then `Total N`).
pub fn v1_blkio_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let (Some(_dev), Some(op), Some(v)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match op {
            "Read" => read = read.saturating_add(v),
            "Write" => write = write.saturating_add(v),
            _ => {}
        }
    }
    (read, write)
}

/// Bytes read and written, summed over devices, from v2 `io.stat`
/// (`8:0 rbytes=1 wbytes=2 rios=3 ...` lines).
pub fn v2_io_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            read = read.saturating_add(v.parse().unwrap_or(0));
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            write = write.saturating_add(v.parse().unwrap_or(0));
        }
    }
    (read, write)
}

fn keyed_file(dir: &Path, file: &str, key: &str) -> Result<u64, CgroupError> {
    Ok(read_optional(dir, file)?
        .and_then(|t| keyed_value(&t, key))
        .unwrap_or(0))
}

/// v1: memory, cpuacct, pids and blkio hierarchies.
pub(crate) fn v1(m: &V1Manager) -> Result<CgroupStats, CgroupError> {
    let mut s = CgroupStats::default();
    if let Some(d) = m.dir("memory") {
        s.memory_usage = read_u64(d, "memory.usage_in_bytes")?;
        s.memory_limit = normalize_limit(read_u64(d, "memory.limit_in_bytes")?);
        s.memory_max_usage = read_u64(d, "memory.max_usage_in_bytes")?;
        s.memory_inactive_file = keyed_file(d, "memory.stat", "total_inactive_file")?;
    }
    if let Some(d) = m.dir("cpuacct") {
        s.cpu_usage_ns = read_u64(d, "cpuacct.usage")?;
        s.cpu_user_ns = read_u64(d, "cpuacct.usage_user")?;
        s.cpu_system_ns = read_u64(d, "cpuacct.usage_sys")?;
    }
    if let Some(d) = m.dir("pids") {
        s.pids_current = read_u64(d, "pids.current")?;
        s.pids_limit = read_u64(d, "pids.max")?;
    }
    if let Some(d) = m.dir("blkio")
        && let Some(t) = read_optional(d, "blkio.throttle.io_service_bytes_recursive")?
    {
        (s.io_read_bytes, s.io_write_bytes) = v1_blkio_bytes(&t);
    }
    Ok(s)
}

/// v2: one dir.
pub(crate) fn v2(dir: &Path) -> Result<CgroupStats, CgroupError> {
    let usec = |key| keyed_file(dir, "cpu.stat", key).map(|v| v.saturating_mul(1000));
    let (io_read_bytes, io_write_bytes) = read_optional(dir, "io.stat")?
        .map(|t| v2_io_bytes(&t))
        .unwrap_or_default();
    Ok(CgroupStats {
        memory_usage: read_u64(dir, "memory.current")?,
        memory_limit: read_u64(dir, "memory.max")?,
        memory_max_usage: read_u64(dir, "memory.peak")?,
        memory_inactive_file: keyed_file(dir, "memory.stat", "inactive_file")?,
        cpu_usage_ns: usec("usage_usec")?,
        cpu_user_ns: usec("user_usec")?,
        cpu_system_ns: usec("system_usec")?,
        pids_current: read_u64(dir, "pids.current")?,
        pids_limit: read_u64(dir, "pids.max")?,
        io_read_bytes,
        io_write_bytes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let stat = "cache 10\ninactive_file 7\ntotal_inactive_file 99\n";
        assert_eq!(keyed_value(stat, "inactive_file"), Some(7));
        assert_eq!(keyed_value(stat, "total_inactive_file"), Some(99));
        assert_eq!(keyed_value(stat, "missing"), None);
        let blk = "8:0 Read 100\n8:0 Write 5\n8:0 Sync 1\n8:16 Read 1\nTotal 106\n";
        assert_eq!(v1_blkio_bytes(blk), (101, 5));
        let io = "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n";
        assert_eq!(v2_io_bytes(io), (11, 22));
    }

    #[test]
    fn v2_from_fixture_files() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(d.path().join(f), t).unwrap();
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("memory.stat", "anon 1\ninactive_file 512\n");
        w("cpu.stat", "usage_usec 30\nuser_usec 20\nsystem_usec 10\n");
        w("pids.current", "3\n");
        w("pids.max", "64\n");
        let s = v2(d.path()).unwrap();
        assert_eq!(s.memory_usage, 4096);
        assert_eq!(s.memory_limit, u64::MAX);
        assert_eq!(s.memory_max_usage, 0);
        assert_eq!(s.memory_inactive_file, 512);
        assert_eq!(
            (s.cpu_usage_ns, s.cpu_user_ns, s.cpu_system_ns),
            (30_000, 20_000, 10_000)
        );
        assert_eq!((s.pids_current, s.pids_limit), (3, 64));
    }
}
