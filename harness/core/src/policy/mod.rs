//! NetworkPolicies: the strict serde mirror ([`raw`]), validation of manifests
//! ([`check_policy`]), and rendering for a run ([`NetworkPolicy::to_manifest`]).
//!
//! A policy is written against logical namespaces and may use address placeholders in ipBlocks
//! (`${ip x/b}/32`, `${ip ext:web}/32`). [`NetworkPolicy::to_manifest`] produces the manifest a
//! run applies: real namespace names (also in `kubernetes.io/metadata.name` selectors) and real
//! addresses. Namespaces marked `existing` are never rewritten. The validated types themselves
//! are defined in [`crate::model::policy`] and re-exported here.

mod addr;
mod check;
pub mod raw;
mod render;

pub use crate::model::policy::{
    AddrExpr, IpBlock, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer,
    PolicyPort, PolicyRef, PolicyType, PortValue, Requirement, Rule,
};
pub use addr::parse_addr;
pub use check::{PolicyContext, check_namespace, check_policy, default_namespace};
