//! NetworkPolicies: validation of manifests, the validated form, and rendering for a run.
//!
//! A policy is written against logical namespaces and may use address placeholders in ipBlocks
//! (`${ip x/b}/32`, `${ip ext:web}/32`). [`NetworkPolicy::to_manifest`] produces the manifest a
//! run applies: real namespace names (also in `kubernetes.io/metadata.name` selectors) and real
//! addresses. Namespaces marked `existing` are never rewritten.

pub mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use crate::bind::{BindError, Bindings};
use crate::diag::{Code, DiagExt, Pos, Sink};
use crate::model::{PodId, Protocol};
use crate::names::{check_dns_subdomain, check_label_key, check_label_value, check_port_name};
use crate::scenario::raw::Sp;
use raw::{IntOrString, RawLabelSelector, RawNetworkPolicy, RawPeer, RawPolicyPort};

/// The label Kubernetes sets on every namespace to its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A policy by logical namespace and name; written `ns/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyRef {
    /// Logical namespace.
    pub ns: String,
    /// Policy name.
    pub name: String,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

/// `Ingress` or `Egress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyType {
    /// Ingress.
    Ingress,
    /// Egress.
    Egress,
}

impl PolicyType {
    fn as_str(self) -> &'static str {
        match self {
            PolicyType::Ingress => "Ingress",
            PolicyType::Egress => "Egress",
        }
    }
}

/// `In`, `NotIn`, `Exists`, `DoesNotExist`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

/// One `matchExpressions` requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values (for `In`/`NotIn`).
    pub values: Vec<String>,
}

/// A label selector; the empty selector selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Must all be equal.
    pub match_labels: BTreeMap<String, String>,
    /// Must all hold.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let got = labels.get(&r.key);
                match r.operator {
                    Operator::In => got.is_some_and(|v| r.values.contains(v)),
                    Operator::NotIn => got.is_none_or(|v| !r.values.contains(v)),
                    Operator::Exists => got.is_some(),
                    Operator::DoesNotExist => got.is_none(),
                }
            })
    }

    fn to_json(&self, map_ns: &dyn Fn(&str) -> String, is_ns_selector: bool) -> Value {
        let mut m = Map::new();
        if !self.match_labels.is_empty() {
            let labels: Map<String, Value> = self
                .match_labels
                .iter()
                .map(|(k, v)| {
                    let v = if is_ns_selector && k == NAMESPACE_NAME_LABEL {
                        map_ns(v)
                    } else {
                        v.clone()
                    };
                    (k.clone(), Value::String(v))
                })
                .collect();
            m.insert("matchLabels".into(), Value::Object(labels));
        }
        if !self.match_expressions.is_empty() {
            let exprs: Vec<Value> = self
                .match_expressions
                .iter()
                .map(|r| {
                    let values: Vec<String> = if is_ns_selector && r.key == NAMESPACE_NAME_LABEL {
                        r.values.iter().map(|v| map_ns(v)).collect()
                    } else {
                        r.values.clone()
                    };
                    let mut e = json!({"key": r.key, "operator": r.operator.as_str()});
                    if !values.is_empty() {
                        e["values"] = json!(values);
                    }
                    e
                })
                .collect();
            m.insert("matchExpressions".into(), Value::Array(exprs));
        }
        Value::Object(m)
    }
}

/// An address in an ipBlock: literal, or a placeholder bound at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrExpr {
    /// A literal CIDR.
    Literal(IpNet),
    /// `${ip ns/pod}/prefix`.
    PodIp {
        /// The pod.
        pod: PodId,
        /// Prefix length.
        prefix: u8,
    },
    /// `${ip ext:name}/prefix`.
    ExternalIp {
        /// The endpoint.
        name: String,
        /// Prefix length.
        prefix: u8,
    },
}

