//! Questions about a [`World`] other than one cell's verdict, asked by `netreach lint` and
//! `netreach explain` (and by audits of live clusters, which build a `World` of their own):
//! which rules take effect and where they were written, what a rule's peers may reach, which
//! label keys exist, and why a rule missed a connection.
//!
//! Every answer comes from the engine's own matching — `matching::rule_matches` (rules, peers,
//! ports, named ports, ipBlocks), [`LabelSelector::matches`] and [`World::selecting`] — so no
//! caller holds a second copy of the semantics. A question about one part of a rule is asked by
//! putting that part in a rule of its own (the peers without the ports, one peer, one port, one
//! requirement of a selector) and matching it.

mod labels;
mod near;

pub use labels::{
    SelectorKind, Suggestion, Term, UnsetKey, labelled, similar_keys, suggest, terms, unset_keys,
};
pub use near::{NearMiss, near_misses};

use std::collections::BTreeMap;

use super::describe::describe_port;
use super::matching::{Endpoint, Route, rule_matches};
use super::{DNS_NAMESPACE, DNS_POD_LABEL, Explanation, PodState, Tri, World};
use crate::model::{PodId, PortProto, Protocol, ServedPort};
use crate::policy::{AddrExpr, LabelSelector, NetworkPolicy, Peer, PolicyPort, PolicyType, Rule};

/// `ingress` or `egress`.
pub fn direction_word(d: PolicyType) -> &'static str {
    match d {
        PolicyType::Ingress => "ingress",
        PolicyType::Egress => "egress",
    }
}

/// The rules `np` lists for `dir` (empty when the list is absent).
pub fn rules_of(np: &NetworkPolicy, dir: PolicyType) -> &[Rule] {
    match dir {
        PolicyType::Ingress => np.ingress.as_deref().unwrap_or(&[]),
        PolicyType::Egress => np.egress.as_deref().unwrap_or(&[]),
    }
}

/// The rules of `np` that take effect (their direction is one of its policy types), with their
/// 1-based index in their list.
pub fn effective_rules(np: &NetworkPolicy) -> Vec<(PolicyType, usize, &Rule)> {
    let types = np.effective_types();
    [PolicyType::Ingress, PolicyType::Egress]
        .into_iter()
        .filter(|d| types.contains(d))
        .flat_map(|d| {
            rules_of(np, d)
                .iter()
                .enumerate()
                .map(move |(i, r)| (d, i + 1, r))
        })
        .collect()
}

/// `file:line` of a rule: the policy's file at the rule's line, or the policy's origin when the
/// rule's line is unknown.
pub fn rule_origin(np: &NetworkPolicy, rule: &Rule) -> String {
    if rule.line == 0 {
        return np.origin.clone();
    }
    let file = match np.origin.rsplit_once(':') {
        Some((file, line)) if line.parse::<usize>().is_ok() => file,
        _ => np.origin.as_str(),
    };
    format!("{file}:{}", rule.line)
}

/// The policy in force named `reference` (`ns/name`).
fn policy_named<'w>(w: &'w World, reference: &str) -> Option<&'w NetworkPolicy> {
    w.policies
        .values()
        .find(|np| np.reference().to_string() == reference)
}

/// Points every rule hit of `e` at the line of its rule; [`super::explain`] names the policy's.
pub fn locate_rules(w: &World, e: &mut Explanation) {
    for side in [&mut e.dns, &mut e.egress, &mut e.ingress]
        .into_iter()
        .flatten()
    {
        for h in &mut side.allowed_by {
            let dir = if h.direction == "ingress" {
                PolicyType::Ingress
            } else {
                PolicyType::Egress
            };
            let rule = policy_named(w, &h.policy)
                .and_then(|np| Some((np, rules_of(np, dir).get(h.rule.checked_sub(1)?)?)));
            if let Some((np, rule)) = rule {
                h.origin = rule_origin(np, rule);
            }
        }
    }
}

/// Policies in force that select `pod` for either direction, in reference order.
pub fn selecting_any<'w>(w: &'w World, pod: &PodId) -> Vec<&'w NetworkPolicy> {
    let mut out = w.selecting(pod, PolicyType::Ingress);
    for np in w.selecting(pod, PolicyType::Egress) {
        if !out.iter().any(|p| p.reference() == np.reference()) {
            out.push(np);
        }
    }
    out.sort_by_key(|np| np.reference());
    out
}

/// The pods of namespace `ns`.
pub fn pods_in<'w>(w: &'w World, ns: &str) -> Vec<&'w PodState> {
    w.pods.values().filter(|p| p.id.ns == ns).collect()
}

/// The ports the cluster DNS serves as the engine models it: `dns` 53/udp and `dns-tcp` 53/tcp.
pub fn dns_served_ports() -> Vec<ServedPort> {
    [("dns", Protocol::Udp), ("dns-tcp", Protocol::Tcp)]
        .into_iter()
        .map(|(name, protocol)| ServedPort {
            port: PortProto { port: 53, protocol },
            name: Some(name.into()),
        })
        .collect()
}

