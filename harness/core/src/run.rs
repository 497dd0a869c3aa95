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
use crate::report::{ScenarioReport, StepReport};
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
        RunOptions {
            naming,
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
        let obs = cluster.probe(&batch)?;
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
    let plan = DeployPlan::new(s, &opts.naming);
    let mut report = ScenarioReport::new(s, &plan);
    on_event(&Event::Deploying {
        scenario: s.full_name(),
        pods: plan.pods.len(),
    });
    match cluster.deploy(&plan) {
        Err(e) => {
            report.error = Some(e.to_string());
            report.steps = s.steps.iter().map(StepReport::not_run).collect();
        }
        Ok(bindings) => {
            let mut failed = false;
            // The specification's view of each step, with the addresses this run bound.
            let worlds: Vec<World> = World::per_step(s)
                .into_iter()
                .map(|w| w.with_addresses(&bindings))
                .collect();
            for (step, world) in s.steps.iter().zip(&worlds) {
                // The specification's verdict on every cell of the step, asked once.
                let spec: BTreeMap<&CellKey, Explanation> = step
                    .expected
                    .cells
                    .keys()
                    .map(|c| (c, engine::explain(world, c)))
                    .collect();
                let computed;
                let step = if opts.expect_computed {
                    computed = computed_step(step, &spec);
                    &computed
                } else {
                    step
                };
                if failed {
                    report.steps.push(StepReport::not_run(step));
                    continue;
                }
                on_event(&Event::StepStarted {
                    index: step.index,
                    name: step.name.clone(),
                    cells: step.expected.cells.len(),
                });
                let t = Instant::now();
                let result = (|| -> Result<StepReport, InfraError> {
                    let actions = cluster_actions(&step.actions, &bindings)?;
                    cluster.apply(&actions)?;
                    let changed_at = Instant::now();
                    probe_step(s, step, cluster, &bindings, opts, changed_at, on_event)
                })();
                let mut sr = match result {
                    Ok(sr) => sr,
                    Err(e) => {
                        failed = true;
                        StepReport::errored(step, e.to_string())
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
                report.steps.push(sr);
            }
        }
    }
    let failed_cells = report.steps.iter().any(|st| st.counts.fail > 0);
    if opts.keep || (opts.keep_on_failure && failed_cells) {
        report.kept = true;
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

/// `step` with every cell the specification decides expected as the specification says.
fn computed_step(
    step: &crate::model::Step,
    spec: &BTreeMap<&CellKey, Explanation>,
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
mod tests {
    use super::*;
    use crate::cluster::fake::{Call, FakeCluster};
    use crate::cluster::{ClusterAction, InfraError};
    use crate::outcome::Outcome;
    use crate::report::ScenarioStatus;
    use crate::scenario::{MemReader, load_str};
    use std::path::Path;

    const SCENARIO: &str = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, labels: {app: a}, ports: [80/tcp]}
  - {name: b, namespace: x, labels: {app: b}, ports: [80/tcp]}
steps:
  - name: open
    expect: [{default: allow}]
  - name: deny b
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: deny-b, namespace: x}
          spec: {podSelector: {matchLabels: {app: b}}}
    expect:
      - default: allow
      - block: {to: x/b}
  - name: restore
    delete: [x/deny-b]
    expect: [{default: allow}]
"#;

    fn scenario() -> Scenario {
        let l = load_str(
            Path::new("scenarios/t.yaml"),
            SCENARIO,
            &MemReader::default(),
        );
        assert!(
            !l.diagnostics.has_errors(),
            "{}",
            l.diagnostics.render(false)
        );
        l.scenario.expect("valid")
    }

    fn opts() -> RunOptions {
        RunOptions::fast(Naming::PerRun {
            run_id: "abc123".into(),
        })
    }

    /// Blocks traffic into b while deny-b is applied and not deleted: a correct cluster.
    fn correct(p: &crate::bind::BoundProbe, applied: &[ClusterAction]) -> Outcome {
        let deny = applied.iter().rev().find_map(|a| match a {
            ClusterAction::ApplyPolicy { policy, .. } if policy == "x/deny-b" => Some(true),
            ClusterAction::DeletePolicy { name, .. } if name == "deny-b" => Some(false),
            _ => None,
        });
        if deny == Some(true) && p.cell.to.to_string() == "x/b" && p.cell.from.name != "b" {
            Outcome::TimedOut
        } else {
            Outcome::Connected
        }
    }

    #[test]
    fn a_correct_cluster_passes_every_step_in_order() {
        let s = scenario();
        let mut c = FakeCluster::new(correct);
        let mut events = Vec::new();
        let r = run_scenario(&s, &mut c, &opts(), &mut |e| events.push(e.clone()));
        assert_eq!(
            r.status,
            ScenarioStatus::Passed,
            "{}",
            crate::report::text::render_scenario(&r)
        );
        assert_eq!(r.counts.pass, 12);
        assert_eq!(r.steps.len(), 3);
        // deploy, (apply, probe, confirmation probe) x 3, teardown
        assert!(matches!(c.calls[0], Call::Deploy(_)));
        assert_eq!(c.calls.len(), 11);
        assert_eq!(c.calls[2], Call::Probe(4));
        assert_eq!(c.calls[3], Call::Probe(4));
        assert_eq!(c.calls[10], Call::Teardown);
        assert!(
            r.steps
                .iter()
                .all(|st| st.rounds == 2 && st.converge_ms.is_some())
        );
        // Real names in what reached the cluster.
        let Call::Apply(step2) = &c.calls[4] else {
            panic!("apply expected: {:?}", c.calls[4])
        };
        let ClusterAction::ApplyPolicy { manifest, .. } = &step2[0] else {
            panic!("policy expected")
        };
        assert_eq!(manifest["metadata"]["namespace"], "x-abc123");
        assert!(matches!(events.last(), Some(Event::TearingDown)));
    }

    #[test]
    fn a_cluster_that_ignores_the_policy_fails_step_two_only() {
        let s = scenario();
        let mut c = FakeCluster::new(|_, _| Outcome::Connected);
        let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
        assert_eq!(r.status, ScenarioStatus::Failed);
        assert_eq!(r.steps[0].counts.fail, 0);
        assert_eq!(
            r.steps[1].counts.fail, 1,
            "a -> b is the only blocked non-loopback cell"
        );
        assert_eq!(r.steps[2].counts.fail, 0);
        let text = crate::report::text::render_scenario(&r);
        assert!(text.contains("step 2 \"deny b\""), "{text}");
    }

    #[test]
    fn every_cell_carries_the_specification_and_computed_expectations_follow_it() {
        // A wrong scenario: step 1 claims a -> b is blocked although no policy exists.
        let wrong = SCENARIO.replace(
            "  - name: open\n    expect: [{default: allow}]",
            "  - name: open\n    expect: [{default: allow}, {block: {from: x/a, to: x/b}}]",
        );
        let l = load_str(Path::new("scenarios/t.yaml"), &wrong, &MemReader::default());
        let s = l.scenario.expect("valid, with a contradicts-spec warning");
        // Declared: the correct cluster fails step 1, and the report says the expectation is
        // the one that disagrees with the specification.
        let r = run_scenario(&s, &mut FakeCluster::new(correct), &opts(), &mut |_| {});
        let bad: Vec<&CellResult> = r.steps[0].with_status(Status::Fail).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(
            bad[0].spec.as_ref().map(|o| o.verdict),
            Some(crate::engine::Spec::Allow)
        );
        assert_eq!(
            bad[0].three_way(),
            Some("the expectation disagrees with the specification; the cluster follows it")
        );
        assert!(
            r.steps
                .iter()
                .all(|st| st.results.iter().all(|c| c.spec.is_some()))
        );
        // Computed: the same cluster passes every step, every cell judged by the engine.
        let computed = RunOptions {
            expect_computed: true,
            ..opts()
        };
        let r = run_scenario(&s, &mut FakeCluster::new(correct), &computed, &mut |_| {});
        assert_eq!(r.status, ScenarioStatus::Passed);
        assert!(r.steps.iter().all(|st| {
            st.results
                .iter()
                .all(|c| c.expected.origin.kind == "computed")
        }));
        // And a cluster that ignores the policy fails exactly the engine's blocked cell, with
        // the cluster named as the one that disagrees.
        let r = run_scenario(
            &s,
            &mut FakeCluster::new(|_, _| Outcome::Connected),
            &computed,
            &mut |_| {},
        );
        let bad: Vec<&CellResult> = r.steps[1].with_status(Status::Fail).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].cell.to_string(), "x/a -> x/b 80/tcp");
        assert_eq!(
            bad[0].three_way(),
            Some("the cluster disagrees with the specification")
        );
    }

    #[test]
    fn deploy_failure_is_an_error_not_a_result_and_still_tears_down() {
        let s = scenario();
        let mut c = FakeCluster::new(|_, _| Outcome::Connected);
        c.fail_deploy = Some(InfraError::Deploy {
            what: "pod x-abc123/a".into(),
            reason: "ImagePullBackOff".into(),
        });
        let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
        assert_eq!(r.status, ScenarioStatus::Error);
        assert!(
            r.error
                .as_deref()
                .unwrap_or("")
                .contains("ImagePullBackOff")
        );
        assert_eq!(r.counts.total(), 0);
        assert_eq!(c.calls.last(), Some(&Call::Teardown));
    }

    #[test]
    fn apply_failure_stops_later_steps() {
        let s = scenario();
        let mut c = FakeCluster::new(|_, _| Outcome::Connected);
        c.fail_apply = Some((
            1,
            InfraError::Apply {
                what: "x/deny-b".into(),
                reason: "forbidden".into(),
            },
        ));
        let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
        assert_eq!(r.status, ScenarioStatus::Error);
        assert!(
            r.steps[1]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("forbidden")
        );
        assert!(!r.steps[2].ran);
        assert_eq!(c.calls.last(), Some(&Call::Teardown));
    }

    #[test]
    fn probe_errors_are_errors_and_unsupported_is_not_a_pass() {
        let s = scenario();
        let mut c = FakeCluster::new(|p, _| {
            if p.cell.from.name == "a" {
                Outcome::Error("exec lost".into())
            } else {
                Outcome::Unsupported("no".into())
            }
        });
        let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
        assert_eq!(r.status, ScenarioStatus::Error);
        assert_eq!(r.counts.pass, 0);
        assert_eq!(r.counts.error, 6);
        assert_eq!(r.counts.unsupported, 6);
    }

    /// A cluster that enforces deny-b only from its third probe round on (slow enforcement).
    #[test]
    fn slow_enforcement_converges_by_reprobing_only_disagreeing_cells() {
        let s = scenario();
        // The first two probes of a -> b after deny-b is applied still see the old state.
        let mut seen_after_apply = 0;
        let mut c = FakeCluster::new(move |p, applied| {
            let want = correct(p, applied);
            if p.cell.from.name == "a"
                && p.cell.to.to_string() == "x/b"
                && want == Outcome::TimedOut
            {
                seen_after_apply += 1;
                if seen_after_apply <= 2 {
                    return Outcome::Connected;
                }
            }
            want
        });
        let opts = RunOptions {
            converge_timeout: Duration::from_secs(5),
            ..opts()
        };
        let r = run_scenario(&s, &mut c, &opts, &mut |_| {});
        assert_eq!(
            r.steps[1].counts.fail,
            0,
            "{}",
            crate::report::text::render_scenario(&r)
        );
        assert!(r.steps[1].converge_ms.is_some());
        // Step 2: full round (disagrees), re-probes of the one disagreeing cell, confirmation.
        let probe_sizes: Vec<usize> = c
            .calls
            .iter()
            .filter_map(|c| {
                if let Call::Probe(n) = c {
                    Some(*n)
                } else {
                    None
                }
            })
            .collect();
        assert!(
            probe_sizes.contains(&1),
            "re-probes cover only the disagreeing cell: {probe_sizes:?}"
        );
    }

    #[test]
    fn a_cell_that_changes_in_the_confirmation_round_is_flaky() {
        let s = scenario();
        let mut n = 0;
        let mut c = FakeCluster::new(move |p, applied| {
            if p.cell.from.name == "a" && p.cell.to.to_string() == "x/b" {
                n += 1;
                // Right on the first round of every step, wrong on the confirmation.
                if n % 2 == 0 {
                    return if correct(p, applied) == Outcome::Connected {
                        Outcome::TimedOut
                    } else {
                        Outcome::Connected
                    };
                }
            }
            correct(p, applied)
        });
        let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
        assert!(r.steps.iter().all(|st| st.results.iter().any(|c| c.flaky)));
        assert_eq!(r.status, ScenarioStatus::Failed);
        let text = crate::report::text::render_scenario(&r);
        assert!(text.contains("FLAKY x/a -> x/b 80/tcp"), "{text}");
    }

    /// The cluster blocks x/a -> x/b from its second look on, while step 1 expects it open: the
    /// first round agrees only because the change had not arrived yet. The confirmation round
    /// catches it, and a stable new answer is a plain mismatch, not a flaky cell.
    #[test]
    fn a_late_but_stable_change_is_a_mismatch_not_flaky() {
        let s = scenario();
        let mut looks = 0;
        let mut c = FakeCluster::new(move |p, _| {
            if p.cell.from.name == "a" && p.cell.to.to_string() == "x/b" {
                looks += 1;
                if looks >= 2 {
                    return Outcome::Refused;
                }
            }
            Outcome::Connected
        });
        let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
        let st = &r.steps[0];
        assert_eq!(
            st.counts.fail,
            1,
            "{}",
            crate::report::text::render_scenario(&r)
        );
        assert!(st.results.iter().all(|c| !c.flaky));
        assert_eq!(st.converge_ms, None, "the step did not end in agreement");
        assert_eq!(
            st.rounds, 3,
            "first round, confirmation, second look at the changed cell"
        );
        let text = crate::report::text::render_scenario(&r);
        assert!(
            text.contains("MISMATCH x/a -> x/b 80/tcp: expected allowed"),
            "{text}"
        );
    }

    /// An enforcer that is briefly wrong once (e.g. while rebuilding its rules) and then right
    /// again: the cell settles back, so it passes and is not flaky.
    #[test]
    fn a_brief_wobble_that_settles_passes() {
        let s = scenario();
        let mut looks = 0;
        let mut c = FakeCluster::new(move |p, applied| {
            let want = correct(p, applied);
            if p.cell.from.name == "a" && p.cell.to.to_string() == "x/b" {
                looks += 1;
                if looks == 2 {
                    return if want == Outcome::Connected {
                        Outcome::Refused
                    } else {
                        Outcome::Connected
                    };
                }
            }
            want
        });
        let opts = RunOptions {
            converge_timeout: Duration::from_secs(5),
            ..opts()
        };
        let r = run_scenario(&s, &mut c, &opts, &mut |_| {});
        assert_eq!(
            r.status,
            ScenarioStatus::Passed,
            "{}",
            crate::report::text::render_scenario(&r)
        );
        assert!(r.steps.iter().all(|st| st.results.iter().all(|c| !c.flaky)));
        assert_eq!(
            r.steps[0].rounds, 4,
            "first, confirmation, two more looks at the wobbling cell"
        );
    }

    #[test]
    fn keep_on_failure_keeps_only_failed_runs() {
        let s = scenario();
        let mut c = FakeCluster::new(|_, _| Outcome::Connected);
        let r = run_scenario(
            &s,
            &mut c,
            &RunOptions {
                keep_on_failure: true,
                ..opts()
            },
            &mut |_| {},
        );
        assert!(r.kept && !c.calls.contains(&Call::Teardown));
        let mut c = FakeCluster::new(correct);
        let r = run_scenario(
            &s,
            &mut c,
            &RunOptions {
                keep_on_failure: true,
                ..opts()
            },
            &mut |_| {},
        );
        assert!(!r.kept && c.calls.contains(&Call::Teardown));
    }

    #[test]
    fn keep_skips_teardown() {
        let s = scenario();
        let mut c = FakeCluster::new(correct);
        let r = run_scenario(
            &s,
            &mut c,
            &RunOptions {
                keep: true,
                ..opts()
            },
            &mut |_| {},
        );
        assert!(r.kept);
        assert!(!c.calls.contains(&Call::Teardown));
    }
}
