//! The policy engine: what the NetworkPolicy specification (`networking.k8s.io/v1`) says about
//! each cell, and why.
//!
//! Pure: no IO, no Kubernetes client, no async runtime. Input is a [`World`] (namespaces and pods
//! with their labels and ports, the policies in force, and the addresses where they are known);
//! output is a [`Explanation`] per cell: the verdict, and for each direction which policies
//! isolate the pod and which rule and peer admitted the connection, or that none did.
//!
//! Matching is three-valued ([`Tri`]): a peer or port either matches, does not, or cannot be
//! decided from what the specification fixes. Undecidable means one of:
//! - an ipBlock compared with an address that is not known yet (before deployment a pod's IP is
//!   unknown; `${ip x/a}/32` still names exactly that pod);
//! - an ipBlock applied to traffic that goes through a Service: the specification leaves open
//!   whether policy sees the address before or after translation;
//! - DNS resolution through an ipBlock (the resolver's addresses are the cluster's).
//!
//! Kleene logic carries the doubt through OR (rules, peers) and AND (peer fields, ports, the two
//! directions), so a verdict is [`Spec::Unspecified`] only when the answer really depends on it.

mod address;
mod describe;
mod matching;
mod matrix;
pub mod query;
mod world;

pub use address::{PodNetwork, PodNetworkError, PodNetworkSource};
pub use describe::{describe_peer, describe_selector};
pub use matrix::{Matrix, Workload, WorkloadMatrix, Workloads};
pub use world::{PodState, World};

use std::fmt;

use serde::Serialize;

use crate::model::{CellKey, PodId, PortProto, Protocol, ServedPort, Target, Verdict, Via};
use crate::policy::PolicyType;

use matching::{Endpoint, Route, rule_matches};

/// Three-valued truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tri {
    /// Holds.
    Yes,
    /// Does not hold.
    No,
    /// The specification does not decide it (see the module docs).
    Unknown,
}

impl Tri {
    pub(crate) fn from(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
    pub(crate) fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }
    pub(crate) fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Unknown,
        }
    }
    pub(crate) fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// The namespace CoreDNS runs in, as the engine models it for name resolution.
pub const DNS_NAMESPACE: &str = "kube-system";
/// The label CoreDNS pods carry (kubeadm and kind: `k8s-app: kube-dns`).
pub const DNS_POD_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// The specification's verdict on a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Spec {
    /// Allowed.
    Allow,
    /// Blocked.
    Block,
    /// A connection by name whose name does not resolve (DNS is blocked).
    Unresolved,
    /// Left to the implementation, or depends on addresses not known yet.
    Unspecified,
}

impl Spec {
    /// The verdict on a connection (or resolution) that one side decides alone.
    fn connection(t: Tri) -> Spec {
        match t {
            Tri::Yes => Spec::Allow,
            Tri::No => Spec::Block,
            Tri::Unknown => Spec::Unspecified,
        }
    }

    /// The expectation this verdict amounts to; `None` when the specification leaves it open.
    pub fn expectation(self) -> Option<Verdict> {
        match self {
            Spec::Allow => Some(Verdict::Allow),
            Spec::Block => Some(Verdict::Block),
            Spec::Unresolved => Some(Verdict::Unresolved),
            Spec::Unspecified => None,
        }
    }

    /// `allow`, `block`, `unresolved`, `unspecified`.
    pub fn as_str(self) -> &'static str {
        match self {
            Spec::Allow => "allow",
            Spec::Block => "block",
            Spec::Unresolved => "unresolved",
            Spec::Unspecified => "unspecified",
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule that admitted (or might admit) a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleHit {
    /// The policy.
    pub policy: String,
    /// Where it was written (`file:line`).
    pub origin: String,
    /// `ingress` or `egress`.
    pub direction: &'static str,
    /// 1-based rule index.
    pub rule: usize,
    /// Why it matched: peer and port.
    pub detail: String,
    /// `yes`, or `unknown` when it admits the connection only under an unspecified reading.
    pub certain: Tri,
}

/// One direction's part of the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// `egress` or `ingress`.
    pub direction: &'static str,
    /// The pod whose policies decide this side (absent when the end is not a scenario pod).
    pub pod: Option<String>,
    /// Policies that select the pod for this direction (empty: not isolated).
    pub isolated_by: Vec<String>,
    /// Rules that admit the connection.
    pub allowed_by: Vec<RuleHit>,
    /// Whether this side lets the connection through.
    pub verdict: Tri,
    /// A sentence for reports.
    pub summary: String,
    /// Why a part is undecided, when it is.
    pub unknown_because: Vec<String>,
}

/// The verdict on a cell, with its reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The cell.
    pub cell: CellKey,
    /// What the specification says.
    pub verdict: Spec,
    /// A pod reaching itself by its own IP: always allowed.
    pub loopback: bool,
    /// Name resolution, for connections by name and resolution cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Side>,
    /// The source's egress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<Side>,
    /// The destination's ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Side>,
}

