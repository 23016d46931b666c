//! Shared harness for the `rootfs_*` tests: run set-up in a forked child that unshares
//! namespaces and reports through a pipe, bundles from the fixtures, and the checks every
//! container made from the default spec must pass.
#![allow(dead_code)] // each test crate uses a different part

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_runtime::rootfs::{self, RootfsOptions, mountinfo};
use nix::sched::CloneFlags;
use oci_spec::runtime::Spec;

pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
pub const TMPFS_MAGIC: i64 = 0x0102_1994;
pub const MQUEUE_MAGIC: i64 = 0x1980_0202;
pub const SYSFS_MAGIC: i64 = 0x6265_6572;
pub const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
pub const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

pub type Check = Result<(), String>;

/// The host's mount table when the test process started (before any test forked).
pub static HOST_ROOT: std::sync::LazyLock<Vec<mountinfo::MountInfo>> =
    std::sync::LazyLock::new(|| mountinfo::read_self().unwrap());

#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($msg)+)));
        }
    };
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Run `f` in a forked child that first unshares `ns`; return what it reported.
pub fn in_child(ns: CloneFlags, f: impl FnOnce() -> Check) -> Check {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only runs `f` (set-up syscalls and std file I/O) and then `_exit`s;
    // the test harness's other threads are idle at this point (nextest: one test per process).
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNS | ns)
                    .map_err(|e| format!("unshare: {e}"))?;
                f()
            }));
            let msg = match res {
                Ok(Ok(())) => "OK".to_string(),
                Ok(Err(e)) => e,
                Err(p) => format!(
                    "panic: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                ),
            };
            let mut w = File::from(w);
            let _ = w.write_all(msg.as_bytes());
            drop(w);
            // SAFETY: _exit ends the child without running the parent's atexit handlers/destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            File::from(r).read_to_string(&mut msg).unwrap();
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            if msg == "OK" {
                Ok(())
            } else {
                Err(format!("child ({status:?}): {msg}"))
            }
        }
    }
}

/// A bundle from the default runc-like spec after `edit`; returns (tempdir, rootfs, spec).
pub fn make_bundle(
    edit: impl FnOnce(&mut serde_json::Value),
) -> (tempfile::TempDir, PathBuf, Spec) {
    std::sync::LazyLock::force(&HOST_ROOT);
    let dir = tempfile::tempdir().unwrap();
    let bundle = berth_fixtures::bundle_with(&dir.path().join("bundle"), &["sh"], edit).unwrap();
    let spec: Spec =
        serde_json::from_str(&fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    (dir, bundle.join("rootfs"), spec)
}

pub fn statfs_type(p: &str) -> Result<i64, String> {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type().0)
        .map_err(|e| format!("statfs {p}: {e}"))
}

pub fn write_errno(p: &str) -> Option<i32> {
    match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
    {
        Ok(mut f) => f.write_all(b"1").err().and_then(|e| e.raw_os_error()),
        Err(e) => e.raw_os_error().or(Some(-1)),
    }
}

/// Nothing of ours is left mounted in the host's namespace, and its `/` is as it was.
pub fn assert_host_clean(paths: &[&Path]) {
    let root = |ms: &[mountinfo::MountInfo]| {
        ms.iter()
            .find(|m| m.mount_point == Path::new("/"))
            .map(|m| (m.id, m.options.clone(), m.optional.clone()))
    };
    let now = mountinfo::read_self().unwrap();
    assert_eq!(root(&now), root(&HOST_ROOT), "host / changed");
    for m in now {
        for p in paths {
            assert!(
                !m.mount_point.starts_with(p),
                "host mount table has {}",
                m.mount_point.display()
            );
        }
    }
}

pub fn setup_container(spec: &Spec, rootfs: &Path, opts: RootfsOptions) -> Check {
    rootfs::prepare(spec, rootfs, opts).map_err(|e| format!("prepare: {}", chain(&e)))?;
    rootfs::pivot(rootfs, opts).map_err(|e| format!("pivot: {}", chain(&e)))?;
    rootfs::finalize(spec, opts).map_err(|e| format!("finalize: {}", chain(&e)))
}

pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

