//! Table-driven tests of loading: probes, expectation expansion, loopback, steps, policies and
//! namespace rewriting. Each case is YAML in, facts out.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{Loaded, MemReader, load_str};
use crate::bind::Bindings;
use crate::diag::Code;
use crate::model::{Action, PodId, Scenario, Verdict};
use crate::names::Naming;

const HEAD: &str = "version: 1
namespaces: [{name: x}, {name: y}, {name: kube-system, existing: true}]
pods:
  - {name: a, namespace: x, labels: {app: a}, ports: [80/tcp, {port: 81, name: http}]}
  - {name: b, namespace: x, labels: {app: b}, ports: [80/tcp]}
  - {name: a, namespace: y, labels: {app: a}, ports: [80/tcp, 53/udp]}
";

fn load(yaml: &str) -> Loaded {
    load_files(yaml, &[])
}

fn load_files(yaml: &str, files: &[(&str, &str)]) -> Loaded {
    let reader = MemReader(
        files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    load_str(Path::new("scn/test.yaml"), yaml, &reader)
}

fn valid(yaml: &str) -> Scenario {
    let l = load(yaml);
    l.scenario
        .unwrap_or_else(|| panic!("invalid:\n{}", l.diagnostics.render(false)))
}

/// Diagnostics as (code, line), without `contradicts-spec` warnings: these tests write
/// expectations to exercise the validator, not to be right (the engine's own tests check those).
fn codes(yaml: &str) -> Vec<(Code, usize)> {
    load(yaml)
        .diagnostics
        .0
        .iter()
        .filter(|d| d.code != Code::ContradictsSpec)
        .map(|d| (d.code, d.pos.line))
        .collect()
}

/// The verdicts of step `step` as `from->to port` strings.
fn verdicts(s: &Scenario, step: usize) -> BTreeMap<String, &'static str> {
    s.steps[step]
        .expected
        .cells
        .iter()
        .map(|(k, e)| {
            (
                k.to_string(),
                if e.verdict == Verdict::Allow {
                    "."
                } else {
                    "X"
                },
            )
        })
        .collect()
}

fn check(expect_yaml: &str, want: &[(&str, &str)]) {
    let s = valid(&format!("{HEAD}steps:\n  - expect:\n{expect_yaml}"));
    let got = verdicts(&s, 0);
    for (cell, v) in want {
        assert_eq!(
            got.get(*cell).copied(),
            Some(*v),
            "cell {cell}\nall: {got:#?}"
        );
    }
}

#[test]
fn default_probes_cover_every_pod_to_every_served_port() {
    let s = valid(&format!("{HEAD}steps:\n  - expect: [{{default: allow}}]\n"));
    // 3 sources x (2 + 1 + 2) target ports.
    assert_eq!(s.cells.len(), 15);
    assert!(s.cells.iter().all(|c| c.via == Some(crate::model::Via::Ip)));
}

#[test]
fn wildcards_and_later_entries_override_earlier() {
    check(
        "      - default: block\n      - allow: {from: \"x/*\", to: \"y/a\"}\n      - block: {from: x/b, to: y/a, port: 53/udp}\n",
        &[
            ("x/a -> y/a 80/tcp", "."),
            ("x/a -> y/a 53/udp", "."),
            ("x/b -> y/a 80/tcp", "."),
            ("x/b -> y/a 53/udp", "X"),
            ("y/a -> x/a 80/tcp", "X"),
            ("x/a -> x/b 80/tcp", "X"),
        ],
    );
    // `*/a` as a target; a port name matches only the pods that name it.
    check(
        "      - default: block\n      - allow: {to: \"*/a\", port: 80}\n      - allow: {port: http}\n",
        &[
            ("x/b -> x/a 80/tcp", "."),
            ("x/b -> y/a 80/tcp", "."),
            ("x/b -> x/a 81/tcp", "."),
            ("x/a -> x/b 80/tcp", "X"),
        ],
    );
}

#[test]
fn truth_tables_set_cells_and_question_marks_keep_earlier_entries() {
    check(
        "      - default: allow
      - table:
          port: 80/tcp
          rows: |
            -   x/a x/b y/a
            x/a .   X   ?
            x/b X   .   X
            y/a ?   X   .
",
        &[
            ("x/a -> x/b 80/tcp", "X"),
            ("x/a -> y/a 80/tcp", "."),
            ("x/b -> x/a 80/tcp", "X"),
            ("x/b -> y/a 80/tcp", "X"),
            ("y/a -> x/a 80/tcp", "."),
            ("y/a -> x/b 80/tcp", "X"),
            // Other ports are not in the table.
            ("x/b -> x/a 81/tcp", "."),
        ],
    );
}

