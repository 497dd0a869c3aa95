//! The HTML report in a real browser: Debian's Chromium driven by playwright-core
//! (`tests/browser/report.test.mjs`), on reports built here through the core's runner against
//! the fake cluster (the shipped scenarios answered as the NetworkPolicy specification says, and
//! one scenario broken on purpose: mismatches both ways, a flaky cell, a probe error,
//! unsupported cells).
//!
//! - `NETREACH_BROWSER_TESTS=1`: runs, and FAILS when `node`, Chromium (`/usr/bin/chromium`, or
//!   `NETREACH_CHROMIUM`) or `tests/browser/node_modules` (`npm ci` there) is missing.
//! - Unset: ignored, with that reason (never passed).
//!
//! Writes `target/netreach-reports/browser/`: `report.html` (+ `report.png`, `graph.png`), the exported
//! `three-tier-step3.svg`, `graph.svg` (what `netreach run --svg` writes), and `big.html`
//! (+ `big.png`): the shipped scenarios plus one of 30 pods (1,800 cells a step) for the
//! figures in BENCHMARKS.md, which the script prints as a `BENCH {…}` line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::json;

use netreach::bind::ProbeAction;
use netreach::cluster::fake::FakeCluster;
use netreach::engine::World;
use netreach::model::{Scenario, Target};
use netreach::names::Naming;
use netreach::outcome::{Outcome, ProbeError};
use netreach::report::html::{self, RunInfo, data, graph, svg};
use netreach::report::{ScenarioReport, ScenarioStatus};
use netreach::run::{RunOptions, run_scenario};
use netreach::scenario::{self, MemReader, load_str};
use netreach::verdict::Status;

const ENV: &str = "NETREACH_BROWSER_TESTS";

fn main() {
    let args = Arguments::from_args();
    let trials =
        vec![Trial::ignorable_test("html_report_in_chromium", browser_test).with_kind("browser")];
    libtest_mimic::run(&args, trials).exit();
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("netreach-reports/browser")
}

