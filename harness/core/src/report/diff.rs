//! Drift: what changed between two runs, cell by cell, from their JSON reports.
//!
//! A nightly job keeps last night's report and compares tonight's with it: every cell whose
//! observation changed is reported — opened (was blocked, now allowed), closed (was allowed,
//! now blocked) or otherwise changed (an error, a DNS failure, unsupported) — also when both
//! runs passed their expectations (an expectation may be loose, `default: allow`, while the
//! cluster changed). Cells are matched by scenario, step index and cell (`from -> to port via`).
//! Reports are read as JSON values, not as the report types, so an older report still compares.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// Where a cell is: scenario (`group/id`), step index, and the cell as the report writes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CellRef {
    /// `group/id`.
    pub scenario: String,
    /// 1-based step index.
    pub step: u64,
    /// `x/a -> y/b 80/tcp` (with ` via service` and the like where it applies).
    pub cell: String,
}

/// What a run saw of a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// `allowed`, `blocked`, `dns-failure`, `unsupported`, `error`.
    pub observed: String,
    /// The raw outcome class (`connected`, `refused`, `timed-out`, ...).
    pub outcome: String,
}

/// How a cell changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Was blocked, now allowed.
    Opened,
    /// Was allowed, now blocked.
    Closed,
    /// Another change of observation (errors, DNS failures, unsupported).
    Changed,
    /// Only in the new report.
    Added,
    /// Only in the old report.
    Removed,
}

/// One changed cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// How.
    pub kind: ChangeKind,
    /// Which cell.
    #[serde(flatten)]
    pub at: CellRef,
    /// Before (absent for added cells).
    pub before: Option<Seen>,
    /// After (absent for removed cells).
    pub after: Option<Seen>,
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiffError {
    /// Not a netreach JSON report.
    #[error("not a netreach JSON report ({0}): expected `report_version` and `scenarios`")]
    NotAReport(String),
}