impl Explanation {
    /// One line: `allow: egress not isolated; ingress allowed by x/allow rule 1`.
    pub fn short(&self) -> String {
        if self.loopback {
            return "allow: a pod reaching itself by its own IP (loopback) is always allowed"
                .into();
        }
        let parts: Vec<String> = [&self.dns, &self.egress, &self.ingress]
            .into_iter()
            .flatten()
            .map(|s| s.summary.clone())
            .collect();
        format!("{}: {}", self.verdict, parts.join("; "))
    }
}

/// Explains one cell in `w`.
pub fn explain(w: &World, cell: &CellKey) -> Explanation {
    let mut e = Explanation {
        cell: cell.clone(),
        verdict: Spec::Unspecified,
        loopback: false,
        dns: None,
        egress: None,
        ingress: None,
    };
    if cell.is_loopback() {
        e.loopback = true;
        e.verdict = Spec::Allow;
        return e;
    }
    match (&cell.to, cell.port) {
        (Target::Name(_), _) | (_, None) => {
            // A resolution cell: does the source reach the cluster DNS on 53/udp?
            let side = dns_side(w, &cell.from);
            e.verdict = Spec::connection(side.verdict);
            e.dns = Some(side);
        }
        (Target::Pod(to), Some(port)) => {
            let via = cell.via.unwrap_or(Via::Ip);
            let route = if via == Via::Ip {
                Route::Direct
            } else {
                Route::Translated
            };
            let mut resolved = Tri::Yes;
            if via == Via::Dns {
                let d = dns_side(w, &cell.from);
                resolved = d.verdict;
                e.dns = Some(d);
            }
            let dst = Endpoint::Pod(to.clone());
            let src = Endpoint::Pod(cell.from.clone());
            let eg = side(
                w,
                PolicyType::Egress,
                &cell.from,
                &dst,
                port,
                Some(to),
                route,
            );
            let ing = side(w, PolicyType::Ingress, to, &src, port, Some(to), route);
            let conn = eg.verdict.and(ing.verdict);
            e.verdict = match (resolved, conn) {
                (Tri::No, _) => Spec::Unresolved,
                (Tri::Unknown, _) => Spec::Unspecified,
                (Tri::Yes, Tri::Yes) => Spec::Allow,
                (Tri::Yes, Tri::No) => Spec::Block,
                (Tri::Yes, Tri::Unknown) => Spec::Unspecified,
            };
            e.egress = Some(eg);
            e.ingress = Some(ing);
        }
        (Target::External(x), Some(port)) => {
            let dst = Endpoint::External(x.clone());
            let eg = side(
                w,
                PolicyType::Egress,
                &cell.from,
                &dst,
                port,
                None,
                Route::Direct,
            );
            e.verdict = Spec::connection(eg.verdict);
            e.egress = Some(eg);
        }
    }
    e
}

fn dir_word(d: PolicyType) -> &'static str {
    match d {
        PolicyType::Ingress => "ingress",
        PolicyType::Egress => "egress",
    }
}

/// Whether `from`'s egress admits port 53 over `protocol` to the cluster DNS (as the engine models
/// it: pods labelled `k8s-app: kube-dns` in `kube-system` serving `dns` 53/udp and `dns-tcp`
/// 53/tcp). Name resolution needs 53/udp; resolvers fall back to 53/tcp for large answers. The
/// side's `summary` is left empty.
pub fn dns_egress(w: &World, from: &PodId, protocol: Protocol) -> Side {
    let port = PortProto { port: 53, protocol };
    evaluate(
        w,
        PolicyType::Egress,
        from,
        &Endpoint::Dns,
        port,
        None,
        Route::Translated,
    )
}