fn browser_test() -> Result<Completion, Failed> {
    if std::env::var(ENV).ok().as_deref() != Some("1") {
        return Ok(Completion::ignored_with(format!(
            "{ENV} is not 1; set it to load the HTML report in Chromium (needs /usr/bin/chromium \
             and `npm ci` in harness/netreach/tests/browser)"
        )));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var_os("NETREACH_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!(
            "{} is missing: `apt-get install -y chromium` (or name it in NETREACH_CHROMIUM)",
            chromium.display()
        )
        .into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Err(format!(
            "playwright-core is not installed: run `npm ci` in {}",
            dir.display()
        )
        .into());
    }
    let out = out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    // The report with every kind of cell.
    let broken = broken();
    let shipped = shipped()?;
    let mut reports = vec![broken];
    reports.extend(shipped.iter().cloned());
    let info = RunInfo {
        context: Some("kind-netreach".into()),
        cluster_version: Some("v1.34.0".into()),
        netreach_version: env!("CARGO_PKG_VERSION").into(),
        started: Some(SystemTime::now()),
    };
    let page = html::render(&reports, &info);
    write(&out.join("report.html"), &page)?;
    let svg_file = svg::svg_document(&reports);
    write(&out.join("graph.svg"), &svg_file)?;

    let b = &reports[0];
    let bstep = b
        .steps
        .iter()
        .position(|s| s.counts.fail > 0)
        .ok_or("the broken scenario has no mismatch")?;
    let bs = &b.steps[bstep];
    let count = |st: Status| bs.results.iter().filter(|c| c.status == st).count();
    let commands: serde_json::Map<String, serde_json::Value> = bs
        .results
        .iter()
        .enumerate()
        .filter(|(_, c)| c.status == Status::Fail)
        .map(|(i, c)| (i.to_string(), json!(c.detail.command)))
        .collect();
    check(
        commands
            .values()
            .all(|c| c.as_str().is_some_and(|c| c.starts_with("kubectl"))),
        "every mismatch has a repro command",
    )?;
    let flaky = bs.results.iter().filter(|c| c.flaky).count();
    check(flaky >= 1, "the broken scenario has a flaky cell")?;
    check(count(Status::Error) >= 1, "… an error cell")?;
    check(count(Status::Unsupported) >= 1, "… unsupported cells")?;

    let (ti, tt) = reports
        .iter()
        .enumerate()
        .find(|(_, r)| r.id == "three-tier")
        .ok_or("three-tier is shipped")?;
    check(
        tt.status == ScenarioStatus::Passed,
        "three-tier follows the spec",
    )?;
    let tstep = tt.steps.len() - 1;
    let g = graph::graph(tt, &tt.steps[tstep]);
    let nodes: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    // The graph must be what the scenario's own table says for step 3 (independently of the
    // layout code): a pair is an arrow when one of its cells is expected allowed.
    let expected_edges: BTreeSet<(String, String)> = tt.steps[tstep]
        .results
        .iter()
        .filter(|c| c.expected.verdict == netreach::model::Verdict::Allow)
        .filter(|c| c.cell.to != Target::Pod(c.cell.from.clone()))
        .map(|c| (c.cell.from.to_string(), c.cell.to.to_string()))
        .collect();
    check(
        expected_edges.len() == 5,
        format!("three-tier step 3 allows 5 paths: {expected_edges:?}"),
    )?;
    let changed_step = 1;
    let changed = data::changes(Some(&tt.steps[0]), &tt.steps[changed_step]).len();

    let big = big()?;
    let mut big_reports = shipped;
    big_reports.push(big);
    let t = Instant::now();
    let big_page = html::render(&big_reports, &info);
    let render_ms = t.elapsed().as_secs_f64() * 1000.0;
    write(&out.join("big.html"), &big_page)?;
    let bi = big_reports.len() - 1;
    let bigr = &big_reports[bi];

    let audit = audit_expectations(&out, &info)?;

    // The three-tier scenario's pods by node, as the page's header says it.
    let pod_nodes = {
        let parts: Vec<String> = tt
            .pods_by_node()
            .iter()
            .map(|(n, pods)| format!("{n} ({})", pods.join(", ")))
            .collect();
        format!("nodes {}", parts.join("; "))
    };
    let expect = json!({
        "audit": audit,
        "chromium": chromium,
        "out": out,
        "report": out.join("report.html"),
        "big": out.join("big.html"),
        "header": {
            "context": "kind-netreach",
            "cluster": "v1.34.0",
            "version": env!("CARGO_PKG_VERSION"),
            "timeout": "2 s",
        },
        "scenarios": reports.len(),
        "summary": html::summary_line(&reports),
        "broken": {
            "si": 0,
            "step": bstep,
            "cells": bs.results.len(),
            "fail": count(Status::Fail),
            "error": count(Status::Error),
            "unsupported": count(Status::Unsupported),
            "flaky": flaky,
            "commands": commands,
        },
        "threeTier": {
            "si": ti,
            "step": tstep,
            "nodes": nodes,
            "edges": expected_edges.iter().map(|(a, b)| json!([a, b, "allowed"])).collect::<Vec<_>>(),
            "changedStep": changed_step,
            "podNodes": pod_nodes,
            "changed": changed,
        },
        "bigReport": {
            "si": bi,
            "steps": bigr.steps.len(),
            "cells": bigr.steps.iter().map(|s| s.results.len()).collect::<Vec<_>>(),
            "fail": bigr.steps.iter().map(|s| s.counts.fail).collect::<Vec<_>>(),
            "scenarios": big_reports.len(),
        },
    });
    write(&out.join("expect.json"), &expect.to_string())?;

    let script = dir.join("report.test.mjs");
    let run = Command::new("node")
        .arg(&script)
        .arg(out.join("expect.json"))
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    print!("{stdout}");
    if !run.status.success() {
        return Err(format!(
            "the browser test failed ({}):\n{stdout}\n{stderr}",
            run.status
        )
        .into());
    }
    println!(
        "BENCH-RUST {}",
        json!({
            "render_ms": (render_ms * 10.0).round() / 10.0,
            "big_html_bytes": big_page.len(),
            "report_html_bytes": page.len(),
            "big_cells": bigr.counts.total(),
            "big_step_cells": bigr.steps[0].results.len(),
        })
    );

    // The SVG the page exported, and the one `--svg` writes, parse as SVG with the nodes.
    let exported = std::fs::read_to_string(out.join("three-tier-step3.svg"))
        .map_err(|e| format!("the page exported no SVG: {e}"))?;
    let (root_el, found) = svg_nodes(&exported)?;
    check(root_el == "svg", format!("exported root is <{root_el}>"))?;
    check(
        found == nodes,
        format!("exported nodes {found:?}, want {nodes:?}"),
    )?;
    let (_, all) = svg_nodes(&svg_file)?;
    check(
        nodes.iter().all(|n| all.iter().any(|a| a == n)),
        "graph.svg has the three-tier nodes",
    )?;
    Ok(Completion::Completed)
}

