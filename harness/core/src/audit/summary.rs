//! Per namespace and per workload: isolation, and what reaches it from other namespaces and
//! from outside the cluster.

use std::collections::{BTreeMap, BTreeSet};

use super::reach::Groups;
use super::{Inventory, NamespaceSummary, Reach, WorkloadSummary};
use crate::engine::query::{self, Reach as RuleReach};
use crate::engine::{Spec, World};
use crate::policy::{NetworkPolicy, Peer, PolicyType};

pub(crate) fn summaries(
    inv: &Inventory,
    w: &World,
    g: &Groups,
    reach: &[Reach],
) -> (Vec<NamespaceSummary>, Vec<WorkloadSummary>) {
    // Reachability into each workload from other namespaces: source → ports.
    let mut inbound: BTreeMap<&str, BTreeMap<&str, Vec<String>>> = BTreeMap::new();
    for r in reach {
        let (from_ns, to_ns) = (ns_of(&r.from), ns_of(&r.to));
        if from_ns == to_ns || r.verdict == Spec::Block || r.verdict == Spec::Unresolved {
            continue;
        }
        let mut port = r.port.to_string();
        if r.verdict == Spec::Unspecified {
            port.push_str(" (unspecified)");
        }
        inbound
            .entry(&r.to)
            .or_default()
            .entry(&r.from)
            .or_default()
            .push(port);
    }
    let mut workloads = Vec::new();
    let mut by_ns: BTreeMap<&str, NamespaceSummary> = w
        .namespaces
        .keys()
        .map(|ns| {
            (
                ns.as_str(),
                NamespaceSummary {
                    name: ns.clone(),
                    policies: w.policies_in(ns).map(|np| np.name.clone()).collect(),
                    workloads: Vec::new(),
                    ingress_open: Vec::new(),
                    egress_open: Vec::new(),
                    no_policy: Vec::new(),
                },
            )
        })
        .collect();
    for (i, id) in g.owners.iter().enumerate() {
        let name = id.to_string();
        let pods: Vec<_> = g.pods(i).collect();
        let isolating = |dir: PolicyType| {
            let mut by: Vec<&NetworkPolicy> = Vec::new();
            let mut open = 0;
            for p in &pods {
                let s = w.selecting(p, dir);
                if s.is_empty() {
                    open += 1;
                }
                for np in s {
                    if !by.iter().any(|b| b.reference() == np.reference()) {
                        by.push(np);
                    }
                }
            }
            (by, open)
        };
        let (ing, ing_open) = isolating(PolicyType::Ingress);
        let (eg, eg_open) = isolating(PolicyType::Egress);
        let mut partly = Vec::new();
        for (by, open, d) in [(&ing, ing_open, "ingress"), (&eg, eg_open, "egress")] {
            if !by.is_empty() && open > 0 {
                partly.push(format!(
                    "{open} of {} pods not isolated for {d}",
                    pods.len()
                ));
            }
        }
        let mut ports: Vec<String> = Vec::new();
        for p in &pods {
            for sp in w.pods.get(*p).map(|p| p.ports.as_slice()).unwrap_or(&[]) {
                let s = match &sp.name {
                    Some(n) => format!("{} ({n})", sp.port),
                    None => sp.port.to_string(),
                };
                if !ports.contains(&s) {
                    ports.push(s);
                }
            }
        }
        let services = inv
            .services
            .iter()
            .filter(|s| s.ns == id.ns)
            .filter(|s| {
                s.selector.as_ref().is_some_and(|sel| {
                    !sel.is_empty()
                        && pods.iter().any(|p| {
                            w.pods.get(*p).is_some_and(|p| {
                                sel.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                            })
                        })
                })
            })
            .map(|s| {
                let ports: Vec<String> = s
                    .ports
                    .iter()
                    .map(|p| format!("{}->{}/{}", p.port, p.target, p.protocol))
                    .collect();
                format!("{}/{} ({} {})", s.ns, s.name, s.kind, ports.join(", "))
            })
            .collect();
        let mut from_other: Vec<String> = Vec::new();
        if ing_open > 0 {
            from_other.push("every pod of every namespace (ingress not isolated)".into());
        }
        from_other.extend(every_pod_rules(&ing, PolicyType::Ingress));
        // Sources are worth listing only where a policy isolates some pod.
        if let Some(srcs) = inbound.get(name.as_str()).filter(|_| !ing.is_empty()) {
            for (src, ports) in srcs {
                from_other.push(format!("{src} on {}", ports.join(", ")));
            }
        }
        let from_outside = outside(&ing, ing_open > 0, PolicyType::Ingress);
        let to_outside = outside(&eg, eg_open > 0, PolicyType::Egress);
        if let Some(ns) = by_ns.get_mut(id.ns.as_str()) {
            ns.workloads.push(id.owner.name.clone());
            if ing_open > 0 {
                ns.ingress_open.push(id.owner.name.clone());
            }
            if eg_open > 0 {
                ns.egress_open.push(id.owner.name.clone());
            }
            if pods.iter().all(|p| query::selecting_any(w, p).is_empty()) {
                ns.no_policy.push(id.owner.name.clone());
            }
        }
        workloads.push(WorkloadSummary {
            name,
            kind: id.owner.kind.clone(),
            pods: pods.len(),
            from_template: g.from_template[i],
            ports,
            services,
            ingress_isolated_by: refs(&ing),
            egress_isolated_by: refs(&eg),
            partly,
            from_other_namespaces: from_other,
            from_outside,
            to_outside,
        });
    }
    (by_ns.into_values().collect(), workloads)
}

