//! The cluster seam: what the runner needs from a cluster, as a trait, plus the pure deployment
//! plan it hands over.
//!
//! The runner (`crate::run`) is written against [`Cluster`] and never sees a Kubernetes client.
//! The real implementation (kube-rs against the context named by `--context` /
//! `NETREACH_CONTEXT`) is the `netreach-kube` crate; [`fake::FakeCluster`] stands in for a
//! cluster in unit tests of pure logic.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::bind::{BindError, Bindings, BoundProbe};
use crate::model::{Action, External, Placement, PodId, Scenario, ServedPort};
use crate::names::{NamespaceMap, Naming};
use crate::outcome::Observation;
use crate::probe::ProbeTimeout;

/// Infrastructure failures: anything that keeps netreach from deciding cells. Never reported as
/// a policy result.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InfraError {
    /// The cluster backend is not available in this build.
    #[error("cannot run against context `{context}`: {reason}")]
    Unavailable {
        /// The context asked for.
        context: String,
        /// Why.
        reason: String,
    },
    /// The API server could not be reached or refused us.
    #[error("cluster `{context}` is unreachable: {reason}")]
    Unreachable {
        /// The context.
        context: String,
        /// Why.
        reason: String,
    },
    /// Creating namespaces, pods or Services failed, or they never became ready.
    #[error("deploying {what} failed: {reason}")]
    Deploy {
        /// What (e.g. `pod x-ab12cd/a`).
        what: String,
        /// Why (e.g. `ImagePullBackOff`).
        reason: String,
    },
    /// Applying a step's changes failed.
    #[error("applying {what} failed: {reason}")]
    Apply {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
    /// A probe round failed as a whole.
    #[error("probing failed: {0}")]
    Probe(String),
    /// Removing what the run created failed (namespaces may be left over).
    #[error("cleanup failed: {0}")]
    Teardown(String),
    /// The API server refused a request (403): the credentials lack a permission. Never
    /// retried; the run stops at once.
    #[error("forbidden: cannot {verb} {resource}{} ({detail}); grant it (see docs/rbac.md) or run where it is allowed", namespace.as_deref().map(|n| format!(" in namespace {n}")).unwrap_or_default())]
    Forbidden {
        /// `create`, `get`, ...
        verb: String,
        /// `pods/exec`, `namespaces`, ...
        resource: String,
        /// The namespace, for namespaced requests.
        namespace: Option<String>,
        /// The API server's message.
        detail: String,
    },
    /// The API server did not accept the credentials (401). Never retried.
    #[error("unauthorized: the API server of `{context}` rejected the credentials ({detail})")]
    Unauthorized {
        /// The context.
        context: String,
        /// The API server's message.
        detail: String,
    },
    /// The run was interrupted (Ctrl-C, SIGTERM): nothing more is created.
    #[error("interrupted")]
    Interrupted,
    /// The deployment lacks an address or name the step needs.
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// A namespace the run needs: created by it, or given to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedNamespace {
    /// Logical name.
    pub logical: String,
    /// Real name.
    pub real: String,
    /// Labels to set (for a given namespace: the labels it must already carry).
    pub labels: BTreeMap<String, String>,
    /// Given to the run (`--namespace logical=real`): it exists, is never created, relabelled
    /// or deleted; the run deletes only what it created inside.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub given: bool,
}

/// A probe pod to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedPod {
    /// Logical id.
    pub id: PodId,
    /// Real namespace.
    pub namespace: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Ports its server listens on.
    pub ports: Vec<ServedPort>,
    /// Whether a Service fronts it.
    pub service: bool,
    /// Where it must run (default: anywhere; the run's pods are spread over the nodes).
    #[serde(skip_serializing_if = "PodPlacement::is_free")]
    pub placement: PodPlacement,
    /// A real workload (`workload:`): the labels that choose its pods. The run creates no pod
    /// of this name: probes go to one of those pods and run from a shadow pod beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<BTreeMap<String, String>>,
}

/// How one pod is placed, in scheduling terms: the scenario's `node:` lines resolved into groups
/// of pods that share a node. A group is named `g<N>`; the kube crate turns these into a
/// node-group label, node affinity, and pod (anti-)affinity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PodPlacement {
    /// The pod's group, when any placement names it or its group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The node it must run on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Runs on the node of the other pods of its group (a group of more than one pod).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub with_group: bool,
    /// Stays off the nodes of these groups' pods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apart_from: Vec<String>,
}

