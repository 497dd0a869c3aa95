//! Validating a scenario's structure: namespaces, pods, external endpoints and probes (the
//! cells every step is judged on, [`super::probes`]). Steps are [`super::steps`]'.

use std::collections::BTreeMap;
use std::path::Path;

use super::raw::{RawExternal, RawNamespace, RawNode, RawPod, RawPortDecl, RawScenario, Sp, SpMap};
use crate::diag::{Code, DiagExt, Pos, Sink, SourceFile};
use crate::model::{
    External, Loopback, Namespace, Placement, Pod, PodId, PortProto, Protocol, Scenario, ServedPort,
};
use crate::names::{OWN_LABELS, check_dns_label, check_label_key, check_label_value};
use crate::pattern::{check_port_number, parse_port_proto};
use crate::policy::NAMESPACE_NAME_LABEL;

/// The scenario without steps, and each declared namespace with whether it is `existing` (also
/// those whose names are invalid, so that references to them are not reported twice).
pub(super) struct Structure {
    /// The scenario, `steps` still empty.
    pub scenario: Scenario,
    /// Declared namespaces: name -> `existing`.
    pub namespaces: BTreeMap<String, bool>,
}

/// Checks everything but the steps. Problems go to `sink`.
pub(super) fn check(raw: &RawScenario, sink: &mut Sink<'_>) -> Structure {
    let (namespaces, ns_existing) = check_namespaces(sink, &raw.namespaces);
    let (pods, workloads) = check_pods(sink, raw, &ns_existing);
    let placement = check_placement(sink, raw, &pods);
    let externals = check_externals(sink, &raw.external);
    let pod_cidrs = super::cluster::pod_cidrs(sink, raw.cluster.as_ref());
    let file = sink.file;
    let mut scenario = Scenario {
        id: file_stem(&file.path),
        group: group_of(&file.path),
        path: file.path.clone(),
        title: raw.name.clone().unwrap_or_else(|| file_stem(&file.path)),
        description: raw.description.clone(),
        namespaces,
        pods,
        externals,
        placement,
        workloads,
        absent_at_start: Default::default(),
        loopback: raw
            .loopback
            .as_ref()
            .map_or(Loopback::Allow, |l| l.value.into()),
        pod_cidrs,
        cells: Vec::new(),
        steps: Vec::new(),
    };
    // Scenario-level probes that every step replaces with its own may be empty.
    let used = raw
        .steps
        .as_ref()
        .is_none_or(|st| st.value.iter().any(|s| s.probes.is_none()));
    scenario.cells = super::probes::check_probes(
        sink,
        &scenario,
        raw.probes.as_ref(),
        used.then_some("the scenario"),
    );
    Structure {
        scenario,
        namespaces: ns_existing,
    }
}

fn check_namespaces(
    sink: &mut Sink<'_>,
    raw: &[RawNamespace],
) -> (Vec<Namespace>, BTreeMap<String, bool>) {
    let mut namespaces: Vec<Namespace> = Vec::new();
    let mut ns_existing: BTreeMap<String, bool> = BTreeMap::new();
    for ns in raw {
        let name = &ns.name;
        if ns_existing.contains_key(&name.value) {
            sink.error_at(
                Code::Duplicate,
                name,
                format!("namespace `{}` is declared twice", name.value),
            )
            .help("declare each namespace once");
            continue;
        }
        // Declared even when its name is invalid, so pods in it are not also "undeclared".
        ns_existing.insert(name.value.clone(), ns.existing);
        let name_ok = match check_dns_label(&name.value) {
            Ok(()) => true,
            Err(e) => {
                sink.error_at(Code::InvalidName, name, format!("namespace name `{}` {e}", name.value))
                    .help("namespace names are DNS labels: lowercase letters, digits and '-', at most 63 characters");
                false
            }
        };
        check_labels(sink, &ns.labels, "namespace");
        if let Some(v) = ns.labels.get(NAMESPACE_NAME_LABEL) {
            sink.error_at(
                Code::InvalidLabel,
                v,
                format!(
                    "`{NAMESPACE_NAME_LABEL}` is set by Kubernetes to the namespace's real name"
                ),
            )
            .help("remove it; policies that select on it are rewritten to the run's real names");
        }
        if ns.existing && !ns.labels.is_empty() {
            sink.error_at(
                Code::ExistingNamespace,
                name,
                format!(
                    "namespace `{}` is `existing`, so netreach will not label it",
                    name.value
                ),
            )
            .help("remove `labels`, or drop `existing: true` to let netreach create the namespace");
        }
        if ns.candidates && !ns.existing {
            sink.error_at(
                Code::Conflict,
                name,
                format!(
                    "namespace `{}` has `candidates: true` but is not `existing`",
                    name.value
                ),
            )
            .help("`candidates` lets steps try policies in a namespace that already exists; steps apply policies in the scenario's own namespaces without it");
        }
        if name_ok {
            namespaces.push(Namespace {
                name: name.value.clone(),
                labels: ns.labels.plain(),
                existing: ns.existing,
                candidates: ns.candidates,
            });
        }
    }

    (namespaces, ns_existing)
}

