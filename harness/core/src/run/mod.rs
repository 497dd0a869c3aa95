//! Orchestration: one scenario's steps through the [`Cluster`] seam, into a [`ScenarioReport`].
//!
//! The runner emits [`Event`]s as it goes (for progress display) and always returns a report:
//! infrastructure failures become report errors, mismatches become failed cells. It tears down
//! what it deployed, also after a failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::bind::bind_probes;
use crate::cluster::{Cluster, DeployPlan, InfraError, cluster_actions};
use crate::engine::{self, Explanation, World};
use crate::model::{CellKey, Expected, Origin, Scenario};
use crate::names::Naming;
use crate::probe::ProbeTimeout;
use crate::report::{LiveChange, ScenarioReport, StepReport};
use crate::verdict::{CellResult, Counts, SpecOpinion, Status, judge_cell};

/// Something the runner did, for progress reporting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Deployment started.
    Deploying {
        /// Scenario.
        scenario: String,
        /// Pods to start.
        pods: usize,
    },
    /// A step started.
    StepStarted {
        /// 1-based index.
        index: usize,
        /// Name.
        name: String,
        /// Cells to probe.
        cells: usize,
    },
    /// A step finished.
    StepFinished {
        /// 1-based index.
        index: usize,
        /// Counts.
        counts: Counts,
    },
    /// A probe round finished.
    Probed {
        /// Step index.
        index: usize,
        /// Round number (1-based).
        round: usize,
        /// Cells probed in the round.
        cells: usize,
        /// Cells disagreeing after the round.
        disagreeing: usize,
    },
    /// Teardown started.
    TearingDown,
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Namespace naming.
    pub naming: Naming,
    /// Labels everything the run creates (with per-run names, the id in the names).
    pub run_id: String,
    /// How long one probe may take inside the pod. It defines what "blocked" means (no answer
    /// within it), so every report records it.
    pub probe_timeout: ProbeTimeout,
    /// Logical namespaces mapped onto namespaces given to the run (`--namespace l=real`).
    pub given_namespaces: BTreeMap<String, String>,
    /// Labels added to every namespace the run creates (e.g. a PodSecurity level); the
    /// specification sees them too, so a namespaceSelector that matches them is judged right.
    pub namespace_labels: BTreeMap<String, String>,
    /// Leave everything in place afterwards.
    pub keep: bool,
    /// Leave everything in place when a cell failed (so the repro commands work).
    pub keep_on_failure: bool,
    /// How long disagreeing cells are re-probed after a step before they count as failed.
    pub converge_timeout: Duration,
    /// Pause between re-probe rounds.
    pub retry_every: Duration,
    /// The confirmation round starts no earlier than this after the step's changes.
    pub settle: Duration,
    /// Judge cells by the specification (the policy engine, with the run's addresses) wherever
    /// it decides them, and by the scenario's expectations only where it does not.
    pub expect_computed: bool,
}

impl RunOptions {
    /// Defaults for a real cluster.
    pub fn new(naming: Naming) -> Self {
        let run_id = match &naming {
            Naming::PerRun { run_id } => run_id.clone(),
            Naming::Verbatim => new_run_id(),
        };
        RunOptions {
            naming,
            run_id,
            probe_timeout: ProbeTimeout::default(),
            given_namespaces: BTreeMap::new(),
            namespace_labels: BTreeMap::new(),
            keep: false,
            keep_on_failure: false,
            converge_timeout: Duration::from_secs(30),
            retry_every: Duration::from_millis(500),
            settle: Duration::from_secs(2),
            expect_computed: false,
        }
    }
}

impl RunOptions {
    /// No waiting at all: for tests against a double that answers at once.
    pub fn fast(naming: Naming) -> Self {
        RunOptions {
            converge_timeout: Duration::ZERO,
            retry_every: Duration::ZERO,
            settle: Duration::ZERO,
            ..RunOptions::new(naming)
        }
    }
}

