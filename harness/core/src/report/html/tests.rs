//! The HTML report: summary line, data, the page's frame (the graph: `graph_tests.rs`).

use std::collections::BTreeSet;
use std::path::Path;

use super::data::{CellClass, changes, script_json};
use super::*;
use crate::cluster::fake::FakeCluster;
use crate::model::Verdict;
use crate::names::Naming;
use crate::report::{ScenarioReport, testdata};
use crate::run::{RunOptions, run_scenario};
use crate::verdict::{CellResult, Observed};

pub(super) fn load(rel: &str) -> crate::model::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let l = crate::scenario::load(&path);
    l.scenario
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)))
}

/// A scenario run against a cluster that does what the specification says.
pub(super) fn following_spec(rel: &str) -> ScenarioReport {
    let s = load(rel);
    let mut c = FakeCluster::following_spec(&s);
    run_scenario(
        &s,
        &mut c,
        &RunOptions::fast(Naming::PerRun {
            run_id: "t1".into(),
        }),
        &mut |_| {},
    )
}

pub(super) fn three_tier() -> ScenarioReport {
    following_spec("scenarios/three-tier.yaml")
}

/// A cell result judged from scratch, for the class tables.
pub(super) fn cell(expected: Verdict, observed: Observed, flaky: bool) -> CellResult {
    let mut r = testdata::mismatch().steps[0].results[0].clone();
    r.expected.verdict = expected;
    r.observed = observed;
    r.status = crate::verdict::judge(expected, observed);
    r.flaky = flaky;
    r
}

#[test]
fn a_cluster_following_the_specification_passes_three_tier() {
    let r = three_tier();
    assert_eq!(
        r.status,
        ScenarioStatus::Passed,
        "{}",
        crate::report::text::render_scenario(&r)
    );
    assert_eq!(r.steps.len(), 3);
    // 5 sources x 4 served ports by pod IP, and 5 sources to the API's Service.
    assert!(r.steps.iter().all(|s| s.counts.total() == 5 * 4 + 5));
}

#[test]
fn cell_classes() {
    use CellClass as K;
    use Observed as O;
    use Verdict as V;
    let cases = [
        (V::Allow, O::Allowed, false, K::AgreesAllowed),
        (V::Block, O::Blocked, false, K::AgreesBlocked),
        (V::Unresolved, O::DnsFailure, false, K::AgreesBlocked),
        (V::Block, O::Allowed, false, K::Mismatch),
        (V::Allow, O::Blocked, false, K::Mismatch),
        (V::Allow, O::Allowed, true, K::Flaky),
        (V::Allow, O::Blocked, true, K::Flaky),
        (V::Allow, O::Unsupported, false, K::Unsupported),
        (V::Block, O::Error, false, K::Error),
    ];
    for (e, o, f, want) in cases {
        assert_eq!(CellClass::of(&cell(e, o, f)), want, "{e:?} {o:?} flaky={f}");
    }
}

fn with_status(mut r: ScenarioReport, id: &str, fails: &[usize], errors: usize) -> ScenarioReport {
    r.id = id.into();
    r.steps.truncate(1);
    r.steps[0].counts = crate::verdict::Counts {
        pass: 10,
        fail: fails.first().copied().unwrap_or(0),
        unsupported: 0,
        error: errors,
    };
    for (i, &f) in fails.iter().enumerate().skip(1) {
        let mut more = r.steps[0].clone();
        more.index = i + 1;
        more.counts.fail = f;
        more.counts.error = 0;
        r.steps.push(more);
    }
    r.finish();
    r
}

