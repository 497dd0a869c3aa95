//! JUnit XML for CI, built as typed values and serialized once (never concatenated text):
//! a `<testsuite>` per scenario, a `<testcase>` per step (classname = the scenario, so a
//! dashboard shows which step broke).
//!
//! - A step with mismatches is a `<failure>` whose message counts them and whose body carries
//!   that step's disagreeing cells and comparison table (the compact text report of the step).
//! - Infrastructure trouble is an `<error>`: a step that ended in one, a step with probe errors,
//!   and a scenario that could not be deployed (a `setup` testcase; its steps are skipped as
//!   not run), or whose cleanup failed (a `cleanup` testcase).
//! - A step whose cells this cluster cannot test is `<skipped>`.
//! - Properties per scenario: run id, probe timeout, context, and the enforcer's known
//!   deviations that the run accepted.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ScenarioReport, StepReport, text};

/// What the reports alone do not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JunitInfo {
    /// The kubeconfig context of the run.
    pub context: Option<String>,
    /// Accepted known deviations per scenario full name (`group/id`), one line each.
    pub known: BTreeMap<String, Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename = "testsuites")]
struct Suites {
    #[serde(rename = "@name")]
    name: &'static str,
    #[serde(rename = "@tests")]
    tests: usize,
    #[serde(rename = "@failures")]
    failures: usize,
    #[serde(rename = "@errors")]
    errors: usize,
    #[serde(rename = "@skipped")]
    skipped: usize,
    #[serde(rename = "@time")]
    time: String,
    testsuite: Vec<Suite>,
}

#[derive(Serialize)]
struct Suite {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@tests")]
    tests: usize,
    #[serde(rename = "@failures")]
    failures: usize,
    #[serde(rename = "@errors")]
    errors: usize,
    #[serde(rename = "@skipped")]
    skipped: usize,
    #[serde(rename = "@time")]
    time: String,
    #[serde(rename = "@file")]
    file: String,
    properties: Properties,
    testcase: Vec<Case>,
}

#[derive(Serialize)]
struct Properties {
    property: Vec<Property>,
}

#[derive(Serialize)]
struct Property {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@value")]
    value: String,
}

#[derive(Serialize)]
struct Case {
    #[serde(rename = "@classname")]
    classname: String,
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@time")]
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<Detail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Detail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<Skipped>,
}

#[derive(Serialize)]
struct Detail {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "@message")]
    message: String,
    #[serde(rename = "$text")]
    body: String,
}

#[derive(Serialize)]
struct Skipped {
    #[serde(rename = "@message")]
    message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Failure,
    Error,
    Skipped,
}