/// Probes every cell of a step until the cluster agrees with the expectations or the deadline
/// passes, then once more in full: a cell may have agreed only because the previous state still
/// held. Cells whose answer changes in that confirmation round are marked flaky.
fn probe_step(
    s: &Scenario,
    step: &crate::model::Step,
    cluster: &mut dyn Cluster,
    bindings: &crate::bind::Bindings,
    opts: &RunOptions,
    changed_at: Instant,
    on_event: &mut dyn FnMut(&Event),
) -> Result<StepReport, InfraError> {
    let probes = bind_probes(s, step.expected.cells.keys(), bindings)?;
    let run = |cluster: &mut dyn Cluster, idx: &[usize]| -> Result<Vec<CellResult>, InfraError> {
        let batch: Vec<_> = idx.iter().map(|&i| probes[i].clone()).collect();
        let obs = cluster.probe(&batch, opts.probe_timeout)?;
        if obs.len() != batch.len() {
            return Err(InfraError::Probe(format!(
                "the prober returned {} results for {} probes",
                obs.len(),
                batch.len()
            )));
        }
        Ok(batch
            .iter()
            .zip(&obs)
            .map(|(p, o)| judge_cell(&p.cell, &step.expected.cells[&p.cell], &p.action, o))
            .collect())
    };
    let all: Vec<usize> = (0..probes.len()).collect();
    let mut results = run(cluster, &all)?;
    let mut rounds = 1;
    let disagreeing = |r: &[CellResult]| -> Vec<usize> {
        r.iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.status, Status::Fail | Status::Error))
            .map(|(i, _)| i)
            .collect()
    };
    on_event(&Event::Probed {
        index: step.index,
        round: rounds,
        cells: all.len(),
        disagreeing: disagreeing(&results).len(),
    });
    loop {
        let bad = disagreeing(&results);
        if bad.is_empty() || changed_at.elapsed() >= opts.converge_timeout {
            break;
        }
        std::thread::sleep(opts.retry_every);
        let again = run(cluster, &bad)?;
        for (i, r) in bad.iter().zip(again) {
            results[*i] = r;
        }
        rounds += 1;
        on_event(&Event::Probed {
            index: step.index,
            round: rounds,
            cells: bad.len(),
            disagreeing: disagreeing(&results).len(),
        });
    }
    let converged = disagreeing(&results).is_empty();
    let converge_ms = converged.then(|| millis(changed_at.elapsed()));
    // Confirmation.
    if let Some(wait) = opts.settle.checked_sub(changed_at.elapsed()) {
        std::thread::sleep(wait);
    }
    let confirm = run(cluster, &all)?;
    rounds += 1;
    // A cell whose answer changed since the step settled is looked at again until two looks in a
    // row agree (the new answer stands, judged like any other: a late change of state, such as
    // enforcement arriving after the first round or an enforcer briefly rebuilding its rules), or
    // until the convergence deadline. A cell still changing then has no stable answer: it is
    // flaky, and it keeps the look that disagreed with the expectation, if any did.
    let mut final_look = confirm;
    let mut pending: Vec<usize> = (0..all.len())
        .filter(|&i| final_look[i].observed != results[i].observed)
        .collect();
    let mut worst: BTreeMap<usize, CellResult> = BTreeMap::new();
    let deadline = Instant::now() + opts.converge_timeout.max(opts.retry_every);
    while !pending.is_empty() {
        std::thread::sleep(opts.retry_every);
        let looks = run(cluster, &pending)?;
        rounds += 1;
        let mut still = Vec::new();
        for (&i, look) in pending.iter().zip(looks) {
            if final_look[i].status != Status::Pass {
                worst.entry(i).or_insert_with(|| final_look[i].clone());
            }
            if look.observed != final_look[i].observed {
                still.push(i);
            }
            final_look[i] = look;
        }
        pending = still;
        if Instant::now() >= deadline {
            break;
        }
    }
    for i in pending {
        let shown = worst.remove(&i).unwrap_or_else(|| final_look[i].clone());
        final_look[i] = CellResult {
            flaky: true,
            ..shown
        };
    }
    results = final_look;
    let converge_ms = if disagreeing(&results).is_empty() {
        converge_ms
    } else {
        None
    };
    on_event(&Event::Probed {
        index: step.index,
        round: rounds,
        cells: all.len(),
        disagreeing: disagreeing(&results).len(),
    });
    let mut sr = StepReport::ran(step, results);
    sr.rounds = rounds;
    sr.converge_ms = converge_ms;
    Ok(sr)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs one scenario. Never panics on cluster failures: they end up in the report.
