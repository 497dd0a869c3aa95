//! `cargo xtask soak [--runs N]`: back-to-back runs of the shipped scenarios, summarised into
//! docs/soak.md (between the `soak:begin`/`soak:end` markers).
//!
//! Each run is `netreach run scenarios/ --json … --known-deviations <kube-router list>` with the
//! release binary against the kind cluster. A *false mismatch* is a failed cell that is not a
//! listed deviation of the cluster's enforcer; an *error* is an infrastructure failure (never a
//! policy result). Every run's text and JSON report is kept under target/soak/.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::util::{flag_value, utc_minute};
use crate::{cluster, project_root, replace_section};

/// One run's figures.
struct RunSummary {
    exit: i32,
    scenarios: u64,
    passed: u64,
    failed: u64,
    error: u64,
    cells_pass: u64,
    cells_fail: u64,
    cells_error: u64,
    known: usize,
    false_mismatches: Vec<String>,
    errors: Vec<String>,
    wall_s: f64,
}

pub fn main(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--faults") {
        return crate::soak_faults::main(args);
    }
    let perm = crate::host::DockerPermission::from_args(args);
    let runs: usize = match flag_value(args, "--runs") {
        Some(n) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .context("--runs needs a positive number")?,
        None => 20,
    };
    crate::build_release_netreach()?;
    let env = cluster::ensure_up(perm)?;
    let root = project_root();
    let dir = root.join("target/soak");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let started = utc_minute();
    let mut out = Vec::new();
    for i in 1..=runs {
        let json = dir.join(format!("run-{i}.json"));
        let t = Instant::now();
        let mut cmd = Command::new(root.join("target/release/netreach"));
        cmd.args(["run", "scenarios", "--json"]).arg(&json);
        // Context, probe image and the enforcer's known deviations (`--known-deviations`).
        env.apply(&mut cmd);
        let o = cmd.env("CI", "1").output().context("cannot run netreach")?;
        let wall_s = t.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        std::fs::write(dir.join(format!("run-{i}.txt")), &text)?;
        let v: Value = std::fs::read_to_string(&json)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .with_context(|| {
                format!(
                    "run {i} wrote no JSON report; its stderr:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                )
            })?;
        let s = summarize(&v, &text, o.status.code().unwrap_or(-1), wall_s);
        eprintln!(
            "xtask: soak run {i}/{runs}: exit {}, {} scenarios ({} passed, {} failed, {} error), cells {} pass / {} fail / {} error, {} known deviation(s), {} false mismatch(es), {:.0} s",
            s.exit,
            s.scenarios,
            s.passed,
            s.failed,
            s.error,
            s.cells_pass,
            s.cells_fail,
            s.cells_error,
            s.known,
            s.false_mismatches.len(),
            s.wall_s
        );
        for l in s.false_mismatches.iter().chain(&s.errors) {
            eprintln!("xtask:   {l}");
        }
        out.push(s);
    }
    let section = render(&out, &started, &env.context);
    let path = root.join("docs/soak.md");
    replace_section(&path, "soak", &section)?;
    eprintln!("xtask: wrote {}", path.display());
    let bad: usize = out
        .iter()
        .map(|s| s.false_mismatches.len() + s.errors.len())
        .sum();
    if bad > 0 {
        bail!("soak: {bad} false mismatch(es) or error(s) in {runs} runs (see target/soak/)");
    }
    Ok(())
}

fn summarize(v: &Value, text: &str, exit: i32, wall_s: f64) -> RunSummary {
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let mut errors = Vec::new();
    for sc in v["scenarios"].as_array().into_iter().flatten() {
        let id = sc["id"].as_str().unwrap_or("?");
        if let Some(e) = sc["error"].as_str() {
            errors.push(format!("error in {id}: {e}"));
        }
        for st in sc["steps"].as_array().into_iter().flatten() {
            for r in st["results"].as_array().into_iter().flatten() {
                if r["status"] == "error" {
                    errors.push(format!(
                        "error in {id} step {}: {} {}",
                        st["index"],
                        r["cell"],
                        r["reason"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    RunSummary {
        exit,
        scenarios: n("/summary/scenarios"),
        passed: n("/summary/passed"),
        failed: n("/summary/failed"),
        error: n("/summary/error"),
        cells_pass: n("/summary/cells/pass"),
        cells_fail: n("/summary/cells/fail"),
        cells_error: n("/summary/cells/error"),
        known: text
            .lines()
            .filter(|l| l.starts_with("known deviation of "))
            .count(),
        false_mismatches: text
            .lines()
            .filter(|l| l.starts_with("not a known deviation") || l.contains("no longer observed"))
            .map(str::to_owned)
            .collect(),
        errors,
        wall_s,
    }
}

fn render(runs: &[RunSummary], started: &str, context: &str) -> String {
    let mut s = format!(
        "<!-- soak:begin -->\nWritten by `cargo xtask soak --runs {}` (started {started}, context `{context}`).\n\n\
         | run | exit | scenarios | passed | failed | error | cells pass | cells fail | cells error | known deviations | false mismatches | wall s |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        runs.len()
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            i + 1,
            r.exit,
            r.scenarios,
            r.passed,
            r.failed,
            r.error,
            r.cells_pass,
            r.cells_fail,
            r.cells_error,
            r.known,
            r.false_mismatches.len(),
            r.wall_s
        );
    }
    let cells: u64 = runs
        .iter()
        .map(|r| r.cells_pass + r.cells_fail + r.cells_error)
        .sum();
    let fm: usize = runs.iter().map(|r| r.false_mismatches.len()).sum();
    let errs: usize = runs.iter().map(|r| r.errors.len()).sum();
    let known: usize = runs.iter().map(|r| r.known).sum();
    let wall: f64 = runs.iter().map(|r| r.wall_s).sum();
    let _ = writeln!(
        s,
        "\n**{} runs, {cells} cells: {fm} false mismatch(es), {errs} infrastructure error(s), {known} known-deviation cell(s); {:.0} min in all.**",
        runs.len(),
        wall / 60.0
    );
    for (i, r) in runs.iter().enumerate() {
        for l in r.false_mismatches.iter().chain(&r.errors) {
            let _ = writeln!(s, "- run {}: {l}", i + 1);
        }
    }
    s.push_str("<!-- soak:end -->");
    s
}
