//! Unit tests of the synthesizer: small scenarios written inline, synthesized, and the policies
//! and the proof inspected. `limits` holds what policies cannot express and the cases where
//! one side must make up for the other; `parts` the selector search and the cover.

mod limits;
mod parts;

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::engine::World;
use crate::model::Scenario;
use crate::policy::{LabelSelector, Operator, Peer, PolicyType, PortValue};
use crate::scenario::{MemReader, load_str};

pub(super) fn scenario(yaml: &str) -> Scenario {
    let l = load_str(Path::new("t.yaml"), yaml, &MemReader::default());
    l.scenario
        .unwrap_or_else(|| panic!("test scenario invalid:\n{}", l.diagnostics.render(false)))
}

pub(super) fn synth(yaml: &str, isolation: Isolation) -> (Intent, Synthesis) {
    let s = scenario(yaml);
    let (i, _, _) = Intent::from_scenario(&s, "t.yaml", None).expect("last step exists");
    let syn = synthesize(&i, &Options { isolation }).expect("synthesis runs");
    (i, syn)
}

pub(super) fn policy<'a>(s: &'a Synthesis, ns: &str, name: &str) -> &'a NetworkPolicy {
    s.policies
        .iter()
        .find(|p| p.ns == ns && p.name == name)
        .unwrap_or_else(|| {
            let names: Vec<String> = s
                .policies
                .iter()
                .map(|p| p.reference().to_string())
                .collect();
            panic!("no policy {ns}/{name}; have {names:?}")
        })
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        match_expressions: Vec::new(),
    }
}

pub(super) fn rules_of(p: &NetworkPolicy) -> &[crate::policy::Rule] {
    p.ingress
        .as_deref()
        .or(p.egress.as_deref())
        .unwrap_or_default()
}

pub(super) const SHOP: &str = r#"
version: 1
namespaces: [{name: shop}, {name: ops}]
pods:
  - {name: frontend, namespace: shop, labels: {tier: frontend}, ports: [80/tcp]}
  - {name: api, namespace: shop, labels: {tier: api}, ports: [8080/tcp]}
  - {name: db, namespace: shop, labels: {tier: db}, ports: [5432/tcp]}
  - {name: monitor, namespace: ops, labels: {app: monitor}, ports: [9090/tcp]}
steps:
  - expect:
      - default: block
      - allow: {from: shop/frontend, to: shop/api}
      - allow: {from: shop/api, to: shop/db}
      - allow: {from: ops/monitor, to: shop/frontend}
"#;

#[test]
fn three_tier_is_proven_with_default_deny_and_label_selectors() {
    let (_, s) = synth(SHOP, Isolation::All);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    assert_eq!(s.proof.met, s.proof.cells);
    for ns in ["shop", "ops"] {
        let d = policy(&s, ns, "default-deny");
        assert_eq!(d.pod_selector, LabelSelector::default());
        assert_eq!(
            d.policy_types,
            Some(vec![PolicyType::Ingress, PolicyType::Egress])
        );
        assert!(d.ingress.is_none() && d.egress.is_none());
    }
    // The frontend may send to the API only, named by its label, on 8080.
    let e = policy(&s, "shop", "egress-frontend");
    assert_eq!(e.pod_selector, labels(&[("tier", "frontend")]));
    let r = rules_of(e);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].peers,
        Some(vec![Peer::Selectors {
            pods: Some(labels(&[("tier", "api")])),
            namespaces: None
        }])
    );
    let ports = r[0].ports.as_ref().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, Some(PortValue::Number(8080)));
    // The frontend accepts the monitoring namespace, by name.
    let i = policy(&s, "shop", "ingress-frontend");
    assert_eq!(
        rules_of(i)[0].peers,
        Some(vec![Peer::Selectors {
            pods: None,
            namespaces: Some(labels(&[("kubernetes.io/metadata.name", "ops")]))
        }])
    );
    assert!(s.files.contains_key("policies/shop.yaml"));
    assert!(s.files.contains_key("policies/ops.yaml"));
    assert!(s.files.contains_key(VERIFY_FILE));
}

#[test]
fn every_rule_is_commented_with_its_cells() {
    let (_, s) = synth(SHOP, Isolation::All);
    let shop = &s.files["policies/shop.yaml"];
    let at = shop.find("name: egress-frontend").expect("policy present");
    let after = &shop[at..];
    assert!(
        after.contains("    # for:\n    #   shop/frontend -> shop/api 8080/tcp\n    - to:"),
        "{after}"
    );
}

#[test]
fn needed_isolates_only_what_a_blocked_cell_needs() {
    let (_, s) = synth(SHOP, Isolation::Needed);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    let rules: usize = s.policies.iter().map(|p| rules_of(p).len()).sum();
    let (_, all) = synth(SHOP, Isolation::All);
    let all_rules: usize = all.policies.iter().map(|p| rules_of(p).len()).sum();
    assert!(rules < all_rules, "needed {rules} rules, all {all_rules}");
    // Everything allowed: nothing to write but the verification scenario.
    let open = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, ports: [80/tcp]}
  - {name: b, namespace: x, labels: {app: b}, ports: [80/tcp]}
