//! Expectations: from a step's validated `expect:` entries to an [`ExpectedMatrix`] over the
//! probed cells.
//!
//! Entries apply in order, each overriding earlier ones on the cells it matches: `default`,
//! `allow`/`block` rules with wildcards, and truth tables. Then the scenario's `loopback` setting
//! decides cells where a pod reaches itself. Every probed cell must end with an expectation.
//!
//! The entries are checked and their patterns parsed once, by the loader
//! (`scenario::expectations`): this module sees only the validated [`Entry`] and the model, never
//! the serde types.

mod apply;
mod summary;
mod table;

pub use summary::{Contradiction, SpecSummary, StepSummary, Undecided, spec_summary};
pub use table::{ParsedTable, TableCell, TableError, TableRow, parse_table};

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Code, DiagExt, Pos, Sink};
use crate::engine::{self, World};
use crate::model::{
    CellKey, Expected, ExpectedMatrix, Loopback, Origin, PodId, Scenario, Target, Verdict, Via,
};
use crate::pattern::{PodPattern, PortPattern, TargetPattern};

/// A value with the position it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it is in the scenario file.
    pub pos: Pos,
}

/// One validated `expect:` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where the entry's value is (its `line` is the origin of the cells it decides).
    pub pos: Pos,
    /// What it says.
    pub kind: EntryKind,
}

/// What an entry says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// `default:` every probed cell.
    Default(Verdict),
    /// `allow:`, `block:`, `unresolved:` or `computed:` the cells matching a pattern.
    Rule(CellRule),
    /// A truth table.
    Table(Table),
}

/// Where a rule's verdict comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleVerdict {
    /// Written in the rule (`allow`, `block`, `unresolved`).
    Fixed(Verdict),
    /// Asked of the policy engine, per cell (`computed`).
    Computed,
}

impl RuleVerdict {
    /// The entry's name: `allow`, `block`, `unresolved` or `computed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleVerdict::Fixed(v) => v.as_str(),
            RuleVerdict::Computed => "computed",
        }
    }
}

/// A rule over a set of cells: absent patterns match any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellRule {
    /// The verdict for the cells it matches.
    pub verdict: RuleVerdict,
    /// Source pods.
    pub from: Option<Located<PodPattern>>,
    /// Targets.
    pub to: Option<Located<TargetPattern>>,
    /// Port.
    pub port: Option<Located<PortPattern>>,
    /// Route.
    pub via: Option<Via>,
}

/// A truth table whose columns and rows name declared targets and pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The port it is about.
    pub port: PortPattern,
    /// Only cells probed this way.
    pub via: Option<Via>,
    /// The column targets, in order.
    pub columns: Vec<Target>,
    /// The rows: source pod, and one cell (with its position) per column.
    pub rows: Vec<(PodId, Vec<Located<TableCell>>)>,
}

/// The expectations of one step so far, cell by cell: index `i` is `keys[i]` (the step's
/// probed cells, sorted and unique), so setting a cell costs no lookup.
struct State<'a> {
    keys: &'a [CellKey],
    cells: Vec<Option<Expected>>,
    /// Where the cell's current expectation names it exactly (literal rule or table cell).
    explicit: Vec<Option<Pos>>,
    /// Cells a `computed` entry covered where the specification decides nothing, with why.
    unspecified: BTreeMap<usize, String>,
}

impl<'a> State<'a> {
    fn new(keys: &'a [CellKey]) -> Self {
        let cells = keys.len();
        State {
            keys,
            cells: vec![None; cells],
            explicit: vec![None; cells],
            unspecified: BTreeMap::new(),
        }
    }

    fn set(&mut self, i: usize, verdict: Verdict, origin: Origin, explicit: Option<Pos>) {
        self.cells[i] = Some(Expected { verdict, origin });
        self.unspecified.remove(&i);
        self.explicit[i] = explicit;
    }
}

