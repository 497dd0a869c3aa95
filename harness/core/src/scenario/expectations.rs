//! Checking a step's `expect:` entries into validated [`Entry`]s: patterns parsed, references to
//! pods and external endpoints checked, truth tables parsed with the position of every token.
//! What the entries then decide is [`crate::expect`]'s.

use std::collections::BTreeSet;

use super::probes::port_pattern;
use super::raw::{RawCellPattern, RawExpect, RawTable, Sp};
use crate::diag::{Code, DiagExt, Pos, Sink};
use crate::expect::{CellRule, Entry, EntryKind, Located, RuleVerdict, Table, parse_table};
use crate::model::{PodId, Scenario, Target, Verdict, Via};
use crate::pattern::{PodPattern, PortPattern, TargetPattern};

/// Checks every entry; those with problems are reported to `sink` and left out.
pub(super) fn check(sink: &mut Sink<'_>, s: &Scenario, entries: &Sp<Vec<RawExpect>>) -> Vec<Entry> {
    let mut out = Vec::new();
    for e in &entries.value {
        let entry = match e {
            RawExpect::Default(v) => Some(Entry {
                pos: sink.pos(v),
                kind: EntryKind::Default(v.value.into()),
            }),
            RawExpect::Allow(p) => check_rule(sink, s, p, RuleVerdict::Fixed(Verdict::Allow)),
            RawExpect::Block(p) => check_rule(sink, s, p, RuleVerdict::Fixed(Verdict::Block)),
            RawExpect::Unresolved(p) => {
                check_rule(sink, s, p, RuleVerdict::Fixed(Verdict::Unresolved))
            }
            RawExpect::Computed(p) => check_rule(sink, s, p, RuleVerdict::Computed),
            RawExpect::Table(t) => check_table(sink, s, t).map(|table| Entry {
                pos: sink.pos(t),
                kind: EntryKind::Table(table),
            }),
        };
        out.extend(entry);
    }
    out
}

fn check_rule(
    sink: &mut Sink<'_>,
    s: &Scenario,
    p: &Sp<RawCellPattern>,
    verdict: RuleVerdict,
) -> Option<Entry> {
    let rule = &p.value;
    let from = match &rule.from {
        None => None,
        Some(f) => match PodPattern::parse(&f.value) {
            Ok(pp) => Some(Located {
                value: pp,
                pos: sink.pos(f),
            }),
            Err(msg) => {
                sink.error_at(Code::InvalidPattern, f, msg);
                return None;
            }
        },
    };
    let to = match &rule.to {
        None => None,
        Some(t) => match TargetPattern::parse(&t.value) {
            Ok(tp) => Some(Located {
                value: tp,
                pos: sink.pos(t),
            }),
            Err(msg) => {
                sink.error_at(Code::InvalidPattern, t, msg);
                return None;
            }
        },
    };
    let port = match &rule.port {
        None => None,
        Some(sp) => match port_pattern(sp) {
            Ok(pp) => Some(Located {
                value: pp,
                pos: sink.pos(sp),
            }),
            Err(msg) => {
                sink.error_at(Code::InvalidPort, sp, msg);
                return None;
            }
        },
    };
    // Literal references to undeclared things are reported as such, not as "matches nothing".
    if let Some(f) = &from
        && f.value.is_literal()
        && s.pod(&PodId::new(f.value.ns.as_str(), f.value.name.as_str()))
            .is_none()
    {
        sink.error(
            Code::UnknownPod,
            f.pos,
            format!("pod `{}` is not declared", f.value),
        );
        return None;
    }
    if let Some(t) = &to
        && let Some(msg) = undeclared_target(s, &t.value)
    {
        let code = if matches!(t.value, TargetPattern::External(_)) {
            Code::UnknownExternal
        } else {
            Code::UnknownPod
        };
        sink.error(code, t.pos, msg);
        return None;
    }
    Some(Entry {
        pos: sink.pos(p),
        kind: EntryKind::Rule(CellRule {
            verdict,
            from,
            to,
            port,
            via: rule.via.as_ref().map(|v| v.value.into()),
        }),
    })
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

fn check_table(sink: &mut Sink<'_>, s: &Scenario, t: &Sp<RawTable>) -> Option<Table> {
    let table: &RawTable = &t.value;
    let map = TextMap::new(sink, &table.rows);
    let parsed = match parse_table(&table.rows.value) {
        Ok(p) => p,
        Err(errs) => {
            for (off, len, msg) in errs {
                let pos = map.pos(sink, off, len);
                sink.error(Code::InvalidTable, pos, msg)
                    .help("a table is a header line of targets, then `<ns/pod>` and one of `.`, `X`, `?` per column on each line");
            }
            return None;
        }
    };
    let port = match &table.port {
        None => PortPattern::Any,
        Some(sp) => match port_pattern(sp) {
            Ok(pp) => pp,
            Err(msg) => {
                sink.error_at(Code::InvalidPort, sp, msg);
                return None;
            }
        },
    };
    let via: Option<Via> = table.via.as_ref().map(|v| v.value.into());
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
        return None;
    }
    let rows = parsed
        .rows
        .iter()
        .zip(rows)
        .filter_map(|(r, id)| {
            let cells = r
                .cells
                .iter()
                .map(|(cell, off)| Located {
                    value: *cell,
                    pos: map.pos(sink, *off, 1),
                })
                .collect();
            id.map(|id| (id, cells))
        })
        .collect();
    Some(Table {
        port,
        via,
        columns: cols.into_iter().flatten().collect(),
        rows,
    })
}

/// Maps offsets inside a scalar's text to positions in the source file. For `|` block scalars,
/// each text line is found in the source after the previous one, within the scalar's span; when a
/// line cannot be found (quoted or folded scalars) the scalar's own position is used.
struct TextMap {
    /// Per text line, in order: its start offset in the text, and the file offset of the same
    /// text, if found.
    lines: Vec<(usize, Option<usize>)>,
    fallback: Pos,
}

impl TextMap {
    fn new(sink: &Sink<'_>, text: &Sp<String>) -> Self {
        let fallback = sink.pos(text);
        let src: &str = &sink.file.text;
        let mut cursor = fallback.offset.min(src.len());
        // The scalar's span bounds the search (a line that is not there is not looked for in the
        // rest of the file).
        let end = if fallback.len > 0 {
            fallback.offset.saturating_add(fallback.len).min(src.len())
        } else {
            src.len()
        };
        let mut lines = Vec::new();
        let mut off = 0;
        for line in text.value.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            let lead = content.len() - content.trim_start().len();
            let trimmed = content.trim();
            let found = if trimmed.is_empty() {
                None
            } else {
                src.get(cursor..end)
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
        // The last line starting at or before `offset` (starts are increasing).
        let i = self.lines.partition_point(|(start, _)| *start <= offset);
        match i.checked_sub(1).map(|i| self.lines[i]) {
            Some((start, Some(file_off))) => {
                Pos::from_range(sink.file, file_off + (offset - start), len)
            }
            _ => self.fallback,
        }
    }
}
