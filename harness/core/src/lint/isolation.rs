//! Who a policy isolates, and with what: `isolates-without-rules`, `selects-nothing`,
//! `unselected-pods`.

use std::collections::BTreeMap;

use super::{LintRule, WorldFinding, list, pod_with_labels};
use crate::engine::query::{self, SelectorKind};
use crate::engine::{PodState, World, describe_selector};
use crate::policy::{NetworkPolicy, PolicyType};

/// A policy that writes rules (an `ingress:` or `egress:` list) but has none for a direction it
/// isolates: it allows nothing that way. `ingress: []` reads like "no restriction" and means
/// "nothing"; a policy with ingress rules and `policyTypes: [Ingress, Egress]` cuts all egress.
/// A policy that writes no rule list at all is the usual default-deny idiom
/// (`podSelector: {}, policyTypes: [...]`) and is left alone.
pub(super) fn isolates_without_rules(np: &NetworkPolicy, out: &mut Vec<WorldFinding>) {
    if np.ingress.is_none() && np.egress.is_none() {
        return;
    }
    let types = np.effective_types();
    let mut dirs = Vec::new();
    let mut why = Vec::new();
    for (dir, list, ty) in [
        (PolicyType::Ingress, &np.ingress, "Ingress"),
        (PolicyType::Egress, &np.egress, "Egress"),
    ] {
        if !types.contains(&dir) || !query::rules_of(np, dir).is_empty() {
            continue;
        }
        let d = query::direction_word(dir);
        dirs.push(d);
        why.push(match (list, &np.policy_types) {
            (Some(_), _) => format!(
                "`{d}: []` is a list of no rules, which allows nothing (`{d}: [{{}}]` would allow everything)"
            ),
            (None, Some(_)) => format!("policyTypes names {ty} but it has no {d} rules"),
            (None, None) => format!(
                "without policyTypes, Ingress is implied, and it has no ingress rules{}",
                if np.egress.is_some() {
                    " (its egress rules do not make it an Egress-only policy)"
                } else {
                    ""
                }
            ),
        });
    }
    if dirs.is_empty() {
        return;
    }
    let dirs_text = dirs.join(" and ");
    out.push(WorldFinding::new(
        LintRule::IsolatesWithoutRules,
        np,
        np.origin.clone(),
        format!(
            "{} isolates the pods it selects for {dirs_text} and allows nothing there: {}",
            np.reference(),
            why.join("; ")
        ),
        format!(
            "if nothing should get through, say it with policyTypes alone and no rule list, in a policy of its own (the usual default-deny); to allow everything write `{first}: [{{}}]`; otherwise write the rules that should admit traffic",
            first = dirs[0],
        ),
    ));
}

pub(super) fn selects_nothing(w: &World, np: &NetworkPolicy, out: &mut Vec<WorldFinding>) {
    if !w.selected_pods(np).is_empty() {
        return;
    }
    let pods = query::pods_in(w, &np.ns);
    let there = if pods.is_empty() {
        format!("namespace {} has no pods", np.ns)
    } else {
        format!(
            "the pods of namespace {} are {}",
            np.ns,
            pods.iter()
                .map(|p| pod_with_labels(p))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let hints: Vec<String> = query::unset_keys(w, &np.pod_selector, SelectorKind::Pods)
        .into_iter()
        .map(|u| match u.suggestion {
            Some(s) => format!("no pod carries label `{}` ({})", u.term.key, s.text),
            None => format!("no pod carries label `{}`", u.term.key),
        })
        .collect();
    let hints = if hints.is_empty() {
        String::new()
    } else {
        format!("; {}", hints.join("; "))
    };
    out.push(WorldFinding::new(
        LintRule::SelectsNothing,
        np,
        np.origin.clone(),
        format!(
            "{}'s podSelector {} selects no pod in namespace {}, so the policy has no effect",
            np.reference(),
            describe_selector(&np.pod_selector),
            np.ns
        ),
        format!("make the podSelector match the labels of the pods the policy is meant for (check keys and values for typos), or delete the policy; {there}{hints}"),
    ));
}

pub(super) fn unselected_pods(w: &World, out: &mut Vec<WorldFinding>) {
    let mut by_ns: BTreeMap<&str, Vec<&NetworkPolicy>> = BTreeMap::new();
    for np in w.policies.values() {
        by_ns.entry(np.ns.as_str()).or_default().push(np);
    }
    for (ns, policies) in by_ns {
        let unselected: Vec<&PodState> = query::pods_in(w, ns)
            .into_iter()
            .filter(|p| query::selecting_any(w, &p.id).is_empty())
            .collect();
        if unselected.is_empty() {
            continue;
        }
        let names: Vec<String> = policies.iter().map(|p| p.reference().to_string()).collect();
        let pods: Vec<String> = unselected.iter().map(|p| p.id.to_string()).collect();
        let labels: Vec<String> = unselected.iter().map(|p| pod_with_labels(p)).collect();
        let one = unselected.len() == 1;
        out.push(WorldFinding::new(
            LintRule::UnselectedPods,
            policies[0],
            policies[0].origin.clone(),
            format!(
                "namespace {ns} has {} in force ({}), but no policy selects {}: {} isolated in neither direction and {} everything",
                if policies.len() == 1 { "a policy" } else { "policies" },
                list(&names),
                pods.join(", "),
                if one { "it is" } else { "they are" },
                if one { "accepts and sends" } else { "accept and send" },
            ),
            format!(
                "if they should be covered, widen a podSelector or add a default-deny policy (`podSelector: {{}}`) in namespace {ns}; if they are meant to stay open, ignore this; their labels: {}",
                labels.join(", ")
            ),
        ));
    }
}