fn ns_of(workload: &str) -> &str {
    workload.split_once('/').map_or(workload, |(ns, _)| ns)
}

fn refs(nps: &[&NetworkPolicy]) -> Vec<String> {
    let mut v: Vec<String> = nps.iter().map(|np| np.reference().to_string()).collect();
    v.sort();
    v
}

/// `(ns/policy ingress rule 2 at file:line)`.
fn at(np: &NetworkPolicy, dir: PolicyType, i: usize, rule: &crate::policy::Rule) -> String {
    format!(
        "({} {} rule {i} at {})",
        np.reference(),
        query::direction_word(dir),
        query::rule_origin(np, rule)
    )
}

/// Rules admitting every pod of every namespace (`namespaceSelector: {}`).
fn every_pod_rules(nps: &[&NetworkPolicy], dir: PolicyType) -> Vec<String> {
    let mut out = Vec::new();
    for np in nps {
        for (i, rule) in query::rules_of(np, dir).iter().enumerate() {
            if let Some(RuleReach::EveryPod { .. }) = query::rule_reach(rule) {
                out.push(format!(
                    "every pod of every namespace on {} {}",
                    query::describe_ports(rule),
                    at(np, dir, i + 1, rule)
                ));
            }
        }
    }
    out
}

/// What outside the pod network the isolating policies `nps` admit for `dir`.
fn outside(nps: &[&NetworkPolicy], open: bool, dir: PolicyType) -> Vec<String> {
    let d = query::direction_word(dir);
    let mut out: BTreeSet<String> = BTreeSet::new();
    if open {
        out.insert(format!("anywhere ({d} not isolated)"));
    }
    for np in nps {
        for (i, rule) in query::rules_of(np, dir).iter().enumerate() {
            let ports = query::describe_ports(rule);
            let at = at(np, dir, i + 1, rule);
            match query::rule_reach(rule) {
                Some(RuleReach::Everything) => {
                    out.insert(format!("anywhere on {ports} {at}"));
                    continue;
                }
                Some(RuleReach::EveryAddress { cidr, .. }) => {
                    out.insert(format!("every address ({cidr}) on {ports} {at}"));
                    continue;
                }
                _ => {}
            }
            for p in rule.peers.iter().flatten() {
                if let Peer::IpBlock(b) = p {
                    let except = if b.except.is_empty() {
                        String::new()
                    } else {
                        let e: Vec<String> = b.except.iter().map(ToString::to_string).collect();
                        format!(" except {}", e.join(", "))
                    };
                    out.insert(format!("{}{except} on {ports} {at}", b.cidr));
                }
            }
        }
    }
    out.into_iter().collect()
}
