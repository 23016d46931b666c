//! Writing OCI `LinuxResources` to cgroup v2 files. Functions take the cgroup dir, so unit tests
//! run them on a tempdir of fixture files.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources, LinuxThrottleDevice,
};

use super::CgroupError;
use super::devices::convert;
use super::ebpf::apply_device_rules;
use super::fs::write_file;
use super::v1_resources::{page_size, set_cpuset};

/// Write every resource the spec sets. Writing to a missing file fails naming the file, which
/// is how a controller that is not enabled shows up.
pub(crate) fn set(dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        set_memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        set_cpu(dir, c)?;
        set_cpuset(dir, c)?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_owned()
        };
        write_file(dir, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        set_io(dir, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        set_hugetlb(dir, h)?;
    }
    if let Some(devs) = r.devices() {
        apply_device_rules(dir, &convert(devs)?)?;
    }
    if let Some(n) = r.network()
        && (n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
    {
        return Err(CgroupError::Unsupported {
            what: "network classID/priorities".into(),
            why: "net_cls/net_prio do not exist on cgroup v2".into(),
        });
    }
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
    if let Some(u) = r.unified() {
        set_unified(dir, u.iter())?;
    }
    Ok(())
}

/// `-1` (or any negative) → `max`.
fn limit_str(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// OCI `swap` is memory+swap (v1 semantics); v2's `memory.swap.max` is swap alone. Returns
/// None when nothing should be written.
pub fn swap_to_v2(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>, CgroupError> {
    let Some(swap) = swap else { return Ok(None) };
    if swap == -1 {
        return Ok(Some("max".into()));
    }
    if swap == 0 {
        return Ok(None);
    }
    match limit {
        None | Some(0) => Ok(None),
        Some(l) if l < 0 => Err(CgroupError::Invalid {
            what: "memory.swap".into(),
            why: "a swap limit needs a memory limit".into(),
        }),
        Some(l) if swap < l => Err(CgroupError::Invalid {
            what: "memory.swap".into(),
            why: format!("memory+swap {swap} is below the memory limit {l}"),
        }),
        Some(l) => Ok(Some((swap - l).to_string())),
    }
}

/// memory.max (limit), memory.low (reservation), memory.swap.max. swappiness and the OOM-killer
/// switch have no v2 files and are ignored (as runc does); kernel limits too.
pub fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if let Some(swap) = swap_to_v2(m.limit(), m.swap())? {
        write_file(dir, "memory.swap.max", &swap)?;
    }
    if let Some(l) = m.limit() {
        write_file(dir, "memory.max", &limit_str(l))?;
    }
    if let Some(r) = m.reservation() {
        write_file(dir, "memory.low", &limit_str(r))?;
    }
    Ok(())
}

/// cgroup v1 cpu.shares (2..=262144, default 1024) to v2 cpu.weight (1..=10000, default 100),
/// using the quadratic-in-log2 mapping newer runc and crun releases adopted, so that 2 → 1,
/// 1024 → 100 and 262144 → 10000 (the older linear formula, still in the runc 1.1 installed on
/// the dev machines, maps the default 1024 to 39).
/// 0 means "unset".
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        s if s <= 2 => 1,
        s if s >= 262_144 => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            // Round away float noise before ceil, so exact points (1024 → 100) stay exact.
            let w = 10f64.powf(exponent);
            let w = (w * 1e6).round() / 1e6;
            (w.ceil() as u64).clamp(1, 10_000)
        }
    }
}

