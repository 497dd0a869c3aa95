//! The run record: what a run creates or changes in a namespace it does not own.
//!
//! A namespace netreach creates goes away whole at teardown. In a namespace it was given
//! (`--namespace logical=real`) or that already exists (real workloads, candidate policies), it
//! may delete only what it created and must restore exactly what it changed. Both are written,
//! *before* the API call, into a ConfigMap `netreach-run-<run id>` in that namespace, labelled
//! with the run id and carrying the run's heartbeat:
//! - `created`: the objects the run created there (kind and name);
//! - `originals`: for each NetworkPolicy the run changed, its state before (or that it did not
//!   exist).
//!
//! [`undo`] reads the record back from the cluster and undoes it: deletes what was created,
//! restores each original (same spec, labels and annotations; the same object, UID kept, where
//! it was never deleted; deleted where it did not exist before), then deletes the record. The
//! same function serves teardown, cleanup after Ctrl-C, and `netreach gc` after a crash, so a
//! record is never left without a way back. Objects the run creates there (shadow pods) name the
//! record as their controller owner, so even a lost record's pods are garbage-collected with it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use netreach_core::cluster::InfraError;

use crate::client::{Req, api_error};
use crate::{HEARTBEAT_ANNOTATION, RUN_LABEL, SCENARIO_ANNOTATION, now_secs};

/// The record's name for a run.
pub fn record_name(run_id: &str) -> String {
    format!("netreach-run-{run_id}")
}

/// A kind of object the run may create in a namespace it does not own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjKind {
    /// A probe pod (or a shadow pod of a real workload).
    Pod,
    /// A Service in front of a probe pod.
    Service,
    /// Its EndpointSlice.
    EndpointSlice,
    /// A NetworkPolicy a step applied (that did not exist before).
    NetworkPolicy,
}

impl ObjKind {
    fn as_str(self) -> &'static str {
        match self {
            ObjKind::Pod => "Pod",
            ObjKind::Service => "Service",
            ObjKind::EndpointSlice => "EndpointSlice",
            ObjKind::NetworkPolicy => "NetworkPolicy",
        }
    }

    fn parse(s: &str) -> Option<ObjKind> {
        Some(match s {
            "Pod" => ObjKind::Pod,
            "Service" => ObjKind::Service,
            "EndpointSlice" => ObjKind::EndpointSlice,
            "NetworkPolicy" => ObjKind::NetworkPolicy,
            _ => return None,
        })
    }
}

/// The record's content, as kept in memory by the run (it is the only writer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// `Kind/name` of what the run created, in creation order.
    pub created: Vec<(ObjKind, String)>,
    /// Policy name → its state before the run changed it (`Value::Null`: it did not exist).
    pub originals: BTreeMap<String, Value>,
}

impl Record {
    fn to_data(&self) -> BTreeMap<String, String> {
        let created: Vec<String> = self
            .created
            .iter()
            .map(|(k, n)| format!("{}/{n}", k.as_str()))
            .collect();
        BTreeMap::from([
            ("created".to_owned(), created.join("\n")),
            (
                "originals".to_owned(),
                serde_json::to_string(&self.originals).unwrap_or_else(|_| "{}".into()),
            ),
        ])
    }

    /// Reads a record's data back (unknown lines are skipped, never guessed).
    pub fn from_data(data: &BTreeMap<String, String>) -> Record {
        let created = data
            .get("created")
            .map(|c| {
                c.lines()
                    .filter_map(|l| {
                        let (k, n) = l.split_once('/')?;
                        Some((ObjKind::parse(k)?, n.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let originals = data
            .get("originals")
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        Record { created, originals }
    }
}

/// What can be kept of a NetworkPolicy to restore it exactly: name, labels, annotations, UID and
/// spec (server-filled fields and managedFields dropped).
pub fn original_of(np: &NetworkPolicy) -> Value {
    json!({
        "name": np.metadata.name,
        "uid": np.metadata.uid,
        "labels": np.metadata.labels,
        "annotations": np.metadata.annotations,
        "spec": np.spec,
    })
}

/// Creates the record (empty) in `namespace`; returns its UID (shadow pods name it as their
/// controller owner).
///
/// # Errors
/// When the API refuses (e.g. no permission on configmaps).
pub async fn create(
    client: &Client,
    context: &str,
    namespace: &str,
    run_id: &str,
    scenario: &str,
) -> Result<String, InfraError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": record_name(run_id),
            "namespace": namespace,
            "labels": {RUN_LABEL: run_id},
            "annotations": {HEARTBEAT_ANNOTATION: now_secs().to_string(), SCENARIO_ANNOTATION: scenario},
        },
        "data": Record::default().to_data(),
    }))
    .map_err(|e| InfraError::Deploy {
        what: format!("run record {namespace}/{}", record_name(run_id)),
        reason: e.to_string(),
    })?;
    let created = api.create(&PostParams::default(), &cm).await.map_err(|e| {
        api_error(
            context,
            Req::ns("create", "configmaps", namespace),
            &e,
            |r| InfraError::Deploy {
                what: format!("run record {namespace}/{}", record_name(run_id)),
                reason: r,
            },
        )
    })?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Writes the whole record (before the create or change it announces).
///
/// # Errors
/// When the API refuses.
pub async fn write(
    client: &Client,
    context: &str,
    namespace: &str,
    run_id: &str,
    record: &Record,
) -> Result<(), InfraError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"data": record.to_data()});
    api.patch(
        &record_name(run_id),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|e| {
        api_error(
            context,
            Req::ns("patch", "configmaps", namespace),
            &e,
            |r| InfraError::Deploy {
                what: format!("run record {namespace}/{}", record_name(run_id)),
                reason: r,
            },
        )
    })?;
    Ok(())
}

