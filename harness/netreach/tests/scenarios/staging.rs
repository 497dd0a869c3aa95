//! Cluster tests of running on a locked-down cluster, grouped `staging`: under a ServiceAccount
//! bound to exactly the shipped RBAC (docs/rbac/), in namespaces that enforce PodSecurity
//! `restricted`, inside namespaces that were given to netreach; a missing permission stops the
//! run at the first Forbidden; `netreach doctor` passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use libtest_mimic::Failed;
use serde_json::{Value, json};

use netreach::known::{self, KnownDeviations};
use netreach::kube::{self as nk, KubeOptions};
use netreach::names::Naming;
use netreach::report::text;
use netreach::run::{RunOptions, new_run_id, run_scenario};
use netreach::scenario;

use super::support::{check, client, root, rt, service_account, shipped_rules};

pub type Body = fn(&str) -> Result<(), Failed>;

/// The tests of this group.
pub const TESTS: [(&str, Body); 4] = [
    (
        "fixed-outside-endpoint-by-address",
        fixed_outside_endpoint_by_address,
    ),
    (
        "missing-verb-stops-at-first-forbidden",
        missing_verb_stops_at_first_forbidden,
    ),
    (
        "doctor-passes-under-the-shipped-rbac",
        doctor_passes_under_the_shipped_rbac,
    ),
    (
        "given-namespaces-under-the-shipped-role",
        given_namespaces_under_the_shipped_role,
    ),
];

/// The label that makes a namespace enforce PodSecurity `restricted`.
pub const RESTRICTED: (&str, &str) = ("pod-security.kubernetes.io/enforce", "restricted");

fn fixture(name: &str) -> PathBuf {
    root().join("fixtures/lifecycle").join(name)
}

/// The shipped ClusterRole without one permission: `create pods/exec` is the one every probe
/// needs.
fn rules_without_exec() -> Result<Value, Failed> {
    let rules = shipped_rules("netreach-runner.clusterrole.yaml")?;
    let kept: Vec<Value> = rules
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["resources"] != json!(["pods/exec"]))
        .collect();
    check(
        kept.len() + 1 == rules.as_array().map_or(0, Vec::len),
        "the shipped ClusterRole has a pods/exec rule",
    )?;
    Ok(Value::Array(kept))
}

