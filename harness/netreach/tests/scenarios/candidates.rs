//! The rollout check on the kind cluster (group `workloads`): a small real app (three ordinary
//! Deployments with a Service each, two live policies with labels and annotations) in a
//! namespace netreach did not create; a scenario names the workloads, judges them as they are,
//! then applies a candidate policy set (a default-deny, a new allow, and a new version of one
//! live policy) as a step and judges it. Run as a ServiceAccount bound to exactly the shipped
//! ClusterRole, three times:
//! 1. to the end: the report says which cells the candidate closed; afterwards every policy has
//!    the spec, labels, annotations and UID it had, the ones netreach created are gone, and no
//!    workload changed;
//! 2. interrupted with SIGINT while the candidate is in force: exit 130, the same afterwards;
//! 3. with a candidate policy changed by someone else mid-step (as a GitOps controller reverting
//!    it would): the step stops with an error naming the policy and who changed it (exit 4),
//!    and the same afterwards;
//!    (`--keep` restores the live namespace too: it is never kept changed);
//! 4. killed (SIGKILL) while the candidate is in force: `netreach gc` restores the same from the
//!    run record once its heartbeat is stale.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, Patch, PatchParams};
use libtest_mimic::Failed;
use serde_json::{Value, json};

use super::audit::{create, policy};
use super::support::{Sa, check, client, rt, scratch, service_account, shipped_rules};
use super::workloads::{Cleanup, run, state, three_tier, wait_ready};

const SA: &str = "candidates-runner";

/// Each policy of `ns` as it must come back: UID, labels, annotations, spec.
fn policies(admin: &str, ns: &str) -> Result<BTreeMap<String, Value>, Failed> {
    rt().block_on(async {
        let c = client(admin).await?;
        let api: Api<NetworkPolicy> = Api::namespaced(c, ns);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("list policies: {e}"))?;
        Ok(list
            .items
            .iter()
            .map(|p| {
                (
                    p.metadata.name.clone().unwrap_or_default(),
                    json!({"uid": p.metadata.uid, "labels": p.metadata.labels,
                           "annotations": p.metadata.annotations, "spec": p.spec}),
                )
            })
            .collect())
    })
}

/// Everything but the policies (whose resourceVersion a restore changes) must be as before.
fn workloads(admin: &str, ns: &str) -> Result<BTreeMap<String, String>, Failed> {
    let mut s = state(admin, ns)?;
    s.retain(|k, _| !k.starts_with("networkpolicy "));
    Ok(s)
}

