//! What a run creates before its first step: namespaces labelled with the run id, probe pods,
//! selector-less Services with their own EndpointSlices (so pods keep exactly their scenario
//! labels), and readiness.
//!
//! Size: ~610 lines of code and 100 of unit tests: the pod spec, its Services, EndpointSlices and readiness change together; the tests check the rendered objects.
//!
//! Probe pods pass PodSecurity `restricted`: non-root with a fixed UID, no privilege escalation,
//! every capability dropped, seccomp `RuntimeDefault`, a read-only root filesystem (the ready
//! file lives on an in-memory emptyDir), resource requests and limits. Ports below 1024 are
//! served through the safe sysctl `net.ipv4.ip_unprivileged_port_start`, which `restricted`
//! allows.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use netreach_core::cluster::{DeployPlan, InfraError, PlannedPod, PodPlacement};
use netreach_core::model::{PodId, Protocol, ServedPort};

use crate::client::{Req, api_error, unreachable};
use crate::live::{Kind, LiveRun};
use crate::{
    HEARTBEAT_ANNOTATION, HOSTNAME_KEY, NODE_GROUP_LABEL, RUN_LABEL, SCENARIO_ANNOTATION, now_secs,
};

/// Where the probe server writes its ready file (an emptyDir: the root filesystem is read-only).
pub const READY_DIR: &str = "/run/netreach";
/// The ready file.
pub const READY_FILE: &str = "/run/netreach/ready";
/// The probe pods' fixed user and group (`nobody` in Debian).
pub const PROBE_UID: i64 = 65534;

/// How probe pods are scheduled and pulled (staging clusters need some of these).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSpecOptions {
    /// `imagePullSecrets` (names of Secrets in each namespace the pods run in).
    pub image_pull_secrets: Vec<String>,
    /// `nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `tolerations`, e.g. from `dedicated=netreach:NoSchedule`.
    pub tolerations: Vec<Toleration>,
}

