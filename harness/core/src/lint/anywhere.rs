//! `ingress-from-anywhere`, `egress-to-anywhere`: a rule whose peers admit everything.
//!
//! One concept per direction, with or without ports: no (or empty) `from`/`to`, an ipBlock of a
//! whole address family without `except`, or `namespaceSelector: {}` (with no or an empty
//! podSelector). On every port such a rule makes every other rule of its direction irrelevant
//! for the pods it selects; on the ports it names it opens those ports to everyone (egress:
//! an exfiltration path when it reaches outside the cluster). These replace `allow-all-rule`,
//! which was the every-port case only.

use super::{LintRule, WorldFinding};
use crate::engine::query::{self, Reach};
use crate::policy::{NetworkPolicy, PolicyType, Rule};

pub(super) fn rules_from_anywhere(np: &NetworkPolicy, out: &mut Vec<WorldFinding>) {
    for (dir, i, rule) in query::effective_rules(np) {
        let Some(reach) = query::rule_reach(rule) else {
            continue;
        };
        let (lint_rule, d, field) = match dir {
            PolicyType::Ingress => (LintRule::IngressFromAnywhere, "ingress", "from"),
            PolicyType::Egress => (LintRule::EgressToAnywhere, "egress", "to"),
        };
        let message = format!(
            "{d} rule {i} of {} admits {}",
            np.reference(),
            what(dir, &reach, rule)
        );
        let help = match dir {
            PolicyType::Ingress => format!(
                "list the sources that need access in `{field}` (pod and namespace selectors, or the ipBlocks of the clients); if the pods are meant to be reachable from anywhere (a public endpoint), say so in a comment and `--allow {}`",
                lint_rule.name()
            ),
            PolicyType::Egress => format!(
                "list the destinations in `{field}`: namespace/pod selectors for the cluster, ipBlocks of the services outside it; if the pods are meant to reach anywhere, say so in a comment and `--allow {}`",
                lint_rule.name()
            ),
        };
        out.push(WorldFinding::new(
            lint_rule,
            np,
            query::rule_origin(np, rule),
            message,
            help,
        ));
    }
}

/// `every destination in and outside the cluster on 443/tcp: an exfiltration path`.
fn what(dir: PolicyType, reach: &Reach, rule: &Rule) -> String {
    let (every, field) = match dir {
        PolicyType::Ingress => ("every source", "from"),
        PolicyType::Egress => ("every destination", "to"),
    };
    let (who, outside, why) = match reach {
        Reach::Everything => (
            format!("{every} in and outside the cluster"),
            true,
            match rule.peers {
                None => format!("it has no `{field}`"),
                Some(_) => format!("its `{field}` is empty, which means everything"),
            },
        ),
        Reach::EveryAddress { peer, cidr } => {
            let family = if cidr.contains(':') { "IPv6" } else { "IPv4" };
            (
                format!("every {family} address in and outside the cluster"),
                true,
                format!("peer {peer} is ipBlock {cidr} without `except`"),
            )
        }
        Reach::EveryPod { peer } => (
            "every pod of every namespace".to_owned(),
            false,
            format!("peer {peer} is `namespaceSelector: {{}}`, which selects every namespace"),
        ),
    };
    let ports = query::describe_ports(rule);
    if ports == "every port" {
        let d = match dir {
            PolicyType::Ingress => "ingress",
            PolicyType::Egress => "egress",
        };
        format!(
            "{who} on every port ({why}): every other {d} rule for the pods it selects becomes irrelevant"
        )
    } else if dir == PolicyType::Egress && outside {
        format!("{who} on {ports} ({why}): an exfiltration path")
    } else {
        format!("{who} on {ports} ({why})")
    }
}
