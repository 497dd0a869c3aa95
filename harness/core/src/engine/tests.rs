//! The engine, clause by clause of the specification, and its invariants as properties.
//!
//! Size: one table-driven test per clause of the specification plus the proptest strategies,
//! all over one shared fixture world; split, each part would repeat the fixture.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::model::{Action, Scenario, Target, Via};
use crate::policy::{
    AddrExpr, IpBlock, LabelSelector, NetworkPolicy, Operator, Peer, PolicyPort, PortValue,
    Requirement, Rule,
};
use crate::scenario::{MemReader, load_str};

mod ipblocks;
mod sctp;

/// Namespaces x, y, z (labelled `ns: <name>`), pods a, b, c in each (labelled `pod: <name>`),
/// serving 80/tcp (named `http`), 81/tcp, 53/udp, 9000/sctp (named `sig`) and 9001/sctp; a
/// Service-routed and a name-routed cell from x/a to y/b, an external endpoint `web`, and
/// `policies` applied in step 1; `cluster` is the scenario's `cluster:` section (`""`: none).
fn scenario_in(cluster: &str, policies: &str) -> Scenario {
    let mut yaml = String::from("version: 1\n");
    yaml.push_str(cluster);
    yaml.push_str(
        "
namespaces:
  - {name: x, labels: {ns: x}}
  - {name: y, labels: {ns: y}}
  - {name: z, labels: {ns: z}}
  - {name: kube-system, existing: true}
pods:
",
    );
    for ns in ["x", "y", "z"] {
        for p in ["a", "b", "c"] {
            let _ = writeln!(
                yaml,
                "  - {{name: {p}, namespace: {ns}, labels: {{pod: {p}}}, ports: [{{port: 80, name: http}}, 81/tcp, 53/udp, {{port: 9000, protocol: SCTP, name: sig}}, 9001/sctp]}}"
            );
        }
    }
    yaml.push_str(
        "external:
  - {name: web, ports: [80/tcp]}
probes:
  - {from: \"*\", to: \"*\"}
  - {from: x/a, to: y/b, port: 80/tcp, via: service}
  - {from: x/a, to: y/b, port: 80/tcp, via: dns}
  - {from: x/a, to: ext:web, port: 80/tcp}
  - {from: x/a, resolve: y-b.example}
steps:
  - name: policies
",
    );
    if !policies.trim().is_empty() {
        yaml.push_str("    apply:\n");
        for l in policies.lines() {
            let _ = writeln!(yaml, "      {l}");
        }
    }
    yaml.push_str("    expect: [{default: allow}]\n");
    let l = load_str(Path::new("t/engine.yaml"), &yaml, &MemReader::default());
    l.scenario
        .unwrap_or_else(|| panic!("{}\n{yaml}", l.diagnostics.render(false)))
}

fn world(policies: &str) -> World {
    world_in("", policies)
}

fn world_in(cluster: &str, policies: &str) -> World {
    let s = scenario_in(cluster, policies);
    World::per_step(&s).pop().expect("one step")
}

fn pod(s: &str) -> PodId {
    let (ns, n) = s.split_once('/').expect("ns/pod");
    PodId::new(ns, n)
}

fn port(s: &str) -> PortProto {
    let (n, p) = s.split_once('/').expect("port/proto");
    PortProto {
        port: n.parse().expect("number"),
        protocol: Protocol::parse(p).expect("protocol"),
    }
}

fn cell(from: &str, to: &str, p: &str, via: Via) -> CellKey {
    CellKey {
        from: pod(from),
        to: Target::Pod(pod(to)),
        port: Some(port(p)),
        via: Some(via),
    }
}

fn v(w: &World, from: &str, to: &str, p: &str) -> Spec {
    explain(w, &cell(from, to, p, Via::Ip)).verdict
}

/// The e2e suite's truth-table layout for one port: rows from, columns to, `.` allowed,
/// `X` blocked, `?` unspecified.
fn table(w: &World, p: &str) -> String {
    let pods: Vec<String> = ["x", "y", "z"]
        .iter()
        .flat_map(|n| ["a", "b", "c"].map(|p| format!("{n}/{p}")))
        .collect();
    let mut s = String::from("-");
    for to in &pods {
        let _ = write!(s, " {to}");
    }
    s.push('\n');
    for from in &pods {
        s.push_str(from);
        for to in &pods {
            let c = match v(w, from, to, p) {
                Spec::Allow => "   .",
                Spec::Block => "   X",
                Spec::Unspecified => "   ?",
                Spec::Unresolved => "   U",
            };
            s.push_str(c);
        }
        s.push('\n');
    }
    s
}

fn rows(t: &str) -> String {
    t.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const HEADER: &str = "- x/a x/b x/c y/a y/b y/c z/a z/b z/c";

#[test]
fn no_policies_allow_everything() {
    let w = world("");
    for p in ["80/tcp", "81/tcp", "53/udp"] {
        assert!(!table(&w, p).contains('X'), "{}", table(&w, p));
    }
    let e = explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Ip));
    assert!(e.short().contains("not isolated"), "{}", e.short());
}