/// cpu.weight (from shares), cpu.max (`quota period`), cpu.max.burst, cpu.idle. Realtime
/// settings do not exist on v2: asking for them is an error.
pub fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        return Err(CgroupError::Unsupported {
            what: "cpu realtime runtime/period".into(),
            why: "cgroup v2 has no realtime CPU controller".into(),
        });
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write_file(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_owned(),
        };
        let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
        write_file(dir, "cpu.max", &format!("{quota} {period}"))?;
    }
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// blkio weight (10..=1000) to io.weight (1..=10000), as runc does.
pub fn blkio_weight_to_io(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// io.weight and io.max.
pub fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        write_file(
            dir,
            "io.weight",
            &format!("default {}", blkio_weight_to_io(w)),
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write_file(
                dir,
                "io.weight",
                &format!("{}:{} {}", d.major(), d.minor(), blkio_weight_to_io(w)),
            )?;
        }
    }
    let groups: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ];
    for (devs, key) in groups {
        for d in devs.iter().flatten() {
            write_file(
                dir,
                "io.max",
                &format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// hugetlb.<size>.max.
pub fn set_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    for l in limits {
        let size = page_size(l)?;
        write_file(dir, &format!("hugetlb.{size}.max"), &limit_str(l.limit()))?;
    }
    Ok(())
}

/// `linux.resources.unified`: each key is a file in the cgroup dir, the value written verbatim.
pub fn set_unified<'a>(
    dir: &Path,
    entries: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<(), CgroupError> {
    for (k, v) in entries {
        if k.is_empty() || k.contains('/') || k.starts_with('.') {
            return Err(CgroupError::Invalid {
                what: "linux.resources.unified key".into(),
                why: format!("{k:?} is not a cgroup file name"),
            });
        }
        write_file(dir, k, v)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
        LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
        LinuxThrottleDeviceBuilder,
    };
    use std::collections::HashMap;

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
    fn shares_weight_conversion() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        let mut prev = 0;
        for s in (2..262_144).step_by(997) {
            let w = shares_to_weight(s);
            assert!(w >= prev && (1..=10_000).contains(&w), "{s} -> {w}");
            prev = w;
        }
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(
            swap_to_v2(Some(100), Some(300)).unwrap().as_deref(),
            Some("200")
        );
        assert_eq!(
            swap_to_v2(Some(100), Some(-1)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(swap_to_v2(Some(100), None).unwrap(), None);
        assert!(swap_to_v2(Some(300), Some(100)).is_err());
        assert!(swap_to_v2(Some(-1), Some(100)).is_err());
    }

    #[test]
    fn resources_to_files() {
        let d = fixture(&[
            "memory.max",
            "memory.low",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.max",
            "io.weight",
            "hugetlb.2MB.max",
            "memory.high",
        ]);
        let dev = LinuxThrottleDeviceBuilder::default()
            .major(8)
            .minor(16)
            .rate(1000u64)
            .build()
            .unwrap();
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64i64 << 20)
                    .swap(96i64 << 20)
                    .reservation(16i64 << 20)
                    .swappiness(60u64)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000i64)
                    .period(100_000u64)
                    .cpus("0")
                    .mems("0")
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(32i64).build().unwrap())
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(500u16)
                    .throttle_write_bps_device(vec![dev])
                    .build()
                    .unwrap(),
            )
            .hugepage_limits(vec![
                LinuxHugepageLimitBuilder::default()
                    .page_size("2MB")
                    .limit(-1i64)
                    .build()
                    .unwrap(),
            ])
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::A)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .unified(HashMap::from([(
                "memory.high".to_owned(),
                "50M".to_owned(),
            )]))
            .build()
            .unwrap();
        set(d.path(), &r).unwrap();
        assert_eq!(read(&d, "memory.max"), "67108864");
        assert_eq!(read(&d, "memory.swap.max"), "33554432");
        assert_eq!(read(&d, "memory.low"), "16777216");
        assert_eq!(read(&d, "cpu.weight"), "100");
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        assert_eq!(read(&d, "cpuset.cpus"), "0");
        assert_eq!(read(&d, "pids.max"), "32");
        assert_eq!(
            read(&d, "io.weight"),
            format!("default {}", blkio_weight_to_io(500))
        );
        assert_eq!(read(&d, "io.max"), "8:16 wbps=1000");
        assert_eq!(read(&d, "hugetlb.2MB.max"), "max");
        assert_eq!(read(&d, "memory.high"), "50M");
    }

    #[test]
    fn refusals() {
        let d = fixture(&["cpu.max"]);
        let deny = LinuxResourcesBuilder::default()
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        // A tempdir is no cgroup: attaching the device program fails, naming the step.
        let e = set(d.path(), &deny).unwrap_err();
        assert!(e.to_string().contains("device program"), "{e}");
        let rt = LinuxCpuBuilder::default()
            .realtime_runtime(1000i64)
            .build()
            .unwrap();
        assert!(set_cpu(d.path(), &rt).is_err());
        let bad = HashMap::from([("../x".to_owned(), "1".to_owned())]);
        assert!(set_unified(d.path(), bad.iter()).is_err());
        // A missing controller file is reported by name.
        let m = LinuxMemoryBuilder::default()
            .limit(1i64 << 20)
            .build()
            .unwrap();
        let e = set_memory(d.path(), &m).unwrap_err();
        assert!(e.to_string().contains("memory.max"), "{e}");
        // Quota alone uses the default period; quota -1 is unlimited.
        let q = LinuxCpuBuilder::default().quota(-1i64).build().unwrap();
        set_cpu(d.path(), &q).unwrap();
        assert_eq!(read(&d, "cpu.max"), "max 100000");
    }
}
