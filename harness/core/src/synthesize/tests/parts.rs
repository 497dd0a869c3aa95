//! The selector search and the isolation cover, on small Worlds.

use std::collections::BTreeMap;

use super::*;
use crate::policy::{Operator, PolicyType};
use crate::synthesize::model::Model;
use crate::synthesize::select;

/// An intent over pods `name: labels` in namespace x (no cells).
fn world(pods: &[(&str, &[(&str, &str)])]) -> Intent {
    let mut yaml = String::from("version: 1\nnamespaces: [{name: x}]\npods:\n");
    for (name, labels) in pods {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}: \"{v}\""))
            .collect();
        yaml.push_str(&format!(
            "  - {{name: {name}, namespace: x, labels: {{{}}}, ports: [80/tcp]}}\n",
            l.join(", ")
        ));
    }
    yaml.push_str("steps:\n  - expect: [{default: allow}]\n");
    Intent::from_scenario(&scenario(&yaml), "t", None)
        .expect("step")
        .0
}

fn idx(m: &Model<'_>, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|n| m.index[&crate::model::PodId::new("x", *n)])
        .collect()
}

fn cover(i: &Intent, want: &[&str], forbid: &[&str], others: &[&str]) -> select::Cover {
    let m = Model::new(i);
    select::cover(&m, &idx(&m, want), &idx(&m, forbid), &idx(&m, others))
}

#[test]
fn selectors_are_the_simplest_that_keep_forbidden_pods_out() {
    let i = world(&[
        ("a", &[("app", "web"), ("zone", "1")]),
        ("b", &[("app", "web"), ("zone", "2")]),
        ("c", &[("app", "db"), ("zone", "1")]),
        ("d", &[("app", "web"), ("zone", "1"), ("debug", "on")]),
        ("e", &[("tier", "1")]),
        ("f", &[("tier", "2")]),
        ("g", &[("tier", "3")]),
        ("h", &[]),
    ]);
    // What a and b share, and c lacks.
    let c = cover(&i, &["a", "b"], &["c"], &[]);
    assert_eq!(c.selectors, vec![labels(&[("app", "web")])]);
    // a without the debug pod d, whose labels are a superset of a's.
    let c = cover(&i, &["a"], &["d", "b", "c"], &[]);
    assert_eq!(c.selectors.len(), 1);
    assert_eq!(
        c.selectors[0].match_labels,
        labels(&[("app", "web"), ("zone", "1")]).match_labels
    );
    assert_eq!(c.selectors[0].match_expressions[0].key, "debug");
    assert_eq!(
        c.selectors[0].match_expressions[0].operator,
        Operator::DoesNotExist
    );
    // Two values of one key.
    let c = cover(&i, &["e", "f"], &["g"], &[]);
    assert_eq!(c.selectors.len(), 1);
    assert_eq!(c.selectors[0].match_expressions[0].operator, Operator::In);
    assert_eq!(c.selectors[0].match_expressions[0].values, vec!["1", "2"]);
    // A pod without labels, apart from every labelled one.
    let c = cover(&i, &["h"], &["a", "e"], &[]);
    assert_eq!(c.selectors.len(), 1);
    assert!(c.selectors[0].matches(&BTreeMap::new()));
    assert!(c.leaked.is_empty() && c.clashes.is_empty());
    // Nothing forbidden: everything.
    let c = cover(&i, &["a", "e"], &[], &[]);
    assert_eq!(c.selectors, vec![LabelSelector::default()]);
    // Others may be matched, but a selector naming only the wanted pods is preferred.
    let c = cover(&i, &["e"], &[], &["f"]);
    assert_eq!(c.selectors, vec![labels(&[("tier", "1")])]);
    // ... unless it would take more selectors: {} covers a, e and h at once.
    let c = cover(&i, &["a", "e", "h"], &[], &["b"]);
    assert_eq!(c.selectors, vec![LabelSelector::default()]);
}

#[test]
fn identical_labels_are_a_clash_and_leak() {
    let i = world(&[
        ("a", &[("app", "w")]),
        ("b", &[("app", "w")]),
        ("c", &[("app", "c")]),
    ]);
    let m = Model::new(&i);
    let c = select::cover(&m, &idx(&m, &["a"]), &idx(&m, &["b", "c"]), &[]);
    assert_eq!(c.clashes, vec![(idx(&m, &["a"])[0], idx(&m, &["b"])[0])]);
    assert_eq!(c.leaked, idx(&m, &["b"]));
    assert_eq!(c.selectors, vec![labels(&[("app", "w")])]);
}

#[test]
fn needed_blocks_at_the_cheaper_side() {
    // s may reach nothing; everyone else reaches everyone. Isolating s's egress costs no rule;
    // isolating the four destinations' ingress would cost one each.
    let yaml = r#"
version: 1
namespaces: [{name: x}]
pods:
  - {name: s, namespace: x, labels: {app: s}}
  - {name: d1, namespace: x, labels: {app: d1}, ports: [80/tcp]}
  - {name: d2, namespace: x, labels: {app: d2}, ports: [80/tcp]}
  - {name: d3, namespace: x, labels: {app: d3}, ports: [80/tcp]}
  - {name: d4, namespace: x, labels: {app: d4}, ports: [80/tcp]}
steps:
  - expect:
      - default: allow
      - block: {from: x/s}
"#;
    let (_, s) = synth(yaml, Isolation::Needed);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    assert_eq!(s.policies.len(), 1, "{:?}", s.policies);
    let p = &s.policies[0];
    assert_eq!(p.pod_selector, labels(&[("app", "s")]));
    assert_eq!(p.policy_types, Some(vec![PolicyType::Egress]));
    // The other way round: nobody may reach d1, which isolates one ingress for free.
    let yaml = yaml.replace("block: {from: x/s}", "block: {to: x/d1}");
    let (_, s) = synth(&yaml, Isolation::Needed);
    assert!(s.proof.holds(), "{:?}", s.proof.unmet);
    assert_eq!(s.policies.len(), 1, "{:?}", s.policies);
    assert_eq!(s.policies[0].pod_selector, labels(&[("app", "d1")]));
    assert_eq!(s.policies[0].policy_types, Some(vec![PolicyType::Ingress]));
}
