//! A folder's name never changes what a scenario means: a wrong expectation in a folder named
//! `upstream` (where the transcribed e2e cases live) fails like anywhere else.

use netreach_core::cluster::fake::FakeCluster;
use netreach_core::names::Naming;
use netreach_core::report::ScenarioStatus;
use netreach_core::run::{RunOptions, run_scenario};
use netreach_core::scenario;

const WRONG: &str = "version: 1
name: wrong on purpose
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, labels: {pod: a}, ports: [{port: 80}]}
  - {name: b, namespace: x, labels: {pod: b}, ports: [{port: 80}]}
steps:
  - name: no policies, said to block
    expect:
      - default: block
";

#[test]
fn a_wrong_expectation_in_a_folder_named_upstream_fails() {
    let dir = std::env::temp_dir().join(format!("netreach-folder-{}", std::process::id()));
    let file = dir.join("upstream/wrong.yaml");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, WRONG).expect("write");
    let loaded = scenario::load(&file);
    let _ = std::fs::remove_dir_all(&dir);
    let s = loaded
        .scenario
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(false)));
    assert_eq!(s.group, "upstream");
    let mut cluster = FakeCluster::following_spec(&s);
    let r = run_scenario(
        &s,
        &mut cluster,
        &RunOptions::fast(Naming::PerRun {
            run_id: "f1".into(),
        }),
        &mut |_| {},
    );
    assert_eq!(r.status, ScenarioStatus::Failed);
    // a -> b and b -> a on 80 (loopback cells follow the default rule unless stated).
    assert!(r.counts.fail >= 2, "{:?}", r.counts);
}
