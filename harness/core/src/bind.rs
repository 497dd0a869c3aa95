//! Binding: what a deployment learned (real namespace names, pod, Service and external
//! addresses), and the probes and plans that need it.
//!
//! The model speaks of logical pods; a deployment knows their addresses. [`Bindings`] carries
//! what the cluster side reports; [`bind_probes`] turns a step's cells into concrete probes (what
//! to run in which pod against which address). Pure: the cluster seam fills the bindings.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use thiserror::Error;

use crate::model::{CellKey, PodId, PortProto, Protocol, Scenario, Target, Via};
use crate::names::NamespaceMap;

/// A name or address a run needs but the deployment did not provide.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BindError {
    /// No real name for a logical namespace.
    #[error("namespace `{0}` has no real name in this run")]
    Namespace(String),
    /// A step adds or removes a namespace given to the run, or a pod in one.
    #[error(
        "namespace `{0}` is given to the run (`--namespace`): a step cannot add or remove it, or pods in it (netreach never deletes what it was given)"
    )]
    Given(String),
    /// No IP for a pod.
    #[error("pod `{0}` has no IP address (not deployed, or not ready)")]
    PodIp(PodId),
    /// No ClusterIP for a pod's Service.
    #[error("pod `{0}` has no Service address")]
    ServiceIp(PodId),
    /// No address for an external endpoint.
    #[error("external endpoint `{0}` has no address in this run")]
    ExternalIp(String),
    /// Once addresses are known, an `except` entry is not strictly inside its `cidr`.
    #[error(
        "ipBlock except `{except}` is not strictly inside cidr `{cidr}` once addresses are bound"
    )]
    Except {
        /// The except entry, bound.
        except: String,
        /// The cidr, bound.
        cidr: String,
    },
    /// A placeholder's prefix does not fit the address family.
    #[error("prefix /{prefix} does not fit the address {ip} of {what}")]
    Prefix {
        /// What the address belongs to.
        what: String,
        /// The address.
        ip: IpAddr,
        /// The prefix length.
        prefix: u8,
    },
}

/// What a deployment knows: real names and addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bindings {
    /// Logical to real namespace names.
    pub namespaces: NamespaceMap,
    /// Pod IPs.
    pub pod_ips: BTreeMap<PodId, IpAddr>,
    /// The node each pod runs on (empty where the cluster does not say).
    pub pod_nodes: BTreeMap<PodId, String>,
    /// ClusterIPs of the Services in front of pods.
    pub service_ips: BTreeMap<PodId, IpAddr>,
    /// External endpoint addresses.
    pub external_ips: BTreeMap<String, IpAddr>,
    /// The cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// The pod a source's probes run in, where its name is not the logical one (a real
    /// workload's shadow pod).
    pub exec_pods: BTreeMap<PodId, String>,
}

impl Bindings {
    /// The real name of a logical namespace.
    ///
    /// # Errors
    /// When the namespace is unknown.
    pub fn namespace(&self, logical: &str) -> Result<&str, BindError> {
        self.namespaces
            .real(logical)
            .ok_or_else(|| BindError::Namespace(logical.to_owned()))
    }

    /// Forgets a pod (removed by a step): its address, node and Service address.
    pub fn unbind(&mut self, p: &PodId) {
        self.pod_ips.remove(p);
        self.pod_nodes.remove(p);
        self.service_ips.remove(p);
        self.exec_pods.remove(p);
    }

    /// Forgets every pod of a logical namespace (removed by a step); returns them.
    pub fn unbind_namespace(&mut self, logical: &str) -> Vec<PodId> {
        let gone: Vec<PodId> = self
            .pod_ips
            .keys()
            .filter(|id| id.ns == logical)
            .cloned()
            .collect();
        for id in &gone {
            self.unbind(id);
        }
        gone
    }

    /// The name of the pod a source's probes run in.
    pub fn exec_pod<'a>(&'a self, p: &'a PodId) -> &'a str {
        self.exec_pods
            .get(p)
            .map_or(p.name.as_str(), String::as_str)
    }

