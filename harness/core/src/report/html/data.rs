//! The page's data: every scenario, step and cell as one compact JSON value, from which the
//! page's script builds the grids and the detail panel.
//!
//! Compact because a step can have thousands of cells: per scenario, every string (reasons,
//! origins) is stored once in `strs` and cells refer to it by index, and a cell is an array of
//! numbers in the order of [`Cell`]'s fields (`-1` or `null`: absent). The two kinds of text that
//! are unique per cell but made of repeated parts are stored as lists of string indices in
//! `lists`: the specification's reasons (parts joined by `; `: one per source, one per target)
//! and the repro commands (words joined by spaces). Splitting and joining is lossless. Nodes (sources
//! and targets) are numbered once per scenario, in namespace order then name, so that grids of
//! different steps line up.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use super::graph::port_label;
use crate::model::{CellKey, Target};
use crate::report::{ScenarioReport, ScenarioStatus, StepReport};
use crate::verdict::{CellResult, Counts, Observed, Status};

/// The colour class of a cell, as the page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellClass {
    /// Passed, and the connection was allowed.
    AgreesAllowed = 0,
    /// Passed, and the connection was blocked (or the name did not resolve, as expected).
    AgreesBlocked = 1,
    /// Disagreed with the expectation.
    Mismatch = 2,
    /// The answer changed between rounds (whatever the status of the look that stands).
    Flaky = 3,
    /// Cannot be tested on this cluster.
    Unsupported = 4,
    /// Infrastructure trouble.
    Error = 5,
}

impl CellClass {
    /// The class of a judged cell.
    pub fn of(c: &CellResult) -> CellClass {
        if c.flaky {
            return CellClass::Flaky;
        }
        match c.status {
            Status::Pass if c.observed == Observed::Allowed => CellClass::AgreesAllowed,
            Status::Pass => CellClass::AgreesBlocked,
            Status::Fail => CellClass::Mismatch,
            Status::Unsupported => CellClass::Unsupported,
            Status::Error => CellClass::Error,
        }
    }
}

fn status_code(s: Status) -> i64 {
    match s {
        Status::Pass => 0,
        Status::Fail => 1,
        Status::Unsupported => 2,
        Status::Error => 3,
    }
}

/// The whole page's data.
#[derive(Debug, Serialize)]
pub struct Data {
    /// Layout version of this value (the page's script reads this one).
    pub v: u32,
    /// Scenarios in report order.
    pub scenarios: Vec<ScenarioData>,
}

/// One scenario.
#[derive(Debug, Serialize)]
pub struct ScenarioData {
    id: String,
    group: String,
    name: String,
    title: String,
    path: String,
    run_id: String,
    status: ScenarioStatus,
    probe_timeout_s: u32,
    namespaces: Vec<(String, String)>,
    /// `[node, [pod, …]]`: where the probe pods ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pod_nodes: Vec<(String, Vec<String>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    teardown_error: Option<String>,
    kept: bool,
    counts: Counts,
    duration_ms: u64,
    /// `[label, group index, id]`: a target's name within its group, and its full spelling.
    nodes: Vec<(String, usize, String)>,
    /// Group names: namespaces, then `external`, `DNS`.
    groups: Vec<String>,
    /// Grid labels (`80/tcp`, `80/tcp via service`, `DNS resolution`), in grid order.
    grids: Vec<String>,
    /// The string table.
    strs: Vec<String>,
    /// Lists of string indices (see the module docs).
    lists: Vec<Vec<i64>>,
    steps: Vec<StepData>,
}

/// One step.
#[derive(Debug, Serialize)]
pub struct StepData {
    index: usize,
    name: String,
    line: usize,
    ran: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    counts: Counts,
    duration_ms: u64,
    rounds: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    converge_ms: Option<u64>,
    /// Cells whose observation differs from the previous step's.
    changed: usize,
    /// Flaky cells.
    flaky: usize,
    cells: Vec<Cell>,
}

