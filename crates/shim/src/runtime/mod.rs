//! The OCI runtime behind the shim: berth_runtime in-process (the default), or an external
//! runc-compatible binary (`--runtime-binary`, like dockerd's `--runtime`).
//!
//! Whichever is used, the container init and exec processes end up as children of the shim (a
//! direct child of the in-process create, or reparented to us as the subreaper when the
//! runtime binary exits), so the shim reaps them and owns their exit statuses.

mod binary;
mod library;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde_json::Value;

use binary::Binary;
use library::Library;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{op}")]
    Library {
        op: &'static str,
        #[source]
        source: Box<berth_runtime::RuntimeError>,
    },
    #[error("run {binary} {op}")]
    Spawn {
        binary: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{op}: {message}")]
    Failed { op: &'static str, message: String },
    #[error("{op}: read pid file {path}")]
    PidFile {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write exec process spec {path}")]
    ProcessFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl RuntimeError {
    /// Docker's exit code for a failed create/start/exec, by Docker's own rule on the error
    /// text: 127 when the program was not found, 126 when it could not be executed, else 125.
    pub fn exit_code(&self) -> i32 {
        // The in-process runtime knows the init's real status after an exec failure.
        if let RuntimeError::Library { source, .. } = self
            && let berth_runtime::RuntimeError::ExecFailed { code, .. } = **source
            && (code == 126 || code == 127)
        {
            return code;
        }
        let mut msg = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(c) = cur {
            msg.push_str(": ");
            msg.push_str(&c.to_string());
            cur = c.source();
        }
        let msg = msg.to_ascii_lowercase();
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") || msg.contains("is a directory") {
            126
        } else {
            125
        }
    }
}

/// The container's stdio as the runtime should install it: stdin, stdout, stderr.
pub type StdioFds = [OwnedFd; 3];

/// What to create.
pub struct CreateRequest<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub pid_file: &'a Path,
    /// None with a console socket (the pty is the stdio).
    pub stdio: Option<StdioFds>,
}

/// An exec into the running container.
pub struct ExecRequest<'a> {
    pub id: &'a str,
    /// A short name for this exec's scratch files.
    pub exec_id: &'a str,
    pub process: &'a Value,
    pub console_socket: Option<&'a Path>,
    pub stdio: Option<StdioFds>,
    /// A dir for scratch files (process spec, pid file) of the runtime binary: the state dir.
    pub scratch_dir: &'a Path,
}

/// The runtime in use.
pub enum Runtime {
    /// berth_runtime, called in-process.
    Library(Box<Library>),
    /// An external runc-compatible binary.
    Binary(Binary),
}

impl Runtime {
    /// Pick the backend from the command line.
    pub fn new(root: &Path, binary: Option<&Path>) -> Runtime {
        match binary {
            Some(p) => Runtime::Binary(Binary::new(p, root)),
            None => Runtime::Library(Box::new(Library::new(root))),
        }
    }

    /// Create the container (init waits for `start`); returns the init pid.
    pub fn create(&mut self, req: CreateRequest<'_>) -> Result<i32, RuntimeError> {
        match self {
            Runtime::Library(l) => l.create(req),
            Runtime::Binary(b) => b.create(req),
        }
    }

    /// Let the init exec the container process.
    pub fn start(&mut self, id: &str) -> Result<(), RuntimeError> {
        match self {
            Runtime::Library(l) => l.start(id),
            Runtime::Binary(b) => b.simple("start", &["start", id]),
        }
    }

    /// Signal every process of the container (`kill --all`).
    pub fn kill_all(&mut self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        match self {
            Runtime::Library(l) => l.kill_all(id, signal),
            Runtime::Binary(b) => b.simple("kill", &["kill", "--all", id, &signal.to_string()]),
        }
    }

    /// Freeze the container.
    pub fn pause(&mut self, id: &str) -> Result<(), RuntimeError> {
        match self {
            Runtime::Library(l) => l.pause(id),
            Runtime::Binary(b) => b.simple("pause", &["pause", id]),
        }
    }

    /// Thaw the container.
    pub fn resume(&mut self, id: &str) -> Result<(), RuntimeError> {
        match self {
            Runtime::Library(l) => l.resume(id),
            Runtime::Binary(b) => b.simple("resume", &["resume", id]),
        }
    }

    /// Remove the runtime's state (and cgroups) of a stopped container.
    pub fn delete(&mut self, id: &str) -> Result<(), RuntimeError> {
        match self {
            Runtime::Library(l) => l.delete(id),
            Runtime::Binary(b) => b.simple("delete", &["delete", "--force", id]),
        }
    }

    /// Start an extra process in the container; returns its pid.
    pub fn exec(&mut self, req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
        match self {
            Runtime::Library(l) => l.exec(req),
            Runtime::Binary(b) => b.exec(req),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_docker() {
        let e = |m: &str| RuntimeError::Failed {
            op: "create",
            message: m.into(),
        };
        assert_eq!(
            e(r#"exec: "nosuch": executable file not found in $PATH"#).exit_code(),
            127
        );
        assert_eq!(e("exec /etc/passwd: permission denied").exit_code(), 126);
        assert_eq!(e("cgroup: device busy").exit_code(), 125);
    }
}
