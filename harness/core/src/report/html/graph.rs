//! The graph of who may reach whom in one step: namespaces as groups, pods (and external
//! endpoints, DNS names) as nodes, one arrow per source and target that carries what the step
//! saw between them: allowed, a mismatch either way, flaky, or undecided (error, unsupported).
//!
//! The layout is computed here, deterministically (same report, same picture, byte for byte):
//! groups left to right in namespace order, wrapping into rows; each group's nodes on a small
//! grid in name order. [`super::svg`] draws it.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::model::{Target, Verdict};
use crate::report::{ScenarioReport, StepReport};
use crate::verdict::{CellResult, Observed, Status};

/// What an arrow says, by precedence: a pair's arrow shows the most important of its cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// Only errors or unsupported cells, nothing decided: the connection is unknown.
    Undecided,
    /// Allowed, as expected.
    Allowed,
    /// The answer changed between rounds.
    Flaky,
    /// A disagreeing cell that is neither of the two below (e.g. a DNS failure where a block
    /// was expected).
    OtherMismatch,
    /// Allowed, but expected blocked: a hole.
    Unexpected,
    /// Blocked (or the name did not resolve), but expected allowed: a broken path.
    Missing,
}

impl EdgeKind {
    /// Every kind, in drawing order (the most important on top).
    pub const ALL: [EdgeKind; 6] = [
        EdgeKind::Undecided,
        EdgeKind::Allowed,
        EdgeKind::Flaky,
        EdgeKind::OtherMismatch,
        EdgeKind::Unexpected,
        EdgeKind::Missing,
    ];

    /// `undecided`, `allowed`, `flaky`, `other-mismatch`, `unexpected`, `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Undecided => "undecided",
            EdgeKind::Allowed => "allowed",
            EdgeKind::Flaky => "flaky",
            EdgeKind::OtherMismatch => "other-mismatch",
            EdgeKind::Unexpected => "unexpected",
            EdgeKind::Missing => "missing",
        }
    }

    /// The legend's words.
    pub fn legend(self) -> &'static str {
        match self {
            EdgeKind::Undecided => "undecided (error or unsupported)",
            EdgeKind::Allowed => "allowed",
            EdgeKind::Flaky => "flaky",
            EdgeKind::OtherMismatch => "mismatch (DNS)",
            EdgeKind::Unexpected => "MISMATCH: allowed, expected blocked",
            EdgeKind::Missing => "MISMATCH: blocked, expected allowed",
        }
    }

    /// Stroke colour (Okabe–Ito), width and dash pattern: the kinds differ in pattern as well
    /// as colour.
    pub(crate) fn stroke(self) -> (&'static str, &'static str, Option<&'static str>) {
        match self {
            EdgeKind::Undecided => ("#8c8c8c", "1.2", Some("2 3")),
            EdgeKind::Allowed => ("#0072B2", "1.4", None),
            EdgeKind::Flaky => ("#CC79A7", "2", Some("1 3")),
            EdgeKind::OtherMismatch => ("#D55E00", "2.5", Some("8 3 2 3")),
            EdgeKind::Unexpected => ("#D55E00", "2.8", None),
            EdgeKind::Missing => ("#D55E00", "2.8", Some("7 4")),
        }
    }

    pub(crate) fn is_mismatch(self) -> bool {
        matches!(
            self,
            EdgeKind::OtherMismatch | EdgeKind::Unexpected | EdgeKind::Missing
        )
    }

    /// What one cell says about its pair; `None` when it adds no arrow (blocked as expected).
    pub fn of(c: &CellResult) -> Option<EdgeKind> {
        match c.status {
            Status::Fail if c.observed == Observed::Allowed => Some(EdgeKind::Unexpected),
            Status::Fail if c.expected.verdict == Verdict::Allow => Some(EdgeKind::Missing),
            Status::Fail => Some(EdgeKind::OtherMismatch),
            _ if c.flaky => Some(EdgeKind::Flaky),
            Status::Pass if c.observed == Observed::Allowed => Some(EdgeKind::Allowed),
            Status::Pass => None,
            Status::Unsupported | Status::Error => Some(EdgeKind::Undecided),
        }
    }
}

