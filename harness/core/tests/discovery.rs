//! Discovery tells scenarios by their content, never by the folder they are in
//! (`fixtures/discovery/`), and finds exactly the shipped scenarios under `scenarios/`.

use std::path::{Path, PathBuf};

use netreach_core::scenario::{self, Discovery, Skipped};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn scenarios_are_found_by_content_and_everything_else_is_skipped_with_why() {
    let dir = root().join("fixtures/discovery");
    let found = scenario::discover_all(std::slice::from_ref(&dir)).expect("readable");
    let rel = |p: &PathBuf| {
        p.strip_prefix(&dir)
            .expect("under the fixture")
            .display()
            .to_string()
    };
    let scenarios: Vec<String> = found.scenarios.iter().map(rel).collect();
    assert_eq!(
        scenarios,
        [
            "broken.yaml",
            "policies/in-a-policies-folder.yaml",
            "scenarios/web.yaml"
        ]
    );
    let skipped: Vec<(String, Skipped)> = found
        .skipped
        .iter()
        .map(|(p, why)| (rel(p), why.clone()))
        .collect();
    let manifest = || Skipped::Manifest(Some("NetworkPolicy".into()));
    assert_eq!(
        skipped,
        [
            ("compose.yml".to_owned(), Skipped::NotAScenario),
            ("empty.yaml".to_owned(), Skipped::NotAScenario),
            ("policies/allow.yaml".to_owned(), manifest()),
            ("scenarios/k8s/deny.yaml".to_owned(), manifest()),
        ]
    );
    // The two scenarios load, each with its policy file (neither in a folder named `policies`
    // nor found as a scenario).
    for s in &found.scenarios[1..] {
        let l = scenario::load(s);
        assert!(l.scenario.is_some(), "{}", l.diagnostics.render(false));
    }
    // A file named explicitly is kept whatever it holds: loading says what is wrong with it.
    let policy = dir.join("policies/allow.yaml");
    assert_eq!(
        scenario::discover_all(std::slice::from_ref(&policy)).expect("exists"),
        Discovery {
            scenarios: vec![policy],
            skipped: Vec::new()
        }
    );
}

#[test]
fn the_shipped_scenarios_are_found_and_their_policy_files_are_not() {
    let dir = root().join("scenarios");
    let found = scenario::discover_all(std::slice::from_ref(&dir)).expect("readable");
    let names: Vec<String> = found
        .scenarios
        .iter()
        .map(|p| {
            p.strip_prefix(&dir)
                .expect("under scenarios/")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "cross-namespace.yaml",
            "default-deny.yaml",
            "dns-egress.yaml",
            "egress-external.yaml",
            "named-ports.yaml",
            "node-paths.yaml",
            "pods-come-and-go.yaml",
            "policy-update-delete.yaml",
            "quarantine.yaml",
            "three-tier.yaml",
            "upstream/netpol-tcp-80-81.yaml",
            "upstream/netpol-tcp-80.yaml",
            "upstream/netpol-tcp-81.yaml",
            "upstream/netpol-udp-80.yaml",
            "upstream/netpol-udp-81.yaml",
        ]
    );
    assert_eq!(found.skipped.len(), 9, "{:?}", found.skipped);
    assert!(
        found
            .skipped
            .iter()
            .all(|(p, why)| p.starts_with(dir.join("policies"))
                && matches!(why, Skipped::Manifest(Some(k)) if k == "NetworkPolicy")),
        "{:?}",
        found.skipped
    );
}
