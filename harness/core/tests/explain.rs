//! `netreach explain` snapshots: each query against fixtures/explain/shop.yaml (or
//! near-miss.yaml) must render exactly as fixtures/explain/<name>.txt. `UPDATE_SNAPSHOTS=1 cargo test --test explain` rewrites them
//! (review the diff).

use std::path::{Path, PathBuf};

use netreach_core::explain::{ExplainError, Query, answer, render, render_target, target};
use netreach_core::model::Via;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario() -> netreach_core::model::Scenario {
    load("shop.yaml")
}

fn load(name: &str) -> netreach_core::model::Scenario {
    // Relative (tests run in harness/core), so the snapshots name the file the same on every
    // checkout.
    let path = format!("../../fixtures/explain/{name}");
    let l = netreach_core::scenario::load(Path::new(&path));
    l.scenario
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)))
}

fn q(from: &str, to: &str, port: Option<&str>, via: Option<Via>, step: Option<usize>) -> Query {
    Query {
        from: from.into(),
        to: to.into(),
        port: port.map(Into::into),
        via,
        step,
    }
}

#[test]
fn snapshots() {
    let shop = scenario();
    let near = load("near-miss.yaml");
    let cases = [
        (
            "web-to-db",
            q("shop/web", "shop/db", Some("5432/tcp"), None, None),
        ),
        (
            "prom-to-db-contradiction",
            q("ops/prom", "shop/db", None, None, Some(2)),
        ),
        (
            "db-to-web-blocked",
            q("shop/db", "shop/web", Some("8080/tcp"), None, Some(2)),
        ),
        (
            "web-to-db-by-name",
            q("shop/web", "shop/db", None, Some(Via::Dns), Some(2)),
        ),
        (
            "web-to-external",
            q("shop/web", "ext:api", None, None, Some(2)),
        ),
        (
            "resolution",
            q("shop/db", "dns:example.org", None, None, Some(2)),
        ),
        ("loopback", q("shop/web", "shop/web", None, None, Some(2))),
        (
            "near-miss-ingress-nginx",
            q("ingress-nginx/controller", "web/site", None, None, None),
        ),
        (
            "near-miss-prom",
            q("ops/prom", "web/site", None, None, None),
        ),
        // `--target`: what selects the pod, per direction and step.
        ("target-db", q("target shop/db", "", None, None, None)),
        (
            "target-web-step-2",
            q("target shop/web", "", None, None, Some(2)),
        ),
    ];
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failed = Vec::new();
    for (name, query) in cases {
        let s = if name.starts_with("near-miss") {
            &near
        } else {
            &shop
        };
        let got = match query.from.strip_prefix("target ") {
            Some(pod) => render_target(&target(s, pod, query.step).expect("a pod")),
            None => render(&answer(s, &query).expect("answerable")),
        };
        let path = root().join(format!("fixtures/explain/{name}.txt"));
        if update {
            std::fs::write(&path, &got).expect("write snapshot");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            failed.push(format!(
                "--- {name} (want {})\n{want}\n--- got\n{got}",
                path.display()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "snapshots differ (UPDATE_SNAPSHOTS=1 rewrites them):\n{}",
        failed.join("\n")
    );
}

#[test]
fn bad_queries_say_what_is_wrong() {
    let s = scenario();
    let e = |query| answer(&s, &query).expect_err("must fail");
    assert!(matches!(
        e(q("shop/nope", "shop/db", None, None, None)),
        ExplainError::UnknownFrom(..)
    ));
    assert!(matches!(
        e(q("shop/web", "nope", None, None, None)),
        ExplainError::UnknownTo(..)
    ));
    assert!(matches!(
        e(q("shop/web", "ext:nope", None, None, None)),
        ExplainError::UnknownTo(..)
    ));
    assert!(matches!(
        e(q("shop/web", "shop/db", Some("80/tcp"), None, None)),
        ExplainError::NotServed { .. }
    ));
    assert!(matches!(
        e(q("shop/web", "shop/db", Some("x/y"), None, None)),
        ExplainError::BadPort(_)
    ));
    assert_eq!(
        e(q("shop/web", "shop/db", None, None, Some(3))),
        ExplainError::BadStep(3, 2)
    );
    assert!(matches!(
        e(q("shop/web", "ext:api", None, Some(Via::Service), None)),
        ExplainError::BadVia(_)
    ));
    let msg = e(q("shop/web", "shop/db", Some("80/tcp"), None, None)).to_string();
    assert_eq!(msg, "shop/db does not serve 80/tcp (it serves 5432/tcp)");
    let t = target(&s, "shop/nope", None).expect_err("no such pod");
    assert!(matches!(t, ExplainError::UnknownTarget(..)), "{t}");
    assert!(t.to_string().contains("declared: "), "{t}");
    assert_eq!(
        target(&s, "shop/db", Some(3)).expect_err("no step 3"),
        ExplainError::BadStep(3, 2)
    );
}
