//! The rule that turns expectation + outcome into pass / fail / unsupported / error, and the
//! per-step diff built from it.
//!
//! Two steps, both pure:
//! 1. [`observe`] normalises a probe's [`Outcome`] into what it says about reachability
//!    ([`Observed`]): refused counts as blocked only where something is known to listen; a DNS
//!    failure is never folded into "blocked"; a probe error is never a policy result.
//! 2. [`judge`] compares that with the [`Verdict`] expected.

use std::fmt;

use serde::Serialize;

use crate::bind::ProbeAction;
use crate::model::{CellKey, Expected, Verdict};
use crate::outcome::{Observation, Outcome};

/// What an outcome says about reachability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Observed {
    /// The connection (or name resolution) worked.
    Allowed,
    /// It was blocked: timed out, or refused where something is known to listen.
    Blocked,
    /// A connection by name could not start because the name did not resolve: neither allowed
    /// nor proven blocked.
    DnsFailure,
    /// This cluster cannot test the cell.
    Unsupported,
    /// The probe failed for reasons that are not policy.
    Error,
}

impl Observed {
    /// Single-character form for truth tables: `.` allowed, `X` blocked, `D` DNS failure, `U`
    /// unsupported, `E` error.
    pub fn symbol(self) -> char {
        match self {
            Observed::Allowed => '.',
            Observed::Blocked => 'X',
            Observed::DnsFailure => 'D',
            Observed::Unsupported => 'U',
            Observed::Error => 'E',
        }
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Observed::Allowed => "allowed",
            Observed::Blocked => "blocked",
            Observed::DnsFailure => "DNS failure",
            Observed::Unsupported => "unsupported",
            Observed::Error => "error",
        })
    }
}

/// The judgement of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The cluster did what was expected.
    Pass,
    /// The cluster disagrees with the expectation: a policy finding.
    Fail,
    /// The cell could not be tested on this cluster; not a pass.
    Unsupported,
    /// Infrastructure trouble; says nothing about policy.
    Error,
}

/// Normalises an outcome for a probe action. Returns the observation and a short explanation.
pub fn observe(action: &ProbeAction, outcome: &Outcome) -> (Observed, String) {
    use Observed as O;
    match action {
        ProbeAction::Connect { served, .. } => match outcome {
            Outcome::Connected => (O::Allowed, "connected".into()),
            Outcome::TimedOut => (O::Blocked, "timed out".into()),
            Outcome::Refused if *served => {
                (O::Blocked, "refused on a port that is served: rejected by policy".into())
            }
            Outcome::Refused => (
                O::Error,
                "refused on a port nothing is known to serve: cannot tell a policy REJECT from no listener".into(),
            ),
            Outcome::DnsFailure(r) => (O::DnsFailure, format!("name did not resolve ({r}); the connection was never tried")),
            Outcome::Unsupported(r) => (O::Unsupported, r.clone()),
            Outcome::Error(e) => (O::Error, e.to_string()),
            Outcome::Resolved | Outcome::NameNotFound => {
                (O::Error, format!("prober returned `{outcome}` for a connection probe"))
            }
        },
        ProbeAction::Resolve { .. } => match outcome {
            Outcome::Resolved => (O::Allowed, "resolved".into()),
            Outcome::TimedOut => (O::Blocked, "no DNS answer before the timeout".into()),
            Outcome::Refused => (O::Blocked, "DNS query refused: rejected by policy".into()),
            Outcome::NameNotFound => (
                O::Error,
                "DNS answered that the name does not exist: the name is wrong, which says nothing about policy".into(),
            ),
            Outcome::Unsupported(r) => (O::Unsupported, r.clone()),
            Outcome::Error(e) => (O::Error, e.to_string()),
            Outcome::DnsFailure(r) => (O::Error, r.clone()),
            Outcome::Connected => (O::Error, "prober returned `connected` for a resolution probe".into()),
        },
    }
}

/// Compares what was expected with what was observed.
pub fn judge(expected: Verdict, observed: Observed) -> Status {
    match (expected, observed) {
        (_, Observed::Unsupported) => Status::Unsupported,
        (_, Observed::Error) => Status::Error,
        (Verdict::Allow, Observed::Allowed)
        | (Verdict::Block, Observed::Blocked)
        | (Verdict::Unresolved, Observed::DnsFailure) => Status::Pass,
        (Verdict::Allow, Observed::Blocked) | (Verdict::Block, Observed::Allowed) => Status::Fail,
        (Verdict::Unresolved, Observed::Allowed | Observed::Blocked) => Status::Fail,
        (_, Observed::DnsFailure) => Status::Fail,
    }
}

/// One judged cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CellResult {
    /// The cell.
    pub cell: CellKey,
    /// What was expected, and why.
    pub expected: Expected,
    /// What the outcome says.
    pub observed: Observed,
    /// The raw outcome.
    pub outcome: Outcome,
    /// Explanation of `observed`.
    pub why: String,
    /// The judgement.
    pub status: Status,
    /// How the probe ran (repro command, exit code, time).
    pub detail: crate::outcome::ProbeDetail,
    /// The answer changed between the round that settled the step and the confirmation round.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
    /// What the NetworkPolicy specification says (the policy engine, with the run's addresses),
    /// and why: the third opinion next to the expectation and the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecOpinion>,
}

/// The specification's verdict on a cell, as recorded in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecOpinion {
    /// `allow`, `block`, `unresolved` or `unspecified`.
    pub verdict: crate::engine::Spec,
    /// The engine's reasons in one line.
    pub why: String,
}

