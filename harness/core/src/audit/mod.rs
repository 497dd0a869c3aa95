//! `netreach audit`: what the NetworkPolicies of a cluster (or of a folder of its manifests) let
//! through, and what looks wrong in them.
//!
//! Pure: no IO, no Kubernetes client. Input is an [`Inventory`] of plain objects — namespaces
//! with labels, pods (namespace, name, labels, address when known, declared ports, owner
//! workload), Services, and NetworkPolicies validated by the strict parser the scenarios use
//! ([`crate::policy::raw`] + [`crate::policy::check_policy`], so unknown fields are reported) —
//! built from manifests by [`manifests::read`] or from a live cluster by `netreach-kube`'s
//! `audit` module. Objects netreach cannot model (AdminNetworkPolicy, unknown kinds, policies
//! that do not validate) are [`Unsupported`] entries of the report, never dropped.
//!
//! [`AuditReport::of`] builds an engine [`World`] from the inventory and reports:
//! - reachability between workloads (pods grouped by owner: Deployment, StatefulSet, DaemonSet,
//!   Job, or the pod itself), on every port the destination declares, with the rules that
//!   decide it and pod counts ([`Reach`]);
//! - per namespace and per workload: whether ingress/egress is isolated and by what, which
//!   workloads no policy applies to, and what can reach each workload from other namespaces and
//!   from outside the cluster ([`NamespaceSummary`], [`WorkloadSummary`]);
//! - every lint finding ([`crate::lint::lint_world`]) on these objects ([`AuditFinding`]).
//!
//! Verdicts come from the engine's [`WorkloadMatrix`](crate::engine::WorkloadMatrix) (exact:
//! pods no policy tells apart share a verdict) and reasons from [`crate::engine::explain`] on
//! one representative pod pair per verdict.

pub mod html;
pub mod manifests;
mod reach;
mod render;
pub mod snapshot;
mod summary;

pub use render::render_text;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::engine::{PodState, World};
use crate::exit;
use crate::lint::{self, Hints, LintRule, LintSeverity};
use crate::model::{PodId, PortProto, Protocol, ServedPort};
use crate::policy::{NAMESPACE_NAME_LABEL, NetworkPolicy};

/// A namespace and its labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// Name.
    pub name: String,
    /// Labels (`kubernetes.io/metadata.name` is added when absent, as Kubernetes does).
    pub labels: BTreeMap<String, String>,
}

/// The workload a pod belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Owner {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, `ReplicaSet`, `Pod`…
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// A port a container declares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerPort {
    /// Its name, for named ports in policies.
    pub name: Option<String>,
    /// Number.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// A pod, or the pod a controller's template would make (address unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pod {
    /// Namespace.
    pub ns: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Its address, when known (a live pod).
    pub ip: Option<IpAddr>,
    /// Declared container ports.
    pub ports: Vec<ContainerPort>,
    /// Its workload; `None`: the pod is its own.
    pub owner: Option<Owner>,
}

/// A port of a Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServicePort {
    /// The Service's port.
    pub port: u16,
    /// `targetPort` as written (a number or a container port name).
    pub target: String,
    /// Protocol.
    pub protocol: Protocol,
}

/// A Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Namespace.
    pub ns: String,
    /// Name.
    pub name: String,
    /// `spec.type` (`ClusterIP` when absent).
    pub kind: String,
    /// `spec.selector` (`None`: no selector, endpoints managed by hand).
    pub selector: Option<BTreeMap<String, String>>,
    /// Ports.
    pub ports: Vec<ServicePort>,
}

/// An object the audit does not model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unsupported {
    /// `apiVersion/kind` as written.
    pub kind: String,
    /// `ns/name` or `name`.
    pub name: String,
    /// Where it was read (`file:line`, or the cluster object).
    pub origin: String,
    /// Why it is not modelled, and what that means for the report.
    pub reason: String,
    /// Whether it may change what connects, so the report may be wrong about it.
    pub affects_reachability: bool,
}

/// Everything an audit reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Where it came from: `folder fixtures/audit`, `context kind-x`.
    pub source: String,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Services.
    pub services: Vec<Service>,
    /// Validated NetworkPolicies.
    pub policies: Vec<NetworkPolicy>,
    /// Objects not modelled.
    pub unsupported: Vec<Unsupported>,
}

impl Owner {
    /// The workload of `p`: its owner, or the pod itself.
    pub fn of(p: &Pod) -> Owner {
        p.owner.clone().unwrap_or_else(|| Owner {
            kind: "Pod".into(),
            name: p.name.clone(),
        })
    }
}

