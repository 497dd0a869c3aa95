//! The JSON report: every scenario, step and cell with expected, observed, reason and repro.

use serde::Serialize;

use super::{ScenarioReport, ScenarioStatus, exit_code};
use crate::verdict::Counts;

/// Version of the JSON report layout.
pub const REPORT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Report<'a> {
    report_version: u32,
    netreach: &'static str,
    summary: Summary,
    scenarios: &'a [ScenarioReport],
}

#[derive(Serialize)]
struct Summary {
    scenarios: usize,
    passed: usize,
    failed: usize,
    error: usize,
    unsupported: usize,
    cells: Counts,
    exit_code: i32,
}

/// Renders reports as pretty JSON (with a trailing newline).
pub fn render(reports: &[ScenarioReport]) -> String {
    let count = |st: ScenarioStatus| reports.iter().filter(|r| r.status == st).count();
    let mut cells = Counts::default();
    for r in reports {
        cells.merge(r.counts);
    }
    let report = Report {
        report_version: REPORT_VERSION,
        netreach: env!("CARGO_PKG_VERSION"),
        summary: Summary {
            scenarios: reports.len(),
            passed: count(ScenarioStatus::Passed),
            failed: count(ScenarioStatus::Failed),
            error: count(ScenarioStatus::Error),
            unsupported: count(ScenarioStatus::Unsupported),
            cells,
            exit_code: exit_code(reports),
        },
        scenarios: reports,
    };
    let mut s =
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    #[test]
    fn json_carries_every_cell_with_reasons() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&[testdata::mismatch(), testdata::infra_error()]))
                .expect("valid JSON");
        assert_eq!(v["report_version"], 1);
        assert_eq!(v["summary"]["scenarios"], 2);
        assert_eq!(v["summary"]["failed"], 1);
        assert_eq!(v["summary"]["error"], 1);
        assert_eq!(v["summary"]["exit_code"], crate::exit::MISMATCH);
        assert_eq!(v["summary"]["cells"]["fail"], 1);
        let s0 = &v["scenarios"][0];
        assert_eq!(s0["status"], "failed");
        assert_eq!(s0["namespaces"][0][1], "x-r1d2e3");
        let cells = s0["steps"][0]["results"].as_array().expect("array");
        assert_eq!(cells.len(), 6);
        let bad: Vec<&serde_json::Value> = cells.iter().filter(|c| c["status"] == "fail").collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0]["cell"]["from"], "x/a");
        assert_eq!(bad[0]["cell"]["to"], "x/b");
        assert_eq!(bad[0]["cell"]["port"], "80/tcp");
        assert_eq!(bad[0]["expected"]["verdict"], "block");
        assert_eq!(bad[0]["expected"]["origin"]["kind"], "table");
        assert_eq!(bad[0]["observed"], "allowed");
        assert_eq!(bad[0]["outcome"]["class"], "connected");
        assert!(
            bad[0]["detail"]["command"]
                .as_str()
                .is_some_and(|c| c.starts_with("kubectl exec"))
        );
        let err = &v["scenarios"][1]["steps"][0]["results"];
        let errs: Vec<&serde_json::Value> = err
            .as_array()
            .expect("array")
            .iter()
            .filter(|c| c["status"] == "error")
            .collect();
        assert_eq!(errs[0]["outcome"]["class"], "error");
        assert_eq!(errs[0]["outcome"]["reason"]["kind"], "lost");
        assert_eq!(errs[0]["outcome"]["reason"]["detail"], "stream closed");
    }
}