/// What every container from the default spec must look like from inside.
pub fn check_default_view(host_has_kcore: bool) -> Check {
    ensure!(
        Path::new("/bin/busybox").is_file(),
        "/bin/busybox missing: / is not the rootfs"
    );
    ensure!(!Path::new("/work").exists(), "host /work visible inside");
    ensure!(
        statfs_type("/proc")? == PROC_SUPER_MAGIC,
        "/proc is not procfs"
    );
    ensure!(
        Path::new("/proc/self/status").exists(),
        "/proc/self missing"
    );
    let null = fs::metadata("/dev/null").map_err(|e| e.to_string())?;
    ensure!(
        null.file_type().is_char_device(),
        "/dev/null not a char device"
    );
    ensure!(
        null.rdev() == libc::makedev(1, 3),
        "/dev/null rdev {:x}",
        null.rdev()
    );
    ensure!(
        null.permissions().mode() & 0o777 == 0o666,
        "/dev/null mode {:o}",
        null.mode()
    );
    OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .and_then(|mut f| f.write_all(b"x"))
        .map_err(|e| format!("write /dev/null: {e}"))?;
    for (p, maj, min) in [
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        let m = fs::metadata(p).map_err(|e| format!("{p}: {e}"))?;
        ensure!(
            m.file_type().is_char_device() && m.rdev() == libc::makedev(maj, min),
            "{p} wrong"
        );
    }
    let mut zero = [1u8; 4];
    File::open("/dev/zero")
        .and_then(|mut f| f.read_exact(&mut zero))
        .map_err(|e| e.to_string())?;
    ensure!(zero == [0; 4], "/dev/zero gave {zero:?}");
    ensure!(
        fs::metadata("/dev/pts/ptmx").is_ok(),
        "/dev/pts/ptmx missing"
    );
    ensure!(
        statfs_type("/dev/pts")? == DEVPTS_SUPER_MAGIC,
        "/dev/pts not devpts"
    );
    ensure!(
        fs::read_link("/dev/ptmx").ok() == Some(PathBuf::from("pts/ptmx")),
        "/dev/ptmx not -> pts/ptmx"
    );
    ensure!(
        fs::read_link("/dev/fd").ok() == Some(PathBuf::from("/proc/self/fd")),
        "/dev/fd link"
    );
    ensure!(
        fs::read_link("/dev/stderr").ok() == Some(PathBuf::from("/proc/self/fd/2")),
        "/dev/stderr link"
    );
    ensure!(
        fs::symlink_metadata("/dev/core").is_ok() == host_has_kcore,
        "/dev/core vs host /proc/kcore"
    );
    ensure!(statfs_type("/dev")? == TMPFS_MAGIC, "/dev is not tmpfs");
    ensure!(
        statfs_type("/dev/shm")? == TMPFS_MAGIC,
        "/dev/shm is not tmpfs"
    );
    ensure!(
        statfs_type("/dev/mqueue")? == MQUEUE_MAGIC,
        "/dev/mqueue is not mqueue"
    );
    ensure!(statfs_type("/sys")? == SYSFS_MAGIC, "/sys is not sysfs");
    ensure!(
        write_errno("/sys/kernel/berth-test") == Some(libc::EROFS),
        "/sys not read-only"
    );
    // Masked: files read as empty (/dev/null), directories are empty read-only tmpfs.
    for p in ["/proc/keys", "/proc/timer_list"] {
        let s = fs::read_to_string(p).map_err(|e| format!("read {p}: {e}"))?;
        ensure!(s.is_empty(), "{p} not masked: {} bytes", s.len());
    }
    ensure!(
        fs::read_dir("/sys/firmware")
            .map_err(|e| e.to_string())?
            .next()
            .is_none(),
        "/sys/firmware not masked"
    );
    ensure!(
        statfs_type("/sys/firmware")? == TMPFS_MAGIC,
        "/sys/firmware not tmpfs"
    );
    ensure!(
        write_errno("/sys/firmware/x") == Some(libc::EROFS),
        "/sys/firmware mask writable"
    );
    ensure!(!Path::new("/proc/kcore").exists(), "/proc/kcore appeared");
    // Read-only paths.
    ensure!(
        write_errno("/proc/sys/kernel/hostname") == Some(libc::EROFS),
        "/proc/sys writable"
    );
    ensure!(
        write_errno("/proc/sysrq-trigger") == Some(libc::EROFS)
            || !Path::new("/proc/sysrq-trigger").exists(),
        "sysrq-trigger"
    );
    // cgroups: a read-only tmpfs with each hierarchy our own cgroup, bound read-only.
    ensure!(
        statfs_type("/sys/fs/cgroup")? == TMPFS_MAGIC,
        "/sys/fs/cgroup not tmpfs"
    );
    ensure!(
        write_errno("/sys/fs/cgroup/x") == Some(libc::EROFS),
        "cgroup tmpfs writable"
    );
    ensure!(
        statfs_type("/sys/fs/cgroup/memory")? == CGROUP_SUPER_MAGIC,
        "memory hierarchy missing"
    );
    ensure!(
        Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists(),
        "memory files missing"
    );
    ensure!(
        write_errno("/sys/fs/cgroup/pids/pids.max") == Some(libc::EROFS),
        "cgroup not read-only"
    );
    // The root stays writable without root.readonly.
    fs::write("/berth-rootfile", b"x").map_err(|e| format!("write /: {e}"))?;
    let root = mountinfo::read_self().map_err(|e| e.to_string())?;
    let root = root
        .iter()
        .rev()
        .find(|m| m.mount_point == Path::new("/"))
        .ok_or("no / in mountinfo")?;
    ensure!(!root.is_shared(), "/ is shared, default is rprivate");
    Ok(())
}
