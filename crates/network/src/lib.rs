//! Bridge networking: IPAM, veth/netns via netlink, nftables NAT.
