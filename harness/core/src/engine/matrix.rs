//! Whole matrices at once: every pod → pod verdict on one port, and the same by workload.
//!
//! [`explain`](super::explain) answers one cell and says why; asked for every cell of a large
//! world it repeats the same work (which policies select a pod, which pods a peer admits)
//! millions of times. [`Matrix::compute`] does each of those once: for every rule it computes
//! the set of pods its peers admit and the set of destinations its ports admit (three-valued,
//! as bitsets over the pods), for every pod which policies select it, and then each egress row
//! and ingress column as a union of those sets. A cell is then two bit lookups. The per-pod and
//! per-rule answers come from the same functions `explain` uses, so the verdicts are the same
//! by construction of the parts, and by test of the whole (`engine/tests.rs`).
//!
//! [`Workloads`] groups pods that no policy can tell apart — same namespace, labels and ports,
//! and the same answer to every ipBlock address in force — so a report can show, and explain,
//! one representative pair per workload pair and expand it to every pod: exact, not an
//! approximation (see [`Workloads::of`]). [`WorkloadMatrix`] computes its verdicts among the
//! representatives only, so its cost grows with the number of workloads, not of pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::address::contains;
use super::matching::{Endpoint, Route, has_named_port, peers_match, ports_match};
use super::world::has_type;
use super::{Explanation, Spec, Tri, World, explain};
use crate::model::{CellKey, PodId, PortProto, ServedPort, Target, Via};
use crate::policy::{AddrExpr, NetworkPolicy, Peer, PolicyType};

/// A three-valued set over `n` pods: two bitsets, `yes` and `unknown` (never both).
#[derive(Clone, Debug, PartialEq, Eq)]
struct TriSet {
    yes: Vec<u64>,
    unknown: Vec<u64>,
}

impl TriSet {
    fn words(n: usize) -> usize {
        n.div_ceil(64)
    }

    fn none(n: usize) -> TriSet {
        TriSet {
            yes: vec![0; Self::words(n)],
            unknown: vec![0; Self::words(n)],
        }
    }

    fn all(n: usize) -> TriSet {
        let mut s = TriSet::none(n);
        for i in 0..n {
            s.yes[i / 64] |= 1 << (i % 64);
        }
        s
    }

    fn set(&mut self, i: usize, t: Tri) {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        self.yes[w] &= !b;
        self.unknown[w] &= !b;
        match t {
            Tri::Yes => self.yes[w] |= b,
            Tri::Unknown => self.unknown[w] |= b,
            Tri::No => {}
        }
    }

    fn get(&self, i: usize) -> Tri {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if self.yes[w] & b != 0 {
            Tri::Yes
        } else if self.unknown[w] & b != 0 {
            Tri::Unknown
        } else {
            Tri::No
        }
    }

    /// `self = self OR (a AND b)`, Kleene logic bit by bit.
    fn or_and(&mut self, a: &TriSet, b: &TriSet) {
        for w in 0..self.yes.len() {
            let yes = a.yes[w] & b.yes[w];
            let maybe = (a.yes[w] | a.unknown[w]) & (b.yes[w] | b.unknown[w]);
            self.or_word(w, yes, maybe & !yes);
        }
    }

    /// `self = self OR (a AND t)`.
    fn or_scaled(&mut self, a: &TriSet, t: Tri) {
        for w in 0..self.yes.len() {
            match t {
                Tri::Yes => self.or_word(w, a.yes[w], a.unknown[w]),
                Tri::Unknown => self.or_word(w, 0, a.yes[w] | a.unknown[w]),
                Tri::No => {}
            }
        }
    }

    fn or_word(&mut self, w: usize, yes: u64, unknown: u64) {
        self.yes[w] |= yes;
        self.unknown[w] = (self.unknown[w] | unknown) & !self.yes[w];
    }
}

/// What one rule admits, over the pods.
struct RuleSets {
    /// The pods its peers admit (as the other end).
    peers: TriSet,
    /// The destinations its ports admit on the matrix's port: one answer, or one per
    /// destination when it names ports.
    ports: PortSets,
}

enum PortSets {
    Same(Tri),
    PerDestination(TriSet),
}

impl PortSets {
    fn at(&self, d: usize) -> Tri {
        match self {
            PortSets::Same(t) => *t,
            PortSets::PerDestination(s) => s.get(d),
        }
    }
}

/// Every pod → pod verdict on one port, by pod IP: what [`explain`] says of each cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    /// The pods, in the world's order: rows (sources) and columns (destinations).
    pub pods: Vec<PodId>,
    /// The port.
    pub port: PortProto,
    cells: Vec<Spec>,
}

