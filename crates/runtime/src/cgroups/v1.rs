//! cgroup v1 (legacy and hybrid hosts): one dir per mounted hierarchy, plus the cgroup2 dir in
//! hybrid mode (joined only, it has no controllers there).

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::detect::{CgroupLayout, ProcCgroup, resolve_dir, validate_path};
use super::{CgroupError, CgroupManager, CgroupStats, fs, stats, v1_resources};

/// The container's dir in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Dir {
    /// The hierarchy's controllers (e.g. `["cpu","cpuacct"]`, `["name=systemd"]`).
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted (cpuset parents are initialised from here down).
    pub mount_point: PathBuf,
    /// The container's dir.
    pub dir: PathBuf,
}

/// A container cgroup on v1 hierarchies.
#[derive(Debug, Clone)]
pub struct V1Manager {
    path: String,
    dirs: Vec<V1Dir>,
    unified: Option<V1Dir>,
}

impl V1Manager {
    /// A manager for `path` on the host's hierarchies (from /proc/self/mountinfo).
    pub fn new(path: &str) -> Result<Self, CgroupError> {
        let layout = super::detect()?;
        let own = super::own_cgroups()?;
        Self::from_layout(path, &layout, &own)
    }

    /// A manager for `path` on the given layout; `own` is the caller's /proc/self/cgroup, used
    /// for relative paths.
    pub fn from_layout(
        path: &str,
        layout: &CgroupLayout,
        own: &[ProcCgroup],
    ) -> Result<Self, CgroupError> {
        let dirs = layout
            .v1
            .iter()
            .map(|h| {
                Ok(V1Dir {
                    controllers: h.controllers.clone(),
                    mount_point: h.mount_point.clone(),
                    dir: resolve_dir(h, path, own)?,
                })
            })
            .collect::<Result<Vec<_>, CgroupError>>()?;
        let unified = match &layout.unified {
            Some(u) => Some(V1Dir {
                controllers: Vec::new(),
                mount_point: u.mount_point.clone(),
                dir: resolve_dir(u, path, own)?,
            }),
            None => None,
        };
        Ok(Self::with_dirs(path, dirs, unified))
    }

    /// A manager over explicit dirs (tests, private hierarchies). `unified` is the cgroup2 dir
    /// to join in hybrid mode (its `controllers` empty).
    pub fn with_dirs(path: &str, dirs: Vec<V1Dir>, unified: Option<V1Dir>) -> Self {
        V1Manager {
            path: path.to_owned(),
            dirs,
            unified,
        }
    }

    /// The container's dir in the hierarchy carrying `controller`, if mounted.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.dir.as_path())
    }

    /// Every dir this manager owns (v1 hierarchies, then the unified one).
    pub fn all_dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs
            .iter()
            .map(|d| d.dir.as_path())
            .chain(self.unified_dir())
    }

    /// The container's dir in the hybrid cgroup2 tree, if there is one.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.dir.as_path())
    }

    /// The dir whose `cgroup.procs` lists the container's tasks.
    fn procs_dir(&self) -> Option<&Path> {
        self.dir("freezer")
            .or_else(|| self.dir("pids"))
            .or_else(|| self.dirs.first().map(|d| d.dir.as_path()))
            .or(self.unified_dir())
    }

    fn create(&self) -> Result<(), CgroupError> {
        validate_path(&self.path)?;
        for d in &self.dirs {
            if d.controllers.iter().any(|c| c == "cpuset") {
                create_cpuset(&d.mount_point, &d.dir)?;
            } else {
                fs::create_dir_all(&d.dir)?;
            }
        }
        if let Some(u) = &self.unified {
            // Hybrid host: the cgroup2 side only tracks membership. Enabling controllers in its
            // subtree_control (as v2::create_tree would) makes crun/podman on the same host
            // refuse to run ("cgroups in hybrid mode not supported"), so never do it here.
            fs::create_dir_all(&u.dir)?;
        }
        Ok(())
    }

    fn freezer_state(dir: &Path) -> Result<String, CgroupError> {
        Ok(fs::read_file(dir, "freezer.state")?.trim().to_owned())
    }

    fn set_freezer(&self, target: &str) -> Result<(), CgroupError> {
        let Some(dir) = self.dir("freezer") else {
            return Err(CgroupError::Unsupported {
                what: "freeze".into(),
                why: "no v1 freezer hierarchy is mounted".into(),
            });
        };
        fs::wait_for_state(dir, target, || {
            fs::write_file(dir, "freezer.state", target)?;
            Ok(Self::freezer_state(dir)? == target)
        })
    }
}

/// Create `dir` under a cpuset hierarchy, giving each new level its parent's cpus and mems
/// (with `clone_children=0` a new cpuset is empty and refuses tasks with ENOSPC).
fn create_cpuset(mount_point: &Path, dir: &Path) -> Result<(), CgroupError> {
    let rel = dir
        .strip_prefix(mount_point)
        .map_err(|_| CgroupError::Invalid {
            what: "cpuset dir".into(),
            why: format!("{} is not under {}", dir.display(), mount_point.display()),
        })?;
    let mut parent = mount_point.to_path_buf();
    for part in rel.components() {
        let cur = parent.join(part);
        fs::create_dir_all(&cur)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read_file(&cur, file)?;
            if mine.trim().is_empty() {
                let theirs = fs::read_file(&parent, file)?;
                fs::write_file(&cur, file, theirs.trim())?;
            }
        }
        parent = cur;
    }
    Ok(())
}

impl CgroupManager for V1Manager {
    fn path(&self) -> &str {
        &self.path
    }

    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        self.create()?;
        for d in self.all_dirs() {
            fs::attach(d, pid)?;
        }
        Ok(())
    }

    fn create_dirs(&self) -> Result<(), CgroupError> {
        self.create()
    }

    fn self_join(&self) -> super::SelfJoin {
        super::SelfJoin {
            clone_into: self.unified_dir().map(Path::to_path_buf),
            tasks: self.dirs.iter().map(|d| d.dir.join("tasks")).collect(),
        }
    }

    fn set(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        v1_resources::set(self, resources)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_freezer("FROZEN")
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_freezer("THAWED")
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match self.procs_dir() {
            Some(d) => fs::read_procs_recursive(d),
            None => Ok(Vec::new()),
        }
    }

    fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        if self.dir("freezer").is_none() {
            return self.pids().and_then(|p| fs::signal_all(&p, signal));
        }
        // Freeze first so nothing forks a task we would miss. A paused container stays paused,
        // unless the signal is SIGKILL: frozen v1 tasks only die once thawed.
        let was_frozen = self.is_frozen()?;
        self.freeze()?;
        let res = self.pids().and_then(|p| fs::signal_all(&p, signal));
        if !was_frozen || signal == libc::SIGKILL {
            let thawed = self.thaw();
            res?;
            thawed
        } else {
            res
        }
    }

    fn stats(&self) -> Result<CgroupStats, CgroupError> {
        stats::v1(self)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let errors: Vec<CgroupError> = self
            .all_dirs()
            .filter_map(|d| fs::remove_dir(d).err())
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CgroupError::Destroy(errors))
        }
    }

    fn exists(&self) -> bool {
        self.all_dirs().any(Path::exists)
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.dir("freezer") {
            Some(d) if d.exists() => Ok(Self::freezer_state(d)? != "THAWED"),
            _ => Ok(false),
        }
    }
}
