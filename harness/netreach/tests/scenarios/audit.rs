//! Cluster tests of `netreach audit`, grouped `audit`: ordinary Deployments, a StatefulSet,
//! Services and the four classic policy mistakes, created with the admin context as a user's
//! kubectl would; the binary audits them as a ServiceAccount bound to exactly the shipped
//! `netreach-audit` ClusterRole, then audits the same objects written to a folder (`-f`), and
//! both must say the same; then snapshots the live namespaces (the same read-only account),
//! replays the snapshot with `netreach run` in fresh namespaces, and what the enforcer let
//! through must be what the audit said.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use libtest_mimic::Failed;
use serde_json::{Value, json};

use super::support::{
    check, client, remove_cluster_binding, rt, scratch, service_account, shipped_rules,
};

pub type Body = fn(&str) -> Result<(), Failed>;

/// The tests of this group.
pub const TESTS: [(&str, Body); 2] = [
    (
        "live-cluster-and-its-manifests-agree",
        live_cluster_and_its_manifests_agree,
    ),
    (
        "a-missing-list-permission-is-forbidden-naming-it",
        a_missing_list_permission_is_forbidden_naming_it,
    ),
];

/// The three namespaces of one test: web, data, ingress.
struct Names {
    web: String,
    data: String,
    ingress: String,
}

impl Names {
    fn new() -> Names {
        let id = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() ^ std::process::id())
        );
        Names {
            web: format!("audit-{id}-web"),
            data: format!("audit-{id}-data"),
            ingress: format!("audit-{id}-ingress"),
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.web, &self.data, &self.ingress]
    }
}

/// Deletes what the test created, also when it fails.
struct Cleanup<'a> {
    admin: &'a str,
    names: &'a Names,
    sa: &'static str,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = rt().block_on(async {
            let c = client(self.admin).await?;
            let nss: Api<Namespace> = Api::all(c);
            for n in self.names.all() {
                let _ = nss.delete(n, &DeleteParams::default()).await;
            }
            Ok::<_, Failed>(())
        });
        remove_cluster_binding(self.admin, self.sa);
    }
}

pub(super) fn image() -> String {
    std::env::var("NETREACH_PROBE_IMAGE").unwrap_or_else(|_| "netreach-probe:latest".into())
}

/// A workload running the probe image's `netreach serve` on `port` (named `port_name`).
pub(super) fn workload(
    kind: &str,
    ns: &str,
    name: &str,
    labels: Value,
    port: (u16, &str),
) -> Value {
    let mut spec = json!({
        "replicas": 1,
        "selector": {"matchLabels": {"app": labels["app"]}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "automountServiceAccountToken": false,
                "containers": [{
                    "name": "main",
                    "image": image(),
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["--identity", format!("{ns}/{name}"), "--port", format!("{}/tcp", port.0)],
                    "ports": [{"name": port.1, "containerPort": port.0}],
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
                }]
            }
        }
    });
    if kind == "StatefulSet" {
        spec["serviceName"] = json!(name);
    }
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

pub(super) fn service(ns: &str, name: &str, app: &str, port: u16, target: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": app}, "ports": [{"port": port, "targetPort": target}]}})
}

