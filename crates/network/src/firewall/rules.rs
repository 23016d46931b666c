//! The rules berth wants, as nftables JSON: the table skeleton, base rules, per-bridge,
//! per-endpoint and DOCKER-USER rules. Pure functions; [`super::Firewall`] applies them.

use serde_json::{Value, json};

use super::{BridgeRules, DOCKER_PREFIX, DOCKER_USER, EndpointRules, FAM, TABLE};
use crate::subnet::Ipv4Net;
use std::net::Ipv4Addr;

#[derive(Clone, Debug)]
pub(super) struct Rule {
    pub(super) chain: &'static str,
    pub(super) expr: Vec<Value>,
    pub(super) comment: String,
}

pub(super) fn rule(owner: &str, chain: &'static str, expr: Vec<Value>) -> Rule {
    let comment = format!(
        "{owner}#{:016x}",
        fnv1a(&format!("{chain}|{}", Value::from(expr.clone())))
    );
    Rule {
        chain,
        expr,
        comment,
    }
}

pub(super) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn owner_of(comment: &str) -> Option<&str> {
    comment.rsplit_once('#').map(|(o, _)| o)
}

pub(super) fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}
pub(super) fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}
pub(super) fn ip_field(field: &str) -> Value {
    json!({"payload": {"protocol": "ip", "field": field}})
}
pub(super) fn prefix(n: &Ipv4Net) -> Value {
    json!({"prefix": {"addr": n.network().to_string(), "len": n.prefix_len()}})
}
pub(super) fn masquerade() -> Value {
    json!({"masquerade": null})
}
pub(super) fn drop_() -> Value {
    json!({"drop": null})
}
pub(super) fn accept() -> Value {
    json!({"accept": null})
}

pub(super) fn base_rules() -> Vec<Rule> {
    let to_dnat = || {
        vec![
            m(
                "==",
                json!({"fib": {"result": "type", "flags": ["daddr"]}}),
                json!("local"),
            ),
            json!({"jump": {"target": "publish"}}),
        ]
    };
    vec![
        rule("base", "prerouting", to_dnat()),
        rule("base", "output", to_dnat()),
        rule(
            "base",
            "forward",
            vec![
                m(
                    "in",
                    json!({"ct": {"key": "state"}}),
                    json!(["established", "related"]),
                ),
                accept(),
            ],
        ),
    ]
}

pub(super) fn bridge_owner(bridge: &str) -> String {
    format!("br/{bridge}")
}

pub(super) fn endpoint_owner(id: &str) -> String {
    format!("ep/{id}")
}

pub(super) fn bridge_rules(b: &BridgeRules) -> Vec<Rule> {
    let o = bridge_owner(&b.bridge);
    let br = || json!(b.bridge);
    let mut v = Vec::new();
    if !b.internal {
        v.push(rule(
            &o,
            "postrouting",
            vec![
                m("==", ip_field("saddr"), prefix(&b.subnet)),
                m("!=", meta("oifname"), br()),
                masquerade(),
            ],
        ));
    }
    let loopback = Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or(b.subnet);
    v.push(rule(
        &o,
        "postrouting",
        vec![
            m("==", meta("oifname"), br()),
            m("==", ip_field("saddr"), prefix(&loopback)),
            masquerade(),
        ],
    ));
    v.push(rule(
        &o,
        "postrouting",
        vec![
            m("==", meta("oifname"), br()),
            m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
            m("==", ip_field("saddr"), prefix(&b.subnet)),
            masquerade(),
        ],
    ));
    v.push(rule(
        &o,
        "forward",
        vec![
            m("==", meta("iifname"), br()),
            m("!=", meta("oifname"), br()),
            m("==", meta("oifname"), json!("@bridges")),
            // Published ports stay reachable from other networks through a host address: a
            // connection DNAT'ed to one was aimed at an exposed service, not at the container.
            m(
                "==",
                json!({"&": [{"ct": {"key": "status"}}, "dnat"]}),
                json!(0),
            ),
            drop_(),
        ],
    ));
    if b.internal {
        v.push(rule(
            &o,
            "forward",
            vec![
                m("==", meta("iifname"), br()),
                m("!=", meta("oifname"), br()),
                drop_(),
            ],
        ));
        v.push(rule(
            &o,
            "forward",
            vec![
                m("==", meta("oifname"), br()),
                m("!=", meta("iifname"), br()),
                drop_(),
            ],
        ));
    }
    if !b.icc {
        v.push(rule(
            &o,
            "forward",
            vec![
                m("==", meta("iifname"), br()),
                m("==", meta("oifname"), br()),
                drop_(),
            ],
        ));
    }
    v
}

