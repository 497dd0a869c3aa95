//! The validated NetworkPolicy, in logical names: what `policy::check_policy` produces and the
//! engine, lint and the runner consume. Pure data; rendering for a run (real names and addresses)
//! is `crate::policy`'s `to_manifest`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::IpNet;

use super::{PodId, Protocol};

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
    /// `Ingress` or `Egress`, as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
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
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`, as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