#[test]
fn default_deny_ingress_blocks_everything_into_the_namespace_but_loopback() {
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny, namespace: x}
    spec: {podSelector: {}, policyTypes: [Ingress]}",
    );
    assert_eq!(
        table(&w, "80/tcp"),
        rows(&format!(
            "{HEADER}
x/a   .   X   X   .   .   .   .   .   .
x/b   X   .   X   .   .   .   .   .   .
x/c   X   X   .   .   .   .   .   .   .
y/a   X   X   X   .   .   .   .   .   .
y/b   X   X   X   .   .   .   .   .   .
y/c   X   X   X   .   .   .   .   .   .
z/a   X   X   X   .   .   .   .   .   .
z/b   X   X   X   .   .   .   .   .   .
z/c   X   X   X   .   .   .   .   .   ."
        ))
    );
    let e = explain(&w, &cell("y/a", "x/b", "80/tcp", Via::Ip));
    assert_eq!(
        e.ingress.as_ref().map(|s| s.isolated_by.clone()),
        Some(vec!["x/deny".to_owned()])
    );
    assert!(explain(&w, &cell("x/a", "x/a", "80/tcp", Via::Ip)).loopback);
}

#[test]
fn policy_types_default_from_the_rules() {
    // No policyTypes, egress rules present: Ingress AND Egress.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec:
      podSelector: {matchLabels: {pod: a}}
      egress: [{to: [{podSelector: {matchLabels: {pod: b}}}]}]",
    );
    assert_eq!(v(&w, "x/a", "x/b", "80/tcp"), Spec::Allow);
    assert_eq!(v(&w, "x/a", "x/c", "80/tcp"), Spec::Block);
    assert_eq!(
        v(&w, "x/b", "x/a", "80/tcp"),
        Spec::Block,
        "ingress is isolated too"
    );
    // Only ingress rules: Ingress only.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]",
    );
    assert_eq!(
        v(&w, "x/a", "y/c", "80/tcp"),
        Spec::Allow,
        "egress not isolated"
    );
    assert_eq!(v(&w, "x/c", "x/a", "80/tcp"), Spec::Block);
    assert_eq!(v(&w, "x/b", "x/a", "80/tcp"), Spec::Allow);
}

#[test]
fn empty_rule_lists_deny_and_one_empty_rule_allows() {
    let deny = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: y}
    spec: {podSelector: {}, policyTypes: [Egress], egress: []}",
    );
    assert_eq!(v(&deny, "y/a", "x/a", "80/tcp"), Spec::Block);
    assert_eq!(v(&deny, "x/a", "y/a", "80/tcp"), Spec::Allow);
    let allow = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: y}
    spec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}",
    );
    assert_eq!(v(&allow, "y/a", "x/a", "80/tcp"), Spec::Allow);
    // An empty `from` is every source.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: y}
    spec: {podSelector: {}, ingress: [{from: [], ports: [{port: 81}]}]}",
    );
    assert_eq!(v(&w, "x/a", "y/a", "81/tcp"), Spec::Allow);
    assert_eq!(v(&w, "x/a", "y/a", "80/tcp"), Spec::Block);
}

