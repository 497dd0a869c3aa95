//! The report: text, JSON, severities and the exit code.

use super::*;
use crate::exit;

fn report(specs: &[(&str, &str)]) -> LintReport {
    let ps: Vec<String> = specs.iter().map(|(n, s)| policy(n, s)).collect();
    let s = scenario("", &[&apply(&ps)]);
    LintReport {
        scenarios: vec![ScenarioLint::of(&s)],
        invalid: Vec::new(),
    }
}

#[test]
fn report_exit_codes_and_text() {
    let mut r = LintReport::default();
    assert_eq!(r.exit_code(), exit::SUCCESS);
    r = report(&[("p", "{podSelector: {}, ingress: [{}]}")]);
    assert_eq!(r.exit_code(), exit::MISMATCH);
    let text = render_text(&r);
    let f = &r.scenarios[0].findings[0];
    assert!(
        text.starts_with(&format!(
            "t/lint.yaml:{}: warning[lint::ingress-from-anywhere]: ingress rule 1 of x/p admits every source",
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
        "ingress-from-anywhere"
    );
    assert_eq!(json["scenarios"][0]["findings"][0]["severity"], "warning");
    // --skip drops a rule's findings (and only its).
    let mut skipped = r.clone();
    skipped.skip(&[LintRule::SelectsNothing]);
    assert_eq!(skipped.finding_count(), r.finding_count());
    skipped.skip(&[LintRule::IngressFromAnywhere, LintRule::UnselectedPods]);
    assert_eq!(skipped.finding_count(), 0);
    assert_eq!(skipped.exit_code(), exit::SUCCESS);
    r.invalid.push("bad.yaml".into());
    assert_eq!(r.exit_code(), exit::INVALID);
}

#[test]
fn severities_decide_the_exit_code() {
    for r in LintRule::ALL {
        assert!(matches!(
            r.default_severity(),
            LintSeverity::Error | LintSeverity::Warning | LintSeverity::Info
        ));
    }
    assert!(LintSeverity::Error.fails() && LintSeverity::Warning.fails());
    assert!(!LintSeverity::Info.fails());
    // Only an info finding (x/b unselected): exit 0, but it is reported.
    let mut r = report(&[(
        "web",
        "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {}}]}]}",
    )]);
    assert_eq!(r.finding_count(), 1);
    assert_eq!(r.count(LintSeverity::Info), 1);
    assert_eq!(r.exit_code(), exit::SUCCESS);
    assert!(
        render_text(&r).contains(": info[lint::unselected-pods]: "),
        "{}",
        render_text(&r)
    );
    // --deny makes it fail, and says so in the JSON.
    r.set_severity(LintRule::UnselectedPods, LintSeverity::Error);
    assert_eq!(r.exit_code(), exit::MISMATCH);
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["scenarios"][0]["findings"][0]["severity"], "error");
    // --allow of a warning rule: reported, not failing.
    let mut r = report(&[("p", "{podSelector: {}, ingress: [{}]}")]);
    assert_eq!(r.exit_code(), exit::MISMATCH);
    r.set_severity(LintRule::EgressToAnywhere, LintSeverity::Info);
    assert_eq!(r.exit_code(), exit::MISMATCH, "another rule: no change");
    r.set_severity(LintRule::IngressFromAnywhere, LintSeverity::Info);
    assert_eq!(r.exit_code(), exit::SUCCESS);
    assert_eq!(r.finding_count(), 1);
}

#[test]
fn origins_split() {
    assert_eq!(split_origin("a/b.yaml:12"), ("a/b.yaml".into(), 12));
    assert_eq!(split_origin("c:/x.yaml:3"), ("c:/x.yaml".into(), 3));
    assert_eq!(split_origin("nowhere"), ("nowhere".into(), 0));
}
