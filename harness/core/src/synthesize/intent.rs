//! [`Intent`]: what the synthesizer is asked for — a World (pods, labels, ports, namespaces)
//! and the intended verdict of each listed cell. A scenario step is one source; an audit report
//! or any other expected matrix over a World can be another.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::SynthError;
use crate::engine::World;
use crate::model::{CellKey, Loopback, PortProto, Scenario, Target, Verdict};

/// The intended reachability over a World.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// Where the intent comes from, for file headers and reports
    /// (`scenarios/three-tier.yaml, step 3 "tiers opened hop by hop"`).
    pub source: String,
    /// Namespaces (with labels), pods (labels, ports). Its policies are ignored.
    pub world: World,
    /// Namespaces that exist in the cluster but are not the intent's own (e.g. `kube-system`):
    /// no policy is written in them.
    pub existing: BTreeSet<String>,
    /// External endpoints and the ports they serve (the universe of unlisted cells includes
    /// every pod to every one of these ports).
    pub externals: BTreeMap<String, Vec<PortProto>>,
    /// How the cells of a pod reaching itself were judged (kept for the verification scenario).
    pub loopback: Loopback,
    /// The intended verdict of every listed cell. Cells not listed are meant to be blocked.
    pub cells: BTreeMap<CellKey, Verdict>,
}

/// Which step of a scenario an intent was taken from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepRef {
    /// 1-based index.
    pub index: usize,
    /// Its name.
    pub name: String,
}

impl Intent {
    /// The intent of one step of a scenario (1-based; `None`: the last step): its expected
    /// matrix, over the pods and labels as they are after the step's actions. Also returns the
    /// World at that step *with* the scenario's own policies, for comparisons.
    ///
    /// # Errors
    /// When the step does not exist.
    pub fn from_scenario(
        s: &Scenario,
        source: &str,
        step: Option<usize>,
    ) -> Result<(Intent, World, StepRef), SynthError> {
        let steps = s.steps.len();
        let index = step.unwrap_or(steps);
        if index == 0 || index > steps {
            return Err(SynthError::BadStep { step: index, steps });
        }
        let st = &s.steps[index - 1];
        let mut w = World::initial(s);
        for earlier in &s.steps[..index] {
            w.apply(&earlier.actions);
        }
        let scenario_world = w.clone();
        w.policies.clear();
        let mut externals: BTreeMap<String, Vec<PortProto>> = s
            .externals
            .iter()
            .map(|e| (e.name.clone(), e.ports.iter().map(|p| p.port).collect()))
            .collect();
        for c in st.expected.cells.keys() {
            if let (Target::External(x), Some(p)) = (&c.to, c.port) {
                let ports = externals.entry(x.clone()).or_default();
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
        }
        let intent = Intent {
            source: format!("{source}, step {index} \"{}\"", st.name),
            world: w,
            existing: s
                .namespaces
                .iter()
                .filter(|n| n.existing)
                .map(|n| n.name.clone())
                .collect(),
            externals,
            loopback: s.loopback,
            cells: st
                .expected
                .cells
                .iter()
                .map(|(k, e)| (k.clone(), e.verdict))
                .collect(),
        };
        Ok((
            intent,
            scenario_world,
            StepRef {
                index,
                name: st.name.clone(),
            },
        ))
    }

    /// The intent an engine verdict matrix amounts to: every decided cell of `cells` as the
    /// policies of `w` decide it (undecided cells are left out). The result's World has no
    /// policies. Used by property tests and for "re-synthesize what is in force".
    pub fn from_engine(source: &str, w: &World, cells: &[CellKey]) -> Intent {
        let mut out = BTreeMap::new();
        let mut externals: BTreeMap<String, Vec<PortProto>> = BTreeMap::new();
        for c in cells {
            if let Some(v) = crate::engine::explain(w, c).verdict.expectation() {
                out.insert(c.clone(), v);
            }
            if let (Target::External(x), Some(p)) = (&c.to, c.port) {
                let ports = externals.entry(x.clone()).or_default();
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
        }
        let mut world = w.clone();
        world.policies.clear();
        Intent {
            source: source.to_owned(),
            world,
            existing: BTreeSet::new(),
            externals,
            loopback: Loopback::Allow,
            cells: out,
        }
    }
}