#[test]
fn selectors_labels_and_expressions() {
    let pol = |sel: &str| {
        world(&format!(
            "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: p, namespace: x}}
    spec:
      podSelector: {{matchLabels: {{pod: a}}}}
      ingress: [{{from: [{sel}]}}]"
        ))
    };
    let allowed = |w: &World| -> Vec<String> {
        ["x", "y", "z"]
            .iter()
            .flat_map(|n| ["a", "b", "c"].map(|p| format!("{n}/{p}")))
            .filter(|f| f != "x/a" && v(w, f, "x/a", "80/tcp") == Spec::Allow)
            .collect()
    };
    assert_eq!(
        allowed(&pol("{podSelector: {matchLabels: {pod: b}}}")),
        ["x/b"]
    );
    assert_eq!(
        allowed(&pol(
            "{podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}}"
        )),
        ["x/b", "x/c"]
    );
    assert_eq!(
        allowed(&pol(
            "{podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [b]}]}}"
        )),
        ["x/c"]
    );
    assert_eq!(
        allowed(&pol(
            "{podSelector: {matchExpressions: [{key: pod, operator: Exists}]}}"
        )),
        ["x/b", "x/c"]
    );
    assert!(
        allowed(&pol(
            "{podSelector: {matchExpressions: [{key: pod, operator: DoesNotExist}]}}"
        ))
        .is_empty()
    );
    assert_eq!(
        allowed(&pol("{namespaceSelector: {matchLabels: {ns: y}}}")),
        ["y/a", "y/b", "y/c"]
    );
    assert_eq!(
        allowed(&pol(
            "{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x, y]}]}}"
        )),
        ["z/a", "z/b", "z/c"]
    );
    // Both in one peer: AND.
    assert_eq!(
        allowed(&pol(
            "{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}"
        )),
        ["y/b"]
    );
    // Separate peers: OR.
    assert_eq!(
        allowed(&pol(
            "{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: b}}}"
        )),
        ["x/b", "y/a", "y/b", "y/c"]
    );
    // The namespace name label works as a selector.
    assert_eq!(
        allowed(&pol(
            "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}, podSelector: {matchLabels: {pod: c}}}"
        )),
        ["z/c"]
    );
    // The empty namespace selector is every namespace.
    assert_eq!(
        allowed(&pol(
            "{namespaceSelector: {}, podSelector: {matchLabels: {pod: c}}}"
        )),
        ["x/c", "y/c", "z/c"]
    );
}

#[test]
fn ports_numeric_named_ranges_and_protocols() {
    let pol = |ports: &str| {
        world(&format!(
            "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: p, namespace: x}}
    spec:
      podSelector: {{}}
      ingress: [{{ports: [{ports}]}}]"
        ))
    };
    let ok = |w: &World, p: &str| v(w, "y/a", "x/b", p) == Spec::Allow;
    let w = pol("{port: 81}");
    assert!(
        !ok(&w, "80/tcp") && ok(&w, "81/tcp") && !ok(&w, "53/udp"),
        "TCP by default"
    );
    let w = pol("{port: http}");
    assert!(
        ok(&w, "80/tcp") && !ok(&w, "81/tcp"),
        "named port of the destination"
    );
    let w = pol("{port: http, protocol: UDP}");
    assert!(
        !ok(&w, "80/tcp"),
        "a named port must match its protocol too"
    );
    let w = pol("{port: 80, endPort: 81}");
    assert!(ok(&w, "80/tcp") && ok(&w, "81/tcp") && !ok(&w, "53/udp"));
    let w = pol("{protocol: UDP}");
    assert!(
        !ok(&w, "80/tcp") && ok(&w, "53/udp"),
        "protocol only: every UDP port"
    );
    let w = pol("{port: 53, protocol: UDP}, {port: 80}");
    assert!(ok(&w, "80/tcp") && ok(&w, "53/udp") && !ok(&w, "81/tcp"));
    // Egress named ports resolve against the destination pod.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{ports: [{port: http}]}]",
    );
    assert_eq!(v(&w, "x/a", "y/b", "80/tcp"), Spec::Allow);
    assert_eq!(v(&w, "x/a", "y/b", "81/tcp"), Spec::Block);
}

#[test]
fn stacked_policies_are_a_union() {
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p1, namespace: x}
    spec: {podSelector: {}, ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]}
- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p2, namespace: x}
    spec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}]}]}",
    );
    assert_eq!(v(&w, "x/b", "x/a", "80/tcp"), Spec::Allow);
    assert_eq!(v(&w, "z/c", "x/a", "80/tcp"), Spec::Allow);
    assert_eq!(v(&w, "z/c", "x/b", "80/tcp"), Spec::Block);
    assert_eq!(v(&w, "y/c", "x/a", "80/tcp"), Spec::Block);
    let e = explain(&w, &cell("z/c", "x/a", "80/tcp", Via::Ip));
    let ing = e.ingress.expect("ingress side");
    assert_eq!(ing.isolated_by, ["x/p1", "x/p2"]);
    assert_eq!(ing.allowed_by.len(), 1);
    assert_eq!(ing.allowed_by[0].policy, "x/p2");
    assert_eq!(ing.allowed_by[0].rule, 1);
    assert!(
        ing.allowed_by[0]
            .detail
            .contains("namespaceSelector {ns=z}"),
        "{:?}",
        ing.allowed_by
    );
}

const IPBLOCK: &str = "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{ipBlock: {cidr: CIDR, except: [EXCEPT]}}]}]";

