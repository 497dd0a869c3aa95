//! Unit tests of the lint rules, each against small scenarios (`scenario`), and of the report.

mod isolation;
mod peers;
mod report;

use std::fmt::Write as _;
use std::path::Path;

use super::*;
use crate::scenario::{MemReader, load_str};

/// Namespace x (pods a {app: web} serving `http` 8080/tcp, b {app: db} serving 5432/tcp),
/// namespace kube-system (existing), and one step per policy list, each `computed`.
fn scenario(extra_probes: &str, steps: &[&str]) -> Scenario {
    let mut yaml = String::from(
        "version: 1
namespaces:
  - {name: x, labels: {team: x}}
  - {name: kube-system, existing: true}
pods:
  - {name: a, namespace: x, labels: {app: web}, ports: [{port: 8080, name: http}]}
  - {name: b, namespace: x, labels: {app: db}, ports: [5432/tcp]}
probes:
  - {from: \"*\", to: \"*\"}
",
    );
    yaml.push_str(extra_probes);
    yaml.push_str("steps:\n");
    for (i, st) in steps.iter().enumerate() {
        let _ = writeln!(yaml, "  - name: s{}", i + 1);
        if !st.trim().is_empty() {
            for l in st.lines() {
                let _ = writeln!(yaml, "    {l}");
            }
        }
        yaml.push_str("    expect: [{default: allow}, {computed: {}}]\n");
    }
    let l = load_str(Path::new("t/lint.yaml"), &yaml, &MemReader::default());
    l.scenario
        .unwrap_or_else(|| panic!("{}\n{yaml}", l.diagnostics.render(false)))
}

fn policy(name: &str, spec: &str) -> String {
    format!(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: {name}, namespace: x}}
    spec: {spec}
"
    )
}

fn apply(policies: &[String]) -> String {
    let mut s = String::from("apply:\n");
    for p in policies {
        for l in p.lines() {
            let _ = writeln!(s, "  {l}");
        }
    }
    s
}

/// One step applying `policies` (`(name, spec)`).
fn one_step(probes: &str, policies: &[(&str, &str)]) -> Vec<Finding> {
    let ps: Vec<String> = policies.iter().map(|(n, s)| policy(n, s)).collect();
    lint(&scenario(probes, &[&apply(&ps)]))
}

fn rules(f: &[Finding]) -> Vec<(&'static str, &str)> {
    f.iter()
        .map(|f| (f.rule.name(), f.policy.as_str()))
        .collect()
}

/// The findings of `rule` only.
fn only(f: &[Finding], rule: LintRule) -> Vec<Finding> {
    f.iter().filter(|f| f.rule == rule).cloned().collect()
}

const DENY_ALL: &str = "{podSelector: {}, policyTypes: [Ingress, Egress]}";

#[test]
fn names_round_trip() {
    for r in LintRule::ALL {
        assert_eq!(LintRule::from_name(r.name()), Some(r));
        assert_eq!(LintRule::from_name(&r.to_string()), Some(r));
        assert_eq!(
            serde_json::to_value(r).expect("json"),
            serde_json::json!(r.name())
        );
        assert_eq!(LintRule::renamed(r.name()), None);
    }
    assert_eq!(LintRule::from_name("nope"), None);
    assert_eq!(LintRule::from_name("allow-all-rule"), None);
    assert!(LintRule::renamed("lint::allow-all-rule").is_some());
}

#[test]
fn findings_merge_across_steps_and_name_them() {
    // Step 1: a selector that selects nothing. Step 2: still (relabel elsewhere). Step 3: b
    // gets the label; step 4: loses it again.
    let p = policy(
        "typo",
        "{podSelector: {matchLabels: {app: dbb}}, ingress: [{from: [{podSelector: {}}]}]}",
    );
    let deny = policy("deny", DENY_ALL);
    let s = scenario(
        "",
        &[
            &apply(&[deny, p]),
            "relabel: [{pod: x/a, labels: {v: '2'}}]",
            "relabel: [{pod: x/b, labels: {app: dbb}}]",
            "relabel: [{pod: x/b, labels: {app: db}}]",
        ],
    );
    let f = lint(&s);
    assert_eq!(rules(&f), [("selects-nothing", "x/typo")], "{f:#?}");
    let idx: Vec<usize> = f[0].steps.iter().map(|s| s.index).collect();
    assert_eq!(idx, [1, 2, 4]);
    assert_eq!(steps_text(&f[0].steps), "steps 1-2, 4");
    assert_eq!(f[0].origin, format!("{}:{}", f[0].file, f[0].line));
    assert_eq!(f[0].file, "t/lint.yaml");
    assert!(f[0].line > 0);
    assert!(f[0].help.contains("x/b {app=db}"), "{}", f[0].help);
    // A similar key that pods do carry is named.
    let f = one_step(
        "",
        &[
            ("deny", DENY_ALL),
            (
                "k",
                "{podSelector: {matchLabels: {App: web}}, ingress: [{from: [{podSelector: {}}]}]}",
            ),
        ],
    );
    assert_eq!(rules(&f), [("selects-nothing", "x/k")]);
    assert!(
        f[0].help
            .contains("no pod carries label `App` (pod x/a has app=web)"),
        "{}",
        f[0].help
    );
}

/// The rules run over a `World` alone (an audit has no scenario): positions come from the
/// policies, a rule line of 0 falls back to the policy's origin.
#[test]
fn lint_world_needs_no_scenario() {
    let s = scenario(
        "",
        &[&apply(&[policy(
            "open",
            "{podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 443}]}]}",
        )])],
    );
    let mut w = World::per_step(&s).remove(0);
    let f = lint_world(&w, &Hints::default());
    let rule_line = |f: &[WorldFinding]| -> Vec<(LintRule, String)> {
        f.iter().map(|f| (f.rule, f.origin.clone())).collect()
    };
    let got = rule_line(&f);
    assert!(
        got.iter().any(|(r, o)| *r == LintRule::EgressToAnywhere
            && o.starts_with("t/lint.yaml:")
            && o != &w.policies.values().next().expect("policy").origin),
        "{got:?}"
    );
    for np in w.policies.values_mut() {
        np.origin = "cluster:x/open".into();
        for r in np.egress.iter_mut().flatten() {
            r.line = 0;
        }
    }
    let f = lint_world(&w, &Hints::default());
    assert!(
        rule_line(&f)
            .iter()
            .any(|(r, o)| *r == LintRule::EgressToAnywhere && o == "cluster:x/open"),
        "{f:?}"
    );
}
