//! Published ports: DNAT from 127.0.0.1 and the bridge address, hairpin, conflicts.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use berth_network::bridge::{BridgeDriver, BridgeError, EndpointRequest};
use berth_network::firewall::Proto;
use berth_network::ports::{PortError, PortRequest};
use common::{Netns, eventually, http_get, httpd, in_world, links, network, request, tempdir};

fn port(
    host_ip: Ipv4Addr,
    host_port: Option<u16>,
    container_port: u16,
    proto: Proto,
) -> PortRequest {
    PortRequest {
        host_ip,
        host_port,
        container_port,
        proto,
    }
}

fn with_ports(mut r: EndpointRequest, ports: Vec<PortRequest>) -> EndpointRequest {
    r.ports = ports;
    r
}

#[test]
fn published_port_answers_on_loopback_bridge_address_and_hairpin() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(10, false, true);
        drv.create_network(&net).await.unwrap();
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let ea = drv
            .setup(
                &net,
                &with_ports(
                    request("web", &a),
                    vec![port(Ipv4Addr::UNSPECIFIED, None, 80, Proto::Tcp)],
                ),
            )
            .await
            .unwrap();
        let eb = drv.setup(&net, &request("client", &b)).await.unwrap();
        let hp = ea.ports[0].host_port;
        assert_ne!(hp, 0, "ephemeral host port resolved");

        let www = dir.path().join("www");
        std::fs::create_dir(&www).unwrap();
        let marker = format!("berth-marker-{}", std::process::id());
        std::fs::write(www.join("index.html"), &marker).unwrap();
        let _srv = httpd(a.path(), &www);
        assert!(
            eventually(|| http_get(SocketAddrV4::new(ea.ip, 80)).is_some()),
            "httpd did not come up"
        );

        let lo = http_get(SocketAddrV4::new(Ipv4Addr::LOCALHOST, hp)).expect("127.0.0.1:hostport");
        assert!(lo.contains(&marker), "{lo}");
        let gw = http_get(SocketAddrV4::new(net.ipam.gateway, hp)).expect("gateway:hostport");
        assert!(gw.contains(&marker), "{gw}");
        // Hairpin: containers on the bridge (the server itself included) reach the published
        // port through the host's address.
        // A container on another network reaches the published port through its own gateway
        // (a host address), though isolation keeps it from the container's address.
        let other = network(14, false, true);
        drv.create_network(&other).await.unwrap();
        let c = Netns::new(dir.path());
        let _ec = drv.setup(&other, &request("elsewhere", &c)).await.unwrap();
        assert!(common::ping_ok(Some(c.path()), other.ipam.gateway));
        let from_c = common::http_get_in(c.path(), other.ipam.gateway, hp);
        assert!(
            from_c.contains(&marker),
            "published port from another network: {from_c:?}"
        );
        assert!(
            !common::ping(Some(c.path()), ea.ip),
            "isolation still holds"
        );
        let from_b = common::http_get_in(b.path(), net.ipam.gateway, hp);
        let from_a = common::http_get_in(a.path(), net.ipam.gateway, hp);
        assert!(
            from_b.contains(&marker),
            "hairpin from another container: {from_b:?} (self: {from_a:?})"
        );
        assert!(
            from_a.contains(&marker),
            "hairpin from the server itself: {from_a:?}"
        );
        let _ = eb;
        // An unpublished port is not forwarded.
        assert!(
            http_get(SocketAddrV4::new(
                Ipv4Addr::LOCALHOST,
                hp.wrapping_add(1).max(1)
            ))
            .is_none()
        );
    });
}

#[test]
fn loopback_only_publish_is_not_reachable_on_the_bridge_address() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(11, false, true);
        drv.create_network(&net).await.unwrap();
        let a = Netns::new(dir.path());
        let ea = drv
            .setup(
                &net,
                &with_ports(
                    request("web", &a),
                    vec![port(Ipv4Addr::LOCALHOST, None, 80, Proto::Tcp)],
                ),
            )
            .await
            .unwrap();
        let hp = ea.ports[0].host_port;
        let www = dir.path().join("www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("index.html"), "hello-lo").unwrap();
        let _srv = httpd(a.path(), &www);
        assert!(eventually(
            || http_get(SocketAddrV4::new(ea.ip, 80)).is_some()
        ));
        assert!(
            http_get(SocketAddrV4::new(Ipv4Addr::LOCALHOST, hp))
                .unwrap()
                .contains("hello-lo")
        );
        assert!(http_get(SocketAddrV4::new(net.ipam.gateway, hp)).is_none());
    });
}

#[test]
fn same_host_port_twice_is_refused_like_docker() {
    in_world(|| async {
        let dir = tempdir();
        let ipam_dir = dir.path().join("ipam");
        let drv = BridgeDriver::new(&ipam_dir).unwrap();
        let net = network(12, false, true);
        drv.create_network(&net).await.unwrap();
        let a = Netns::new(dir.path());
        let b = Netns::new(dir.path());
        let ea = drv
            .setup(
                &net,
                &with_ports(
                    request("a", &a),
                    vec![port(Ipv4Addr::UNSPECIFIED, None, 80, Proto::Tcp)],
                ),
            )
            .await
            .unwrap();
        let hp = ea.ports[0].host_port;
        let links_before = links();
        for ip in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::LOCALHOST] {
            let err = drv
                .setup(
                    &net,
                    &with_ports(request("b", &b), vec![port(ip, Some(hp), 80, Proto::Tcp)]),
                )
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Bind for {ip}:{hp} failed: port is already allocated")
            );
        }
        assert_eq!(links(), links_before, "a refused setup creates no veth");
        let state = std::fs::read_to_string(ipam_dir.join(format!("{}.json", net.id))).unwrap();
        assert!(
            !state.contains("\"b\""),
            "a refused setup holds no address: {state}"
        );
        // The same port over UDP is another socket: allowed.
        let eb = drv
            .setup(
                &net,
                &with_ports(
                    request("b", &b),
                    vec![port(Ipv4Addr::UNSPECIFIED, Some(hp), 80, Proto::Udp)],
                ),
            )
            .await
            .unwrap();
        assert_eq!(eb.ports[0].host_port, hp);
    });
}

#[test]
fn port_held_by_a_host_process_is_refused() {
    in_world(|| async {
        let dir = tempdir();
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let net = network(13, false, true);
        drv.create_network(&net).await.unwrap();
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hp = busy.local_addr().unwrap().port();
        let a = Netns::new(dir.path());
        let err = drv
            .setup(
                &net,
                &with_ports(
                    request("a", &a),
                    vec![port(Ipv4Addr::UNSPECIFIED, Some(hp), 80, Proto::Tcp)],
                ),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, BridgeError::Port(PortError::Bind { .. })),
            "{err}"
        );
        assert!(
            err.to_string().contains("address already in use")
                || err.to_string().contains("EADDRINUSE"),
            "{err}"
        );
        drop(busy);
        let ea = drv
            .setup(
                &net,
                &with_ports(
                    request("a", &a),
                    vec![port(Ipv4Addr::UNSPECIFIED, Some(hp), 80, Proto::Tcp)],
                ),
            )
            .await
            .unwrap();
        // While published, a host process cannot take the port.
        assert!(std::net::TcpListener::bind(("127.0.0.1", hp)).is_err());
        drv.teardown(&net, &ea, berth_network::bridge::VethTeardown::WithNetns)
            .await
            .unwrap();
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", hp)).is_ok(),
            "released at teardown"
        );
    });
}