#[test]
fn ip_blocks_with_placeholders_and_addresses() {
    let pol =
        |cidr: &str, except: &str| world(&IPBLOCK.replace("CIDR", cidr).replace("EXCEPT", except));
    // A full-length placeholder names exactly one pod.
    let w = pol("'${ip y/b}/32'", "");
    assert_eq!(v(&w, "x/a", "y/b", "80/tcp"), Spec::Allow);
    assert_eq!(v(&w, "x/a", "y/c", "80/tcp"), Spec::Block);
    // A wide block around y/b, except y/b: the others depend on addresses.
    let w = pol("'${ip y/b}/16'", "'${ip y/b}/32'");
    assert_eq!(v(&w, "x/a", "y/b", "80/tcp"), Spec::Block);
    assert_eq!(v(&w, "x/a", "y/c", "80/tcp"), Spec::Unspecified);
    let e = explain(&w, &cell("x/a", "y/c", "80/tcp", Via::Ip));
    assert!(e.short().contains("depends on addresses"), "{}", e.short());
    // ... and are decided once they are known.
    let ips: BTreeMap<PodId, IpAddr> = [
        ("y/b", "10.244.1.5"),
        ("y/c", "10.244.0.9"),
        ("z/a", "10.245.0.1"),
    ]
    .into_iter()
    .map(|(p, ip)| (pod(p), ip.parse().expect("ip")))
    .collect();
    let mut w2 = w.clone();
    w2.pod_ips = ips;
    assert_eq!(v(&w2, "x/a", "y/c", "80/tcp"), Spec::Allow);
    assert_eq!(v(&w2, "x/a", "y/b", "80/tcp"), Spec::Block);
    assert_eq!(v(&w2, "x/a", "z/a", "80/tcp"), Spec::Block);
    // A literal block and an external endpoint: decided by its address.
    let w = pol("172.18.0.0/16", "172.18.0.9/32");
    let ext = CellKey {
        from: pod("x/a"),
        to: Target::External("web".into()),
        port: Some(port("80/tcp")),
        via: Some(Via::Ip),
    };
    assert_eq!(explain(&w, &ext).verdict, Spec::Unspecified);
    let mut w2 = w.clone();
    w2.external_ips
        .insert("web".into(), "172.18.0.5".parse().expect("ip"));
    assert_eq!(explain(&w2, &ext).verdict, Spec::Allow);
    w2.external_ips
        .insert("web".into(), "172.18.0.9".parse().expect("ip"));
    assert_eq!(explain(&w2, &ext).verdict, Spec::Block);
    // Selectors never match an address outside the cluster.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {}}]}]}",
    );
    assert_eq!(explain(&w, &ext).verdict, Spec::Block);
}

#[test]
fn services_and_names() {
    // ipBlock through a Service: left to the implementation.
    let w = world(
        &IPBLOCK
            .replace("CIDR", "'${ip y/b}/32'")
            .replace("EXCEPT", ""),
    );
    assert_eq!(
        explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Service)).verdict,
        Spec::Unspecified
    );
    // Selectors through a Service: as by IP.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: y}
    spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: x}}}]}]}",
    );
    assert_eq!(
        explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Service)).verdict,
        Spec::Allow
    );
    assert_eq!(
        explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Dns)).verdict,
        Spec::Allow
    );
    // Egress deny without DNS: a name does not resolve.
    let deny = "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec: {podSelector: {}, policyTypes: [Egress]}";
    let w = world(deny);
    assert_eq!(
        explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Dns)).verdict,
        Spec::Unresolved
    );
    let resolve = CellKey {
        from: pod("x/a"),
        to: Target::Name("y-b.example".into()),
        port: None,
        via: None,
    };
    assert_eq!(explain(&w, &resolve).verdict, Spec::Block);
    // Allowing DNS to kube-system's kube-dns pods on 53/udp: resolves.
    let w = world(&format!(
        "{deny}
- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: dns, namespace: x}}
    spec:
      podSelector: {{}}
      policyTypes: [Egress]
      egress:
        - to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}, podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}}}]
          ports: [{{port: 53, protocol: UDP}}]"
    ));
    assert_eq!(explain(&w, &resolve).verdict, Spec::Allow);
    assert_eq!(
        explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Dns)).verdict,
        Spec::Block
    );
    // DNS through an ipBlock: unspecified.
    let w = world(&format!(
        "{deny}
- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: dns, namespace: x}}
    spec:
      podSelector: {{}}
      policyTypes: [Egress]
      egress: [{{to: [{{ipBlock: {{cidr: 10.96.0.0/12}}}}], ports: [{{port: 53, protocol: UDP}}]}}]"
    ));
    assert_eq!(explain(&w, &resolve).verdict, Spec::Unspecified);
}