impl Matrix {
    /// Computes every pod → pod cell of `w` on `port`, via the pod IP.
    pub fn compute(w: &World, port: PortProto) -> Matrix {
        Matrix::among(w, port, w.pods.values().collect())
    }

    /// The cells among some of `w`'s pods only (in the world's order); the rest of the world
    /// (namespaces, policies, addresses) still decides them.
    pub fn among_pods(w: &World, port: PortProto, ids: &[&PodId]) -> Matrix {
        let ids: BTreeSet<&PodId> = ids.iter().copied().collect();
        let pods = w.pods.values().filter(|p| ids.contains(&p.id)).collect();
        Matrix::among(w, port, pods)
    }

    fn among(w: &World, port: PortProto, pods: Vec<&super::PodState>) -> Matrix {
        let n = pods.len();
        let policies: Vec<&NetworkPolicy> = w.policies.values().collect();
        let ends: Vec<Endpoint> = pods.iter().map(|p| Endpoint::Pod(p.id.clone())).collect();
        // Per policy and direction, what each rule admits.
        let rule_sets = |np: &NetworkPolicy, dir: PolicyType| -> Vec<RuleSets> {
            let rules = match dir {
                PolicyType::Ingress => np.ingress.as_deref().unwrap_or(&[]),
                PolicyType::Egress => np.egress.as_deref().unwrap_or(&[]),
            };
            rules
                .iter()
                .map(|r| {
                    let mut peers = TriSet::none(n);
                    for (i, e) in ends.iter().enumerate() {
                        peers.set(i, peers_match(w, np, r, e, Route::Direct));
                    }
                    let ports = if has_named_port(r) {
                        let mut s = TriSet::none(n);
                        for (i, p) in pods.iter().enumerate() {
                            s.set(i, ports_match(r, port, &p.ports));
                        }
                        PortSets::PerDestination(s)
                    } else {
                        PortSets::Same(ports_match(r, port, &[]))
                    };
                    RuleSets { peers, ports }
                })
                .collect()
        };
        let ingress: Vec<Vec<RuleSets>> = policies
            .iter()
            .map(|np| rule_sets(np, PolicyType::Ingress))
            .collect();
        let egress: Vec<Vec<RuleSets>> = policies
            .iter()
            .map(|np| rule_sets(np, PolicyType::Egress))
            .collect();
        // Which policies select each pod, per direction (indices into `policies`).
        let mut by_ns: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, np) in policies.iter().enumerate() {
            by_ns.entry(np.ns.as_str()).or_default().push(i);
        }
        let selecting = |p: &super::PodState, dir: PolicyType| -> Vec<usize> {
            by_ns.get(p.id.ns.as_str()).map_or_else(Vec::new, |ix| {
                ix.iter()
                    .copied()
                    .filter(|&i| {
                        has_type(policies[i], dir) && policies[i].pod_selector.matches(&p.labels)
                    })
                    .collect()
            })
        };
        // Egress rows: sources selected by the same policies share one.
        let mut eg_rows: Vec<TriSet> = Vec::new();
        let mut eg_row_of: HashMap<Vec<usize>, usize> = HashMap::new();
        let mut eg_of = Vec::with_capacity(n);
        for p in &pods {
            let sel = selecting(p, PolicyType::Egress);
            let next = eg_rows.len();
            let row = *eg_row_of.entry(sel).or_insert_with_key(|sel| {
                let mut acc = if sel.is_empty() {
                    TriSet::all(n)
                } else {
                    TriSet::none(n)
                };
                for &i in sel {
                    for r in &egress[i] {
                        match &r.ports {
                            PortSets::Same(t) => acc.or_scaled(&r.peers, *t),
                            PortSets::PerDestination(s) => acc.or_and(&r.peers, s),
                        }
                    }
                }
                eg_rows.push(acc);
                next
            });
            eg_of.push(row);
        }
        // Ingress columns: destinations selected by the same policies, whose ports answer
        // every rule alike, share one.
        let mut in_cols: Vec<TriSet> = Vec::new();
        let mut in_col_of: HashMap<(Vec<usize>, Vec<Tri>), usize> = HashMap::new();
        let mut in_of = Vec::with_capacity(n);
        for (d, p) in pods.iter().enumerate() {
            let sel = selecting(p, PolicyType::Ingress);
            let port_answers: Vec<Tri> = sel
                .iter()
                .flat_map(|&i| ingress[i].iter().map(|r| r.ports.at(d)))
                .collect();
            let next = in_cols.len();
            let col = *in_col_of
                .entry((sel, port_answers))
                .or_insert_with_key(|(sel, answers)| {
                    let mut acc = if sel.is_empty() {
                        TriSet::all(n)
                    } else {
                        TriSet::none(n)
                    };
                    let rules = sel.iter().flat_map(|&i| ingress[i].iter());
                    for (r, t) in rules.zip(answers) {
                        acc.or_scaled(&r.peers, *t);
                    }
                    in_cols.push(acc);
                    next
                });
            in_of.push(col);
        }
        let mut cells = Vec::with_capacity(n * n);
        for s in 0..n {
            let eg = &eg_rows[eg_of[s]];
            for d in 0..n {
                cells.push(if s == d {
                    // Loopback: a pod reaching its own IP.
                    Spec::Allow
                } else {
                    Spec::connection(eg.get(d).and(in_cols[in_of[d]].get(s)))
                });
            }
        }
        Matrix {
            pods: pods.iter().map(|p| p.id.clone()).collect(),
            port,
            cells,
        }
    }

    /// The verdict from pod number `from` to pod number `to` (indices into `pods`).
    pub fn at(&self, from: usize, to: usize) -> Spec {
        self.cells[from * self.pods.len() + to]
    }

    /// The verdict from `from` to `to`, when both are pods of the world.
    pub fn verdict(&self, from: &PodId, to: &PodId) -> Option<Spec> {
        let f = self.pods.binary_search(from).ok()?;
        let t = self.pods.binary_search(to).ok()?;
        Some(self.at(f, t))
    }

    /// How many cells have each verdict: allow, block, unspecified.
    pub fn counts(&self) -> (usize, usize, usize) {
        let c = |v: Spec| self.cells.iter().filter(|x| **x == v).count();
        (c(Spec::Allow), c(Spec::Block), c(Spec::Unspecified))
    }
}

