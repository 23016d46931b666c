//! OCI lifecycle hooks: each gets the state JSON on stdin and honours path, args, env and
//! timeout. A hook that exits without reading stdin must not hurt the runtime: EPIPE on the
//! write is ignored (Rust binaries already ignore SIGPIPE).

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

/// Which lifecycle point (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Deprecated prestart (runtime namespace, before pivot).
    Prestart,
    /// createRuntime (runtime namespace, before pivot).
    CreateRuntime,
    /// createContainer (container mount namespace, before pivot).
    CreateContainer,
    /// startContainer (inside the container, before the user process).
    StartContainer,
    /// poststart (runtime namespace, after start; failures warn).
    Poststart,
    /// poststop (on delete; failures warn).
    Poststop,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        })
    }
}

/// A hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook could not be started.
    #[error("{kind} hook {path}: spawning")]
    Spawn {
        /// Lifecycle point.
        kind: Kind,
        /// Hook binary.
        path: String,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Waiting for it failed.
    #[error("{kind} hook {path}: waiting")]
    Wait {
        /// Lifecycle point.
        kind: Kind,
        /// Hook binary.
        path: String,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// It exited non-zero or was killed.
    #[error("{kind} hook {path} failed: {status}{}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Failed {
        /// Lifecycle point.
        kind: Kind,
        /// Hook binary.
        path: String,
        /// Exit description.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// It ran past its timeout and was killed.
    #[error("{kind} hook {path} timed out after {secs}s")]
    Timeout {
        /// Lifecycle point.
        kind: Kind,
        /// Hook binary.
        path: String,
        /// The timeout.
        secs: i64,
    },
}

/// Run every hook in order; the first failure stops the list.
pub fn run_all(kind: Kind, hooks: &[Hook], state_json: &str) -> Result<(), HookError> {
    for h in hooks {
        run_one(kind, h, state_json)?;
    }
    Ok(())
}

/// Run hooks whose failures only warn (poststart, poststop): every hook runs; failures go to
/// stderr.
pub fn run_all_warn(kind: Kind, hooks: &[Hook], state_json: &str) {
    for h in hooks {
        if let Err(e) = run_one(kind, h, state_json) {
            eprintln!("warning: {}", crate::error_chain(&e));
        }
    }
}

fn run_one(kind: Kind, hook: &Hook, state_json: &str) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Own process group: a timeout kills the hook and everything it started.
    cmd.process_group(0);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading: EPIPE is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    if let Some(secs) = hook.timeout().filter(|s| *s > 0)
        && !wait_readable_exit(child.id() as i32, secs)
    {
        // SAFETY: kill of the hook's own process group (pgid = its pid).
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        return Err(HookError::Timeout { kind, path, secs });
    }
    let out = child.wait_with_output().map_err(|source| HookError::Wait {
        kind,
        path: path.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let status = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".to_string(),
    };
    Err(HookError::Failed {
        kind,
        path,
        status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Wait up to `secs` for `pid` to exit (pidfd becomes readable); true if it did.
fn wait_readable_exit(pid: i32, secs: i64) -> bool {
    let Ok(pidfd) = crate::process::clone::pidfd_open(pid) else {
        return true;
    };
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = (secs.saturating_mul(1000)).min(i32::MAX as i64) as i32;
    loop {
        match nix::poll::poll(
            &mut fds,
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Whether create needs the mid-setup round trip between the init and the runtime (the init
/// stops before `pivot_root` while the runtime runs prestart/createRuntime hooks, then runs
/// createContainer hooks with the state the runtime sends). Both sides decide from the same
/// spec; without any of those hooks the round trip (two wakeups) is skipped.
pub fn create_sync_needed(spec: &oci_spec::runtime::Spec) -> bool {
    [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer]
        .into_iter()
        .any(|k| !of(spec, k).is_empty())
}

/// Hooks of one kind from a spec (empty when none).
pub fn of(spec: &oci_spec::runtime::Spec, kind: Kind) -> Vec<Hook> {
    let Some(h) = spec.hooks() else {
        return Vec::new();
    };
    let list = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(args: &[&str]) -> Hook {
        serde_json::from_value(serde_json::json!({"path": "/bin/sh", "args": args})).unwrap()
    }

    #[test]
    fn stdin_gets_state() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let h = hook(&["sh", "-c", &format!("cat > {}", out.display())]);
        run_all(Kind::Poststop, &[h], "{\"status\":\"stopped\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            "{\"status\":\"stopped\"}"
        );
    }

    #[test]
    fn failure_and_no_read() {
        let e = run_all(
            Kind::Prestart,
            &[hook(&["sh", "-c", "echo bad >&2; exit 3"])],
            "{}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("exit status 3: bad"), "{e}");
        // Exits without reading a large stdin: no SIGPIPE death, success.
        let big = "x".repeat(1 << 20);
        run_all(Kind::Prestart, &[hook(&["sh", "-c", "exit 0"])], &big).unwrap();
    }

    #[test]
    fn timeout_kills() {
        let mut h = hook(&["sh", "-c", "sleep 30"]);
        h.set_timeout(Some(1));
        assert!(matches!(
            run_all(Kind::Prestart, &[h], "{}"),
            Err(HookError::Timeout { .. })
        ));
    }
}
