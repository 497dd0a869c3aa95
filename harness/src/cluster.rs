//! The cluster seam: what the runner needs from a cluster, as a trait, plus the pure deployment
//! plan it hands over.
//!
//! The runner (`crate::run`) is written against [`Cluster`] and never sees a Kubernetes client.
//! The real implementation (kube-rs against the context named by `--context` /
//! `NETREACH_CONTEXT`) is not built yet: [`connect`] says so as an infrastructure error, never as
//! a policy result. [`fake::FakeCluster`] stands in for a cluster in unit tests of pure logic.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::bind::{BindError, Bindings, BoundProbe};
use crate::model::{Action, External, PodId, Scenario, ServedPort};
use crate::names::{NamespaceMap, Naming};
use crate::outcome::Observation;

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
    /// The deployment lacks an address or name the step needs.
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// A namespace to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedNamespace {
    /// Logical name.
    pub logical: String,
    /// Real name.
    pub real: String,
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
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
}

/// Everything to create before the first step, in real names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeployPlan {
    /// The scenario's full name, for labels and messages.
    pub scenario: String,
    /// The run id (empty in verbatim mode).
    pub run_id: String,
    /// Logical-to-real names.
    pub names: NamespaceMap,
    /// Namespaces to create (never `existing` ones).
    pub namespaces: Vec<PlannedNamespace>,
    /// Pods to create.
    pub pods: Vec<PlannedPod>,
    /// External endpoints the run must provide.
    pub externals: Vec<External>,
}

impl DeployPlan {
    /// Plans a scenario's deployment.
    pub fn new(s: &Scenario, naming: &Naming) -> DeployPlan {
        let own: Vec<&str> = s
            .namespaces
            .iter()
            .filter(|n| !n.existing)
            .map(|n| n.name.as_str())
            .collect();
        let existing: Vec<&str> = s
            .namespaces
            .iter()
            .filter(|n| n.existing)
            .map(|n| n.name.as_str())
            .collect();
        let names = NamespaceMap::new(naming, own.iter().copied(), existing.iter().copied());
        let real = |l: &str| names.real(l).unwrap_or(l).to_owned();
        let services = s.pods_needing_service();
        DeployPlan {
            scenario: s.full_name(),
            run_id: match naming {
                Naming::PerRun { run_id } => run_id.clone(),
                Naming::Verbatim => String::new(),
            },
            namespaces: s
                .namespaces
                .iter()
                .filter(|n| !n.existing)
                .map(|n| PlannedNamespace {
                    logical: n.name.clone(),
                    real: real(&n.name),
                    labels: n.labels.clone(),
                })
                .collect(),
            pods: s
                .pods
                .iter()
                .map(|p| PlannedPod {
                    id: p.id.clone(),
                    namespace: real(&p.id.ns),
                    labels: p.labels.clone(),
                    ports: p.ports.clone(),
                    service: services.contains(&p.id),
                })
                .collect(),
            externals: s.externals.clone(),
            names,
        }
    }
}

/// A change to make to the cluster, in real names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ClusterAction {
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

