//! The rootfs set-up inside a user namespace and with a cgroup namespace.
//! Harness: `rootfs_support`.
#![allow(clippy::unwrap_used)]

mod rootfs_support;

use std::fs;
use std::path::Path;

use berth_runtime::rootfs::{RootfsOptions, mountinfo};
use nix::sched::CloneFlags;
use rootfs_support::*;

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