fn missing_verb_stops_at_first_forbidden(context: &str) -> Result<(), Failed> {
    let sa = service_account(context, "no-exec", rules_without_exec()?, &[])?;
    let json_path = super::support::scratch("no-exec-report.json");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["run", "--context", &sa.context, "--json"])
        .arg(&json_path)
        .arg(fixture("wrong-expectation.yaml"))
        .env("KUBECONFIG", &sa.kubeconfig)
        .output()
        .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    super::support::remove_cluster_binding(context, "no-exec");
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.code() == Some(netreach::exit::INFRASTRUCTURE),
        format!("exit {:?}, expected 4:\n{stdout}", out.status.code()),
    )?;
    check(
        stdout.contains("forbidden: cannot create pods/exec"),
        format!("the run names the verb and resource:\n{stdout}"),
    )?;
    let report: Value = serde_json::from_slice(
        &std::fs::read(&json_path).map_err(|e| format!("{}: {e}", json_path.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let steps = report["scenarios"][0]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    check(
        steps
            .first()
            .is_some_and(|s| s["error"].as_str().is_some_and(|e| e.contains("pods/exec"))),
        format!("step 1 ends with the Forbidden error: {steps:?}"),
    )?;
    check(
        steps.iter().skip(1).all(|s| s["ran"] == false),
        "no later step runs after a Forbidden",
    )?;
    // One round, no retries: the run ends seconds after its pods are ready (retries used to
    // take 100 s per step).
    check(
        took < Duration::from_secs(60),
        format!("the run took {took:?} instead of stopping at the first Forbidden"),
    )?;
    let errors = stdout.matches("ERROR ").count();
    check(
        errors <= 1,
        format!("{errors} ERROR blocks instead of one line:\n{stdout}"),
    )
}

fn doctor(kubeconfig: &Path, context: &str, extra: &[&str]) -> Result<(i32, String), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["doctor", "--context", context])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .map_err(|e| e.to_string())?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

async fn create_given(
    api: &Api<Namespace>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), Failed> {
    let mut l = labels.clone();
    l.insert(RESTRICTED.0.into(), RESTRICTED.1.into());
    api.patch(
        name,
        &PatchParams::apply("netreach-tests").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": l}})),
    )
    .await
    .map_err(|e| format!("namespace {name}: {e}"))?;
    Ok(())
}

async fn delete_ns(api: &Api<Namespace>, names: &[String]) {
    for n in names {
        let _ = api.delete(n, &DeleteParams::default()).await;
    }
}

fn doctor_passes_under_the_shipped_rbac(context: &str) -> Result<(), Failed> {
    let sa = service_account(
        context,
        "doctor",
        shipped_rules("netreach-runner.clusterrole.yaml")?,
        &[],
    )?;
    let (code, out) = doctor(&sa.kubeconfig, &sa.context, &[])?;
    super::support::remove_cluster_binding(context, "doctor");
    check(
        code == 0,
        format!("doctor exit {code} under the shipped ClusterRole:\n{out}"),
    )?;
    for name in [
        "api",
        "rbac",
        "pod-security",
        "probe-image",
        "dns",
        "enforcement",
    ] {
        check(
            out.lines()
                .any(|l| l.starts_with("ok ") && l.contains(name)),
            format!("{name} is not ok:\n{out}"),
        )?;
    }
    // In a namespace given to netreach, under the shipped Role only.
    let ns = format!("netreach-doctor-given-{}", new_run_id());
    let rt = rt();
    let api: Api<Namespace> = rt.block_on(async { client(context).await.map(Api::all) })?;
    rt.block_on(create_given(&api, &ns, &BTreeMap::new()))?;
    let r = (|| {
        let sa = service_account(
            context,
            "doctor-given",
            shipped_rules("netreach-runner.role.yaml")?,
            &[ns.as_str()],
        )?;
        doctor(&sa.kubeconfig, &sa.context, &["--namespace", &ns])
    })();
    let left = rt.block_on(async {
        let c = client(context).await?;
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
        let pods: Api<Pod> = Api::namespaced(c, &ns);
        let lp = ListParams::default();
        let n = cms
            .list(&lp)
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|c| {
                        c.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("netreach-run-"))
                    })
                    .count()
            })
            .unwrap_or(0)
            + pods
                .list(&lp)
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .count()
                })
                .unwrap_or(0);
        Ok::<_, Failed>(n)
    })?;
    rt.block_on(delete_ns(&api, std::slice::from_ref(&ns)));
    let (code, out) = r?;
    check(
        code == 0,
        format!("doctor --namespace exit {code} under the shipped Role:\n{out}"),
    )?;
    check(
        left == 0,
        format!("{left} object(s) left in the given namespace"),
    )
}

