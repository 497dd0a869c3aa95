//! The engine's fixtures under fixtures/engine/: each validates without a diagnostic, and every
//! expected cell of every step is the one written here (most of them computed by the engine).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use netreach_core::explain::{Query, answer, render};
use netreach_core::model::Scenario;
use netreach_core::scenario::{self, MemReader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(name: &str) -> Scenario {
    // Relative (tests run in harness/core), so explanations name the file the same everywhere.
    let path = format!("../../fixtures/engine/{name}");
    let l = scenario::load(Path::new(&path));
    assert!(
        l.diagnostics.0.is_empty(),
        "{name}: {}",
        l.diagnostics.render(false)
    );
    l.scenario.expect("valid")
}

/// `step N: from -> to port: verdict (origin)`, one line per expected cell.
fn cells(s: &Scenario) -> String {
    let mut out = String::new();
    for st in &s.steps {
        for (c, e) in &st.expected.cells {
            let _ = writeln!(
                out,
                "step {}: {c}: {} ({})",
                st.index,
                e.verdict.as_str(),
                e.origin.kind
            );
        }
    }
    out
}

fn lines(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn egress_to_zero_prefix_is_decided_before_deployment() {
    let s = load("egress-zero.yaml");
    assert_eq!(
        cells(&s),
        lines(
            "
            step 1: app/client -> app/client 80/tcp: allow (loopback)
            step 1: app/client -> app/server 53/udp: block (computed)
            step 1: app/client -> app/server 80/tcp: block (computed)
            step 1: app/client -> other/peer 80/tcp: allow (computed)
            step 1: app/client -> ext:outside 443/tcp: allow (computed)
            step 1: app/server -> app/client 80/tcp: allow (computed)
            step 1: app/server -> app/server 53/udp: allow (loopback)
            step 1: app/server -> app/server 80/tcp: allow (loopback)
            step 1: app/server -> other/peer 80/tcp: allow (computed)
            step 1: app/server -> ext:outside 443/tcp: allow (computed)
            step 1: other/peer -> app/client 80/tcp: allow (computed)
            step 1: other/peer -> app/server 53/udp: allow (computed)
            step 1: other/peer -> app/server 80/tcp: allow (computed)
            step 1: other/peer -> other/peer 80/tcp: allow (loopback)
            step 1: other/peer -> ext:outside 443/tcp: allow (computed)
            step 2: app/client -> app/client 80/tcp: allow (loopback)
            step 2: app/client -> app/server 53/udp: block (computed)
            step 2: app/client -> app/server 80/tcp: block (computed)
            step 2: app/client -> other/peer 80/tcp: allow (computed)
            step 2: app/client -> ext:outside 443/tcp: allow (computed)
            step 2: app/server -> app/client 80/tcp: allow (computed)
            step 2: app/server -> app/server 53/udp: allow (loopback)
            step 2: app/server -> app/server 80/tcp: allow (loopback)
            step 2: app/server -> other/peer 80/tcp: allow (computed)
            step 2: app/server -> ext:outside 443/tcp: allow (computed)
            step 2: other/peer -> app/client 80/tcp: allow (computed)
            step 2: other/peer -> app/server 53/udp: block (computed)
            step 2: other/peer -> app/server 80/tcp: allow (computed)
            step 2: other/peer -> other/peer 80/tcp: allow (loopback)
            step 2: other/peer -> ext:outside 443/tcp: allow (computed)
            "
        )
    );
}

#[test]
fn a_declared_pod_cidr_decides_literal_blocks() {
    let s = load("pod-cidr.yaml");
    assert_eq!(
        cells(&s),
        lines(
            "
            step 1: app/client -> app/db 5432/tcp: block (computed)
            step 1: app/client -> app/server 80/tcp: allow (computed)
            step 1: app/client -> ext:outside 443/tcp: allow (computed)
            step 1: app/db -> app/db 5432/tcp: allow (loopback)
            step 1: app/db -> app/server 80/tcp: allow (computed)
            step 1: app/server -> app/db 5432/tcp: block (computed)
            step 1: app/server -> app/server 80/tcp: allow (loopback)
            step 2: app/client -> app/db 5432/tcp: block (computed)
            step 2: app/client -> app/server 80/tcp: block (computed)
            step 2: app/client -> ext:outside 443/tcp: allow (allow)
            step 2: app/db -> app/db 5432/tcp: allow (loopback)
            step 2: app/db -> app/server 80/tcp: allow (computed)
            step 2: app/server -> app/db 5432/tcp: block (computed)
            step 2: app/server -> app/server 80/tcp: allow (loopback)
            "
        )
    );
    // What `netreach explain` prints for a cell the declaration decides.
    let e = answer(
        &s,
        &Query {
            from: "app/client".into(),
            to: "app/server".into(),
            port: None,
            via: None,
            step: Some(1),
        },
    )
    .expect("answerable");
    assert_eq!(
        render(&e),
        "step 1 \"server from 10.0.0.0/8, db from 192.168.0.0/16\": app/client -> app/server 80/tcp: ALLOW
  egress of app/client: not isolated (no policy selects it for egress)
  ingress of app/server: allowed by app/server-ingress ingress rule 1
    app/server-ingress ingress rule 1 (../../fixtures/engine/pod-cidr.yaml:31): peer 1 (ipBlock 10.0.0.0/8), any port
  => allowed: both the source's egress and the destination's ingress admit it
  scenario expects: allow (computed at line 40) — agrees

"
    );
    let e = answer(
        &s,
        &Query {
            from: "app/client".into(),
            to: "ext:outside".into(),
            port: None,
            via: None,
            step: Some(2),
        },
    )
    .expect("answerable");
    let text = render(&e);
    assert!(
        text.contains("UNSPECIFIED")
            && text.contains(
                "whether ext:outside is in ipBlock 0.0.0.0/0 except 10.244.0.0/16 depends on addresses not known yet"
            ),
        "{text}"
    );
}

#[test]
fn without_the_pod_cidr_the_same_scenario_leaves_the_blocks_open() {
    let path = root().join("fixtures/engine/pod-cidr.yaml");
    let text = std::fs::read_to_string(&path).expect("readable");
    let undeclared = text.replace("cluster:\n  podCIDR: 10.244.0.0/16\n", "");
    assert_ne!(text, undeclared);
    let l = scenario::load_str(
        Path::new("pod-cidr.yaml"),
        &undeclared,
        &MemReader::default(),
    );
    let all = l.diagnostics.render(false);
    assert!(
        all.contains("no-expectation")
            && all.contains("app/client -> app/server 80/tcp")
            && all.contains("pod addresses: somewhere in 0.0.0.0/0 (assumed: an IPv4 cluster)"),
        "{all}"
    );
}

#[test]
fn sctp_is_decided_like_tcp_and_udp() {
    let s = load("sctp.yaml");
    assert_eq!(
        cells(&s),
        lines(
            "
            step 1: sig/client -> sig/server 80/tcp: block (default)
            step 1: sig/client -> sig/server 9000/sctp: block (default)
            step 1: sig/client -> sig/server 9001/sctp: allow (allow)
            step 1: sig/client -> sig/server 9002/sctp: block (default)
            step 2: sig/client -> sig/server 80/tcp: block (block)
            step 2: sig/client -> sig/server 9000/sctp: allow (table)
            step 2: sig/client -> sig/server 9001/sctp: block (table)
            step 2: sig/client -> sig/server 9002/sctp: allow (allow)
            step 3: sig/client -> sig/server 80/tcp: block (computed)
            step 3: sig/client -> sig/server 9000/sctp: allow (computed)
            step 3: sig/client -> sig/server 9001/sctp: block (computed)
            step 3: sig/client -> sig/server 9002/sctp: allow (computed)
            "
        )
    );
    // The hand-written SCTP steps are checked against the engine: a wrong one warns.
    let path = root().join("fixtures/engine/sctp.yaml");
    let text = std::fs::read_to_string(&path).expect("readable");
    let wrong = text.replace(
        "      - allow: {from: sig/client, to: sig/server, port: 9001/sctp}",
        "      - allow: {from: sig/client, to: sig/server, port: 9000/sctp}",
    );
    assert_ne!(text, wrong);
    let l = scenario::load_str(Path::new("sctp.yaml"), &wrong, &MemReader::default());
    let all = l.diagnostics.render(false);
    assert!(
        all.contains("sig/client -> sig/server 9000/sctp") && all.contains("contradict"),
        "{all}"
    );
}