/// Pods that no policy in force can tell apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Their namespace.
    pub ns: String,
    /// Their labels.
    pub labels: BTreeMap<String, String>,
    /// Their ports.
    pub ports: Vec<ServedPort>,
    /// The pods, in the world's order.
    pub pods: Vec<PodId>,
}

/// The world's pods grouped into [`Workload`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workloads {
    /// The workloads, ordered by their first pod.
    pub workloads: Vec<Workload>,
    /// The world's pods, in its order.
    pods: Vec<PodId>,
    /// The workload of each pod of `pods`.
    of: Vec<usize>,
}

impl Workloads {
    /// Groups `w`'s pods. Two pods share a workload when they have the same namespace, labels
    /// and declared ports, and every ipBlock address in force (CIDR or except, of any rule)
    /// gives them the same answer. That is everything a verdict reads of a pod besides its
    /// name: which policies select it (namespace, labels), whether a peer admits it (namespace
    /// and its labels, labels, ipBlocks), and whether a named port names it (ports). So for
    /// pods `s` in workload A and `d` in workload B, `s != d`, the verdict of `s -> d` is the
    /// verdict of any other such pair of A and B; `s -> s` is loopback.
    pub fn of(w: &World) -> Workloads {
        let mut addrs: Vec<&AddrExpr> = Vec::new();
        for np in w.policies.values() {
            for r in np.ingress.iter().chain(np.egress.iter()).flatten() {
                for p in r.peers.iter().flatten() {
                    if let Peer::IpBlock(b) = p {
                        for a in std::iter::once(&b.cidr).chain(&b.except) {
                            if !addrs.contains(&a) {
                                addrs.push(a);
                            }
                        }
                    }
                }
            }
        }
        type Key<'a> = (
            &'a str,
            &'a BTreeMap<String, String>,
            &'a [ServedPort],
            Vec<Tri>,
        );
        let mut index: HashMap<Key<'_>, usize> = HashMap::new();
        let mut workloads: Vec<Workload> = Vec::new();
        let mut of = Vec::with_capacity(w.pods.len());
        for p in w.pods.values() {
            let e = Endpoint::Pod(p.id.clone());
            let sig: Vec<Tri> = addrs.iter().map(|a| contains(w, a, &e)).collect();
            let key = (p.id.ns.as_str(), &p.labels, p.ports.as_slice(), sig);
            let next = workloads.len();
            let k = *index.entry(key).or_insert_with(|| {
                workloads.push(Workload {
                    ns: p.id.ns.clone(),
                    labels: p.labels.clone(),
                    ports: p.ports.clone(),
                    pods: Vec::new(),
                });
                next
            });
            workloads[k].pods.push(p.id.clone());
            of.push(k);
        }
        Workloads {
            workloads,
            pods: w.pods.keys().cloned().collect(),
            of,
        }
    }

    /// The workload of a pod.
    pub fn of_pod(&self, p: &PodId) -> Option<usize> {
        let i = self.pods.binary_search(p).ok()?;
        self.of.get(i).copied()
    }

    /// A representative cell from workload `a` to workload `b` on `port` (two different pods),
    /// or `None` when `a == b` has a single pod (its only cell is loopback).
    pub fn representative(&self, a: usize, b: usize, port: PortProto) -> Option<CellKey> {
        let from = self.workloads.get(a)?.pods.first()?;
        let to = self.workloads.get(b)?.pods.iter().find(|p| *p != from)?;
        Some(CellKey {
            from: from.clone(),
            to: Target::Pod(to.clone()),
            port: Some(port),
            via: Some(Via::Ip),
        })
    }
}

