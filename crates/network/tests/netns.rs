//! Pinned network namespaces: creation with `lo` up, removal, idempotence.

#![allow(clippy::unwrap_used)]

mod common;

use berth_network::netns::{create_netns, remove_netns, run_in_netns};
use common::{require_root, run};

fn mounted(p: &std::path::Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
}

#[test]
fn create_has_lo_up_and_remove_leaves_nothing() {
    require_root();
    common::clean_stale_mounts();
    let dir = common::tempdir();
    let p = dir.path().join("netns").join("c1");
    create_netns(&p).unwrap();
    assert!(mounted(&p), "netns is a bind mount");
    let net = format!("--net={}", p.display());
    let lo = run(&["nsenter", &net, "ip", "-o", "link", "show", "lo"]);
    assert!(lo.contains("UP"), "lo must be up: {lo}");
    let all = run(&["nsenter", &net, "ip", "-o", "link", "show"]);
    assert_eq!(all.lines().count(), 1, "only lo: {all}");
    // A different netns from ours.
    let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let theirs = run_in_netns(&p, || {
        std::fs::read_link("/proc/thread-self/ns/net").unwrap()
    })
    .unwrap();
    assert_ne!(mine, theirs);
    assert!(create_netns(&p).is_err(), "an existing path is refused");
    assert!(
        mounted(&p),
        "a refused create leaves the existing netns alone"
    );
    remove_netns(&p).unwrap();
    assert!(!mounted(&p));
    assert!(!p.exists());
    remove_netns(&p).unwrap();
}
