//! Steps that add and remove declared pods and namespaces (`add:`, `remove:`): what is absent
//! before the first step, and each step's changes checked against what is present then.
//!
//! Everything is declared once, under `namespaces:` and `pods:`; a step only says when it
//! appears or goes. A pod or namespace that the steps name first in an `add:` is absent until
//! then (removing a namespace names its pods; the pods of a namespace absent at the start are
//! absent too). A step removes first
//! (pods, then namespaces), then adds (namespaces, then pods): a pod can be removed and added
//! back in one step, and a pod added into a namespace the same step adds.

use std::collections::BTreeSet;

use super::raw::{RawStep, Sp};
use crate::diag::{Code, DiagExt, Sink};
use crate::engine::World;
use crate::model::{Absent, Action, Placement, PodId, Scenario};
use crate::policy::PolicyRef;

/// A `namespace/pod` reference, if it has that shape.
fn pod_ref(s: &str) -> Option<PodId> {
    s.split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
        .map(|(a, b)| PodId::new(a, b))
}

/// What is absent before the first step: whatever the steps name first in an `add:` (a
/// namespace's removal names its pods), and every pod of a namespace absent then. Undeclared names are left to [`check`].
pub(super) fn absent_at_start(s: &Scenario, steps: &[RawStep]) -> Absent {
    let mut seen_ns = BTreeSet::new();
    let mut seen_pods = BTreeSet::new();
    let mut absent = Absent::default();
    for rs in steps {
        let (remove, add) = (rs.remove.as_ref(), rs.add.as_ref());
        for p in remove.iter().flat_map(|m| &m.pods) {
            seen_pods.extend(pod_ref(&p.value));
        }
        for n in remove.iter().flat_map(|m| &m.namespaces) {
            seen_ns.insert(n.value.clone());
            // Removing a namespace removes its pods: that mentions them too, so a pod added
            // back later was present before.
            seen_pods.extend(
                s.pods
                    .iter()
                    .filter(|p| p.id.ns == n.value)
                    .map(|p| p.id.clone()),
            );
        }
        for n in add.iter().flat_map(|m| &m.namespaces) {
            if seen_ns.insert(n.value.clone()) && s.namespace(&n.value).is_some() {
                absent.namespaces.insert(n.value.clone());
            }
        }
        for p in add.iter().flat_map(|m| &m.pods) {
            if let Some(id) = pod_ref(&p.value)
                && seen_pods.insert(id.clone())
                && s.pod(&id).is_some()
            {
                absent.pods.insert(id);
            }
        }
    }
    for p in &s.pods {
        if absent.namespaces.contains(&p.id.ns) {
            absent.pods.insert(p.id.clone());
        }
    }
    absent
}

/// Whether `id` takes part in a placement relative to another pod (`node: {same|different}`),
/// as the placed pod or as the one it is placed against.
fn placed_relative(s: &Scenario, id: &PodId) -> bool {
    s.placement.iter().any(|(p, pl)| match pl {
        Placement::Same(o) | Placement::Different(o) => p == id || o == id,
        Placement::Node(_) => false,
    })
}