/// What undoing a record did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Undone {
    /// Objects deleted or restored, in words.
    pub done: Vec<String>,
    /// What could not be undone, with why.
    pub failed: Vec<String>,
}

/// Undoes the run's record in `namespace` as the cluster holds it (see the module docs). A
/// missing record means nothing to undo.
pub async fn undo(client: &Client, namespace: &str, run_id: &str) -> Undone {
    let mut out = Undone::default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = record_name(run_id);
    let record = match cms.get_opt(&name).await {
        Ok(Some(cm)) => Record::from_data(&cm.data.unwrap_or_default()),
        Ok(None) => return out,
        Err(e) => {
            out.failed.push(format!(
                "run record {namespace}/{name}: cannot read it: {e}"
            ));
            return out;
        }
    };
    // Restore what was changed first: the namespace's policies are back as they were before
    // the run's own objects go.
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
    for (policy, original) in &record.originals {
        match restore_policy(&nps, policy, original).await {
            Ok(what) => out.done.push(format!("{namespace}/{policy}: {what}")),
            Err(e) => out.failed.push(format!("{namespace}/{policy}: {e}")),
        }
    }
    for (kind, n) in record.created.iter().rev() {
        if *kind == ObjKind::NetworkPolicy && record.originals.contains_key(n) {
            continue; // restored above
        }
        let r = match kind {
            ObjKind::Pod => delete::<Pod>(client, namespace, n).await,
            ObjKind::Service => delete::<Service>(client, namespace, n).await,
            ObjKind::EndpointSlice => delete::<EndpointSlice>(client, namespace, n).await,
            ObjKind::NetworkPolicy => delete::<NetworkPolicy>(client, namespace, n).await,
        };
        match r {
            Ok(()) => out
                .done
                .push(format!("deleted {} {namespace}/{n}", kind.as_str())),
            Err(e) => out
                .failed
                .push(format!("{} {namespace}/{n}: {e}", kind.as_str())),
        }
    }
    if out.failed.is_empty() {
        match cms.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => out
                .failed
                .push(format!("run record {namespace}/{name}: {e}")),
        }
    } else {
        out.failed.push(format!(
            "run record {namespace}/{name} kept so that `netreach gc` can finish undoing it"
        ));
    }
    out
}

async fn delete<K>(client: &Client, namespace: &str, name: &str) -> Result<(), String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Puts one policy back as it was (`original` null: it did not exist, so it goes).
async fn restore_policy(
    api: &Api<NetworkPolicy>,
    name: &str,
    original: &Value,
) -> Result<&'static str, String> {
    let current = api.get_opt(name).await.map_err(|e| e.to_string())?;
    if original.is_null() {
        if current.is_some() {
            api.delete(name, &DeleteParams::background())
                .await
                .map_err(|e| e.to_string())?;
            return Ok("deleted (it did not exist before the run)");
        }
        return Ok("already gone (it did not exist before the run)");
    }
    let body = |rv: Option<String>| -> Result<NetworkPolicy, String> {
        serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": name,
                "labels": original["labels"],
                "annotations": original["annotations"],
                "resourceVersion": rv,
            },
            "spec": original["spec"],
        }))
        .map_err(|e| e.to_string())
    };
    match current {
        Some(cur) if cur.metadata.uid.as_deref() == original["uid"].as_str() => {
            // The same object: replace spec, labels and annotations, keep its UID.
            api.replace(
                name,
                &PostParams::default(),
                &body(cur.metadata.resource_version)?,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok("restored (same object)")
        }
        Some(_) => {
            // Deleted and re-created by someone during the run: put the original content back.
            let cur = api.get(name).await.map_err(|e| e.to_string())?;
            api.replace(
                name,
                &PostParams::default(),
                &body(cur.metadata.resource_version)?,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok("restored (content; the object had been replaced)")
        }
        None => {
            api.create(&PostParams::default(), &body(None)?)
                .await
                .map_err(|e| e.to_string())?;
            Ok("re-created (it had been deleted; the UID is new)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_through_configmap_data() {
        let r = Record {
            created: vec![
                (ObjKind::Pod, "a".into()),
                (ObjKind::Service, "a".into()),
                (ObjKind::NetworkPolicy, "deny".into()),
            ],
            originals: BTreeMap::from([
                ("deny".into(), Value::Null),
                (
                    "allow-web".into(),
                    json!({"name": "allow-web", "uid": "u", "spec": {"podSelector": {}}}),
                ),
            ]),
        };
        assert_eq!(Record::from_data(&r.to_data()), r);
        // Garbage is skipped, never guessed.
        let junk = BTreeMap::from([
            ("created".to_owned(), "Pod/a\nSecret/x\nnonsense".to_owned()),
            ("originals".to_owned(), "not json".to_owned()),
        ]);
        let back = Record::from_data(&junk);
        assert_eq!(back.created, vec![(ObjKind::Pod, "a".to_owned())]);
        assert!(back.originals.is_empty());
    }
}
