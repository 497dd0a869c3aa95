//! The binary's exit codes where the command line is wrong (no cluster is contacted).

use std::path::Path;
use std::process::Command;

/// Exit code and stderr.
fn netreach(args: &[&str]) -> (i32, String) {
    let (code, _, err) = netreach_stdout(args);
    (code, err)
}

#[test]
fn a_path_that_does_not_exist_is_a_usage_error() {
    for cmd in ["validate", "lint"] {
        let (code, err) = netreach(&[cmd, "/nonexistent/scenarios"]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("/nonexistent/scenarios"), "{cmd}: {err}");
    }
    // `run` checks the paths before it needs a cluster.
    let (code, err) = netreach(&["run", "--context", "none", "/nonexistent/scenarios"]);
    assert_eq!(code, 2, "run: {err}");
}

#[test]
fn a_scenario_that_adds_or_removes_in_a_given_namespace_is_refused_before_any_cluster() {
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/pods-come-and-go.yaml");
    let scenario = scenario.to_str().expect("utf-8 path");
    for (given, what) in [
        ("late=team-late", "step 2 adds namespace `late`"),
        ("shop=team-shop", "step 2 removes a pod in namespace `shop`"),
    ] {
        let (code, err) = netreach(&[
            "run",
            "--context",
            "no-such-context",
            "--namespace",
            given,
            scenario,
        ]);
        assert_eq!(code, 2, "{given}: {err}");
        assert!(err.contains(what), "{given}: {err}");
        assert!(err.contains("never relabels, creates or deletes"), "{err}");
    }
}

#[test]
fn allow_path_must_name_a_folder() {
    for cmd in ["validate", "lint"] {
        let (code, err) = netreach(&[cmd, "--allow-path", "/nonexistent", "scenarios"]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("--allow-path /nonexistent"), "{cmd}: {err}");
    }
    let (code, err) = netreach(&["validate", "--allow-path", "README.md", "scenarios"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a folder"), "{err}");
}

#[test]
fn the_shipped_scenarios_validate() {
    let (code, err) = netreach(&["validate", "--allow-path", "docs", "scenarios"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("15 valid, 0 invalid"), "{err}");
    assert!(err.contains("9 other YAML file(s) skipped"), "{err}");
    // `--verbose` says which, and why.
    let (code, err) = netreach(&["validate", "--verbose", "scenarios"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "skipped scenarios/policies/three-tier.yaml: a Kubernetes manifest (`NetworkPolicy`)"
        ),
        "{err}"
    );
}

#[test]
fn validate_summarises_the_specification_check_in_text_and_json() {
    let f = "fixtures/validate/spec-summary.yaml";
    let (code, err) = netreach(&["validate", f]);
    assert_eq!(code, 0, "warnings only: {err}");
    assert!(
        err.contains(
            "validate/spec-summary: 2 step(s), 20 cell(s) checked against the specification; 2 undecided (2: "
        ),
        "{err}"
    );
    assert!(err.contains("; 8 contradiction(s)\n"), "{err}");
    assert!(
        err.contains("  step 1: app/a -> app/b 80/tcp: expected allow (default at line 35), the specification says block: "),
        "{err}"
    );
    assert!(
        err.contains("  … and 3 more contradiction(s) (`--all` lists every one)"),
        "{err}"
    );
    let (code, err) = netreach(&["validate", "--all", f]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("more contradiction(s)"), "{err}");
    assert_eq!(err.matches("\n  step ").count(), 8, "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["validate", "--json", f])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("the netreach binary runs");
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["valid"], 1);
    assert_eq!(doc["invalid"], 0);
    let s = &doc["scenarios"][0];
    assert_eq!(s["path"], f);
    assert_eq!(s["valid"], true);
    assert_eq!(s["warnings"], 2, "a contradicts-spec warning per step");
    assert_eq!(s["diagnostics"][0]["code"], "contradicts-spec");
    assert_eq!(s["diagnostics"][0]["line"], 35);
    let spec = &s["spec"];
    assert_eq!(spec["scenario"], "validate/spec-summary");
    assert_eq!(spec["cells"], 20);
    assert_eq!(spec["undecided"], 2);
    assert_eq!(spec["contradictions"], 8);
    let steps = spec["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    // Nothing truncated: every contradiction is there, with what the engine says.
    assert_eq!(steps[1]["contradictions"].as_array().map(Vec::len), Some(6));
    let c = &steps[1]["contradictions"][5];
    assert_eq!(c["cell"]["from"], "app/c");
    assert_eq!(c["expected"], "allow");
    assert_eq!(c["spec"], "block");
    assert!(
        c["why"].as_str().unwrap_or("").contains("app/deny-ingress"),
        "{c}"
    );
    let u = &steps[0]["undecided"][0];
    assert_eq!(u["cell"]["to"], "ext:outside");
    assert!(
        u["reasons"][0]
            .as_str()
            .unwrap_or("")
            .contains("10.244.0.0/16"),
        "{u}"
    );
    assert_eq!(u["expected"], "allow");
}

fn netreach_stdout(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("the netreach binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `explain` without a scenario: bare manifests (policies, workloads, namespaces) answer both a
/// connection and `--target`, with rules pointing at the manifests' own lines.
#[test]
fn explain_reads_bare_manifests_and_lists_what_selects_a_pod() {
    let manifests = [
        "--policies",
        "fixtures/audit/policies.yaml",
        "--pods",
        "fixtures/audit/workloads.yaml",
        "--pods",
        "fixtures/audit/namespaces.yaml",
    ];
    let with = |extra: &[&str]| {
        let mut a = vec!["explain"];
        a.extend(manifests);
        a.extend(extra);
        netreach_stdout(&a)
    };
    let (code, out, err) = with(&["--target", "data/database"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "step 1 \"the manifests' policies\": data/database {app=database}
  ingress: isolated by 2 policies; a connection in is allowed only if one of these rules admits it:
    data/db-from-api (fixtures/audit/policies.yaml:13), podSelector {app=database}
      rule 1 (fixtures/audit/policies.yaml:18): from podSelector {app=api} AND namespaceSelector {kubernetes.io/metadata.name=web}; ports 5432/tcp
    data/default-deny (fixtures/audit/policies.yaml:6), podSelector {}
      no ingress rules: admits nothing
  egress: not isolated: no policy selects it for egress, so every connection out is allowed

"
    );
    let (code, out, err) = with(&["--from", "web/api", "--to", "data/database"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "step 1 \"the manifests' policies\": web/api -> data/database 5432/tcp: ALLOW\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("data/db-from-api ingress rule 1 (fixtures/audit/policies.yaml:18)"),
        "{out}"
    );
    let (code, out, _) = with(&["--target", "data/database", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v[0]["ingress"]["policies"][0]["policy"], "data/db-from-api");
    assert_eq!(v[0]["egress"]["policies"], serde_json::json!([]));
    // Unknown pods and missing pods are usage errors that say what would be right.
    let (code, _, err) = with(&["--target", "data/nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("--target data/nope: no such pod"), "{err}");
    let (code, _, err) = netreach_stdout(&[
        "explain",
        "--policies",
        "fixtures/audit/policies.yaml",
        "--target",
        "data/database",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("give them with --pods"), "{err}");
}
