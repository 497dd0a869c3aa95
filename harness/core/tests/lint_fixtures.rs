//! `netreach lint` must report exactly what its fixtures announce.
//!
//! Every `*.yaml` directly in `fixtures/lint/` is a valid scenario (no errors and no warnings:
//! its expectations agree with the specification) that starts with comment lines
//!
//! ```text
//! # expect-lint: <rule> <line>
//! # expect-lint: none
//! ```
//!
//! where `<line>` is the line the finding points at (its `origin`, in the fixture itself): the
//! ingress/egress rule it is about, or the policy's `metadata` for findings about a policy. The multiset of reported (rule, line) pairs must equal the annotated one exactly;
//! `none` means no finding at all. Every rule needs `<rule>-positive.yaml`, which announces at
//! least one finding of that rule, and `<rule>-negative.yaml`, a near miss that announces `none`.
//! All fixtures are checked before the test fails.

use std::fs;
use std::path::{Path, PathBuf};

use netreach_core::lint::{self, LintRule};
use netreach_core::scenario;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/lint")
}

/// The annotations of a fixture: `Some(pairs)` (sorted), where `none` gives an empty list.
fn parse_annotations(text: &str) -> Result<Vec<(LintRule, usize)>, String> {
    let mut out = Vec::new();
    let mut none = false;
    let mut in_header = true;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        let Some(comment) = trimmed.strip_prefix('#').map(str::trim_start) else {
            if !trimmed.is_empty() {
                in_header = false;
            }
            if line.contains("expect-lint") {
                return Err(format!(
                    "line {n}: `expect-lint` annotations must be whole comment lines at the top"
                ));
            }
            continue;
        };
        let Some(rest) = comment.strip_prefix("expect-lint") else {
            continue;
        };
        if !in_header {
            return Err(format!(
                "line {n}: `# expect-lint:` after the first non-comment line"
            ));
        }
        let body = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("line {n}: write `# expect-lint: <rule> <line>`"))?
            .trim();
        if body == "none" {
            none = true;
            continue;
        }
        let mut words = body.split_whitespace();
        let (Some(rule), Some(at), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "line {n}: an annotation is `<rule> <line>` or `none` (`{trimmed}`)"
            ));
        };
        let rule = LintRule::from_name(rule).ok_or_else(|| {
            let names: Vec<&str> = LintRule::ALL.iter().map(|r| r.name()).collect();
            format!(
                "line {n}: unknown rule `{rule}`; rules are: {}",
                names.join(", ")
            )
        })?;
        let at: usize = at
            .parse()
            .map_err(|_| format!("line {n}: `{at}` is not a line number"))?;
        out.push((rule, at));
    }
    match (none, out.is_empty()) {
        (true, false) => Err("`none` together with findings".into()),
        (false, true) => {
            Err("no `# expect-lint: <rule> <line>` or `# expect-lint: none` annotation".into())
        }
        _ => {
            out.sort();
            Ok(out)
        }
    }
}

fn check(path: &Path) -> Result<Vec<(LintRule, usize)>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let expected = parse_annotations(&text)?;
    let loaded = scenario::load(path);
    let Some(s) = loaded.scenario else {
        return Err(format!(
            "does not validate:\n{}",
            loaded.diagnostics.render(false)
        ));
    };
    if loaded.diagnostics.warning_count() > 0 {
        return Err(format!(
            "validates with warnings (wrong expectations?):\n{}",
            loaded.diagnostics.render(false)
        ));
    }
    let findings = lint::lint(&s);
    let mut problems = Vec::new();
    for f in &findings {
        if Path::new(&f.file) != path {
            problems.push(format!(
                "finding {} in another file ({}); keep fixture policies inline",
                f.rule, f.origin
            ));
        }
    }
    let mut got: Vec<(LintRule, usize)> = findings.iter().map(|f| (f.rule, f.line)).collect();
    got.sort();
    if got != expected {
        let show = |v: &[(LintRule, usize)]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter()
                    .map(|(r, l)| format!("{} {l}", r.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        problems.push(format!(
            "expected [{}], got [{}]:\n{}",
            show(&expected),
            show(&got),
            lint::render_text(&lint::LintReport {
                scenarios: vec![lint::ScenarioLint {
                    scenario: path.display().to_string(),
                    findings,
                }],
                invalid: Vec::new(),
            })
        ));
    }
    if problems.is_empty() {
        Ok(expected)
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn lint_fixtures_report_exactly_their_annotations() {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for f in &files {
        match check(f) {
            Ok(expected) => results.push((f.clone(), expected)),
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    for rule in LintRule::ALL {
        let find = |suffix: &str| {
            let name = format!("{}-{suffix}.yaml", rule.name());
            results
                .iter()
                .find(|(p, _)| p.file_name().is_some_and(|n| n == name.as_str()))
                .map(|(_, e)| e)
        };
        match find("positive") {
            Some(e) if e.iter().any(|(r, _)| *r == rule) => {}
            Some(_) => failures.push(format!(
                "{}-positive.yaml announces no `{}` finding",
                rule.name(),
                rule.name()
            )),
            None => failures.push(format!(
                "rule `{}` has no (passing) positive fixture {}-positive.yaml",
                rule.name(),
                rule.name()
            )),
        }
        match find("negative") {
            Some(e) if e.is_empty() => {}
            Some(_) => failures.push(format!(
                "{}-negative.yaml must announce `# expect-lint: none`",
                rule.name()
            )),
            None => failures.push(format!(
                "rule `{}` has no (passing) negative fixture {}-negative.yaml",
                rule.name(),
                rule.name()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn annotations_parse_strictly() {
    assert_eq!(
        parse_annotations(
            "# expect-lint: dns-blocked 12\n# expect-lint: lint::selects-nothing 3\nversion: 1\n"
        ),
        Ok(vec![
            (LintRule::DnsBlocked, 12),
            (LintRule::SelectsNothing, 3)
        ])
    );
    assert_eq!(
        parse_annotations("# expect-lint: none\nversion: 1\n"),
        Ok(vec![])
    );
    for bad in [
        "version: 1\n",
        "# expect-lint: none\n# expect-lint: dns-blocked 3\n",
        "# expect-lint: nope 3\n",
        "# expect-lint: dns-blocked\n",
        "# expect-lint: dns-blocked x\n",
        "version: 1\n# expect-lint: none\n",
        "version: 1 # expect-lint: none\n",
    ] {
        assert!(parse_annotations(bad).is_err(), "{bad}");
    }
}

/// README's Lint table lists every rule, with its default severity, in the code's order.
#[test]
fn readme_rule_table_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = fs::read_to_string(&path).expect("README.md");
    let section = readme
        .split("\n## Lint\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a `## Lint` section");
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect();
    let code: Vec<(String, String)> = LintRule::ALL
        .iter()
        .map(|r| {
            (
                r.name().to_owned(),
                r.default_severity().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(rows, code, "README.md's Lint table (rule | severity | ...)");
}