impl AddrExpr {
    /// The CIDR once addresses are known.
    ///
    /// # Errors
    /// When the bindings lack the address, or the prefix does not fit the address family.
    pub fn resolve(&self, b: &Bindings) -> Result<IpNet, BindError> {
        let (ip, prefix, what) = match self {
            AddrExpr::Literal(n) => return Ok(*n),
            AddrExpr::PodIp { pod, prefix } => (b.pod_ip(pod)?, *prefix, pod.to_string()),
            AddrExpr::ExternalIp { name, prefix } => {
                (b.external_ip(name)?, *prefix, format!("ext:{name}"))
            }
        };
        IpNet::new(ip, prefix)
            .map(|n| n.trunc())
            .map_err(|_| BindError::Prefix { what, ip, prefix })
    }
}

impl fmt::Display for AddrExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrExpr::Literal(n) => n.fmt(f),
            AddrExpr::PodIp { pod, prefix } => write!(f, "${{ip {pod}}}/{prefix}"),
            AddrExpr::ExternalIp { name, prefix } => write!(f, "${{ip ext:{name}}}/{prefix}"),
        }
    }
}

/// An ipBlock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpBlock {
    /// The block.
    pub cidr: AddrExpr,
    /// Holes in it.
    pub except: Vec<AddrExpr>,
}

/// A rule peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Pod and/or namespace selectors (both present: AND).
    Selectors {
        /// Pods.
        pods: Option<LabelSelector>,
        /// Namespaces.
        namespaces: Option<LabelSelector>,
    },
    /// Addresses.
    IpBlock(IpBlock),
}

/// A port number or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortValue {
    /// A number.
    Number(u16),
    /// A named port of the destination pod.
    Name(String),
}

/// A rule's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyPort {
    /// Protocol (default TCP).
    pub protocol: Protocol,
    /// Port; absent means every port of the protocol.
    pub port: Option<PortValue>,
    /// End of a numeric range.
    pub end_port: Option<u16>,
}

/// An ingress or egress rule. `None` for peers or ports means the field was absent (any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `from` / `to`.
    pub peers: Option<Vec<Peer>>,
    /// `ports`.
    pub ports: Option<Vec<PolicyPort>>,
    /// 1-based line of the rule (its `ingress:`/`egress:` entry) in the policy's file, for
    /// reports (`netreach explain`, `netreach lint`); 0 when unknown.
    pub line: usize,
}

/// A validated NetworkPolicy, in logical names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Logical namespace.
    pub ns: String,
    /// Name.
    pub name: String,
    /// Labels passed through.
    pub labels: BTreeMap<String, String>,
    /// Annotations passed through.
    pub annotations: BTreeMap<String, String>,
    /// Selected pods.
    pub pod_selector: LabelSelector,
    /// `policyTypes` as written (`None` when absent).
    pub policy_types: Option<Vec<PolicyType>>,
    /// Ingress rules as written (`None` when absent).
    pub ingress: Option<Vec<Rule>>,
    /// Egress rules as written (`None` when absent).
    pub egress: Option<Vec<Rule>>,
    /// `file:line` of the manifest, for reports.
    pub origin: String,
}

impl NetworkPolicy {
    /// Its reference.
    pub fn reference(&self) -> PolicyRef {
        PolicyRef {
            ns: self.ns.clone(),
            name: self.name.clone(),
        }
    }

