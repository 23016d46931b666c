//! Bridge driver on the real kernel: connectivity, isolation, internal networks, icc, teardown.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;

use berth_network::bridge::{BridgeDriver, VethTeardown};
use common::{Netns, in_world, links, network, nft_table, ping, ping_ok, request, run, tempdir};

fn ns_run(ns: &Netns, args: &[&str]) -> String {
    let net = format!("--net={}", ns.path().display());
    let mut v = vec!["nsenter", net.as_str()];
    v.extend_from_slice(args);
    run(&v)
}

#[test]
fn two_containers_ping_each_other_and_the_host_reaches_them() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(1, false, true);
        drv.create_network(&net).await.unwrap();
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let ea = drv.setup(&net, &request("a", &a)).await.unwrap();
        let eb = drv.setup(&net, &request("b", &b)).await.unwrap();
        assert_ne!(ea.ip, eb.ip);
        assert!(net.ipam.subnet.contains(ea.ip) && net.ipam.subnet.contains(eb.ip));
        assert_eq!(ea.gateway, Some(net.ipam.gateway));

        let addr = ns_run(&a, &["ip", "-o", "-4", "addr", "show", "eth0"]);
        assert!(addr.contains(&format!("{}/24", ea.ip)), "{addr}");
        let link = ns_run(&a, &["ip", "-o", "link", "show", "eth0"]);
        let o = ea.ip.octets();
        let mac = format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
        assert_eq!(ea.mac, mac);
        assert!(
            link.contains(&mac) && link.contains("UP") && link.contains("mtu 1500"),
            "{link}"
        );
        let routes = ns_run(&a, &["ip", "-4", "route"]);
        assert!(
            routes.contains(&format!("default via {}", net.ipam.gateway)),
            "{routes}"
        );

        let host_side = run(&["ip", "-o", "link", "show", &ea.veth_host]);
        assert!(
            host_side.contains(&format!("master {}", net.bridge)),
            "{host_side}"
        );
        assert!(ea.veth_host.starts_with("veth") && ea.veth_host.len() == 11);
        let br = run(&["ip", "-o", "-4", "addr", "show", &net.bridge]);
        assert!(br.contains("10.199.1.1/24"), "{br}");

        assert!(ping_ok(Some(a.path()), eb.ip), "a → b");
        assert!(ping_ok(Some(b.path()), ea.ip), "b → a");
        assert!(ping_ok(None, ea.ip), "host → a");
        assert!(ping_ok(Some(a.path()), net.ipam.gateway), "a → gateway");
    });
}

#[test]
fn different_bridges_are_isolated_by_berths_rules() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let n1 = network(2, false, true);
        let n2 = network(3, false, true);
        drv.create_network(&n1).await.unwrap();
        drv.create_network(&n2).await.unwrap();
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let ea = drv.setup(&n1, &request("a", &a)).await.unwrap();
        let eb = drv.setup(&n2, &request("b", &b)).await.unwrap();
        assert!(
            ping_ok(Some(a.path()), n1.ipam.gateway),
            "sanity: a reaches its gateway"
        );
        assert!(ping_ok(None, eb.ip), "sanity: host reaches b");
        assert!(ping_ok(None, ea.ip), "sanity: host reaches a");
        assert!(
            ping_ok(Some(b.path()), n2.ipam.gateway),
            "sanity: b reaches its gateway"
        );
        assert!(
            !ping(Some(a.path()), eb.ip),
            "a must not reach b on another network"
        );
        assert!(
            !ping(Some(b.path()), ea.ip),
            "b must not reach a on another network"
        );
        // Without berth's bridge rules the same packets flow: the isolation is ours.
        drv.firewall().remove_bridge(&n1.bridge).await.unwrap();
        drv.firewall().remove_bridge(&n2.bridge).await.unwrap();
        assert!(
            ping_ok(Some(a.path()), eb.ip),
            "without isolation rules a reaches b"
        );
    });
}

#[test]
fn internal_network_has_no_default_route_but_local_traffic() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(4, true, true);
        drv.create_network(&net).await.unwrap();
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let ea = drv.setup(&net, &request("a", &a)).await.unwrap();
        let eb = drv.setup(&net, &request("b", &b)).await.unwrap();
        assert_eq!(ea.gateway, None);
        let routes = ns_run(&a, &["ip", "-4", "route"]);
        assert!(!routes.contains("default"), "{routes}");
        assert!(routes.contains("10.199.4.0/24"), "{routes}");
        assert!(
            ping_ok(Some(a.path()), eb.ip),
            "same internal network talks"
        );
        let table = nft_table();
        assert!(
            !table.contains(&format!(
                "ip saddr 10.199.4.0/24 oifname != \"{}\" masquerade",
                net.bridge
            )),
            "no outbound masquerade for internal: {table}"
        );
    });
}

#[test]
fn icc_false_blocks_containers_on_the_same_bridge() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(5, false, false);
        drv.create_network(&net).await.unwrap();
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let _ea = drv.setup(&net, &request("a", &a)).await.unwrap();
        let eb = drv.setup(&net, &request("b", &b)).await.unwrap();
        assert!(
            ping_ok(Some(a.path()), net.ipam.gateway),
            "sanity: gateway reachable"
        );
        assert!(ping_ok(None, eb.ip), "sanity: host reaches b");
        assert!(
            !ping(Some(a.path()), eb.ip),
            "icc=false: a must not reach b"
        );
    });
}