steps:
  - expect: [{default: allow}]
"#;
    let (_, s) = synth(open, Isolation::Needed);
    assert!(s.proof.holds());
    assert!(s.policies.is_empty(), "{:?}", s.policies);
    assert_eq!(s.files.keys().collect::<Vec<_>>(), vec![VERIFY_FILE]);
    let (_, s) = synth(open, Isolation::All);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    assert!(policy(&s, "x", "default-deny").ingress.is_none());
}

#[test]
fn pods_treated_alike_share_one_selector() {
    let yaml = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: w1, namespace: x, labels: {role: web}, ports: [80/tcp]}
  - {name: w2, namespace: x, labels: {role: web, zone: b}, ports: [80/tcp]}
  - {name: db, namespace: x, labels: {role: db}, ports: [5432/tcp]}
steps:
  - expect:
      - default: block
      - allow: {from: "x/w*", to: x/db}
"#;
    let (_, s) = synth(yaml, Isolation::All);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    let e = policy(&s, "x", "egress-w1-w2");
    assert_eq!(e.pod_selector, labels(&[("role", "web")]));
    let i = policy(&s, "x", "ingress-db");
    assert_eq!(
        rules_of(i)[0].peers,
        Some(vec![Peer::Selectors {
            pods: Some(labels(&[("role", "web")])),
            namespaces: None
        }])
    );
}

#[test]
fn peers_in_several_namespaces_are_named_in_one_selector() {
    let yaml = r#"
version: 1
namespaces: [{name: a}, {name: b}, {name: c}, {name: s}]
pods:
  - {name: p, namespace: a, labels: {role: client}}
  - {name: p, namespace: b, labels: {role: client}}
  - {name: p, namespace: c, labels: {role: client}}
  - {name: srv, namespace: s, labels: {app: srv}, ports: [80/tcp]}
steps:
  - expect:
      - default: block
      - allow: {from: a/p, to: s/srv}
      - allow: {from: b/p, to: s/srv}
"#;
    let (_, s) = synth(yaml, Isolation::All);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    let i = policy(&s, "s", "ingress-srv");
    let Some(peers) = &rules_of(i)[0].peers else {
        panic!("peers")
    };
    assert_eq!(peers.len(), 1, "{peers:?}");
    let Peer::Selectors {
        pods: None,
        namespaces: Some(ns),
    } = &peers[0]
    else {
        panic!("{peers:?}")
    };
    assert_eq!(ns.match_expressions.len(), 1);
    assert_eq!(ns.match_expressions[0].key, "kubernetes.io/metadata.name");
    assert_eq!(ns.match_expressions[0].operator, Operator::In);
    assert_eq!(ns.match_expressions[0].values, vec!["a", "b"]);
}

#[test]
fn named_ports_are_used_where_the_destination_names_them() {
    let yaml = r#"
version: 1
namespaces: [{name: np}]
pods:
  - {name: client, namespace: np, labels: {app: client}}
  - name: web1
    namespace: np
    labels: {app: web}
    ports: [{port: 8080, name: http}, {port: 9090, name: metrics}]
  - name: web2
    namespace: np
    labels: {app: web}
    ports: [{port: 80, name: http}, {port: 8080, name: admin}]
steps:
  - expect:
      - default: block
      - allow: {from: np/client, port: http}
"#;
    let (_, s) = synth(yaml, Isolation::All);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    // web1 and web2 have the same labels; only the name `http` tells 8080 on web1 from 8080
    // on web2.
    let i = policy(&s, "np", "ingress-web1-web2");
    let ports = rules_of(i)[0].ports.as_ref().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, Some(PortValue::Name("http".into())));
    assert!(s.files["policies/np.yaml"].contains("port: http"));
}

pub(super) const DNS: &str = r#"
version: 1
namespaces: [{name: app}, {name: kube-system, existing: true}]
pods:
  - {name: client, namespace: app, labels: {app: client}}
  - {name: quiet, namespace: app, labels: {app: quiet}}
  - {name: web, namespace: app, labels: {app: web}, ports: [80/tcp]}
probes:
  - {from: "app/*", resolve: kubernetes.default.svc.cluster.local}
  - {from: app/client, to: app/web, port: 80/tcp, via: dns}
  - {from: app/quiet, to: app/web, port: 80/tcp, via: dns}
steps:
  - expect:
      - default: allow
      - block: {from: app/quiet, to: "dns:*"}
      - unresolved: {from: app/quiet, to: app/web, via: dns}
"#;

#[test]
fn dns_egress_goes_to_the_cluster_dns_for_pods_that_resolve_names() {
    let (_, s) = synth(DNS, Isolation::All);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    let d = policy(&s, "app", "allow-dns");
    // client and web resolve; quiet must not.
    assert_eq!(
        d.pod_selector.match_expressions[0].values,
        vec!["client".to_owned(), "web".to_owned()]
    );
    let r = &rules_of(d)[0];
    assert_eq!(
        r.peers,
        Some(vec![Peer::Selectors {
            pods: Some(labels(&[("k8s-app", "kube-dns")])),
            namespaces: Some(labels(&[("kubernetes.io/metadata.name", "kube-system")])),
        }])
    );
    let ports: Vec<String> = r
        .ports
        .iter()
        .flatten()
        .map(|p| format!("{:?}/{}", p.port, p.protocol))
        .collect();
    assert_eq!(ports, vec!["Some(Number(53))/udp", "Some(Number(53))/tcp"]);
    assert!(s.files[VERIFY_FILE].contains("- name: kube-system\n    existing: true"));
}

