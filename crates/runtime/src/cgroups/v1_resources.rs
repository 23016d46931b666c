//! Writing OCI `LinuxResources` to cgroup v1 files. Each function takes the controller's dir, so
//! unit tests run them on a tempdir of fixture files.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxPids,
    LinuxResources, LinuxThrottleDevice,
};

use super::devices::convert;
use super::fs::{read_optional, write_file};
use super::{CgroupError, V1Manager};

/// Write every resource the spec sets; a resource whose hierarchy is not mounted is an error
/// only when the spec actually asks for it.
pub(crate) fn set(m: &V1Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            what: "linux.resources.unified".into(),
            why: "it needs cgroup v2; this host runs cgroup v1".into(),
        });
    }
    let need = |controller: &str| {
        m.dir(controller).ok_or_else(|| CgroupError::Unsupported {
            what: format!("{controller} limits"),
            why: format!("no v1 {controller} hierarchy is mounted"),
        })
    };
    if let Some(mem) = r.memory().as_ref().filter(|m| memory_requested(m)) {
        set_memory(need("memory")?, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        if cpu_requested(cpu) {
            set_cpu(need("cpu")?, cpu)?;
        }
        if cpu.cpus().is_some() || cpu.mems().is_some() {
            set_cpuset(need("cpuset")?, cpu)?;
        }
    }
    if let Some(pids) = r.pids() {
        set_pids(need("pids")?, pids)?;
    }
    if let Some(bio) = r.block_io().as_ref().filter(|b| blkio_requested(b)) {
        set_blkio(need("blkio")?, bio)?;
    }
    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        // Hybrid hosts may carry hugetlb on the cgroup2 side instead (as this project's CI
        // machine does); use it there when v1 lacks it.
        let v2_hugetlb = m
            .unified_dir()
            .filter(|d| m.dir("hugetlb").is_none() && has_hugetlb_files(d));
        match v2_hugetlb {
            Some(d) => super::v2_resources::set_hugetlb(d, h)?,
            None => set_hugetlb(need("hugetlb")?, h)?,
        }
    }
    if let Some(devs) = r.devices().as_ref().filter(|d| !d.is_empty()) {
        set_devices(need("devices")?, devs)?;
    }
    if let Some(net) = r.network() {
        if let Some(id) = net.class_id() {
            write_file(need("net_cls")?, "net_cls.classid", &id.to_string())?;
        }
        for p in net.priorities().iter().flatten() {
            write_file(
                need("net_prio")?,
                "net_prio.ifpriomap",
                p.to_string().trim(),
            )?;
        }
    }
    if r.rdma().as_ref().is_some_and(|x| !x.is_empty()) {
        let dir = need("rdma")?;
        for (dev, lim) in r.rdma().iter().flatten() {
            let mut line = dev.clone();
            if let Some(h) = lim.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = lim.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            write_file(dir, "rdma.max", &line)?;
        }
    }
    Ok(())
}

fn has_hugetlb_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut it| {
        it.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("hugetlb.")))
    })
}

fn memory_requested(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
}

fn cpu_requested(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
        || c.idle().is_some()
}

