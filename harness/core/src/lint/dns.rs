//! `dns-blocked`: a pod isolated for egress whose egress does not admit the cluster DNS on both
//! 53/udp and 53/tcp.
//!
//! Reported for every pod isolated for egress whose policies have egress rules (an author who
//! writes egress rules means the pod to talk to something, usually by name), and for pods the
//! scenario probes names from even under a rule-less egress deny-all. Whether DNS is admitted is
//! the engine's answer ([`engine::dns_egress`]); only a certain "no" counts (DNS through an
//! ipBlock is left to the implementation).

use std::collections::BTreeMap;

use super::{Hints, LintRule, WorldFinding, list};
use crate::engine::query;
use crate::engine::{self, DNS_NAMESPACE, DNS_POD_LABEL, Tri, World};
use crate::model::{PodId, Protocol};
use crate::policy::{NAMESPACE_NAME_LABEL, NetworkPolicy, PolicyRef, PolicyType};

/// A pod and the notes about it (which policies isolate it, which names it probes).
type Noted<'w> = (&'w PodId, Vec<String>);

pub(super) fn dns_blocked(w: &World, hints: &Hints, out: &mut Vec<WorldFinding>) {
    // (the policy the finding is filed under, the missing protocols) → pods.
    let mut groups: BTreeMap<(PolicyRef, Vec<&str>), Vec<Noted<'_>>> = BTreeMap::new();
    for pod in w.pods.keys() {
        let isolating = w.selecting(pod, PolicyType::Egress);
        if isolating.is_empty() {
            continue;
        }
        let with_rules: Vec<&&NetworkPolicy> = isolating
            .iter()
            .filter(|np| !query::rules_of(np, PolicyType::Egress).is_empty())
            .collect();
        let resolves = hints.resolvers.get(pod);
        if with_rules.is_empty() && resolves.is_none() {
            continue;
        }
        let missing: Vec<&str> = [("53/udp", Protocol::Udp), ("53/tcp", Protocol::Tcp)]
            .into_iter()
            .filter(|(_, p)| engine::dns_egress(w, pod, *p).verdict == Tri::No)
            .map(|(name, _)| name)
            .collect();
        if missing.is_empty() {
            continue;
        }
        let filed = with_rules.first().map_or(isolating[0], |np| **np);
        let mut notes = vec![format!(
            "egress isolated by {}",
            isolating
                .iter()
                .map(|np| np.reference().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )];
        if let Some((example, n)) = resolves {
            notes.push(if *n == 1 {
                format!("it probes {example}")
            } else {
                format!("it probes {example} and {} more by name", n - 1)
            });
        }
        groups
            .entry((filed.reference(), missing))
            .or_default()
            .push((pod, notes));
    }
    for ((reference, missing), pods) in groups {
        let Some(np) = w.policies.get(&reference) else {
            continue;
        };
        let udp = missing.contains(&"53/udp");
        let consequence = if udp {
            "without 53/udp names do not resolve"
        } else {
            "without 53/tcp answers too large for UDP (truncated) fail"
        };
        let ids: Vec<String> = pods.iter().map(|(p, _)| p.to_string()).collect();
        let details: Vec<String> = pods
            .iter()
            .map(|(p, notes)| format!("{p} ({})", notes.join("; ")))
            .collect();
        let has = if pods.len() == 1 { "its" } else { "their" };
        out.push(WorldFinding::new(
            LintRule::DnsBlocked,
            np,
            np.origin.clone(),
            format!(
                "{} isolates {} for egress, and {has} egress does not admit the cluster DNS ({DNS_NAMESPACE} pods labelled {}={}) on {}: {consequence}",
                np.reference(),
                list(&ids),
                DNS_POD_LABEL.0,
                DNS_POD_LABEL.1,
                missing.join(" or "),
            ),
            format!(
                "add an egress rule `to: [{{namespaceSelector: {{matchLabels: {{{NAMESPACE_NAME_LABEL}: {DNS_NAMESPACE}}}}}, podSelector: {{matchLabels: {{{}: {}}}}}}}]` with `ports: [{{protocol: UDP, port: 53}}, {{protocol: TCP, port: 53}}]` (in a scenario, declare namespace {DNS_NAMESPACE} with `existing: true`); if these pods never resolve names, `--allow dns-blocked`; {}",
                DNS_POD_LABEL.0,
                DNS_POD_LABEL.1,
                details.join(", ")
            ),
        ));
    }
}
