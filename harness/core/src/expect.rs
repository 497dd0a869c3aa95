//! Expectations: from a step's `expect:` list to an [`ExpectedMatrix`] over the probed cells.
//!
//! Entries apply in order, each overriding earlier ones on the cells it matches: `default`,
//! `allow`/`block` rules with wildcards, and truth tables. Then the scenario's `loopback` setting
//! decides cells where a pod reaches itself. Every probed cell must end with an expectation.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Code, DiagExt, Pos, Sink};
use crate::engine::{self, World};
use crate::model::{
    CellKey, Expected, ExpectedMatrix, Loopback, Origin, PodId, Scenario, Target, Verdict, Via,
};
use crate::pattern::{PodPattern, PortPattern, TargetPattern, via_matches};
use crate::scenario::raw::{RawCellPattern, RawExpect, RawTable, Sp};

/// A cell value in a truth table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableCell {
    /// `.`
    Allow,
    /// `X`
    Block,
    /// `?`: no expectation from this table.
    Unset,
}

/// A truth table as parsed from text, with the byte offset (within the text) of every token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTable {
    /// Column names with their offsets.
    pub columns: Vec<(String, usize)>,
    /// Rows: name, offset, cells with offsets.
    pub rows: Vec<TableRow>,
}

/// One row of a truth table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRow {
    /// Source pod name as written.
    pub name: String,
    /// Offset of the name within the table text.
    pub offset: usize,
    /// Cells with their offsets.
    pub cells: Vec<(TableCell, usize)>,
}

/// A problem in a table's text: offset within the text, length, message.
pub type TableError = (usize, usize, String);

/// Parses a truth table. Blank lines and lines starting with `#` are skipped. The first line
/// lists the columns, optionally after a `-` corner.
///
/// # Errors
/// Every problem found, each with its offset in `text`.
pub fn parse_table(text: &str) -> Result<ParsedTable, Vec<TableError>> {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            lines.push(tokens(line, offset));
        }
        offset += line.len();
    }
    let Some((header, body)) = lines.split_first() else {
        return Err(vec![(
            0,
            0,
            "the table is empty; write a header line of columns, then one line per source pod"
                .into(),
        )]);
    };
    let mut columns: Vec<(String, usize)> = header.clone();
    if columns.first().is_some_and(|(t, _)| t == "-") {
        columns.remove(0);
    }
    if columns.is_empty() {
        errors.push((
            header.first().map_or(0, |t| t.1),
            1,
            "the header line names no columns".into(),
        ));
    }
    let mut rows = Vec::new();
    for line in body {
        let Some(((name, noff), cells)) = line.split_first() else {
            continue;
        };
        if cells.len() != columns.len() {
            errors.push((
                *noff,
                name.len(),
                format!(
                    "row `{name}` has {} cells but the header has {} columns",
                    cells.len(),
                    columns.len()
                ),
            ));
            continue;
        }
        let mut parsed = Vec::new();
        for (cell, coff) in cells {
            let v = match cell.as_str() {
                "." => TableCell::Allow,
                "X" | "x" => TableCell::Block,
                "?" => TableCell::Unset,
                other => {
                    errors.push((*coff, other.len(), format!("`{other}` is not a table cell; use `.` (allowed), `X` (blocked) or `?` (no expectation)")));
                    continue;
                }
            };
            parsed.push((v, *coff));
        }
        rows.push(TableRow {
            name: name.clone(),
            offset: *noff,
            cells: parsed,
        });
    }
    if body.is_empty() && errors.is_empty() {
        errors.push((
            header[0].1,
            header[0].0.len(),
            "the table has a header but no rows".into(),
        ));
    }
    if errors.is_empty() {
        Ok(ParsedTable { columns, rows })
    } else {
        Err(errors)
    }
}

fn tokens(line: &str, base: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, ch) in line.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((line[s..i].to_owned(), base + s));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((line[s..].to_owned(), base + s));
    }
    out
}

/// Maps offsets inside a scalar's text to positions in the source file. For `|` block scalars,
/// each text line is found in the source after the scalar's start; when a line cannot be found
/// (quoted or folded scalars) the scalar's own position is used.
struct TextMap {
    /// Per text line start offset: the file offset of the same text, if found.
    lines: Vec<(usize, Option<usize>)>,
    fallback: Pos,
}

