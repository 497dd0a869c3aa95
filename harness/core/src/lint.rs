//! `netreach lint`: policies that are valid but probably not what their author meant.
//!
//! Pure: a validated [`Scenario`] in, [`Finding`]s out; no IO, no Kubernetes client, no async
//! runtime (the CLI reads the files). Every rule is evaluated on the state after each step's
//! actions ([`World::per_step`]); a finding that holds in several steps is reported once, with
//! the steps it holds in. The rules ([`LintRule`]):
//!
//! - `allow-all-rule`: an ingress or egress rule that admits every peer on every port.
//! - `unselected-pods`: a namespace with policies in force where some pods are selected by none.
//! - `dns-blocked`: an egress policy isolates a pod that resolves names, and the egress of the
//!   policies selecting it does not admit 53/udp and 53/tcp to the cluster DNS (decided by the
//!   policy engine, [`engine::dns_egress`]).
//! - `selects-nothing`: a policy whose podSelector selects no pod in its namespace.
//! - `dead-named-port`: a named port in a rule that no pod the rule can concern declares.
//!
//! Findings are warnings: each names the policy and where it was written (`file:line`), says
//! what is wrong and what would be right.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use crate::diag::Severity;
use crate::engine::{self, DNS_NAMESPACE, DNS_POD_LABEL, PodState, Tri, World};
use crate::exit;
use crate::model::{PodId, Protocol, Scenario, Target, Via};
use crate::policy::{
    AddrExpr, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Peer, PolicyType, PortValue, Rule,
};

/// A lint rule; its stable name is printed as `lint::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LintRule {
    /// A rule that admits every peer on every port.
    AllowAllRule,
    /// Pods of a namespace with policies that no policy selects.
    UnselectedPods,
    /// A pod that resolves names is isolated for egress without DNS.
    DnsBlocked,
    /// A policy whose podSelector selects no pod.
    SelectsNothing,
    /// A named port no relevant pod declares.
    DeadNamedPort,
}

impl LintRule {
    /// Every rule.
    pub const ALL: [LintRule; 5] = [
        LintRule::AllowAllRule,
        LintRule::UnselectedPods,
        LintRule::DnsBlocked,
        LintRule::SelectsNothing,
        LintRule::DeadNamedPort,
    ];

    /// The stable name (`allow-all-rule`).
    pub fn name(self) -> &'static str {
        match self {
            LintRule::AllowAllRule => "allow-all-rule",
            LintRule::UnselectedPods => "unselected-pods",
            LintRule::DnsBlocked => "dns-blocked",
            LintRule::SelectsNothing => "selects-nothing",
            LintRule::DeadNamedPort => "dead-named-port",
        }
    }

    /// Parses the stable name, with or without the `lint::` prefix.
    pub fn from_name(name: &str) -> Option<LintRule> {
        let name = name.strip_prefix("lint::").unwrap_or(name);
        LintRule::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for LintRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lint::{}", self.name())
    }
}

/// A step a finding holds in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepRef {
    /// 1-based.
    pub index: usize,
    /// Its name.
    pub name: String,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which rule.
    pub rule: LintRule,
    /// Always a warning: the scenario is valid, the policy probably not what was meant.
    pub severity: Severity,
    /// The policy, `ns/name`.
    pub policy: String,
    /// Where it was written, `file:line`.
    pub origin: String,
    /// The file part of `origin`.
    pub file: String,
    /// The line part of `origin` (0 when unknown).
    pub line: usize,
    /// The steps (after their actions) in which it holds, in order.
    pub steps: Vec<StepRef>,
    /// What is wrong.
    pub message: String,
    /// What would be right.
    pub help: String,
}

/// The findings of one scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScenarioLint {
    /// The scenario file.
    pub scenario: String,
    /// Findings, by file and line.
    pub findings: Vec<Finding>,
}

impl ScenarioLint {
    /// Lints `s`.
    pub fn of(s: &Scenario) -> ScenarioLint {
        ScenarioLint {
            scenario: s.path.display().to_string(),
            findings: lint(s),
        }
    }
}

/// What `netreach lint` prints as JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// Valid scenarios and their findings.
    pub scenarios: Vec<ScenarioLint>,
    /// Scenarios that did not validate (not linted).
    pub invalid: Vec<String>,
}

impl LintReport {
    /// Drops the findings of `rules` (`netreach lint --skip`).
    pub fn skip(&mut self, rules: &[LintRule]) {
        for sc in &mut self.scenarios {
            sc.findings.retain(|f| !rules.contains(&f.rule));
        }
    }

    /// Findings in all scenarios.
    pub fn finding_count(&self) -> usize {
        self.scenarios.iter().map(|s| s.findings.len()).sum()
    }

