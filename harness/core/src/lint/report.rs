//! Findings merged across steps, the report `netreach lint` prints, and its exit code.

use std::fmt::Write as _;

use serde::Serialize;

use super::{LintRule, WorldFinding};
use crate::exit;
use crate::model::Scenario;

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LintSeverity {
    /// A near-certain mistake: part of a policy can match nothing. Fails the exit code.
    Error,
    /// A probable mistake, or a risk that is sometimes intended. Fails the exit code.
    Warning,
    /// Worth knowing, often intended. Never fails the exit code.
    Info,
}

impl LintSeverity {
    /// `error`, `warning`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            LintSeverity::Error => "error",
            LintSeverity::Warning => "warning",
            LintSeverity::Info => "info",
        }
    }

    /// Whether a finding of this severity fails `netreach lint`.
    pub fn fails(self) -> bool {
        self != LintSeverity::Info
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
    /// The rule's default severity, or what `--deny`/`--allow` made it.
    pub severity: LintSeverity,
    /// The policy, `ns/name`.
    pub policy: String,
    /// Where it points, `file:line`: the ingress/egress rule it is about, or the policy.
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

impl Finding {
    pub(super) fn new(d: WorldFinding, at: StepRef) -> Finding {
        let (file, line) = split_origin(&d.origin);
        Finding {
            rule: d.rule,
            severity: d.rule.default_severity(),
            policy: d.policy,
            origin: d.origin,
            file,
            line,
            steps: vec![at],
            message: d.message,
            help: d.help,
        }
    }
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
            findings: super::lint(s),
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

    /// Gives the findings of `rule` severity `s` (`--deny`: error, `--allow`: info).
    pub fn set_severity(&mut self, rule: LintRule, s: LintSeverity) {
        for f in self.findings_mut().filter(|f| f.rule == rule) {
            f.severity = s;
        }
    }

    fn findings_mut(&mut self) -> impl Iterator<Item = &mut Finding> {
        self.scenarios
            .iter_mut()
            .flat_map(|s| s.findings.iter_mut())
    }

    fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.scenarios.iter().flat_map(|s| s.findings.iter())
    }

    /// Findings in all scenarios.
    pub fn finding_count(&self) -> usize {
        self.findings().count()
    }

    /// Findings of severity `s`.
    pub fn count(&self, s: LintSeverity) -> usize {
        self.findings().filter(|f| f.severity == s).count()
    }

    /// [`exit::INVALID`] if a scenario is invalid, else [`exit::MISMATCH`] if an error or a
    /// warning was found, else [`exit::SUCCESS`] (info findings never fail).
    pub fn exit_code(&self) -> i32 {
        if !self.invalid.is_empty() {
            exit::INVALID
        } else if self.findings().any(|f| f.severity.fails()) {
            exit::MISMATCH
        } else {
            exit::SUCCESS
        }
    }
}

/// `file:line` → (file, line); the line is 0 when the origin has none.
pub fn split_origin(origin: &str) -> (String, usize) {
    match origin.rsplit_once(':') {
        Some((file, line)) if line.parse::<usize>().is_ok() => {
            (file.to_owned(), line.parse().unwrap_or(0))
        }
        _ => (origin.to_owned(), 0),
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
            let _ = writeln!(
                s,
                "{loc}: {}[{}]: {}",
                f.severity.as_str(),
                f.rule,
                f.message
            );
            let _ = writeln!(s, "  in: {}, {}", sc.scenario, steps_text(&f.steps));
            let _ = writeln!(s, "  help: {}", f.help);
        }
    }
    s
}