    /// The policy types in effect, with Kubernetes' defaulting: when `policyTypes` is absent,
    /// `Ingress` always, plus `Egress` if the policy has egress rules.
    pub fn effective_types(&self) -> BTreeSet<PolicyType> {
        match &self.policy_types {
            Some(t) if !t.is_empty() => t.iter().copied().collect(),
            // Kubernetes defaults an empty list like an absent one.
            _ => {
                let mut s = BTreeSet::from([PolicyType::Ingress]);
                if self.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                    s.insert(PolicyType::Egress);
                }
                s
            }
        }
    }

    /// The manifest to apply in a run: real namespace names and addresses.
    ///
    /// # Errors
    /// When a namespace or address the policy needs is not bound.
    pub fn to_manifest(&self, b: &Bindings) -> Result<Value, BindError> {
        let map_ns = |l: &str| b.namespace(l).map_or_else(|_| l.to_owned(), str::to_owned);
        let mut meta = json!({"name": self.name, "namespace": b.namespace(&self.ns)?});
        if !self.labels.is_empty() {
            meta["labels"] = json!(self.labels);
        }
        if !self.annotations.is_empty() {
            meta["annotations"] = json!(self.annotations);
        }
        let mut spec = Map::new();
        spec.insert(
            "podSelector".into(),
            self.pod_selector.to_json(&map_ns, false),
        );
        if let Some(t) = &self.policy_types {
            spec.insert(
                "policyTypes".into(),
                json!(t.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
            );
        }
        for (key, peer_key, rules) in [
            ("ingress", "from", &self.ingress),
            ("egress", "to", &self.egress),
        ] {
            let Some(rules) = rules else { continue };
            let mut out = Vec::new();
            for r in rules {
                let mut rule = Map::new();
                if let Some(peers) = &r.peers {
                    let mut ps = Vec::new();
                    for p in peers {
                        ps.push(peer_json(p, b, &map_ns)?);
                    }
                    rule.insert(peer_key.into(), Value::Array(ps));
                }
                if let Some(ports) = &r.ports {
                    rule.insert(
                        "ports".into(),
                        Value::Array(ports.iter().map(port_json).collect()),
                    );
                }
                out.push(Value::Object(rule));
            }
            spec.insert(key.into(), Value::Array(out));
        }
        Ok(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta,
            "spec": spec,
        }))
    }
}

fn peer_json(p: &Peer, b: &Bindings, map_ns: &dyn Fn(&str) -> String) -> Result<Value, BindError> {
    Ok(match p {
        Peer::Selectors { pods, namespaces } => {
            let mut m = Map::new();
            if let Some(s) = pods {
                m.insert("podSelector".into(), s.to_json(map_ns, false));
            }
            if let Some(s) = namespaces {
                m.insert("namespaceSelector".into(), s.to_json(map_ns, true));
            }
            Value::Object(m)
        }
        Peer::IpBlock(ib) => {
            let cidr = ib.cidr.resolve(b)?;
            for e in &ib.except {
                let inner = e.resolve(b)?;
                if !cidr.contains(&inner) || inner == cidr {
                    return Err(BindError::Except {
                        except: inner.to_string(),
                        cidr: cidr.to_string(),
                    });
                }
            }
            let mut block = json!({"cidr": cidr.to_string()});
            if !ib.except.is_empty() {
                let ex: Result<Vec<String>, _> = ib
                    .except
                    .iter()
                    .map(|e| e.resolve(b).map(|n| n.to_string()))
                    .collect();
                block["except"] = json!(ex?);
            }
            json!({"ipBlock": block})
        }
    })
}

fn port_json(p: &PolicyPort) -> Value {
    let mut m = json!({"protocol": p.protocol.k8s_name()});
    match &p.port {
        Some(PortValue::Number(n)) => m["port"] = json!(n),
        Some(PortValue::Name(n)) => m["port"] = json!(n),
        None => {}
    }
    if let Some(e) = p.end_port {
        m["endPort"] = json!(e);
    }
    m
}

/// What policy validation needs to know about the scenario.
#[derive(Debug)]
pub struct PolicyContext<'a> {
    /// Logical namespaces of the scenario, and whether each is `existing`.
    pub namespaces: &'a BTreeMap<String, bool>,
    /// Declared pods.
    pub pods: &'a BTreeSet<PodId>,
    /// Declared external endpoints.
    pub externals: &'a BTreeSet<String>,
}

