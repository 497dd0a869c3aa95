//! The real cluster: kube-rs against the kubeconfig context named explicitly.
//!
//! The only module that talks to Kubernetes (and the only one with an async runtime, which it
//! owns and hides behind the synchronous [`Cluster`] trait). It creates what a run needs —
//! namespaces labelled with the run id and kept alive by a heartbeat annotation, probe pods,
//! selector-less Services with their EndpointSlices (so pods keep exactly their scenario labels),
//! the external endpoint as a Docker container on kind's network — applies step changes with
//! server-side apply, probes through batched exec, and deletes exactly what it created.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, AttachParams, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::runtime::Runtime;

use netreach_core::bind::{Bindings, BoundProbe};
use netreach_core::cluster::{Cluster, ClusterAction, DeployPlan, InfraError, PlannedPod};
use netreach_core::outcome::{Observation, Outcome};
use netreach_core::probe::{self, Command, ProbeTimeout};

/// Label on every namespace netreach creates: the run id.
pub const RUN_LABEL: &str = "netreach.dev/run";
/// Annotation: unix seconds of the run's last sign of life.
pub const HEARTBEAT_ANNOTATION: &str = "netreach.dev/heartbeat";
/// Annotation: the scenario the namespace belongs to.
pub const SCENARIO_ANNOTATION: &str = "netreach.dev/scenario";
/// Field manager for server-side apply.
const MANAGER: &str = "netreach";
/// Where the probe server writes its ready file.
const READY_FILE: &str = "/tmp/netreach-ready";
/// How often the heartbeat is refreshed.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);

/// Knobs of the real cluster.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// Image of probe pods (and the external endpoint): `netreach serve` plus curl, nc, dig.
    pub probe_image: String,
    /// Per-probe timeout inside the pod.
    pub probe_timeout: ProbeTimeout,
    /// Execs in flight at once.
    pub parallelism: usize,
    /// How long pods may take to become ready.
    pub ready_timeout: Duration,
    /// Docker network of the kind cluster (for external endpoints).
    pub docker_network: String,
    /// One exec per source pod per round (true), or one exec per cell (the Kubernetes e2e
    /// suite's way; kept for benchmarks).
    pub batch: bool,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            probe_image: std::env::var("NETREACH_PROBE_IMAGE")
                .unwrap_or_else(|_| "netreach-probe:latest".into()),
            probe_timeout: ProbeTimeout::default(),
            parallelism: 16,
            ready_timeout: Duration::from_secs(180),
            docker_network: std::env::var("NETREACH_DOCKER_NETWORK")
                .unwrap_or_else(|_| "kind".into()),
            batch: true,
        }
    }
}

/// Namespaces and containers alive in this process, for cleanup on Ctrl-C.
static LIVE: Mutex<Vec<LiveRun>> = Mutex::new(Vec::new());

#[derive(Clone, Debug)]
struct LiveRun {
    context: String,
    namespaces: Vec<String>,
    containers: Vec<String>,
}

