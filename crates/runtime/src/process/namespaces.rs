//! Which namespaces the spec creates and which it joins, the parent-side pid-namespace join,
//! and uid/gid maps.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

/// Errors entering namespaces.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// A namespace path could not be opened.
    #[error("opening namespace {path}")]
    Open {
        /// The path from the spec.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// setns failed.
    #[error("joining {what} namespace")]
    Setns {
        /// Which namespace.
        what: String,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// unshare failed.
    #[error("unsharing {what} namespace")]
    Unshare {
        /// Which namespace.
        what: &'static str,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Writing an id map failed.
    #[error("writing {file} of pid {pid}")]
    IdMap {
        /// uid_map, gid_map or setgroups.
        file: &'static str,
        /// The child.
        pid: i32,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// A combination the runtime does not support.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// The namespace plan derived from the spec.
#[derive(Debug, Default)]
pub struct Plan {
    /// CLONE_NEW* flags for clone3 (without CLONE_NEWCGROUP, unshared after cgroup placement).
    pub clone_flags: u64,
    /// A new cgroup namespace is wanted (unshare in the child after it is in its cgroup).
    pub new_cgroup_ns: bool,
    /// Namespaces to join by path, user namespace first: (type, opened fd).
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// A pid namespace to join (set as the parent's pid_for_children around clone).
    pub join_pid: Option<OwnedFd>,
    /// A new user namespace is created (the parent writes the id maps).
    pub new_user_ns: bool,
    /// A new pid namespace is created.
    pub new_pid_ns: bool,
}

fn flag(t: LinuxNamespaceType) -> u64 {
    t as u64
}

/// Build the plan, opening every path now (before any process exists).
pub fn plan(spec: &Spec) -> Result<Plan, NamespaceError> {
    let mut p = Plan::default();
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut joins = Vec::new();
    for ns in &nss {
        match ns.path() {
            None => match ns.typ() {
                LinuxNamespaceType::Cgroup => p.new_cgroup_ns = true,
                t => {
                    p.clone_flags |= flag(t);
                    if t == LinuxNamespaceType::User {
                        p.new_user_ns = true;
                    }
                    if t == LinuxNamespaceType::Pid {
                        p.new_pid_ns = true;
                    }
                }
            },
            Some(path) => {
                let f = File::open(path).map_err(|source| NamespaceError::Open {
                    path: path.clone(),
                    source,
                })?;
                if ns.typ() == LinuxNamespaceType::Pid {
                    p.join_pid = Some(f.into());
                } else {
                    joins.push((ns.typ(), OwnedFd::from(f)));
                }
            }
        }
    }
    joins.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    let joins_user = joins
        .first()
        .is_some_and(|(t, _)| *t == LinuxNamespaceType::User);
    if joins_user && p.clone_flags != 0 {
        return Err(NamespaceError::Unsupported(
            "joining a user namespace by path while creating other namespaces is not supported",
        ));
    }
    p.join = joins;
    Ok(p)
}

/// In the child: join the namespaces given by path (user first).
pub fn join_paths(plan: &Plan) -> Result<(), NamespaceError> {
    for (t, fd) in &plan.join {
        nix::sched::setns(fd.as_fd(), CloneFlags::from_bits_retain(flag(*t) as i32)).map_err(
            |e| NamespaceError::Setns {
                what: t.to_string(),
                source: e.into(),
            },
        )?;
    }
    Ok(())
}

/// In the child, after it was placed in its cgroup: a new cgroup namespace rooted there.
pub fn unshare_cgroup(plan: &Plan) -> Result<(), NamespaceError> {
    if plan.new_cgroup_ns {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| NamespaceError::Unshare {
            what: "cgroup",
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Sets the caller's pid namespace for children and restores it on drop, so the next clone
/// lands in a joined pid namespace while the caller itself stays where it is.
pub struct PidForChildren {
    saved: Option<OwnedFd>,
}

impl PidForChildren {
    /// Enter `ns` (a pid namespace fd or a pidfd) for children.
    pub fn enter(ns: &impl AsFd) -> Result<Self, NamespaceError> {
        let saved = File::open("/proc/self/ns/pid_for_children").map_err(|source| {
            NamespaceError::Open {
                path: "/proc/self/ns/pid_for_children".into(),
                source,
            }
        })?;
        nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWPID).map_err(|e| {
            NamespaceError::Setns {
                what: "pid".into(),
                source: e.into(),
            }
        })?;
        Ok(Self {
            saved: Some(saved.into()),
        })
    }
}

impl Drop for PidForChildren {
    fn drop(&mut self) {
        if let Some(fd) = self.saved.take() {
            let _ = nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWPID);
        }
    }
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_proc(pid: i32, file: &'static str, text: &str) -> Result<(), NamespaceError> {
    let err = |source| NamespaceError::IdMap { file, pid, source };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/{file}"))
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// In the parent: write the child's uid_map and gid_map (single write each, as the kernel
/// requires). We are root in the parent user namespace, so no newuidmap helper is needed and
/// setgroups stays allowed unless the maps do not cover the caller.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<(), NamespaceError> {
    let linux = spec.linux().as_ref();
    let uids = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gids = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if uids.is_empty() || gids.is_empty() {
        return Err(NamespaceError::Unsupported(
            "a new user namespace needs linux.uidMappings and linux.gidMappings",
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        write_proc(pid, "setgroups", "deny")?;
    }
    write_proc(pid, "uid_map", &map_text(&uids))?;
    write_proc(pid, "gid_map", &map_text(&gids))
}

/// Inode numbers of the namespaces `pid` is in that differ from ours, as CLONE_NEW* flags
/// (for exec: which ones to join).
pub fn differing(pid: i32) -> u64 {
    let kinds: [(&str, u64); 7] = [
        ("user", libc::CLONE_NEWUSER as u64),
        ("mnt", libc::CLONE_NEWNS as u64),
        ("uts", libc::CLONE_NEWUTS as u64),
        ("ipc", libc::CLONE_NEWIPC as u64),
        ("net", libc::CLONE_NEWNET as u64),
        ("cgroup", libc::CLONE_NEWCGROUP as u64),
        ("pid", libc::CLONE_NEWPID as u64),
    ];
    let mut flags = 0;
    for (name, f) in kinds {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}"));
        if let (Ok(a), Ok(b)) = (theirs, ours)
            && a != b
        {
            flags |= f;
        }
    }
    flags
}

/// `setns(pidfd, flags)`: join several namespaces of a process at once.
pub fn setns_pidfd(pidfd: &impl AsRawFd, flags: u64) -> Result<(), NamespaceError> {
    if flags == 0 {
        return Ok(());
    }
    // SAFETY: setns with a valid fd and flags; no memory is passed.
    let r = unsafe { libc::setns(pidfd.as_raw_fd(), flags as i32) };
    if r != 0 {
        return Err(NamespaceError::Setns {
            what: format!("{flags:#x} (via pidfd)"),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}
