//! Label keys: the requirements of a selector one at a time, which keys the world's namespaces
//! and pods carry, and which key an unset one probably meant.

use std::collections::{BTreeMap, BTreeSet};

use super::super::describe::describe_selector;
use super::dns_pod;
use crate::engine::World;
use crate::policy::{LabelSelector, NAMESPACE_NAME_LABEL, Operator};

/// What a selector selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorKind {
    /// A namespaceSelector.
    Namespaces,
    /// A podSelector.
    Pods,
}

impl SelectorKind {
    /// `namespace` / `pod`.
    pub fn noun(self) -> &'static str {
        match self {
            SelectorKind::Namespaces => "namespace",
            SelectorKind::Pods => "pod",
        }
    }

    /// `namespaceSelector` / `podSelector`.
    pub fn field(self) -> &'static str {
        match self {
            SelectorKind::Namespaces => "namespaceSelector",
            SelectorKind::Pods => "podSelector",
        }
    }
}

/// Every namespace (by name) or pod (`ns/pod`, with the cluster DNS) of the world and its labels.
pub fn labelled(w: &World, kind: SelectorKind) -> Vec<(String, BTreeMap<String, String>)> {
    match kind {
        SelectorKind::Namespaces => w
            .namespaces
            .keys()
            .map(|n| (format!("namespace {n}"), w.ns_labels(n).into_owned()))
            .collect(),
        SelectorKind::Pods => {
            let dns = dns_pod();
            w.pods
                .values()
                .chain(std::iter::once(&dns))
                .map(|p| (format!("pod {}", p.id), p.labels.clone()))
                .collect()
        }
    }
}

/// One requirement of a selector (a `matchLabels` entry or a `matchExpressions` entry), as a
/// selector of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// As written in words: `name=ingress-nginx`, `tier in (a, b)`.
    pub text: String,
    /// The label key.
    pub key: String,
    /// The values it wants (`matchLabels`, `In`); empty otherwise.
    pub values: Vec<String>,
    /// The requirement alone.
    pub selector: LabelSelector,
}

impl Term {
    /// Whether only objects carrying the key can satisfy it (`matchLabels`, `In`, `Exists`).
    pub fn requires_key(&self) -> bool {
        !self.selector.matches(&BTreeMap::new())
    }
}

/// The requirements of `sel`, in order.
pub fn terms(sel: &LabelSelector) -> Vec<Term> {
    let labels = sel.match_labels.iter().map(|(k, v)| {
        let selector = LabelSelector {
            match_labels: BTreeMap::from([(k.clone(), v.clone())]),
            match_expressions: Vec::new(),
        };
        (k.clone(), vec![v.clone()], selector)
    });
    let exprs = sel.match_expressions.iter().map(|r| {
        let values = if r.operator == Operator::In {
            r.values.clone()
        } else {
            Vec::new()
        };
        let selector = LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![r.clone()],
        };
        (r.key.clone(), values, selector)
    });
    labels
        .chain(exprs)
        .map(|(key, values, selector)| {
            // `{k=v}` → `k=v`.
            let d = describe_selector(&selector);
            let text = d[1..d.len() - 1].to_owned();
            Term {
                text,
                key,
                values,
                selector,
            }
        })
        .collect()
}

/// A label key that may be the one meant instead of an unset one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    /// The key.
    pub key: String,
    /// A value wanted by the requirement, when an object carries it under `key`.
    pub value: Option<String>,
    /// In words: `namespace ingress-nginx has kubernetes.io/metadata.name=ingress-nginx`.
    pub text: String,
}

/// Recommended pod label keys (`app.kubernetes.io/*`) and common ones, for suggestions when no
/// pod carries a similar key.
const WELL_KNOWN_POD_KEYS: [&str; 6] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app",
    "k8s-app",
];

