//! The text `netreach audit` prints.

use std::fmt::Write as _;

use super::AuditReport;
use crate::engine::Spec;
use crate::lint::LintSeverity;

fn or_none(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// The verdict as a participle: `allowed`, `blocked`, `unspecified`.
pub(crate) fn verdict_word(v: Spec) -> &'static str {
    match v {
        Spec::Allow => "allowed",
        Spec::Block | Spec::Unresolved => "blocked",
        Spec::Unspecified => "unspecified",
    }
}

/// Findings first, then namespaces, workloads, reachability decided by a policy (pairs no
/// policy isolates at either end are counted, not listed), and unsupported objects.
pub fn render_text(r: &AuditReport) -> String {
    let mut s = String::new();
    let c = |k: &str| r.counts.get(k).copied().unwrap_or(0);
    let _ = writeln!(
        s,
        "netreach audit of {}: {} namespace(s), {} workload(s), {} pod(s), {} service(s), {} policy(ies)",
        r.source,
        c("namespaces"),
        c("workloads"),
        c("pods"),
        c("services"),
        c("policies")
    );
    let _ = writeln!(
        s,
        "\nFindings: {} error(s), {} warning(s), {} info",
        r.count(LintSeverity::Error),
        r.count(LintSeverity::Warning),
        r.count(LintSeverity::Info)
    );
    for f in &r.findings {
        let _ = writeln!(
            s,
            "{}: {}[{}]: {}",
            f.origin,
            f.severity.as_str(),
            f.rule,
            f.message
        );
        let _ = writeln!(s, "  help: {}", f.help);
    }
    let _ = writeln!(s, "\nNamespaces:");
    for n in &r.namespaces {
        let _ = writeln!(
            s,
            "  {}: policies {}; workloads {}",
            n.name,
            or_none(&n.policies),
            or_none(&n.workloads)
        );
        let _ = writeln!(
            s,
            "    ingress not isolated: {}; egress not isolated: {}; no policy applies: {}",
            or_none(&n.ingress_open),
            or_none(&n.egress_open),
            or_none(&n.no_policy)
        );
    }
    let _ = writeln!(s, "\nWorkloads:");
    for wl in &r.workloads {
        let made = if wl.from_template {
            " from its template"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {} ({}, {} pod(s){made}): ports {}; services {}",
            wl.name,
            wl.kind,
            wl.pods,
            or_none(&wl.ports),
            or_none(&wl.services)
        );
        let iso = |v: &[String]| {
            if v.is_empty() {
                "not isolated".to_owned()
            } else {
                format!("isolated by {}", v.join(", "))
            }
        };
        let _ = writeln!(
            s,
            "    ingress {}; egress {}",
            iso(&wl.ingress_isolated_by),
            iso(&wl.egress_isolated_by)
        );
        for p in &wl.partly {
            let _ = writeln!(s, "    note: {p}");
        }
        let _ = writeln!(
            s,
            "    from other namespaces: {}",
            or_none(&wl.from_other_namespaces)
        );
        let _ = writeln!(s, "    from outside: {}", or_none(&wl.from_outside));
        let _ = writeln!(s, "    to outside: {}", or_none(&wl.to_outside));
    }
    let open = r.reach.iter().filter(|x| !x.by_policy).count();
    let _ = writeln!(
        s,
        "\nReachability ({} workload pair(s) and port(s) that no policy isolates at either end are allowed and not listed):",
        open
    );
    for x in r.reach.iter().filter(|x| x.by_policy) {
        let share = if x.pairs == x.total_pairs {
            String::new()
        } else {
            format!(", {} of {} pod pairs", x.pairs, x.total_pairs)
        };
        let reason = x
            .reason
            .strip_prefix(verdict_word(x.verdict))
            .map(|r| r.trim_start_matches(':').trim_start())
            .unwrap_or(&x.reason);
        let _ = writeln!(
            s,
            "  {} -> {} {}: {}{}{} [{} -> {} pod(s){share}]",
            x.from,
            x.to,
            x.port,
            verdict_word(x.verdict),
            if reason.starts_with("by ") { " " } else { ": " },
            reason,
            x.from_pods,
            x.to_pods
        );
    }
    if !r.unsupported.is_empty() {
        let _ = writeln!(s, "\nNot modelled ({}):", r.unsupported.len());
        for u in &r.unsupported {
            let _ = writeln!(s, "  {}: {} {}: {}", u.origin, u.kind, u.name, u.reason);
        }
    }
    s
}