impl Case {
    fn outcome(&self) -> Outcome {
        if self.failure.is_some() {
            Outcome::Failure
        } else if self.error.is_some() {
            Outcome::Error
        } else if self.skipped.is_some() {
            Outcome::Skipped
        } else {
            Outcome::Pass
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// The testcase of one step.
fn step_case(classname: &str, s: &StepReport) -> Case {
    let mut case = Case {
        classname: classname.to_owned(),
        name: format!("step {}: {}", s.index, s.name),
        time: secs(s.duration_ms),
        failure: None,
        error: None,
        skipped: None,
    };
    let body = || {
        let mut out = String::new();
        text::render_step(&mut out, s);
        out
    };
    if !s.ran {
        case.skipped = Some(Skipped {
            message: "not run (an earlier step or the setup failed)".into(),
        });
    } else if let Some(e) = &s.error {
        case.error = Some(Detail {
            kind: "infrastructure",
            message: e.clone(),
            body: body(),
        });
    } else if s.counts.fail > 0 {
        case.failure = Some(Detail {
            kind: "mismatch",
            message: format!(
                "step {} \"{}\": {} of {} cell(s) disagree",
                s.index,
                s.name,
                s.counts.fail,
                s.counts.total()
            ),
            body: body(),
        });
    } else if s.counts.error > 0 {
        case.error = Some(Detail {
            kind: "infrastructure",
            message: format!(
                "{} cell(s) could not be decided (probe errors)",
                s.counts.error
            ),
            body: body(),
        });
    } else if s.counts.unsupported > 0 {
        case.skipped = Some(Skipped {
            message: format!(
                "{} cell(s) cannot be tested on this cluster",
                s.counts.unsupported
            ),
        });
    } else if s.results.iter().any(|r| r.flaky) {
        case.failure = Some(Detail {
            kind: "flaky",
            message: format!(
                "{} cell(s) had no stable answer",
                s.results.iter().filter(|r| r.flaky).count()
            ),
            body: body(),
        });
    }
    case
}

fn suite(r: &ScenarioReport, info: &JunitInfo) -> Suite {
    let classname = r.full_name();
    let mut cases = Vec::new();
    if let Some(e) = &r.error {
        cases.push(Case {
            classname: classname.clone(),
            name: "setup".into(),
            time: secs(0),
            failure: None,
            error: Some(Detail {
                kind: "infrastructure",
                message: e.clone(),
                body: text::render_scenario(r),
            }),
            skipped: None,
        });
    }
    cases.extend(r.steps.iter().map(|s| step_case(&classname, s)));
    if let Some(e) = &r.teardown_error {
        cases.push(Case {
            classname: classname.clone(),
            name: "cleanup".into(),
            time: secs(0),
            failure: None,
            error: Some(Detail {
                kind: "infrastructure",
                message: format!("cleanup: {e}"),
                body: format!("namespaces of run {} may be left over", r.run_id),
            }),
            skipped: None,
        });
    }
    let mut property = vec![
        Property {
            name: "netreach.run-id".into(),
            value: r.run_id.clone(),
        },
        Property {
            name: "netreach.probe-timeout-s".into(),
            value: r.probe_timeout_s.to_string(),
        },
    ];
    if let Some(c) = &info.context {
        property.push(Property {
            name: "netreach.context".into(),
            value: c.clone(),
        });
    }
    for k in info.known.get(&classname).into_iter().flatten() {
        property.push(Property {
            name: "netreach.known-deviation".into(),
            value: k.clone(),
        });
    }
    let n = |o: Outcome| cases.iter().filter(|c| c.outcome() == o).count();
    Suite {
        name: classname,
        tests: cases.len(),
        failures: n(Outcome::Failure),
        errors: n(Outcome::Error),
        skipped: n(Outcome::Skipped),
        time: secs(r.duration_ms),
        file: r.path.display().to_string(),
        properties: Properties { property },
        testcase: cases,
    }
}

/// Renders reports as a JUnit XML document.
pub fn render(reports: &[ScenarioReport]) -> String {
    render_with(reports, &JunitInfo::default())
}

/// [`render`] with what the reports alone do not say.
pub fn render_with(reports: &[ScenarioReport], info: &JunitInfo) -> String {
    let suites: Vec<Suite> = reports.iter().map(|r| suite(r, info)).collect();
    let doc = Suites {
        name: "netreach",
        tests: suites.iter().map(|s| s.tests).sum(),
        failures: suites.iter().map(|s| s.failures).sum(),
        errors: suites.iter().map(|s| s.errors).sum(),
        skipped: suites.iter().map(|s| s.skipped).sum(),
        time: secs(reports.iter().map(|r| r.duration_ms).sum()),
        testsuite: suites,
    };
    let body = quick_xml::se::to_string(&doc).unwrap_or_else(|e| {
        format!("<testsuites name=\"netreach\"><!-- cannot serialize: {e} --></testsuites>")
    });
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}\n")
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
        assert_eq!(s.testsuite.len(), 2, "a suite per scenario");
        assert_eq!(s.testsuite[0].name, "scenarios/tiny");
        let cases = &s.testsuite[0].testcase;
        assert_eq!(cases[0].name, "step 1: deny into b", "a testcase per step");
        assert_eq!(cases[0].classname, "scenarios/tiny");
        let f = cases[0].failure.as_ref().expect("failure element");
        assert_eq!(f.kind, "mismatch");
        assert_eq!(f.message, "step 1 \"deny into b\": 1 of 6 cell(s) disagree");
        assert!(
            f.body.contains("comparison x/a x/b\n    x/a        .   X"),
            "{}",
            f.body
        );
        assert!(f.body.contains("repro: kubectl exec"), "{}", f.body);
        assert_eq!(
            f.body.matches("repro").count(),
            1,
            "written once: {}",
            f.body
        );
        assert!(!xml.contains("system-out"), "no copy of the body elsewhere");
        assert!(cases[0].error.is_none());
        let e = s.testsuite[1].testcase[0]
            .error
            .as_ref()
            .expect("error element");
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
        // Properties: run id and probe timeout, on every suite.
        assert!(
            xml.contains("<property name=\"netreach.probe-timeout-s\" value=\"2\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn connect_failure_and_unsupported() {
        let mut r = testdata::mismatch();
        r.steps.iter_mut().for_each(|s| {
            s.results.clear();
            s.counts = Default::default();
            s.ran = false;
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
        assert_eq!(cases[0].name, "setup");
        assert!(
            cases[0]
                .error
                .as_ref()
                .expect("error")
                .message
                .contains("unreachable")
        );
        assert!(
            cases[1]
                .skipped
                .as_ref()
                .expect("not run")
                .message
                .contains("not run")
        );
        assert_eq!(
            s.testsuite[1].testcase[0]
                .skipped
                .as_ref()
                .expect("skipped")
                .message,
            "1 cell(s) cannot be tested on this cluster"
        );
    }

    #[test]
    fn known_deviations_and_context_are_properties() {
        let info = JunitInfo {
            context: Some("kind-netreach".into()),
            known: BTreeMap::from([(
                "scenarios/tiny".into(),
                vec!["step 1 x/a -> x/b 80/tcp: observed allowed (listed)".into()],
            )]),
        };
        let xml = render_with(&[testdata::mismatch()], &info);
        assert!(
            xml.contains("name=\"netreach.context\" value=\"kind-netreach\""),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"netreach.known-deviation\" value=\"step 1 x/a -&gt; x/b"),
            "{xml}"
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
