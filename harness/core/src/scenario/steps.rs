//! Validating steps: their actions (delete, replace, apply, relabel) against the policies in
//! force, their own `probes:` if any, then their expectations, which are checked into
//! [`crate::expect::Entry`]s and expanded over the step's probed cells with the policy engine's
//! view after the actions.

use std::collections::BTreeSet;

use super::policy_files::PolicySources;
use super::raw::{RawRelabel, RawStep};
use super::{expectations, probes};
use crate::diag::{Code, DiagExt, Sink};
use crate::engine::World;
use crate::expect;
use crate::model::{Action, CellKey, PodId, Scenario, Step};
use crate::names::{check_label_key, check_label_value};
use crate::policy::{NAMESPACE_NAME_LABEL, PolicyContext, PolicyRef};

/// What carries over from one step to the next while they are checked.
pub(super) struct Steps<'a> {
    scenario: &'a Scenario,
    pcx: PolicyContext<'a>,
    sources: PolicySources<'a>,
    /// Policies in force after the steps checked so far.
    in_force: BTreeSet<PolicyRef>,
    /// The policy engine's view after the steps checked so far.
    world: World,
}

impl<'a> Steps<'a> {
    /// Starts before the first step.
    pub fn new(scenario: &'a Scenario, pcx: PolicyContext<'a>, sources: PolicySources<'a>) -> Self {
        Steps {
            scenario,
            pcx,
            sources,
            in_force: BTreeSet::new(),
            world: World::initial(scenario),
        }
    }

    /// Checks step `index` (1-based): actions first, then the expectations after them.
    pub fn check(&mut self, sink: &mut Sink<'_>, rs: &RawStep, index: usize) -> Step {
        let line = sink.pos(&rs.expect).line;
        let name = rs.name.clone().unwrap_or_else(|| format!("step {index}"));
        let mut actions = Vec::new();
        // Pods and namespaces first: the policies and probes below see what is present then.
        super::members::check(
            sink,
            self.scenario,
            rs,
            index,
            &mut self.world,
            &mut self.in_force,
            &mut actions,
        );
        let members = actions.len();
        self.deletes(sink, rs, index, &mut actions);
        self.replaces(sink, rs, index, &mut actions);
        self.applies(sink, rs, index, &mut actions);
        for rl in &rs.relabel {
            self.relabel(sink, rl, &mut actions);
        }
        // The step's own `probes:` replace the scenario's for this step.
        let own_cells = rs.probes.as_ref().map(|p| {
            probes::check_probes(sink, self.scenario, Some(p), Some(&format!("step {index}")))
        });
        // Only what is present is probed: a pod that is absent neither probes nor is probed.
        let present = |c: &CellKey| {
            self.world.pods.contains_key(&c.from)
                && c.to.pod().is_none_or(|p| self.world.pods.contains_key(p))
        };
        let cells: Vec<CellKey> = own_cells
            .as_deref()
            .unwrap_or(&self.scenario.cells)
            .iter()
            .filter(|c| present(c))
            .cloned()
            .collect();
        let entries = expectations::check(sink, self.scenario, &rs.expect);
        // The state after this step's actions, for `computed` entries and contradiction checks
        // (pods and namespaces are in already).
        self.world.apply(&actions[members..]);
        let at = sink.pos(&rs.expect);
        let expected = expect::expand(
            sink,
            self.scenario,
            &cells,
            &entries,
            at,
            index,
            &self.world,
        );
        Step {
            index,
            name,
            line,
            actions,
            expected,
        }
    }

    fn deletes(
        &mut self,
        sink: &mut Sink<'_>,
        rs: &RawStep,
        index: usize,
        actions: &mut Vec<Action>,
    ) {
        for d in &rs.delete {
            let Some((ns, pname)) = d
                .value
                .split_once('/')
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            else {
                sink.error_at(
                    Code::InvalidStep,
                    d,
                    format!("`{}` is not a policy reference", d.value),
                )
                .help("write `namespace/policy-name`");
                continue;
            };
            let r = PolicyRef {
                ns: ns.to_owned(),
                name: pname.to_owned(),
            };
            if !self.in_force.remove(&r) {
                let list: Vec<String> = self.in_force.iter().map(ToString::to_string).collect();
                sink.error_at(
                    Code::InvalidStep,
                    d,
                    format!(
                        "step {index} deletes policy `{r}`, which is not in force at that point"
                    ),
                )
                .help(if list.is_empty() {
                    "no policy is in force yet".to_owned()
                } else {
                    format!("in force: {}", list.join(", "))
                });
                continue;
            }
            actions.push(Action::DeletePolicy(r));
        }
    }

    fn replaces(
        &mut self,
        sink: &mut Sink<'_>,
        rs: &RawStep,
        index: usize,
        actions: &mut Vec<Action>,
    ) {
        let mut replaced_here = BTreeSet::new();
        for src in &rs.replace {
            for (pol, pos) in self.sources.read(sink, &self.pcx, src) {
                let r = pol.reference();
                if !self.namespace_present(sink, pos, &r, index) {
                    continue;
                }
                if !replaced_here.insert(r.clone()) {
                    sink.error(
                        Code::InvalidStep,
                        pos,
                        format!("policy `{r}` is replaced twice in step {index}"),
                    )
                    .help("a step replaces a policy once; put the final version in one entry");
                } else if self.in_force.contains(&r) {
                    actions.push(Action::ReplacePolicy(pol));
                } else {
                    sink.error(Code::InvalidStep, pos, format!("step {index} replaces policy `{r}`, which is not in force"))
                    .help("use `apply:` to create a policy; `replace:` is for a new version of one in force");
                }
            }
        }
    }

