//! Reports: the data a run produces, and its renderings (text with truth tables, JSON, JUnit,
//! a self-contained HTML page and SVG graphs).
//!
//! Pure: reports are values; renderers return strings. Writing files is the caller's business.

pub mod diff;
pub mod html;
pub mod json;
pub mod junit;
pub mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::cluster::DeployPlan;
use crate::exit;
use crate::model::{Scenario, Step};
use crate::verdict::{CellResult, Counts, Status};

/// How a scenario ended, most important first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioStatus {
    /// Some cell disagreed with its expectation.
    Failed,
    /// Infrastructure trouble kept some cells from being decided.
    Error,
    /// Everything decided agreed, but some cells cannot be tested on this cluster.
    Unsupported,
    /// Every cell agreed.
    Passed,
}

/// One step's results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// 1-based index.
    pub index: usize,
    /// Name.
    pub name: String,
    /// Line in the scenario file.
    pub line: usize,
    /// Whether it ran (steps after an infrastructure failure do not).
    pub ran: bool,
    /// Infrastructure error that ended the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Counts by status.
    pub counts: Counts,
    /// Wall time.
    pub duration_ms: u64,
    /// Probe rounds (first, re-probes of disagreeing cells, confirmation).
    pub rounds: usize,
    /// Time from the step's changes until every cell agreed (absent: never within the deadline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converge_ms: Option<u64>,
    /// Every judged cell.
    pub results: Vec<CellResult>,
    /// For a step that changes live namespaces' policies (candidates): what it opened and
    /// closed, compared with the step before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveChange>,
}

/// What a candidate step changed in live namespaces, cell by cell, against the step before.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveChange {
    /// The live namespaces whose policies the step changed.
    pub namespaces: Vec<String>,
    /// The step compared with (absent: it is the first step, so there is no "before").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_step: Option<usize>,
    /// Cells blocked before and allowed with the candidate.
    pub opened: Vec<String>,
    /// Cells allowed before and blocked with the candidate.
    pub closed: Vec<String>,
    /// Cells probed in both steps whose observation stayed allowed or blocked.
    pub unchanged: usize,
}

impl LiveChange {
    /// Compares a candidate step's results with the step before's (cells probed in both,
    /// observed allowed or blocked in both).
    pub fn between(
        namespaces: Vec<String>,
        before: Option<&StepReport>,
        after: &StepReport,
    ) -> LiveChange {
        let mut out = LiveChange {
            namespaces,
            before_step: before.map(|b| b.index),
            ..LiveChange::default()
        };
        let Some(before) = before else {
            return out;
        };
        let was: BTreeMap<&crate::model::CellKey, crate::verdict::Observed> = before
            .results
            .iter()
            .map(|r| (&r.cell, r.observed))
            .collect();
        use crate::verdict::Observed::{Allowed, Blocked};
        for r in &after.results {
            match (was.get(&r.cell), r.observed) {
                (Some(Blocked), Allowed) => out.opened.push(r.cell.to_string()),
                (Some(Allowed), Blocked) => out.closed.push(r.cell.to_string()),
                (Some(Allowed), Allowed) | (Some(Blocked), Blocked) => out.unchanged += 1,
                _ => {}
            }
        }
        out
    }
}

impl StepReport {
    /// A step that ran.
    pub fn ran(step: &Step, results: Vec<CellResult>) -> Self {
        StepReport {
            index: step.index,
            name: step.name.clone(),
            line: step.line,
            ran: true,
            error: None,
            counts: Counts::of(&results),
            duration_ms: 0,
            rounds: 0,
            converge_ms: None,
            results,
            live: None,
        }
    }

    /// A step that an infrastructure error ended.
    pub fn errored(step: &Step, error: String) -> Self {
        StepReport {
            error: Some(error),
            results: Vec::new(),
            ..StepReport::ran(step, Vec::new())
        }
    }

    /// A step that did not run.
    pub fn not_run(step: &Step) -> Self {
        StepReport {
            ran: false,
            ..StepReport::ran(step, Vec::new())
        }
    }

    /// Whether every cell passed and nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.ran
            && self.error.is_none()
            && self.counts.pass == self.counts.total()
            && !self.results.iter().any(|r| r.flaky)
    }

    /// The results with this status.
    pub fn with_status(&self, s: Status) -> impl Iterator<Item = &CellResult> {
        self.results.iter().filter(move |r| r.status == s)
    }
}

