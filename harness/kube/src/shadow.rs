//! Real workloads (`workload:` in an `existing` namespace): the run creates nothing in their
//! place and changes nothing of theirs.
//!
//! - **As a target**, a workload is one of its pods: the first by name that is Running and
//!   Ready, with an IP, among the pods its labels choose. Probes go to that pod's IP, on ports
//!   its containers declare (checked, so a typo is an error, not a "blocked" cell).
//! - **As a source**, it is a *shadow pod* in the same namespace: the probe image with exactly
//!   the chosen pod's labels, so that exactly the policies that select the workload select it.
//!   It never becomes Ready (a readiness gate that nobody sets), so no Service sends it real
//!   traffic; its controller owner is the run record (`crate::record`), so no ReplicaSet or
//!   StatefulSet whose selector it matches adopts it (and scales a real replica down), and
//!   deleting the record deletes it. It is listed in the record before it is created, and
//!   teardown, Ctrl-C and `netreach gc` delete it through the record. While it exists it counts
//!   for PodDisruptionBudgets and HPAs that select the workload (as an unready pod).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use netreach_core::cluster::{InfraError, PlannedPod};

use crate::client::{Req, api_error, unreachable};
use crate::deploy::{self, DeployedPod, PodSpecOptions};
use crate::record::record_name;

/// The condition a shadow pod's readiness gate waits for; nothing ever sets it.
pub const NEVER_READY: &str = "netreach.dev/shadow-never-ready";

/// Annotation on a shadow pod naming the real pod whose labels it carries.
pub const SHADOW_OF: &str = "netreach.dev/shadow-of";

/// The name of a workload's shadow pod: `nr-<run id>-<pod>`, at most 63 characters.
pub fn shadow_name(p: &PlannedPod, run_id: &str) -> String {
    let mut n = format!("nr-{run_id}-{}", p.id.name);
    n.truncate(63);
    n.trim_end_matches('-').to_owned()
}

/// `k=v,k2=v2`, a label selector for a list call.
fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Chooses the pod a workload stands for and checks it against the scenario: it carries the
/// declared labels and declares the declared ports. Returns it with all its labels (the
/// shadow's).
///
/// # Errors
/// When no pod is Ready, or the chosen one does not fit the declaration (a deploy error naming
/// the workload), or the list is refused.
pub async fn choose(
    client: &Client,
    context: &str,
    p: &PlannedPod,
    workload: &BTreeMap<String, String>,
) -> Result<(DeployedPod, BTreeMap<String, String>), InfraError> {
    let what = format!("workload {}/{}", p.namespace, p.id.name);
    let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
    let sel = selector(workload);
    let list = api
        .list(&ListParams::default().labels(&sel))
        .await
        .map_err(|e| {
            api_error(context, Req::ns("list", "pods", &p.namespace), &e, |r| {
                unreachable(context, r)
            })
        })?;
    let matching = list.items.len();
    let chosen = list
        .items
        .into_iter()
        .filter(|pod| {
            pod.metadata.deletion_timestamp.is_none() && deploy::is_ready(pod) && !is_shadow(pod)
        })
        .filter_map(|pod| pod_ip(&pod).map(|ip| (pod, ip)))
        .min_by(|(a, _), (b, _)| a.metadata.name.cmp(&b.metadata.name));
    let Some((pod, ip)) = chosen else {
        return Err(InfraError::Deploy {
            what,
            reason: format!(
                "no Ready pod in namespace {} carries {sel} ({matching} pod(s) match, none Ready with an IP); check the labels of `workload:` against `kubectl get pods -n {} --show-labels`",
                p.namespace, p.namespace
            ),
        });
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    if let Some((k, v)) = p.labels.iter().find(|(k, v)| labels.get(*k) != Some(*v)) {
        return Err(InfraError::Deploy {
            what,
            reason: format!(
                "its pod {name} does not carry {k}={v}, which the scenario declares under `labels:` (it carries {}); the expectations would be computed for labels it does not have",
                selector(&labels)
            ),
        });
    }
    let declared = container_ports(&pod);
    for sp in &p.ports {
        let found = declared.iter().any(|(port, proto, pname)| {
            *port == sp.port.port
                && proto == sp.port.protocol.k8s_name()
                && sp
                    .name
                    .as_ref()
                    .is_none_or(|n| pname.as_deref() == Some(n.as_str()))
        });
        if !found {
            let have: Vec<String> = declared
                .iter()
                .map(|(port, proto, n)| match n {
                    Some(n) => format!("{n}={port}/{proto}"),
                    None => format!("{port}/{proto}"),
                })
                .collect();
            return Err(InfraError::Deploy {
                what,
                reason: format!(
                    "its pod {name} declares no container port {} (it declares: {}); probe only ports its containers declare",
                    sp.port,
                    if have.is_empty() {
                        "none".to_owned()
                    } else {
                        have.join(", ")
                    }
                ),
            });
        }
    }
    let deployed = DeployedPod {
        namespace: p.namespace.clone(),
        name,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        restarts: deploy::restarts(&pod),
        ip,
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        shadow: false,
    };
    Ok((deployed, labels))
}

fn pod_ip(pod: &Pod) -> Option<IpAddr> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_ref())
        .and_then(|ip| ip.parse().ok())
}

/// Whether a pod is a shadow pod of some run (never chosen as a workload's pod).
fn is_shadow(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(SHADOW_OF))
}