    /// [`exit::INVALID`] if a scenario is invalid, else [`exit::MISMATCH`] if anything was
    /// found, else [`exit::SUCCESS`].
    pub fn exit_code(&self) -> i32 {
        if !self.invalid.is_empty() {
            exit::INVALID
        } else if self.finding_count() > 0 {
            exit::MISMATCH
        } else {
            exit::SUCCESS
        }
    }
}

/// A finding before it is merged across steps. Findings merge when rule, policy, origin and
/// message agree, so messages hold only what identifies the finding; details that may change
/// from step to step (labels, lists of pods) go to `help`, which is the first step's.
struct Draft<'a> {
    rule: LintRule,
    policy: &'a NetworkPolicy,
    message: String,
    help: String,
}

/// Lints a scenario: every rule, every step; each finding once, with the steps it holds in,
/// ordered by file, line and rule.
pub fn lint(s: &Scenario) -> Vec<Finding> {
    let resolvers = resolvers(s);
    let mut out: Vec<Finding> = Vec::new();
    for (step, w) in s.steps.iter().zip(World::per_step(s)) {
        let mut drafts = Vec::new();
        for np in w.policies.values() {
            allow_all_rules(np, &mut drafts);
            selects_nothing(&w, np, &mut drafts);
            dns_blocked(&w, np, &resolvers, &mut drafts);
            dead_named_ports(&w, np, &mut drafts);
        }
        unselected_pods(&w, &mut drafts);
        let at = StepRef {
            index: step.index,
            name: step.name.clone(),
        };
        for d in drafts {
            let policy = d.policy.reference().to_string();
            let same = out.iter_mut().find(|f| {
                f.rule == d.rule
                    && f.policy == policy
                    && f.origin == d.policy.origin
                    && f.message == d.message
            });
            match same {
                Some(f) => {
                    if f.steps.last().is_none_or(|s| s.index != at.index) {
                        f.steps.push(at.clone());
                    }
                }
                None => {
                    let (file, line) = split_origin(&d.policy.origin);
                    out.push(Finding {
                        rule: d.rule,
                        severity: Severity::Warning,
                        policy,
                        origin: d.policy.origin.clone(),
                        file,
                        line,
                        steps: vec![at.clone()],
                        message: d.message,
                        help: d.help,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.file, a.line, a.rule, &a.message).cmp(&(&b.file, b.line, b.rule, &b.message))
    });
    out
}

/// `file:line` → (file, line); the line is 0 when the origin has none.
fn split_origin(origin: &str) -> (String, usize) {
    match origin.rsplit_once(':') {
        Some((file, line)) if line.parse::<usize>().is_ok() => {
            (file.to_owned(), line.parse().unwrap_or(0))
        }
        _ => (origin.to_owned(), 0),
    }
}

fn direction_word(d: PolicyType) -> &'static str {
    match d {
        PolicyType::Ingress => "ingress",
        PolicyType::Egress => "egress",
    }
}

/// The rules of `np` that take effect, per direction, with their 1-based index.
fn effective_rules(np: &NetworkPolicy) -> Vec<(PolicyType, usize, &Rule)> {
    let types = np.effective_types();
    let mut out = Vec::new();
    for (dir, rules) in [
        (PolicyType::Ingress, &np.ingress),
        (PolicyType::Egress, &np.egress),
    ] {
        if !types.contains(&dir) {
            continue;
        }
        for (i, r) in rules.iter().flatten().enumerate() {
            out.push((dir, i + 1, r));
        }
    }
    out
}

fn is_empty_selector(s: &LabelSelector) -> bool {
    s.match_labels.is_empty() && s.match_expressions.is_empty()
}

/// Whether a peer matches everything: `namespaceSelector: {}` without a narrowing podSelector,
/// or an ipBlock of the whole address space (`0.0.0.0/0`, `::/0`) without `except`.
fn peer_is_everything(p: &Peer) -> bool {
    match p {
        Peer::Selectors {
            pods,
            namespaces: Some(ns),
        } => is_empty_selector(ns) && pods.as_ref().is_none_or(is_empty_selector),
        Peer::Selectors {
            namespaces: None, ..
        } => false,
        Peer::IpBlock(b) => {
            b.except.is_empty() && matches!(b.cidr, AddrExpr::Literal(n) if n.prefix_len() == 0)
        }
    }
}

/// Why `rule` admits everything, or `None` when it does not.
fn admits_everything(dir: PolicyType, rule: &Rule) -> Option<String> {
    if rule.ports.as_ref().is_some_and(|p| !p.is_empty()) {
        return None;
    }
    let field = match dir {
        PolicyType::Ingress => "from",
        PolicyType::Egress => "to",
    };
    match rule.peers.as_deref() {
        None => Some(format!("it has neither `{field}` nor `ports`")),
        Some([]) => Some(format!("its `{field}` and `ports` are empty")),
        Some(peers) => peers
            .iter()
            .enumerate()
            .find(|(_, p)| peer_is_everything(p))
            .map(|(i, p)| {
                format!(
                    "its peer {} ({}) matches everything and it has no `ports`",
                    i + 1,
                    engine::describe_peer(p)
                )
            }),
    }
}

fn allow_all_rules<'a>(np: &'a NetworkPolicy, out: &mut Vec<Draft<'a>>) {
    for (dir, i, rule) in effective_rules(np) {
        let Some(why) = admits_everything(dir, rule) else {
            continue;
        };
        let (d, who) = match dir {
            PolicyType::Ingress => ("ingress", "every source"),
            PolicyType::Egress => ("egress", "every destination"),
        };
        out.push(Draft {
            rule: LintRule::AllowAllRule,
            policy: np,
            message: format!(
                "{d} rule {i} of {} admits {who} on every port: {why}; every other {d} rule for the pods it selects becomes irrelevant",
                np.reference()
            ),
            help: format!(
                "an allow-all can be intentional (then keep it, and say so in a comment); otherwise list the peers that need access in `{}` and the ports they use in `ports`",
                if dir == PolicyType::Ingress { "from" } else { "to" }
            ),
        });
    }
}

/// `ns/pod {k=v, ...}`.
fn pod_with_labels(p: &PodState) -> String {
    let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{} {{{}}}", p.id, labels.join(", "))
}

fn pods_in<'w>(w: &'w World, ns: &str) -> Vec<&'w PodState> {
    w.pods.values().filter(|p| p.id.ns == ns).collect()
}

