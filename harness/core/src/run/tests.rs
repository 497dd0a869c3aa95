//! The runner against the test double: steps, convergence, confirmation, flaky cells,
//! teardown after failures, computed expectations.

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

pub(super) fn opts() -> RunOptions {
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

/// A scenario file of the repository (`rel` from its root), which must be valid.
pub(super) fn load_file(rel: &str) -> Scenario {
    let l = crate::scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel),
    );
    assert!(
        !l.diagnostics.has_errors(),
        "{}",
        l.diagnostics.render(false)
    );
    l.scenario.expect("valid")
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
            Outcome::Error(crate::outcome::ProbeError::Lost {
                detail: "stream closed".into(),
            })
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
        if p.cell.from.name == "a" && p.cell.to.to_string() == "x/b" && want == Outcome::TimedOut {
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

/// A scenario that declares a pod CIDR the real addresses are not in gets a note saying so.
#[test]
fn a_wrong_pod_cidr_declaration_is_noted() {
    let yaml = SCENARIO.replace(
        "version: 1\n",
        "version: 1\ncluster: {podCIDR: 192.168.0.0/16}\n",
    );
    let l = load_str(Path::new("scenarios/t.yaml"), &yaml, &MemReader::default());
    let s = l.scenario.expect("valid");
    let r = run_scenario(&s, &mut FakeCluster::new(correct), &opts(), &mut |_| {});
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(r.notes[0].contains("outside the scenario's declared `cluster.podCIDR`"));
    let ok = run_scenario(
        &scenario(),
        &mut FakeCluster::new(correct),
        &opts(),
        &mut |_| {},
    );
    assert!(ok.notes.is_empty());
}

#[test]
fn loopback_ignore_probes_no_pod_to_itself_and_the_report_counts_without_them() {
    let text = format!("loopback: ignore\n{SCENARIO}");
    let l = load_str(Path::new("scenarios/t.yaml"), &text, &MemReader::default());
    assert!(
        !l.diagnostics.has_errors(),
        "{}",
        l.diagnostics.render(false)
    );
    let s = l.scenario.expect("valid");
    // Two pods, one port: four cells with the diagonal, two without.
    let cells: Vec<String> = s.cells.iter().map(ToString::to_string).collect();
    assert_eq!(cells, ["x/a -> x/b 80/tcp", "x/b -> x/a 80/tcp"]);
    assert!(s.steps.iter().all(|st| {
        st.expected.cells.len() == 2
            && st
                .expected
                .cells
                .keys()
                .all(|k| k.from != *k.to.pod().expect("pod"))
    }));
    let mut c = FakeCluster::new(correct);
    let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
    assert_eq!(r.status, ScenarioStatus::Passed);
    assert_eq!(r.counts.pass, 6, "2 cells x 3 steps");
    assert_eq!(r.counts.total(), 6);
    assert_eq!(c.calls[2], Call::Probe(2));
    // Without the setting, the diagonal is probed (and counted).
    let r = run_scenario(
        &scenario(),
        &mut FakeCluster::new(correct),
        &opts(),
        &mut |_| {},
    );
    assert_eq!(r.counts.total(), 12);
}

#[test]
fn a_step_with_its_own_probes_probes_exactly_those_cells() {
    let s = load_file("fixtures/steps/step-probes.yaml");
    // The scenario's default: 3 sources x (web's 2 ports + db's 1), by IP.
    assert_eq!(s.cells.len(), 9);
    let mut c = FakeCluster::following_spec(&s);
    let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
    assert_eq!(
        r.status,
        ScenarioStatus::Passed,
        "{}",
        crate::report::text::render_scenario(&r)
    );
    let cells = |i: usize| -> Vec<String> {
        r.steps[i]
            .results
            .iter()
            .map(|c| c.cell.to_string())
            .collect()
    };
    assert_eq!(cells(0).len(), 9);
    assert_eq!(
        cells(1),
        [
            "app/client -> app/web 80/tcp",
            "app/client -> app/web 80/tcp via service"
        ]
    );
    assert_eq!(cells(2), cells(0));
    assert!(
        r.steps[1]
            .results
            .iter()
            .all(|c| c.expected.verdict == crate::model::Verdict::Allow)
    );
    // Probe rounds of step 2 carry its two cells; web got a Service for them.
    let probes: Vec<usize> = c
        .calls
        .iter()
        .filter_map(|c| match c {
            Call::Probe(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(probes, [9, 9, 2, 2, 9, 9]);
    let Call::Deploy(plan) = &c.calls[0] else {
        panic!("deploy first")
    };
    let services: Vec<String> = plan
        .pods
        .iter()
        .filter(|p| p.service)
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(services, ["app/web"]);
}
