//! `netreach lint`: policies that are valid but probably not what their author meant.
//!
//! Pure: no IO, no Kubernetes client, no async runtime (the CLI reads the files). The rules run
//! over an engine [`World`] — namespaces, pods and labels, the policies in force with their
//! source positions (`NetworkPolicy::origin`, `Rule::line`) — so [`lint_world`] serves a scenario
//! step as well as, later, an audit of a live cluster. [`lint`] runs them on the state after each
//! step's actions ([`World::per_step`]); a finding that holds in several steps is reported once,
//! with the steps it holds in.
//!
//! Every question about what a selector, peer or port matches is asked of the policy engine
//! ([`crate::engine::query`], [`World::selecting`], [`engine::dns_egress`]); lint has no
//! matching semantics of its own.
//!
//! The rules ([`LintRule`]) and their default severities ([`LintSeverity`]):
//!
//! | rule | severity | finds |
//! |---|---|---|
//! | `ingress-from-anywhere` | warning | an ingress rule whose peers admit every source (no or empty `from`, `0.0.0.0/0`/`::/0` without `except`, `namespaceSelector: {}`), on every port or on the ports it names |
//! | `egress-to-anywhere` | warning | the same for an egress rule's destinations |
//! | `isolates-without-rules` | warning | a policy that writes rules but has none for a direction it isolates (`ingress: []`, or `policyTypes` naming a direction without rules) |
//! | `unselected-pods` | info | a namespace with policies in force where some pods are selected by none |
//! | `dns-blocked` | warning | a pod isolated for egress, with egress rules (or resolving names), whose egress does not admit the cluster DNS on 53/udp and 53/tcp |
//! | `selects-nothing` | warning | a policy whose podSelector selects no pod in its namespace |
//! | `selector-label-unset` | error | a peer's namespaceSelector/podSelector requires a label key no namespace/pod carries |
//! | `dead-named-port` | error | a named port in a rule that no pod the rule can concern declares |
//!
//! Errors are near-certain mistakes (a part of a policy that can match nothing); warnings are
//! probable mistakes or risks that are sometimes intended; info is worth knowing and often
//! intended. Errors and warnings fail `netreach lint`'s exit code, info never does;
//! [`LintReport::set_severity`] (`--deny`, `--allow`) changes a rule's severity.

mod anywhere;
mod dns;
mod isolation;
mod labels;
mod ports;
mod report;

pub use report::{
    Finding, LintReport, LintSeverity, ScenarioLint, StepRef, render_text, split_origin, steps_text,
};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::engine::{self, World};
use crate::model::{PodId, Scenario, Target, Via};
use crate::policy::NetworkPolicy;

/// A lint rule; its stable name is printed as `lint::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LintRule {
    /// An ingress rule whose peers admit every source.
    IngressFromAnywhere,
    /// An egress rule whose peers admit every destination.
    EgressToAnywhere,
    /// A policy isolating a direction it writes no rules for.
    IsolatesWithoutRules,
    /// Pods of a namespace with policies that no policy selects.
    UnselectedPods,
    /// A pod isolated for egress without DNS on 53/udp and 53/tcp.
    DnsBlocked,
    /// A policy whose podSelector selects no pod.
    SelectsNothing,
    /// A peer selector on a label key nothing carries.
    SelectorLabelUnset,
    /// A named port no relevant pod declares.
    DeadNamedPort,
}

impl LintRule {
    /// Every rule.
    pub const ALL: [LintRule; 8] = [
        LintRule::IngressFromAnywhere,
        LintRule::EgressToAnywhere,
        LintRule::IsolatesWithoutRules,
        LintRule::UnselectedPods,
        LintRule::DnsBlocked,
        LintRule::SelectsNothing,
        LintRule::SelectorLabelUnset,
        LintRule::DeadNamedPort,
    ];

    /// The stable name (`egress-to-anywhere`).
    pub fn name(self) -> &'static str {
        match self {
            LintRule::IngressFromAnywhere => "ingress-from-anywhere",
            LintRule::EgressToAnywhere => "egress-to-anywhere",
            LintRule::IsolatesWithoutRules => "isolates-without-rules",
            LintRule::UnselectedPods => "unselected-pods",
            LintRule::DnsBlocked => "dns-blocked",
            LintRule::SelectsNothing => "selects-nothing",
            LintRule::SelectorLabelUnset => "selector-label-unset",
            LintRule::DeadNamedPort => "dead-named-port",
        }
    }

    /// The severity its findings have unless `--deny`/`--allow` says otherwise.
    pub fn default_severity(self) -> LintSeverity {
        match self {
            LintRule::SelectorLabelUnset | LintRule::DeadNamedPort => LintSeverity::Error,
            LintRule::IngressFromAnywhere
            | LintRule::EgressToAnywhere
            | LintRule::IsolatesWithoutRules
            | LintRule::DnsBlocked
            | LintRule::SelectsNothing => LintSeverity::Warning,
            LintRule::UnselectedPods => LintSeverity::Info,
        }
    }

    /// Parses the stable name, with or without the `lint::` prefix.
    pub fn from_name(name: &str) -> Option<LintRule> {
        let name = name.strip_prefix("lint::").unwrap_or(name);
        LintRule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// What replaced a rule that no longer exists, for command lines written against it.
    pub fn renamed(name: &str) -> Option<&'static str> {
        match name.strip_prefix("lint::").unwrap_or(name) {
            "allow-all-rule" => Some("ingress-from-anywhere and egress-to-anywhere"),
            _ => None,
        }
    }
}

