//! `netreach audit --context X`: reads a live cluster into the core's [`Inventory`] with list
//! calls only (the `netreach-audit` ClusterRole: get/list/watch, nothing else).
//!
//! Namespaces (all of them: namespaceSelectors see every namespace's labels), then per audited
//! namespace (all, or `--namespace`) pods, ReplicaSets (a pod's ReplicaSet → its Deployment),
//! Jobs (a pod's Job → its CronJob), Services and NetworkPolicies. Each NetworkPolicy goes through the core's strict parser
//! ([`manifests::policy_from_json`]); one that does not validate (a field of a newer API) is an
//! [`Unsupported`] entry, not dropped. Whether the API server serves AdminNetworkPolicy
//! (`policy.networking.k8s.io`) is asked of discovery, which every authenticated user may read;
//! the role does not read those objects, so the report says they may exist.
//!
//! 403 is [`InfraError::Forbidden`] naming the verb, resource and namespace, never retried.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace as K8sNamespace, Pod as K8sPod, Service as K8sService};
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use netreach_core::audit::{
    ContainerPort, Inventory, Namespace, Owner, Pod, Service, ServicePort, Unsupported, manifests,
};
use netreach_core::cluster::InfraError;
use netreach_core::model::Protocol;

use crate::client::{self, Req};

/// What to read.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// The kubeconfig file (`None`: `KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Only these namespaces' pods, Services and policies (empty: every namespace).
    pub namespaces: Vec<String>,
}

/// Reads the cluster of `context`.
///
/// # Errors
/// The API server cannot be reached, or refuses a list ([`InfraError::Forbidden`]).
pub fn read_cluster(context: &str, o: &AuditOptions) -> Result<Inventory, InfraError> {
    let rt = client::small_runtime(context)?;
    rt.block_on(async {
        let c = client::client_from(context, o.kubeconfig.as_deref()).await?;
        read(context, &c, o).await
    })
}

async fn list<K>(
    context: &str,
    c: &Client,
    ns: Option<&str>,
    resource: &str,
) -> Result<Vec<K>, InfraError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = match ns {
        Some(n) => Api::namespaced(c.clone(), n),
        None => Api::all(c.clone()),
    };
    let req = match ns {
        Some(n) => Req::ns("list", resource, n),
        None => Req::cluster("list", resource),
    };
    pages(context, req, |lp| {
        let api = api.clone();
        async move { api.list(&lp).await }
    })
    .await
}

/// Every page of a list call (500 objects a page).
async fn pages<K, F, Fut>(context: &str, req: Req<'_>, call: F) -> Result<Vec<K>, InfraError>
where
    K: Clone,
    F: Fn(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<kube::core::ObjectList<K>, kube::Error>>,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let what = format!("list {}", req.resource);
        let page = client::bounded(context, &what, async {
            call(lp).await.map_err(|e| {
                client::api_error(context, req, &e, |reason| InfraError::Unreachable {
                    context: context.to_owned(),
                    reason: format!("{what}: {reason}"),
                })
            })
        })
        .await?;
        out.extend(page.items);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(out);
        }
    }
}