impl TextMap {
    fn new(sink: &Sink<'_>, text: &Sp<String>) -> Self {
        let fallback = sink.pos(text);
        let src: &str = &sink.file.text;
        let mut cursor = fallback.offset.min(src.len());
        let mut lines = Vec::new();
        let mut off = 0;
        for line in text.value.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            let lead = content.len() - content.trim_start().len();
            let trimmed = content.trim();
            let found = if trimmed.is_empty() {
                None
            } else {
                src.get(cursor..)
                    .and_then(|rest| rest.find(trimmed))
                    .map(|i| cursor + i)
            };
            if let Some(f) = found {
                cursor = f + trimmed.len();
                lines.push((off + lead, Some(f)));
            } else {
                lines.push((off + lead, None));
            }
            off += line.len();
        }
        TextMap { lines, fallback }
    }

    fn pos(&self, sink: &Sink<'_>, offset: usize, len: usize) -> Pos {
        let entry = self.lines.iter().rev().find(|(start, _)| *start <= offset);
        match entry {
            Some((start, Some(file_off))) => {
                Pos::from_range(sink.file, file_off + (offset - start), len)
            }
            _ => self.fallback,
        }
    }
}

#[derive(Default)]
struct State {
    cells: BTreeMap<CellKey, Expected>,
    /// Cells whose current expectation names them exactly (literal rule or table cell).
    explicit: BTreeMap<CellKey, Pos>,
    /// Cells a `computed` entry covered where the specification decides nothing, with why.
    unspecified: BTreeMap<CellKey, String>,
}

impl State {
    fn set(&mut self, k: &CellKey, verdict: Verdict, origin: Origin, explicit: Option<Pos>) {
        self.cells.insert(k.clone(), Expected { verdict, origin });
        self.unspecified.remove(k);
        match explicit {
            Some(p) => self.explicit.insert(k.clone(), p),
            None => self.explicit.remove(k),
        };
    }
}

