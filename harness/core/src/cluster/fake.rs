//! A stand-in cluster for unit tests of the runner and reports: hands out fake addresses,
//! records every call, and answers probes through a closure. Never used outside tests of pure
//! logic; cluster features are proven against a real cluster.
use std::net::{IpAddr, Ipv4Addr};

use super::{Cluster, ClusterAction, DeployPlan, InfraError, cluster_actions};
use crate::bind::{Bindings, BoundProbe, ProbeAction};
use crate::engine::{self, Spec, World};
use crate::model::Scenario;
use crate::names::Naming;
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
    /// `keep`.
    Keep,
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
    /// Give every observation the repro command a real cluster would (`kubectl --context <this>
    /// … exec …`), for reports that look like a real run's.
    pub repro_context: Option<String>,
    /// Addresses of every pod the plan names (those that steps add too), and what is bound now.
    all: Bindings,
    now: Bindings,
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
            repro_context: None,
            all: Bindings::default(),
            now: Bindings::default(),
        }
    }

    /// A cluster that answers every probe as the NetworkPolicy specification says (the policy
    /// engine, in the state after the steps applied so far, with the addresses this double
    /// binds): allowed connections connect and names resolve, blocked ones time out, a
    /// connection by a name that does not resolve fails to resolve. Cells the specification
    /// leaves open connect.
    pub fn following_spec(s: &Scenario) -> Self {
        let plan = DeployPlan::new(s, &Naming::Verbatim, "spec");
        let b = bindings(&plan);
        let worlds: Vec<World> = World::per_step(s)
            .into_iter()
            .map(|w| w.with_addresses(&b))
            .collect();
        // The number of cluster actions applied once each step's changes are in: the state a
        // probe sees is that of the first step at that count (steps without changes share it).
        let mut applied_after = Vec::new();
        let mut total = 0;
        for st in &s.steps {
            total += cluster_actions(&st.actions, &b, &plan).map_or(st.actions.len(), |a| a.len());
            applied_after.push(total);
        }
        FakeCluster::new(move |p, applied| {
            let step = applied_after
                .iter()
                .position(|&n| n == applied.len())
                .unwrap_or(worlds.len().saturating_sub(1));
            let Some(w) = worlds.get(step) else {
                return Outcome::Connected;
            };
            let resolve = matches!(p.action, ProbeAction::Resolve { .. });
            match (engine::explain(w, &p.cell).verdict, resolve) {
                (Spec::Block, _) | (Spec::Unresolved, true) => Outcome::TimedOut,
                (Spec::Unresolved, false) => Outcome::DnsFailure("the name did not resolve".into()),
                (Spec::Allow | Spec::Unspecified, true) => Outcome::Resolved,
                (Spec::Allow | Spec::Unspecified, false) => Outcome::Connected,
            }
        })
    }
}

/// The addresses this double hands out for a plan: pods 10.244.0.x, Services 10.96.0.x,
/// externals their fixed address or 172.18.0.x, in plan order (the pods that steps add after
/// the others).
fn bindings(plan: &DeployPlan) -> Bindings {
    let mut b = Bindings {
        namespaces: plan.names.clone(),
        cluster_domain: "cluster.local".into(),
        ..Bindings::default()
    };
    for (i, p) in plan.pods.iter().chain(&plan.later_pods).enumerate() {
        let i = u8::try_from(i + 2).unwrap_or(u8::MAX);
        b.pod_ips
            .insert(p.id.clone(), IpAddr::V4(Ipv4Addr::new(10, 244, 0, i)));
        // Two nodes, like the kit's cluster; a pinned pod on its node.
        let node = p
            .placement
            .node
            .clone()
            .unwrap_or_else(|| ["fake-node-1", "fake-node-2"][usize::from(i) % 2].to_owned());
        b.pod_nodes.insert(p.id.clone(), node);
        if p.service {
            b.service_ips
                .insert(p.id.clone(), IpAddr::V4(Ipv4Addr::new(10, 96, 0, i)));
        }
    }
    for (i, e) in plan.externals.iter().enumerate() {
        let i = u8::try_from(i + 2).unwrap_or(u8::MAX);
        let ip = e
            .address
            .unwrap_or(IpAddr::V4(Ipv4Addr::new(172, 18, 0, i)));
        b.external_ips.insert(e.name.clone(), ip);
    }
    b
}

impl Cluster for FakeCluster {
    fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError> {
        self.calls.push(Call::Deploy(Box::new(plan.clone())));
        if let Some(e) = self.fail_deploy.clone() {
            return Err(e);
        }
        self.all = bindings(plan);
        self.now = self.all.clone();
        for p in &plan.later_pods {
            if !plan.pods.iter().any(|d| d.id == p.id) {
                self.now.unbind(&p.id);
            }
        }
        Ok(self.now.clone())
    }

    fn apply(&mut self, actions: &[ClusterAction]) -> Result<Bindings, InfraError> {
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
        for a in actions {
            match a {
                ClusterAction::AddPod(p) => self.now.bind_from(&self.all, &p.id),
                ClusterAction::RemovePod { id, .. } => self.now.unbind(id),
                ClusterAction::RemoveNamespace { logical, .. } => {
                    self.now.unbind_namespace(logical);
                }
                _ => {}
            }
        }
        Ok(self.now.clone())
    }

    fn probe(
        &mut self,
        probes: &[BoundProbe],
        timeout: crate::probe::ProbeTimeout,
    ) -> Result<Vec<Observation>, InfraError> {
        self.calls.push(Call::Probe(probes.len()));
        let applied = self.applied.clone();
        Ok(probes
            .iter()
            .map(|p| {
                let mut o = Observation::bare((self.responder)(p, &applied));
                if let Some(ctx) = &self.repro_context {
                    o.detail.command = crate::probe::repro(Some(ctx), p, timeout);
                }
                o
            })
            .collect())
    }

    fn keep(&mut self) -> Result<(), InfraError> {
        self.calls.push(Call::Keep);
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), InfraError> {
        self.calls.push(Call::Teardown);
        Ok(())
    }
}
