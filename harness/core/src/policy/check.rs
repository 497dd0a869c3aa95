//! Validating a manifest ([`RawNetworkPolicy`]) into a [`NetworkPolicy`]: names, namespaces,
//! selectors, ports and addresses, every problem reported.

use std::collections::{BTreeMap, BTreeSet};

use super::addr::parse_addr;
use super::raw::{IntOrString, RawLabelSelector, RawNetworkPolicy, RawPeer, RawPolicyPort};
use crate::diag::{Code, DiagExt, Pos, Sink};
use crate::model::PodId;
use crate::model::Protocol;
use crate::model::policy::{
    AddrExpr, IpBlock, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer,
    PolicyPort, PolicyType, PortValue, Requirement, Rule,
};
use crate::names::{check_dns_subdomain, check_label_key, check_label_value, check_port_name};
use crate::yaml::Sp;

/// What policy validation needs to know about the scenario.
#[derive(Debug)]
pub struct PolicyContext<'a> {
    /// Logical namespaces of the scenario, and whether each is `existing`.
    pub namespaces: &'a BTreeMap<String, bool>,
    /// Declared pods.
    pub pods: &'a BTreeSet<PodId>,
    /// Declared external endpoints.
    pub externals: &'a BTreeSet<String>,
    /// `existing` namespaces where steps may apply candidate policies (`candidates: true`).
    pub candidates: &'a BTreeSet<String>,
    /// An audit: policies are read from a cluster (or its manifests), so any namespace name is
    /// one of its own and `namespaces` is not consulted.
    pub any_namespace: bool,
}

static NO_NAMESPACES: BTreeMap<String, bool> = BTreeMap::new();
static NO_PODS: BTreeSet<PodId> = BTreeSet::new();
static NO_EXTERNALS: BTreeSet<String> = BTreeSet::new();
static NO_CANDIDATES: BTreeSet<String> = BTreeSet::new();

impl PolicyContext<'static> {
    /// An audit's context: any namespace name is the cluster's own; no scenario pods or
    /// external endpoints to resolve placeholders against.
    pub fn audit() -> Self {
        PolicyContext {
            namespaces: &NO_NAMESPACES,
            pods: &NO_PODS,
            externals: &NO_EXTERNALS,
            candidates: &NO_CANDIDATES,
            any_namespace: true,
        }
    }
}

/// `default` as the namespace of a manifest that names none, positioned at its name (what
/// `kubectl apply` without `-n` does).
pub fn default_namespace(raw: &RawNetworkPolicy) -> Option<Sp<String>> {
    raw.metadata.namespace.is_none().then(|| Sp {
        value: "default".to_owned(),
        referenced: raw.metadata.name.referenced,
        defined: raw.metadata.name.defined,
    })
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
    if cx.any_namespace {
        return true;
    }
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
        Some(true) if cx.candidates.contains(&ns.value) => true,
        Some(true) => {
            sink.error_at(
                Code::ExistingNamespace,
                ns,
                format!("{what} would be applied in `{}`, a namespace that is not the scenario's", ns.value),
            )
            .help(format!("netreach never changes namespaces marked `existing`; put the policy in one of the scenario's own namespaces, or, to try a candidate policy on the live namespace before a rollout, declare it `{{name: {}, existing: true, candidates: true}}` (restored after the run; see `--live-policies`)", ns.value));
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
            && !cx.any_namespace
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
                && !cx.any_namespace
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
