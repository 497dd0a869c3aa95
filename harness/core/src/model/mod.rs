//! The validated model: what a scenario means once every reference, port and name checked out.
//!
//! Pure data, no IO and no Kubernetes client types. Built by [`crate::scenario::load`]; consumed
//! by deployment planning, expectation matrices and reports. Names here are *logical*: a run
//! maps namespaces to real names through [`crate::names::NamespaceMap`].
//!
//! The ground floor: the model imports nothing of the crate but [`crate::names`]. The serde layer
//! (`scenario::raw`, `policy::raw`) has its own types and converts into these; the validated
//! NetworkPolicy lives in [`policy`] (re-exported by [`crate::policy`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

pub mod policy;

pub use policy::{NetworkPolicy, PolicyRef};

/// How loopback cells (a pod to itself) are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Loopback {
    /// Always expected to connect, whatever the rules say (the default).
    Allow,
    /// Always expected to be blocked.
    Block,
    /// Judged by the expectation rules like every other cell.
    Rules,
    /// Not probed at all: the scenario has no loopback cells.
    Ignore,
}

/// How a probe reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The target pod's IP (or the external endpoint's address).
    Ip,
    /// The ClusterIP of a Service in front of the target pod.
    Service,
    /// The Service's DNS name (`<pod>.<namespace>.svc.cluster.local`), resolved in the source pod.
    Dns,
}

/// Allowed or blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The connection succeeds.
    Allow,
    /// The connection is blocked.
    Block,
    /// The target's name does not resolve, so the connection is never tried (`via: dns` only;
    /// written as an `unresolved:` entry).
    Unresolved,
}

/// Transport protocol of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Parses `tcp`/`TCP`/`udp`/`sctp` in any case.
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// `tcp`, `udp`, `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// `TCP`, `UDP`, `SCTP` as Kubernetes writes them.
    pub fn k8s_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port number with its protocol, written `80/tcp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortProto {
    /// 1-65535.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl fmt::Display for PortProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

impl Serialize for PortProto {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A port a pod or external endpoint serves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServedPort {
    /// Number and protocol.
    pub port: PortProto,
    /// Name, for named-port policies.
    pub name: Option<String>,
}

/// A pod, by logical namespace and name; written `ns/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodId {
    /// Logical namespace.
    pub ns: String,
    /// Pod name.
    pub name: String,
}

impl PodId {
    /// Builds one.
    pub fn new(ns: impl Into<String>, name: impl Into<String>) -> Self {
        PodId {
            ns: ns.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for PodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

impl Serialize for PodId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A namespace of the scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// Logical name (for `existing` namespaces also the real one).
    pub name: String,
    /// Labels netreach sets.
    pub labels: BTreeMap<String, String>,
    /// Exists in the cluster already; never created, renamed, relabelled or deleted.
    pub existing: bool,
    /// An `existing` namespace where steps may apply candidate policies (restored afterwards).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub candidates: bool,
}

/// A probe pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pod {
    /// Namespace and name.
    pub id: PodId,
    /// Labels at deployment (steps may change them).
    pub labels: BTreeMap<String, String>,
    /// Ports it serves.
    pub ports: Vec<ServedPort>,
}

impl Pod {
    /// Whether it serves `p`.
    pub fn serves(&self, p: PortProto) -> bool {
        self.ports.iter().any(|s| s.port == p)
    }
}

/// An endpoint outside the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct External {
    /// Its name (`ext:<name>`).
    pub name: String,
    /// Ports it serves.
    pub ports: Vec<ServedPort>,
    /// A fixed address (an endpoint that exists already, probed where it is); `None`: the run
    /// provides the endpoint and learns its address when it starts it.
    pub address: Option<std::net::IpAddr>,
}

/// What a probe is aimed at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A probe pod.
    Pod(PodId),
    /// An endpoint outside the cluster (`ext:<name>`).
    External(String),
    /// A DNS name to resolve (`dns:<name>`).
    Name(String),
}

