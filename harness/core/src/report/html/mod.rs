//! The HTML report: one self-contained page (inline CSS, script and SVG; no network, works from
//! `file://`) with, per scenario and step, the matrix per port as a grid (rows sources, columns
//! targets, grouped by namespace), each cell coloured and marked by its class, a detail panel
//! per cell (expectation and its origin, observation, the specification's verdict and reasons,
//! the repro command with a copy button), a mismatches-only filter, the cells that changed since
//! the previous step, a graph of who may reach whom, and a one-line summary of what broke.
//!
//! Layout of the page: the header, summary and legend are rendered here; the data is one JSON
//! value ([`data`]) that the page's script turns into grids when a scenario is opened, so the
//! file stays linear in the number of cells (a cell is ~20 small numbers; strings are stored
//! once per scenario) and the browser builds only what is looked at. The graphs are SVG laid
//! out here ([`graph`]), one inert `<template>` per step.

pub mod data;
pub mod graph;
pub mod svg;

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{ScenarioReport, ScenarioStatus};
use crate::verdict::Counts;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Facts about the run for the page's header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunInfo {
    /// The kubeconfig context the run used.
    pub context: Option<String>,
    /// The cluster's Kubernetes version (`v1.34.0`), when known.
    pub cluster_version: Option<String>,
    /// netreach's version.
    pub netreach_version: String,
    /// When the run started.
    pub started: Option<SystemTime>,
}

impl RunInfo {
    /// Only the version of this crate (as the JSON report records it).
    pub fn new() -> Self {
        RunInfo {
            netreach_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..RunInfo::default()
        }
    }
}

/// Escapes text for HTML and XML (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first line of a message, at most `max` characters.
fn gist(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let mut t: String = line.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// `2025-01-31 12:00:05 UTC`.
pub fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What broke, in one line: `2 of 13 scenarios failed: 3 mismatches in three-tier step 2, …`.
pub fn summary_line(reports: &[ScenarioReport]) -> String {
    let n = reports.len();
    if n == 0 {
        return "No scenario ran.".into();
    }
    let name = |r: &ScenarioReport| {
        if reports.iter().filter(|o| o.id == r.id).count() > 1 {
            r.full_name()
        } else {
            r.id.clone()
        }
    };
    let with = |st: ScenarioStatus| -> Vec<&ScenarioReport> {
        reports.iter().filter(|r| r.status == st).collect()
    };
    let of_n = |k: usize| format!("{k} of {}", plural(n, "scenario", "scenarios"));
    let mut parts = Vec::new();
    let failed = with(ScenarioStatus::Failed);
    if !failed.is_empty() {
        let places: Vec<String> = failed
            .iter()
            .flat_map(|r| {
                r.steps.iter().filter(|s| s.counts.fail > 0).map(move |s| {
                    format!(
                        "{} in {} step {}",
                        plural(s.counts.fail, "mismatch", "mismatches"),
                        name(r),
                        s.index
                    )
                })
            })
            .collect();
        const SHOWN: usize = 5;
        let mut list = places
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if places.len() > SHOWN {
            let more = places.len() - SHOWN;
            let _ = write!(
                list,
                " and {more} more {}",
                if more == 1 { "step" } else { "steps" }
            );
        }
        parts.push(format!("{} failed: {list}", of_n(failed.len())));
    } else {
        parts.push("No mismatches".to_owned());
    }
    let errored = with(ScenarioStatus::Error);
    if !errored.is_empty() {
        let list: Vec<String> = errored
            .iter()
            .map(|r| {
                let why = if let Some(e) = &r.error {
                    format!("could not run: {}", gist(e, 80))
                } else if let Some(st) = r.steps.iter().find(|s| s.error.is_some()) {
                    format!(
                        "step {}: {}",
                        st.index,
                        gist(st.error.as_deref().unwrap_or(""), 80)
                    )
                } else if r.counts.error > 0 {
                    plural(r.counts.error, "probe error", "probe errors")
                } else {
                    format!(
                        "cleanup failed: {}",
                        gist(r.teardown_error.as_deref().unwrap_or(""), 80)
                    )
                };
                format!("{} ({why})", name(r))
            })
            .collect();
        parts.push(format!(
            "{} had infrastructure errors: {}",
            of_n(errored.len()),
            list.join(", ")
        ));
    }
    let unsupported = with(ScenarioStatus::Unsupported);
    if !unsupported.is_empty() {
        let list: Vec<String> = unsupported
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    name(r),
                    plural(
                        r.counts.unsupported,
                        "unsupported cell",
                        "unsupported cells"
                    )
                )
            })
            .collect();
        parts.push(format!(
            "{} could not be fully tested on this cluster: {}",
            of_n(unsupported.len()),
            list.join(", ")
        ));
    }
    let flaky: usize = reports
        .iter()
        .flat_map(|r| &r.steps)
        .map(|s| s.results.iter().filter(|c| c.flaky).count())
        .sum();
    if flaky > 0 {
        parts.push(plural(flaky, "flaky cell", "flaky cells"));
    }
    if parts.len() == 1 && failed.is_empty() {
        let mut cells = Counts::default();
        for r in reports {
            cells.merge(r.counts);
        }
        let total = cells.total();
        let who = if n == 1 {
            "The scenario".to_owned()
        } else {
            format!("All {n} scenarios")
        };
        let unit = if total == 1 {
            "cell agrees"
        } else {
            "cells agree"
        };
        return format!(
            "{who} passed: {} {unit} with their expectations.",
            thousands(total)
        );
    }
    format!("{}.", parts.join("; "))
}

