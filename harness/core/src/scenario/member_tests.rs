//! Steps that add and remove pods and namespaces (`add:`, `remove:`): what is absent at the
//! start, which cells each step probes, the actions in order, and every refusal with its place.

use std::path::Path;

use super::{MemReader, load_str};
use crate::diag::Code;
use crate::model::{Action, PodId, Scenario};

const HEAD: &str = "version: 1
namespaces:
  - {name: x, labels: {team: t}}
  - {name: late, labels: {team: t}}
pods:
  - {name: a, namespace: x, labels: {app: a}, ports: [80/tcp]}
  - {name: b, namespace: x, labels: {app: b}, ports: [80/tcp]}
  - {name: c, namespace: late, labels: {app: c}, ports: [80/tcp]}
";

fn load(steps: &str) -> super::Loaded {
    load_str(
        Path::new("scn/t.yaml"),
        &format!("{HEAD}steps:\n{steps}"),
        &MemReader::default(),
    )
}

fn valid(steps: &str) -> Scenario {
    let l = load(steps);
    assert!(
        !l.diagnostics.has_errors(),
        "{}",
        l.diagnostics.render(false)
    );
    l.scenario.expect("valid")
}

/// (code, line, column, message) of every diagnostic.
fn problems(steps: &str) -> Vec<(Code, usize, usize, String)> {
    load(steps)
        .diagnostics
        .0
        .iter()
        .map(|d| (d.code, d.pos.line, d.pos.col, d.message.clone()))
        .collect()
}

/// The pods a step probes from (sorted, deduplicated).
fn sources(s: &Scenario, step: usize) -> Vec<String> {
    let mut v: Vec<String> = s.steps[step]
        .expected
        .cells
        .keys()
        .map(|c| c.from.to_string())
        .collect();
    v.dedup();
    v
}

#[test]
fn what_a_step_adds_first_is_absent_until_then_and_only_present_pods_are_probed() {
    let s = valid(
        "  - expect: [{default: allow}]
  - remove: {pods: [x/b]}
    add: {namespaces: [late], pods: [late/c]}
    expect: [{default: allow}]
  - remove: {namespaces: [late]}
    add: {pods: [x/b]}
    expect: [{default: allow}]
",
    );
    assert_eq!(s.absent_at_start.namespaces, ["late".to_owned()].into());
    assert_eq!(s.absent_at_start.pods, [PodId::new("late", "c")].into());
    assert_eq!(sources(&s, 0), ["x/a", "x/b"]);
    assert_eq!(sources(&s, 1), ["late/c", "x/a"]);
    assert_eq!(sources(&s, 2), ["x/a", "x/b"]);
    // No cell of step 2 is aimed at the removed pod; step 2's at the added one.
    assert!(
        s.steps[1]
            .expected
            .cells
            .keys()
            .all(|c| c.to.to_string() != "x/b")
    );
    assert!(
        s.steps[1]
            .expected
            .cells
            .keys()
            .any(|c| c.to.to_string() == "late/c")
    );
    let kinds = |i: usize| -> Vec<String> {
        s.steps[i]
            .actions
            .iter()
            .map(|a| match a {
                Action::RemovePod(p) => format!("remove {p}"),
                Action::RemoveNamespace(n) => format!("remove ns {n}"),
                Action::AddNamespace(n) => format!("add ns {}", n.name),
                Action::AddPod(p) => format!("add {}", p.id),
                _ => "other".into(),
            })
            .collect()
    };
    // Removals first, then additions (namespaces before their pods).
    assert_eq!(kinds(1), ["remove x/b", "add ns late", "add late/c"]);
    assert_eq!(kinds(2), ["remove ns late", "add x/b"]);
}

#[test]
fn a_selector_sees_an_added_namespace_and_a_removed_one_takes_its_policies() {
    let policy = "      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: deny-c, namespace: late}
          spec: {podSelector: {matchLabels: {app: c}}, policyTypes: [Ingress]}
";
    let s = valid(&format!(
        "  - add: {{namespaces: [late], pods: [late/c]}}
    apply:
{policy}    expect:
      - computed: {{}}
  - remove: {{namespaces: [late]}}
    expect: [{{computed: {{}}}}]
  - add: {{namespaces: [late], pods: [late/c]}}
    expect:
      # The policy went with the namespace: c is open again.
      - default: allow
"
    ));
    let verdict = |step: usize, from: &str| {
        s.steps[step]
            .expected
            .cells
            .iter()
            .find(|(k, _)| k.from.to_string() == from && k.to.to_string() == "late/c")
            .map(|(_, e)| e.verdict)
    };
    assert_eq!(verdict(0, "x/a"), Some(crate::model::Verdict::Block));
    assert_eq!(verdict(2, "x/a"), Some(crate::model::Verdict::Allow));
    // Deleting the removed namespace's policy afterwards is refused: it is not in force.
    let p = problems(
        "  - add: {namespaces: [late], pods: [late/c]}
    apply:
      - inline: {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: p, namespace: late}, spec: {podSelector: {}}}
    expect: [{computed: {}}]
  - remove: {namespaces: [late]}
    delete: [late/p]
    expect: [{default: allow}]
",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, Code::InvalidStep);
    assert!(p[0].3.contains("not in force"), "{p:?}");
}

