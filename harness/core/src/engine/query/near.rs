//! Near misses: the rules that would have admitted a blocked connection but for their peers, or
//! but for their ports, and why the other part missed.

use serde::Serialize;

use super::super::describe::{describe_peer, describe_port, describe_selector};
use super::super::matching::{Endpoint, Route, rule_matches};
use super::labels::{SelectorKind, labelled, selector_miss};
use super::{ANY_PORT, direction_word, dns_pod, dns_served_ports, rule_origin, rules_of};
use crate::engine::{Tri, World};
use crate::model::{CellKey, PodId, PortProto, Protocol, ServedPort, Target, Via};
use crate::policy::{
    IpBlock, LabelSelector, NetworkPolicy, Peer, PolicyPort, PolicyType, PortValue, Rule,
};

/// A rule of a policy isolating a pod that missed a connection by one part: its ports admit
/// the connection but none of its peers does, or a peer does but none of its ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    /// The side it belongs to: `dns`, `egress` or `ingress`.
    pub side: &'static str,
    /// The policy, `ns/name`.
    pub policy: String,
    /// Where the rule was written, `file:line`.
    pub origin: String,
    /// `ingress` or `egress`.
    pub direction: &'static str,
    /// 1-based rule index.
    pub rule: usize,
    /// The part that admits the connection.
    pub matched: String,
    /// Why the other part does not: `peer 1: namespaceSelector {name=ingress-nginx}: no
    /// namespace carries label `name`; ...`.
    pub missed: String,
}

/// One side of a cell, as [`super::explain`] evaluates it.
struct SideQuery<'a> {
    side: &'static str,
    dir: PolicyType,
    pod: &'a PodId,
    other: Endpoint,
    port: PortProto,
    served: Vec<ServedPort>,
    route: Route,
}

fn side_queries<'a>(w: &World, cell: &'a CellKey) -> Vec<SideQuery<'a>> {
    let dns = |from| SideQuery {
        side: "dns",
        dir: PolicyType::Egress,
        pod: from,
        other: Endpoint::Dns,
        port: PortProto {
            port: 53,
            protocol: Protocol::Udp,
        },
        served: dns_served_ports(),
        route: Route::Translated,
    };
    let mut out = Vec::new();
    if cell.is_loopback() {
        return out;
    }
    match (&cell.to, cell.port) {
        (Target::Name(_), _) | (_, None) => out.push(dns(&cell.from)),
        (Target::Pod(to), Some(port)) => {
            let via = cell.via.unwrap_or(Via::Ip);
            let route = if via == Via::Ip {
                Route::Direct
            } else {
                Route::Translated
            };
            if via == Via::Dns {
                out.push(dns(&cell.from));
            }
            let served = w.pods.get(to).map(|p| p.ports.clone()).unwrap_or_default();
            out.push(SideQuery {
                side: "egress",
                dir: PolicyType::Egress,
                pod: &cell.from,
                other: Endpoint::Pod(to.clone()),
                port,
                served: served.clone(),
                route,
            });
            out.push(SideQuery {
                side: "ingress",
                dir: PolicyType::Ingress,
                pod: to,
                other: Endpoint::Pod(cell.from.clone()),
                port,
                served,
                route,
            });
        }
        (Target::External(x), Some(port)) => out.push(SideQuery {
            side: "egress",
            dir: PolicyType::Egress,
            pod: &cell.from,
            other: Endpoint::External(x.clone()),
            port,
            served: Vec::new(),
            route: Route::Direct,
        }),
    }
    out
}

/// The near misses of every side of `cell` that its policies block: the rules that would have
/// admitted it but for their peers, or but for their ports, and why those missed.
pub fn near_misses(w: &World, cell: &CellKey) -> Vec<NearMiss> {
    let mut out = Vec::new();
    for q in side_queries(w, cell) {
        let m = |np: &NetworkPolicy, r: &Rule| {
            rule_matches(w, np, r, &q.other, q.port, &q.served, q.route).0
        };
        for np in w.selecting(q.pod, q.dir) {
            for (i, rule) in rules_of(np, q.dir).iter().enumerate() {
                if m(np, rule) != Tri::No {
                    continue;
                }
                let part = |peers: Option<Vec<Peer>>, ports: Option<Vec<PolicyPort>>| Rule {
                    peers,
                    ports,
                    line: rule.line,
                };
                let peers_m = m(np, &part(rule.peers.clone(), None));
                let ports_m = m(np, &part(None, rule.ports.clone()));
                let (matched, missed) = match (peers_m, ports_m) {
                    (Tri::No, Tri::No) => continue,
                    (Tri::No, _) => (
                        ports_matched(np, rule, q.port, &m),
                        peers_missed(w, np, rule, &q.other),
                    ),
                    _ => (
                        peers_matched(np, rule, &m),
                        ports_missed(rule, q.port, &q.other, &q.served),
                    ),
                };
                out.push(NearMiss {
                    side: q.side,
                    policy: np.reference().to_string(),
                    origin: rule_origin(np, rule),
                    direction: direction_word(q.dir),
                    rule: i + 1,
                    matched,
                    missed,
                });
            }
        }
    }
    out
}