/// The shipped scenarios (top level) in pre-created namespaces enforcing PodSecurity
/// `restricted`, under a ServiceAccount with only the shipped Role in each.
fn given_namespaces_under_the_shipped_role(context: &str) -> Result<(), Failed> {
    let known = match std::env::var_os("NETREACH_KNOWN_DEVIATIONS") {
        Some(p) => Some(KnownDeviations::load(Path::new(&p)).map_err(|e| e.to_string())?),
        None => None,
    };
    let files = scenario::discover(&[root().join("scenarios")]).map_err(|e| e.to_string())?;
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| {
            f.parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "scenarios")
        })
        .collect();
    check(
        files.len() >= 8,
        format!("found the shipped scenarios: {files:?}"),
    )?;
    let rules = shipped_rules("netreach-runner.role.yaml")?;
    let rt = rt();
    let api: Api<Namespace> = rt.block_on(async { client(context).await.map(Api::all) })?;
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for f in &files {
        let s = scenario::load(f)
            .scenario
            .ok_or("a shipped scenario is invalid")?;
        // A namespace given to netreach is never relabelled, created or deleted, nor are pods
        // added to or removed from it mid-run: a scenario that does so is refused (`netreach
        // run` says so before deploying) and cannot run this way.
        let all: Vec<String> = s.namespaces.iter().map(|n| n.name.clone()).collect();
        if let Some(what) = netreach::cli::run::changes_given_namespace(&s, &all) {
            skipped.push(format!("{} ({what})", s.full_name()));
            continue;
        }
        let id = new_run_id();
        let given: BTreeMap<String, String> = s
            .namespaces
            .iter()
            .filter(|n| !n.existing)
            .map(|n| (n.name.clone(), format!("g{id}-{}", n.name)))
            .collect();
        for n in s.namespaces.iter().filter(|n| !n.existing) {
            rt.block_on(create_given(&api, &given[&n.name], &n.labels))?;
        }
        let real: Vec<&str> = given.values().map(String::as_str).collect();
        let sa = service_account(context, "given-runner", rules.clone(), &real)?;
        let r = match nk::connect(
            &sa.context,
            KubeOptions {
                kubeconfig: Some(sa.kubeconfig.clone()),
                ..KubeOptions::default()
            },
        ) {
            Ok(mut c) => {
                let mut opts = RunOptions::new(Naming::PerRun { run_id: id.clone() });
                opts.given_namespaces = given.clone();
                run_scenario(&s, c.as_mut(), &opts, &mut |_| {})
            }
            Err(e) => netreach::report::ScenarioReport::not_run(&s, e.to_string()),
        };
        // What the run left inside its given namespaces: nothing (the namespaces stay).
        let left: Vec<String> = rt.block_on(async {
            let c = client(context).await?;
            let mut left = Vec::new();
            for ns in &real {
                let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
                let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
                let lp = ListParams::default();
                // Terminating counts as gone (the grace period is 2 s).
                for p in pods.list(&lp).await.map(|l| l.items).unwrap_or_default() {
                    if p.metadata.deletion_timestamp.is_none() {
                        left.push(format!("pod {ns}/{}", p.metadata.name.unwrap_or_default()));
                    }
                }
                for cm in cms.list(&lp).await.map(|l| l.items).unwrap_or_default() {
                    if let Some(n) = cm.metadata.name.filter(|n| n.starts_with("netreach-run-")) {
                        left.push(format!("configmap {ns}/{n}"));
                    }
                }
                if api.get_opt(ns).await.ok().flatten().is_none() {
                    left.push(format!("the given namespace {ns} itself is gone"));
                }
            }
            Ok::<_, Failed>(left)
        })?;
        rt.block_on(delete_ns(
            &api,
            &given.values().cloned().collect::<Vec<_>>(),
        ));
        let one = std::slice::from_ref(&r);
        let (code, lines) = match &known {
            Some(k) => known::exit_code_with(one, k),
            None => (netreach::report::exit_code(one), Vec::new()),
        };
        if code != 0 {
            failures.push(format!(
                "{}: exit {code}\n{}\n{}",
                s.full_name(),
                text::render_scenario(&r),
                lines.join("\n")
            ));
        }
        if !left.is_empty() {
            failures.push(format!("{}: left {left:?}", s.full_name()));
        }
    }
    // Exactly these change a namespace they would be given: policy-update-delete relabels
    // one, pods-come-and-go adds and removes pods and a namespace.
    let names: Vec<&str> = skipped
        .iter()
        .map(|s| s.split(' ').next().unwrap_or_default())
        .collect();
    check(
        names
            == [
                "scenarios/pods-come-and-go",
                "scenarios/policy-update-delete",
            ],
        format!(
            "only pods-come-and-go and policy-update-delete change a given namespace; skipped {skipped:?}"
        ),
    )?;
    check(failures.is_empty(), failures.join("\n\n"))
}

