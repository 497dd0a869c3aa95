//! netreach scenarios as `cargo test` tests in your own repository.
//!
//! In your crate's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! netreach = { git = "https://…/netreach", tag = "v0.1.0" }  # or a path
//!
//! [[test]]
//! name = "netpol"
//! harness = false
//! ```
//!
//! and in `tests/netpol.rs`:
//!
//! ```no_run
//! fn main() {
//!     netreach::testing::Harness::new().scenarios("tests/netpol").run();
//! }
//! ```
//!
//! Then `NETREACH_CONTEXT=kind-netreach cargo test --test netpol` runs one test per scenario
//! file found under `tests/netpol` (recognised by content; named by file stem, grouped by
//! folder), with libtest-style output (`--list`, filters, `--ignored` and the rest of
//! libtest's flags work as usual). What the environment decides:
//!
//! | variable | meaning |
//! |---|---|
//! | `NETREACH_CONTEXT` | the kubeconfig context to run against (`KUBECONFIG` picks the file). Unset: every test is *ignored* with that reason, never passed; `--list` never touches a cluster. |
//! | `NETREACH_PROBE_IMAGE` | the probe image (default `netreach-probe:latest`) |
//! | `NETREACH_KNOWN_DEVIATIONS` | the enforcer's documented deviations: accepted while they still occur |
//! | `NETREACH_REPORT_DIR` | writes `junit.xml` (a testcase per step), `report.json` and `report.html` there after the run |
//! | `NETREACH_KEEP_ON_FAILURE=1` | leaves a failed scenario's namespaces for its repro commands |
//! | `NETREACH_LIVE_POLICIES=1` | lets steps apply candidate policies in live namespaces (`candidates: true`; restored after the run); without it such a scenario fails, naming the step |
//!
//! Ctrl-C (or SIGTERM) deletes what the running scenarios created before the process exits.
//! A scenario that fails prints its report (the disagreeing cells with their repro commands and
//! the comparison table) as the test's failure message.

// The example above shows the whole file a user writes, `fn main` included.
#![allow(clippy::needless_doctest_main)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::known::{self, KnownDeviations};
use crate::kube::{self, KubeOptions};
use crate::model::Scenario;
use crate::names::Naming;
use crate::report::{self, ScenarioReport};
use crate::run::{RunOptions, new_run_id, run_scenario};
use crate::{exit, scenario};

/// Where and how a scenario runs: the context and the cluster options.
#[derive(Clone, Debug)]
pub struct Target {
    /// The kubeconfig context (`NETREACH_CONTEXT` unless a hook changes it).
    pub context: String,
    /// The cluster options (e.g. `kubeconfig`, the probe image, pod options).
    pub kube: KubeOptions,
}

/// Adjusts how one scenario runs (its run options and its target), e.g. to label the
/// namespaces netreach creates or to run as another kubeconfig.
pub type Configure = dyn Fn(&Scenario, &mut RunOptions, &mut Target) + Send + Sync;

/// A test harness of scenario files (see the module docs).
#[derive(Clone)]
pub struct Harness {
    dirs: Vec<PathBuf>,
    context: Option<String>,
    known: Option<PathBuf>,
    configure: Option<Arc<Configure>>,
    reports: Arc<Mutex<Vec<ScenarioReport>>>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("dirs", &self.dirs)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A harness configured from the environment (`NETREACH_CONTEXT`,
    /// `NETREACH_KNOWN_DEVIATIONS`); `NETREACH_SCENARIOS` (a path list) replaces the folders
    /// given with [`Harness::scenarios`].
    pub fn new() -> Self {
        Harness {
            dirs: Vec::new(),
            context: std::env::var("NETREACH_CONTEXT")
                .ok()
                .filter(|c| !c.is_empty()),
            known: std::env::var_os("NETREACH_KNOWN_DEVIATIONS").map(PathBuf::from),
            configure: None,
            reports: Arc::default(),
        }
    }

    /// Scenario files under this folder (relative paths are relative to the package root,
    /// where `cargo test` runs tests).
    #[must_use]
    pub fn scenarios(mut self, dir: impl AsRef<Path>) -> Self {
        self.dirs.push(dir.as_ref().to_owned());
        self
    }

    /// The enforcer's known deviations (instead of `NETREACH_KNOWN_DEVIATIONS`).
    #[must_use]
    pub fn known_deviations(mut self, file: impl AsRef<Path>) -> Self {
        self.known = Some(file.as_ref().to_owned());
        self
    }

    /// A hook run before each scenario (see [`Configure`]).
    #[must_use]
    pub fn configure(
        mut self,
        f: impl Fn(&Scenario, &mut RunOptions, &mut Target) + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(f));
        self
    }