fn ports_matched<F: Fn(&NetworkPolicy, &Rule) -> Tri>(
    np: &NetworkPolicy,
    rule: &Rule,
    port: PortProto,
    m: &F,
) -> String {
    let Some(ports) = rule.ports.as_deref().filter(|p| !p.is_empty()) else {
        return format!("any port admits {port}");
    };
    let hit = ports.iter().enumerate().find(|(_, p)| {
        m(
            np,
            &Rule {
                peers: None,
                ports: Some(vec![(*p).clone()]),
                line: rule.line,
            },
        ) != Tri::No
    });
    match hit {
        Some((k, p)) => format!("port {} ({}) admits {port}", k + 1, describe_port(p)),
        None => format!("its ports admit {port}"),
    }
}

fn peers_matched<F: Fn(&NetworkPolicy, &Rule) -> Tri>(
    np: &NetworkPolicy,
    rule: &Rule,
    m: &F,
) -> String {
    let Some(peers) = rule.peers.as_deref().filter(|p| !p.is_empty()) else {
        return "it admits any peer".into();
    };
    let hit = peers.iter().enumerate().find(|(_, p)| {
        m(
            np,
            &Rule {
                peers: Some(vec![(*p).clone()]),
                ports: None,
                line: rule.line,
            },
        ) != Tri::No
    });
    match hit {
        Some((j, p)) => format!("peer {} ({}) matches", j + 1, describe_peer(p)),
        None => "a peer matches".into(),
    }
}

fn ports_missed(rule: &Rule, port: PortProto, other: &Endpoint, served: &[ServedPort]) -> String {
    let ports = rule.ports.as_deref().unwrap_or(&[]);
    let list: Vec<String> = ports.iter().map(describe_port).collect();
    let mut s = format!("{port} is none of its ports ({})", list.join(", "));
    let named = ports
        .iter()
        .any(|p| p.protocol == port.protocol && matches!(p.port, Some(PortValue::Name(_))));
    if named {
        let declared: Vec<String> = served
            .iter()
            .filter_map(|sp| sp.name.as_ref().map(|n| format!("{n} ({})", sp.port)))
            .collect();
        let dest = match other {
            Endpoint::Pod(_) | Endpoint::Dns => "the destination",
            Endpoint::External(_) => "an external destination",
        };
        s.push_str(&format!(
            "; a named port resolves against {dest}'s declared ports: {}",
            if declared.is_empty() {
                "none is named".to_owned()
            } else {
                declared.join(", ")
            }
        ));
    }
    s
}

fn peers_missed(w: &World, np: &NetworkPolicy, rule: &Rule, other: &Endpoint) -> String {
    let peers = rule.peers.as_deref().unwrap_or(&[]);
    let why: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(j, p)| format!("peer {}: {}", j + 1, peer_missed(w, np, p, other)))
        .collect();
    why.join("; ")
}

/// Why one peer of `np` does not match `other` (it is known not to).
fn peer_missed(w: &World, np: &NetworkPolicy, peer: &Peer, other: &Endpoint) -> String {
    match peer {
        Peer::Selectors { pods, namespaces } => {
            let (who, ns, labels) = match other {
                Endpoint::Pod(p) => match w.pods.get(p) {
                    Some(ps) => (p.to_string(), p.ns.clone(), ps.labels.clone()),
                    None => return format!("{}: {p} is not a pod", describe_peer(peer)),
                },
                Endpoint::Dns => {
                    let d = dns_pod();
                    ("the cluster DNS".to_owned(), d.id.ns, d.labels)
                }
                Endpoint::External(_) => {
                    return format!(
                        "{}: selectors select pods, and {other} is outside the cluster",
                        describe_peer(peer)
                    );
                }
            };
            let mut parts = Vec::new();
            match namespaces {
                None if ns != np.ns => parts.push(format!(
                    "podSelector {}: {who} is in namespace {ns}, and without a namespaceSelector it selects pods of {} only",
                    describe_selector(pods.as_ref().unwrap_or(&LabelSelector::default())),
                    np.ns
                )),
                None => {}
                Some(sel) => {
                    let universe = labelled(w, SelectorKind::Namespaces);
                    let why = selector_miss(
                        sel,
                        &format!("namespace {ns}"),
                        &w.ns_labels(&ns),
                        &universe,
                        SelectorKind::Namespaces,
                    );
                    if !why.is_empty() {
                        parts.push(format!(
                            "namespaceSelector {}: {}",
                            describe_selector(sel),
                            why.join("; ")
                        ));
                    }
                }
            }
            if let Some(sel) = pods {
                let universe = labelled(w, SelectorKind::Pods);
                let why = selector_miss(sel, &who, &labels, &universe, SelectorKind::Pods);
                if !why.is_empty() {
                    parts.push(format!(
                        "podSelector {}: {}",
                        describe_selector(sel),
                        why.join("; ")
                    ));
                }
            }
            parts.join("; ")
        }
        Peer::IpBlock(b) => {
            let addr = match other {
                Endpoint::Pod(p) => w.pod_ips.get(p),
                Endpoint::External(x) => w.external_ips.get(x),
                Endpoint::Dns => None,
            }
            .map(|ip| format!(" ({ip})"))
            .unwrap_or_default();
            let whole = Peer::IpBlock(IpBlock {
                cidr: b.cidr.clone(),
                except: Vec::new(),
            });
            let only = Rule {
                peers: Some(vec![whole]),
                ports: None,
                line: 0,
            };
            let in_cidr = rule_matches(w, np, &only, other, ANY_PORT, &[], Route::Direct).0;
            if in_cidr == Tri::No {
                format!("ipBlock {}: {other}{addr} is outside it", b.cidr)
            } else {
                format!("{}: {other}{addr} is in its `except`", describe_peer(peer))
            }
        }
    }
}
