//! Links, addresses and routes through rtnetlink: the bridge, the veth pair of an endpoint, and
//! the container side of it (configured from a thread inside the container's netns).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::netns::{NetnsError, run_in_netns};
use crate::subnet::Ipv4Net;

/// Errors of this module; each variant names the netlink step.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening the netlink socket failed.
    #[error("opening a netlink socket")]
    Connect(#[source] std::io::Error),
    /// A netlink request failed; `step` says which.
    #[error("netlink: {step}")]
    Request {
        /// What was being done.
        step: String,
        /// Cause (carries the kernel's errno).
        #[source]
        source: rtnetlink::Error,
    },
    /// The link does not exist.
    #[error("link {0} not found")]
    NoLink(String),
    /// Entering the container netns failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// Opening the container netns file failed.
    #[error("opening netns {path}")]
    OpenNetns {
        /// Netns path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Building the helper runtime for the netns thread failed.
    #[error("building a runtime for the netns thread")]
    Runtime(#[source] std::io::Error),
}

impl NetlinkError {
    fn req(step: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let step = step.into();
        move |source| NetlinkError::Request { step, source }
    }

    /// The kernel's errno behind this error, if it came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Request {
                source: rtnetlink::Error::NetlinkError(m),
                ..
            } => Some(-m.raw_code()),
            _ => None,
        }
    }
}

/// A netlink connection bound to the network namespace of the thread that opened it.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a connection in the calling thread's netns and spawns its driver task on the current
    /// tokio runtime. Must be called inside a runtime.
    pub fn connect() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Index of link `name`, or `None` when there is no such link.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut req = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match req.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(m)) if -m.raw_code() == libc::ENODEV => Ok(None),
            Err(e) => Err(NetlinkError::req(format!("looking up link {name}"))(e)),
        }
    }

    /// Names of all links (for leftover scans).
    pub async fn link_names(&self) -> Result<Vec<String>, NetlinkError> {
        let mut out = Vec::new();
        let mut req = self.handle.link().get().execute();
        while let Some(msg) = req
            .try_next()
            .await
            .map_err(NetlinkError::req("listing links"))?
        {
            for a in msg.attributes {
                if let LinkAttribute::IfName(n) = a {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// Names of the links enslaved to bridge `index` (its ports).
    pub async fn ports_of(&self, index: u32) -> Result<Vec<String>, NetlinkError> {
        let mut out = Vec::new();
        let mut req = self.handle.link().get().execute();
        while let Some(msg) = req
            .try_next()
            .await
            .map_err(NetlinkError::req("listing links"))?
        {
            let mut name = None;
            let mut master = None;
            for a in msg.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = Some(n),
                    LinkAttribute::Controller(c) => master = Some(c),
                    _ => {}
                }
            }
            if master == Some(index)
                && let Some(n) = name
            {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Ensures bridge `name` exists, holds `addr` (gateway/prefix), has `mtu` and is up. A bridge
    /// left by an earlier run is reused. Returns its index.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        addr: Ipv4Net,
        mtu: Option<u32>,
    ) -> Result<u32, NetlinkError> {
        let index = match self.link_index(name).await? {
            Some(i) => i,
            None => {
                let mut b = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Bridge)
                    .name(name.to_string())
                    // A fixed MAC: otherwise the bridge takes the lowest port MAC and changes it
                    // as containers come and go, which upsets peers' ARP caches.
                    .address(mac_from_ip(addr.addr()).to_vec());
                if let Some(m) = mtu {
                    b = b.mtu(m);
                }
                match self.handle.link().add(b.build()).execute().await {
                    Ok(()) => {}
                    Err(rtnetlink::Error::NetlinkError(m)) if -m.raw_code() == libc::EEXIST => {}
                    Err(e) => return Err(NetlinkError::req(format!("creating bridge {name}"))(e)),
                }
                self.link_index(name)
                    .await?
                    .ok_or_else(|| NetlinkError::NoLink(name.to_string()))?
            }
        };
        let have = self.ipv4_addrs(index).await?;
        if !have.contains(&addr) {
            match self
                .handle
                .address()
                .add(index, IpAddr::V4(addr.addr()), addr.prefix_len())
                .execute()
                .await
            {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(m)) if -m.raw_code() == libc::EEXIST => {}
                Err(e) => {
                    return Err(NetlinkError::req(format!("adding {addr} to {name}"))(e));
                }
            }
        }
        let mut set = LinkUnspec::new_with_index(index).up();
        if let Some(m) = mtu {
            set = set.mtu(m);
        }
        self.handle
            .link()
            .set(set.build())
            .execute()
            .await
            .map_err(NetlinkError::req(format!("setting {name} up")))?;
        Ok(index)
    }

    /// IPv4 addresses (with prefix) on link `index`.
    pub async fn ipv4_addrs(&self, index: u32) -> Result<Vec<Ipv4Net>, NetlinkError> {
        let mut out = Vec::new();
        let mut req = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = req
            .try_next()
            .await
            .map_err(NetlinkError::req("listing addresses"))?
        {
            if msg.header.family != AddressFamily::Inet {
                continue;
            }
            for a in &msg.attributes {
                if let AddressAttribute::Address(IpAddr::V4(ip)) = a
                    && let Ok(n) = Ipv4Net::new(*ip, msg.header.prefix_len)
                {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// Deletes link `name`; a missing link is fine.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m)) if -m.raw_code() == libc::ENODEV => Ok(()),
            Err(e) => Err(NetlinkError::req(format!("deleting link {name}"))(e)),
        }
    }

    /// Destinations of every IPv4 route of the netns, all tables (for subnet overlap checks).
    pub async fn ipv4_routes(&self) -> Result<Vec<Ipv4Net>, NetlinkError> {
        let mut out = Vec::new();
        let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let mut req = self.handle.route().get(msg).execute();
        while let Some(r) = req
            .try_next()
            .await
            .map_err(NetlinkError::req("listing routes"))?
        {
            let mut dst = Ipv4Addr::UNSPECIFIED;
            for a in &r.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = a {
                    dst = *ip;
                }
            }
            if let Ok(n) = Ipv4Net::new(dst, r.header.destination_prefix_length) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Turns on hairpin mode of bridge port `name`, so a frame may leave by the port it came in:
    /// a container reaching its own published port through the host address is DNAT'ed back to
    /// itself, and br_netfilter bridges that packet back out of the same port.
    pub async fn set_hairpin(&self, name: &str) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_name(name)
            .set_port_kind(InfoPortKind::Bridge)
            .set_port_data(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )]))
            .build();
        self.handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(NetlinkError::req(format!("setting hairpin mode on {name}")))
    }

    /// Creates a veth pair in one request: `host` attached to bridge `bridge_index` and up, its
    /// peer created directly inside the netns at `netns` as `peer` with MAC `mac` (no move, no
    /// rename). Fails with errno EEXIST when `host` is taken.
    pub async fn add_veth(
        &self,
        host: &str,
        bridge_index: u32,
        netns: &Path,
        peer: &str,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let ns = std::fs::File::open(netns).map_err(|source| NetlinkError::OpenNetns {
            path: netns.to_path_buf(),
            source,
        })?;
        let mut p = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .address(mac.to_vec())
            .setns_by_fd(ns.as_raw_fd());
        let mut h = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .controller(bridge_index)
            .up();
        if let Some(m) = mtu {
            p = p.mtu(m);
            h = h.mtu(m);
        }
        let msg = h
            .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())))
            .build();
        let res = self.handle.link().add(msg).execute().await;
        drop(ns);
        res.map_err(NetlinkError::req(format!("creating veth {host}")))
    }
}

