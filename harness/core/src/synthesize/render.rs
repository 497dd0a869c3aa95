//! YAML text: the policy files (one per namespace, rules commented with their cells) and the
//! verification scenario that applies them with the intent as its expectations.
//!
//! Written by hand for a stable, readable layout: block style, keys in the order `kubectl`
//! users know, scalars quoted only when YAML 1.1 or 1.2 could read them as something else.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::build::Doc;
use super::{Intent, Isolation};
use crate::model::{CellKey, Loopback, Target, Verdict, Via};
use crate::policy::{
    AddrExpr, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer, PolicyPort,
    PolicyType, PortValue, Rule,
};

/// At most this many cells are listed above a rule; the rest are counted.
const CELLS_PER_RULE: usize = 12;

/// A scalar, quoted when a YAML reader could take it for a number, boolean, null or syntax.
pub(crate) fn scalar(s: &str) -> String {
    const WORDS: [&str; 12] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "nan", "inf",
    ];
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str())
        && s.parse::<f64>().is_err()
        && !s.starts_with("0x")
        && !s.starts_with("0o")
        && !s.starts_with("0b");
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

/// A scenario namespace's `labels:` block (the label Kubernetes sets left out).
pub(crate) fn namespace_labels(s: &mut String, labels: &BTreeMap<String, String>) {
    let own: BTreeMap<&String, &String> = labels
        .iter()
        .filter(|(k, _)| {
            *k != NAMESPACE_NAME_LABEL && !crate::names::OWN_LABELS.contains(&k.as_str())
        })
        .collect();
    if !own.is_empty() {
        s.push_str("    labels:\n");
        for (k, v) in own {
            let _ = writeln!(s, "      {}: {}", scalar(k), scalar(v));
        }
    }
}

/// Lines of a mapping at `ind` as a list item: the first line's indentation becomes `- `.
fn item(lines: Vec<String>, ind: usize) -> Vec<String> {
    let mut lines = lines;
    if let Some(first) = lines.first_mut() {
        let pad = " ".repeat(ind);
        if let Some(rest) = first.strip_prefix(&pad) {
            *first = format!("{}- {rest}", " ".repeat(ind.saturating_sub(2)));
        }
    }
    lines
}

fn selector(key: &str, s: &LabelSelector, ind: usize) -> Vec<String> {
    let pad = " ".repeat(ind);
    if s.match_labels.is_empty() && s.match_expressions.is_empty() {
        return vec![format!("{pad}{key}: {{}}")];
    }
    let mut out = vec![format!("{pad}{key}:")];
    if !s.match_labels.is_empty() {
        out.push(format!("{pad}  matchLabels:"));
        for (k, v) in &s.match_labels {
            out.push(format!("{pad}    {}: {}", scalar(k), scalar(v)));
        }
    }
    if !s.match_expressions.is_empty() {
        out.push(format!("{pad}  matchExpressions:"));
        for r in &s.match_expressions {
            let op = match r.operator {
                Operator::In => "In",
                Operator::NotIn => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
            };
            let mut l = vec![
                format!("{pad}      key: {}", scalar(&r.key)),
                format!("{pad}      operator: {op}"),
            ];
            if !r.values.is_empty() {
                let vs: Vec<String> = r.values.iter().map(|v| scalar(v)).collect();
                l.push(format!("{pad}      values: [{}]", vs.join(", ")));
            }
            out.extend(item(l, ind + 6));
        }
    }
    out
}

fn addr(a: &AddrExpr) -> String {
    scalar(&a.to_string())
}

fn peer(p: &Peer, ind: usize) -> Vec<String> {
    let pad = " ".repeat(ind);
    let lines = match p {
        Peer::Selectors { pods, namespaces } => {
            let mut l = Vec::new();
            if let Some(n) = namespaces {
                l.extend(selector("namespaceSelector", n, ind));
            }
            if let Some(s) = pods {
                l.extend(selector("podSelector", s, ind));
            }
            l
        }
        Peer::IpBlock(b) => {
            let mut l = vec![
                format!("{pad}ipBlock:"),
                format!("{pad}  cidr: {}", addr(&b.cidr)),
            ];
            if !b.except.is_empty() {
                let ex: Vec<String> = b.except.iter().map(addr).collect();
                l.push(format!("{pad}  except: [{}]", ex.join(", ")));
            }
            l
        }
    };
    item(lines, ind)
}

