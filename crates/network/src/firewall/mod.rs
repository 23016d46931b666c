//! berth's firewall: one nftables table, `inet berth`, that berth alone owns, plus accepts in
//! Docker's `ip filter DOCKER-USER` chain when (and only when) dockerd's tables exist.
//!
//! Every rule carries a comment `<owner>#<hash>`: the owner (`base`, `br/<bridge>`,
//! `ep/<endpoint id>`) lets removal find exactly its own rules, the hash of the rule's chain and
//! expression lets [`Firewall::reassert`] tell a present rule from a changed or stale one without
//! comparing nft's normalised JSON.
//!
//! Layout of the table:
//! - `prerouting` (nat, -100) and `output` (nat, -100; nft 1.0.6 rejects `dstnat` on output):
//!   `fib daddr type local jump publish`.
//! - `publish`: one rule per published port, `[ip daddr H] l4proto P th dport HP dnat to C:CP`.
//! - `postrouting` (nat, 100): per bridge, masquerade outbound traffic of the subnet, masquerade
//!   127.0.0.0/8 towards the bridge (publishing reachable on 127.0.0.1, with `route_localnet` set
//!   on the bridge only) and DNAT'ed traffic from the subnet back into it (hairpin).
//! - `forward` (filter, 0, policy accept): established/related accept, isolation between berth
//!   bridges (set `bridges`), `--internal` and `--icc=false` drops.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::nft::{self, ListedRule, Listing, NftError, delete_rule};
use crate::subnet::Ipv4Net;

mod rules;

use rules::{
    Rule, add_cmd, base_rules, bridge_owner, bridge_rules, docker_user_rules, endpoint_owner,
    endpoint_rules, insert_docker_cmd, owner_of, set_elem, skeleton,
};

/// berth's table (family `inet`).
pub const TABLE: &str = "berth";
const FAM: &str = "inet";
const DOCKER_USER: &str = "DOCKER-USER";
const DOCKER_PREFIX: &str = "berth ";

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// An nft batch or listing failed; `step` says which.
    #[error("nftables: {step}")]
    Nft {
        /// What was being done.
        step: String,
        /// Cause.
        #[source]
        source: NftError,
    },
}

fn nfterr(step: impl Into<String>) -> impl FnOnce(NftError) -> FirewallError {
    let step = step.into();
    move |source| FirewallError::Nft { step, source }
}

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` / `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port after host-port resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address; `0.0.0.0` means every local address.
    pub host_ip: Ipv4Addr,
    /// Host port.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// What the firewall needs to know about a bridge network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeRules {
    /// Bridge interface name.
    pub bridge: String,
    /// Its subnet.
    pub subnet: Ipv4Net,
    /// `--internal`: no traffic in or out of the bridge, no masquerade.
    pub internal: bool,
    /// Inter-container communication on the bridge (`enable_icc`, default true).
    pub icc: bool,
}

/// What the firewall needs to know about an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRules {
    /// Endpoint id (owner of its rules).
    pub id: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// Published ports.
    pub ports: Vec<PortMapping>,
}

/// A rule to be: chain + expression, and its comment.
#[derive(Debug, Default)]
pub struct Firewall {
    lock: tokio::sync::Mutex<HashMap<String, Vec<ListedRule>>>,
}

impl Firewall {
    /// A firewall handle; touches nothing until used.
    pub fn new() -> Self {
        Self::default()
    }

    async fn list_table() -> Result<Listing, FirewallError> {
        Ok(nft::list(&["table", FAM, TABLE])
            .await
            .map_err(nfterr("listing table inet berth"))?
            .unwrap_or_default())
    }

    async fn list_docker_user() -> Result<Option<Listing>, FirewallError> {
        nft::list(&["chain", "ip", "filter", DOCKER_USER])
            .await
            .map_err(nfterr("listing ip filter DOCKER-USER"))
    }

    /// Creates the table, its chains and base rules when missing (idempotent).
    async fn ensure_base_locked(&self) -> Result<Listing, FirewallError> {
        let listing = Self::list_table().await?;
        let present: HashSet<&str> = listing
            .rules
            .iter()
            .filter_map(|r| r.comment.as_deref())
            .collect();
        let mut cmds = skeleton();
        let missing: Vec<Rule> = base_rules()
            .into_iter()
            .filter(|r| !present.contains(r.comment.as_str()))
            .collect();
        if listing.chains.len() >= 5 && missing.is_empty() {
            return Ok(listing);
        }
        cmds.extend(missing.iter().map(add_cmd));
        nft::apply(cmds)
            .await
            .map_err(nfterr("creating table inet berth"))?;
        Self::list_table().await
    }

