//! An [`Inventory`] from manifests: the files of `netreach audit -f DIR` (the CLI reads them).
//!
//! Multi-document YAML (or JSON), `List` kinds (`kind: List`, `PodList`…, as `kubectl get -o
//! yaml` writes them), and these kinds:
//! - `Namespace`: name and labels;
//! - `Pod`: labels, declared container ports, `status.podIP`, and its workload from
//!   `ownerReferences` (a ReplicaSet of the files owned by a Deployment gives the Deployment,
//!   a Job owned by a CronJob the CronJob);
//! - `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `ReplicationController`, `Job`,
//!   `CronJob`: when no Pod of the files belongs to it, one pod made from its template (labels,
//!   ports), address unknown;
//! - `Service`: type, selector, ports;
//! - `NetworkPolicy` (`networking.k8s.io/v1`): the strict parse and validation of scenarios,
//!   so an unknown or misspelt field is an error at its `file:line:col`; rule lines are kept for
//!   the report. (In a `List`, an error points at the item.)
//!
//! Everything else is an [`Unsupported`] entry of the report: AdminNetworkPolicy and kinds
//! netreach does not know as ones that may change what connects; kinds that never do
//! (ConfigMap, ServiceAccount, RBAC…) as not relevant.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use super::{ContainerPort, Inventory, Namespace, Owner, Pod, Service, ServicePort, Unsupported};
use crate::diag::{Code, Diagnostic, Diagnostics, Pos, Sink, SourceFile};
use crate::model::Protocol;
use crate::policy::raw::RawNetworkPolicy;
use crate::policy::{self, NetworkPolicy, PolicyContext};
use crate::scenario::policy_files::blank_documents;
use crate::yaml::{Sp, parse_yaml_multi_text, yaml_diagnostic};

/// Kinds that never change what connects to what.
const NOT_RELEVANT: &[&str] = &[
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "StorageClass",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "LimitRange",
    "ResourceQuota",
    "PriorityClass",
    "CustomResourceDefinition",
    "Endpoints",
    "EndpointSlice",
    "Event",
    "Lease",
];

/// Controllers whose template makes pods.
const CONTROLLERS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

/// Only a List's items, with positions.
#[derive(Deserialize)]
struct ItemsDoc {
    #[serde(default)]
    items: Option<Vec<Sp<Value>>>,
}

/// A controller read from a file.
struct Controller {
    ns: String,
    owner: Owner,
    parent: Option<Owner>,
    labels: BTreeMap<String, String>,
    ports: Vec<ContainerPort>,
}

/// Where an object was read.
#[derive(Clone, Copy)]
struct At<'f> {
    file: &'f SourceFile,
    pos: Pos,
}

impl At<'_> {
    fn origin(&self) -> String {
        format!("{}:{}", self.file.path.display(), self.pos.line)
    }
    fn error(&self, code: Code, msg: String) -> Diagnostic {
        Diagnostic::error(code, self.file, self.pos, msg)
    }
}

