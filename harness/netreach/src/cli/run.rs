//! `netreach run`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit;
use crate::kube::{self, KubeOptions};
use crate::names::Naming;
use crate::probe::ProbeTimeout;
use crate::report::{self, ScenarioReport};
use crate::run::{Event, RunOptions, new_run_id, run_scenario};
use crate::scenario;

/// Arguments of `netreach run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario files or folders of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The kubeconfig context to run against (`KUBECONFIG` picks the kubeconfig). Required:
    /// netreach never uses the current context implicitly.
    #[arg(long, env = "NETREACH_CONTEXT")]
    pub context: Option<String>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The enforcer's documented deviations (e.g. fixtures/known-deviations/kube-router.yaml):
    /// a failed cell listed there does not fail the exit code while it still occurs; a listed
    /// deviation that no longer occurs does. Reports still show every failed cell.
    #[arg(long, value_name = "FILE", env = "NETREACH_KNOWN_DEVIATIONS")]
    pub known_deviations: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Use the scenarios' namespace names as they are, instead of `<name>-<run id>`.
    /// Refuses to run if such a namespace exists already.
    #[arg(long)]
    pub verbatim_namespaces: bool,
    /// Leave namespaces, pods and policies in place afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Leave them in place when a cell disagreed, so the repro commands still work.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Per-probe timeout inside the pod, in seconds.
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    pub probe_timeout: u32,
    /// Execs in flight at once.
    #[arg(long, default_value_t = 16)]
    pub parallelism: usize,
    /// Expect what the NetworkPolicy specification says (the policy engine, with the run's
    /// addresses) wherever it decides a cell, instead of the scenario's expectations; cells
    /// the specification leaves open keep the scenario's.
    #[arg(long)]
    pub expect_computed: bool,
    /// How long disagreeing cells are re-probed after a step, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub converge_timeout: u64,
    /// Minimum time between a step's changes and its confirmation round, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub settle_ms: u64,
    /// Probe image (default: `NETREACH_PROBE_IMAGE`, else `netreach-probe:latest`); see
    /// docs/probe-image.md to build the same image into your own registry.
    #[arg(long, env = "NETREACH_PROBE_IMAGE")]
    pub probe_image: Option<String>,
    /// An image pull Secret for the probe pods (repeatable; it must exist in each namespace the
    /// pods run in).
    #[arg(long = "image-pull-secret", value_name = "NAME")]
    pub image_pull_secrets: Vec<String>,
    /// A node label the probe pods must match, `key=value` (repeatable).
    #[arg(long = "node-selector", value_name = "KEY=VALUE")]
    pub node_selector: Vec<String>,
    /// A taint the probe pods tolerate, `key[=value][:Effect]` as `kubectl taint` writes it
    /// (repeatable).
    #[arg(long = "toleration", value_name = "TAINT")]
    pub tolerations: Vec<String>,
    /// A folder outside the scenario's repository that policy `file:` paths may read from
    /// (repeatable).
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_paths: Vec<PathBuf>,
}

impl RunArgs {
    /// The pod options of these flags.
    ///
    /// # Errors
    /// A flag value that does not parse, with what would be right.
    pub fn pod_options(&self) -> Result<kube::deploy::PodSpecOptions, String> {
        let mut o = kube::deploy::PodSpecOptions {
            image_pull_secrets: self.image_pull_secrets.clone(),
            ..Default::default()
        };
        for kv in &self.node_selector {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("--node-selector {kv}: write key=value"))?;
            o.node_selector.insert(k.to_owned(), v.to_owned());
        }
        for t in &self.tolerations {
            o.tolerations.push(t.parse()?);
        }
        Ok(o)
    }
}

pub(crate) fn require_context(c: Option<&str>) -> Option<&str> {
    let c = c.filter(|c| !c.is_empty());
    if c.is_none() {
        eprintln!(
            "netreach: name the cluster with --context <kubeconfig context> or NETREACH_CONTEXT; \
             netreach never deploys into the current context implicitly"
        );
    }
    c
}