fn port(p: &PolicyPort, ind: usize) -> Vec<String> {
    let pad = " ".repeat(ind);
    let mut l = vec![format!("{pad}protocol: {}", p.protocol.k8s_name())];
    match &p.port {
        Some(PortValue::Number(n)) => l.push(format!("{pad}port: {n}")),
        Some(PortValue::Name(n)) => l.push(format!("{pad}port: {}", scalar(n))),
        None => {}
    }
    if let Some(e) = p.end_port {
        l.push(format!("{pad}endPort: {e}"));
    }
    item(l, ind)
}

fn cell_line(c: &CellKey) -> String {
    c.to_string()
}

fn rule(r: &Rule, peer_key: &str, cells: &[CellKey], ind: usize) -> Vec<String> {
    let pad = " ".repeat(ind);
    let mut out = Vec::new();
    if !cells.is_empty() {
        out.push(format!("{}# for:", " ".repeat(ind - 2)));
        for c in cells.iter().take(CELLS_PER_RULE) {
            out.push(format!("{}#   {}", " ".repeat(ind - 2), cell_line(c)));
        }
        if cells.len() > CELLS_PER_RULE {
            out.push(format!(
                "{}#   ... and {} more cells",
                " ".repeat(ind - 2),
                cells.len() - CELLS_PER_RULE
            ));
        }
    }
    let mut body = Vec::new();
    if let Some(peers) = &r.peers {
        body.push(format!("{pad}{peer_key}:"));
        for p in peers {
            body.extend(peer(p, ind + 4));
        }
    }
    if let Some(ports) = &r.ports {
        body.push(format!("{pad}ports:"));
        for p in ports {
            body.extend(port(p, ind + 4));
        }
    }
    out.extend(item(body, ind));
    out
}

pub(crate) fn policy_lines(p: &NetworkPolicy, rule_cells: &[Vec<CellKey>]) -> Vec<String> {
    let mut out = vec![
        "apiVersion: networking.k8s.io/v1".to_owned(),
        "kind: NetworkPolicy".to_owned(),
        "metadata:".to_owned(),
        format!("  name: {}", scalar(&p.name)),
        format!("  namespace: {}", scalar(&p.ns)),
        "spec:".to_owned(),
    ];
    out.extend(selector("podSelector", &p.pod_selector, 2));
    if let Some(t) = &p.policy_types {
        let t: Vec<&str> = t
            .iter()
            .map(|t| match t {
                PolicyType::Ingress => "Ingress",
                PolicyType::Egress => "Egress",
            })
            .collect();
        out.push(format!("  policyTypes: [{}]", t.join(", ")));
    }
    let mut k = 0;
    for (key, peer_key, rules) in [("ingress", "from", &p.ingress), ("egress", "to", &p.egress)] {
        let Some(rules) = rules else { continue };
        out.push(format!("  {key}:"));
        for r in rules {
            let cells = rule_cells.get(k).map(Vec::as_slice).unwrap_or_default();
            out.extend(rule(r, peer_key, cells, 6));
            k += 1;
        }
    }
    out
}

/// The text of one namespace's policy file.
pub(crate) fn policy_file(intent: &Intent, ns: &str, docs: &[Doc], isolation: Isolation) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# NetworkPolicies for namespace {ns}, written by `netreach synthesize` from\n# {} (isolation: {}).",
        intent.source,
        isolation.as_str()
    );
    s.push_str(
        "# Proven with netreach's policy engine against every cell of that intent. Review before\n\
         # applying to a live cluster: the default deny cuts everything the intent does not name\n\
         # (monitoring, ingress controllers, the API server, DNS of pods not shown resolving).\n",
    );
    if docs.iter().any(|d| has_placeholder(&d.policy)) {
        s.push_str(
            "# `${ip ext:<name>}/32` stands for an external endpoint's address: netreach fills it in\n\
             # during a run; for kubectl, replace it with the address.\n",
        );
    }
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            s.push_str("---\n");
        }
        for a in &d.about {
            let _ = writeln!(s, "# {a}");
        }
        for l in policy_lines(&d.policy, &d.rule_cells) {
            s.push_str(&l);
            s.push('\n');
        }
    }
    s
}

fn has_placeholder(p: &NetworkPolicy) -> bool {
    p.egress
        .iter()
        .flatten()
        .chain(p.ingress.iter().flatten())
        .flat_map(|r| r.peers.iter().flatten())
        .any(|p| matches!(p, Peer::IpBlock(b) if !matches!(b.cidr, AddrExpr::Literal(_))))
}

fn pattern_of(c: &CellKey) -> String {
    let mut f = vec![format!("from: {}", scalar(&c.from.to_string()))];
    f.push(format!("to: {}", scalar(&c.to.to_string())));
    if let Some(p) = c.port {
        f.push(format!("port: {}", scalar(&p.to_string())));
    }
    if let (Some(v), Target::Pod(_)) = (c.via, &c.to) {
        f.push(format!("via: {}", v.as_str()));
    }
    format!("{{{}}}", f.join(", "))
}