impl Inventory {
    /// The engine's world: namespaces (also those only objects name, with the label Kubernetes
    /// sets), pods with their labels, ports and known addresses, the policies.
    pub fn world(&self) -> World {
        let mut w = World::default();
        let add_ns = |w: &mut World, name: &str| {
            w.namespaces.entry(name.to_owned()).or_insert_with(|| {
                BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())])
            });
        };
        for n in &self.namespaces {
            let mut l = n.labels.clone();
            l.entry(NAMESPACE_NAME_LABEL.into())
                .or_insert_with(|| n.name.clone());
            w.namespaces.insert(n.name.clone(), l);
        }
        for p in &self.pods {
            add_ns(&mut w, &p.ns);
            let id = PodId::new(&p.ns, &p.name);
            let ports = p
                .ports
                .iter()
                .map(|c| ServedPort {
                    port: PortProto {
                        port: c.port,
                        protocol: c.protocol,
                    },
                    name: c.name.clone(),
                })
                .collect();
            if let Some(ip) = p.ip {
                w.pod_ips.insert(id.clone(), ip);
            }
            w.pods.insert(
                id.clone(),
                PodState {
                    id,
                    labels: p.labels.clone(),
                    ports,
                },
            );
        }
        for np in &self.policies {
            add_ns(&mut w, &np.ns);
            w.policies.insert(np.reference(), np.clone());
        }
        w
    }

    /// The inventory as a one-step scenario (`netreach explain --policies --pods`): its
    /// namespaces and pods (one per workload, named after it) as declared, and a step that
    /// applies every policy; policies keep their `file:line`. No expectations, no addresses.
    pub fn as_scenario(&self) -> crate::model::Scenario {
        use crate::model::{Action, Loopback, Namespace, Pod, Scenario, Step};
        let w = self.world();
        Scenario {
            id: "manifests".into(),
            group: String::new(),
            path: std::path::PathBuf::from(&self.source),
            title: self.source.clone(),
            description: None,
            namespaces: w
                .namespaces
                .iter()
                .map(|(name, labels)| Namespace {
                    name: name.clone(),
                    labels: labels.clone(),
                    existing: false,
                    candidates: false,
                })
                .collect(),
            pods: w
                .pods
                .values()
                .map(|p| Pod {
                    id: p.id.clone(),
                    labels: p.labels.clone(),
                    ports: p.ports.clone(),
                })
                .collect(),
            externals: Vec::new(),
            placement: BTreeMap::new(),
            workloads: BTreeMap::new(),
            absent_at_start: Default::default(),
            loopback: Loopback::Allow,
            pod_cidrs: Vec::new(),
            cells: Vec::new(),
            steps: vec![Step {
                index: 1,
                name: "the manifests' policies".into(),
                line: 0,
                actions: w
                    .policies
                    .values()
                    .cloned()
                    .map(Action::ApplyPolicy)
                    .collect(),
                expected: Default::default(),
            }],
        }
    }
}

/// A lint finding on the audited objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditFinding {
    /// Which rule.
    pub rule: LintRule,
    /// Its default severity, or what `--deny`/`--allow` made it.
    pub severity: LintSeverity,
    /// The policy, `ns/name`.
    pub policy: String,
    /// Where it points (`file:line`, or the cluster object).
    pub origin: String,
    /// What is wrong.
    pub message: String,
    /// What would be right.
    pub help: String,
}

/// The verdict on a workload pair and port, for some of its pod pairs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// Source workload, `ns/name`.
    pub from: String,
    /// Its kind.
    pub from_kind: String,
    /// Destination workload, `ns/name`.
    pub to: String,
    /// Its kind.
    pub to_kind: String,
    /// The destination's declared port.
    pub port: PortProto,
    /// What the specification says.
    pub verdict: crate::engine::Spec,
    /// Source pods of these pairs.
    pub from_pods: usize,
    /// Destination pods of these pairs.
    pub to_pods: usize,
    /// Pod pairs with this verdict, of `total_pairs`.
    pub pairs: usize,
    /// Pod pairs of the two workloads on this port (two different pods).
    pub total_pairs: usize,
    /// Whether some policy selects the source for egress or the destination for ingress.
    pub by_policy: bool,
    /// Why, in words: the rules that admit it (`ns/policy (ingress rule 1 at file:line)`), or
    /// the isolating policies that admit nothing.
    pub reason: String,
}

