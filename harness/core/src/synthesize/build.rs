//! Assembling the policies of every namespace: isolation (default deny), DNS, then the rules,
//! egress first and ingress second.
//!
//! Egress rules are exact where labels allow. What they cannot keep out (and what an ipBlock
//! makes undecidable through a Service) is found by asking the engine about every blocked
//! triple against the egress policies alone; the destination's ingress must then refuse it, and
//! is isolated for that if it was not. Ingress rules are exact too, except where only a blocked
//! connection that the source's egress already refuses stands in the way (slack).

use std::collections::{BTreeMap, BTreeSet};

use super::cover::{self, Isolated};
use super::model::{End, Model, Triple, members_of};
use super::rules::{self, SideOut, Tok};
use super::select;
use super::{Intent, Isolation};
use crate::engine::{self, DNS_NAMESPACE, DNS_POD_LABEL, Tri, World};
use crate::model::{CellKey, PortProto, Protocol};
use crate::policy::{LabelSelector, NetworkPolicy, Peer, PolicyPort, PolicyType, PortValue, Rule};

/// One synthesized policy with what its comments say.
#[derive(Clone, Debug)]
pub(crate) struct Doc {
    pub policy: NetworkPolicy,
    /// Comment lines above the manifest.
    pub about: Vec<String>,
    /// Per rule (of its one direction), the listed cells it exists for.
    pub rule_cells: Vec<Vec<CellKey>>,
    /// Sort key within the namespace's file.
    order: u8,
}

/// A group of classes sharing a policy.
#[derive(Debug)]
struct Group {
    classes: BTreeSet<usize>,
    members: Vec<usize>,
    selector: LabelSelector,
    out: SideOut,
}

/// At most this many groups of one namespace and direction are tried pairwise for merging.
const GROUP_MERGE_LIMIT: usize = 24;

fn dir_word(d: PolicyType) -> &'static str {
    match d {
        PolicyType::Ingress => "ingress",
        PolicyType::Egress => "egress",
    }
}

/// The single selector matching exactly `members` among the pods of `ns`, if there is one.
fn exact_selector(m: &Model<'_>, ns: &str, members: &[usize]) -> Option<LabelSelector> {
    let forbid: Vec<usize> = m.ns_pods[ns]
        .iter()
        .copied()
        .filter(|p| !members.contains(p))
        .collect();
    let c = select::cover(m, members, &forbid, &[]);
    match (c.selectors.len(), c.leaked.is_empty()) {
        (1, true) => c.selectors.into_iter().next(),
        _ => None,
    }
}

/// What a class needs on a side, in a form that is equal for classes treated alike.
fn signature(m: &Model<'_>, class: usize, dir: PolicyType) -> BTreeSet<(End, Tok)> {
    let mut sig = BTreeSet::new();
    for &mem in &m.classes[class].members {
        match dir {
            PolicyType::Egress => {
                for t in &m.allowed_from[mem] {
                    let name = match t.dst {
                        End::Pod(d) => m.name_of(d, t.port),
                        End::Ext(_) => None,
                    };
                    sig.insert((t.dst, tok(name, t.port)));
                }
            }
            PolicyType::Ingress => {
                for t in &m.allowed_to[mem] {
                    sig.insert((End::Pod(t.src), tok(m.name_of(mem, t.port), t.port)));
                }
            }
        }
    }
    sig
}

fn tok(name: Option<&str>, p: PortProto) -> Tok {
    match name {
        Some(n) => Tok::Name(n.to_owned(), p.protocol),
        None => Tok::Num(p),
    }
}

