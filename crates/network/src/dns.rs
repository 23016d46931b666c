//! The embedded DNS server of user-defined networks: 127.0.0.11:53 inside each container's
//! netns, answering A queries for the names (container names, aliases) on the container's
//! networks and relaying everything else to upstream resolvers from berthd's (the host's) netns,
//! so even a host-loopback resolver such as systemd-resolved's 127.0.0.53 works.
//!
//! The socket is opened from a thread that joined the container's netns and then served by a task
//! on the caller's runtime: no process, no DNAT rule inside the container. UDP only; a relayed
//! answer is passed back as the upstream sent it.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket as StdUdp};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::netns::{NetnsError, run_in_netns};

/// Where the embedded server listens inside the container.
pub const EMBEDDED_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// Entering the container netns failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// Binding 127.0.0.11:53 (or the relay socket) failed.
    #[error("binding the embedded DNS socket")]
    Bind(#[source] io::Error),
}

type Names = HashMap<String, Vec<Ipv4Addr>>;

/// The names of every network, shared by all embedded servers.
#[derive(Debug, Default)]
pub struct DnsRegistry {
    nets: RwLock<HashMap<String, Names>>,
}

fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes `names` (container name, aliases, …) resolve to `ip` on network `network`.
    pub fn add(&self, network: &str, names: &[String], ip: Ipv4Addr) {
        let mut nets = self.nets.write().unwrap_or_else(|p| p.into_inner());
        let n = nets.entry(network.to_string()).or_default();
        for name in names {
            let ips = n.entry(norm(name)).or_default();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }

    /// Forgets every name of `ip` on `network` (endpoint teardown).
    pub fn remove(&self, network: &str, ip: Ipv4Addr) {
        let mut nets = self.nets.write().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = nets.get_mut(network) {
            n.retain(|_, ips| {
                ips.retain(|i| *i != ip);
                !ips.is_empty()
            });
        }
    }

    /// Forgets a whole network.
    pub fn remove_network(&self, network: &str) {
        let mut nets = self.nets.write().unwrap_or_else(|p| p.into_inner());
        nets.remove(network);
    }

    /// The addresses of `name` on any of `networks`.
    pub fn lookup(&self, networks: &[String], name: &str) -> Vec<Ipv4Addr> {
        let nets = self.nets.read().unwrap_or_else(|p| p.into_inner());
        let key = norm(name);
        let mut out = Vec::new();
        for net in networks {
            if let Some(ips) = nets.get(net).and_then(|n| n.get(&key)) {
                for ip in ips {
                    if !out.contains(ip) {
                        out.push(*ip);
                    }
                }
            }
        }
        out
    }
}

/// A running embedded server; stops when dropped (or with [`DnsServer::stop`]).
#[derive(Debug)]
pub struct DnsServer {
    task: JoinHandle<()>,
}

impl DnsServer {
    /// Stops serving (the socket closes with the task, at some later poll of the runtime).
    pub fn stop(self) {}

    /// Stops serving and waits until the socket is closed, so a new server can bind the same
    /// address in the same netns right away.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the embedded server in the netns at `netns` for a container on `networks`, relaying
/// unknown names to `upstreams` (tried in order). Must be called inside a tokio runtime.
///
/// The socket keeps the container's netns alive: stop (drop) the server before
/// [`crate::netns::remove_netns`], or the netns — and its veth — outlive the container.
pub fn serve(
    netns: &Path,
    registry: Arc<DnsRegistry>,
    networks: Vec<String>,
    upstreams: Vec<SocketAddr>,
) -> Result<DnsServer, DnsError> {
    let std_sock = run_in_netns(netns, || StdUdp::bind(SocketAddrV4::new(EMBEDDED_DNS, 53)))?
        .map_err(DnsError::Bind)?;
    std_sock.set_nonblocking(true).map_err(DnsError::Bind)?;
    let sock = Arc::new(UdpSocket::from_std(std_sock).map_err(DnsError::Bind)?);
    let ctx = Arc::new(Ctx {
        registry,
        networks,
        upstreams,
    });
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let query = buf[..n].to_vec();
            let sock = sock.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move {
                if let Some(reply) = ctx.answer(&query).await {
                    let _ = sock.send_to(&reply, peer).await;
                }
            });
        }
    });
    Ok(DnsServer { task })
}

struct Ctx {
    registry: Arc<DnsRegistry>,
    networks: Vec<String>,
    upstreams: Vec<SocketAddr>,
}

