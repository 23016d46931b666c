//! The OCI runtime behind the shim: berth_runtime in-process (the default), or an external
//! runc-compatible binary (`--runtime-binary`, like dockerd's `--runtime`).
//!
//! Whichever is used, the container init and exec processes end up as children of the shim (a
//! direct child of the in-process create, or reparented to us as the subreaper when the
//! runtime binary exits), so the shim reaps them and owns their exit statuses.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the in-process runtime library is not available in this build: {0}")]
    Unavailable(&'static str),
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
    /// Docker's exit code for a failed create/start/exec: 127 when the program was not found,
    /// 126 when it could not be executed, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        let msg = self.to_string().to_ascii_lowercase();
        let exec = msg.contains("exec");
        if exec
            && (msg.contains("not found")
                || msg.contains("no such file")
                || msg.contains("executable file not found"))
        {
            127
        } else if exec && (msg.contains("permission denied") || msg.contains("cannot execute")) {
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
    pub process: &'a Value,
    pub console_socket: Option<&'a Path>,
    pub pid_file: &'a Path,
    pub stdio: Option<StdioFds>,
    /// Where the runtime binary may read the process spec from (a file in the state dir).
    pub process_file: &'a Path,
}

/// The runtime in use.
pub enum Runtime {
    /// berth_runtime, called in-process.
    #[allow(dead_code)] // `root` is used once berth_runtime::container is merged (rt-core).
    Library { root: PathBuf },
    /// An external runc-compatible binary.
    Binary { path: PathBuf, root: PathBuf },
}

impl Runtime {
    /// Pick the backend from the command line.
    pub fn new(root: &Path, binary: Option<&Path>) -> Runtime {
        match binary {
            Some(p) => Runtime::Binary {
                path: p.to_path_buf(),
                root: root.to_path_buf(),
            },
            None => Runtime::Library {
                root: root.to_path_buf(),
            },
        }
    }

    /// Create the container (init waits for `start`); returns the init pid.
    pub fn create(&mut self, req: CreateRequest<'_>) -> Result<i32, RuntimeError> {
        match self {
            Runtime::Library { .. } => Err(RuntimeError::Unavailable(
                "berth_runtime::container is not merged yet",
            )),
            Runtime::Binary { path, root } => {
                let mut args: Vec<&OsStr> = vec![
                    "create".as_ref(),
                    "--bundle".as_ref(),
                    req.bundle.as_os_str(),
                    "--pid-file".as_ref(),
                    req.pid_file.as_os_str(),
                ];
                if let Some(s) = req.console_socket {
                    args.extend(["--console-socket".as_ref(), s.as_os_str()]);
                }
                args.push(req.id.as_ref());
                run_with_stdio(path, root, "create", &args, req.stdio)?;
                read_pid("create", req.pid_file)
            }
        }
    }

    /// Let the init exec the container process.
    pub fn start(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.simple("start", &["start", id])
    }

    /// Signal every process of the container (`kill --all`).
    pub fn kill_all(&mut self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let sig = signal.to_string();
        self.simple("kill", &["kill", "--all", id, &sig])
    }

    /// Freeze the container.
    pub fn pause(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.simple("pause", &["pause", id])
    }

    /// Thaw the container.
    pub fn resume(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.simple("resume", &["resume", id])
    }

    /// Remove the runtime's state (and cgroups) of a stopped container.
    pub fn delete(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.simple("delete", &["delete", "--force", id])
    }

    /// Start an extra process in the container; returns its pid.
    pub fn exec(&mut self, req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
        match self {
            Runtime::Library { .. } => Err(RuntimeError::Unavailable(
                "berth_runtime::container is not merged yet",
            )),
            Runtime::Binary { path, root } => {
                fs::write(req.process_file, req.process.to_string()).map_err(|source| {
                    RuntimeError::ProcessFile {
                        path: req.process_file.to_path_buf(),
                        source,
                    }
                })?;
                let mut args: Vec<&OsStr> = vec![
                    "exec".as_ref(),
                    "--detach".as_ref(),
                    "--process".as_ref(),
                    req.process_file.as_os_str(),
                    "--pid-file".as_ref(),
                    req.pid_file.as_os_str(),
                ];
                if let Some(s) = req.console_socket {
                    args.extend(["--console-socket".as_ref(), s.as_os_str()]);
                }
                args.push(req.id.as_ref());
                let r = run_with_stdio(path, root, "exec", &args, req.stdio);
                let _ = fs::remove_file(req.process_file);
                r?;
                let pid = read_pid("exec", req.pid_file);
                let _ = fs::remove_file(req.pid_file);
                pid
            }
        }
    }

    fn simple(&mut self, op: &'static str, args: &[&str]) -> Result<(), RuntimeError> {
        match self {
            Runtime::Library { .. } => Err(RuntimeError::Unavailable(
                "berth_runtime::container is not merged yet",
            )),
            Runtime::Binary { path, root } => {
                let mut cmd = base(path, root);
                cmd.args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                let out = cmd.output().map_err(|source| RuntimeError::Spawn {
                    binary: path.clone(),
                    op,
                    source,
                })?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(RuntimeError::Failed {
                        op,
                        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    })
                }
            }
        }
    }
}

fn base(path: &Path, root: &Path) -> Command {
    let mut cmd = Command::new(path);
    cmd.arg("--root").arg(root);
    // A pre_exec hook makes std fork+exec instead of posix_spawn: glibc's posix_spawn leaves
    // its internal signal 32 (SIGCANCEL) ignored in the child, and runc hands that ignored
    // disposition down to the container. The hook also gives the runtime a default SIGPIPE.
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd
}

/// Run a create/exec whose stdio is the container's; the error text is read from the runtime's
/// JSON log file since its stderr belongs to the container.
fn run_with_stdio(
    binary: &Path,
    root: &Path,
    op: &'static str,
    args: &[&OsStr],
    stdio: Option<StdioFds>,
) -> Result<(), RuntimeError> {
    let log = std::env::temp_dir().join(format!("berth-shim-{}-{op}.log", std::process::id()));
    let _ = fs::remove_file(&log);
    let mut cmd = base(binary, root);
    cmd.arg("--log")
        .arg(&log)
        .arg("--log-format")
        .arg("json")
        .args(args);
    match stdio {
        Some([i, o, e]) => {
            cmd.stdin(Stdio::from(i))
                .stdout(Stdio::from(o))
                .stderr(Stdio::from(e));
        }
        None => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
    }
    let status = cmd.status().map_err(|source| RuntimeError::Spawn {
        binary: binary.to_path_buf(),
        op,
        source,
    })?;
    // Drop the Command now: it holds our copies of the container's stdio ends.
    drop(cmd);
    let text = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    if status.success() {
        return Ok(());
    }
    let message = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
        .unwrap_or_else(|| format!("exited with {status}"));
    Err(RuntimeError::Failed { op, message })
}

fn read_pid(op: &'static str, path: &Path) -> Result<i32, RuntimeError> {
    let err = |source| RuntimeError::PidFile {
        op,
        path: path.to_path_buf(),
        source,
    };
    let text = fs::read_to_string(path).map_err(err)?;
    text.trim()
        .parse()
        .map_err(|_| err(io::Error::new(io::ErrorKind::InvalidData, text.clone())))
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
