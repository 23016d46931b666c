//! End-to-end tests of `rootfs::{prepare, pivot, finalize}` on the real kernel.
//!
//! Each test forks; the child unshares a mount namespace (plus UTS/IPC/net where a check could
//! otherwise touch the host), sets up a busybox bundle's rootfs as a container would, checks
//! what it sees from inside, and reports `OK` or the failure through a pipe. The child's mount
//! namespace dies with it; the parent then checks that nothing was mounted or created on the
//! host side.
#![allow(clippy::unwrap_used)]

mod rootfs_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_runtime::rootfs::{RootfsOptions, mountinfo};
use nix::sched::CloneFlags;
use rootfs_support::*;

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
        // A read-only /dev: made so after the devices and mount points are created in it.
        mounts[1]["options"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!("ro"));
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
        ensure!(
            write_errno("/dev/new-file") == Some(libc::EROFS),
            "/dev not read-only"
        );
        fs::write("/dev/null", b"x").map_err(|e| format!("/dev/null on ro /dev: {e}"))?;
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