async fn read(context: &str, c: &Client, o: &AuditOptions) -> Result<Inventory, InfraError> {
    let mut inv = Inventory {
        source: format!("context {context}"),
        ..Inventory::default()
    };
    let nsapi: Api<K8sNamespace> = Api::all(c.clone());
    let namespaces = pages(context, Req::cluster("list", "namespaces"), |lp| {
        let api = nsapi.clone();
        async move { api.list(&lp).await }
    })
    .await?;
    for n in &namespaces {
        inv.namespaces.push(Namespace {
            name: n.metadata.name.clone().unwrap_or_default(),
            labels: n.metadata.labels.clone().unwrap_or_default(),
        });
    }
    let scopes: Vec<Option<&str>> = if o.namespaces.is_empty() {
        vec![None]
    } else {
        o.namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    for ns in scopes {
        let pods: Vec<K8sPod> = list(context, c, ns, "pods").await?;
        let rss: Vec<ReplicaSet> = list(context, c, ns, "replicasets").await?;
        let jobs: Vec<Job> = list(context, c, ns, "jobs").await?;
        let services: Vec<K8sService> = list(context, c, ns, "services").await?;
        let policies: Vec<K8sPolicy> = list(context, c, ns, "networkpolicies").await?;
        // A pod's ReplicaSet stands for its Deployment, a pod's Job for its CronJob.
        let up: Uplinks = rss
            .iter()
            .map(|rs| ("ReplicaSet", &rs.metadata))
            .chain(jobs.iter().map(|j| ("Job", &j.metadata)))
            .filter_map(|(k, m)| Some(((ns_of(m), k, m.name.clone()?), owner(m)?)))
            .collect();
        for p in &pods {
            if let Some(x) = convert_pod(p, &up) {
                inv.pods.push(x);
            }
        }
        inv.services.extend(services.iter().map(convert_service));
        for np in &policies {
            convert_policy(np, &mut inv);
        }
    }
    // AdminNetworkPolicy: served or not (discovery needs no role).
    if let Ok(groups) = client::bounded(context, "list API groups", async {
        c.list_api_groups()
            .await
            .map_err(|e| client::unreachable(context, e))
    })
    .await
        && groups
            .groups
            .iter()
            .any(|g| g.name == "policy.networking.k8s.io")
    {
        inv.unsupported.push(Unsupported {
            kind: "policy.networking.k8s.io/AdminNetworkPolicy".into(),
            name: "(any)".into(),
            origin: format!("context {context}"),
            reason: "the API server serves AdminNetworkPolicy and BaselineAdminNetworkPolicy, which decide what connects before and after NetworkPolicies; the audit does not read them, so where they exist this report may be wrong".into(),
            affects_reachability: true,
        });
    }
    Ok(inv)
}

fn ns_of(m: &ObjectMeta) -> String {
    m.namespace.clone().unwrap_or_else(|| "default".into())
}

/// The controlling owner reference (or the first).
fn owner(m: &ObjectMeta) -> Option<Owner> {
    let refs = m.owner_references.as_deref()?;
    let r = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or(refs.first())?;
    Some(Owner {
        kind: r.kind.clone(),
        name: r.name.clone(),
    })
}

fn protocol(p: Option<&str>) -> Protocol {
    p.and_then(Protocol::parse).unwrap_or(Protocol::Tcp)
}

/// The owner of a ReplicaSet or Job, by (namespace, kind, name).
type Uplinks = BTreeMap<(String, &'static str, String), Owner>;

/// A pod that runs or will (finished pods are left out).
fn convert_pod(p: &K8sPod, uplinks: &Uplinks) -> Option<Pod> {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let ns = ns_of(&p.metadata);
    let mut o = owner(&p.metadata);
    if let Some(x) = &o
        && let Some(k) = ["ReplicaSet", "Job"].into_iter().find(|k| *k == x.kind)
        && let Some(up) = uplinks.get(&(ns.clone(), k, x.name.clone()))
    {
        o = Some(up.clone());
    }
    let ports = p
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|cp| {
            Some(ContainerPort {
                name: cp.name.clone(),
                port: u16::try_from(cp.container_port).ok().filter(|n| *n > 0)?,
                protocol: protocol(cp.protocol.as_deref()),
            })
        })
        .collect();
    Some(Pod {
        ns,
        name: p.metadata.name.clone()?,
        labels: p.metadata.labels.clone().unwrap_or_default(),
        ip: p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|i| i.parse().ok()),
        ports,
        owner: o,
    })
}