/// Validates one manifest. Problems go to `sink`; returns `None` when the policy is unusable.
pub fn check_policy(
    raw: RawNetworkPolicy,
    default_ns: Option<&Sp<String>>,
    origin: String,
    cx: &PolicyContext<'_>,
    sink: &mut Sink<'_>,
) -> Option<NetworkPolicy> {
    let errors_before = sink.out.error_count();
    if raw.api_version.value != "networking.k8s.io/v1" {
        sink.error_at(
            Code::InvalidPolicy,
            &raw.api_version,
            format!(
                "apiVersion `{}` is not a NetworkPolicy API version",
                raw.api_version.value
            ),
        )
        .help("NetworkPolicies use `apiVersion: networking.k8s.io/v1`");
    }
    if raw.kind.value != "NetworkPolicy" {
        sink.error_at(Code::InvalidPolicy, &raw.kind, format!("kind `{}` is not a NetworkPolicy", raw.kind.value))
            .help("netreach applies only `kind: NetworkPolicy` documents; keep other manifests out of policy files");
    }
    let name = &raw.metadata.name;
    if let Err(e) = check_dns_subdomain(&name.value) {
        sink.error_at(
            Code::InvalidName,
            name,
            format!("policy name `{}` {e}", name.value),
        );
    }
    let ns = match (&raw.metadata.namespace, default_ns) {
        (Some(ns), _) | (None, Some(ns)) => Some(ns),
        (None, None) => {
            sink.error_at(Code::MissingField, name, format!("policy `{}` has no namespace", name.value))
                .help("set `metadata.namespace` to one of the scenario's namespaces, or `namespace:` next to `file:`/`inline:`");
            None
        }
    };
    // A namespace given next to `file:`/`inline:` is checked once by the caller, in the scenario.
    if let Some(ns) = &raw.metadata.namespace {
        check_namespace(ns, &format!("policy `{}`", name.value), cx, sink);
        if let Some(d) = default_ns
            && d.value != ns.value
        {
            sink.error_at(
                Code::Conflict,
                ns,
                format!(
                    "policy `{}` says namespace `{}`, but its source says `namespace: {}`",
                    name.value, ns.value, d.value
                ),
            )
            .help("drop one of them, or make them agree");
        }
    }
    let spec = raw.spec.unwrap_or_default();
    let pod_selector = check_selector(spec.pod_selector.as_ref(), false, cx, sink);
    let policy_types = spec.policy_types.map(|ts| {
        let mut out = Vec::new();
        for t in ts {
            let ty = match t.value.as_str() {
                "Ingress" => PolicyType::Ingress,
                "Egress" => PolicyType::Egress,
                other => {
                    sink.error_at(
                        Code::InvalidPolicy,
                        &t,
                        format!("`{other}` is not a policy type"),
                    )
                    .help("policyTypes holds `Ingress` and/or `Egress` (case matters)");
                    continue;
                }
            };
            if out.contains(&ty) {
                sink.error_at(
                    Code::InvalidPolicy,
                    &t,
                    format!("`{}` is listed twice in policyTypes", t.value),
                )
                .help("list each policy type once");
            } else {
                out.push(ty);
            }
        }
        out
    });
    let ingress = spec.ingress.map(|rules| {
        rules
            .into_iter()
            .map(|r| {
                let line = Pos::from_location(sink.file, &r.referenced).line;
                check_rule(r.value.from, r.value.ports, line, cx, sink)
            })
            .collect::<Vec<_>>()
    });
    let egress = spec.egress.map(|rules| {
        rules
            .into_iter()
            .map(|r| {
                let line = Pos::from_location(sink.file, &r.referenced).line;
                check_rule(r.value.to, r.value.ports, line, cx, sink)
            })
            .collect::<Vec<_>>()
    });
    if sink.out.error_count() > errors_before {
        return None;
    }
    Some(NetworkPolicy {
        ns: ns?.value.clone(),
        name: name.value.clone(),
        labels: raw.metadata.labels,
        annotations: raw.metadata.annotations,
        pod_selector,
        policy_types,
        ingress,
        egress,
        origin,
    })
}