#[test]
fn dns_egress_per_protocol() {
    let x_a = pod("x/a");
    // Not isolated for egress: both protocols reach the cluster DNS.
    let w = world("");
    assert_eq!(dns_egress(&w, &x_a, Protocol::Udp).verdict, Tri::Yes);
    assert_eq!(dns_egress(&w, &x_a, Protocol::Tcp).verdict, Tri::Yes);
    // 53/udp only, by the named port `dns`: UDP allowed, TCP blocked; agrees with `explain` on a
    // resolution cell.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: dns, namespace: x}
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress:
        - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
          ports: [{port: dns, protocol: UDP}]",
    );
    let udp = dns_egress(&w, &x_a, Protocol::Udp);
    assert_eq!(udp.verdict, Tri::Yes);
    assert_eq!(udp.isolated_by, vec!["x/dns".to_owned()]);
    assert_eq!(dns_egress(&w, &x_a, Protocol::Tcp).verdict, Tri::No);
    let resolve = CellKey {
        from: x_a.clone(),
        to: Target::Name("y-b.example".into()),
        port: None,
        via: None,
    };
    assert_eq!(explain(&w, &resolve).verdict, Spec::Allow);
    // `dns-tcp` names 53/tcp on the cluster DNS.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: dns, namespace: x}
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress: [{ports: [{port: dns-tcp}]}]",
    );
    assert_eq!(dns_egress(&w, &x_a, Protocol::Tcp).verdict, Tri::Yes);
    assert_eq!(dns_egress(&w, &x_a, Protocol::Udp).verdict, Tri::No);
    assert_eq!(explain(&w, &resolve).verdict, Spec::Block);
}

#[test]
fn steps_relabel_replace_and_delete() {
    let yaml = "version: 1
namespaces: [{name: x, labels: {team: a}}, {name: y}]
pods:
  - {name: a, namespace: x, labels: {app: a}, ports: [80/tcp]}
  - {name: b, namespace: y, labels: {app: b}, ports: [80/tcp]}
steps:
  - name: only from team a
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: p, namespace: y}
          spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: a}}}]}]}
    expect: [{default: allow}]
  - name: x leaves team a
    relabel: [{namespace: x, labels: {team: null}}]
    expect: [{default: allow}]
  - name: replaced by pod selector
    replace:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: p, namespace: y}
          spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}]}]}
    expect: [{default: allow}]
  - name: pod relabelled
    relabel: [{pod: x/a, labels: {app: z}}]
    expect: [{default: allow}]
  - name: deleted
    delete: [y/p]
    expect: [{default: allow}]
";
    let l = load_str(Path::new("t/steps.yaml"), yaml, &MemReader::default());
    let s = l
        .scenario
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
    let worlds = World::per_step(&s);
    let got: Vec<Spec> = worlds
        .iter()
        .map(|w| v(w, "x/a", "y/b", "80/tcp"))
        .collect();
    assert_eq!(
        got,
        [
            Spec::Allow,
            Spec::Block,
            Spec::Allow,
            Spec::Block,
            Spec::Allow
        ]
    );
}

// ---- properties -------------------------------------------------------------------------

const NSS: [&str; 3] = ["x", "y", "z"];
const PODS: [&str; 3] = ["a", "b", "c"];
/// The ports the properties look at: named and numbered, of every protocol.
const PORTS: [&str; 4] = ["80/tcp", "81/udp", "81/tcp", "9000/sctp"];
/// Literal blocks for the properties: around, inside, across and outside the pod network
/// 10.244.0.0/16 the address properties declare, and of the other family.
const CIDRS: [&str; 7] = [
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.244.0.0/16",
    "10.244.0.0/24",
    "10.244.0.8/29",
    "192.168.0.0/16",
    "::/0",
];

/// A world of 9 pods with a random `tier` label and the given policies.
fn base_world(tiers: &[u8]) -> World {
    let mut w = World::default();
    for n in NSS {
        w.namespaces.insert(
            n.into(),
            BTreeMap::from([
                ("ns".to_owned(), n.to_owned()),
                (crate::policy::NAMESPACE_NAME_LABEL.to_owned(), n.to_owned()),
            ]),
        );
    }
    for (i, (n, p)) in NSS
        .iter()
        .flat_map(|n| PODS.iter().map(move |p| (*n, *p)))
        .enumerate()
    {
        let id = PodId::new(n, p);
        let mut labels = BTreeMap::from([("pod".to_owned(), p.to_owned())]);
        if let Some(t) = tiers.get(i).filter(|t| **t > 0) {
            labels.insert("tier".into(), t.to_string());
        }
        w.pods.insert(
            id.clone(),
            PodState {
                id,
                labels,
                ports: vec![
                    ServedPort {
                        port: PortProto {
                            port: 80,
                            protocol: Protocol::Tcp,
                        },
                        name: Some("http".into()),
                    },
                    ServedPort {
                        port: PortProto {
                            port: 81,
                            protocol: Protocol::Udp,
                        },
                        name: Some("dns".into()),
                    },
                    ServedPort {
                        port: PortProto {
                            port: 9000,
                            protocol: Protocol::Sctp,
                        },
                        name: Some("sig".into()),
                    },
                ],
            },
        );
    }
    w
}

