//! What a valid scenario's expectations amount to against the NetworkPolicy specification, step
//! by step: how many cells were checked, which the specification leaves undecided (and why),
//! and every expectation that contradicts it. `netreach validate` prints it (a line per scenario,
//! or all of it as JSON); the `contradicts-spec` warnings name only the first few per step.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{self, Explanation, World};
use crate::model::{CellKey, Scenario, Verdict};

/// The specification check of one scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecSummary {
    /// `group/id`.
    pub scenario: String,
    /// Cells checked, summed over the steps.
    pub cells: usize,
    /// Cells the specification leaves undecided, summed over the steps.
    pub undecided: usize,
    /// Expectations that contradict the specification, summed over the steps.
    pub contradictions: usize,
    /// Undecided cells by reason (a reason a cell has several of counts once for each).
    pub undecided_reasons: BTreeMap<String, usize>,
    /// Per step.
    pub steps: Vec<StepSummary>,
}

/// One step's part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepSummary {
    /// 1-based.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Cells checked.
    pub cells: usize,
    /// Every undecided cell, with the engine's reasons.
    pub undecided: Vec<Undecided>,
    /// Every contradiction.
    pub contradictions: Vec<Contradiction>,
}

/// A cell the specification does not decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Undecided {
    /// The cell.
    pub cell: CellKey,
    /// Why: the engine's reasons (what depends on the implementation or on addresses).
    pub reasons: Vec<String>,
    /// What the scenario expects of it instead.
    pub expected: Verdict,
}

/// A declared expectation the specification contradicts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contradiction {
    /// The cell.
    pub cell: CellKey,
    /// What the scenario expects.
    pub expected: Verdict,
    /// The entry that decided it (`block at line 12`).
    pub origin: String,
    /// What the specification says.
    pub spec: Verdict,
    /// The engine's reasoning in one line.
    pub why: String,
}

/// The reasons the engine gives for leaving `x` undecided.
fn reasons(x: &Explanation) -> Vec<String> {
    let mut r: Vec<String> = [&x.dns, &x.egress, &x.ingress]
        .into_iter()
        .flatten()
        .flat_map(|s| s.unknown_because.iter().cloned())
        .collect();
    r.dedup();
    if r.is_empty() {
        r.push(x.short());
    }
    r
}

/// Checks every step of `s` against the specification (the state after each step's actions).
pub fn spec_summary(s: &Scenario) -> SpecSummary {
    let worlds = World::per_step(s);
    let mut out = SpecSummary {
        scenario: s.full_name(),
        cells: 0,
        undecided: 0,
        contradictions: 0,
        undecided_reasons: BTreeMap::new(),
        steps: Vec::new(),
    };
    for (step, world) in s.steps.iter().zip(&worlds) {
        let mut st = StepSummary {
            index: step.index,
            name: step.name.clone(),
            cells: step.expected.cells.len(),
            undecided: Vec::new(),
            contradictions: Vec::new(),
        };
        for (cell, e) in &step.expected.cells {
            // A real workload's cells: the live policies around it are not in the scenario, so
            // the specification has no opinion netreach could compute.
            if s.touches_workload(cell) {
                let why = "a real workload: the live cluster's policies are not in the scenario"
                    .to_owned();
                *out.undecided_reasons.entry(why.clone()).or_default() += 1;
                st.undecided.push(Undecided {
                    cell: cell.clone(),
                    reasons: vec![why],
                    expected: e.verdict,
                });
                continue;
            }
            let x = engine::explain(world, cell);
            match x.verdict.expectation() {
                None => {
                    let reasons = reasons(&x);
                    for r in &reasons {
                        *out.undecided_reasons.entry(r.clone()).or_default() += 1;
                    }
                    st.undecided.push(Undecided {
                        cell: cell.clone(),
                        reasons,
                        expected: e.verdict,
                    });
                }
                Some(spec) if spec != e.verdict && e.origin.kind != "computed" => {
                    st.contradictions.push(Contradiction {
                        cell: cell.clone(),
                        expected: e.verdict,
                        origin: e.origin.to_string(),
                        spec,
                        why: x.short(),
                    });
                }
                Some(_) => {}
            }
        }
        out.cells += st.cells;
        out.undecided += st.undecided.len();
        out.contradictions += st.contradictions.len();
        out.steps.push(st);
    }
    out
}