fn check_pods(
    sink: &mut Sink<'_>,
    raw: &RawScenario,
    ns_existing: &BTreeMap<String, bool>,
) -> (Vec<Pod>, BTreeMap<PodId, BTreeMap<String, String>>) {
    let mut pods: Vec<Pod> = Vec::new();
    let mut workloads = BTreeMap::new();
    let raw_pods: &[RawPod] = raw.pods.as_ref().map_or(&[], |p| p.value.as_slice());
    for p in raw_pods {
        let mut ok = true;
        if let Err(e) = check_dns_label(&p.name.value) {
            sink.error_at(Code::InvalidName, &p.name, format!("pod name `{}` {e}", p.name.value))
                .help("pod names are DNS labels: lowercase letters, digits and '-', at most 63 characters");
            ok = false;
        }
        match ns_existing.get(&p.namespace.value) {
            None => {
                sink.error_at(
                    Code::UnknownNamespace,
                    &p.namespace,
                    format!(
                        "pod `{}` is in namespace `{}`, which is not declared",
                        p.name.value, p.namespace.value
                    ),
                )
                .help(ns_help(ns_existing));
                ok = false;
            }
            Some(true) if p.workload.is_none() => {
                sink.error_at(Code::ExistingNamespace, &p.namespace, format!("pod `{}` would be deployed into `{}`, a namespace that is not the scenario's", p.name.value, p.namespace.value))
                    .help("netreach deploys only into namespaces it creates; put the pod in one of the scenario's namespaces, or choose a real workload there with `workload: {app: …}`");
                ok = false;
            }
            Some(false) if p.workload.is_some() => {
                sink.error_at(Code::InvalidWorkload, &p.namespace, format!("pod `{}` names a real `workload:`, but namespace `{}` is the scenario's own (created by the run, so it holds no real workload)", p.name.value, p.namespace.value))
                    .help("declare the workload's namespace with `existing: true`, or drop `workload:` to deploy a probe pod");
                ok = false;
            }
            Some(_) => {}
        }
        if let Some(w) = &p.workload {
            check_labels(sink, w, "workload");
            if w.0.is_empty() {
                sink.error_at(
                    Code::InvalidWorkload,
                    &p.name,
                    format!(
                        "pod `{}`: `workload:` needs at least one label",
                        p.name.value
                    ),
                )
                .help(
                    "choose the workload's pods by their labels, e.g. `workload: {app: frontend}`",
                );
                ok = false;
            }
            let selector = w.plain();
            let labels = p.labels.plain();
            if let Some((k, v)) = selector
                .iter()
                .find(|(k, v)| !p.labels.0.is_empty() && labels.get(*k) != Some(*v))
            {
                sink.error_at(Code::InvalidWorkload, &p.name, format!("pod `{}`: `labels:` lack `{k}={v}` of its `workload:`, so they cannot be the chosen pods' labels", p.name.value))
                    .help("leave `labels:` out (they default to the workload's), or list every label the real pods carry");
                ok = false;
            }
            if let Some(n) = &p.node {
                sink.error_at(
                    Code::InvalidWorkload,
                    n,
                    format!(
                        "pod `{}` is a real workload; its pods run where they run",
                        p.name.value
                    ),
                )
                .help("remove `node:`");
                ok = false;
            }
        }
        let id = PodId::new(&p.namespace.value, &p.name.value);
        if pods.iter().any(|q| q.id == id) {
            sink.error_at(
                Code::Duplicate,
                &p.name,
                format!("pod `{id}` is declared twice"),
            )
            .help("pod names must be unique within a namespace");
            ok = false;
        }
        check_labels(sink, &p.labels, "pod");
        let ports = check_port_decls(sink, &p.ports, &format!("pod `{id}`"));
        if ok {
            let mut labels = p.labels.plain();
            if let Some(w) = &p.workload {
                if labels.is_empty() {
                    labels = w.plain();
                }
                workloads.insert(id.clone(), w.plain());
            }
            pods.push(Pod { id, labels, ports });
        }
    }
    if raw_pods.is_empty() {
        let at = raw
            .pods
            .as_ref()
            .map_or_else(|| doc_start(sink.file), |p| sink.pos(p));
        sink.error(Code::MissingField, at, "the scenario declares no pods")
            .help("add `pods:` with at least one pod; probes run from pods");
    }

    (pods, workloads)
}

