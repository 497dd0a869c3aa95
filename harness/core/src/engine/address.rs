//! Addresses before they are known: the pod network, and whether an ipBlock contains an endpoint.
//!
//! Before deployment the engine knows no pod or external address, but it knows (or assumes)
//! where they can be: every pod's address — the one a probe by IP connects to, the pod's
//! primary `status.podIP` — lies in the cluster's pod network ([`PodNetwork`]). An ipBlock is
//! then decided when the answer is the same for every address the endpoint can have: a block
//! that contains the whole pod network contains every pod, a block disjoint from it contains
//! none. Everything else stays [`Tri::Unknown`].
//!
//! The pod network comes from, in order of precedence: the run (the cluster's pod CIDRs, set by
//! [`World::with_pod_cidrs`]); the scenario's `cluster: {podCIDR: ...}`; otherwise the
//! assumption that the cluster is IPv4 single-stack (`0.0.0.0/0`), which is what netreach's own
//! clusters and almost every cluster is. A scenario for an IPv6 cluster declares an IPv6
//! `podCIDR` (`::/0` when only the family is known); a dual-stack one declares both families
//! (`10.244.0.0/16,fd00:10:244::/56`, or `0.0.0.0/0,::/0`), which leaves a single-family `/0`
//! undecided: which family a pod's primary address has is the cluster's choice.
//!
//! External endpoints are reached from pods by address, so their address has a family the pods
//! have (a packet from an IPv4 pod goes to an IPv4 address): a `/0` of the only family
//! contains them. Nothing puts them outside the pod network — Docker, the CNI and the user
//! choose those ranges independently — so a block disjoint from the pod network says nothing
//! about them.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::matching::Endpoint;
use super::{Tri, World};
use crate::model::PodId;
use crate::policy::AddrExpr;

/// Why a pod network cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PodNetworkError {
    /// No CIDR at all.
    #[error("a pod network needs at least one CIDR")]
    Empty,
    /// Two CIDRs of one family.
    #[error("{0} and {1} are both {2}: a pod network has at most one CIDR per address family")]
    SameFamily(IpNet, IpNet, &'static str),
}

/// Where the engine's pod network came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodNetworkSource {
    /// Nothing said: an IPv4 single-stack cluster is assumed (`0.0.0.0/0`).
    #[default]
    Assumed,
    /// The scenario's `cluster.podCIDR`.
    Scenario,
    /// The cluster a run deployed to.
    Cluster,
}

/// Where pod addresses lie: at most one network per address family, at least one in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodNetwork {
    nets: Nets,
    source: PodNetworkSource,
}

impl Default for PodNetwork {
    fn default() -> Self {
        PodNetwork::assumed()
    }
}

impl PodNetwork {
    /// The assumption when nothing is known: IPv4 single-stack, `0.0.0.0/0`.
    pub fn assumed() -> PodNetwork {
        PodNetwork {
            nets: Nets {
                v4: Some(Ipv4Net::default()),
                v6: None,
            },
            source: PodNetworkSource::Assumed,
        }
    }

    /// The pod network made of `cidrs` (one per family; host bits are ignored).
    ///
    /// # Errors
    /// When `cidrs` is empty or holds two CIDRs of one family.
    pub fn new(cidrs: &[IpNet], source: PodNetworkSource) -> Result<PodNetwork, PodNetworkError> {
        let mut nets = Nets::default();
        for c in cidrs {
            match c.trunc() {
                IpNet::V4(n) => match nets.v4 {
                    Some(o) => {
                        return Err(PodNetworkError::SameFamily(o.into(), *c, "IPv4"));
                    }
                    None => nets.v4 = Some(n),
                },
                IpNet::V6(n) => match nets.v6 {
                    Some(o) => {
                        return Err(PodNetworkError::SameFamily(o.into(), *c, "IPv6"));
                    }
                    None => nets.v6 = Some(n),
                },
            }
        }
        if nets.is_empty() {
            return Err(PodNetworkError::Empty);
        }
        Ok(PodNetwork { nets, source })
    }

    /// The networks, IPv4 first.
    pub fn cidrs(&self) -> Vec<IpNet> {
        self.nets.iter().collect()
    }

    /// Where it came from.
    pub fn source(&self) -> PodNetworkSource {
        self.source
    }

    /// `10.244.0.0/16 (the scenario's cluster.podCIDR)` and the like.
    pub fn describe(&self) -> String {
        let nets: Vec<String> = self.nets.iter().map(|n| n.to_string()).collect();
        let from = match self.source {
            PodNetworkSource::Assumed => "assumed: an IPv4 cluster",
            PodNetworkSource::Scenario => "the scenario's cluster.podCIDR",
            PodNetworkSource::Cluster => "the cluster's pod CIDRs",
        };
        format!("{} ({from})", nets.join(", "))
    }

    /// The known addresses that lie outside this network, i.e. where it was wrong; verdicts
    /// decided before the addresses were known may be wrong for them.
    pub fn outside<'a>(
        &self,
        ips: impl IntoIterator<Item = (&'a PodId, &'a IpAddr)>,
    ) -> Vec<(PodId, IpAddr)> {
        ips.into_iter()
            .filter(|(_, ip)| !self.nets.iter().any(|n| n.contains(*ip)))
            .map(|(p, ip)| (p.clone(), *ip))
            .collect()
    }

    /// Every address of the families this network has.
    fn families(&self) -> Nets {
        Nets {
            v4: self.nets.v4.map(|_| Ipv4Net::default()),
            v6: self.nets.v6.map(|_| Ipv6Net::default()),
        }
    }
}

