//! The local driver's DriverOpts (`type`, `device`, `o`), as Docker's: a volume with options
//! is a mount (tmpfs, a bind of a host dir, a block device, nfs…) made on the volume's
//! `_data` when the first container using it starts and undone when the last one stops.

use std::collections::BTreeMap;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::store::VolumeError;

/// Parsed `type`/`device`/`o`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOptions {
    /// File system type (`tmpfs`, `none` with `o=bind`, `ext4`, …).
    pub fstype: String,
    /// Source device or directory.
    pub device: String,
    /// mount(2) flags from `o`.
    pub flags: MsFlags,
    /// The rest of `o`, passed to the file system as data.
    pub data: String,
}

impl LocalOptions {
    /// Checks DriverOpts with Docker's rules and messages; None when there are none.
    pub fn parse(
        name: &str,
        opts: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<LocalOptions>, VolumeError> {
        let Some(opts) = opts.filter(|o| !o.is_empty()) else {
            return Ok(None);
        };
        let bad = |reason: String| VolumeError::InvalidOptions {
            name: name.to_owned(),
            reason,
        };
        for k in opts.keys() {
            match k.as_str() {
                "type" | "device" | "o" => {}
                "size" => {
                    return Err(bad(
                        "quota size requested but no quota support (berthd's local driver has no xfs project quotas)".into(),
                    ));
                }
                other => return Err(bad(format!("invalid option: {other:?}"))),
            }
        }
        let fstype = opts.get("type").cloned().unwrap_or_default();
        let device = opts.get("device").cloned().unwrap_or_default();
        if fstype.is_empty() && !device.is_empty() {
            return Err(bad("missing required option: \"type\"".into()));
        }
        if !fstype.is_empty() && device.is_empty() {
            return Err(bad("missing required option: \"device\"".into()));
        }
        if fstype.is_empty() {
            // Only `o`: Docker accepts and ignores it for a plain directory volume.
            return Ok(None);
        }
        let (flags, data) = parse_o(opts.get("o").map(String::as_str).unwrap_or(""))
            .map_err(|o| bad(format!("unsupported mount option {o:?}")))?;
        if flags.contains(MsFlags::MS_BIND) && !device.starts_with('/') {
            return Err(bad(format!(
                "bind mount device must be an absolute path, got {device:?}"
            )));
        }
        Ok(Some(LocalOptions {
            fstype,
            device,
            flags,
            data,
        }))
    }

    /// Mounts onto `target` (the volume's `_data`).
    pub fn mount(&self, target: &Path) -> Result<(), VolumeError> {
        let err = |e: nix::Error| VolumeError::Mount {
            path: target.to_owned(),
            reason: format!(
                "mount {} on {} (type {}): {e}",
                self.device,
                target.display(),
                self.fstype
            ),
        };
        let data = (!self.data.is_empty()).then_some(self.data.as_str());
        nix::mount::mount(
            Some(self.device.as_str()),
            target,
            Some(self.fstype.as_str()),
            self.flags,
            data,
        )
        .map_err(err)?;
        // A bind mount ignores MS_RDONLY until remounted.
        if self.flags.contains(MsFlags::MS_BIND) && self.flags.contains(MsFlags::MS_RDONLY) {
            let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | self.flags;
            if let Err(e) =
                nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
            {
                let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
                return Err(err(e));
            }
        }
        Ok(())
    }
}

/// Splits `o` into mount(2) flags and file system data, as `mount(8)` does.
fn parse_o(o: &str) -> Result<(MsFlags, String), String> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "remount" | "move" | "shared" | "rshared" | "slave" | "rslave" | "private"
            | "rprivate" | "unbindable" | "runbindable" => return Err(opt.to_owned()),
            _ => {
                data.push(opt);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    Ok((flags, data.join(",")))
}

/// Whether `path` is a mount point (listed in this process's mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape_mountinfo(p) == want)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts `target` (lazily: a process still holding it open keeps it alive, not us).
pub fn unmount(target: &Path) -> Result<(), VolumeError> {
    nix::mount::umount2(target, MntFlags::MNT_DETACH).map_err(|e| VolumeError::Mount {
        path: target.to_owned(),
        reason: format!("unmount {}: {e}", target.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn docker_rules_and_messages() {
        assert_eq!(LocalOptions::parse("v", None).unwrap(), None);
        let t = LocalOptions::parse(
            "v",
            Some(&opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m,uid=1000,noexec"),
            ])),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.fstype, "tmpfs");
        assert_eq!(t.data, "size=1m,uid=1000");
        assert_eq!(t.flags, MsFlags::MS_NOEXEC);
        let e = LocalOptions::parse("v", Some(&opts(&[("type", "tmpfs")])))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "create v: missing required option: \"device\"");
        let e = LocalOptions::parse("v", Some(&opts(&[("foo", "1")])))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "create v: invalid option: \"foo\"");
        assert!(
            LocalOptions::parse(
                "v",
                Some(&opts(&[("type", "none"), ("device", "rel"), ("o", "bind")]))
            )
            .is_err()
        );
        assert!(LocalOptions::parse("v", Some(&opts(&[("size", "1g")]))).is_err());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\04"), "/end\\04");
    }
}