/// Every pod's `node:`, checked: names are node names, referenced pods are declared, and no
/// two placements contradict each other (same node and apart, two node names for one node).
fn check_placement(
    sink: &mut Sink<'_>,
    raw: &RawScenario,
    pods: &[Pod],
) -> BTreeMap<PodId, Placement> {
    let raw_pods: &[RawPod] = raw.pods.as_ref().map_or(&[], |p| p.value.as_slice());
    let mut out = BTreeMap::new();
    let mut at = BTreeMap::new();
    for p in raw_pods {
        let Some(node) = &p.node else { continue };
        let id = PodId::new(&p.namespace.value, &p.name.value);
        if !pods.iter().any(|q| q.id == id) {
            continue;
        }
        let reference = |r: &str, sink: &mut Sink<'_>| -> Option<PodId> {
            let other = r
                .split_once('/')
                .map(|(a, b)| PodId::new(a.trim(), b.trim()));
            match other {
                Some(o) if o == id => {
                    sink.error_at(
                        Code::Conflict,
                        node,
                        format!("pod `{id}` is placed relative to itself"),
                    )
                    .help("name another pod, e.g. `node: {different: ns/other}`");
                    None
                }
                Some(o) if pods.iter().any(|q| q.id == o) => Some(o),
                _ => {
                    let known: Vec<String> = pods.iter().map(|q| q.id.to_string()).collect();
                    sink.error_at(
                        Code::UnknownPod,
                        node,
                        format!("pod `{id}`: `node:` names `{r}`, which is not a declared pod"),
                    )
                    .help(format!(
                        "write `ns/pod` of a pod of this scenario ({})",
                        known.join(", ")
                    ));
                    None
                }
            }
        };
        let placement = match &node.value {
            RawNode::Name(n) => match crate::names::check_dns_subdomain(n) {
                Ok(()) => Some(Placement::Node(n.clone())),
                Err(e) => {
                    sink.error_at(Code::InvalidName, node, format!("pod `{id}`: node name `{n}` {e}"))
                        .help("write a node's name as `kubectl get nodes` prints it, or `{same: ns/pod}` / `{different: ns/pod}`");
                    None
                }
            },
            RawNode::Relative(r) => match (&r.same, &r.different) {
                (Some(o), None) => reference(o, sink).map(Placement::Same),
                (None, Some(o)) => reference(o, sink).map(Placement::Different),
                _ => {
                    sink.error_at(
                        Code::InvalidName,
                        node,
                        format!("pod `{id}`: `node:` needs exactly one of `same` and `different`"),
                    )
                    .help("e.g. `node: {same: ns/pod}`");
                    None
                }
            },
        };
        if let Some(pl) = placement {
            at.insert(id.clone(), node);
            out.insert(id, pl);
        }
    }
    let groups = crate::cluster::placement_groups(&out);
    let mut said = std::collections::BTreeSet::new();
    for (id, node) in &at {
        if let Err(why) = groups.check(id)
            && said.insert(why.clone())
        {
            sink.error_at(
                Code::Conflict,
                *node,
                format!("pod `{id}` cannot be placed: {why}"),
            )
            .help("pods on the same node (`same`, or one node name) cannot also be apart");
        }
    }
    out
}

fn check_externals(sink: &mut Sink<'_>, raw: &[RawExternal]) -> Vec<External> {
    let mut externals: Vec<External> = Vec::new();
    for e in raw {
        if let Err(err) = check_dns_label(&e.name.value) {
            sink.error_at(
                Code::InvalidName,
                &e.name,
                format!("external endpoint name `{}` {err}", e.name.value),
            );
            continue;
        }
        if externals.iter().any(|x| x.name == e.name.value) {
            sink.error_at(
                Code::Duplicate,
                &e.name,
                format!("external endpoint `{}` is declared twice", e.name.value),
            );
            continue;
        }
        let ports = check_port_decls(
            sink,
            &e.ports,
            &format!("external endpoint `{}`", e.name.value),
        );
        if e.ports.is_empty() {
            sink.error_at(
                Code::MissingField,
                &e.name,
                format!("external endpoint `{}` serves no ports", e.name.value),
            )
            .help("add `ports:`, e.g. `[80/tcp]`");
        }
        let address = e.address.as_ref().and_then(|a| match a.value.trim().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                sink.error_at(
                    Code::InvalidCidr,
                    a,
                    format!(
                        "external endpoint `{}`: `{}` is not an IP address",
                        e.name.value, a.value
                    ),
                )
                .help("write one IPv4 or IPv6 address, e.g. `address: 203.0.113.10` (no CIDR, no host name)");
                None
            }
        });
        externals.push(External {
            name: e.name.value.clone(),
            ports,
            address,
        });
    }

    externals
}