fn blkio_requested(b: &LinuxBlockIo) -> bool {
    b.weight().is_some()
        || b.leaf_weight().is_some()
        || [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
}

/// Memory: limit, soft limit (reservation), memory+swap, swappiness, OOM killer. Kernel memory
/// limits are ignored (obsolete since 5.4; `memory.kmem.limit_in_bytes` is a no-op here).
pub fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit();
    let swap = m.swap();
    let memsw_file = "memory.memsw.limit_in_bytes";
    let have_memsw = read_optional(dir, memsw_file)?.is_some();
    if let Some(s) = swap
        && s != -1
        && !have_memsw
    {
        return Err(CgroupError::Unsupported {
            what: "memory swap limit".into(),
            why: format!(
                "{} is missing (swap accounting off)",
                dir.join(memsw_file).display()
            ),
        });
    }
    let swap = swap.filter(|_| have_memsw);
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // memsw must stay >= limit at every step: raising goes memsw first, lowering goes
            // limit first.
            let cur = read_optional(dir, "memory.limit_in_bytes")?
                .and_then(|c| c.trim().parse::<i64>().ok())
                .unwrap_or(i64::MAX);
            if l == -1 || l > cur {
                write_file(dir, memsw_file, &s.to_string())?;
                write_file(dir, "memory.limit_in_bytes", &l.to_string())?;
            } else {
                write_file(dir, "memory.limit_in_bytes", &l.to_string())?;
                write_file(dir, memsw_file, &s.to_string())?;
            }
        }
        (Some(l), None) => write_file(dir, "memory.limit_in_bytes", &l.to_string())?,
        (None, Some(s)) => write_file(dir, memsw_file, &s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        write_file(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(sw) = m.swappiness() {
        if sw > 100 {
            return Err(CgroupError::Invalid {
                what: "memory.swappiness".into(),
                why: format!("{sw} is above 100"),
            });
        }
        write_file(dir, "memory.swappiness", &sw.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_file(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

/// CPU bandwidth and weight: shares, CFS period/quota/burst, RT period/runtime, idle.
pub fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    // 0 means "not set" for these (as runc treats them); the kernel would reject or clamp it.
    if let Some(s) = c.shares().filter(|v| *v != 0) {
        write_file(dir, "cpu.shares", &s.to_string())?;
    }
    // Period before quota: the kernel checks quota against the current period.
    if let Some(p) = c.period().filter(|v| *v != 0) {
        write_file(dir, "cpu.cfs_period_us", &p.to_string())?;
    }
    if let Some(q) = c.quota().filter(|v| *v != 0) {
        write_file(dir, "cpu.cfs_quota_us", &q.to_string())?;
    }
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(p) = c.realtime_period().filter(|v| *v != 0) {
        write_file(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime().filter(|v| *v != 0) {
        write_file(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// cpuset.cpus / cpuset.mems.
pub fn set_cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// pids.max; zero or negative means unlimited.
pub fn set_pids(dir: &Path, p: &LinuxPids) -> Result<(), CgroupError> {
    let v = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".to_owned()
    };
    write_file(dir, "pids.max", &v)
}

fn throttle(
    dir: &Path,
    file: &str,
    devs: &Option<Vec<LinuxThrottleDevice>>,
) -> Result<(), CgroupError> {
    for d in devs.iter().flatten() {
        write_file(
            dir,
            file,
            &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
        )?;
    }
    Ok(())
}

/// blkio throttling (always available) and weights (only where the kernel's IO scheduler
/// provides `blkio.weight`; asking for a weight without it is an error, not a silent no-op).
pub fn set_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight_file = |name: &str| -> Result<(), CgroupError> {
        if read_optional(dir, name)?.is_none() {
            return Err(CgroupError::Unsupported {
                what: "blkio weight".into(),
                why: format!(
                    "{} is missing (the IO scheduler offers no proportional weight)",
                    dir.join(name).display()
                ),
            });
        }
        Ok(())
    };
    if let Some(w) = b.weight() {
        weight_file("blkio.weight")?;
        write_file(dir, "blkio.weight", &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        weight_file("blkio.leaf_weight")?;
        write_file(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            weight_file("blkio.weight_device")?;
            write_file(
                dir,
                "blkio.weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            weight_file("blkio.leaf_weight_device")?;
            write_file(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    throttle(
        dir,
        "blkio.throttle.read_bps_device",
        b.throttle_read_bps_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.write_bps_device",
        b.throttle_write_bps_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.read_iops_device",
        b.throttle_read_iops_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.write_iops_device",
        b.throttle_write_iops_device(),
    )?;
    Ok(())
}

/// Validate an OCI page size (`2MB`, `1GB`, `64KB`) before using it in a file name.
pub(crate) fn page_size(limit: &LinuxHugepageLimit) -> Result<&str, CgroupError> {
    let s = limit.page_size().as_str();
    let digits = s
        .trim_end_matches("KB")
        .trim_end_matches("MB")
        .trim_end_matches("GB");
    if digits.is_empty()
        || digits.len() + 2 != s.len()
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CgroupError::Invalid {
            what: "hugepage pageSize".into(),
            why: format!("{s:?} is not like \"2MB\""),
        });
    }
    Ok(s)
}

/// hugetlb.<size>.limit_in_bytes.
pub fn set_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    for l in limits {
        let size = page_size(l)?;
        write_file(
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            &l.limit().to_string(),
        )?;
    }
    Ok(())
}

/// Device rules, one write each, in spec order (`a` resets the whole list).
pub fn set_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    for r in convert(rules)? {
        write_file(dir, r.v1_file(), &r.v1_line())?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
        LinuxThrottleDeviceBuilder,
    };

    fn fixture(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        d
    }

    fn read(d: &tempfile::TempDir, f: &str) -> String {
        std::fs::read_to_string(d.path().join(f)).unwrap()
    }

    #[test]
    fn memory_files() {
        let d = fixture(&[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
        ]);
        let m = LinuxMemoryBuilder::default()
            .limit(64i64 << 20)
            .swap(128i64 << 20)
            .reservation(32i64 << 20)
            .swappiness(10u64)
            .disable_oom_killer(true)
            .build()
            .unwrap();
        set_memory(d.path(), &m).unwrap();
        assert_eq!(read(&d, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&d, "memory.memsw.limit_in_bytes"), "134217728");
        assert_eq!(read(&d, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read(&d, "memory.swappiness"), "10");
        assert_eq!(read(&d, "memory.oom_control"), "1");
        let bad = LinuxMemoryBuilder::default()
            .swappiness(101u64)
            .build()
            .unwrap();
        assert!(set_memory(d.path(), &bad).is_err());
    }

    #[test]
    fn swap_without_memsw_is_an_error() {
        let d = fixture(&["memory.limit_in_bytes"]);
        let m = LinuxMemoryBuilder::default()
            .limit(1i64 << 20)
            .swap(2i64 << 20)
            .build()
            .unwrap();
        let e = set_memory(d.path(), &m).unwrap_err();
        assert!(e.to_string().contains("swap"), "{e}");
        // Unlimited swap needs no memsw file.
        let m = LinuxMemoryBuilder::default()
            .limit(1i64 << 20)
            .swap(-1i64)
            .build()
            .unwrap();
        set_memory(d.path(), &m).unwrap();
        assert_eq!(read(&d, "memory.limit_in_bytes"), "1048576");
    }

    #[test]
    fn blkio_throttle_and_weight() {
        let d = fixture(&[
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
        ]);
        let dev = LinuxThrottleDeviceBuilder::default()
            .major(8)
            .minor(0)
            .rate(1024u64)
            .build()
            .unwrap();
        let b = LinuxBlockIoBuilder::default()
            .throttle_read_bps_device(vec![dev])
            .throttle_write_iops_device(vec![dev])
            .build()
            .unwrap();
        set_blkio(d.path(), &b).unwrap();
        assert_eq!(read(&d, "blkio.throttle.read_bps_device"), "8:0 1024");
        assert_eq!(read(&d, "blkio.throttle.write_iops_device"), "8:0 1024");
        let w = LinuxBlockIoBuilder::default()
            .weight(500u16)
            .build()
            .unwrap();
        let e = set_blkio(d.path(), &w).unwrap_err();
        assert!(e.to_string().contains("blkio weight"), "{e}");
        std::fs::write(d.path().join("blkio.weight"), "").unwrap();
        set_blkio(d.path(), &w).unwrap();
        assert_eq!(read(&d, "blkio.weight"), "500");
    }

    #[test]
    fn hugetlb_files() {
        let d = fixture(&["hugetlb.2MB.limit_in_bytes"]);
        let l = LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4i64 << 20)
            .build()
            .unwrap();
        set_hugetlb(d.path(), &[l]).unwrap();
        assert_eq!(read(&d, "hugetlb.2MB.limit_in_bytes"), "4194304");
        let bad = LinuxHugepageLimitBuilder::default()
            .page_size("../x")
            .limit(1i64)
            .build()
            .unwrap();
        assert!(set_hugetlb(d.path(), &[bad]).is_err());
    }
}
