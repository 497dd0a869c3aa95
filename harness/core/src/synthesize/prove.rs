//! The proof and the measurements: the synthesized files are read back by the scenario
//! loader's policy checker, put in a World with nothing else, and the engine decides every cell
//! of the intent. Least privilege is measured over the *universe*: the listed cells, every pod
//! to every served port of every other pod by IP, and every pod to every external port.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::{Note, SynthError};
use crate::diag::{Diagnostics, Pos, Sink, SourceFile};
use crate::engine::{self, Spec, World};
use crate::model::{CellKey, PodId, Target, Verdict, Via};
use crate::policy::{self, NetworkPolicy, Peer, PolicyContext, raw::RawNetworkPolicy};

use super::Intent;

/// Reads policy files back as the scenario loader would (strict parse, then validation
/// against the intent's namespaces, pods and external endpoints).
///
/// # Errors
/// [`SynthError::RoundTrip`] with the diagnostics, when a file does not load.
pub fn load_back(
    intent: &Intent,
    files: &BTreeMap<String, String>,
) -> Result<Vec<NetworkPolicy>, SynthError> {
    let mut namespaces: BTreeMap<String, bool> = intent
        .world
        .namespaces
        .keys()
        .map(|n| (n.clone(), intent.existing.contains(n)))
        .collect();
    namespaces
        .entry(engine::DNS_NAMESPACE.to_owned())
        .or_insert(true);
    let pods: BTreeSet<PodId> = intent.world.pods.keys().cloned().collect();
    let externals: BTreeSet<String> = intent.externals.keys().cloned().collect();
    let cx = PolicyContext {
        namespaces: &namespaces,
        pods: &pods,
        externals: &externals,
        candidates: &BTreeSet::new(),
        any_namespace: false,
    };
    let mut out = Vec::new();
    for (path, text) in files {
        let file = SourceFile::new(Path::new(path), text.as_str());
        let mut diags = Diagnostics::default();
        let docs = match crate::yaml::parse_yaml_multi::<RawNetworkPolicy>(&file) {
            Ok(d) => d,
            Err(d) => {
                return Err(SynthError::RoundTrip {
                    file: path.clone(),
                    detail: Diagnostics(vec![*d]).render(false),
                });
            }
        };
        let mut sink = Sink {
            file: &file,
            out: &mut diags,
        };
        for raw in docs {
            let line = Pos::from_location(&file, &raw.metadata.name.referenced).line;
            if let Some(p) =
                policy::check_policy(raw, None, format!("{path}:{line}"), &cx, &mut sink)
            {
                out.push(p);
            }
        }
        if diags.has_errors() {
            return Err(SynthError::RoundTrip {
                file: path.clone(),
                detail: diags.render(false),
            });
        }
    }
    Ok(out)
}

/// A cell the policies do not meet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unmet {
    /// The cell.
    pub cell: CellKey,
    /// What the intent wants.
    pub want: Verdict,
    /// What the engine says of the synthesized policies.
    pub got: Spec,
    /// The engine's reasons, one line.
    pub why: String,
    /// Why the intent cannot be expressed here, and what would help, when known.
    pub notes: Vec<String>,
}

/// The engine's verdict on the synthesized policies, cell by cell.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Proof {
    /// Listed cells.
    pub cells: usize,
    /// Cells where the engine's verdict equals the intent.
    pub met: usize,
    /// The others.
    pub unmet: Vec<Unmet>,
}

impl Proof {
    /// Every cell met.
    pub fn holds(&self) -> bool {
        self.unmet.is_empty()
    }
}

/// The World of the intent with exactly these policies.
pub fn world_with(intent: &Intent, policies: &[NetworkPolicy]) -> World {
    let mut w = intent.world.clone();
    w.policies = policies
        .iter()
        .map(|p| (p.reference(), p.clone()))
        .collect();
    w
}

/// Checks every listed cell of `intent` against `policies`.
pub fn prove(intent: &Intent, policies: &[NetworkPolicy], notes: &[Note]) -> Proof {
    let w = world_with(intent, policies);
    let mut proof = Proof {
        cells: intent.cells.len(),
        ..Proof::default()
    };
    for (cell, want) in &intent.cells {
        let x = engine::explain(&w, cell);
        if x.verdict.expectation() == Some(*want) {
            proof.met += 1;
            continue;
        }
        let notes = notes
            .iter()
            .filter(|n| n.cells.contains(cell))
            .map(|n| match &n.suggestion {
                Some(s) => format!("{}; {s}", n.message),
                None => n.message.clone(),
            })
            .collect();
        proof.unmet.push(Unmet {
            cell: cell.clone(),
            want: *want,
            got: x.verdict,
            why: x.short(),
            notes,
        });
    }
    proof
}

