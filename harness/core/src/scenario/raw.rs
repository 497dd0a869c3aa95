//! The scenario file format as serde reads it: field names, nesting, types, and source spans.
//!
//! These types are the single source of the JSON Schema (`docs/scenario.schema.json`). They only
//! check shape; meaning (references, ports, names) is checked by the validation in
//! `scenario::structure` and `scenario::steps`, so that every problem is reported, not just the
//! first. The few enums the model shares (`Via`, `Verdict`, `Loopback`) are mirrored here for
//! serde and the schema and converted with `From`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::model::{Loopback, Verdict, Via};
use crate::policy::raw::RawNetworkPolicy;
pub use crate::yaml::{Sp, SpMap};

/// A netreach scenario: namespaces and pods to deploy, what to probe, and steps that change
/// NetworkPolicies and state what must (not) connect afterwards.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "netreach scenario", extend("$id" = "https://netreach.dev/schema/scenario-v1.json"))]
pub struct RawScenario {
    /// Format version. Only `1` exists.
    #[schemars(with = "u32")]
    pub version: Sp<u32>,
    /// Human-readable title; the test name is the file stem regardless.
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario proves, for reports.
    #[serde(default)]
    pub description: Option<String>,
    /// Namespaces the scenario uses. Logical names: a run maps them to real names.
    #[serde(default)]
    pub namespaces: Vec<RawNamespace>,
    /// Probe pods. Each serves its declared ports.
    #[serde(default)]
    #[schemars(with = "Vec<RawPod>")]
    pub pods: Option<Sp<Vec<RawPod>>>,
    /// Endpoints outside the cluster that the run provides (their address is known at run time).
    #[serde(default)]
    pub external: Vec<RawExternal>,
    /// What the scenario knows about the cluster it runs on (optional).
    #[serde(default)]
    pub cluster: Option<RawCluster>,
    /// Which connections to test. Absent: every pod to every pod on each port the destination
    /// serves, via the pod IP.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawProbe>>")]
    pub probes: Option<Sp<Vec<RawProbe>>>,
    /// How a pod reaching itself is judged: `allow` (default: Kubernetes says a pod cannot block
    /// itself), `block`, `rules` (like any other cell), or `ignore` (not probed at all).
    #[serde(default)]
    #[schemars(with = "Option<RawLoopback>")]
    pub loopback: Option<Sp<RawLoopback>>,
    /// Steps, run in order; cluster state carries over from one to the next.
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>", length(min = 1), required)]
    pub steps: Option<Sp<Vec<RawStep>>>,
}

/// What the scenario knows about the cluster it runs on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// The cluster's pod network, where every pod address lies: a CIDR (`10.244.0.0/16`), or
    /// one per family for a dual-stack cluster (`10.244.0.0/16,fd00:10:244::/56`). Lets the
    /// policy engine decide ipBlocks before deployment: a block disjoint from it contains no
    /// pod, one containing it every pod. Absent: an IPv4 cluster is assumed (`0.0.0.0/0`).
    #[serde(default, rename = "podCIDR")]
    #[schemars(with = "Option<String>")]
    pub pod_cidr: Option<Sp<String>>,
}

/// How loopback cells (a pod to itself) are judged.
// `Serialize` only so that the schema states `"default": null` for optional fields of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename = "Loopback", rename_all = "lowercase")]
pub enum RawLoopback {
    /// Always expected to connect, whatever the rules say (the default).
    Allow,
    /// Always expected to be blocked.
    Block,
    /// Judged by the expectation rules like every other cell.
    Rules,
    /// Not probed at all: no cell from a pod to its own IP.
    Ignore,
}

/// A namespace.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNamespace {
    /// Logical name (a DNS label). Policies and references use it.
    #[schemars(with = "String")]
    pub name: Sp<String>,
    /// Labels netreach sets on the namespace (`kubernetes.io/metadata.name` is set by Kubernetes).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: SpMap<String>,
    /// The namespace already exists in the cluster and is not the scenario's (e.g. `kube-system`):
    /// it keeps its name and is never created, relabelled or deleted.
    #[serde(default)]
    pub existing: bool,
    /// Steps may apply candidate policies in this `existing` namespace (the rollout check):
    /// netreach records each policy it creates or changes there and restores it exactly at the
    /// end, on failure and on Ctrl-C. Real traffic in the namespace is affected while they are
    /// in force, so `netreach run` also wants `--live-policies`.
    #[serde(default)]
    pub candidates: bool,
}