    /// The context the tests run against, if any.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        match std::env::var_os("NETREACH_SCENARIOS") {
            Some(v) => std::env::split_paths(&v).collect(),
            None => self.dirs.clone(),
        }
    }

    /// One trial per scenario file (to combine with trials of your own).
    ///
    /// # Errors
    /// When the folders cannot be listed or the known-deviations file does not load.
    pub fn trials(&self) -> Result<Vec<Trial>, String> {
        let files =
            scenario::discover(&self.dirs()).map_err(|e| format!("cannot list scenarios: {e}"))?;
        let known = match &self.known {
            Some(p) => Some(Arc::new(
                KnownDeviations::load(p).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        Ok(files
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
                let h = self.clone();
                let known = known.clone();
                Trial::ignorable_test(name, move || h.run_one(&path, known.as_deref()))
                    .with_kind(group)
            })
            .collect())
    }

    fn run_one(&self, path: &Path, known: Option<&KnownDeviations>) -> Result<Completion, Failed> {
        let loaded = scenario::load(path);
        let Some(s) = loaded.scenario else {
            return Err(format!("invalid scenario:\n{}", loaded.diagnostics.render(false)).into());
        };
        let Some(context) = self.context.as_deref() else {
            return Ok(Completion::ignored_with(
                "NETREACH_CONTEXT is not set; cluster tests run only against a context named explicitly",
            ));
        };
        if std::env::var_os("NETREACH_LIVE_POLICIES").is_none_or(|v| v != "1")
            && let Some(why) = s.live_consent()
        {
            return Err(format!(
                "{why}; set NETREACH_LIVE_POLICIES=1 to allow it (netreach restores every policy it changes there exactly)"
            )
            .into());
        }
        let mut opts = RunOptions {
            keep_on_failure: std::env::var_os("NETREACH_KEEP_ON_FAILURE").is_some(),
            ..RunOptions::new(Naming::PerRun {
                run_id: new_run_id(),
            })
        };
        let mut target = Target {
            context: context.to_owned(),
            kube: KubeOptions::default(),
        };
        if let Some(f) = &self.configure {
            f(&s, &mut opts, &mut target);
        }
        let report = match kube::connect(&target.context, target.kube) {
            Ok(mut c) => run_scenario(&s, c.as_mut(), &opts, &mut |_| {}),
            Err(e) => ScenarioReport::not_run(&s, e.to_string()),
        };
        kube::live::wait_if_interrupted();
        let text = report::text::render_scenario(&report);
        let unsupported = report.counts.unsupported;
        let one = std::slice::from_ref(&report);
        let (code, lines) = match known {
            Some(k) => known::exit_code_with(one, k),
            None => (report::exit_code(one), Vec::new()),
        };
        if let Ok(mut r) = self.reports.lock() {
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

    /// Writes the reports of the scenarios run so far into `NETREACH_REPORT_DIR`, if set.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write_reports(&self) -> std::io::Result<()> {
        let Some(dir) = std::env::var_os("NETREACH_REPORT_DIR") else {
            return Ok(());
        };
        let dir = Path::new(&dir);
        let mut reports = self.reports.lock().map(|r| r.clone()).unwrap_or_default();
        // Threads finish in any order: reports in a stable order.
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        std::fs::create_dir_all(dir)?;
        let info = report::junit::JunitInfo {
            context: self.context.clone(),
            ..report::junit::JunitInfo::default()
        };
        std::fs::write(
            dir.join("junit.xml"),
            report::junit::render_with(&reports, &info),
        )?;
        std::fs::write(dir.join("report.json"), report::json::render(&reports))?;
        let html = report::html::RunInfo {
            context: self.context.clone(),
            cluster_version: self
                .context
                .as_deref()
                .and_then(|c| kube::server_version(c, None)),
            netreach_version: env!("CARGO_PKG_VERSION").into(),
            ..report::html::RunInfo::default()
        };
        std::fs::write(
            dir.join("report.html"),
            report::html::render(&reports, &html),
        )
    }

    /// Runs the scenario tests (and `extra` trials of your own) with libtest's command line,
    /// writes the reports, and exits with libtest's code.
    pub fn run_with(self, extra: Vec<Trial>) -> ! {
        let args = Arguments::from_args();
        let mut trials = match self.trials() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("netreach: {e}");
                std::process::exit(101);
            }
        };
        trials.extend(extra);
        if self.context.is_some() && !args.list {
            crate::signal::cleanup_on_interrupt();
        }
        let conclusion = libtest_mimic::run(&args, trials);
        if !args.list
            && let Err(e) = self.write_reports()
        {
            eprintln!("netreach: cannot write the reports: {e}");
            std::process::exit(101);
        }
        conclusion.exit()
    }

    /// [`Harness::run_with`] without trials of your own.
    pub fn run(self) -> ! {
        self.run_with(Vec::new())
    }
}
