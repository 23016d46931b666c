//! fstab-style mount options (`"ro"`, `"rbind"`, `"rslave"`, `"mode=755"`, ...) split into what
//! each mount call needs: `mount(2)` flags, propagation changes (each its own call), recursive
//! attributes for `mount_setattr(AT_RECURSIVE)`, and the fs-specific data string.

use nix::mount::MsFlags;

/// `mount_setattr` attribute bits (linux/mount.h).
pub(crate) mod attr {
    pub(crate) const RDONLY: u64 = libc::MOUNT_ATTR_RDONLY;
    pub(crate) const NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
    pub(crate) const NODEV: u64 = libc::MOUNT_ATTR_NODEV;
    pub(crate) const NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;
    pub(crate) const ATIME_MASK: u64 = libc::MOUNT_ATTR__ATIME;
    pub(crate) const RELATIME: u64 = libc::MOUNT_ATTR_RELATIME;
    pub(crate) const NOATIME: u64 = libc::MOUNT_ATTR_NOATIME;
    pub(crate) const STRICTATIME: u64 = libc::MOUNT_ATTR_STRICTATIME;
    pub(crate) const NODIRATIME: u64 = libc::MOUNT_ATTR_NODIRATIME;
}

/// Attributes to set and clear with one `mount_setattr` call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub(crate) set: u64,
    pub(crate) clr: u64,
}

impl Attrs {
    pub(crate) fn is_empty(self) -> bool {
        self.set == 0 && self.clr == 0
    }

    fn apply(&mut self, set: bool, bit: u64) {
        if bit & attr::ATIME_MASK != 0 || bit == attr::RELATIME {
            // The atime mode is a 3-bit field: clear it whole, set the chosen value.
            self.clr |= attr::ATIME_MASK;
            self.set = (self.set & !attr::ATIME_MASK) | if set { bit } else { attr::RELATIME };
        } else if set {
            self.set |= bit;
            self.clr &= !bit;
        } else {
            self.clr |= bit;
            self.set &= !bit;
        }
    }
}