pub(super) fn policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn dns(protocols: &[&str]) -> Value {
    json!({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": protocols.iter().map(|p| json!({"port": 53, "protocol": p})).collect::<Vec<_>>()})
}

/// fixtures/audit, in the test's namespaces.
fn objects(n: &Names) -> Vec<Value> {
    let (web, data, ing) = (&n.web, &n.data, &n.ingress);
    let mut v: Vec<Value> = n
        .all()
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": "shop"}}}))
        .collect();
    v.extend([
        workload("Deployment", web, "frontend", json!({"app": "frontend", "tier": "web"}), (8080, "http")),
        workload("Deployment", web, "api", json!({"app": "api", "tier": "backend"}), (9090, "api")),
        workload("StatefulSet", data, "database", json!({"app": "database"}), (5432, "postgres")),
        workload("Deployment", ing, "ingress-nginx-controller", json!({"app": "ingress-nginx"}), (8000, "http")),
        service(web, "frontend", "frontend", 80, "http"),
        service(web, "api", "api", 9090, "api"),
        service(data, "database", "database", 5432, "postgres"),
        policy(data, "default-deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]})),
        policy(data, "db-from-api", json!({"podSelector": {"matchLabels": {"app": "database"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": web}},
                                   "podSelector": {"matchLabels": {"app": "api"}}}],
                         "ports": [{"port": 5432, "protocol": "TCP"}]}]})),
        // Mistake 1.
        policy(web, "audit", json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []})),
        // Mistake 2.
        policy(web, "frontend-from-ingress", json!({"podSelector": {"matchLabels": {"app": "frontend"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"name": ing}}}], "ports": [{"port": "http"}]}]})),
        policy(web, "frontend-egress", json!({"podSelector": {"matchLabels": {"app": "frontend"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 9090, "protocol": "TCP"}]}, dns(&["UDP", "TCP"])]})),
        policy(web, "api-from-frontend", json!({"podSelector": {"matchLabels": {"app": "api"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"port": 9090, "protocol": "TCP"}]}]})),
        // Mistakes 3 and 4.
        policy(web, "api-egress", json!({"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [], "ports": [{"port": 443, "protocol": "TCP"}]},
                       {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": data}},
                                "podSelector": {"matchLabels": {"app": "database"}}}], "ports": [{"port": 5432, "protocol": "TCP"}]},
                       dns(&["UDP"])]})),
    ]);
    v
}