#[test]
fn external_endpoints_get_ip_block_placeholders_and_pods_never_do() {
    let yaml = r#"
version: 1
namespaces: [{name: app}]
pods:
  - {name: client, namespace: app, labels: {app: client}}
  - {name: server, namespace: app, labels: {app: server}, ports: [80/tcp]}
external:
  - {name: outside, ports: [80/tcp, 443/tcp]}
  - {name: elsewhere, ports: [80/tcp]}
probes:
  - {from: "app/*", to: "ext:*"}
  - {from: "app/*", to: app/server}
  - {from: "app/*", to: app/server, via: service}
steps:
  - expect:
      - default: block
      - allow: {from: app/client, to: "ext:outside", port: 443/tcp}
      - allow: {from: app/client, to: app/server}
"#;
    for iso in [Isolation::All, Isolation::Needed] {
        let (_, s) = synth(yaml, iso);
        assert!(s.proof.holds(), "{iso:?}: {:?}", s.proof.unmet);
        let blocks: Vec<String> = s
            .policies
            .iter()
            .flat_map(|p| rules_of(p).iter())
            .flat_map(|r| r.peers.iter().flatten())
            .filter_map(|p| match p {
                Peer::IpBlock(b) => Some(b.cidr.to_string()),
                Peer::Selectors { .. } => None,
            })
            .collect();
        assert_eq!(blocks, vec!["${ip ext:outside}/32"], "{iso:?}");
        assert!(s.files["policies/app.yaml"].contains("cidr: \"${ip ext:outside}/32\""));
    }
}

#[test]
fn the_verification_scenario_loads_and_expects_the_intent() {
    for yaml in [SHOP, DNS, limits::TWINS] {
        let (i, s) = synth(yaml, Isolation::All);
        let files: BTreeMap<std::path::PathBuf, String> = s
            .files
            .iter()
            .map(|(k, v)| (Path::new("out").join(k), v.clone()))
            .collect();
        let reader = MemReader(files);
        let l = load_str(Path::new("out/verify.yaml"), &s.files[VERIFY_FILE], &reader);
        let v = l
            .scenario
            .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
        let got: BTreeMap<_, _> = v.steps[0]
            .expected
            .cells
            .iter()
            .map(|(k, e)| (k.clone(), e.verdict))
            .collect();
        assert_eq!(got, i.cells);
        // Its World after the step holds exactly the synthesized policies.
        let w = World::per_step(&v).pop().expect("one step");
        assert_eq!(w.policies.len(), s.policies.len());
        let warned = l.diagnostics.0.len();
        assert_eq!(
            warned,
            s.proof.unmet.len(),
            "{}",
            l.diagnostics.render(false)
        );
    }
}

#[test]
fn output_is_deterministic() {
    let (_, a) = synth(SHOP, Isolation::All);
    let (_, b) = synth(SHOP, Isolation::All);
    assert_eq!(a.files, b.files);
}

#[test]
fn scalars_are_quoted_when_yaml_would_misread_them() {
    for (s, want) in [
        ("frontend", "frontend"),
        ("kubernetes.io/metadata.name", "kubernetes.io/metadata.name"),
        ("80/tcp", "80/tcp"),
        ("y", "\"y\""),
        ("true", "\"true\""),
        ("No", "\"No\""),
        ("1", "\"1\""),
        ("1e3", "\"1e3\""),
        ("0x1f", "\"0x1f\""),
        ("", "\"\""),
        ("${ip ext:a}/32", "\"${ip ext:a}/32\""),
        ("ext:web", "\"ext:web\""),
        ("x/*", "\"x/*\""),
    ] {
        assert_eq!(render::scalar(s), want, "{s}");
    }
}

#[test]
fn stats_count_rules_peers_and_selectors() {
    let (_, s) = synth(SHOP, Isolation::All);
    let st = stats(&s.policies);
    assert_eq!(st.policies, s.policies.len());
    let rules: usize = s.policies.iter().map(|p| rules_of(p).len()).sum();
    assert_eq!(st.rules, rules);
    assert!(st.selectors >= st.policies + st.peers - st.ip_blocks);
}

#[test]
fn bad_steps_are_errors() {
    let s = scenario(SHOP);
    assert_eq!(
        Intent::from_scenario(&s, "t", Some(2)).err(),
        Some(SynthError::BadStep { step: 2, steps: 1 })
    );
    assert!(Intent::from_scenario(&s, "t", Some(0)).is_err());
    assert_eq!(Isolation::parse("needed"), Some(Isolation::Needed));
    assert_eq!(Isolation::parse("some"), None);
}