/// The cells of a JSON report (`netreach run --json`).
///
/// # Errors
/// When the value is not a netreach report.
pub fn cells(report: &Value) -> Result<BTreeMap<CellRef, Seen>, DiffError> {
    let scenarios = report["scenarios"]
        .as_array()
        .filter(|_| report["report_version"].is_u64())
        .ok_or_else(|| DiffError::NotAReport("no scenarios".into()))?;
    let mut out = BTreeMap::new();
    for s in scenarios {
        let name = format!(
            "{}/{}",
            s["group"].as_str().unwrap_or(""),
            s["id"].as_str().unwrap_or("")
        );
        for st in s["steps"].as_array().into_iter().flatten() {
            let step = st["index"].as_u64().unwrap_or(0);
            for c in st["results"].as_array().into_iter().flatten() {
                let cell = cell_text(&c["cell"]);
                out.insert(
                    CellRef {
                        scenario: name.clone(),
                        step,
                        cell,
                    },
                    Seen {
                        observed: c["observed"].as_str().unwrap_or("").to_owned(),
                        outcome: c["outcome"]["class"].as_str().unwrap_or("").to_owned(),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The cells of a scenario's expectations, as a report of what the specification says
/// (`netreach diff` of two snapshots: what a change of policies or labels opens and closes
/// according to the engine). Cells are keyed by the scenario's id, not its folder, so two
/// snapshots written to different folders compare.
pub fn scenario_cells(s: &crate::model::Scenario) -> BTreeMap<CellRef, Seen> {
    use crate::model::Verdict;
    let mut out = BTreeMap::new();
    for st in &s.steps {
        for (k, e) in &st.expected.cells {
            let observed = match e.verdict {
                Verdict::Allow => "allowed",
                Verdict::Block => "blocked",
                Verdict::Unresolved => "dns-failure",
            };
            out.insert(
                CellRef {
                    scenario: s.id.clone(),
                    step: st.index as u64,
                    cell: k.to_string(),
                },
                Seen {
                    observed: observed.to_owned(),
                    outcome: format!("specification, {}", e.origin.kind),
                },
            );
        }
    }
    out
}

/// A cell's JSON (`{from, to, port, via}`) as one line.
fn cell_text(c: &Value) -> String {
    let part = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => match (
            m.get("ns").and_then(Value::as_str),
            m.get("name").and_then(Value::as_str),
        ) {
            (Some(ns), Some(n)) => format!("{ns}/{n}"),
            _ => v.to_string(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut s = format!("{} -> {}", part(&c["from"]), part(&c["to"]));
    if !c["port"].is_null() {
        let _ = write!(s, " {}", part(&c["port"]));
    }
    if let Some(v) = c["via"].as_str().filter(|v| *v != "ip") {
        let _ = write!(s, " via {v}");
    }
    s
}

/// Every cell whose observation differs between `old` and `new` (by kind, then place).
pub fn diff(old: &BTreeMap<CellRef, Seen>, new: &BTreeMap<CellRef, Seen>) -> Vec<Change> {
    let mut out = Vec::new();
    for (at, before) in old {
        match new.get(at) {
            None => out.push(Change {
                kind: ChangeKind::Removed,
                at: at.clone(),
                before: Some(before.clone()),
                after: None,
            }),
            Some(after) if after.observed != before.observed => out.push(Change {
                kind: match (before.observed.as_str(), after.observed.as_str()) {
                    ("blocked", "allowed") => ChangeKind::Opened,
                    ("allowed", "blocked") => ChangeKind::Closed,
                    _ => ChangeKind::Changed,
                },
                at: at.clone(),
                before: Some(before.clone()),
                after: Some(after.clone()),
            }),
            Some(_) => {}
        }
    }
    for (at, after) in new {
        if !old.contains_key(at) {
            out.push(Change {
                kind: ChangeKind::Added,
                at: at.clone(),
                before: None,
                after: Some(after.clone()),
            });
        }
    }
    out.sort_by(|a, b| (a.kind, &a.at).cmp(&(b.kind, &b.at)));
    out
}

/// Whether a change is drift of reachability (opened, closed, changed), as opposed to the
/// scenarios themselves changing (cells added or removed).
pub fn is_drift(c: &Change) -> bool {
    matches!(
        c.kind,
        ChangeKind::Opened | ChangeKind::Closed | ChangeKind::Changed
    )
}

/// The changes as text, one line each, with a summary line.
pub fn render(changes: &[Change]) -> String {
    let mut out = String::new();
    let n = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    let _ = writeln!(
        out,
        "drift: {} opened, {} closed, {} changed; {} cell(s) added, {} removed",
        n(ChangeKind::Opened),
        n(ChangeKind::Closed),
        n(ChangeKind::Changed),
        n(ChangeKind::Added),
        n(ChangeKind::Removed)
    );
    for c in changes {
        let word = match c.kind {
            ChangeKind::Opened => "OPENED ",
            ChangeKind::Closed => "CLOSED ",
            ChangeKind::Changed => "CHANGED",
            ChangeKind::Added => "ADDED  ",
            ChangeKind::Removed => "REMOVED",
        };
        let show = |s: &Option<Seen>| {
            s.as_ref().map_or_else(
                || "-".to_owned(),
                |s| format!("{} ({})", s.observed, s.outcome),
            )
        };
        let _ = writeln!(
            out,
            "  {word} {} step {} {}: {} -> {}",
            c.at.scenario,
            c.at.step,
            c.at.cell,
            show(&c.before),
            show(&c.after)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(cells: &[(&str, &str, &str)]) -> Value {
        let results: Vec<Value> = cells
            .iter()
            .map(|(to, observed, class)| {
                json!({
                    "cell": {"from": "x/a", "to": format!("x/{to}"), "port": "80/tcp", "via": "ip"},
                    "observed": observed,
                    "outcome": {"class": class},
                })
            })
            .collect();
        json!({
            "report_version": 1,
            "scenarios": [{"group": "scenarios", "id": "t", "steps": [{"index": 1, "results": results}]}]
        })
    }

    #[test]
    fn one_changed_cell_is_named_and_classified() {
        let old = report(&[("b", "blocked", "refused"), ("c", "allowed", "connected")]);
        let new = report(&[("b", "allowed", "connected"), ("c", "allowed", "connected")]);
        let d = diff(
            &cells(&old).expect("a report"),
            &cells(&new).expect("a report"),
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].kind, ChangeKind::Opened);
        assert_eq!(d[0].at.cell, "x/a -> x/b 80/tcp");
        assert!(is_drift(&d[0]));
        let text = render(&d);
        assert!(text.contains("OPENED  scenarios/t step 1 x/a -> x/b 80/tcp: blocked (refused) -> allowed (connected)"), "{text}");
    }

    #[test]
    fn closed_changed_added_and_removed() {
        let old = report(&[
            ("b", "allowed", "connected"),
            ("c", "allowed", "connected"),
            ("d", "allowed", "connected"),
        ]);
        let new = report(&[
            ("b", "blocked", "timed-out"),
            ("c", "error", "error"),
            ("e", "allowed", "connected"),
        ]);
        let d = diff(&cells(&old).expect("ok"), &cells(&new).expect("ok"));
        let kinds: Vec<ChangeKind> = d.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Closed,
                ChangeKind::Changed,
                ChangeKind::Added,
                ChangeKind::Removed
            ]
        );
        assert_eq!(d.iter().filter(|c| is_drift(c)).count(), 2);
        assert!(diff(&cells(&old).expect("ok"), &cells(&old).expect("ok")).is_empty());
    }

    #[test]
    fn a_file_that_is_not_a_report_is_said_so() {
        assert!(cells(&json!({"hello": 1})).is_err());
    }
}