/// A namespace (or the externals, or the DNS names) as a box.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// Logical name (`external`, `DNS` for the two pseudo-groups).
    pub name: String,
    /// Real namespace name when it differs.
    pub real: Option<String>,
    /// Top-left corner and size.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// A pod, external endpoint or DNS name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// `ns/name`, `ext:name` or `dns:name`: the cell key's spelling.
    pub id: String,
    /// What the box says.
    pub label: String,
    /// Index into [`Graph::groups`].
    pub group: usize,
    /// Centre.
    pub x: f64,
    /// Centre.
    pub y: f64,
    /// Some cell from or to it disagreed.
    pub mismatch: bool,
}

/// One arrow: every cell from one node to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    /// Index into [`Graph::nodes`].
    pub from: usize,
    /// Index into [`Graph::nodes`].
    pub to: usize,
    /// The most important thing its cells say.
    pub kind: EdgeKind,
    /// One line per cell: `80/tcp: allowed` or `5432/tcp: blocked, expected allow`.
    pub cells: Vec<String>,
    /// The ports of its disagreeing cells, for the label on the arrow.
    pub mismatched: Vec<String>,
}

/// A laid-out graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Graph {
    /// `group/id · step 3 "name"`.
    pub caption: String,
    /// Size of the drawing.
    pub width: f64,
    /// Size of the drawing.
    pub height: f64,
    /// Node box size (all nodes alike).
    pub node_w: f64,
    /// Node box size.
    pub node_h: f64,
    /// Boxes around nodes.
    pub groups: Vec<Group>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Arrows, ordered by (from, to).
    pub edges: Vec<Edge>,
    /// Top of the legend.
    pub legend_y: f64,
    /// The legend: the kinds the arrows use, most important first, each at its place (relative
    /// to the legend's top left).
    pub legend: Vec<(EdgeKind, f64, f64)>,
}

/// The width of one legend entry: sample line, words, gap.
fn legend_width(k: EdgeKind) -> f64 {
    42.0 + k.legend().chars().count() as f64 * 6.4 + 24.0
}

const NODE_H: f64 = 30.0;
const GAP_X: f64 = 96.0;
const GAP_Y: f64 = 62.0;
const PAD: f64 = 22.0;
const TITLE_H: f64 = 26.0;
const GROUP_GAP: f64 = 64.0;
const MAX_ROW_W: f64 = 1200.0;
pub(crate) const MARGIN: f64 = 20.0;
const CAPTION_H: f64 = 34.0;
const LEGEND_ROW: f64 = 20.0;
const CHAR_W: f64 = 7.2;
const MAX_LABEL: usize = 26;

/// The group a target belongs to, and its label.
fn place(t: &Target) -> (String, String) {
    match t {
        Target::Pod(p) => (p.ns.clone(), p.name.clone()),
        Target::External(e) => (EXTERNAL.into(), e.clone()),
        Target::Name(n) => (DNS.into(), n.clone()),
    }
}

const EXTERNAL: &str = "external";
const DNS: &str = "DNS";

fn short(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_LABEL - 1).collect();
        t.push('…');
        t
    }
}

/// `80/tcp`, `80/tcp via service`, `DNS resolution`.
pub(crate) fn port_label(c: &crate::model::CellKey) -> String {
    use crate::model::Via;
    match (c.port, c.via) {
        (None, _) => "DNS resolution".into(),
        (Some(p), None | Some(Via::Ip)) => p.to_string(),
        (Some(p), Some(Via::Service)) => format!("{p} via service"),
        (Some(p), Some(Via::Dns)) => format!("{p} via DNS name"),
    }
}

/// Nodes laid out in their groups.
struct Placed {
    groups: Vec<Group>,
    nodes: Vec<Node>,
    node_w: f64,
    width: f64,
    bottom: f64,
}