impl PodPlacement {
    /// Nothing asked: the scheduler decides.
    pub fn is_free(&self) -> bool {
        self == &PodPlacement::default()
    }
}

/// The scenario's placements as groups of pods that share a node, with the node each group is
/// pinned to and the groups kept apart.
#[derive(Clone, Debug, Default)]
pub struct PlacementGroups {
    group: BTreeMap<PodId, usize>,
    members: Vec<Vec<PodId>>,
    nodes: Vec<Option<String>>,
    apart: std::collections::BTreeSet<(usize, usize)>,
}

/// Groups the pods of `placement` (and those it names) by `same`, deterministically (groups
/// numbered in pod order).
pub fn placement_groups(placement: &BTreeMap<PodId, Placement>) -> PlacementGroups {
    let mut ids: Vec<&PodId> = placement.keys().collect();
    for p in placement.values() {
        if let Placement::Same(o) | Placement::Different(o) = p {
            ids.push(o);
        }
    }
    ids.sort();
    ids.dedup();
    let index: BTreeMap<&PodId, usize> = ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (id, p) in placement {
        if let Placement::Same(o) = p {
            let (a, b) = (root(&mut parent, index[id]), root(&mut parent, index[o]));
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut g = PlacementGroups::default();
    let mut number: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let r = root(&mut parent, i);
        let n = *number.entry(r).or_insert_with(|| {
            g.members.push(Vec::new());
            g.nodes.push(None);
            g.members.len() - 1
        });
        g.members[n].push((*id).clone());
        g.group.insert((*id).clone(), n);
    }
    for (id, p) in placement {
        let own = g.group[id];
        match p {
            Placement::Node(name) => g.nodes[own] = Some(name.clone()),
            Placement::Different(o) => {
                let other = g.group[o];
                g.apart.insert((own.min(other), own.max(other)));
            }
            Placement::Same(_) => {}
        }
    }
    g
}

impl PlacementGroups {
    /// Whether `id`'s group can be placed at all; `Err` says why not. (With one `node:` per pod
    /// a group has at most one pod that points at no other, so a group has at most one node
    /// name and is never pinned *and* kept apart: what remains is a group apart from itself.)
    ///
    /// # Errors
    /// When its group must be kept apart from itself.
    pub fn check(&self, id: &PodId) -> Result<(), String> {
        let Some(&own) = self.group.get(id) else {
            return Ok(());
        };
        if self.apart.contains(&(own, own)) {
            let names: Vec<String> = self.members[own].iter().map(ToString::to_string).collect();
            return Err(format!(
                "{} share a node (`same`) and must also be apart (`different`)",
                names.join(", ")
            ));
        }
        Ok(())
    }

    /// The scheduling terms of one pod.
    pub fn for_pod(&self, id: &PodId) -> PodPlacement {
        let Some(&own) = self.group.get(id) else {
            return PodPlacement::default();
        };
        let name = |g: usize| format!("g{g}");
        let node = self.nodes[own].clone();
        let apart_from = self
            .apart
            .iter()
            .filter_map(|&(a, b)| match (a == own, b == own) {
                (true, false) => Some(name(b)),
                (false, true) => Some(name(a)),
                _ => None,
            })
            .collect();
        PodPlacement {
            group: Some(name(own)),
            node,
            with_group: self.members[own].len() > 1,
            apart_from,
        }
    }
}

/// Everything to create before the first step, in real names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeployPlan {
    /// The scenario's full name, for labels and messages.
    pub scenario: String,
    /// The run id: labels everything the run creates.
    pub run_id: String,
    /// Logical-to-real names.
    pub names: NamespaceMap,
    /// Namespaces to create (never `existing` ones).
    pub namespaces: Vec<PlannedNamespace>,
    /// Pods to create.
    pub pods: Vec<PlannedPod>,
    /// External endpoints the run must provide.
    pub externals: Vec<External>,
    /// Namespaces that steps add (`add:`), planned like the first ones; created by the step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub later_namespaces: Vec<PlannedNamespace>,
    /// Pods that steps add (`add:`), also those removed first and added back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub later_pods: Vec<PlannedPod>,
    /// Live namespaces (`existing`, `candidates: true`) whose policies steps change: every
    /// policy created or changed there is recorded before the change and restored at the end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_namespaces: Vec<String>,
}