/// Where the document's first key is: the place for "this document lacks …".
pub(super) fn doc_start(file: &SourceFile) -> Pos {
    let mut offset = 0;
    for line in file.text.split_inclusive('\n') {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') && t != "---" {
            let lead = line.len() - line.trim_start().len();
            return Pos::from_range(file, offset + lead, 0);
        }
        offset += line.len();
    }
    Pos::UNKNOWN
}

fn ns_help(ns: &BTreeMap<String, bool>) -> String {
    if ns.is_empty() {
        "declare it under `namespaces:`".to_owned()
    } else {
        format!(
            "declared namespaces: {}",
            ns.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem().map_or_else(
        || "scenario".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    )
}

fn group_of(p: &Path) -> String {
    p.parent()
        .and_then(Path::file_name)
        .map_or_else(|| ".".to_owned(), |s| s.to_string_lossy().into_owned())
}

fn check_labels(sink: &mut Sink<'_>, labels: &SpMap<String>, what: &str) {
    for (k, v) in &labels.0 {
        if OWN_LABELS.contains(&k.value.as_str()) {
            sink.error_at(
                Code::InvalidLabel,
                k,
                format!("{what} label key `{}` is netreach's own", k.value),
            )
            .help("netreach sets it on what it deploys (the run id, the node group of `node:`); pick another key");
        }
        if let Err(e) = check_label_key(&k.value) {
            sink.error_at(
                Code::InvalidLabel,
                k,
                format!("{what} label key `{}` {e}", k.value),
            );
        }
        if let Err(e) = check_label_value(&v.value) {
            sink.error_at(
                Code::InvalidLabel,
                v,
                format!("{what} label value `{}` {e}", v.value),
            )
            .help("label values are at most 63 characters of letters, digits, '-', '_' and '.'");
        }
    }
}

fn check_port_decls(
    sink: &mut Sink<'_>,
    decls: &[Sp<RawPortDecl>],
    owner: &str,
) -> Vec<ServedPort> {
    let mut out: Vec<ServedPort> = Vec::new();
    for d in decls {
        let parsed = match &d.value {
            RawPortDecl::Number(n) => check_port_number(*n).map(|port| ServedPort {
                port: PortProto {
                    port,
                    protocol: Protocol::Tcp,
                },
                name: None,
            }),
            RawPortDecl::Short(s) => {
                parse_port_proto(s).map(|port| ServedPort { port, name: None })
            }
            RawPortDecl::Long(l) => (|| {
                let port = check_port_number(l.port)?;
                let protocol = match &l.protocol {
                    None => Protocol::Tcp,
                    Some(p) => Protocol::parse(p).ok_or_else(|| {
                        format!("`{p}` is not a protocol; use `TCP`, `UDP` or `SCTP`")
                    })?,
                };
                if let Some(n) = &l.name {
                    crate::names::check_port_name(n).map_err(|e| format!("port name `{n}` {e}"))?;
                }
                Ok(ServedPort {
                    port: PortProto { port, protocol },
                    name: l.name.clone(),
                })
            })(),
        };
        match parsed {
            Err(msg) => {
                sink.error_at(Code::InvalidPort, d, msg).help("ports are written `80/tcp`, `53/udp`, or `{port: 8080, protocol: TCP, name: http}`");
            }
            Ok(sp) => {
                if out.iter().any(|o| o.port == sp.port) {
                    sink.error_at(
                        Code::Duplicate,
                        d,
                        format!("{owner} declares port {} twice", sp.port),
                    );
                } else if sp.name.is_some() && out.iter().any(|o| o.name == sp.name) {
                    sink.error_at(
                        Code::Duplicate,
                        d,
                        format!(
                            "{owner} has two ports named `{}`",
                            sp.name.as_deref().unwrap_or_default()
                        ),
                    )
                    .help("port names must be unique within a pod");
                } else {
                    out.push(sp);
                }
            }
        }
    }
    out
}
