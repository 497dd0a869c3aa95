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
//! - `NETREACH_REPORT_DIR=<dir>` writes `junit.xml` and `report.json` there after the run
//!   (libtest-mimic accepts only libtest's own flags, so reports are configured through the
//!   environment).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use netreach::exit;
use netreach::known::{self, KnownDeviations};
use netreach::kube::KubeOptions;
use netreach::names::Naming;
use netreach::report::{self, ScenarioReport};
use netreach::run::{RunOptions, new_run_id, run_scenario};
use netreach::scenario;

fn scenario_dirs() -> Vec<PathBuf> {
    match std::env::var_os("NETREACH_SCENARIOS") {
        Some(v) => std::env::split_paths(&v).collect(),
        None => vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")],
    }
}

fn main() {
    let args = Arguments::from_args();
    let files = match scenario::discover(&scenario_dirs()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot list scenarios: {e}");
            std::process::exit(101);
        }
    };
    let context = std::env::var("NETREACH_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty());
    if context.is_some() && !args.list {
        netreach::signal::cleanup_on_interrupt();
    }
    let known = match std::env::var_os("NETREACH_KNOWN_DEVIATIONS") {
        None => None,
        Some(p) => match KnownDeviations::load(Path::new(&p)) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(101);
            }
        },
    };
    // Hardened mode: a ServiceAccount with only the shipped ClusterRole.
    let runner: Option<Arc<support::Sa>> =
        match (&context, std::env::var("NETREACH_TEST_RBAC").as_deref()) {
            (Some(c), Ok("1")) if !args.list => {
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
    let reports: Arc<Mutex<Vec<ScenarioReport>>> = Arc::default();
    let trials = files
        .into_iter()
        .map(|path| {
            let group = path
                .parent()
                .and_then(Path::file_name)
                .map_or_else(|| ".".to_owned(), |n| n.to_string_lossy().into_owned());
            let name = path.file_stem().map_or_else(
                || "scenario".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            let context = context.clone();
            let reports = Arc::clone(&reports);
            let known = known.clone();
            let runner = runner.clone();
            Trial::ignorable_test(name, move || {
                run_one(
                    &path,
                    context.as_deref(),
                    known.as_deref(),
                    runner.as_deref(),
                    &reports,
                )
            })
            .with_kind(group)
        })
        .collect();
    let mut trials: Vec<Trial> = trials;
    trials.extend(lifecycle::trials(context.clone()));
    trials.extend(group_trials("faults", &faults::TESTS, context.clone()));
    trials.extend(group_trials("staging", &staging::TESTS, context.clone()));
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(dir) = std::env::var_os("NETREACH_REPORT_DIR") {
        let reports = reports.lock().map(|r| r.clone()).unwrap_or_default();
        if let Err(e) = write_reports(Path::new(&dir), &reports) {
            eprintln!("cannot write reports to {}: {e}", Path::new(&dir).display());
            std::process::exit(101);
        }
    }
    conclusion.exit();
}

fn run_one(
    path: &Path,
    context: Option<&str>,
    known: Option<&KnownDeviations>,
    runner: Option<&support::Sa>,
    reports: &Mutex<Vec<ScenarioReport>>,
) -> Result<Completion, Failed> {
    let loaded = scenario::load(path);
    let Some(s) = loaded.scenario else {
        return Err(format!("invalid scenario:\n{}", loaded.diagnostics.render(false)).into());
    };
    let Some(context) = context else {
        return Ok(Completion::ignored_with(
            "NETREACH_CONTEXT is not set; cluster tests run only against a context named explicitly (`cargo xtask test` sets it)",
        ));
    };
    let (context, kube_opts) = match runner {
        Some(sa) => (
            sa.context.as_str(),
            KubeOptions {
                kubeconfig: Some(sa.kubeconfig.clone()),
                ..KubeOptions::default()
            },
        ),
        None => (context, KubeOptions::default()),
    };
    let report = match netreach::kube::connect(context, kube_opts) {
        Ok(mut c) => {
            let mut opts = RunOptions {
                keep_on_failure: std::env::var_os("NETREACH_KEEP_ON_FAILURE").is_some(),
                // The transcribed upstream e2e cases run as computed scenarios: the cluster is
                // judged against the policy engine (tests/shipped.rs checks that the engine
                // reproduces their transcribed tables).
                expect_computed: s.group == "upstream",
                ..RunOptions::new(Naming::PerRun {
                    run_id: new_run_id(),
                })
            };
            if runner.is_some() {
                opts.namespace_labels.insert(
                    staging::RESTRICTED.0.to_owned(),
                    staging::RESTRICTED.1.to_owned(),
                );
            }
            run_scenario(&s, c.as_mut(), &opts, &mut |_| {})
        }
        Err(e) => ScenarioReport::not_run(&s, e.to_string()),
    };
    let text = report::text::render_scenario(&report);
    let unsupported = report.counts.unsupported;
    // Known deviations of this cluster's enforcer: accepted while they still occur, and only
    // they — the same rule as `netreach run --known-deviations`.
    let one = std::slice::from_ref(&report);
    let (code, lines) = match known {
        Some(k) => known::exit_code_with(one, k),
        None => (report::exit_code(one), Vec::new()),
    };
    if let Ok(mut r) = reports.lock() {
        r.push(report);
    }
    match code {
        exit::SUCCESS => {
            for l in &lines {
                println!("    {l}");
            }
            Ok(Completion::Completed)
        }
        exit::UNSUPPORTED => Ok(Completion::ignored_with(format!(
            "{unsupported} cell(s) cannot be tested on this cluster"
        ))),
        _ => {
            let mut msg = text;
            for l in &lines {
                msg.push('\n');
                msg.push_str(l);
            }
            Err(msg.into())
        }
    }
}

fn write_reports(dir: &Path, reports: &[ScenarioReport]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("junit.xml"), report::junit::render(reports))?;
    std::fs::write(dir.join("report.json"), report::json::render(reports))
}

#[path = "scenarios/faults.rs"]
mod faults;
#[path = "scenarios/lifecycle.rs"]
mod lifecycle;
#[path = "scenarios/staging.rs"]
mod staging;
#[path = "scenarios/support.rs"]
mod support;

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
