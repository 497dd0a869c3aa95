//! `netreach synthesize`: from an intended reachability matrix, the NetworkPolicies that allow
//! exactly that, proven with the policy [`crate::engine`].
//!
//! Pure: an [`Intent`] (a World of pods, labels, ports and namespaces, and the intended verdict
//! of each listed cell) in, a [`Synthesis`] (policy files as text, a verification scenario, the
//! proof) out; the CLI writes the files. The steps:
//!
//! 1. **Constraints** ([`model`]): every (source, destination, port) triple is wanted allowed,
//!    blocked, or — when not listed but the destination serves the port — meant blocked; name
//!    resolution per pod (resolution cells, `via: dns` cells). Pods with identical labels in one
//!    namespace form a *class* no selector can split; where the intent treats members of a class
//!    differently, the cells that cannot be met are noted with a label to add.
//! 2. **Isolation** ([`cover`]): a default deny in every namespace ([`Isolation::All`]), or only
//!    where a blocked cell needs it, chosen as a minimum vertex cover ([`Isolation::Needed`]).
//! 3. **Rules** ([`rules`], [`build`]): per namespace and direction, classes treated alike share
//!    a policy; each needed (peer, port) becomes a peer × port in as few rules as admit nothing
//!    blocked, with the simplest label selectors ([`select`]), `kubernetes.io/metadata.name`
//!    for other namespaces, named ports where the destination names them, ipBlock placeholders
//!    (`${ip ext:<name>}/32`) for external endpoints only, and DNS egress to the cluster DNS for
//!    pods that resolve names.
//! 4. **Proof** ([`prove`]): the rendered YAML ([`render`]) is read back by the scenario
//!    loader's policy checker and must equal what was built; then the engine decides every
//!    listed cell against a World holding only those policies. Exact equality, or the cells are
//!    reported ([`Proof::unmet`]).
//!
//! What the engine cannot decide is not claimed: an ipBlock through a Service is unspecified
//! (so an external endpoint shares a rule with pod peers only when its source has no cell
//! through a Service or by name, and a blocked `via: service` cell from a pod with an ipBlock
//! rule on the same port is refused at the destination's ingress); pod and namespace selectors
//! through a Service are decided. See docs/synthesize.md.

mod build;
mod cover;
mod intent;
mod model;
mod prove;
pub(crate) mod render;
mod report;
mod rules;
mod select;

pub use intent::{Intent, StepRef};
pub use prove::{
    Comparison, Measured, PolicyStats, Proof, Reach, Unmet, compare, load_back, prove, reach,
    stats, universe, world_with,
};
pub use report::{Report, render_text};

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::model::CellKey;
use crate::policy::NetworkPolicy;

/// Which pods the synthesized policies isolate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A default deny (ingress and egress) in every namespace that holds pods: nothing the
    /// intent does not name gets in or out.
    #[default]
    All,
    /// Only the pods and directions a blocked (or unlisted) cell needs isolated, chosen for the
    /// fewest rules; pods the intent never restricts stay open to everything.
    Needed,
}

impl Isolation {
    /// `all` / `needed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::All => "all",
            Isolation::Needed => "needed",
        }
    }

    /// Parses `all` / `needed`.
    pub fn parse(s: &str) -> Option<Isolation> {
        match s {
            "all" => Some(Isolation::All),
            "needed" => Some(Isolation::Needed),
            _ => None,
        }
    }
}

/// Options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Which pods to isolate.
    pub isolation: Isolation,
}

/// What kind of obstacle a [`Note`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteKind {
    /// A blocked loopback cell: a pod always reaches itself by its own IP.
    Loopback,
    /// One connection allowed by one route and blocked by another.
    RouteConflict,
    /// One pod resolving names in some cells and not in others.
    DnsConflict,
    /// Pods with identical labels that the intent treats differently.
    SameLabels,
    /// Unlisted cells that must be allowed because a pod with the same labels has them allowed.
    UnlistedAllowed,
    /// A cell naming a pod the World does not have.
    UnknownPod,
}

