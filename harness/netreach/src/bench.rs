//! `netreach bench`: how long a full matrix takes, batched (one exec per source pod per round)
//! against one exec per cell on 3 workers (the Kubernetes e2e suite's way), on the same pods.
//!
//! Per size N: N pods in one namespace serving 80/tcp and 81/tcp, a policy admitting only 80, so
//! half the cells (port 81, but loopback) are blocked. After the policy is enforced everywhere,
//! each mode probes the whole matrix; wall time is measured around `Cluster::probe`, after pods
//! are Ready.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bind::bind_probes;
use crate::cluster::{Cluster, DeployPlan, InfraError, cluster_actions};
use crate::kube::{KubeCluster, KubeOptions};
use crate::names::Naming;
use crate::probe::ProbeTimeout;
use crate::scenario::{MemReader, load_str};
use crate::verdict::{Status, judge_cell};

/// One measured mode at one size.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Pods.
    pub pods: usize,
    /// Pod pairs (pods²).
    pub pairs: usize,
    /// Cells (pairs × 2 ports).
    pub cells: usize,
    /// `batched` or `per-cell`.
    pub mode: &'static str,
    /// Execs in flight at once.
    pub parallelism: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Median wall seconds of one full round.
    pub wall_s: f64,
    /// Execs per round.
    pub execs: usize,
    /// Cells per second.
    pub cells_per_s: f64,
    /// Cells that agreed with the expectation in the last round.
    pub agreeing: usize,
}

fn scenario_yaml(n: usize) -> String {
    let mut s = String::from("version: 1\nnamespaces: [{name: bench}]\npods:\n");
    for i in 0..n {
        s.push_str(&format!("  - {{name: p{i}, namespace: bench, labels: {{app: bench}}, ports: [80/tcp, 81/tcp]}}\n"));
    }
    s.push_str(
        "steps:
  - apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: only-80, namespace: bench}
          spec:
            podSelector: {}
            policyTypes: [Ingress]
            ingress: [{ports: [{port: 80}]}]
    expect:
      - default: allow
      - block: {port: 81/tcp}
",
    );
    s
}

/// Runs the benchmark for each size; `on_line` gets progress lines.
///
/// # Errors
/// Infrastructure failures (deploy, exec).
pub fn run(
    context: &str,
    sizes: &[usize],
    timeout: ProbeTimeout,
    rounds: usize,
    on_line: &mut dyn FnMut(String),
) -> Result<Vec<BenchResult>, InfraError> {
    let mut out = Vec::new();
    for &n in sizes {
        let text = scenario_yaml(n);
        let loaded = load_str(Path::new("bench/bench.yaml"), &text, &MemReader::default());
        let s = loaded.scenario.ok_or_else(|| {
            InfraError::Probe(format!(
                "bench scenario invalid: {}",
                loaded.diagnostics.render(false)
            ))
        })?;
        let mut c = KubeCluster::connect(context, KubeOptions::default())?;
        let run_id = crate::run::new_run_id();
        let plan = DeployPlan::new(
            &s,
            &Naming::PerRun {
                run_id: run_id.clone(),
            },
            &run_id,
        );
        let t = Instant::now();
        let result = (|| {
            let b = c.deploy(&plan)?;
            on_line(format!(
                "{n} pods: ready after {:.1} s",
                t.elapsed().as_secs_f64()
            ));
            let step = &s.steps[0];
            c.apply(&cluster_actions(&step.actions, &b, &plan)?)?;
            let probes = bind_probes(&s, step.expected.cells.keys(), &b)?;
            let agreeing = |c: &mut KubeCluster| -> Result<usize, InfraError> {
                let obs = c.probe(&probes, timeout)?;
                Ok(probes
                    .iter()
                    .zip(&obs)
                    .filter(|(p, o)| {
                        judge_cell(&p.cell, &step.expected.cells[&p.cell], &p.action, o).status
                            == Status::Pass
                    })
                    .count())
            };
            // Wait until the policy is enforced everywhere (not measured).
            let deadline = Instant::now() + Duration::from_secs(60);
            while agreeing(&mut c)? < probes.len() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(500));
            }
            let mut results = Vec::new();
            for (mode, batch, parallelism, r) in [
                ("batched", true, 16, rounds),
                ("per-cell", false, 3, if n >= 30 { 1 } else { rounds }),
            ] {
                let o = c.options_mut();
                o.batch = batch;
                o.parallelism = parallelism;
                let mut walls = Vec::new();
                let mut agree = 0;
                let mut execs = 0;
                for _ in 0..r {
                    let before = c.execs();
                    let t = Instant::now();
                    agree = agreeing(&mut c)?;
                    walls.push(t.elapsed().as_secs_f64());
                    execs = c.execs() - before;
                }
                walls.sort_by(f64::total_cmp);
                let wall = walls[walls.len() / 2];
                let res = BenchResult {
                    pods: n,
                    pairs: n * n,
                    cells: probes.len(),
                    mode,
                    parallelism,
                    rounds: r,
                    wall_s: wall,
                    execs,
                    cells_per_s: probes.len() as f64 / wall,
                    agreeing: agree,
                };
                on_line(format!(
                    "{n} pods, {mode}: {:.2} s, {} execs, {:.0} cells/s, {}/{} agree",
                    res.wall_s, res.execs, res.cells_per_s, res.agreeing, res.cells
                ));
                results.push(res);
            }
            Ok::<_, InfraError>(results)
        })();
        let td = c.teardown();
        out.extend(result?);
        td?;
    }
    Ok(out)
}

/// The results as a Markdown table.
pub fn markdown(results: &[BenchResult]) -> String {
    let mut s = String::from(
        "| pods | pairs | cells | mode | execs in flight | rounds | wall s (median) | execs/round | cells/s | agreeing |\n|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {:.0} | {}/{} |\n",
            r.pods,
            r.pairs,
            r.cells,
            r.mode,
            r.parallelism,
            r.rounds,
            r.wall_s,
            r.execs,
            r.cells_per_s,
            r.agreeing,
            r.cells
        ));
    }
    let mut sizes: Vec<usize> = results.iter().map(|r| r.pods).collect();
    sizes.dedup();
    for n in sizes {
        let b = results.iter().find(|r| r.pods == n && r.mode == "batched");
        let p = results.iter().find(|r| r.pods == n && r.mode == "per-cell");
        if let (Some(b), Some(p)) = (b, p) {
            s.push_str(&format!(
                "\n{n} pods: batched is {:.1}x faster than per-cell.",
                p.wall_s / b.wall_s
            ));
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_scenario_is_valid_and_half_blocked() {
        for n in [3, 9] {
            let l = load_str(
                Path::new("bench/bench.yaml"),
                &scenario_yaml(n),
                &MemReader::default(),
            );
            let s = l
                .scenario
                .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
            let cells = &s.steps[0].expected.cells;
            assert_eq!(cells.len(), n * n * 2);
            let blocked = cells
                .values()
                .filter(|e| e.verdict == crate::model::Verdict::Block)
                .count();
            assert_eq!(blocked, n * n - n, "port 81 but loopback");
        }
    }
}
