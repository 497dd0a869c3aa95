//! Probes: the cells every step of a scenario is judged on, from `probes:` or the default
//! matrix (every pod to every port each pod serves, by IP). With `loopback: ignore` a pod's
//! cells to its own IP are left out.

use std::collections::BTreeSet;

use super::raw::{RawPortRef, RawProbe, Sp};
use crate::diag::{Code, DiagExt, Pos, Sink};
use crate::model::{CellKey, Loopback, PodId, PortProto, Scenario, Target, Via};
use crate::pattern::{PodPattern, PortPattern, TargetPattern};

/// The probed cells: the default matrix, or what `probes:` lists. `who` (`the scenario`,
/// `step 2`) is named in the error when there are none; `None` when none is fine (scenario-level
/// probes no step uses).
pub(super) fn check_probes(
    sink: &mut Sink<'_>,
    scenario: &Scenario,
    probes: Option<&Sp<Vec<RawProbe>>>,
    who: Option<&str>,
) -> Vec<CellKey> {
    let mut cells: Vec<CellKey> = match probes {
        None => default_cells(scenario),
        Some(list) => {
            let mut cells = BTreeSet::new();
            for p in &list.value {
                expand_probe(sink, scenario, p, &mut cells);
            }
            cells.into_iter().collect()
        }
    };
    if scenario.loopback == Loopback::Ignore {
        cells.retain(|c| !c.is_loopback());
    }
    // A real workload probes from its shadow pod, a different pod than the one probed: there
    // is no loopback path to prove, so it is not probed to itself.
    cells.retain(|c| !(scenario.workloads.contains_key(&c.from) && c.to.pod() == Some(&c.from)));
    // Services and DNS names exist only for the run's own pods: a real workload is probed at
    // its pod's IP.
    let through_service = |c: &CellKey| {
        c.via.is_some_and(|v| v != Via::Ip)
            && c.to
                .pod()
                .is_some_and(|p| scenario.workloads.contains_key(p))
    };
    if let Some(c) = cells.iter().find(|c| through_service(c)) {
        let pos = probes.map_or(Pos::UNKNOWN, |p| sink.pos(p));
        sink.error(
            Code::InvalidWorkload,
            pos,
            format!("`{c}` goes to the real workload `{}` through a Service, which netreach would have to create in front of it", c.to),
        )
        .help("probe real workloads by pod IP (`via: ip`, the default); netreach creates nothing in front of them");
        cells.retain(|c| !through_service(c));
    }
    if let Some(who) = who
        && cells.is_empty()
        && !sink.out.has_errors()
    {
        let pos = probes.map_or(Pos::UNKNOWN, |p| sink.pos(p));
        sink.error(Code::MatchesNothing, pos, format!("{who} probes nothing"))
            .help("give some pod `ports:` (the default probes every pod to every served port), or list `probes:`");
    }
    cells
}

fn default_cells(s: &Scenario) -> Vec<CellKey> {
    // Generated in order (pods by id, ports sorted), so the final sort only checks.
    let mut pods: Vec<(&PodId, Vec<PortProto>)> = s
        .pods
        .iter()
        .map(|p| {
            let mut ports: Vec<PortProto> = p.ports.iter().map(|sp| sp.port).collect();
            ports.sort();
            (&p.id, ports)
        })
        .collect();
    pods.sort();
    let mut cells =
        Vec::with_capacity(pods.iter().map(|(_, ports)| ports.len()).sum::<usize>() * pods.len());
    for (from, _) in &pods {
        for (to, ports) in &pods {
            for port in ports {
                cells.push(CellKey {
                    from: (*from).clone(),
                    to: Target::Pod((*to).clone()),
                    port: Some(*port),
                    via: Some(Via::Ip),
                });
            }
        }
    }
    cells.sort();
    cells
}

/// Sources matching a pattern; reports unknown literal pods and empty matches.
fn match_sources(sink: &mut Sink<'_>, s: &Scenario, at: Option<&Sp<String>>) -> Vec<PodId> {
    let text = at.map_or("*", |a| a.value.as_str());
    let pat = match PodPattern::parse(text) {
        Ok(p) => p,
        Err(msg) => {
            if let Some(at) = at {
                sink.error_at(Code::InvalidPattern, at, msg);
            }
            return Vec::new();
        }
    };
    let found: Vec<PodId> = s
        .pods
        .iter()
        .filter(|p| pat.matches(&p.id.ns, &p.id.name))
        .map(|p| p.id.clone())
        .collect();
    if found.is_empty()
        && let Some(at) = at
    {
        report_no_pod(sink, s, at, &pat);
    }
    found
}

fn report_no_pod(sink: &mut Sink<'_>, s: &Scenario, at: &Sp<String>, pat: &PodPattern) {
    let pods: Vec<String> = s.pods.iter().map(|p| p.id.to_string()).collect();
    let help = format!("declared pods: {}", pods.join(", "));
    if pat.is_literal() {
        sink.error_at(Code::UnknownPod, at, format!("pod `{pat}` is not declared"))
            .help(help);
    } else {
        sink.error_at(Code::MatchesNothing, at, format!("`{pat}` matches no pod"))
            .help(help);
    }
}