const TYPE_A: u16 = 1;
const TTL: u32 = 600;

/// The question of a standard query: name, type, and where the question section ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: String,
    pub qtype: u16,
    pub end: usize,
}

/// Parses a query with exactly one question; `None` for anything else.
pub(crate) fn parse_query(q: &[u8]) -> Option<Question> {
    if q.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([q[2], q[3]]);
    let qd = u16::from_be_bytes([q[4], q[5]]);
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qd != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = q.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_string());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let _class = q.get(i + 2..i + 4)?;
    Some(Question {
        name: labels.join("."),
        qtype,
        end: i + 4,
    })
}

/// A reply to `q` (whose question ends at `end`) carrying `ips` as A records (none = NODATA).
pub(crate) fn build_reply(q: &[u8], end: usize, ips: &[Ipv4Addr]) -> Vec<u8> {
    let mut r = Vec::with_capacity(end + ips.len() * 16);
    r.extend_from_slice(&q[..2]);
    let rd = q[2] & 0x01;
    r.push(0x84 | rd); // QR, AA, RD copied
    r.push(0x80); // RA, NOERROR
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&u16::try_from(ips.len()).unwrap_or(0).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&q[12..end]);
    for ip in ips {
        r.extend_from_slice(&[0xc0, 0x0c]); // name: pointer to the question
        r.extend_from_slice(&TYPE_A.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&TTL.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&ip.octets());
    }
    r
}

/// SERVFAIL for `q` (no upstream answered).
fn servfail(q: &[u8], end: usize) -> Vec<u8> {
    let mut r = build_reply(q, end, &[]);
    r[2] &= !0x04; // not authoritative
    r[3] = 0x82; // RA, SERVFAIL
    r
}

impl Ctx {
    async fn answer(&self, q: &[u8]) -> Option<Vec<u8>> {
        let question = parse_query(q)?;
        let ips = self.registry.lookup(&self.networks, &question.name);
        if !ips.is_empty() {
            let ips = if question.qtype == TYPE_A {
                ips
            } else {
                Vec::new()
            };
            return Some(build_reply(q, question.end, &ips));
        }
        for up in &self.upstreams {
            if let Some(r) = relay(q, *up).await {
                return Some(r);
            }
        }
        Some(servfail(q, question.end))
    }
}

async fn relay(q: &[u8], up: SocketAddr) -> Option<Vec<u8>> {
    let bind: SocketAddr = match up {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(bind).await.ok()?;
    s.connect(up).await.ok()?;
    s.send(q).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(3), s.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    // Only relay the answer to this query.
    if n < 2 || buf[..2] != q[..2] {
        return None;
    }
    buf.truncate(n);
    Some(buf)
}

/// The upstreams for the embedded server: `--dns` servers if given, else the host's nameservers
/// (loopback ones included: the relay runs in the host's netns), port 53.
pub fn upstreams(host_resolv_conf: &str, dns_flag: &[String]) -> Vec<SocketAddr> {
    let from: Vec<String> = if dns_flag.is_empty() {
        host_resolv_conf
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        dns_flag.to_vec()
    };
    from.iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(u8::try_from(l.len()).unwrap());
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn parse_and_reply() {
        let q = query("Web.example", TYPE_A);
        let p = parse_query(&q).unwrap();
        assert_eq!(p.name, "Web.example");
        assert_eq!(p.end, q.len());
        let r = build_reply(&q, p.end, &[Ipv4Addr::new(10, 0, 0, 7)]);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "QR set");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 7]);
        assert!(parse_query(&r).is_none(), "responses are not queries");
        assert!(parse_query(&q[..10]).is_none());
    }

    #[test]
    fn registry_scopes_names_by_network() {
        let reg = DnsRegistry::new();
        reg.add(
            "n1",
            &["web".into(), "alias1".into()],
            Ipv4Addr::new(10, 0, 0, 2),
        );
        reg.add("n2", &["db".into()], Ipv4Addr::new(10, 0, 1, 2));
        let n1 = vec!["n1".to_string()];
        assert_eq!(reg.lookup(&n1, "WEB."), vec![Ipv4Addr::new(10, 0, 0, 2)]);
        assert!(reg.lookup(&n1, "db").is_empty());
        reg.remove("n1", Ipv4Addr::new(10, 0, 0, 2));
        assert!(reg.lookup(&n1, "alias1").is_empty());
    }
}
