//! The queries, table by table. They answer with the engine's matching, so these tests check
//! that each part is put to the engine the right way (one peer, one port, one requirement).

use std::fmt::Write as _;
use std::path::Path;

use super::*;
use crate::model::{CellKey, Target, Via};
use crate::scenario::{MemReader, load_str};

/// Namespaces web, ops (team=ops), ingress-nginx; pods web/site {app: site} serving `http`
/// 8080/tcp, web/other {app: other}, ops/prom {app: prom}, ingress-nginx/ctl {app: ctl}; the
/// `spec`s become policies `p0`, `p1`, ... in namespace web.
fn world(specs: &[&str]) -> World {
    let mut yaml = String::from(
        "version: 1
namespaces:
  - name: web
  - {name: ops, labels: {team: ops}}
  - name: ingress-nginx
pods:
  - {name: site, namespace: web, labels: {app: site}, ports: [{port: 8080, name: http}]}
  - {name: other, namespace: web, labels: {app: other}, ports: [8080/tcp]}
  - {name: prom, namespace: ops, labels: {app: prom}}
  - {name: ctl, namespace: ingress-nginx, labels: {app: ctl}}
probes:
  - {from: \"*\", to: web/site}
steps:
  - name: s
",
    );
    if !specs.is_empty() {
        yaml.push_str("    apply:\n");
    }
    for (i, spec) in specs.iter().enumerate() {
        let _ = writeln!(
            yaml,
            "      - inline:\n          apiVersion: networking.k8s.io/v1\n          kind: NetworkPolicy\n          metadata: {{name: p{i}, namespace: web}}\n          spec: {spec}"
        );
    }
    yaml.push_str("    expect: [{default: allow}]\n");
    let l = load_str(Path::new("t/q.yaml"), &yaml, &MemReader::default());
    let s = l
        .scenario
        .unwrap_or_else(|| panic!("{}\n{yaml}", l.diagnostics.render(false)));
    World::per_step(&s).pop().expect("one step")
}

fn np(w: &World) -> &NetworkPolicy {
    w.policies.values().next().expect("a policy")
}

fn cell(from: &str, to: &str) -> CellKey {
    let id = |s: &str| {
        let (n, p) = s.split_once('/').expect("ns/pod");
        PodId::new(n, p)
    };
    CellKey {
        from: id(from),
        to: Target::Pod(id(to)),
        port: Some(PortProto {
            port: 8080,
            protocol: Protocol::Tcp,
        }),
        via: Some(Via::Ip),
    }
}

#[test]
fn rules_know_their_lines() {
    let w =
        world(&["{podSelector: {}, ingress: [{from: [{podSelector: {}}]}, {ports: [{port: 1}]}]}"]);
    let p = np(&w);
    let (file, line) = p.origin.rsplit_once(':').expect("file:line");
    let line: usize = line.parse().expect("a line");
    let rules = rules_of(p, PolicyType::Ingress);
    assert_eq!(rules.len(), 2);
    // Inline flow YAML: both rules are on the `spec:` line, after the metadata line.
    assert_eq!(rule_origin(p, &rules[0]), format!("{file}:{}", line + 1));
    let unknown = Rule {
        line: 0,
        ..rules[0].clone()
    };
    assert_eq!(rule_origin(p, &unknown), p.origin);
    // Egress rules of an Ingress-only policy do not take effect.
    let w = world(&["{podSelector: {}, policyTypes: [Ingress], egress: [{}]}"]);
    assert!(effective_rules(np(&w)).is_empty());
    let w = world(&["{podSelector: {}, egress: [{}], ingress: [{}, {}]}"]);
    let eff: Vec<(PolicyType, usize)> = effective_rules(np(&w))
        .into_iter()
        .map(|(d, i, _)| (d, i))
        .collect();
    assert_eq!(
        eff,
        [
            (PolicyType::Ingress, 1),
            (PolicyType::Ingress, 2),
            (PolicyType::Egress, 1)
        ]
    );
}

#[test]
fn reach_of_rules() {
    let reach = |rule: &str| {
        let w = world(&[&format!("{{podSelector: {{}}, ingress: [{rule}]}}")]);
        rule_reach(&rules_of(np(&w), PolicyType::Ingress)[0])
    };
    assert_eq!(reach("{}"), Some(Reach::Everything));
    assert_eq!(
        reach("{from: [], ports: [{port: 80}]}"),
        Some(Reach::Everything)
    );
    assert_eq!(
        reach("{from: [{podSelector: {}}, {namespaceSelector: {}, podSelector: {}}]}"),
        Some(Reach::EveryPod { peer: 2 })
    );
    assert_eq!(
        reach("{from: [{ipBlock: {cidr: '::/0'}}]}"),
        Some(Reach::EveryAddress {
            peer: 1,
            cidr: "::/0".into()
        })
    );
    for narrower in [
        "{from: [{podSelector: {}}]}",
        "{from: [{namespaceSelector: {}, podSelector: {matchLabels: {a: b}}}]}",
        "{from: [{namespaceSelector: {matchExpressions: [{key: a, operator: DoesNotExist}]}}]}",
        "{from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}",
        "{from: [{ipBlock: {cidr: '${ip web/other}/0'}}]}",
    ] {
        assert_eq!(reach(narrower), None, "{narrower}");
    }
}

#[test]
fn peers_and_ports_by_the_engine() {
    let w = world(&[
        "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: site}}}, {ipBlock: {cidr: '${ip ops/prom}/32'}}, {ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: http}, {port: dns, protocol: UDP}]}]}",
    ]);
    let p = np(&w);
    let rule = &rules_of(p, PolicyType::Egress)[0];
    let id = |s: &str| {
        let (n, q) = s.split_once('/').expect("ns/pod");
        PodId::new(n, q)
    };
    // Own-namespace pod by label: yes; by /32 placeholder: yes; others only maybe (10/8).
    assert_eq!(
        peers_admit(&w, p, rule, Dest::Pod(&id("web/site"))),
        Tri::Yes
    );
    assert_eq!(
        peers_admit(&w, p, rule, Dest::Pod(&id("ops/prom"))),
        Tri::Yes
    );
    assert_eq!(
        peers_admit(&w, p, rule, Dest::Pod(&id("ingress-nginx/ctl"))),
        Tri::Unknown
    );
    let narrow = Rule {
        peers: rule.peers.as_ref().map(|v| v[..2].to_vec()),
        ..rule.clone()
    };
    assert_eq!(
        peers_admit(&w, p, &narrow, Dest::Pod(&id("web/other"))),
        Tri::No
    );
    assert_eq!(peers_admit(&w, p, &narrow, Dest::Dns), Tri::No);
    // Named ports resolve against what the destination declares.
    let ports = rule.ports.as_deref().expect("ports");
    let site = &w.pods[&id("web/site")];
    let other = &w.pods[&id("web/other")];
    assert!(port_admits_some(&w, p, &ports[0], &site.ports));
    assert!(!port_admits_some(&w, p, &ports[0], &other.ports));
    assert!(port_admits_some(&w, p, &ports[1], &dns_served_ports()));
    assert!(!port_admits_some(&w, p, &ports[1], &site.ports));
}

#[test]
fn requirements_one_at_a_time() {
    let w = world(&[
        "{podSelector: {matchLabels: {a: '1'}, matchExpressions: [{key: b, operator: In, values: ['2', '3']}, {key: c, operator: Exists}, {key: d, operator: NotIn, values: ['4']}, {key: e, operator: DoesNotExist}]}}",
    ]);
    let t = terms(&np(&w).pod_selector);
    let got: Vec<(&str, bool, Vec<String>)> = t
        .iter()
        .map(|t| (t.text.as_str(), t.requires_key(), t.values.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("a=1", true, vec!["1".to_owned()]),
            ("b in (2, 3)", true, vec!["2".to_owned(), "3".to_owned()]),
            ("c", true, vec![]),
            ("d notin (4)", false, vec![]),
            ("!e", false, vec![]),
        ]
    );
}

#[test]
fn similar_keys_and_suggestions() {
    for (a, b, yes) in [
        ("name", "kubernetes.io/metadata.name", true),
        ("app", "app.kubernetes.io/name", true),
        ("app", "k8s-app", true),
        ("App", "app", true),
        ("team", "app", false),
        ("app", "app", false),
        ("tier", "app.kubernetes.io/component", false),
    ] {
        assert_eq!(similar_keys(a, b), yes, "{a} {b}");
        assert_eq!(similar_keys(b, a), yes, "{b} {a}");
    }
    let w = world(&[]);
    let nss = labelled(&w, SelectorKind::Namespaces);
    let pods = labelled(&w, SelectorKind::Pods);
    assert!(
        pods.iter()
            .any(|(n, l)| n == "pod kube-system/kube-dns" && l.contains_key("k8s-app")),
        "{pods:?}"
    );
    let s = |key: &str, v: &[&str], u, kind| {
        let v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
        suggest(key, &v, u, kind).map(|s| (s.key, s.value, s.text))
    };
    assert_eq!(
        s("name", &["ops"], &nss, SelectorKind::Namespaces),
        Some((
            "kubernetes.io/metadata.name".into(),
            Some("ops".into()),
            "namespace ops has kubernetes.io/metadata.name=ops (Kubernetes sets this label on every namespace)".into()
        ))
    );
    // A similar key carrying the value wins over another key carrying it.
    assert_eq!(
        s("Team", &["ops"], &nss, SelectorKind::Namespaces).map(|s| s.0),
        Some("team".into())
    );
    assert_eq!(
        s("owner", &["ops"], &nss, SelectorKind::Namespaces).map(|s| s.0),
        Some("kubernetes.io/metadata.name".into())
    );
    assert_eq!(s("env", &["prod"], &nss, SelectorKind::Namespaces), None);
    assert_eq!(
        s(
            "app.kubernetes.io/name",
            &["nope"],
            &pods,
            SelectorKind::Pods
        )
        .map(|s| s.2),
        Some("pods carry `app`".into())
    );
    assert_eq!(
        s("instance", &[], &pods, SelectorKind::Pods).map(|s| s.0),
        Some("app.kubernetes.io/instance".into())
    );
    // Unset keys of a selector: only requirements that need the key, on keys nobody carries.
    let w = world(&[
        "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {name: ops, team: ops}, matchExpressions: [{key: env, operator: DoesNotExist}]}}]}]}",
    ]);
    let Some(Peer::Selectors {
        namespaces: Some(sel),
        ..
    }) = rules_of(np(&w), PolicyType::Ingress)[0]
        .peers
        .as_ref()
        .and_then(|p| p.first())
    else {
        panic!("a namespaceSelector peer");
    };
    let unset: Vec<String> = unset_keys(&w, sel, SelectorKind::Namespaces)
        .into_iter()
        .map(|u| u.term.key)
        .collect();
    assert_eq!(unset, ["name"]);
}

#[test]
fn near_misses_say_which_part_missed() {
    let w = world(&[
        "{podSelector: {matchLabels: {app: site}}, ingress: [{from: [{namespaceSelector: {matchLabels: {name: ingress-nginx}}}], ports: [{port: 8080}]}, {from: [{podSelector: {matchLabels: {app: prom}}}], ports: [{port: 9}]}, {from: [{namespaceSelector: {matchLabels: {team: ops}}}], ports: [{port: 9090}]}]}",
    ]);
    let m = near_misses(&w, &cell("ingress-nginx/ctl", "web/site"));
    let got: Vec<(usize, &str)> = m.iter().map(|m| (m.rule, m.missed.as_str())).collect();
    assert_eq!(
        got,
        [(
            1,
            "peer 1: namespaceSelector {name=ingress-nginx}: no namespace carries label `name`; namespace ingress-nginx has kubernetes.io/metadata.name=ingress-nginx (Kubernetes sets this label on every namespace)"
        )]
    );
    assert_eq!(m[0].side, "ingress");
    assert_eq!(m[0].matched, "port 1 (8080/tcp) admits 8080/tcp");
    assert!(m[0].origin.starts_with("t/q.yaml:"), "{}", m[0].origin);
    // prom: rule 1 misses the peer, rule 2 both parts (not near), rule 3 the port.
    let m = near_misses(&w, &cell("ops/prom", "web/site"));
    let got: Vec<(usize, &str, &str)> = m
        .iter()
        .map(|m| (m.rule, m.matched.as_str(), m.missed.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].0, 1);
    assert_eq!(
        got[1],
        (
            3,
            "peer 1 (every pod in namespaceSelector {team=ops}) matches",
            "8080/tcp is none of its ports (9090/tcp)"
        )
    );
    // A connection that is admitted has no near misses; nor one no policy isolates.
    let w = world(&["{podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}"]);
    assert!(near_misses(&w, &cell("web/other", "web/site")).is_empty());
    assert!(near_misses(&world(&[]), &cell("ops/prom", "web/site")).is_empty());
    // Pod labels, the own namespace, and a /32 of another pod.
    let w = world(&[
        "{podSelector: {}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}, {podSelector: {matchLabels: {tier: a}}}, {ipBlock: {cidr: '${ip web/site}/32'}}]}]}",
    ]);
    let m = near_misses(&w, &cell("web/other", "web/site"));
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].missed,
        "peer 1: podSelector {app=web}: web/other has app=other, not app=web; peer 2: podSelector {tier=a}: no pod carries label `tier`; peer 3: ipBlock ${ip web/site}/32: web/other is outside it"
    );
    let m = near_misses(&w, &cell("ops/prom", "web/site"));
    assert!(
        m[0].missed.starts_with(
            "peer 1: podSelector {app=web}: ops/prom is in namespace ops, and without a namespaceSelector it selects pods of web only"
        ),
        "{}",
        m[0].missed
    );
}

#[test]
fn located_rule_hits() {
    let w = world(&[
        "{podSelector: {}, ingress: [{from: [{podSelector: {matchLabels: {app: x}}}]}, {from: [{podSelector: {}}]}]}",
    ]);
    let mut e = crate::engine::explain(&w, &cell("web/other", "web/site"));
    let p = np(&w);
    let hit = |e: &Explanation| e.ingress.as_ref().expect("ingress").allowed_by[0].clone();
    assert_eq!(hit(&e).origin, p.origin);
    locate_rules(&w, &mut e);
    assert_eq!(hit(&e).rule, 2);
    assert_eq!(
        hit(&e).origin,
        rule_origin(p, &rules_of(p, PolicyType::Ingress)[1])
    );
}