fn group(
    m: &Model<'_>,
    ns: &str,
    classes: &[usize],
    dir: PolicyType,
    slack: &dyn Fn(&Triple) -> bool,
) -> Vec<Group> {
    let mut by_sig: BTreeMap<BTreeSet<(End, Tok)>, BTreeSet<usize>> = BTreeMap::new();
    for &c in classes {
        by_sig.entry(signature(m, c, dir)).or_default().insert(c);
    }
    let make = |cs: BTreeSet<usize>| -> Option<Group> {
        let members = members_of(m, &cs);
        let selector = exact_selector(m, ns, &members)?;
        let out = rules::build(m, dir, &members, ns, slack);
        Some(Group {
            classes: cs,
            members,
            selector,
            out,
        })
    };
    let mut groups = Vec::new();
    for (_, cs) in by_sig {
        let singles = cs.clone();
        match make(cs) {
            Some(g) => groups.push(g),
            None => groups.extend(
                singles
                    .into_iter()
                    .filter_map(|c| make(BTreeSet::from([c]))),
            ),
        }
    }
    'merge: while groups.len() <= GROUP_MERGE_LIMIT {
        for i in 0..groups.len() {
            for j in i + 1..groups.len() {
                let union: BTreeSet<usize> = groups[i]
                    .classes
                    .union(&groups[j].classes)
                    .copied()
                    .collect();
                let Some(g) = make(union) else { continue };
                let before = groups[i].out.rules.len() + groups[j].out.rules.len();
                let no_new_leaks =
                    g.out.leaks.iter().all(|t| {
                        groups[i].out.leaks.contains(t) || groups[j].out.leaks.contains(t)
                    });
                if no_new_leaks && g.out.rules.len() < before {
                    groups.remove(j);
                    groups[i] = g;
                    continue 'merge;
                }
            }
        }
        break;
    }
    groups
}

/// The base of a policy name from the pods it selects.
fn name_part(m: &Model<'_>, members: &[usize], selector: &LabelSelector) -> String {
    if *selector == LabelSelector::default() && members.len() > 3 {
        return "all".into();
    }
    let names: Vec<&str> = members.iter().map(|p| m.id(*p).name.as_str()).collect();
    match names.as_slice() {
        [a, b, _, _, ..] => format!("{a}-{b}-and-{}-more", names.len() - 2),
        few => few.join("-"),
    }
}

fn pods_text(m: &Model<'_>, members: &[usize]) -> String {
    let v: Vec<String> = members.iter().map(|p| m.id(*p).to_string()).collect();
    if v.len() > 6 {
        format!("{} and {} more", v[..5].join(", "), v.len() - 5)
    } else {
        v.join(", ")
    }
}

fn policy(ns: &str, name: String, sel: LabelSelector, types: Vec<PolicyType>) -> NetworkPolicy {
    NetworkPolicy {
        ns: ns.to_owned(),
        name,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        pod_selector: sel,
        policy_types: Some(types),
        ingress: None,
        egress: None,
        origin: String::new(),
    }
}