#[test]
fn loopback_is_allowed_unless_the_scenario_says_otherwise() {
    check(
        "      - default: block\n",
        &[("x/a -> x/a 80/tcp", "."), ("x/a -> x/b 80/tcp", "X")],
    );
    let rules = valid(&format!(
        "loopback: rules\n{HEAD}steps:\n  - expect: [{{default: block}}]\n"
    ));
    assert_eq!(verdicts(&rules, 0)["x/a -> x/a 80/tcp"], "X");
    let block = valid(&format!(
        "loopback: block\n{HEAD}steps:\n  - expect: [{{default: allow}}]\n"
    ));
    assert_eq!(verdicts(&block, 0)["x/a -> x/a 80/tcp"], "X");
    assert_eq!(verdicts(&block, 0)["x/a -> x/b 80/tcp"], ".");
    // An explicit blocked diagonal under the default is a conflict, reported where it is.
    let c = codes(&format!(
        "{HEAD}steps:\n  - expect:\n      - default: allow\n      - block: {{from: x/a, to: x/a}}\n"
    ));
    assert_eq!(c, vec![(Code::LoopbackConflict, 10)]);
    // A wildcard rule is not a statement about loopback.
    assert!(
        codes(&format!(
            "{HEAD}steps:\n  - expect:\n      - default: allow\n      - block: {{to: x/a}}\n"
        ))
        .is_empty()
    );
}

#[test]
fn every_probed_cell_needs_an_expectation() {
    let c = codes(&format!(
        "{HEAD}steps:\n  - expect:\n      - allow: {{to: x/a}}\n"
    ));
    assert_eq!(c, vec![(Code::NoExpectation, 9)]);
    let d = load(&format!(
        "{HEAD}steps:\n  - expect:\n      - allow: {{to: x/a}}\n"
    ));
    assert!(
        d.diagnostics.0[0].message.contains("for 6 probed cell(s)"),
        "{}",
        d.diagnostics.0[0].message
    );
}

