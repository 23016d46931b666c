//! Firewall ownership: DOCKER-USER accepts come and go with berth's bridges, re-assertion after a
//! restart repairs drift, and nothing outside `inet berth` is touched otherwise. Docker's tables
//! are faked inside the test's own netns, never the host's.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;

use berth_network::bridge::{BridgeDriver, VethTeardown};
use berth_network::firewall::Proto;
use berth_network::ports::PortRequest;
use common::{Netns, in_world, network, nft_table, ping, ping_ok, request, run, tempdir};

fn docker_user() -> String {
    run(&["nft", "list", "chain", "ip", "filter", "DOCKER-USER"])
}

fn have_iptables() -> bool {
    std::process::Command::new("iptables")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds what dockerd 20.10 leaves in `ip filter`: FORWARD policy drop jumping to DOCKER-USER,
/// which ends in `return`. Made with iptables (nf_tables backend) the way dockerd does when
/// iptables is installed, else with nft.
fn fake_dockerd() {
    if have_iptables() {
        run(&["iptables", "-N", "DOCKER-USER"]);
        run(&["iptables", "-A", "DOCKER-USER", "-j", "RETURN"]);
        run(&["iptables", "-P", "FORWARD", "DROP"]);
        run(&["iptables", "-I", "FORWARD", "-j", "DOCKER-USER"]);
    } else {
        println!("NOTE: iptables absent; DOCKER-USER faked with nft");
        run(&["nft", "add table ip filter"]);
        run(&[
            "nft",
            "add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }",
        ]);
        run(&["nft", "add chain ip filter DOCKER-USER"]);
        run(&["nft", "add rule ip filter FORWARD counter jump DOCKER-USER"]);
        run(&["nft", "add rule ip filter DOCKER-USER counter return"]);
    }
}

#[test]
fn docker_user_accepts_follow_the_bridge() {
    in_world(|| async {
        fake_dockerd();
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let n1 = network(20, false, true);
        let n2 = network(21, false, true);
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());

        drv.create_network(&n1).await.unwrap();
        drv.create_network(&n2).await.unwrap();
        let du = docker_user();
        for br in [&n1.bridge, &n2.bridge] {
            assert!(du.contains(&format!("iifname \"{br}\" accept")), "{du}");
            assert!(du.contains(&format!("oifname \"{br}\" accept")), "{du}");
        }
        assert!(du.contains("return"), "dockerd's own rule kept: {du}");
        if have_iptables() {
            // dockerd's own tool still reads the chain, berth's rules included.
            let s = run(&["iptables", "-S", "DOCKER-USER"]);
            assert!(
                s.contains(&format!("-A DOCKER-USER -i {} ", n1.bridge)),
                "{s}"
            );
            assert!(s.contains("-j ACCEPT") && s.contains("-j RETURN"), "{s}");
        }
        let ret = du.lines().position(|l| l.contains("return")).unwrap();
        let ours = du.lines().position(|l| l.contains("accept")).unwrap();
        assert!(
            ours < ret,
            "berth's accepts come before dockerd's return: {du}"
        );

        // Bridged traffic passes dockerd's FORWARD (policy drop, seen through br_netfilter)
        // only thanks to these accepts.
        let _ea = drv.setup(&n1, &request("a", &a)).await.unwrap();
        let eb = drv.setup(&n1, &request("b", &b)).await.unwrap();
        assert!(
            ping_ok(Some(a.path()), eb.ip),
            "same-bridge traffic passes dockerd's FORWARD"
        );
        drv.firewall().remove_bridge(&n1.bridge).await.unwrap();
        assert!(!docker_user().contains(&n1.bridge));
        assert!(
            !ping(Some(a.path()), eb.ip),
            "without the accepts dockerd drops it"
        );

        // Re-adding the bridge does not duplicate.
        drv.create_network(&n1).await.unwrap();
        let du = docker_user();
        assert_eq!(
            du.matches(&format!("iifname \"{}\" accept", n1.bridge))
                .count(),
            1,
            "{du}"
        );

        drv.remove_network(&n1).await.unwrap();
        let du = docker_user();
        assert!(!du.contains(&n1.bridge), "{du}");
        assert!(du.contains(&n2.bridge), "other bridge's accepts stay: {du}");
        drv.remove_network(&n2).await.unwrap();
        let du = docker_user();
        assert!(!du.contains("berth"), "{du}");
        assert!(du.contains("return"), "{du}");
        let filter = run(&["nft", "list", "table", "ip", "filter"]);
        assert!(!filter.contains("berth"), "{filter}");
    });
}

#[test]
fn without_docker_user_only_inet_berth_exists() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(22, false, true);
        drv.create_network(&net).await.unwrap();
        let tables = run(&["nft", "list", "tables"]);
        assert_eq!(tables.trim(), "table inet berth", "{tables}");
    });
}