/// A namespace at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamespaceSummary {
    /// Name.
    pub name: String,
    /// Its policies, by name.
    pub policies: Vec<String>,
    /// Its workloads, by name.
    pub workloads: Vec<String>,
    /// Workloads whose ingress no policy isolates (some pod of them).
    pub ingress_open: Vec<String>,
    /// Workloads whose egress no policy isolates (some pod of them).
    pub egress_open: Vec<String>,
    /// Workloads no policy applies to at all.
    pub no_policy: Vec<String>,
}

/// A workload at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadSummary {
    /// `ns/name`.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its pods.
    pub pods: usize,
    /// Whether the pods were made from a controller's template (addresses unknown).
    pub from_template: bool,
    /// Declared ports, `5432/tcp (postgres)`.
    pub ports: Vec<String>,
    /// Services selecting its pods, `ns/name (ClusterIP 5432/tcp)`.
    pub services: Vec<String>,
    /// Policies isolating its ingress (of some pod).
    pub ingress_isolated_by: Vec<String>,
    /// Policies isolating its egress (of some pod).
    pub egress_isolated_by: Vec<String>,
    /// Pods of it no policy isolates for ingress / egress (when others are).
    pub partly: Vec<String>,
    /// What in other namespaces can reach it: workloads and ports, or every pod.
    pub from_other_namespaces: Vec<String>,
    /// What outside the pod network can reach it: anywhere, or the ipBlocks and ports.
    pub from_outside: Vec<String>,
    /// Where outside the cluster it can connect to.
    pub to_outside: Vec<String>,
}

/// What `netreach audit` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Where the objects came from.
    pub source: String,
    /// Counts: namespaces, workloads, pods, services, policies.
    pub counts: BTreeMap<&'static str, usize>,
    /// Per namespace.
    pub namespaces: Vec<NamespaceSummary>,
    /// Per workload.
    pub workloads: Vec<WorkloadSummary>,
    /// Every workload pair and port with its verdict.
    pub reach: Vec<Reach>,
    /// Lint findings.
    pub findings: Vec<AuditFinding>,
    /// Objects not modelled.
    pub unsupported: Vec<Unsupported>,
}

impl AuditReport {
    /// Audits `inv`.
    pub fn of(inv: &Inventory) -> AuditReport {
        let w = inv.world();
        let groups = reach::Groups::of(inv, &w);
        let reach = reach::compute(&w, &groups);
        let (namespaces, workloads) = summary::summaries(inv, &w, &groups, &reach);
        let mut findings: Vec<AuditFinding> = lint::lint_world(&w, &Hints::default())
            .into_iter()
            .map(|f| AuditFinding {
                severity: f.rule.default_severity(),
                rule: f.rule,
                policy: f.policy,
                origin: f.origin,
                message: f.message,
                help: f.help,
            })
            .collect();
        findings
            .sort_by(|a, b| (&a.origin, a.rule, &a.message).cmp(&(&b.origin, b.rule, &b.message)));
        let counts = BTreeMap::from([
            ("namespaces", w.namespaces.len()),
            ("workloads", groups.owners.len()),
            ("pods", w.pods.len()),
            ("services", inv.services.len()),
            ("policies", w.policies.len()),
        ]);
        AuditReport {
            source: inv.source.clone(),
            counts,
            namespaces,
            workloads,
            reach,
            findings,
            unsupported: inv.unsupported.clone(),
        }
    }

    /// Drops the findings of `rules` (`--skip`).
    pub fn skip(&mut self, rules: &[LintRule]) {
        self.findings.retain(|f| !rules.contains(&f.rule));
    }

    /// Gives the findings of `rule` severity `s` (`--deny`: error, `--allow`: info).
    pub fn set_severity(&mut self, rule: LintRule, s: LintSeverity) {
        for f in self.findings.iter_mut().filter(|f| f.rule == rule) {
            f.severity = s;
        }
    }

    /// Findings of severity `s`.
    pub fn count(&self, s: LintSeverity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    /// `lint`'s rule: [`exit::MISMATCH`] when a finding is an error or a warning; else
    /// [`exit::UNSUPPORTED`] when an object that may change what connects is not modelled;
    /// else [`exit::SUCCESS`].
    pub fn exit_code(&self) -> i32 {
        if self.findings.iter().any(|f| f.severity.fails()) {
            exit::MISMATCH
        } else if self.unsupported.iter().any(|u| u.affects_reachability) {
            exit::UNSUPPORTED
        } else {
            exit::SUCCESS
        }
    }
}

/// `ns/name` of a workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct WorkloadId {
    pub ns: String,
    pub owner: Owner,
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.owner.name)
    }
}

#[cfg(test)]
mod tests;
