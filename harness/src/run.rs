//! Orchestration: one scenario's steps through the [`Cluster`] seam, into a [`ScenarioReport`].
//!
//! The runner emits [`Event`]s as it goes (for progress display) and always returns a report:
//! infrastructure failures become report errors, mismatches become failed cells. It tears down
//! what it deployed, also after a failure.

use std::time::Instant;

use crate::bind::bind_probes;
use crate::cluster::{Cluster, DeployPlan, InfraError, cluster_actions};
use crate::model::Scenario;
use crate::names::Naming;
use crate::report::{ScenarioReport, StepReport};
use crate::verdict::{Counts, judge_cell};

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
        Err(e) => report.error = Some(e.to_string()),
        Ok(bindings) => {
            let mut failed = false;
            for step in &s.steps {
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
                    let probes = bind_probes(s, step.expected.cells.keys(), &bindings)?;
                    let observations = cluster.probe(&probes)?;
                    if observations.len() != probes.len() {
                        return Err(InfraError::Probe(format!(
                            "the prober returned {} results for {} probes",
                            observations.len(),
                            probes.len()
                        )));
                    }
                    let results = probes
                        .iter()
                        .zip(&observations)
                        .map(|(p, o)| {
                            judge_cell(&p.cell, &step.expected.cells[&p.cell], &p.action, o)
                        })
                        .collect();
                    Ok(StepReport::ran(step, results))
                })();
                let mut sr = match result {
                    Ok(sr) => sr,
                    Err(e) => {
                        failed = true;
                        StepReport::errored(step, e.to_string())
                    }
                };
                sr.duration_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
                on_event(&Event::StepFinished {
                    index: step.index,
                    counts: sr.counts,
                });
                report.steps.push(sr);
            }
        }
    }
    if opts.keep {
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

/// A run id from the clock and process id (6 characters, DNS-label safe).
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    crate::names::run_id_from_seed(seed)
}

/// The `netreach run` command line.
pub mod cli {
    use std::io::IsTerminal;
    use std::path::PathBuf;

    use super::{RunOptions, new_run_id, run_scenario};
    use crate::cluster;
    use crate::exit;
    use crate::names::Naming;
    use crate::report::{self, ScenarioReport};
    use crate::scenario;

    /// Arguments of `netreach run`.
    #[derive(clap::Args, Debug)]
    pub struct RunArgs {
        /// Scenario files or folders of them.
        #[arg(required = true)]
        pub paths: Vec<PathBuf>,
        /// The kubeconfig context to run against. Required: netreach never uses the current
        /// context implicitly.
        #[arg(long, env = "NETREACH_CONTEXT")]
        pub context: Option<String>,
        /// Write a JUnit XML report here.
        #[arg(long, value_name = "FILE")]
        pub junit: Option<PathBuf>,
        /// Write a JSON report here.
        #[arg(long, value_name = "FILE")]
        pub json: Option<PathBuf>,
        /// Use the scenarios' namespace names as they are, instead of `<name>-<run id>`.
        #[arg(long)]
        pub verbatim_namespaces: bool,
    }

    /// Runs `netreach run`; returns the exit code.
    ///
    /// # Errors
    /// When scenarios cannot be listed or reports cannot be written.
    pub fn main(args: &RunArgs) -> anyhow::Result<i32> {
        let Some(context) = args.context.as_deref().filter(|c| !c.is_empty()) else {
            eprintln!(
                "netreach: name the cluster to run against with --context <kubeconfig context> or NETREACH_CONTEXT; \
                 netreach never deploys into the current context implicitly"
            );
            return Ok(exit::USAGE);
        };
        let files = scenario::discover(&args.paths)?;
        if files.is_empty() {
            anyhow::bail!("no scenario files (*.yaml, *.yml) found");
        }
        // Validate everything before touching the cluster.
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut scenarios = Vec::new();
        let mut invalid = 0;
        for f in &files {
            let loaded = scenario::load(f);
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
        let naming = if args.verbatim_namespaces {
            Naming::Verbatim
        } else {
            Naming::PerRun {
                run_id: new_run_id(),
            }
        };
        let opts = RunOptions {
            naming,
            keep: false,
        };
        let mut reports: Vec<ScenarioReport> = Vec::new();
        for s in &scenarios {
            let r = match cluster::connect(context) {
                Ok(mut c) => run_scenario(s, c.as_mut(), &opts, &mut |_| {}),
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
        Ok(report::exit_code(&reports))
    }
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
        RunOptions {
            naming: Naming::PerRun {
                run_id: "abc123".into(),
            },
            keep: false,
        }
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
        // deploy, (apply, probe) x 3, teardown
        assert!(matches!(c.calls[0], Call::Deploy(_)));
        assert_eq!(c.calls.len(), 8);
        assert_eq!(c.calls[7], Call::Teardown);
        // Real names in what reached the cluster.
        let Call::Apply(step2) = &c.calls[3] else {
            panic!("apply expected: {:?}", c.calls[3])
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