/// Checks a step's `remove:` then `add:` against `world` (the state before the step), pushes
/// their actions and applies them to `world` at once, so that the step's other actions and its
/// probes see the result. Policies of a removed namespace leave `in_force`.
pub(super) fn check(
    sink: &mut Sink<'_>,
    s: &Scenario,
    rs: &RawStep,
    index: usize,
    world: &mut World,
    in_force: &mut BTreeSet<PolicyRef>,
    actions: &mut Vec<Action>,
) {
    let first = actions.len();
    if let Some(m) = &rs.remove {
        for p in &m.pods {
            let Some(id) = declared_pod(sink, s, p, index, "removes") else {
                continue;
            };
            if !world.pods.contains_key(&id) {
                sink.error_at(
                    Code::InvalidStep,
                    p,
                    format!("step {index} removes pod `{id}`, which is not present at that point"),
                )
                .help("a pod that a step adds first is absent until then; a removed pod is gone until a step adds it back");
                continue;
            }
            act(world, actions, Action::RemovePod(id));
        }
        for n in &m.namespaces {
            if !declared_namespace(sink, s, n, index, "removes") {
                continue;
            }
            if !world.namespaces.contains_key(&n.value) {
                sink.error_at(
                    Code::InvalidStep,
                    n,
                    format!(
                        "step {index} removes namespace `{}`, which is not present at that point",
                        n.value
                    ),
                );
                continue;
            }
            in_force.retain(|r| r.ns != n.value);
            act(world, actions, Action::RemoveNamespace(n.value.clone()));
        }
    }
    if let Some(m) = &rs.add {
        for n in &m.namespaces {
            if !declared_namespace(sink, s, n, index, "adds") {
                continue;
            }
            if world.namespaces.contains_key(&n.value) {
                sink.error_at(
                    Code::InvalidStep,
                    n,
                    format!(
                        "step {index} adds namespace `{}`, which is present at that point",
                        n.value
                    ),
                )
                .help("a declared namespace is present from the start unless a step adds it first; remove it in an earlier step to add it again");
                continue;
            }
            if let Some(ns) = s.namespace(&n.value) {
                act(world, actions, Action::AddNamespace(ns.clone()));
            }
        }
        for p in &m.pods {
            let Some(id) = declared_pod(sink, s, p, index, "adds") else {
                continue;
            };
            if world.pods.contains_key(&id) {
                sink.error_at(
                    Code::InvalidStep,
                    p,
                    format!("step {index} adds pod `{id}`, which is present at that point"),
                )
                .help("a declared pod is present from the start unless a step adds it first; remove it in an earlier step (or this one) to add it again");
                continue;
            }
            if !world.namespaces.contains_key(&id.ns) {
                sink.error_at(
                    Code::InvalidStep,
                    p,
                    format!(
                        "step {index} adds pod `{id}`, but its namespace `{}` is not present at that point",
                        id.ns
                    ),
                )
                .help(format!("add the namespace first: `add: {{namespaces: [{}]}}` in this step or an earlier one", id.ns));
                continue;
            }
            if let Some(pod) = s.pod(&id) {
                act(world, actions, Action::AddPod(pod.clone()));
            }
        }
    }
    // A pod placed relative to another cannot come and go: the scheduling terms of the pods
    // placed against it are fixed at deployment.
    let mut touched: Vec<&PodId> = Vec::new();
    for a in &actions[first..] {
        match a {
            Action::RemovePod(id) => touched.push(id),
            Action::AddPod(p) => touched.push(&p.id),
            Action::RemoveNamespace(ns)
            | Action::AddNamespace(crate::model::Namespace { name: ns, .. }) => {
                touched.extend(s.pods.iter().map(|p| &p.id).filter(|id| &id.ns == ns));
            }
            _ => {}
        }
    }
    touched.sort();
    touched.dedup();
    if let Some(id) = touched.into_iter().find(|id| placed_relative(s, id)) {
        let at = rs
            .add
            .as_ref()
            .and_then(|m| m.pods.first().or(m.namespaces.first()))
            .or_else(|| {
                rs.remove
                    .as_ref()
                    .and_then(|m| m.pods.first().or(m.namespaces.first()))
            });
        if let Some(at) = at {
            sink.error_at(
                Code::Conflict,
                at,
                format!("step {index} adds or removes pod `{id}`, which is placed relative to another pod (`node: {{same|different}}`)"),
            )
            .help("pin it with `node: <node name>` instead, or keep it for the whole run");
        }
    }
}

/// Applies `a` to `world` at once (the step's later changes see it) and records it.
fn act(world: &mut World, actions: &mut Vec<Action>, a: Action) {
    world.apply(std::slice::from_ref(&a));
    actions.push(a);
}

/// The declared pod a reference names; reports anything else.
fn declared_pod(
    sink: &mut Sink<'_>,
    s: &Scenario,
    p: &Sp<String>,
    index: usize,
    verb: &str,
) -> Option<PodId> {
    let Some(id) = pod_ref(&p.value) else {
        sink.error_at(
            Code::InvalidStep,
            p,
            format!("`{}` is not a pod reference", p.value),
        )
        .help("write `namespace/pod` of a declared pod");
        return None;
    };
    if s.pod(&id).is_none() {
        sink.error_at(
            Code::UnknownPod,
            p,
            format!("step {index} {verb} pod `{id}`, which is not declared"),
        )
        .help("declare it under `pods:` (a step says only when it appears or goes)");
        return None;
    }
    if s.namespace(&id.ns).is_some_and(|n| n.existing) {
        sink.error_at(
            Code::ExistingNamespace,
            p,
            format!(
                "step {index} {verb} pod `{id}` in the existing namespace `{}`; steps add and remove pods only in namespaces the run creates",
                id.ns
            ),
        );
        return None;
    }
    Some(id)
}

/// Whether a reference names a declared namespace the run creates; reports anything else.
fn declared_namespace(
    sink: &mut Sink<'_>,
    s: &Scenario,
    n: &Sp<String>,
    index: usize,
    verb: &str,
) -> bool {
    match s.namespace(&n.value) {
        None => {
            sink.error_at(
                Code::UnknownNamespace,
                n,
                format!(
                    "step {index} {verb} namespace `{}`, which is not declared",
                    n.value
                ),
            )
            .help("declare it under `namespaces:` (a step says only when it appears or goes)");
            false
        }
        Some(ns) if ns.existing => {
            sink.error_at(
                Code::ExistingNamespace,
                n,
                format!(
                    "`{}` is an existing namespace; netreach never creates or deletes it",
                    n.value
                ),
            );
            false
        }
        Some(_) => true,
    }
}
