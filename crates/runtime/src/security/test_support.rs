//! Run a test body in a forked child, so process-wide changes (capabilities, seccomp,
//! rlimits, uid) never touch the test harness. The child reports `Ok` or its error text
//! (panics included) through a pipe; the parent turns that into the test result.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// Run `body` in a forked child and return what it reported. Panics in the parent (failing
/// the test) if the child reported an error, died from a signal or reported nothing.
pub(crate) fn in_child<F>(body: F)
where
    F: FnOnce() -> Result<(), String>,
{
    if let Err(msg) = try_in_child(body) {
        panic!("child failed: {msg}");
    }
}

/// Like [`in_child`] but returns the child's report instead of panicking.
pub(crate) fn try_in_child<F>(body: F) -> Result<(), String>
where
    F: FnOnce() -> Result<(), String>,
{
    let (read_end, write_end) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the child only runs `body` and then `_exit`s; glibc's malloc is fork-safe and
    // the child never returns into the test harness.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read_end);
            child_main(write_end, body)
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut report = String::new();
            let read = std::fs::File::from(read_end).read_to_string(&mut report);
            let status = waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
            read.map_err(|e| format!("reading the child's report: {e}"))?;
            match (status, report.as_str()) {
                (WaitStatus::Exited(_, 0), "OK") => Ok(()),
                (_, "") => Err(format!("child reported nothing; status {status:?}")),
                (_, text) => Err(format!("{text} (status {status:?})")),
            }
        }
    }
}

fn child_main<F>(write_end: OwnedFd, body: F) -> !
where
    F: FnOnce() -> Result<(), String>,
{
    let outcome = catch_unwind(AssertUnwindSafe(body));
    let (code, text) = match outcome {
        Ok(Ok(())) => (0, "OK".to_string()),
        Ok(Err(msg)) => (1, msg),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".to_string());
            (2, format!("panicked: {msg}"))
        }
    };
    let mut file = std::fs::File::from(write_end);
    // Nothing to do if the report cannot be written: the parent sees "reported nothing".
    let _ = file.write_all(text.as_bytes());
    // SAFETY: `_exit` ends the child without running the harness's atexit handlers or
    // destructors shared with the parent.
    unsafe { libc::_exit(code) }
}

/// Whether the test runs as root (capability and most seccomp tests need it).
pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// One `Key:\tvalue` line of /proc/self/status.
pub(crate) fn status_field(key: &str) -> Result<String, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("no {key} in /proc/self/status"))
}

/// A hex capability mask field of /proc/self/status (`CapEff` etc.).
pub(crate) fn cap_mask(key: &str) -> Result<u64, String> {
    let text = status_field(key)?;
    u64::from_str_radix(&text, 16).map_err(|e| format!("{key} {text:?}: {e}"))
}

/// Run a raw syscall with integer arguments and return its errno, `None` on success.
/// Callers pass no pointers except null (0), so the kernel reads or writes no user memory.
pub(crate) fn syscall_errno(nr: libc::c_long, args: [libc::c_long; 3]) -> Option<i32> {
    // SAFETY: integer arguments only (see above); a null pointer argument makes the kernel
    // fail with EFAULT instead of touching memory.
    let rc = unsafe { libc::syscall(nr, args[0], args[1], args[2]) };
    if rc < 0 {
        std::io::Error::last_os_error().raw_os_error()
    } else {
        None
    }
}
