//! Applying one validated rule or table to the cells: which cells it sets, and what it means
//! when it sets none.

use super::{CellRule, Located, RuleVerdict, State, Table, TableCell};
use crate::diag::{Code, DiagExt, Pos, Sink};
use crate::engine::{self, World};
use crate::model::{CellKey, Origin, PodId, Scenario, ServedPort, Target, Verdict, Via};
use crate::pattern::{PortMatcher, PortPattern, TargetPattern, via_matches};

impl CellRule {
    /// Whether the rule's patterns match cell `k`.
    fn matches(&self, port: &PortMatcher<'_>, k: &CellKey) -> bool {
        self.from
            .as_ref()
            .is_none_or(|f| f.value.matches(&k.from.ns, &k.from.name))
            && self.to.as_ref().is_none_or(|t| t.value.matches(&k.to))
            && port.matches(&k.to, k.port)
            && via_matches(self.via, k.via)
    }
}

/// Applies an `allow`/`block`/`unresolved`/`computed` rule written at `pos`.
pub(super) fn rule(
    sink: &mut Sink<'_>,
    s: &Scenario,
    st: &mut State<'_>,
    pos: Pos,
    rule: &CellRule,
    world: &World,
) {
    let kind = rule.verdict.as_str();
    let line = pos.line;
    let port = rule
        .port
        .as_ref()
        .map_or(PortPattern::Any, |p| p.value.clone());
    let matcher = PortMatcher::new(&port, s);
    let explicit = rule.from.as_ref().is_some_and(|f| f.value.is_literal())
        && rule.to.as_ref().is_some_and(|t| t.value.is_literal());
    let mut n = 0;
    let keys = st.keys;
    for (i, k) in keys.iter().enumerate() {
        if !rule.matches(&matcher, k) {
            continue;
        }
        n += 1;
        let verdict = match rule.verdict {
            RuleVerdict::Fixed(v) => v,
            RuleVerdict::Computed if s.touches_workload(k) => {
                // The live policies around a real workload are not in the scenario.
                st.unspecified.insert(
                    i,
                    "a real workload's cell: the specification is not computed from the live cluster's policies; write the expectation".into(),
                );
                continue;
            }
            RuleVerdict::Computed => {
                let x = engine::explain(world, k);
                if let Some(v) = x.verdict.expectation() {
                    v
                } else {
                    // Earlier entries stay in force; without one, completeness reports it.
                    st.unspecified.insert(i, x.short());
                    continue;
                }
            }
        };
        st.set(i, verdict, Origin { kind, line }, explicit.then_some(pos));
    }
    if rule.verdict == RuleVerdict::Fixed(Verdict::Unresolved)
        && keys
            .iter()
            .any(|k| k.via != Some(Via::Dns) && rule.matches(&matcher, k))
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
        matches_nothing(sink, s, pos, rule, &port);
    }
}

/// A rule that matched no cell: a literal target that does not serve the port is the likely
/// cause, said at the port; otherwise the rule matches nothing.
fn matches_nothing(
    sink: &mut Sink<'_>,
    s: &Scenario,
    pos: Pos,
    rule: &CellRule,
    port: &PortPattern,
) {
    if let (Some(sp), Some(tp)) = (&rule.port, &rule.to)
        && tp.value.is_literal()
        && *port != PortPattern::Any
    {
        let target = match &tp.value {
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
            let serves = |q: &ServedPort| match port {
                PortPattern::Exact(pp) => q.port == *pp,
                PortPattern::Named(n) => q.name.as_deref() == Some(n.as_str()),
                PortPattern::Any => true,
            };
            if !s.served_ports(&t).iter().any(serves) {
                sink.error(
                    Code::PortNotServed,
                    sp.pos,
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
        .map(|t| t.pos)
        .or_else(|| rule.from.as_ref().map(|f| f.pos))
        .unwrap_or(pos);
    sink.error(Code::MatchesNothing, at, format!("this `{}` rule matches no probed cell", rule.verdict.as_str()))
        .help("check `from`, `to`, `port` and `via` against the probes; a rule that matches nothing is almost always a typo");
}

/// Applies a truth table written at `pos`.
pub(super) fn table(sink: &mut Sink<'_>, s: &Scenario, st: &mut State<'_>, pos: Pos, t: &Table) {
    let line = pos.line;
    let port = PortMatcher::new(&t.port, s);
    let mut set = 0;
    let mut decided = 0;
    for (from, cells) in &t.rows {
        for (Located { value: cell, pos }, to) in cells.iter().zip(&t.columns) {
            let verdict = match cell {
                TableCell::Allow => Verdict::Allow,
                TableCell::Block => Verdict::Block,
                TableCell::Unset => continue,
            };
            decided += 1;
            for i in cells_between(st.keys, from, to) {
                let k = &st.keys[i];
                if !(port.matches(&k.to, k.port) && via_matches(t.via, k.via)) {
                    continue;
                }
                st.set(
                    i,
                    verdict,
                    Origin {
                        kind: "table",
                        line,
                    },
                    Some(*pos),
                );
                set += 1;
            }
        }
    }
    if set == 0 && decided > 0 {
        sink.error(Code::MatchesNothing, pos, "this table matches no probed cell")
            .help("check the table's `port` and `via` against the probes; a table that matches nothing is almost always a typo");
    }
}

/// The indexes of the cells from `from` to `to` (any port and route): `keys` is sorted by
/// source, then target, so they are one run, found by binary search.
fn cells_between(keys: &[CellKey], from: &PodId, to: &Target) -> std::ops::Range<usize> {
    let start = keys.partition_point(|k| (&k.from, &k.to) < (from, to));
    let len = keys[start..]
        .iter()
        .take_while(|k| k.from == *from && k.to == *to)
        .count();
    start..start + len
}