/// Counts of a set of policies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicyStats {
    /// Policies.
    pub policies: usize,
    /// Ingress and egress rules.
    pub rules: usize,
    /// Peers of those rules.
    pub peers: usize,
    /// Label selectors: each policy's podSelector, each peer's podSelector and
    /// namespaceSelector.
    pub selectors: usize,
    /// ipBlock peers.
    pub ip_blocks: usize,
}

/// Counts `policies`.
pub fn stats<'a>(policies: impl IntoIterator<Item = &'a NetworkPolicy>) -> PolicyStats {
    let mut s = PolicyStats::default();
    for p in policies {
        s.policies += 1;
        s.selectors += 1;
        for r in p.ingress.iter().flatten().chain(p.egress.iter().flatten()) {
            s.rules += 1;
            for peer in r.peers.iter().flatten() {
                s.peers += 1;
                match peer {
                    Peer::Selectors { pods, namespaces } => {
                        s.selectors +=
                            usize::from(pods.is_some()) + usize::from(namespaces.is_some());
                    }
                    Peer::IpBlock(_) => s.ip_blocks += 1,
                }
            }
        }
    }
    s
}

/// What a set of policies lets through, over the universe of cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// Cells in the universe.
    pub universe: usize,
    /// Cells allowed.
    pub allowed: usize,
    /// Allowed cells the intent blocks or does not list.
    pub beyond_intent: usize,
    /// Cells the intent allows that are not allowed.
    pub intent_missed: usize,
    /// Cells the specification leaves open.
    pub unspecified: usize,
}

/// Every cell of the universe: the listed ones, every pod to every port of every other pod by
/// IP, every pod to every port of every external endpoint.
pub fn universe(intent: &Intent) -> BTreeSet<CellKey> {
    let w = &intent.world;
    let mut u: BTreeSet<CellKey> = intent.cells.keys().cloned().collect();
    for s in w.pods.values() {
        for d in w.pods.values() {
            if s.id == d.id {
                continue;
            }
            for p in &d.ports {
                u.insert(CellKey {
                    from: s.id.clone(),
                    to: Target::Pod(d.id.clone()),
                    port: Some(p.port),
                    via: Some(Via::Ip),
                });
            }
        }
        for (x, ports) in &intent.externals {
            for p in ports {
                u.insert(CellKey {
                    from: s.id.clone(),
                    to: Target::External(x.clone()),
                    port: Some(*p),
                    via: Some(Via::Ip),
                });
            }
        }
    }
    u
}

/// Measures the policies of `w` (which must have the intent's pods and labels) over the
/// universe.
pub fn reach(intent: &Intent, w: &World, universe: &BTreeSet<CellKey>) -> Reach {
    let mut r = Reach {
        universe: universe.len(),
        ..Reach::default()
    };
    for c in universe {
        let got = engine::explain(w, c).verdict;
        let want = intent.cells.get(c).copied().unwrap_or(Verdict::Block);
        if got == Spec::Allow {
            r.allowed += 1;
            if want != Verdict::Allow {
                r.beyond_intent += 1;
            }
        } else if want == Verdict::Allow {
            r.intent_missed += 1;
        }
        if got == Spec::Unspecified {
            r.unspecified += 1;
        }
    }
    r
}

/// Counts and reach of one set of policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Measured {
    /// Counts.
    pub stats: PolicyStats,
    /// Reach over the universe.
    pub reach: Reach,
}

/// The synthesized policies against the scenario's own, where it has some at that step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Cells of the universe the intent allows.
    pub intent_allowed: usize,
    /// Cells of the universe the intent does not list (meant blocked).
    pub unlisted: usize,
    /// The synthesized policies.
    pub synthesized: Measured,
    /// The scenario's policies at that step (absent when it applies none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Measured>,
}

/// Measures the synthesized policies, and the scenario's (`scenario_world`: the step's World
/// with the policies the scenario has in force) when it has any.
pub fn compare(
    intent: &Intent,
    synthesized: &[NetworkPolicy],
    scenario_world: Option<&World>,
) -> Comparison {
    let u = universe(intent);
    let intent_allowed = u
        .iter()
        .filter(|c| intent.cells.get(*c) == Some(&Verdict::Allow))
        .count();
    let sw = world_with(intent, synthesized);
    Comparison {
        intent_allowed,
        unlisted: u.iter().filter(|c| !intent.cells.contains_key(*c)).count(),
        synthesized: Measured {
            stats: stats(synthesized),
            reach: reach(intent, &sw, &u),
        },
        scenario: scenario_world
            .filter(|w| !w.policies.is_empty())
            .map(|w| Measured {
                stats: stats(w.policies.values()),
                reach: reach(intent, w, &u),
            }),
    }
}
