//! The shipped scenarios and the checked-in JSON Schema.

use std::path::{Path, PathBuf};

use netreach_core::model::Verdict;
use netreach_core::scenario;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped() -> Vec<PathBuf> {
    let files = scenario::discover(&[root().join("scenarios")]).expect("scenarios/ is readable");
    assert!(
        files.len() >= 7,
        "expected the shipped scenarios, found {files:?}"
    );
    files
}

#[test]
fn checked_in_schema_is_current() {
    let path = root().join("docs/scenario.schema.json");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == scenario::schema_json(),
        "{} is stale or missing: run `cargo xtask schema` and commit the result",
        path.display()
    );
}

#[test]
fn every_shipped_scenario_is_valid_without_warnings() {
    let mut problems = String::new();
    for f in shipped() {
        let l = scenario::load(&f);
        if !l.diagnostics.0.is_empty() {
            problems.push_str(&l.diagnostics.render(false));
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

#[test]
fn every_shipped_scenario_matches_the_json_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&scenario::schema_json()).expect("the generated schema is JSON");
    let validator =
        jsonschema::validator_for(&schema).expect("the generated schema is a valid JSON Schema");
    let mut problems = Vec::new();
    for f in shipped() {
        let text = std::fs::read_to_string(&f).expect("readable");
        let doc: serde_json::Value =
            serde_saphyr::from_str_with_options(&text, scenario::yaml_options()).expect("YAML");
        for e in validator.iter_errors(&doc) {
            problems.push(format!("{}: {} at {}", f.display(), e, e.instance_path()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    // A sanity check that the schema is not vacuous: unknown fields and wrong types fail it.
    let schema: serde_json::Value = serde_json::from_str(&scenario::schema_json()).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    for bad in [
        r#"{"version": 1, "steps": [], "bogus": 1}"#,
        r#"{"version": "one", "steps": [{"expect": []}]}"#,
        r#"{"version": 1, "steps": [{"expect": [{"default": "maybe"}]}]}"#,
        r#"{"version": 1, "pods": [{"name": "a"}], "steps": [{"expect": []}]}"#,
    ] {
        let doc: serde_json::Value = serde_json::from_str(bad).expect("JSON");
        assert!(!validator.is_valid(&doc), "schema accepted {bad}");
    }
}

#[test]
fn every_shipped_scenario_has_allowed_and_blocked_cells() {
    for f in shipped() {
        let s = scenario::load(&f)
            .scenario
            .unwrap_or_else(|| panic!("{} is invalid", f.display()));
        let verdicts: Vec<Verdict> = s
            .steps
            .iter()
            .flat_map(|st| st.expected.cells.values().map(|e| e.verdict))
            .collect();
        assert!(
            verdicts.contains(&Verdict::Allow),
            "{}: no allowed cell",
            f.display()
        );
        assert!(
            verdicts.contains(&Verdict::Block),
            "{}: no blocked cell",
            f.display()
        );
    }
}

/// The policy engine reproduces every declared expectation of every shipped scenario — the
/// hand-written ones and the upstream e2e suite's tables transcribed under scenarios/upstream/.
/// Addresses are made up the way kind hands them out (pods in 10.244.0.0/16, external endpoints
/// on the Docker network 172.18.0.0/16), so ipBlock cells are decided too; only what the
/// specification leaves to the implementation stays unspecified, and no upstream cell may.
#[test]
fn the_engine_reproduces_every_declared_expectation() {
    use netreach_core::engine::{World, explain};
    let mut problems = Vec::new();
    let (mut decided, mut unspecified) = (0usize, Vec::new());
    for f in shipped() {
        let l = scenario::load(&f);
        let s = l.scenario.expect("valid");
        let mut worlds = World::per_step(&s);
        for w in &mut worlds {
            for (i, p) in s.pods.iter().enumerate() {
                let ip = format!("10.244.{}.{}", i / 200, i % 200 + 2);
                w.pod_ips.insert(p.id.clone(), ip.parse().expect("ip"));
            }
            for (i, x) in s.externals.iter().enumerate() {
                let ip = format!("172.18.0.{}", i + 10);
                w.external_ips
                    .insert(x.name.clone(), ip.parse().expect("ip"));
            }
        }
        for (st, w) in s.steps.iter().zip(&worlds) {
            for (cell, e) in &st.expected.cells {
                let x = explain(w, cell);
                match x.verdict.expectation() {
                    None => unspecified.push(format!("{} step {} {cell}", s.id, st.index)),
                    Some(v) if v == e.verdict => decided += 1,
                    Some(_) => problems.push(format!(
                        "{} step {} `{cell}`: declared {} ({}), engine: {}",
                        f.display(),
                        st.index,
                        e.verdict.as_str(),
                        e.origin,
                        x.short()
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(decided > 5000, "only {decided} cells decided");
    let upstream: Vec<&String> = unspecified
        .iter()
        .filter(|c| c.starts_with("netpol-"))
        .collect();
    assert!(
        upstream.is_empty(),
        "upstream cells the engine left open: {upstream:?}"
    );
    println!("{decided} declared cells reproduced; unspecified: {unspecified:?}");
}
