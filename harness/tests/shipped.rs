//! The shipped scenarios and the checked-in JSON Schema.

use std::path::{Path, PathBuf};

use netreach::model::Verdict;
use netreach::scenario;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
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
