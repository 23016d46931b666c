//! The in-process backend: berth_runtime's library API. The init and exec processes are direct
//! children of the shim.

use std::path::{Path, PathBuf};

use berth_runtime::container::{self, Container, CreateOptions, ExecOptions};
use nix::sys::signal::SigHandler;

use super::{CreateRequest, ExecRequest, RuntimeError};

/// berth_runtime called in-process.
pub struct Library {
    root: PathBuf,
    container: Option<Container>,
}

/// SIGPIPE back to default while the runtime forks (an ignored disposition survives execve and
/// would reach the container); ignored again on drop.
struct DefaultSigpipe;

impl DefaultSigpipe {
    fn new() -> DefaultSigpipe {
        let _ = crate::sys::set_sigpipe(SigHandler::SigDfl);
        DefaultSigpipe
    }
}

impl Drop for DefaultSigpipe {
    fn drop(&mut self) {
        let _ = crate::sys::set_sigpipe(SigHandler::SigIgn);
    }
}

fn failed(op: &'static str, e: berth_runtime::RuntimeError) -> RuntimeError {
    RuntimeError::Library {
        op,
        source: Box::new(e),
    }
}

impl Library {
    /// The backend for containers under `root`.
    pub fn new(root: &Path) -> Library {
        Library {
            root: root.to_path_buf(),
            container: None,
        }
    }

    /// `container::create`: the init becomes our direct child, waiting for start.
    pub fn create(&mut self, req: CreateRequest<'_>) -> Result<i32, RuntimeError> {
        let _g = DefaultSigpipe::new();
        let c = container::create(CreateOptions {
            id: req.id.to_string(),
            bundle: req.bundle.to_path_buf(),
            root: self.root.clone(),
            console_socket: req.console_socket.map(Path::to_path_buf),
            // The pid comes back in the Container; a pid file would cost an fsync'd write.
            pid_file: None,
            no_pivot: false,
            stdio: req.stdio,
            preserve_fds: 0,
        })
        .map_err(|e| failed("create", e))?;
        let pid = c.pid();
        self.container = Some(c);
        Ok(pid)
    }

    /// Start the created init (the Container from create, or loaded from the state dir).
    pub fn start(&mut self, id: &str) -> Result<(), RuntimeError> {
        if self.container.is_none() {
            self.container = Some(container::load(&self.root, id).map_err(|e| failed("start", e))?);
        }
        match &mut self.container {
            Some(c) => c.start().map_err(|e| failed("start", e)),
            None => Err(RuntimeError::Failed {
                op: "start",
                message: "no container".into(),
            }),
        }
    }

    /// Signal every process of the container.
    pub fn kill_all(&mut self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        container::kill(&self.root, id, signal, true).map_err(|e| failed("kill", e))
    }

    /// Freeze the container's cgroup.
    pub fn pause(&mut self, id: &str) -> Result<(), RuntimeError> {
        container::pause(&self.root, id).map_err(|e| failed("pause", e))
    }

    /// Thaw the container's cgroup.
    pub fn resume(&mut self, id: &str) -> Result<(), RuntimeError> {
        container::resume(&self.root, id).map_err(|e| failed("resume", e))
    }

    /// Remove the runtime state and cgroups (force: the init is already gone).
    pub fn delete(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.container = None;
        container::delete(&self.root, id, true).map_err(|e| failed("delete", e))
    }

    /// `container::exec` of the OCI process berthd sent; the process is our direct child.
    pub fn exec(&mut self, req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
        let process: oci_spec::runtime::Process = serde_json::from_value(req.process.clone())
            .map_err(|e| RuntimeError::Failed {
                op: "exec",
                message: format!("invalid process: {e}"),
            })?;
        let _g = DefaultSigpipe::new();
        let p = container::exec(
            &self.root,
            req.id,
            &process,
            ExecOptions {
                stdio: req.stdio,
                console_socket: req.console_socket.map(Path::to_path_buf),
                pid_file: None,
                preserve_fds: 0,
                // The shim reaps it through SIGCHLD like every child; nobody blocks on it.
                detach: true,
            },
        )
        .map_err(|e| failed("exec", e))?;
        Ok(p.pid())
    }
}