/// The cluster DNS as the engine models it: pods labelled `k8s-app: kube-dns` in `kube-system`
/// serving [`dns_served_ports`].
pub fn dns_pod() -> PodState {
    PodState {
        id: PodId::new(DNS_NAMESPACE, "kube-dns"),
        labels: BTreeMap::from([(DNS_POD_LABEL.0.to_owned(), DNS_POD_LABEL.1.to_owned())]),
        ports: dns_served_ports(),
    }
}

/// What a rule's peers admit, when they admit every peer of some kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// No or empty `from`/`to`: every source or destination, in and outside the cluster.
    Everything,
    /// Peer `peer` (1-based) is an ipBlock of a whole address family (`0.0.0.0/0`, `::/0`)
    /// without `except`: every address of that family, in and outside the cluster.
    EveryAddress {
        /// 1-based peer index.
        peer: usize,
        /// The block.
        cidr: String,
    },
    /// Peer `peer` (1-based) is `namespaceSelector: {}` with no or an empty podSelector: every
    /// pod of every namespace.
    EveryPod {
        /// 1-based peer index.
        peer: usize,
    },
}

/// Whether a selector has no requirement, so selects everything.
pub fn selects_everything(s: &LabelSelector) -> bool {
    s.match_labels.is_empty() && s.match_expressions.is_empty()
}

/// Whether the rule's peers admit everything of some kind (ports aside), and which; the first
/// such peer when several are.
pub fn rule_reach(rule: &Rule) -> Option<Reach> {
    let peers = match rule.peers.as_deref() {
        None | Some([]) => return Some(Reach::Everything),
        Some(p) => p,
    };
    peers.iter().enumerate().find_map(|(i, p)| match p {
        Peer::Selectors {
            pods,
            namespaces: Some(ns),
        } if selects_everything(ns) && pods.as_ref().is_none_or(selects_everything) => {
            Some(Reach::EveryPod { peer: i + 1 })
        }
        Peer::IpBlock(b)
            if b.except.is_empty()
                && matches!(b.cidr, AddrExpr::Literal(n) if n.prefix_len() == 0) =>
        {
            Some(Reach::EveryAddress {
                peer: i + 1,
                cidr: b.cidr.to_string(),
            })
        }
        _ => None,
    })
}

/// A destination (or source) a peer is matched against, for [`peers_admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest<'a> {
    /// A pod of the world.
    Pod(&'a PodId),
    /// The cluster DNS ([`dns_pod`]).
    Dns,
}

/// Any port: for rules without ports, where the port is never looked at.
pub(super) const ANY_PORT: PortProto = PortProto {
    port: 1,
    protocol: Protocol::Tcp,
};

/// Whether the peers of `rule` (of `np`) admit `dest` by its own address, ports aside: `Unknown`
/// when an ipBlock is compared with an address not known yet.
pub fn peers_admit(w: &World, np: &NetworkPolicy, rule: &Rule, dest: Dest<'_>) -> Tri {
    let peers_only = Rule {
        peers: rule.peers.clone(),
        ports: None,
        line: rule.line,
    };
    let other = match dest {
        Dest::Pod(p) => Endpoint::Pod(p.clone()),
        Dest::Dns => Endpoint::Dns,
    };
    rule_matches(w, np, &peers_only, &other, ANY_PORT, &[], Route::Direct).0
}

/// Whether the world holds any pod that a selector peer's namespace part (its namespaceSelector,
/// or the policy's namespace without one) admits. When it does not (say, only `kube-system` or
/// another `existing` namespace whose pods a scenario does not declare, where the engine models
/// the cluster DNS and nothing else), what the peer's podSelector matches there is unknown.
pub fn knows_pods_for(w: &World, np: &NetworkPolicy, peer: &Peer) -> bool {
    let Peer::Selectors { namespaces, .. } = peer else {
        return false;
    };
    let ns_only = Rule {
        peers: Some(vec![Peer::Selectors {
            pods: None,
            namespaces: namespaces.clone(),
        }]),
        ports: None,
        line: 0,
    };
    w.pods
        .keys()
        .any(|p| peers_admit(w, np, &ns_only, Dest::Pod(p)) == Tri::Yes)
}

/// Whether the port entry `pp` of a rule of `np` admits some port that a destination serving
/// `served` serves (a named port resolves against `served`).
pub fn port_admits_some(
    w: &World,
    np: &NetworkPolicy,
    pp: &PolicyPort,
    served: &[ServedPort],
) -> bool {
    let port_only = Rule {
        peers: None,
        ports: Some(vec![pp.clone()]),
        line: 0,
    };
    served.iter().any(|sp| {
        rule_matches(
            w,
            np,
            &port_only,
            &Endpoint::Dns,
            sp.port,
            served,
            Route::Direct,
        )
        .0 == Tri::Yes
    })
}

/// A rule's ports in words: `443/tcp, 8443/tcp`; `every port` when it has none.
pub fn describe_ports(rule: &Rule) -> String {
    match rule.ports.as_deref() {
        None | Some([]) => "every port".into(),
        Some(ps) => ps.iter().map(describe_port).collect::<Vec<_>>().join(", "),
    }
}

#[cfg(test)]
mod tests;