/// Turns a step's actions into cluster actions in real names.
///
/// # Errors
/// When a name or address the actions need is not bound.
pub fn cluster_actions(actions: &[Action], b: &Bindings) -> Result<Vec<ClusterAction>, BindError> {
    actions
        .iter()
        .map(|a| {
            Ok(match a {
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

    /// Makes a step's changes.
    ///
    /// # Errors
    /// When a change is rejected or cannot be made.
    fn apply(&mut self, actions: &[ClusterAction]) -> Result<(), InfraError>;

    /// Runs probes; returns exactly one observation per probe, in order. A probe that fails on
    /// its own is an [`crate::outcome::Outcome::Error`] observation; `Err` is for a round that
    /// failed as a whole.
    ///
    /// # Errors
    /// When the round as a whole could not run.
    fn probe(&mut self, probes: &[BoundProbe]) -> Result<Vec<Observation>, InfraError>;

    /// Removes what `deploy` and `apply` created, and nothing else.
    ///
    /// # Errors
    /// When cleanup fails (the caller reports what may be left over).
    fn teardown(&mut self) -> Result<(), InfraError>;
}

/// Opens a session against the cluster of `context` (a kubeconfig context named explicitly).
///
/// # Errors
/// Always, in this build: the Kubernetes backend (deploy, exec probes, cleanup) is not
/// implemented yet. Reported as an infrastructure error, never as a policy result.
pub fn connect(context: &str) -> Result<Box<dyn Cluster>, InfraError> {
    Err(InfraError::Unavailable {
        context: context.to_owned(),
        reason: "this build of netreach has no Kubernetes backend yet (deploying and probing is not implemented); \
                 `netreach validate` works, cluster runs do not"
            .to_owned(),
    })
}

/// A stand-in cluster for unit tests of the runner and reports: hands out fake addresses,
/// records every call, and answers probes through a closure. Never used outside tests of pure
/// logic; cluster features are proven against a real cluster.
pub mod fake {
    use std::net::{IpAddr, Ipv4Addr};

    use super::{Cluster, ClusterAction, DeployPlan, InfraError};
    use crate::bind::{Bindings, BoundProbe};
    use crate::outcome::{Observation, Outcome};

    /// What a probe sees, decided by the test.
    pub type Responder = Box<dyn FnMut(&BoundProbe, &[ClusterAction]) -> Outcome + Send>;

    /// A recorded call.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Call {
        /// `deploy`.
        Deploy(Box<DeployPlan>),
        /// `apply`.
        Apply(Vec<ClusterAction>),
        /// `probe` with this many probes.
        Probe(usize),
        /// `teardown`.
        Teardown,
    }

    /// The test double.
    pub struct FakeCluster {
        /// Every call, in order.
        pub calls: Vec<Call>,
        /// Every action applied so far.
        pub applied: Vec<ClusterAction>,
        /// Decides each probe's outcome.
        pub responder: Responder,
        /// Fail `deploy` with this error.
        pub fail_deploy: Option<InfraError>,
        /// Fail the `apply` with this index (0-based) with this error.
        pub fail_apply: Option<(usize, InfraError)>,
    }

    impl std::fmt::Debug for FakeCluster {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("FakeCluster")
                .field("calls", &self.calls)
                .finish_non_exhaustive()
        }
    }

    impl FakeCluster {
        /// A cluster whose probes answer through `responder`.
        pub fn new(
            responder: impl FnMut(&BoundProbe, &[ClusterAction]) -> Outcome + Send + 'static,
        ) -> Self {
            FakeCluster {
                calls: Vec::new(),
                applied: Vec::new(),
                responder: Box::new(responder),
                fail_deploy: None,
                fail_apply: None,
            }
        }
    }

    impl Cluster for FakeCluster {
        fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError> {
            self.calls.push(Call::Deploy(Box::new(plan.clone())));
            if let Some(e) = self.fail_deploy.clone() {
                return Err(e);
            }
            let mut b = Bindings {
                namespaces: plan.names.clone(),
                cluster_domain: "cluster.local".into(),
                ..Bindings::default()
            };
            for (i, p) in plan.pods.iter().enumerate() {
                let i = u8::try_from(i + 2).unwrap_or(u8::MAX);
                b.pod_ips
                    .insert(p.id.clone(), IpAddr::V4(Ipv4Addr::new(10, 244, 0, i)));
                if p.service {
                    b.service_ips
                        .insert(p.id.clone(), IpAddr::V4(Ipv4Addr::new(10, 96, 0, i)));
                }
            }
            for (i, e) in plan.externals.iter().enumerate() {
                let i = u8::try_from(i + 2).unwrap_or(u8::MAX);
                b.external_ips
                    .insert(e.name.clone(), IpAddr::V4(Ipv4Addr::new(172, 18, 0, i)));
            }
            Ok(b)
        }

        fn apply(&mut self, actions: &[ClusterAction]) -> Result<(), InfraError> {
            let n = self
                .calls
                .iter()
                .filter(|c| matches!(c, Call::Apply(_)))
                .count();
            self.calls.push(Call::Apply(actions.to_vec()));
            if let Some((at, e)) = &self.fail_apply
                && *at == n
            {
                return Err(e.clone());
            }
            self.applied.extend(actions.iter().cloned());
            Ok(())
        }

        fn probe(&mut self, probes: &[BoundProbe]) -> Result<Vec<Observation>, InfraError> {
            self.calls.push(Call::Probe(probes.len()));
            let applied = self.applied.clone();
            Ok(probes
                .iter()
                .map(|p| Observation::bare((self.responder)(p, &applied)))
                .collect())
        }

        fn teardown(&mut self) -> Result<(), InfraError> {
            self.calls.push(Call::Teardown);
            Ok(())
        }
    }
}