    fn applies(
        &mut self,
        sink: &mut Sink<'_>,
        rs: &RawStep,
        index: usize,
        actions: &mut Vec<Action>,
    ) {
        let mut applied_here = BTreeSet::new();
        for src in &rs.apply {
            for (pol, pos) in self.sources.read(sink, &self.pcx, src) {
                let r = pol.reference();
                if !self.namespace_present(sink, pos, &r, index) {
                    continue;
                }
                if self.in_force.contains(&r) {
                    let msg = if applied_here.contains(&r) {
                        format!("policy `{r}` is applied twice in step {index}")
                    } else {
                        format!("step {index} applies policy `{r}`, which is already in force")
                    };
                    sink.error(Code::InvalidStep, pos, msg)
                    .help("use `replace:` for a new version of a policy in force, or give it another name");
                    continue;
                }
                self.in_force.insert(r.clone());
                applied_here.insert(r);
                actions.push(Action::ApplyPolicy(pol));
            }
        }
    }

    /// Whether the namespace of policy `r` is present at step `index` (a step may have removed
    /// it, or not added it yet); reports it when not.
    fn namespace_present(
        &self,
        sink: &mut Sink<'_>,
        pos: crate::diag::Pos,
        r: &PolicyRef,
        index: usize,
    ) -> bool {
        let declared = self.scenario.namespace(&r.ns).is_some();
        if !declared || self.world.namespaces.contains_key(&r.ns) {
            return true;
        }
        sink.error(
            Code::InvalidStep,
            pos,
            format!("step {index} puts policy `{r}` into namespace `{}`, which is not present at that point", r.ns),
        )
        .help("a step adds a namespace (`add: {namespaces: [...]}`) before policies go into it");
        false
    }

    fn relabel(&self, sink: &mut Sink<'_>, rl: &RawRelabel, actions: &mut Vec<Action>) {
        let mut bad = false;
        for (k, v) in &rl.labels.value.0 {
            if let Err(e) = check_label_key(&k.value) {
                sink.error_at(
                    Code::InvalidLabel,
                    k,
                    format!("label key `{}` {e}", k.value),
                );
                bad = true;
            }
            if let Some(val) = &v.value
                && let Err(e) = check_label_value(val)
            {
                sink.error_at(Code::InvalidLabel, v, format!("label value `{val}` {e}"));
                bad = true;
            }
            if k.value == NAMESPACE_NAME_LABEL && rl.namespace.is_some() {
                sink.error_at(
                    Code::InvalidLabel,
                    k,
                    format!("`{NAMESPACE_NAME_LABEL}` is managed by Kubernetes"),
                )
                .help("it always equals the namespace's name; change another label");
                bad = true;
            }
            if crate::names::OWN_LABELS.contains(&k.value.as_str()) {
                sink.error_at(
                    Code::InvalidLabel,
                    k,
                    format!("label key `{}` is netreach's own", k.value),
                )
                .help("netreach sets it on what it deploys (the run id, the node group of `node:`); change another label");
                bad = true;
            }
        }
        match (&rl.pod, &rl.namespace) {
            (Some(p), None) => {
                let id = p.value.split_once('/').map(|(a, b)| PodId::new(a, b));
                match id.filter(|id| self.scenario.pod(id).is_some()) {
                    Some(id) if !self.world.pods.contains_key(&id) => {
                        sink.error_at(
                            Code::InvalidStep,
                            p,
                            format!("relabel names pod `{id}`, which is not present at that point"),
                        )
                        .help("a step adds it first, or an earlier step removed it");
                    }
                    Some(id) if self.scenario.workloads.contains_key(&id) => {
                        sink.error_at(
                            Code::InvalidWorkload,
                            p,
                            format!("relabel names pod `{id}`, a real workload; netreach never changes real workloads"),
                        )
                        .help("relabel a pod the run deploys instead");
                    }
                    Some(id) if !bad => actions.push(Action::RelabelPod {
                        pod: id,
                        labels: rl.labels.value.plain(),
                    }),
                    Some(_) => {}
                    None => {
                        sink.error_at(
                            Code::UnknownPod,
                            p,
                            format!("relabel names pod `{}`, which is not declared", p.value),
                        )
                        .help("write `namespace/pod` of a declared pod");
                    }
                }
            }
            (None, Some(ns)) => match self.scenario.namespace(&ns.value) {
                None => {
                    sink.error_at(
                        Code::UnknownNamespace,
                        ns,
                        format!(
                            "relabel names namespace `{}`, which is not declared",
                            ns.value
                        ),
                    );
                }
                Some(n) if n.existing => {
                    sink.error_at(
                        Code::ExistingNamespace,
                        ns,
                        format!(
                            "`{}` is an existing namespace; netreach never relabels it",
                            ns.value
                        ),
                    );
                }
                Some(_) if !self.world.namespaces.contains_key(&ns.value) => {
                    sink.error_at(
                        Code::InvalidStep,
                        ns,
                        format!(
                            "relabel names namespace `{}`, which is not present at that point",
                            ns.value
                        ),
                    );
                }
                Some(_) if !bad => {
                    actions.push(Action::RelabelNamespace {
                        ns: ns.value.clone(),
                        labels: rl.labels.value.plain(),
                    });
                }
                Some(_) => {}
            },
            _ => {
                sink.error_at(
                    Code::Conflict,
                    &rl.labels,
                    "a relabel needs exactly one of `pod` or `namespace`",
                )
                .help("write one relabel entry per pod or namespace");
            }
        }
    }
}