/// Waits (30 s at most) until the namespace's policies and workloads are as before the run.
fn restored(
    admin: &str,
    ns: &str,
    before: &(BTreeMap<String, Value>, BTreeMap<String, String>),
    what: &str,
) -> Result<(), Failed> {
    let start = Instant::now();
    loop {
        let now = (policies(admin, ns)?, workloads(admin, ns)?);
        if &now == before {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "{what}: 30 s after the run the namespace differs from before.\npolicies before: {:#}\npolicies now: {:#}\nworkloads before: {:#?}\nworkloads now: {:#?}",
                json!(before.0),
                json!(now.0),
                before.1,
                now.1
            )
            .into());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The scenario: the three workloads as they are, then the candidate set.
fn scenario(ns: &str) -> String {
    format!(
        "version: 1
name: Candidate policies
namespaces:
  - {{name: {ns}, existing: true, candidates: true}}
pods:
  - {{name: frontend, namespace: {ns}, workload: {{app: frontend}}, ports: [80/tcp]}}
  - {{name: api, namespace: {ns}, workload: {{app: api}}, ports: [8080/tcp]}}
  - {{name: db, namespace: {ns}, workload: {{app: db}}, ports: [5432/tcp]}}
probes:
  - {{from: {ns}/frontend, to: {ns}/api}}
  - {{from: {ns}/frontend, to: {ns}/db}}
  - {{from: {ns}/api, to: {ns}/db}}
  - {{from: {ns}/api, to: {ns}/frontend}}
steps:
  - name: as deployed
    expect:
      - default: allow
      # The live policy db-from-api admits only api: frontend reaches api, never the database.
      - block: {{from: {ns}/frontend, to: {ns}/db}}
  - name: candidate
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {{name: frontend-to-api, namespace: {ns}}}
          spec:
            podSelector: {{matchLabels: {{app: api}}}}
            ingress: [{{from: [{{podSelector: {{matchLabels: {{app: frontend}}}}}}], ports: [{{port: 8080}}]}}]
      # A new version of a live policy: by tier instead of app.
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {{name: db-from-api, namespace: {ns}}}
          spec:
            podSelector: {{matchLabels: {{tier: db}}}}
            ingress: [{{from: [{{podSelector: {{matchLabels: {{tier: api}}}}}}], ports: [{{port: 5432}}]}}]
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {{name: default-deny, namespace: {ns}}}
          spec: {{podSelector: {{}}, policyTypes: [Ingress]}}
    expect:
      - default: block
      - allow: {{from: {ns}/frontend, to: {ns}/api}}
      - allow: {{from: {ns}/api, to: {ns}/db}}
"
    )
}

/// Starts `netreach run` as the ServiceAccount.
fn spawn(sa: &Sa, args: &[&str]) -> Result<std::process::Child, Failed> {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["run", "--context", &sa.context])
        .args(args)
        .env("KUBECONFIG", &sa.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start netreach: {e}").into())
}

/// Waits until netreach's candidate `default-deny` (applied last) is in force in `ns`.
fn wait_candidate(admin: &str, ns: &str, child: &mut std::process::Child) -> Result<(), Failed> {
    let start = Instant::now();
    loop {
        if policies(admin, ns)?.contains_key("default-deny") {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("netreach exited ({st}) before the candidate step").into());
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            return Err("the candidate policies never appeared within 180 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (exit code, stdout, stderr) of a spawned run.
fn finish(child: std::process::Child) -> Result<(i32, String, String), Failed> {
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

pub(super) fn candidate_policies_are_judged_and_restored_exactly(
    admin: &str,
) -> Result<(), Failed> {
    let (id, ns, mut objs) = three_tier("rc");
    let _cleanup = Cleanup {
        admin,
        ns: ns.clone(),
        sa: SA,
    };
    let mut live = policy(
        &ns,
        "db-from-api",
        json!({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                            "ports": [{"port": 5432}]}]}),
    );
    live["metadata"]["labels"] = json!({"team": "data"});
    live["metadata"]["annotations"] = json!({"owner": "dba@example.com"});
    objs.push(live);
    // Selects nothing the scenario probes: must come through untouched (same resourceVersion).
    let mut other = policy(
        &ns,
        "metrics-scrape",
        json!({"podSelector": {"matchLabels": {"app": "metrics"}}, "ingress": [{}]}),
    );
    other["metadata"]["labels"] = json!({"team": "sre"});
    objs.push(other);
    create(admin, &objs, &[&ns], 3)?;
    wait_ready(admin, &ns, 3)?;
    let before = (policies(admin, &ns)?, workloads(admin, &ns)?);
    let sa = service_account(
        admin,
        SA,
        shipped_rules("netreach-runner.clusterrole.yaml")?,
        &[],
    )?;
    let dir = scratch(&format!("candidates-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("candidate.yaml");
    std::fs::write(&file, scenario(&ns)).map_err(|e| e.to_string())?;
    let file = file.to_str().unwrap_or_default().to_owned();

    // Without the flag: refused before anything is made, naming the step and the flag.
    let (code, out, err) = run(&sa, &[&file])?;
    check(
        code == 2 && err.contains("step 2") && err.contains("--live-policies"),
        format!("without --live-policies: exit {code}\n{out}\n{err}"),
    )?;
    restored(admin, &ns, &before, "refused run")?;

    // 1. To the end.
    let json_path = dir.join("report.json");
    let (code, out, err) = run(
        &sa,
        &[
            "--live-policies",
            "--json",
            json_path.to_str().unwrap_or_default(),
            &file,
        ],
    )?;
    check(code == 0, format!("exit {code}\n{out}\n{err}"))?;
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let live = &report["scenarios"][0]["steps"][1]["live"];
    let closed: Vec<String> = live["closed"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    check(
        closed.len() == 1
            && closed[0].starts_with(&format!("{ns}/api -> {ns}/frontend"))
            && live["opened"].as_array().is_some_and(Vec::is_empty)
            && live["before_step"] == json!(1)
            && live["unchanged"] == json!(3),
        format!("the candidate closed exactly api -> frontend: {live:#}\n{out}"),
    )?;
    check(
        out.contains("0 cell(s) opened, 1 closed"),
        format!("the text report says what the candidate changed:\n{out}"),
    )?;
    restored(admin, &ns, &before, "run to the end")?;

    // 2. SIGINT while the candidate is in force (a long probe timeout keeps the step going).
    let mut child = spawn(&sa, &["--live-policies", "--probe-timeout", "8", &file])?;
    wait_candidate(admin, &ns, &mut child)?;
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    check(st.success(), "kill -INT failed")?;
    let (code, out, err) = finish(child)?;
    check(
        code == 130,
        format!("exit {code} after SIGINT, expected 130\n{out}\n{err}"),
    )?;
    restored(admin, &ns, &before, "interrupted run")?;

    // 3. Someone else changes a candidate mid-step, as a GitOps controller would.
    let mut child = spawn(&sa, &["--live-policies", "--probe-timeout", "8", &file])?;
    wait_candidate(admin, &ns, &mut child)?;
    rt().block_on(async {
        let c = client(admin).await?;
        let api: Api<NetworkPolicy> = Api::namespaced(c, &ns);
        api.patch(
            "frontend-to-api",
            &PatchParams::apply("gitops-controller").force(),
            &Patch::Apply(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "frontend-to-api", "labels": {"reverted": "yes"}}}),
            ),
        )
        .await
        .map_err(|e| format!("patch frontend-to-api: {e}"))?;
        Ok::<_, Failed>(())
    })?;
    let (code, out, err) = finish(child)?;
    check(
        code == 4
            && out.contains("candidate policy")
            && out.contains("frontend-to-api")
            && out.contains("gitops-controller"),
        format!("a reverted candidate: exit {code}, naming it and who changed it\n{out}\n{err}"),
    )?;
    restored(admin, &ns, &before, "reverted candidate")?;

    // `--keep` keeps what the run made in its own namespaces, never a live namespace changed.
    let (code, out, err) = run(&sa, &["--live-policies", "--keep", &file])?;
    check(code == 0, format!("--keep: exit {code}\n{out}\n{err}"))?;
    restored(admin, &ns, &before, "run with --keep")?;

    // 4. A crash (SIGKILL) while the candidate is in force: the record stays behind, and
    //    `netreach gc` restores from it once the heartbeat is stale.
    let mut child = spawn(&sa, &["--live-policies", "--probe-timeout", "8", &file])?;
    wait_candidate(admin, &ns, &mut child)?;
    child.kill().map_err(|e| format!("SIGKILL: {e}"))?;
    let _ = child.wait();
    check(
        policies(admin, &ns)?.contains_key("default-deny"),
        "after SIGKILL the candidate should still be in force (nothing could restore it)",
    )?;
    std::thread::sleep(Duration::from_secs(6));
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["gc", "--context", &sa.context, "--stale-after", "5"])
        .env("KUBECONFIG", &sa.kubeconfig)
        .output()
        .map_err(|e| format!("netreach gc: {e}"))?;
    check(
        out.status.success(),
        format!(
            "gc after a crash: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )?;
    restored(admin, &ns, &before, "gc after a crash")?;
    Ok(())
}