/// A session with one cluster for one scenario.
pub struct KubeCluster {
    rt: Runtime,
    client: Client,
    context: String,
    opts: KubeOptions,
    created_namespaces: Vec<String>,
    containers: Vec<String>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    live_id: Option<usize>,
    execs: usize,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

fn unreachable(context: &str, e: impl std::fmt::Display) -> InfraError {
    InfraError::Unreachable {
        context: context.to_owned(),
        reason: e.to_string(),
    }
}

/// Builds a client for `context` from the kubeconfig (`KUBECONFIG` or `~/.kube/config`).
async fn client_for(context: &str) -> Result<Client, InfraError> {
    let kubeconfig = Kubeconfig::read()
        .map_err(|e| unreachable(context, format!("cannot read kubeconfig: {e}")))?;
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        let names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        return Err(unreachable(
            context,
            format!(
                "no such context in the kubeconfig (contexts: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let opts = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &opts)
        .await
        .map_err(|e| unreachable(context, e))?;
    Client::try_from(config).map_err(|e| unreachable(context, e))
}

impl KubeCluster {
    /// Connects to `context` and checks that the API server answers.
    ///
    /// # Errors
    /// When the context does not exist or the API server does not answer.
    pub fn connect(context: &str, opts: KubeOptions) -> Result<Self, InfraError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| unreachable(context, format!("cannot start the async runtime: {e}")))?;
        let client = rt.block_on(async {
            let client = client_for(context).await?;
            tokio::time::timeout(Duration::from_secs(15), client.apiserver_version())
                .await
                .map_err(|_| unreachable(context, "the API server did not answer within 15 s"))?
                .map_err(|e| unreachable(context, e))?;
            Ok::<_, InfraError>(client)
        })?;
        Ok(KubeCluster {
            rt,
            client,
            context: context.to_owned(),
            opts,
            created_namespaces: Vec::new(),
            containers: Vec::new(),
            heartbeat: None,
            live_id: None,
            execs: 0,
        })
    }

    /// Execs run so far.
    pub fn execs(&self) -> usize {
        self.execs
    }

    /// The options, to change batching and parallelism between rounds (benchmarks).
    pub fn options_mut(&mut self) -> &mut KubeOptions {
        &mut self.opts
    }

    fn register_live(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            let run = LiveRun {
                context: self.context.clone(),
                namespaces: self.created_namespaces.clone(),
                containers: self.containers.clone(),
            };
            match self.live_id {
                Some(i) if i < live.len() => live[i] = run,
                _ => {
                    live.push(run);
                    self.live_id = Some(live.len() - 1);
                }
            }
        }
    }

    fn unregister_live(&mut self) {
        if let (Ok(mut live), Some(i)) = (LIVE.lock(), self.live_id)
            && let Some(r) = live.get_mut(i)
        {
            r.namespaces.clear();
            r.containers.clear();
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn pod_manifest(p: &PlannedPod, image: &str) -> Value {
    let mut args = vec!["--identity".to_owned(), p.id.to_string()];
    for sp in &p.ports {
        if sp.port.protocol != netreach_core::model::Protocol::Sctp {
            args.push("--port".into());
            args.push(sp.port.to_string());
        }
    }
    args.push("--ready-file".into());
    args.push(READY_FILE.into());
    let ports: Vec<Value> = p
        .ports
        .iter()
        .map(|sp| {
            let mut v =
                json!({"containerPort": sp.port.port, "protocol": sp.port.protocol.k8s_name()});
            if let Some(n) = &sp.name {
                v["name"] = json!(n);
            }
            v
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": p.id.name, "namespace": p.namespace, "labels": p.labels},
        "spec": {
            "containers": [{
                "name": "probe",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "args": args,
                "ports": ports,
                "readinessProbe": {"exec": {"command": ["test", "-f", READY_FILE]}, "periodSeconds": 1, "failureThreshold": 1},
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "runAsNonRoot": true,
                    "runAsUser": 65534,
                    "runAsGroup": 65534,
                    "capabilities": {"drop": ["ALL"]}
                }
            }],
            // Lets the non-root server bind ports below 1024 (a safe sysctl).
            "securityContext": {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
            "terminationGracePeriodSeconds": 2,
            "enableServiceLinks": false,
            "automountServiceAccountToken": false
        }
    })
}

fn service_port_name(sp: &netreach_core::model::ServedPort) -> String {
    format!("p{}-{}", sp.port.port, sp.port.protocol)
}

/// Why a pod is not running, if the reason is final (no point waiting).
fn fatal_reason(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_default();
            let fatal = matches!(
                reason.as_str(),
                "ErrImagePull"
                    | "ImagePullBackOff"
                    | "ErrImageNeverPull"
                    | "InvalidImageName"
                    | "CreateContainerConfigError"
                    | "CreateContainerError"
            ) || (reason == "CrashLoopBackOff" && cs.restart_count >= 2);
            if fatal {
                return Some(format!(
                    "{reason}: {}",
                    w.message.clone().unwrap_or_default()
                ));
            }
        }
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref())
            && cs.restart_count >= 2
        {
            {
                return Some(format!(
                    "container exits ({}, exit {})",
                    t.reason.clone().unwrap_or_default(),
                    t.exit_code
                ));
            }
        }
    }
    None
}

fn why_not_ready(pod: &Pod) -> String {
    let Some(status) = pod.status.as_ref() else {
        return "no status yet".into();
    };
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.status == "False" {
            return format!(
                "not scheduled: {} {}",
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default()
            );
        }
    }
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            return format!(
                "waiting: {} {}",
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default()
            );
        }
        if !cs.ready {
            return "running but not ready (the probe server has not reported listening)".into();
        }
    }
    status
        .phase
        .clone()
        .unwrap_or_else(|| "unknown phase".into())
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl KubeCluster {
    async fn create_namespaces(&mut self, plan: &DeployPlan) -> Result<(), InfraError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        for ns in &plan.namespaces {
            if api
                .get_opt(&ns.real)
                .await
                .map_err(|e| unreachable(&self.context, e))?
                .is_some()
            {
                return Err(InfraError::Deploy {
                    what: format!("namespace {}", ns.real),
                    reason: "it already exists; netreach never adopts or deletes a namespace it did not create \
                             (verbatim names need namespaces that do not exist yet)"
                        .into(),
                });
            }
            let mut labels = ns.labels.clone();
            labels.insert(
                RUN_LABEL.into(),
                if plan.run_id.is_empty() {
                    "verbatim".into()
                } else {
                    plan.run_id.clone()
                },
            );
            let obj: Namespace = serde_json::from_value(json!({
                "metadata": {
                    "name": ns.real,
                    "labels": labels,
                    "annotations": {HEARTBEAT_ANNOTATION: now_secs().to_string(), SCENARIO_ANNOTATION: plan.scenario},
                }
            }))
            .map_err(|e| InfraError::Deploy { what: format!("namespace {}", ns.real), reason: e.to_string() })?;
            api.create(&PostParams::default(), &obj)
                .await
                .map_err(|e| InfraError::Deploy {
                    what: format!("namespace {}", ns.real),
                    reason: e.to_string(),
                })?;
            self.created_namespaces.push(ns.real.clone());
            self.register_live();
        }
        Ok(())
    }

    async fn create_pods(&self, plan: &DeployPlan) -> Result<(), InfraError> {
        for p in &plan.pods {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &p.namespace);
            let obj: Pod = serde_json::from_value(pod_manifest(p, &self.opts.probe_image))
                .map_err(|e| InfraError::Deploy {
                    what: format!("pod {}/{}", p.namespace, p.id.name),
                    reason: e.to_string(),
                })?;
            api.create(&PostParams::default(), &obj)
                .await
                .map_err(|e| InfraError::Deploy {
                    what: format!("pod {}/{}", p.namespace, p.id.name),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    async fn wait_ready(
        &self,
        plan: &DeployPlan,
    ) -> Result<BTreeMap<netreach_core::model::PodId, IpAddr>, InfraError> {
        let deadline = Instant::now() + self.opts.ready_timeout;
        loop {
            let mut ips = BTreeMap::new();
            let mut waiting = Vec::new();
            for p in &plan.pods {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &p.namespace);
                let pod = api
                    .get(&p.id.name)
                    .await
                    .map_err(|e| unreachable(&self.context, e))?;
                if let Some(reason) = fatal_reason(&pod) {
                    return Err(InfraError::Deploy {
                        what: format!("pod {}/{}", p.namespace, p.id.name),
                        reason,
                    });
                }
                let ip = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.as_ref())
                    .and_then(|ip| ip.parse::<IpAddr>().ok());
                match ip {
                    Some(ip) if is_ready(&pod) => {
                        ips.insert(p.id.clone(), ip);
                    }
                    _ => waiting.push((p, pod)),
                }
            }
            if waiting.is_empty() {
                return Ok(ips);
            }
            if Instant::now() >= deadline {
                let (p, pod) = &waiting[0];
                return Err(InfraError::Deploy {
                    what: format!("pod {}/{}", p.namespace, p.id.name),
                    reason: format!(
                        "not ready after {} s ({} pod(s) not ready): {}",
                        self.opts.ready_timeout.as_secs(),
                        waiting.len(),
                        why_not_ready(pod)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn create_services(
        &self,
        plan: &DeployPlan,
        ips: &BTreeMap<netreach_core::model::PodId, IpAddr>,
    ) -> Result<BTreeMap<netreach_core::model::PodId, IpAddr>, InfraError> {
        let mut out = BTreeMap::new();
        for p in plan.pods.iter().filter(|p| p.service) {
            let what = || format!("service {}/{}", p.namespace, p.id.name);
            let ports: Vec<Value> = p
                .ports
                .iter()
                .map(|sp| json!({"name": service_port_name(sp), "port": sp.port.port, "targetPort": sp.port.port, "protocol": sp.port.protocol.k8s_name()}))
                .collect();
            let svc: Service = serde_json::from_value(json!({
                "metadata": {"name": p.id.name, "namespace": p.namespace},
                "spec": {"type": "ClusterIP", "ports": ports}
            }))
            .map_err(|e| InfraError::Deploy {
                what: what(),
                reason: e.to_string(),
            })?;
            let api: Api<Service> = Api::namespaced(self.client.clone(), &p.namespace);
            let created = api
                .create(&PostParams::default(), &svc)
                .await
                .map_err(|e| InfraError::Deploy {
                    what: what(),
                    reason: e.to_string(),
                })?;
            let ip = ips.get(&p.id).copied().ok_or_else(|| InfraError::Deploy {
                what: what(),
                reason: "pod has no IP".into(),
            })?;
            let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            let slice_ports: Vec<Value> = p
                .ports
                .iter()
                .map(|sp| json!({"name": service_port_name(sp), "port": sp.port.port, "protocol": sp.port.protocol.k8s_name()}))
                .collect();
            let slice: EndpointSlice = serde_json::from_value(json!({
                "metadata": {
                    "name": format!("{}-netreach", p.id.name),
                    "namespace": p.namespace,
                    "labels": {"kubernetes.io/service-name": p.id.name, "endpointslice.kubernetes.io/managed-by": "netreach.dev"}
                },
                "addressType": family,
                "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
                "ports": slice_ports
            }))
            .map_err(|e| InfraError::Deploy { what: what(), reason: e.to_string() })?;
            let eps: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &p.namespace);
            eps.create(&PostParams::default(), &slice)
                .await
                .map_err(|e| InfraError::Deploy {
                    what: what(),
                    reason: e.to_string(),
                })?;
            let cluster_ip = created
                .spec
                .and_then(|s| s.cluster_ip)
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .ok_or_else(|| InfraError::Deploy {
                    what: what(),
                    reason: "no ClusterIP was assigned".into(),
                })?;
            out.insert(p.id.clone(), cluster_ip);
        }
        Ok(out)
    }

    fn start_heartbeat(&mut self) {
        let client = self.client.clone();
        let names = self.created_namespaces.clone();
        self.heartbeat = Some(self.rt.spawn(async move {
            let api: Api<Namespace> = Api::all(client);
            loop {
                tokio::time::sleep(HEARTBEAT_EVERY).await;
                let patch = json!({"metadata": {"annotations": {HEARTBEAT_ANNOTATION: now_secs().to_string()}}});
                for n in &names {
                    let _ = api.patch(n, &PatchParams::default(), &Patch::Merge(&patch)).await;
                }
            }
        }));
    }

    fn start_externals(
        &mut self,
        plan: &DeployPlan,
    ) -> Result<BTreeMap<String, IpAddr>, InfraError> {
        let mut out = BTreeMap::new();
        for e in &plan.externals {
            let name = format!(
                "netreach-ext-{}-{}",
                if plan.run_id.is_empty() {
                    "verbatim"
                } else {
                    &plan.run_id
                },
                e.name
            );
            let mut args: Vec<String> = vec![
                "run".into(),
                "--detach".into(),
                "--rm".into(),
                "--name".into(),
                name.clone(),
                "--network".into(),
                self.opts.docker_network.clone(),
                "--label".into(),
                format!("{RUN_LABEL}={}", plan.run_id),
                // What `cargo xtask cluster down` removes as ours.
                "--label".into(),
                "app.kubernetes.io/managed-by=netreach".into(),
                self.opts.probe_image.clone(),
                "--identity".into(),
                format!("ext:{}", e.name),
            ];
            for p in &e.ports {
                args.push("--port".into());
                args.push(p.port.to_string());
            }
            let what = format!("external endpoint {} (docker container {name})", e.name);
            let run = std::process::Command::new("docker")
                .args(&args)
                .output()
                .map_err(|err| InfraError::Deploy {
                    what: what.clone(),
                    reason: format!("cannot run docker: {err}"),
                })?;
            if !run.status.success() {
                return Err(InfraError::Deploy {
                    what,
                    reason: String::from_utf8_lossy(&run.stderr).trim().to_owned(),
                });
            }
            self.containers.push(name.clone());
            self.register_live();
            let inspect = std::process::Command::new("docker")
                .args([
                    "inspect",
                    "--format",
                    &format!(
                        "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
                        self.opts.docker_network
                    ),
                    &name,
                ])
                .output()
                .map_err(|err| InfraError::Deploy {
                    what: what.clone(),
                    reason: err.to_string(),
                })?;
            let ip = String::from_utf8_lossy(&inspect.stdout)
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| InfraError::Deploy {
                    what,
                    reason: format!(
                        "no address on docker network `{}`",
                        self.opts.docker_network
                    ),
                })?;
            out.insert(e.name.clone(), ip);
        }
        Ok(out)
    }

    async fn apply_one(&self, a: &ClusterAction) -> Result<(), InfraError> {
        let err = |what: String, e: kube::Error| InfraError::Apply {
            what,
            reason: e.to_string(),
        };
        match a {
            ClusterAction::ApplyPolicy { policy, manifest } => {
                let ns = manifest["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default();
                let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
                let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
                api.patch(
                    name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(manifest),
                )
                .await
                .map_err(|e| err(format!("policy {policy}"), e))?;
            }
            ClusterAction::DeletePolicy { namespace, name } => {
                let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), namespace);
                api.delete(name, &DeleteParams::default())
                    .await
                    .map_err(|e| err(format!("delete policy {namespace}/{name}"), e))?;
            }
            ClusterAction::LabelPod {
                namespace,
                pod,
                labels,
            } => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let patch = json!({"metadata": {"labels": labels}});
                api.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| err(format!("labels of pod {namespace}/{pod}"), e))?;
            }
            ClusterAction::LabelNamespace { namespace, labels } => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                let patch = json!({"metadata": {"labels": labels}});
                api.patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| err(format!("labels of namespace {namespace}"), e))?;
            }
        }
        Ok(())
    }
}

