//! Bridge networking for berthd: network namespaces pinned by bind mounts, IPAM, the bridge and
//! veth pairs via rtnetlink, NAT/DNAT/isolation in one nftables table (`inet berth`) applied as
//! JSON batches through `nft -j -f -`, `/etc/hosts` and `resolv.conf` contents, and the embedded
//! DNS server of user-defined networks.
//!
//! How berthd uses it (all async calls need a tokio runtime; `BridgeDriver` is shared, `Arc`):
//!
//! - daemon start: `BridgeDriver::new(<data-root>/network/ipam)`, then
//!   `default_network("<id>", &DefaultBridgeOptions{..})` (or the stored network) and
//!   `reassert(&all_networks, &live_endpoints)` — it creates missing bridges, reconciles IPAM,
//!   re-reserves published ports and makes the firewall hold exactly the expected rules.
//! - network create/rm: `create_network(&net)` / `remove_network(&net)`.
//! - container start: `netns::create_netns(<exec-root>/netns/<id>)` (blocking, ~1 ms), then per
//!   network `setup(&net, &EndpointRequest{..}) -> Endpoint` (persist it), put the netns path in
//!   the OCI spec, write `etcfiles::hosts`/`resolv_conf` results, and on user networks start
//!   `dns::serve(..)` with names registered in a shared `dns::DnsRegistry`.
//! - container stop/rm: drop its `dns::DnsServer`, per endpoint
//!   `teardown(&net, &ep, VethTeardown::WithNetns)`, then `netns::remove_netns(path)`: the veth
//!   dies with the netns (no 17 ms veth delete). Teardown of an endpoint with published ports
//!   waits for an nftables commit that deletes rules (~10–20 ms here); it may run in the
//!   background — its host ports and address stay taken until it finishes.
//!   `network disconnect` of a running container uses `VethTeardown::Delete`.

mod atomic;
pub mod bridge;
pub mod dns;
pub mod etcfiles;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod subnet;

pub use bridge::{
    BridgeDriver, BridgeError, BridgeNetwork, DefaultBridgeOptions, Endpoint, EndpointRequest,
    ReassertReport, TeardownError, VethTeardown,
};
pub use firewall::{PortMapping, Proto};
pub use ipam::IpamConfig;
pub use ports::PortRequest;
pub use subnet::Ipv4Net;
