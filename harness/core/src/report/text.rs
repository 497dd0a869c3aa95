//! Plain-text reports: a line per scenario, and for every step that did not pass cleanly the
//! expected / observed / comparison truth tables (the Kubernetes netpol e2e suite's form) and
//! each disagreeing cell with its reason and a command that reproduces it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{ScenarioReport, ScenarioStatus, StepReport};
use crate::model::{PortProto, Target, Verdict, Via};
use crate::verdict::{CellResult, Status};

/// The legend printed under comparison tables.
pub const LEGEND: &str = "expected/observed: . allowed, X blocked, D DNS failure, U unsupported, E probe error; \
comparison: . agrees, X disagrees, U unsupported, E error";

/// How much a text report says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// Also the expected and observed tables, and each probe's time, exit code and output.
    pub verbose: bool,
}

/// One scenario, compact: a headline, then for every step that is not clean its disagreeing
/// cells first (grouped, each with its origin and repro command), then its comparison table.
pub fn render_scenario(r: &ScenarioReport) -> String {
    render_scenario_with(r, TextOptions::default())
}

/// [`render_scenario`] with options (`--verbose`).
pub fn render_scenario_with(r: &ScenarioReport, o: TextOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(r));
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  error: {e}");
    }
    for n in &r.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    // Where the pods ran, when it may matter (a cell disagrees) or is asked for: enforcers
    // differ between same-node and cross-node paths.
    if !r.nodes.is_empty() && (o.verbose || r.status != ScenarioStatus::Passed) {
        let nodes: Vec<String> = r
            .pods_by_node()
            .iter()
            .map(|(n, pods)| format!("{n} ({})", pods.join(", ")))
            .collect();
        let _ = writeln!(out, "  nodes: {}", nodes.join("; "));
    }
    for s in &r.steps {
        render_step_with(&mut out, s, o);
    }
    if let Some(e) = &r.teardown_error {
        let _ = writeln!(
            out,
            "  cleanup error: {e} (namespaces of run {} may be left over)",
            r.run_id
        );
    }
    if r.kept && !r.namespaces.is_empty() {
        let names: Vec<&str> = r.namespaces.iter().map(|(_, real)| real.as_str()).collect();
        let _ = writeln!(out, "  kept namespaces: {}", names.join(", "));
    }
    out
}

