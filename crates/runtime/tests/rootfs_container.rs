//! End-to-end tests of `rootfs::{prepare, pivot, finalize}` on the real kernel.
//!
//! Each test forks; the child unshares a mount namespace (plus UTS/IPC/net where a check could
//! otherwise touch the host), sets up a busybox bundle's rootfs as a container would, checks
//! what it sees from inside, and reports `OK` or the failure through a pipe. The child's mount
//! namespace dies with it; the parent then checks that nothing was mounted or created on the
//! host side.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_runtime::rootfs::{self, RootfsOptions, mountinfo};
use nix::sched::CloneFlags;
use oci_spec::runtime::Spec;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const TMPFS_MAGIC: i64 = 0x0102_1994;
const MQUEUE_MAGIC: i64 = 0x1980_0202;
const SYSFS_MAGIC: i64 = 0x6265_6572;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

type Check = Result<(), String>;

/// The host's mount table when the test process started (before any test forked).
static HOST_ROOT: std::sync::LazyLock<Vec<mountinfo::MountInfo>> =
    std::sync::LazyLock::new(|| mountinfo::read_self().unwrap());

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($msg)+)));
        }
    };
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Run `f` in a forked child that first unshares `ns`; return what it reported.
fn in_child(ns: CloneFlags, f: impl FnOnce() -> Check) -> Check {
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
fn make_bundle(edit: impl FnOnce(&mut serde_json::Value)) -> (tempfile::TempDir, PathBuf, Spec) {
    std::sync::LazyLock::force(&HOST_ROOT);
    let dir = tempfile::tempdir().unwrap();
    let bundle = berth_fixtures::bundle_with(&dir.path().join("bundle"), &["sh"], edit).unwrap();
    let spec: Spec =
        serde_json::from_str(&fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    (dir, bundle.join("rootfs"), spec)
}

fn statfs_type(p: &str) -> Result<i64, String> {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type().0)
        .map_err(|e| format!("statfs {p}: {e}"))
}

fn write_errno(p: &str) -> Option<i32> {
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
fn assert_host_clean(paths: &[&Path]) {
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

fn setup_container(spec: &Spec, rootfs: &Path, opts: RootfsOptions) -> Check {
    rootfs::prepare(spec, rootfs, opts).map_err(|e| format!("prepare: {}", chain(&e)))?;
    rootfs::pivot(rootfs, opts).map_err(|e| format!("pivot: {}", chain(&e)))?;
    rootfs::finalize(spec, opts).map_err(|e| format!("finalize: {}", chain(&e)))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

/// What every container from the default spec must look like from inside.
fn check_default_view(host_has_kcore: bool) -> Check {
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

#[test]
fn default_spec_container_view() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let (dir, rootfs, spec) = make_bundle(|_| {});
    let kcore = Path::new("/proc/kcore").exists();
    // Without a cgroup namespace, the memory hierarchy is a bind of our own cgroup dir.
    let own_memory = fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| PathBuf::from(p)))
        .unwrap();
    let r = in_child(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC, || {
        setup_container(&spec, &rootfs, RootfsOptions::default())?;
        check_default_view(kcore)?;
        let mounts = mountinfo::read_self().map_err(|e| e.to_string())?;
        let mem = mounts
            .iter()
            .find(|m| m.mount_point == Path::new("/sys/fs/cgroup/memory"))
            .ok_or("no memory hierarchy")?;
        ensure!(
            mem.root == own_memory,
            "memory bind root {} != {}",
            mem.root.display(),
            own_memory.display()
        );
        Ok(())
    });
    assert_host_clean(&[dir.path()]);
    r.unwrap();
    // What the container wrote landed in the rootfs.
    assert!(rootfs.join("berth-rootfile").is_file());
}

#[test]
fn no_pivot_and_host_device_binds() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let (dir, rootfs, spec) = make_bundle(|_| {});
    let kcore = Path::new("/proc/kcore").exists();
    // in_user_ns without a user namespace: devices come as binds of the host's nodes.
    let opts = RootfsOptions {
        in_user_ns: true,
        no_pivot: true,
    };
    let r = in_child(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC, || {
        setup_container(&spec, &rootfs, opts)?;
        check_default_view(kcore)?;
        // (That the host's /proc was detached before the chroot cannot be seen from here:
        // mountinfo hides mounts outside the root.)
        let mounts = mountinfo::read_self().map_err(|e| e.to_string())?;
        ensure!(
            mounts
                .iter()
                .any(|m| m.mount_point == Path::new("/dev/null")),
            "/dev/null is not a bind of the host's node"
        );
        Ok(())
    });
    assert_host_clean(&[dir.path()]);
    r.unwrap();
}

#[test]
fn extra_mounts_devices_and_readonly_root() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let host = tempfile::tempdir().unwrap();
    let vol = host.path().join("vol");
    fs::create_dir(&vol).unwrap();
    fs::write(vol.join("data"), b"hello").unwrap();
    let file = host.path().join("file");
    fs::write(&file, b"file-bind").unwrap();
    let (vol_s, file_s) = (
        vol.to_string_lossy().into_owned(),
        file.to_string_lossy().into_owned(),
    );
    let (dir, rootfs, spec) = make_bundle(|s| {
        s["root"]["readonly"] = serde_json::json!(true);
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(serde_json::json!({"destination": "/mnt/ro/vol", "type": "bind", "source": vol_s, "options": ["rbind", "ro", "nosuid"]}));
        mounts.push(serde_json::json!({"destination": "/mnt/rw", "type": "none", "source": vol_s, "options": ["bind"]}));
        mounts.push(serde_json::json!({"destination": "/etc/bound-file", "type": "bind", "source": file_s, "options": ["rbind", "ro"]}));
        mounts.push(serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1730", "size=1m", "noexec", "rshared"]}));
        s["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/berth-fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 100},
            {"path": "/dev/sub/berth-fifo", "type": "p", "major": 0, "minor": 0}
        ]);
    });
    let r = in_child(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC, || {
        setup_container(&spec, &rootfs, RootfsOptions::default())?;
        ensure!(
            write_errno("/berth-rootfile") == Some(libc::EROFS),
            "root.readonly: / writable"
        );
        ensure!(
            fs::read_to_string("/mnt/ro/vol/data").ok().as_deref() == Some("hello"),
            "ro bind content"
        );
        ensure!(
            write_errno("/mnt/ro/vol/new") == Some(libc::EROFS),
            "ro bind writable"
        );
        let mounts = mountinfo::read_self().map_err(|e| e.to_string())?;
        let find = |p: &str| {
            mounts
                .iter()
                .rev()
                .find(|m| m.mount_point == Path::new(p))
                .cloned()
        };
        let ro = find("/mnt/ro/vol").ok_or("/mnt/ro/vol not a mount")?;
        ensure!(
            ro.has_option("ro") && ro.has_option("nosuid"),
            "ro bind options {}",
            ro.options
        );
        fs::write("/mnt/rw/new", b"w").map_err(|e| format!("rw bind: {e}"))?;
        ensure!(
            fs::read_to_string("/etc/bound-file").ok().as_deref() == Some("file-bind"),
            "file bind"
        );
        ensure!(
            write_errno("/etc/bound-file") == Some(libc::EROFS),
            "file bind writable"
        );
        let scratch = fs::metadata("/scratch").map_err(|e| e.to_string())?;
        ensure!(
            scratch.permissions().mode() & 0o7777 == 0o1730,
            "tmpfs mode {:o}",
            scratch.mode()
        );
        let st = nix::sys::statvfs::statvfs("/scratch").map_err(|e| e.to_string())?;
        ensure!(
            st.blocks() * st.fragment_size() == 1 << 20,
            "tmpfs size {}",
            st.blocks() * st.fragment_size()
        );
        let sc = find("/scratch").ok_or("/scratch not a mount")?;
        ensure!(
            sc.is_shared() && sc.has_option("noexec"),
            "/scratch: {:?} {}",
            sc.optional,
            sc.options
        );
        fs::write("/scratch/x", b"x").map_err(|e| format!("/scratch under ro root: {e}"))?;
        fs::write("/dev/shm/x", b"x").map_err(|e| format!("/dev/shm under ro root: {e}"))?;
        let fuse = fs::metadata("/dev/berth-fuse").map_err(|e| e.to_string())?;
        ensure!(
            fuse.file_type().is_char_device() && fuse.rdev() == libc::makedev(10, 229),
            "fuse node"
        );
        ensure!(
            fuse.mode() & 0o7777 == 0o600 && fuse.uid() == 1000 && fuse.gid() == 100,
            "fuse owner/mode"
        );
        let fifo = fs::metadata("/dev/sub/berth-fifo").map_err(|e| e.to_string())?;
        ensure!(
            fifo.file_type().is_fifo() && fifo.mode() & 0o777 == 0o666,
            "fifo"
        );
        Ok(())
    });
    assert_host_clean(&[dir.path(), host.path()]);
    r.unwrap();
    // The rw bind wrote through to the host directory; the read-only one could not.
    assert!(vol.join("new").is_file());
}

