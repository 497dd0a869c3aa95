//! Matching one rule, peer, port or address block against a connection, three-valued.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;

use super::describe::{describe_peer, describe_port};
use super::{DNS_NAMESPACE, DNS_POD_LABEL, Tri, World};
use crate::model::{PodId, PortProto, ServedPort};
use crate::policy::{AddrExpr, NetworkPolicy, Peer, PolicyPort, PortValue, Rule};

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
    let (pm, port_desc) = ports_match(rule.ports.as_deref(), port, dest_ports);
    if pm == Tri::No {
        return (Tri::No, String::new(), why);
    }
    let (peer_m, peer_desc) = match rule.peers.as_deref() {
        None | Some([]) => (Tri::Yes, "any peer".to_owned()),
        Some(peers) => {
            let mut acc = Tri::No;
            let mut desc = Vec::new();
            for (j, p) in peers.iter().enumerate() {
                let m = peer_matches(w, np, p, other, route, &mut why);
                if m != Tri::No {
                    desc.push(format!("peer {} ({})", j + 1, describe_peer(p)));
                }
                acc = acc.or(m);
            }
            (acc, desc.join(", "))
        }
    };
    let m = pm.and(peer_m);
    if m != Tri::Unknown {
        why.clear();
    }
    (m, format!("{peer_desc}, {port_desc}"), why)
}

fn ports_match(
    ports: Option<&[PolicyPort]>,
    port: PortProto,
    dest_ports: &[ServedPort],
) -> (Tri, String) {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return (Tri::Yes, "any port".into());
    };
    for (k, pp) in ports.iter().enumerate() {
        if pp.protocol != port.protocol {
            continue;
        }
        let hit = match &pp.port {
            None => true,
            Some(PortValue::Number(n)) => match pp.end_port {
                Some(end) => (*n..=end).contains(&port.port),
                None => *n == port.port,
            },
            Some(PortValue::Name(name)) => dest_ports
                .iter()
                .any(|sp| sp.name.as_deref() == Some(name.as_str()) && sp.port == port),
        };
        if hit {
            return (Tri::Yes, format!("port {} ({})", k + 1, describe_port(pp)));
        }
    }
    (Tri::No, String::new())
}

fn peer_matches(
    w: &World,
    np: &NetworkPolicy,
    peer: &Peer,
    other: &Endpoint,
    route: Route,
    why: &mut Vec<String>,
) -> Tri {
    match peer {
        Peer::Selectors { pods, namespaces } => {
            let (ns, labels) = match other {
                Endpoint::Pod(p) => match w.pods.get(p) {
                    Some(ps) => (p.ns.clone(), ps.labels.clone()),
                    None => return Tri::No,
                },
                Endpoint::Dns => (
                    DNS_NAMESPACE.to_owned(),
                    BTreeMap::from([(DNS_POD_LABEL.0.to_owned(), DNS_POD_LABEL.1.to_owned())]),
                ),
                // Selectors select pods; an address outside the cluster is none.
                Endpoint::External(_) => return Tri::No,
            };
            let ns_ok = match namespaces {
                None => ns == np.ns,
                Some(sel) => sel.matches(&w.ns_labels(&ns)),
            };
            let pod_ok = pods.as_ref().is_none_or(|sel| sel.matches(&labels));
            Tri::from(ns_ok && pod_ok)
        }
        Peer::IpBlock(b) => {
            if route == Route::Translated {
                why.push(format!(
                    "whether ipBlock {} sees {other} before or after Service translation is left to the implementation",
                    b.cidr
                ));
                return Tri::Unknown;
            }
            let inside = contains(w, &b.cidr, other);
            let excepted = b
                .except
                .iter()
                .fold(Tri::No, |acc, e| acc.or(contains(w, e, other)));
            let m = inside.and(excepted.not());
            if m == Tri::Unknown {
                why.push(format!(
                    "whether {other} is in {} depends on addresses not known yet",
                    describe_peer(peer)
                ));
            }
            m
        }
    }
}

/// Whether `e`'s address is in the block `a`.
fn contains(w: &World, a: &AddrExpr, e: &Endpoint) -> Tri {
    let ip = match e {
        Endpoint::Pod(p) => w.pod_ips.get(p).copied(),
        Endpoint::External(x) => w.external_ips.get(x).copied(),
        Endpoint::Dns => None,
    };
    let net: Option<IpNet> = match a {
        AddrExpr::Literal(n) => Some(*n),
        AddrExpr::PodIp { pod, prefix } => w
            .pod_ips
            .get(pod)
            .and_then(|ip| IpNet::new(*ip, *prefix).ok())
            .map(|n| n.trunc()),
        AddrExpr::ExternalIp { name, prefix } => w
            .external_ips
            .get(name)
            .and_then(|ip| IpNet::new(*ip, *prefix).ok())
            .map(|n| n.trunc()),
    };
    if let (Some(ip), Some(net)) = (ip, net) {
        return Tri::from(net.contains(&ip));
    }
    // Without addresses: a placeholder names one endpoint; its network contains it, and a
    // full-length one contains nothing else.
    let (named, prefix) = match a {
        AddrExpr::Literal(_) => return Tri::Unknown,
        AddrExpr::PodIp { pod, prefix } => (Endpoint::Pod(pod.clone()), *prefix),
        AddrExpr::ExternalIp { name, prefix } => (Endpoint::External(name.clone()), *prefix),
    };
    if &named == e {
        Tri::Yes
    } else if prefix == 32 || prefix == 128 {
        // Every endpoint (and the cluster DNS) has an address of its own.
        Tri::No
    } else {
        Tri::Unknown
    }
}