/// The probe timeout(s) of a run: `2 s`, or `1 s, 2 s (per scenario)` when they differ.
fn timeouts(reports: &[ScenarioReport]) -> String {
    let mut t: Vec<u32> = reports.iter().map(|r| r.probe_timeout_s).collect();
    t.sort_unstable();
    t.dedup();
    match t.as_slice() {
        [] => "—".into(),
        [one] => format!("{one} s"),
        many => format!(
            "{} (per scenario)",
            many.iter()
                .map(|x| format!("{x} s"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Renders the reports as one self-contained HTML page.
pub fn render(reports: &[ScenarioReport], info: &RunInfo) -> String {
    let d = data::data(reports);
    let json = data::script_json(&d);
    let mut cells = Counts::default();
    for r in reports {
        cells.merge(r.counts);
    }
    let count = |st: ScenarioStatus| reports.iter().filter(|r| r.status == st).count();
    let worst = if count(ScenarioStatus::Failed) > 0 {
        "failed"
    } else if count(ScenarioStatus::Error) > 0 {
        "error"
    } else if count(ScenarioStatus::Unsupported) > 0 {
        "unsupported"
    } else {
        "passed"
    };
    let unknown = "<span class=\"unknown\">unknown</span>";
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| unknown.to_owned(), esc);
    let mut h = String::with_capacity(json.len() + CSS.len() + JS.len() + 8192);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Nothing may leave the page: no fetch, no image, no font, no frame from anywhere.
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    );
    let _ = writeln!(
        h,
        "<title>netreach report: {}</title>",
        esc(&summary_line(reports))
    );
    let _ = writeln!(h, "<style>\n{CSS}</style>\n</head>");
    let _ = writeln!(h, "<body class=\"run-{worst}\">");
    h.push_str("<header id=\"nr-header\">\n<h1>netreach report</h1>\n<dl class=\"meta\">");
    let _ = write!(
        h,
        "<div><dt>context</dt><dd id=\"nr-context\">{}</dd></div>\
         <div><dt>cluster</dt><dd id=\"nr-cluster\">{}</dd></div>\
         <div><dt>netreach</dt><dd id=\"nr-version\">{}</dd></div>\
         <div><dt>probe timeout</dt><dd id=\"nr-timeout\">{}</dd></div>\
         <div><dt>started</dt><dd id=\"nr-started\">{}</dd></div>",
        opt(&info.context),
        opt(&info.cluster_version),
        esc(&info.netreach_version),
        esc(&timeouts(reports)),
        info.started.map_or_else(|| unknown.to_owned(), utc),
    );
    h.push_str("</dl>\n");
    let _ = writeln!(
        h,
        "<p id=\"nr-summary\" class=\"summary {worst}\">{}</p>",
        esc(&summary_line(reports))
    );
    let _ = writeln!(
        h,
        "<p class=\"totals\">{} · cells: {} pass, {} fail, {} error, {} unsupported</p>",
        esc(&format!(
            "{}: {} passed, {} failed, {} error, {} unsupported",
            plural(reports.len(), "scenario", "scenarios"),
            count(ScenarioStatus::Passed),
            count(ScenarioStatus::Failed),
            count(ScenarioStatus::Error),
            count(ScenarioStatus::Unsupported)
        )),
        thousands(cells.pass),
        thousands(cells.fail),
        thousands(cells.error),
        thousands(cells.unsupported)
    );
    h.push_str("</header>\n");
    h.push_str(TOOLBAR);
    h.push_str(
        "<noscript><p class=\"noscript\">The grids, the graph and the cell details need \
         JavaScript; the JSON report (<code>--json</code>) has the same data.</p></noscript>\n",
    );
    h.push_str("<main id=\"nr-scenarios\"></main>\n");
    h.push_str(
        "<aside id=\"nr-detail\" hidden aria-live=\"polite\"><button type=\"button\" \
         class=\"close\" id=\"nr-detail-close\" title=\"Close (Esc)\">×</button>\
         <div id=\"nr-detail-body\"></div></aside>\n",
    );
    // One graph per step that has cells, inert until shown.
    for (si, r) in reports.iter().enumerate() {
        for (k, st) in r.steps.iter().enumerate() {
            if st.results.is_empty() {
                continue;
            }
            let g = graph::graph(r, st);
            let _ = writeln!(
                h,
                "<template id=\"nr-g-{si}-{k}\">{}</template>",
                svg::svg(&g, &format!("nr{si}-{k}"))
            );
        }
    }
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"nr-data\">{json}</script>"
    );
    let _ = writeln!(h, "<script>\n{JS}</script>\n</body>\n</html>");
    h
}

const TOOLBAR: &str = "<nav id=\"nr-toolbar\">\
<fieldset class=\"filter\"><legend>Show</legend>\
<label><input type=\"radio\" name=\"nr-filter\" value=\"all\" checked> all cells</label>\
<label><input type=\"radio\" name=\"nr-filter\" value=\"mismatch\" id=\"nr-filter-mismatch\"> mismatches only</label>\
<label><input type=\"radio\" name=\"nr-filter\" value=\"changed\" id=\"nr-filter-changed\"> changed since the previous step</label>\
</fieldset>\
<div class=\"legend\" aria-label=\"legend\">\
<span class=\"c k0\">✓</span> agrees: allowed \
<span class=\"c k1\">✕</span> agrees: blocked \
<span class=\"c k2\">!</span> mismatch \
<span class=\"c k3\">~</span> flaky \
<span class=\"c k4\">∅</span> unsupported \
<span class=\"c k5\">⚠</span> error \
<span class=\"c n\"></span> not probed\
</div>\
<div class=\"buttons\"><button type=\"button\" id=\"nr-open-all\">open all</button> \
<button type=\"button\" id=\"nr-close-all\">close all</button></div>\
</nav>\n";

#[cfg(test)]
mod graph_tests;
#[cfg(test)]
mod tests;