/// One probe of a batch: (index, action, argv).
type BatchItem<'a> = (usize, &'a netreach_core::bind::ProbeAction, Vec<String>);

/// One exec: (real namespace, pod name, cell index in per-cell mode or 0).
type SourcePod = (String, String, usize);

/// Runs `script` in a pod and returns its stdout.
async fn exec_script(
    client: Client,
    namespace: String,
    pod: String,
    script: String,
    limit: Duration,
) -> Result<String, String> {
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let params = AttachParams::default()
        .container("probe")
        .stdin(false)
        .stdout(true)
        .stderr(false);
    let run = async {
        let mut proc = api
            .exec(&pod, ["bash", "-c", script.as_str()], &params)
            .await
            .map_err(|e| format!("exec failed: {e}"))?;
        let mut out = String::new();
        if let Some(mut stdout) = proc.stdout() {
            stdout
                .read_to_string(&mut out)
                .await
                .map_err(|e| format!("exec output lost: {e}"))?;
        }
        let status = match proc.take_status() {
            Some(s) => s.await,
            None => None,
        };
        let _ = proc.join().await;
        if let Some(s) = status
            && s.status.as_deref() == Some("Failure")
            && out.is_empty()
        {
            return Err(format!("exec failed: {}", s.message.unwrap_or_default()));
        }
        Ok(out)
    };
    tokio::time::timeout(limit, run)
        .await
        .map_err(|_| format!("exec did not finish within {} s", limit.as_secs()))?
}

