//! Starting `berth-shim` processes (SHIM_PROTOCOL.md, "Spawn"): its ready pipe on fd 3, the
//! binary exec'd through berthd's sealed view of it when there is one, and a spare shim kept
//! waiting so a container start does not wait for a process to be spawned, linked and
//! detached (see berth-shim's `spare` module: the arguments go to its fd 4).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_runtime::seal::SealedBinary;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::shim::{Ready, ShimError, check_ok};
use super::store::lock;

/// Bytes of the spare's padding argument: room to write a container's arguments over its
/// command line (ids, four paths, options).
const SPARE_ARG_ROOM: usize = 4096;

/// Arguments for one shim.
#[derive(Debug, Clone)]
pub struct SpawnArgs<'a> {
    /// Container id.
    pub id: &'a str,
    /// Bundle dir (config.json).
    pub bundle: &'a Path,
    /// exec-root/<id>.
    pub state_dir: &'a Path,
    /// exec-root/runtime.
    pub runtime_root: &'a Path,
    /// json-file log path.
    pub log_path: &'a Path,
    /// Allocate a TTY.
    pub terminal: bool,
    /// Keep stdin open.
    pub stdin: bool,
    /// json-file rotation: bytes per file.
    pub log_max_size: Option<u64>,
    /// json-file rotation: files kept.
    pub log_max_files: Option<u32>,
    /// An external runc-compatible runtime instead of the shim's in-process berth_runtime
    /// (the shim's `--runtime-binary` extension of the contract).
    pub runtime_binary: Option<&'a Path>,
}

impl SpawnArgs<'_> {
    /// The shim's command line after the program name: `--id` and `--state-dir` first, so a
    /// spare's rewritten command line keeps them whatever it has to cut.
    fn argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let mut push = |k: &str, val: &std::ffi::OsStr| {
            v.push(k.into());
            v.push(val.to_owned());
        };
        push("--id", self.id.as_ref());
        push("--state-dir", self.state_dir.as_os_str());
        push("--bundle", self.bundle.as_os_str());
        push("--runtime-root", self.runtime_root.as_os_str());
        push("--log-path", self.log_path.as_os_str());
        if let Some(n) = self.log_max_size {
            push("--log-max-size", n.to_string().as_ref());
            push(
                "--log-max-files",
                self.log_max_files.unwrap_or(1).to_string().as_ref(),
            );
        }
        if let Some(rt) = self.runtime_binary {
            push("--runtime-binary", rt.as_os_str());
        }
        if self.terminal {
            v.push("--terminal".into());
        }
        if self.stdin {
            v.push("--stdin".into());
        }
        v
    }
}

/// A spare shim waiting for its arguments.
#[derive(Debug)]
struct Spare {
    /// Write end of its fd 4.
    args: OwnedFd,
    /// Read end of its fd 3.
    ready: OwnedFd,
}

/// Starts shims; keeps at most one spare.
#[derive(Debug)]
pub struct Launcher {
    binary: PathBuf,
    /// The binary through a private read-only view, opened once: shims started from it skip
    /// their own CVE-2019-5736 re-exec. None where the view cannot be built (they then seal
    /// themselves).
    view: Option<SealedBinary>,
    spare: Mutex<Option<Spare>>,
    /// `BERTHD_NO_SPARE_SHIM` set: no spare (to measure what it buys).
    no_spare: bool,
}

