//! `netreach explain`: one connection, the specification's verdict at each step, and why.
//!
//! Pure: takes a validated scenario and a query, asks the [`crate::engine`], renders text or
//! JSON. The scenario's own expectation for the cell (when it probes it) is shown next to the
//! verdict, so a contradiction is visible where it is explained.

use std::fmt::Write as _;

use serde::Serialize;
use thiserror::Error;

use crate::engine::query::{self, NearMiss};
use crate::engine::{self, Explanation, Side, Spec, Tri, World};
use crate::model::{CellKey, PodId, PortProto, Protocol, Scenario, Target, Verdict, Via};

/// Why a query cannot be answered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExplainError {
    /// `--from` is not a declared pod.
    #[error("--from {0}: no such pod in the scenario (declared: {1})")]
    UnknownFrom(String, String),
    /// `--to` is not a declared pod, external endpoint or `dns:` name.
    #[error(
        "--to {0}: no such pod or external endpoint in the scenario (declared: {1}); write ns/pod, ext:<name> or dns:<name>"
    )]
    UnknownTo(String, String),
    /// `--port` cannot be parsed.
    #[error("--port {0}: write a port like 80/tcp, 53/udp or 80 (TCP)")]
    BadPort(String),
    /// The target serves no such port.
    #[error("{target} does not serve {port} (it serves {served})")]
    NotServed {
        /// The target.
        target: String,
        /// The port asked for.
        port: String,
        /// What it serves.
        served: String,
    },
    /// `--step` is out of range.
    #[error("--step {0}: the scenario has steps 1 to {1}")]
    BadStep(usize, usize),
    /// `--via` with something that is not a pod.
    #[error("--via {0} needs a pod target; external endpoints are reached by address")]
    BadVia(String),
    /// `--target` is not a declared pod.
    #[error("--target {0}: no such pod (declared: {1}); write ns/pod")]
    UnknownTarget(String, String),
}

/// What to explain.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Source pod, `ns/pod`.
    pub from: String,
    /// Target: `ns/pod`, `ext:<name>` or `dns:<name>`.
    pub to: String,
    /// `80/tcp`; absent: every port the target serves.
    pub port: Option<String>,
    /// Route (default `ip`).
    pub via: Option<Via>,
    /// 1-based step; absent: every step.
    pub step: Option<usize>,
}

/// One answer.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// Step index (1-based).
    pub step: usize,
    /// Step name.
    pub step_name: String,
    /// The engine's verdict and reasons; every rule hit points at its rule's line.
    pub explanation: Explanation,
    /// For each side that blocks: the rules of its policies that admit the connection's peer
    /// but not its port, or its port but not its peer, and why the other part missed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub near_misses: Vec<NearMiss>,
    /// The scenario's expectation for the cell, when it probes it: verdict and origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<(Verdict, String)>,
}

