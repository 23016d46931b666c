//! Contents of a container's `/etc/hosts` and `/etc/resolv.conf`, the way Docker writes them.
//! Pure text functions: berthd writes the results to `containers/<id>/{hosts,resolv.conf}`.

use std::net::{IpAddr, Ipv4Addr};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum EtcError {
    /// `--add-host` is not `name:ip` with a valid address (or `host-gateway`).
    #[error("invalid argument {0:?} for \"--add-host\" flag: invalid IP address")]
    AddHost(String),
    /// `host-gateway` requested on a network without a gateway.
    #[error("unable to derive the IP value for host-gateway")]
    NoHostGateway,
}

/// Inputs of [`hosts`].
#[derive(Clone, Debug, Default)]
pub struct HostsConfig {
    /// `--hostname` (the container id's 12-char prefix by default).
    pub hostname: String,
    /// `--domainname`, may be empty.
    pub domainname: String,
    /// The container's address on its first network (`None` for `--network none`).
    pub ip: Option<Ipv4Addr>,
    /// Network aliases and link names also resolving to `ip`.
    pub aliases: Vec<String>,
    /// `--add-host name:ip` entries, as given (`host-gateway` allowed as ip).
    pub extra_hosts: Vec<String>,
    /// What `host-gateway` means (the bridge gateway, or `--host-gateway-ip`).
    pub host_gateway: Option<Ipv4Addr>,
}

