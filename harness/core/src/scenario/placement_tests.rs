//! Pods' `node:`: what loads, what is refused and where, and the scheduling terms it plans.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{MemReader, load_str};
use crate::cluster::{DeployPlan, PodPlacement};
use crate::diag::Code;
use crate::model::{Placement, PodId};
use crate::names::Naming;

fn scenario(pods: &str) -> String {
    format!(
        "version: 1\nnamespaces: [{{name: x}}, {{name: y}}]\npods:\n{pods}probes: [{{from: '*', to: '*', port: 80/tcp}}]\nsteps:\n  - expect: [{{default: allow}}]\n"
    )
}

fn load(pods: &str) -> super::Loaded {
    load_str(
        Path::new("scn/placement.yaml"),
        &scenario(pods),
        &MemReader(BTreeMap::<PathBuf, String>::new()),
    )
}

/// Diagnostics as (code, line, message).
fn problems(pods: &str) -> Vec<(Code, usize, String)> {
    load(pods)
        .diagnostics
        .0
        .iter()
        .filter(|d| d.code != Code::ContradictsSpec)
        .map(|d| (d.code, d.pos.line, d.message.clone()))
        .collect()
}

fn plan(pods: &str) -> BTreeMap<PodId, PodPlacement> {
    let l = load(pods);
    let s = l
        .scenario
        .unwrap_or_else(|| panic!("invalid:\n{}", l.diagnostics.render(false)));
    DeployPlan::new(&s, &Naming::Verbatim, "r1")
        .pods
        .into_iter()
        .map(|p| (p.id, p.placement))
        .collect()
}

#[test]
fn node_names_and_relative_placements_load_and_plan_groups() {
    let pods = "  - {name: a, namespace: x, ports: [80/tcp], node: kind-worker}
  - {name: b, namespace: x, ports: [80/tcp], node: {same: y/c}}
  - {name: c, namespace: y, ports: [80/tcp]}
  - {name: d, namespace: y, ports: [80/tcp], node: {different: x/b}}
  - {name: e, namespace: y, ports: [80/tcp]}
";
    let l = load(pods);
    let s = l.scenario.expect("valid");
    assert_eq!(
        s.placement,
        BTreeMap::from([
            (PodId::new("x", "a"), Placement::Node("kind-worker".into())),
            (PodId::new("x", "b"), Placement::Same(PodId::new("y", "c"))),
            (
                PodId::new("y", "d"),
                Placement::Different(PodId::new("x", "b"))
            ),
        ])
    );
    let p = plan(pods);
    // Groups in pod order: x/a g0, x/b and y/c g1, y/d g2; y/e is free.
    assert_eq!(
        p[&PodId::new("x", "a")].node.as_deref(),
        Some("kind-worker")
    );
    assert!(!p[&PodId::new("x", "a")].with_group);
    for id in [PodId::new("x", "b"), PodId::new("y", "c")] {
        assert_eq!(p[&id].group.as_deref(), Some("g1"), "{id}");
        assert!(p[&id].with_group, "{id}");
        assert_eq!(p[&id].apart_from, vec!["g2".to_owned()], "{id}");
    }
    assert_eq!(p[&PodId::new("y", "d")].apart_from, vec!["g1".to_owned()]);
    assert!(!p[&PodId::new("y", "d")].with_group);
    assert!(p[&PodId::new("y", "e")].is_free());
}

#[test]
fn a_node_pin_holds_for_the_whole_same_group() {
    let p = plan(
        "  - {name: a, namespace: x, ports: [80/tcp], node: {same: x/b}}
  - {name: b, namespace: x, ports: [80/tcp], node: kind-worker2}
",
    );
    assert_eq!(
        p[&PodId::new("x", "a")].node.as_deref(),
        Some("kind-worker2")
    );
    assert_eq!(
        p[&PodId::new("x", "b")].node.as_deref(),
        Some("kind-worker2")
    );
}

