//! `selector-label-unset`: a peer's namespaceSelector or podSelector requires a label key
//! (`matchLabels`, `In`, `Exists`) that no namespace, or no pod, of the world carries — so the
//! peer matches nothing — naming the key it probably meant.
//!
//! The classic: `namespaceSelector: {matchLabels: {name: ingress-nginx}}`, where Kubernetes sets
//! `kubernetes.io/metadata.name` on every namespace and nothing sets `name`. Which keys exist
//! and what was meant are the engine's answers ([`query::unset_keys`], [`query::suggest`]); the
//! policy's own podSelector is `selects-nothing`'s. A podSelector is checked only where the
//! world knows some pod of the namespaces the peer admits. A key that the world does not carry but
//! [`Hints`] says is carried at another time (a scenario relabels later) is not reported.

use super::{Hints, LintRule, WorldFinding};
use crate::engine::query::{self, SelectorKind, UnsetKey};
use crate::engine::{World, describe_selector};
use crate::policy::{LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Peer};

pub(super) fn selector_label_unset(
    w: &World,
    np: &NetworkPolicy,
    hints: &Hints,
    out: &mut Vec<WorldFinding>,
) {
    for (dir, i, rule) in query::effective_rules(np) {
        let d = query::direction_word(dir);
        for (j, peer) in rule.peers.iter().flatten().enumerate() {
            let Peer::Selectors { pods, namespaces } = peer else {
                continue;
            };
            let sels = [
                (
                    namespaces.as_ref(),
                    SelectorKind::Namespaces,
                    &hints.namespace_keys,
                ),
                (pods.as_ref(), SelectorKind::Pods, &hints.pod_keys),
            ];
            for (sel, kind, later) in sels {
                let Some(sel) = sel else { continue };
                // Pods of namespaces the world declares no pod in are unknown, not unlabelled.
                if kind == SelectorKind::Pods && !query::knows_pods_for(w, np, peer) {
                    continue;
                }
                for u in query::unset_keys(w, sel, kind) {
                    if later.contains(&u.term.key) {
                        continue;
                    }
                    out.push(WorldFinding::new(
                        LintRule::SelectorLabelUnset,
                        np,
                        query::rule_origin(np, rule),
                        message(np, d, i, j + 1, sel, kind, &u),
                        help(sel, kind, &u),
                    ));
                }
            }
        }
    }
}

fn message(
    np: &NetworkPolicy,
    d: &str,
    i: usize,
    peer: usize,
    sel: &LabelSelector,
    kind: SelectorKind,
    u: &UnsetKey,
) -> String {
    let noun = kind.noun();
    let meant = match &u.suggestion {
        Some(s) => format!("; did you mean `{}`? {}", s.key, s.text),
        None => String::new(),
    };
    format!(
        "{d} rule {i} of {}: peer {peer}'s {} {} requires label `{}` ({}), which no {noun} carries, so the peer matches nothing{meant}",
        np.reference(),
        kind.field(),
        describe_selector(sel),
        u.term.key,
        u.term.text,
    )
}

fn help(sel: &LabelSelector, kind: SelectorKind, u: &UnsetKey) -> String {
    let field = kind.field();
    match &u.suggestion {
        Some(s) => {
            let value = s
                .value
                .clone()
                .or_else(|| u.term.values.first().cloned())
                .unwrap_or_else(|| "<value>".into());
            let mut fixed = sel.clone();
            let rewrote = fixed.match_labels.remove(&u.term.key).is_some();
            if rewrote {
                fixed.match_labels.insert(s.key.clone(), value);
                format!(
                    "write `{field}: {}`{}",
                    yaml_selector(&fixed),
                    if s.key == NAMESPACE_NAME_LABEL {
                        ""
                    } else {
                        ", or give the objects it is meant for that label"
                    }
                )
            } else {
                format!(
                    "use key `{}` in the requirement on `{}`, or give the objects it is meant for that label",
                    s.key, u.term.key
                )
            }
        }
        None => format!(
            "check the key `{}` for typos, or label the {}s the peer is meant for with it",
            u.term.key,
            kind.noun()
        ),
    }
}

/// `{matchLabels: {k: v}}` (matchLabels only; expressions are left as they were written).
fn yaml_selector(sel: &LabelSelector) -> String {
    let labels: Vec<String> = sel
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    if sel.match_expressions.is_empty() {
        format!("{{matchLabels: {{{}}}}}", labels.join(", "))
    } else {
        format!(
            "{{matchLabels: {{{}}}, matchExpressions: [...]}}",
            labels.join(", ")
        )
    }
}