/// Reads `files` into an inventory; problems (with `file:line:col`) go to `diags`.
pub fn read(files: &[SourceFile], source: &str, diags: &mut Diagnostics) -> Inventory {
    let mut inv = Inventory {
        source: source.to_owned(),
        ..Inventory::default()
    };
    let mut controllers: Vec<Controller> = Vec::new();
    // Files with top-level NetworkPolicies, and the first lines of their other documents.
    let mut np_files: Vec<(usize, BTreeSet<usize>)> = Vec::new();
    let mut list_nps: Vec<(Value, At<'_>)> = Vec::new();
    for (fi, file) in files.iter().enumerate() {
        let docs: Vec<Sp<Value>> = match serde_saphyr::from_str_multiple(&file.text) {
            Ok(d) => d,
            Err(e) => {
                diags.push(yaml_diagnostic(&e, file));
                continue;
            }
        };
        let lists = docs.iter().any(|d| kind(&d.value).is_some_and(is_list));
        let items: Vec<ItemsDoc> = if lists {
            serde_saphyr::from_str_multiple(&file.text).unwrap_or_default()
        } else {
            Vec::new()
        };
        let (mut has_np, mut others) = (false, BTreeSet::new());
        for (di, d) in docs.iter().enumerate() {
            if d.value.is_null() {
                continue;
            }
            let at = At {
                file,
                pos: Pos::from_location(file, &d.referenced),
            };
            let k = kind(&d.value);
            if k == Some("NetworkPolicy") && api(&d.value) == "networking.k8s.io/v1" {
                has_np = true;
                continue;
            }
            others.insert(at.pos.line);
            if k.is_some_and(is_list) {
                let list = items.get(di).and_then(|i| i.items.as_ref());
                for it in list.into_iter().flatten() {
                    let at = At {
                        file,
                        pos: Pos::from_location(file, &it.referenced),
                    };
                    if kind(&it.value) == Some("NetworkPolicy")
                        && api(&it.value) == "networking.k8s.io/v1"
                    {
                        list_nps.push((it.value.clone(), at));
                    } else {
                        object(&it.value, at, &mut inv, &mut controllers, diags);
                    }
                }
                continue;
            }
            object(&d.value, at, &mut inv, &mut controllers, diags);
        }
        if has_np {
            np_files.push((fi, others));
        }
    }
    resolve_owners(&mut inv, controllers);
    // Policies last: every namespace is known by now (and any name is one of the cluster's).
    let cx = PolicyContext::audit();
    for (fi, others) in np_files {
        let file = &files[fi];
        let text = if others.is_empty() {
            file.text.to_string()
        } else {
            blank_documents(&file.text, &others)
        };
        let raws = match parse_yaml_multi_text::<RawNetworkPolicy>(file, &text) {
            Ok(r) => r,
            Err(d) => {
                let mut d = *d;
                d.help.get_or_insert_with(|| {
                    "a NetworkPolicy has the fields of `networking.k8s.io/v1` only (`kubectl explain networkpolicy.spec`)".into()
                });
                diags.push(d);
                continue;
            }
        };
        let mut sink = Sink { file, out: diags };
        for raw in raws {
            let line = sink.pos(&raw.metadata.name).line;
            let origin = format!("{}:{line}", file.path.display());
            let default_ns = policy::default_namespace(&raw);
            if let Some(np) = policy::check_policy(raw, default_ns.as_ref(), origin, &cx, &mut sink)
            {
                inv.policies.push(np);
            }
        }
    }
    for (v, at) in list_nps {
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        match policy_from_json(&text, &at.origin()) {
            Ok(np) => inv.policies.push(np),
            Err(errs) => {
                for e in errs {
                    diags.push(at.error(
                        Code::InvalidPolicy,
                        format!("NetworkPolicy (List item): {e}"),
                    ));
                }
            }
        }
    }
    inv
}

/// Validates one NetworkPolicy given as JSON (a live cluster's, or a List item), strictly as a
/// scenario's; `origin` names it in reports (its rules have no line). `Err`: every problem,
/// one sentence each, positions relative to `text`.
pub fn policy_from_json(text: &str, origin: &str) -> Result<NetworkPolicy, Vec<String>> {
    let file = SourceFile::new(origin, text.to_owned());
    let mut diags = Diagnostics::default();
    let raw = match crate::yaml::parse_yaml::<RawNetworkPolicy>(&file) {
        Ok(r) => r,
        Err(d) => return Err(vec![d.message.clone()]),
    };
    let cx = PolicyContext::audit();
    let mut sink = Sink {
        file: &file,
        out: &mut diags,
    };
    let default_ns = policy::default_namespace(&raw);
    match policy::check_policy(raw, default_ns.as_ref(), origin.to_owned(), &cx, &mut sink) {
        Some(mut np) => {
            for r in np.ingress.iter_mut().chain(np.egress.iter_mut()).flatten() {
                r.line = 0;
            }
            Ok(np)
        }
        None => Err(diags.0.iter().map(|d| d.message.clone()).collect()),
    }
}

fn kind(v: &Value) -> Option<&str> {
    v.get("kind").and_then(Value::as_str)
}

fn api(v: &Value) -> &str {
    v.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

fn is_list(k: &str) -> bool {
    k == "List" || (k.ends_with("List") && k.len() > 4)
}

/// One object that is not a NetworkPolicy.
fn object(
    v: &Value,
    at: At<'_>,
    inv: &mut Inventory,
    controllers: &mut Vec<Controller>,
    diags: &mut Diagnostics,
) {
    let Some(k) = kind(v) else {
        diags.push(
            at.error(Code::MissingField, "this document has no `kind`".into())
                .with_help("every manifest names its `apiVersion` and `kind`"),
        );
        return;
    };
    let meta = v.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        diags.push(
            at.error(
                Code::MissingField,
                format!("this `{k}` has no `metadata.name`"),
            )
            .with_help("the audit names every object; `generateName` alone is not enough"),
        );
        return;
    }
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let mut problem =
        |msg: String| diags.push(at.error(Code::WrongType, format!("{k} `{name}`: {msg}")));
    let labels = string_map(
        meta.and_then(|m| m.get("labels")),
        "metadata.labels",
        &mut problem,
    );
    match k {
        "Namespace" => inv.namespaces.push(Namespace {
            name: name.to_owned(),
            labels,
        }),
        "Pod" => {
            let ports = container_ports(v.get("spec"), "spec", &mut problem);
            let ip = v
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok());
            inv.pods.push(Pod {
                ns,
                name: name.to_owned(),
                labels,
                ip,
                ports,
                owner: owner_ref(meta),
            });
        }
        k if CONTROLLERS.contains(&k) => {
            let (tpl, path) = if k == "CronJob" {
                (
                    v.pointer("/spec/jobTemplate/spec/template"),
                    "spec.jobTemplate.spec.template",
                )
            } else {
                (v.pointer("/spec/template"), "spec.template")
            };
            let labels = string_map(
                tpl.and_then(|t| t.pointer("/metadata/labels")),
                &format!("{path}.metadata.labels"),
                &mut problem,
            );
            let ports = container_ports(
                tpl.and_then(|t| t.get("spec")),
                &format!("{path}.spec"),
                &mut problem,
            );
            controllers.push(Controller {
                ns,
                owner: Owner {
                    kind: k.to_owned(),
                    name: name.to_owned(),
                },
                parent: owner_ref(meta),
                labels,
                ports,
            });
        }
        "Service" => {
            let spec = v.get("spec");
            let selector = spec
                .and_then(|s| s.get("selector"))
                .map(|s| string_map(Some(s), "spec.selector", &mut problem));
            let mut ports = Vec::new();
            for (i, p) in array(spec.and_then(|s| s.get("ports"))).iter().enumerate() {
                let Some(port) = port_number(
                    p.get("port"),
                    &format!("spec.ports[{i}].port"),
                    &mut problem,
                ) else {
                    continue;
                };
                let target = match p.get("targetPort") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => port.to_string(),
                };
                let Some(protocol) = protocol(
                    p.get("protocol"),
                    &format!("spec.ports[{i}].protocol"),
                    &mut problem,
                ) else {
                    continue;
                };
                ports.push(ServicePort {
                    port,
                    target,
                    protocol,
                });
            }
            inv.services.push(Service {
                ns,
                name: name.to_owned(),
                kind: spec
                    .and_then(|s| s.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP")
                    .to_owned(),
                selector,
                ports,
            });
        }
        _ => inv
            .unsupported
            .push(unsupported(v, k, &ns, name, at.origin())),
    }
}