/// `(port, protocol, name)` of every container port the pod declares.
fn container_ports(pod: &Pod) -> Vec<(u16, String, Option<String>)> {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|cp| {
            Some((
                u16::try_from(cp.container_port).ok()?,
                cp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                cp.name.clone(),
            ))
        })
        .collect()
}

/// The shadow pod of workload `p`, standing for the real pod `real` (its labels exactly),
/// owned by the run record whose UID is `record_uid`.
pub fn shadow_manifest(
    p: &PlannedPod,
    real_labels: &BTreeMap<String, String>,
    real_name: &str,
    run_id: &str,
    record_uid: &str,
    image: &str,
    o: &PodSpecOptions,
) -> Value {
    // The probe pod's spec (restricted-ready, the server as its readiness), serving nothing.
    let source = PlannedPod {
        ports: Vec::new(),
        placement: netreach_core::cluster::PodPlacement::default(),
        ..p.clone()
    };
    let mut m = deploy::pod_manifest(&source, run_id, &[], image, o);
    m["metadata"] = json!({
        "name": shadow_name(p, run_id),
        "namespace": p.namespace,
        // Exactly the real pod's labels: no run label, which a policy could select on.
        "labels": real_labels,
        "annotations": {SHADOW_OF: real_name, crate::RUN_LABEL: run_id},
        "ownerReferences": [{
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": record_name(run_id),
            "uid": record_uid,
            "controller": true,
            "blockOwnerDeletion": false
        }]
    });
    if let Some(spec) = m["spec"].as_object_mut() {
        spec.remove("topologySpreadConstraints");
        spec.insert(
            "readinessGates".into(),
            json!([{"conditionType": NEVER_READY}]),
        );
    }
    m
}

/// Creates the shadow pod of workload `p`, standing for its chosen pod (`real`: its name and
/// labels), owned by the run record (`owner`: the run id and the record's UID); the record
/// must list it already.
///
/// # Errors
/// When the API refuses the pod.
pub async fn create(
    client: &Client,
    context: &str,
    p: &PlannedPod,
    (real_name, real_labels): (&str, &BTreeMap<String, String>),
    (run_id, record_uid): (&str, &str),
    image: &str,
    o: &PodSpecOptions,
) -> Result<(), InfraError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
    let what = format!("shadow pod {}/{}", p.namespace, shadow_name(p, run_id));
    let m = shadow_manifest(p, real_labels, real_name, run_id, record_uid, image, o);
    let obj: Pod = serde_json::from_value(m).map_err(|e| InfraError::Deploy {
        what: what.clone(),
        reason: e.to_string(),
    })?;
    api.create(&kube::api::PostParams::default(), &obj)
        .await
        .map_err(|e| {
            api_error(context, Req::ns("create", "pods", &p.namespace), &e, |r| {
                InfraError::Deploy {
                    what: what.clone(),
                    reason: r,
                }
            })
        })?;
    Ok(())
}

/// Whether a shadow pod's containers are ready (its server listens): the pod itself never is.
pub fn containers_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "ContainersReady" && c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netreach_core::model::{PodId, PortProto, Protocol, ServedPort};

    fn workload() -> PlannedPod {
        PlannedPod {
            id: PodId::new("prod", "frontend"),
            namespace: "prod".into(),
            labels: BTreeMap::from([("app".into(), "frontend".into())]),
            ports: vec![ServedPort {
                port: PortProto {
                    port: 8080,
                    protocol: Protocol::Tcp,
                },
                name: None,
            }],
            service: false,
            placement: Default::default(),
            workload: Some(BTreeMap::from([("app".into(), "frontend".into())])),
        }
    }

    #[test]
    fn a_shadow_carries_exactly_the_real_labels_is_owned_by_the_record_and_never_ready() {
        let real = BTreeMap::from([
            ("app".to_owned(), "frontend".to_owned()),
            ("pod-template-hash".to_owned(), "5d8f7".to_owned()),
        ]);
        let m = shadow_manifest(
            &workload(),
            &real,
            "frontend-5d8f7-abcde",
            "abc123",
            "uid-1",
            "netreach-probe:t",
            &PodSpecOptions::default(),
        );
        assert_eq!(m["metadata"]["name"], "nr-abc123-frontend");
        assert_eq!(m["metadata"]["namespace"], "prod");
        assert_eq!(m["metadata"]["labels"], json!(real));
        let owner = &m["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ConfigMap");
        assert_eq!(owner["name"], "netreach-run-abc123");
        assert_eq!(owner["uid"], "uid-1");
        assert_eq!(owner["controller"], true);
        assert_eq!(
            m["metadata"]["annotations"][SHADOW_OF],
            "frontend-5d8f7-abcde"
        );
        assert_eq!(
            m["spec"]["readinessGates"],
            json!([{"conditionType": NEVER_READY}])
        );
        assert!(m["spec"].get("topologySpreadConstraints").is_none());
        // It serves nothing: no container port a Service could target.
        assert_eq!(m["spec"]["containers"][0]["ports"], json!([]));
        // Still restricted-ready.
        let sc = &m["spec"]["containers"][0]["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    }

    #[test]
    fn shadow_names_fit_a_dns_label() {
        let mut p = workload();
        p.id = PodId::new("prod", "w".repeat(63));
        let n = shadow_name(&p, "abc123");
        assert!(n.len() <= 63 && n.starts_with("nr-abc123-"), "{n}");
    }
}
