//! [`KubeCluster`]: one scenario's session with a real cluster, behind the core's synchronous
//! `Cluster` trait.
//!
//! Size: the whole `Cluster` implementation (deploy, apply, probe rounds with liveness, teardown) in one place; the jobs it calls live in their own modules.
//!
//! - The heartbeat starts with the session, before the first namespace exists, and runs as a
//!   background task on the session's runtime: it is renewed during every wait (pods that never
//!   schedule, convergence, a hung API call), so `netreach gc` never mistakes a live run for a
//!   dead one.
//! - Liveness is part of every observation: before and after each probe round every probe pod
//!   must still be the pod that was deployed (same UID), Running and Ready, with the same restart
//!   count. A cell whose source or target pod fails that is an error naming the pod and what
//!   happened to it, never "blocked" or "allowed".
//! - A lost answer (typed, never matched by message) is probed again once, at once.
//! - An exec or API request refused with 403/401 fails the round as a whole: never retried.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::runtime::Runtime;

use netreach_core::bind::{Bindings, BoundProbe};
use netreach_core::cluster::{Cluster, ClusterAction, DeployPlan, InfraError};
use netreach_core::model::{PodId, Target};
use netreach_core::outcome::{Observation, Outcome, ProbeError};
use netreach_core::probe::ProbeTimeout;

use crate::client::{self, Req, api_error, unreachable};
use crate::deploy::{self, DeployedPod};
use crate::external::{self, Endpoint};
use crate::live::LiveRun;
use crate::record::{ObjKind, Record, record_name};
use crate::{HEARTBEAT_ANNOTATION, HEARTBEAT_EVERY, KEPT_LABEL, KubeOptions, now_secs};

/// Field manager for server-side apply.
const MANAGER: &str = "netreach";