fn all_cells() -> Vec<CellKey> {
    let pods: Vec<String> = NSS
        .iter()
        .flat_map(|n| PODS.iter().map(move |p| format!("{n}/{p}")))
        .collect();
    let mut v = Vec::new();
    for f in &pods {
        for t in &pods {
            for p in PORTS {
                v.push(cell(f, t, p, Via::Ip));
            }
        }
    }
    v
}

fn arb_selector() -> impl Strategy<Value = LabelSelector> {
    let req = (
        prop_oneof![Just("pod"), Just("tier"), Just("ns")],
        0..4usize,
        prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("1"), Just("x")],
            1..3,
        ),
    )
        .prop_map(|(k, op, vals)| Requirement {
            key: k.into(),
            operator: [
                Operator::In,
                Operator::NotIn,
                Operator::Exists,
                Operator::DoesNotExist,
            ][op],
            values: if op < 2 {
                vals.into_iter().map(Into::into).collect()
            } else {
                vec![]
            },
        });
    (
        prop::option::of((
            prop_oneof![Just("pod"), Just("tier"), Just("ns")],
            prop_oneof![Just("a"), Just("b"), Just("1"), Just("y")],
        )),
        prop::collection::vec(req, 0..2),
    )
        .prop_map(|(ml, exprs)| LabelSelector {
            match_labels: ml
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            match_expressions: exprs,
        })
}

fn arb_peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        4 => (prop::option::of(arb_selector()), prop::option::of(arb_selector()))
            .prop_map(|(pods, namespaces)| match (pods, namespaces) {
                (None, None) => Peer::Selectors { pods: Some(LabelSelector::default()), namespaces: None },
                (pods, namespaces) => Peer::Selectors { pods, namespaces },
            }),
        1 => (0..9usize, prop::sample::select(vec![32u8, 24, 16, 8, 0])).prop_map(|(i, prefix)| {
            Peer::IpBlock(IpBlock {
                cidr: AddrExpr::PodIp { pod: PodId::new(NSS[i / 3], PODS[i % 3]), prefix },
                except: vec![],
            })
        }),
        1 => (prop::sample::select(CIDRS.to_vec()), prop::collection::vec(prop::sample::select(CIDRS.to_vec()), 0..2), prop::option::of((0..9usize, prop::sample::select(vec![32u8, 30])))).prop_map(|(cidr, except, around)| {
            let lit = |c: &str| AddrExpr::Literal(c.parse().expect("cidr"));
            let mut except: Vec<AddrExpr> = except.into_iter().map(lit).collect();
            if let Some((i, prefix)) = around {
                except.push(AddrExpr::PodIp { pod: PodId::new(NSS[i / 3], PODS[i % 3]), prefix });
            }
            Peer::IpBlock(IpBlock { cidr: lit(cidr), except })
        }),
    ]
}

fn arb_port() -> impl Strategy<Value = PolicyPort> {
    prop_oneof![
        Just(PolicyPort {
            protocol: Protocol::Tcp,
            port: Some(PortValue::Number(80)),
            end_port: None
        }),
        Just(PolicyPort {
            protocol: Protocol::Tcp,
            port: Some(PortValue::Number(80)),
            end_port: Some(81)
        }),
        Just(PolicyPort {
            protocol: Protocol::Udp,
            port: None,
            end_port: None
        }),
        Just(PolicyPort {
            protocol: Protocol::Tcp,
            port: Some(PortValue::Name("http".into())),
            end_port: None
        }),
        Just(PolicyPort {
            protocol: Protocol::Udp,
            port: Some(PortValue::Name("dns".into())),
            end_port: None
        }),
        Just(PolicyPort {
            protocol: Protocol::Sctp,
            port: Some(PortValue::Name("sig".into())),
            end_port: None
        }),
        Just(PolicyPort {
            protocol: Protocol::Sctp,
            port: Some(PortValue::Number(8999)),
            end_port: Some(9000)
        }),
    ]
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    (
        prop::option::of(prop::collection::vec(arb_peer(), 0..3)),
        prop::option::of(prop::collection::vec(arb_port(), 0..3)),
    )
        .prop_map(|(peers, ports)| Rule {
            peers,
            ports,
            line: 0,
        })
}

