//! The library API, used in-process by `berth-shim` and by the `berth-runtime` CLI alike.
//!
//! One file per lifecycle verb. The init created by [`create`] is a direct child of the caller
//! and waits for [`Container::start`]; everything else works from the state dir, so a
//! different process (another CLI invocation, a restarted shim) can pick the container up with
//! [`load`].
//!
//! How `berth-shim` uses it (single-threaded, sealed with [`crate::seal::ensure_sealed`] at
//! start, since the init is a clone of the caller):
//!
//! ```no_run
//! # fn main() -> Result<(), berth_runtime::RuntimeError> {
//! use berth_runtime::container::{self, CreateOptions};
//! # let (stdin, stdout, stderr): (std::os::fd::OwnedFd, std::os::fd::OwnedFd, std::os::fd::OwnedFd) = todo!();
//! let mut c = container::create(CreateOptions {
//!     id: "web".into(),
//!     bundle: "/var/lib/berth/containers/web/bundle".into(),
//!     root: "/run/berth/runtime".into(),
//!     console_socket: None,
//!     pid_file: None,
//!     no_pivot: false,
//!     stdio: Some([stdin, stdout, stderr]),
//!     preserve_fds: 0,
//! })?;
//! c.start()?; // returns once the user process has exec'd
//! let code = container::wait_status(c.pid())?; // the init is our child; 128+signal if killed
//! container::delete(std::path::Path::new("/run/berth/runtime"), "web", false)?;
//! # let _ = code; Ok(()) }
//! ```

mod create;
mod delete;
mod exec;
mod ops;
mod resources;
mod start;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use create::{CreateOptions, create};
pub use delete::delete;
pub use exec::{ExecOptions, ExecProcess, exec, wait_status};
pub use ops::{kill, list, pause, ps, resume};

use crate::RuntimeError;
use crate::cgroups::{self, CgroupManager};
use crate::state::{self, Record, State, StateDir, Status};

/// A container known to the state dir.
#[derive(Debug)]
pub struct Container {
    dir: StateDir,
    record: Record,
    pidfd: Option<OwnedFd>,
}

impl Container {
    /// Container id.
    pub fn id(&self) -> &str {
        self.dir.id()
    }

    /// Host pid of the init.
    pub fn pid(&self) -> i32 {
        self.record.state.pid
    }

    /// A pidfd on the init when this process created it (race-free signalling and waiting).
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// runc's state with the live status.
    pub fn state(&self) -> State {
        state::live_state(&self.dir, &self.record)
    }

    /// The live status.
    pub fn status(&self) -> Status {
        state::live_status(&self.dir, &self.record)
    }

    /// The state dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The spec the container was created with (stored in the state dir).
    pub fn spec(&self) -> Result<Spec, RuntimeError> {
        stored_spec(&self.dir)
    }

    /// The stored record (runc fields plus berth's).
    pub fn record(&self) -> &Record {
        &self.record
    }
}

/// Load a container from `<root>/<id>`.
pub fn load(root: &Path, id: &str) -> Result<Container, RuntimeError> {
    let dir = StateDir::open(root, id)?;
    let record = dir.read_record()?;
    Ok(Container {
        dir,
        record,
        pidfd: None,
    })
}

/// The cgroup path for a spec: `linux.cgroupsPath`, or `/berth/<id>`.
pub fn cgroup_path(spec: &Spec, id: &str) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| format!("/berth/{id}"))
}

/// The spec stored in the state dir at create time.
pub(crate) fn stored_spec(dir: &StateDir) -> Result<Spec, RuntimeError> {
    let path = dir.path().join(state::CONFIG_FILE);
    let bytes = std::fs::read(&path)
        .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e))?;
    Ok(crate::spec::parse(&path, &bytes)?)
}

/// The cgroup manager for a record (always present; `Option` keeps callers ready for a
/// cgroup-less mode).
pub(crate) fn manager(path: &str) -> Result<Option<Box<dyn CgroupManager>>, RuntimeError> {
    Ok(Some(cgroups::manager(path)?))
}

/// Write a pid file atomically.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    let abs: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| RuntimeError::io("resolving --pid-file", e))?
            .join(path)
    };
    state::write_atomic(&abs, pid.to_string().as_bytes())
        .map_err(|e| RuntimeError::io(format!("writing pid file {}", abs.display()), e))
}

/// State JSON for hooks with the status the runtime-spec prescribes at that point.
pub(crate) fn hook_state(record: &Record, status: Status) -> String {
    let mut s = record.state.clone();
    s.status = status;
    serde_json::to_string(&s).unwrap_or_default()
}