/// One cell, serialized as an array in field order. String fields are indices into the
/// scenario's `strs` (-1: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// 0: source node.
    pub from: i64,
    /// 1: target node.
    pub to: i64,
    /// 2: grid.
    pub grid: i64,
    /// 3: [`CellClass`].
    pub class: i64,
    /// 4: status (0 pass, 1 fail, 2 unsupported, 3 error).
    pub status: i64,
    /// 5: expected verdict.
    pub expected: i64,
    /// 6: where the expectation came from (`table at line 32`).
    pub origin: i64,
    /// 7: its line in the scenario file (0: none).
    pub origin_line: i64,
    /// 8: observed.
    pub observed: i64,
    /// 9: why that observation.
    pub why: i64,
    /// 10: the raw outcome.
    pub outcome: i64,
    /// 11: the specification's verdict.
    pub spec: i64,
    /// 12: its reasons (a list: parts joined by `; `).
    pub spec_why: i64,
    /// 13: who disagrees with whom, when not all three agree.
    pub three_way: i64,
    /// 14: the repro command (a list: words joined by spaces).
    pub command: i64,
    /// 15: exit code of the probe tool.
    pub exit_code: Option<i64>,
    /// 16: probe time.
    pub elapsed_ms: Option<u64>,
    /// 17: the tool's output.
    pub output: i64,
    /// 18: the previous step's observation, when it differs.
    pub prev: i64,
    /// 19: flaky (0/1).
    pub flaky: i64,
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(20))?;
        for v in [
            self.from,
            self.to,
            self.grid,
            self.class,
            self.status,
            self.expected,
            self.origin,
            self.origin_line,
            self.observed,
            self.why,
            self.outcome,
            self.spec,
            self.spec_why,
            self.three_way,
            self.command,
        ] {
            q.serialize_element(&v)?;
        }
        q.serialize_element(&self.exit_code)?;
        q.serialize_element(&self.elapsed_ms)?;
        q.serialize_element(&self.output)?;
        q.serialize_element(&self.prev)?;
        q.serialize_element(&self.flaky)?;
        q.end()
    }
}

/// Strings stored once.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: HashMap<String, i64>,
    lists: Vec<Vec<i64>>,
    list_index: HashMap<Vec<i64>, i64>,
}

impl Strings {
    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = i64::try_from(self.list.len()).unwrap_or(i64::MAX);
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }

    fn opt(&mut self, s: Option<&str>) -> i64 {
        s.map_or(-1, |s| self.get(s))
    }

    /// `s` split at `sep`, each part stored once, and the list stored once.
    fn split(&mut self, s: Option<&str>, sep: &str) -> i64 {
        let Some(s) = s else {
            return -1;
        };
        let parts: Vec<i64> = s.split(sep).map(|p| self.get(p)).collect();
        if let Some(&i) = self.list_index.get(&parts) {
            return i;
        }
        let i = i64::try_from(self.lists.len()).unwrap_or(i64::MAX);
        self.lists.push(parts.clone());
        self.list_index.insert(parts, i);
        i
    }
}

/// The group and name of a target, as the grids and the graph order them.
fn split(t: &Target) -> (String, String) {
    match t {
        Target::Pod(p) => (p.ns.clone(), p.name.clone()),
        Target::External(e) => ("external".into(), e.clone()),
        Target::Name(n) => ("DNS".into(), n.clone()),
    }
}

/// Grid order: ports in order (by route within a port), DNS resolution last.
fn grid_key(c: &CellKey) -> (bool, Option<crate::model::PortProto>, Option<&'static str>) {
    (c.port.is_none(), c.port, c.via.map(|v| v.as_str()))
}

/// The cells whose observation differs between `prev` and `step`, with the previous one.
pub fn changes(prev: Option<&StepReport>, step: &StepReport) -> BTreeMap<usize, Observed> {
    let Some(prev) = prev else {
        return BTreeMap::new();
    };
    let before: HashMap<&CellKey, Observed> =
        prev.results.iter().map(|c| (&c.cell, c.observed)).collect();
    step.results
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            before
                .get(&c.cell)
                .filter(|o| **o != c.observed)
                .map(|o| (i, *o))
        })
        .collect()
}

