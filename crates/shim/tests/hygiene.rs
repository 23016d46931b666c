//! What the shim leaves in the container (signals, fds) and what it costs (RSS).
//!
//! Each scenario runs twice: with the in-process berth_runtime library (the shim's default) and
//! with runc behind the shim (`--runtime-binary`, dockerd's `--runtime` equivalent).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, Env, opts, vm_rss_kib};
use serde_json::json;

both_backends!(
    both: [
        container_signal_state_is_clean,
        no_shim_fds_leak_into_the_container,
        idle_rss_is_reported,
    ],
    library_ignored: [],
);

fn container_signal_state_is_clean(b: Backend) {
    // The shim ignores SIGPIPE and catches SIGCHLD; none of that may leak into the container.
    let env = Env::spawn(opts(&["cat", "/proc/self/status"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
    let status = env.log_text("stdout");
    for key in ["SigIgn:", "SigBlk:"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing in {status}"));
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}

fn no_shim_fds_leak_into_the_container(b: Backend) {
    let env = Env::spawn(opts(&["ls", "/proc/self/fd"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    assert_eq!(env.req(json!({"op": "wait"}))["exit_code"], 0);
    // 0-2 and the directory ls itself opened: no socket, log or pipe of the shim.
    assert_eq!(env.log_text("stdout"), "0\n1\n2\n3\n");
}

fn idle_rss_is_reported(b: Backend) {
    let env = Env::spawn(opts(&["sleep", "1000"], b));
    assert_eq!(env.req(json!({"op": "start"}))["ok"], true);
    std::thread::sleep(Duration::from_millis(100));
    let rss = vm_rss_kib(env.shim_pid());
    println!("berth-shim idle VmRSS with a running sleep container: {rss} KiB");
    // Sanity only; the 1 MB target is a bench figure.
    assert!(rss > 0 && rss < 64 * 1024, "{rss} KiB");
    assert_eq!(env.req(json!({"op": "state"}))["status"], "running");
}