/// What the container side of an endpoint needs.
#[derive(Clone, Debug)]
pub struct ContainerSide {
    /// Interface name inside (eth0).
    pub ifname: String,
    /// Address with prefix.
    pub addr: Ipv4Net,
    /// Default route via this gateway (none for `--internal`); skipped when the netns already
    /// has one (the container's first network keeps the default route).
    pub gateway: Option<Ipv4Addr>,
}

/// Configures the container end inside `netns`: address, up, default route. Runs on a thread that
/// joined the netns, with its own single-threaded runtime, so the caller's runtime and threads
/// never change namespace.
pub async fn configure_container_side(
    netns: &Path,
    cfg: ContainerSide,
) -> Result<(), NetlinkError> {
    let path = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns-cfg".into())
        .spawn(move || {
            let r = run_in_netns(&path, move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(NetlinkError::Runtime)?;
                rt.block_on(configure_here(cfg))
            })
            .map_err(NetlinkError::from)
            .and_then(|r| r);
            let _ = tx.send(r);
        })
        .map_err(NetlinkError::Runtime)?;
    rx.await
        .map_err(|_| NetlinkError::Netns(NetnsError::Thread("netns thread died".into())))?
}

async fn configure_here(cfg: ContainerSide) -> Result<(), NetlinkError> {
    let nl = Netlink::connect()?;
    let index = nl
        .link_index(&cfg.ifname)
        .await?
        .ok_or_else(|| NetlinkError::NoLink(cfg.ifname.clone()))?;
    nl.handle
        .address()
        .add(index, IpAddr::V4(cfg.addr.addr()), cfg.addr.prefix_len())
        .execute()
        .await
        .map_err(NetlinkError::req(format!(
            "adding {} to {}",
            cfg.addr, cfg.ifname
        )))?;
    nl.handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(NetlinkError::req(format!("setting {} up", cfg.ifname)))?;
    if let Some(gw) = cfg.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(index)
            .build();
        let added = nl
            .handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(NetlinkError::req(format!("adding default route via {gw}")));
        match added {
            // A second network (`network connect`, or eth1 at start): the default route of the
            // first network stays, as Docker keeps its gateway endpoint's.
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            other => other?,
        }
    }
    Ok(())
}

/// Docker's MAC for an IPv4 endpoint: 02:42 followed by the four address bytes.
pub fn mac_from_ip(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
