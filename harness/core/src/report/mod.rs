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
}