fn arb_policy(i: usize) -> impl Strategy<Value = NetworkPolicy> {
    (
        0..3usize,
        arb_selector(),
        prop::option::of(prop::sample::subsequence(
            vec![PolicyType::Ingress, PolicyType::Egress],
            0..=2,
        )),
        prop::option::of(prop::collection::vec(arb_rule(), 0..3)),
        prop::option::of(prop::collection::vec(arb_rule(), 0..3)),
    )
        .prop_map(move |(ns, sel, types, ingress, egress)| NetworkPolicy {
            ns: NSS[ns].into(),
            name: format!("p{i}"),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            pod_selector: sel,
            policy_types: types,
            ingress,
            egress,
            origin: format!("gen:{i}"),
        })
}

fn arb_world() -> impl Strategy<Value = (World, Vec<NetworkPolicy>)> {
    (
        prop::collection::vec(0u8..3, 9),
        (arb_policy(0), arb_policy(1), arb_policy(2), arb_policy(3)),
        1..=4usize,
    )
        .prop_map(|(tiers, (a, b, c, d), n)| {
            let mut w = base_world(&tiers);
            let ps: Vec<NetworkPolicy> = [a, b, c, d].into_iter().take(n).collect();
            for p in &ps {
                w.policies.insert(p.reference(), p.clone());
            }
            (w, ps)
        })
}

fn verdicts(w: &World) -> Vec<Spec> {
    all_cells().iter().map(|c| explain(w, c).verdict).collect()
}

