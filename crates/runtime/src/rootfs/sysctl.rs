//! `linux.sysctl`: written to the container's `/proc/sys` after the pivot, before read-only paths
//! make it read-only. Only sysctls that belong to a namespace the container owns are accepted
//! (as runc does): anything else would change the host.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{RootfsError, has_namespace};

/// IPC-namespaced sysctls (besides `fs.mqueue.*`).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`; keys that could name anything
/// outside /proc/sys are refused.
pub(crate) fn sysctl_path(key: &str) -> Result<PathBuf, RootfsError> {
    let reject = |reason| RootfsError::SysctlRejected {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() || key.contains("..") || key.starts_with(['.', '/']) || key.contains('\0') {
        return Err(reject("not a sysctl name"));
    }
    let rel = key.replace('.', "/");
    if rel.split('/').any(|c| c.is_empty() || c == ".") {
        return Err(reject("not a sysctl name"));
    }
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Which namespace a sysctl belongs to, if any we know of.
fn namespace_of(key: &str) -> Option<LinuxNamespaceType> {
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Check every key first, then write them (sorted, so the order is reproducible).
pub(crate) fn apply(spec: &Spec) -> Result<(), RootfsError> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let mut entries: Vec<(&String, &String)> = map.iter().collect();
    entries.sort();
    let mut writes = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let path = sysctl_path(key)?;
        let reject = |reason| RootfsError::SysctlRejected {
            key: key.clone(),
            reason,
        };
        match namespace_of(key) {
            None => return Err(reject("not namespaced: it would change the host")),
            Some(ns) if !has_namespace(spec, ns) => {
                return Err(reject(
                    "the container does not have its own namespace for it",
                ));
            }
            Some(_) => {}
        }
        writes.push((key, path, value));
    }
    for (key, path, value) in writes {
        let err = |source| RootfsError::Sysctl {
            key: key.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(err)?;
        f.write_all(value.as_bytes()).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_rejections() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        for bad in [
            "",
            "..",
            "net..x",
            ".net",
            "/etc/passwd",
            "a/../../b",
            "kernel.",
        ] {
            assert!(sysctl_path(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(namespace_of("kernel.shmmax"), Some(LinuxNamespaceType::Ipc));
        assert_eq!(
            namespace_of("fs.mqueue.msg_max"),
            Some(LinuxNamespaceType::Ipc)
        );
        assert_eq!(
            namespace_of("net.core.somaxconn"),
            Some(LinuxNamespaceType::Network)
        );
        assert_eq!(namespace_of("vm.swappiness"), None);
    }

    #[test]
    fn refuses_before_writing() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {
                "namespaces": [{"type": "ipc"}],
                "sysctl": {"kernel.shmmax": "1", "net.ipv4.ip_forward": "1"}
            }
        }))
        .unwrap();
        assert!(
            matches!(apply(&spec), Err(RootfsError::SysctlRejected { key, .. }) if key == "net.ipv4.ip_forward")
        );
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"namespaces": [{"type": "network"}], "sysctl": {"vm.swappiness": "1"}}
        }))
        .unwrap();
        assert!(matches!(
            apply(&spec),
            Err(RootfsError::SysctlRejected { .. })
        ));
    }
}
