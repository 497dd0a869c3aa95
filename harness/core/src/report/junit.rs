//! JUnit XML for CI: one `<testcase>` per scenario, grouped in a `<testsuite>` per folder.
//!
//! A mismatch is a `<failure>` whose body carries the step's truth tables and the disagreeing
//! cells; an infrastructure problem is an `<error>`; a scenario with only unsupported cells
//! besides passes is `<skipped>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::{ScenarioReport, ScenarioStatus, text};

/// Renders reports as a JUnit XML document.
pub fn render(reports: &[ScenarioReport]) -> String {
    let mut suites: BTreeMap<&str, Vec<&ScenarioReport>> = BTreeMap::new();
    for r in reports {
        suites.entry(r.group.as_str()).or_default().push(r);
    }
    let count =
        |rs: &[&ScenarioReport], st: ScenarioStatus| rs.iter().filter(|r| r.status == st).count();
    let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let all: Vec<&ScenarioReport> = reports.iter().collect();
    let total_ms: u64 = reports.iter().map(|r| r.duration_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"netreach\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        reports.len(),
        count(&all, ScenarioStatus::Failed),
        count(&all, ScenarioStatus::Error),
        count(&all, ScenarioStatus::Unsupported),
        secs(total_ms)
    );
    for (group, rs) in &suites {
        let ms: u64 = rs.iter().map(|r| r.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            escape(*group),
            rs.len(),
            count(rs, ScenarioStatus::Failed),
            count(rs, ScenarioStatus::Error),
            count(rs, ScenarioStatus::Unsupported),
            secs(ms)
        );
        for r in rs {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{}\">",
                escape(*group),
                escape(r.id.as_str()),
                escape(r.path.display().to_string().as_str()),
                secs(r.duration_ms)
            );
            let body = text::render_scenario(r);
            match r.status {
                ScenarioStatus::Passed => {}
                ScenarioStatus::Failed => {
                    element(&mut out, "failure", "mismatch", &failure_message(r), &body)
                }
                ScenarioStatus::Error => element(
                    &mut out,
                    "error",
                    "infrastructure",
                    &error_message(r),
                    &body,
                ),
                ScenarioStatus::Unsupported => {
                    let _ = writeln!(
                        out,
                        "      <skipped message=\"{}\"/>",
                        escape(
                            format!(
                                "{} cell(s) cannot be tested on this cluster",
                                r.counts.unsupported
                            )
                            .as_str()
                        )
                    );
                }
            }
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(body.as_str())
            );
            let _ = writeln!(out, "    </testcase>");
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

fn element(out: &mut String, tag: &str, kind: &str, message: &str, body: &str) {
    let _ = writeln!(
        out,
        "      <{tag} type=\"{kind}\" message=\"{}\">{}</{tag}>",
        escape(message),
        escape(body)
    );
}

fn failure_message(r: &ScenarioReport) -> String {
    let steps: Vec<String> = r
        .steps
        .iter()
        .filter(|s| s.counts.fail > 0)
        .map(|s| {
            format!(
                "step {} \"{}\": {} of {} cell(s) disagree",
                s.index,
                s.name,
                s.counts.fail,
                s.counts.total()
            )
        })
        .collect();
    steps.join("; ")
}

fn error_message(r: &ScenarioReport) -> String {
    if let Some(e) = &r.error {
        return e.clone();
    }
    if let Some(s) = r.steps.iter().find(|s| s.error.is_some()) {
        return format!(
            "step {} \"{}\": {}",
            s.index,
            s.name,
            s.error.as_deref().unwrap_or_default()
        );
    }
    if let Some(e) = &r.teardown_error {
        return format!("cleanup: {e}");
    }
    format!(
        "{} cell(s) could not be decided (probe errors)",
        r.counts.error
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Suites {
        #[serde(rename = "@tests")]
        tests: usize,
        #[serde(rename = "@failures")]
        failures: usize,
        #[serde(rename = "@errors")]
        errors: usize,
        testsuite: Vec<Suite>,
    }

    #[derive(Deserialize, Debug)]
    struct Suite {
        #[serde(rename = "@name")]
        name: String,
        testcase: Vec<Case>,
    }

    #[derive(Deserialize, Debug)]
    struct Case {
        #[serde(rename = "@name")]
        name: String,
        #[serde(rename = "@classname")]
        classname: String,
        failure: Option<Detail>,
        error: Option<Detail>,
        skipped: Option<Detail>,
    }

    #[derive(Deserialize, Debug)]
    struct Detail {
        #[serde(rename = "@message")]
        message: String,
        #[serde(rename = "@type", default)]
        kind: String,
        #[serde(rename = "$text", default)]
        body: String,
    }

    fn parse(xml: &str) -> Suites {
        quick_xml::de::from_str(xml).unwrap_or_else(|e| panic!("JUnit does not parse: {e}\n{xml}"))
    }

    #[test]
    fn mismatch_is_a_failure_carrying_the_table_and_infra_is_an_error() {
        let mut err = testdata::infra_error();
        err.id = "tiny-err".into();
        let xml = render(&[testdata::mismatch(), err]);
        let s = parse(&xml);
        assert_eq!((s.tests, s.failures, s.errors), (2, 1, 1));
        assert_eq!(s.testsuite.len(), 1);
        assert_eq!(s.testsuite[0].name, "scenarios");
        let cases = &s.testsuite[0].testcase;
        assert_eq!(cases[0].name, "tiny");
        assert_eq!(cases[0].classname, "scenarios");
        let f = cases[0].failure.as_ref().expect("failure element");
        assert_eq!(f.kind, "mismatch");
        assert_eq!(f.message, "step 1 \"deny into b\": 1 of 6 cell(s) disagree");
        assert!(
            f.body.contains("comparison x/a x/b\n    x/a        .   X"),
            "{}",
            f.body
        );
        assert!(f.body.contains("repro: kubectl exec"), "{}", f.body);
        assert!(cases[0].error.is_none());
        let e = cases[1].error.as_ref().expect("error element");
        assert_eq!(e.kind, "infrastructure");
        assert!(
            e.message.contains("1 cell(s) could not be decided"),
            "{}",
            e.message
        );
        assert!(
            e.body
                .contains("exec ended before it reported (stream closed)")
        );
        assert!(cases[1].failure.is_none());
    }

    #[test]
    fn connect_failure_and_unsupported() {
        let mut r = testdata::mismatch();
        r.steps.iter_mut().for_each(|s| {
            s.results.clear();
            s.counts = Default::default();
        });
        r.error = Some("cluster `kind-x` is unreachable: connection refused".into());
        r.finish();
        let mut u = testdata::mismatch();
        u.id = "u".into();
        for s in &mut u.steps {
            for c in &mut s.results {
                if c.status == crate::verdict::Status::Fail {
                    c.status = crate::verdict::Status::Unsupported;
                }
            }
            s.counts = crate::verdict::Counts::of(&s.results);
        }
        u.finish();
        let s = parse(&render(&[r, u]));
        let cases = &s.testsuite[0].testcase;
        assert!(
            cases[0]
                .error
                .as_ref()
                .expect("error")
                .message
                .contains("unreachable")
        );
        assert_eq!(
            cases[1].skipped.as_ref().expect("skipped").message,
            "1 cell(s) cannot be tested on this cluster"
        );
    }

    #[test]
    fn special_characters_are_escaped() {
        let mut r = testdata::mismatch();
        r.steps[0].name = "a <b> & \"c\"".into();
        let s = parse(&render(&[r]));
        assert!(
            s.testsuite[0].testcase[0]
                .failure
                .as_ref()
                .expect("failure")
                .message
                .contains("a <b> & \"c\"")
        );
    }
}