/// `a` allows at least what `b` allows (unspecified counts as "maybe").
fn at_least(a: &[Spec], b: &[Spec]) -> bool {
    a.iter().zip(b).all(|(a, b)| match b {
        Spec::Allow => *a == Spec::Allow,
        Spec::Unspecified => *a != Spec::Block,
        _ => true,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn adding_a_peer_never_removes_a_connection(
        (w, ps) in arb_world(), extra in arb_peer(), which in 0..4usize, ingress in any::<bool>()
    ) {
        let before = verdicts(&w);
        let mut p = ps[which % ps.len()].clone();
        let rules = if ingress { &mut p.ingress } else { &mut p.egress };
        // Only a rule with a non-empty peer list gains a peer; an absent or empty list already
        // means every peer.
        if let Some(rule) = rules.as_mut().and_then(|r| r.iter_mut().find(|r| r.peers.as_ref().is_some_and(|p| !p.is_empty()))) {
            rule.peers.as_mut().expect("peers").push(extra);
            let mut w2 = w.clone();
            w2.policies.insert(p.reference(), p);
            prop_assert!(at_least(&verdicts(&w2), &before));
        }
    }

    #[test]
    fn adding_a_port_never_removes_a_connection(
        (w, ps) in arb_world(), extra in arb_port(), which in 0..4usize, ingress in any::<bool>()
    ) {
        let before = verdicts(&w);
        let mut p = ps[which % ps.len()].clone();
        let rules = if ingress { &mut p.ingress } else { &mut p.egress };
        if let Some(rule) = rules.as_mut().and_then(|r| r.iter_mut().find(|r| r.ports.as_ref().is_some_and(|p| !p.is_empty()))) {
            rule.ports.as_mut().expect("ports").push(extra);
            let mut w2 = w.clone();
            w2.policies.insert(p.reference(), p);
            prop_assert!(at_least(&verdicts(&w2), &before));
        }
    }

    #[test]
    fn without_policies_every_cell_is_allowed((w, _) in arb_world()) {
        let mut w = w;
        w.policies.clear();
        prop_assert!(verdicts(&w).iter().all(|v| *v == Spec::Allow));
    }

    #[test]
    fn default_deny_ingress_blocks_every_cell_into_its_namespace_but_loopback(
        (w, _) in arb_world(), n in 0..3usize
    ) {
        let mut w = w;
        let ns = NSS[n];
        w.policies.retain(|r, _| r.ns != ns);
        let deny = NetworkPolicy {
            ns: ns.into(),
            name: "default-deny".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            pod_selector: LabelSelector::default(),
            policy_types: Some(vec![PolicyType::Ingress]),
            ingress: None,
            egress: None,
            origin: "gen".into(),
        };
        w.policies.insert(deny.reference(), deny);
        for c in all_cells() {
            let e = explain(&w, &c);
            if c.to.pod().is_some_and(|p| p.ns == ns) {
                if c.is_loopback() {
                    prop_assert_eq!(e.verdict, Spec::Allow);
                } else {
                    prop_assert_eq!(e.verdict, Spec::Block, "{}", c);
                }
            }
        }
    }

    #[test]
    fn verdicts_never_depend_on_order(
        (w, ps) in arb_world(), seed in any::<u64>()
    ) {
        // The world keys policies by name, so the order they are applied in cannot matter by
        // construction; what can is the order *inside* them. Shuffle the policies, their rules,
        // and every rule's peers and ports, apply them in that order, and compare verdicts
        // and which policies isolate (rule numbers in the reasons move with the shuffle).
        let mut s = seed;
        let mut shuffle = |n: usize| -> Vec<usize> {
            let mut v: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                v.swap(i, (s >> 33) as usize % (i + 1));
            }
            v
        };
        fn permute<T: Clone>(v: &[T], order: &[usize]) -> Vec<T> {
            order.iter().map(|&i| v[i].clone()).collect()
        }
        let mut order: Vec<NetworkPolicy> = permute(&ps, &shuffle(ps.len()));
        for p in &mut order {
            for rules in [&mut p.ingress, &mut p.egress].into_iter().flatten() {
                *rules = permute(rules, &shuffle(rules.len()));
                for r in rules.iter_mut() {
                    if let Some(peers) = &mut r.peers {
                        *peers = permute(peers, &shuffle(peers.len()));
                    }
                    if let Some(ports) = &mut r.ports {
                        *ports = permute(ports, &shuffle(ports.len()));
                    }
                }
            }
        }
        let mut w2 = w.clone();
        w2.policies.clear();
        w2.apply(&order.into_iter().map(Action::ApplyPolicy).collect::<Vec<_>>());
        let sides = |e: &Explanation| -> Vec<(Tri, Vec<String>)> {
            [&e.egress, &e.ingress]
                .into_iter()
                .flatten()
                .map(|s| (s.verdict, s.isolated_by.clone()))
                .collect()
        };
        for c in all_cells() {
            let (a, b) = (explain(&w, &c), explain(&w2, &c));
            prop_assert_eq!(a.verdict, b.verdict, "{}", c);
            prop_assert_eq!(sides(&a), sides(&b), "{}", c);
        }
    }

    #[test]
    fn verdicts_without_addresses_never_contradict_those_with_them(
        (w, _) in arb_world(),
        declared in any::<bool>(),
        hosts in prop::collection::vec(0u32..64, 9),
        elsewhere in prop::collection::vec(any::<bool>(), 9),
    ) {
        // Addresses inside the pod network: 10.244.0.0/16 when declared, any IPv4 address
        // otherwise (the assumption). Distinct, as pods' are.
        let mut w = w;
        if declared {
            w.pod_network = PodNetwork::new(&["10.244.0.0/16".parse().expect("cidr")], PodNetworkSource::Scenario).expect("one CIDR");
        }
        let before = verdicts(&w);
        let mut with = w.clone();
        for (i, id) in w.pods.keys().enumerate() {
            // Spread over the blocks the strategies use: 10.244.0.0/24 (and its /29), the rest
            // of 10.244.0.0/16, and (undeclared only) 192.168.0.0/16.
            let i = i as u32;
            let ip = match (declared, elsewhere[i as usize]) {
                (false, true) => format!("192.168.{}.{}", hosts[i as usize], i + 1),
                (_, true) => format!("10.244.{}.{}", 1 + hosts[i as usize], i + 1),
                _ => format!("10.244.0.{}", hosts[i as usize] % 27 * 9 + i + 1),
            };
            with.pod_ips.insert(id.clone(), ip.parse().expect("ip"));
        }
        prop_assert!(with.addresses_outside_pod_network().is_empty());
        let after = verdicts(&with);
        for ((c, b), a) in all_cells().iter().zip(&before).zip(&after) {
            prop_assert!(*b == Spec::Unspecified || b == a, "{}: {} without addresses, {} with", c, b, a);
        }
    }

    #[test]
    fn the_matrix_and_the_workloads_say_what_explain_says(
        (w, _) in arb_world(), addresses in any::<bool>(), shared in any::<bool>()
    ) {
        let mut w = w;
        if shared {
            // Pods alike but for their names: workloads of several pods.
            for p in w.pods.values_mut() {
                p.labels.remove("pod");
            }
        }
        if addresses {
            for (i, id) in w.pods.keys().enumerate() {
                w.pod_ips.insert(id.clone(), format!("10.244.0.{}", i * 7 + 1).parse().expect("ip"));
            }
        }
        for p in PORTS {
            let m = Matrix::compute(&w, port(p));
            let wm = WorkloadMatrix::compute(&w, port(p));
            for from in w.pods.keys() {
                for to in w.pods.keys() {
                    let e = explain(&w, &CellKey { from: from.clone(), to: Target::Pod(to.clone()), port: Some(port(p)), via: Some(Via::Ip) });
                    prop_assert_eq!(m.verdict(from, to), Some(e.verdict), "{} -> {} {}", from, to, p);
                    prop_assert_eq!(wm.verdict(from, to), Some(e.verdict), "{} -> {} {} by workload", from, to, p);
                }
            }
        }
    }
}