impl fmt::Display for PodNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A set of addresses: the union of at most one network per family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Nets {
    v4: Option<Ipv4Net>,
    v6: Option<Ipv6Net>,
}

impl Nets {
    fn host(ip: IpAddr) -> Nets {
        Nets::of(IpNet::from(ip))
    }

    fn of(n: IpNet) -> Nets {
        match n {
            IpNet::V4(n) => Nets {
                v4: Some(n),
                v6: None,
            },
            IpNet::V6(n) => Nets {
                v4: None,
                v6: Some(n),
            },
        }
    }

    fn is_empty(self) -> bool {
        self.v4.is_none() && self.v6.is_none()
    }

    fn iter(self) -> impl Iterator<Item = IpNet> {
        self.v4
            .map(IpNet::V4)
            .into_iter()
            .chain(self.v6.map(IpNet::V6))
    }

    /// The only network, when there is exactly one.
    fn single(self) -> Option<IpNet> {
        match (self.v4, self.v6) {
            (Some(n), None) => Some(n.into()),
            (None, Some(n)) => Some(n.into()),
            _ => None,
        }
    }

    /// Whether every address of the set is in `block`.
    fn all_in(self, block: IpNet) -> bool {
        !self.is_empty() && self.iter().all(|n| block.contains(&n))
    }

    /// Whether no address of the set is in `block` (CIDRs are nested or disjoint).
    fn none_in(self, block: IpNet) -> bool {
        self.iter()
            .all(|n| !block.contains(&n) && !n.contains(&block))
    }
}

/// The addresses `e` can have.
fn possible(w: &World, e: &Endpoint) -> Nets {
    match e {
        Endpoint::Pod(p) => w
            .pod_ips
            .get(p)
            .map_or(w.pod_network.nets, |ip| Nets::host(*ip)),
        Endpoint::External(x) => w
            .external_ips
            .get(x)
            .map_or_else(|| w.pod_network.families(), |ip| Nets::host(*ip)),
        // The cluster DNS runs in pods.
        Endpoint::Dns => w.pod_network.nets,
    }
}

/// What an ipBlock address is, as far as it is known.
enum Block {
    /// Exactly this network.
    Exact(IpNet),
    /// A network of `prefix` bits around the address of `named`, which is not known; every
    /// address it can contain is in `upper`.
    Around {
        named: Endpoint,
        prefix: u8,
        named_nets: Nets,
        upper: Nets,
    },
}

fn block(w: &World, a: &AddrExpr) -> Block {
    let (named, prefix) = match a {
        AddrExpr::Literal(n) => return Block::Exact(*n),
        AddrExpr::PodIp { pod, prefix } => (Endpoint::Pod(pod.clone()), *prefix),
        AddrExpr::ExternalIp { name, prefix } => (Endpoint::External(name.clone()), *prefix),
    };
    let named_nets = possible(w, &named);
    // Every address in N, cut to `prefix` bits where prefix <= N's, is N's network cut so.
    if let Some(n) = named_nets.single()
        && prefix <= n.prefix_len()
        && let Ok(b) = IpNet::new(n.addr(), prefix)
    {
        return Block::Exact(b.trunc());
    }
    let cut = |n: IpNet| -> IpNet {
        if prefix <= n.prefix_len() {
            IpNet::new(n.addr(), prefix).map_or(n, |b| b.trunc())
        } else {
            n
        }
    };
    let upper = Nets {
        v4: named_nets.v4.map(|n| match cut(n.into()) {
            IpNet::V4(c) => c,
            IpNet::V6(_) => n,
        }),
        v6: named_nets.v6.map(|n| match cut(n.into()) {
            IpNet::V6(c) => c,
            IpNet::V4(_) => n,
        }),
    };
    Block::Around {
        named,
        prefix,
        named_nets,
        upper,
    }
}

/// Whether `e`'s address is in the block `a`: decided when it is the same for every address
/// `e` (and a placeholder's endpoint) can have.
pub(crate) fn contains(w: &World, a: &AddrExpr, e: &Endpoint) -> Tri {
    let poss = possible(w, e);
    match block(w, a) {
        Block::Exact(net) => {
            if poss.all_in(net) {
                Tri::Yes
            } else if poss.none_in(net) {
                Tri::No
            } else {
                Tri::Unknown
            }
        }
        Block::Around {
            named,
            prefix,
            named_nets,
            upper,
        } => {
            if &named == e {
                // A placeholder's network contains its own endpoint.
                Tri::Yes
            } else if prefix == 128 || (prefix == 32 && named_nets.v6.is_none()) {
                // One address: every endpoint (and the cluster DNS) has an address of its own.
                Tri::No
            } else if upper.iter().all(|u| poss.none_in(u)) {
                Tri::No
            } else {
                Tri::Unknown
            }
        }
    }
}

/// Whether deciding `e` against ipBlocks needs addresses the world has not got (for the
/// explanation of an undecided block).
pub(crate) fn address_unknown(w: &World, e: &Endpoint) -> bool {
    match e {
        Endpoint::Pod(p) => !w.pod_ips.contains_key(p),
        Endpoint::External(x) => !w.external_ips.contains_key(x),
        Endpoint::Dns => true,
    }
}