/// Creates `objs` with the admin context (server-side apply, as `kubectl apply` does) and waits
/// until every workload's pod has an address.
/// Applies `objs` as a user's kubectl would (server-side apply) and waits until `pods` pods in
/// `namespaces` have an address.
pub(super) fn create(
    admin: &str,
    objs: &[Value],
    namespaces: &[&str],
    pods: usize,
) -> Result<(), Failed> {
    rt().block_on(async {
        let c = client(admin).await?;
        let ssa = PatchParams::apply("netreach-tests-audit");
        for o in objs {
            let api_version = o["apiVersion"].as_str().unwrap_or_default();
            let kind = o["kind"].as_str().unwrap_or_default();
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
            let (ar, caps) = kube::discovery::pinned_kind(&c, &gvk)
                .await
                .map_err(|e| format!("{kind}: {e}"))?;
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            let api: Api<kube::api::DynamicObject> = match o["metadata"]["namespace"].as_str() {
                Some(ns) if caps.scope == kube::discovery::Scope::Namespaced => {
                    Api::namespaced_with(c.clone(), ns, &ar)
                }
                _ => Api::all_with(c.clone(), &ar),
            };
            api.patch(name, &ssa, &Patch::Apply(o))
                .await
                .map_err(|e| format!("apply {kind} {name}: {e}"))?;
        }
        let start = Instant::now();
        loop {
            let mut ready = 0;
            for ns in namespaces {
                let api: Api<Pod> = Api::namespaced(c.clone(), ns);
                let l = api
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                ready += l
                    .items
                    .iter()
                    .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
                    .count();
            }
            if ready >= pods {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(
                    format!("only {ready} of {pods} pods have an address after 120 s").into(),
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Runs the binary; (exit code, stdout, stderr).
fn audit(kubeconfig: Option<&PathBuf>, args: &[&str]) -> Result<(i32, String, String), Failed> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netreach"));
    cmd.arg("audit").args(args);
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let out = cmd.output().map_err(|e| format!("netreach audit: {e}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// (rule, policy) of every finding.
fn findings(report: &Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["policy"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// (from, to, port, verdict) of every policy-decided reachability entry.
fn verdicts(report: &Value) -> BTreeSet<String> {
    report["reach"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["by_policy"] == true)
        .map(|r| {
            format!(
                "{} -> {} {}/{}: {}",
                r["from"].as_str().unwrap_or_default(),
                r["to"].as_str().unwrap_or_default(),
                r["port"]["port"],
                r["port"]["protocol"].as_str().unwrap_or_default(),
                r["verdict"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn live_cluster_and_its_manifests_agree(admin: &str) -> Result<(), Failed> {
    let names = Names::new();
    let _cleanup = Cleanup {
        admin,
        names: &names,
        sa: "audit",
    };
    let objs = objects(&names);
    create(admin, &objs, &names.all(), 4)?;
    let sa = service_account(
        admin,
        "audit",
        shipped_rules("netreach-audit.clusterrole.yaml")?,
        &[],
    )?;
    let mut args = vec!["--context", sa.context.as_str()];
    for n in names.all() {
        args.extend(["--namespace", n]);
    }
    let (code, text, err) = audit(Some(&sa.kubeconfig), &args)?;
    check(
        code == 1,
        format!("exit {code} (want 1: findings)\n{err}\n{text}"),
    )?;
    let (web, data, ing) = (&names.web, &names.data, &names.ingress);
    for line in [
        format!(
            "  {web}/api -> {data}/database 5432/tcp: allowed by {data}/db-from-api (ingress rule 1 at networkpolicy {data}/db-from-api); allowed by {web}/api-egress (egress rule 2 at networkpolicy {web}/api-egress) [1 -> 1 pod(s)]"
        ),
        format!(
            "  {ing}/ingress-nginx-controller -> {web}/frontend 8080/tcp: blocked: ingress isolated by {web}/audit, {web}/frontend-from-ingress and no rule admits it [1 -> 1 pod(s)]"
        ),
        format!(
            "  {web}/frontend -> {web}/api 9090/tcp: allowed by {web}/api-from-frontend (ingress rule 1 at networkpolicy {web}/api-from-frontend); allowed by {web}/frontend-egress (egress rule 1 at networkpolicy {web}/frontend-egress) [1 -> 1 pod(s)]"
        ),
        // Pods are grouped by their owner: ReplicaSet -> Deployment.
        format!(
            "  {web}/frontend (Deployment, 1 pod(s)): ports 8080/tcp (http); services {web}/frontend (ClusterIP 80->http/tcp)"
        ),
        format!(
            "  {data}/database (StatefulSet, 1 pod(s)): ports 5432/tcp (postgres); services {data}/database (ClusterIP 5432->postgres/tcp)"
        ),
    ] {
        check(text.contains(&line), format!("missing\n{line}\nin\n{text}"))?;
    }
    let (_, json_live, err) = audit(
        Some(&sa.kubeconfig),
        &[args.as_slice(), &["--json"]].concat(),
    )?;
    let live: Value = serde_json::from_str(&json_live).map_err(|e| format!("{e}: {err}"))?;
    let want: BTreeSet<(String, String)> = [
        ("isolates-without-rules", format!("{web}/audit")),
        (
            "selector-label-unset",
            format!("{web}/frontend-from-ingress"),
        ),
        ("egress-to-anywhere", format!("{web}/api-egress")),
        ("dns-blocked", format!("{web}/api-egress")),
    ]
    .into_iter()
    .map(|(r, p)| (r.to_owned(), p))
    .collect();
    // The API server drops empty rule lists (`ingress: []` is stored as no `ingress` at all), so
    // live, the "audit" policy is indistinguishable from a deliberate default deny: live audits
    // report the other three mistakes and show the isolation; the manifests report all four.
    let iwr = ("isolates-without-rules".to_owned(), format!("{web}/audit"));
    let want_live: BTreeSet<(String, String)> =
        want.iter().filter(|f| **f != iwr).cloned().collect();
    let got = findings(&live);
    check(
        want_live.is_subset(&got),
        format!("live findings {got:?} lack some of {want_live:?}"),
    )?;
    check(
        text.contains(&format!("{web}/audit")),
        format!("the live text names the isolating policy {web}/audit:\n{text}"),
    )?;
    // The same objects as files: the same findings and verdicts.
    let dir = scratch(&format!("audit-{}", names.web));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (i, o) in objs.iter().enumerate() {
        let text = serde_json::to_string_pretty(o).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(format!("{i:02}.json")), text).map_err(|e| e.to_string())?;
    }
    let dir_s = dir.display().to_string();
    let (code, json_files, err) = audit(None, &["-f", &dir_s, "--json"])?;
    let _ = std::fs::remove_dir_all(&dir);
    check(code == 1, format!("-f: exit {code}\n{err}"))?;
    let files: Value = serde_json::from_str(&json_files).map_err(|e| format!("{e}: {err}"))?;
    check(
        findings(&files) == want,
        format!("file findings {:?}, want {want:?}", findings(&files)),
    )?;
    let (a, b) = (verdicts(&live), verdicts(&files));
    check(
        a == b && a.len() >= 10,
        format!(
            "live and file verdicts differ:\nlive only: {:?}\nfiles only: {:?}",
            a.difference(&b).collect::<Vec<_>>(),
            b.difference(&a).collect::<Vec<_>>()
        ),
    )?;
    snapshot_replays_as_audited(admin, &sa, &names, &live)
}

/// `netreach snapshot` of the live namespaces (as the read-only ServiceAccount), replayed with
/// `netreach run` on the same cluster in fresh namespaces: the run passes, and over the
/// snapshot's cells what the enforcer let through is what the live audit says.
fn snapshot_replays_as_audited(
    admin: &str,
    sa: &super::support::Sa,
    names: &Names,
    live: &Value,
) -> Result<(), Failed> {
    let dir = scratch(&format!("snapshot-{}", names.web));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.display().to_string();
    let mut args = vec!["--context", sa.context.as_str(), "-o", dir_s.as_str()];
    for n in names.all() {
        args.extend(["--namespace", n]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .arg("snapshot")
        .args(&args)
        .env("KUBECONFIG", &sa.kubeconfig)
        .output()
        .map_err(|e| format!("netreach snapshot: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(0),
        format!("snapshot: exit {:?}\n{err}", out.status.code()),
    )?;
    let scenario = std::fs::read_to_string(dir.join("snapshot.yaml")).map_err(|e| e.to_string())?;
    for field in ["env:", "image:", "args:", "volumes:"] {
        check(
            !scenario
                .lines()
                .any(|l| l.trim_start().trim_start_matches("- ").starts_with(field)),
            format!("the snapshot copies `{field}`:\n{scenario}"),
        )?;
    }
    let report = dir.join("replay.json");
    let report_s = report.display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["run", "--context", admin, "--json", &report_s])
        .arg(dir.join("snapshot.yaml"))
        .output()
        .map_err(|e| format!("netreach run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(0),
        format!(
            "the replay failed: exit {:?}\n{text}\n{err}\n{scenario}",
            out.status.code()
        ),
    )?;
    let replay: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    // Probe pods are named after their workload, in the workload's (logical) namespace.
    let audited: std::collections::BTreeMap<(String, String, String), bool> = live["reach"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                (
                    r["from"].as_str().unwrap_or_default().to_owned(),
                    r["to"].as_str().unwrap_or_default().to_owned(),
                    format!(
                        "{}/{}",
                        r["port"]["port"],
                        r["port"]["protocol"].as_str().unwrap_or_default()
                    ),
                ),
                r["verdict"] == "allow",
            )
        })
        .collect();
    let mut compared = 0;
    let mut differ = Vec::new();
    for c in replay["scenarios"][0]["steps"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = (
            c["cell"]["from"].as_str().unwrap_or_default().to_owned(),
            c["cell"]["to"].as_str().unwrap_or_default().to_owned(),
            format!(
                "{}/{}",
                c["cell"]["port"]["port"],
                c["cell"]["port"]["protocol"].as_str().unwrap_or_default()
            ),
        );
        let Some(&allowed) = audited.get(&key) else {
            continue;
        };
        compared += 1;
        let observed = c["observed"].as_str().unwrap_or_default();
        if (observed == "allowed") != allowed {
            differ.push(format!(
                "{key:?}: observed {observed}, audit allowed={allowed}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    check(
        differ.is_empty(),
        format!("the replay and the audit differ: {differ:?}"),
    )?;
    check(
        compared >= 10,
        format!("only {compared} cells compared:\n{text}"),
    )?;
    Ok(())
}

fn a_missing_list_permission_is_forbidden_naming_it(admin: &str) -> Result<(), Failed> {
    let names = Names::new();
    let _cleanup = Cleanup {
        admin,
        names: &names,
        sa: "audit-no-rs",
    };
    let rules: Vec<Value> = shipped_rules("netreach-audit.clusterrole.yaml")?
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["resources"] != json!(["replicasets"]))
        .collect();
    let sa = service_account(admin, "audit-no-rs", Value::Array(rules), &[])?;
    let start = Instant::now();
    let (code, out, err) = audit(Some(&sa.kubeconfig), &["--context", &sa.context])?;
    check(code == 4, format!("exit {code} (want 4)\n{err}\n{out}"))?;
    check(
        err.contains("list") && err.contains("replicasets"),
        format!("the error names neither the verb nor the resource: {err}"),
    )?;
    // Never retried: one refusal, at once.
    check(
        start.elapsed() < Duration::from_secs(20),
        format!("took {:?}", start.elapsed()),
    )?;
    Ok(())
}