/// A scenario that deploys the intent's World, applies the synthesized files and expects the
/// intent: `netreach run --context <ctx> <dir>/verify.yaml` proves them on a cluster.
pub(crate) fn verify_scenario(
    intent: &Intent,
    files: &[String],
    isolation: Isolation,
    dns_used: bool,
) -> String {
    let w = &intent.world;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Verifies the synthesized policies on a cluster: the World of\n# {} with only those\n# policies applied, and the intent as the expectations. Run it with\n#   netreach run --context kind-netreach <this file>\n# Written by `netreach synthesize` (isolation: {}).",
        intent.source,
        isolation.as_str()
    );
    s.push_str("version: 1\n");
    let _ = writeln!(
        s,
        "name: {}",
        scalar(&format!("Synthesized policies for {}", intent.source))
    );
    s.push_str("namespaces:\n");
    for (ns, labels) in &w.namespaces {
        if intent.existing.contains(ns) {
            let _ = writeln!(s, "  - name: {}\n    existing: true", scalar(ns));
            continue;
        }
        let _ = writeln!(s, "  - name: {}", scalar(ns));
        namespace_labels(&mut s, labels);
    }
    if dns_used && !w.namespaces.contains_key(crate::engine::DNS_NAMESPACE) {
        let _ = writeln!(
            s,
            "  - name: {}\n    existing: true",
            crate::engine::DNS_NAMESPACE
        );
    }
    s.push_str("pods:\n");
    for p in w.pods.values() {
        let _ = writeln!(
            s,
            "  - name: {}\n    namespace: {}",
            scalar(&p.id.name),
            scalar(&p.id.ns)
        );
        if !p.labels.is_empty() {
            s.push_str("    labels:\n");
            for (k, v) in &p.labels {
                let _ = writeln!(s, "      {}: {}", scalar(k), scalar(v));
            }
        }
        if !p.ports.is_empty() {
            s.push_str("    ports:\n");
            for sp in &p.ports {
                let name = sp.name.as_ref().map(|n| format!(", name: {}", scalar(n)));
                let _ = writeln!(
                    s,
                    "      - {{port: {}, protocol: {}{}}}",
                    sp.port.port,
                    sp.port.protocol.k8s_name(),
                    name.unwrap_or_default()
                );
            }
        }
    }
    if !intent.externals.is_empty() {
        s.push_str("external:\n");
        for (name, ports) in &intent.externals {
            let ps: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            let _ = writeln!(
                s,
                "  - name: {}\n    ports: [{}]",
                scalar(name),
                ps.join(", ")
            );
        }
    }
    let _ = writeln!(
        s,
        "loopback: {}",
        match intent.loopback {
            Loopback::Allow => "allow",
            Loopback::Block => "block",
            Loopback::Rules => "rules",
            Loopback::Ignore => "ignore",
        }
    );
    s.push_str("probes:\n");
    for c in intent.cells.keys() {
        match &c.to {
            Target::Name(n) => {
                let _ = writeln!(
                    s,
                    "  - {{from: {}, resolve: {}}}",
                    scalar(&c.from.to_string()),
                    scalar(n)
                );
            }
            _ => {
                let via = match c.via {
                    Some(Via::Service) => ", via: service",
                    Some(Via::Dns) => ", via: dns",
                    _ => "",
                };
                let _ = writeln!(
                    s,
                    "  - {{from: {}, to: {}, port: {}{via}}}",
                    scalar(&c.from.to_string()),
                    scalar(&c.to.to_string()),
                    scalar(&c.port.map(|p| p.to_string()).unwrap_or_default())
                );
            }
        }
    }
    s.push_str("steps:\n  - name: synthesized policies\n");
    if !files.is_empty() {
        s.push_str("    apply:\n");
        for f in files {
            let _ = writeln!(s, "      - file: {}", scalar(f));
        }
    }
    s.push_str("    expect:\n      - default: block\n");
    for (c, v) in &intent.cells {
        if c.is_loopback() && intent.loopback != Loopback::Rules {
            continue;
        }
        let entry = match v {
            Verdict::Allow => "allow",
            Verdict::Unresolved => "unresolved",
            Verdict::Block => continue,
        };
        let pat = match &c.to {
            Target::Name(_) => format!(
                "{{from: {}, to: {}}}",
                scalar(&c.from.to_string()),
                scalar(&c.to.to_string())
            ),
            _ => pattern_of(c),
        };
        let _ = writeln!(s, "      - {entry}: {pat}");
    }
    s
}