#[test]
fn reassert_after_restart_restores_missing_and_drops_stale() {
    in_world(|| async {
        let dir = tempdir();
        let ipam_dir = dir.path().join("ipam");
        let net = network(23, false, true);
        let gone = network(24, false, true);
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let (ea, eb) = {
            let drv = BridgeDriver::new(&ipam_dir).unwrap();
            drv.create_network(&net).await.unwrap();
            drv.create_network(&gone).await.unwrap();
            let mut ra = request("keep", &a);
            ra.ports = vec![PortRequest {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: None,
                container_port: 80,
                proto: Proto::Tcp,
            }];
            let mut rb = request("lost", &b);
            rb.ports = ra.ports.clone();
            let ea = drv.setup(&net, &ra).await.unwrap();
            let eb = drv.setup(&net, &rb).await.unwrap();
            (ea, eb)
            // berthd "dies" here: the driver is dropped without teardown.
        };
        // While it was down: container "lost" was removed (its netns went), network `gone` was
        // removed from the store, and someone deleted a rule of ours.
        drop(b);
        let handle_line = run(&["nft", "-a", "list", "chain", "inet", "berth", "publish"]);
        let keep_handle = handle_line
            .lines()
            .find(|l| l.contains("ep/keep#"))
            .and_then(|l| l.rsplit("handle ").next())
            .unwrap()
            .trim()
            .to_string();
        run(&[
            "nft",
            "delete",
            "rule",
            "inet",
            "berth",
            "publish",
            "handle",
            &keep_handle,
        ]);
        assert!(!nft_table().contains("ep/keep#"));

        let drv = BridgeDriver::new(&ipam_dir).unwrap();
        let report = drv
            .reassert(std::slice::from_ref(&net), std::slice::from_ref(&ea))
            .await
            .unwrap();
        let t = nft_table();
        assert!(t.contains("ep/keep#"), "missing rule restored: {t}");
        assert!(!t.contains("ep/lost#"), "stale endpoint rule removed: {t}");
        assert!(!t.contains(&gone.bridge), "stale bridge rules removed: {t}");
        assert_eq!(report.rules_added, 1, "{report:?}");
        assert!(report.rules_removed >= 2, "{report:?}");
        assert_eq!(report.addresses_freed, vec![(eb.ip, "lost".to_string())]);
        let state = std::fs::read_to_string(ipam_dir.join(format!("{}.json", net.id))).unwrap();
        assert!(state.contains("keep") && !state.contains("lost"), "{state}");
        // The port of the live endpoint is still berth's.
        let err = drv
            .setup(
                &net,
                &berth_network::bridge::EndpointRequest {
                    ports: vec![PortRequest {
                        host_ip: Ipv4Addr::UNSPECIFIED,
                        host_port: Some(ea.ports[0].host_port),
                        container_port: 80,
                        proto: Proto::Tcp,
                    }],
                    ..request("other", &Netns::new(dir.path()))
                },
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("port is already allocated"),
            "{err}"
        );
        // A second reassert changes nothing.
        let again = drv
            .reassert(std::slice::from_ref(&net), std::slice::from_ref(&ea))
            .await
            .unwrap();
        assert_eq!(
            (again.rules_added, again.rules_removed),
            (0, 0),
            "{again:?}"
        );
        assert!(ping_ok(None, ea.ip));
        drv.teardown(&net, &ea, VethTeardown::WithNetns)
            .await
            .unwrap();
        assert!(!nft_table().contains("ep/keep#"));
    });
}

#[test]
fn choose_subnet_avoids_routes_and_taken_networks() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        // Pretend docker0 and a compose network hold 172.17/16 and 172.18/16.
        let d0 = common::bridge_name();
        let d1 = common::bridge_name();
        for (br, addr) in [(&d0, "172.17.0.1/16"), (&d1, "172.18.0.1/16")] {
            run(&["ip", "link", "add", br, "type", "bridge"]);
            run(&["ip", "addr", "add", addr, "dev", br]);
            run(&["ip", "link", "set", br, "up"]);
        }
        let s = drv.choose_subnet(None, &[]).await.unwrap();
        assert_eq!(s.to_string(), "172.19.0.0/16");
        let s = drv
            .choose_subnet(None, &["172.19.0.0/16".parse().unwrap()])
            .await
            .unwrap();
        assert_eq!(s.to_string(), "172.20.0.0/16");
        let pool = [
            "172.17.0.0/16".parse().unwrap(),
            "10.199.30.0/24".parse().unwrap(),
        ];
        let s = drv.choose_subnet(Some(&pool), &[]).await.unwrap();
        assert_eq!(s.to_string(), "10.199.30.0/24");
        assert!(drv.choose_subnet(Some(&pool[..1]), &[]).await.is_err());
    });
}

#[test]
fn dockerd_started_after_berth_gets_accepts_on_refresh() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(25, false, true);
        drv.create_network(&net).await.unwrap();
        let table = nft_table();
        fake_dockerd();
        assert!(!docker_user().contains(&net.bridge));
        drv.refresh_docker_user(std::slice::from_ref(&net))
            .await
            .unwrap();
        let du = docker_user();
        assert!(
            du.contains(&format!("iifname \"{}\" accept", net.bridge)),
            "{du}"
        );
        drv.refresh_docker_user(std::slice::from_ref(&net))
            .await
            .unwrap();
        assert_eq!(docker_user(), du, "refresh is idempotent");
        // Re-creating an unchanged network leaves the table untouched (same handles).
        let before = run(&["nft", "-a", "list", "table", "inet", "berth"]);
        drv.create_network(&net).await.unwrap();
        assert_eq!(
            run(&["nft", "-a", "list", "table", "inet", "berth"]),
            before
        );
        assert_eq!(nft_table(), table);
    });
}