/// Expands a step's expectations over the scenario's cells. Problems go to `sink`.
///
/// `world` is the state after the step's actions: `computed` entries ask the policy engine, and
/// every declared expectation that contradicts the engine is a warning (`contradicts-spec`),
/// with the engine's reasons.
pub fn expand(
    sink: &mut Sink<'_>,
    s: &Scenario,
    entries: &Sp<Vec<RawExpect>>,
    step: usize,
    world: &World,
) -> ExpectedMatrix {
    let mut st = State::default();
    for e in &entries.value {
        match e {
            RawExpect::Default(v) => {
                let origin = Origin {
                    kind: "default",
                    line: sink.pos(v).line,
                };
                for k in &s.cells {
                    st.set(k, v.value, origin.clone(), None);
                }
            }
            RawExpect::Allow(p) => apply_rule(sink, s, &mut st, p, By::Fixed(Verdict::Allow)),
            RawExpect::Block(p) => apply_rule(sink, s, &mut st, p, By::Fixed(Verdict::Block)),
            RawExpect::Unresolved(p) => {
                apply_rule(sink, s, &mut st, p, By::Fixed(Verdict::Unresolved));
            }
            RawExpect::Table(t) => apply_table(sink, s, &mut st, t),
            RawExpect::Computed(p) => apply_rule(sink, s, &mut st, p, By::Engine(world)),
        }
    }
    // Loopback.
    let forced = match s.loopback {
        Loopback::Allow => Some(Verdict::Allow),
        Loopback::Block => Some(Verdict::Block),
        Loopback::Rules => None,
    };
    if let Some(v) = forced {
        let mut reported = BTreeSet::new();
        for k in s.cells.iter().filter(|k| k.is_loopback()) {
            if let (Some(pos), Some(cur)) = (st.explicit.get(k), st.cells.get(k))
                && cur.verdict != v
                && reported.insert((pos.line, pos.col))
            {
                let setting = if v == Verdict::Allow {
                    "allow"
                } else {
                    "block"
                };
                sink.error(
                        Code::LoopbackConflict,
                        *pos,
                        format!("this expects `{k}` to {}, but `loopback: {setting}` decides loopback cells", cur.verdict.as_str()),
                    )
                    .help("set `loopback: rules` at the top of the scenario to judge loopback cells by the rules");
            }
            st.set(
                k,
                v,
                Origin {
                    kind: "loopback",
                    line: 0,
                },
                None,
            );
        }
    }
    // Completeness.
    let missing: Vec<&CellKey> = s
        .cells
        .iter()
        .filter(|k| !st.cells.contains_key(*k))
        .collect();
    let unspecified: Vec<(&CellKey, &String)> = missing
        .iter()
        .filter_map(|k| st.unspecified.get_key_value(*k))
        .collect();
    if !unspecified.is_empty() {
        let examples: Vec<String> = unspecified
            .iter()
            .take(3)
            .map(|(k, why)| format!("`{k}` ({why})"))
            .collect();
        let more = if unspecified.len() > 3 {
            format!(" and {} more", unspecified.len() - 3)
        } else {
            String::new()
        };
        sink.error(
            Code::NoExpectation,
            sink.pos(entries),
            format!(
                "step {step}: the specification does not decide {} cell(s) that `computed` covers: {}{more}",
                unspecified.len(),
                examples.join("; ")
            ),
        )
        .help("state these cells explicitly after the `computed` entry (`allow:`/`block:` or a table): they depend on the implementation or on addresses");
    }
    let missing: Vec<&CellKey> = missing
        .into_iter()
        .filter(|k| !st.unspecified.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        let examples: Vec<String> = missing.iter().take(4).map(ToString::to_string).collect();
        let more = if missing.len() > 4 {
            format!(" and {} more", missing.len() - 4)
        } else {
            String::new()
        };
        sink.error(
            Code::NoExpectation,
            sink.pos(entries),
            format!("step {step} has no expectation for {} probed cell(s): {}{more}", missing.len(), examples.join("; ")),
        )
        .help("add `- default: block` (or `allow`) first in `expect:`, or rules/tables covering these cells");
    }
    contradictions(sink, entries, step, world, &st.cells);
    ExpectedMatrix { cells: st.cells }
}

/// Warns where a declared expectation contradicts the specification, one warning per step.
fn contradictions(
    sink: &mut Sink<'_>,
    entries: &Sp<Vec<RawExpect>>,
    step: usize,
    world: &World,
    cells: &BTreeMap<CellKey, Expected>,
) {
    let mut found = Vec::new();
    for (k, e) in cells.iter().filter(|(_, e)| e.origin.kind != "computed") {
        let x = engine::explain(world, k);
        let Some(spec) = x.verdict.expectation() else {
            continue;
        };
        if spec != e.verdict {
            found.push(format!(
                "`{k}`: expected {} ({}), the specification says {}",
                e.verdict.as_str(),
                e.origin,
                x.short()
            ));
        }
    }
    if found.is_empty() {
        return;
    }
    let n = found.len();
    let shown: Vec<String> = found.into_iter().take(5).collect();
    let more = if n > 5 {
        format!("\n… and {} more", n - 5)
    } else {
        String::new()
    };
    sink.warning(
        Code::ContradictsSpec,
        sink.pos(entries),
        format!(
            "step {step}: {n} expectation(s) contradict the NetworkPolicy specification:\n{}{more}",
            shown.join("\n")
        ),
    )
    .help("either the expectation or the policies are wrong; `netreach explain` shows the reasoning for one cell, and `- computed: {}` expects what the specification says");
}

/// Where a rule's verdict comes from.
#[derive(Clone, Copy)]
enum By<'a> {
    /// Written in the rule.
    Fixed(Verdict),
    /// Asked of the policy engine, per cell.
    Engine(&'a World),
}

