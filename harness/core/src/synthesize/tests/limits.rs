//! What policies cannot express, reported; and where one side must make up for the other.

use std::collections::BTreeMap;

use super::*;
use crate::model::{PodId, Target, Verdict, Via};
use crate::policy::PolicyType;

pub(super) const TWINS: &str = r#"
version: 1
namespaces: [{name: x}, {name: y}]
pods:
  - {name: a, namespace: x, labels: {app: w}, ports: [80/tcp]}
  - {name: b, namespace: x, labels: {app: w}, ports: [80/tcp]}
  - {name: c, namespace: y, labels: {app: c}, ports: [80/tcp]}
steps:
  - expect:
      - default: block
      - allow: {from: x/a, to: y/c}
"#;

#[test]
fn pods_that_labels_cannot_tell_apart_are_reported_with_a_label_to_add() {
    for iso in [Isolation::All, Isolation::Needed] {
        let (_, s) = synth(TWINS, iso);
        assert!(!s.proof.holds());
        assert_eq!(s.proof.unmet.len(), 1, "{:?}", s.proof.unmet);
        let u = &s.proof.unmet[0];
        assert_eq!(u.cell.from, PodId::new("x", "b"));
        assert_eq!(u.want, Verdict::Block);
        assert!(
            u.notes
                .iter()
                .any(|n| n.contains("add label netreach.dev/role=b to x/b to tell it from x/a")),
            "{:?}",
            u.notes
        );
        let n = s
            .notes
            .iter()
            .find(|n| n.kind == NoteKind::SameLabels)
            .expect("a same-labels note");
        assert!(
            n.message.contains("x/a and x/b have the same labels"),
            "{}",
            n.message
        );
    }
    // As destinations: the same pods, one reachable and one not.
    let dst = TWINS.replace("allow: {from: x/a, to: y/c}", "allow: {from: y/c, to: x/a}");
    let (_, s) = synth(&dst, Isolation::All);
    assert_eq!(s.proof.unmet.len(), 1, "{:?}", s.proof.unmet);
    assert_eq!(s.proof.unmet[0].cell.to, Target::Pod(PodId::new("x", "b")));
    assert!(s.proof.unmet[0].notes[0].contains("netreach.dev/role=b"));
    // With a label that tells them apart, it is expressible.
    let fixed = TWINS.replace(
        "{name: b, namespace: x, labels: {app: w}",
        "{name: b, namespace: x, labels: {app: w, netreach.dev/role: b}",
    );
    let (_, s) = synth(&fixed, Isolation::All);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
}

#[test]
fn a_blocked_service_cell_beside_an_ip_block_rule_is_refused_at_ingress() {
    // The client may reach ext:outside on 80 (not on 443, so its egress must be isolated); an
    // ipBlock on 80 in its egress leaves the Service cell to the server on 80 unspecified, so
    // the server's ingress must refuse it — although no other cell asks to isolate the server.
    let yaml = r#"
version: 1
namespaces: [{name: app}]
pods:
  - {name: client, namespace: app, labels: {app: client}}
  - {name: server, namespace: app, labels: {app: server}, ports: [80/tcp]}
external:
  - {name: outside, ports: [80/tcp, 443/tcp]}
probes:
  - {from: app/client, to: "ext:outside"}
  - {from: app/client, to: app/server, via: service}
steps:
  - expect:
      - default: block
      - allow: {from: app/client, to: "ext:outside", port: 80/tcp}
"#;
    let (_, s) = synth(yaml, Isolation::Needed);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    let isolated = |app: &str, dir| {
        s.policies.iter().any(|p| {
            p.effective_types().contains(&dir)
                && p.pod_selector
                    .matches(&BTreeMap::from([("app".into(), app.into())]))
        })
    };
    assert!(isolated("client", PolicyType::Egress), "{:?}", s.policies);
    assert!(isolated("server", PolicyType::Ingress), "{:?}", s.policies);
    assert!(!isolated("client", PolicyType::Ingress), "{:?}", s.policies);
}

#[test]
fn what_policies_cannot_do_is_reported_not_hidden() {
    // A pod blocking itself by IP, and one connection with two verdicts by two routes.
    let yaml = r#"
version: 1
namespaces: [{name: x}]
loopback: rules
pods:
  - {name: a, namespace: x, labels: {app: a}, ports: [80/tcp]}
  - {name: b, namespace: x, labels: {app: b}, ports: [80/tcp]}
probes:
  - {from: "x/*", to: "x/*"}
  - {from: x/a, to: x/b, via: service}
steps:
  - expect:
      - default: block
      - allow: {from: x/a, to: x/b, via: ip}
"#;
    let (_, s) = synth(yaml, Isolation::All);
    let unmet: Vec<String> = s.proof.unmet.iter().map(|u| u.cell.to_string()).collect();
    assert_eq!(
        unmet,
        vec![
            "x/a -> x/a 80/tcp",
            "x/a -> x/b 80/tcp via service",
            "x/b -> x/b 80/tcp"
        ]
    );
    let kinds: Vec<NoteKind> = s.notes.iter().map(|n| n.kind).collect();
    assert!(kinds.contains(&NoteKind::Loopback) && kinds.contains(&NoteKind::RouteConflict));
    let text = render_text(
        &s,
        &compare(
            &Intent::from_scenario(&scenario(yaml), "t.yaml", None)
                .expect("step")
                .0,
            &s.policies,
            None,
        ),
    );
    assert!(text.contains("Proof FAILED: 3 of"), "{text}");
    assert!(text.contains("always allowed"), "{text}");
}