fn cells_of(m: &Model<'_>, covers: &BTreeSet<Triple>) -> Vec<CellKey> {
    let mut v: Vec<CellKey> = covers
        .iter()
        .flat_map(|t| m.cells.get(t).cloned().unwrap_or_default())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn rule_doc(m: &Model<'_>, ns: &str, dir: PolicyType, g: Group) -> Doc {
    let d = dir_word(dir);
    let mut p = policy(
        ns,
        format!("{d}-{}", name_part(m, &g.members, &g.selector)),
        g.selector,
        vec![dir],
    );
    let rule_cells = g.out.rules.iter().map(|r| cells_of(m, &r.covers)).collect();
    let rules: Vec<Rule> = g.out.rules.into_iter().map(|r| r.rule).collect();
    match dir {
        PolicyType::Ingress => p.ingress = Some(rules),
        PolicyType::Egress => p.egress = Some(rules),
    }
    Doc {
        policy: p,
        about: vec![format!(
            "{d} of {}: each rule opens the cells listed above it, and nothing the intent blocks.",
            pods_text(m, &g.members)
        )],
        rule_cells,
        order: if dir == PolicyType::Egress { 2 } else { 3 },
    }
}

fn dns_rule() -> Rule {
    let sel = |k: &str, v: &str| LabelSelector {
        match_labels: BTreeMap::from([(k.to_owned(), v.to_owned())]),
        match_expressions: Vec::new(),
    };
    let port = |protocol| PolicyPort {
        protocol,
        port: Some(PortValue::Number(53)),
        end_port: None,
    };
    Rule {
        peers: Some(vec![Peer::Selectors {
            pods: Some(sel(DNS_POD_LABEL.0, DNS_POD_LABEL.1)),
            namespaces: Some(sel(crate::policy::NAMESPACE_NAME_LABEL, DNS_NAMESPACE)),
        }]),
        ports: Some(vec![port(Protocol::Udp), port(Protocol::Tcp)]),
        line: 0,
    }
}

/// Isolation-only policies for a namespace.
fn deny_docs(m: &Model<'_>, ns: &str, iso: &Isolated) -> Vec<Doc> {
    let pods = &m.ns_pods[ns];
    let set = |dir| -> Vec<usize> {
        pods.iter()
            .copied()
            .filter(|p| iso.get(m.class_of[*p], dir))
            .collect()
    };
    let (inn, out) = (set(PolicyType::Ingress), set(PolicyType::Egress));
    let mut wanted: Vec<(String, Vec<usize>, Vec<PolicyType>)> = Vec::new();
    if inn == out && !inn.is_empty() {
        wanted.push((
            "default-deny".into(),
            inn,
            vec![PolicyType::Ingress, PolicyType::Egress],
        ));
    } else {
        if !inn.is_empty() {
            wanted.push((
                "default-deny-ingress".into(),
                inn,
                vec![PolicyType::Ingress],
            ));
        }
        if !out.is_empty() {
            wanted.push(("default-deny-egress".into(), out, vec![PolicyType::Egress]));
        }
    }
    let mut docs = Vec::new();
    for (name, members, types) in wanted {
        let forbid: Vec<usize> = pods
            .iter()
            .copied()
            .filter(|p| !members.contains(p))
            .collect();
        let what = types
            .iter()
            .map(|t| dir_word(*t))
            .collect::<Vec<_>>()
            .join(" and ");
        let whom = if forbid.is_empty() {
            format!("every pod of {ns}")
        } else {
            pods_text(m, &members)
        };
        for sel in select::cover(m, &members, &forbid, &[]).selectors {
            docs.push(Doc {
                policy: policy(ns, name.clone(), sel, types.clone()),
                about: vec![format!(
                    "Default deny: {whom} isolated for {what}; only what the policies below open gets through."
                )],
                rule_cells: Vec::new(),
                order: 0,
            });
        }
    }
    docs
}

/// Every policy, by namespace.
pub(crate) fn assemble(
    m: &Model<'_>,
    intent: &Intent,
    mode: Isolation,
) -> BTreeMap<String, Vec<Doc>> {
    let own: Vec<&str> = m
        .ns_pods
        .iter()
        .filter(|(ns, pods)| !pods.is_empty() && !intent.existing.contains(*ns))
        .map(|(ns, _)| ns.as_str())
        .collect();
    let strict = |_: &Triple| false;
    let mut cost = |c: usize, dir: PolicyType| {
        let class = &m.classes[c];
        let rules = rules::build(m, dir, &class.members, &class.ns, &strict)
            .rules
            .len();
        rules + usize::from(dir == PolicyType::Egress && m.dns[c] == Some(true))
    };
    let mut iso = cover::choose(m, mode, &mut cost);
    let mut docs: BTreeMap<String, Vec<Doc>> = BTreeMap::new();
    let classes_in = |ns: &str, iso: &Isolated, dir: PolicyType| -> Vec<usize> {
        (0..m.classes.len())
            .filter(|c| m.classes[*c].ns == ns && iso.get(*c, dir))
            .collect()
    };
    // Egress, DNS, and the egress half of default deny.
    for ns in &own {
        let out = docs.entry((*ns).to_owned()).or_default();
        let egress = classes_in(ns, &iso, PolicyType::Egress);
        let needing: Vec<usize> = egress
            .iter()
            .copied()
            .filter(|c| {
                m.classes[*c]
                    .members
                    .iter()
                    .any(|p| !m.allowed_from[*p].is_empty())
            })
            .collect();
        for g in group(m, ns, &needing, PolicyType::Egress, &strict) {
            out.push(rule_doc(m, ns, PolicyType::Egress, g));
        }
        let dns: BTreeSet<usize> = egress
            .iter()
            .copied()
            .filter(|c| m.dns[*c] == Some(true))
            .collect();
        if !dns.is_empty() {
            let members = members_of(m, &dns);
            let forbid: Vec<usize> = m.ns_pods[*ns]
                .iter()
                .copied()
                .filter(|p| !members.contains(p))
                .collect();
            let mut cells: Vec<CellKey> = members
                .iter()
                .flat_map(|p| m.dns_cells[*p].clone())
                .collect();
            cells.sort();
            for sel in select::cover(m, &members, &forbid, &[]).selectors {
                let mut p = policy(ns, "allow-dns".into(), sel, vec![PolicyType::Egress]);
                p.egress = Some(vec![dns_rule()]);
                out.push(Doc {
                    policy: p,
                    about: vec![format!(
                        "Name resolution for {}: 53/udp and 53/tcp to the cluster DNS (k8s-app=kube-dns in kube-system).",
                        pods_text(m, &members)
                    )],
                    rule_cells: vec![cells.clone()],
                    order: 1,
                });
            }
        }
    }
    // What egress lets through that it should not: ingress must refuse it.
    let mut w: World = intent.world.clone();
    for (ns, ds) in &docs {
        let egress_only = Isolated {
            ingress: vec![false; m.classes.len()],
            egress: iso.egress.clone(),
        };
        for d in ds.iter().cloned().chain(deny_docs(m, ns, &egress_only)) {
            let mut p = d.policy;
            p.name = format!("{}-{}", p.name, w.policies.len());
            w.policies.insert(p.reference(), p);
        }
    }
    let mut open: BTreeSet<Triple> = BTreeSet::new();
    for t in m.want.keys().filter(|t| m.blocked(t)) {
        if !matches!(t.dst, End::Pod(_)) {
            continue;
        }
        let ip = m.ip_cell(t);
        let listed = m.cells.get(t).map(Vec::as_slice).unwrap_or_default();
        let is_open = std::iter::once(&ip).chain(listed).any(|c| {
            engine::explain(&w, c)
                .egress
                .is_some_and(|s| s.verdict != Tri::No)
        });
        if is_open {
            open.insert(*t);
        }
    }
    for t in &open {
        if let End::Pod(d) = t.dst {
            iso.ingress[m.class_of[d]] = true;
        }
    }
    let slack = |t: &Triple| !open.contains(t);
    for ns in &own {
        let ingress = classes_in(ns, &iso, PolicyType::Ingress);
        let needing: Vec<usize> = ingress
            .into_iter()
            .filter(|c| {
                m.classes[*c]
                    .members
                    .iter()
                    .any(|p| !m.allowed_to[*p].is_empty())
            })
            .collect();
        let out = docs.entry((*ns).to_owned()).or_default();
        for g in group(m, ns, &needing, PolicyType::Ingress, &slack) {
            out.push(rule_doc(m, ns, PolicyType::Ingress, g));
        }
        out.extend(deny_docs(m, ns, &iso));
    }
    for ds in docs.values_mut() {
        ds.sort_by(|a, b| (a.order, &a.policy.name).cmp(&(b.order, &b.policy.name)));
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for d in ds.iter_mut() {
            let n = seen.entry(d.policy.name.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                d.policy.name = format!("{}-{n}", d.policy.name);
            }
        }
    }
    docs.retain(|_, ds| !ds.is_empty());
    docs
}