/// Something in the intent that policies cannot express as asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// What kind.
    pub kind: NoteKind,
    /// A sentence.
    pub message: String,
    /// The cells it concerns (for conflicts: the cells that will not be met).
    pub cells: Vec<CellKey>,
    /// What would make it expressible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// Why synthesis could not run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SynthError {
    /// `--step` out of range.
    #[error("--step {step}: the scenario has steps 1 to {steps}")]
    BadStep {
        /// Asked for.
        step: usize,
        /// Steps the scenario has.
        steps: usize,
    },
    /// A bug: a rendered file does not load back, or not as built.
    #[error(
        "internal error: the synthesized file {file} does not load back as written (please report this): {detail}"
    )]
    RoundTrip {
        /// The file.
        file: String,
        /// The loader's diagnostics, or the difference.
        detail: String,
    },
}

/// The result: files to write and the proof.
#[derive(Clone, Debug)]
pub struct Synthesis {
    /// Where the intent came from.
    pub source: String,
    /// The isolation used.
    pub isolation: Isolation,
    /// The policies as loaded back from the files (origins `policies/<ns>.yaml:<line>`).
    pub policies: Vec<NetworkPolicy>,
    /// Relative path → text: `policies/<ns>.yaml` per namespace with policies, and
    /// `verify.yaml`, a scenario that applies them with the intent as its expectations.
    pub files: BTreeMap<String, String>,
    /// The engine's verdict, cell by cell.
    pub proof: Proof,
    /// What the intent asks that policies cannot express as asked.
    pub notes: Vec<Note>,
}

/// The verification scenario's file name in [`Synthesis::files`].
pub const VERIFY_FILE: &str = "verify.yaml";

/// Synthesizes and proves the policies for `intent`.
///
/// # Errors
/// Only [`SynthError::RoundTrip`], a bug: an intent that cannot be expressed is a successful
/// synthesis whose [`Proof`] names the unmet cells.
pub fn synthesize(intent: &Intent, opts: &Options) -> Result<Synthesis, SynthError> {
    let m = model::Model::new(intent);
    let docs = build::assemble(&m, intent, opts.isolation);
    let mut files = BTreeMap::new();
    let mut built = Vec::new();
    for (ns, ds) in &docs {
        let path = format!("policies/{ns}.yaml");
        files.insert(path, render::policy_file(intent, ns, ds, opts.isolation));
        built.extend(ds.iter().map(|d| d.policy.clone()));
    }
    let policies = load_back(intent, &files)?;
    for (b, l) in built.iter().zip(&policies) {
        let mut l2 = l.clone();
        // Where it was read from is not what was built.
        l2.origin.clear();
        for r in l2.ingress.iter_mut().chain(l2.egress.iter_mut()).flatten() {
            r.line = 0;
        }
        if *b != l2 {
            return Err(SynthError::RoundTrip {
                file: format!("policies/{}.yaml", b.ns),
                detail: format!("policy {} reads back as {l2:?}, built as {b:?}", b.name),
            });
        }
    }
    if built.len() != policies.len() {
        return Err(SynthError::RoundTrip {
            file: "policies/".into(),
            detail: format!(
                "{} policies built, {} read back",
                built.len(),
                policies.len()
            ),
        });
    }
    let proof = prove(intent, &policies, &m.notes);
    let dns_used = policies.iter().any(|p| p.name.starts_with("allow-dns"));
    let paths: Vec<String> = files.keys().cloned().collect();
    files.insert(
        VERIFY_FILE.to_owned(),
        render::verify_scenario(intent, &paths, opts.isolation, dns_used),
    );
    Ok(Synthesis {
        source: intent.source.clone(),
        isolation: opts.isolation,
        policies,
        files,
        proof,
        notes: m.notes,
    })
}

#[cfg(test)]
mod tests;
