//! Cluster tests of real workloads (`workload:` in an `existing` namespace), grouped
//! `workloads`: three ordinary Deployments with a Service each and one NetworkPolicy, created
//! as a user's kubectl would in a namespace netreach did not create (PodSecurity
//! `restricted`); `netreach run` as a ServiceAccount bound to exactly the shipped ClusterRole
//! probes between them (from shadow pods, to the real pods' IPs), and afterwards nothing of
//! theirs has changed and nothing of netreach's is left.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams};
use libtest_mimic::Failed;
use serde_json::{Value, json};

use super::audit::{create, policy, service, workload};
use super::support::{
    check, client, remove_cluster_binding, rt, scratch, service_account, shipped_rules,
};

pub type Body = fn(&str) -> Result<(), Failed>;

/// The tests of this group.
pub const TESTS: [(&str, Body); 2] = [
    (
        "real-deployments-are-probed-and-left-untouched",
        real_deployments_are_probed_and_left_untouched,
    ),
    (
        "candidate-policies-are-judged-and-restored-exactly",
        super::candidates::candidate_policies_are_judged_and_restored_exactly,
    ),
];

const SA: &str = "workloads-runner";

/// Deletes the test's namespace and binding, also when it fails.
pub(super) struct Cleanup<'a> {
    pub admin: &'a str,
    pub ns: String,
    pub sa: &'static str,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = rt().block_on(async {
            let c = client(self.admin).await?;
            let nss: Api<Namespace> = Api::all(c);
            let _ = nss.delete(&self.ns, &DeleteParams::default()).await;
            Ok::<_, Failed>(())
        });
        remove_cluster_binding(self.admin, self.sa);
    }
}

/// `"<kind> <name>" -> describe(object)` for every object of kind `K` in `ns`.
async fn described<K>(
    c: &kube::Client,
    ns: &str,
    kind: &str,
    describe: impl Fn(&K) -> String,
) -> Result<BTreeMap<String, String>, Failed>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let list = Api::<K>::namespaced(c.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list {kind}: {e}"))?;
    Ok(list
        .items
        .iter()
        .map(|o| {
            let name = o.meta().name.clone().unwrap_or_default();
            (format!("{kind} {name}"), describe(o))
        })
        .collect())
}

/// Everything of the namespace that a run must not change, in words: Deployments and
/// ReplicaSets (generation, replicas, ready), pods (UID, restarts), Services and policies (UID,
/// resourceVersion), ConfigMaps (a run record left behind would show).
pub(super) fn state(admin: &str, ns: &str) -> Result<BTreeMap<String, String>, Failed> {
    let versioned =
        |m: &kube::api::ObjectMeta| format!("uid {:?} version {:?}", m.uid, m.resource_version);
    rt().block_on(async {
        let c = client(admin).await?;
        let mut out = described(&c, ns, "deployment", |d: &Deployment| {
            let st = d.status.clone().unwrap_or_default();
            format!(
                "generation {:?} replicas {:?} ready {:?} uid {:?}",
                d.metadata.generation, st.replicas, st.ready_replicas, d.metadata.uid
            )
        })
        .await?;
        out.extend(
            described(&c, ns, "replicaset", |r: &ReplicaSet| {
                let st = r.status.clone().unwrap_or_default();
                format!(
                    "generation {:?} replicas {} fully-labeled {:?} ready {:?}",
                    r.metadata.generation,
                    st.replicas,
                    st.fully_labeled_replicas,
                    st.ready_replicas
                )
            })
            .await?,
        );
        out.extend(
            described(&c, ns, "pod", |p: &Pod| {
                let restarts: i32 = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum());
                format!("uid {:?} restarts {restarts}", p.metadata.uid)
            })
            .await?,
        );
        out.extend(described(&c, ns, "service", |s: &Service| versioned(&s.metadata)).await?);
        out.extend(
            described(&c, ns, "networkpolicy", |n: &NetworkPolicy| {
                versioned(&n.metadata)
            })
            .await?,
        );
        out.extend(
            described(&c, ns, "configmap", |m: &ConfigMap| {
                format!("uid {:?}", m.metadata.uid)
            })
            .await?,
        );
        Ok(out)
    })
}