/// Runs `netreach run`; returns the exit code.
///
/// # Errors
/// When scenarios cannot be listed or reports cannot be written.
pub fn main(args: &RunArgs) -> anyhow::Result<i32> {
    let Some(context) = require_context(args.context.as_deref()) else {
        return Ok(exit::USAGE);
    };
    let Some(options) = crate::cli::load_options("run", &args.allow_paths) else {
        return Ok(exit::USAGE);
    };
    let files = match scenario::discover(&args.paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("netreach run: no scenario files (*.yaml, *.yml) under the given paths");
            return Ok(exit::USAGE);
        }
        Err(e) => {
            eprintln!("netreach run: cannot list scenarios: {e}");
            return Ok(exit::USAGE);
        }
    };
    let known = match &args.known_deviations {
        Some(p) => Some(crate::known::KnownDeviations::load(p)?),
        None => None,
    };
    // Validate everything before touching the cluster.
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut scenarios = Vec::new();
    let mut invalid = 0;
    for f in &files {
        let loaded = scenario::load_with_options(f, &options);
        if !loaded.diagnostics.0.is_empty() {
            eprint!("{}", loaded.diagnostics.render(color));
        }
        match loaded.scenario {
            Some(s) => scenarios.push(s),
            None => invalid += 1,
        }
    }
    if invalid > 0 {
        eprintln!("netreach: {invalid} scenario(s) are invalid; nothing was deployed");
        return Ok(exit::INVALID);
    }
    crate::signal::cleanup_on_interrupt();
    let pods = match args.pod_options() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("netreach run: {e}");
            return Ok(exit::USAGE);
        }
    };
    let base = RunOptions {
        probe_timeout: ProbeTimeout(args.probe_timeout.max(1)),
        keep: args.keep,
        keep_on_failure: args.keep_on_failure,
        converge_timeout: Duration::from_secs(args.converge_timeout),
        settle: Duration::from_millis(args.settle_ms),
        expect_computed: args.expect_computed,
        ..RunOptions::new(Naming::Verbatim)
    };
    let mut kube_opts = KubeOptions {
        parallelism: args.parallelism.max(1),
        pods,
        ..KubeOptions::default()
    };
    if let Some(img) = &args.probe_image {
        kube_opts.probe_image = img.clone();
    }
    let progress = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let mut reports: Vec<ScenarioReport> = Vec::new();
    for s in &scenarios {
        // Every scenario gets its own run id, so scenarios sharing logical names never collide.
        let naming = if args.verbatim_namespaces {
            Naming::Verbatim
        } else {
            Naming::PerRun {
                run_id: new_run_id(),
            }
        };
        let opts = RunOptions {
            run_id: match &naming {
                Naming::PerRun { run_id } => run_id.clone(),
                Naming::Verbatim => new_run_id(),
            },
            naming,
            ..base.clone()
        };
        let r = match kube::connect(context, kube_opts.clone()) {
            Ok(mut c) => run_scenario(s, c.as_mut(), &opts, &mut |e| {
                if progress {
                    show(e);
                }
            }),
            Err(e) => ScenarioReport::not_run(s, e.to_string()),
        };
        print!("{}", report::text::render_scenario(&r));
        reports.push(r);
    }
    if let Some(p) = &args.junit {
        std::fs::write(p, report::junit::render(&reports))?;
    }
    if let Some(p) = &args.json {
        std::fs::write(p, report::json::render(&reports))?;
    }
    print!("{}", report::text::render_summary(&reports));
    let Some(known) = &known else {
        return Ok(report::exit_code(&reports));
    };
    let (code, lines) = crate::known::exit_code_with(&reports, known);
    for l in &lines {
        println!("{l}");
    }
    Ok(code)
}

fn show(e: &Event) {
    match e {
        Event::Deploying { scenario, pods } => {
            eprintln!("netreach: {scenario}: deploying {pods} pod(s)")
        }
        Event::StepStarted { index, name, cells } => {
            eprintln!("netreach:   step {index} \"{name}\": {cells} cell(s)")
        }
        Event::Probed {
            round,
            cells,
            disagreeing,
            ..
        } => {
            eprintln!("netreach:     round {round}: {cells} probed, {disagreeing} disagreeing")
        }
        Event::StepFinished { .. } => {}
        Event::TearingDown => eprintln!("netreach:   cleaning up"),
    }
}