    /// Installs (or refreshes) the rules of bridge `b`, including its DOCKER-USER accepts when
    /// dockerd's chain exists. Idempotent: the bridge's old rules are replaced in the same batch.
    pub async fn add_bridge(&self, b: &BridgeRules) -> Result<(), FirewallError> {
        let _g = self.lock.lock().await;
        let listing = self.ensure_base_locked().await?;
        let owner = bridge_owner(&b.bridge);
        let have: Vec<&ListedRule> = listing
            .rules
            .iter()
            .filter(|r| r.comment.as_deref().and_then(owner_of) == Some(owner.as_str()))
            .collect();
        let want = bridge_rules(b);
        let mut have_comments: Vec<&str> =
            have.iter().filter_map(|r| r.comment.as_deref()).collect();
        let mut want_comments: Vec<&str> = want.iter().map(|r| r.comment.as_str()).collect();
        have_comments.sort_unstable();
        want_comments.sort_unstable();
        let in_set = listing
            .set_elems
            .iter()
            .any(|(n, e)| n == "bridges" && e.iter().any(|x| x == &b.bridge));
        // Already exactly right (berthd restart): no batch, no rule churn.
        if have_comments != want_comments || !in_set {
            let mut cmds: Vec<Value> = have.iter().map(|r| delete_rule(r)).collect();
            cmds.push(set_elem("add", std::slice::from_ref(&b.bridge)));
            cmds.extend(want.iter().map(add_cmd));
            nft::apply(cmds)
                .await
                .map_err(nfterr(format!("adding rules of bridge {}", b.bridge)))?;
        }
        self.sync_docker_user(std::slice::from_ref(b), Some(&b.bridge))
            .await
    }

    /// Removes every rule of bridge `bridge` (table and DOCKER-USER) and its set element.
    pub async fn remove_bridge(&self, bridge: &str) -> Result<(), FirewallError> {
        let _g = self.lock.lock().await;
        let listing = Self::list_table().await?;
        let owner = bridge_owner(bridge);
        let mut cmds: Vec<Value> = listing
            .rules
            .iter()
            .filter(|r| r.comment.as_deref().and_then(owner_of) == Some(owner.as_str()))
            .map(delete_rule)
            .collect();
        if listing
            .set_elems
            .iter()
            .any(|(n, e)| n == "bridges" && e.iter().any(|x| x == bridge))
        {
            cmds.push(set_elem("delete", &[bridge.to_string()]));
        }
        nft::apply(cmds)
            .await
            .map_err(nfterr(format!("removing rules of bridge {bridge}")))?;
        self.sync_docker_user(&[], Some(bridge)).await
    }

    /// Adds the DNAT rules of an endpoint as one transaction. An endpoint without published
    /// ports costs nothing (no nft run).
    pub async fn add_endpoint(&self, e: &EndpointRules) -> Result<(), FirewallError> {
        let rules = endpoint_rules(e);
        if rules.is_empty() {
            return Ok(());
        }
        let mut cache = self.lock.lock().await;
        let added = nft::apply_echo(rules.iter().map(add_cmd).collect())
            .await
            .map_err(nfterr(format!("adding rules of endpoint {}", e.id)))?;
        cache
            .entry(endpoint_owner(&e.id))
            .or_default()
            .extend(added);
        Ok(())
    }

    /// Removes every rule owned by endpoint `id` in one transaction: by the handles remembered
    /// from [`Firewall::add_endpoint`] when this process added them, else found by comment.
    /// Note: deleting rules costs a kernel commit of ~10–20 ms here (machine-facts); callers on
    /// a latency path may run teardown in the background.
    pub async fn remove_endpoint(&self, id: &str) -> Result<(), FirewallError> {
        let mut cache = self.lock.lock().await;
        let owner = endpoint_owner(id);
        if let Some(rules) = cache.remove(&owner)
            && nft::apply(rules.iter().map(delete_rule).collect())
                .await
                .is_ok()
        {
            return Ok(());
        }
        let listing = Self::list_table().await?;
        let cmds: Vec<Value> = listing
            .rules
            .iter()
            .filter(|r| r.comment.as_deref().and_then(owner_of) == Some(owner.as_str()))
            .map(delete_rule)
            .collect();
        nft::apply(cmds)
            .await
            .map_err(nfterr(format!("removing rules of endpoint {id}")))
    }

