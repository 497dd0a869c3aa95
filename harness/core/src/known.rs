//! Known deviations: cells where a particular enforcer is documented to disagree with the
//! NetworkPolicy specification (and so with a scenario's frozen expectations).
//!
//! The report stays true — such a cell is still a failed cell in text, JSON and JUnit. Only the
//! *test verdict* may accept it, and only when the deviation is listed with its reason, and only
//! while it is still observed: a listed deviation that no longer occurs fails the test, so the
//! list cannot go stale.

use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::report::ScenarioReport;
use crate::verdict::{Observed, Status};

/// Why the list could not be read.
#[derive(Debug, Error)]
pub enum KnownError {
    /// The file could not be read.
    #[error("cannot read known deviations {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid list.
    #[error("known deviations {path} are not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What serde-saphyr said.
        message: String,
    },
}

/// A list of deviations of one enforcer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KnownDeviations {
    /// The enforcer and version the list is about.
    pub enforcer: String,
    /// The deviations.
    pub deviations: Vec<Deviation>,
}

/// One cell of one step of one scenario that the enforcer gets wrong.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// Scenario file stem.
    pub scenario: String,
    /// Step index (1-based).
    pub step: usize,
    /// The cell as reports print it: `np/client -> np/alt 8080/tcp`.
    pub cell: String,
    /// What the enforcer does: `allowed` or `blocked`.
    pub observed: String,
    /// Why, in a sentence.
    pub reason: String,
    /// Where it is documented upstream.
    pub reference: String,
}

