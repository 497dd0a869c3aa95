//! [`World`]: everything the verdicts depend on at one step.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::address::{PodNetwork, PodNetworkError, PodNetworkSource};
use crate::bind::Bindings;
use crate::model::{Action, Namespace, Pod, PodId, Scenario, ServedPort};
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

/// A declared namespace's labels as the API server has them (with its name label).
fn namespace_labels(n: &Namespace) -> (String, BTreeMap<String, String>) {
    let mut l = n.labels.clone();
    l.insert(NAMESPACE_NAME_LABEL.into(), n.name.clone());
    (n.name.clone(), l)
}

/// A declared pod as deployed (its declared labels).
fn pod_state(p: &Pod) -> (PodId, PodState) {
    (
        p.id.clone(),
        PodState {
            id: p.id.clone(),
            labels: p.labels.clone(),
            ports: p.ports.clone(),
        },
    )
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
    /// Where pod addresses lie, for ipBlocks compared with pods whose address is not known:
    /// the cluster's (set by the run), the scenario's `cluster.podCIDR`, or the IPv4
    /// assumption (see [`PodNetwork`]).
    pub pod_network: PodNetwork,
}

impl World {
    /// The world before any step: declared namespaces and pods, no policies.
    pub fn initial(s: &Scenario) -> World {
        // What a step adds later is not there yet.
        let absent = &s.absent_at_start;
        let namespaces = s
            .namespaces
            .iter()
            .filter(|n| !absent.namespaces.contains(&n.name))
            .map(namespace_labels)
            .collect();
        let pods = s
            .pods
            .iter()
            .filter(|p| !absent.pods.contains(&p.id))
            .map(pod_state)
            .collect();
        // Validation accepts at most one CIDR per family, so this only falls back on the
        // assumption when the scenario declares none.
        let pod_network =
            PodNetwork::new(&s.pod_cidrs, PodNetworkSource::Scenario).unwrap_or_default();
        // A fixed external address is known before deployment: ipBlocks decide it at once.
        let external_ips = s
            .externals
            .iter()
            .filter_map(|e| e.address.map(|ip| (e.name.clone(), ip)))
            .collect();
        World {
            namespaces,
            pods,
            pod_network,
            external_ips,
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
                Action::RemovePod(id) => {
                    self.pods.remove(id);
                }
                Action::RemoveNamespace(ns) => {
                    // Everything inside goes with it.
                    self.namespaces.remove(ns);
                    self.pods.retain(|id, _| &id.ns != ns);
                    self.policies.retain(|r, _| &r.ns != ns);
                }
                Action::AddNamespace(n) => {
                    let (name, labels) = namespace_labels(n);
                    self.namespaces.insert(name, labels);
                }
                Action::AddPod(p) => {
                    let (id, state) = pod_state(p);
                    self.pods.insert(id, state);
                }
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

    /// The pod network the cluster reports (its nodes' `spec.podCIDRs`): the run's hook. It
    /// replaces what the scenario declared or the engine assumed; only pods whose address is
    /// not known depend on it.
    ///
    /// # Errors
    /// When `cidrs` is empty or holds two CIDRs of one family.
    pub fn with_pod_cidrs(mut self, cidrs: &[IpNet]) -> Result<World, PodNetworkError> {
        self.pod_network = PodNetwork::new(cidrs, PodNetworkSource::Cluster)?;
        Ok(self)
    }

    /// Known pod addresses outside the pod network: the declaration (or the IPv4 assumption)
    /// was wrong for them, so verdicts computed before deployment may be too.
    pub fn addresses_outside_pod_network(&self) -> Vec<(PodId, IpAddr)> {
        self.pod_network.outside(&self.pod_ips)
    }

    pub(crate) fn ns_labels(&self, ns: &str) -> Cow<'_, BTreeMap<String, String>> {
        match self.namespaces.get(ns) {
            Some(l) => Cow::Borrowed(l),
            None => Cow::Owned(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_owned(),
                ns.to_owned(),
            )])),
        }
    }

    /// The policies of namespace `ns`, in reference order (`policies` is keyed by each
    /// policy's own reference, so a namespace's policies are one range).
    pub(crate) fn policies_in(&self, ns: &str) -> impl Iterator<Item = &NetworkPolicy> + use<'_> {
        let from = PolicyRef {
            ns: ns.to_owned(),
            name: String::new(),
        };
        self.policies
            .range(from.clone()..)
            .map_while(move |(r, p)| (r.ns == from.ns).then_some(p))
    }

    /// Policies that select `pod` for direction `dir`, in reference order.
    pub fn selecting(&self, pod: &PodId, dir: PolicyType) -> Vec<&NetworkPolicy> {
        let Some(p) = self.pods.get(pod) else {
            return Vec::new();
        };
        self.policies_in(&pod.ns)
            .filter(|np| has_type(np, dir) && np.pod_selector.matches(&p.labels))
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

/// Whether `np` applies to direction `dir` ([`NetworkPolicy::effective_types`], without building
/// a set): `policyTypes` when given and not empty; otherwise Ingress, and Egress when there are
/// egress rules.
pub(crate) fn has_type(np: &NetworkPolicy, dir: PolicyType) -> bool {
    match &np.policy_types {
        Some(t) if !t.is_empty() => t.contains(&dir),
        _ => match dir {
            PolicyType::Ingress => true,
            PolicyType::Egress => np.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    }
}
