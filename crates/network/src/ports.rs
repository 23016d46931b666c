//! Host-port bookkeeping for published ports: conflicts between endpoints (Docker's "port is
//! already allocated") and reservations against host processes. A reservation is a socket bound
//! (not listening) to the host address and port and held for the endpoint's life, as Docker's
//! port mapper does: it fails when a host process already has the port, and keeps host processes
//! from taking it later (their traffic would be DNAT'ed away silently).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};
use serde::{Deserialize, Serialize};

use crate::firewall::{PortMapping, Proto};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Another berth endpoint publishes the same host address, port and protocol.
    #[error("Bind for {host_ip}:{host_port} failed: port is already allocated")]
    Allocated {
        /// Host address.
        host_ip: Ipv4Addr,
        /// Host port.
        host_port: u16,
    },
    /// A host process holds the port.
    #[error("Error starting userland proxy: listen {proto}4 {host_ip}:{host_port}: bind: {source}")]
    Bind {
        /// Protocol.
        proto: &'static str,
        /// Host address.
        host_ip: Ipv4Addr,
        /// Host port (0 for an ephemeral request).
        host_port: u16,
        /// Cause.
        #[source]
        source: nix::Error,
    },
}

/// A port to publish as requested by the user (`-p [ip:]hostPort:containerPort[/proto]`; `-P`
/// gives `host_port: None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    /// Host address; `0.0.0.0` for all.
    pub host_ip: Ipv4Addr,
    /// Host port; `None` or `Some(0)` picks a free ephemeral port.
    pub host_port: Option<u16>,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

#[derive(Debug)]
struct Held {
    endpoint: String,
    _socket: Option<OwnedFd>,
}

type Key = (Ipv4Addr, u16, Proto);

/// The host ports berth has handed out, with their reservation sockets.
#[derive(Debug, Default)]
pub struct PortTable {
    held: HashMap<Key, Held>,
}

fn conflicts(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

impl PortTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn taken_by_other(&self, endpoint: &str, ip: Ipv4Addr, port: u16, proto: Proto) -> bool {
        self.held.iter().any(|((hip, hp, pr), h)| {
            *hp == port && *pr == proto && conflicts(*hip, ip) && h.endpoint != endpoint
        })
    }

    /// Reserves every port of `reqs` for `endpoint`, all or nothing. With `bind_check` a socket
    /// is bound per port (in the caller's netns); without, only berth's own table is consulted
    /// (re-assertion after a restart, when the old sockets died with the old berthd).
    pub fn reserve(
        &mut self,
        endpoint: &str,
        reqs: &[PortRequest],
        bind_check: bool,
    ) -> Result<Vec<PortMapping>, PortError> {
        let mut done: Vec<Key> = Vec::new();
        let mut out = Vec::new();
        for r in reqs {
            match self.reserve_one(endpoint, r, bind_check) {
                Ok((key, m)) => {
                    done.push(key);
                    out.push(m);
                }
                Err(e) => {
                    for k in done {
                        self.held.remove(&k);
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    fn reserve_one(
        &mut self,
        endpoint: &str,
        r: &PortRequest,
        bind_check: bool,
    ) -> Result<(Key, PortMapping), PortError> {
        let want = r.host_port.unwrap_or(0);
        if want != 0 && self.taken_by_other(endpoint, r.host_ip, want, r.proto) {
            return Err(PortError::Allocated {
                host_ip: r.host_ip,
                host_port: want,
            });
        }
        let (port, socket) = if bind_check || want == 0 {
            // Ephemeral ports: let the kernel pick, retrying if berth already gave that one out.
            let mut tries = 0;
            loop {
                let (p, s) = bind_port(r.host_ip, want, r.proto)?;
                if want != 0 || !self.taken_by_other(endpoint, r.host_ip, p, r.proto) || tries > 16
                {
                    break (p, Some(s));
                }
                tries += 1;
            }
        } else {
            (want, None)
        };
        let key = (r.host_ip, port, r.proto);
        self.held.insert(
            key,
            Held {
                endpoint: endpoint.to_string(),
                _socket: socket,
            },
        );
        Ok((
            key,
            PortMapping {
                host_ip: r.host_ip,
                host_port: port,
                container_port: r.container_port,
                proto: r.proto,
            },
        ))
    }

    /// Frees every port of `endpoint` (closing its reservation sockets).
    pub fn release(&mut self, endpoint: &str) {
        self.held.retain(|_, h| h.endpoint != endpoint);
    }

    /// Number of ports held (all endpoints).
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no port is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

fn bind_port(ip: Ipv4Addr, port: u16, proto: Proto) -> Result<(u16, OwnedFd), PortError> {
    let err = |source| PortError::Bind {
        proto: proto.as_str(),
        host_ip: ip,
        host_port: port,
        source,
    };
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).map_err(err)?;
    let addr = SockaddrIn::from(SocketAddrV4::new(ip, port));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).map_err(err)?;
    let got: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(err)?;
    Ok((got.port(), fd))
}