/// Answers a query.
///
/// # Errors
/// When the query names something the scenario does not have.
pub fn answer(s: &Scenario, q: &Query) -> Result<Vec<Answer>, ExplainError> {
    let pods = || {
        s.pods
            .iter()
            .map(|p| p.id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let from = q
        .from
        .split_once('/')
        .map(|(n, p)| PodId::new(n, p))
        .filter(|p| s.pod(p).is_some())
        .ok_or_else(|| ExplainError::UnknownFrom(q.from.clone(), pods()))?;
    let to = if let Some(name) = q.to.strip_prefix("dns:") {
        Target::Name(name.to_owned())
    } else if let Some(x) = q.to.strip_prefix("ext:") {
        if s.external(x).is_none() {
            return Err(ExplainError::UnknownTo(q.to.clone(), pods()));
        }
        Target::External(x.to_owned())
    } else {
        let p =
            q.to.split_once('/')
                .map(|(n, p)| PodId::new(n, p))
                .filter(|p| s.pod(p).is_some())
                .ok_or_else(|| ExplainError::UnknownTo(q.to.clone(), pods()))?;
        Target::Pod(p)
    };
    if q.via.is_some_and(|v| v != Via::Ip) && !matches!(to, Target::Pod(_)) {
        return Err(ExplainError::BadVia(
            q.via.map(Via::as_str).unwrap_or_default().to_owned(),
        ));
    }
    let cells: Vec<CellKey> = if let Target::Name(_) = to {
        vec![CellKey {
            from: from.clone(),
            to: to.clone(),
            port: None,
            via: None,
        }]
    } else {
        let served: Vec<PortProto> = s.served_ports(&to).iter().map(|p| p.port).collect();
        let ports = match &q.port {
            None => served,
            Some(txt) => {
                let pp = parse_port(txt).ok_or_else(|| ExplainError::BadPort(txt.clone()))?;
                if !served.contains(&pp) {
                    return Err(ExplainError::NotServed {
                        target: to.to_string(),
                        port: pp.to_string(),
                        served: served
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
                vec![pp]
            }
        };
        ports
            .into_iter()
            .map(|p| CellKey {
                from: from.clone(),
                to: to.clone(),
                port: Some(p),
                via: Some(q.via.unwrap_or(Via::Ip)),
            })
            .collect()
    };
    let worlds = World::per_step(s);
    let steps: Vec<usize> = match q.step {
        Some(n) if n == 0 || n > s.steps.len() => {
            return Err(ExplainError::BadStep(n, s.steps.len()));
        }
        Some(n) => vec![n],
        None => (1..=s.steps.len()).collect(),
    };
    let mut out = Vec::new();
    for n in steps {
        let step = &s.steps[n - 1];
        let w = &worlds[n - 1];
        for c in &cells {
            let mut explanation = engine::explain(w, c);
            query::locate_rules(w, &mut explanation);
            let blocked: Vec<&str> = [&explanation.dns, &explanation.egress, &explanation.ingress]
                .into_iter()
                .flatten()
                .filter(|side| side.verdict == Tri::No)
                .map(|side| side.direction)
                .collect();
            let near_misses = query::near_misses(w, c)
                .into_iter()
                .filter(|m| blocked.contains(&m.side))
                .collect();
            out.push(Answer {
                step: n,
                step_name: step.name.clone(),
                explanation,
                near_misses,
                expected: step
                    .expected
                    .cells
                    .get(c)
                    .map(|e| (e.verdict, e.origin.to_string())),
            });
        }
    }
    Ok(out)
}

/// What selects one pod at one step (`explain --target`).
#[derive(Clone, Debug, Serialize)]
pub struct TargetAnswer {
    /// Step index (1-based).
    pub step: usize,
    /// Step name.
    pub step_name: String,
    /// The pod.
    pub pod: String,
    /// The pod's labels at this step.
    pub labels: std::collections::BTreeMap<String, String>,
    /// What decides its incoming connections.
    pub ingress: Selection,
    /// What decides its outgoing connections.
    pub egress: Selection,
}

/// The policies that select a pod for one direction, with each of their rules.
#[derive(Clone, Debug, Serialize)]
pub struct Selection {
    /// `ingress` or `egress`.
    pub direction: &'static str,
    /// Empty: the pod is not isolated in this direction, everything is allowed.
    pub policies: Vec<SelectingPolicy>,
}

/// A policy that selects the pod, and what its rules of that direction admit.
#[derive(Clone, Debug, Serialize)]
pub struct SelectingPolicy {
    /// `ns/name`.
    pub policy: String,
    /// Where it was written (`file:line`).
    pub origin: String,
    /// Its podSelector, in words.
    pub selector: String,
    /// Its rules of this direction (none: it admits nothing).
    pub rules: Vec<RuleSummary>,
}

/// One rule in words.
#[derive(Clone, Debug, Serialize)]
pub struct RuleSummary {
    /// 1-based index in its list.
    pub rule: usize,
    /// `file:line` of the rule.
    pub origin: String,
    /// Its peers in words (`every peer` when it has none).
    pub peers: Vec<String>,
    /// Its ports in words.
    pub ports: String,
}

/// Every policy that selects `pod` (`ns/pod`), per direction and step, with each rule.
///
/// # Errors
/// When the pod is not declared or the step is out of range.
pub fn target(
    s: &Scenario,
    pod: &str,
    step: Option<usize>,
) -> Result<Vec<TargetAnswer>, ExplainError> {
    use crate::engine::{describe_peer, describe_selector};
    use crate::policy::PolicyType;
    let id = pod
        .split_once('/')
        .map(|(n, p)| PodId::new(n, p))
        .filter(|p| s.pod(p).is_some())
        .ok_or_else(|| {
            let pods: Vec<String> = s.pods.iter().map(|p| p.id.to_string()).collect();
            ExplainError::UnknownTarget(pod.to_owned(), pods.join(", "))
        })?;
    let steps: Vec<usize> = match step {
        Some(n) if n == 0 || n > s.steps.len() => {
            return Err(ExplainError::BadStep(n, s.steps.len()));
        }
        Some(n) => vec![n],
        None => (1..=s.steps.len()).collect(),
    };
    let worlds = World::per_step(s);
    let selection = |w: &World, dir: PolicyType| Selection {
        direction: if dir == PolicyType::Ingress {
            "ingress"
        } else {
            "egress"
        },
        policies: w
            .selecting(&id, dir)
            .into_iter()
            .map(|np| SelectingPolicy {
                policy: np.reference().to_string(),
                origin: np.origin.clone(),
                selector: describe_selector(&np.pod_selector),
                rules: query::rules_of(np, dir)
                    .iter()
                    .enumerate()
                    .map(|(i, r)| RuleSummary {
                        rule: i + 1,
                        origin: query::rule_origin(np, r),
                        peers: match r.peers.as_deref() {
                            None | Some([]) => vec!["every peer".into()],
                            Some(ps) => ps.iter().map(describe_peer).collect(),
                        },
                        ports: query::describe_ports(r),
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok(steps
        .into_iter()
        .map(|n| {
            let w = &worlds[n - 1];
            TargetAnswer {
                step: n,
                step_name: s.steps[n - 1].name.clone(),
                pod: id.to_string(),
                labels: w
                    .pods
                    .get(&id)
                    .map(|p| p.labels.clone())
                    .unwrap_or_default(),
                ingress: selection(w, PolicyType::Ingress),
                egress: selection(w, PolicyType::Egress),
            }
        })
        .collect())
}

/// Renders `--target` answers as text, one block per step.
pub fn render_target(answers: &[TargetAnswer]) -> String {
    let mut s = String::new();
    for a in answers {
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "step {} \"{}\": {} {{{}}}",
            a.step,
            a.step_name,
            a.pod,
            labels.join(", ")
        );
        for sel in [&a.ingress, &a.egress] {
            let (from, verb) = if sel.direction == "ingress" {
                ("from", "in")
            } else {
                ("to", "out")
            };
            if sel.policies.is_empty() {
                let _ = writeln!(
                    s,
                    "  {}: not isolated: no policy selects it for {}, so every connection {verb} is allowed",
                    sel.direction, sel.direction
                );
                continue;
            }
            let _ = writeln!(
                s,
                "  {}: isolated by {} polic{}; a connection {verb} is allowed only if one of these rules admits it:",
                sel.direction,
                sel.policies.len(),
                if sel.policies.len() == 1 { "y" } else { "ies" }
            );
            for p in &sel.policies {
                let _ = writeln!(
                    s,
                    "    {} ({}), podSelector {}",
                    p.policy, p.origin, p.selector
                );
                if p.rules.is_empty() {
                    let _ = writeln!(s, "      no {} rules: admits nothing", sel.direction);
                }
                for r in &p.rules {
                    let ports = if r.ports == "every port" {
                        r.ports.clone()
                    } else {
                        format!("ports {}", r.ports)
                    };
                    let _ = writeln!(
                        s,
                        "      rule {} ({}): {from} {}; {ports}",
                        r.rule,
                        r.origin,
                        r.peers.join(" OR ")
                    );
                }
            }
        }
        s.push('\n');
    }
    s
}

fn parse_port(s: &str) -> Option<PortProto> {
    let (n, p) = s.split_once('/').unwrap_or((s, "tcp"));
    Some(PortProto {
        port: n.parse().ok().filter(|n| *n > 0)?,
        protocol: Protocol::parse(p)?,
    })
}

/// Renders answers as text, one block per cell and step.
pub fn render(answers: &[Answer]) -> String {
    let mut s = String::new();
    for a in answers {
        let e = &a.explanation;
        let _ = writeln!(
            s,
            "step {} \"{}\": {}: {}",
            a.step,
            a.step_name,
            e.cell,
            e.verdict.as_str().to_uppercase()
        );
        if e.loopback {
            let _ = writeln!(
                s,
                "  loopback: a pod reaching itself by its own IP is always allowed"
            );
        }
        for side in [&e.dns, &e.egress, &e.ingress].into_iter().flatten() {
            render_side(&mut s, side, &a.near_misses);
        }
        if e.ingress.is_some() && e.egress.is_some() {
            let _ = writeln!(
                s,
                "  => {}",
                match e.verdict {
                    Spec::Allow =>
                        "allowed: both the source's egress and the destination's ingress admit it",
                    Spec::Block =>
                        "blocked: a connection needs both the source's egress and the destination's ingress to admit it",
                    Spec::Unresolved =>
                        "unresolved: the name does not resolve, so no connection is tried",
                    Spec::Unspecified =>
                        "unspecified: the answer depends on the implementation or on addresses",
                }
            );
        }
        match &a.expected {
            Some((v, origin)) => {
                let verdict = match e.verdict.expectation() {
                    None => "the specification does not decide it",
                    Some(spec) if spec == *v => "agrees",
                    Some(_) => "CONTRADICTS the specification",
                };
                let _ = writeln!(
                    s,
                    "  scenario expects: {} ({origin}) — {verdict}",
                    v.as_str()
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "  scenario expects: nothing (the scenario does not probe this cell)"
                );
            }
        }
        s.push('\n');
    }
    s
}

fn render_side(s: &mut String, side: &Side, near_misses: &[NearMiss]) {
    let _ = writeln!(s, "  {}", side.summary);
    for h in &side.allowed_by {
        let maybe = if h.certain == Tri::Unknown {
            " (only if the unspecified part goes this way)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "    {} {} rule {} ({}): {}{maybe}",
            h.policy, h.direction, h.rule, h.origin, h.detail
        );
    }
    if side.verdict == Tri::No {
        let dir = if side.direction == "dns" {
            "egress"
        } else {
            side.direction
        };
        for p in &side.isolated_by {
            let _ = writeln!(s, "    {p}: no {dir} rule admits it");
            for m in near_misses
                .iter()
                .filter(|m| m.side == side.direction && m.policy == *p)
            {
                let _ = writeln!(
                    s,
                    "      near miss: {} rule {} ({}): {}, but {}",
                    m.direction, m.rule, m.origin, m.matched, m.missed
                );
            }
        }
    }
    for w in &side.unknown_because {
        let _ = writeln!(s, "    unspecified: {w}");
    }
}
