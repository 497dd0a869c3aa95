//! netreach: proves what a Kubernetes cluster's NetworkPolicies really let through.
//!
//! The pipeline, one way: scenario YAML -> [`scenario`] (validated [`model`]) -> [`expect`]ed
//! matrix -> deploy through the [`cluster`] seam ([`bind`]s addresses) -> probe -> observed
//! [`outcome`]s -> [`verdict`] (diff) -> [`report`]. Everything but the cluster implementation is
//! pure: no Kubernetes client, no async runtime. See ARCHITECTURE.md.

pub mod bench;
pub mod bind;
pub mod cluster;
pub mod diag;
pub mod engine;
pub mod exit;
pub mod expect;
pub mod explain;
pub mod known;
pub mod lint;
pub mod model;
pub mod names;
pub mod outcome;
pub mod pattern;
pub mod policy;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod serve;
pub mod verdict;
