//! netreach-core: the pure part of netreach. No Kubernetes client, no async runtime, no network
//! and no processes: reading files is the only IO (scenario and policy files).
//!
//! The pipeline, one way: scenario YAML -> [`scenario`] (validated [`model`]) -> [`expect`]ed
//! matrix -> deploy through the [`cluster`] seam ([`bind`]s addresses) -> probe -> observed
//! [`outcome`]s -> [`verdict`] (diff) -> [`report`]. Beside it the policy [`engine`] (what the
//! NetworkPolicy specification says about each cell), [`explain`], [`lint`] and [`synthesize`]
//! (policies from an intended matrix, proven by the engine).
//! The [`run`]ner drives any [`cluster::Cluster`]; `netreach-kube` implements it for real
//! clusters, [`cluster::fake::FakeCluster`] for unit tests. See ARCHITECTURE.md.

pub mod audit;
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
pub mod synthesize;
pub mod verdict;
pub mod yaml;
