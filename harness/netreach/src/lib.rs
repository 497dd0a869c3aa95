//! netreach: proves what a Kubernetes cluster's NetworkPolicies really let through.
//!
//! This crate is the facade: it re-exports the pure core ([`netreach_core`]: scenarios, the
//! policy engine, expectations, judging, reports, the runner) and the Kubernetes implementation
//! ([`kube`], from `netreach-kube`), and adds what only a program needs: the command line
//! ([`cli`]), signal handling, the probe server ([`serve`]), benchmarks ([`bench`]) and the
//! public API for users' own test harnesses ([`testing`]). See ARCHITECTURE.md.

pub use netreach_core::{
    audit, bind, cluster, diag, engine, exit, expect, explain, known, lint, model, names, outcome,
    pattern, policy, probe, report, run, scenario, synthesize, verdict, yaml,
};
pub use netreach_kube as kube;

pub mod bench;
pub mod cli;
pub mod progress;
pub mod serve;
pub mod signal;
pub mod testing;