impl CellResult {
    /// Who disagrees with whom, for a cell whose expectation and observation are known: `None`
    /// when all three agree or the specification has no say.
    pub fn three_way(&self) -> Option<&'static str> {
        let spec = self.spec.as_ref()?.verdict.expectation()?;
        // Only a decided observation takes part (not unsupported, not an error).
        let obs_ok = match judge(spec, self.observed) {
            Status::Pass => true,
            Status::Fail => false,
            Status::Unsupported | Status::Error => return None,
        };
        let exp_ok = self.expected.verdict == spec;
        match (exp_ok, obs_ok) {
            (true, true) => None,
            (true, false) => Some("the cluster disagrees with the specification"),
            (false, true) => {
                Some("the expectation disagrees with the specification; the cluster follows it")
            }
            (false, false) => {
                Some("the expectation and the cluster both disagree with the specification")
            }
        }
    }
}

/// Judges one cell.
pub fn judge_cell(
    cell: &CellKey,
    expected: &Expected,
    action: &ProbeAction,
    obs: &Observation,
) -> CellResult {
    let (observed, why) = observe(action, &obs.outcome);
    CellResult {
        cell: cell.clone(),
        expected: expected.clone(),
        observed,
        outcome: obs.outcome.clone(),
        why,
        status: judge(expected.verdict, observed),
        detail: obs.detail.clone(),
        flaky: false,
        spec: None,
    }
}

/// Counts by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Passed cells.
    pub pass: usize,
    /// Failed cells (mismatches).
    pub fail: usize,
    /// Unsupported cells.
    pub unsupported: usize,
    /// Cells with infrastructure errors.
    pub error: usize,
}

impl Counts {
    /// Counts a list of results.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CellResult>) -> Counts {
        let mut c = Counts::default();
        for r in results {
            c.add(r.status);
        }
        c
    }

    /// Adds one.
    pub fn add(&mut self, s: Status) {
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Unsupported => self.unsupported += 1,
            Status::Error => self.error += 1,
        }
    }

    /// Adds another count.
    pub fn merge(&mut self, o: Counts) {
        self.pass += o.pass;
        self.fail += o.fail;
        self.unsupported += o.unsupported;
        self.error += o.error;
    }

    /// Total cells.
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.unsupported + self.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn connect(served: bool) -> ProbeAction {
        ProbeAction::Connect {
            host: "10.0.0.1".into(),
            port: 80,
            protocol: Protocol::Tcp,
            served,
        }
    }

    fn resolve() -> ProbeAction {
        ProbeAction::Resolve {
            name: "kubernetes.default".into(),
        }
    }

    /// One row per (action, outcome): the observation, then the status under allow and block.
    #[test]
    fn outcome_rule_table() {
        use Observed as O;
        use Status::*;
        let cases: Vec<(ProbeAction, Outcome, O, Status, Status)> = vec![
            (connect(true), Outcome::Connected, O::Allowed, Pass, Fail),
            (connect(true), Outcome::TimedOut, O::Blocked, Fail, Pass),
            // Refused on a served port: blocked (kube-router REJECTs).
            (connect(true), Outcome::Refused, O::Blocked, Fail, Pass),
            // Refused where nothing is known to listen: cannot decide.
            (connect(false), Outcome::Refused, O::Error, Error, Error),
            // DNS failure is never "blocked".
            (
                connect(true),
                Outcome::DnsFailure("SERVFAIL".into()),
                O::DnsFailure,
                Fail,
                Fail,
            ),
            // Unsupported is never a pass.
            (
                connect(true),
                Outcome::Unsupported("no SCTP".into()),
                O::Unsupported,
                Unsupported,
                Unsupported,
            ),
            (
                connect(true),
                Outcome::Error(crate::outcome::ProbeError::Lost {
                    detail: "stream closed".into(),
                }),
                O::Error,
                Error,
                Error,
            ),
            (connect(true), Outcome::Resolved, O::Error, Error, Error),
            (resolve(), Outcome::Resolved, O::Allowed, Pass, Fail),
            (resolve(), Outcome::TimedOut, O::Blocked, Fail, Pass),
            (resolve(), Outcome::Refused, O::Blocked, Fail, Pass),
            (resolve(), Outcome::NameNotFound, O::Error, Error, Error),
            (
                resolve(),
                Outcome::Error(crate::outcome::ProbeError::PodNotLive {
                    pod: "x-1/b".into(),
                    what: "was deleted".into(),
                }),
                O::Error,
                Error,
                Error,
            ),
            (resolve(), Outcome::Connected, O::Error, Error, Error),
            (
                resolve(),
                Outcome::Unsupported("x".into()),
                O::Unsupported,
                Unsupported,
                Unsupported,
            ),
        ];
        for (action, outcome, want_obs, if_allow, if_block) in cases {
            let (obs, why) = observe(&action, &outcome);
            assert_eq!(obs, want_obs, "{action:?} {outcome:?}");
            assert!(!why.is_empty());
            assert_eq!(
                judge(Verdict::Allow, obs),
                if_allow,
                "allow {action:?} {outcome:?}"
            );
            assert_eq!(
                judge(Verdict::Block, obs),
                if_block,
                "block {action:?} {outcome:?}"
            );
        }
    }

    #[test]
    fn counts() {
        let mut c = Counts::default();
        for s in [
            Status::Pass,
            Status::Pass,
            Status::Fail,
            Status::Error,
            Status::Unsupported,
        ] {
            c.add(s);
        }
        assert_eq!(
            c,
            Counts {
                pass: 2,
                fail: 1,
                unsupported: 1,
                error: 1
            }
        );
        assert_eq!(c.total(), 5);
    }
}