/// `PASS scenarios/x: 3 steps, 45 cells: 45 pass (1.2 s)`.
pub fn headline(r: &ScenarioReport) -> String {
    let word = match r.status {
        ScenarioStatus::Passed => "PASS",
        ScenarioStatus::Failed => "FAIL",
        ScenarioStatus::Error => "ERROR",
        ScenarioStatus::Unsupported => "UNSUPPORTED",
    };
    let c = r.counts;
    let mut parts = vec![format!("{} pass", c.pass)];
    for (n, what) in [
        (c.fail, "fail"),
        (c.error, "error"),
        (c.unsupported, "unsupported"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!(
        "{word} {}: {} step(s), {} cell(s): {} ({:.1} s)",
        r.full_name(),
        r.steps.len(),
        c.total(),
        parts.join(", "),
        r.duration_ms as f64 / 1000.0
    )
}

/// The details of one step (nothing for a clean step but one line).
pub fn render_step(out: &mut String, s: &StepReport) {
    render_step_with(out, s, TextOptions::default());
}

/// [`render_step`] with options.
pub fn render_step_with(out: &mut String, s: &StepReport, o: TextOptions) {
    let title = format!("step {} \"{}\"", s.index, s.name);
    if !s.ran {
        let _ = writeln!(out, "  {title}: not run");
        return;
    }
    if let Some(e) = &s.error {
        let _ = writeln!(out, "  {title}: error: {e}");
        return;
    }
    let timing = match s.converge_ms {
        Some(ms) if s.rounds > 0 => format!(
            ", agreed after {:.1} s, {} round(s)",
            ms as f64 / 1000.0,
            s.rounds
        ),
        None if s.rounds > 0 => {
            format!(", did not agree within the deadline, {} round(s)", s.rounds)
        }
        _ => String::new(),
    };
    if s.is_clean() {
        let _ = writeln!(out, "  {title}: {} cell(s) agree{timing}", s.counts.pass);
        render_live(out, s);
        render_agreeing_against_spec(out, s);
        return;
    }
    let c = s.counts;
    let _ = writeln!(
        out,
        "  {title}: {} of {} cell(s) disagree, {} error(s), {} unsupported{timing}",
        c.fail,
        c.total(),
        c.error,
        c.unsupported
    );
    let bad: Vec<&CellResult> = s
        .results
        .iter()
        .filter(|r| r.status != Status::Pass || r.flaky)
        .collect();
    for group in group_cells(&bad) {
        render_group(out, &group, o);
    }
    render_live(out, s);
    render_agreeing_against_spec(out, s);
    for (group, cells) in groups(&s.results) {
        if cells.iter().all(|r| r.status == Status::Pass) {
            continue;
        }
        let _ = writeln!(out, "    {group}:");
        render_tables(out, &cells, o);
    }
    let _ = writeln!(
        out,
        "    ({})",
        if o.verbose {
            LEGEND
        } else {
            "comparison: . agrees, X disagrees, U unsupported, E error; --verbose adds the expected and observed tables"
        }
    );
}

/// A candidate step's change to live namespaces: the cells it opened and closed.
fn render_live(out: &mut String, s: &StepReport) {
    let Some(l) = &s.live else {
        return;
    };
    let ns = l.namespaces.join(", ");
    let Some(before) = l.before_step else {
        let _ = writeln!(
            out,
            "    candidate policies in live namespace(s) {ns}: no step before this one to compare with (add a step that probes the namespace as it is)"
        );
        return;
    };
    let _ = writeln!(
        out,
        "    candidate policies in live namespace(s) {ns}, against step {before}: {} cell(s) opened, {} closed, {} unchanged",
        l.opened.len(),
        l.closed.len(),
        l.unchanged
    );
    for c in &l.opened {
        let _ = writeln!(out, "      opened {c}");
    }
    for c in &l.closed {
        let _ = writeln!(out, "      closed {c}");
    }
}

/// Cells that disagree the same way into the same target (same expectation and its origin,
/// same observation): one line for all their sources.
fn group_cells<'a>(cells: &[&'a CellResult]) -> Vec<Vec<&'a CellResult>> {
    let mut groups: Vec<Vec<&CellResult>> = Vec::new();
    for &c in cells {
        let key = |r: &CellResult| {
            (
                r.flaky,
                r.status,
                r.cell.to.to_string(),
                r.cell.port,
                r.cell.via,
                r.expected.verdict,
                r.expected.origin.to_string(),
                r.observed,
                r.why.clone(),
            )
        };
        match groups.iter_mut().find(|g| key(g[0]) == key(c)) {
            Some(g) => g.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups
}

/// One group of disagreeing cells: a line, the specification's view and the first cell's repro.
fn render_group(out: &mut String, g: &[&CellResult], o: TextOptions) {
    if g.len() == 1 || o.verbose {
        for r in g {
            render_cell_with(out, r, o);
        }
        return;
    }
    let r = g[0];
    let froms: Vec<String> = g.iter().map(|c| c.cell.from.to_string()).collect();
    let shown = if froms.len() > 6 {
        format!("{}, … ({} sources)", froms[..5].join(", "), froms.len())
    } else {
        froms.join(", ")
    };
    let head = tag(r);
    let cell = r.cell.to_string();
    let rest = cell
        .split_once(" -> ")
        .map_or(cell.as_str(), |(_, rest)| rest)
        .to_owned();
    let _ = writeln!(
        out,
        "    {head} {} cells {{{shown}}} -> {rest}: expected {} ({}), observed {} ({})",
        g.len(),
        verdict_word(r.expected.verdict),
        r.expected.origin,
        r.observed,
        r.why
    );
    if let Some(spec) = &r.spec {
        let who = r.three_way().map_or(String::new(), |w| format!(" → {w}"));
        let _ = writeln!(out, "      specification: {}{who}", spec.why);
    }
    if let Some(cmd) = &r.detail.command {
        let _ = writeln!(out, "      repro ({}): {cmd}", r.cell.from);
    }
}

fn tag(r: &CellResult) -> &'static str {
    match r.status {
        _ if r.flaky => "FLAKY",
        Status::Pass => "PASS",
        Status::Fail => "MISMATCH",
        Status::Unsupported => "UNSUPPORTED",
        Status::Error => "ERROR",
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allowed",
        Verdict::Block => "blocked",
        Verdict::Unresolved => "unresolved",
    }
}

/// Passing cells where the expectation and the cluster agree with each other but not with the
/// specification: the scenario and the enforcer may share a mistake.
fn render_agreeing_against_spec(out: &mut String, s: &StepReport) {
    let odd: Vec<&CellResult> = s
        .results
        .iter()
        .filter(|r| r.status == Status::Pass && r.three_way().is_some())
        .collect();
    if odd.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "    {} passing cell(s) where the expectation and the cluster agree but the specification does not:",
        odd.len()
    );
    for r in odd.iter().take(10) {
        let why = r.spec.as_ref().map_or("", |s| s.why.as_str());
        let _ = writeln!(out, "      {}: {why}", r.cell);
    }
}