fn selects_nothing<'a>(w: &World, np: &'a NetworkPolicy, out: &mut Vec<Draft<'a>>) {
    if !w.selected_pods(np).is_empty() {
        return;
    }
    let pods = pods_in(w, &np.ns);
    let there = if pods.is_empty() {
        format!("namespace {} has no pods", np.ns)
    } else {
        format!(
            "the pods of namespace {} are {}",
            np.ns,
            pods.iter()
                .map(|p| pod_with_labels(p))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    out.push(Draft {
        rule: LintRule::SelectsNothing,
        policy: np,
        message: format!(
            "{}'s podSelector {} selects no pod in namespace {}, so the policy has no effect",
            np.reference(),
            engine::describe_selector(&np.pod_selector),
            np.ns
        ),
        help: format!("make the podSelector match the labels of the pods the policy is meant for (check keys and values for typos), or delete the policy; {there}"),
    });
}

fn unselected_pods<'a>(w: &'a World, out: &mut Vec<Draft<'a>>) {
    let mut by_ns: BTreeMap<&str, Vec<&NetworkPolicy>> = BTreeMap::new();
    for np in w.policies.values() {
        by_ns.entry(np.ns.as_str()).or_default().push(np);
    }
    for (ns, policies) in by_ns {
        let unselected: Vec<&PodState> = pods_in(w, ns)
            .into_iter()
            .filter(|p| !policies.iter().any(|np| np.pod_selector.matches(&p.labels)))
            .collect();
        if unselected.is_empty() {
            continue;
        }
        let names: Vec<String> = policies.iter().map(|p| p.reference().to_string()).collect();
        let pods: Vec<String> = unselected.iter().map(|p| p.id.to_string()).collect();
        let labels: Vec<String> = unselected.iter().map(|p| pod_with_labels(p)).collect();
        out.push(Draft {
            rule: LintRule::UnselectedPods,
            policy: policies[0],
            message: format!(
                "namespace {ns} has {} in force ({}), but no policy selects {}: {} isolated in neither direction and {} everything",
                if policies.len() == 1 { "a policy" } else { "policies" },
                names.join(", "),
                pods.join(", "),
                if unselected.len() == 1 { "it is" } else { "they are" },
                if unselected.len() == 1 { "accepts and sends" } else { "accept and send" },
            ),
            help: format!(
                "if they should be covered, widen a podSelector or add a default-deny policy (`podSelector: {{}}`) in namespace {ns}; if they are meant to stay open, ignore this; their labels: {}",
                labels.join(", ")
            ),
        });
    }
}

/// Pods that resolve names (resolution cells, or connections `via: dns`), with an example cell
/// and how many such cells each has.
fn resolvers(s: &Scenario) -> BTreeMap<PodId, (String, usize)> {
    let mut out: BTreeMap<PodId, (String, usize)> = BTreeMap::new();
    for c in &s.cells {
        if matches!(c.to, Target::Name(_)) || c.via == Some(Via::Dns) {
            out.entry(c.from.clone())
                .and_modify(|e| e.1 += 1)
                .or_insert_with(|| (c.to_string(), 1));
        }
    }
    out
}

