//! `networking.k8s.io/v1` NetworkPolicy as read from YAML, with source spans.
//!
//! A strict mirror of the Kubernetes type: unknown fields are rejected, so a policy field that
//! netreach (and later its policy engine) does not understand is reported, never ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::yaml::{Sp, SpMap};

/// A NetworkPolicy manifest.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNetworkPolicy {
    /// Must be `networking.k8s.io/v1`.
    #[schemars(with = "String")]
    pub api_version: Sp<String>,
    /// Must be `NetworkPolicy`.
    #[schemars(with = "String")]
    pub kind: Sp<String>,
    /// Name and (logical) namespace.
    pub metadata: RawMetadata,
    /// The policy.
    #[serde(default)]
    pub spec: Option<RawPolicySpec>,
    /// What the API server reports (`kubectl get -o yaml` writes it); read and ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub status: Option<serde::de::IgnoredAny>,
}

/// The metadata fields a policy may carry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    /// Policy name (a DNS subdomain).
    #[schemars(with = "String")]
    pub name: Sp<String>,
    /// Logical namespace of the scenario (rewritten to the run's real name).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Sp<String>>,
    /// Labels, passed through.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations, passed through.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The fields below are the API server's (`kubectl get -o yaml` writes them): read and
    /// ignored, so a policy exported from a cluster reads as it was applied. netreach never
    /// applies them.
    #[serde(default)]
    #[schemars(skip)]
    pub uid: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub resource_version: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub generation: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub creation_timestamp: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub deletion_timestamp: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub deletion_grace_period_seconds: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub managed_fields: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub self_link: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub owner_references: Option<serde::de::IgnoredAny>,
    /// Set by the API server; ignored.
    #[serde(default)]
    #[schemars(skip)]
    pub finalizers: Option<serde::de::IgnoredAny>,
}

/// `spec` of a NetworkPolicy.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicySpec {
    /// Pods the policy applies to (empty selects every pod in the namespace).
    #[serde(default)]
    pub pod_selector: Option<RawLabelSelector>,
    /// `Ingress`, `Egress`; defaulted as Kubernetes does when absent.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub policy_types: Option<Vec<Sp<String>>>,
    /// Ingress rules.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawIngressRule>>")]
    pub ingress: Option<Vec<Sp<RawIngressRule>>>,
    /// Egress rules.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawEgressRule>>")]
    pub egress: Option<Vec<Sp<RawEgressRule>>>,
}

/// An ingress rule.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIngressRule {
    /// Allowed sources (absent or empty: any).
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawPeer>>")]
    pub from: Option<Vec<Sp<RawPeer>>>,
    /// Allowed ports (absent or empty: any).
    #[serde(default)]
    pub ports: Option<Vec<RawPolicyPort>>,
}

/// An egress rule.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEgressRule {
    /// Allowed destinations (absent or empty: any).
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawPeer>>")]
    pub to: Option<Vec<Sp<RawPeer>>>,
    /// Allowed ports (absent or empty: any).
    #[serde(default)]
    pub ports: Option<Vec<RawPolicyPort>>,
}

/// A peer: selectors (ANDed when both are given) or an ipBlock.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPeer {
    /// Pods (in the policy's namespace unless `namespaceSelector` is given).
    #[serde(default)]
    pub pod_selector: Option<RawLabelSelector>,
    /// Namespaces.
    #[serde(default)]
    pub namespace_selector: Option<RawLabelSelector>,
    /// Addresses.
    #[serde(default)]
    pub ip_block: Option<RawIpBlock>,
}

/// An ipBlock. `cidr` and `except` accept address placeholders: `${ip ns/pod}/32`,
/// `${ip ext:name}/32`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIpBlock {
    /// A CIDR or a placeholder with a prefix length.
    #[schemars(with = "String")]
    pub cidr: Sp<String>,
    /// CIDRs inside `cidr` to leave out.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub except: Vec<Sp<String>>,
}

/// A port in a rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicyPort {
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub protocol: Option<Sp<String>>,
    /// A number or a named port of the destination pod; absent means every port.
    #[serde(default)]
    #[schemars(with = "Option<IntOrString>")]
    pub port: Option<Sp<IntOrString>>,
    /// Last port of a range starting at `port` (numeric only).
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub end_port: Option<Sp<i64>>,
}

/// A number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A string.
    String(String),
}

/// A label selector.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLabelSelector {
    /// Labels that must all be equal.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub match_labels: SpMap<String>,
    /// Requirements that must all hold.
    #[serde(default)]
    pub match_expressions: Vec<RawRequirement>,
}

/// A `matchExpressions` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequirement {
    /// Label key.
    #[schemars(with = "String")]
    pub key: Sp<String>,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[schemars(with = "String")]
    pub operator: Sp<String>,
    /// Values for `In`/`NotIn`; must be absent or empty for `Exists`/`DoesNotExist`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub values: Vec<Sp<String>>,
}

/// The fields every Kubernetes manifest has, read leniently to tell a NetworkPolicy from any
/// other kind of document before the strict parse.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawHeader {
    /// `apiVersion`.
    #[serde(default)]
    pub api_version: Option<Sp<String>>,
    /// `kind`.
    #[serde(default)]
    pub kind: Option<Sp<String>>,
}
