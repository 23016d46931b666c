//! The one error type of the library API; the CLI maps it to messages and exit codes.

use crate::state::Status;

/// Every way a runtime operation can fail, named by the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bundle's config.json was rejected.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The state dir or state.json.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The parent/child handshake.
    #[error("container init: {0}")]
    Channel(#[from] crate::process::channel::ChannelError),
    /// Namespaces.
    #[error(transparent)]
    Namespace(#[from] crate::process::namespaces::NamespaceError),
    /// The cgroup manager.
    #[error("cgroup: {0}")]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// Compiling the seccomp filter (before any process exists).
    #[error("seccomp: {0}")]
    Seccomp(#[from] crate::security::seccomp::SeccompError),
    /// A hook that must succeed failed.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// The console socket / pty.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// An operation is not allowed in the container's current status.
    #[error("container {id} is {status}: cannot {op}")]
    InvalidStatus {
        /// Container id.
        id: String,
        /// Its live status.
        status: Status,
        /// What was attempted.
        op: &'static str,
    },
    /// The process could not be exec'd (not found, not executable, bad cwd, ...).
    #[error("{message}")]
    ExecFailed {
        /// The cause, from the container side.
        message: String,
        /// The exit status the process ended with (127 not found, 126 not executable), when
        /// known to the caller (it is the process's parent); 1 otherwise.
        code: i32,
    },
    /// A step with an OS error.
    #[error("{step}")]
    Io {
        /// What failed.
        step: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Something the runtime does not support.
    #[error("{0}")]
    Unsupported(String),
}

impl RuntimeError {
    /// The exit status a CLI should use for this error: the process's own status for exec
    /// failures (127/126 as runc and Docker), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::ExecFailed { code, .. } if *code != 0 => *code,
            _ => 1,
        }
    }

    /// An I/O failure at `step`.
    pub fn io(step: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            step: step.into(),
            source,
        }
    }
}
