//! `dead-named-port`: a named port in a rule that no pod the rule can concern declares.
//!
//! A named port resolves against the destination's declared ports: for ingress the pods the
//! policy selects, for egress the pods (and the cluster DNS) its peers may match. Which pods a
//! peer may match, and whether a port entry admits a declared port, are the engine's answers
//! ([`query::peers_admit`], [`query::port_admits_some`]).

use std::collections::BTreeSet;

use super::{LintRule, WorldFinding, list};
use crate::engine::query::{self, Dest};
use crate::engine::{PodState, Tri, World};
use crate::model::Protocol;
use crate::policy::{NetworkPolicy, PolicyType, PortValue};

/// The named ports of `protocol` that `pods` declare: `http (x/a 8080/tcp)`.
fn declared_names(pods: &[&PodState], protocol: Protocol) -> String {
    let mut v: Vec<String> = Vec::new();
    for p in pods {
        for sp in &p.ports {
            if let Some(n) = &sp.name
                && sp.port.protocol == protocol
            {
                v.push(format!("{n} ({} {})", p.id, sp.port));
            }
        }
    }
    if v.is_empty() {
        format!("no named {protocol} port")
    } else {
        v.join(", ")
    }
}

pub(super) fn dead_named_ports(w: &World, np: &NetworkPolicy, out: &mut Vec<WorldFinding>) {
    let selected = w.selected_pods(np);
    let dns = query::dns_pod();
    for (dir, i, rule) in query::effective_rules(np) {
        // The destinations a named port of this rule resolves against.
        let candidates: Vec<&PodState> = match dir {
            // A policy that selects nothing is `selects-nothing`'s finding.
            PolicyType::Ingress if selected.is_empty() => continue,
            PolicyType::Ingress => selected.clone(),
            PolicyType::Egress => {
                let mut c: Vec<&PodState> = w
                    .pods
                    .values()
                    .filter(|p| query::peers_admit(w, np, rule, Dest::Pod(&p.id)) != Tri::No)
                    .collect();
                if query::peers_admit(w, np, rule, Dest::Dns) != Tri::No {
                    c.push(&dns);
                }
                c
            }
        };
        let mut seen = BTreeSet::new();
        for pp in rule.ports.iter().flatten() {
            let Some(PortValue::Name(name)) = &pp.port else {
                continue;
            };
            let protocol = pp.protocol;
            if !seen.insert((name.clone(), protocol))
                || candidates
                    .iter()
                    .any(|p| query::port_admits_some(w, np, pp, &p.ports))
            {
                continue;
            }
            let d = query::direction_word(dir);
            let (what, whose) = match dir {
                PolicyType::Ingress => (
                    "none of the pods it selects",
                    format!("the pods it selects ({})", pod_list(&candidates)),
                ),
                PolicyType::Egress => {
                    let what = if rule.peers.as_ref().is_none_or(Vec::is_empty) {
                        "no pod of the scenario (the rule has no peers)"
                    } else {
                        "none of the pods its peers match"
                    };
                    let whose = if candidates.is_empty() {
                        "its peers match no pod of the scenario (named ports resolve against destination pods only, never external endpoints)".to_owned()
                    } else {
                        format!("the pods its peers match ({})", pod_list(&candidates))
                    };
                    (what, whose)
                }
            };
            let upper = protocol.k8s_name();
            let declared = if candidates.is_empty() {
                whose
            } else {
                format!("{whose}: {}", declared_names(&candidates, protocol))
            };
            out.push(WorldFinding::new(
                LintRule::DeadNamedPort,
                np,
                query::rule_origin(np, rule),
                format!(
                    "{d} rule {i} of {} allows named port `{name}` ({upper}), but {what} declares a {upper} port named `{name}`, so this port admits nothing",
                    np.reference()
                ),
                format!(
                    "a named port resolves against the destination pod's declared ports: use a name (or number) that pod declares with protocol {upper}, or declare `{{port: <n>, protocol: {upper}, name: {name}}}` on it; {declared}"
                ),
            ));
        }
    }
}

fn pod_list(pods: &[&PodState]) -> String {
    let ids: Vec<String> = pods.iter().map(|p| p.id.to_string()).collect();
    list(&ids)
}