/// Lays out `ids` (node id → group, label) in `group_names` (name, real name when it differs),
/// groups left to right in that order, wrapping into rows; empty groups are left out.
fn place_nodes(
    group_names: &[(String, Option<String>)],
    ids: &BTreeMap<String, (String, String)>,
) -> Placed {
    let mut members: Vec<Vec<(String, String)>> = vec![Vec::new(); group_names.len()];
    for (id, (g, label)) in ids {
        if let Some(gi) = group_names.iter().position(|(n, _)| n == g) {
            members[gi].push((label.clone(), id.clone()));
        }
    }
    for m in &mut members {
        m.sort();
    }
    let longest = ids
        .values()
        .map(|(_, l)| short(l).chars().count())
        .max()
        .unwrap_or(4);
    let node_w = (longest as f64 * CHAR_W + 24.0).clamp(80.0, 220.0);

    // Groups left to right, wrapping into rows.
    let top = MARGIN + CAPTION_H;
    let (mut x, mut y, mut row_h, mut width) = (MARGIN, top, 0.0_f64, 0.0_f64);
    let mut groups = Vec::new();
    let mut nodes = Vec::new();
    for (gi, (name, real)) in group_names.iter().enumerate() {
        let n = members[gi].len();
        if n == 0 {
            continue;
        }
        let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n);
        let rows = n.div_ceil(cols);
        let title_len = name.chars().count() + real.as_ref().map_or(0, |r| r.chars().count() + 3);
        let grid_w = cols as f64 * node_w + (cols - 1) as f64 * GAP_X;
        let w = (grid_w + 2.0 * PAD).max(title_len as f64 * CHAR_W + 2.0 * PAD);
        let h = TITLE_H + PAD + rows as f64 * NODE_H + (rows - 1) as f64 * GAP_Y + PAD;
        if x > MARGIN && x + w > MAX_ROW_W {
            x = MARGIN;
            y += row_h + GROUP_GAP;
            row_h = 0.0;
        }
        let index = groups.len();
        let left = x + (w - grid_w) / 2.0;
        for (k, (label, id)) in members[gi].iter().enumerate() {
            let (col, row) = (k % cols, k / cols);
            nodes.push(Node {
                id: id.clone(),
                label: short(label),
                group: index,
                x: round(left + col as f64 * (node_w + GAP_X) + node_w / 2.0),
                y: round(y + TITLE_H + PAD + row as f64 * (NODE_H + GAP_Y) + NODE_H / 2.0),
                mismatch: false,
            });
        }
        groups.push(Group {
            name: name.clone(),
            real: real.clone(),
            x: round(x),
            y: round(y),
            w: round(w),
            h: round(h),
        });
        x += w + GROUP_GAP;
        width = width.max(x - GROUP_GAP + MARGIN);
        row_h = row_h.max(h);
    }
    let groups_bottom = y + row_h;
    Placed {
        groups,
        nodes,
        node_w,
        width,
        bottom: groups_bottom,
    }
}

/// The legend under the groups, and the whole drawing's size.
fn finish(caption: String, placed: Placed, edges: Vec<Edge>) -> Graph {
    let Placed {
        groups,
        nodes,
        node_w,
        width,
        bottom: groups_bottom,
    } = placed;
    let width = width.max(2.0 * MARGIN + 560.0);
    // The legend under the groups, wrapped to the drawing's width.
    let mut legend = Vec::new();
    let (mut lx, mut ly) = (0.0, 0.0);
    for k in EdgeKind::ALL.into_iter().rev() {
        if !edges.iter().any(|e| e.kind == k) {
            continue;
        }
        let w = legend_width(k);
        if lx > 0.0 && lx + w > width - 2.0 * MARGIN {
            lx = 0.0;
            ly += LEGEND_ROW;
        }
        legend.push((k, lx, ly));
        lx += w;
    }
    let legend_y = groups_bottom + MARGIN;
    let height = legend_y + ly + LEGEND_ROW + MARGIN / 2.0;
    Graph {
        caption,
        width: round(width),
        height: round(height),
        node_w,
        node_h: NODE_H,
        groups,
        nodes,
        edges,
        legend_y: round(legend_y),
        legend,
    }
}

/// A graph of any nodes and arrows: `groups` in drawing order (name, real name when it
/// differs), `nodes` (id, group name, label), `edges` between node ids (unknown ids are left
/// out), e.g. the workloads of an audit.
pub fn layout(
    caption: String,
    groups: &[(String, Option<String>)],
    nodes: &[(String, String, String)],
    edges: Vec<(String, String, EdgeKind, Vec<String>)>,
) -> Graph {
    let ids: BTreeMap<String, (String, String)> = nodes
        .iter()
        .map(|(id, g, l)| (id.clone(), (g.clone(), l.clone())))
        .collect();
    let placed = place_nodes(groups, &ids);
    let index: BTreeMap<&str, usize> = placed
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut edges: Vec<Edge> = edges
        .into_iter()
        .filter_map(|(f, t, kind, cells)| {
            let (&from, &to) = (index.get(f.as_str())?, index.get(t.as_str())?);
            (from != to).then_some(Edge {
                from,
                to,
                kind,
                cells,
                mismatched: Vec::new(),
            })
        })
        .collect();
    edges.sort_by_key(|e| (e.from, e.to));
    finish(caption, placed, edges)
}