#[test]
fn bad_placements_are_refused_on_their_line() {
    let cases: &[(&str, Code, &str)] = &[
        (
            "  - {name: a, namespace: x, ports: [80/tcp], node: {same: x/nope}}\n",
            Code::UnknownPod,
            "`x/nope`, which is not a declared pod",
        ),
        (
            "  - {name: a, namespace: x, ports: [80/tcp], node: {different: x/a}}\n",
            Code::Conflict,
            "relative to itself",
        ),
        (
            "  - {name: a, namespace: x, ports: [80/tcp], node: Kind_Worker}\n",
            Code::InvalidName,
            "node name `Kind_Worker`",
        ),
        (
            "  - {name: a, namespace: x, ports: [80/tcp], node: {}}\n",
            Code::InvalidName,
            "exactly one of `same` and `different`",
        ),
    ];
    for (pods, code, says) in cases {
        let got = problems(&format!(
            "{pods}  - {{name: b, namespace: x, ports: [80/tcp]}}\n"
        ));
        assert!(
            got.iter()
                .any(|(c, line, m)| c == code && *line == 4 && m.contains(says)),
            "{pods}: {got:?}"
        );
    }
    let got = problems(
        "  - {name: a, namespace: x, ports: [80/tcp], node: {nearby: x/b}}\n  - {name: b, namespace: x, ports: [80/tcp]}\n",
    );
    assert!(!got.is_empty(), "an unknown key is refused");
}

/// Each pod has one `node:`, so a group of pods sharing a node has at most one pod that does not
/// point at another (pinned to a node name, or kept apart from a pod): two pins for one group, or
/// two pinned groups kept apart, cannot be written. What can be: a group apart from itself.
#[test]
fn a_group_kept_apart_from_itself_is_refused_once() {
    let conflicts = |pods: &str| -> Vec<(usize, String)> {
        problems(pods)
            .into_iter()
            .filter(|(c, ..)| *c == Code::Conflict)
            .map(|(_, line, m)| (line, m))
            .collect()
    };
    let got = conflicts(
        "  - {name: a, namespace: x, ports: [80/tcp], node: {same: y/b}}
  - {name: b, namespace: y, ports: [80/tcp], node: {same: x/c}}
  - {name: c, namespace: x, ports: [80/tcp], node: {different: x/a}}
",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0]
            .1
            .contains("x/a, x/c, y/b share a node (`same`) and must also be apart"),
        "{got:?}"
    );
    // Apart from a pod of another group is fine, also when that group is pinned.
    let got = conflicts(
        "  - {name: a, namespace: x, ports: [80/tcp], node: n1}
  - {name: b, namespace: x, ports: [80/tcp], node: {same: x/a}}
  - {name: c, namespace: x, ports: [80/tcp], node: {different: x/b}}
",
    );
    assert!(got.is_empty(), "{got:?}");
}

/// netreach labels its pods with the run and the node group: a scenario's own labels may not
/// use those keys, or a policy of it could select on what netreach adds.
#[test]
fn netreach_own_labels_are_refused() {
    let got = problems(
        "  - {name: a, namespace: x, ports: [80/tcp], labels: {netreach.dev/node-group: g0}}\n",
    );
    assert!(
        got.iter().any(|(c, line, m)| *c == Code::InvalidLabel
            && *line == 4
            && m.contains("is netreach's own")),
        "{got:?}"
    );
    // Nor may a step set or remove them.
    let l = load_str(
        Path::new("scn/placement.yaml"),
        "version: 1\nnamespaces: [{name: x}]\npods:\n  - {name: a, namespace: x, ports: [80/tcp]}\nsteps:\n  - relabel: [{pod: x/a, labels: {netreach.dev/run: null}}]\n    expect: [{default: allow}]\n",
        &MemReader(BTreeMap::<PathBuf, String>::new()),
    );
    assert!(
        l.diagnostics.0.iter().any(|d| d.code == Code::InvalidLabel
            && d.pos.line == 6
            && d.message.contains("is netreach's own")),
        "{}",
        l.diagnostics.render(false)
    );
}