#[test]
fn shared_root_propagation() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let (dir, rootfs, spec) = make_bundle(|s| {
        s["linux"]["rootfsPropagation"] = serde_json::json!("rshared");
    });
    let r = in_child(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC, || {
        setup_container(&spec, &rootfs, RootfsOptions::default())?;
        let mounts = mountinfo::read_self().map_err(|e| e.to_string())?;
        let root = mounts
            .iter()
            .rev()
            .find(|m| m.mount_point == Path::new("/"))
            .ok_or("no /")?;
        ensure!(root.is_shared(), "/ not shared: {:?}", root.optional);
        ensure!(Path::new("/bin/busybox").is_file(), "not in rootfs");
        Ok(())
    });
    assert_host_clean(&[dir.path()]);
    r.unwrap();
}

#[test]
fn sysctls_in_own_ipc_and_net_namespaces() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let (dir, rootfs, spec) = make_bundle(|s| {
        s["linux"]["sysctl"] = serde_json::json!({
            "kernel.shmmax": "12345678",
            "fs.mqueue.msg_max": "17",
            "net.core.somaxconn": "777"
        });
    });
    let host_shmmax = fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let r = in_child(
        CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET,
        || {
            setup_container(&spec, &rootfs, RootfsOptions::default())?;
            let read = |p: &str| {
                fs::read_to_string(p)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| e.to_string())
            };
            ensure!(read("/proc/sys/kernel/shmmax")? == "12345678", "shmmax");
            ensure!(read("/proc/sys/fs/mqueue/msg_max")? == "17", "msg_max");
            ensure!(read("/proc/sys/net/core/somaxconn")? == "777", "somaxconn");
            // Written before /proc/sys became read-only.
            ensure!(
                write_errno("/proc/sys/kernel/shmmax") == Some(libc::EROFS),
                "/proc/sys writable"
            );
            Ok(())
        },
    );
    assert_host_clean(&[dir.path()]);
    r.unwrap();
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
}

