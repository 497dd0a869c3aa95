//! Cluster tests: one test per scenario file, its steps in order, run against the cluster of the
//! kubeconfig context named by `NETREACH_CONTEXT`.
//!
//! - Test names are the file stem, grouped (libtest "kind") by the folder: `[scenarios] three-tier`.
//! - `--list` only lists files: it never reads a kubeconfig or contacts a cluster.
//! - `NETREACH_CONTEXT` unset: each test is ignored with that reason (never passed).
//!   Set: the test runs against that context and fails when the cluster cannot be used.
//!   The ambient (current) kube context is never used.
//! - An invalid scenario fails its test whatever the context.
//! - `NETREACH_SCENARIOS=<dir>[:<dir>…]` replaces the default `scenarios/` folder.
//! - `NETREACH_PROBE_IMAGE` names the probe image (`cargo xtask test` sets it);
//!   `NETREACH_KEEP_ON_FAILURE=1` leaves a failed scenario's namespaces for the repro commands.
//! - `NETREACH_KNOWN_DEVIATIONS=<file>` lists cells the cluster's enforcer is documented to get
//!   wrong (`fixtures/known-deviations/`): the test accepts them while they still occur.
//! - `NETREACH_TEST_RBAC=1` (`cargo xtask test` sets it): the scenario tests run as a
//!   ServiceAccount bound to exactly the shipped ClusterRole (docs/rbac/), in namespaces that
//!   enforce PodSecurity `restricted` — what a hardened staging cluster demands. The harness
//!   creates that ServiceAccount with the admin context first.
//! - `NETREACH_REPORT_DIR=<dir>` writes `junit.xml`, `report.json` and `report.html` there after the run
//!   (libtest-mimic accepts only libtest's own flags, so reports are configured through the
//!   environment).

use std::path::Path;
use std::sync::Arc;

use libtest_mimic::{Completion, Failed, Trial};

use netreach::testing::Harness;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let harness = Harness::new().scenarios(root.join("scenarios"));
    let context = harness.context().map(str::to_owned);
    let list = std::env::args().any(|a| a == "--list");
    // Hardened mode: a ServiceAccount with only the shipped ClusterRole.
    let runner: Option<Arc<support::Sa>> =
        match (&context, std::env::var("NETREACH_TEST_RBAC").as_deref()) {
            (Some(c), Ok("1")) if !list => {
                let rules = support::shipped_rules("netreach-runner.clusterrole.yaml")
                    .unwrap_or_else(|e| {
                        eprintln!("NETREACH_TEST_RBAC: {}", e.message().unwrap_or_default());
                        std::process::exit(101);
                    });
                match support::service_account(c, "runner", rules, &[]) {
                    Ok(sa) => Some(Arc::new(sa)),
                    Err(e) => {
                        eprintln!(
                            "NETREACH_TEST_RBAC: cannot create the ServiceAccount: {}",
                            e.message().unwrap_or_default()
                        );
                        std::process::exit(101);
                    }
                }
            }
            _ => None,
        };
    let harness = harness.configure(move |_, opts, target| {
        if let Some(sa) = &runner {
            target.context = sa.context.clone();
            target.kube.kubeconfig = Some(sa.kubeconfig.clone());
            opts.namespace_labels.insert(
                staging::RESTRICTED.0.to_owned(),
                staging::RESTRICTED.1.to_owned(),
            );
        }
    });
    let mut extra = lifecycle::trials(context.clone());
    extra.extend(group_trials("faults", &faults::TESTS, context.clone()));
    extra.extend(group_trials("staging", &staging::TESTS, context.clone()));
    extra.extend(group_trials(
        "synthesized",
        &synthesized::TESTS,
        context.clone(),
    ));
    extra.extend(group_trials("audit", &audit::TESTS, context.clone()));
    extra.extend(group_trials(
        "workloads",
        &workloads::TESTS,
        context.clone(),
    ));
    harness.run_with(extra)
}

#[path = "scenarios/audit.rs"]
mod audit;
#[path = "scenarios/candidates.rs"]
mod candidates;
#[path = "scenarios/faults.rs"]
mod faults;
#[path = "scenarios/lifecycle.rs"]
mod lifecycle;
#[path = "scenarios/staging.rs"]
mod staging;
#[path = "scenarios/support.rs"]
mod support;
#[path = "scenarios/synthesized.rs"]
mod synthesized;
#[path = "scenarios/workloads.rs"]
mod workloads;

/// A cluster test: its name and body (given the context).
type Test = (&'static str, fn(&str) -> Result<(), Failed>);

/// Cluster tests of one group (`faults`, ...): ignored with the reason without a context.
fn group_trials(group: &'static str, tests: &[Test], context: Option<String>) -> Vec<Trial> {
    tests
        .iter()
        .map(|&(name, body)| {
            let context = context.clone();
            Trial::ignorable_test(name, move || match context {
                None => Ok(Completion::ignored_with(
                    "NETREACH_CONTEXT is not set; cluster tests run only against a context named explicitly",
                )),
                Some(c) => body(&c).map(|()| Completion::Completed),
            })
            .with_kind(group)
        })
        .collect()
}