/// A real endpoint outside the cluster that netreach did not start — here a container the test
/// starts itself on kind's Docker network, as a payment provider would be reachable from
/// staging — named by its fixed `address:`. The run probes it where it is (allowed, then blocked
/// by an egress policy, then allowed by an ipBlock of exactly that address) and never starts a
/// container of its own for it.
fn fixed_outside_endpoint_by_address(context: &str) -> Result<(), Failed> {
    let image = std::env::var("NETREACH_PROBE_IMAGE")
        .map_err(|_| "NETREACH_PROBE_IMAGE is not set (cargo xtask test sets it)")?;
    let network = std::env::var("NETREACH_DOCKER_NETWORK").unwrap_or_else(|_| "kind".into());
    let name = format!("netreach-test-fixed-{}", new_run_id());
    let docker = |args: &[&str]| -> Result<String, Failed> {
        let o = Command::new("docker")
            .args(args)
            .output()
            .map_err(|e| format!("docker: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "docker {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &network,
        &image,
        "--identity",
        "ext:payments",
        "--port",
        "8443",
    ])?;
    let result = (|| {
        let ip = docker(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
            &name,
        ])?;
        check(
            !ip.is_empty(),
            format!("container {name} has no address on {network}"),
        )?;
        let text = format!(
            r#"version: 1
name: fixed outside endpoint
namespaces: [{{name: app}}]
pods:
  - {{name: client, namespace: app, labels: {{role: client}}}}
external:
  - {{name: payments, address: "{ip}", ports: [8443/tcp]}}
probes:
  - {{from: app/client, to: "ext:payments"}}
steps:
  - name: no policies
    expect: [{{default: allow}}]
  - name: egress closed
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {{name: closed, namespace: app}}
          spec: {{podSelector: {{}}, policyTypes: [Egress]}}
    expect: [{{default: block}}]
  - name: egress to exactly that address
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {{name: payments, namespace: app}}
          spec:
            podSelector: {{matchLabels: {{role: client}}}}
            policyTypes: [Egress]
            egress: [{{to: [{{ipBlock: {{cidr: "{ip}/32"}}}}], ports: [{{port: 8443}}]}}]
    expect: [{{computed: {{}}}}]
"#
        );
        let l = scenario::load_str(
            Path::new("fixed-outside.yaml"),
            &text,
            &scenario::MemReader::default(),
        );
        let s = l.scenario.ok_or_else(|| l.diagnostics.render(false))?;
        let mut c = nk::connect(context, KubeOptions::default()).map_err(|e| e.to_string())?;
        let run_id = new_run_id();
        let r = run_scenario(
            &s,
            c.as_mut(),
            &RunOptions::new(Naming::PerRun {
                run_id: run_id.clone(),
            }),
            &mut |_| {},
        );
        let txt = text::render_scenario(&r);
        check(
            r.status == netreach::report::ScenarioStatus::Passed,
            format!("the run against the fixed address:\n{txt}"),
        )?;
        let verdicts: Vec<String> = r
            .steps
            .iter()
            .map(|st| format!("{:?}", st.results.first().map(|c| c.observed)))
            .collect();
        check(
            verdicts.len() == 3 && r.steps.iter().all(|st| st.results.len() == 1),
            format!("one cell per step: {verdicts:?}\n{txt}"),
        )?;
        let cmd = r.steps[0].results[0]
            .detail
            .command
            .clone()
            .unwrap_or_default();
        check(
            cmd.contains(&format!("{ip}:8443")),
            format!("probed at the fixed address: {cmd}"),
        )?;
        let started = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=netreach.dev/run={run_id}"),
        ])?;
        check(
            started.is_empty(),
            format!("netreach started a container for a fixed endpoint: {started}"),
        )
    })();
    let _ = docker(&["rm", "-f", &name]);
    result
}
