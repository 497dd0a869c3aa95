//! The binary's exit codes where the command line is wrong (no cluster is contacted).

use std::path::Path;
use std::process::Command;

fn netreach(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("the netreach binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    assert!(err.contains("13 valid, 0 invalid"), "{err}");
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