/// `netreach audit --html` of fixtures/audit, and what its page must show (computed from the
/// audit report, not from the page's code).
fn audit_expectations(out: &Path, info: &RunInfo) -> Result<serde_json::Value, Failed> {
    use netreach::audit::{AuditReport, html as ahtml, manifests};
    use netreach::diag::{Diagnostics, SourceFile};
    use netreach::engine::Spec;
    let dir = root().join("fixtures/audit");
    let mut files = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for f in paths {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        files.push(SourceFile::new(f, text));
    }
    let mut d = Diagnostics::default();
    let inv = manifests::read(&files, "fixtures/audit", &mut d);
    check(!d.has_errors(), d.render(false))?;
    let r = AuditReport::of(&inv);
    let page = ahtml::render_html(&r, info);
    write(&out.join("audit.html"), &page)?;
    let g = ahtml::audit_graph(&r).ok_or("the fixture's graph is small")?;
    let svg_text = svg::svg(&g, "audit");
    write(&out.join("audit.svg"), &svg_text)?;
    let (root_el, svg_nodes_found) = svg_nodes(&svg_text)?;
    let names: Vec<&str> = r.workloads.iter().map(|w| w.name.as_str()).collect();
    check(root_el == "svg", "audit.svg is SVG")?;
    check(
        svg_nodes_found == names,
        format!("audit.svg nodes {svg_nodes_found:?}, want {names:?}"),
    )?;
    let ns = |w: &str| {
        w.split_once('/')
            .map_or(w.to_owned(), |(a, _)| a.to_owned())
    };
    let allowed: BTreeSet<(String, String)> = r
        .reach
        .iter()
        .filter(|x| x.verdict == Spec::Allow)
        .map(|x| (x.from.clone(), x.to.clone()))
        .collect();
    let n = names.len();
    let cross_cells = names
        .iter()
        .flat_map(|a| names.iter().map(move |b| (a, b)))
        .filter(|(a, b)| ns(a) != ns(b))
        .count();
    // A cross-namespace allowed pair decided by a policy: clicking it shows its reason.
    let sample = r
        .reach
        .iter()
        .find(|x| x.verdict == Spec::Allow && x.by_policy && ns(&x.from) != ns(&x.to))
        .ok_or("the fixture allows a path across namespaces by policy")?;
    let fi = names.iter().position(|w| *w == sample.from).ok_or("from")?;
    let ti = names.iter().position(|w| *w == sample.to).ok_or("to")?;
    Ok(json!({
        "file": out.join("audit.html"),
        "cells": n * n,
        "allowedCells": allowed.len(),
        "crossCells": cross_cells,
        "summary": ahtml::summary_line(&r),
        "findings": r.findings.len(),
        "nodes": names,
        "edges": allowed.iter().filter(|(a, b)| a != b).map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        "sample": {"p": fi * n + ti, "port": sample.port.to_string(), "reason": sample.reason},
    }))
}

fn check(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

fn write(p: &Path, s: &str) -> Result<(), Failed> {
    std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()).into())
}

/// The root element's name and every `data-node` of an SVG document (parsed as XML).
fn svg_nodes(svg: &str) -> Result<(String, Vec<String>), Failed> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut root = None;
    let mut nodes = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                if root.is_none() {
                    root = Some(e.name().into_inner().to_owned());
                    let ns = e
                        .try_get_attribute("xmlns")
                        .map_err(|e| e.to_string())?
                        .map(|a| a.value.to_string());
                    check(
                        ns.as_deref() == Some("http://www.w3.org/2000/svg"),
                        format!("root namespace {ns:?}"),
                    )?;
                }
                if let Some(a) = e
                    .try_get_attribute("data-node")
                    .map_err(|e| e.to_string())?
                {
                    let raw = a.value.to_string();
                    nodes.push(
                        quick_xml::escape::unescape(&raw)
                            .map_err(|e| e.to_string())?
                            .into_owned(),
                    );
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(format!("not XML at byte {}: {e}", reader.buffer_position()).into());
            }
        }
    }
    Ok((root.unwrap_or_default(), nodes))
}

fn opts() -> RunOptions {
    RunOptions::fast(Naming::PerRun {
        run_id: "b7w2x9".into(),
    })
}

/// Every shipped scenario, answered as the specification says.
fn shipped() -> Result<Vec<ScenarioReport>, Failed> {
    let files = scenario::discover(&[root().join("scenarios")]).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for f in files {
        let l = scenario::load(&f);
        let Some(s) = l.scenario else {
            return Err(l.diagnostics.render(false).into());
        };
        let mut c = FakeCluster::following_spec(&s);
        c.repro_context = Some("kind-netreach".into());
        let mut r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
        if let Ok(rel) = r.path.strip_prefix(root()) {
            r.path = rel.to_path_buf();
        }
        out.push(r);
    }
    Ok(out)
}

fn load(name: &str, yaml: &str) -> Result<Scenario, Failed> {
    let l = load_str(Path::new(name), yaml, &MemReader::default());
    l.scenario.ok_or_else(|| l.diagnostics.render(false).into())
}