/// Renders `/etc/hosts`: localhost lines, `--add-host` entries, then the container's own
/// address with its hostname.
pub fn hosts(cfg: &HostsConfig) -> Result<String, EtcError> {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in &cfg.extra_hosts {
        // name:ip, where ip may itself hold colons (IPv6), so split at the first one.
        let (name, ip) = e
            .split_once(':')
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
            .ok_or_else(|| EtcError::AddHost(e.clone()))?;
        let ip = if ip == "host-gateway" {
            IpAddr::V4(cfg.host_gateway.ok_or(EtcError::NoHostGateway)?)
        } else {
            ip.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| EtcError::AddHost(e.clone()))?
        };
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = cfg.ip {
        let mut names = Vec::new();
        if !cfg.domainname.is_empty() {
            names.push(format!("{}.{}", cfg.hostname, cfg.domainname));
        }
        names.push(cfg.hostname.clone());
        for a in &cfg.aliases {
            if !names.contains(a) {
                names.push(a.clone());
            }
        }
        s.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    Ok(s)
}

/// Inputs of [`resolv_conf`] besides the host's file.
#[derive(Clone, Debug, Default)]
pub struct DnsConfig {
    /// `--dns`: replaces the host's nameservers.
    pub servers: Vec<String>,
    /// `--dns-search`: replaces the host's search list; `.` alone means none.
    pub search: Vec<String>,
    /// `--dns-option`: replaces the host's options.
    pub options: Vec<String>,
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host file berth should read: systemd-resolved's stub (127.0.0.53) is useless inside a
/// container, so its upstream list is used instead when present, as Docker does.
pub fn host_resolv_conf_path() -> &'static str {
    let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let stub_only = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .all(|ns| ns.trim() == "127.0.0.53");
    if stub_only && std::path::Path::new("/run/systemd/resolve/resolv.conf").exists() {
        "/run/systemd/resolve/resolv.conf"
    } else {
        "/etc/resolv.conf"
    }
}

/// Renders the container's `resolv.conf` from the host's (`host`, the text of
/// [`host_resolv_conf_path`]) and the `--dns*` flags. Loopback nameservers of the host are
/// unreachable from the container's netns and dropped; if none remain (and no `--dns`), the
/// file keeps search/options and says why it has no nameserver instead of inventing one.
pub fn resolv_conf(host: &str, dns: &DnsConfig) -> String {
    let mut servers = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    if is_loopback(ns) {
                        dropped.push(ns.to_string());
                    } else {
                        servers.push(ns.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    if !dns.servers.is_empty() {
        servers = dns.servers.clone();
    }
    if !dns.search.is_empty() {
        search = dns
            .search
            .iter()
            .filter(|s| s.as_str() != ".")
            .cloned()
            .collect();
    }
    if !dns.options.is_empty() {
        options = dns.options.clone();
    }
    let mut s = String::new();
    if servers.is_empty() {
        s.push_str(&format!(
            "# berth: the host's only nameservers ({}) are loopback addresses, unreachable from \
             the container's network namespace; use --dns to set one.\n",
            if dropped.is_empty() {
                "none".to_string()
            } else {
                dropped.join(", ")
            }
        ));
    }
    for ns in &servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

/// `resolv.conf` for a container served by the embedded DNS server (user-defined networks):
/// nameserver 127.0.0.11 with the search list and options resolved as in [`resolv_conf`], plus
/// Docker's `ndots:0`. The real resolvers become the server's upstreams
/// ([`crate::dns::upstreams`]).
pub fn resolv_conf_embedded(host: &str, dns: &DnsConfig) -> String {
    let plain = resolv_conf(host, dns);
    let mut s = format!("nameserver {}\n", crate::dns::EMBEDDED_DNS);
    let mut has_options = false;
    for line in plain.lines() {
        if let Some(opts) = line.strip_prefix("options ") {
            has_options = true;
            if opts.split_whitespace().any(|o| o.starts_with("ndots:")) {
                s.push_str(&format!("{line}\n"));
            } else {
                s.push_str(&format!("options ndots:0 {opts}\n"));
            }
        } else if line.starts_with("search ") {
            s.push_str(&format!("{line}\n"));
        }
    }
    if !has_options {
        s.push_str("options ndots:0\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_own_entry_and_extras() {
        let h = hosts(&HostsConfig {
            hostname: "abc123".into(),
            domainname: "example.org".into(),
            ip: Some(Ipv4Addr::new(172, 20, 0, 2)),
            aliases: vec!["web".into()],
            extra_hosts: vec![
                "gw:host-gateway".into(),
                "v6:::1".into(),
                "db:10.0.0.5".into(),
            ],
            host_gateway: Some(Ipv4Addr::new(172, 20, 0, 1)),
        })
        .unwrap();
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("172.20.0.1\tgw\n"));
        assert!(h.contains("::1\tv6\n"));
        assert!(h.contains("10.0.0.5\tdb\n"));
        assert!(h.ends_with("172.20.0.2\tabc123.example.org abc123 web\n"));
        assert!(
            hosts(&HostsConfig {
                extra_hosts: vec!["x:host-gateway".into()],
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            hosts(&HostsConfig {
                extra_hosts: vec!["x:notanip".into()],
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn embedded_resolv_points_at_127_0_0_11() {
        let host = "nameserver 127.0.0.53\nsearch corp.example\n";
        assert_eq!(
            resolv_conf_embedded(host, &DnsConfig::default()),
            "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:0\n"
        );
        let r = resolv_conf_embedded(
            host,
            &DnsConfig {
                options: vec!["ndots:3".into(), "timeout:1".into()],
                ..Default::default()
            },
        );
        assert_eq!(
            r,
            "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:3 timeout:1\n"
        );
    }

    #[test]
    fn resolv_drops_loopback_and_applies_flags() {
        let host = "nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch a.example b.example\noptions edns0\n";
        let r = resolv_conf(host, &DnsConfig::default());
        assert_eq!(
            r,
            "nameserver 192.0.2.1\nsearch a.example b.example\noptions edns0\n"
        );
        let r = resolv_conf(
            host,
            &DnsConfig {
                servers: vec!["9.9.9.9".into()],
                search: vec![".".into()],
                options: vec!["ndots:2".into()],
            },
        );
        assert_eq!(r, "nameserver 9.9.9.9\noptions ndots:2\n");
        let r = resolv_conf("nameserver 127.0.0.1\nsearch x\n", &DnsConfig::default());
        assert!(r.starts_with("# berth:"), "{r}");
        assert!(!r.lines().any(|l| l.starts_with("nameserver")), "{r}");
        assert!(r.contains("search x\n"));
    }
}