#[test]
fn sysctl_outside_a_namespace_is_refused() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let (dir, rootfs, spec) = make_bundle(|s| {
        s["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
    });
    let before = fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    let r = in_child(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC, || {
        rootfs::prepare(&spec, &rootfs, RootfsOptions::default()).map_err(|e| chain(&e))?;
        rootfs::pivot(&rootfs, RootfsOptions::default()).map_err(|e| chain(&e))?;
        match rootfs::finalize(&spec, RootfsOptions::default()) {
            Err(rootfs::RootfsError::SysctlRejected { key, .. }) if key == "vm.swappiness" => {
                Ok(())
            }
            other => Err(format!("expected a rejection, got {other:?}")),
        }
    });
    assert_host_clean(&[dir.path()]);
    r.unwrap();
    assert_eq!(
        fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        before
    );
}

/// A rootfs whose mount destinations are symlinks pointing out of it (absolute, `../` chains,
/// via other symlinks): every mount and every created directory must land inside the rootfs.
#[test]
fn hostile_symlinks_cannot_escape_the_rootfs() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let canary = tempfile::tempdir().unwrap();
    let c = canary.path().to_path_buf();
    fs::create_dir(c.join("existing")).unwrap();
    let (dir, rootfs, spec) = make_bundle(|s| {
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts
            .push(serde_json::json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
        mounts.push(
            serde_json::json!({"destination": "/chain/sub", "type": "tmpfs", "source": "tmpfs"}),
        );
        mounts.push(
            serde_json::json!({"destination": "/existing", "type": "tmpfs", "source": "tmpfs"}),
        );
        mounts.push(serde_json::json!({"destination": "/etc/../../../escape-file", "type": "bind", "source": "/etc/hostname", "options": ["bind"]}));
    });
    // /proc -> /../../..<canary>/proc (does not exist anywhere yet)
    fs::remove_dir(rootfs.join("proc")).unwrap();
    symlink(
        format!("/../../..{}/proc", c.display()),
        rootfs.join("proc"),
    )
    .unwrap();
    // /data -> ../../../../../<canary>/data (relative chain)
    symlink(
        format!("../../../../../../../..{}/data", c.display()),
        rootfs.join("data"),
    )
    .unwrap();
    // /chain -> /hop ; /hop -> ../../<canary>/chain
    symlink("/hop", rootfs.join("chain")).unwrap();
    symlink(
        format!("../../../..{}/chain", c.display()),
        rootfs.join("hop"),
    )
    .unwrap();
    // /existing -> <canary>/existing, a directory that does exist on the host
    symlink(c.join("existing"), rootfs.join("existing")).unwrap();
    let inside = rootfs.join(c.strip_prefix("/").unwrap());
    let r = in_child(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC, || {
        rootfs::prepare(&spec, &rootfs, RootfsOptions::default()).map_err(|e| chain(&e))?;
        let mounts = mountinfo::read_self().map_err(|e| e.to_string())?;
        for m in &mounts {
            ensure!(
                !m.mount_point.starts_with(&c),
                "mounted outside the rootfs: {}",
                m.mount_point.display()
            );
        }
        let at = |p: &str| mounts.iter().any(|m| m.mount_point == inside.join(p));
        ensure!(
            at("proc") && at("data") && at("chain/sub") && at("existing"),
            "mounts not inside the rootfs"
        );
        ensure!(
            statfs_type(&inside.join("proc").to_string_lossy())? == PROC_SUPER_MAGIC,
            "proc not in rootfs"
        );
        ensure!(
            rootfs.join("escape-file").is_file(),
            "bind file not at the rootfs top"
        );
        rootfs::pivot(&rootfs, RootfsOptions::default()).map_err(|e| chain(&e))?;
        rootfs::finalize(&spec, RootfsOptions::default()).map_err(|e| chain(&e))?;
        // Inside, /proc still resolves (through the symlink, within the root) to the procfs.
        ensure!(statfs_type("/proc")? == PROC_SUPER_MAGIC, "/proc inside");
        ensure!(
            fs::read_to_string("/proc/keys")
                .map_err(|e| e.to_string())?
                .is_empty(),
            "mask via symlinked /proc"
        );
        Ok(())
    });
    assert_host_clean(&[dir.path(), canary.path()]);
    r.unwrap();
    let mut left: Vec<_> = fs::read_dir(&c)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, vec!["existing"], "created outside the rootfs");
    assert_eq!(fs::read_dir(c.join("existing")).unwrap().count(), 0);
    assert!(inside.join("chain/sub").is_dir() && inside.join("data").is_dir());
}