#[test]
fn probes_select_cells() {
    let s = valid(&format!(
        "{HEAD}external: [{{name: web, ports: [443/tcp]}}]
probes:
  - {{from: \"x/*\", to: y/a, port: 80/tcp, via: service}}
  - {{from: x/a, to: \"ext:web\"}}
  - {{from: y/a, resolve: kubernetes.default}}
  - {{from: x/a, to: x/b}}
  - {{from: x/a, to: x/b}}
steps:
  - expect: [{{default: block}}, {{allow: {{to: \"dns:*\"}}}}]
"
    ));
    let cells: Vec<String> = s.cells.iter().map(ToString::to_string).collect();
    assert_eq!(
        cells,
        [
            "x/a -> x/b 80/tcp",
            "x/a -> y/a 80/tcp via service",
            "x/a -> ext:web 443/tcp",
            "x/b -> y/a 80/tcp via service",
            "y/a -> dns:kubernetes.default",
        ]
    );
    assert_eq!(s.pods_needing_service(), vec![PodId::new("y", "a")]);
    assert_eq!(verdicts(&s, 0)["y/a -> dns:kubernetes.default"], ".");
}

#[test]
fn probe_problems_are_reported() {
    let p = |probe: &str| {
        codes(&format!(
            "{HEAD}probes:\n  - {probe}\nsteps:\n  - expect: [{{default: block}}]\n"
        ))
    };
    assert_eq!(
        p("{from: x/a, to: x/b, port: 81/tcp}"),
        vec![(Code::PortNotServed, 8)]
    );
    assert_eq!(p("{from: x/z, to: x/b}"), vec![(Code::UnknownPod, 8)]);
    assert_eq!(
        p("{from: \"q/*\", to: x/b}"),
        vec![(Code::MatchesNothing, 8)]
    );
    assert_eq!(
        p("{from: x/a, to: \"ext:nope\"}"),
        vec![(Code::UnknownExternal, 8)]
    );
    assert_eq!(
        p("{from: x/a, to: x/b, resolve: kubernetes.default}"),
        vec![(Code::Conflict, 8)]
    );
    assert_eq!(p("{from: x/a, to: \"dns:x\"}"), vec![(Code::Conflict, 8)]);
    assert_eq!(p("{from: x, to: x/b}"), vec![(Code::InvalidPattern, 8)]);
}

#[test]
fn steps_track_policies_in_force() {
    let deny = |name: &str| {
        format!(
            "      - inline: {{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {{name: {name}, namespace: x}}, spec: {{podSelector: {{}}}}}}\n"
        )
    };
    let yaml = format!(
        "{HEAD}steps:
  - apply:
{}    expect: [{{default: block}}]
  - replace:
{}    relabel: [{{pod: x/a, labels: {{app: z, old: null}}}}, {{namespace: y, labels: {{team: t}}}}]
    delete: [x/other]
    apply:
{}    expect: [{{default: block}}]
  - delete: [x/deny, x/other]
    expect: [{{default: allow}}]
",
        deny("deny"),
        deny("deny"),
        deny("other")
    );
    // x/other is deleted in step 2 before it is applied in step 2: invalid.
    assert_eq!(codes(&yaml), vec![(Code::InvalidStep, 14)]);
    let yaml = yaml.replace("    delete: [x/other]\n", "");
    let s = valid(&yaml);
    let kinds = |i: usize| -> Vec<&'static str> {
        s.steps[i]
            .actions
            .iter()
            .map(|a| match a {
                Action::DeletePolicy(_) => "delete",
                Action::ReplacePolicy(_) => "replace",
                Action::ApplyPolicy(_) => "apply",
                Action::RelabelPod { .. } => "relabel-pod",
                Action::RelabelNamespace { .. } => "relabel-ns",
                Action::RemovePod(_) => "remove-pod",
                Action::RemoveNamespace(_) => "remove-ns",
                Action::AddNamespace(_) => "add-ns",
                Action::AddPod(_) => "add-pod",
            })
            .collect()
    };
    assert_eq!(kinds(0), ["apply"]);
    assert_eq!(kinds(1), ["replace", "apply", "relabel-pod", "relabel-ns"]);
    assert_eq!(kinds(2), ["delete", "delete"]);
    assert_eq!(s.steps[1].name, "step 2");
    // Applying what is in force, or replacing what is not, is refused.
    let again = format!(
        "{HEAD}steps:\n  - apply:\n{}{}    expect: [{{default: block}}]\n",
        deny("d"),
        deny("d")
    );
    assert_eq!(
        codes(&again).iter().map(|c| c.0).collect::<Vec<_>>(),
        [Code::InvalidStep]
    );
    let replace = format!(
        "{HEAD}steps:\n  - replace:\n{}    expect: [{{default: block}}]\n",
        deny("d")
    );
    assert_eq!(
        codes(&replace).iter().map(|c| c.0).collect::<Vec<_>>(),
        [Code::InvalidStep]
    );
}

fn bindings(s: &Scenario) -> Bindings {
    let mut b = Bindings {
        namespaces: s.namespace_map(&Naming::PerRun {
            run_id: "r4nd0m".into(),
        }),
        ..Bindings::default()
    };
    b.pod_ips.insert(
        PodId::new("x", "b"),
        "10.244.1.7".parse::<IpAddr>().expect("ip"),
    );
    b.external_ips
        .insert("web".into(), "172.18.0.9".parse::<IpAddr>().expect("ip"));
    b
}

#[test]
fn policies_are_rewritten_to_real_names_and_addresses() {
    let policy = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p1}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
        - namespaceSelector:
            matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [x, kube-system]}]
          podSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
  egress:
    - to: [{ipBlock: {cidr: '${ip x/b}/32'}}, {ipBlock: {cidr: '${ip ext:web}/24'}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
      ports: [{port: http}, {protocol: UDP, port: 53}, {port: 8000, endPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p2, namespace: x}
spec: {podSelector: {}, policyTypes: [Egress]}
";
    let yaml = format!(
        "{HEAD}external: [{{name: web, ports: [80/tcp]}}]\nsteps:\n  - apply: [{{file: pol/p.yaml, namespace: x}}]\n    expect: [{{default: block}}]\n"
    );
    let l = load_files(&yaml, &[("scn/pol/p.yaml", policy)]);
    let s = l
        .scenario
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
    let b = bindings(&s);
    let Action::ApplyPolicy(p1) = &s.steps[0].actions[0] else {
        panic!("apply")
    };
    let Action::ApplyPolicy(p2) = &s.steps[0].actions[1] else {
        panic!("apply")
    };
    assert_eq!(p1.origin, "scn/pol/p.yaml:3");
    let m = p1.to_manifest(&b).expect("bound");
    assert_eq!(m["metadata"]["namespace"], "x-r4nd0m");
    let from = &m["spec"]["ingress"][0]["from"];
    assert_eq!(
        from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "y-r4nd0m"
    );
    assert_eq!(
        from[1]["namespaceSelector"]["matchExpressions"][0]["values"],
        serde_json::json!(["x-r4nd0m", "kube-system"]),
        "kube-system is existing: never renamed"
    );
    // Only namespace selectors are rewritten; a pod label that happens to use the key is not.
    assert_eq!(
        from[1]["podSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "y"
    );
    let to = &m["spec"]["egress"][0]["to"];
    assert_eq!(to[0]["ipBlock"]["cidr"], "10.244.1.7/32");
    assert_eq!(to[1]["ipBlock"]["cidr"], "172.18.0.0/24");
    assert_eq!(
        to[2]["ipBlock"],
        serde_json::json!({"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]})
    );
    assert_eq!(
        m["spec"]["egress"][0]["ports"],
        serde_json::json!([{"protocol": "TCP", "port": "http"}, {"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 8000, "endPort": 8080}])
    );
    assert!(
        m["spec"].get("policyTypes").is_none(),
        "absent policyTypes stay absent"
    );
    let m2 = p2.to_manifest(&b).expect("bound");
    assert_eq!(m2["metadata"]["namespace"], "x-r4nd0m");
    assert_eq!(m2["spec"]["policyTypes"], serde_json::json!(["Egress"]));
    // Unbound addresses are an error, not a guess.
    let mut partial = b.clone();
    partial.pod_ips.clear();
    assert!(p1.to_manifest(&partial).is_err());
}

#[test]
fn policy_problems_point_into_the_policy_file() {
    let policy = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: q}\nspec:\n  ingress:\n    - from: [{ipBlock: {cidr: 10.0.0.1/8}}]\n";
    let yaml = format!(
        "{HEAD}steps:\n  - apply: [{{file: p.yaml}}, {{file: missing.yaml}}]\n    expect: [{{default: block}}]\n"
    );
    let l = load_files(&yaml, &[("scn/p.yaml", policy)]);
    let got: Vec<(String, Code, usize, usize)> = l
        .diagnostics
        .0
        .iter()
        .filter(|d| d.code != Code::ContradictsSpec)
        .map(|d| {
            (
                d.file.path.display().to_string(),
                d.code,
                d.pos.line,
                d.pos.col,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("scn/p.yaml".to_owned(), Code::UnknownNamespace, 3, 32),
            ("scn/p.yaml".to_owned(), Code::InvalidCidr, 6, 31),
            ("scn/test.yaml".to_owned(), Code::PolicyFile, 8, 36),
        ]
    );
}

#[test]
fn a_policy_namespace_must_agree_with_its_source() {
    let yaml = format!(
        "{HEAD}steps:\n  - apply:\n      - namespace: x\n        inline: {{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {{name: p, namespace: y}}}}\n    expect: [{{default: block}}]\n"
    );
    assert_eq!(codes(&yaml), vec![(Code::Conflict, 10)]);
}

#[test]
fn empty_policy_types_default_like_absent_ones_and_duplicates_are_refused() {
    let pol = |types: &str| {
        format!(
            "{HEAD}steps:\n  - apply:\n      - inline: {{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {{name: p, namespace: x}}, spec: {{policyTypes: {types}, egress: [{{}}]}}}}\n    expect: [{{default: block}}]\n"
        )
    };
    let s = valid(&pol("[]"));
    let Action::ApplyPolicy(p) = &s.steps[0].actions[0] else {
        panic!("apply")
    };
    assert_eq!(
        p.effective_types().len(),
        2,
        "[] with egress rules means Ingress and Egress"
    );
    assert_eq!(
        codes(&pol("[Ingress, Ingress]")),
        vec![(Code::InvalidPolicy, 9)]
    );
}

#[test]
fn tables_that_match_nothing_are_reported() {
    let c = codes(&format!(
        "{HEAD}steps:\n  - expect:\n      - default: allow\n      - table:\n          via: service\n          rows: |\n            x/a x/b\n            x/a .   X\n"
    ));
    assert_eq!(c, vec![(Code::MatchesNothing, 11)]);
}

#[test]
fn unresolved_is_only_for_connections_by_name() {
    let head = format!(
        "{HEAD}probes:\n  - {{from: x/a, to: x/b, via: dns}}\n  - {{from: x/a, to: x/b}}\n"
    );
    let ok = valid(&format!(
        "{head}steps:\n  - expect: [{{default: block}}, {{unresolved: {{via: dns}}}}]\n"
    ));
    assert_eq!(
        ok.steps[0]
            .expected
            .cells
            .values()
            .filter(|e| e.verdict == Verdict::Unresolved)
            .count(),
        1
    );
    assert_eq!(
        codes(&format!(
            "{head}steps:\n  - expect: [{{default: block}}, {{unresolved: {{to: x/b}}}}]\n"
        )),
        vec![(Code::Conflict, 11)]
    );
}

#[test]
fn kubernetes_name_label_is_not_the_scenarios_to_set() {
    let c = codes(
        "version: 1\nnamespaces: [{name: x, labels: {kubernetes.io/metadata.name: x}}]\npods: [{name: a, namespace: x, ports: [80]}]\nsteps: [{expect: [{default: allow}]}]\n",
    );
    assert_eq!(c, vec![(Code::InvalidLabel, 2)]);
}

#[test]
fn empty_and_shapeless_files_are_diagnosed() {
    assert_eq!(codes(""), vec![(Code::MissingField, 0)]);
    assert_eq!(codes("# only a comment\n"), vec![(Code::MissingField, 0)]);
    assert_eq!(codes("[1, 2]\n").len(), 1);
    assert_eq!(
        codes("version: 1\nsteps: []\n")
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        [Code::MissingField, Code::MissingField]
    );
}

#[test]
fn computed_expectations_follow_the_engine_and_contradictions_warn() {
    let policy = "- inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: deny-b, namespace: x}
          spec: {podSelector: {matchLabels: {app: b}}, policyTypes: [Ingress]}";
    let yaml = format!(
        "{HEAD}steps:\n  - apply:\n      {policy}\n    expect:\n      - computed: {{}}\n  - expect:\n      - default: allow\n      - computed: {{to: x/b}}\n"
    );
    let l = load(&yaml);
    assert!(
        l.diagnostics.0.is_empty(),
        "{}",
        l.diagnostics.render(false)
    );
    let s = l.scenario.expect("valid");
    let v = verdicts(&s, 0);
    assert_eq!(v["x/a -> x/b 80/tcp"], "X");
    assert_eq!(v["y/a -> x/b 80/tcp"], "X");
    assert_eq!(v["x/b -> x/a 80/tcp"], ".");
    assert_eq!(v["x/b -> x/b 80/tcp"], ".", "loopback");
    assert!(s.steps[0].expected.cells.iter().all(|(k, e)| e.origin.kind
        == if k.is_loopback() {
            "loopback"
        } else {
            "computed"
        }));
    assert_eq!(verdicts(&s, 1)["x/a -> x/b 80/tcp"], "X");
    // Declared `allow` into x/b contradicts the specification: one warning for the step.
    let yaml =
        format!("{HEAD}steps:\n  - apply:\n      {policy}\n    expect:\n      - default: allow\n");
    let l = load(&yaml);
    assert!(l.scenario.is_some());
    let d: Vec<&crate::diag::Diagnostic> = l.diagnostics.0.iter().collect();
    assert_eq!(d.len(), 1, "{}", l.diagnostics.render(false));
    assert_eq!(d[0].code, Code::ContradictsSpec);
    assert!(
        d[0].message
            .contains("`x/a -> x/b 80/tcp`: expected allow (default at line"),
        "{}",
        d[0].message
    );
    assert!(
        d[0].message.contains("isolated by x/deny-b"),
        "{}",
        d[0].message
    );
}

#[test]
fn computed_cells_the_specification_leaves_open_must_be_stated() {
    let yaml = format!(
        "{HEAD}probes:\n  - {{from: x/a, to: x/b, via: service}}\nsteps:\n  - apply:\n      - inline:\n          apiVersion: networking.k8s.io/v1\n          kind: NetworkPolicy\n          metadata: {{name: p, namespace: x}}\n          spec: {{podSelector: {{}}, policyTypes: [Egress], egress: [{{to: [{{ipBlock: {{cidr: 10.0.0.0/8}}}}]}}]}}\n    expect:\n      - computed: {{}}\n"
    );
    let l = load(&yaml);
    let d: Vec<&crate::diag::Diagnostic> = l.diagnostics.0.iter().collect();
    assert_eq!(d.len(), 1, "{}", l.diagnostics.render(false));
    assert_eq!(d[0].code, Code::NoExpectation);
    assert!(
        d[0].message.contains("does not decide 1 cell(s)"),
        "{}",
        d[0].message
    );
    assert!(
        d[0].message.contains("Service translation"),
        "{}",
        d[0].message
    );
    // Stating it explicitly after the computed entry settles it.
    let fixed = yaml.replace(
        "      - computed: {}\n",
        "      - computed: {}\n      - block: {from: x/a, to: x/b}\n",
    );
    assert!(load(&fixed).scenario.is_some());
}