/// The source's egress to the cluster DNS on 53/udp.
fn dns_side(w: &World, from: &PodId) -> Side {
    let mut s = dns_egress(w, from, Protocol::Udp);
    s.direction = "dns";
    s.summary = match s.verdict {
        Tri::Yes if s.isolated_by.is_empty() => {
            format!("name resolution works: no policy selects {from} for egress")
        }
        Tri::Yes => format!(
            "name resolution works: 53/udp to the cluster DNS allowed by {}",
            hits(&s.allowed_by)
        ),
        Tri::No => format!(
            "name resolution fails: egress of {from} is isolated by {} and no rule allows 53/udp to the cluster DNS",
            s.isolated_by.join(", ")
        ),
        Tri::Unknown => format!(
            "name resolution is unspecified: {}",
            s.unknown_because.join("; ")
        ),
    };
    s
}

fn hits(h: &[RuleHit]) -> String {
    h.iter()
        .map(|h| format!("{} {} rule {}", h.policy, h.direction, h.rule))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One direction of a cell. `pod` is the pod whose policies decide this side; `other` the far
/// end; `dest` the destination pod when it is one (named ports are its ports).
fn side(
    w: &World,
    dir: PolicyType,
    pod: &PodId,
    other: &Endpoint,
    port: PortProto,
    dest: Option<&PodId>,
    route: Route,
) -> Side {
    let mut s = evaluate(
        w,
        dir,
        pod,
        other,
        port,
        dest.and_then(|d| w.pods.get(d)),
        route,
    );
    let d = dir_word(dir);
    s.summary = match s.verdict {
        Tri::Yes if s.isolated_by.is_empty() => {
            format!("{d} of {pod}: not isolated (no policy selects it for {d})")
        }
        Tri::Yes => format!("{d} of {pod}: allowed by {}", hits(&s.allowed_by)),
        Tri::No => format!(
            "{d} of {pod}: isolated by {} and no rule allows {other} on {port}",
            s.isolated_by.join(", ")
        ),
        Tri::Unknown => format!(
            "{d} of {pod}: unspecified ({})",
            s.unknown_because.join("; ")
        ),
    };
    s
}

/// The heart: is the connection between `pod` and `other` on `port` admitted by `pod`'s
/// policies for `dir`? `dest` is the destination pod, for named ports (None: the destination is
/// not a scenario pod and has no named ports, except the cluster DNS's `dns`/`dns-tcp`).
fn evaluate(
    w: &World,
    dir: PolicyType,
    pod: &PodId,
    other: &Endpoint,
    port: PortProto,
    dest: Option<&PodState>,
    route: Route,
) -> Side {
    let selecting = w.selecting(pod, dir);
    let mut s = Side {
        direction: dir_word(dir),
        pod: Some(pod.to_string()),
        isolated_by: selecting
            .iter()
            .map(|p| p.reference().to_string())
            .collect(),
        allowed_by: Vec::new(),
        verdict: Tri::Yes,
        summary: String::new(),
        unknown_because: Vec::new(),
    };
    if selecting.is_empty() {
        return s;
    }
    let dns_ports;
    let dest_ports: &[ServedPort] = match (dest, other) {
        (Some(d), _) => &d.ports,
        (None, Endpoint::Dns) => {
            dns_ports = [
                ServedPort {
                    port: PortProto {
                        port: 53,
                        protocol: Protocol::Udp,
                    },
                    name: Some("dns".into()),
                },
                ServedPort {
                    port: PortProto {
                        port: 53,
                        protocol: Protocol::Tcp,
                    },
                    name: Some("dns-tcp".into()),
                },
            ];
            &dns_ports
        }
        (None, _) => &[],
    };
    let mut verdict = Tri::No;
    for np in &selecting {
        let rules = match dir {
            PolicyType::Ingress => np.ingress.as_deref().unwrap_or(&[]),
            PolicyType::Egress => np.egress.as_deref().unwrap_or(&[]),
        };
        for (i, rule) in rules.iter().enumerate() {
            let (m, detail, why) = rule_matches(w, np, rule, other, port, dest_ports, route);
            if m != Tri::No {
                s.allowed_by.push(RuleHit {
                    policy: np.reference().to_string(),
                    origin: np.origin.clone(),
                    direction: dir_word(dir),
                    rule: i + 1,
                    detail,
                    certain: m,
                });
            }
            if m == Tri::Unknown {
                s.unknown_because.extend(why);
            }
            verdict = verdict.or(m);
        }
    }
    // A certain allow makes the doubts of other rules irrelevant.
    if verdict == Tri::Yes {
        s.allowed_by.retain(|h| h.certain == Tri::Yes);
        s.unknown_because.clear();
    }
    s.unknown_because.sort();
    s.unknown_because.dedup();
    s.verdict = verdict;
    s
}

#[cfg(test)]
pub(crate) mod scale;
#[cfg(test)]
mod tests;
