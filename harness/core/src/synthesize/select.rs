//! Label selectors for sets of pods: the simplest selectors that together match every wanted
//! pod of a namespace and no forbidden one (pods that are neither may be matched), and peers
//! across namespaces (`kubernetes.io/metadata.name` for other namespaces).

use std::collections::{BTreeMap, BTreeSet};

use super::model::Model;
use crate::engine::describe_selector;
use crate::policy::{LabelSelector, NAMESPACE_NAME_LABEL, Operator, Peer, Requirement};

/// Selectors covering a set of pods of one namespace.
#[derive(Debug, Default)]
pub(crate) struct Cover {
    /// Matched together (OR), they match every wanted pod and, but for `leaked`, no forbidden one.
    pub selectors: Vec<LabelSelector>,
    /// Forbidden pods matched anyway: they have the same labels as a wanted pod.
    pub leaked: Vec<usize>,
    /// (wanted, forbidden) pairs with identical labels.
    pub clashes: Vec<(usize, usize)>,
}

struct Cand {
    sel: LabelSelector,
    cost: usize,
    key: String,
}

fn labels_sel(pairs: &[(&String, &String)]) -> LabelSelector {
    LabelSelector {
        match_labels: pairs
            .iter()
            .map(|(k, v)| ((*k).clone(), (*v).clone()))
            .collect(),
        match_expressions: Vec::new(),
    }
}

/// The exact selector of pod `q`: its labels, and `DoesNotExist` for a key of each forbidden pod
/// whose labels are a strict superset. Forbidden pods with identical labels are returned.
fn exact(m: &Model<'_>, q: usize, forbid: &[usize]) -> (LabelSelector, Vec<usize>) {
    let lq = m.labels(q);
    let mut sel = LabelSelector {
        match_labels: lq.clone(),
        match_expressions: Vec::new(),
    };
    let mut twins = Vec::new();
    for &f in forbid {
        let lf = m.labels(f);
        if !sel.matches(lf) {
            continue;
        }
        match lf.keys().find(|k| !lq.contains_key(*k)) {
            Some(k) => sel.match_expressions.push(Requirement {
                key: k.clone(),
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            }),
            None => twins.push(f),
        }
    }
    sel.match_expressions.sort_by(|a, b| a.key.cmp(&b.key));
    (sel, twins)
}

/// Selectors for `want` that avoid `forbid`; `others` may be matched (all pods of one
/// namespace). Selectors that match only `want` are preferred when they are as few.
pub(crate) fn cover(m: &Model<'_>, want: &[usize], forbid: &[usize], others: &[usize]) -> Cover {
    let loose = greedy(m, want, forbid);
    if others.is_empty() {
        return loose;
    }
    let all: Vec<usize> = forbid.iter().chain(others).copied().collect();
    let exact = greedy(m, want, &all);
    if exact.selectors.len() <= loose.selectors.len()
        && exact.leaked.iter().all(|p| loose.leaked.contains(p))
    {
        exact
    } else {
        loose
    }
}

fn greedy(m: &Model<'_>, want: &[usize], forbid: &[usize]) -> Cover {
    if want.is_empty() {
        return Cover::default();
    }
    if forbid.is_empty() {
        return Cover {
            selectors: vec![LabelSelector::default()],
            ..Cover::default()
        };
    }
    let mut cands: Vec<Cand> = Vec::new();
    let mut values: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    for &q in want {
        for (k, v) in m.labels(q) {
            cands.push(Cand {
                sel: labels_sel(&[(k, v)]),
                cost: 1,
                key: String::new(),
            });
            values.entry(k).or_default().insert(v);
        }
    }
    for (k, vs) in values {
        if vs.len() > 1 {
            cands.push(Cand {
                sel: LabelSelector {
                    match_labels: BTreeMap::new(),
                    match_expressions: vec![Requirement {
                        key: k.clone(),
                        operator: Operator::In,
                        values: vs.into_iter().cloned().collect(),
                    }],
                },
                cost: 2,
                key: String::new(),
            });
        }
    }
    let common: Vec<(&String, &String)> = m
        .labels(want[0])
        .iter()
        .filter(|(k, v)| want.iter().all(|q| m.labels(*q).get(*k) == Some(*v)))
        .collect();
    if common.len() > 1 {
        cands.push(Cand {
            sel: labels_sel(&common),
            cost: common.len(),
            key: String::new(),
        });
    }
    let mut clashes = Vec::new();
    for &q in want {
        let (sel, twins) = exact(m, q, forbid);
        clashes.extend(twins.iter().map(|f| (q, *f)));
        if twins.is_empty() {
            let cost = sel.match_labels.len() + sel.match_expressions.len() + 1;
            cands.push(Cand {
                sel,
                cost,
                key: String::new(),
            });
        }
    }
    for c in &mut cands {
        c.key = describe_selector(&c.sel);
    }
    cands.sort_by(|a, b| a.key.cmp(&b.key));
    cands.dedup_by(|a, b| a.key == b.key);
    cands.retain(|c| !forbid.iter().any(|f| c.sel.matches(m.labels(*f))));
    let mut uncovered: BTreeSet<usize> = want.iter().copied().collect();
    let mut out = Cover {
        clashes,
        ..Cover::default()
    };
    while !uncovered.is_empty() {
        let best = cands
            .iter()
            .map(|c| {
                let n = uncovered
                    .iter()
                    .filter(|q| c.sel.matches(m.labels(**q)))
                    .count();
                (n, c)
            })
            .filter(|(n, _)| *n > 0)
            .max_by(|(na, a), (nb, b)| {
                na.cmp(nb).then(b.cost.cmp(&a.cost)).then(b.key.cmp(&a.key))
            });
        match best {
            Some((_, c)) => {
                uncovered.retain(|q| !c.sel.matches(m.labels(*q)));
                out.selectors.push(c.sel.clone());
            }
            None => {
                // Only pods with a forbidden twin are left: match them and their twins.
                for q in std::mem::take(&mut uncovered) {
                    let (sel, twins) = exact(m, q, forbid);
                    out.leaked.extend(twins);
                    out.selectors.push(sel);
                }
            }
        }
    }
    out.leaked.sort_unstable();
    out.leaked.dedup();
    out
}