impl Cluster for KubeCluster {
    fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError> {
        let rt = self.rt.handle().clone();
        let result = rt.block_on(async {
            self.create_namespaces(plan).await?;
            self.create_pods(plan).await?;
            let pod_ips = self.wait_ready(plan).await?;
            let service_ips = self.create_services(plan, &pod_ips).await?;
            Ok::<_, InfraError>((pod_ips, service_ips))
        });
        let (pod_ips, service_ips) = result?;
        self.start_heartbeat();
        let external_ips = self.start_externals(plan)?;
        Ok(Bindings {
            namespaces: plan.names.clone(),
            pod_ips,
            service_ips,
            external_ips,
            cluster_domain: "cluster.local".into(),
        })
    }

    fn apply(&mut self, actions: &[ClusterAction]) -> Result<(), InfraError> {
        self.rt.block_on(async {
            for a in actions {
                self.apply_one(a).await?;
            }
            Ok(())
        })
    }

    fn probe(&mut self, probes: &[BoundProbe]) -> Result<Vec<Observation>, InfraError> {
        let mut obs = self.probe_once(probes);
        // An exec that ended without a probe's result line, or failed as a transport, lost the
        // answer, not the connection: try those probes once more before calling them errors.
        let lost: Vec<usize> = obs
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(&o.outcome, Outcome::Error(r) if r.starts_with("no result") || r.starts_with("exec")))
            .map(|(i, _)| i)
            .collect();
        if !lost.is_empty() {
            let again: Vec<BoundProbe> = lost.iter().map(|&i| probes[i].clone()).collect();
            for (&i, o) in lost.iter().zip(self.probe_once(&again)) {
                obs[i] = o;
            }
        }
        Ok(obs)
    }

    fn teardown(&mut self) -> Result<(), InfraError> {
        self.teardown_all()
    }
}