/// Map root of a fresh user namespace to host root (allowed to anyone for their own uid).
fn enter_user_ns() -> Check {
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare user: {e}"))?;
    fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| format!("uid_map: {e}"))?;
    fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| format!("gid_map: {e}"))?;
    Ok(())
}

/// The same container view from inside a user namespace: device nodes are binds of the host's,
/// devpts drops the unmapped `gid=5`, and all else works with capabilities only in the user
/// namespace. With `own_net` sysfs is mounted fresh; without, the kernel refuses that and the
/// host's /sys is bound read-only instead.
fn user_namespace_view(own_net: bool) {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let (dir, rootfs, spec) = make_bundle(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(serde_json::json!({"type": "user"}));
        if !own_net {
            ns.retain(|n| n["type"] != "network");
        }
        s["root"]["readonly"] = serde_json::json!(true);
    });
    let kcore = Path::new("/proc/kcore").exists();
    let opts = RootfsOptions {
        in_user_ns: true,
        no_pivot: false,
    };
    let mut ns = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if own_net {
        ns |= CloneFlags::CLONE_NEWNET;
    }
    let r = in_child(CloneFlags::empty(), || {
        enter_user_ns()?;
        nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(|e| format!("unshare pid: {e}"))?;
        // The grandchild is pid 1 of the new pid namespace, owned by the user namespace.
        in_child(ns, || {
            setup_container(&spec, &rootfs, opts)?;
            let mounts = mountinfo::read_self().map_err(|e| e.to_string())?;
            ensure!(
                mounts
                    .iter()
                    .any(|m| m.mount_point == Path::new("/dev/null")),
                "/dev/null is not a bind of the host's node"
            );
            let sys = mounts
                .iter()
                .rev()
                .find(|m| m.mount_point == Path::new("/sys"))
                .ok_or("no /sys mount")?;
            ensure!(sys.has_option("ro"), "/sys not read-only: {}", sys.options);
            // The host's /sys came with its submounts (its /sys/fs/cgroup tmpfs under ours).
            let cg = mounts
                .iter()
                .filter(|m| m.mount_point == Path::new("/sys/fs/cgroup"))
                .count();
            ensure!(
                (cg > 1) != own_net,
                "{cg} mounts at /sys/fs/cgroup (own net ns: {own_net})"
            );
            ensure!(
                write_errno("/berth-rootfile") == Some(libc::EROFS),
                "root.readonly: / writable"
            );
            fs::write("/dev/shm/x", b"x").map_err(|e| format!("/dev/shm: {e}"))?;
            // check_default_view ends by writing to /, which is read-only here.
            match check_default_view(kcore) {
                Err(e) if e.contains("write /:") => Ok(()),
                Err(e) => Err(e),
                Ok(()) => Err("write to read-only / succeeded".into()),
            }
        })
    });
    assert_host_clean(&[dir.path()]);
    r.unwrap();
}

