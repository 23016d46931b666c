//! cgroup v2 (unified hosts): one dir; controllers enabled top-down via `cgroup.subtree_control`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::detect::{join_cgroup, validate_path};
use super::{CgroupError, CgroupManager, CgroupStats, fs, stats, v2_resources};

/// A container cgroup in a cgroup2 tree.
#[derive(Debug, Clone)]
pub struct V2Manager {
    path: String,
    root: PathBuf,
    dir: PathBuf,
}

impl V2Manager {
    /// A manager for `path` in the cgroup2 tree mounted at `mount_root` (e.g. `/sys/fs/cgroup`,
    /// or a private mount in tests). A relative `path` is placed under the caller's own cgroup
    /// (from /proc/self/cgroup, assuming the mount shows the whole tree).
    pub fn new(mount_root: &Path, path: &str) -> Result<Self, CgroupError> {
        validate_path(path)?;
        let dir = if path.starts_with('/') {
            join_cgroup(mount_root, path)
        } else {
            let own = super::own_cgroups()?;
            let base = own
                .iter()
                .find(|p| p.id == 0 && p.controllers.is_empty())
                .ok_or_else(|| CgroupError::OwnCgroupMissing("cgroup2".into()))?;
            join_cgroup(&join_cgroup(mount_root, &base.path), path)
        };
        Ok(Self::with_dir(path, mount_root, dir))
    }

    /// A manager over an already resolved dir under `mount_root`.
    pub fn with_dir(path: &str, mount_root: &Path, dir: PathBuf) -> Self {
        V2Manager {
            path: path.to_owned(),
            root: mount_root.to_path_buf(),
            dir,
        }
    }

    /// The container's cgroup dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn create(&self) -> Result<(), CgroupError> {
        validate_path(&self.path)?;
        create_tree(&self.root, &self.dir)
    }

    fn frozen_event(&self) -> Result<Option<bool>, CgroupError> {
        let events = fs::read_file(&self.dir, "cgroup.events")?;
        Ok(events
            .lines()
            .find_map(|l| l.strip_prefix("frozen "))
            .map(|v| v.trim() == "1"))
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        if fs::read_optional(&self.dir, "cgroup.freeze")?.is_none() {
            return Err(CgroupError::Unsupported {
                what: "freeze".into(),
                why: format!(
                    "{} is missing (kernel < 5.2?)",
                    self.dir.join("cgroup.freeze").display()
                ),
            });
        }
        let (value, state) = if frozen {
            ("1", "frozen")
        } else {
            ("0", "thawed")
        };
        fs::write_file(&self.dir, "cgroup.freeze", value)?;
        fs::wait_for_state(
            &self.dir,
            state,
            || Ok(self.frozen_event()? == Some(frozen)),
        )
    }
}

/// Create `dir` under the cgroup2 mount `root`, enabling in each ancestor's
/// `cgroup.subtree_control` every controller that ancestor has. Best effort per controller: a
/// parent holding processes (the "no internal processes" rule) or an RT task (cpu) refuses
/// some; `set` then names the missing file if the spec needs it.
pub(crate) fn create_tree(root: &Path, dir: &Path) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(root).map_err(|_| CgroupError::Invalid {
        what: "cgroup dir".into(),
        why: format!("{} is not under {}", dir.display(), root.display()),
    })?;
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        enable_controllers(&cur);
        cur.push(part);
        fs::create_dir_all(&cur)?;
    }
    Ok(())
}

/// Enable in `dir` every controller it has but does not yet pass down; failures are ignored
/// (see [`create_tree`]).
fn enable_controllers(dir: &Path) {
    let Ok(Some(avail)) = fs::read_optional(dir, "cgroup.controllers") else {
        return;
    };
    let enabled = fs::read_optional(dir, "cgroup.subtree_control")
        .ok()
        .flatten()
        .unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for c in avail.split_whitespace().filter(|c| !enabled.contains(c)) {
        let _ = fs::write_file(dir, "cgroup.subtree_control", &format!("+{c}"));
    }
}

impl CgroupManager for V2Manager {
    fn path(&self) -> &str {
        &self.path
    }

    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        self.create()?;
        fs::attach(&self.dir, pid)
    }

    fn create_dirs(&self) -> Result<(), CgroupError> {
        self.create()
    }

    fn self_join(&self) -> super::SelfJoin {
        super::SelfJoin {
            clone_into: Some(self.dir.clone()),
            tasks: Vec::new(),
        }
    }

    fn set(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        v2_resources::set(&self.dir, resources)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::read_procs_recursive(&self.dir)
    }

    fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        // cgroup.kill (5.14+) kills atomically, forks included, but only with SIGKILL.
        if signal == libc::SIGKILL && self.dir.join("cgroup.kill").exists() {
            return fs::write_file(&self.dir, "cgroup.kill", "1");
        }
        // Freeze first so nothing forks a task we would miss; a paused container stays paused
        // (v2 lets fatal signals through the freezer).
        let was_frozen = self.is_frozen()?;
        self.freeze()?;
        let res = self.pids().and_then(|p| fs::signal_all(&p, signal));
        if was_frozen {
            return res;
        }
        let thawed = self.thaw();
        res?;
        thawed
    }

    fn stats(&self) -> Result<CgroupStats, CgroupError> {
        stats::v2(&self.dir)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        fs::remove_dir(&self.dir).map_err(|e| CgroupError::Destroy(vec![e]))
    }

    fn exists(&self) -> bool {
        self.dir.exists()
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        if !self.dir.exists() {
            return Ok(false);
        }
        Ok(fs::read_optional(&self.dir, "cgroup.freeze")?.is_some_and(|v| v.trim() == "1"))
    }
}