/// Every workload → workload verdict on one port; explanations on demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadMatrix {
    /// The grouping.
    pub workloads: Workloads,
    /// The port.
    pub port: PortProto,
    /// Row-major, `workloads × workloads`: the verdict between two different pods of the two
    /// workloads; `None` for a single-pod workload to itself (its only cell is loopback).
    verdicts: Vec<Option<Spec>>,
}

impl WorkloadMatrix {
    /// Groups `w`'s pods and computes the verdict between every two workloads, from one or two
    /// representative pods of each ([`Matrix::among_pods`]).
    pub fn compute(w: &World, port: PortProto) -> WorkloadMatrix {
        let workloads = Workloads::of(w);
        let reps: Vec<&PodId> = workloads
            .workloads
            .iter()
            .flat_map(|wl| wl.pods.iter().take(2))
            .collect();
        let m = Matrix::among_pods(w, port, &reps);
        // Each workload's first and (if any) second pod, as indices into `m`.
        let at = |p: &PodId| m.pods.binary_search(p).ok();
        let ends: Vec<(Option<usize>, Option<usize>)> = workloads
            .workloads
            .iter()
            .map(|wl| (wl.pods.first().and_then(at), wl.pods.get(1).and_then(at)))
            .collect();
        let k = workloads.workloads.len();
        let mut verdicts = Vec::with_capacity(k * k);
        for (a, (a0, a1)) in ends.iter().enumerate() {
            for (b, (b0, _)) in ends.iter().enumerate() {
                // As `Workloads::representative` picks them: a's first pod, and b's first pod
                // other than it.
                let to = if a == b { *a1 } else { *b0 };
                verdicts.push(a0.zip(to).map(|(f, t)| m.at(f, t)));
            }
        }
        WorkloadMatrix {
            workloads,
            port,
            verdicts,
        }
    }

    /// The verdict between two different pods of workloads `a` and `b`.
    pub fn between(&self, a: usize, b: usize) -> Option<Spec> {
        let k = self.workloads.workloads.len();
        (a < k && b < k).then(|| self.verdicts[a * k + b]).flatten()
    }

    /// Why: the explanation of the representative cell from workload `a` to `b` (its text names
    /// the representative pods).
    pub fn explain(&self, w: &World, a: usize, b: usize) -> Option<Explanation> {
        let c = self.workloads.representative(a, b, self.port)?;
        Some(explain(w, &c))
    }

    /// Every pair's explanation, row-major (what a report listing reasons per workload pair
    /// needs).
    pub fn explain_all(&self, w: &World) -> Vec<Option<Explanation>> {
        let k = self.workloads.workloads.len();
        (0..k * k).map(|i| self.explain(w, i / k, i % k)).collect()
    }

    /// Every pod → pod verdict, expanded from the workloads.
    pub fn expand(&self) -> Matrix {
        let (pods, of) = (&self.workloads.pods, &self.workloads.of);
        let k = self.workloads.workloads.len();
        let n = pods.len();
        let mut cells = Vec::with_capacity(n * n);
        for s in 0..n {
            let row = &self.verdicts[of[s] * k..(of[s] + 1) * k];
            for d in 0..n {
                cells.push(if s == d {
                    Spec::Allow
                } else {
                    // A workload to itself has a verdict whenever it has two pods, as here.
                    row[of[d]].unwrap_or(Spec::Unspecified)
                });
            }
        }
        Matrix {
            pods: pods.clone(),
            port: self.port,
            cells,
        }
    }

    /// The verdict from pod `from` to pod `to`, expanded from their workloads.
    pub fn verdict(&self, from: &PodId, to: &PodId) -> Option<Spec> {
        if from == to {
            return self.workloads.of_pod(from).map(|_| Spec::Allow);
        }
        self.between(self.workloads.of_pod(from)?, self.workloads.of_pod(to)?)
    }
}
