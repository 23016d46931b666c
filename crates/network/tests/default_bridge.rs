//! The default bridge at daemon start: subnet choice beside Docker's networks, `--bip`, and
//! stability across a berthd restart.

#![allow(clippy::unwrap_used)]

mod common;

use berth_network::bridge::{BridgeDriver, DefaultBridgeOptions};
use common::{Netns, in_world, ping_ok, request, run, tempdir};

#[test]
fn default_bridge_coexists_with_docker_and_survives_restart() {
    in_world(|| async {
        let dir = tempdir();
        // docker0 and a compose network, as on this machine.
        for (br, addr) in [
            (common::bridge_name(), "172.17.0.1/16"),
            (common::bridge_name(), "172.18.0.1/16"),
        ] {
            run(&["ip", "link", "add", &br, "type", "bridge"]);
            run(&["ip", "addr", "add", addr, "dev", &br]);
            run(&["ip", "link", "set", &br, "up"]);
        }
        let opts = DefaultBridgeOptions {
            bridge: common::bridge_name(),
            icc: true,
            ..Default::default()
        };
        let net = {
            let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
            let net = drv.default_network("default", &opts).await.unwrap();
            assert_eq!(net.ipam.subnet.to_string(), "172.19.0.0/16");
            assert_eq!(net.ipam.gateway.to_string(), "172.19.0.1");
            drv.create_network(&net).await.unwrap();
            let a = Netns::new(dir.path());
            let ea = drv.setup(&net, &request("a", &a)).await.unwrap();
            assert_eq!(ea.ip.to_string(), "172.19.0.2");
            assert!(ping_ok(None, ea.ip));
            net
        };
        // berthd restarts: the bridge is there with its address; the same subnet comes back.
        let drv = BridgeDriver::new(&dir.path().join("ipam")).unwrap();
        let again = drv.default_network("default", &opts).await.unwrap();
        assert_eq!(again, net);
        // --bip wins.
        let bip = DefaultBridgeOptions {
            bip: Some("10.199.50.1/24".parse().unwrap()),
            ..opts.clone()
        };
        let n = drv.default_network("default", &bip).await.unwrap();
        assert_eq!(n.ipam.subnet.to_string(), "10.199.50.0/24");
        assert_eq!(n.ipam.gateway.to_string(), "10.199.50.1");
    });
}
