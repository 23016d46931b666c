//! Embedded DNS at 127.0.0.11 inside a container's netns: names of the container's networks
//! resolve, other names are relayed to the upstream (a fake resolver in the test's own netns),
//! and the server is gone once stopped. Queried with busybox nslookup, an independent client.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use berth_network::bridge::BridgeDriver;
use berth_network::dns::{DnsRegistry, serve, upstreams};
use common::{Netns, in_world, network, request, tempdir};
use tokio::net::UdpSocket;

/// A resolver answering every A query with 192.0.2.77 (written independently of berth's code).
async fn fake_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                continue;
            };
            let q = &buf[..n];
            // Find the end of the question: name labels, then type + class.
            let mut i = 12;
            while i < n && q[i] != 0 {
                i += usize::from(q[i]) + 1;
            }
            let end = i + 5;
            if end > n {
                continue;
            }
            let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
            let mut r = q[..end].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            if qtype == 1 {
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 77]);
            }
            let _ = s.send_to(&r, peer).await;
        }
    });
    (addr, task)
}

async fn nslookup(ns: &Netns, name: &str) -> String {
    let net = format!("--net={}", ns.path().display());
    let out = tokio::process::Command::new("nsenter")
        .args([
            net.as_str(),
            "/bin/busybox",
            "nslookup",
            "-type=a",
            name,
            "127.0.0.11",
        ])
        .output()
        .await
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn names_on_the_network_resolve_and_the_rest_is_relayed() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let n1 = network(40, false, true);
        let n2 = network(41, false, true);
        drv.create_network(&n1).await.unwrap();
        drv.create_network(&n2).await.unwrap();
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let c = Netns::new(dir.path());
        let ea = drv.setup(&n1, &request("a", &a)).await.unwrap();
        let _eb = drv.setup(&n1, &request("b", &b)).await.unwrap();
        let ec = drv.setup(&n2, &request("c", &c)).await.unwrap();
        let reg = DnsRegistry::new();
        reg.add(&n1.id, &["alpha".into(), "web".into()], ea.ip);
        reg.add(&n2.id, &["gamma".into()], ec.ip);

        let (up, _up_task) = fake_upstream().await;
        let server = serve(b.path(), reg.clone(), vec![n1.id.clone()], vec![up]).unwrap();

        let out = nslookup(&b, "alpha").await;
        assert!(out.contains(&ea.ip.to_string()), "{out}");
        let out = nslookup(&b, "WEB").await;
        assert!(
            out.contains(&ea.ip.to_string()),
            "alias, case-insensitive: {out}"
        );
        let out = nslookup(&b, "gamma").await;
        assert!(
            !out.contains(&ec.ip.to_string()) && out.contains("192.0.2.77"),
            "a name of another network is not served but relayed: {out}"
        );
        let out = nslookup(&b, "example.org").await;
        assert!(out.contains("192.0.2.77"), "relayed: {out}");

        reg.remove(&n1.id, ea.ip);
        let out = nslookup(&b, "alpha").await;
        assert!(
            !out.contains(&ea.ip.to_string()),
            "removed names vanish: {out}"
        );

        drop(server);
        tokio::task::yield_now().await;
        let out = nslookup(&b, "web").await;
        assert!(
            !out.contains("192.0.2.77") && !out.contains(&ea.ip.to_string()),
            "{out}"
        );
    });
}

#[test]
fn upstreams_come_from_dns_flag_or_host() {
    let host = "nameserver 127.0.0.53\nnameserver 192.0.2.1\n";
    assert_eq!(
        upstreams(host, &[]),
        vec![
            "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
            "192.0.2.1:53".parse().unwrap()
        ]
    );
    assert_eq!(
        upstreams(host, &["9.9.9.9".into()]),
        vec!["9.9.9.9:53".parse::<SocketAddr>().unwrap()]
    );
}