/// One scenario's results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScenarioReport {
    /// File stem.
    pub id: String,
    /// Folder.
    pub group: String,
    /// Title.
    pub title: String,
    /// File.
    pub path: PathBuf,
    /// Run id (labels what the run created).
    pub run_id: String,
    /// The probe timeout in seconds: a connection with no answer within it is "blocked".
    pub probe_timeout_s: u32,
    /// Logical to real namespace names.
    pub namespaces: Vec<(String, String)>,
    /// The node each probe pod ran on (`ns/pod` in logical names -> node), once deployed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, String>,
    /// Infrastructure error that kept the scenario from running (deploy, connect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Cleanup failure: namespaces may be left over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teardown_error: Option<String>,
    /// Whether the deployment was kept on purpose.
    pub kept: bool,
    /// Things worth knowing that are neither results nor errors (e.g. a declared pod CIDR the
    /// real pod addresses are outside of).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Steps in order.
    pub steps: Vec<StepReport>,
    /// Totals over steps.
    pub counts: Counts,
    /// Outcome.
    pub status: ScenarioStatus,
    /// Wall time.
    pub duration_ms: u64,
}

impl ScenarioReport {
    /// Where the pods ran, node by node (`node -> [ns/pod, …]`, both sorted).
    pub fn pods_by_node(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (pod, node) in &self.nodes {
            by.entry(node).or_default().push(pod);
        }
        by
    }

    /// An empty report for a scenario about to run.
    pub fn new(s: &Scenario, plan: &DeployPlan) -> Self {
        ScenarioReport {
            id: s.id.clone(),
            group: s.group.clone(),
            title: s.title.clone(),
            path: s.path.clone(),
            run_id: plan.run_id.clone(),
            probe_timeout_s: crate::probe::ProbeTimeout::default().0,
            namespaces: plan
                .names
                .iter()
                .map(|(l, r)| (l.to_owned(), r.to_owned()))
                .collect(),
            nodes: BTreeMap::new(),
            error: None,
            teardown_error: None,
            notes: Vec::new(),
            kept: false,
            steps: Vec::new(),
            counts: Counts::default(),
            status: ScenarioStatus::Passed,
            duration_ms: 0,
        }
    }

    /// A scenario that could not start (e.g. the cluster is unreachable).
    pub fn not_run(s: &Scenario, error: String) -> Self {
        let plan = DeployPlan::new(s, &crate::names::Naming::Verbatim, "");
        let mut r = ScenarioReport::new(s, &plan);
        r.namespaces.clear();
        r.error = Some(error);
        r.steps = s.steps.iter().map(StepReport::not_run).collect();
        r.finish();
        r
    }

    /// `group/id`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }

    /// Computes totals and status from the steps.
    pub fn finish(&mut self) {
        let mut c = Counts::default();
        for s in &self.steps {
            c.merge(s.counts);
        }
        self.counts = c;
        let infra = self.error.is_some()
            || self.teardown_error.is_some()
            || self.steps.iter().any(|s| s.error.is_some());
        self.status = if c.fail > 0 {
            ScenarioStatus::Failed
        } else if infra || c.error > 0 {
            ScenarioStatus::Error
        } else if c.unsupported > 0 {
            ScenarioStatus::Unsupported
        } else {
            ScenarioStatus::Passed
        };
    }
}