/// A probe pod.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPod {
    /// Pod name (a DNS label), unique within its namespace.
    #[schemars(with = "String")]
    pub name: Sp<String>,
    /// Logical namespace; must be declared, and `existing` only for a `workload:`.
    #[schemars(with = "String")]
    pub namespace: Sp<String>,
    /// A real workload in an `existing` namespace, chosen by these labels (like a
    /// `matchLabels`): netreach creates nothing in its place. Probes to it go to the IP of one
    /// of its Ready pods; probes from it run in a shadow pod that netreach creates beside it
    /// with exactly that pod's labels (so exactly the policies that select it apply), which is
    /// never Ready (no Service sends it traffic) and is deleted at the end. `labels:` default
    /// to these; `ports:` must be ports its containers declare.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub workload: Option<SpMap<String>>,
    /// Pod labels, which policies select on.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: SpMap<String>,
    /// Ports the pod serves: `80/tcp`, `53/udp`, or `{port: 8080, protocol: TCP, name: http}`.
    #[serde(default)]
    #[schemars(with = "Vec<RawPortDecl>")]
    pub ports: Vec<Sp<RawPortDecl>>,
    /// Where the pod runs: a node's name (`node: kind-worker`), the node of another pod
    /// (`node: {same: ns/pod}`) or another node than its (`node: {different: ns/pod}`), so that
    /// same-node and cross-node paths are both proven. Default: the scheduler spreads the
    /// run's pods over the nodes.
    #[serde(default)]
    #[schemars(with = "Option<RawNode>")]
    pub node: Option<Sp<RawNode>>,
}

/// A pod's `node:`: a node name, or `{same: ns/pod}` / `{different: ns/pod}`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum RawNode {
    /// A node's name.
    Name(String),
    /// Relative to another pod.
    Relative(RawNodeRelative),
}

/// A placement relative to another pod: exactly one of `same` and `different`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNodeRelative {
    /// On the node this pod (`ns/pod`) runs on.
    #[serde(default)]
    pub same: Option<String>,
    /// On another node than this pod's (`ns/pod`).
    #[serde(default)]
    pub different: Option<String>,
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawNode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a node name or a map `{same: ns/pod}` / `{different: ns/pod}`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawNode, E> {
                Ok(RawNode::Name(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<RawNode, A::Error> {
                RawNodeRelative::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(RawNode::Relative)
            }
        }
        d.deserialize_any(V)
    }
}

/// An endpoint outside the cluster that the run provides.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExternal {
    /// Name used in targets (`ext:<name>`) and address placeholders (`${ip ext:<name>}`).
    #[schemars(with = "String")]
    pub name: Sp<String>,
    /// Ports it serves.
    #[schemars(with = "Vec<RawPortDecl>")]
    pub ports: Vec<Sp<RawPortDecl>>,
    /// The fixed IP address of an endpoint that already exists outside the cluster (a payment
    /// provider, an internal API): probed at that address, never started or stopped. Without
    /// it, the run starts a container for the endpoint on kind's Docker network.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub address: Option<Sp<String>>,
}

/// A served port: the short form `80/tcp` (protocol `tcp`, `udp` or `sctp`; `80` alone means TCP)
/// or the long form with an optional name for named-port policies.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum RawPortDecl {
    /// `80/tcp`, `53/udp`.
    Short(String),
    /// `80` (TCP).
    Number(i64),
    /// `{port: 8080, protocol: TCP, name: http}`.
    Long(RawPortLong),
}