fn dns_blocked<'a>(
    w: &World,
    np: &'a NetworkPolicy,
    resolvers: &BTreeMap<PodId, (String, usize)>,
    out: &mut Vec<Draft<'a>>,
) {
    if !np.effective_types().contains(&PolicyType::Egress) {
        return;
    }
    let mut parts = Vec::new();
    let mut udp_blocked = false;
    for pod in w.selected_pods(np) {
        let Some((example, n)) = resolvers.get(&pod.id) else {
            continue;
        };
        let udp = engine::dns_egress(w, &pod.id, Protocol::Udp);
        let tcp = engine::dns_egress(w, &pod.id, Protocol::Tcp);
        // Only a certain "no": an ipBlock rule to the DNS is left to the implementation.
        let blocked: Vec<&str> = [("53/udp", &udp), ("53/tcp", &tcp)]
            .into_iter()
            .filter(|(_, s)| s.verdict == Tri::No)
            .map(|(p, _)| p)
            .collect();
        if blocked.is_empty() {
            continue;
        }
        udp_blocked |= udp.verdict == Tri::No;
        let by = if *n == 1 {
            format!("it probes {example}")
        } else {
            format!("it probes {example} and {} more by name", n - 1)
        };
        parts.push(format!(
            "{} ({by}; egress isolated by {}): {} blocked",
            pod.id,
            udp.isolated_by.join(", "),
            blocked.join(" and ")
        ));
    }
    if parts.is_empty() {
        return;
    }
    let consequence = if udp_blocked {
        "without 53/udp names do not resolve"
    } else {
        "without 53/tcp answers too large for UDP (truncated) fail"
    };
    out.push(Draft {
        rule: LintRule::DnsBlocked,
        policy: np,
        message: format!(
            "{} isolates pods for egress that resolve names, and no egress rule of the policies selecting them admits both 53/udp and 53/tcp to the cluster DNS ({DNS_NAMESPACE} pods labelled {}={}): {}; {consequence}",
            np.reference(),
            DNS_POD_LABEL.0,
            DNS_POD_LABEL.1,
            parts.join("; ")
        ),
        help: format!(
            "add an egress rule `to: [{{namespaceSelector: {{matchLabels: {{{NAMESPACE_NAME_LABEL}: {DNS_NAMESPACE}}}}}, podSelector: {{matchLabels: {{{}: {}}}}}}}]` with `ports: [{{protocol: UDP, port: 53}}, {{protocol: TCP, port: 53}}]` (declare namespace {DNS_NAMESPACE} with `existing: true`)",
            DNS_POD_LABEL.0, DNS_POD_LABEL.1
        ),
    });
}

/// A namespace's labels as the engine sees them.
fn ns_labels(w: &World, ns: &str) -> BTreeMap<String, String> {
    w.namespaces
        .get(ns)
        .cloned()
        .unwrap_or_else(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())]))
}

/// Whether a selector peer of `np` matches a pod in `ns` with `labels`.
fn selectors_match(
    w: &World,
    np: &NetworkPolicy,
    pods: Option<&LabelSelector>,
    namespaces: Option<&LabelSelector>,
    ns: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let ns_ok = match namespaces {
        None => ns == np.ns,
        Some(sel) => sel.matches(&ns_labels(w, ns)),
    };
    ns_ok && pods.is_none_or(|sel| sel.matches(labels))
}

/// What an egress rule's peers may reach: scenario pods, and whether the cluster DNS.
/// ipBlocks are generous (their addresses are unknown before a run), except a full-length
/// placeholder, which names exactly one pod or external endpoint.
fn egress_candidates<'w>(
    w: &'w World,
    np: &NetworkPolicy,
    rule: &Rule,
) -> (BTreeSet<&'w PodId>, bool) {
    let all: BTreeSet<&PodId> = w.pods.keys().collect();
    let peers = match rule.peers.as_deref() {
        None | Some([]) => return (all, true),
        Some(p) => p,
    };
    let mut pods = BTreeSet::new();
    let mut dns = false;
    for peer in peers {
        match peer {
            Peer::Selectors {
                pods: ps,
                namespaces,
            } => {
                for p in w.pods.values() {
                    if selectors_match(w, np, ps.as_ref(), namespaces.as_ref(), &p.id.ns, &p.labels)
                    {
                        pods.insert(&p.id);
                    }
                }
                let dns_labels =
                    BTreeMap::from([(DNS_POD_LABEL.0.to_owned(), DNS_POD_LABEL.1.to_owned())]);
                dns |= selectors_match(
                    w,
                    np,
                    ps.as_ref(),
                    namespaces.as_ref(),
                    DNS_NAMESPACE,
                    &dns_labels,
                );
            }
            Peer::IpBlock(b) => match &b.cidr {
                AddrExpr::PodIp { pod, prefix } if *prefix == 32 || *prefix == 128 => {
                    if let Some((id, _)) = w.pods.get_key_value(pod) {
                        pods.insert(id);
                    }
                }
                AddrExpr::ExternalIp { prefix, .. } if *prefix == 32 || *prefix == 128 => {}
                _ => {
                    pods.extend(all.iter().copied());
                    dns = true;
                }
            },
        }
    }
    (pods, dns)
}