#[test]
fn the_summary_says_in_one_line_what_broke() {
    let base = testdata::mismatch();
    let pass = |id: &str| with_status(base.clone(), id, &[], 0);
    let cases: Vec<(Vec<ScenarioReport>, &str)> = vec![
        (vec![], "No scenario ran."),
        (
            vec![pass("a"), pass("b")],
            "All 2 scenarios passed: 20 cells agree with their expectations.",
        ),
        (
            vec![pass("a")],
            "The scenario passed: 10 cells agree with their expectations.",
        ),
        (
            vec![
                with_status(base.clone(), "three-tier", &[0, 3], 0),
                pass("x"),
                with_status(base.clone(), "quarantine", &[1], 0),
            ],
            "2 of 3 scenarios failed: 3 mismatches in three-tier step 2, 1 mismatch in quarantine step 1.",
        ),
        (
            vec![with_status(base.clone(), "dns", &[], 2), pass("x")],
            "No mismatches; 1 of 2 scenarios had infrastructure errors: dns (2 probe errors).",
        ),
        (
            vec![with_status(base.clone(), "many", &[1, 1, 1, 1, 1, 1, 1], 0)],
            "1 of 1 scenario failed: 1 mismatch in many step 1, 1 mismatch in many step 2, 1 mismatch in many step 3, 1 mismatch in many step 4, 1 mismatch in many step 5 and 2 more steps.",
        ),
    ];
    for (reports, want) in cases {
        assert_eq!(summary_line(&reports), want);
    }
    // A scenario that could not start, an unsupported one, flaky cells.
    let mut down = ScenarioReport::not_run(
        &load("scenarios/three-tier.yaml"),
        "connection refused\nmore".into(),
    );
    down.id = "down".into();
    let mut unsup = with_status(base.clone(), "sctp", &[], 0);
    unsup.steps[0].counts.unsupported = 4;
    unsup.steps[0].results[0].flaky = true;
    unsup.finish();
    assert_eq!(
        summary_line(&[down, unsup]),
        "No mismatches; 1 of 2 scenarios had infrastructure errors: down (could not run: connection refused); \
         1 of 2 scenarios could not be fully tested on this cluster: sctp (4 unsupported cells); 1 flaky cell."
    );
    // Two scenarios of the same name in different folders are told apart.
    let mut a = with_status(base.clone(), "same", &[1], 0);
    a.group = "one".into();
    let mut b = with_status(base, "same", &[2], 0);
    b.group = "two".into();
    assert_eq!(
        summary_line(&[a, b]),
        "2 of 2 scenarios failed: 1 mismatch in one/same step 1, 2 mismatches in two/same step 1."
    );
}

