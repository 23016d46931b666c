//! Security properties of the rootfs set-up: hostile symlinks in the image cannot redirect
//! mounts or directory creation out of the rootfs, mounts over procfs are refused, sysctls
//! outside the container's namespaces are refused. Harness: `rootfs_support`.
#![allow(clippy::unwrap_used)]

mod rootfs_support;

use std::fs;
use std::os::unix::fs::symlink;

use berth_runtime::rootfs::{self, RootfsOptions, mountinfo};
use nix::sched::CloneFlags;
use rootfs_support::*;

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
        mounts.push(serde_json::json!({"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/hostname", "options": ["bind", "ro"]}));
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
    // /etc/resolv.conf -> a dangling absolute path: the bind target file is created inside.
    fs::remove_file(rootfs.join("etc/resolv.conf")).unwrap();
    symlink(
        format!("/../../..{}/resolv.conf", c.display()),
        rootfs.join("etc/resolv.conf"),
    )
    .unwrap();
    let inside = rootfs.join(c.strip_prefix("/").unwrap());
    let hostname = fs::read_to_string("/etc/hostname").unwrap();
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
        let resolv = fs::read_to_string("/etc/resolv.conf").map_err(|e| e.to_string())?;
        ensure!(resolv == hostname, "/etc/resolv.conf bind: {resolv:?}");
        ensure!(
            write_errno("/etc/resolv.conf") == Some(libc::EROFS),
            "ro file bind writable"
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
    assert!(inside.join("resolv.conf").is_file());
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