/// The cluster DNS's named ports, as the engine models them.
fn dns_serves(name: &str, protocol: Protocol) -> bool {
    matches!(
        (name, protocol),
        ("dns", Protocol::Udp) | ("dns-tcp", Protocol::Tcp)
    )
}

fn declares(p: &PodState, name: &str, protocol: Protocol) -> bool {
    p.ports
        .iter()
        .any(|sp| sp.name.as_deref() == Some(name) && sp.port.protocol == protocol)
}

/// The named ports of `protocol` that `pods` declare: `http (x/a 8080/tcp)`.
fn declared_names(pods: &[&PodState], protocol: Protocol) -> String {
    let mut v: Vec<String> = Vec::new();
    for p in pods {
        for sp in &p.ports {
            if let Some(n) = &sp.name
                && sp.port.protocol == protocol
            {
                v.push(format!("{n} ({} {})", p.id, sp.port));
            }
        }
    }
    if v.is_empty() {
        format!("no named {protocol} port")
    } else {
        v.join(", ")
    }
}

fn list_pods(pods: &[&PodState]) -> String {
    const SHOWN: usize = 6;
    let mut s = pods
        .iter()
        .take(SHOWN)
        .map(|p| p.id.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if pods.len() > SHOWN {
        let _ = write!(s, " and {} more", pods.len() - SHOWN);
    }
    s
}

fn dead_named_ports<'a>(w: &World, np: &'a NetworkPolicy, out: &mut Vec<Draft<'a>>) {
    let selected = w.selected_pods(np);
    for (dir, i, rule) in effective_rules(np) {
        let mut seen = BTreeSet::new();
        for pp in rule.ports.iter().flatten() {
            let Some(PortValue::Name(name)) = &pp.port else {
                continue;
            };
            let protocol = pp.protocol;
            if !seen.insert((name.clone(), protocol)) {
                continue;
            }
            let d = direction_word(dir);
            let (what, whose, candidates) = match dir {
                PolicyType::Ingress => {
                    // A policy that selects nothing is `selects-nothing`'s finding.
                    if selected.is_empty() || selected.iter().any(|p| declares(p, name, protocol)) {
                        continue;
                    }
                    (
                        "none of the pods it selects".to_owned(),
                        format!("the pods it selects ({})", list_pods(&selected)),
                        selected.clone(),
                    )
                }
                PolicyType::Egress => {
                    let (ids, dns) = egress_candidates(w, np, rule);
                    let pods: Vec<&PodState> =
                        ids.iter().filter_map(|id| w.pods.get(*id)).collect();
                    if (dns && dns_serves(name, protocol))
                        || pods.iter().any(|p| declares(p, name, protocol))
                    {
                        continue;
                    }
                    let what = if rule.peers.as_ref().is_none_or(Vec::is_empty) {
                        "no pod of the scenario (the rule has no peers)"
                    } else {
                        "none of the pods its peers match"
                    };
                    let whose = if pods.is_empty() {
                        "its peers match no pod of the scenario (named ports resolve against destination pods only, never external endpoints)".to_owned()
                    } else {
                        format!("the pods its peers match ({})", list_pods(&pods))
                    };
                    (what.to_owned(), whose, pods)
                }
            };
            let upper = protocol.as_str().to_uppercase();
            let declared = if candidates.is_empty() {
                whose
            } else {
                format!("{whose}: {}", declared_names(&candidates, protocol))
            };
            out.push(Draft {
                rule: LintRule::DeadNamedPort,
                policy: np,
                message: format!(
                    "{d} rule {i} of {} allows named port `{name}` ({upper}), but {what} declares a {upper} port named `{name}`, so this port admits nothing",
                    np.reference()
                ),
                help: format!(
                    "a named port resolves against the destination pod's declared ports: use a name (or number) that pod declares with protocol {upper}, or declare `{{port: <n>, protocol: {upper}, name: {name}}}` on it; {declared}"
                ),
            });
        }
    }
}