fn apply_rule(
    sink: &mut Sink<'_>,
    s: &Scenario,
    st: &mut State,
    p: &Sp<RawCellPattern>,
    by: By<'_>,
) {
    let kind = match by {
        By::Fixed(v) => v.as_str(),
        By::Engine(_) => "computed",
    };
    let line = sink.pos(p).line;
    let rule = &p.value;
    let from = match &rule.from {
        None => None,
        Some(f) => match PodPattern::parse(&f.value) {
            Ok(pp) => Some(pp),
            Err(msg) => {
                sink.error_at(Code::InvalidPattern, f, msg);
                return;
            }
        },
    };
    let to = match &rule.to {
        None => None,
        Some(t) => match TargetPattern::parse(&t.value) {
            Ok(tp) => Some(tp),
            Err(msg) => {
                sink.error_at(Code::InvalidPattern, t, msg);
                return;
            }
        },
    };
    let port = match &rule.port {
        None => PortPattern::Any,
        Some(sp) => match crate::scenario::port_pattern_of(sp) {
            Ok(pp) => pp,
            Err(msg) => {
                sink.error_at(Code::InvalidPort, sp, msg);
                return;
            }
        },
    };
    let via = rule.via.as_ref().map(|v| v.value);
    // Literal references to undeclared things are reported as such, not as "matches nothing".
    if let (Some(f), Some(pp)) = (&rule.from, &from)
        && pp.is_literal()
        && s.pod(&PodId::new(pp.ns.as_str(), pp.name.as_str()))
            .is_none()
    {
        sink.error_at(Code::UnknownPod, f, format!("pod `{pp}` is not declared"));
        return;
    }
    if let (Some(t), Some(tp)) = (&rule.to, &to)
        && let Some(msg) = undeclared_target(s, tp)
    {
        let code = if matches!(tp, TargetPattern::External(_)) {
            Code::UnknownExternal
        } else {
            Code::UnknownPod
        };
        sink.error_at(code, t, msg);
        return;
    }
    let explicit = from.as_ref().is_some_and(PodPattern::is_literal)
        && to.as_ref().is_some_and(TargetPattern::is_literal);
    let pos = sink.pos(p);
    let mut n = 0;
    for k in &s.cells {
        let ok = from
            .as_ref()
            .is_none_or(|f| f.matches(&k.from.ns, &k.from.name))
            && to.as_ref().is_none_or(|t| t.matches(&k.to))
            && port.matches(s, &k.to, k.port)
            && via_matches(via, k.via);
        if !ok {
            continue;
        }
        n += 1;
        let verdict = match by {
            By::Fixed(v) => v,
            By::Engine(w) => {
                let x = engine::explain(w, k);
                if let Some(v) = x.verdict.expectation() {
                    v
                } else {
                    // Earlier entries stay in force; without one, completeness reports it.
                    st.unspecified.insert(k.clone(), x.short());
                    continue;
                }
            }
        };
        st.set(k, verdict, Origin { kind, line }, explicit.then_some(pos));
    }
    if matches!(by, By::Fixed(Verdict::Unresolved))
        && s.cells.iter().any(|k| {
            k.via != Some(Via::Dns)
                && from
                    .as_ref()
                    .is_none_or(|f| f.matches(&k.from.ns, &k.from.name))
                && to.as_ref().is_none_or(|t| t.matches(&k.to))
                && port.matches(s, &k.to, k.port)
                && via_matches(via, k.via)
        })
    {
        sink.error(
            Code::Conflict,
            pos,
            "`unresolved` applies only to connections by DNS name",
        )
        .help("add `via: dns` to the pattern; other cells are `allow` or `block`");
        return;
    }
    if n == 0 {
        // A literal target that does not serve the port is the likely cause: say so, at the port.
        if let (Some(sp), Some(tp)) = (&rule.port, &to)
            && tp.is_literal()
            && port != PortPattern::Any
        {
            let target = match tp {
                TargetPattern::Pod(pp) => {
                    Some(Target::Pod(PodId::new(pp.ns.as_str(), pp.name.as_str())))
                }
                TargetPattern::External(g) => Some(Target::External(g.as_str().to_owned())),
                TargetPattern::Name(_) => None,
            };
            if let Some(t) = target {
                let served: Vec<String> = s
                    .served_ports(&t)
                    .iter()
                    .map(|p| p.port.to_string())
                    .collect();
                let serves = |q: &crate::model::ServedPort| match &port {
                    PortPattern::Exact(pp) => q.port == *pp,
                    PortPattern::Named(n) => q.name.as_deref() == Some(n.as_str()),
                    PortPattern::Any => true,
                };
                if !s.served_ports(&t).iter().any(serves) {
                    sink.error_at(
                        Code::PortNotServed,
                        sp,
                        format!("`{t}` does not serve port {port}"),
                    )
                    .help(if served.is_empty() {
                        format!("`{t}` serves no ports")
                    } else {
                        format!("`{t}` serves {}", served.join(", "))
                    });
                    return;
                }
            }
        }
        let at = rule
            .to
            .as_ref()
            .map(|t| sink.pos(t))
            .or_else(|| rule.from.as_ref().map(|f| sink.pos(f)))
            .unwrap_or(pos);
        sink.error(Code::MatchesNothing, at, format!("this `{kind}` rule matches no probed cell"))
            .help("check `from`, `to`, `port` and `via` against the probes; a rule that matches nothing is almost always a typo");
    }
}

