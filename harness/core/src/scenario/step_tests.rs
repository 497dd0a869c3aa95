//! Steps with their own `probes:`: validation of the step's probes, where problems are reported,
//! and which cells each step is judged on.

use std::path::Path;

use super::{MemReader, load_str};
use crate::diag::Code;

const HEAD: &str = "version: 1
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, ports: [80/tcp]}
  - {name: b, namespace: x, ports: [80/tcp]}
";

#[test]
fn an_unknown_pod_in_a_steps_probes_is_an_error_at_its_line_and_column() {
    let text = format!(
        "{HEAD}steps:
  - expect: [{{default: allow}}]
  - probes:
      - {{from: x/a, to: x/zz}}
    expect: [{{default: allow}}]
"
    );
    let l = load_str(Path::new("scn/t.yaml"), &text, &MemReader::default());
    assert!(l.scenario.is_none());
    let d: Vec<(Code, usize, usize, &str)> = l
        .diagnostics
        .0
        .iter()
        .map(|d| (d.code, d.pos.line, d.pos.col, d.message.as_str()))
        .collect();
    assert_eq!(
        d,
        [(Code::UnknownPod, 9, 25, "pod `x/zz` is not declared")],
        "{}",
        l.diagnostics.render(false)
    );
}

#[test]
fn each_step_is_judged_on_its_own_probes_or_the_scenarios() {
    let text = format!(
        "{HEAD}steps:
  - expect: [{{default: allow}}]
  - probes: [{{from: x/a, to: x/b}}]
    expect: [{{default: block}}]
"
    );
    let l = load_str(Path::new("scn/t.yaml"), &text, &MemReader::default());
    let s = l
        .scenario
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
    let keys = |i: usize| -> Vec<String> {
        s.steps[i]
            .expected
            .cells
            .keys()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(keys(0).len(), 4);
    assert_eq!(keys(1), ["x/a -> x/b 80/tcp"]);
    // A rule about a cell the step does not probe matches nothing there.
    let text = format!(
        "{HEAD}steps:
  - probes: [{{from: x/a, to: x/b}}]
    expect: [{{default: block}}, {{allow: {{from: x/b}}}}]
"
    );
    let l = load_str(Path::new("scn/t.yaml"), &text, &MemReader::default());
    let codes: Vec<Code> = l.diagnostics.0.iter().map(|d| d.code).collect();
    assert!(codes.contains(&Code::MatchesNothing), "{codes:?}");
}

#[test]
fn a_step_that_probes_nothing_is_named() {
    let text = format!(
        "{HEAD}steps:
  - probes: [{{from: x/a, to: x/b, port: 80/tcp}}]
    expect: [{{default: allow}}]
  - probes: []
    expect: [{{default: allow}}]
"
    );
    let l = load_str(Path::new("scn/t.yaml"), &text, &MemReader::default());
    let msgs: Vec<&str> = l.diagnostics.0.iter().map(|d| d.message.as_str()).collect();
    assert!(msgs.contains(&"step 2 probes nothing"), "{msgs:?}");
}