#[test]
fn small_formats() {
    for (n, want) in [
        (0, "0"),
        (7, "7"),
        (999, "999"),
        (1000, "1,000"),
        (1800, "1,800"),
        (1_234_567, "1,234,567"),
    ] {
        assert_eq!(thousands(n), want);
    }
    let at = |s: u64| utc(UNIX_EPOCH + std::time::Duration::from_secs(s));
    for (s, want) in [
        (0, "1970-01-01 00:00:00 UTC"),
        (951_782_400, "2000-02-29 00:00:00 UTC"),
        (1_700_000_000, "2023-11-14 22:13:20 UTC"),
        (4_107_542_399, "2100-02-28 23:59:59 UTC"),
    ] {
        assert_eq!(at(s), want);
    }
    assert_eq!(
        esc(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

/// The data, parsed back.
fn parsed(reports: &[ScenarioReport]) -> serde_json::Value {
    serde_json::from_str(&script_json(&data::data(reports))).expect("valid JSON")
}

#[test]
fn a_mismatch_cell_carries_origin_observation_specification_and_repro() {
    let v = parsed(&[testdata::mismatch()]);
    let sc = &v["scenarios"][0];
    let s = |i: &serde_json::Value| sc["strs"][i.as_u64().expect("index") as usize].clone();
    let joined = |i: &serde_json::Value, sep: &str| {
        sc["lists"][i.as_u64().expect("list") as usize]
            .as_array()
            .expect("list")
            .iter()
            .map(|j| s(j).as_str().expect("string").to_owned())
            .collect::<Vec<_>>()
            .join(sep)
    };
    let cells = sc["steps"][0]["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 6);
    let bad: Vec<&serde_json::Value> = cells.iter().filter(|c| c[4] == 1).collect();
    assert_eq!(bad.len(), 1);
    let c = bad[0];
    let node = |i: &serde_json::Value| sc["nodes"][i.as_u64().expect("node") as usize][2].clone();
    assert_eq!(node(&c[0]), "x/a");
    assert_eq!(node(&c[1]), "x/b");
    assert_eq!(sc["grids"][c[2].as_u64().expect("grid") as usize], "80/tcp");
    assert_eq!(c[3], CellClass::Mismatch as i64);
    assert_eq!(s(&c[5]), "block");
    assert_eq!(s(&c[6]), "table at line 12");
    assert_eq!(c[7], 12);
    assert_eq!(s(&c[8]), "allowed");
    assert_eq!(s(&c[9]), "connected");
    assert_eq!(s(&c[11]), "allow");
    assert_eq!(
        joined(&c[12], "; "),
        testdata::mismatch().steps[0]
            .results
            .iter()
            .find(|r| r.status == crate::verdict::Status::Fail)
            .and_then(|r| r.spec.as_ref())
            .expect("spec")
            .why
    );
    assert_eq!(
        s(&c[13]),
        "the expectation disagrees with the specification; the cluster follows it"
    );
    assert_eq!(
        joined(&c[14], " "),
        "kubectl exec -n x-r1d2e3 a -- nc -z -w 1 <ip> 80"
    );
    assert_eq!(c[16], 3);
    assert_eq!(c[18], -1, "a first step has no previous one");
    assert_eq!(c[19], 0);
    // Strings and lists are stored once.
    let strs = sc["strs"].as_array().expect("strs");
    let unique: BTreeSet<&str> = strs.iter().filter_map(|x| x.as_str()).collect();
    assert_eq!(unique.len(), strs.len());
    let lists = sc["lists"].as_array().expect("lists");
    let unique: BTreeSet<String> = lists.iter().map(|l| l.to_string()).collect();
    assert_eq!(unique.len(), lists.len());
}

#[test]
fn changes_are_the_cells_whose_observation_differs_from_the_previous_step() {
    let r = three_tier();
    let s = load("scenarios/three-tier.yaml");
    // Observations follow the specification, which the expectations agree with: a cell changed
    // exactly when its expected verdict did.
    for k in 1..3 {
        let got = changes(Some(&r.steps[k - 1]), &r.steps[k]);
        let want: Vec<usize> = r.steps[k]
            .results
            .iter()
            .enumerate()
            .filter(|(_, c)| s.steps[k - 1].expected.cells[&c.cell].verdict != c.expected.verdict)
            .map(|(i, _)| i)
            .collect();
        assert!(!want.is_empty());
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            want,
            "step {}",
            k + 1
        );
        for (i, before) in &got {
            assert_ne!(*before, r.steps[k].results[*i].observed);
        }
    }
    assert!(changes(None, &r.steps[0]).is_empty());
    let v = parsed(std::slice::from_ref(&r));
    let step2 = &v["scenarios"][0]["steps"][1];
    let marked = step2["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter(|c| c[18] != -1)
        .count();
    assert_eq!(step2["changed"], marked);
    assert_eq!(marked, changes(Some(&r.steps[0]), &r.steps[1]).len());
}

#[test]
fn the_page_is_self_contained_with_the_header_and_every_steps_graph() {
    let r = three_tier();
    let mut evil = testdata::mismatch();
    evil.steps[0].name = "</script><script>alert(1)</script>".into();
    let info = RunInfo {
        context: Some("kind-<netreach>".into()),
        cluster_version: Some("v1.34.0".into()),
        netreach_version: "9.9.9".into(),
        started: Some(UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
    };
    let page = render(&[r, evil], &info);
    assert!(page.starts_with("<!DOCTYPE html>"));
    for want in [
        "<dd id=\"nr-context\">kind-&lt;netreach&gt;</dd>",
        "<dd id=\"nr-cluster\">v1.34.0</dd>",
        "<dd id=\"nr-version\">9.9.9</dd>",
        "<dd id=\"nr-timeout\">2 s</dd>",
        "<dd id=\"nr-started\">2023-11-14 22:13:20 UTC</dd>",
        "1 of 2 scenarios failed: 1 mismatch in tiny step 1.",
        "default-src 'none'",
    ] {
        assert!(page.contains(want), "missing {want}");
    }
    // Unknown values say so.
    let bare = render(&[], &RunInfo::new());
    assert!(bare.contains("<dd id=\"nr-cluster\"><span class=\"unknown\">unknown</span></dd>"));
    assert!(bare.contains(&format!(
        "<dd id=\"nr-version\">{}</dd>",
        env!("CARGO_PKG_VERSION")
    )));
    // Nothing is loaded from anywhere: the only URL is the SVG namespace.
    let urls = page.matches("http").count();
    assert_eq!(
        urls,
        page.matches("http-equiv").count() + page.matches("http://www.w3.org/2000/svg").count()
    );
    for tag in ["<link", "<img", "<iframe", "src=", "@import", "url(http"] {
        assert!(!page.contains(tag), "{tag}");
    }
    // One graph per step with cells.
    assert_eq!(page.matches("<template id=\"nr-g-").count(), 3 + 1);
    // The step name cannot end the script element, and the data parses back intact.
    assert_eq!(page.matches("</script>").count(), 2);
    let start = page.find("id=\"nr-data\">").expect("data") + "id=\"nr-data\">".len();
    let end = start + page[start..].find("</script>").expect("end");
    let v: serde_json::Value = serde_json::from_str(&page[start..end]).expect("JSON");
    assert_eq!(
        v["scenarios"][1]["steps"][0]["name"],
        "</script><script>alert(1)</script>"
    );
    assert_eq!(v["scenarios"][0]["probe_timeout_s"], 2);
}

#[test]
fn several_probe_timeouts_are_all_named() {
    let mut a = testdata::mismatch();
    a.probe_timeout_s = 5;
    let page = render(&[a, testdata::mismatch()], &RunInfo::new());
    assert!(page.contains("<dd id=\"nr-timeout\">2 s, 5 s (per scenario)</dd>"));
}

#[test]
fn the_page_grows_linearly_with_the_cells() {
    // One step of n x n pods on two ports; the page per cell must not grow with n.
    let size = |n: usize| {
        let mut yaml = String::from("version: 1\nnamespaces: [{name: a}, {name: b}]\npods:\n");
        for i in 0..n {
            let ns = if i % 2 == 0 { "a" } else { "b" };
            yaml.push_str(&format!(
                "  - {{name: p{i}, namespace: {ns}, ports: [80/tcp, 81/tcp]}}\n"
            ));
        }
        yaml.push_str("steps:\n  - name: open\n    expect: [{default: allow}]\n");
        let l = crate::scenario::load_str(
            Path::new("scenarios/n.yaml"),
            &yaml,
            &crate::scenario::MemReader::default(),
        );
        let s = l
            .scenario
            .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
        let mut c = FakeCluster::following_spec(&s);
        c.repro_context = Some("kind-netreach".into());
        let r = run_scenario(
            &s,
            &mut c,
            &RunOptions::fast(Naming::PerRun { run_id: "r".into() }),
            &mut |_| {},
        );
        let cells = r.counts.total();
        (render(&[r], &RunInfo::new()).len() - (CSS.len() + JS.len())) as f64 / cells as f64
    };
    let (small, large) = (size(6), size(30));
    assert!(
        large < small * 1.6,
        "bytes per cell: {small:.0} at 6 pods, {large:.0} at 30"
    );
    assert!(large < 400.0, "bytes per cell at 30 pods: {large:.0}");
}

#[test]
fn a_cell_without_a_command_says_so() {
    let mut r = testdata::mismatch();
    r.steps[0].results[0].detail = crate::outcome::ProbeDetail::default();
    let v = parsed(&[r]);
    let c = &v["scenarios"][0]["steps"][0]["cells"][0];
    assert_eq!(c[14], -1);
    assert_eq!(c[16], serde_json::Value::Null);
}

/// The benchmark report of BENCHMARKS.md: the shipped scenarios (answered as the specification
/// says) and one of 30 pods serving two ports (1,800 cells a step, three steps).
fn bench_reports() -> Vec<ScenarioReport> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = crate::scenario::discover(&[root.join("scenarios")]).expect("scenarios");
    let mut reports: Vec<ScenarioReport> = files
        .iter()
        .map(|f| {
            let s = crate::scenario::load(f).scenario.expect("valid");
            let mut c = FakeCluster::following_spec(&s);
            c.repro_context = Some("kind-netreach".into());
            run_scenario(
                &s,
                &mut c,
                &RunOptions::fast(Naming::PerRun { run_id: "b".into() }),
                &mut |_| {},
            )
        })
        .collect();
    let mut y = String::from("version: 1\nnamespaces: [{name: a}, {name: b}, {name: c}]\npods:\n");
    for i in 0..30 {
        let ns = ["a", "b", "c"][i % 3];
        y.push_str(&format!(
            "  - {{name: p{i:02}, namespace: {ns}, ports: [80/tcp, 81/tcp]}}\n"
        ));
    }
    y.push_str("steps:\n  - name: open\n    expect: [{default: allow}]\n  - name: again\n    expect: [{default: allow}]\n  - name: and again\n    expect: [{default: allow}]\n");
    let l = crate::scenario::load_str(
        Path::new("scenarios/thirty.yaml"),
        &y,
        &crate::scenario::MemReader::default(),
    );
    let s = l
        .scenario
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
    let mut c = FakeCluster::following_spec(&s);
    c.repro_context = Some("kind-netreach".into());
    reports.push(run_scenario(
        &s,
        &mut c,
        &RunOptions::fast(Naming::PerRun { run_id: "b".into() }),
        &mut |_| {},
    ));
    reports
}

/// `cargo test -p netreach-core --release --lib render_time -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: prints the render time of the BENCHMARKS.md report"]
fn render_time() {
    let reports = bench_reports();
    assert_eq!(reports.len(), 14);
    assert_eq!(reports[13].steps[0].results.len(), 1800);
    let cells: usize = reports.iter().map(|r| r.counts.total()).sum();
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..7 {
        let t = std::time::Instant::now();
        let page = render(&reports, &RunInfo::new());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        size = page.len();
    }
    times.sort_by(f64::total_cmp);
    let t = std::time::Instant::now();
    let d = script_json(&data::data(&reports));
    let data_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "render: median {:.1} ms (min {:.1}), data alone {data_ms:.1} ms; {size} bytes ({} of data), {cells} cells",
        times[3],
        times[0],
        d.len()
    );
}