    /// After a berthd restart: makes table `inet berth` (and berth's DOCKER-USER accepts) hold
    /// exactly the rules of `bridges` and `endpoints`: missing ones are added, stale, changed,
    /// duplicated or foreign ones removed, in one transaction. Returns how many rules were
    /// (added, removed).
    pub async fn reassert(
        &self,
        bridges: &[BridgeRules],
        endpoints: &[EndpointRules],
    ) -> Result<(usize, usize), FirewallError> {
        let mut cache = self.lock.lock().await;
        cache.clear();
        let listing = self.ensure_base_locked().await?;
        let mut want: Vec<Rule> = base_rules();
        for b in bridges {
            want.extend(bridge_rules(b));
        }
        for e in endpoints {
            want.extend(endpoint_rules(e));
        }
        let mut wanted: HashMap<&str, &Rule> =
            want.iter().map(|r| (r.comment.as_str(), r)).collect();
        let mut cmds = Vec::new();
        let mut removed = 0;
        for r in &listing.rules {
            // A rule is kept when it is wanted, in the right chain, and the first of its kind.
            let keep = r
                .comment
                .as_deref()
                .and_then(|c| wanted.get(c).filter(|w| w.chain == r.chain).map(|_| c));
            match keep {
                Some(c) => {
                    wanted.remove(c);
                }
                None => {
                    cmds.push(delete_rule(r));
                    removed += 1;
                }
            }
        }
        let missing: Vec<&Rule> = want
            .iter()
            .filter(|r| wanted.contains_key(r.comment.as_str()))
            .collect();
        let added = missing.len();
        cmds.extend(missing.into_iter().map(add_cmd));
        let want_br: HashSet<&str> = bridges.iter().map(|b| b.bridge.as_str()).collect();
        let have_br: Vec<String> = listing
            .set_elems
            .iter()
            .filter(|(n, _)| n == "bridges")
            .flat_map(|(_, e)| e.clone())
            .collect();
        let stale: Vec<String> = have_br
            .iter()
            .filter(|b| !want_br.contains(b.as_str()))
            .cloned()
            .collect();
        if !stale.is_empty() {
            cmds.push(set_elem("delete", &stale));
        }
        let add_br: Vec<String> = bridges.iter().map(|b| b.bridge.clone()).collect();
        if !add_br.is_empty() {
            cmds.push(set_elem("add", &add_br));
        }
        nft::apply(cmds)
            .await
            .map_err(nfterr("re-asserting table inet berth"))?;
        self.sync_docker_user(bridges, None).await?;
        Ok((added, removed))
    }

    /// Re-inserts berth's accepts into `ip filter DOCKER-USER` for `bridges` and drops stale ones.
    /// Cheap (one listing when all is in place); berthd may call it periodically, since a dockerd
    /// started after berth creates DOCKER-USER without berth's accepts.
    pub async fn refresh_docker_user(&self, bridges: &[BridgeRules]) -> Result<(), FirewallError> {
        let _g = self.lock.lock().await;
        self.sync_docker_user(bridges, None).await
    }

    /// Makes berth's rules in `ip filter DOCKER-USER` match `bridges`. With `only = Some(b)`
    /// only the rules of bridge `b` are considered (others are left alone). Nothing happens when
    /// the chain does not exist (no dockerd).
    async fn sync_docker_user(
        &self,
        bridges: &[BridgeRules],
        only: Option<&str>,
    ) -> Result<(), FirewallError> {
        let Some(listing) = Self::list_docker_user().await? else {
            return Ok(());
        };
        let in_scope = |owner: &str| match only {
            Some(b) => owner == format!("{DOCKER_PREFIX}{}", bridge_owner(b)),
            None => owner.starts_with(DOCKER_PREFIX),
        };
        let want: Vec<Rule> = bridges.iter().flat_map(docker_user_rules).collect();
        let mut wanted: HashSet<&str> = want.iter().map(|r| r.comment.as_str()).collect();
        let mut cmds = Vec::new();
        for r in &listing.rules {
            let Some(c) = r.comment.as_deref() else {
                continue;
            };
            let Some(owner) = owner_of(c) else { continue };
            if !in_scope(owner) {
                continue;
            }
            if !wanted.remove(c) {
                cmds.push(delete_rule(r));
            }
        }
        cmds.extend(
            want.iter()
                .filter(|r| wanted.contains(r.comment.as_str()))
                .map(insert_docker_cmd),
        );
        nft::apply(cmds)
            .await
            .map_err(nfterr("updating ip filter DOCKER-USER"))
    }

    /// Removes the whole table (daemon shutdown without live-restore, tests).
    pub async fn delete_table(&self) -> Result<(), FirewallError> {
        let mut cache = self.lock.lock().await;
        cache.clear();
        if nft::list(&["table", FAM, TABLE])
            .await
            .map_err(nfterr("listing table inet berth"))?
            .is_none()
        {
            return Ok(());
        }
        nft::apply(vec![
            json!({"delete": {"table": {"family": FAM, "name": TABLE}}}),
        ])
        .await
        .map_err(nfterr("deleting table inet berth"))
    }
}