fn expand_probe(sink: &mut Sink<'_>, s: &Scenario, p: &RawProbe, cells: &mut BTreeSet<CellKey>) {
    if let Some(name) = &p.resolve {
        if p.to.is_some() || p.port.is_some() || p.via.is_some() {
            sink.error_at(Code::Conflict, name, "a `resolve` probe takes only `from`")
                .help("write name resolution and connections as separate probes");
            return;
        }
        let n = name.value.trim();
        if n.is_empty() || n.contains(char::is_whitespace) || n.contains('*') {
            sink.error_at(
                Code::InvalidName,
                name,
                format!("`{}` is not a DNS name to resolve", name.value),
            )
            .help("write a name like `kubernetes.default.svc.cluster.local`");
            return;
        }
        for from in match_sources(sink, s, p.from.as_ref()) {
            cells.insert(CellKey {
                from,
                to: Target::Name(n.to_owned()),
                port: None,
                via: None,
            });
        }
        return;
    }
    let sources = match_sources(sink, s, p.from.as_ref());
    let to_text = p.to.as_ref().map_or("*", |t| t.value.as_str());
    let target_pat = match TargetPattern::parse(to_text) {
        Ok(TargetPattern::Name(_)) => {
            if let Some(to) = &p.to {
                sink.error_at(Code::Conflict, to, "`dns:` targets are resolution probes")
                    .help("write `resolve: <name>` to test name resolution");
            }
            return;
        }
        Ok(t) => t,
        Err(msg) => {
            if let Some(to) = &p.to {
                sink.error_at(Code::InvalidPattern, to, msg);
            }
            return;
        }
    };
    let via = p.via.as_ref().map_or(Via::Ip, |v| v.value.into());
    let targets: Vec<Target> = s
        .pods
        .iter()
        .map(|p| Target::Pod(p.id.clone()))
        .chain(s.externals.iter().map(|e| Target::External(e.name.clone())))
        .filter(|t| target_pat.matches(t))
        .collect();
    if targets.is_empty() {
        if let Some(to) = &p.to {
            match &target_pat {
                TargetPattern::Pod(pp) => report_no_pod(sink, s, to, pp),
                TargetPattern::External(g) if g.is_literal() => {
                    sink.error_at(
                        Code::UnknownExternal,
                        to,
                        format!("external endpoint `{}` is not declared", g.as_str()),
                    )
                    .help("declare it under `external:`");
                }
                _ => {
                    sink.error_at(
                        Code::MatchesNothing,
                        to,
                        format!("`{}` matches no target", to.value),
                    );
                }
            }
        }
        return;
    }
    if via != Via::Ip && targets.iter().any(|t| matches!(t, Target::External(_))) {
        if let Some(v) = &p.via {
            sink.error_at(
                Code::Conflict,
                v,
                format!(
                    "external endpoints are reached by address; `via: {}` needs a pod target",
                    via.as_str()
                ),
            )
            .help("remove `via`, or point `to` at pods");
        }
        return;
    }
    let port_pat = match &p.port {
        None => PortPattern::Any,
        Some(sp) => match port_pattern(sp) {
            Ok(pp) => pp,
            Err(msg) => {
                sink.error_at(Code::InvalidPort, sp, msg);
                return;
            }
        },
    };
    let mut added = 0;
    for t in &targets {
        let served = s.served_ports(t);
        let ports: Vec<PortProto> = served
            .iter()
            .filter(|sp| match &port_pat {
                PortPattern::Any => true,
                PortPattern::Exact(pp) => sp.port == *pp,
                PortPattern::Named(n) => sp.name.as_deref() == Some(n.as_str()),
            })
            .map(|sp| sp.port)
            .collect();
        if ports.is_empty() && target_pat.is_literal() {
            let at: Pos = p.port.as_ref().map_or_else(
                || p.to.as_ref().map_or(Pos::UNKNOWN, |t| sink.pos(t)),
                |sp| sink.pos(sp),
            );
            let list: Vec<String> = served.iter().map(|s| s.port.to_string()).collect();
            let msg = if port_pat == PortPattern::Any {
                format!("`{t}` serves no ports, so nothing can be probed on it")
            } else {
                format!("`{t}` does not serve port {port_pat}")
            };
            sink.error(Code::PortNotServed, at, msg)
                .help(if list.is_empty() {
                    format!("declare the port under `ports:` of `{t}`")
                } else {
                    format!(
                        "`{t}` serves {}; probe one of those or declare the port",
                        list.join(", ")
                    )
                });
            return;
        }
        for port in ports {
            for from in &sources {
                cells.insert(CellKey {
                    from: from.clone(),
                    to: t.clone(),
                    port: Some(port),
                    via: Some(via),
                });
                added += 1;
            }
        }
    }
    if added == 0 && !sources.is_empty() {
        let at = p
            .port
            .as_ref()
            .map(|sp| sink.pos(sp))
            .or_else(|| p.to.as_ref().map(|t| sink.pos(t)))
            .or_else(|| p.from.as_ref().map(|f| sink.pos(f)))
            .unwrap_or(Pos::UNKNOWN);
        let msg = if port_pat == PortPattern::Any {
            format!("no target matching `{to_text}` serves any port, so this probes nothing")
        } else {
            format!("no target matching `{to_text}` serves port {port_pat}")
        };
        sink.error(Code::PortNotServed, at, msg)
            .help("check the port and the targets' `ports:`");
    }
}

pub(super) fn port_pattern(sp: &Sp<RawPortRef>) -> Result<PortPattern, String> {
    match &sp.value {
        RawPortRef::Number(n) => PortPattern::from_number(*n),
        RawPortRef::Text(t) => PortPattern::parse(t),
    }
}