impl SpecSummary {
    /// One line: `scenarios/x: 3 step(s), 48 cell(s) checked against the specification; 2
    /// undecided (2: <reason>); 0 contradiction(s)`, with the three most frequent reasons.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}: {} step(s), {} cell(s) checked against the specification; {} undecided",
            self.scenario,
            self.steps.len(),
            self.cells,
            self.undecided
        );
        if !self.undecided_reasons.is_empty() {
            let mut by: Vec<(&String, &usize)> = self.undecided_reasons.iter().collect();
            by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            const REASONS: usize = 3;
            let shown: Vec<String> = by
                .iter()
                .take(REASONS)
                .map(|(r, n)| format!("{n}: {r}"))
                .collect();
            let more = match by.len().saturating_sub(REASONS) {
                0 => String::new(),
                n => format!("; {n} other reason(s), `--json` gives each cell's"),
            };
            s.push_str(&format!(" ({}{more})", shown.join("; ")));
        }
        s.push_str(&format!("; {} contradiction(s)", self.contradictions));
        s
    }

    /// The contradictions as lines (`step 2: x/a -> x/b 80/tcp: expected block (block at line
    /// 12), the specification says allow: …`), at most `limit` of them (all with `None`), and a
    /// note saying how many were left out.
    pub fn contradiction_lines(&self, limit: Option<usize>) -> Vec<String> {
        let all = self.steps.iter().flat_map(|st| {
            st.contradictions.iter().map(move |c| {
                format!(
                    "  step {}: {}: expected {} ({}), the specification says {}",
                    st.index,
                    c.cell,
                    c.expected.as_str(),
                    c.origin,
                    c.why
                )
            })
        });
        let mut lines: Vec<String> = match limit {
            Some(n) => all.take(n).collect(),
            None => all.collect(),
        };
        if lines.len() < self.contradictions {
            lines.push(format!(
                "  … and {} more contradiction(s) (`--all` lists every one)",
                self.contradictions - lines.len()
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load;
    use std::path::Path;

    #[test]
    fn the_fixture_has_two_undecided_cells_and_eight_contradictions() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/validate/spec-summary.yaml");
        let l = load(&path);
        let s = l.scenario.expect("valid, with contradicts-spec warnings");
        let sum = spec_summary(&s);
        assert_eq!(sum.cells, 20, "9 pod cells and a -> ext:outside, two steps");
        assert_eq!(sum.undecided, 2);
        assert_eq!(sum.contradictions, 8);
        assert_eq!(
            sum.steps
                .iter()
                .map(|st| st.contradictions.len())
                .collect::<Vec<_>>(),
            [2, 6]
        );
        let u = &sum.steps[0].undecided[0];
        assert_eq!(u.cell.to_string(), "app/a -> ext:outside 443/tcp");
        assert!(
            !u.reasons.is_empty() && u.reasons[0].contains("10.244.0.0/16"),
            "{u:?}"
        );
        let c = &sum.steps[0].contradictions[0];
        assert_eq!(c.cell.to_string(), "app/a -> app/b 80/tcp");
        assert_eq!((c.expected, c.spec), (Verdict::Allow, Verdict::Block));
        // Text: a line, then at most five contradictions and a note; all of them on request.
        let line = sum.line();
        assert!(
            line.starts_with("validate/spec-summary: 2 step(s), 20 cell(s) checked against the specification; 2 undecided (2: "),
            "{line}"
        );
        assert!(line.ends_with("; 8 contradiction(s)"), "{line}");
        let five = sum.contradiction_lines(Some(5));
        assert_eq!(five.len(), 6);
        assert!(five[5].contains("… and 3 more contradiction(s) (`--all` lists every one)"));
        assert_eq!(sum.contradiction_lines(None).len(), 8);
    }
}
