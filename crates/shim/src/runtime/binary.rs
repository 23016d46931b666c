//! The external-binary backend: a runc-compatible CLI (`--runtime-binary`), like dockerd's
//! `--runtime`. Its create/exec run detached; the processes they leave are reparented to the
//! shim, the subreaper.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{CreateRequest, ExecRequest, RuntimeError, StdioFds};

/// A runc-compatible binary and its state root.
pub struct Binary {
    path: PathBuf,
    root: PathBuf,
}

impl Binary {
    /// Drive `path` with `--root root`.
    pub fn new(path: &Path, root: &Path) -> Binary {
        Binary {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
        }
    }

    /// `create --bundle --pid-file [--console-socket] ID` with the container's stdio as ours.
    pub fn create(&mut self, req: CreateRequest<'_>) -> Result<i32, RuntimeError> {
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
        run_with_stdio(&self.path, &self.root, "create", &args, req.stdio)?;
        let pid = read_pid("create", req.pid_file);
        let _ = fs::remove_file(req.pid_file);
        pid
    }

    /// `exec --detach --process FILE --pid-file F [--console-socket] ID`.
    pub fn exec(&mut self, req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
        let dir = req.scratch_dir;
        let process_file = dir.join(format!("{}.process.json", req.exec_id));
        let pid_file = dir.join(format!("{}.exec.pid", req.exec_id));
        fs::write(&process_file, req.process.to_string()).map_err(|source| {
            RuntimeError::ProcessFile {
                path: process_file.clone(),
                source,
            }
        })?;
        let mut args: Vec<&OsStr> = vec![
            "exec".as_ref(),
            "--detach".as_ref(),
            "--process".as_ref(),
            process_file.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
        ];
        if let Some(s) = req.console_socket {
            args.extend(["--console-socket".as_ref(), s.as_os_str()]);
        }
        args.push(req.id.as_ref());
        let r = run_with_stdio(&self.path, &self.root, "exec", &args, req.stdio);
        let _ = fs::remove_file(&process_file);
        let pid = r.and_then(|()| read_pid("exec", &pid_file));
        let _ = fs::remove_file(&pid_file);
        pid
    }

    /// A command without the container's stdio; stderr is the error message.
    pub fn simple(&mut self, op: &'static str, args: &[&str]) -> Result<(), RuntimeError> {
        let mut cmd = base(&self.path, &self.root);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = cmd.output().map_err(|source| RuntimeError::Spawn {
            binary: self.path.clone(),
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