impl Target {
    /// The pod, if it is one.
    pub fn pod(&self) -> Option<&PodId> {
        match self {
            Target::Pod(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pod(p) => p.fmt(f),
            Target::External(e) => write!(f, "ext:{e}"),
            Target::Name(n) => write!(f, "dns:{n}"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One cell of a reachability matrix: from a pod to a target on a port, by some route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CellKey {
    /// Source pod.
    pub from: PodId,
    /// Target.
    pub to: Target,
    /// Port (absent for DNS-resolution cells).
    pub port: Option<PortProto>,
    /// Route (absent for DNS-resolution cells).
    pub via: Option<Via>,
}

impl CellKey {
    /// Whether this is a pod reaching its own IP. Only `via: ip` counts: that traffic never leaves
    /// the pod. Through its own Service the connection leaves the pod and comes back NATed
    /// (hairpin), which CNIs and enforcers treat differently; such cells follow the rules.
    pub fn is_loopback(&self) -> bool {
        matches!(&self.to, Target::Pod(p) if *p == self.from)
            && self.via.is_none_or(|v| v == Via::Ip)
    }
}

impl fmt::Display for CellKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)?;
        if let Some(p) = self.port {
            write!(f, " {p}")?;
        }
        if let Some(v) = self.via
            && v != Via::Ip
        {
            write!(f, " via {}", v.as_str())?;
        }
        Ok(())
    }
}

impl Via {
    /// `ip`, `service`, `dns`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Ip => "ip",
            Via::Service => "service",
            Via::Dns => "dns",
        }
    }
}

impl Verdict {
    /// `allow` / `block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::Unresolved => "unresolved",
        }
    }
}

/// Where a cell's expectation came from, for reports ("block rule at line 32").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// `default`, `allow`, `block`, `table` or `loopback`.
    pub kind: &'static str,
    /// Line in the scenario file (0 for the implicit loopback rule).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{} setting", self.kind)
        } else {
            write!(f, "{} at line {}", self.kind, self.line)
        }
    }
}

/// The expectation of one cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Allowed or blocked.
    pub verdict: Verdict,
    /// Which entry decided it.
    pub origin: Origin,
}

/// What a step expects of every probed cell (every cell has exactly one expectation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpectedMatrix {
    /// Cell by cell, ordered.
    pub cells: BTreeMap<CellKey, Expected>,
}

/// One action a step performs on the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Delete a pod (a declared one, present at that point).
    RemovePod(PodId),
    /// Delete a namespace with everything in it (pods, policies).
    RemoveNamespace(String),
    /// Create a declared namespace (absent at that point), with its declared labels.
    AddNamespace(Namespace),
    /// Create a declared pod (absent at that point), with its declared labels and ports, in a
    /// namespace present at that point.
    AddPod(Pod),
    /// Delete a policy that is in force.
    DeletePolicy(PolicyRef),
    /// Replace a policy that is in force with a new version.
    ReplacePolicy(NetworkPolicy),
    /// Create a policy.
    ApplyPolicy(NetworkPolicy),
    /// Change a pod's labels (`None` removes a label).
    RelabelPod {
        /// The pod.
        pod: PodId,
        /// Labels to set or remove.
        labels: BTreeMap<String, Option<String>>,
    },
    /// Change a namespace's labels (`None` removes a label).
    RelabelNamespace {
        /// Logical namespace.
        ns: String,
        /// Labels to set or remove.
        labels: BTreeMap<String, Option<String>>,
    },
}

/// A step: actions, then expectations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based position.
    pub index: usize,
    /// Name for reports.
    pub name: String,
    /// Line of the step in the scenario file.
    pub line: usize,
    /// Actions in execution order (pod and namespace removals, additions, policy deletes,
    /// replaces, applies, relabels).
    pub actions: Vec<Action>,
    /// What must hold afterwards.
    pub expected: ExpectedMatrix,
}

/// Where a probe pod must run (a pod's `node:`). The policy engine never reads it: placement
/// changes the path a packet takes (same node or across nodes), not what policies allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// On the node of this name.
    Node(String),
    /// On the node another pod runs on.
    Same(PodId),
    /// On another node than this pod's.
    Different(PodId),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Node(n) => write!(f, "node {n}"),
            Placement::Same(p) => write!(f, "same node as {p}"),
            Placement::Different(p) => write!(f, "another node than {p}'s"),
        }
    }
}