#[test]
fn user_namespace_with_own_net_namespace() {
    user_namespace_view(true);
}

#[test]
fn user_namespace_without_net_namespace_binds_host_sys() {
    user_namespace_view(false);
}

/// Binds over procfs are refused, however the destination reaches /proc (directly or through a
/// symlink in the image), except the lxcfs-style files.
#[test]
fn mounts_over_procfs_are_refused() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("uptime");
    fs::write(&file, b"42.00 42.00\n").unwrap();
    let file_s = file.to_string_lossy().into_owned();
    for (dest, allowed) in [
        ("/proc/uptime", true),
        ("/proc/sys/kernel/hostname", false),
        ("/evil/hostname", false),
    ] {
        let f = file_s.clone();
        let (dir, rootfs, spec) = make_bundle(|s| {
            s["mounts"].as_array_mut().unwrap().push(
                serde_json::json!({"destination": dest, "type": "bind", "source": f, "options": ["bind"]}),
            );
        });
        symlink("/proc/sys/kernel", rootfs.join("evil")).unwrap();
        let r =
            in_child(
                CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC,
                || match rootfs::prepare(&spec, &rootfs, RootfsOptions::default()) {
                    Ok(()) if allowed => {
                        let up = fs::read_to_string(rootfs.join("proc/uptime"))
                            .map_err(|e| e.to_string())?;
                        ensure!(up.starts_with("42.00"), "uptime override not mounted: {up}");
                        Ok(())
                    }
                    Err(rootfs::RootfsError::InvalidMount { .. }) if !allowed => Ok(()),
                    other => Err(format!("{dest}: unexpected {other:?}")),
                },
            );
        assert_host_clean(&[dir.path(), host.path()]);
        r.unwrap();
    }
}

/// With a cgroup namespace every hierarchy is mounted fresh (rooted at the namespace); a
/// `cgroup2` entry on this hybrid host gets the unified hierarchy.
#[test]
fn cgroup_namespace_mounts_fresh_hierarchies() {
    if !is_root() {
        eprintln!("SKIP: needs root");
        return;
    }
    let (dir, rootfs, spec) = make_bundle(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "cgroup"}));
        s["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/cg2", "type": "cgroup2", "source": "cgroup2", "options": ["ro", "nosuid"]}),
        );
    });
    let r = in_child(
        CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWCGROUP,
        || {
            setup_container(&spec, &rootfs, RootfsOptions::default())?;
            let mounts = mountinfo::read_self().map_err(|e| e.to_string())?;
            let mem = mounts
                .iter()
                .find(|m| m.mount_point == Path::new("/sys/fs/cgroup/memory"))
                .ok_or("no memory hierarchy")?;
            ensure!(
                mem.fstype == "cgroup" && mem.root == Path::new("/"),
                "memory: {mem:?}"
            );
            ensure!(
                mem.has_option("ro"),
                "memory hierarchy writable: {}",
                mem.options
            );
            ensure!(
                Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists(),
                "memory files"
            );
            let cg2 = mounts
                .iter()
                .find(|m| m.mount_point == Path::new("/cg2"))
                .ok_or("no /cg2")?;
            ensure!(
                cg2.fstype == "cgroup2" && cg2.has_option("ro"),
                "/cg2: {cg2:?}"
            );
            Ok(())
        },
    );
    assert_host_clean(&[dir.path()]);
    r.unwrap();
}
