//! `/proc/self/mountinfo`, parsed: which mount holds the rootfs (to make it private), where the
//! host mounted its cgroup hierarchies, and (in tests) propagation of a mount.

use std::io;
use std::path::{Path, PathBuf};

/// One line of mountinfo (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Mount id.
    pub id: u32,
    /// Root of the mount within its filesystem (for binds and cgroup namespaces).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,...`).
    pub options: String,
    /// Optional fields: `shared:N`, `master:N`, `unbindable`, ...
    pub optional: Vec<String>,
    /// Filesystem type.
    pub fstype: String,
    /// Mount source.
    pub source: String,
    /// Superblock options.
    pub super_options: String,
}

impl MountInfo {
    /// Whether the mount is in a shared peer group.
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }

    /// Whether the mount receives propagation from a master.
    pub fn is_slave(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("master:"))
    }

    /// Whether a per-mount option (`ro`, `nosuid`, ...) is set.
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }
}

/// Undo mountinfo's octal escapes (`\040` for space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (pre, post) = line.split_once(" - ")?;
    let mut f = pre.split(' ');
    let id = f.next()?.parse().ok()?;
    let _parent = f.next()?;
    let _dev = f.next()?;
    let root = PathBuf::from(unescape(f.next()?));
    let mount_point = PathBuf::from(unescape(f.next()?));
    let options = f.next()?.to_string();
    let optional = f.filter(|s| !s.is_empty()).map(str::to_string).collect();
    let mut g = post.splitn(3, ' ');
    let fstype = g.next()?.to_string();
    let source = unescape(g.next()?);
    let super_options = g.next().unwrap_or("").to_string();
    Some(MountInfo {
        id,
        root,
        mount_point,
        options,
        optional,
        fstype,
        source,
        super_options,
    })
}

/// The calling process's mount table.
pub fn read_self() -> io::Result<Vec<MountInfo>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The mount that `path` (canonical) lives on: the last-mounted entry with the longest mount
/// point that is a prefix of `path`.
pub fn mount_of<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    let mut best: Option<&MountInfo> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point)
            && best
                .is_none_or(|b| m.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len())
        {
            best = Some(m);
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    30 22 0:26 /a\\040b /sys/fs/cgroup/cpu rw,nosuid master:7 - cgroup cgroup rw,cpu\n\
                    garbage\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert!(m[0].is_shared());
        assert_eq!(m[1].root, PathBuf::from("/a b"));
        assert!(m[1].is_slave() && m[1].has_option("nosuid"));
        assert_eq!(m[1].super_options, "rw,cpu");
        assert_eq!(
            mount_of(&m, Path::new("/sys/fs/cgroup/cpu/x")).map(|m| m.id),
            Some(30)
        );
        assert_eq!(mount_of(&m, Path::new("/work")).map(|m| m.id), Some(22));
    }
}
