//! `BERTH_RUNTIME_TIMING=1`: print each step's timestamp (ms of CLOCK_MONOTONIC) to stderr, to
//! see where `run`'s time goes without strace's per-syscall overhead.

use std::sync::OnceLock;

fn enabled() -> bool {
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
    eprintln!("timing {ms:.3} [{}] {step}", std::process::id());
}
