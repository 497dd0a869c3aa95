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
//! - `NETREACH_REPORT_DIR=<dir>` writes `junit.xml` and `report.json` there after the run
//!   (libtest-mimic accepts only libtest's own flags, so reports are configured through the
//!   environment).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use netreach::cluster::kube::KubeOptions;
use netreach::known::{self, KnownDeviations};
use netreach::names::Naming;
use netreach::report::{self, ScenarioReport, ScenarioStatus};
use netreach::run::{RunOptions, new_run_id, run_scenario};
use netreach::{cluster, scenario};

fn scenario_dirs() -> Vec<PathBuf> {
    match std::env::var_os("NETREACH_SCENARIOS") {
        Some(v) => std::env::split_paths(&v).collect(),
        None => vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")],
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
        netreach::run::cli::cleanup_on_interrupt();
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
            Trial::ignorable_test(name, move || {
                run_one(&path, context.as_deref(), known.as_deref(), &reports)
            })
            .with_kind(group)
        })
        .collect();
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
    let report = match cluster::connect(context, KubeOptions::default()) {
        Ok(mut c) => {
            let opts = RunOptions {
                keep_on_failure: std::env::var_os("NETREACH_KEEP_ON_FAILURE").is_some(),
                ..RunOptions::new(Naming::PerRun {
                    run_id: new_run_id(),
                })
            };
            run_scenario(&s, c.as_mut(), &opts, &mut |_| {})
        }
        Err(e) => ScenarioReport::not_run(&s, e.to_string()),
    };
    let text = report::text::render_scenario(&report);
    let report_for_known = report.clone();
    let status = report.status;
    let unsupported = report.counts.unsupported;
    if let Ok(mut r) = reports.lock() {
        r.push(report);
    }
    // Known deviations of this cluster's enforcer: accepted while they still occur, and only they.
    if let Some(k) = known {
        let a = known::account(&report_for_known, k);
        if !a.known.is_empty() || !a.not_observed.is_empty() || (status == ScenarioStatus::Failed && !a.acceptable()) {
            if a.acceptable() && matches!(status, ScenarioStatus::Failed) && report_for_known.counts.error == 0 {
                for line in &a.known {
                    println!("    known deviation of {}: {line}", k.enforcer);
                }
                return Ok(Completion::Completed);
            }
            let mut msg = text.clone();
            for l in &a.unexplained {
                msg.push_str(&format!("\nnot a known deviation: {l}"));
            }
            for l in &a.not_observed {
                msg.push_str(&format!("\nknown deviation no longer observed (remove it from the list): {l}"));
            }
            return Err(msg.into());
        }
    }
    match status {
        ScenarioStatus::Passed => Ok(Completion::Completed),
        ScenarioStatus::Unsupported => Ok(Completion::ignored_with(format!(
            "{unsupported} cell(s) cannot be tested on this cluster"
        ))),
        ScenarioStatus::Failed | ScenarioStatus::Error => Err(text.into()),
    }
}

fn write_reports(dir: &Path, reports: &[ScenarioReport]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("junit.xml"), report::junit::render(reports))?;
    std::fs::write(dir.join("report.json"), report::json::render(reports))
}
