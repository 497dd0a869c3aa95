//! A stand-in cluster for unit tests of the runner and reports: hands out fake addresses,
//! records every call, and answers probes through a closure. Never used outside tests of pure
//! logic; cluster features are proven against a real cluster.
use std::net::{IpAddr, Ipv4Addr};

use super::{Cluster, ClusterAction, DeployPlan, InfraError};
use crate::bind::{Bindings, BoundProbe};
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
        }
    }
}

impl Cluster for FakeCluster {
    fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError> {
        self.calls.push(Call::Deploy(Box::new(plan.clone())));
        if let Some(e) = self.fail_deploy.clone() {
            return Err(e);
        }
        let mut b = Bindings {
            namespaces: plan.names.clone(),
            cluster_domain: "cluster.local".into(),
            ..Bindings::default()
        };
        for (i, p) in plan.pods.iter().enumerate() {
            let i = u8::try_from(i + 2).unwrap_or(u8::MAX);
            b.pod_ips
                .insert(p.id.clone(), IpAddr::V4(Ipv4Addr::new(10, 244, 0, i)));
            if p.service {
                b.service_ips
                    .insert(p.id.clone(), IpAddr::V4(Ipv4Addr::new(10, 96, 0, i)));
            }
        }
        for (i, e) in plan.externals.iter().enumerate() {
            let i = u8::try_from(i + 2).unwrap_or(u8::MAX);
            b.external_ips
                .insert(e.name.clone(), IpAddr::V4(Ipv4Addr::new(172, 18, 0, i)));
        }
        Ok(b)
    }

    fn apply(&mut self, actions: &[ClusterAction]) -> Result<(), InfraError> {
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
        Ok(())
    }

    fn probe(
        &mut self,
        probes: &[BoundProbe],
        _timeout: crate::probe::ProbeTimeout,
    ) -> Result<Vec<Observation>, InfraError> {
        self.calls.push(Call::Probe(probes.len()));
        let applied = self.applied.clone();
        Ok(probes
            .iter()
            .map(|p| Observation::bare((self.responder)(p, &applied)))
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