/// Checks that a policy's namespace is one of the scenario's own. Returns whether it is.
pub fn check_namespace(
    ns: &Sp<String>,
    what: &str,
    cx: &PolicyContext<'_>,
    sink: &mut Sink<'_>,
) -> bool {
    match cx.namespaces.get(&ns.value) {
        None => {
            sink.error_at(
                Code::UnknownNamespace,
                ns,
                format!(
                    "{what} is in namespace `{}`, which the scenario does not declare",
                    ns.value
                ),
            )
            .help(declared_help(cx.namespaces.keys()));
            false
        }
        Some(true) => {
            sink.error_at(
                Code::ExistingNamespace,
                ns,
                format!("{what} would be applied in `{}`, a namespace that is not the scenario's", ns.value),
            )
            .help("netreach never changes namespaces marked `existing`; put the policy in one of the scenario's own namespaces");
            false
        }
        Some(false) => true,
    }
}

fn declared_help<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "declare it under `namespaces:` (with `existing: true` if it already exists in the cluster)"
            .into()
    } else {
        format!(
            "declared namespaces: {}; declare it under `namespaces:` (with `existing: true` if it already exists in the cluster)",
            names.join(", ")
        )
    }
}

fn check_rule(
    peers: Option<Vec<Sp<RawPeer>>>,
    ports: Option<Vec<RawPolicyPort>>,
    line: usize,
    cx: &PolicyContext<'_>,
    sink: &mut Sink<'_>,
) -> Rule {
    let peers = peers.map(|ps| ps.iter().filter_map(|p| check_peer(p, cx, sink)).collect());
    let ports = ports.map(|ps| ps.into_iter().filter_map(|p| check_port(p, sink)).collect());
    Rule { peers, ports, line }
}

fn check_peer(peer: &Sp<RawPeer>, cx: &PolicyContext<'_>, sink: &mut Sink<'_>) -> Option<Peer> {
    let p = &peer.value;
    match (&p.ip_block, &p.pod_selector, &p.namespace_selector) {
        (Some(ib), None, None) => {
            let cidr = check_addr(&ib.cidr, cx, sink);
            let except: Vec<Option<AddrExpr>> =
                ib.except.iter().map(|e| check_addr(e, cx, sink)).collect();
            // Check every literal `except` against a literal `cidr`, even when others are bad.
            if let Some(AddrExpr::Literal(outer)) = &cidr {
                for (e, raw) in except.iter().zip(&ib.except) {
                    if let Some(AddrExpr::Literal(inner)) = e
                        && (!outer.contains(inner) || inner == outer)
                    {
                        sink.error_at(
                            Code::InvalidCidr,
                            raw,
                            format!("except `{inner}` is not strictly inside cidr `{outer}`"),
                        )
                        .help("every `except` entry must be a smaller block within `cidr`");
                    }
                }
            }
            let except: Vec<AddrExpr> = except.into_iter().collect::<Option<_>>()?;
            Some(Peer::IpBlock(IpBlock {
                cidr: cidr?,
                except,
            }))
        }
        (Some(_), _, _) => {
            sink.error_at(
                Code::InvalidPolicy,
                peer,
                "a peer with `ipBlock` cannot also have `podSelector` or `namespaceSelector`",
            )
            .help("split it into two peers: one with the ipBlock, one with the selectors");
            None
        }
        (None, None, None) => {
            sink.error_at(Code::InvalidPolicy, peer, "a peer is empty").help(
                "a peer needs `podSelector`, `namespaceSelector` (or both) or `ipBlock`; to allow everything, leave out `from`/`to`",
            );
            None
        }
        (None, pods, namespaces) => Some(Peer::Selectors {
            pods: pods
                .as_ref()
                .map(|s| check_selector(Some(s), false, cx, sink)),
            namespaces: namespaces
                .as_ref()
                .map(|s| check_selector(Some(s), true, cx, sink)),
        }),
    }
}