/// The process exit code for a set of reports (see [`crate::exit`] for the precedence).
pub fn exit_code(reports: &[ScenarioReport]) -> i32 {
    let has = |st: ScenarioStatus| reports.iter().any(|r| r.status == st);
    if has(ScenarioStatus::Failed) {
        exit::MISMATCH
    } else if has(ScenarioStatus::Error) {
        exit::INFRASTRUCTURE
    } else if has(ScenarioStatus::Unsupported) {
        exit::UNSUPPORTED
    } else {
        exit::SUCCESS
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    //! Reports built by running a small scenario through the fake cluster.

    use std::path::Path;

    use super::ScenarioReport;
    use crate::bind::ProbeAction;
    use crate::cluster::fake::FakeCluster;
    use crate::names::Naming;
    use crate::outcome::Outcome;
    use crate::run::{RunOptions, run_scenario};
    use crate::scenario::{MemReader, load_str};

    pub const SCENARIO: &str = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, ports: [80/tcp]}
  - {name: b, namespace: x, ports: [80/tcp, 53/udp]}
steps:
  - name: deny into b
    expect:
      - default: allow
      - table:
          port: 80/tcp
          rows: |
            -   x/a x/b
            x/a .   X
            x/b .   .
"#;

    /// Runs the scenario with `respond` deciding outcomes.
    pub fn report(
        respond: impl FnMut(&crate::bind::BoundProbe) -> Outcome + Send + 'static,
    ) -> ScenarioReport {
        let l = load_str(
            Path::new("scenarios/tiny.yaml"),
            SCENARIO,
            &MemReader::default(),
        );
        let s = l
            .scenario
            .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
        let mut respond = respond;
        let mut c = FakeCluster::new(move |p, _| respond(p));
        let opts = RunOptions::fast(Naming::PerRun {
            run_id: "r1d2e3".into(),
        });
        let mut r = run_scenario(&s, &mut c, &opts, &mut |_| {});
        // Fixed durations and a repro command, for stable snapshots.
        r.duration_ms = 1234;
        for st in &mut r.steps {
            st.duration_ms = 1000;
            for c in &mut st.results {
                c.detail.command = Some(format!(
                    "kubectl exec -n x-r1d2e3 {} -- nc -z -w 1 <ip> 80",
                    c.cell.from.name
                ));
                c.detail.elapsed_ms = Some(3);
            }
        }
        r
    }

    /// A cluster that lets everything through: x/a -> x/b 80 is a mismatch.
    pub fn mismatch() -> ScenarioReport {
        report(|_| Outcome::Connected)
    }

    /// A correct cluster, except that x/b -> x/a's exec was lost.
    pub fn infra_error() -> ScenarioReport {
        report(|p| {
            if p.cell.from.name == "b" && p.cell.to.to_string() == "x/a" {
                Outcome::Error(crate::outcome::ProbeError::Lost {
                    detail: "stream closed".into(),
                })
            } else if p.cell.from.name == "a"
                && p.cell.to.to_string() == "x/b"
                && matches!(p.action, ProbeAction::Connect { port: 80, .. })
            {
                Outcome::Refused
            } else {
                Outcome::Connected
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_exit_code_precedence() {
        let fail = testdata::mismatch();
        let err = testdata::infra_error();
        assert_eq!(fail.status, ScenarioStatus::Failed);
        assert_eq!(err.status, ScenarioStatus::Error);
        assert_eq!(exit_code(&[fail.clone(), err.clone()]), exit::MISMATCH);
        assert_eq!(exit_code(std::slice::from_ref(&err)), exit::INFRASTRUCTURE);
        let mut unsup = err.clone();
        for st in &mut unsup.steps {
            for c in &mut st.results {
                if c.status == Status::Error {
                    c.status = Status::Unsupported;
                }
            }
            st.counts = Counts::of(&st.results);
        }
        unsup.finish();
        assert_eq!(unsup.status, ScenarioStatus::Unsupported);
        assert_eq!(exit_code(&[unsup]), exit::UNSUPPORTED);
        assert_eq!(exit_code(&[]), exit::SUCCESS);
    }

    #[test]
    fn a_candidate_step_reports_what_it_opened_and_closed_against_the_step_before() {
        use crate::verdict::Observed;
        let mut before = testdata::mismatch().steps[0].clone();
        assert!(before.results.len() >= 4, "the fixture probes enough cells");
        for (i, r) in before.results.iter_mut().enumerate() {
            r.observed = if i % 2 == 0 {
                Observed::Allowed
            } else {
                Observed::Blocked
            };
        }
        let mut after = before.clone();
        after.index = 2;
        // Cell 0 closes, cell 1 opens, cell 2 becomes an error (not compared), the rest stay.
        after.results[0].observed = Observed::Blocked;
        after.results[1].observed = Observed::Allowed;
        after.results[2].observed = Observed::Error;
        let cell = |i: usize| before.results[i].cell.to_string();
        let l = LiveChange::between(vec!["prod".into()], Some(&before), &after);
        assert_eq!(l.before_step, Some(1));
        assert_eq!(l.opened, [cell(1)]);
        assert_eq!(l.closed, [cell(0)]);
        // The error cell is neither opened, closed nor unchanged.
        assert_eq!(l.unchanged, before.results.len() - 3);
        after.live = Some(l);
        let mut text = String::new();
        crate::report::text::render_step(&mut text, &after);
        assert!(
            text.contains("candidate policies in live namespace(s) prod, against step 1: 1 cell(s) opened, 1 closed"),
            "{text}"
        );
        assert!(text.contains(&format!("closed {}", cell(0))), "{text}");
        // The first step has nothing to compare with, and says so.
        let first = LiveChange::between(vec!["prod".into()], None, &before);
        assert_eq!((first.before_step, first.opened.len()), (None, 0));
    }
}