/// The report entry of an object the audit does not model.
pub fn unsupported(v: &Value, kind: &str, ns: &str, name: &str, origin: String) -> Unsupported {
    let namespaced = v.pointer("/metadata/namespace").is_some();
    let (reason, affects) = match kind {
        "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => (
            format!("not supported yet: it {}, so what this report says about the pods it selects may be wrong", if kind == "AdminNetworkPolicy" { "decides what connects before NetworkPolicies do" } else { "decides what connects where no NetworkPolicy does" }),
            true,
        ),
        "NetworkPolicy" => (
            format!("apiVersion `{}` is not `networking.k8s.io/v1`, the only NetworkPolicy API the audit reads", api(v)),
            true,
        ),
        k if NOT_RELEVANT.contains(&k) => ("not relevant: it does not change what connects".into(), false),
        _ => (
            "unknown kind: if it filters traffic (a CNI's own policy, a mesh's authorization), this report does not see it".into(),
            true,
        ),
    };
    Unsupported {
        kind: format!("{}/{kind}", api(v)),
        name: if namespaced {
            format!("{ns}/{name}")
        } else {
            name.to_owned()
        },
        origin,
        reason,
        affects_reachability: affects,
    }
}

/// The controlling owner reference (or the first).
fn owner_ref(meta: Option<&Value>) -> Option<Owner> {
    let refs = array(meta.and_then(|m| m.get("ownerReferences")));
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or(refs.first())?;
    Some(Owner {
        kind: r.get("kind")?.as_str()?.to_owned(),
        name: r.get("name")?.as_str()?.to_owned(),
    })
}