pub fn run_scenario(
    s: &Scenario,
    cluster: &mut dyn Cluster,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(&Event),
) -> ScenarioReport {
    let started = Instant::now();
    let mut plan = DeployPlan::with_given(s, &opts.naming, &opts.run_id, &opts.given_namespaces);
    for ns in plan.namespaces.iter_mut().filter(|n| !n.given) {
        for (k, v) in &opts.namespace_labels {
            ns.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let created: Vec<String> = plan
        .namespaces
        .iter()
        .filter(|n| !n.given)
        .map(|n| n.logical.clone())
        .collect();
    let mut report = ScenarioReport::new(s, &plan);
    report.probe_timeout_s = opts.probe_timeout.0;
    on_event(&Event::Deploying {
        scenario: s.full_name(),
        pods: plan.pods.len(),
    });
    match cluster.deploy(&plan) {
        Err(e) => {
            report.error = Some(e.to_string());
            report.steps = s.steps.iter().map(StepReport::not_run).collect();
        }
        Ok(deployed) => {
            let mut bindings = deployed;
            report.nodes = bindings
                .pod_nodes
                .iter()
                .map(|(id, n)| (id.to_string(), n.clone()))
                .collect();
            let mut failed = false;
            // The specification's view of each step (the run's addresses are added as the steps
            // bind them: a pod a step adds has one only from then on).
            let worlds: Vec<World> = World::per_step(s)
                .into_iter()
                .map(|mut w| {
                    for ns in &created {
                        if let Some(l) = w.namespaces.get_mut(ns) {
                            for (k, v) in &opts.namespace_labels {
                                l.entry(k.clone()).or_insert_with(|| v.clone());
                            }
                        }
                    }
                    w
                })
                .collect();
            // A declared pod CIDR that the real addresses contradict: verdicts computed before
            // deployment (validate, contradicts-spec) may be wrong; the run's own are not (they
            // use the real addresses).
            if !s.pod_cidrs.is_empty()
                && let Some(w) = worlds.first()
            {
                let outside = w
                    .clone()
                    .with_addresses(&bindings)
                    .addresses_outside_pod_network();
                if !outside.is_empty() {
                    let shown: Vec<String> = outside
                        .iter()
                        .take(5)
                        .map(|(p, ip)| format!("{p} ({ip})"))
                        .collect();
                    report.notes.push(format!(
                        "{} pod(s) got addresses outside the scenario's declared `cluster.podCIDR`: {}; fix the declaration (verdicts before deployment relied on it)",
                        outside.len(),
                        shown.join(", ")
                    ));
                }
            }
            let live = s.live_changes();
            for (step, world) in s.steps.iter().zip(&worlds) {
                if failed {
                    let (step, _) = judged(s, step, world, &bindings, opts);
                    report.steps.push(StepReport::not_run(&step));
                    continue;
                }
                on_event(&Event::StepStarted {
                    index: step.index,
                    name: step.name.clone(),
                    cells: step.expected.cells.len(),
                });
                let t = Instant::now();
                let applied = cluster_actions(&step.actions, &bindings, &plan)
                    .map_err(InfraError::from)
                    .and_then(|a| cluster.apply(&a));
                let (mut sr, spec) = match applied {
                    Err(e) => {
                        failed = true;
                        (StepReport::errored(step, e.to_string()), BTreeMap::new())
                    }
                    Ok(now) => {
                        bindings = now;
                        for (id, n) in &bindings.pod_nodes {
                            report
                                .nodes
                                .entry(id.to_string())
                                .or_insert_with(|| n.clone());
                        }
                        let changed_at = Instant::now();
                        let (step, spec) = judged(s, step, world, &bindings, opts);
                        match probe_step(s, &step, cluster, &bindings, opts, changed_at, on_event) {
                            Ok(sr) => (sr, spec),
                            Err(e) => {
                                failed = true;
                                (StepReport::errored(&step, e.to_string()), spec)
                            }
                        }
                    }
                };
                for r in &mut sr.results {
                    r.spec = spec.get(&r.cell).map(|x| SpecOpinion {
                        verdict: x.verdict,
                        why: x.short(),
                    });
                }
                sr.duration_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
                on_event(&Event::StepFinished {
                    index: step.index,
                    counts: sr.counts,
                });
                if let Some((_, namespaces)) = live.iter().find(|(st, _)| st.index == step.index)
                    && sr.error.is_none()
                {
                    let namespaces = namespaces.iter().map(|n| (*n).to_owned()).collect();
                    sr.live = Some(LiveChange::between(namespaces, report.steps.last(), &sr));
                }
                report.steps.push(sr);
            }
        }
    }
    let failed_cells = report.steps.iter().any(|st| st.counts.fail > 0);
    if opts.keep || (opts.keep_on_failure && failed_cells) {
        report.kept = true;
        if let Err(e) = cluster.keep() {
            report.teardown_error = Some(e.to_string());
        }
    } else {
        on_event(&Event::TearingDown);
        if let Err(e) = cluster.teardown() {
            report.teardown_error = Some(e.to_string());
        }
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report.finish();
    report
}

/// The specification's verdict on every cell of `step` (in its world, with the addresses bound
/// now), and the step as the run judges it: with `expect_computed`, every cell the
/// specification decides is expected as it says.
fn judged(
    s: &Scenario,
    step: &crate::model::Step,
    world: &World,
    bindings: &crate::bind::Bindings,
    opts: &RunOptions,
) -> (crate::model::Step, BTreeMap<CellKey, Explanation>) {
    let world = world.clone().with_addresses(bindings);
    let spec: BTreeMap<CellKey, Explanation> = step
        .expected
        .cells
        .keys()
        // The live policies around a real workload are not in the scenario: no opinion.
        .filter(|c| !s.touches_workload(c))
        .map(|c| (c.clone(), engine::explain(&world, c)))
        .collect();
    let step = if opts.expect_computed {
        computed_step(step, &spec)
    } else {
        step.clone()
    };
    (step, spec)
}

/// `step` with every cell the specification decides expected as the specification says.
fn computed_step(
    step: &crate::model::Step,
    spec: &BTreeMap<CellKey, Explanation>,
) -> crate::model::Step {
    let mut out = step.clone();
    for (cell, e) in &mut out.expected.cells {
        let Some(v) = spec.get(cell).and_then(|x| x.verdict.expectation()) else {
            continue;
        };
        *e = Expected {
            verdict: v,
            origin: Origin {
                kind: "computed",
                line: step.line,
            },
        };
    }
    out
}

/// A run id from the clock and process id (6 characters, DNS-label safe).
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    crate::names::run_id_from_seed(seed)
}

#[cfg(test)]
mod member_tests;
#[cfg(test)]
mod tests;