/// A session with one cluster for one scenario.
pub struct KubeCluster {
    rt: Runtime,
    client: Client,
    context: String,
    opts: KubeOptions,
    run: Option<Arc<LiveRun>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    pods: BTreeMap<PodId, DeployedPod>,
    /// Real workloads: the pod each stands for as a target (its shadow is in `pods`).
    targets: BTreeMap<PodId, DeployedPod>,
    externals: Vec<Endpoint>,
    /// Run records, by namespace the run does not own (given to it, or existing).
    records: BTreeMap<String, Record>,
    /// Live namespaces whose policies steps may change (recorded, restored at the end).
    live: BTreeSet<String>,
    /// Candidate policies applied in live namespaces (`namespace`, `name`) → the
    /// resourceVersion netreach's apply left: anything else there means someone else changed it.
    applied: BTreeMap<(String, String), String>,
    execs: usize,
    /// The scenario's full name (for labels of what steps add).
    scenario: String,
    /// What the deployment and the steps so far bound.
    bindings: Bindings,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// Connects to `context` and checks that the API server answers.
    ///
    /// # Errors
    /// When the context does not exist, the API server does not answer or refuses us.
    pub fn connect(context: &str, opts: KubeOptions) -> Result<Self, InfraError> {
        let rt = client::runtime(context)?;
        let client = rt.block_on(async {
            let client = client::client_from(context, opts.kubeconfig.as_deref()).await?;
            tokio::time::timeout(Duration::from_secs(15), client.apiserver_version())
                .await
                .map_err(|_| unreachable(context, "the API server did not answer within 15 s"))?
                .map_err(|e| {
                    api_error(context, Req::cluster("get", "/version"), &e, |r| {
                        unreachable(context, r)
                    })
                })?;
            Ok::<_, InfraError>(client)
        })?;
        Ok(KubeCluster {
            rt,
            client,
            context: context.to_owned(),
            opts,
            run: None,
            heartbeat: None,
            pods: BTreeMap::new(),
            externals: Vec::new(),
            records: BTreeMap::new(),
            live: BTreeSet::new(),
            applied: BTreeMap::new(),
            targets: BTreeMap::new(),
            execs: 0,
            scenario: String::new(),
            bindings: Bindings::default(),
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

    /// The probe pods as deployed (real names, UIDs, nodes).
    pub fn deployed(&self) -> &BTreeMap<PodId, DeployedPod> {
        &self.pods
    }

    /// Renews the heartbeat of every namespace the run has (or is creating) until aborted.
    fn start_heartbeat(&mut self, run: Arc<LiveRun>) {
        let client = self.client.clone();
        self.heartbeat = Some(self.rt.spawn(async move {
            let api: Api<Namespace> = Api::all(client.clone());
            loop {
                tokio::time::sleep(HEARTBEAT_EVERY).await;
                let patch = json!({"metadata": {"annotations": {HEARTBEAT_ANNOTATION: now_secs().to_string()}}});
                for n in run.namespaces() {
                    // Not created yet, or already deleted: nothing to renew.
                    let _ = tokio::time::timeout(
                        client::CALL_TIMEOUT,
                        api.patch(&n, &PatchParams::default(), &Patch::Merge(&patch)),
                    )
                    .await;
                }
                for n in run.records() {
                    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &n);
                    let _ = tokio::time::timeout(
                        client::CALL_TIMEOUT,
                        cms.patch(
                            &record_name(&run.run_id),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        ),
                    )
                    .await;
                }
            }
        }));
    }

    fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    /// A step's `add:`: its namespaces and pods (with Services), created and waited for as at
    /// deployment; their addresses join the bindings.
    fn add(&mut self, adds: &[ClusterAction]) -> Result<(), InfraError> {
        let run = self.run.clone().ok_or_else(|| InfraError::Apply {
            what: "a step's additions".into(),
            reason: "nothing is deployed".into(),
        })?;
        let mut plan = DeployPlan {
            scenario: self.scenario.clone(),
            run_id: run.run_id.clone(),
            names: self.bindings.namespaces.clone(),
            namespaces: Vec::new(),
            pods: Vec::new(),
            externals: Vec::new(),
            later_namespaces: Vec::new(),
            later_pods: Vec::new(),
            live_namespaces: Vec::new(),
        };
        for a in adds {
            match a {
                ClusterAction::AddNamespace(n) => plan.namespaces.push(n.clone()),
                ClusterAction::AddPod(p) => plan.pods.push(p.clone()),
                _ => {}
            }
        }
        let (client, ctx, opts) = (self.client.clone(), self.context.clone(), self.opts.clone());
        let (pods, service_ips) = self.rt.block_on(async {
            deploy::create_namespaces(&client, &ctx, &run, &plan).await?;
            deploy::create_pods(&client, &ctx, &plan, &opts.probe_image, &opts.pods).await?;
            let pods = deploy::wait_ready(&client, &ctx, &plan, opts.ready_timeout).await?;
            let service_ips = deploy::create_services(&client, &ctx, &plan, &pods).await?;
            Ok::<_, InfraError>((pods, service_ips))
        })?;
        for (id, d) in pods {
            self.bindings.pod_ips.insert(id.clone(), d.ip);
            self.bindings.pod_nodes.insert(id.clone(), d.node.clone());
            self.pods.insert(id, d);
        }
        self.bindings.service_ips.extend(service_ips);
        Ok(())
    }

    /// One API call of a step; for an applied policy, the resourceVersion it left.
    async fn apply_one(&self, a: &ClusterAction) -> Result<Option<String>, InfraError> {
        let ctx = &self.context;
        let err = |req: Req<'_>, what: String, e: kube::Error| {
            api_error(ctx, req, &e, |reason| InfraError::Apply { what, reason })
        };
        match a {
            ClusterAction::ApplyPolicy { policy, manifest } => {
                let ns = manifest["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default();
                let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
                let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
                let applied = api
                    .patch(
                        name,
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(manifest),
                    )
                    .await
                    .map_err(|e| {
                        err(
                            Req::ns("patch", "networkpolicies", ns),
                            format!("policy {policy}"),
                            e,
                        )
                    })?;
                return Ok(applied.metadata.resource_version);
            }
            ClusterAction::DeletePolicy { namespace, name } => {
                let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), namespace);
                api.delete(name, &DeleteParams::default())
                    .await
                    .map_err(|e| {
                        err(
                            Req::ns("delete", "networkpolicies", namespace),
                            format!("delete policy {namespace}/{name}"),
                            e,
                        )
                    })?;
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
                    .map_err(|e| {
                        err(
                            Req::ns("patch", "pods", namespace),
                            format!("labels of pod {namespace}/{pod}"),
                            e,
                        )
                    })?;
            }
            ClusterAction::LabelNamespace { namespace, labels } => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                let patch = json!({"metadata": {"labels": labels}});
                api.patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| {
                        err(
                            Req::cluster("patch", "namespaces"),
                            format!("labels of namespace {namespace}"),
                            e,
                        )
                    })?;
            }
            // `apply` does these itself (they wait, and change the bindings).
            ClusterAction::RemovePod { .. }
            | ClusterAction::RemoveNamespace { .. }
            | ClusterAction::AddNamespace(_)
            | ClusterAction::AddPod(_) => {
                return Err(InfraError::Apply {
                    what: format!("{a:?}"),
                    reason: "not a single API call".into(),
                });
            }
        }
        Ok(None)
    }

    /// Before a step applies (or deletes) a policy in a namespace the run does not own. In a
    /// live namespace (`candidates: true`) the policy's state before is written into the record
    /// first (its content, or that it did not exist), so teardown, cleanup after Ctrl-C and
    /// `netreach gc` put it back exactly. In a namespace given to the run, the policy must be the
    /// run's own (created by it, so recorded first): never someone else's.
    fn announce_policy(&mut self, namespace: &str, name: &str) -> Result<(), InfraError> {
        let live = self.live.contains(namespace);
        let Some(record) = self.records.get(namespace) else {
            return Ok(());
        };
        let ours = record
            .created
            .iter()
            .any(|(k, n)| *k == ObjKind::NetworkPolicy && n == name);
        if ours || (live && record.originals.contains_key(name)) {
            return Ok(());
        }
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), namespace);
        let ctx = self.context.clone();
        let now = self.rt.block_on(api.get_opt(name)).map_err(|e| {
            api_error(
                &ctx,
                Req::ns("get", "networkpolicies", namespace),
                &e,
                |r| unreachable(&ctx, r),
            )
        })?;
        let mut record = record.clone();
        match (&now, live) {
            (Some(_), false) => {
                return Err(InfraError::Apply {
                    what: format!("policy {namespace}/{name}"),
                    reason: "a NetworkPolicy of that name exists in this namespace and netreach did not create it; netreach never changes what it did not create (rename the scenario's policy)".into(),
                });
            }
            (Some(np), true) => {
                record
                    .originals
                    .insert(name.to_owned(), crate::record::original_of(np));
            }
            (None, live) => {
                if live {
                    record
                        .originals
                        .insert(name.to_owned(), serde_json::Value::Null);
                }
                record
                    .created
                    .push((ObjKind::NetworkPolicy, name.to_owned()));
            }
        }
        let run_id = self
            .run
            .as_ref()
            .map(|r| r.run_id.clone())
            .unwrap_or_default();
        self.rt.block_on(crate::record::write(
            &self.client,
            &ctx,
            namespace,
            &run_id,
            &record,
        ))?;
        self.records.insert(namespace.to_owned(), record);
        Ok(())
    }

    /// Replaces a live policy whole with a candidate; returns the resourceVersion it left.
    async fn replace_live(
        &self,
        ns: &str,
        name: &str,
        manifest: &serde_json::Value,
    ) -> Result<Option<String>, InfraError> {
        let ctx = &self.context;
        let err = |req: Req<'_>, e: kube::Error| {
            api_error(ctx, req, &e, |reason| InfraError::Apply {
                what: format!("candidate policy {ns}/{name}"),
                reason,
            })
        };
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
        let current = api
            .get(name)
            .await
            .map_err(|e| err(Req::ns("get", "networkpolicies", ns), e))?;
        let mut body: NetworkPolicy =
            serde_json::from_value(manifest.clone()).map_err(|e| InfraError::Apply {
                what: format!("candidate policy {ns}/{name}"),
                reason: e.to_string(),
            })?;
        body.metadata.resource_version = current.metadata.resource_version;
        let done = api
            .replace(
                name,
                &kube::api::PostParams {
                    field_manager: Some(MANAGER.into()),
                    ..kube::api::PostParams::default()
                },
                &body,
            )
            .await
            .map_err(|e| err(Req::ns("update", "networkpolicies", ns), e))?;
        Ok(done.metadata.resource_version)
    }

    /// Candidate policies must still be what netreach applied: one changed or deleted by
    /// someone else (a GitOps controller reverting it) means the cells would not judge the
    /// candidate, so the step stops with an error naming the policy and who changed it.
    fn check_applied(&self) -> Result<(), InfraError> {
        if self.applied.is_empty() {
            return Ok(());
        }
        let ctx = self.context.clone();
        self.rt.block_on(async {
            for ((ns, name), rv) in &self.applied {
                let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
                let now = api.get_opt(name).await.map_err(|e| {
                    api_error(&ctx, Req::ns("get", "networkpolicies", ns), &e, |r| {
                        unreachable(&ctx, r)
                    })
                })?;
                let what = format!("candidate policy {ns}/{name}");
                match now {
                    None => {
                        return Err(InfraError::Probe(format!("{what} was deleted by someone else while the step ran (a GitOps controller reverting it?); the step's cells would not judge the candidate: pause the controller's sync for the namespace during the run")));
                    }
                    Some(np) if np.metadata.resource_version.as_deref() != Some(rv.as_str()) => {
                        let by: BTreeSet<String> = np
                            .metadata
                            .managed_fields
                            .iter()
                            .flatten()
                            .filter_map(|m| m.manager.clone())
                            .filter(|m| m != MANAGER)
                            .collect();
                        let by = if by.is_empty() {
                            "someone else".to_owned()
                        } else {
                            by.into_iter().collect::<Vec<_>>().join(", ")
                        };
                        return Err(InfraError::Probe(format!("{what} was changed by {by} after netreach applied it (a GitOps controller reverting it?); the step's cells would not judge the candidate: pause the controller's sync for the namespace during the run")));
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        })
    }

    /// Which probe pods are not the live pods that were deployed, and what happened to them.
    fn liveness(&self) -> Result<BTreeMap<PodId, String>, InfraError> {
        let namespaces: BTreeSet<&str> = self
            .pods
            .values()
            .chain(self.targets.values())
            .map(|d| d.namespace.as_str())
            .collect();
        let ctx = self.context.clone();
        let client = self.client.clone();
        let now: BTreeMap<(String, String), Pod> = self.rt.block_on(async {
            let mut now = BTreeMap::new();
            for ns in namespaces {
                let api: Api<Pod> = Api::namespaced(client.clone(), ns);
                let list = client::bounded(&ctx, "a pod list", async {
                    api.list(&ListParams::default()).await.map_err(|e| {
                        api_error(&ctx, Req::ns("list", "pods", ns), &e, |r| {
                            unreachable(&ctx, r)
                        })
                    })
                })
                .await?;
                for p in list {
                    if let Some(name) = p.metadata.name.clone() {
                        now.insert((ns.to_owned(), name), p);
                    }
                }
            }
            Ok::<_, InfraError>(now)
        })?;
        // A real workload is live while both its shadow (the source) and its pod (the target)
        // are.
        Ok(self
            .pods
            .iter()
            .chain(&self.targets)
            .filter_map(|(id, d)| {
                problem(d, now.get(&(d.namespace.clone(), d.name.clone()))).map(|w| (id.clone(), w))
            })
            .collect())
    }

    /// The cells of `probes` whose source or target pod is in `dead`, marked as errors.
    fn mark_not_live(
        &self,
        probes: &[BoundProbe],
        obs: &mut [Observation],
        dead: &BTreeMap<PodId, String>,
    ) {
        for (p, o) in probes.iter().zip(obs.iter_mut()) {
            let target = match &p.cell.to {
                Target::Pod(t) => Some(t),
                _ => None,
            };
            let hit = std::iter::once(&p.cell.from)
                .chain(target)
                .find_map(|id| dead.get(id).map(|w| (id, w)));
            if let Some((id, what)) = hit {
                let real = self
                    .pods
                    .get(id)
                    .map_or_else(|| id.to_string(), |d| format!("{}/{}", d.namespace, d.name));
                let role = if *id == p.cell.from {
                    "source"
                } else {
                    "target"
                };
                o.outcome = Outcome::Error(ProbeError::PodNotLive {
                    pod: real,
                    what: format!("({role} of this cell) {what}"),
                });
            }
        }
    }

    fn probe_once(&mut self, probes: &[BoundProbe], t: ProbeTimeout) -> Vec<Observation> {
        let (obs, execs) = self.rt.block_on(crate::exec::probe_round(
            &self.client,
            &self.context,
            probes,
            t,
            self.opts.batch,
            self.opts.parallelism,
        ));
        self.execs += execs;
        obs
    }
}

/// What is wrong with a deployed pod now (`None`: it is the same pod, Running and Ready, with
/// no restart since deploy).
pub fn problem(deployed: &DeployedPod, now: Option<&Pod>) -> Option<String> {
    let Some(pod) = now else {
        return Some("is gone (deleted during the run)".into());
    };
    if pod.metadata.uid.as_deref() != Some(deployed.uid.as_str()) {
        return Some("was replaced by another pod of the same name (its UID changed)".into());
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Some("is being deleted".into());
    }
    let restarts = deploy::restarts(pod);
    if restarts != deployed.restarts {
        return Some(format!(
            "restarted ({} restart(s) since it became ready)",
            restarts - deployed.restarts
        ));
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    if phase != "Running" {
        return Some(format!("is not running (phase {phase})"));
    }
    if deployed.shadow {
        if !crate::shadow::containers_ready(pod) {
            return Some("is not ready (its server stopped answering its readiness check)".into());
        }
    } else if !deploy::is_ready(pod) {
        return Some("is not ready (its server stopped answering its readiness check)".into());
    }
    None
}

impl Cluster for KubeCluster {
    fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError> {
        let run = LiveRun::register(&self.context, &plan.run_id);
        self.run = Some(Arc::clone(&run));
        // From before the first namespace: renewed during every wait that follows.
        self.start_heartbeat(Arc::clone(&run));
        let client = self.client.clone();
        let ctx = self.context.clone();
        let opts = self.opts.clone();
        let rt = self.rt.handle().clone();
        let given: Vec<String> = plan
            .namespaces
            .iter()
            .filter(|n| n.given)
            .map(|n| n.real.clone())
            .collect();
        // Existing namespaces that hold real workloads (their shadow pods are recorded there)
        // or whose policies steps change (every change is recorded there first).
        let workload_namespaces: BTreeSet<String> = plan
            .pods
            .iter()
            .filter(|p| p.workload.is_some())
            .map(|p| p.namespace.clone())
            .chain(plan.live_namespaces.iter().cloned())
            .filter(|ns| !given.contains(ns))
            .collect();
        self.live = plan.live_namespaces.iter().cloned().collect();
        let records: BTreeMap<String, Record> = given
            .iter()
            .chain(&workload_namespaces)
            .map(|ns| {
                (
                    ns.clone(),
                    Record {
                        created: deploy::planned_in(plan, ns),
                        ..Record::default()
                    },
                )
            })
            .collect();
        self.records = records.clone();
        let (pods, targets, service_ips, externals) = rt.block_on(async {
            // The pods real workloads stand for, chosen and checked before anything is created.
            let mut targets = BTreeMap::new();
            let mut real_labels = BTreeMap::new();
            for p in &plan.pods {
                if let Some(w) = &p.workload {
                    let (real, labels) = crate::shadow::choose(&client, &ctx, p, w).await?;
                    targets.insert(p.id.clone(), real);
                    real_labels.insert(p.id.clone(), labels);
                }
            }
            deploy::create_namespaces(&client, &ctx, &run, plan).await?;
            let mut record_uids = BTreeMap::new();
            for ns in &workload_namespaces {
                let _call = run.begin(crate::live::Kind::Record, ns)?;
                let uid =
                    crate::record::create(&client, &ctx, ns, &plan.run_id, &plan.scenario).await?;
                record_uids.insert(ns.clone(), uid);
            }
            // Everything the plan creates in namespaces the run does not own is recorded first.
            for (ns, r) in &records {
                crate::record::write(&client, &ctx, ns, &plan.run_id, r).await?;
            }
            deploy::create_pods(&client, &ctx, plan, &opts.probe_image, &opts.pods).await?;
            for p in plan.pods.iter().filter(|p| p.workload.is_some()) {
                let owner = (plan.run_id.as_str(), record_uids[&p.namespace].as_str());
                crate::shadow::create(
                    &client,
                    &ctx,
                    p,
                    (targets[&p.id].name.as_str(), &real_labels[&p.id]),
                    owner,
                    &opts.probe_image,
                    &opts.pods,
                )
                .await?;
            }
            let pods = deploy::wait_ready(&client, &ctx, plan, opts.ready_timeout).await?;
            let service_ips = deploy::create_services(&client, &ctx, plan, &pods).await?;
            // Endpoints with a fixed address exist already: probed where they are, never
            // started (nor stopped at teardown).
            let mut externals = Vec::new();
            let mut external_ips = BTreeMap::new();
            for e in &plan.externals {
                if let Some(ip) = e.address {
                    external_ips.insert(e.name.clone(), ip);
                    continue;
                }
                let ep = external::start(&run, e, &opts.probe_image, &opts.docker_network).await?;
                external_ips.insert(e.name.clone(), ep.ip);
                externals.push(ep);
            }
            Ok::<_, InfraError>((pods, targets, service_ips, (externals, external_ips)))
        })?;
        let (externals, external_ips) = externals;
        // A real workload is addressed (and placed) as the pod it stands for.
        let addressed = || {
            pods.iter()
                .filter(|(id, _)| !targets.contains_key(*id))
                .chain(&targets)
        };
        let pod_ips = addressed().map(|(id, d)| (id.clone(), d.ip)).collect();
        let pod_nodes = addressed()
            .map(|(id, d)| (id.clone(), d.node.clone()))
            .collect();
        self.pods = pods;
        self.targets = targets;
        self.externals = externals;
        self.scenario = plan.scenario.clone();
        // A real workload's probes run in its shadow pod.
        let exec_pods = self
            .pods
            .iter()
            .filter(|(id, d)| d.name != id.name)
            .map(|(id, d)| (id.clone(), d.name.clone()))
            .collect();
        self.bindings = Bindings {
            namespaces: plan.names.clone(),
            pod_ips,
            pod_nodes,
            service_ips,
            external_ips,
            cluster_domain: "cluster.local".into(),
            exec_pods,
        };
        Ok(self.bindings.clone())
    }

    fn apply(&mut self, actions: &[ClusterAction]) -> Result<Bindings, InfraError> {
        if crate::live::interrupted() {
            return Err(InfraError::Interrupted);
        }
        let mut i = 0;
        while i < actions.len() {
            let a = &actions[i];
            match a {
                ClusterAction::AddNamespace(_) | ClusterAction::AddPod(_) => {
                    // Consecutive additions are deployed together, as at the start.
                    let n = actions[i..]
                        .iter()
                        .take_while(|a| {
                            matches!(a, ClusterAction::AddNamespace(_) | ClusterAction::AddPod(_))
                        })
                        .count();
                    self.add(&actions[i..i + n])?;
                    i += n;
                    continue;
                }
                ClusterAction::RemovePod {
                    id,
                    namespace,
                    service,
                } => {
                    let within = self.opts.ready_timeout;
                    self.rt.block_on(crate::members::remove_pod(
                        &self.client,
                        &self.context,
                        namespace,
                        &id.name,
                        *service,
                        within,
                    ))?;
                    self.pods.remove(id);
                    self.bindings.unbind(id);
                }
                ClusterAction::RemoveNamespace { logical, namespace } => {
                    let within = self.opts.ready_timeout;
                    self.rt.block_on(crate::members::remove_namespace(
                        &self.client,
                        &self.context,
                        namespace,
                        within,
                    ))?;
                    for id in self.bindings.unbind_namespace(logical) {
                        self.pods.remove(&id);
                    }
                    // Gone: the heartbeat and cleanup no longer need to visit it.
                    if let Some(run) = &self.run {
                        run.forget_namespace(namespace);
                    }
                }
                ClusterAction::ApplyPolicy { manifest, .. } => {
                    let ns = manifest["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default();
                    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
                    self.announce_policy(ns, name)?;
                    let replaces = self.records.get(ns).is_some_and(|r| {
                        self.live.contains(ns)
                            && r.originals.get(name).is_some_and(|o| !o.is_null())
                    });
                    let rv = if replaces {
                        // A live policy the candidate replaces: replaced whole (server-side
                        // apply would merge the candidate into fields other managers own).
                        self.rt.block_on(self.replace_live(ns, name, manifest))?
                    } else {
                        self.rt.block_on(self.apply_one(a))?
                    };
                    if let Some(rv) = rv.filter(|_| self.live.contains(ns)) {
                        self.applied.insert((ns.to_owned(), name.to_owned()), rv);
                    }
                }
                ClusterAction::DeletePolicy { namespace, name }
                    if self.live.contains(namespace) =>
                {
                    self.announce_policy(namespace, name)?;
                    self.rt.block_on(self.apply_one(a))?;
                    self.applied.remove(&(namespace.clone(), name.clone()));
                }
                _ => {
                    self.rt.block_on(self.apply_one(a))?;
                }
            }
            i += 1;
        }
        Ok(self.bindings.clone())
    }

    fn probe(
        &mut self,
        probes: &[BoundProbe],
        timeout: ProbeTimeout,
    ) -> Result<Vec<Observation>, InfraError> {
        if crate::live::interrupted() {
            return Err(InfraError::Interrupted);
        }
        self.check_applied()?;
        let before = self.liveness()?;
        let mut obs = self.probe_once(probes, timeout);
        // A lost answer is not a lost connection: once more, at once.
        let lost: Vec<usize> = obs
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(&o.outcome, Outcome::Error(e) if e.is_lost()))
            .map(|(i, _)| i)
            .collect();
        if !lost.is_empty() {
            let again: Vec<BoundProbe> = lost.iter().map(|&i| probes[i].clone()).collect();
            for (&i, o) in lost.iter().zip(self.probe_once(&again, timeout)) {
                obs[i] = o;
            }
        }
        if let Some(Outcome::Error(ProbeError::Forbidden { what, detail })) = obs
            .iter()
            .map(|o| &o.outcome)
            .find(|o| matches!(o, Outcome::Error(ProbeError::Forbidden { .. })))
        {
            let namespace = what.rsplit_once(' ').map(|(_, n)| n.to_owned());
            return Err(InfraError::Forbidden {
                verb: "create".into(),
                resource: "pods/exec".into(),
                namespace,
                detail: detail.clone(),
            });
        }
        let mut dead = self.liveness()?;
        for (id, w) in before {
            dead.entry(id).or_insert(w);
        }
        if !dead.is_empty() {
            self.mark_not_live(probes, &mut obs, &dead);
        }
        // Reverted during the round: its answers judged something else.
        self.check_applied()?;
        Ok(obs)
    }

    fn keep(&mut self) -> Result<(), InfraError> {
        self.stop_heartbeat();
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        run.finish();
        let api: Api<Namespace> = Api::all(self.client.clone());
        let patch = json!({"metadata": {"labels": {KEPT_LABEL: "true"}, "annotations": {HEARTBEAT_ANNOTATION: now_secs().to_string()}}});
        let ctx = self.context.clone();
        let client = self.client.clone();
        // Live namespaces are never kept changed: real traffic goes through them. Their
        // candidate policies (and shadow pods) are undone even when the run keeps the rest.
        let live = std::mem::take(&mut self.live);
        self.rt.block_on(async {
            let mut failed = Vec::new();
            for ns in &live {
                failed.extend(crate::record::undo(&client, ns, &run.run_id).await.failed);
            }
            for n in run.namespaces() {
                api.patch(&n, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| {
                        api_error(&ctx, Req::cluster("patch", "namespaces"), &e, |r| {
                            InfraError::Teardown(format!("cannot mark namespace {n} kept: {r}"))
                        })
                    })?;
            }
            for n in run.records().into_iter().filter(|n| !live.contains(n)) {
                let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &n);
                cms.patch(
                    &record_name(&run.run_id),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| {
                    api_error(&ctx, Req::ns("patch", "configmaps", &n), &e, |r| {
                        InfraError::Teardown(format!("cannot mark the run record in {n} kept: {r}"))
                    })
                })?;
            }
            // What could not be restored is still in its record, for `netreach gc`; the rest
            // is marked kept all the same.
            if failed.is_empty() {
                Ok(())
            } else {
                Err(InfraError::Teardown(format!(
                    "restoring the live namespaces: {}",
                    failed.join("; ")
                )))
            }
        })
    }

    fn teardown(&mut self) -> Result<(), InfraError> {
        self.stop_heartbeat();
        let mut errors = Vec::new();
        let externals = std::mem::take(&mut self.externals);
        let run = self.run.take();
        let names = run.as_ref().map(|r| r.namespaces()).unwrap_or_default();
        let client = self.client.clone();
        let records: Vec<String> = std::mem::take(&mut self.records).into_keys().collect();
        let run_id = run.as_ref().map(|r| r.run_id.clone()).unwrap_or_default();
        self.rt.block_on(async {
            for e in externals {
                if let Err(err) = e.remove().await {
                    errors.push(err);
                }
            }
            for ns in &records {
                let u = crate::record::undo(&client, ns, &run_id).await;
                errors.extend(u.failed);
            }
            if let Err(e) = delete_namespaces(client, &names).await {
                errors.push(e);
            }
        });
        if let Some(r) = run {
            r.finish();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(InfraError::Teardown(errors.join("; ")))
        }
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// Deletes namespaces and waits until each is gone or terminating.
///
/// # Errors
/// What could not be deleted.
pub async fn delete_namespaces(client: Client, names: &[String]) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn deployed() -> DeployedPod {
        DeployedPod {
            namespace: "x-1".into(),
            name: "a".into(),
            uid: "u1".into(),
            restarts: 0,
            ip: IpAddr::V4(Ipv4Addr::new(10, 244, 0, 5)),
            node: "n".into(),
            shadow: false,
        }
    }

    fn pod(uid: &str, phase: &str, ready: bool, restarts: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "a", "namespace": "x-1", "uid": uid},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "probe", "image": "i", "imageID": "", "ready": ready, "restartCount": restarts}]
            }
        }))
        .expect("a pod")
    }

    /// Every way a probe pod can stop being the pod that was deployed is a problem; the same
    /// pod, Running and Ready, is not.
    #[test]
    fn liveness_problems() {
        let d = deployed();
        assert_eq!(problem(&d, Some(&pod("u1", "Running", true, 0))), None);
        let cases = [
            (None, "is gone"),
            (Some(pod("u2", "Running", true, 0)), "UID changed"),
            (Some(pod("u1", "Running", true, 1)), "restarted"),
            (Some(pod("u1", "Failed", false, 0)), "not running"),
            (Some(pod("u1", "Running", false, 0)), "not ready"),
        ];
        for (now, want) in cases {
            let got = problem(&d, now.as_ref()).unwrap_or_default();
            assert!(got.contains(want), "{got:?} should say {want:?}");
        }
    }
}