impl KubeCluster {
    /// One exec per source pod (or per cell), all results parsed; never fails as a whole.
    fn probe_once(&mut self, probes: &[BoundProbe]) -> Vec<Observation> {
        let t = self.opts.probe_timeout;
        let commands: Vec<Command> = probes
            .iter()
            .map(|p| probe::command(&p.action, t))
            .collect();
        // One exec per source pod (or per cell when not batching).
        let key = |i: usize, p: &BoundProbe| {
            (
                p.namespace.clone(),
                p.pod.clone(),
                if self.opts.batch { 0 } else { i },
            )
        };
        let mut groups: BTreeMap<SourcePod, Vec<BatchItem<'_>>> = BTreeMap::new();
        for (i, (p, c)) in probes.iter().zip(&commands).enumerate() {
            if let Command::Run(argv) = c {
                groups
                    .entry(key(i, p))
                    .or_default()
                    .push((i, &p.action, argv.clone()));
            }
        }
        self.execs += groups.len();
        let limit = Duration::from_secs(u64::from(t.0) * 2 + 20);
        let client = self.client.clone();
        let parallelism = self.opts.parallelism.max(1);
        let batches: BTreeMap<SourcePod, probe::Batch> = groups
            .iter()
            .map(|(k, items)| (k.clone(), probe::build_batch(items, t)))
            .collect();
        let outputs: Vec<(SourcePod, Result<String, String>)> = self.rt.block_on(
            futures::stream::iter(batches.iter().map(|(key, batch)| {
                let client = client.clone();
                let script = batch.script.clone();
                let key = key.clone();
                async move {
                    let r = exec_script(client, key.0.clone(), key.1.clone(), script, limit).await;
                    (key, r)
                }
            }))
            .buffer_unordered(parallelism)
            .collect(),
        );
        let mut results = Vec::new();
        let mut failed: BTreeMap<SourcePod, String> = BTreeMap::new();
        for (key, r) in outputs {
            match r {
                Ok(out) => results.extend(batches[&key].parse(&out)),
                Err(e) => {
                    failed.insert(key, e);
                }
            }
        }
        let mut obs = probe::observations(probes, &commands, &results, Some(&self.context), t);
        for (i, (o, p)) in obs.iter_mut().zip(probes).enumerate() {
            if let Some(e) = failed.get(&key(i, p))
                && matches!(o.outcome, Outcome::Error(_))
            {
                o.outcome = Outcome::Error(e.clone());
            }
        }
        obs
    }
}

