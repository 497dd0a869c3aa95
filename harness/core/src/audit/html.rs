//! `netreach audit --html FILE`: the audit as one self-contained page (inline CSS, script and
//! SVG; no network, works from `file://`): the header (source, context, cluster and netreach
//! versions, time), a one-line summary, the findings, the namespaces at a glance, the
//! workload matrix (rows sources, columns destinations, grouped by namespace; a cell per pair:
//! every declared port allowed, some, or none, with the verdicts, pod counts and reasons one
//! click away), a filter that shows only allowed paths or only those across namespaces, the
//! graph of who may reach whom, the workloads and what was not modelled.
//!
//! The matrix and graph are left out (with a sentence saying so) past [`MAX_GRID`] and
//! [`MAX_GRAPH`] workloads: the tables and `--json` still have everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::AuditReport;
use super::render::verdict_word;
use crate::engine::Spec;
use crate::lint::LintSeverity;
use crate::report::html::graph::{self, EdgeKind, Graph};
use crate::report::html::{RunInfo, esc, svg, thousands, utc};

/// Most workloads the matrix shows (a square of this side is 40,000 cells).
pub const MAX_GRID: usize = 200;
/// Most workloads the graph shows.
pub const MAX_GRAPH: usize = 120;

const CSS: &str = "
:root { --allowed-bg: #d4e8f6; --allowed-fg: #08466f; --blocked-bg: #e9e9e9; --blocked-fg: #444;
  --partial-bg: #E69F00; --line: #c9d0d6; --muted: #5c6670; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 \"DejaVu Sans\", system-ui, sans-serif; color: #1d2329; }
code, .mono { font-family: \"DejaVu Sans Mono\", ui-monospace, monospace; font-size: 12.5px; }
header { padding: 12px 20px 8px; border-bottom: 1px solid var(--line); background: #f7f9fb; }
h1 { font-size: 18px; margin: 0 0 6px; } h2 { font-size: 16px; margin: 18px 0 6px; }
dl.meta { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0 0 8px; }
dl.meta div { display: flex; gap: 6px; } dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; font-weight: 600; }
.unknown { color: var(--muted); font-weight: normal; font-style: italic; }
p.summary { margin: 4px 0; font-size: 15px; font-weight: 600; padding: 6px 10px; border-left: 6px solid #009E73; background: #fff; }
p.summary.bad { border-left-color: #D55E00; }
main { padding: 4px 20px 60px; }
table.t { border-collapse: collapse; margin: 4px 0; }
table.t th, table.t td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top; }
table.t th { background: #f1f4f7; }
tr.error td:first-child { border-left: 5px solid #D55E00; } tr.warning td:first-child { border-left: 5px solid #E69F00; }
tr.info td:first-child { border-left: 5px solid #56B4E9; }
.help { color: var(--muted); }
nav.filter { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid var(--line); z-index: 3; }
table.grid { border-collapse: collapse; font-size: 12px; }
table.grid th { font-weight: normal; padding: 1px 4px; white-space: nowrap; }
table.grid th.col { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; max-height: 160px; }
table.grid th.ns { font-weight: 600; border-bottom: 1px solid var(--line); }
table.grid td.c { width: 22px; height: 22px; min-width: 22px; text-align: center; border: 1px solid #fff; cursor: pointer; }
td.c.k0 { background: var(--allowed-bg); color: var(--allowed-fg); }
td.c.k1 { background: var(--partial-bg); color: #1a1a1a; }
td.c.k2 { background: var(--blocked-bg); color: var(--blocked-fg); }
td.c.k3 { background: #fafafa; color: #999; }
td.c.sel { outline: 3px solid #1d2329; }
table.grid.only-allowed td.c.k2, table.grid.only-allowed td.c.k3 { visibility: hidden; }
table.grid.only-cross td.c.same { visibility: hidden; }
.legend span.c { display: inline-block; width: 18px; text-align: center; margin-left: 10px; }
aside#na-detail { position: fixed; right: 0; top: 0; bottom: 0; width: 460px; overflow: auto; background: #fff; border-left: 2px solid #1d2329; padding: 10px 14px; box-shadow: -4px 0 12px rgba(0,0,0,.12); z-index: 6; }
aside#na-detail[hidden] { display: none; }
aside#na-detail button { float: right; }
aside#na-detail .na-reason { overflow-wrap: anywhere; }
aside#na-detail li { margin-bottom: 6px; }
.graph { overflow: auto; border: 1px solid var(--line); }
";

const JS: &str = r#"
(function () {
  const data = JSON.parse(document.getElementById('na-data').textContent);
  const panel = document.getElementById('na-detail');
  const body = document.getElementById('na-detail-body');
  const grid = document.getElementById('na-grid');
  let sel = null;
  function esc(s) { const d = document.createElement('div'); d.textContent = s; return d.innerHTML; }
  function show(td) {
    if (sel) sel.classList.remove('sel');
    sel = td; td.classList.add('sel');
    const p = data.pairs[+td.dataset.p];
    let h = '<h3>' + esc(data.w[p[0]]) + ' &rarr; ' + esc(data.w[p[1]]) + '</h3><ul class="na-ports">';
    for (const x of p[2]) {
      h += '<li><b>' + esc(x[0]) + '</b>: ' + esc(x[1]) + ' <span class="help">(' + x[2] + ' of ' + x[3] +
        ' pod pairs)</span><br><span class="na-reason">' + esc(data.s[x[4]]) + '</span></li>';
    }
    if (!p[2].length) h += '<li>the destination declares no port</li>';
    body.innerHTML = h + '</ul>';
    panel.hidden = false;
  }
  if (grid) {
    grid.addEventListener('click', (e) => { const td = e.target.closest('td.c'); if (td) show(td); });
    for (const r of document.querySelectorAll('input[name=na-filter]')) {
      r.addEventListener('change', () => {
        grid.classList.toggle('only-allowed', r.value === 'allowed' && r.checked);
        grid.classList.toggle('only-cross', r.value === 'cross' && r.checked);
      });
    }
  }
  document.getElementById('na-detail-close').addEventListener('click', () => { panel.hidden = true; });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') panel.hidden = true; });
  window.nrAudit = { ready: 1, cells: grid ? grid.querySelectorAll('td.c').length : 0 };
})();
"#;

/// A workload's namespace: the part of `ns/name` before the slash.
fn ns_of(w: &str) -> &str {
    w.split_once('/').map_or(w, |(n, _)| n)
}

/// The class of a pair's cell: every declared port allowed (0), some (1), none (2), no port
/// declared (3).
fn class(ports: &[&super::Reach]) -> usize {
    if ports.is_empty() {
        return 3;
    }
    let allowed = ports.iter().filter(|r| r.verdict == Spec::Allow).count();
    if ports
        .iter()
        .all(|r| r.verdict == Spec::Allow && r.pairs == r.total_pairs)
    {
        0
    } else if allowed > 0 {
        1
    } else {
        2
    }
}

/// What the page's one-line summary says.
pub fn summary_line(r: &AuditReport) -> String {
    let mut parts = Vec::new();
    let (e, w) = (r.count(LintSeverity::Error), r.count(LintSeverity::Warning));
    parts.push(if r.findings.is_empty() {
        "No findings".to_owned()
    } else {
        format!(
            "{} finding(s): {e} error(s), {w} warning(s), {} info",
            r.findings.len(),
            r.count(LintSeverity::Info)
        )
    });
    let no_policy: usize = r.namespaces.iter().map(|n| n.no_policy.len()).sum();
    parts.push(format!(
        "{no_policy} of {} workload(s) no policy applies to",
        r.workloads.len()
    ));
    let allowed: BTreeSet<(&str, &str)> = r
        .reach
        .iter()
        .filter(|x| x.verdict == Spec::Allow)
        .map(|x| (x.from.as_str(), x.to.as_str()))
        .collect();
    let cross = allowed.iter().filter(|(f, t)| ns_of(f) != ns_of(t)).count();
    parts.push(format!(
        "{} allowed workload path(s), {cross} across namespaces",
        allowed.len()
    ));
    let bad = r
        .unsupported
        .iter()
        .filter(|u| u.affects_reachability)
        .count();
    if bad > 0 {
        parts.push(format!(
            "{bad} object(s) not modelled that may change what connects"
        ));
    }
    format!("{}.", parts.join("; "))
}

/// The graph of who may reach whom: namespaces as groups, workloads as nodes, an arrow per
/// workload pair with an allowed port (its cells list every port's verdict). `None` past
/// [`MAX_GRAPH`] workloads.
pub fn audit_graph(r: &AuditReport) -> Option<Graph> {
    if r.workloads.len() > MAX_GRAPH {
        return None;
    }
    let groups: Vec<(String, Option<String>)> = r
        .namespaces
        .iter()
        .filter(|n| !n.workloads.is_empty())
        .map(|n| (n.name.clone(), None))
        .collect();
    let nodes: Vec<(String, String, String)> = r
        .workloads
        .iter()
        .map(|w| {
            let (ns, name) = w.name.split_once('/').unwrap_or(("", &w.name));
            (w.name.clone(), ns.to_owned(), name.to_owned())
        })
        .collect();
    let mut pairs: BTreeMap<(&str, &str), (bool, Vec<String>)> = BTreeMap::new();
    for x in &r.reach {
        let e = pairs
            .entry((x.from.as_str(), x.to.as_str()))
            .or_insert((false, Vec::new()));
        e.0 |= x.verdict == Spec::Allow;
        e.1.push(format!("{}: {}", x.port, verdict_word(x.verdict)));
    }
    let edges = pairs
        .into_iter()
        .filter(|(_, (allowed, _))| *allowed)
        .map(|((f, t), (_, cells))| (f.to_owned(), t.to_owned(), EdgeKind::Allowed, cells))
        .collect();
    Some(graph::layout(
        format!("who may reach whom · {}", r.source),
        &groups,
        &nodes,
        edges,
    ))
}

/// The matrix's data: workload names, per pair its ports `[port, verdict, pairs, total,
/// reason]`, and the reasons' string table.
/// Also the class of every pair's cell, `from * n + to`.
fn grid_data(r: &AuditReport) -> (serde_json::Value, Vec<usize>) {
    let names: Vec<&str> = r.workloads.iter().map(|w| w.name.as_str()).collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut by_pair: BTreeMap<(usize, usize), Vec<&super::Reach>> = BTreeMap::new();
    for x in &r.reach {
        if let (Some(&f), Some(&t)) = (index.get(x.from.as_str()), index.get(x.to.as_str())) {
            by_pair.entry((f, t)).or_default().push(x);
        }
    }
    let mut strs: Vec<String> = Vec::new();
    let mut str_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut pairs = Vec::new();
    let n = names.len();
    let mut classes = Vec::with_capacity(n * n);
    for f in 0..n {
        for t in 0..n {
            let ports = by_pair.remove(&(f, t)).unwrap_or_default();
            let k = class(&ports);
            let list: Vec<serde_json::Value> = ports
                .iter()
                .map(|x| {
                    let si = *str_index.entry(x.reason.clone()).or_insert_with(|| {
                        strs.push(x.reason.clone());
                        strs.len() - 1
                    });
                    serde_json::json!([
                        x.port.to_string(),
                        verdict_word(x.verdict),
                        x.pairs,
                        x.total_pairs,
                        si
                    ])
                })
                .collect();
            classes.push(k);
            pairs.push(serde_json::json!([f, t, list]));
        }
    }
    (
        serde_json::json!({"w": names, "pairs": pairs, "s": strs}),
        classes,
    )
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "–".into()
    } else {
        esc(&v.join(", "))
    }
}

/// Renders the audit as one self-contained HTML page.
pub fn render_html(r: &AuditReport, info: &RunInfo) -> String {
    let summary = summary_line(r);
    let bad = r.findings.iter().any(|f| f.severity.fails())
        || r.unsupported.iter().any(|u| u.affects_reachability);
    let unknown = "<span class=\"unknown\">unknown</span>";
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| unknown.to_owned(), esc);
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    let _ = writeln!(h, "<title>netreach audit: {}</title>", esc(&summary));
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>");
    let c = |k: &str| r.counts.get(k).copied().unwrap_or(0);
    let _ = write!(
        h,
        "<header><h1>netreach audit</h1><dl class=\"meta\">\
         <div><dt>source</dt><dd id=\"na-source\">{}</dd></div>\
         <div><dt>context</dt><dd id=\"na-context\">{}</dd></div>\
         <div><dt>cluster</dt><dd id=\"na-cluster\">{}</dd></div>\
         <div><dt>netreach</dt><dd id=\"na-version\">{}</dd></div>\
         <div><dt>read</dt><dd id=\"na-started\">{}</dd></div></dl>",
        esc(&r.source),
        opt(&info.context),
        opt(&info.cluster_version),
        esc(&info.netreach_version),
        info.started.map_or_else(|| unknown.to_owned(), utc),
    );
    let _ = writeln!(
        h,
        "<p id=\"na-summary\" class=\"summary{}\">{}</p>\
         <p class=\"help\">{} namespace(s), {} workload(s), {} pod(s), {} service(s), {} policy(ies). \
         Verdicts are the NetworkPolicy specification's, on the declared ports; a probe run \
         (<code>netreach snapshot</code>, then <code>netreach run</code>) tests them on a real enforcer.</p></header>\n<main>",
        if bad { " bad" } else { "" },
        esc(&summary),
        c("namespaces"),
        c("workloads"),
        thousands(c("pods")),
        c("services"),
        c("policies"),
    );

    // Findings.
    let _ = writeln!(h, "<h2>Findings ({})</h2>", r.findings.len());
    if r.findings.is_empty() {
        h.push_str("<p>No lint rule fires on these policies.</p>\n");
    } else {
        h.push_str(
            "<table class=\"t\" id=\"na-findings\"><thead><tr><th>severity</th><th>rule</th>\
             <th>policy</th><th>where</th><th>what is wrong / what would be right</th></tr></thead><tbody>\n",
        );
        for f in &r.findings {
            let _ = writeln!(
                h,
                "<tr class=\"{sev}\" data-rule=\"{rule}\"><td>{sev}</td><td><code>{rule}</code></td>\
                 <td>{}</td><td class=\"mono\">{}</td><td>{}<br><span class=\"help\">{}</span></td></tr>",
                esc(&f.policy),
                esc(&f.origin),
                esc(&f.message),
                esc(&f.help),
                sev = f.severity.as_str(),
                rule = esc(f.rule.name()),
            );
        }
        h.push_str("</tbody></table>\n");
    }

    // Namespaces.
    h.push_str(
        "<h2>Namespaces</h2><table class=\"t\" id=\"na-namespaces\"><thead><tr><th>namespace</th>\
         <th>policies</th><th>ingress not isolated</th><th>egress not isolated</th>\
         <th>no policy applies</th></tr></thead><tbody>\n",
    );
    for n in &r.namespaces {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.name),
            list_or_dash(&n.policies),
            list_or_dash(&n.ingress_open),
            list_or_dash(&n.egress_open),
            list_or_dash(&n.no_policy)
        );
    }
    h.push_str("</tbody></table>\n");

    // The matrix.
    h.push_str("<h2>Who may reach whom</h2>\n");
    let n = r.workloads.len();
    let mut data = serde_json::json!({"w": [], "pairs": [], "s": []});
    if n == 0 {
        h.push_str("<p>No workloads.</p>\n");
    } else if n > MAX_GRID {
        let _ = writeln!(
            h,
            "<p id=\"na-grid-omitted\">{n} workloads: more than the {MAX_GRID} a readable matrix \
             holds. Audit fewer namespaces (<code>--namespace</code>) for the matrix; \
             <code>--json</code> has every pair.</p>"
        );
    } else {
        let (d, classes) = grid_data(r);
        data = d;
        h.push_str(
            "<nav class=\"filter\"><fieldset style=\"border:0;display:inline;padding:0\"><legend style=\"float:left;margin-right:8px\">Show</legend>\
             <label><input type=\"radio\" name=\"na-filter\" value=\"all\" checked> every pair</label> \
             <label><input type=\"radio\" name=\"na-filter\" value=\"allowed\" id=\"na-filter-allowed\"> allowed only</label> \
             <label><input type=\"radio\" name=\"na-filter\" value=\"cross\" id=\"na-filter-cross\"> across namespaces only</label></fieldset>\
             <span class=\"legend\"><span class=\"c\" style=\"background:var(--allowed-bg)\">✓</span> every declared port allowed \
             <span class=\"c\" style=\"background:var(--partial-bg)\">◐</span> some ports or some pods \
             <span class=\"c\" style=\"background:var(--blocked-bg)\">✕</span> blocked \
             <span class=\"c\" style=\"background:#fafafa\">·</span> no port declared</span> \
             <span class=\"help\">rows: from · columns: to · click a cell for its ports and reasons</span></nav>\n",
        );
        // Namespace header row, then workload names.
        let mut spans: Vec<(&str, usize)> = Vec::new();
        for w in &r.workloads {
            let ns = ns_of(&w.name);
            match spans.last_mut() {
                Some((last, k)) if *last == ns => *k += 1,
                _ => spans.push((ns, 1)),
            }
        }
        h.push_str("<div style=\"overflow:auto\"><table class=\"grid\" id=\"na-grid\"><thead><tr><th></th><th></th>");
        for (ns, k) in &spans {
            let _ = write!(h, "<th class=\"ns\" colspan=\"{k}\">{}</th>", esc(ns));
        }
        h.push_str("</tr><tr><th></th><th></th>");
        for w in &r.workloads {
            let name = w.name.split_once('/').map_or(w.name.as_str(), |(_, b)| b);
            let _ = write!(
                h,
                "<th class=\"col\" title=\"{}\">{}</th>",
                esc(&w.name),
                esc(name)
            );
        }
        h.push_str("</tr></thead><tbody>\n");
        const GLYPH: [&str; 4] = ["✓", "◐", "✕", "·"];
        for (fi, w) in r.workloads.iter().enumerate() {
            let ns = ns_of(&w.name);
            let name = w.name.split_once('/').map_or(w.name.as_str(), |(_, b)| b);
            h.push_str("<tr>");
            if fi == 0 || ns_of(&r.workloads[fi - 1].name) != ns {
                let k = spans.iter().find(|(s, _)| *s == ns).map_or(1, |(_, k)| *k);
                let _ = write!(h, "<th class=\"ns\" rowspan=\"{k}\">{}</th>", esc(ns));
            }
            let _ = write!(h, "<th title=\"{}\">{}</th>", esc(&w.name), esc(name));
            for (ti, t) in r.workloads.iter().enumerate() {
                let p = fi * n + ti;
                let k = classes[p];
                let same = if ns_of(&t.name) == ns { " same" } else { "" };
                let _ = write!(
                    h,
                    "<td class=\"c k{k}{same}\" data-p=\"{p}\" title=\"{} → {}\">{}</td>",
                    esc(&w.name),
                    esc(&t.name),
                    GLYPH[k]
                );
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table></div>\n");
    }

    // The graph.
    match audit_graph(r) {
        Some(g) => {
            let _ = writeln!(
                h,
                "<h2>Graph</h2><p class=\"help\">An arrow per workload pair with an allowed \
                 port; hover an arrow for its ports. <code>netreach audit --svg FILE</code> \
                 writes this picture.</p><div class=\"graph\" id=\"na-graph\">{}</div>",
                svg::svg(&g, "na")
            );
        }
        None => {
            let _ = writeln!(
                h,
                "<h2>Graph</h2><p id=\"na-graph-omitted\">{n} workloads: more than the \
                 {MAX_GRAPH} a readable graph holds; audit fewer namespaces for it.</p>"
            );
        }
    }

    // Workloads.
    h.push_str(
        "<h2>Workloads</h2><table class=\"t\" id=\"na-workloads\"><thead><tr><th>workload</th>\
         <th>kind</th><th>pods</th><th>ports</th><th>ingress isolated by</th><th>egress isolated by</th>\
         <th>from other namespaces</th><th>from outside</th><th>to outside</th></tr></thead><tbody>\n",
    );
    for w in &r.workloads {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&w.name),
            esc(&w.kind),
            w.pods,
            if w.from_template { " (template)" } else { "" },
            list_or_dash(&w.ports),
            list_or_dash(&w.ingress_isolated_by),
            list_or_dash(&w.egress_isolated_by),
            list_or_dash(&w.from_other_namespaces),
            list_or_dash(&w.from_outside),
            list_or_dash(&w.to_outside),
        );
    }
    h.push_str("</tbody></table>\n");

    if !r.unsupported.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Not modelled ({})</h2><table class=\"t\" id=\"na-unsupported\"><thead><tr>\
             <th>object</th><th>where</th><th>why</th></tr></thead><tbody>",
            r.unsupported.len()
        );
        for u in &r.unsupported {
            let _ = writeln!(
                h,
                "<tr class=\"{}\"><td>{} {}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                if u.affects_reachability {
                    "warning"
                } else {
                    "info"
                },
                esc(&u.kind),
                esc(&u.name),
                esc(&u.origin),
                esc(&u.reason)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str(
        "</main>\n<aside id=\"na-detail\" hidden aria-live=\"polite\"><button type=\"button\" \
         id=\"na-detail-close\" title=\"Close (Esc)\">×</button><div id=\"na-detail-body\"></div></aside>\n",
    );
    // `</` cannot end the script early: JSON escapes `/` after `<` nowhere, so do it here.
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".into())
        .replace("</", "<\\/");
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"na-data\">{json}</script>\n<script>{JS}</script>\n</body>\n</html>"
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Inventory, manifests};
    use crate::diag::{Diagnostics, SourceFile};

    fn fixture() -> AuditReport {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/audit");
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir).expect("fixtures/audit") {
            let p = e.expect("a directory entry").path();
            files.push(SourceFile::new(
                p.clone(),
                std::fs::read_to_string(&p).expect("a fixture"),
            ));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut d = Diagnostics::default();
        let inv: Inventory = manifests::read(&files, "fixtures/audit", &mut d);
        assert!(!d.has_errors(), "{d:?}");
        AuditReport::of(&inv)
    }

    #[test]
    fn page_has_a_cell_per_workload_pair_and_every_finding() {
        let r = fixture();
        let page = render_html(&r, &RunInfo::new());
        let n = r.workloads.len();
        assert!(n > 2);
        assert_eq!(page.matches("<td class=\"c k").count(), n * n);
        for f in &r.findings {
            assert!(page.contains(&format!("data-rule=\"{}\"", f.rule.name())));
        }
        assert!(page.contains(&esc(&summary_line(&r))));
        // Nothing from the network (the SVG namespace is a name, not a request).
        let rest = page.replace("http://www.w3.org/2000/svg", "");
        assert!(!rest.contains("http://") && !rest.contains("https://"));
    }

    #[test]
    fn graph_has_a_node_per_workload_and_arrows_only_where_allowed() {
        let r = fixture();
        let g = audit_graph(&r).expect("a small graph");
        assert_eq!(g.nodes.len(), r.workloads.len());
        for e in &g.edges {
            let (f, t) = (&g.nodes[e.from].id, &g.nodes[e.to].id);
            assert!(
                r.reach
                    .iter()
                    .any(|x| &x.from == f && &x.to == t && x.verdict == Spec::Allow),
                "{f} -> {t}"
            );
        }
        let allowed: BTreeSet<(&str, &str)> = r
            .reach
            .iter()
            .filter(|x| x.verdict == Spec::Allow && x.from != x.to)
            .map(|x| (x.from.as_str(), x.to.as_str()))
            .collect();
        assert_eq!(g.edges.len(), allowed.len());
    }

    #[test]
    fn a_script_end_in_a_name_cannot_end_the_data() {
        let mut r = fixture();
        r.workloads[0].name = "a/</script><b>".into();
        let page = render_html(&r, &RunInfo::new());
        assert_eq!(page.matches("</script>").count(), 2);
    }
}