fn undeclared_target(s: &Scenario, tp: &TargetPattern) -> Option<String> {
    match tp {
        TargetPattern::Pod(pp) if pp.is_literal() => {
            let id = PodId::new(pp.ns.as_str(), pp.name.as_str());
            s.pod(&id)
                .is_none()
                .then(|| format!("pod `{id}` is not declared"))
        }
        TargetPattern::External(g) if g.is_literal() => s
            .external(g.as_str())
            .is_none()
            .then(|| format!("external endpoint `{}` is not declared", g.as_str())),
        _ => None,
    }
}

fn apply_table(sink: &mut Sink<'_>, s: &Scenario, st: &mut State, t: &Sp<RawTable>) {
    let table: &RawTable = &t.value;
    let map = TextMap::new(sink, &table.rows);
    let line = sink.pos(t).line;
    let parsed = match parse_table(&table.rows.value) {
        Ok(p) => p,
        Err(errs) => {
            for (off, len, msg) in errs {
                let pos = map.pos(sink, off, len);
                sink.error(Code::InvalidTable, pos, msg)
                    .help("a table is a header line of targets, then `<ns/pod>` and one of `.`, `X`, `?` per column on each line");
            }
            return;
        }
    };
    let port = match &table.port {
        None => PortPattern::Any,
        Some(sp) => match crate::scenario::port_pattern_of(sp) {
            Ok(pp) => pp,
            Err(msg) => {
                sink.error_at(Code::InvalidPort, sp, msg);
                return;
            }
        },
    };
    let via: Option<Via> = table.via.as_ref().map(|v| v.value);
    let mut ok = true;
    // Columns.
    let mut cols: Vec<Option<Target>> = Vec::new();
    let mut seen_cols = BTreeSet::new();
    for (name, off) in &parsed.columns {
        let pos = map.pos(sink, *off, name.len());
        let target = match TargetPattern::parse(name) {
            Ok(TargetPattern::Pod(pp)) if pp.is_literal() => {
                let id = PodId::new(pp.ns.as_str(), pp.name.as_str());
                if s.pod(&id).is_some() {
                    Some(Target::Pod(id))
                } else {
                    sink.error(
                        Code::UnknownPod,
                        pos,
                        format!("table column `{name}` is not a declared pod"),
                    );
                    None
                }
            }
            Ok(TargetPattern::External(g)) if g.is_literal() => {
                if s.external(g.as_str()).is_some() {
                    Some(Target::External(g.as_str().to_owned()))
                } else {
                    sink.error(
                        Code::UnknownExternal,
                        pos,
                        format!("table column `{name}` is not a declared external endpoint"),
                    );
                    None
                }
            }
            _ => {
                sink.error(
                    Code::InvalidTable,
                    pos,
                    format!("table column `{name}` must name one pod (`ns/pod`) or `ext:<name>`"),
                )
                .help("tables take no wildcards; use an `allow`/`block` rule for patterns");
                None
            }
        };
        if let Some(tg) = &target {
            if !seen_cols.insert(tg.clone()) {
                sink.error(
                    Code::Duplicate,
                    pos,
                    format!("table column `{name}` appears twice"),
                );
                ok = false;
            }
            if let PortPattern::Exact(pp) = &port
                && !s.served_ports(tg).iter().any(|sp| sp.port == *pp)
            {
                sink.error(
                    Code::PortNotServed,
                    pos,
                    format!("table is for port {pp}, but `{name}` does not serve it"),
                )
                .help("drop the column, or make one table per port");
                ok = false;
            }
        } else {
            ok = false;
        }
        cols.push(target);
    }
    // Rows.
    let mut seen_rows = BTreeSet::new();
    let mut rows: Vec<Option<PodId>> = Vec::new();
    for r in &parsed.rows {
        let pos = map.pos(sink, r.offset, r.name.len());
        let id = match PodPattern::parse(&r.name) {
            Ok(pp) if pp.is_literal() => {
                let id = PodId::new(pp.ns.as_str(), pp.name.as_str());
                if s.pod(&id).is_some() {
                    Some(id)
                } else {
                    sink.error(
                        Code::UnknownPod,
                        pos,
                        format!("table row `{}` is not a declared pod", r.name),
                    );
                    None
                }
            }
            _ => {
                sink.error(
                    Code::InvalidTable,
                    pos,
                    format!("table row `{}` must name one pod (`ns/pod`)", r.name),
                );
                None
            }
        };
        if let Some(id) = &id {
            if !seen_rows.insert(id.clone()) {
                sink.error(
                    Code::Duplicate,
                    pos,
                    format!("table row `{id}` appears twice"),
                );
                ok = false;
            }
        } else {
            ok = false;
        }
        rows.push(id);
    }
    if !ok {
        return;
    }
    let mut set = 0;
    let mut decided = 0;
    for (r, row) in parsed.rows.iter().zip(&rows) {
        let Some(from) = row else { continue };
        for ((cell, off), col) in r.cells.iter().zip(&cols) {
            let Some(to) = col else { continue };
            let verdict = match cell {
                TableCell::Allow => Verdict::Allow,
                TableCell::Block => Verdict::Block,
                TableCell::Unset => continue,
            };
            let pos = map.pos(sink, *off, 1);
            decided += 1;
            for k in s.cells.iter().filter(|k| {
                k.from == *from
                    && k.to == *to
                    && port.matches(s, &k.to, k.port)
                    && via_matches(via, k.via)
            }) {
                st.set(
                    k,
                    verdict,
                    Origin {
                        kind: "table",
                        line,
                    },
                    Some(pos),
                );
                set += 1;
            }
        }
    }
    if set == 0 && decided > 0 {
        sink.error_at(Code::MatchesNothing, t, "this table matches no probed cell")
            .help("check the table's `port` and `via` against the probes; a table that matches nothing is almost always a typo");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables_with_and_without_corner() {
        let t = parse_table("-   x/a x/b\nx/a .   X\nx/b ?   x\n").expect("valid");
        assert_eq!(
            t.columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["x/a", "x/b"]
        );
        assert_eq!(t.rows.len(), 2);
        assert_eq!(
            t.rows[0].cells.iter().map(|c| c.0).collect::<Vec<_>>(),
            [TableCell::Allow, TableCell::Block]
        );
        assert_eq!(
            t.rows[1].cells.iter().map(|c| c.0).collect::<Vec<_>>(),
            [TableCell::Unset, TableCell::Block]
        );
        let t2 = parse_table("  x/a x/b\n\n# comment\n  x/a . .\n").expect("valid");
        assert_eq!(t2.columns.len(), 2);
        assert_eq!(t2.rows[0].offset, "  x/a x/b\n\n# comment\n  ".len());
    }

    #[test]
    fn reports_every_table_problem() {
        let errs = parse_table("x/a x/b\nx/a . \nx/b . Y\n").expect_err("invalid");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].2.contains("has 1 cells but the header has 2"));
        assert!(errs[1].2.contains("`Y` is not a table cell"));
        assert_eq!(errs[1].0, "x/a x/b\nx/a . \nx/b . ".len());
        assert!(parse_table("").is_err());
        assert!(parse_table("x/a\n").is_err());
        assert!(parse_table("-\nx/a\n").is_err());
    }
}