const BROKEN: &str = r#"
version: 1
name: Broken on purpose
namespaces: [{name: web}, {name: data}]
pods:
  - {name: client, namespace: web, labels: {app: client}, ports: [80/tcp]}
  - {name: server, namespace: web, labels: {app: server}, ports: [80/tcp, 443/tcp]}
  - {name: db, namespace: data, labels: {app: db}, ports: [5432/tcp, 9000/sctp]}
steps:
  - name: open
    expect: [{default: allow}]
  - name: only the client reaches the server
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: server-from-client, namespace: web}
          spec:
            podSelector: {matchLabels: {app: server}}
            policyTypes: [Ingress]
            ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
    expect:
      - default: allow
      - block: {to: web/server}
      - allow: {from: web/client, to: web/server}
"#;

/// A cluster that gets step 2 wrong in every way there is: the database reaches the server
/// (twice), the client does not reach it on 443, one probe loses its exec, the client's answer
/// to the database flips between rounds, and SCTP is not there at all.
fn broken() -> ScenarioReport {
    let s = match load("scenarios/broken.yaml", BROKEN) {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    };
    let mut c = FakeCluster::following_spec(&s);
    c.repro_context = Some("kind-netreach".into());
    let mut spec = std::mem::replace(&mut c.responder, Box::new(|_, _| Outcome::Connected));
    let mut flips = 0;
    c.responder = Box::new(move |p, applied| {
        let to = p.cell.to.to_string();
        let from = p.cell.from.to_string();
        let port = match p.action {
            ProbeAction::Connect { port, .. } => port,
            ProbeAction::Resolve { .. } => 0,
        };
        if port == 9000 {
            return Outcome::Unsupported("SCTP is not available on this cluster's nodes".into());
        }
        if !applied.is_empty() {
            match (from.as_str(), to.as_str(), port) {
                ("data/db", "web/server", _) => return Outcome::Connected,
                ("web/client", "web/server", 443) => return Outcome::TimedOut,
                ("web/server", "data/db", 5432) => {
                    return Outcome::Error(ProbeError::Lost {
                        detail: "stream closed".into(),
                    });
                }
                ("web/client", "data/db", 5432) => {
                    flips += 1;
                    return if flips % 2 == 0 {
                        Outcome::TimedOut
                    } else {
                        Outcome::Connected
                    };
                }
                _ => {}
            }
        }
        spec(p, applied)
    });
    let mut r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
    r.path = PathBuf::from("scenarios/broken.yaml");
    r
}

/// 30 pods in three namespaces serving two ports: 1,800 cells a step, three steps (open; port
/// 81 closed by a policy per namespace; open again), and a cluster whose pod `a/p00` ignores
/// the policies.
fn big() -> Result<ScenarioReport, Failed> {
    let mut y = String::from(
        "version: 1\nname: 30 pods\nnamespaces: [{name: alpha}, {name: beta}, {name: gamma}]\npods:\n",
    );
    let ns = ["alpha", "beta", "gamma"];
    for i in 0..30 {
        y.push_str(&format!(
            "  - {{name: p{i:02}, namespace: {}, labels: {{app: bench}}, ports: [80/tcp, 81/tcp]}}\n",
            ns[i % 3]
        ));
    }
    y.push_str(
        "steps:\n  - name: open\n    expect: [{default: allow}]\n  - name: only 80\n    apply:\n",
    );
    for n in ns {
        y.push_str(&format!(
            "      - inline:\n          apiVersion: networking.k8s.io/v1\n          kind: NetworkPolicy\n          \
             metadata: {{name: only-80, namespace: {n}}}\n          spec:\n            podSelector: {{}}\n            \
             policyTypes: [Ingress]\n            ingress: [{{ports: [{{port: 80}}]}}]\n"
        ));
    }
    y.push_str("    expect:\n      - default: allow\n      - block: {port: 81/tcp}\n  - name: open again\n    delete: [");
    y.push_str(&ns.map(|n| format!("{n}/only-80")).join(", "));
    y.push_str("]\n    expect: [{default: allow}]\n");
    let s = load("scenarios/bench/thirty.yaml", &y)?;
    let worlds = World::per_step(&s).len();
    check(worlds == 3, "three steps")?;
    let mut c = FakeCluster::following_spec(&s);
    c.repro_context = Some("kind-netreach".into());
    let mut spec = std::mem::replace(&mut c.responder, Box::new(|_, _| Outcome::Connected));
    c.responder = Box::new(move |p, applied| {
        if p.cell.to.to_string() == "alpha/p00" {
            Outcome::Connected
        } else {
            spec(p, applied)
        }
    });
    let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
    check(
        r.steps.iter().all(|s| s.results.len() == 1800),
        format!(
            "1,800 cells a step: {:?}",
            r.steps.iter().map(|s| s.results.len()).collect::<Vec<_>>()
        ),
    )?;
    Ok(r)
}