#[test]
fn every_refusal_names_its_place_and_what_is_wrong() {
    let cases: [(&str, Code, usize, usize, &str); 9] = [
        (
            "  - remove: {pods: [x/zz]}\n    expect: [{default: allow}]\n",
            Code::UnknownPod,
            10,
            21,
            "step 1 removes pod `x/zz`, which is not declared",
        ),
        (
            "  - remove: {pods: [late/c]}\n    expect: [{default: allow}]\n  - remove: {pods: [late/c]}\n    expect: [{default: allow}]\n",
            Code::InvalidStep,
            12,
            21,
            "step 2 removes pod `late/c`, which is not present at that point",
        ),
        (
            "  - add: {pods: [late/c]}\n    expect: [{default: allow}]\n  - add: {pods: [late/c]}\n    expect: [{default: allow}]\n",
            Code::InvalidStep,
            12,
            18,
            "step 2 adds pod `late/c`, which is present at that point",
        ),
        (
            "  - remove: {namespaces: [late]}\n    expect: [{default: allow}]\n  - add: {pods: [late/c]}\n    expect: [{default: allow}]\n",
            Code::InvalidStep,
            12,
            18,
            "step 2 adds pod `late/c`, but its namespace `late` is not present at that point",
        ),
        (
            "  - add: {namespaces: [late]}\n    expect: [{default: allow}]\n  - add: {namespaces: [late]}\n    expect: [{default: allow}]\n",
            Code::InvalidStep,
            12,
            24,
            "step 2 adds namespace `late`, which is present at that point",
        ),
        (
            "  - remove: {namespaces: [nope]}\n    expect: [{default: allow}]\n",
            Code::UnknownNamespace,
            10,
            27,
            "step 1 removes namespace `nope`, which is not declared",
        ),
        (
            "  - remove: {pods: [ab]}\n    expect: [{default: allow}]\n",
            Code::InvalidStep,
            10,
            21,
            "`ab` is not a pod reference",
        ),
        (
            "  - remove: {pods: [x/a]}\n    relabel: [{pod: x/a, labels: {k: v}}]\n    expect: [{default: allow}]\n",
            Code::InvalidStep,
            11,
            21,
            "relabel names pod `x/a`, which is not present at that point",
        ),
        (
            "  - remove: {namespaces: [x]}\n    apply:\n      - inline: {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: p, namespace: x}, spec: {podSelector: {}}}\n    expect: [{default: allow}]\n",
            Code::InvalidStep,
            12,
            90,
            "step 1 puts policy `x/p` into namespace `x`, which is not present at that point",
        ),
    ];
    let mut wrong = Vec::new();
    for (steps, code, line, col, msg) in cases {
        let p = problems(steps);
        if !p.iter().any(|d| d == &(code, line, col, msg.to_owned())) {
            wrong.push(format!(
                "{steps}\nexpected {code:?} {line}:{col} {msg}\ngot {p:#?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn existing_namespaces_and_relatively_placed_pods_cannot_come_and_go() {
    let text = "version: 1
namespaces:
  - {name: x}
  - {name: kube-system, existing: true}
pods:
  - {name: a, namespace: x, ports: [80/tcp]}
  - {name: b, namespace: x, ports: [80/tcp], node: {different: x/a}}
steps:
  - remove: {namespaces: [kube-system]}
    expect: [{default: allow}]
  - remove: {pods: [x/a]}
    expect: [{default: allow}]
";
    let l = load_str(Path::new("scn/t.yaml"), text, &MemReader::default());
    let p: Vec<(Code, usize, String)> = l
        .diagnostics
        .0
        .iter()
        .map(|d| (d.code, d.pos.line, d.message.clone()))
        .collect();
    assert!(
        p.iter().any(|(c, line, m)| *c == Code::ExistingNamespace
            && *line == 9
            && m.contains("never creates or deletes it")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|(c, line, m)| *c == Code::Conflict
            && *line == 11
            && m.contains("placed relative to another pod")),
        "{p:#?}"
    );
}

#[test]
fn a_pod_whose_namespace_is_removed_before_the_pod_is_named_was_present_at_the_start() {
    // late/c is first named by an `add:` in step 3, but step 2 removes its namespace: so it
    // was there before, and step 1 probes it.
    let s = valid(
        "  - expect: [{default: allow}]
  - remove: {namespaces: [late]}
    expect: [{default: allow}]
  - add: {namespaces: [late], pods: [late/c]}
    expect: [{default: allow}]
",
    );
    assert!(s.absent_at_start.pods.is_empty(), "{:?}", s.absent_at_start);
    assert_eq!(sources(&s, 0), ["late/c", "x/a", "x/b"]);
    assert_eq!(sources(&s, 1), ["x/a", "x/b"]);
    assert_eq!(sources(&s, 2), ["late/c", "x/a", "x/b"]);
}