#[test]
fn teardown_leaves_no_veth_rules_or_address() {
    in_world(|| async {
        let dir = tempdir();
        let ipam_dir = dir.path().join("ipam");
        let drv = BridgeDriver::new(&ipam_dir).unwrap();
        let net = network(6, false, true);
        drv.create_network(&net).await.unwrap();

        // Disconnect while the container lives: the veth is deleted at once.
        let a = Netns::new(dir.path());
        let mut req = request("ep-a", &a);
        req.ports = vec![berth_network::ports::PortRequest {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: None,
            container_port: 80,
            proto: berth_network::firewall::Proto::Tcp,
        }];
        let ea = drv.setup(&net, &req).await.unwrap();
        assert!(nft_table().contains("ep/ep-a#"));
        drv.teardown(&net, &ea, VethTeardown::Delete).await.unwrap();
        assert!(!links().contains(&ea.veth_host), "veth deleted");
        assert!(!ns_run(&a, &["ip", "-o", "link"]).contains("eth0"));
        assert!(!nft_table().contains("ep/ep-a#"), "{}", nft_table());
        let state = std::fs::read_to_string(ipam_dir.join(format!("{}.json", net.id))).unwrap();
        assert!(!state.contains("ep-a"), "{state}");

        // Container removal: teardown, then the netns goes and takes the veth with it.
        let b = Netns::new(dir.path());
        let eb = drv.setup(&net, &request("ep-b", &b)).await.unwrap();
        drv.teardown(&net, &eb, VethTeardown::WithNetns)
            .await
            .unwrap();
        let bpath = b.path().to_path_buf();
        drop(b);
        assert!(!bpath.exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&*bpath.to_string_lossy()));
        assert!(
            common::eventually(|| !links().contains(&eb.veth_host)),
            "veth died with netns"
        );
        // Teardown twice is harmless.
        drv.teardown(&net, &eb, VethTeardown::Delete).await.unwrap();
    });
}

#[test]
fn fifty_cycles_leave_links_rules_and_ipam_clean() {
    in_world(|| async {
        let dir = tempdir();
        let ipam_dir = dir.path().join("ipam");
        let drv = BridgeDriver::new(&ipam_dir).unwrap();
        let net = network(7, false, true);
        drv.create_network(&net).await.unwrap();
        let table_before = nft_table();
        let mut seen = std::collections::HashSet::new();
        let t0 = std::time::Instant::now();
        for i in 0..50 {
            let ns = Netns::new(dir.path());
            let mut req = request(&format!("cyc{i}"), &ns);
            req.ports = vec![berth_network::ports::PortRequest {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: None,
                container_port: 80,
                proto: berth_network::firewall::Proto::Tcp,
            }];
            let ep = drv.setup(&net, &req).await.unwrap();
            seen.insert(ep.ip);
            drv.teardown(&net, &ep, VethTeardown::WithNetns)
                .await
                .unwrap();
        }
        // Informational only (no timed assertion): netns + veth + address + route + DNAT rule,
        // then teardown and netns removal.
        println!("per cycle with one published port: {:?}", t0.elapsed() / 50);
        assert!(
            seen.len() > 1,
            "addresses rotate instead of being reused at once"
        );
        let mut want = vec!["lo".to_string(), net.bridge.clone()];
        want.sort();
        assert!(
            common::eventually(|| {
                let mut l = links();
                l.sort();
                l == want
            }),
            "links left: {:?}",
            links()
        );
        assert_eq!(nft_table(), table_before);
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(ipam_dir.join(format!("{}.json", net.id))).unwrap(),
        )
        .unwrap();
        assert_eq!(state["allocations"], serde_json::json!({}), "{state}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&*dir.path().to_string_lossy()),
            "netns mounts left"
        );

        drv.remove_network(&net).await.unwrap();
        assert!(!links().contains(&net.bridge));
        assert!(!nft_table().contains(&net.bridge));
        assert!(!ipam_dir.join(format!("{}.json", net.id)).exists());
    });
}

#[test]
fn a_second_network_adds_eth1_and_keeps_the_first_default_route() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let n1 = network(11, false, true);
        let n2 = network(12, false, true);
        drv.create_network(&n1).await.unwrap();
        drv.create_network(&n2).await.unwrap();
        let a = Netns::new(dir.path());
        let e0 = drv.setup(&n1, &request("a0", &a)).await.unwrap();
        let mut r1 = request("a1", &a);
        r1.ifname = "eth1".into();
        let e1 = drv.setup(&n2, &r1).await.unwrap();
        assert_eq!(e1.gateway, Some(n2.ipam.gateway));
        let addr = ns_run(&a, &["ip", "-o", "-4", "addr", "show", "eth1"]);
        assert!(addr.contains(&format!("{}/24", e1.ip)), "{addr}");
        let routes = ns_run(&a, &["ip", "-4", "route", "show", "default"]);
        assert_eq!(routes.lines().count(), 1, "{routes}");
        assert!(
            routes.starts_with(&format!("default via {} dev eth0 ", n1.ipam.gateway)),
            "{routes}"
        );
        assert!(ping_ok(Some(a.path()), n2.ipam.gateway), "eth1 works");
        drv.teardown(&n2, &e1, VethTeardown::Delete).await.unwrap();
        drv.teardown(&n1, &e0, VethTeardown::WithNetns)
            .await
            .unwrap();
    });
}