/// `steps 2-4, 6` / `step 3 \`name\``.
pub fn steps_text(steps: &[StepRef]) -> String {
    if let [one] = steps {
        return format!("step {} `{}`", one.index, one.name);
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for s in steps {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == s.index => *end = s.index,
            _ => ranges.push((s.index, s.index)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    format!("steps {}", parts.join(", "))
}

/// One block per finding:
///
/// ```text
/// path:line: warning[lint::<rule>]: message
///   in: scenario.yaml, steps 2-3
///   help: what would be right
/// ```
pub fn render_text(r: &LintReport) -> String {
    let mut s = String::new();
    for sc in &r.scenarios {
        for f in &sc.findings {
            let loc = if f.line > 0 {
                format!("{}:{}", f.file, f.line)
            } else {
                f.file.clone()
            };
            let _ = writeln!(s, "{loc}: warning[{}]: {}", f.rule, f.message);
            let _ = writeln!(s, "  in: {}, {}", sc.scenario, steps_text(&f.steps));
            let _ = writeln!(s, "  help: {}", f.help);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use super::*;
    use crate::scenario::{MemReader, load_str};

    /// Namespace x (pods a {app: web} serving `http` 8080/tcp, b {app: db} serving 5432/tcp),
    /// namespace kube-system (existing), and one step per policy list, each `computed`.
    fn scenario(extra_probes: &str, steps: &[&str]) -> Scenario {
        let mut yaml = String::from(
            "version: 1
namespaces:
  - {name: x, labels: {team: x}}
  - {name: kube-system, existing: true}
pods:
  - {name: a, namespace: x, labels: {app: web}, ports: [{port: 8080, name: http}]}
  - {name: b, namespace: x, labels: {app: db}, ports: [5432/tcp]}
probes:
  - {from: \"*\", to: \"*\"}
",
        );
        yaml.push_str(extra_probes);
        yaml.push_str("steps:\n");
        for (i, st) in steps.iter().enumerate() {
            let _ = writeln!(yaml, "  - name: s{}", i + 1);
            if !st.trim().is_empty() {
                for l in st.lines() {
                    let _ = writeln!(yaml, "    {l}");
                }
            }
            yaml.push_str("    expect: [{default: allow}, {computed: {}}]\n");
        }
        let l = load_str(Path::new("t/lint.yaml"), &yaml, &MemReader::default());
        l.scenario
            .unwrap_or_else(|| panic!("{}\n{yaml}", l.diagnostics.render(false)))
    }

    fn policy(name: &str, spec: &str) -> String {
        format!(
            "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: {name}, namespace: x}}
    spec: {spec}
"
        )
    }

    fn apply(policies: &[String]) -> String {
        let mut s = String::from("apply:\n");
        for p in policies {
            for l in p.lines() {
                let _ = writeln!(s, "  {l}");
            }
        }
        s
    }

    fn rules(f: &[Finding]) -> Vec<(&'static str, &str)> {
        f.iter()
            .map(|f| (f.rule.name(), f.policy.as_str()))
            .collect()
    }

    const DENY_ALL: &str = "{podSelector: {}, policyTypes: [Ingress, Egress]}";

    #[test]
    fn names_round_trip() {
        for r in LintRule::ALL {
            assert_eq!(LintRule::from_name(r.name()), Some(r));
            assert_eq!(LintRule::from_name(&r.to_string()), Some(r));
            assert_eq!(
                serde_json::to_value(r).expect("json"),
                serde_json::json!(r.name())
            );
        }
        assert_eq!(LintRule::from_name("nope"), None);
    }

    #[test]
    fn allow_all_forms() {
        let everything = [
            "{}",
            "{from: []}",
            "{from: [{namespaceSelector: {}}]}",
            "{from: [{namespaceSelector: {}, podSelector: {}}]}",
            "{from: [{podSelector: {matchLabels: {app: web}}}, {ipBlock: {cidr: 0.0.0.0/0}}]}",
            "{from: [{ipBlock: {cidr: '::/0'}}], ports: []}",
        ];
        for rule in everything {
            let s = scenario(
                "",
                &[&apply(&[policy(
                    "p",
                    &format!("{{podSelector: {{}}, ingress: [{rule}]}}"),
                )])],
            );
            assert_eq!(rules(&lint(&s)), [("allow-all-rule", "x/p")], "{rule}");
        }
        let narrower = [
            "{ports: [{port: 80}]}",
            "{from: [{podSelector: {}}]}",
            "{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}]}",
            "{from: [{namespaceSelector: {matchLabels: {team: x}}}]}",
            "{from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}",
            "{from: [{ipBlock: {cidr: 0.0.0.0/1}}]}",
        ];
        for rule in narrower {
            let s = scenario(
                "",
                &[&apply(&[policy(
                    "p",
                    &format!("{{podSelector: {{}}, ingress: [{rule}]}}"),
                )])],
            );
            assert_eq!(rules(&lint(&s)), [], "{rule}");
        }
        // Egress rules of a policy that is not an Egress policy take no effect.
        let s = scenario(
            "",
            &[&apply(&[policy(
                "p",
                "{podSelector: {}, policyTypes: [Ingress], egress: [{}]}",
            )])],
        );
        assert_eq!(rules(&lint(&s)), []);
    }

    #[test]
    fn findings_merge_across_steps_and_name_them() {
        // Step 1: a selector that selects nothing. Step 2: still (relabel elsewhere). Step 3: b
        // gets the label; step 4: loses it again.
        let p = policy(
            "typo",
            "{podSelector: {matchLabels: {app: dbb}}, ingress: [{ports: [{port: 5432}]}]}",
        );
        let deny = policy("deny", DENY_ALL);
        let s = scenario(
            "",
            &[
                &apply(&[deny, p]),
                "relabel: [{pod: x/a, labels: {v: '2'}}]",
                "relabel: [{pod: x/b, labels: {app: dbb}}]",
                "relabel: [{pod: x/b, labels: {app: db}}]",
            ],
        );
        let f = lint(&s);
        assert_eq!(rules(&f), [("selects-nothing", "x/typo")], "{f:#?}");
        let idx: Vec<usize> = f[0].steps.iter().map(|s| s.index).collect();
        assert_eq!(idx, [1, 2, 4]);
        assert_eq!(steps_text(&f[0].steps), "steps 1-2, 4");
        assert_eq!(f[0].origin, format!("{}:{}", f[0].file, f[0].line));
        assert_eq!(f[0].file, "t/lint.yaml");
        assert!(f[0].line > 0);
        assert!(f[0].help.contains("x/b {app=db}"), "{}", f[0].help);
    }

    #[test]
    fn unselected_pods_by_namespace() {
        let web = policy(
            "web",
            "{podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: 8080}]}]}",
        );
        let f = lint(&scenario("", &[&apply(std::slice::from_ref(&web))]));
        assert_eq!(rules(&f), [("unselected-pods", "x/web")]);
        assert!(
            f[0].message.contains("no policy selects x/b:"),
            "{}",
            f[0].message
        );
        assert!(f[0].help.contains("x/b {app=db}"), "{}", f[0].help);
        // An Egress-only policy selecting b covers it too.
        let egress = policy(
            "db-egress",
            "{podSelector: {matchLabels: {app: db}}, policyTypes: [Egress]}",
        );
        assert_eq!(rules(&lint(&scenario("", &[&apply(&[web, egress])]))), []);
    }

    const RESOLVE: &str = "  - {from: x/a, resolve: example.com}\n";

    #[test]
    fn dns_per_protocol() {
        let dns_rule = |ports: &str| {
            policy(
                "egress",
                &format!(
                    "{{podSelector: {{}}, policyTypes: [Egress], egress: [{{to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}}}], ports: {ports}}}]}}"
                ),
            )
        };
        let case = |ports: &str| lint(&scenario(RESOLVE, &[&apply(&[dns_rule(ports)])]));
        let f = case("[{port: 53, protocol: TCP}]");
        assert_eq!(rules(&f), [("dns-blocked", "x/egress")]);
        assert!(
            f[0].message.contains("x/a (it probes x/a -> dns:example.com; egress isolated by x/egress): 53/udp blocked"),
            "{}",
            f[0].message
        );
        let f = case("[{port: dns, protocol: UDP}]");
        assert_eq!(rules(&f), [("dns-blocked", "x/egress")]);
        assert!(f[0].message.contains("53/tcp blocked"), "{}", f[0].message);
        assert!(f[0].message.contains("truncated"), "{}", f[0].message);
        assert!(!f[0].message.contains("53/udp blocked"), "{}", f[0].message);
        // Both, by number or by the DNS pods' port names: nothing to say.
        assert_eq!(
            rules(&case(
                "[{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]"
            )),
            []
        );
        assert_eq!(
            rules(&case(
                "[{port: dns, protocol: UDP}, {port: dns-tcp, protocol: TCP}]"
            )),
            []
        );
        // No pod resolves names: an egress deny-all is fine.
        let f = lint(&scenario("", &[&apply(&[policy("deny", DENY_ALL)])]));
        assert_eq!(rules(&f), []);
        // A pod that does, isolated by two policies that together allow DNS: fine; the one that
        // resolves is reported, the other selected pod (b) is not.
        let f = lint(&scenario(RESOLVE, &[&apply(&[policy("deny", DENY_ALL)])]));
        assert_eq!(rules(&f), [("dns-blocked", "x/deny")]);
        assert!(!f[0].message.contains("x/b"), "{}", f[0].message);
        let f = lint(&scenario(
            RESOLVE,
            &[&apply(&[
                policy("deny", DENY_ALL),
                dns_rule("[{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]"),
            ])],
        ));
        assert_eq!(rules(&f), []);
        // DNS by ipBlock is left to the implementation: not reported.
        let f = lint(&scenario(
            RESOLVE,
            &[&apply(&[policy(
                "egress",
                "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.96.0.0/12}}], ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}]}",
            )])],
        ));
        assert_eq!(rules(&f), []);
    }

    #[test]
    fn dead_named_ports_ingress_and_egress() {
        let deny = policy("deny", DENY_ALL);
        let case = |spec: &str| {
            let f = lint(&scenario("", &[&apply(&[deny.clone(), policy("p", spec)])]));
            rules(&f)
                .into_iter()
                .map(|(r, p)| format!("{r} {p}"))
                .collect::<Vec<_>>()
        };
        let dead = vec!["dead-named-port x/p".to_owned()];
        // Ingress: some selected pod declares it (TCP), or none does.
        assert!(case("{podSelector: {}, ingress: [{ports: [{port: http}]}]}").is_empty());
        assert_eq!(
            case("{podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: http}]}]}"),
            dead
        );
        assert_eq!(
            case("{podSelector: {}, ingress: [{ports: [{port: http, protocol: UDP}]}]}"),
            dead
        );
        // Egress: resolved against the peers' pods.
        assert!(
            case("{podSelector: {}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: http}]}]}")
                .is_empty()
        );
        assert_eq!(
            case(
                "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: http}]}]}"
            ),
            dead
        );
        // No peers: any pod; a peer in another namespace: not x's pods.
        assert!(
            case("{podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: http}]}]}")
                .is_empty()
        );
        assert_eq!(
            case(
                "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}], ports: [{port: http}]}]}"
            ),
            dead
        );
        // The cluster DNS serves `dns` (UDP) and `dns-tcp` (TCP).
        assert!(
            case("{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}], ports: [{port: dns, protocol: UDP}, {port: dns-tcp}]}]}")
                .is_empty()
        );
        assert_eq!(
            case(
                "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}], ports: [{port: dns}]}]}"
            ),
            dead
        );
        // ipBlocks: a /32 placeholder names one pod; a literal CIDR might be any pod.
        assert_eq!(
            case(
                "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: '${ip x/b}/32'}}], ports: [{port: http}]}]}"
            ),
            dead
        );
        assert!(
            case("{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: http}]}]}")
                .is_empty()
        );
        // A policy that selects nothing is `selects-nothing`, not also a dead ingress port.
        assert_eq!(
            case("{podSelector: {matchLabels: {app: none}}, ingress: [{ports: [{port: http}]}]}"),
            vec!["selects-nothing x/p".to_owned()]
        );
    }

    #[test]
    fn report_exit_codes_and_text() {
        let mut r = LintReport::default();
        assert_eq!(r.exit_code(), exit::SUCCESS);
        let s = scenario(
            "",
            &[&apply(&[policy("p", "{podSelector: {}, ingress: [{}]}")])],
        );
        r.scenarios.push(ScenarioLint::of(&s));
        assert_eq!(r.exit_code(), exit::MISMATCH);
        let text = render_text(&r);
        let f = &r.scenarios[0].findings[0];
        assert!(
            text.starts_with(&format!(
                "t/lint.yaml:{}: warning[lint::allow-all-rule]: ingress rule 1 of x/p admits every source on every port",
                f.line
            )),
            "{text}"
        );
        assert!(
            text.contains("\n  in: t/lint.yaml, step 1 `s1`\n  help: "),
            "{text}"
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(
            json["scenarios"][0]["findings"][0]["rule"],
            "allow-all-rule"
        );
        assert_eq!(json["scenarios"][0]["findings"][0]["severity"], "warning");
        // --skip drops a rule's findings (and only its).
        let mut skipped = r.clone();
        skipped.skip(&[LintRule::SelectsNothing]);
        assert_eq!(skipped.finding_count(), r.finding_count());
        skipped.skip(&[LintRule::AllowAllRule, LintRule::UnselectedPods]);
        assert_eq!(skipped.finding_count(), 0);
        assert_eq!(skipped.exit_code(), exit::SUCCESS);
        r.invalid.push("bad.yaml".into());
        assert_eq!(r.exit_code(), exit::INVALID);
    }

    #[test]
    fn origins_split() {
        assert_eq!(split_origin("a/b.yaml:12"), ("a/b.yaml".into(), 12));
        assert_eq!(split_origin("c:/x.yaml:3"), ("c:/x.yaml".into(), 3));
        assert_eq!(split_origin("nowhere"), ("nowhere".into(), 0));
    }
}