/// Lays out the graph of one step of a scenario.
pub fn graph(r: &ScenarioReport, step: &StepReport) -> Graph {
    // Nodes, keyed by (group, label) through their ids.
    let mut ids: BTreeMap<String, (String, String)> = BTreeMap::new();
    for c in &step.results {
        let from = Target::Pod(c.cell.from.clone());
        ids.insert(from.to_string(), place(&from));
        ids.insert(c.cell.to.to_string(), place(&c.cell.to));
    }
    // Group order: the report's namespaces, then any other namespace, then externals and names.
    let mut group_names: Vec<String> = r.namespaces.iter().map(|(l, _)| l.clone()).collect();
    let mut rest: Vec<String> = ids
        .values()
        .map(|(g, _)| g.clone())
        .filter(|g| g != EXTERNAL && g != DNS && !group_names.contains(g))
        .collect();
    rest.sort();
    rest.dedup();
    group_names.extend(rest);
    for pseudo in [EXTERNAL, DNS] {
        if ids.values().any(|(g, _)| g == pseudo) {
            group_names.push(pseudo.into());
        }
    }
    let named: Vec<(String, Option<String>)> = group_names
        .iter()
        .map(|g| {
            let real = r
                .namespaces
                .iter()
                .find(|(l, _)| l == g)
                .map(|(_, re)| re.clone())
                .filter(|re| re != g);
            (g.clone(), real)
        })
        .collect();
    let mut placed = place_nodes(&named, &ids);
    let nodes = &mut placed.nodes;

    // Arrows: every cell between two different nodes, by pair.
    let index: BTreeMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.clone(), i))
        .collect();
    // Every cell of a pair is listed on its arrow (blocked ones too); a pair gets an arrow when
    // one of its cells says something (see [`EdgeKind::of`]).
    let mut pairs: BTreeMap<(usize, usize), (Option<EdgeKind>, Edge)> = BTreeMap::new();
    for c in &step.results {
        let (Some(&f), Some(&t)) = (
            index.get(&c.cell.from.to_string()),
            index.get(&c.cell.to.to_string()),
        ) else {
            continue;
        };
        if c.status == Status::Fail {
            nodes[f].mismatch = true;
            nodes[t].mismatch = true;
        }
        if f == t {
            continue;
        }
        let (kind, e) = pairs.entry((f, t)).or_insert_with(|| {
            (
                None,
                Edge {
                    from: f,
                    to: t,
                    kind: EdgeKind::Undecided,
                    cells: Vec::new(),
                    mismatched: Vec::new(),
                },
            )
        });
        *kind = (*kind).max(EdgeKind::of(c));
        let port = port_label(&c.cell);
        let mut line = format!("{port}: {}", c.observed);
        if c.status != Status::Pass {
            let _ = write!(line, ", expected {}", c.expected.verdict.as_str());
        }
        if c.flaky {
            line.push_str(" (flaky)");
        }
        e.cells.push(line);
        if c.status == Status::Fail {
            e.mismatched.push(port);
        }
    }
    let edges = pairs
        .into_values()
        .filter_map(|(kind, e)| kind.map(|kind| Edge { kind, ..e }))
        .collect();
    finish(
        format!(
            "{} · step {} \u{201c}{}\u{201d}",
            r.full_name(),
            step.index,
            step.name
        ),
        placed,
        edges,
    )
}

pub(crate) fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The step of a scenario its `--svg` graph shows: the first with a mismatch, else the last that
/// ran.
pub fn chosen_step(r: &ScenarioReport) -> Option<&StepReport> {
    r.steps.iter().find(|s| s.counts.fail > 0).or_else(|| {
        r.steps
            .iter()
            .rev()
            .find(|s| s.ran && !s.results.is_empty())
    })
}
