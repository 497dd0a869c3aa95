//! `netreach run`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit;
use crate::kube::{self, KubeOptions};
use crate::names::Naming;
use crate::probe::ProbeTimeout;
use crate::report::{self, ScenarioReport};
use crate::run::{RunOptions, new_run_id, run_scenario};
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
    /// Write the HTML report here: one self-contained page (grids, cell details with repro
    /// commands, mismatch filter, changes between steps, graphs); opens from file://.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the graph of who may reach whom here, as SVG: per scenario its first step with a
    /// mismatch, else its last step.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Use the scenarios' namespace names as they are, instead of `<name>-<run id>`.
    /// Refuses to run if such a namespace exists already.
    #[arg(long)]
    pub verbatim_namespaces: bool,
    /// Run a scenario namespace inside a namespace you were given, `logical=real` (repeatable):
    /// netreach never creates, relabels or deletes it, and removes only what it created inside
    /// (recorded in a ConfigMap `netreach-run-<id>` there first). The namespace must carry the
    /// labels the scenario declares for it. See docs/rbac.md for the Role this needs.
    #[arg(long = "namespace", value_name = "LOGICAL=REAL")]
    pub namespaces: Vec<String>,
    /// Let steps apply candidate policies in live namespaces (`existing: true, candidates:
    /// true`), the rollout check. Real traffic in those namespaces is affected while a candidate
    /// is in force. netreach records each policy there before it changes it (ConfigMap
    /// `netreach-run-<id>`) and restores it exactly at the end, on failure, on Ctrl-C/SIGTERM,
    /// or with `netreach gc` after a crash; it stops a step whose candidate someone else
    /// changed meanwhile (a GitOps controller reverting it).
    #[arg(long)]
    pub live_policies: bool,
    /// A label for every namespace netreach creates, `key=value` (repeatable), e.g.
    /// `pod-security.kubernetes.io/enforce=restricted`. The specification sees it too.
    #[arg(long = "namespace-label", value_name = "KEY=VALUE")]
    pub namespace_labels: Vec<String>,
    /// Leave namespaces, pods and policies in place afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Leave them in place when a cell disagreed, so the repro commands still work.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Per-probe timeout inside the pod, in seconds.
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    pub probe_timeout: u32,
    /// Execs in flight at once, across every scenario running concurrently.
    #[arg(long, default_value_t = 16)]
    pub parallelism: usize,
    /// Scenarios run at once, each in its own namespaces (default: two per schedulable node,
    /// at most 8; 2 when nodes cannot be listed). Reports stay in file order. Verbatim or
    /// given namespaces run one at a time.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// A previous JSON report (`--json`): report every cell whose observation changed since
    /// then (opened, closed, changed), also when both runs passed; exit 6 (drift) when one did
    /// and nothing else failed.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Also the expected and observed tables, and each failing probe's time, exit code and
    /// output.
    #[arg(long, short = 'v')]
    pub verbose: bool,
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