/// Expands a step's validated expectations over the step's probed cells (`cells`: sorted,
/// unique; the scenario's or the step's own `probes:`). Problems go to `sink`; `at` is the
/// `expect:` list, where problems of the step as a whole are reported.
///
/// `world` is the state after the step's actions: `computed` entries ask the policy engine, and
/// every declared expectation that contradicts the engine is a warning (`contradicts-spec`),
/// with the engine's reasons.
pub fn expand(
    sink: &mut Sink<'_>,
    s: &Scenario,
    cells: &[CellKey],
    entries: &[Entry],
    at: Pos,
    step: usize,
    world: &World,
) -> ExpectedMatrix {
    let mut st = State::new(cells);
    for e in entries {
        match &e.kind {
            EntryKind::Default(v) => {
                let origin = Origin {
                    kind: "default",
                    line: e.pos.line,
                };
                for i in 0..cells.len() {
                    st.set(i, *v, origin.clone(), None);
                }
            }
            EntryKind::Rule(r) => apply::rule(sink, s, &mut st, e.pos, r, world),
            EntryKind::Table(t) => apply::table(sink, s, &mut st, e.pos, t),
        }
    }
    loopback(sink, s, &mut st);
    completeness(sink, &st, at, step);
    contradictions(sink, s, &st, at, step, world);
    // `cells` is sorted: the map is built in one pass.
    let cells = cells
        .iter()
        .zip(st.cells)
        .filter_map(|(k, e)| e.map(|e| (k.clone(), e)))
        .collect();
    ExpectedMatrix { cells }
}

/// The scenario's `loopback` setting decides cells where a pod reaches itself; an entry that
/// names such a cell and says otherwise is an error.
fn loopback(sink: &mut Sink<'_>, s: &Scenario, st: &mut State<'_>) {
    let v = match s.loopback {
        Loopback::Allow => Verdict::Allow,
        Loopback::Block => Verdict::Block,
        // `ignore`: there are no loopback cells (the probes leave them out).
        Loopback::Rules | Loopback::Ignore => return,
    };
    let mut reported = BTreeSet::new();
    let keys = st.keys;
    for (i, k) in keys.iter().enumerate().filter(|(_, k)| k.is_loopback()) {
        if let (Some(pos), Some(cur)) = (st.explicit[i], &st.cells[i])
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
                    pos,
                    format!("this expects `{k}` to {}, but `loopback: {setting}` decides loopback cells", cur.verdict.as_str()),
                )
                .help("set `loopback: rules` at the top of the scenario to judge loopback cells by the rules");
        }
        st.set(
            i,
            v,
            Origin {
                kind: "loopback",
                line: 0,
            },
            None,
        );
    }
}

/// Every probed cell must end with an expectation.
fn completeness(sink: &mut Sink<'_>, st: &State<'_>, at: Pos, step: usize) {
    let missing: Vec<usize> = (0..st.keys.len())
        .filter(|i| st.cells[*i].is_none())
        .collect();
    let unspecified: Vec<(&CellKey, &String)> = missing
        .iter()
        .filter_map(|i| st.unspecified.get(i).map(|why| (&st.keys[*i], why)))
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
            at,
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
        .filter(|i| !st.unspecified.contains_key(i))
        .map(|i| &st.keys[i])
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
            at,
            format!("step {step} has no expectation for {} probed cell(s): {}{more}", missing.len(), examples.join("; ")),
        )
        .help("add `- default: block` (or `allow`) first in `expect:`, or rules/tables covering these cells");
    }
}

/// Warns where a declared expectation contradicts the specification, one warning per step
/// (naming the first five).
/// A real workload's cells are not checked: the live policies around it are not in the scenario.
fn contradictions(
    sink: &mut Sink<'_>,
    s: &Scenario,
    st: &State<'_>,
    at: Pos,
    step: usize,
    world: &World,
) {
    const SHOWN: usize = 5;
    let mut n = 0;
    let mut shown = Vec::new();
    for (k, e) in st.keys.iter().zip(&st.cells) {
        let Some(e) = e.as_ref().filter(|e| e.origin.kind != "computed") else {
            continue;
        };
        if s.touches_workload(k) {
            continue;
        }
        let x = engine::explain(world, k);
        let Some(spec) = x.verdict.expectation() else {
            continue;
        };
        if spec != e.verdict {
            n += 1;
            if shown.len() < SHOWN {
                shown.push(format!(
                    "`{k}`: expected {} ({}), the specification says {}",
                    e.verdict.as_str(),
                    e.origin,
                    x.short()
                ));
            }
        }
    }
    if n == 0 {
        return;
    }
    let more = if n > SHOWN {
        format!("\n… and {} more", n - SHOWN)
    } else {
        String::new()
    };
    sink.warning(
        Code::ContradictsSpec,
        at,
        format!(
            "step {step}: {n} expectation(s) contradict the NetworkPolicy specification:\n{}{more}",
            shown.join("\n")
        ),
    )
    .help("either the expectation or the policies are wrong; `netreach explain` shows the reasoning for one cell, and `- computed: {}` expects what the specification says");
}
