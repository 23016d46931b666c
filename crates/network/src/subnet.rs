//! IPv4 subnets (`a.b.c.d/n`): parsing, containment, overlap, and the choice of a default bridge
//! subnet that collides with no route already on the host.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SubnetError {
    /// The text is not `a.b.c.d/n` with `n <= 32`.
    #[error("invalid subnet {0:?}: expected a.b.c.d/n")]
    Parse(String),
    /// Every candidate overlaps a route already present on the host.
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    PoolExhausted,
}

/// An IPv4 network: an address and a prefix length. The address is kept as given (so
/// `10.0.0.1/24` can describe an interface address); [`Ipv4Net::network`] masks it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// Builds a network; fails when `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, SubnetError> {
        if prefix > 32 {
            return Err(SubnetError::Parse(format!("{addr}/{prefix}")));
        }
        Ok(Self { addr, prefix })
    }

    /// The address as given.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// The netmask as a number.
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The same network with the host bits cleared.
    pub fn trunc(&self) -> Self {
        Self {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether the two networks share at least one address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains_net(&self, other: &Ipv4Net) -> bool {
        self.prefix <= other.prefix && self.contains(other.network())
    }

    /// The first usable host address (network + 1), conventionally the gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).wrapping_add(1))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Ipv4Net {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SubnetError::Parse(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Ipv4Net::new(addr, prefix).map_err(|_| bad())
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Docker's default local pools for bridge networks: 172.17.0.0/16 … 172.31.0.0/16.
pub fn default_pools() -> Vec<Ipv4Net> {
    (17..=31)
        .map(|b| Ipv4Net {
            addr: Ipv4Addr::new(172, b, 0, 0),
            prefix: 16,
        })
        .collect()
}

/// Picks the first candidate that overlaps none of `in_use` (host routes, other networks).
/// A default route (`0.0.0.0/0`) in `in_use` is ignored: it overlaps everything by definition.
pub fn choose_free(candidates: &[Ipv4Net], in_use: &[Ipv4Net]) -> Result<Ipv4Net, SubnetError> {
    candidates
        .iter()
        .map(Ipv4Net::trunc)
        .find(|c| {
            !in_use
                .iter()
                .filter(|r| r.prefix_len() > 0)
                .any(|r| r.overlaps(c))
        })
        .ok_or(SubnetError::PoolExhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_math() {
        let x = n("10.1.2.3/24");
        assert_eq!(x.network(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(x.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert_eq!(x.first_host(), Ipv4Addr::new(10, 1, 2, 1));
        assert!(x.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!x.contains(Ipv4Addr::new(10, 1, 3, 1)));
        assert_eq!(x.to_string(), "10.1.2.3/24");
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
        assert!(n("10.0.0.0/8").overlaps(&n("10.5.0.0/16")));
        assert!(!n("10.0.0.0/16").overlaps(&n("10.1.0.0/16")));
        assert!(n("10.0.0.0/16").contains_net(&n("10.0.5.0/24")));
        assert!(!n("10.0.5.0/24").contains_net(&n("10.0.0.0/16")));
    }

    #[test]
    fn choose_skips_docker_and_routes() {
        let used = [
            n("0.0.0.0/0"),
            n("172.17.0.0/16"),
            n("172.18.0.0/16"),
            n("172.19.3.0/24"),
        ];
        assert_eq!(
            choose_free(&default_pools(), &used).unwrap(),
            n("172.20.0.0/16")
        );
        let all: Vec<Ipv4Net> = vec![n("172.16.0.0/12")];
        assert!(matches!(
            choose_free(&default_pools(), &all),
            Err(SubnetError::PoolExhausted)
        ));
    }
}