impl DeployPlan {
    /// Plans a scenario's deployment. `run_id` labels everything the run creates (also with
    /// verbatim names, where it is not part of the names).
    pub fn new(s: &Scenario, naming: &Naming, run_id: &str) -> DeployPlan {
        Self::with_given(s, naming, run_id, &BTreeMap::new())
    }

    /// [`DeployPlan::new`], with logical namespaces mapped onto namespaces given to the run
    /// (`logical -> real`), which exist already and are never created or deleted.
    pub fn with_given(
        s: &Scenario,
        naming: &Naming,
        run_id: &str,
        given: &BTreeMap<String, String>,
    ) -> DeployPlan {
        let names = s.namespace_map(naming).with_given(given);
        let real = |l: &str| names.real(l).unwrap_or(l).to_owned();
        let services = s.pods_needing_service();
        let groups = placement_groups(&s.placement);
        let absent = &s.absent_at_start;
        let namespace = |n: &crate::model::Namespace| PlannedNamespace {
            logical: n.name.clone(),
            real: real(&n.name),
            labels: n.labels.clone(),
            given: given.contains_key(&n.name),
        };
        let pod = |p: &crate::model::Pod| PlannedPod {
            id: p.id.clone(),
            namespace: real(&p.id.ns),
            labels: p.labels.clone(),
            ports: p.ports.clone(),
            service: services.contains(&p.id),
            placement: groups.for_pod(&p.id),
            workload: s.workloads.get(&p.id).cloned(),
        };
        let added = s.steps.iter().flat_map(|st| &st.actions);
        let mut later_namespaces: Vec<PlannedNamespace> = Vec::new();
        let mut later_pods: Vec<PlannedPod> = Vec::new();
        for a in added {
            match a {
                Action::AddNamespace(n)
                    if !later_namespaces.iter().any(|l| l.logical == n.name) =>
                {
                    later_namespaces.push(namespace(n));
                }
                Action::AddPod(p) if !later_pods.iter().any(|l| l.id == p.id) => {
                    later_pods.push(pod(p));
                }
                _ => {}
            }
        }
        DeployPlan {
            scenario: s.full_name(),
            run_id: run_id.to_owned(),
            namespaces: s
                .namespaces
                .iter()
                .filter(|n| !n.existing && !absent.namespaces.contains(&n.name))
                .map(namespace)
                .collect(),
            pods: s
                .pods
                .iter()
                .filter(|p| !absent.pods.contains(&p.id))
                .map(pod)
                .collect(),
            externals: s.externals.clone(),
            later_namespaces,
            later_pods,
            live_namespaces: s
                .live_changes()
                .into_iter()
                .flat_map(|(_, ns)| ns)
                .map(str::to_owned)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            names,
        }
    }
}

/// A change to make to the cluster, in real names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ClusterAction {
    /// Delete a pod the run created (and its Service), and wait until it is gone.
    RemovePod {
        /// Logical id.
        id: PodId,
        /// Real namespace.
        namespace: String,
        /// Whether a Service fronts it.
        service: bool,
    },
    /// Delete a namespace the run created, and wait until it is gone.
    RemoveNamespace {
        /// Logical name.
        logical: String,
        /// Real name.
        namespace: String,
    },
    /// Create a namespace, as at deployment.
    AddNamespace(PlannedNamespace),
    /// Create a pod (and its Service), as at deployment, and wait until it is ready.
    AddPod(PlannedPod),
    /// Create or update a NetworkPolicy (server-side apply).
    ApplyPolicy {
        /// `ns/name` in logical names, for messages.
        policy: String,
        /// The manifest, in real names and addresses.
        manifest: Value,
    },
    /// Delete a NetworkPolicy.
    DeletePolicy {
        /// Real namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Set (or with `None`, remove) pod labels.
    LabelPod {
        /// Real namespace.
        namespace: String,
        /// Pod name.
        pod: String,
        /// Changes.
        labels: BTreeMap<String, Option<String>>,
    },
    /// Set (or with `None`, remove) namespace labels.
    LabelNamespace {
        /// Real namespace.
        namespace: String,
        /// Changes.
        labels: BTreeMap<String, Option<String>>,
    },
}