/// One non-passing cell: what, expected (and why), observed (and why), repro command.
pub fn render_cell(out: &mut String, r: &CellResult) {
    render_cell_with(out, r, TextOptions { verbose: true });
}

fn render_cell_with(out: &mut String, r: &CellResult, o: TextOptions) {
    let _ = writeln!(
        out,
        "    {} {}: expected {} ({}), observed {} ({})",
        tag(r),
        r.cell,
        verdict_word(r.expected.verdict),
        r.expected.origin,
        r.observed,
        r.why
    );
    if o.verbose {
        let mut facts = Vec::new();
        if let Some(ms) = r.detail.elapsed_ms {
            facts.push(format!("{ms} ms"));
        }
        if let Some(code) = r.detail.exit_code {
            facts.push(format!("exit {code}"));
        }
        if !facts.is_empty() {
            let _ = writeln!(out, "      probe: {}", facts.join(", "));
        }
        if let Some(out_line) = &r.detail.output {
            let _ = writeln!(out, "      output: {out_line}");
        }
    }
    if let Some(spec) = &r.spec {
        let who = r.three_way().map_or(String::new(), |w| format!(" → {w}"));
        let _ = writeln!(out, "      specification: {}{who}", spec.why);
    }
    if let Some(cmd) = &r.detail.command {
        let _ = writeln!(out, "      repro: {cmd}");
    }
}

/// Sort key of a table group: resolution cells last, then port and route.
type GroupKey = (u8, Option<PortProto>, Option<Via>);

/// Groups cells by port and route: `80/tcp via ip`, `dns`.
fn groups(results: &[CellResult]) -> BTreeMap<String, Vec<&CellResult>> {
    let mut g: BTreeMap<GroupKey, Vec<&CellResult>> = BTreeMap::new();
    for r in results {
        let kind = u8::from(matches!(r.cell.to, Target::Name(_)));
        g.entry((kind, r.cell.port, r.cell.via))
            .or_default()
            .push(r);
    }
    g.into_iter()
        .map(|((kind, port, via), v)| {
            let name = if kind == 1 {
                "name resolution".to_owned()
            } else {
                format!(
                    "{} via {}",
                    port.map_or_else(|| "?".to_owned(), |p| p.to_string()),
                    via.map_or("ip", Via::as_str)
                )
            };
            (name, v)
        })
        .collect()
}

/// The comparison table for one group (verbose: expected and observed too).
fn render_tables(out: &mut String, cells: &[&CellResult], o: TextOptions) {
    let rows: BTreeSet<String> = cells.iter().map(|r| r.cell.from.to_string()).collect();
    let cols: BTreeSet<String> = cells.iter().map(|r| r.cell.to.to_string()).collect();
    let by: BTreeMap<(String, String), &CellResult> = cells
        .iter()
        .map(|r| ((r.cell.from.to_string(), r.cell.to.to_string()), *r))
        .collect();
    let rows: Vec<String> = rows.into_iter().collect();
    let cols: Vec<String> = cols.into_iter().collect();
    let table = |title: &str, sym: &dyn Fn(&CellResult) -> char| -> String {
        truth_table(title, &rows, &cols, &|r, c| {
            by.get(&(r.to_owned(), c.to_owned())).map(|x| sym(x))
        })
    };
    if o.verbose {
        out.push_str(&indent(
            &table("expected", &|r| expected_symbol(r.expected.verdict)),
            4,
        ));
        out.push_str(&indent(&table("observed", &|r| r.observed.symbol()), 4));
    }
    out.push_str(&indent(
        &table("comparison", &|r| match r.status {
            Status::Pass => '.',
            Status::Fail => 'X',
            Status::Unsupported => 'U',
            Status::Error => 'E',
        }),
        4,
    ));
}