/// The selector of one namespace by name.
pub(crate) fn namespaces_named(names: &[&str]) -> LabelSelector {
    match names {
        [one] => LabelSelector {
            match_labels: BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), (*one).to_owned())]),
            match_expressions: Vec::new(),
        },
        many => LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: NAMESPACE_NAME_LABEL.to_owned(),
                operator: Operator::In,
                values: many.iter().map(|s| (*s).to_owned()).collect(),
            }],
        },
    }
}

/// Peers of a rule.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    /// OR-ed peers.
    pub peers: Vec<Peer>,
    /// Forbidden pods they match anyway (same labels as a wanted pod).
    pub leaked: Vec<usize>,
    /// (wanted, forbidden) pairs with identical labels.
    pub clashes: Vec<(usize, usize)>,
}

/// Namespaces that need the same pod selectors (`None`: every pod).
type NsGroup<'a> = (Vec<&'a str>, Option<Vec<LabelSelector>>);

/// Peers covering `want` (pods of any namespace) from a policy in `policy_ns`, avoiding the
/// pods `forbid` says no to; other pods may be matched.
pub(crate) fn peers(
    m: &Model<'_>,
    policy_ns: &str,
    want: &BTreeSet<usize>,
    forbid: &dyn Fn(usize) -> bool,
) -> Peers {
    let mut by_ns: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &q in want {
        by_ns.entry(m.ns(q)).or_default().push(q);
    }
    let mut own: Vec<Peer> = Vec::new();
    // Other namespaces grouped by the pod selectors they need (None: every pod).
    let mut groups: BTreeMap<Option<Vec<String>>, NsGroup<'_>> = BTreeMap::new();
    let mut out = Cover::default();
    for (ns, w) in by_ns {
        let (f, others): (Vec<usize>, Vec<usize>) = m.ns_pods[ns]
            .iter()
            .copied()
            .filter(|p| !want.contains(p))
            .partition(|p| forbid(*p));
        let sels = if f.is_empty() && others.is_empty() {
            None
        } else {
            let c = cover(m, &w, &f, &others);
            out.leaked.extend(c.leaked);
            out.clashes.extend(c.clashes);
            (c.selectors != [LabelSelector::default()]).then_some(c.selectors)
        };
        if ns == policy_ns {
            for s in sels.unwrap_or_else(|| vec![LabelSelector::default()]) {
                own.push(Peer::Selectors {
                    pods: Some(s),
                    namespaces: None,
                });
            }
        } else {
            let key = sels
                .as_ref()
                .map(|v| v.iter().map(describe_selector).collect::<Vec<_>>());
            let e = groups
                .entry(key)
                .or_insert_with(|| (Vec::new(), sels.clone()));
            e.0.push(ns);
        }
    }
    let mut others: Vec<NsGroup<'_>> = groups.into_values().collect();
    others.sort_by(|a, b| a.0.cmp(&b.0));
    let mut peers = own;
    for (names, sels) in others {
        let ns_sel = namespaces_named(&names);
        match sels {
            None => peers.push(Peer::Selectors {
                pods: None,
                namespaces: Some(ns_sel),
            }),
            Some(v) => {
                for s in v {
                    peers.push(Peer::Selectors {
                        pods: Some(s),
                        namespaces: Some(ns_sel.clone()),
                    });
                }
            }
        }
    }
    out.leaked.sort_unstable();
    out.leaked.dedup();
    Peers {
        peers,
        leaked: out.leaked,
        clashes: out.clashes,
    }
}