/// Turns a step's actions into cluster actions in real names (`plan`: the run's, for what
/// steps add).
///
/// # Errors
/// When a name or address the actions need is not bound, or a step would add or remove a
/// namespace given to the run (or a pod in one).
pub fn cluster_actions(
    actions: &[Action],
    b: &Bindings,
    plan: &DeployPlan,
) -> Result<Vec<ClusterAction>, BindError> {
    let given = |ns: &str| {
        if plan.namespaces.iter().any(|n| n.given && n.logical == ns) {
            Err(BindError::Given(ns.to_owned()))
        } else {
            Ok(())
        }
    };
    let service = |id: &PodId| {
        plan.pods
            .iter()
            .chain(&plan.later_pods)
            .any(|p| &p.id == id && p.service)
    };
    actions
        .iter()
        .map(|a| {
            Ok(match a {
                Action::RemovePod(id) => {
                    given(&id.ns)?;
                    ClusterAction::RemovePod {
                        id: id.clone(),
                        namespace: b.namespace(&id.ns)?.to_owned(),
                        service: service(id),
                    }
                }
                Action::RemoveNamespace(ns) => {
                    given(ns)?;
                    ClusterAction::RemoveNamespace {
                        logical: ns.clone(),
                        namespace: b.namespace(ns)?.to_owned(),
                    }
                }
                Action::AddNamespace(n) => {
                    given(&n.name)?;
                    let planned = plan
                        .later_namespaces
                        .iter()
                        .find(|l| l.logical == n.name)
                        .ok_or_else(|| BindError::Namespace(n.name.clone()))?;
                    ClusterAction::AddNamespace(planned.clone())
                }
                Action::AddPod(p) => {
                    given(&p.id.ns)?;
                    let planned = plan
                        .later_pods
                        .iter()
                        .find(|l| l.id == p.id)
                        .ok_or_else(|| BindError::PodIp(p.id.clone()))?;
                    ClusterAction::AddPod(planned.clone())
                }
                Action::ApplyPolicy(p) | Action::ReplacePolicy(p) => ClusterAction::ApplyPolicy {
                    policy: p.reference().to_string(),
                    manifest: p.to_manifest(b)?,
                },
                Action::DeletePolicy(r) => ClusterAction::DeletePolicy {
                    namespace: b.namespace(&r.ns)?.to_owned(),
                    name: r.name.clone(),
                },
                Action::RelabelPod { pod, labels } => ClusterAction::LabelPod {
                    namespace: b.namespace(&pod.ns)?.to_owned(),
                    pod: pod.name.clone(),
                    labels: labels.clone(),
                },
                Action::RelabelNamespace { ns, labels } => ClusterAction::LabelNamespace {
                    namespace: b.namespace(ns)?.to_owned(),
                    labels: labels.clone(),
                },
            })
        })
        .collect()
}

/// One scenario's session with a cluster. Calls come in this order: `deploy`, then per step
/// `apply` and `probe`, then `teardown` (also after a failure).
pub trait Cluster {
    /// Creates namespaces, pods, Services and external endpoints; waits until they are ready.
    ///
    /// # Errors
    /// Anything that keeps the deployment from becoming ready, naming the object and reason.
    fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError>;

    /// Makes a step's changes; returns the bindings as they are afterwards (with the names and
    /// addresses of pods the step added, without those it removed).
    ///
    /// # Errors
    /// When a change is rejected or cannot be made.
    fn apply(&mut self, actions: &[ClusterAction]) -> Result<Bindings, InfraError>;

    /// Runs probes, each bounded by `timeout` inside the pod; returns exactly one observation
    /// per probe, in order. A probe that fails on its own is an
    /// [`crate::outcome::Outcome::Error`] observation; `Err` is for a round that failed as a
    /// whole (and for a refusal by the API server, which no retry changes).
    ///
    /// # Errors
    /// When the round as a whole could not run.
    fn probe(
        &mut self,
        probes: &[BoundProbe],
        timeout: ProbeTimeout,
    ) -> Result<Vec<Observation>, InfraError>;

    /// Leaves what the run created in place on purpose (`--keep`, `--keep-on-failure`): marks
    /// it kept, so that `netreach gc` leaves it unless asked.
    ///
    /// # Errors
    /// When the marking fails (gc may then treat the run as stale later).
    fn keep(&mut self) -> Result<(), InfraError> {
        Ok(())
    }

    /// Removes what `deploy` and `apply` created, and nothing else.
    ///
    /// # Errors
    /// When cleanup fails (the caller reports what may be left over).
    fn teardown(&mut self) -> Result<(), InfraError>;
}

pub mod fake;