pub(super) fn endpoint_rules(e: &EndpointRules) -> Vec<Rule> {
    let o = endpoint_owner(&e.id);
    e.ports
        .iter()
        .map(|p| {
            let mut expr = vec![m("==", meta("nfproto"), json!("ipv4"))];
            if !p.host_ip.is_unspecified() {
                expr.push(m("==", ip_field("daddr"), json!(p.host_ip.to_string())));
            }
            expr.push(m("==", meta("l4proto"), json!(p.proto.as_str())));
            expr.push(m(
                "==",
                json!({"payload": {"protocol": "th", "field": "dport"}}),
                json!(p.host_port),
            ));
            expr.push(json!({"dnat": {"family": "ip", "addr": e.ip.to_string(), "port": p.container_port}}));
            rule(&o, "publish", expr)
        })
        .collect()
}

pub(super) fn docker_user_rules(b: &BridgeRules) -> Vec<Rule> {
    let o = format!("{DOCKER_PREFIX}{}", bridge_owner(&b.bridge));
    let br = || json!(b.bridge);
    if b.internal {
        vec![rule(
            &o,
            "DOCKER-USER",
            vec![
                m("==", meta("iifname"), br()),
                m("==", meta("oifname"), br()),
                accept(),
            ],
        )]
    } else {
        vec![
            rule(
                &o,
                "DOCKER-USER",
                vec![m("==", meta("iifname"), br()), accept()],
            ),
            rule(
                &o,
                "DOCKER-USER",
                vec![m("==", meta("oifname"), br()), accept()],
            ),
        ]
    }
}

pub(super) fn add_cmd(r: &Rule) -> Value {
    json!({"add": {"rule": {
        "family": FAM, "table": TABLE, "chain": r.chain, "comment": r.comment, "expr": r.expr
    }}})
}

pub(super) fn insert_docker_cmd(r: &Rule) -> Value {
    json!({"insert": {"rule": {
        "family": "ip", "table": "filter", "chain": DOCKER_USER, "comment": r.comment, "expr": r.expr
    }}})
}

pub(super) fn set_elem(cmd: &str, bridges: &[String]) -> Value {
    json!({cmd: {"element": {"family": FAM, "table": TABLE, "name": "bridges", "elem": bridges}}})
}

pub(super) fn skeleton() -> Vec<Value> {
    let chain = |name: &str, extra: Value| {
        let mut c = json!({"family": FAM, "table": TABLE, "name": name});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        json!({"add": {"chain": c}})
    };
    vec![
        json!({"add": {"table": {"family": FAM, "name": TABLE}}}),
        json!({"add": {"set": {"family": FAM, "table": TABLE, "name": "bridges", "type": "ifname"}}}),
        chain(
            "prerouting",
            json!({"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}),
        ),
        chain(
            "output",
            json!({"type": "nat", "hook": "output", "prio": -100, "policy": "accept"}),
        ),
        chain(
            "postrouting",
            json!({"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}),
        ),
        chain(
            "forward",
            json!({"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}),
        ),
        chain("publish", json!({})),
    ]
}

/// Serialises berth's nftables work (list-then-delete must not interleave). The kernel's ruleset
/// is the state; the only memory is a cache of the handles of endpoint rules this process added,
/// which spares teardown a listing (a stale cache falls back to listing).
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn comments_identify_owner_and_content() {
        let b = BridgeRules {
            bridge: "br-x".into(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            internal: false,
            icc: true,
        };
        let r = bridge_rules(&b);
        assert!(r.iter().all(|r| owner_of(&r.comment) == Some("br/br-x")));
        let comments: HashSet<&str> = r.iter().map(|r| r.comment.as_str()).collect();
        assert_eq!(
            comments.len(),
            r.len(),
            "distinct rules get distinct comments"
        );
        let mut b2 = b.clone();
        b2.subnet = "10.0.1.0/24".parse().unwrap();
        let r2 = bridge_rules(&b2);
        assert_ne!(
            r[0].comment, r2[0].comment,
            "content change changes the hash"
        );
        assert_eq!(bridge_rules(&b)[0].comment, r[0].comment, "stable");
    }
}