/// A truth table: rows are sources, columns targets; a blank where no cell was probed.
pub fn truth_table(
    title: &str,
    rows: &[String],
    cols: &[String],
    cell: &dyn Fn(&str, &str) -> Option<char>,
) -> String {
    let row_w = rows
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(title.len());
    let mut out = format!("{title:<row_w$}");
    for c in cols {
        let _ = write!(out, " {c}");
    }
    out.push('\n');
    for r in rows {
        let _ = write!(out, "{r:<row_w$}");
        for c in cols {
            let sym = cell(r, c).unwrap_or(' ');
            let _ = write!(out, " {sym:<w$}", w = c.len());
        }
        // No trailing blanks.
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// `.` allowed, `X` blocked, `D` unresolved.
fn expected_symbol(v: Verdict) -> char {
    match v {
        Verdict::Allow => '.',
        Verdict::Block => 'X',
        Verdict::Unresolved => 'D',
    }
}

/// The closing summary of a run.
pub fn render_summary(reports: &[ScenarioReport]) -> String {
    let count = |st: ScenarioStatus| reports.iter().filter(|r| r.status == st).count();
    let mut cells = crate::verdict::Counts::default();
    for r in reports {
        cells.merge(r.counts);
    }
    format!(
        "\nnetreach: {} scenario(s): {} passed, {} failed, {} error, {} unsupported; cells: {} pass, {} fail, {} error, {} unsupported\n",
        reports.len(),
        count(ScenarioStatus::Passed),
        count(ScenarioStatus::Failed),
        count(ScenarioStatus::Error),
        count(ScenarioStatus::Unsupported),
        cells.pass,
        cells.fail,
        cells.error,
        cells.unsupported
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    #[test]
    fn mismatch_report() {
        let text = render_scenario(&testdata::mismatch());
        let want = r#"FAIL scenarios/tiny: 1 step(s), 6 cell(s): 5 pass, 1 fail (1.2 s)
  nodes: fake-node-1 (x/a); fake-node-2 (x/b)
  step 1 "deny into b": 1 of 6 cell(s) disagree, 0 error(s), 0 unsupported, did not agree within the deadline, 2 round(s)
    MISMATCH x/a -> x/b 80/tcp: expected blocked (table at line 12), observed allowed (connected)
      specification: allow: egress of x/a: not isolated (no policy selects it for egress); ingress of x/b: not isolated (no policy selects it for ingress) → the expectation disagrees with the specification; the cluster follows it
      repro: kubectl exec -n x-r1d2e3 a -- nc -z -w 1 <ip> 80
    80/tcp via ip:
    comparison x/a x/b
    x/a        .   X
    x/b        .   .
    (comparison: . agrees, X disagrees, U unsupported, E error; --verbose adds the expected and observed tables)
"#;
        assert_eq!(text, want, "\n--- got ---\n{text}");
    }

    #[test]
    fn verbose_adds_the_expected_and_observed_tables_and_probe_facts() {
        let text = render_scenario_with(&testdata::mismatch(), TextOptions { verbose: true });
        for want in [
            "expected x/a x/b",
            "observed x/a x/b",
            "comparison x/a x/b",
            "probe: 3 ms",
        ] {
            assert!(text.contains(want), "{want}:\n{text}");
        }
        assert!(!render_scenario(&testdata::mismatch()).contains("observed x/a x/b"));
    }

    /// Cells that disagree the same way into one target are one line, with one repro.
    #[test]
    fn like_mismatches_are_one_line() {
        let mut r = testdata::mismatch();
        let step = &mut r.steps[0];
        let first = step
            .results
            .iter()
            .position(|c| c.status == Status::Fail)
            .expect("a mismatch");
        let mut twin = step.results[first].clone();
        twin.cell.from = crate::model::PodId::new("x", "c");
        step.results.push(twin);
        let text = render_scenario(&r);
        assert!(
            text.contains("MISMATCH 2 cells {x/a, x/c} -> x/b 80/tcp: expected blocked"),
            "{text}"
        );
        assert_eq!(text.matches("repro").count(), 1, "{text}");
    }

    #[test]
    fn infrastructure_error_report() {
        let text = render_scenario(&testdata::infra_error());
        assert!(
            text.starts_with("ERROR scenarios/tiny: 1 step(s), 6 cell(s): 5 pass, 1 error"),
            "{text}"
        );
        assert!(text.contains("ERROR x/b -> x/a 80/tcp: expected allowed (table at line 12), observed error (no result: the probe's exec ended before it reported (stream closed))"), "{text}");
        // Refused on a served port counted as blocked, so that cell passed.
        assert!(!text.contains("x/a -> x/b 80/tcp: expected"), "{text}");
    }

    #[test]
    fn truth_table_layout() {
        let rows = vec!["x/a".to_owned(), "long/name".to_owned()];
        let cols = vec!["x/a".to_owned(), "y/b".to_owned()];
        let t = truth_table("-", &rows, &cols, &|r, c| {
            if r == "x/a" && c == "y/b" {
                None
            } else {
                Some('X')
            }
        });
        assert_eq!(t, "-         x/a y/b\nx/a       X\nlong/name X   X\n");
    }
}