/// What the first step of `s` that changes one of `given` (logical namespaces) does to it, e.g.
/// "relabels namespace `x`": a namespace given to netreach is never relabelled, created or
/// deleted, and netreach does not add or remove pods in it mid-run either, so such a scenario
/// cannot run in it.
pub fn changes_given_namespace(s: &crate::model::Scenario, given: &[String]) -> Option<String> {
    use crate::model::Action;
    let hit = |ns: &str| given.iter().any(|g| g == ns);
    s.steps.iter().find_map(|st| {
        st.actions.iter().find_map(|a| {
            let (what, ns) = match a {
                Action::RelabelNamespace { ns, .. } => ("relabels namespace", ns.as_str()),
                Action::RemoveNamespace(ns) => ("removes namespace", ns.as_str()),
                Action::AddNamespace(n) => ("adds namespace", n.name.as_str()),
                Action::RemovePod(id) => ("removes a pod in namespace", id.ns.as_str()),
                Action::AddPod(p) => ("adds a pod in namespace", p.id.ns.as_str()),
                _ => return None,
            };
            hit(ns).then(|| format!("step {} {what} `{ns}`", st.index))
        })
    })
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
    // First: a signal at any later instant is this process's to handle (exit 130, after deleting
    // whatever was created by then), never the default disposition's.
    crate::signal::cleanup_on_interrupt();
    let Some(context) = require_context(args.context.as_deref()) else {
        return Ok(exit::USAGE);
    };
    let started = std::time::SystemTime::now();
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
    let pods = match args.pod_options() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("netreach run: {e}");
            return Ok(exit::USAGE);
        }
    };
    if !args.live_policies {
        for s in &scenarios {
            if let Some(why) = s.live_consent() {
                eprintln!(
                    "netreach run: scenario {}: {why}; pass --live-policies to allow it (netreach restores every policy it changes there exactly, also on Ctrl-C; see docs/scenarios.md \"Candidate policies\")",
                    s.full_name()
                );
                return Ok(exit::USAGE);
            }
        }
    }
    let mut given = std::collections::BTreeMap::new();
    for m in &args.namespaces {
        let Some((l, r)) = m
            .split_once('=')
            .filter(|(l, r)| !l.is_empty() && !r.is_empty())
        else {
            eprintln!(
                "netreach run: --namespace {m}: write logical=real, e.g. --namespace shop=team-shop-staging"
            );
            return Ok(exit::USAGE);
        };
        if let Err(e) = crate::names::check_dns_label(r) {
            eprintln!("netreach run: --namespace {m}: `{r}` is not a namespace name: {e}");
            return Ok(exit::USAGE);
        }
        given.insert(l.to_owned(), r.to_owned());
    }
    for s in &scenarios {
        for l in given.keys() {
            match s.namespaces.iter().find(|n| &n.name == l) {
                None => {
                    eprintln!(
                        "netreach run: --namespace {l}=…: scenario {} has no namespace `{l}`",
                        s.full_name()
                    );
                    return Ok(exit::USAGE);
                }
                Some(n) if n.existing => {
                    eprintln!(
                        "netreach run: --namespace {l}=…: `{l}` is an `existing` namespace in {}; it is used as it is",
                        s.full_name()
                    );
                    return Ok(exit::USAGE);
                }
                Some(_) => {}
            }
        }
        let logical: Vec<String> = given.keys().cloned().collect();
        if let Some(what) = changes_given_namespace(s, &logical) {
            eprintln!(
                "netreach run: --namespace: scenario {}: {what}; netreach never relabels, creates or deletes a namespace it was given, nor adds or removes pods in one mid-run (run it in namespaces of its own, without --namespace)",
                s.full_name()
            );
            return Ok(exit::USAGE);
        }
    }
    let mut namespace_labels = std::collections::BTreeMap::new();
    for kv in &args.namespace_labels {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("netreach run: --namespace-label {kv}: write key=value");
            return Ok(exit::USAGE);
        };
        if let Err(e) =
            crate::names::check_label_key(k).and_then(|()| crate::names::check_label_value(v))
        {
            eprintln!("netreach run: --namespace-label {kv}: {e}");
            return Ok(exit::USAGE);
        }
        namespace_labels.insert(k.to_owned(), v.to_owned());
    }
    let base = RunOptions {
        namespace_labels,
        given_namespaces: given,
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
    let baseline = match &args.baseline {
        Some(p) => {
            let v: serde_json::Value = std::fs::read(p)
                .map_err(anyhow::Error::from)
                .and_then(|d| serde_json::from_slice(&d).map_err(anyhow::Error::from))
                .map_err(|e| anyhow::anyhow!("--baseline {}: {e}", p.display()))?;
            Some(
                report::diff::cells(&v)
                    .map_err(|e| anyhow::anyhow!("--baseline {}: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let jobs = if args.verbatim_namespaces || !base.given_namespaces.is_empty() {
        1
    } else {
        args.jobs.unwrap_or_else(|| {
            kube::schedulable_nodes(context, None).map_or(2, |n| (2 * n).clamp(1, 8))
        })
    }
    .max(1)
    .min(scenarios.len().max(1));
    kube::exec::set_global_limit(args.parallelism.max(1));
    let text_opts = report::text::TextOptions {
        verbose: args.verbose,
    };
    let progress = crate::progress::Progress::start(scenarios.len());
    let reports = run_all(
        &scenarios,
        jobs,
        &progress,
        &|s: &crate::model::Scenario| {
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
            let name = s.full_name();
            let r = match kube::connect(context, kube_opts.clone()) {
                Ok(mut c) => run_scenario(s, c.as_mut(), &opts, &mut |e| progress.event(&name, e)),
                Err(e) => ScenarioReport::not_run(s, e.to_string()),
            };
            // Interrupted: the signal thread cleans up and exits with 130; a report of the
            // half-done scenario would only mislead.
            kube::live::wait_if_interrupted();
            r
        },
        &|r: &ScenarioReport| progress.print(&report::text::render_scenario_with(r, text_opts)),
    );
    progress.finish();
    if let Some(p) = &args.junit {
        let info = report::junit::JunitInfo {
            context: Some(context.to_owned()),
            known: known
                .as_ref()
                .map(|k| {
                    reports
                        .iter()
                        .map(|r| (r.full_name(), crate::known::account(r, k).known))
                        .filter(|(_, v)| !v.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        std::fs::write(p, report::junit::render_with(&reports, &info))?;
    }
    if let Some(p) = &args.json {
        std::fs::write(p, report::json::render(&reports))?;
    }
    if let Some(p) = &args.html {
        let info = report::html::RunInfo {
            context: Some(context.to_owned()),
            cluster_version: kube::server_version(context, kube_opts.kubeconfig.as_deref()),
            netreach_version: env!("CARGO_PKG_VERSION").to_owned(),
            started: Some(started),
        };
        std::fs::write(p, report::html::render(&reports, &info))?;
    }
    if let Some(p) = &args.svg {
        std::fs::write(p, report::html::svg::svg_document(&reports))?;
    }
    print!("{}", report::text::render_summary(&reports));
    let (mut code, lines) = match &known {
        Some(known) => crate::known::exit_code_with(&reports, known),
        None => (report::exit_code(&reports), Vec::new()),
    };
    for l in &lines {
        println!("{l}");
    }
    if let Some(old) = &baseline {
        let now = report::diff::cells(&serde_json::from_str(&report::json::render(&reports))?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let changes = report::diff::diff(old, &now);
        print!("{}", report::diff::render(&changes));
        if changes.iter().any(report::diff::is_drift)
            && matches!(code, exit::SUCCESS | exit::UNSUPPORTED)
        {
            code = exit::DRIFT;
        }
    }
    Ok(code)
}

/// Runs `scenarios` on `jobs` threads, each scenario by `one`; hands each report to `print` in
/// file order (as soon as every earlier one is done) and returns them in file order.
fn run_all(
    scenarios: &[crate::model::Scenario],
    jobs: usize,
    progress: &crate::progress::Progress,
    one: &(dyn Fn(&crate::model::Scenario) -> ScenarioReport + Sync),
    print: &(dyn Fn(&ScenarioReport) + Sync),
) -> Vec<ScenarioReport> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<ScenarioReport>>> = Mutex::new(vec![None; scenarios.len()]);
    let printed = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(s) = scenarios.get(i) else { break };
                    progress.begin(&s.full_name(), s.steps.len());
                    let r = one(s);
                    progress.end(&s.full_name(), &report::text::headline(&r));
                    let Ok(mut d) = done.lock() else { break };
                    d[i] = Some(r);
                    // Print what is complete, in order.
                    if let Ok(mut p) = printed.lock() {
                        while let Some(Some(r)) = d.get(*p) {
                            print(r);
                            *p += 1;
                        }
                    }
                }
            });
        }
    });
    done.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}
