//! netreach's JUnit read by an independent JUnit reader: Python's `junitparser` (PyPI), as a CI
//! dashboard would read it. Reports come from the core's runner against the fake cluster: the
//! shipped three-tier scenario as the specification says (passes), and the same scenario with
//! one expectation flipped (a step with one mismatch).
//!
//! - `NETREACH_JUNIT_READER=1` (`cargo xtask test` sets it, after `pip install junitparser`):
//!   runs, and FAILS when python3 or junitparser is missing.
//! - Unset: ignored with that reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use netreach::cluster::fake::FakeCluster;
use netreach::names::Naming;
use netreach::report::junit::{self, JunitInfo};
use netreach::run::{RunOptions, run_scenario};
use netreach::scenario::{self, MemReader, load_str};

const ENV: &str = "NETREACH_JUNIT_READER";

fn main() {
    let args = Arguments::from_args();
    let trials = vec![Trial::ignorable_test("junitparser_reads_it", read_back).with_kind("junit")];
    libtest_mimic::run(&args, trials).exit();
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const READER: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    cases = []
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        msg = [r.message for r in case.result]
        cases.append({"classname": case.classname, "name": case.name, "results": kinds, "messages": msg})
    props = {p.name: p.value for p in suite.properties()}
    out.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                "errors": suite.errors, "skipped": suite.skipped, "cases": cases, "props": props})
print(json.dumps(out))
"#;

fn read_back() -> Result<Completion, Failed> {
    if std::env::var(ENV).ok().as_deref() != Some("1") {
        return Ok(Completion::ignored_with(format!(
            "{ENV} is not 1; set it to read the JUnit with Python's junitparser (pip install junitparser)"
        )));
    }
    let path = root().join("scenarios/three-tier.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let good = scenario::load(&path)
        .scenario
        .ok_or("three-tier is invalid")?;
    // The same scenario with its first `default: allow` turned around: step 1 then expects
    // blocked where the specification (and the fake cluster) allows.
    let broken_text = text.replacen("default: allow", "default: block", 1);
    let reader = MemReader(
        std::fs::read_dir(root().join("scenarios/policies"))
            .map_err(|e| e.to_string())?
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let t = std::fs::read_to_string(&p).ok()?;
                Some((PathBuf::from("scenarios/policies").join(p.file_name()?), t))
            })
            .collect(),
    );
    let l = load_str(
        Path::new("scenarios/three-tier-broken.yaml"),
        &broken_text,
        &reader,
    );
    let broken = l
        .scenario
        .ok_or_else(|| format!("broken variant invalid: {}", l.diagnostics.render(false)))?;
    let run = |s: &netreach::model::Scenario| {
        let mut c = FakeCluster::following_spec(s);
        run_scenario(s, &mut c, &RunOptions::fast(Naming::Verbatim), &mut |_| {})
    };
    let reports = vec![run(&good), run(&broken)];
    let xml = junit::render_with(
        &reports,
        &JunitInfo {
            context: Some("kind-netreach".into()),
            ..JunitInfo::default()
        },
    );
    let dir = root().join("target/netreach-tests");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("junit-reader.xml");
    std::fs::write(&file, &xml).map_err(|e| e.to_string())?;
    let out = Command::new("python3")
        .args(["-c", READER])
        .arg(&file)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "junitparser could not read the JUnit: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let suites: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let steps = good.steps.len();
    let check = |cond: bool, msg: String| -> Result<(), Failed> {
        if cond { Ok(()) } else { Err(msg.into()) }
    };
    check(
        suites.as_array().map(Vec::len) == Some(2),
        format!("two suites: {suites}"),
    )?;
    let (g, b) = (&suites[0], &suites[1]);
    check(
        g["name"] == "scenarios/three-tier" && g["tests"] == steps && g["failures"] == 0,
        format!("the passing suite: {g}"),
    )?;
    check(
        g["cases"][0]["classname"] == "scenarios/three-tier"
            && g["cases"][0]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("step 1: ")),
        format!("a testcase per step, classname = scenario: {g}"),
    )?;
    check(
        g["props"]["netreach.context"] == "kind-netreach"
            && g["props"]["netreach.probe-timeout-s"].is_string(),
        format!("properties: {}", g["props"]),
    )?;
    check(
        b["failures"] == 1 && b["cases"][0]["results"] == serde_json::json!(["Failure"]),
        format!("the broken suite fails in step 1 only: {b}"),
    )?;
    check(
        b["cases"][0]["messages"][0]
            .as_str()
            .is_some_and(|m| m.contains("cell(s) disagree")),
        format!("the failure says how many cells disagree: {b}"),
    )?;
    Ok(Completion::Completed)
}