/// Builds one scenario's data.
pub fn scenario(r: &ScenarioReport) -> ScenarioData {
    let mut strs = Strings::default();
    // Groups: the report's namespaces, any other, then the pseudo-groups.
    let mut groups: Vec<String> = r.namespaces.iter().map(|(l, _)| l.clone()).collect();
    let mut targets: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut grid_keys = BTreeMap::new();
    for st in &r.steps {
        for c in &st.results {
            let from = Target::Pod(c.cell.from.clone());
            targets.insert(from.to_string(), split(&from));
            targets.insert(c.cell.to.to_string(), split(&c.cell.to));
            grid_keys.insert(grid_key(&c.cell), port_label(&c.cell));
        }
    }
    let mut extra: Vec<String> = targets
        .values()
        .map(|(g, _)| g.clone())
        .filter(|g| g != "external" && g != "DNS" && !groups.contains(g))
        .collect();
    extra.sort();
    extra.dedup();
    groups.extend(extra);
    for pseudo in ["external", "DNS"] {
        if targets.values().any(|(g, _)| g == pseudo) {
            groups.push(pseudo.into());
        }
    }
    let mut nodes: Vec<(String, usize, String)> = targets
        .into_iter()
        .map(|(id, (g, name))| {
            let gi = groups.iter().position(|x| *x == g).unwrap_or(0);
            (name, gi, id)
        })
        .collect();
    nodes.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let node_index: HashMap<String, i64> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.2.clone(), i64::try_from(i).unwrap_or(-1)))
        .collect();
    let grids: Vec<String> = grid_keys.values().cloned().collect();
    let grid_index: HashMap<String, i64> = grids
        .iter()
        .enumerate()
        .map(|(i, g)| (g.clone(), i64::try_from(i).unwrap_or(-1)))
        .collect();
    let node = |t: &Target| node_index.get(&t.to_string()).copied().unwrap_or(-1);

    let mut steps = Vec::new();
    let mut prev: Option<&StepReport> = None;
    for st in &r.steps {
        let changed = changes(prev, st);
        let cells = st
            .results
            .iter()
            .enumerate()
            .map(|(i, c)| Cell {
                from: node(&Target::Pod(c.cell.from.clone())),
                to: node(&c.cell.to),
                grid: grid_index.get(&port_label(&c.cell)).copied().unwrap_or(-1),
                class: CellClass::of(c) as i64,
                status: status_code(c.status),
                expected: strs.get(c.expected.verdict.as_str()),
                origin: strs.get(&c.expected.origin.to_string()),
                origin_line: i64::try_from(c.expected.origin.line).unwrap_or(0),
                observed: strs.get(&c.observed.to_string()),
                why: strs.get(&c.why),
                outcome: strs.get(&c.outcome.to_string()),
                spec: strs.opt(c.spec.as_ref().map(|s| s.verdict.as_str())),
                spec_why: strs.split(c.spec.as_ref().map(|s| s.why.as_str()), "; "),
                three_way: strs.opt(c.three_way()),
                command: strs.split(c.detail.command.as_deref(), " "),
                exit_code: c.detail.exit_code.map(i64::from),
                elapsed_ms: c.detail.elapsed_ms,
                output: strs.opt(c.detail.output.as_deref()),
                prev: changed.get(&i).map_or(-1, |o| strs.get(&o.to_string())),
                flaky: i64::from(c.flaky),
            })
            .collect();
        steps.push(StepData {
            index: st.index,
            name: st.name.clone(),
            line: st.line,
            ran: st.ran,
            error: st.error.clone(),
            counts: st.counts,
            duration_ms: st.duration_ms,
            rounds: st.rounds,
            converge_ms: st.converge_ms,
            changed: changed.len(),
            flaky: st.results.iter().filter(|c| c.flaky).count(),
            cells,
        });
        if st.ran && !st.results.is_empty() {
            prev = Some(st);
        }
    }
    ScenarioData {
        id: r.id.clone(),
        group: r.group.clone(),
        name: r.full_name(),
        title: r.title.clone(),
        path: r.path.display().to_string(),
        run_id: r.run_id.clone(),
        status: r.status,
        probe_timeout_s: r.probe_timeout_s,
        namespaces: r.namespaces.clone(),
        pod_nodes: r
            .pods_by_node()
            .into_iter()
            .map(|(n, pods)| (n.to_owned(), pods.into_iter().map(str::to_owned).collect()))
            .collect(),
        error: r.error.clone(),
        teardown_error: r.teardown_error.clone(),
        kept: r.kept,
        counts: r.counts,
        duration_ms: r.duration_ms,
        nodes,
        groups,
        grids,
        strs: strs.list,
        lists: strs.lists,
        steps,
    }
}

/// The page's data for a set of reports.
pub fn data(reports: &[ScenarioReport]) -> Data {
    Data {
        v: 1,
        scenarios: reports.iter().map(scenario).collect(),
    }
}

/// The data as JSON that is safe inside a `<script>` element: `<`, `>` and `&` only ever occur
/// inside JSON strings, where `\u003c` and friends mean the same.
pub fn script_json(d: &Data) -> String {
    let json = serde_json::to_string(d).unwrap_or_else(|_| "{\"v\":1,\"scenarios\":[]}".into());
    let mut out = String::with_capacity(json.len() + 64);
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