/// Waits until `n` pods of `ns` are Ready (a workload's pod is chosen only once it is).
pub(super) fn wait_ready(admin: &str, ns: &str, n: usize) -> Result<(), Failed> {
    rt().block_on(async {
        let c = client(admin).await?;
        let api: Api<Pod> = Api::namespaced(c, ns);
        let start = Instant::now();
        loop {
            let ready = api
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .filter(|p| netreach::kube::deploy::is_ready(p))
                .count();
            if ready >= n {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(format!("{ready} of {n} pods Ready after 120 s").into());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The scenario: the three Deployments as workloads, probed pairwise (`api_port`: the port
/// it declares for api).
fn scenario(ns: &str, api_port: u16) -> String {
    format!(
        "version: 1
name: Real workloads
namespaces:
  - {{name: {ns}, existing: true}}
pods:
  - {{name: frontend, namespace: {ns}, workload: {{app: frontend}}, ports: [80/tcp]}}
  - {{name: api, namespace: {ns}, workload: {{app: api}}, ports: [{api_port}/tcp]}}
  - {{name: db, namespace: {ns}, workload: {{app: db}}, ports: [5432/tcp]}}
probes:
  - {{from: {ns}/frontend, to: {ns}/api}}
  - {{from: {ns}/frontend, to: {ns}/db}}
  - {{from: {ns}/api, to: {ns}/db}}
steps:
  - name: as deployed
    expect:
      - default: allow
      # The live policy db-from-api admits only api.
      - block: {{from: {ns}/frontend, to: {ns}/db}}
"
    )
}

/// Runs the binary as the ServiceAccount; (exit code, stdout, stderr).
pub(super) fn run(sa: &super::support::Sa, args: &[&str]) -> Result<(i32, String, String), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["run", "--context", &sa.context])
        .args(args)
        .env("KUBECONFIG", &sa.kubeconfig)
        .output()
        .map_err(|e| format!("netreach run: {e}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A small real app as a user would deploy it: a PodSecurity `restricted` namespace
/// `<prefix>-<id>` with three ordinary Deployments (frontend:80, api:8080, db:5432), each with a
/// Service. Returns the id, the namespace and the objects (policies are the caller's to add).
pub(super) fn three_tier(prefix: &str) -> (String, String, Vec<Value>) {
    let id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ std::process::id())
    );
    let ns = format!("{prefix}-{id}");
    let mut objs: Vec<Value> = vec![json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}
    })];
    for (name, port) in [("frontend", 80), ("api", 8080), ("db", 5432)] {
        objs.push(workload(
            "Deployment",
            &ns,
            name,
            json!({"app": name, "tier": name}),
            (port, "serve"),
        ));
        objs.push(service(&ns, name, name, port, "serve"));
    }
    (id, ns, objs)
}

fn real_deployments_are_probed_and_left_untouched(admin: &str) -> Result<(), Failed> {
    let (id, ns, mut objs) = three_tier("rw");
    let _cleanup = Cleanup {
        admin,
        ns: ns.clone(),
        sa: SA,
    };
    objs.push(policy(
        &ns,
        "db-from-api",
        json!({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                            "ports": [{"port": 5432}]}]}),
    ));
    create(admin, &objs, &[&ns], 3)?;
    wait_ready(admin, &ns, 3)?;
    let before = state(admin, &ns)?;
    let sa = service_account(
        admin,
        SA,
        shipped_rules("netreach-runner.clusterrole.yaml")?,
        &[],
    )?;
    let dir = scratch(&format!("workloads-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    // A declared port that api's containers do not declare: refused before anything is made.
    let wrong = dir.join("wrong-port.yaml");
    std::fs::write(&wrong, scenario(&ns, 9090)).map_err(|e| e.to_string())?;
    let (code, out, err) = run(&sa, &[wrong.to_str().unwrap_or_default()])?;
    check(code == 4, format!("wrong port: exit {code}\n{out}\n{err}"))?;
    check(
        out.contains("declares no container port 9090/tcp"),
        format!("wrong port: the report names the port:\n{out}\n{err}"),
    )?;
    check(
        state(admin, &ns)? == before,
        "a refused run left something in the namespace",
    )?;

    let file = dir.join("real-workloads.yaml");
    std::fs::write(&file, scenario(&ns, 8080)).map_err(|e| e.to_string())?;
    let json_path = dir.join("report.json");
    let (code, out, err) = run(
        &sa,
        &[
            "--json",
            json_path.to_str().unwrap_or_default(),
            file.to_str().unwrap_or_default(),
        ],
    )?;
    check(code == 0, format!("exit {code}\n{out}\n{err}"))?;
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let results = &report["scenarios"][0]["steps"][0]["results"];
    let cells: Vec<(String, String, String)> = results
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                format!("{} -> {}", c["cell"]["from"], c["cell"]["to"]).replace('"', ""),
                c["expected"]["verdict"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    check(cells.len() == 3, format!("3 cells: {cells:?}\n{out}"))?;
    check(
        cells.iter().all(|(_, _, s)| s == "pass"),
        format!("every cell passes: {cells:?}\n{out}"),
    )?;
    // Blocked where the live policy blocks: the source is subject to exactly the policies that
    // select its workload (api's shadow is admitted to db, frontend's is not).
    check(
        cells
            .iter()
            .any(|(c, v, _)| c == &format!("{ns}/frontend -> {ns}/db") && v == "block")
            && cells
                .iter()
                .any(|(c, v, _)| c == &format!("{ns}/api -> {ns}/db") && v == "allow"),
        format!("frontend blocked from db, api allowed: {cells:?}"),
    )?;
    // The shadow pods are gone with the run record; nothing of the workloads changed.
    let start = Instant::now();
    loop {
        let after = state(admin, &ns)?;
        if after == before {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let changed: Vec<String> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}: {v}"))
                .chain(
                    before
                        .keys()
                        .filter(|k| !after.contains_key(*k))
                        .map(|k| format!("{k}: gone")),
                )
                .collect();
            return Err(format!(
                "30 s after the run the namespace differs from before:\n{}",
                changed.join("\n")
            )
            .into());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}
