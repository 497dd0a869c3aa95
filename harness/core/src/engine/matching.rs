//! Matching one rule, peer, port or address block against a connection, three-valued.

use std::collections::BTreeMap;
use std::fmt;

use super::address::{address_unknown, contains};
use super::describe::{describe_peer, describe_port};
use super::{DNS_NAMESPACE, DNS_POD_LABEL, Tri, World};
use crate::model::{PodId, PortProto, ServedPort};
use crate::policy::{NetworkPolicy, Peer, PolicyPort, PortValue, Rule};

/// The other end of a connection, as a peer would be matched against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A scenario pod.
    Pod(PodId),
    /// An external endpoint.
    External(String),
    /// CoreDNS (name resolution).
    Dns,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Pod(p) => p.fmt(f),
            Endpoint::External(e) => write!(f, "ext:{e}"),
            Endpoint::Dns => write!(f, "the cluster DNS ({DNS_NAMESPACE}, k8s-app=kube-dns)"),
        }
    }
}

/// How a connection travels, for ipBlock purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the pod's own IP: ipBlocks see the real addresses.
    Direct,
    /// Through a Service (or the cluster DNS): translated; ipBlocks are unspecified.
    Translated,
}

/// Whether one rule admits the connection, a description of what matched, and why it is
/// unknown when it is.
pub(crate) fn rule_matches(
    w: &World,
    np: &NetworkPolicy,
    rule: &Rule,
    other: &Endpoint,
    port: PortProto,
    dest_ports: &[ServedPort],
    route: Route,
) -> (Tri, String, Vec<String>) {
    let mut why = Vec::new();
    let Some(hit) = port_hit(rule.ports.as_deref(), port, dest_ports) else {
        return (Tri::No, String::new(), why);
    };
    let peer_m = match rule.peers.as_deref() {
        None | Some([]) => Tri::Yes,
        Some(peers) => peers.iter().fold(Tri::No, |acc, p| {
            acc.or(peer_matches(w, np, p, other, route, Some(&mut why)))
        }),
    };
    if peer_m == Tri::No {
        return (Tri::No, String::new(), Vec::new());
    }
    if peer_m != Tri::Unknown {
        why.clear();
    }
    // Described only when the rule (maybe) admits the connection: most rules do not.
    let peer_desc = match rule.peers.as_deref() {
        None | Some([]) => "any peer".to_owned(),
        Some(peers) => peers
            .iter()
            .enumerate()
            .filter(|(_, p)| peer_matches(w, np, p, other, route, None) != Tri::No)
            .map(|(j, p)| format!("peer {} ({})", j + 1, describe_peer(p)))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let port_desc = match (hit, rule.ports.as_deref()) {
        (Some(k), Some(ports)) => format!("port {} ({})", k + 1, describe_port(&ports[k])),
        _ => "any port".to_owned(),
    };
    (peer_m, format!("{peer_desc}, {port_desc}"), why)
}

/// Whether a rule's peer list admits `other` (absent or empty: every peer).
pub(crate) fn peers_match(
    w: &World,
    np: &NetworkPolicy,
    rule: &Rule,
    other: &Endpoint,
    route: Route,
) -> Tri {
    match rule.peers.as_deref() {
        None | Some([]) => Tri::Yes,
        Some(peers) => peers.iter().fold(Tri::No, |acc, p| {
            acc.or(peer_matches(w, np, p, other, route, None))
        }),
    }
}

/// Whether a rule's port list admits `port` of a destination serving `dest_ports`.
pub(crate) fn ports_match(rule: &Rule, port: PortProto, dest_ports: &[ServedPort]) -> Tri {
    Tri::from(port_hit(rule.ports.as_deref(), port, dest_ports).is_some())
}

/// Whether a rule's port list names a destination's port by name (its verdict then depends on
/// the destination's declared ports).
pub(crate) fn has_named_port(rule: &Rule) -> bool {
    rule.ports
        .iter()
        .flatten()
        .any(|p| matches!(p.port, Some(PortValue::Name(_))))
}

/// Which port entry admits `port`: `None` when none does, `Some(None)` when the rule has no
/// port list (every port), `Some(Some(k))` for entry `k`.
fn port_hit(
    ports: Option<&[PolicyPort]>,
    port: PortProto,
    dest_ports: &[ServedPort],
) -> Option<Option<usize>> {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return Some(None);
    };
    ports
        .iter()
        .position(|pp| {
            pp.protocol == port.protocol
                && match &pp.port {
                    None => true,
                    Some(PortValue::Number(n)) => match pp.end_port {
                        Some(end) => (*n..=end).contains(&port.port),
                        None => *n == port.port,
                    },
                    Some(PortValue::Name(name)) => dest_ports
                        .iter()
                        .any(|sp| sp.name.as_deref() == Some(name.as_str()) && sp.port == port),
                }
        })
        .map(Some)
}

fn peer_matches(
    w: &World,
    np: &NetworkPolicy,
    peer: &Peer,
    other: &Endpoint,
    route: Route,
    why: Option<&mut Vec<String>>,
) -> Tri {
    match peer {
        Peer::Selectors { pods, namespaces } => {
            let dns_labels;
            let (ns, labels) = match other {
                Endpoint::Pod(p) => match w.pods.get(p) {
                    Some(ps) => (p.ns.as_str(), &ps.labels),
                    None => return Tri::No,
                },
                Endpoint::Dns => {
                    dns_labels =
                        BTreeMap::from([(DNS_POD_LABEL.0.to_owned(), DNS_POD_LABEL.1.to_owned())]);
                    (DNS_NAMESPACE, &dns_labels)
                }
                // Selectors select pods; an address outside the cluster is none.
                Endpoint::External(_) => return Tri::No,
            };
            let ns_ok = match namespaces {
                None => ns == np.ns,
                Some(sel) => sel.matches(&w.ns_labels(ns)),
            };
            let pod_ok = pods.as_ref().is_none_or(|sel| sel.matches(labels));
            Tri::from(ns_ok && pod_ok)
        }
        Peer::IpBlock(b) => {
            if route == Route::Translated {
                if let Some(why) = why {
                    why.push(format!(
                    "whether ipBlock {} sees {other} before or after Service translation is left to the implementation",
                    b.cidr
                ));
                }
                return Tri::Unknown;
            }
            let inside = contains(w, &b.cidr, other);
            let excepted = b
                .except
                .iter()
                .fold(Tri::No, |acc, e| acc.or(contains(w, e, other)));
            let m = inside.and(excepted.not());
            if let Some(why) = why
                && m == Tri::Unknown
            {
                let hint = match other {
                    Endpoint::Pod(_) if address_unknown(w, other) => {
                        format!(" (pod addresses: somewhere in {})", w.pod_network)
                    }
                    _ => String::new(),
                };
                why.push(format!(
                    "whether {other} is in {} depends on addresses not known yet{hint}",
                    describe_peer(peer)
                ));
            }
            m
        }
    }
}
