//! Reachability between workloads: every workload pair and port the destination declares,
//! from the engine's [`WorkloadMatrix`], with the reason of one representative pod pair per
//! verdict.

use std::collections::{BTreeMap, BTreeSet};

use super::{Inventory, Owner, Reach, WorkloadId};
use crate::engine::query;
use crate::engine::{Explanation, Side, Spec, WorkloadMatrix, Workloads, World, explain};
use crate::model::{CellKey, PodId, PortProto, Target, Via};

/// Pods by owner workload, and within one by the engine's policy-equivalence class.
pub(crate) struct Groups {
    /// The workloads, in order.
    pub owners: Vec<WorkloadId>,
    /// Per workload: class index → its pods of that class.
    pub members: Vec<BTreeMap<usize, Vec<PodId>>>,
    /// Per workload: whether its pods come from a template (addresses unknown).
    pub from_template: Vec<bool>,
    /// The engine's classes.
    pub classes: Workloads,
}

impl Groups {
    pub fn of(inv: &Inventory, w: &World) -> Groups {
        let classes = Workloads::of(w);
        let mut by_owner: BTreeMap<WorkloadId, (BTreeMap<usize, Vec<PodId>>, bool)> =
            BTreeMap::new();
        for p in &inv.pods {
            let id = PodId::new(&p.ns, &p.name);
            let Some(c) = classes.of_pod(&id) else {
                continue;
            };
            let e = by_owner
                .entry(WorkloadId {
                    ns: p.ns.clone(),
                    owner: Owner::of(p),
                })
                .or_insert_with(|| (BTreeMap::new(), true));
            e.0.entry(c).or_default().push(id);
            e.1 &= p.ip.is_none() && p.owner.is_some();
        }
        let mut g = Groups {
            owners: Vec::new(),
            members: Vec::new(),
            from_template: Vec::new(),
            classes,
        };
        for (id, (m, t)) in by_owner {
            g.owners.push(id);
            g.members.push(m);
            g.from_template.push(t);
        }
        g
    }

    /// The workload's pods.
    pub fn pods(&self, i: usize) -> impl Iterator<Item = &PodId> {
        self.members[i].values().flatten()
    }
}

/// One verdict's share of a workload pair and port.
struct Share {
    pairs: usize,
    from: BTreeSet<usize>,
    to: BTreeSet<usize>,
    rep: (PodId, PodId),
}

pub(crate) fn compute(w: &World, g: &Groups) -> Vec<Reach> {
    let ports: BTreeSet<PortProto> = w
        .pods
        .values()
        .flat_map(|p| p.ports.iter().map(|s| s.port))
        .collect();
    let mut out = Vec::new();
    for port in ports {
        let wm = WorkloadMatrix::compute(w, port);
        let serves = |c: usize| g.classes.workloads[c].ports.iter().any(|s| s.port == port);
        for (s, src) in g.owners.iter().enumerate() {
            for (d, dst) in g.owners.iter().enumerate() {
                let mut shares: BTreeMap<&'static str, (Spec, Share)> = BTreeMap::new();
                let mut total = 0;
                for (&cs, spods) in &g.members[s] {
                    for (&cd, dpods) in &g.members[d] {
                        if !serves(cd) {
                            continue;
                        }
                        let Some(v) = wm.between(cs, cd) else {
                            continue;
                        };
                        let same = if s == d && cs == cd { spods.len() } else { 0 };
                        let n = spods.len() * dpods.len() - same;
                        let Some(to) = dpods.iter().find(|p| **p != spods[0]) else {
                            continue;
                        };
                        total += n;
                        let (_, sh) = shares.entry(v.as_str()).or_insert_with(|| {
                            let sh = Share {
                                pairs: 0,
                                from: BTreeSet::new(),
                                to: BTreeSet::new(),
                                rep: (spods[0].clone(), to.clone()),
                            };
                            (v, sh)
                        });
                        sh.pairs += n;
                        sh.from.insert(cs);
                        sh.to.insert(cd);
                    }
                }
                for (v, sh) in shares.into_values() {
                    let mut e = explain(
                        w,
                        &CellKey {
                            from: sh.rep.0.clone(),
                            to: Target::Pod(sh.rep.1.clone()),
                            port: Some(port),
                            via: Some(Via::Ip),
                        },
                    );
                    query::locate_rules(w, &mut e);
                    let count = |m: &BTreeMap<usize, Vec<PodId>>, cs: &BTreeSet<usize>| {
                        cs.iter().map(|c| m.get(c).map_or(0, Vec::len)).sum()
                    };
                    out.push(Reach {
                        from: src.to_string(),
                        from_kind: src.owner.kind.clone(),
                        to: dst.to_string(),
                        to_kind: dst.owner.kind.clone(),
                        port,
                        verdict: v,
                        from_pods: count(&g.members[s], &sh.from),
                        to_pods: count(&g.members[d], &sh.to),
                        pairs: sh.pairs,
                        total_pairs: total,
                        by_policy: sides(&e).any(|s| !s.isolated_by.is_empty()),
                        reason: reason(&e),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.from, &a.to, a.port, a.verdict.as_str()).cmp(&(
            &b.from,
            &b.to,
            b.port,
            b.verdict.as_str(),
        ))
    });
    out
}

/// Ingress, then egress.
fn sides(e: &Explanation) -> impl Iterator<Item = &Side> {
    [e.ingress.as_ref(), e.egress.as_ref()]
        .into_iter()
        .flatten()
}

/// `ns/policy (ingress rule 1 at file:line)`, joined.
fn hits(s: &Side) -> String {
    s.allowed_by
        .iter()
        .map(|h| {
            format!(
                "{} ({} rule {} at {})",
                h.policy, h.direction, h.rule, h.origin
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why, in words.
pub(crate) fn reason(e: &Explanation) -> String {
    match e.verdict {
        Spec::Allow if sides(e).all(|s| s.isolated_by.is_empty()) => {
            "allowed: no policy isolates either end".into()
        }
        Spec::Allow => {
            // The rules first, then the end no policy isolates.
            let (open, isolated): (Vec<&Side>, Vec<&Side>) =
                sides(e).partition(|s| s.isolated_by.is_empty());
            let parts: Vec<String> = isolated
                .iter()
                .map(|s| format!("allowed by {}", hits(s)))
                .chain(open.iter().map(|s| format!("{} not isolated", s.direction)))
                .collect();
            parts.join("; ")
        }
        Spec::Block | Spec::Unresolved => {
            let parts: Vec<String> = sides(e)
                .filter(|s| s.verdict == crate::engine::Tri::No)
                .map(|s| {
                    format!(
                        "{} isolated by {} and no rule admits it",
                        s.direction,
                        s.isolated_by.join(", ")
                    )
                })
                .collect();
            format!("blocked: {}", parts.join("; "))
        }
        Spec::Unspecified => {
            let why: BTreeSet<&String> = sides(e).flat_map(|s| &s.unknown_because).collect();
            format!(
                "unspecified: {}",
                why.into_iter().cloned().collect::<Vec<_>>().join("; ")
            )
        }
    }
}