impl KnownDeviations {
    /// Reads a list.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, KnownError> {
        let text = std::fs::read_to_string(path).map_err(|source| KnownError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_saphyr::from_str(&text).map_err(|e| KnownError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// How a scenario's report compares with the known deviations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounted {
    /// Failed cells explained by a listed deviation.
    pub known: Vec<String>,
    /// Failed cells no deviation explains.
    pub unexplained: Vec<String>,
    /// Listed deviations of this scenario that did not occur.
    pub not_observed: Vec<String>,
}

impl Accounted {
    /// Whether the test may pass: every failure is known and every known deviation occurred.
    pub fn acceptable(&self) -> bool {
        self.unexplained.is_empty() && self.not_observed.is_empty()
    }
}

fn observed_word(o: Observed) -> &'static str {
    match o {
        Observed::Allowed => "allowed",
        Observed::Blocked => "blocked",
        Observed::DnsFailure => "dns-failure",
        Observed::Unsupported => "unsupported",
        Observed::Error => "error",
    }
}

/// Compares a report's failed cells with the list.
pub fn account(report: &ScenarioReport, known: &KnownDeviations) -> Accounted {
    let mine: Vec<&Deviation> = known
        .deviations
        .iter()
        .filter(|d| d.scenario == report.id)
        .collect();
    let mut out = Accounted::default();
    let mut seen = vec![false; mine.len()];
    for step in &report.steps {
        for r in step.results.iter().filter(|r| r.status == Status::Fail) {
            let cell = r.cell.to_string();
            let hit = mine.iter().position(|d| {
                d.step == step.index && d.cell == cell && d.observed == observed_word(r.observed)
            });
            let line = format!("step {} {cell}: observed {}", step.index, r.observed);
            match hit {
                Some(i) => {
                    seen[i] = true;
                    out.known.push(format!("{line} ({})", mine[i].reason));
                }
                None => out.unexplained.push(line),
            }
        }
    }
    for (d, s) in mine.iter().zip(seen) {
        if !s {
            out.not_observed.push(format!(
                "step {} {} (listed as {}, not observed)",
                d.step, d.cell, d.observed
            ));
        }
    }
    out
}

/// The exit code of a run whose failed cells are checked against `known`, and one line per
/// scenario saying what was accepted or why not.
///
/// A failed scenario counts as passed when every failed cell is a listed deviation and it had no
/// infrastructure error; a listed deviation that did not occur fails an otherwise passing (or
/// unsupported) scenario: the list must not go stale. Used by `netreach run` and the cluster
/// tests alike. Everything else keeps [`crate::report::exit_code`]'s order.
pub fn exit_code_with(reports: &[ScenarioReport], known: &KnownDeviations) -> (i32, Vec<String>) {
    use crate::report::ScenarioStatus;
    let mut lines = Vec::new();
    let mut adjusted = Vec::with_capacity(reports.len());
    for r in reports {
        let a = account(r, known);
        let mut r2 = r.clone();
        if r.status == ScenarioStatus::Failed && a.acceptable() && r.counts.error == 0 {
            r2.status = ScenarioStatus::Passed;
        } else if matches!(
            r.status,
            ScenarioStatus::Passed | ScenarioStatus::Unsupported
        ) && !a.not_observed.is_empty()
        {
            r2.status = ScenarioStatus::Failed;
        }
        for l in &a.known {
            lines.push(format!(
                "known deviation of {} in {}: {l}",
                known.enforcer, r.id
            ));
        }
        if r.status == ScenarioStatus::Failed && !a.acceptable() {
            for l in &a.unexplained {
                lines.push(format!("not a known deviation in {}: {l}", r.id));
            }
        }
        // A scenario that could not run everything (infrastructure error) proves nothing
        // about a deviation it did not see.
        let stale_counts = r.status != ScenarioStatus::Error && r.counts.error == 0;
        for l in a.not_observed.iter().filter(|_| stale_counts) {
            lines.push(format!(
                "known deviation no longer observed in {} (remove it from the list): {l}",
                r.id
            ));
        }
        adjusted.push(r2);
    }
    (crate::report::exit_code(&adjusted), lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    fn list(cell: &str, observed: &str) -> KnownDeviations {
        KnownDeviations {
            enforcer: "test".into(),
            deviations: vec![Deviation {
                scenario: "tiny".into(),
                step: 1,
                cell: cell.into(),
                observed: observed.into(),
                reason: "because".into(),
                reference: "https://example.invalid".into(),
            }],
        }
    }

    #[test]
    fn a_listed_failure_is_known_and_acceptable() {
        let a = account(&testdata::mismatch(), &list("x/a -> x/b 80/tcp", "allowed"));
        assert_eq!(a.known.len(), 1);
        assert!(a.acceptable(), "{a:?}");
    }

    #[test]
    fn unlisted_failures_and_stale_entries_are_not() {
        let a = account(&testdata::mismatch(), &list("x/b -> x/a 80/tcp", "allowed"));
        assert_eq!(
            a.unexplained,
            vec!["step 1 x/a -> x/b 80/tcp: observed allowed".to_owned()]
        );
        assert_eq!(a.not_observed.len(), 1);
        assert!(!a.acceptable());
        // The right cell, but the enforcer now does something else.
        assert!(
            !account(&testdata::mismatch(), &list("x/a -> x/b 80/tcp", "blocked")).acceptable()
        );
        // Nothing failed, but a deviation is listed: stale.
        let clean = testdata::report(|_| crate::outcome::Outcome::TimedOut);
        assert!(!account(&clean, &list("x/a -> x/b 80/tcp", "allowed")).acceptable());
    }

    #[test]
    fn exit_code_accepts_only_listed_failures_that_still_occur() {
        // A run that could not probe (infrastructure error) says nothing about staleness.
        let (code, lines) = exit_code_with(
            &[testdata::infra_error()],
            &list("x/b -> x/a 80/tcp", "allowed"),
        );
        assert_eq!(code, exit::INFRASTRUCTURE);
        assert!(lines.is_empty(), "{lines:?}");
        use crate::exit;
        let listed = list("x/a -> x/b 80/tcp", "allowed");
        let (code, lines) = exit_code_with(&[testdata::mismatch()], &listed);
        assert_eq!(code, exit::SUCCESS);
        assert!(lines[0].starts_with("known deviation of test in tiny: step 1 x/a -> x/b"));
        let (code, lines) = exit_code_with(
            &[testdata::mismatch()],
            &list("x/b -> x/a 80/tcp", "allowed"),
        );
        assert_eq!(code, exit::MISMATCH);
        assert!(lines.iter().any(|l| l.starts_with("not a known deviation")));
        // A passing run with a stale entry fails.
        let clean = testdata::report(|p| {
            if p.cell.from.name == "a"
                && p.cell.to.to_string() == "x/b"
                && matches!(p.action, crate::bind::ProbeAction::Connect { port: 80, .. })
            {
                crate::outcome::Outcome::Refused
            } else {
                crate::outcome::Outcome::Connected
            }
        });
        assert_eq!(clean.status, crate::report::ScenarioStatus::Passed);
        let (code, lines) = exit_code_with(&[clean], &listed);
        assert_eq!(code, exit::MISMATCH);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("no longer observed"), "{lines:?}");
    }
}
