//! The nightly CI recipe (docs/examples/netreach-nightly.yml) does what docs/testing.md says:
//! it keeps last night's report as the baseline, runs with `--baseline`, uploads the reports,
//! and saves tonight's report as the next baseline even when the run failed — with flags that
//! `netreach run` really has.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn recipe() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/netreach-nightly.yml");
    let text = std::fs::read_to_string(&p).expect("the recipe exists");
    serde_saphyr::from_str(&text).expect("the recipe is YAML")
}

fn steps(v: &Value) -> Vec<Value> {
    v["jobs"]["reachability"]["steps"]
        .as_array()
        .cloned()
        .expect("a job with steps")
}

fn step<'a>(steps: &'a [Value], name_has: &str) -> (usize, &'a Value) {
    steps
        .iter()
        .enumerate()
        .find(|(_, s)| s["name"].as_str().is_some_and(|n| n.contains(name_has)))
        .unwrap_or_else(|| panic!("a step named like `{name_has}`"))
}

#[test]
fn the_nightly_recipe_keeps_the_last_report_as_the_next_baseline() {
    let v = recipe();
    assert!(
        v["on"]["schedule"][0]["cron"].is_string(),
        "it runs nightly"
    );
    let s = steps(&v);
    let (restore, r) = step(&s, "Restore last night");
    assert_eq!(r["with"]["path"], "baseline");
    assert!(
        r["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/cache/restore"))
    );
    let (run, r) = step(&s, "Run the scenarios");
    let cmd = r["run"].as_str().expect("a run command");
    for flag in [
        "--baseline baseline/report.json",
        "--json reports/report.json",
        "--junit",
        "--html",
    ] {
        assert!(cmd.contains(flag), "the run passes {flag}: {cmd}");
    }
    let (keep, k) = step(&s, "Keep tonight's report");
    assert_eq!(
        k["if"], "always()",
        "the baseline is kept even when the run fails"
    );
    assert!(
        k["run"]
            .as_str()
            .is_some_and(|c| c.contains("cp reports/report.json baseline/report.json"))
    );
    let (save, sv) = step(&s, "Save the baseline");
    assert_eq!(sv["if"], "always()");
    assert_eq!(sv["with"]["path"], "baseline");
    let (upload, u) = step(&s, "Upload the reports");
    assert_eq!(u["if"], "always()");
    assert!(
        restore < run && run < keep && keep < save && run < upload,
        "steps in order"
    );
}

/// Every flag the recipe passes to `netreach run` exists.
#[test]
fn the_recipe_uses_flags_netreach_has() {
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["run", "--help"])
        .output()
        .expect("netreach runs");
    let help = String::from_utf8_lossy(&out.stdout);
    let v = recipe();
    let s = steps(&v);
    let (_, r) = step(&s, "Run the scenarios");
    let cmd = r["run"].as_str().expect("a run command");
    for word in cmd.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(help.contains(word), "`netreach run` has no {word}:\n{help}");
    }
}