/// The long form of a served port.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPortLong {
    /// Port number, 1-65535.
    pub port: i64,
    /// `TCP` (default), `UDP` or `SCTP`, any case.
    #[serde(default)]
    pub protocol: Option<String>,
    /// IANA service name (at most 15 characters, lowercase letters, digits and `-`), for
    /// named-port policies.
    #[serde(default)]
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for RawPortDecl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawPortDecl;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port like `80/tcp` or a map `{port: 80, protocol: TCP, name: http}`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawPortDecl, E> {
                Ok(RawPortDecl::Short(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawPortDecl, E> {
                Ok(RawPortDecl::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawPortDecl, E> {
                Ok(RawPortDecl::Number(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<RawPortDecl, A::Error> {
                RawPortLong::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(RawPortDecl::Long)
            }
        }
        d.deserialize_any(V)
    }
}

/// A port as probes and expectations write it: `80/tcp`, `80` (TCP), a port name (`http`), or
/// `*` (every port).
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum RawPortRef {
    /// The textual forms.
    Text(String),
    /// A bare number (TCP).
    Number(i64),
}

impl<'de> Deserialize<'de> for RawPortRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawPortRef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port like `80/tcp`, a port name, or `*`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawPortRef, E> {
                Ok(RawPortRef::Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawPortRef, E> {
                Ok(RawPortRef::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawPortRef, E> {
                Ok(RawPortRef::Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// How a probe reaches its target.
// `Serialize` only so that the schema states `"default": null` for optional fields of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename = "Via", rename_all = "lowercase")]
pub enum RawVia {
    /// The target pod's IP (or the external endpoint's address).
    Ip,
    /// The ClusterIP of a Service in front of the target pod.
    Service,
    /// The Service's DNS name (`<pod>.<namespace>.svc.cluster.local`), resolved in the source pod.
    Dns,
}

/// Which connections to test. Either a connection probe (`to`, optional `port` and `via`) or a
/// DNS-resolution probe (`resolve`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    /// Source pods: `ns/pod` with `*` wildcards in either part, or `*` for every pod.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub from: Option<Sp<String>>,
    /// Targets: a pod pattern like `from`, or `ext:<name>` / `ext:*` for external endpoints.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub to: Option<Sp<String>>,
    /// Port to test; absent means every port the target serves.
    #[serde(default)]
    #[schemars(with = "Option<RawPortRef>")]
    pub port: Option<Sp<RawPortRef>>,
    /// How to reach the target (default `ip`).
    #[serde(default)]
    #[schemars(with = "Option<RawVia>")]
    pub via: Option<Sp<RawVia>>,
    /// A DNS name to resolve from each source pod (a resolution probe; excludes `to`/`port`/`via`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub resolve: Option<Sp<String>>,
}

/// One step: actions on the cluster, then the expected reachability.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Name used in reports (default `step N`).
    #[serde(default)]
    pub name: Option<String>,
    /// Pods and namespaces the step removes (run first: pods, then namespaces). A removed
    /// namespace takes its pods and policies with it.
    #[serde(default)]
    pub remove: Option<RawMembers>,
    /// Declared pods and namespaces the step creates (run second: namespaces, then pods). A pod
    /// or namespace that the steps name first in an `add:` is absent until then (removing a
    /// namespace names its pods).
    #[serde(default)]
    pub add: Option<RawMembers>,
    /// Policies to delete, as `namespace/name` (run after `add`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub delete: Vec<Sp<String>>,
    /// New versions of policies that are in force (run after `delete`).
    #[serde(default)]
    pub replace: Vec<RawPolicySource>,
    /// Policies to create (run after `replace`).
    #[serde(default)]
    pub apply: Vec<RawPolicySource>,
    /// Label changes on pods and namespaces (run last).
    #[serde(default)]
    pub relabel: Vec<RawRelabel>,
    /// Which connections this step tests, instead of the scenario's `probes:` (same forms).
    /// Absent: the scenario's.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawProbe>>")]
    pub probes: Option<Sp<Vec<RawProbe>>>,
    /// What must hold after the actions: a list where later entries override earlier ones.
    #[schemars(with = "Vec<RawExpect>")]
    pub expect: Sp<Vec<RawExpect>>,
}

/// Where a NetworkPolicy comes from: a file (path relative to the scenario; may hold several
/// YAML documents) or an inline manifest.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicySource {
    /// Path relative to the scenario file.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Sp<String>>,
    /// The manifest itself.
    #[serde(default)]
    pub inline: Option<Box<RawNetworkPolicy>>,
    /// Logical namespace for manifests that do not set `metadata.namespace`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Sp<String>>,
}

/// Declared pods and namespaces that a step adds or removes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMembers {
    /// Namespaces, by logical name (declared under `namespaces:`, not `existing`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub namespaces: Vec<Sp<String>>,
    /// Pods, as `namespace/pod` (declared under `pods:`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub pods: Vec<Sp<String>>,
}

/// A label change on one pod or namespace. A `null` value removes the label.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRelabel {
    /// The pod, as `namespace/pod`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pod: Option<Sp<String>>,
    /// The namespace (logical name).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Sp<String>>,
    /// Labels to set; `null` removes one.
    #[schemars(with = "BTreeMap<String, Option<String>>")]
    pub labels: Sp<SpMap<Option<String>>>,
}

/// One expectation entry. Later entries override earlier ones cell by cell.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum RawExpect {
    /// Every probed cell (including those no other entry names).
    Default(#[schemars(with = "RawVerdict")] Sp<RawVerdict>),
    /// Cells matching the pattern connect.
    Allow(#[schemars(with = "RawCellPattern")] Sp<RawCellPattern>),
    /// Cells matching the pattern are blocked.
    Block(#[schemars(with = "RawCellPattern")] Sp<RawCellPattern>),
    /// Connections by DNS name (`via: dns`) matching the pattern fail because the name does not
    /// resolve (typically: an egress policy blocks DNS). Not the same as blocked.
    Unresolved(#[schemars(with = "RawCellPattern")] Sp<RawCellPattern>),
    /// A truth table for one port (rows = from, columns = to).
    Table(#[schemars(with = "RawTable")] Sp<RawTable>),
    /// Cells matching the pattern (`{}`: every cell) expect what the NetworkPolicy
    /// specification says, as netreach's policy engine computes it from the policies in force.
    Computed(#[schemars(with = "RawCellPattern")] Sp<RawCellPattern>),
}

/// Allowed or blocked.
// `Serialize` only so that the schema states `"default": null` for optional fields of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename = "Verdict", rename_all = "lowercase")]
pub enum RawVerdict {
    /// The connection succeeds.
    Allow,
    /// The connection is blocked.
    Block,
    /// The target's name does not resolve, so the connection is never tried (`via: dns` only;
    /// written as an `unresolved:` entry).
    Unresolved,
}

/// A set of cells: every field is a pattern; absent means any.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCellPattern {
    /// Source pods (`ns/pod`, wildcards allowed).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub from: Option<Sp<String>>,
    /// Targets: pod pattern, `ext:<name>`, or `dns:<name>` for resolution probes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub to: Option<Sp<String>>,
    /// Port: `80/tcp`, a port name, or `*`.
    #[serde(default)]
    #[schemars(with = "Option<RawPortRef>")]
    pub port: Option<Sp<RawPortRef>>,
    /// Only cells probed this way.
    #[serde(default)]
    #[schemars(with = "Option<RawVia>")]
    pub via: Option<Sp<RawVia>>,
}

/// A truth table: the first line lists the columns (targets), optionally after a `-` corner; every
/// other line is a source pod followed by one cell per column: `.` allowed, `X` blocked, `?` no
/// expectation (earlier entries stay in force).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    /// Port the table is about (default `*`: every port each column's target serves).
    #[serde(default)]
    #[schemars(with = "Option<RawPortRef>")]
    pub port: Option<Sp<RawPortRef>>,
    /// Only cells probed this way (default: any).
    #[serde(default)]
    #[schemars(with = "Option<RawVia>")]
    pub via: Option<Sp<RawVia>>,
    /// The table text (use a `|` block so positions in errors are exact).
    #[schemars(with = "String")]
    pub rows: Sp<String>,
}

impl From<RawLoopback> for Loopback {
    fn from(l: RawLoopback) -> Loopback {
        match l {
            RawLoopback::Allow => Loopback::Allow,
            RawLoopback::Block => Loopback::Block,
            RawLoopback::Rules => Loopback::Rules,
            RawLoopback::Ignore => Loopback::Ignore,
        }
    }
}

impl From<RawVia> for Via {
    fn from(v: RawVia) -> Via {
        match v {
            RawVia::Ip => Via::Ip,
            RawVia::Service => Via::Service,
            RawVia::Dns => Via::Dns,
        }
    }
}

impl From<RawVerdict> for Verdict {
    fn from(v: RawVerdict) -> Verdict {
        match v {
            RawVerdict::Allow => Verdict::Allow,
            RawVerdict::Block => Verdict::Block,
            RawVerdict::Unresolved => Verdict::Unresolved,
        }
    }
}