/// Declared pods and namespaces that are absent at some point (before the first step, for
/// [`Scenario::absent_at_start`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Absent {
    /// Logical namespace names.
    pub namespaces: BTreeSet<String>,
    /// Pods.
    pub pods: BTreeSet<PodId>,
}

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The file stem: the test name.
    pub id: String,
    /// The folder the file is in: the test group.
    pub group: String,
    /// The file.
    pub path: PathBuf,
    /// Title (defaults to the id).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Namespaces, in declaration order.
    pub namespaces: Vec<Namespace>,
    /// Pods, in declaration order.
    pub pods: Vec<Pod>,
    /// External endpoints.
    pub externals: Vec<External>,
    /// Pods pinned to a node or placed relative to another pod (`node:`); pods not named are
    /// spread over the nodes by the scheduler.
    pub placement: BTreeMap<PodId, Placement>,
    /// Pods that are real workloads (`workload:`) in `existing` namespaces, with the labels
    /// that choose their pods; netreach creates a shadow pod for each, never the pod itself.
    pub workloads: BTreeMap<PodId, BTreeMap<String, String>>,
    /// Pods and namespaces absent before the first step: a step adds them before any step
    /// removes them (and pods of a namespace absent at the start). The deployment leaves them
    /// out; everything else declared is deployed before the first step.
    pub absent_at_start: Absent,
    /// How loopback cells are judged.
    pub loopback: Loopback,
    /// The cluster's pod CIDRs as the scenario declares them (`cluster.podCIDR`), at most one
    /// per address family; empty when it declares none.
    pub pod_cidrs: Vec<ipnet::IpNet>,
    /// The probed cells of steps without their own `probes:` (sorted, no duplicates). A step's
    /// own cells are the keys of its `expected` matrix; [`Scenario::all_cells`] is every step's.
    pub cells: Vec<CellKey>,
    /// Steps in order.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Why a run of this scenario needs consent to change live namespaces, in words (the first
    /// step that does), or `None`. Callers add how to give it (`--live-policies`, ...).
    pub fn live_consent(&self) -> Option<String> {
        let (step, namespaces) = self.live_changes().into_iter().next()?;
        Some(format!(
            "step {} (\"{}\", line {}) changes the policies of live namespace(s) {}, which affects real traffic there while it runs",
            step.index,
            step.name,
            step.line,
            namespaces.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }

    /// The steps that change live namespaces (`existing: true, candidates: true`), each with
    /// the namespaces whose policies it applies, replaces or deletes: they affect real traffic
    /// while they are in force, so a run needs explicit consent (`--live-policies`).
    pub fn live_changes(&self) -> Vec<(&Step, BTreeSet<&str>)> {
        let live = |ns: &str| self.namespace(ns).is_some_and(|n| n.existing);
        self.steps
            .iter()
            .filter_map(|st| {
                let namespaces: BTreeSet<&str> = st
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::ApplyPolicy(p) | Action::ReplacePolicy(p) => Some(p.ns.as_str()),
                        Action::DeletePolicy(r) => Some(r.ns.as_str()),
                        _ => None,
                    })
                    .filter(|ns| live(ns))
                    .collect();
                (!namespaces.is_empty()).then_some((st, namespaces))
            })
            .collect()
    }

    /// Whether a cell goes from or to a real workload (`workload:`): the live policies around
    /// it are not in the scenario, so the specification has no opinion on it.
    pub fn touches_workload(&self, k: &CellKey) -> bool {
        self.workloads.contains_key(&k.from)
            || k.to.pod().is_some_and(|p| self.workloads.contains_key(p))
    }

    /// `group/id`, the full test name.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }

    /// The logical-to-real namespace mapping of a run with this naming (`existing` namespaces
    /// keep their names).
    pub fn namespace_map(&self, naming: &crate::names::Naming) -> crate::names::NamespaceMap {
        let names = |existing: bool| {
            self.namespaces
                .iter()
                .filter(move |n| n.existing == existing)
                .map(|n| n.name.as_str())
        };
        crate::names::NamespaceMap::new(naming, names(false), names(true))
    }

    /// The pod with this id.
    pub fn pod(&self, id: &PodId) -> Option<&Pod> {
        self.pods.iter().find(|p| &p.id == id)
    }

    /// The namespace with this logical name.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    /// The external endpoint with this name.
    pub fn external(&self, name: &str) -> Option<&External> {
        self.externals.iter().find(|e| e.name == name)
    }

    /// The ports a target serves (empty for DNS names).
    pub fn served_ports(&self, t: &Target) -> &[ServedPort] {
        match t {
            Target::Pod(p) => self.pod(p).map_or(&[], |p| p.ports.as_slice()),
            Target::External(e) => self.external(e).map_or(&[], |e| e.ports.as_slice()),
            Target::Name(_) => &[],
        }
    }

    /// Every cell some step probes (sorted, no duplicates); [`Scenario::cells`] when there are
    /// no steps.
    pub fn all_cells(&self) -> Vec<CellKey> {
        if self.steps.is_empty() {
            return self.cells.clone();
        }
        let mut v: Vec<CellKey> = self
            .steps
            .iter()
            .flat_map(|st| st.expected.cells.keys())
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Pods that need a Service in front of them (targets of `via: service` or `via: dns` in
    /// any step).
    pub fn pods_needing_service(&self) -> Vec<PodId> {
        let mut v: Vec<PodId> = self
            .all_cells()
            .into_iter()
            .filter(|c| matches!(c.via, Some(Via::Service | Via::Dns)))
            .filter_map(|c| c.to.pod().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}