/// One toleration, as `kubectl taint` writes a taint: `key[=value]:Effect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    /// The taint key.
    pub key: String,
    /// Its value (`None`: any value, operator `Exists`).
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule`, `NoExecute` (`None`: every effect).
    pub effect: Option<String>,
}

impl std::str::FromStr for Toleration {
    type Err = String;

    /// `key=value:Effect`, `key:Effect`, `key=value`, `key`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (kv, effect) = match s.rsplit_once(':') {
            Some((kv, e)) => (kv, Some(e)),
            None => (s, None),
        };
        if let Some(e) = effect
            && !matches!(e, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            return Err(format!(
                "toleration `{s}`: effect `{e}` is not NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(format!(
                "toleration `{s}`: write key[=value][:Effect], e.g. dedicated=netreach:NoSchedule"
            ));
        }
        Ok(Toleration {
            key: key.to_owned(),
            value,
            effect: effect.map(str::to_owned),
        })
    }
}

impl Toleration {
    fn to_json(&self) -> Value {
        let mut v = json!({"key": self.key});
        match &self.value {
            Some(val) => {
                v["operator"] = json!("Equal");
                v["value"] = json!(val);
            }
            None => v["operator"] = json!("Exists"),
        }
        if let Some(e) = &self.effect {
            v["effect"] = json!(e);
        }
        v
    }
}

/// The probe pod's manifest: `netreach serve` on the declared ports, restricted-ready, labelled
/// with its run, spread over the nodes with the run's other pods in its namespace, and placed as
/// the scenario's `node:` says (`namespaces`: the run's, where placement looks for other pods).
pub fn pod_manifest(
    p: &PlannedPod,
    run_id: &str,
    namespaces: &[String],
    image: &str,
    o: &PodSpecOptions,
) -> Value {
    let mut args = vec!["--identity".to_owned(), p.id.to_string()];
    for sp in &p.ports {
        if sp.port.protocol != Protocol::Sctp {
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
    let mut spec = json!({
        "containers": [{
            "name": "probe",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "args": args,
            "ports": ports,
            // Ready fast (checked every second), but a loaded node's slow exec is not a dead
            // server: three failed checks (5 s allowed each) before the pod counts as not ready
            // (the server's own watchdog removes the file after three failed self-checks).
            "readinessProbe": {"exec": {"command": ["test", "-f", READY_FILE]}, "periodSeconds": 1, "timeoutSeconds": 5, "failureThreshold": 3},
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"cpu": "500m", "memory": "128Mi"}
            },
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "runAsUser": PROBE_UID,
                "runAsGroup": PROBE_UID,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "volumeMounts": [{"name": "run", "mountPath": READY_DIR}]
        }],
        "volumes": [{"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
        "securityContext": {
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"},
            // Lets the non-root server bind ports below 1024 (a safe sysctl).
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
        },
        "terminationGracePeriodSeconds": 2,
        "enableServiceLinks": false,
        "automountServiceAccountToken": false
    });
    if !o.image_pull_secrets.is_empty() {
        spec["imagePullSecrets"] = o
            .image_pull_secrets
            .iter()
            .map(|n| json!({"name": n}))
            .collect();
    }
    if !o.node_selector.is_empty() {
        spec["nodeSelector"] = json!(o.node_selector);
    }
    if !o.tolerations.is_empty() {
        spec["tolerations"] = o.tolerations.iter().map(Toleration::to_json).collect();
    }
    // Soft: same-node and cross-node paths both get probed without asking, and a cluster with
    // one schedulable node still runs.
    spec["topologySpreadConstraints"] = json!([{
        "maxSkew": 1,
        "topologyKey": HOSTNAME_KEY,
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {RUN_LABEL: run_id}}
    }]);
    let mut labels = p.labels.clone();
    labels.insert(RUN_LABEL.into(), run_id.into());
    if let Some(g) = &p.placement.group {
        labels.insert(NODE_GROUP_LABEL.into(), g.clone());
    }
    let affinity = placement_affinity(&p.placement, run_id, namespaces);
    if !affinity.as_object().is_some_and(serde_json::Map::is_empty) {
        spec["affinity"] = affinity;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": p.id.name, "namespace": p.namespace, "labels": labels},
        "spec": spec
    })
}

/// A pod's `node:` in scheduling terms: node affinity by name, pod affinity to its group, anti-
/// affinity to the groups it must be apart from (all required: a placement that cannot hold
/// leaves the pod unscheduled, which the readiness wait reports with the scheduler's reason).
fn placement_affinity(pl: &PodPlacement, run_id: &str, namespaces: &[String]) -> Value {
    let term = |group: &str| {
        json!({
            "labelSelector": {"matchLabels": {RUN_LABEL: run_id, NODE_GROUP_LABEL: group}},
            "namespaces": namespaces,
            "topologyKey": HOSTNAME_KEY
        })
    };
    let mut a = json!({});
    if let Some(node) = &pl.node {
        a["nodeAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
        }});
    }
    if let (true, Some(g)) = (pl.with_group, &pl.group) {
        a["podAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(g)]});
    }
    if !pl.apart_from.is_empty() {
        a["podAntiAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution":
            pl.apart_from.iter().map(|g| term(g)).collect::<Vec<_>>()});
    }
    a
}

fn service_port_name(sp: &ServedPort) -> String {
    format!("p{}-{}", sp.port.port, sp.port.protocol)
}

/// A probe pod as deployed: what liveness checks compare against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployedPod {
    /// Real namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The pod's UID at readiness.
    pub uid: String,
    /// Sum of its containers' restart counts at readiness.
    pub restarts: i32,
    /// Its IP.
    pub ip: IpAddr,
    /// The node it runs on.
    pub node: String,
    /// A real workload's shadow pod: never Ready by design, live while its containers are.
    pub shadow: bool,
}

/// Creates the plan's namespaces, each announced to `run` before the call.
///
/// # Errors
/// When a namespace exists already (netreach never adopts one), or the API refuses.
pub async fn create_namespaces(
    client: &Client,
    context: &str,
    run: &LiveRun,
    plan: &DeployPlan,
) -> Result<(), InfraError> {
    let api: Api<Namespace> = Api::all(client.clone());
    for ns in &plan.namespaces {
        let what = format!("namespace {}", ns.real);
        if ns.given {
            check_given(&api, context, ns).await?;
            let _call = run.begin(Kind::Record, &ns.real)?;
            crate::record::create(client, context, &ns.real, &plan.run_id, &plan.scenario).await?;
            continue;
        }
        let existing = api.get_opt(&ns.real).await.map_err(|e| {
            api_error(context, Req::cluster("get", "namespaces"), &e, |r| {
                unreachable(context, r)
            })
        })?;
        if existing.is_some() {
            return Err(InfraError::Deploy {
                what,
                reason: "it already exists; netreach never adopts or deletes a namespace it did not create \
                         (verbatim names need namespaces that do not exist yet)"
                    .into(),
            });
        }
        let mut labels = ns.labels.clone();
        labels.insert(RUN_LABEL.into(), plan.run_id.clone());
        let obj: Namespace = serde_json::from_value(json!({
            "metadata": {
                "name": ns.real,
                "labels": labels,
                "annotations": {HEARTBEAT_ANNOTATION: now_secs().to_string(), SCENARIO_ANNOTATION: plan.scenario},
            }
        }))
        .map_err(|e| InfraError::Deploy {
            what: what.clone(),
            reason: e.to_string(),
        })?;
        let _call = run.begin(Kind::Namespace, &ns.real)?;
        api.create(&PostParams::default(), &obj)
            .await
            .map_err(|e| {
                api_error(context, Req::cluster("create", "namespaces"), &e, |r| {
                    InfraError::Deploy {
                        what: what.clone(),
                        reason: r,
                    }
                })
            })?;
    }
    Ok(())
}

/// A namespace given to the run must exist and already carry the labels the scenario declares
/// for it (netreach never relabels what it was given). Without permission to read namespaces
/// (a Role-only user), the labels cannot be checked: that is said, not guessed.
async fn check_given(
    api: &Api<Namespace>,
    context: &str,
    ns: &netreach_core::cluster::PlannedNamespace,
) -> Result<(), InfraError> {
    let what = format!("namespace {} (given for `{}`)", ns.real, ns.logical);
    match api.get_opt(&ns.real).await {
        Ok(Some(found)) => {
            let have = found.metadata.labels.unwrap_or_default();
            let wrong: Vec<String> = ns
                .labels
                .iter()
                .filter(|(k, v)| have.get(*k) != Some(*v))
                .map(|(k, v)| {
                    format!(
                        "{k}={v} (it has {})",
                        have.get(k).map_or("no such label".to_owned(), |h| format!("{k}={h}"))
                    )
                })
                .collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(InfraError::Deploy {
                    what,
                    reason: format!(
                        "the scenario declares labels it does not carry: {}; netreach never relabels a                          namespace it was given: label it, or change the scenario",
                        wrong.join(", ")
                    ),
                })
            }
        }
        Ok(None) => Err(InfraError::Deploy {
            what,
            reason: "it does not exist; --namespace maps a scenario namespace onto an existing one and                      never creates it"
                .into(),
        }),
        Err(kube::Error::Api(e)) if e.code == 403 => {
            eprintln!(
                "netreach: note: cannot read namespace {} (no `get namespaces` permission): its labels are taken to be as the scenario declares them",
                ns.real
            );
            Ok(())
        }
        Err(e) => Err(api_error(context, Req::cluster("get", "namespaces"), &e, |r| {
            unreachable(context, r)
        })),
    }
}

/// What the plan creates in a namespace the run does not own, for its run record.
pub fn planned_in(plan: &DeployPlan, namespace: &str) -> Vec<(crate::record::ObjKind, String)> {
    use crate::record::ObjKind;
    let mut out = Vec::new();
    for p in plan.pods.iter().filter(|p| p.namespace == namespace) {
        if p.workload.is_some() {
            out.push((ObjKind::Pod, crate::shadow::shadow_name(p, &plan.run_id)));
            continue;
        }
        out.push((ObjKind::Pod, p.id.name.clone()));
        if p.service {
            out.push((ObjKind::Service, p.id.name.clone()));
            out.push((ObjKind::EndpointSlice, format!("{}-netreach", p.id.name)));
        }
    }
    out
}

/// Creates the probe pods.
///
/// # Errors
/// When the API refuses one (e.g. PodSecurity admission), naming the pod.
pub async fn create_pods(
    client: &Client,
    context: &str,
    plan: &DeployPlan,
    image: &str,
    o: &PodSpecOptions,
) -> Result<(), InfraError> {
    let mut namespaces: Vec<String> = plan.pods.iter().map(|p| p.namespace.clone()).collect();
    namespaces.sort();
    namespaces.dedup();
    // Real workloads get shadow pods instead, once the run record that owns them exists.
    for p in plan.pods.iter().filter(|p| p.workload.is_none()) {
        let what = format!("pod {}/{}", p.namespace, p.id.name);
        if crate::live::interrupted() {
            return Err(InfraError::Interrupted);
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
        let obj: Pod = serde_json::from_value(pod_manifest(p, &plan.run_id, &namespaces, image, o))
            .map_err(|e| InfraError::Deploy {
                what: what.clone(),
                reason: e.to_string(),
            })?;
        let waiting_since = tokio::time::Instant::now();
        loop {
            let Err(e) = api.create(&PostParams::default(), &obj).await else {
                break;
            };
            // Not an authorization refusal but "not yet": a new namespace's `default`
            // ServiceAccount is created by kube-controller-manager moments after the namespace,
            // and until then the ServiceAccount admission refuses pods with 403.
            if let Some(msg) = missing_service_account(&e) {
                if waiting_since.elapsed() < SERVICE_ACCOUNT_WAIT {
                    if crate::live::interrupted() {
                        return Err(InfraError::Interrupted);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                }
                return Err(InfraError::Deploy {
                    what,
                    reason: format!(
                        "namespace {} still has no `default` ServiceAccount after {} s, and the API server admits no pod without it; kube-controller-manager creates it: is it running? ({msg})",
                        p.namespace,
                        SERVICE_ACCOUNT_WAIT.as_secs()
                    ),
                });
            }
            return Err(api_error(
                context,
                Req::ns("create", "pods", &p.namespace),
                &e,
                |r| InfraError::Deploy {
                    what: what.clone(),
                    reason: r,
                },
            ));
        }
    }
    Ok(())
}

/// How long a pod waits for its new namespace's `default` ServiceAccount.
const SERVICE_ACCOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The message of a 403 that only says the namespace's ServiceAccount does not exist yet.
fn missing_service_account(e: &kube::Error) -> Option<&str> {
    match e {
        kube::Error::Api(s)
            if s.code == 403
                && s.message.contains("error looking up service account")
                && s.message.contains("not found") =>
        {
            Some(&s.message)
        }
        _ => None,
    }
}

/// Why a pod is not running, if the reason is final (no point waiting).
pub fn fatal_reason(pod: &Pod) -> Option<String> {
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
            return Some(format!(
                "container exits ({}, exit {})",
                t.reason.clone().unwrap_or_default(),
                t.exit_code
            ));
        }
    }
    None
}

/// Why a pod is not ready, in words.
pub fn why_not_ready(pod: &Pod) -> String {
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

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Sum of the pod's containers' restart counts.
pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
}

/// Waits until every pod of the plan is Ready with an IP; returns them as deployed.
///
/// # Errors
/// When a pod cannot start (final reasons are reported at once) or the deadline passes.
pub async fn wait_ready(
    client: &Client,
    context: &str,
    plan: &DeployPlan,
    timeout: Duration,
) -> Result<BTreeMap<PodId, DeployedPod>, InfraError> {
    let deadline = Instant::now() + timeout;
    loop {
        if crate::live::interrupted() {
            return Err(InfraError::Interrupted);
        }
        let mut ready_pods = BTreeMap::new();
        let mut waiting = Vec::new();
        for p in &plan.pods {
            let shadow = p.workload.is_some();
            let name = if shadow {
                crate::shadow::shadow_name(p, &plan.run_id)
            } else {
                p.id.name.clone()
            };
            let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
            let pod = api.get(&name).await.map_err(|e| {
                api_error(context, Req::ns("get", "pods", &p.namespace), &e, |r| {
                    unreachable(context, r)
                })
            })?;
            if let Some(reason) = fatal_reason(&pod) {
                return Err(InfraError::Deploy {
                    what: format!("pod {}/{name}", p.namespace),
                    reason,
                });
            }
            // A shadow pod is never Ready (its readiness gate): its server listening is enough.
            let ready = if shadow {
                crate::shadow::containers_ready(&pod)
            } else {
                is_ready(&pod)
            };
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_ref())
                .and_then(|ip| ip.parse::<IpAddr>().ok());
            match ip {
                Some(ip) if ready => {
                    ready_pods.insert(
                        p.id.clone(),
                        DeployedPod {
                            namespace: p.namespace.clone(),
                            name: name.clone(),
                            uid: pod.metadata.uid.clone().unwrap_or_default(),
                            restarts: restarts(&pod),
                            ip,
                            node: pod
                                .spec
                                .as_ref()
                                .and_then(|s| s.node_name.clone())
                                .unwrap_or_default(),
                            shadow,
                        },
                    );
                }
                _ => waiting.push((p, pod)),
            }
        }
        if waiting.is_empty() {
            return Ok(ready_pods);
        }
        if Instant::now() >= deadline {
            let (p, pod) = &waiting[0];
            return Err(InfraError::Deploy {
                what: format!("pod {}/{}", p.namespace, p.id.name),
                reason: format!(
                    "not ready after {} s ({} pod(s) not ready): {}",
                    timeout.as_secs(),
                    waiting.len(),
                    why_not_ready(pod)
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Creates a Service and its EndpointSlice for every pod that needs one; returns ClusterIPs.
///
/// # Errors
/// When the API refuses or assigns no ClusterIP.
pub async fn create_services(
    client: &Client,
    context: &str,
    plan: &DeployPlan,
    pods: &BTreeMap<PodId, DeployedPod>,
) -> Result<BTreeMap<PodId, IpAddr>, InfraError> {
    let mut out = BTreeMap::new();
    for p in plan.pods.iter().filter(|p| p.service) {
        let what = || format!("service {}/{}", p.namespace, p.id.name);
        let deploy = |r: String| InfraError::Deploy {
            what: what(),
            reason: r,
        };
        let ports: Vec<Value> = p
            .ports
            .iter()
            .map(|sp| json!({"name": service_port_name(sp), "port": sp.port.port, "targetPort": sp.port.port, "protocol": sp.port.protocol.k8s_name()}))
            .collect();
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": p.id.name, "namespace": p.namespace},
            "spec": {"type": "ClusterIP", "ports": ports}
        }))
        .map_err(|e| deploy(e.to_string()))?;
        let api: Api<Service> = Api::namespaced(client.clone(), &p.namespace);
        let created = api
            .create(&PostParams::default(), &svc)
            .await
            .map_err(|e| {
                api_error(
                    context,
                    Req::ns("create", "services", &p.namespace),
                    &e,
                    deploy,
                )
            })?;
        let ip = pods
            .get(&p.id)
            .map(|d| d.ip)
            .ok_or_else(|| deploy("pod has no IP".into()))?;
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
        .map_err(|e| deploy(e.to_string()))?;
        let eps: Api<EndpointSlice> = Api::namespaced(client.clone(), &p.namespace);
        eps.create(&PostParams::default(), &slice)
            .await
            .map_err(|e| {
                api_error(
                    context,
                    Req::ns("create", "endpointslices", &p.namespace),
                    &e,
                    deploy,
                )
            })?;
        let cluster_ip = created
            .spec
            .and_then(|s| s.cluster_ip)
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .ok_or_else(|| deploy("no ClusterIP was assigned".into()))?;
        out.insert(p.id.clone(), cluster_ip);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netreach_core::model::PortProto;

    fn planned() -> PlannedPod {
        PlannedPod {
            id: PodId::new("x", "a"),
            namespace: "x-abc123".into(),
            labels: BTreeMap::from([("app".into(), "a".into())]),
            ports: vec![ServedPort {
                port: PortProto {
                    port: 80,
                    protocol: Protocol::Tcp,
                },
                name: Some("http".into()),
            }],
            service: false,
            placement: PodPlacement::default(),
            workload: None,
        }
    }

    fn manifest(p: &PlannedPod, o: &PodSpecOptions) -> Value {
        pod_manifest(
            p,
            "r1",
            &["x-abc123".into(), "y-abc123".into()],
            "netreach-probe:x",
            o,
        )
    }

    #[test]
    fn a_missing_service_account_is_not_yet_and_rbac_is_final() {
        let api = |code: u16, message: &str| {
            kube::Error::Api(
                kube::core::Status::failure(message, "Forbidden")
                    .with_code(code)
                    .boxed(),
            )
        };
        let sa = "pods \"frontend\" is forbidden: error looking up service account shop-x/default: serviceaccount \"default\" not found";
        assert!(missing_service_account(&api(403, sa)).is_some());
        let rbac = "pods is forbidden: User \"system:serviceaccount:n:netreach\" cannot create resource \"pods\" in API group \"\" in the namespace \"shop-x\"";
        assert!(missing_service_account(&api(403, rbac)).is_none());
        assert!(missing_service_account(&api(500, sa)).is_none());
    }

    /// Every field PodSecurity `restricted` (v1.34) checks, in the rendered manifest.
    #[test]
    fn probe_pods_are_restricted_ready() {
        let m = manifest(&planned(), &PodSpecOptions::default());
        let c = &m["spec"]["containers"][0];
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], PROBE_UID);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert!(sc["capabilities"].get("add").is_none());
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(
            m["spec"]["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        // The only sysctl is one `restricted` (baseline) allows.
        assert_eq!(
            m["spec"]["securityContext"]["sysctls"],
            json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}])
        );
        // No host namespaces, ports or paths; no privileged.
        for forbidden in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(m["spec"].get(forbidden).is_none());
        }
        assert!(c["ports"][0].get("hostPort").is_none());
        assert!(
            m["spec"]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().all(|v| v.get("hostPath").is_none()))
        );
        // The ready file is on the writable emptyDir.
        assert!(READY_FILE.starts_with(READY_DIR));
        assert_eq!(c["volumeMounts"][0]["mountPath"], READY_DIR);
        assert_eq!(c["readinessProbe"]["exec"]["command"][2], READY_FILE);
        assert!(c["resources"]["limits"]["memory"].is_string());
        assert!(c["resources"]["requests"]["cpu"].is_string());
        assert!(m["spec"].get("imagePullSecrets").is_none());
    }

    /// `--image-pull-secret`, `--node-selector`, `--toleration` in the rendered spec (no
    /// registry here to pull from: the rendering is what can be tested).
    #[test]
    fn pull_secrets_node_selector_and_tolerations_are_rendered() {
        let o = PodSpecOptions {
            image_pull_secrets: vec!["regcred".into()],
            node_selector: BTreeMap::from([("pool".into(), "netreach".into())]),
            tolerations: vec![
                "dedicated=netreach:NoSchedule".parse().expect("valid"),
                "spot".parse().expect("valid"),
            ],
        };
        let m = pod_manifest(
            &planned(),
            "r1",
            &[],
            "registry.example/netreach-probe:1",
            &o,
        );
        assert_eq!(m["spec"]["imagePullSecrets"], json!([{"name": "regcred"}]));
        assert_eq!(m["spec"]["nodeSelector"], json!({"pool": "netreach"}));
        assert_eq!(
            m["spec"]["tolerations"],
            json!([
                {"key": "dedicated", "operator": "Equal", "value": "netreach", "effect": "NoSchedule"},
                {"key": "spot", "operator": "Exists"}
            ])
        );
        assert_eq!(
            m["spec"]["containers"][0]["image"],
            "registry.example/netreach-probe:1"
        );
    }

    /// Every pod carries its run and a soft spread over the nodes; `node:` becomes required
    /// node affinity by name, pod affinity to its group and anti-affinity to the groups it must
    /// be apart from, all within the run's namespaces.
    #[test]
    fn placement_is_rendered_as_affinity_within_the_run() {
        let free = manifest(&planned(), &PodSpecOptions::default());
        assert_eq!(free["metadata"]["labels"][RUN_LABEL], "r1");
        assert_eq!(free["metadata"]["labels"]["app"], "a");
        assert!(free["metadata"]["labels"].get(NODE_GROUP_LABEL).is_none());
        assert!(free["spec"].get("affinity").is_none());
        let spread = &free["spec"]["topologySpreadConstraints"][0];
        assert_eq!(spread["whenUnsatisfiable"], "ScheduleAnyway");
        assert_eq!(spread["topologyKey"], HOSTNAME_KEY);
        assert_eq!(spread["labelSelector"]["matchLabels"][RUN_LABEL], "r1");

        let mut p = planned();
        p.placement = PodPlacement {
            group: Some("g1".into()),
            node: Some("kind-worker".into()),
            with_group: true,
            apart_from: vec!["g0".into(), "g2".into()],
        };
        let m = manifest(&p, &PodSpecOptions::default());
        assert_eq!(m["metadata"]["labels"][NODE_GROUP_LABEL], "g1");
        let a = &m["spec"]["affinity"];
        assert_eq!(
            a["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchFields"][0],
            json!({"key": "metadata.name", "operator": "In", "values": ["kind-worker"]})
        );
        let with = &a["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(
            with,
            &json!([{
                "labelSelector": {"matchLabels": {RUN_LABEL: "r1", NODE_GROUP_LABEL: "g1"}},
                "namespaces": ["x-abc123", "y-abc123"],
                "topologyKey": HOSTNAME_KEY
            }])
        );
        let apart = &a["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        let groups: Vec<&Value> = apart
            .as_array()
            .expect("terms")
            .iter()
            .map(|t| &t["labelSelector"]["matchLabels"][NODE_GROUP_LABEL])
            .collect();
        assert_eq!(groups, vec!["g0", "g2"]);
        // The rendered pod is a valid Pod object.
        let _: Pod = serde_json::from_value(m).expect("a Pod");
    }

    #[test]
    fn tolerations_parse_like_kubectl_taints() {
        let t: Toleration = "k=v:NoExecute".parse().expect("valid");
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_deref()),
            ("k", Some("v"), Some("NoExecute"))
        );
        let t: Toleration = "k:NoSchedule".parse().expect("valid");
        assert_eq!((t.value, t.effect.as_deref()), (None, Some("NoSchedule")));
        assert!("k=v:Sometimes".parse::<Toleration>().is_err());
        assert!("=v".parse::<Toleration>().is_err());
    }
}
