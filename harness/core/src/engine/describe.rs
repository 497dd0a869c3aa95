//! Peers, selectors and ports in words, for reports and explanations.

use crate::policy::{LabelSelector, Peer, PolicyPort, PortValue};

/// `podSelector {app: web} in namespaces {team: a}` and the like.
pub fn describe_peer(p: &Peer) -> String {
    match p {
        Peer::Selectors { pods, namespaces } => {
            let pods = pods.as_ref().map(describe_selector);
            let nss = namespaces.as_ref().map(describe_selector);
            match (pods, nss) {
                (Some(p), None) => format!("podSelector {p} in the policy's namespace"),
                (None, Some(n)) => format!("every pod in namespaceSelector {n}"),
                (Some(p), Some(n)) => format!("podSelector {p} AND namespaceSelector {n}"),
                (None, None) => "every pod in the policy's namespace".into(),
            }
        }
        Peer::IpBlock(b) => {
            if b.except.is_empty() {
                format!("ipBlock {}", b.cidr)
            } else {
                let ex: Vec<String> = b.except.iter().map(ToString::to_string).collect();
                format!("ipBlock {} except {}", b.cidr, ex.join(", "))
            }
        }
    }
}

/// `{app: web, tier in (a, b)}`; `{}` selects everything.
pub fn describe_selector(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for r in &s.match_expressions {
        use crate::policy::Operator;
        parts.push(match r.operator {
            Operator::In => format!("{} in ({})", r.key, r.values.join(", ")),
            Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(", ")),
            Operator::Exists => r.key.clone(),
            Operator::DoesNotExist => format!("!{}", r.key),
        });
    }
    format!("{{{}}}", parts.join(", "))
}

pub(crate) fn describe_port(p: &PolicyPort) -> String {
    let proto = p.protocol.as_str();
    match (&p.port, p.end_port) {
        (None, _) => format!("every {proto} port"),
        (Some(PortValue::Number(n)), None) => format!("{n}/{proto}"),
        (Some(PortValue::Number(n)), Some(e)) => format!("{n}-{e}/{proto}"),
        (Some(PortValue::Name(name)), _) => format!("named port {name}/{proto}"),
    }
}