/// Pods owned by a ReplicaSet (Job) of the files that a Deployment (CronJob) owns belong to
/// that; controllers without a Pod of the files make one pod from their template.
fn resolve_owners(inv: &mut Inventory, controllers: Vec<Controller>) {
    let parent: BTreeMap<(String, Owner), Owner> = controllers
        .iter()
        .filter_map(|c| Some(((c.ns.clone(), c.owner.clone()), c.parent.clone()?)))
        .collect();
    for p in &mut inv.pods {
        if let Some(o) = &p.owner
            && let Some(up) = parent.get(&(p.ns.clone(), o.clone()))
        {
            p.owner = Some(up.clone());
        }
    }
    let mut have: BTreeSet<(String, Owner)> = inv
        .pods
        .iter()
        .filter_map(|p| Some((p.ns.clone(), p.owner.clone()?)))
        .collect();
    let names: BTreeSet<(String, String)> = inv
        .pods
        .iter()
        .map(|p| (p.ns.clone(), p.name.clone()))
        .collect();
    // Top-level controllers first, so a Deployment's ReplicaSet does not make a second pod.
    let (top, owned): (Vec<_>, Vec<_>) = controllers.into_iter().partition(|c| c.parent.is_none());
    for c in top.into_iter().chain(owned) {
        let owner = c.parent.clone().unwrap_or_else(|| c.owner.clone());
        if !have.insert((c.ns.clone(), owner.clone())) {
            continue;
        }
        let mut name = owner.name.clone();
        if names.contains(&(c.ns.clone(), name.clone())) {
            name.push_str("-template");
        }
        inv.pods.push(Pod {
            ns: c.ns,
            name,
            labels: c.labels,
            ip: None,
            ports: c.ports,
            owner: Some(owner),
        });
    }
}

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn string_map(
    v: Option<&Value>,
    path: &str,
    problem: &mut dyn FnMut(String),
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    other => problem(format!("`{path}.{k}` is {other}, not a string (quote it)")),
                }
            }
        }
        Some(other) => problem(format!("`{path}` is {other}, not a map of strings")),
    }
    out
}

fn port_number(v: Option<&Value>, path: &str, problem: &mut dyn FnMut(String)) -> Option<u16> {
    match v.and_then(Value::as_u64) {
        Some(n @ 1..=65535) => u16::try_from(n).ok(),
        _ => {
            problem(format!(
                "`{path}` is {}, not a port number (1-65535)",
                v.map_or("absent".into(), ToString::to_string)
            ));
            None
        }
    }
}

fn protocol(v: Option<&Value>, path: &str, problem: &mut dyn FnMut(String)) -> Option<Protocol> {
    match v {
        None => Some(Protocol::Tcp),
        Some(Value::String(s)) if matches!(s.as_str(), "TCP" | "UDP" | "SCTP") => {
            Protocol::parse(s)
        }
        Some(other) => {
            problem(format!("`{path}` is {other}; write TCP, UDP or SCTP"));
            None
        }
    }
}

/// The ports the containers of a pod spec declare.
fn container_ports(
    spec: Option<&Value>,
    path: &str,
    problem: &mut dyn FnMut(String),
) -> Vec<ContainerPort> {
    let mut out = Vec::new();
    for (i, c) in array(spec.and_then(|s| s.get("containers")))
        .iter()
        .enumerate()
    {
        for (j, p) in array(c.get("ports")).iter().enumerate() {
            let at = format!("{path}.containers[{i}].ports[{j}]");
            let port = port_number(
                p.get("containerPort"),
                &format!("{at}.containerPort"),
                problem,
            );
            let proto = protocol(p.get("protocol"), &format!("{at}.protocol"), problem);
            if let (Some(port), Some(protocol)) = (port, proto) {
                out.push(ContainerPort {
                    name: p.get("name").and_then(Value::as_str).map(str::to_owned),
                    port,
                    protocol,
                });
            }
        }
    }
    out
}
