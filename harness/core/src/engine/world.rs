//! [`World`]: everything the verdicts depend on at one step.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::bind::Bindings;
use crate::model::{Action, PodId, Scenario, ServedPort};
use crate::policy::{NAMESPACE_NAME_LABEL, NetworkPolicy, PolicyRef, PolicyType};

/// A pod as the engine sees it at one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    /// Namespace and name.
    pub id: PodId,
    /// Labels now.
    pub labels: BTreeMap<String, String>,
    /// Declared ports (for named ports).
    pub ports: Vec<ServedPort>,
}

/// Everything the verdicts depend on at one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct World {
    /// Namespace labels by logical name, including `kubernetes.io/metadata.name`.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Pods.
    pub pods: BTreeMap<PodId, PodState>,
    /// Policies in force, by reference (the order never matters).
    pub policies: BTreeMap<PolicyRef, NetworkPolicy>,
    /// Pod IPs, when known (after deployment).
    pub pod_ips: BTreeMap<PodId, IpAddr>,
    /// External endpoint IPs, when known.
    pub external_ips: BTreeMap<String, IpAddr>,
}

impl World {
    /// The world before any step: declared namespaces and pods, no policies.
    pub fn initial(s: &Scenario) -> World {
        let namespaces = s
            .namespaces
            .iter()
            .map(|n| {
                let mut l = n.labels.clone();
                l.insert(NAMESPACE_NAME_LABEL.into(), n.name.clone());
                (n.name.clone(), l)
            })
            .collect();
        let pods = s
            .pods
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    PodState {
                        id: p.id.clone(),
                        labels: p.labels.clone(),
                        ports: p.ports.clone(),
                    },
                )
            })
            .collect();
        World {
            namespaces,
            pods,
            ..World::default()
        }
    }

    /// Applies a step's actions, in order.
    pub fn apply(&mut self, actions: &[Action]) {
        let relabel = |labels: &mut BTreeMap<String, String>,
                       changes: &BTreeMap<String, Option<String>>| {
            for (k, v) in changes {
                match v {
                    Some(v) => labels.insert(k.clone(), v.clone()),
                    None => labels.remove(k),
                };
            }
        };
        for a in actions {
            match a {
                Action::DeletePolicy(r) => {
                    self.policies.remove(r);
                }
                Action::ReplacePolicy(p) | Action::ApplyPolicy(p) => {
                    self.policies.insert(p.reference(), p.clone());
                }
                Action::RelabelPod { pod, labels } => {
                    if let Some(p) = self.pods.get_mut(pod) {
                        relabel(&mut p.labels, labels);
                    }
                }
                Action::RelabelNamespace { ns, labels } => {
                    if let Some(l) = self.namespaces.get_mut(ns) {
                        relabel(l, labels);
                    }
                }
            }
        }
    }

    /// The world after each step, in order (index 0 = step 1).
    pub fn per_step(s: &Scenario) -> Vec<World> {
        let mut w = World::initial(s);
        s.steps
            .iter()
            .map(|st| {
                w.apply(&st.actions);
                w.clone()
            })
            .collect()
    }

    /// Adds the addresses a deployment bound.
    pub fn with_addresses(mut self, b: &Bindings) -> World {
        self.pod_ips = b.pod_ips.clone();
        self.external_ips = b.external_ips.clone();
        self
    }

    pub(crate) fn ns_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(ns)
            .cloned()
            .unwrap_or_else(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())]))
    }

    /// Policies that select `pod` for direction `dir`, in reference order.
    pub fn selecting(&self, pod: &PodId, dir: PolicyType) -> Vec<&NetworkPolicy> {
        let Some(p) = self.pods.get(pod) else {
            return Vec::new();
        };
        self.policies
            .values()
            .filter(|np| {
                np.ns == pod.ns
                    && np.effective_types().contains(&dir)
                    && np.pod_selector.matches(&p.labels)
            })
            .collect()
    }

    /// Pods `np` selects (any direction).
    pub fn selected_pods(&self, np: &NetworkPolicy) -> Vec<&PodState> {
        self.pods
            .values()
            .filter(|p| p.id.ns == np.ns && np.pod_selector.matches(&p.labels))
            .collect()
    }
}