fn check_selector(
    s: Option<&RawLabelSelector>,
    is_ns_selector: bool,
    cx: &PolicyContext<'_>,
    sink: &mut Sink<'_>,
) -> LabelSelector {
    let Some(s) = s else {
        return LabelSelector::default();
    };
    let mut out = LabelSelector::default();
    for (k, v) in &s.match_labels.0 {
        if let Err(e) = check_label_key(&k.value) {
            sink.error_at(
                Code::InvalidLabel,
                k,
                format!("label key `{}` {e}", k.value),
            );
        }
        if let Err(e) = check_label_value(&v.value) {
            sink.error_at(
                Code::InvalidLabel,
                v,
                format!("label value `{}` {e}", v.value),
            );
        }
        if is_ns_selector
            && k.value == NAMESPACE_NAME_LABEL
            && !cx.namespaces.contains_key(&v.value)
        {
            sink.error_at(
                Code::UnknownNamespace,
                v,
                format!(
                    "namespaceSelector names namespace `{}`, which the scenario does not declare",
                    v.value
                ),
            )
            .help(declared_help(cx.namespaces.keys()));
        }
        out.match_labels.insert(k.value.clone(), v.value.clone());
    }
    for r in &s.match_expressions {
        let operator = match r.operator.value.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                sink.error_at(
                    Code::InvalidPolicy,
                    &r.operator,
                    format!("`{other}` is not a selector operator"),
                )
                .help("use `In`, `NotIn`, `Exists` or `DoesNotExist` (case matters)");
                continue;
            }
        };
        if let Err(e) = check_label_key(&r.key.value) {
            sink.error_at(
                Code::InvalidLabel,
                &r.key,
                format!("label key `{}` {e}", r.key.value),
            );
        }
        match operator {
            Operator::In | Operator::NotIn if r.values.is_empty() => {
                sink.error_at(
                    Code::InvalidPolicy,
                    &r.operator,
                    format!("`{}` needs at least one value", operator.as_str()),
                )
                .help("add `values: [...]`, or use `Exists`/`DoesNotExist`");
            }
            Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
                sink.error_at(
                    Code::InvalidPolicy,
                    &r.operator,
                    format!("`{}` takes no values", operator.as_str()),
                )
                .help("remove `values`, or use `In`/`NotIn`");
            }
            _ => {}
        }
        for v in &r.values {
            if let Err(e) = check_label_value(&v.value) {
                sink.error_at(
                    Code::InvalidLabel,
                    v,
                    format!("label value `{}` {e}", v.value),
                );
            }
            if is_ns_selector
                && r.key.value == NAMESPACE_NAME_LABEL
                && !cx.namespaces.contains_key(&v.value)
            {
                sink.error_at(
                    Code::UnknownNamespace,
                    v,
                    format!("namespaceSelector names namespace `{}`, which the scenario does not declare", v.value),
                )
                .help(declared_help(cx.namespaces.keys()));
            }
        }
        out.match_expressions.push(Requirement {
            key: r.key.value.clone(),
            operator,
            values: r.values.iter().map(|v| v.value.clone()).collect(),
        });
    }
    out
}

