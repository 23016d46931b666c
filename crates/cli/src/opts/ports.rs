//! `-p`/`--expose` parsing into ExposedPorts and PortBindings (ranges, host IPs, protocols).

use std::collections::BTreeMap;

use super::OptsError;

/// Parsed port flags.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ports {
    /// `80/tcp`, … (sorted, unique).
    pub exposed: Vec<String>,
    /// `80/tcp` → [(host ip, host port)].
    pub bindings: BTreeMap<String, Vec<(String, String)>>,
}

fn range(s: &str, what: &str) -> Result<(u32, u32), OptsError> {
    let bad = || OptsError::Invalid(format!("invalid {what}: {s}"));
    match s.split_once('-') {
        Some((a, b)) => {
            let a: u32 = a.parse().map_err(|_| bad())?;
            let b: u32 = b.parse().map_err(|_| bad())?;
            if b < a || b > 65535 {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let a: u32 = s.parse().map_err(|_| bad())?;
            if a > 65535 {
                return Err(bad());
            }
            Ok((a, a))
        }
    }
}

/// Parses `-p` and `--expose` values.
pub fn parse(publish: &[String], expose: &[String]) -> Result<Ports, OptsError> {
    let mut p = Ports::default();
    for e in expose {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let (a, b) = range(port, "range format for --expose specification")?;
        for n in a..=b {
            p.exposed.push(format!("{n}/{proto}"));
        }
    }
    for spec in publish {
        let (rest, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
        if !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(OptsError::Invalid(format!("invalid proto: {proto}")));
        }
        // ip:host:container, host:container, container; IPv6 as [addr]:host:container.
        let (ip, host, cont) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, r) = r
                .split_once("]:")
                .ok_or_else(|| OptsError::Invalid(format!("invalid IP address: {rest}")))?;
            let (h, c) = r
                .split_once(':')
                .ok_or_else(|| OptsError::Invalid(format!("no port specified: {spec}<empty>")))?;
            (ip.to_owned(), h.to_owned(), c.to_owned())
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.as_slice() {
                [c] => (String::new(), String::new(), (*c).to_owned()),
                [h, c] => (String::new(), (*h).to_owned(), (*c).to_owned()),
                [ip, h, c] => ((*ip).to_owned(), (*h).to_owned(), (*c).to_owned()),
                _ => return Err(OptsError::Invalid(format!("invalid port format: {spec}"))),
            }
        };
        if cont.is_empty() {
            return Err(OptsError::Invalid(format!(
                "no port specified: {spec}<empty>"
            )));
        }
        let (ca, cb) = range(&cont, "containerPort")?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(range(&host, "hostPort")?)
        };
        if let Some((ha, hb)) = host_range
            && hb - ha != cb - ca
            && ha != hb
        {
            return Err(OptsError::Invalid(format!(
                "invalid ranges specified for container and host Ports: {cont} and {host}"
            )));
        }
        for (i, n) in (ca..=cb).enumerate() {
            let key = format!("{n}/{proto}");
            let hp = match host_range {
                None => String::new(),
                Some((ha, hb)) if ha == hb && ca != cb => format!("{ha}"),
                Some((ha, _)) => format!("{}", ha + i as u32),
            };
            p.exposed.push(key.clone());
            p.bindings.entry(key).or_default().push((ip.clone(), hp));
        }
    }
    p.exposed.sort();
    p.exposed.dedup();
    Ok(p)
}
