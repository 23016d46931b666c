//! Which daemon to talk to: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default socket.

use std::fmt;
use std::path::PathBuf;

/// The default daemon socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Errors while reading a host address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    /// The scheme is neither `unix://` nor `tcp://` (nor a bare path).
    #[error("unsupported protocol in host address {0:?} (use unix:// or tcp://)")]
    Scheme(String),
    /// `unix://` with nothing after it, or `tcp://` without a port.
    #[error("invalid host address {0:?}")]
    Invalid(String),
}

/// A daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port` over TCP (plain HTTP, like `DOCKER_HOST=tcp://…` without TLS).
    Tcp(String),
}

impl Host {
    /// Parses `unix:///path`, `tcp://host:port`, or a bare absolute socket path.
    pub fn parse(s: &str) -> Result<Host, HostError> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(HostError::Invalid(s.to_owned()));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(rest) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let hostport = rest.trim_end_matches('/');
            if hostport.is_empty() {
                return Err(HostError::Invalid(s.to_owned()));
            }
            // Docker's default TCP port when none is given.
            let hostport = if hostport
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                hostport.to_owned()
            } else {
                format!("{hostport}:2375")
            };
            return Ok(Host::Tcp(hostport));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        Err(HostError::Scheme(s.to_owned()))
    }

    /// Picks the host the way the docker CLI does, with berth's own variable first:
    /// the `-H` flag, `BERTH_HOST`, `DOCKER_HOST`, then [`DEFAULT_HOST`].
    pub fn select(flag: Option<&str>) -> Result<Host, HostError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let chosen = flag
            .map(str::to_owned)
            .or_else(|| env("BERTH_HOST"))
            .or_else(|| env("DOCKER_HOST"))
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        Host::parse(&chosen)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(h) => write!(f, "tcp://{h}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_tcp_and_paths() {
        assert_eq!(
            Host::parse("unix:///run/x.sock").unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Host::parse("/tmp/a.sock").unwrap(),
            Host::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost").unwrap(),
            Host::Tcp("localhost:2375".into())
        );
        assert!(matches!(Host::parse("ssh://x"), Err(HostError::Scheme(_))));
        assert!(matches!(Host::parse("unix://"), Err(HostError::Invalid(_))));
    }

    #[test]
    fn display_round_trips() {
        for s in ["unix:///run/berth/berth.sock", "tcp://127.0.0.1:1234"] {
            assert_eq!(Host::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn flag_wins_over_environment() {
        // Reads the environment but only asserts what the flag decides.
        assert_eq!(
            Host::select(Some("unix:///flag.sock")).unwrap(),
            Host::Unix("/flag.sock".into())
        );
    }
}