fn check_port(p: RawPolicyPort, sink: &mut Sink<'_>) -> Option<PolicyPort> {
    let protocol = match &p.protocol {
        None => Protocol::Tcp,
        Some(s) => match s.value.as_str() {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            other => {
                sink.error_at(Code::InvalidPort, s, format!("`{other}` is not a protocol"))
                    .help("use `TCP`, `UDP` or `SCTP` (upper case, as Kubernetes requires)");
                return None;
            }
        },
    };
    let port = match &p.port {
        None => None,
        Some(sp) => {
            match &sp.value {
                IntOrString::Int(n) => match crate::pattern::check_port_number(*n) {
                    Ok(n) => Some(PortValue::Number(n)),
                    Err(e) => {
                        sink.error_at(Code::InvalidPort, sp, e);
                        return None;
                    }
                },
                IntOrString::String(s) => {
                    if let Err(e) = check_port_name(s) {
                        sink.error_at(Code::InvalidPort, sp, format!("port name `{s}` {e}"))
                        .help("use a port number, or the name of a port the destination pods declare");
                        return None;
                    }
                    Some(PortValue::Name(s.clone()))
                }
            }
        }
    };
    let end_port = match (&p.end_port, &port) {
        (None, _) => None,
        (Some(e), Some(PortValue::Number(start))) => {
            match crate::pattern::check_port_number(e.value) {
                Ok(end) if end >= *start => Some(end),
                Ok(end) => {
                    sink.error_at(
                        Code::InvalidPort,
                        e,
                        format!("endPort {end} is below port {start}"),
                    )
                    .help("endPort must be greater than or equal to port");
                    return None;
                }
                Err(msg) => {
                    sink.error_at(Code::InvalidPort, e, msg);
                    return None;
                }
            }
        }
        (Some(e), _) => {
            sink.error_at(Code::InvalidPort, e, "endPort needs a numeric `port`")
                .help("set `port` to the first number of the range (named ports cannot start a range)");
            return None;
        }
    };
    Some(PolicyPort {
        protocol,
        port,
        end_port,
    })
}

/// Parses a CIDR or a placeholder (`${ip x/b}/32`, `${ip ext:web}/32`) and checks references.
fn check_addr(s: &Sp<String>, cx: &PolicyContext<'_>, sink: &mut Sink<'_>) -> Option<AddrExpr> {
    match parse_addr(&s.value) {
        Ok(AddrExpr::PodIp { pod, prefix }) => {
            if !cx.pods.contains(&pod) {
                sink.error_at(
                    Code::UnknownPod,
                    s,
                    format!(
                        "address placeholder names pod `{pod}`, which the scenario does not declare"
                    ),
                );
                return None;
            }
            Some(AddrExpr::PodIp { pod, prefix })
        }
        Ok(AddrExpr::ExternalIp { name, prefix }) => {
            if !cx.externals.contains(&name) {
                sink.error_at(
                    Code::UnknownExternal,
                    s,
                    format!("address placeholder names external endpoint `{name}`, which the scenario does not declare"),
                )
                .help("declare it under `external:`");
                return None;
            }
            Some(AddrExpr::ExternalIp { name, prefix })
        }
        Ok(lit) => Some(lit),
        Err(msg) => {
            sink.error_at(Code::InvalidCidr, s, msg)
                .help("write a CIDR like `10.0.0.0/8`, or a placeholder like `${ip x/b}/32` or `${ip ext:web}/32`");
            None
        }
    }
}