impl KubeCluster {
    fn teardown_all(&mut self) -> Result<(), InfraError> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let mut errors = Vec::new();
        for c in std::mem::take(&mut self.containers) {
            if let Err(e) = remove_container(&c) {
                errors.push(e);
            }
        }
        let names = std::mem::take(&mut self.created_namespaces);
        let client = self.client.clone();
        if let Err(e) = self.rt.block_on(delete_namespaces(client, &names)) {
            errors.push(e);
        }
        self.unregister_live();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(InfraError::Teardown(errors.join("; ")))
        }
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

fn remove_container(name: &str) -> Result<(), String> {
    let out = std::process::Command::new("docker")
        .args(["rm", "--force", name])
        .output()
        .map_err(|e| format!("cannot run docker to remove {name}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || stderr.contains("No such container") {
        Ok(())
    } else {
        Err(format!("cannot remove container {name}: {}", stderr.trim()))
    }
}

/// Deletes namespaces and waits until each is gone or terminating.
async fn delete_namespaces(client: Client, names: &[String]) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client);
    let mut errors = Vec::new();
    for n in names {
        match api.delete(n, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => errors.push(format!("namespace {n}: {e}")),
        }
    }
    // Terminating counts as gone.
    for n in names {
        match api.get_opt(n).await {
            Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_none() => {
                errors.push(format!("namespace {n} is still there"))
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("namespace {n}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Deletes everything the runs of this process still have (for Ctrl-C). Blocks.
pub fn cleanup_live() -> Vec<String> {
    let runs: Vec<LiveRun> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    let mut done = Vec::new();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return done;
    };
    for run in runs {
        for c in &run.containers {
            if remove_container(c).is_ok() {
                done.push(format!("container {c}"));
            }
        }
        if run.namespaces.is_empty() {
            continue;
        }
        let r = rt.block_on(async {
            let client = client_for(&run.context).await.map_err(|e| e.to_string())?;
            delete_namespaces(client, &run.namespaces).await
        });
        match r {
            Ok(()) => done.extend(run.namespaces.iter().map(|n| format!("namespace {n}"))),
            Err(e) => eprintln!("netreach: cleanup after interrupt failed: {e}"),
        }
    }
    done
}

/// A single-threaded runtime for one blocking call.
fn small_runtime(context: &str) -> Result<Runtime, InfraError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unreachable(context, e))
}

/// Removes netreach namespaces whose run is no longer alive: labelled with [`RUN_LABEL`] and
/// with a heartbeat older than `stale`. Returns the names deleted. Never touches a namespace
/// without netreach's label and heartbeat, nor one whose heartbeat is fresh.
///
/// # Errors
/// When the cluster cannot be reached.
pub fn gc(context: &str, stale: Duration, dry_run: bool) -> Result<Vec<String>, InfraError> {
    let rt = small_runtime(context)?;
    rt.block_on(async {
        let client = client_for(context).await?;
        let api: Api<Namespace> = Api::all(client.clone());
        let list = api
            .list(&ListParams::default().labels(RUN_LABEL))
            .await
            .map_err(|e| unreachable(context, e))?;
        let now = now_secs();
        let mut stale_names = Vec::new();
        for ns in list {
            let Some(name) = ns.metadata.name.clone() else {
                continue;
            };
            if ns.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let beat = ns
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(HEARTBEAT_ANNOTATION))
                .and_then(|b| b.parse::<u64>().ok());
            match beat {
                Some(b) if now.saturating_sub(b) > stale.as_secs() => stale_names.push(name),
                _ => {}
            }
        }
        if !dry_run {
            delete_namespaces(client, &stale_names)
                .await
                .map_err(InfraError::Teardown)?;
        }
        Ok(stale_names)
    })
}

/// Lists the names of namespaces carrying [`RUN_LABEL`] (for tests and `gc --dry-run`).
///
/// # Errors
/// When the cluster cannot be reached.
pub fn list_run_namespaces(context: &str) -> Result<BTreeSet<String>, InfraError> {
    let rt = small_runtime(context)?;
    rt.block_on(async {
        let client = client_for(context).await?;
        let api: Api<Namespace> = Api::all(client);
        let list = api
            .list(&ListParams::default().labels(RUN_LABEL))
            .await
            .map_err(|e| unreachable(context, e))?;
        Ok(list
            .into_iter()
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .filter_map(|n| n.metadata.name)
            .collect())
    })
}

/// Opens a session against the cluster of `context` (a kubeconfig context named explicitly;
/// `KUBECONFIG` says which kubeconfig).
///
/// # Errors
/// When the context does not exist or its API server does not answer.
pub fn connect(context: &str, opts: KubeOptions) -> Result<Box<dyn Cluster>, InfraError> {
    Ok(Box::new(KubeCluster::connect(context, opts)?))
}