/// One mount entry's options, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountOptions {
    /// Flags for `mount(2)` (including `MS_BIND`/`MS_REC` for bind and rbind).
    pub(crate) flags: MsFlags,
    /// Per-mount attributes the options ask for (for binds, which ignore most `mount(2)` flags
    /// and need a second step). Only what was asked: nothing is cleared implicitly, so
    /// flags locked by a user namespace are preserved.
    pub(crate) attrs: Attrs,
    /// `rro`, `rnosuid`, ...: attributes applied to the whole subtree.
    pub(crate) rec_attrs: Attrs,
    /// `rshared`, `slave`, ...: each applied by its own `mount(2)` after the mount.
    pub(crate) propagation: Vec<MsFlags>,
    /// Everything else, passed to the filesystem (`mode=755,size=64k`).
    pub(crate) data: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            flags: MsFlags::empty(),
            attrs: Attrs::default(),
            rec_attrs: Attrs::default(),
            propagation: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl MountOptions {
    /// Whether this is a bind mount (`bind` or `rbind`).
    pub(crate) fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// Data string for `mount(2)`, `None` when empty.
    pub(crate) fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// Map a propagation word to its flags (also used for `rootfsPropagation`).
pub(crate) fn propagation_flags(word: &str) -> Option<MsFlags> {
    Some(match word {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// `(name, sets the flag?, flag, matching mount_setattr bit or 0)`.
const FLAGS: &[(&str, bool, MsFlags, u64)] = &[
    ("defaults", false, MsFlags::empty(), 0),
    ("ro", true, MsFlags::MS_RDONLY, attr::RDONLY),
    ("rw", false, MsFlags::MS_RDONLY, attr::RDONLY),
    ("nosuid", true, MsFlags::MS_NOSUID, attr::NOSUID),
    ("suid", false, MsFlags::MS_NOSUID, attr::NOSUID),
    ("nodev", true, MsFlags::MS_NODEV, attr::NODEV),
    ("dev", false, MsFlags::MS_NODEV, attr::NODEV),
    ("noexec", true, MsFlags::MS_NOEXEC, attr::NOEXEC),
    ("exec", false, MsFlags::MS_NOEXEC, attr::NOEXEC),
    ("sync", true, MsFlags::MS_SYNCHRONOUS, 0),
    ("async", false, MsFlags::MS_SYNCHRONOUS, 0),
    ("dirsync", true, MsFlags::MS_DIRSYNC, 0),
    ("mand", true, MsFlags::MS_MANDLOCK, 0),
    ("nomand", false, MsFlags::MS_MANDLOCK, 0),
    ("noatime", true, MsFlags::MS_NOATIME, attr::NOATIME),
    ("atime", false, MsFlags::MS_NOATIME, attr::NOATIME),
    ("nodiratime", true, MsFlags::MS_NODIRATIME, attr::NODIRATIME),
    ("diratime", false, MsFlags::MS_NODIRATIME, attr::NODIRATIME),
    ("relatime", true, MsFlags::MS_RELATIME, attr::RELATIME),
    ("norelatime", false, MsFlags::MS_RELATIME, attr::RELATIME),
    (
        "strictatime",
        true,
        MsFlags::MS_STRICTATIME,
        attr::STRICTATIME,
    ),
    (
        "nostrictatime",
        false,
        MsFlags::MS_STRICTATIME,
        attr::STRICTATIME,
    ),
    ("lazytime", true, MsFlags::MS_LAZYTIME, 0),
    ("nolazytime", false, MsFlags::MS_LAZYTIME, 0),
    ("silent", true, MsFlags::MS_SILENT, 0),
    ("loud", false, MsFlags::MS_SILENT, 0),
];

/// Recursive variants (`rro`, ...), applied with `mount_setattr(AT_RECURSIVE)`.
const REC_ATTRS: &[(&str, bool, u64)] = &[
    ("rro", true, attr::RDONLY),
    ("rrw", false, attr::RDONLY),
    ("rnosuid", true, attr::NOSUID),
    ("rsuid", false, attr::NOSUID),
    ("rnodev", true, attr::NODEV),
    ("rdev", false, attr::NODEV),
    ("rnoexec", true, attr::NOEXEC),
    ("rexec", false, attr::NOEXEC),
    ("rnodiratime", true, attr::NODIRATIME),
    ("rdiratime", false, attr::NODIRATIME),
    ("rnoatime", true, attr::NOATIME),
    ("ratime", false, attr::NOATIME),
    ("rrelatime", true, attr::RELATIME),
    ("rnorelatime", false, attr::RELATIME),
    ("rstrictatime", true, attr::STRICTATIME),
    ("rnostrictatime", false, attr::STRICTATIME),
];

/// Options that are instructions to a runtime, not to the kernel: never passed as data.
const RUNTIME_ONLY: &[&str] = &["tmpcopyup", "copy-symlink", "notmpcopyup"];

/// Parse one mount entry's options.
pub(crate) fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    for opt in options {
        let opt = opt.as_str();
        if opt == "bind" {
            out.flags |= MsFlags::MS_BIND;
        } else if opt == "rbind" {
            out.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
        } else if let Some(&(_, set, flag, bit)) = FLAGS.iter().find(|f| f.0 == opt) {
            if set {
                if flag.intersects(
                    MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME,
                ) {
                    out.flags.remove(
                        MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME,
                    );
                }
                out.flags |= flag;
            } else {
                out.flags.remove(flag);
            }
            if bit != 0 || flag == MsFlags::MS_RELATIME {
                out.attrs.apply(set, bit);
            }
        } else if let Some(&(_, set, bit)) = REC_ATTRS.iter().find(|f| f.0 == opt) {
            out.rec_attrs.apply(set, bit);
        } else if let Some(p) = propagation_flags(opt) {
            out.propagation.push(p);
        } else if RUNTIME_ONLY.contains(&opt) || opt.starts_with("x-") {
            // Hints for other tools (fstab's x-*), not the kernel.
        } else {
            out.data.push(opt.to_string());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_flags_data_and_propagation() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.attrs.set, attr::NOSUID | attr::STRICTATIME);
        assert_eq!(o.attrs.clr, attr::ATIME_MASK);
        assert!(!o.is_bind());
    }

    #[test]
    fn bind_ro_and_later_options_win() {
        let o = p(&["rbind", "ro", "rw", "ro", "rro", "x-foo", "tmpcopyup"]);
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.attrs.set, attr::RDONLY);
        assert_eq!(o.rec_attrs.set, attr::RDONLY);
        assert!(o.data.is_empty());
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(
            o.attrs,
            Attrs {
                set: 0,
                clr: attr::RDONLY
            }
        );
    }

    #[test]
    fn relatime_sets_the_atime_field() {
        let o = p(&["noatime", "relatime"]);
        assert_eq!(o.flags, MsFlags::MS_RELATIME);
        assert_eq!(
            o.attrs,
            Attrs {
                set: attr::RELATIME,
                clr: attr::ATIME_MASK
            }
        );
    }
}