/// Parses the text of an ipBlock address.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse_addr(s: &str) -> Result<AddrExpr, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("${") {
        let (inner, tail) = rest.split_once('}').ok_or_else(|| {
            format!("`{s}` opens a placeholder with `${{` but never closes it with `}}`")
        })?;
        let target = inner
            .trim()
            .strip_prefix("ip ")
            .map(str::trim)
            .ok_or_else(|| format!("`${{{inner}}}` is not a placeholder netreach knows; the only one is `${{ip <pod or ext:name>}}`"))?;
        let prefix_text = tail.strip_prefix('/').ok_or_else(|| {
            format!("`{s}` has no prefix length; write e.g. `${{ip {target}}}/32`")
        })?;
        let prefix: u8 = prefix_text
            .parse()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| {
                format!("`/{prefix_text}` is not a prefix length (0-32 for IPv4, 0-128 for IPv6)")
            })?;
        if let Some(name) = target.strip_prefix("ext:") {
            return Ok(AddrExpr::ExternalIp {
                name: name.to_owned(),
                prefix,
            });
        }
        return match target.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok(AddrExpr::PodIp {
                pod: PodId::new(ns, name),
                prefix,
            }),
            _ => Err(format!(
                "`{target}` is not a pod (`namespace/pod`) or an external endpoint (`ext:name`)"
            )),
        };
    }
    if !s.contains('/') {
        return match s.parse::<IpAddr>() {
            Ok(ip) => Err(format!(
                "`{s}` is an address, not a CIDR; write `{ip}/{}`",
                if ip.is_ipv4() { 32 } else { 128 }
            )),
            Err(_) => Err(format!("`{s}` is not a CIDR")),
        };
    }
    let net: IpNet = s.parse().map_err(|_| format!("`{s}` is not a CIDR"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; the network is `{}`",
            net.trunc()
        ));
    }
    Ok(AddrExpr::Literal(net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("10.0.0.0/8"),
            Ok(AddrExpr::Literal("10.0.0.0/8".parse().expect("cidr")))
        );
        assert_eq!(
            parse_addr("${ip x/b}/32"),
            Ok(AddrExpr::PodIp {
                pod: PodId::new("x", "b"),
                prefix: 32
            })
        );
        assert_eq!(
            parse_addr("${ip ext:web}/24"),
            Ok(AddrExpr::ExternalIp {
                name: "web".into(),
                prefix: 24
            })
        );
        for bad in [
            "10.0.0.1",
            "10.0.0.1/8",
            "nope/8",
            "${ip x/b}",
            "${ip x/b/32",
            "${host x/b}/32",
            "${ip x}/32",
            "${ip x/b}/200",
        ] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_match() {
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let req = |key: &str, operator, values: &[&str]| Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|s| s.to_string()).collect(),
        };
        let empty = LabelSelector::default();
        assert!(empty.matches(&l(&[])));
        let s = LabelSelector {
            match_labels: l(&[("app", "web")]),
            match_expressions: vec![
                req("tier", Operator::In, &["a", "b"]),
                req("debug", Operator::DoesNotExist, &[]),
            ],
        };
        assert!(s.matches(&l(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "c")])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "a"), ("debug", "1")])));
        let notin = LabelSelector {
            match_expressions: vec![req("x", Operator::NotIn, &["1"])],
            ..Default::default()
        };
        assert!(notin.matches(&l(&[])));
        assert!(notin.matches(&l(&[("x", "2")])));
        assert!(!notin.matches(&l(&[("x", "1")])));
        let exists = LabelSelector {
            match_expressions: vec![req("x", Operator::Exists, &[])],
            ..Default::default()
        };
        assert!(exists.matches(&l(&[("x", "")])) && !exists.matches(&l(&[])));
    }

    #[test]
    fn policy_types_default_like_kubernetes() {
        let p = |types: Option<Vec<PolicyType>>, egress: Option<Vec<Rule>>| NetworkPolicy {
            ns: "x".into(),
            name: "p".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            pod_selector: LabelSelector::default(),
            policy_types: types,
            ingress: None,
            egress,
            origin: String::new(),
        };
        assert_eq!(
            p(None, None).effective_types(),
            BTreeSet::from([PolicyType::Ingress])
        );
        assert_eq!(
            p(None, Some(vec![])).effective_types(),
            BTreeSet::from([PolicyType::Ingress])
        );
        let rule = Rule {
            peers: None,
            ports: None,
            line: 0,
        };
        assert_eq!(
            p(None, Some(vec![rule])).effective_types(),
            BTreeSet::from([PolicyType::Ingress, PolicyType::Egress])
        );
        assert_eq!(
            p(Some(vec![PolicyType::Egress]), None).effective_types(),
            BTreeSet::from([PolicyType::Egress])
        );
    }
}
