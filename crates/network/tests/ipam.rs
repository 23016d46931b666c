//! IPAM: allocation order, reserved addresses, static requests, release, persistence, reconcile.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::Ipv4Addr;

use berth_network::ipam::{Ipam, IpamConfig, IpamError};

fn cfg(subnet: &str, gw: [u8; 4], range: Option<&str>) -> IpamConfig {
    IpamConfig {
        subnet: subnet.parse().unwrap(),
        gateway: Ipv4Addr::from(gw),
        ip_range: range.map(|r| r.parse().unwrap()),
    }
}

#[test]
fn allocates_skipping_network_gateway_broadcast_until_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    // /29: .0 network, .1 gateway, .7 broadcast → .2 … .6 usable.
    let mut ipam = Ipam::open(dir.path(), "n1", cfg("10.9.0.0/29", [10, 9, 0, 1], None)).unwrap();
    let got: Vec<Ipv4Addr> = (0..5)
        .map(|i| ipam.allocate(&format!("e{i}"), None).unwrap())
        .collect();
    let want: Vec<Ipv4Addr> = (2..=6).map(|h| Ipv4Addr::new(10, 9, 0, h)).collect();
    assert_eq!(got, want);
    assert!(matches!(
        ipam.allocate("e5", None),
        Err(IpamError::Exhausted { .. })
    ));
}

#[test]
fn same_endpoint_gets_same_address_and_static_rules_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(dir.path(), "n1", cfg("10.9.0.0/24", [10, 9, 0, 1], None)).unwrap();
    let a = ipam.allocate("a", None).unwrap();
    assert_eq!(
        ipam.allocate("a", None).unwrap(),
        a,
        "idempotent per endpoint"
    );
    let s = Ipv4Addr::new(10, 9, 0, 50);
    assert_eq!(ipam.allocate("b", Some(s)).unwrap(), s);
    match ipam.allocate("c", Some(s)) {
        Err(IpamError::InUse { holder, .. }) => assert_eq!(holder, "b"),
        other => panic!("expected InUse, got {other:?}"),
    }
    for bad in [
        Ipv4Addr::new(10, 9, 1, 5),
        Ipv4Addr::new(10, 9, 0, 1),
        Ipv4Addr::new(10, 9, 0, 0),
        Ipv4Addr::new(10, 9, 0, 255),
    ] {
        assert!(
            matches!(
                ipam.allocate("d", Some(bad)),
                Err(IpamError::OutOfRange { .. })
            ),
            "{bad} must be refused"
        );
    }
    // Dynamic allocation never hands out a statically held address.
    for i in 0..60 {
        assert_ne!(ipam.allocate(&format!("x{i}"), None).unwrap(), s);
    }
}

#[test]
fn release_does_not_reuse_at_once_and_ip_range_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(
        dir.path(),
        "n1",
        cfg("10.9.0.0/24", [10, 9, 0, 1], Some("10.9.0.128/30")),
    )
    .unwrap();
    let a = ipam.allocate("a", None).unwrap();
    assert_eq!(a, Ipv4Addr::new(10, 9, 0, 128));
    ipam.release("a").unwrap();
    assert_eq!(ipam.holder(a), None);
    let b = ipam.allocate("b", None).unwrap();
    assert_ne!(b, a, "a just-released address is not handed out next");
    let c = ipam.allocate("c", None).unwrap();
    let d = ipam.allocate("d", None).unwrap();
    let all: HashSet<Ipv4Addr> = [b, c, d].into();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|ip| (128..=131).contains(&ip.octets()[3])));
    let e = ipam.allocate("e", None).unwrap();
    assert_eq!(e, a, "after wrapping around, the freed address is reused");
    assert!(ipam.allocate("f", None).is_err());
    assert!(
        Ipam::open(dir.path(), "bad", cfg("10.9.0.0/24", [10, 9, 1, 1], None)).is_err(),
        "gateway outside subnet"
    );
    assert!(
        Ipam::open(
            dir.path(),
            "bad",
            cfg("10.9.0.0/24", [10, 9, 0, 1], Some("10.8.0.0/30"))
        )
        .is_err(),
        "range outside subnet"
    );
}

#[test]
fn state_persists_and_reconcile_frees_dead_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg("10.9.0.0/24", [10, 9, 0, 1], None);
    let (a, b) = {
        let mut ipam = Ipam::open(dir.path(), "n1", c.clone()).unwrap();
        (
            ipam.allocate("a", None).unwrap(),
            ipam.allocate("b", None).unwrap(),
        )
    };
    let file = std::fs::read_to_string(dir.path().join("n1.json")).unwrap();
    assert!(
        file.contains(&a.to_string()) && file.contains("\"b\""),
        "{file}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(leftovers, vec!["n1.json".to_string()], "no temp files left");

    let mut ipam = Ipam::open(dir.path(), "n1", c.clone()).unwrap();
    assert_eq!(ipam.holder(a), Some("a"));
    assert_eq!(ipam.holder(b), Some("b"));
    let n = ipam.allocate("n", None).unwrap();
    assert!(n != a && n != b, "reloaded state blocks reuse");
    let live: HashSet<String> = ["b".to_string(), "n".to_string()].into();
    let freed = ipam.reconcile(&live).unwrap();
    assert_eq!(freed, vec![(a, "a".to_string())]);
    drop(ipam);
    let ipam = Ipam::open(dir.path(), "n1", c).unwrap();
    assert_eq!(ipam.holder(a), None, "reconcile was persisted");
    assert_eq!(ipam.allocations().len(), 2);
    Ipam::remove(dir.path(), "n1").unwrap();
    assert!(!dir.path().join("n1.json").exists());
    Ipam::remove(dir.path(), "n1").unwrap();
}

#[test]
fn corrupt_state_is_set_aside_and_started_over() {
    // Derived state (reconcile rebuilds it from live endpoints): a file a host crash tore is
    // kept for inspection, never silently overwritten, and IPAM starts empty.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("n1.json"), b"{not json").unwrap();
    let mut ipam = Ipam::open(dir.path(), "n1", cfg("10.9.0.0/24", [10, 9, 0, 1], None)).unwrap();
    assert!(ipam.allocations().is_empty());
    assert_eq!(
        std::fs::read(dir.path().join("n1.json.corrupt")).unwrap(),
        b"{not json"
    );
    let a = ipam.allocate("ep1", None).unwrap();
    let again = Ipam::open(dir.path(), "n1", cfg("10.9.0.0/24", [10, 9, 0, 1], None)).unwrap();
    assert_eq!(again.holder(a), Some("ep1"));
}

#[test]
fn stale_temp_files_of_a_crashed_save_are_removed_and_state_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(dir.path(), "n1", cfg("10.9.0.0/24", [10, 9, 0, 1], None)).unwrap();
    let a = ipam.allocate("a", None).unwrap();
    drop(ipam);
    // What a SIGKILL between write and rename leaves behind.
    std::fs::write(dir.path().join(".n1.json.tmp4242"), b"{\"torn").unwrap();
    std::fs::write(dir.path().join("unrelated"), b"x").unwrap();
    assert_eq!(Ipam::remove_stale_temp_files(dir.path()).unwrap(), 1);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["n1.json", "unrelated"]);
    let ipam = Ipam::open(dir.path(), "n1", cfg("10.9.0.0/24", [10, 9, 0, 1], None)).unwrap();
    assert_eq!(ipam.holder(a), Some("a"));
    assert_eq!(
        Ipam::remove_stale_temp_files(&dir.path().join("missing")).unwrap(),
        0
    );
}
