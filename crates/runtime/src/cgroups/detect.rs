//! Which cgroup layout the host has, read from `/proc/self/mountinfo`, and where the calling
//! process sits in it, read from `/proc/self/cgroup`.
//!
//! The parsers take text, not paths, so they are unit-tested on fixture strings; [`detect`] and
//! [`own_cgroups`] are the thin wrappers that read the real files.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup v1 hierarchies are mounted.
    Legacy,
    /// cgroup v1 hierarchies plus a (usually controller-less) cgroup2 tree, e.g. at
    /// `/sys/fs/cgroup/unified`. Resources are v1; the cgroup2 dir is only joined.
    Hybrid,
    /// A single cgroup2 tree (normally at `/sys/fs/cgroup`) carries every controller.
    Unified,
}

/// One mounted cgroup hierarchy (a v1 hierarchy or the cgroup2 tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1 controllers bound to this hierarchy (e.g. `["cpu", "cpuacct"]`, `["name=systemd"]`);
    /// empty for cgroup2.
    pub controllers: Vec<String>,
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy is mounted there (mountinfo's root field, `/` on the host,
    /// something else inside a container without a cgroup namespace).
    pub root: String,
}

impl Hierarchy {
    /// Whether this v1 hierarchy carries `controller` (`"memory"`, `"name=systemd"`).
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The filesystem dir of cgroup `cgroup` (a path relative to the hierarchy root, as in
    /// `/proc/<pid>/cgroup`), accounting for a mount whose root is not the hierarchy root.
    pub fn dir_of(&self, cgroup: &str) -> PathBuf {
        let rel = cgroup
            .strip_prefix(self.root.trim_end_matches('/'))
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .unwrap_or(cgroup);
        join_cgroup(&self.mount_point, rel)
    }
}

/// Every cgroup mount that matters, as found in mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    /// Legacy, hybrid or unified.
    pub mode: CgroupMode,
    /// The v1 hierarchies, one per controller set (first mount wins); empty when unified.
    pub v1: Vec<Hierarchy>,
    /// The cgroup2 tree, if mounted.
    pub unified: Option<Hierarchy>,
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id (0 for cgroup2).
    pub id: u32,
    /// Controllers of the hierarchy (empty for cgroup2).
    pub controllers: Vec<String>,
    /// The cgroup path, relative to the hierarchy root.
    pub path: String,
}

/// v1 controller names the kernel knows; anything else in a cgroup mount's options is a mount
/// option (`rw`, `clone_children`, `release_agent=...`).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "pids",
    "hugetlb",
    "rdma",
    "misc",
];

/// Join a cgroup path (`/a/b` or `a/b`) onto a dir, never escaping it.
pub(crate) fn join_cgroup(base: &Path, cgroup: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    for part in cgroup.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push(part);
    }
    out
}

/// Undo mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(oct) = bytes.get(i + 1..i + 4)
            && oct.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = oct
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text into the cgroup layout.
pub fn parse_mountinfo(text: &str) -> Result<CgroupLayout, CgroupError> {
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut unified: Option<Hierarchy> = None;
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            return Err(CgroupError::Parse {
                path: PathBuf::from("/proc/self/mountinfo"),
                detail: format!("malformed line {line:?}"),
            });
        }
        let root = unescape(left[3]);
        let mount_point = PathBuf::from(unescape(left[4]));
        match right[0] {
            "cgroup2" => {
                // Prefer the canonical location if the tree is mounted several times.
                let better = unified.as_ref().is_none_or(|u| {
                    u.mount_point != Path::new("/sys/fs/cgroup")
                        && mount_point == Path::new("/sys/fs/cgroup")
                });
                if better {
                    unified = Some(Hierarchy {
                        controllers: Vec::new(),
                        mount_point,
                        root,
                    });
                }
            }
            "cgroup" => {
                let mut controllers: Vec<String> = right[2]
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_owned)
                    .collect();
                controllers.sort();
                if controllers.is_empty() || v1.iter().any(|h| h.controllers == controllers) {
                    continue;
                }
                v1.push(Hierarchy {
                    controllers,
                    mount_point,
                    root,
                });
            }
            _ => {}
        }
    }
    let mode = match (v1.is_empty(), &unified) {
        (true, Some(_)) => CgroupMode::Unified,
        (true, None) => return Err(CgroupError::NoCgroupFs),
        (false, Some(u)) if u.mount_point == Path::new("/sys/fs/cgroup") => {
            // cgroup2 owns the canonical place: the v1 mounts are leftovers, use v2.
            v1.clear();
            CgroupMode::Unified
        }
        (false, Some(_)) => CgroupMode::Hybrid,
        (false, None) => CgroupMode::Legacy,
    };
    Ok(CgroupLayout { mode, v1, unified })
}

/// Parse `/proc/<pid>/cgroup` text.
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, CgroupError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CgroupError::Parse {
                path: PathBuf::from("/proc/self/cgroup"),
                detail: format!("malformed line {line:?}"),
            });
        };
        let id = id.parse().map_err(|_| CgroupError::Parse {
            path: PathBuf::from("/proc/self/cgroup"),
            detail: format!("bad hierarchy id in {line:?}"),
        })?;
        let mut controllers: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        controllers.sort();
        out.push(ProcCgroup {
            id,
            controllers,
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// The calling process's cgroup in `hierarchy`, from parsed `/proc/self/cgroup` lines.
pub fn own_cgroup_in<'a>(own: &'a [ProcCgroup], hierarchy: &Hierarchy) -> Option<&'a str> {
    own.iter()
        .find(|p| {
            if hierarchy.controllers.is_empty() {
                p.id == 0 && p.controllers.is_empty()
            } else {
                p.controllers == hierarchy.controllers
            }
        })
        .map(|p| p.path.as_str())
}