fn tokens(key: &str) -> BTreeSet<String> {
    key.split(['/', '.', '-', '_'])
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether two different keys look like one another: equal but for case, or one's words (split
/// at `/ . - _`) all among the other's (`name` and `kubernetes.io/metadata.name`, `app` and
/// `app.kubernetes.io/name`).
pub fn similar_keys(a: &str, b: &str) -> bool {
    if a == b {
        return false;
    }
    let (ta, tb) = (tokens(a), tokens(b));
    a.eq_ignore_ascii_case(b) || (!ta.is_empty() && ta.is_subset(&tb)) || tb.is_subset(&ta)
}

/// The key a requirement on the unset `key` (wanting `values`) probably meant, among the
/// labels of `universe` ([`labelled`]): first a similar key under which some object carries a
/// wanted value, then any key carrying a wanted value, then a similar key, then a well-known
/// pod key.
pub fn suggest(
    key: &str,
    values: &[String],
    universe: &[(String, BTreeMap<String, String>)],
    kind: SelectorKind,
) -> Option<Suggestion> {
    let with_value = |want_similar: bool| {
        universe.iter().find_map(|(who, labels)| {
            labels.iter().find_map(|(k, v)| {
                (values.contains(v) && (!want_similar || similar_keys(key, k))).then(|| {
                    Suggestion {
                        key: k.clone(),
                        value: Some(v.clone()),
                        text: format!("{who} has {k}={v}"),
                    }
                })
            })
        })
    };
    let carried: BTreeSet<&String> = universe.iter().flat_map(|(_, l)| l.keys()).collect();
    let noun = kind.noun();
    with_value(true)
        .or_else(|| with_value(false))
        .or_else(|| {
            carried
                .iter()
                .find(|k| similar_keys(key, k))
                .map(|k| Suggestion {
                    key: (*k).clone(),
                    value: None,
                    text: format!("{noun}s carry `{k}`"),
                })
        })
        .or_else(|| {
            (kind == SelectorKind::Pods)
                .then(|| WELL_KNOWN_POD_KEYS.iter().find(|k| similar_keys(key, k)))
                .flatten()
                .map(|k| Suggestion {
                    key: (*k).to_owned(),
                    value: None,
                    text: format!("the recommended key is `{k}`, though no pod carries it either"),
                })
        })
        .map(|mut s| {
            if s.key == NAMESPACE_NAME_LABEL {
                s.text
                    .push_str(" (Kubernetes sets this label on every namespace)");
            }
            s
        })
}

/// A requirement of a selector on a label key no namespace (or pod) of the world carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsetKey {
    /// The requirement.
    pub term: Term,
    /// What was probably meant.
    pub suggestion: Option<Suggestion>,
}

/// The requirements of `sel` that only objects carrying their key satisfy, on keys that no
/// namespace (`kind` Namespaces) or pod (Pods, with the cluster DNS) of `w` carries.
pub fn unset_keys(w: &World, sel: &LabelSelector, kind: SelectorKind) -> Vec<UnsetKey> {
    let universe = labelled(w, kind);
    terms(sel)
        .into_iter()
        .filter(|t| t.requires_key() && !universe.iter().any(|(_, l)| l.contains_key(&t.key)))
        .map(|t| UnsetKey {
            suggestion: suggest(&t.key, &t.values, &universe, kind),
            term: t,
        })
        .collect()
}

/// Why `labels` (of `who`) fail `sel`: one clause per failing requirement.
pub(super) fn selector_miss(
    sel: &LabelSelector,
    who: &str,
    labels: &BTreeMap<String, String>,
    universe: &[(String, BTreeMap<String, String>)],
    kind: SelectorKind,
) -> Vec<String> {
    let noun = kind.noun();
    terms(sel)
        .into_iter()
        .filter(|t| !t.selector.matches(labels))
        .map(|t| {
            let k = &t.key;
            if t.requires_key() && !universe.iter().any(|(_, l)| l.contains_key(k)) {
                match suggest(k, &t.values, universe, kind) {
                    Some(s) => format!("no {noun} carries label `{k}`; {}", s.text),
                    None => format!("no {noun} carries label `{k}`"),
                }
            } else {
                match labels.get(k) {
                    None => format!("{who} has no label `{k}`"),
                    Some(v) if t.requires_key() => format!("{who} has {k}={v}, not {}", t.text),
                    Some(v) => format!("{who} has {k}={v}, which `{}` excludes", t.text),
                }
            }
        })
        .collect()
}
