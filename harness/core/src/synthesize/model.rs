//! The intent as constraints: every (source pod, destination, port) triple is wanted allowed,
//! blocked, or left open; name resolution per pod; pods grouped into label classes.
//!
//! A *class* is the set of pods of one namespace with identical labels: no label selector can
//! tell its members apart, so every policy treats them alike as sources and as selected pods
//! (as destinations they may still differ by their ports). The constraints are consolidated per
//! class before anything is synthesized: where the intent treats members differently, the
//! allowed side wins and a [`Note`] names the cells that cannot be met, with a label to add.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Intent, Note, NoteKind};
use crate::engine::PodState;
use crate::model::{CellKey, PodId, PortProto, Protocol, Target, Verdict, Via};

/// The far end of a triple: a pod or an external endpoint (by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum End {
    Pod(usize),
    Ext(usize),
}

/// A connection regardless of route: source pod, destination, port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Triple {
    pub src: usize,
    pub dst: End,
    pub port: PortProto,
}

/// What the intent wants of a triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// A listed cell is allowed.
    Allow,
    /// A listed cell is blocked.
    Block,
    /// Not listed, but in the universe (a served port): meant to be blocked.
    Soft,
}

/// Pods of one namespace with identical labels.
#[derive(Clone, Debug)]
pub(crate) struct Class {
    pub ns: String,
    pub members: Vec<usize>,
}

/// The consolidated constraints.
#[derive(Debug)]
pub(crate) struct Model<'a> {
    pub pods: Vec<&'a PodState>,
    pub index: BTreeMap<PodId, usize>,
    pub exts: Vec<(String, Vec<PortProto>)>,
    pub class_of: Vec<usize>,
    pub classes: Vec<Class>,
    /// Pods by namespace (every namespace of the World, possibly empty).
    pub ns_pods: BTreeMap<String, Vec<usize>>,
    pub want: HashMap<Triple, Want>,
    /// Allowed triples by source pod and by destination pod.
    pub allowed_from: Vec<Vec<Triple>>,
    pub allowed_to: Vec<Vec<Triple>>,
    /// Name resolution per class: needed, forbidden, or not asked.
    pub dns: Vec<Option<bool>>,
    /// Listed cells of each triple, and each pod's cells that need name resolution.
    pub cells: HashMap<Triple, Vec<CellKey>>,
    pub dns_cells: Vec<Vec<CellKey>>,
    /// Pods that are the source of a cell through a Service, by DNS name, or of a resolution
    /// cell (where an ipBlock in their egress would be unspecified).
    pub translated: Vec<bool>,
    pub notes: Vec<Note>,
}

