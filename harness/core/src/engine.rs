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

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::bind::Bindings;
use crate::model::{
    Action, CellKey, PodId, PortProto, Protocol, Scenario, ServedPort, Target, Verdict, Via,
};
use crate::policy::{
    AddrExpr, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Peer, PolicyPort, PolicyRef,
    PolicyType, PortValue, Rule,
};

/// Three-valued truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
    fn from(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
    fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }
    fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Unknown,
        }
    }
    fn not(self) -> Tri {
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

/// A pod as the engine sees it at one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    /// Namespace and name.
    pub id: PodId,
    /// Labels now.
    pub labels: BTreeMap<String, String>,
    /// Declared ports (for named ports).
    pub ports: Vec<ServedPort>,
}

/// Everything the verdicts depend on at one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct World {
    /// Namespace labels by logical name, including `kubernetes.io/metadata.name`.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Pods.
    pub pods: BTreeMap<PodId, PodState>,
    /// Policies in force, by reference (the order never matters).
    pub policies: BTreeMap<PolicyRef, NetworkPolicy>,
    /// Pod IPs, when known (after deployment).
    pub pod_ips: BTreeMap<PodId, IpAddr>,
    /// External endpoint IPs, when known.
    pub external_ips: BTreeMap<String, IpAddr>,
}

impl World {
    /// The world before any step: declared namespaces and pods, no policies.
    pub fn initial(s: &Scenario) -> World {
        let namespaces = s
            .namespaces
            .iter()
            .map(|n| {
                let mut l = n.labels.clone();
                l.insert(NAMESPACE_NAME_LABEL.into(), n.name.clone());
                (n.name.clone(), l)
            })
            .collect();
        let pods = s
            .pods
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    PodState {
                        id: p.id.clone(),
                        labels: p.labels.clone(),
                        ports: p.ports.clone(),
                    },
                )
            })
            .collect();
        World {
            namespaces,
            pods,
            ..World::default()
        }
    }

    /// Applies a step's actions, in order.
    pub fn apply(&mut self, actions: &[Action]) {
        let relabel = |labels: &mut BTreeMap<String, String>,
                       changes: &BTreeMap<String, Option<String>>| {
            for (k, v) in changes {
                match v {
                    Some(v) => labels.insert(k.clone(), v.clone()),
                    None => labels.remove(k),
                };
            }
        };
        for a in actions {
            match a {
                Action::DeletePolicy(r) => {
                    self.policies.remove(r);
                }
                Action::ReplacePolicy(p) | Action::ApplyPolicy(p) => {
                    self.policies.insert(p.reference(), p.clone());
                }
                Action::RelabelPod { pod, labels } => {
                    if let Some(p) = self.pods.get_mut(pod) {
                        relabel(&mut p.labels, labels);
                    }
                }
                Action::RelabelNamespace { ns, labels } => {
                    if let Some(l) = self.namespaces.get_mut(ns) {
                        relabel(l, labels);
                    }
                }
            }
        }
    }

    /// The world after each step, in order (index 0 = step 1).
    pub fn per_step(s: &Scenario) -> Vec<World> {
        let mut w = World::initial(s);
        s.steps
            .iter()
            .map(|st| {
                w.apply(&st.actions);
                w.clone()
            })
            .collect()
    }

    /// Adds the addresses a deployment bound.
    pub fn with_addresses(mut self, b: &Bindings) -> World {
        self.pod_ips = b.pod_ips.clone();
        self.external_ips = b.external_ips.clone();
        self
    }

    fn ns_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(ns)
            .cloned()
            .unwrap_or_else(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())]))
    }

    /// Policies that select `pod` for direction `dir`, in reference order.
    pub fn selecting(&self, pod: &PodId, dir: PolicyType) -> Vec<&NetworkPolicy> {
        let Some(p) = self.pods.get(pod) else {
            return Vec::new();
        };
        self.policies
            .values()
            .filter(|np| {
                np.ns == pod.ns
                    && np.effective_types().contains(&dir)
                    && np.pod_selector.matches(&p.labels)
            })
            .collect()
    }

    /// Pods `np` selects (any direction).
    pub fn selected_pods(&self, np: &NetworkPolicy) -> Vec<&PodState> {
        self.pods
            .values()
            .filter(|p| p.id.ns == np.ns && np.pod_selector.matches(&p.labels))
            .collect()
    }
}

/// The other end of a connection, as a peer would be matched against it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
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

/// The specification's verdict on a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// How a connection travels, for ipBlock purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// To the pod's own IP: ipBlocks see the real addresses.
    Direct,
    /// Through a Service (or the cluster DNS): translated; ipBlocks are unspecified.
    Translated,
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
    let dest_ports: Vec<ServedPort> = match (dest, other) {
        (Some(d), _) => d.ports.clone(),
        (None, Endpoint::Dns) => vec![
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
        ],
        (None, _) => Vec::new(),
    };
    let mut verdict = Tri::No;
    for np in &selecting {
        let rules = match dir {
            PolicyType::Ingress => np.ingress.as_deref().unwrap_or(&[]),
            PolicyType::Egress => np.egress.as_deref().unwrap_or(&[]),
        };
        for (i, rule) in rules.iter().enumerate() {
            let (m, detail, why) = rule_matches(w, np, rule, other, port, &dest_ports, route);
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

/// Whether one rule admits the connection, a description of what matched, and why it is
/// unknown when it is.
fn rule_matches(
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

/// `podSelector {app: web} in namespaces {team: a}` and the like.
pub fn describe_peer(p: &Peer) -> String {
    match p {
        Peer::Selectors { pods, namespaces } => {
            let pods = pods.as_ref().map(describe_selector);
            let nss = namespaces.as_ref().map(describe_selector);
            match (pods, nss) {
                (Some(p), None) => format!("podSelector {p} in the policy's namespace"),
                (None, Some(n)) => format!("every pod in namespaceSelector {n}"),
                (Some(p), Some(n)) => format!("podSelector {p} AND namespaceSelector {n}"),
                (None, None) => "every pod in the policy's namespace".into(),
            }
        }
        Peer::IpBlock(b) => {
            if b.except.is_empty() {
                format!("ipBlock {}", b.cidr)
            } else {
                let ex: Vec<String> = b.except.iter().map(ToString::to_string).collect();
                format!("ipBlock {} except {}", b.cidr, ex.join(", "))
            }
        }
    }
}

/// `{app: web, tier in (a, b)}`; `{}` selects everything.
pub fn describe_selector(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for r in &s.match_expressions {
        use crate::policy::Operator;
        parts.push(match r.operator {
            Operator::In => format!("{} in ({})", r.key, r.values.join(", ")),
            Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(", ")),
            Operator::Exists => r.key.clone(),
            Operator::DoesNotExist => format!("!{}", r.key),
        });
    }
    format!("{{{}}}", parts.join(", "))
}

fn describe_port(p: &PolicyPort) -> String {
    let proto = p.protocol.as_str();
    match (&p.port, p.end_port) {
        (None, _) => format!("every {proto} port"),
        (Some(PortValue::Number(n)), None) => format!("{n}/{proto}"),
        (Some(PortValue::Number(n)), Some(e)) => format!("{n}-{e}/{proto}"),
        (Some(PortValue::Name(name)), _) => format!("named port {name}/{proto}"),
    }
}

#[cfg(test)]
mod tests;
