//! `BERTH_RUNTIME_TIMING=1`: print each step's timestamp (ms of CLOCK_MONOTONIC) to stderr, to
//! see where `run`'s time goes without strace's per-syscall overhead. When the value is an
//! absolute path the lines are appended to that file instead: the shim's stderr is /dev/null,
//! and berthd passes its environment to the shims it spawns.

use std::sync::OnceLock;

/// Whether timing is on (callers skip formatting a step name when it is not).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("BERTH_RUNTIME_TIMING").is_some())
}

/// Print `step` with the monotonic clock, if timing is on.
pub fn mark(step: &str) {
    if !enabled() {
        return;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let ms = ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6;
    let line = format!("timing {ms:.3} [{}] {step}\n", std::process::id());
    // Opened once and kept: a container's init marks steps after pivot_root, where the path
    // no longer resolves, through the descriptor it inherited.
    static FILE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = std::env::var_os("BERTH_RUNTIME_TIMING")?;
        if !path.as_encoded_bytes().starts_with(b"/") {
            return None;
        }
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .ok()
    });
    match file {
        Some(f) => {
            use std::io::Write;
            let _ = (&*f).write_all(line.as_bytes());
        }
        _ => eprint!("{line}"),
    }
}