impl<'a> Model<'a> {
    pub fn labels(&self, pod: usize) -> &'a BTreeMap<String, String> {
        &self.pods[pod].labels
    }

    pub fn ns(&self, pod: usize) -> &'a str {
        &self.pods[pod].id.ns
    }

    pub fn id(&self, pod: usize) -> &'a PodId {
        &self.pods[pod].id
    }

    /// The name `pod` gives port `p`, if any.
    pub fn name_of(&self, pod: usize, p: PortProto) -> Option<&'a str> {
        self.pods[pod]
            .ports
            .iter()
            .find(|s| s.port == p)
            .and_then(|s| s.name.as_deref())
    }

    /// The port `pod` names `name` for `protocol`.
    pub fn named(&self, pod: usize, name: &str, protocol: Protocol) -> Option<PortProto> {
        self.pods[pod]
            .ports
            .iter()
            .find(|s| s.name.as_deref() == Some(name) && s.port.protocol == protocol)
            .map(|s| s.port)
    }

    pub fn serves(&self, end: End, p: PortProto) -> bool {
        match end {
            End::Pod(d) => self.pods[d].ports.iter().any(|s| s.port == p),
            End::Ext(e) => self.exts[e].1.contains(&p),
        }
    }

    pub fn blocked(&self, t: &Triple) -> bool {
        matches!(self.want.get(t), Some(Want::Block | Want::Soft))
    }

    /// `ns/pod` or `ext:name`.
    pub fn end_name(&self, e: End) -> String {
        match e {
            End::Pod(p) => self.id(p).to_string(),
            End::Ext(x) => format!("ext:{}", self.exts[x].0),
        }
    }

    /// The cell of a triple by pod IP (or address).
    pub fn ip_cell(&self, t: &Triple) -> CellKey {
        CellKey {
            from: self.id(t.src).clone(),
            to: match t.dst {
                End::Pod(d) => Target::Pod(self.id(d).clone()),
                End::Ext(x) => Target::External(self.exts[x].0.clone()),
            },
            port: Some(t.port),
            via: Some(Via::Ip),
        }
    }

    /// Builds the constraints of an intent.
    pub fn new(intent: &'a Intent) -> Model<'a> {
        let pods: Vec<&PodState> = intent.world.pods.values().collect();
        let index: BTreeMap<PodId, usize> = pods
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let mut exts: BTreeMap<String, Vec<PortProto>> = intent.externals.clone();
        for c in intent.cells.keys() {
            if let (Target::External(x), Some(p)) = (&c.to, c.port) {
                let ports = exts.entry(x.clone()).or_default();
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
        }
        let exts: Vec<(String, Vec<PortProto>)> = exts.into_iter().collect();
        let ext_index: BTreeMap<String, usize> = exts
            .iter()
            .enumerate()
            .map(|(i, e)| (e.0.clone(), i))
            .collect();
        let mut by_labels: BTreeMap<(&str, &BTreeMap<String, String>), Vec<usize>> =
            BTreeMap::new();
        for (i, p) in pods.iter().enumerate() {
            by_labels.entry((&p.id.ns, &p.labels)).or_default().push(i);
        }
        let mut class_of = vec![0; pods.len()];
        let mut classes = Vec::new();
        for ((ns, _), members) in by_labels {
            for &m in &members {
                class_of[m] = classes.len();
            }
            classes.push(Class {
                ns: ns.to_owned(),
                members,
            });
        }
        let mut ns_pods: BTreeMap<String, Vec<usize>> = intent
            .world
            .namespaces
            .keys()
            .map(|n| (n.clone(), Vec::new()))
            .collect();
        for (i, p) in pods.iter().enumerate() {
            ns_pods.entry(p.id.ns.clone()).or_default().push(i);
        }
        let n = pods.len();
        let mut m = Model {
            pods,
            index,
            exts,
            class_of,
            dns: vec![None; classes.len()],
            classes,
            ns_pods,
            want: HashMap::new(),
            allowed_from: vec![Vec::new(); n],
            allowed_to: vec![Vec::new(); n],
            cells: HashMap::new(),
            dns_cells: vec![Vec::new(); n],
            translated: vec![false; n],
            notes: Vec::new(),
        };
        m.read_cells(intent, &ext_index);
        m.add_universe();
        m.consolidate();
        for (t, w) in &m.want {
            if *w == Want::Allow {
                m.allowed_from[t.src].push(*t);
                if let End::Pod(d) = t.dst {
                    m.allowed_to[d].push(*t);
                }
            }
        }
        for v in m.allowed_from.iter_mut().chain(m.allowed_to.iter_mut()) {
            v.sort();
        }
        for v in m.cells.values_mut() {
            v.sort();
        }
        m.notes
            .sort_by(|a, b| a.cells.cmp(&b.cells).then(a.message.cmp(&b.message)));
        m
    }

    fn read_cells(&mut self, intent: &Intent, ext_index: &BTreeMap<String, usize>) {
        let mut dns_votes: Vec<(Vec<CellKey>, Vec<CellKey>)> =
            vec![(Vec::new(), Vec::new()); self.pods.len()];
        let mut route_conflicts: BTreeMap<Triple, Vec<CellKey>> = BTreeMap::new();
        for (cell, v) in &intent.cells {
            let Some(&src) = self.index.get(&cell.from) else {
                self.notes.push(Note {
                    kind: NoteKind::UnknownPod,
                    message: format!("{} is not a pod of the World", cell.from),
                    cells: vec![cell.clone()],
                    suggestion: None,
                });
                continue;
            };
            if cell.via.is_none_or(|v| v != Via::Ip) {
                self.translated[src] = true;
            }
            if cell.is_loopback() {
                if *v != Verdict::Allow {
                    self.notes.push(Note {
                        kind: NoteKind::Loopback,
                        message: format!(
                            "{cell}: a pod reaching itself by its own IP is always allowed; no NetworkPolicy can block it"
                        ),
                        cells: vec![cell.clone()],
                        suggestion: Some("expect loopback cells to be allowed (`loopback: allow`)".into()),
                    });
                }
                continue;
            }
            let dst = match (&cell.to, cell.port) {
                (Target::Name(_), _) | (_, None) => {
                    let votes = &mut dns_votes[src];
                    if *v == Verdict::Allow {
                        &mut votes.0
                    } else {
                        &mut votes.1
                    }
                    .push(cell.clone());
                    self.dns_cells[src].push(cell.clone());
                    continue;
                }
                (Target::Pod(d), Some(_)) => match self.index.get(d) {
                    Some(&d) => End::Pod(d),
                    None => {
                        self.notes.push(Note {
                            kind: NoteKind::UnknownPod,
                            message: format!("{d} is not a pod of the World"),
                            cells: vec![cell.clone()],
                            suggestion: None,
                        });
                        continue;
                    }
                },
                (Target::External(x), Some(_)) => match ext_index.get(x) {
                    Some(&e) => End::Ext(e),
                    None => continue,
                },
            };
            let Some(port) = cell.port else { continue };
            let t = Triple { src, dst, port };
            let want = if cell.via == Some(Via::Dns) {
                self.dns_cells[src].push(cell.clone());
                let votes = &mut dns_votes[src];
                match v {
                    Verdict::Unresolved => {
                        votes.1.push(cell.clone());
                        continue;
                    }
                    Verdict::Allow => {
                        votes.0.push(cell.clone());
                        Want::Allow
                    }
                    Verdict::Block => {
                        votes.0.push(cell.clone());
                        Want::Block
                    }
                }
            } else if *v == Verdict::Allow {
                Want::Allow
            } else {
                Want::Block
            };
            self.cells.entry(t).or_default().push(cell.clone());
            match self.want.get(&t) {
                Some(old) if *old != want => {
                    route_conflicts.entry(t).or_default().push(cell.clone());
                    self.want.insert(t, Want::Allow);
                }
                _ => {
                    self.want.insert(t, want);
                }
            }
        }
        for (t, _) in route_conflicts {
            let cells = self.cells.get(&t).cloned().unwrap_or_default();
            let blocked: Vec<CellKey> = cells
                .iter()
                .filter(|c| intent.cells.get(*c) != Some(&Verdict::Allow))
                .cloned()
                .collect();
            self.notes.push(Note {
                kind: NoteKind::RouteConflict,
                message: format!(
                    "{} -> {} {}: the intent allows it by one route and blocks it by another; selectors decide every route alike",
                    self.id(t.src),
                    self.end_name(t.dst),
                    t.port
                ),
                cells: blocked,
                suggestion: Some("give the routes of one connection the same verdict".into()),
            });
        }
        let mut pod_dns: Vec<Option<bool>> = vec![None; self.pods.len()];
        let mut no_cells: Vec<Vec<CellKey>> = vec![Vec::new(); self.pods.len()];
        for (pod, (yes, no)) in dns_votes.into_iter().enumerate() {
            if !yes.is_empty() && !no.is_empty() {
                self.notes.push(Note {
                    kind: NoteKind::DnsConflict,
                    message: format!(
                        "{}: the intent has it resolve names in some cells and fail to in others; resolution is one egress rule for the pod",
                        self.id(pod)
                    ),
                    cells: no,
                    suggestion: None,
                });
                pod_dns[pod] = Some(true);
            } else if !yes.is_empty() {
                pod_dns[pod] = Some(true);
            } else if !no.is_empty() {
                pod_dns[pod] = Some(false);
                no_cells[pod] = no;
            }
        }
        // Members of a class resolve alike.
        for c in 0..self.classes.len() {
            let members = self.classes[c].members.clone();
            let yes = members.iter().find(|p| pod_dns[**p] == Some(true));
            let no = members.iter().find(|p| pod_dns[**p] == Some(false));
            self.dns[c] = match (yes, no) {
                (Some(&a), Some(_)) => {
                    for &b in members.iter().filter(|p| pod_dns[**p] == Some(false)) {
                        let note =
                            same_labels_note(self, a, b, "resolve names", no_cells[b].clone());
                        self.notes.push(note);
                    }
                    Some(true)
                }
                (Some(_), None) => Some(true),
                (None, Some(_)) => Some(false),
                (None, None) => None,
            };
        }
    }

    /// Every pod to every served port of every other pod, and to every external port: what is
    /// not listed is meant to be blocked.
    fn add_universe(&mut self) {
        for s in 0..self.pods.len() {
            for d in 0..self.pods.len() {
                if d == s {
                    continue;
                }
                for sp in &self.pods[d].ports {
                    let t = Triple {
                        src: s,
                        dst: End::Pod(d),
                        port: sp.port,
                    };
                    self.want.entry(t).or_insert(Want::Soft);
                }
            }
            for (x, (_, ports)) in self.exts.iter().enumerate() {
                for &p in ports {
                    let t = Triple {
                        src: s,
                        dst: End::Ext(x),
                        port: p,
                    };
                    self.want.entry(t).or_insert(Want::Soft);
                }
            }
        }
    }

    /// Makes the wants agree within classes: members of a source class alike (per destination
    /// and port); members of a destination class alike per source, port and port name.
    fn consolidate(&mut self) {
        loop {
            let mut changed = false;
            for side in [0, 1] {
                let mut groups: HashMap<(usize, End, PortProto, Option<&str>), Vec<Triple>> =
                    HashMap::new();
                for t in self.want.keys() {
                    let key = if side == 0 {
                        (self.class_of[t.src], t.dst, t.port, None)
                    } else {
                        let End::Pod(d) = t.dst else { continue };
                        (
                            t.src,
                            End::Pod(self.class_of[d]),
                            t.port,
                            self.name_of(d, t.port),
                        )
                    };
                    groups.entry(key).or_default().push(*t);
                }
                let mut upgrades: Vec<(Triple, Triple)> = Vec::new();
                for (_, mut ts) in groups {
                    ts.sort();
                    let Some(allowed) = ts.iter().find(|t| self.want[t] == Want::Allow) else {
                        continue;
                    };
                    for t in &ts {
                        if self.want[t] != Want::Allow {
                            upgrades.push((*allowed, *t));
                        }
                    }
                }
                upgrades.sort();
                for (allowed, t) in upgrades {
                    if self.want[&t] == Want::Block {
                        let (a, b, what) = if side == 0 {
                            (
                                allowed.src,
                                t.src,
                                format!("reach {} {}", self.end_name(t.dst), t.port),
                            )
                        } else {
                            let (End::Pod(a), End::Pod(b)) = (allowed.dst, t.dst) else {
                                continue;
                            };
                            (
                                a,
                                b,
                                format!("be reached from {} on {}", self.id(t.src), t.port),
                            )
                        };
                        let cells = self.cells.get(&t).cloned().unwrap_or_default();
                        let note = same_labels_note(self, a, b, &what, cells);
                        self.notes.push(note);
                    } else {
                        let cell = self.ip_cell(&t);
                        match self.notes.iter_mut().find(|n| n.kind == NoteKind::UnlistedAllowed) {
                            Some(n) => n.cells.push(cell),
                            None => self.notes.push(Note {
                                kind: NoteKind::UnlistedAllowed,
                                message: "cells the intent does not list, allowed because a pod with the same labels (and port name) has them allowed".into(),
                                cells: vec![cell],
                                suggestion: None,
                            }),
                        }
                    }
                    self.want.insert(t, Want::Allow);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for n in &mut self.notes {
            n.cells.sort();
            n.cells.dedup();
        }
    }
}

/// A note for two pods of one class that the intent treats differently.
fn same_labels_note(
    m: &Model<'_>,
    allowed: usize,
    other: usize,
    what: &str,
    cells: Vec<CellKey>,
) -> Note {
    let (a, b) = (m.id(allowed), m.id(other));
    let labels: Vec<String> = m
        .labels(allowed)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Note {
        kind: NoteKind::SameLabels,
        message: format!(
            "{a} and {b} have the same labels in {} ({{{}}}), so no selector tells them apart, but the intent lets {a} {what} and not {b}",
            a.ns,
            labels.join(", ")
        ),
        cells,
        suggestion: Some(format!(
            "add label netreach.dev/role={} to {b} to tell it from {a}",
            b.name
        )),
    }
}

/// Every pod index of a set of classes.
pub(crate) fn members_of(m: &Model<'_>, classes: &BTreeSet<usize>) -> Vec<usize> {
    let mut v: Vec<usize> = classes
        .iter()
        .flat_map(|c| m.classes[*c].members.iter().copied())
        .collect();
    v.sort_unstable();
    v
}