    /// Takes a pod's address, node and Service address from `other` (a step added it).
    pub fn bind_from(&mut self, other: &Bindings, p: &PodId) {
        if let Some(ip) = other.pod_ips.get(p) {
            self.pod_ips.insert(p.clone(), *ip);
        }
        if let Some(n) = other.pod_nodes.get(p) {
            self.pod_nodes.insert(p.clone(), n.clone());
        }
        if let Some(ip) = other.service_ips.get(p) {
            self.service_ips.insert(p.clone(), *ip);
        }
    }

    /// A pod's IP.
    ///
    /// # Errors
    /// When it is unknown.
    pub fn pod_ip(&self, p: &PodId) -> Result<IpAddr, BindError> {
        self.pod_ips
            .get(p)
            .copied()
            .ok_or_else(|| BindError::PodIp(p.clone()))
    }

    /// The ClusterIP of a pod's Service.
    ///
    /// # Errors
    /// When it is unknown.
    pub fn service_ip(&self, p: &PodId) -> Result<IpAddr, BindError> {
        self.service_ips
            .get(p)
            .copied()
            .ok_or_else(|| BindError::ServiceIp(p.clone()))
    }

    /// An external endpoint's address.
    ///
    /// # Errors
    /// When it is unknown.
    pub fn external_ip(&self, name: &str) -> Result<IpAddr, BindError> {
        self.external_ips
            .get(name)
            .copied()
            .ok_or_else(|| BindError::ExternalIp(name.to_owned()))
    }
}

/// What to probe, concretely.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeAction {
    /// Open a connection to `host:port`.
    Connect {
        /// An address, or a DNS name for `via: dns`.
        host: String,
        /// Port number.
        port: u16,
        /// Protocol.
        protocol: Protocol,
        /// Whether something is known to listen there: then "refused" means a policy rejected
        /// the connection (some enforcers REJECT instead of dropping).
        served: bool,
    },
    /// Resolve a DNS name.
    Resolve {
        /// The name.
        name: String,
    },
}

/// One probe to run: in which pod, doing what, for which cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BoundProbe {
    /// The cell it decides.
    pub cell: CellKey,
    /// Real namespace of the source pod.
    pub namespace: String,
    /// Source pod name.
    pub pod: String,
    /// What to do.
    pub action: ProbeAction,
}

/// The DNS name of a pod's Service.
pub fn service_dns_name(pod: &PodId, b: &Bindings) -> Result<String, BindError> {
    let domain = if b.cluster_domain.is_empty() {
        "cluster.local"
    } else {
        b.cluster_domain.as_str()
    };
    Ok(format!(
        "{}.{}.svc.{domain}",
        pod.name,
        b.namespace(&pod.ns)?
    ))
}

/// Turns cells into probes with concrete addresses.
///
/// # Errors
/// When an address or name the cells need is not bound.
pub fn bind_probes<'a>(
    scenario: &Scenario,
    cells: impl IntoIterator<Item = &'a CellKey>,
    b: &Bindings,
) -> Result<Vec<BoundProbe>, BindError> {
    let mut out = Vec::new();
    for cell in cells {
        let action = match (&cell.to, cell.port, cell.via) {
            (Target::Name(n), _, _) => ProbeAction::Resolve { name: n.clone() },
            (to, Some(port), via) => {
                let host = match (to, via.unwrap_or(Via::Ip)) {
                    (Target::Pod(p), Via::Ip) => b.pod_ip(p)?.to_string(),
                    (Target::Pod(p), Via::Service) => b.service_ip(p)?.to_string(),
                    (Target::Pod(p), Via::Dns) => service_dns_name(p, b)?,
                    (Target::External(e), _) => b.external_ip(e)?.to_string(),
                    (Target::Name(_), _) => unreachable!("handled above"),
                };
                let served = scenario.served_ports(to).iter().any(|s| s.port == port);
                connect(host, port, served)
            }
            // A connection cell always has a port (the model guarantees it); treat a missing
            // one as a name to resolve rather than panic.
            (to, None, _) => ProbeAction::Resolve {
                name: to.to_string(),
            },
        };
        out.push(BoundProbe {
            cell: cell.clone(),
            namespace: b.namespace(&cell.from.ns)?.to_owned(),
            pod: b.exec_pod(&cell.from).to_owned(),
            action,
        });
    }
    Ok(out)
}

fn connect(host: String, port: PortProto, served: bool) -> ProbeAction {
    ProbeAction::Connect {
        host,
        port: port.port,
        protocol: port.protocol,
        served,
    }
}
