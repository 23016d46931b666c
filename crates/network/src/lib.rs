//! Bridge networking for berthd: network namespaces pinned by bind mounts, IPAM, the bridge and
//! veth pairs via rtnetlink, and NAT/DNAT/isolation in one nftables table (`inet berth`) applied
//! as JSON batches through `nft -j -f -`.

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