impl Launcher {
    /// A launcher of `binary` (the view is built now, the first spare at the first start).
    pub fn new(binary: &Path) -> Launcher {
        let view = match SealedBinary::open(binary) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(
                    "no sealed view of {}: {e}; shims re-exec themselves",
                    binary.display()
                );
                None
            }
        };
        Launcher {
            binary: binary.to_path_buf(),
            view,
            spare: Mutex::new(None),
            no_spare: std::env::var_os("BERTHD_NO_SPARE_SHIM").is_some(),
        }
    }

    /// Starts the shim for one container and waits for its ready line; then makes sure a spare
    /// waits for the next one.
    pub async fn spawn(self: &Arc<Self>, args: &SpawnArgs<'_>) -> Result<Ready, ShimError> {
        let argv = args.argv();
        let spare = lock(&self.spare).take();
        let ready = match spare.and_then(|s| hand_over(s, &argv)) {
            Some(ready) => ready,
            None => {
                let (ready, args_fd) = self.start(Some(&argv))?;
                drop(args_fd);
                ready
            }
        };
        self.refill();
        read_ready(ready).await
    }

    /// Starts a spare in the background if none waits.
    fn refill(self: &Arc<Self>) {
        if self.no_spare || lock(&self.spare).is_some() {
            return;
        }
        let me = self.clone();
        // fork + exec block for a millisecond or two: not on a runtime worker.
        tokio::task::spawn_blocking(move || {
            match me.start(None) {
                Ok((ready, Some(args))) => {
                    let mut slot = lock(&me.spare);
                    // Another refill won the race: this one's spare sees EOF and exits.
                    if slot.is_none() {
                        *slot = Some(Spare { args, ready });
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "starting a spare shim"),
            }
        });
    }

    /// Spawns berth-shim with its ready pipe on fd 3: with `argv`, a shim for that container;
    /// without, a spare (`--spare PADDING`, its argument pipe on fd 4, whose write end is
    /// returned). Returns the read end of the ready pipe.
    fn start(&self, argv: Option<&[OsString]>) -> Result<(OwnedFd, Option<OwnedFd>), ShimError> {
        let (ready_rx, ready_tx) = pipe()?;
        let args_pipe = match argv {
            Some(_) => None,
            None => Some(pipe()?),
        };
        let mut cmd = match &self.view {
            Some(view) => tokio::process::Command::from(view.command()),
            None => tokio::process::Command::new(&self.binary),
        };
        match argv {
            Some(a) => {
                cmd.args(a);
            }
            None => {
                cmd.arg("--spare").arg(" ".repeat(SPARE_ARG_ROOM));
            }
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let moves = [
            Some(ready_tx.as_raw_fd()),
            args_pipe.as_ref().map(|(rx, _)| rx.as_raw_fd()),
        ];
        // SAFETY: the closure runs in the forked child before exec and only calls dup2/fcntl,
        // which are async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || place_fds(moves));
        }
        let mut child = cmd.spawn().map_err(|source| ShimError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        drop(ready_tx);
        // The shim double-forks; reap the intermediate whenever it exits.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok((ready_rx, args_pipe.map(|(_, tx)| tx)))
    }
}

/// Gives a spare its arguments; None if it is gone (then a fresh shim is started instead).
fn hand_over(spare: Spare, argv: &[OsString]) -> Option<OwnedFd> {
    use std::io::Write;
    let strings: Option<Vec<&str>> = argv.iter().map(|a| a.to_str()).collect();
    let text = serde_json::to_vec(&strings?).ok()?;
    // A pipe takes 64 KiB before blocking; the arguments are well under that.
    std::fs::File::from(spare.args).write_all(&text).ok()?;
    Some(spare.ready)
}

/// Reads the shim's one ready line from fd 3's other end.
async fn read_ready(read_end: OwnedFd) -> Result<Ready, ShimError> {
    let mut rx =
        tokio::net::unix::pipe::Receiver::from_owned_fd(read_end).map_err(ShimError::Pipe)?;
    // Read one line only: a process that inherited the write end must not delay us.
    let mut buf = Vec::new();
    let mut byte = [0u8; 256];
    loop {
        let n = rx.read(&mut byte).await.map_err(ShimError::Pipe)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&byte[..n]);
        if buf.contains(&b'\n') || buf.len() > 1 << 16 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().ok_or(ShimError::NoReady)?;
    let v: Value =
        serde_json::from_str(line).map_err(|_| ShimError::BadResponse(line.to_owned()))?;
    let v = check_ok(v)?;
    Ok(Ready {
        shim_pid: v.get("shim_pid").and_then(Value::as_i64).unwrap_or(0),
        pid: v.get("pid").and_then(Value::as_i64).unwrap_or(0),
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ShimError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| ShimError::Pipe(e.into()))
}

/// In the child before exec: `fds[i]` becomes fd `3 + i`, without close-on-exec. Each is
/// first copied above the targets, so a source that already sits on a target is not clobbered.
fn place_fds(fds: [Option<RawFd>; 2]) -> std::io::Result<()> {
    let mut high: [RawFd; 2] = [-1; 2];
    for (i, fd) in fds.iter().enumerate() {
        if let Some(fd) = *fd {
            // SAFETY: fcntl on an fd of this (forked, single-threaded) child.
            high[i] = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
            if high[i] < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    for (i, fd) in high.iter().enumerate() {
        // SAFETY: dup2 between fds of this child; the copy is left to close-on-exec.
        if *fd >= 0 && unsafe { libc::dup2(*fd, 3 + i as RawFd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
