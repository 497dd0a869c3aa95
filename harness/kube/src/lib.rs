//! netreach-kube: the real cluster. kube-rs against the kubeconfig context named explicitly.
//!
//! The only crate of netreach that talks to Kubernetes (and the only one with an async runtime,
//! which [`KubeCluster`] owns and hides behind the synchronous `Cluster` trait of the core). Split
//! by job:
//! - [`client`]: kubeconfig and client for a named context; API errors to typed
//!   infrastructure errors (403 Forbidden and 401 Unauthorized are never retried);
//! - [`deploy`]: namespaces labelled with the run id, probe pods (PodSecurity `restricted`),
//!   selector-less Services with their EndpointSlices, readiness;
//! - [`exec`]: batched exec probing, typed lost/transport/deadline outcomes;
//! - [`external`]: external endpoints as containers on kind's Docker network (testcontainers);
//! - [`live`]: what this process's runs are creating, recorded before each create call, so
//!   an interrupt at any instant cleans up everything (and by run label, not by snapshot);
//! - [`record`]: the run record, a ConfigMap in each namespace the run does not own (given to
//!   it, or existing): what it created and what it changed there, written before the call, so
//!   teardown, Ctrl-C and gc can all undo it exactly;
//! - [`session`]: [`KubeCluster`], the `Cluster` implementation: heartbeat from the first
//!   namespace on, liveness of every probe pod before and after each round, teardown;
//! - [`gc`]: what crashed or interrupted runs left behind, namespaces and containers;
//! - [`doctor`]: `netreach doctor`, what a cluster lets netreach do (version, RBAC per verb,
//!   PodSecurity, image, NetworkPolicy enforcement);
//! - [`rbac`]: the one table of verbs netreach needs per mode, rendered as docs/rbac/.

pub mod audit;
pub mod client;
pub mod deploy;
pub mod doctor;
pub mod exec;
pub mod external;
pub mod gc;
pub mod live;
pub mod members;
pub mod rbac;
pub mod record;
pub mod session;
pub mod shadow;

use std::time::Duration;

use netreach_core::cluster::{Cluster, InfraError};

pub use gc::{GcOptions, GcReport, gc, list_run_namespaces};
pub use live::{CleanupReport, cleanup_live};
pub use session::KubeCluster;

/// The run label and the node-group label (scenarios cannot set either, so no policy of theirs
/// selects on them).
pub use netreach_core::names::{NODE_GROUP_LABEL, RUN_LABEL};
/// The node label pods are spread over and placed by.
pub const HOSTNAME_KEY: &str = "kubernetes.io/hostname";
/// Annotation: unix seconds of the run's last sign of life.
pub const HEARTBEAT_ANNOTATION: &str = "netreach.dev/heartbeat";
/// Annotation: the scenario the namespace belongs to.
pub const SCENARIO_ANNOTATION: &str = "netreach.dev/scenario";
/// Label on namespaces a run left on purpose (`--keep`, `--keep-on-failure`): gc leaves them
/// unless asked.
pub const KEPT_LABEL: &str = "netreach.dev/kept";
/// Label on containers netreach starts (what `cargo xtask cluster down` removes as ours).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "netreach");
/// How often a live run renews its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// gc's default: a run whose heartbeat is older than this is gone. Twenty heartbeats, and far
/// above any single wait of a run (a heartbeat is renewed by a background task during every
/// wait, from the first namespace on).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(300);

/// Knobs of the real cluster.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// The kubeconfig file to read (`None`: `KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Image of probe pods (and the external endpoint): `netreach serve` plus curl, nc, dig.
    pub probe_image: String,
    /// Execs in flight at once.
    pub parallelism: usize,
    /// How long pods may take to become ready.
    pub ready_timeout: Duration,
    /// Docker network of the kind cluster (for external endpoints).
    pub docker_network: String,
    /// One exec per source pod per round (true), or one exec per cell (the Kubernetes e2e
    /// suite's way; kept for benchmarks).
    pub batch: bool,
    /// Pod scheduling and pulling: see [`deploy::PodSpecOptions`].
    pub pods: deploy::PodSpecOptions,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            kubeconfig: None,
            probe_image: std::env::var("NETREACH_PROBE_IMAGE")
                .unwrap_or_else(|_| "netreach-probe:latest".into()),
            parallelism: 16,
            ready_timeout: Duration::from_secs(180),
            docker_network: std::env::var("NETREACH_DOCKER_NETWORK")
                .unwrap_or_else(|_| "kind".into()),
            batch: true,
            pods: deploy::PodSpecOptions::default(),
        }
    }
}

/// Opens a session against the cluster of `context` (a kubeconfig context named explicitly;
/// `KUBECONFIG` says which kubeconfig).
///
/// # Errors
/// When the context does not exist or its API server does not answer.
pub fn connect(context: &str, opts: KubeOptions) -> Result<Box<dyn Cluster>, InfraError> {
    Ok(Box::new(KubeCluster::connect(context, opts)?))
}

/// How many schedulable nodes the cluster has (`None`: the credentials may not list nodes).
pub fn schedulable_nodes(context: &str, kubeconfig: Option<&std::path::Path>) -> Option<usize> {
    use k8s_openapi::api::core::v1::Node;
    let rt = client::small_runtime(context).ok()?;
    rt.block_on(async {
        let c = client::client_from(context, kubeconfig).await.ok()?;
        let nodes: kube::Api<Node> = kube::Api::all(c);
        let list = tokio::time::timeout(Duration::from_secs(10), nodes.list(&Default::default()))
            .await
            .ok()?
            .ok()?;
        Some(
            list.items
                .iter()
                .filter(|n| {
                    // Cordoned, or tainted against pods that do not tolerate it (probe pods
                    // tolerate only what `--toleration` adds): no probe pod goes there.
                    let spec = n.spec.as_ref();
                    !spec.and_then(|s| s.unschedulable).unwrap_or(false)
                        && !spec.and_then(|s| s.taints.as_ref()).is_some_and(|ts| {
                            ts.iter()
                                .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                        })
                })
                .count(),
        )
    })
}

/// The API server's version (`v1.34.0`), for reports; `None` when it cannot be asked within 10 s.
pub fn server_version(context: &str, kubeconfig: Option<&std::path::Path>) -> Option<String> {
    let rt = client::small_runtime(context).ok()?;
    rt.block_on(async {
        let c = client::client_from(context, kubeconfig).await.ok()?;
        let v = tokio::time::timeout(Duration::from_secs(10), c.apiserver_version())
            .await
            .ok()?
            .ok()?;
        Some(v.git_version)
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