fn convert_service(s: &K8sService) -> Service {
    let spec = s.spec.as_ref();
    Service {
        ns: ns_of(&s.metadata),
        name: s.metadata.name.clone().unwrap_or_default(),
        kind: spec
            .and_then(|x| x.type_.clone())
            .unwrap_or_else(|| "ClusterIP".into()),
        selector: spec.and_then(|x| x.selector.clone()),
        ports: spec
            .iter()
            .flat_map(|x| x.ports.iter().flatten())
            .filter_map(|p| {
                Some(ServicePort {
                    port: u16::try_from(p.port).ok()?,
                    target: match &p.target_port {
                        Some(IntOrString::Int(n)) => n.to_string(),
                        Some(IntOrString::String(s)) => s.clone(),
                        None => p.port.to_string(),
                    },
                    protocol: protocol(p.protocol.as_deref()),
                })
            })
            .collect(),
    }
}

/// The policy as the strict parser reads it: what it says (`spec`), under the metadata a
/// manifest carries (the server's own fields — uid, resourceVersion, managedFields — left out).
fn convert_policy(np: &K8sPolicy, inv: &mut Inventory) {
    let ns = ns_of(&np.metadata);
    let name = np.metadata.name.clone().unwrap_or_default();
    let origin = format!("networkpolicy {ns}/{name}");
    let mut meta = serde_json::json!({"name": name, "namespace": ns});
    if let Some(l) = &np.metadata.labels {
        meta["labels"] = serde_json::json!(l);
    }
    let doc = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": np.spec.as_ref().map(serde_json::to_value).and_then(Result::ok),
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    match manifests::policy_from_json(&text, &origin) {
        Ok(p) => inv.policies.push(p),
        Err(errs) => inv.unsupported.push(Unsupported {
            kind: "networking.k8s.io/v1/NetworkPolicy".into(),
            name: format!("{ns}/{name}"),
            origin,
            reason: format!(
                "does not validate, so the audit leaves it out and what it says about the pods it selects may be wrong: {}",
                errs.join("; ")
            ),
            affects_reachability: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn owned_by(kind: &str, name: &str) -> Option<Vec<OwnerReference>> {
        Some(vec![OwnerReference {
            kind: kind.into(),
            name: name.into(),
            controller: Some(true),
            ..OwnerReference::default()
        }])
    }

    fn pod(owner: (&str, &str)) -> K8sPod {
        K8sPod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                owner_references: owned_by(owner.0, owner.1),
                ..ObjectMeta::default()
            },
            ..K8sPod::default()
        }
    }

    /// A pod's ReplicaSet stands for its Deployment and a pod's Job for its CronJob; a Job no
    /// CronJob owns is the workload itself, and a ReplicaSet and a Job of one name stay apart.
    #[test]
    fn pods_are_grouped_under_the_controller_of_their_controller() {
        let up: Uplinks = [
            (
                ("ns".to_owned(), "ReplicaSet", "web-5d8f".to_owned()),
                Owner {
                    kind: "Deployment".into(),
                    name: "web".into(),
                },
            ),
            (
                ("ns".to_owned(), "Job", "backup-2912".to_owned()),
                Owner {
                    kind: "CronJob".into(),
                    name: "backup".into(),
                },
            ),
        ]
        .into_iter()
        .collect();
        let of = |k: &str, n: &str| convert_pod(&pod((k, n)), &up).and_then(|p| p.owner);
        assert_eq!(
            of("ReplicaSet", "web-5d8f").map(|o| o.name),
            Some("web".into())
        );
        assert_eq!(
            of("Job", "backup-2912").map(|o| (o.kind, o.name)),
            Some(("CronJob".into(), "backup".into()))
        );
        assert_eq!(
            of("Job", "once").map(|o| (o.kind, o.name)),
            Some(("Job".into(), "once".into()))
        );
        // A Job named like a ReplicaSet is not that ReplicaSet.
        assert_eq!(
            of("Job", "web-5d8f").map(|o| (o.kind, o.name)),
            Some(("Job".into(), "web-5d8f".into()))
        );
    }
}