/// Resolve a container cgroup path to its dir in `hierarchy`: an absolute path is relative to
/// the hierarchy's mount (as runc does), a relative one to the caller's own cgroup there.
pub fn resolve_dir(
    hierarchy: &Hierarchy,
    path: &str,
    own: &[ProcCgroup],
) -> Result<PathBuf, CgroupError> {
    validate_path(path)?;
    if path.starts_with('/') {
        return Ok(join_cgroup(&hierarchy.mount_point, path));
    }
    let name = if hierarchy.controllers.is_empty() {
        "cgroup2".to_owned()
    } else {
        hierarchy.controllers.join(",")
    };
    let base = own_cgroup_in(own, hierarchy).ok_or(CgroupError::OwnCgroupMissing(name))?;
    Ok(join_cgroup(&hierarchy.dir_of(base), path))
}

/// Reject `..` components: a container's cgroup path must not climb out of the hierarchy. Also
/// reject systemd-driver paths (`slice:prefix:name`), which berth does not drive.
pub(crate) fn validate_path(path: &str) -> Result<(), CgroupError> {
    if !path.contains('/') && path.matches(':').count() == 2 {
        return Err(CgroupError::Unsupported {
            what: format!("cgroup path {path:?}"),
            why: "systemd cgroup driver paths (slice:prefix:name) are not supported; \
                  use the cgroupfs driver"
                .into(),
        });
    }
    if path.split('/').any(|p| p == "..") || path.trim_matches('/').is_empty() {
        return Err(CgroupError::Invalid {
            what: "cgroup path".into(),
            why: format!("{path:?} is empty, the root, or contains '..'"),
        });
    }
    Ok(())
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: PathBuf::from(path),
        source,
    })
}

/// The host's cgroup layout, from `/proc/self/mountinfo`.
pub fn detect() -> Result<CgroupLayout, CgroupError> {
    parse_mountinfo(&read_proc("/proc/self/mountinfo")?)
}

/// The calling process's cgroups, from `/proc/self/cgroup`.
pub fn own_cgroups() -> Result<Vec<ProcCgroup>, CgroupError> {
    parse_proc_cgroup(&read_proc("/proc/self/cgroup")?)
}

/// Legacy, hybrid or unified: what `berth info` reports and what [`super::manager`] picks by.
pub fn cgroup_version() -> Result<CgroupMode, CgroupError> {
    Ok(detect()?.mode)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:39 / /sys/fs/cgroup/net_cls,net_prio rw shared:9 - cgroup cgroup rw,net_prio,net_cls
51 30 0:32 / /mnt/mem\\040copy rw - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_mountinfo() {
        let l = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(l.mode, CgroupMode::Hybrid);
        let names: Vec<String> = l.v1.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "cpuacct",
                "memory",
                "name=systemd",
                "net_cls,net_prio"
            ]
        );
        assert_eq!(
            l.unified.unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
        assert_eq!(
            l.v1[4].mount_point,
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
    }

    #[test]
    fn unified_mountinfo_and_escapes() {
        let text = "\
25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
26 1 0:23 /sub /mnt/a\\040b rw - cgroup2 cgroup2 rw
";
        let l = parse_mountinfo(text).unwrap();
        assert_eq!(l.mode, CgroupMode::Unified);
        let u = l.unified.unwrap();
        assert_eq!(u.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/x\\"), "/x\\");
    }

    #[test]
    fn legacy_and_none() {
        let l = parse_mountinfo("1 2 0:3 / /cg/memory rw - cgroup cgroup rw,memory\n").unwrap();
        assert_eq!(l.mode, CgroupMode::Legacy);
        assert!(matches!(
            parse_mountinfo("1 2 0:3 / / rw - ext4 /dev/sda rw\n"),
            Err(CgroupError::NoCgroupFs)
        ));
    }

    #[test]
    fn proc_cgroup_and_resolution() {
        let own = parse_proc_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct,cpu:/x:y\n0::/u\n",
        )
        .unwrap();
        assert_eq!(own[2].controllers, ["cpu", "cpuacct"]);
        assert_eq!(own[2].path, "/x:y");
        let mem = Hierarchy {
            controllers: vec!["memory".into()],
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
        };
        assert_eq!(
            resolve_dir(&mem, "/berth/c1", &own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/berth/c1")
        );
        assert_eq!(
            resolve_dir(&mem, "berth/c1", &own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/berth/c1")
        );
        let uni = Hierarchy {
            controllers: vec![],
            mount_point: "/cg2".into(),
            root: "/".into(),
        };
        assert_eq!(resolve_dir(&uni, "c", &own).unwrap(), Path::new("/cg2/u/c"));
        // A mount whose root is a sub-cgroup (a container without cgroupns).
        let nested = Hierarchy {
            controllers: vec!["memory".into()],
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/process_api".into(),
        };
        assert_eq!(
            resolve_dir(&nested, "c", &own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/abc/c")
        );
        assert!(resolve_dir(&mem, "/a/../../etc", &own).is_err());
        assert!(resolve_dir(&mem, "/", &own).is_err());
        assert!(matches!(
            resolve_dir(&mem, "system.slice:docker:abc", &own),
            Err(CgroupError::Unsupported { .. })
        ));
        let pids = Hierarchy {
            controllers: vec!["pids".into()],
            ..mem
        };
        assert!(matches!(
            resolve_dir(&pids, "rel", &own),
            Err(CgroupError::OwnCgroupMissing(_))
        ));
    }

    #[test]
    fn bad_proc_cgroup() {
        assert!(parse_proc_cgroup("garbage\n").is_err());
        assert!(parse_proc_cgroup("x:memory:/\n").is_err());
    }
}