#[test]
fn unlisted_cells_stay_blocked_and_are_counted() {
    let yaml = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, labels: {app: a}}
  - {name: c, namespace: x, labels: {app: c}}
  - {name: b, namespace: x, labels: {app: b}, ports: [80/tcp, 81/tcp]}
probes:
  - {from: x/a, to: x/b, port: 80/tcp}
steps:
  - expect: [{default: allow}]
"#;
    for iso in [Isolation::All, Isolation::Needed] {
        let s = scenario(yaml);
        let (i, sw, _) = Intent::from_scenario(&s, "t.yaml", None).expect("step");
        let syn = synthesize(&i, &Options { isolation: iso }).expect("runs");
        assert!(syn.proof.holds());
        let c = compare(&i, &syn.policies, Some(&sw));
        // a->b:81, c->b:80, c->b:81 are not listed: meant blocked.
        assert_eq!(c.unlisted, 3);
        assert_eq!(c.intent_allowed, 1);
        assert_eq!(c.synthesized.reach.allowed, 1, "{iso:?}");
        assert_eq!(c.synthesized.reach.beyond_intent, 0);
        assert!(c.scenario.is_none());
    }
}

#[test]
fn files_that_do_not_load_back_are_internal_errors() {
    let (i, _) = synth(SHOP, Isolation::All);
    let bad = BTreeMap::from([("policies/x.yaml".to_owned(), "kind: [".to_owned())]);
    assert!(matches!(
        load_back(&i, &bad),
        Err(SynthError::RoundTrip { .. })
    ));
    let unknown = BTreeMap::from([(
        "policies/x.yaml".to_owned(),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: nowhere}\n"
            .to_owned(),
    )]);
    assert!(matches!(
        load_back(&i, &unknown),
        Err(SynthError::RoundTrip { .. })
    ));
}

#[test]
fn the_via_ip_route_of_a_service_cell_is_covered_too() {
    let yaml = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, labels: {app: a}}
  - {name: b, namespace: x, labels: {app: b}, ports: [80/tcp]}
probes:
  - {from: x/a, to: x/b, via: service}
steps:
  - expect: [{default: allow}]
"#;
    let s = scenario(yaml);
    let (i, _, _) = Intent::from_scenario(&s, "t.yaml", None).expect("step");
    let syn = synthesize(&i, &Options::default()).expect("runs");
    assert!(syn.proof.holds());
    let c = compare(&i, &syn.policies, None);
    // The same connection by pod IP is not listed, and selectors cannot tell routes apart.
    assert_eq!(c.synthesized.reach.beyond_intent, 1);
    let ip = crate::model::CellKey {
        from: PodId::new("x", "a"),
        to: Target::Pod(PodId::new("x", "b")),
        port: i.cells.keys().next().and_then(|k| k.port),
        via: Some(Via::Ip),
    };
    assert!(universe(&i).contains(&ip));
}

#[test]
fn ingress_may_lean_on_what_egress_already_refuses() {
    // m1 and m2 share their labels; `http` is 80 on m1 and 8080 on m2, and m2's 80 is `web`.
    // s may reach m1:80 only. Its egress cannot say that exactly (`http` also admits m2:8080,
    // `80` also admits m2:80), so it admits m2:8080 and the ingress of m1/m2 must refuse that:
    // with port 80, which also admits s -> m2:80 — harmless, because s's egress refuses that.
    let yaml = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: s, namespace: x, labels: {app: s}}
  - {name: b, namespace: x, labels: {app: b}}
  - {name: m1, namespace: x, labels: {app: m}, ports: [{port: 80, name: http}]}
  - name: m2
    namespace: x
    labels: {app: m}
    ports: [{port: 80, name: web}, {port: 8080, name: http}]
steps:
  - expect:
      - default: block
      - allow: {from: x/s, to: x/m1, port: 80/tcp}
      - allow: {from: x/b, port: 80/tcp}
"#;
    let (_, s) = synth(yaml, Isolation::All);
    assert!(
        s.proof.holds(),
        "{:?}\n{}",
        s.proof.unmet,
        s.files["policies/x.yaml"]
    );
}