impl fmt::Display for LintRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lint::{}", self.name())
    }
}

/// A finding in one [`World`], before it is merged across steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorldFinding {
    /// Which rule.
    pub rule: LintRule,
    /// The policy, `ns/name`.
    pub policy: String,
    /// Where the finding points, `file:line`: the rule it is about, or the policy.
    pub origin: String,
    /// What is wrong. Findings merge across steps when rule, policy, origin and message agree,
    /// so it holds only what identifies the finding.
    pub message: String,
    /// What would be right; details that may change from step to step go here.
    pub help: String,
}

impl WorldFinding {
    fn new(
        rule: LintRule,
        np: &NetworkPolicy,
        origin: String,
        message: String,
        help: String,
    ) -> WorldFinding {
        WorldFinding {
            rule,
            policy: np.reference().to_string(),
            origin,
            message,
            help,
        }
    }
}

/// What a world does not say but a caller may know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// Pods known to resolve names (a scenario's resolution cells and connections `via: dns`),
    /// with an example and how many such cells each has.
    pub resolvers: BTreeMap<PodId, (String, usize)>,
    /// Label keys some namespace carries at some time (a scenario's other steps): a selector on
    /// one of them is waiting for a relabel, not misspelt (`selector-label-unset`).
    pub namespace_keys: BTreeSet<String>,
    /// The same for pods.
    pub pod_keys: BTreeSet<String>,
}

impl Hints {
    /// What a scenario says: which pods it probes names from, which label keys its steps set.
    pub fn of(s: &Scenario) -> Hints {
        let mut resolvers: BTreeMap<PodId, (String, usize)> = BTreeMap::new();
        for c in &s.all_cells() {
            if matches!(c.to, Target::Name(_)) || c.via == Some(Via::Dns) {
                resolvers
                    .entry(c.from.clone())
                    .and_modify(|e| e.1 += 1)
                    .or_insert_with(|| (c.to.to_string(), 1));
            }
        }
        let mut namespace_keys = BTreeSet::new();
        let mut pod_keys = BTreeSet::new();
        for w in World::per_step(s) {
            namespace_keys.extend(w.namespaces.values().flat_map(|l| l.keys().cloned()));
            pod_keys.extend(w.pods.values().flat_map(|p| p.labels.keys().cloned()));
        }
        Hints {
            resolvers,
            namespace_keys,
            pod_keys,
        }
    }
}

/// Every rule over one world: scenario steps and audits of live clusters alike.
pub fn lint_world(w: &World, hints: &Hints) -> Vec<WorldFinding> {
    let mut out = Vec::new();
    for np in w.policies.values() {
        anywhere::rules_from_anywhere(np, &mut out);
        isolation::isolates_without_rules(np, &mut out);
        isolation::selects_nothing(w, np, &mut out);
        labels::selector_label_unset(w, np, hints, &mut out);
        ports::dead_named_ports(w, np, &mut out);
    }
    isolation::unselected_pods(w, &mut out);
    dns::dns_blocked(w, hints, &mut out);
    out
}

/// Lints a scenario: every rule, every step; each finding once, with the steps it holds in,
/// ordered by file, line and rule.
pub fn lint(s: &Scenario) -> Vec<Finding> {
    let hints = Hints::of(s);
    let mut out: Vec<Finding> = Vec::new();
    for (step, w) in s.steps.iter().zip(World::per_step(s)) {
        let at = StepRef {
            index: step.index,
            name: step.name.clone(),
        };
        for d in lint_world(&w, &hints) {
            let same = out.iter_mut().find(|f| {
                f.rule == d.rule
                    && f.policy == d.policy
                    && f.origin == d.origin
                    && f.message == d.message
            });
            match same {
                Some(f) => {
                    if f.steps.last().is_none_or(|s| s.index != at.index) {
                        f.steps.push(at.clone());
                    }
                }
                None => out.push(Finding::new(d, at.clone())),
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.file, a.line, a.rule, &a.message).cmp(&(&b.file, b.line, b.rule, &b.message))
    });
    out
}

/// `x/a, x/b` with at most six names.
fn list<T: fmt::Display>(items: &[T]) -> String {
    const SHOWN: usize = 6;
    let mut s = items
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

/// `ns/pod {k=v, ...}`.
fn pod_with_labels(p: &engine::PodState) -> String {
    let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{} {{{}}}", p.id, labels.join(", "))
}

#[cfg(test)]
mod tests;
