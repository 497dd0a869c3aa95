//! Raw scenario -> validated model, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::raw::{
    Loopback, RawPolicySource, RawPortDecl, RawPortRef, RawProbe, RawScenario, RawStep, Sp, Via,
};
use super::{FORMAT_VERSION, FileReader, parse_yaml_multi};
use crate::diag::{Code, DiagExt, Diagnostic, Diagnostics, Pos, Sink, SourceFile};
use crate::expect;
use crate::model::{
    Action, CellKey, External, Namespace, Pod, PodId, PortProto, Protocol, Scenario, ServedPort,
    Step, Target,
};
use crate::names::{check_dns_label, check_label_key, check_label_value};
use crate::pattern::{PodPattern, PortPattern, TargetPattern, check_port_number, parse_port_proto};
use crate::policy::{
    self, NAMESPACE_NAME_LABEL, NetworkPolicy, PolicyContext, PolicyRef, raw::RawNetworkPolicy,
};

pub(super) struct Checker<'a> {
    pub file: &'a SourceFile,
    pub out: &'a mut Diagnostics,
}

impl Checker<'_> {
    pub fn err<T>(&mut self, code: Code, at: &Sp<T>, msg: impl Into<String>) -> &mut Diagnostic {
        let pos = Pos::from_location(self.file, &at.referenced);
        self.err_pos(code, pos, msg)
    }

    pub fn err_pos(&mut self, code: Code, pos: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.out.push(Diagnostic::error(code, self.file, pos, msg));
        self.out.0.last_mut().expect("just pushed")
    }

    pub fn pos<T>(&self, at: &Sp<T>) -> Pos {
        Pos::from_location(self.file, &at.referenced)
    }
}

pub(super) fn validate(
    raw: RawScenario,
    file: &SourceFile,
    reader: &dyn FileReader,
    out: &mut Diagnostics,
) -> Option<Scenario> {
    let mut c = Checker { file, out };
    if raw.version.value != FORMAT_VERSION {
        c.err(
            Code::Version,
            &raw.version,
            format!("format version {} is not supported", raw.version.value),
        )
        .help(format!("this netreach reads `version: {FORMAT_VERSION}`"));
    }

    // Namespaces.
    let mut namespaces: Vec<Namespace> = Vec::new();
    let mut ns_existing: BTreeMap<String, bool> = BTreeMap::new();
    for ns in &raw.namespaces {
        let name = &ns.name;
        if ns_existing.contains_key(&name.value) {
            c.err(
                Code::Duplicate,
                name,
                format!("namespace `{}` is declared twice", name.value),
            )
            .help("declare each namespace once");
            continue;
        }
        // Declared even when its name is invalid, so pods in it are not also "undeclared".
        ns_existing.insert(name.value.clone(), ns.existing);
        let name_ok = match check_dns_label(&name.value) {
            Ok(()) => true,
            Err(e) => {
                c.err(Code::InvalidName, name, format!("namespace name `{}` {e}", name.value))
                    .help("namespace names are DNS labels: lowercase letters, digits and '-', at most 63 characters");
                false
            }
        };
        check_labels(&mut c, &ns.labels, "namespace");
        if let Some(v) = ns.labels.get(NAMESPACE_NAME_LABEL) {
            c.err(
                Code::InvalidLabel,
                v,
                format!(
                    "`{NAMESPACE_NAME_LABEL}` is set by Kubernetes to the namespace's real name"
                ),
            )
            .help("remove it; policies that select on it are rewritten to the run's real names");
        }
        if ns.existing && !ns.labels.is_empty() {
            c.err(
                Code::ExistingNamespace,
                name,
                format!(
                    "namespace `{}` is `existing`, so netreach will not label it",
                    name.value
                ),
            )
            .help("remove `labels`, or drop `existing: true` to let netreach create the namespace");
        }
        if name_ok {
            namespaces.push(Namespace {
                name: name.value.clone(),
                labels: ns.labels.plain(),
                existing: ns.existing,
            });
        }
    }

    // Pods.
    let mut pods: Vec<Pod> = Vec::new();
    let raw_pods: &[super::raw::RawPod] = raw.pods.as_ref().map_or(&[], |p| p.value.as_slice());
    for p in raw_pods {
        let mut ok = true;
        if let Err(e) = check_dns_label(&p.name.value) {
            c.err(Code::InvalidName, &p.name, format!("pod name `{}` {e}", p.name.value))
                .help("pod names are DNS labels: lowercase letters, digits and '-', at most 63 characters");
            ok = false;
        }
        match ns_existing.get(&p.namespace.value) {
            None => {
                c.err(
                    Code::UnknownNamespace,
                    &p.namespace,
                    format!(
                        "pod `{}` is in namespace `{}`, which is not declared",
                        p.name.value, p.namespace.value
                    ),
                )
                .help(ns_help(&ns_existing));
                ok = false;
            }
            Some(true) => {
                c.err(Code::ExistingNamespace, &p.namespace, format!("pod `{}` would be deployed into `{}`, a namespace that is not the scenario's", p.name.value, p.namespace.value))
                    .help("netreach deploys only into namespaces it creates; put the pod in one of the scenario's namespaces");
                ok = false;
            }
            Some(false) => {}
        }
        let id = PodId::new(&p.namespace.value, &p.name.value);
        if pods.iter().any(|q| q.id == id) {
            c.err(
                Code::Duplicate,
                &p.name,
                format!("pod `{id}` is declared twice"),
            )
            .help("pod names must be unique within a namespace");
            ok = false;
        }
        check_labels(&mut c, &p.labels, "pod");
        let ports = check_port_decls(&mut c, &p.ports, &format!("pod `{id}`"));
        if ok {
            pods.push(Pod {
                id,
                labels: p.labels.plain(),
                ports,
            });
        }
    }
    if raw_pods.is_empty() {
        let at = raw
            .pods
            .as_ref()
            .map_or_else(|| doc_start(file), |p| c.pos(p));
        c.err_pos(Code::MissingField, at, "the scenario declares no pods")
            .help("add `pods:` with at least one pod; probes run from pods");
    }

    // External endpoints.
    let mut externals: Vec<External> = Vec::new();
    for e in &raw.external {
        if let Err(err) = check_dns_label(&e.name.value) {
            c.err(
                Code::InvalidName,
                &e.name,
                format!("external endpoint name `{}` {err}", e.name.value),
            );
            continue;
        }
        if externals.iter().any(|x| x.name == e.name.value) {
            c.err(
                Code::Duplicate,
                &e.name,
                format!("external endpoint `{}` is declared twice", e.name.value),
            );
            continue;
        }
        let ports = check_port_decls(
            &mut c,
            &e.ports,
            &format!("external endpoint `{}`", e.name.value),
        );
        if e.ports.is_empty() {
            c.err(
                Code::MissingField,
                &e.name,
                format!("external endpoint `{}` serves no ports", e.name.value),
            )
            .help("add `ports:`, e.g. `[80/tcp]`");
        }
        externals.push(External {
            name: e.name.value.clone(),
            ports,
        });
    }

    let loopback = raw.loopback.as_ref().map_or(Loopback::Allow, |l| l.value);
    let pod_cidrs = super::cluster::pod_cidrs(&mut c, raw.cluster.as_ref());
    let mut scenario = Scenario {
        id: file_stem(&file.path),
        group: group_of(&file.path),
        path: file.path.clone(),
        title: raw.name.clone().unwrap_or_else(|| file_stem(&file.path)),
        description: raw.description.clone(),
        namespaces,
        pods,
        externals,
        loopback,
        pod_cidrs,
        cells: Vec::new(),
        steps: Vec::new(),
    };

    // Probes -> cells.
    scenario.cells = match &raw.probes {
        None => default_cells(&scenario),
        Some(list) => {
            let mut cells = BTreeSet::new();
            for p in &list.value {
                expand_probe(&mut c, &scenario, p, &mut cells);
            }
            cells.into_iter().collect()
        }
    };
    if scenario.cells.is_empty() && !c.out.has_errors() {
        let pos = raw.probes.as_ref().map_or(Pos::UNKNOWN, |p| c.pos(p));
        c.err_pos(Code::MatchesNothing, pos, "the scenario probes nothing")
            .help("give some pod `ports:` (the default probes every pod to every served port), or list `probes:`");
    }

    // Steps.
    let pod_ids: BTreeSet<PodId> = scenario.pods.iter().map(|p| p.id.clone()).collect();
    let ext_names: BTreeSet<String> = scenario.externals.iter().map(|e| e.name.clone()).collect();
    let pcx = PolicyContext {
        namespaces: &ns_existing,
        pods: &pod_ids,
        externals: &ext_names,
    };
    let mut in_force: BTreeSet<PolicyRef> = BTreeSet::new();
    let mut policy_files = PolicyFiles::default();
    let raw_steps: &[RawStep] = raw.steps.as_ref().map_or(&[], |s| s.value.as_slice());
    if raw_steps.is_empty() {
        let at = raw
            .steps
            .as_ref()
            .map_or_else(|| doc_start(file), |s| c.pos(s));
        c.err_pos(Code::MissingField, at, "the scenario has no steps")
            .help("add `steps:` with at least one step and its `expect:`");
    }
    let base = file
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    // The policy engine's view, carried from step to step (each step applies its actions).
    let mut world = crate::engine::World::initial(&scenario);
    for (i, rs) in raw_steps.iter().enumerate() {
        let step = check_step(
            &mut c,
            &scenario,
            &pcx,
            rs,
            i + 1,
            &mut in_force,
            &mut policy_files,
            &base,
            reader,
            &mut world,
        );
        scenario.steps.push(step);
    }
    Some(scenario)
}

/// Where the document's first key is: the place for "this document lacks …".
fn doc_start(file: &SourceFile) -> Pos {
    let mut offset = 0;
    for line in file.text.split_inclusive('\n') {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') && t != "---" {
            let lead = line.len() - line.trim_start().len();
            return Pos::from_range(file, offset + lead, 0);
        }
        offset += line.len();
    }
    Pos::UNKNOWN
}

fn ns_help(ns: &BTreeMap<String, bool>) -> String {
    if ns.is_empty() {
        "declare it under `namespaces:`".to_owned()
    } else {
        format!(
            "declared namespaces: {}",
            ns.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem().map_or_else(
        || "scenario".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    )
}

fn group_of(p: &Path) -> String {
    p.parent()
        .and_then(Path::file_name)
        .map_or_else(|| ".".to_owned(), |s| s.to_string_lossy().into_owned())
}

fn check_labels(c: &mut Checker<'_>, labels: &super::raw::SpMap<String>, what: &str) {
    for (k, v) in &labels.0 {
        if let Err(e) = check_label_key(&k.value) {
            c.err(
                Code::InvalidLabel,
                k,
                format!("{what} label key `{}` {e}", k.value),
            );
        }
        if let Err(e) = check_label_value(&v.value) {
            c.err(
                Code::InvalidLabel,
                v,
                format!("{what} label value `{}` {e}", v.value),
            )
            .help("label values are at most 63 characters of letters, digits, '-', '_' and '.'");
        }
    }
}

fn check_port_decls(
    c: &mut Checker<'_>,
    decls: &[Sp<RawPortDecl>],
    owner: &str,
) -> Vec<ServedPort> {
    let mut out: Vec<ServedPort> = Vec::new();
    for d in decls {
        let parsed = match &d.value {
            RawPortDecl::Number(n) => check_port_number(*n).map(|port| ServedPort {
                port: PortProto {
                    port,
                    protocol: Protocol::Tcp,
                },
                name: None,
            }),
            RawPortDecl::Short(s) => {
                parse_port_proto(s).map(|port| ServedPort { port, name: None })
            }
            RawPortDecl::Long(l) => (|| {
                let port = check_port_number(l.port)?;
                let protocol = match &l.protocol {
                    None => Protocol::Tcp,
                    Some(p) => Protocol::parse(p).ok_or_else(|| {
                        format!("`{p}` is not a protocol; use `TCP`, `UDP` or `SCTP`")
                    })?,
                };
                if let Some(n) = &l.name {
                    crate::names::check_port_name(n).map_err(|e| format!("port name `{n}` {e}"))?;
                }
                Ok(ServedPort {
                    port: PortProto { port, protocol },
                    name: l.name.clone(),
                })
            })(),
        };
        match parsed {
            Err(msg) => {
                c.err(Code::InvalidPort, d, msg).help("ports are written `80/tcp`, `53/udp`, or `{port: 8080, protocol: TCP, name: http}`");
            }
            Ok(sp) => {
                if out.iter().any(|o| o.port == sp.port) {
                    c.err(
                        Code::Duplicate,
                        d,
                        format!("{owner} declares port {} twice", sp.port),
                    );
                } else if sp.name.is_some() && out.iter().any(|o| o.name == sp.name) {
                    c.err(
                        Code::Duplicate,
                        d,
                        format!(
                            "{owner} has two ports named `{}`",
                            sp.name.as_deref().unwrap_or_default()
                        ),
                    )
                    .help("port names must be unique within a pod");
                } else {
                    out.push(sp);
                }
            }
        }
    }
    out
}

fn default_cells(s: &Scenario) -> Vec<CellKey> {
    let mut cells = Vec::new();
    for from in &s.pods {
        for to in &s.pods {
            for p in &to.ports {
                cells.push(CellKey {
                    from: from.id.clone(),
                    to: Target::Pod(to.id.clone()),
                    port: Some(p.port),
                    via: Some(Via::Ip),
                });
            }
        }
    }
    cells.sort();
    cells
}

/// Sources matching a pattern; reports unknown literal pods and empty matches.
fn match_sources(c: &mut Checker<'_>, s: &Scenario, at: Option<&Sp<String>>) -> Vec<PodId> {
    let text = at.map_or("*", |a| a.value.as_str());
    let pat = match PodPattern::parse(text) {
        Ok(p) => p,
        Err(msg) => {
            if let Some(at) = at {
                c.err(Code::InvalidPattern, at, msg);
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
        report_no_pod(c, s, at, &pat);
    }
    found
}

fn report_no_pod(c: &mut Checker<'_>, s: &Scenario, at: &Sp<String>, pat: &PodPattern) {
    let pods: Vec<String> = s.pods.iter().map(|p| p.id.to_string()).collect();
    let help = format!("declared pods: {}", pods.join(", "));
    if pat.is_literal() {
        c.err(Code::UnknownPod, at, format!("pod `{pat}` is not declared"))
            .help(help);
    } else {
        c.err(Code::MatchesNothing, at, format!("`{pat}` matches no pod"))
            .help(help);
    }
}

fn expand_probe(c: &mut Checker<'_>, s: &Scenario, p: &RawProbe, cells: &mut BTreeSet<CellKey>) {
    if let Some(name) = &p.resolve {
        if p.to.is_some() || p.port.is_some() || p.via.is_some() {
            c.err(Code::Conflict, name, "a `resolve` probe takes only `from`")
                .help("write name resolution and connections as separate probes");
            return;
        }
        let n = name.value.trim();
        if n.is_empty() || n.contains(char::is_whitespace) || n.contains('*') {
            c.err(
                Code::InvalidName,
                name,
                format!("`{}` is not a DNS name to resolve", name.value),
            )
            .help("write a name like `kubernetes.default.svc.cluster.local`");
            return;
        }
        for from in match_sources(c, s, p.from.as_ref()) {
            cells.insert(CellKey {
                from,
                to: Target::Name(n.to_owned()),
                port: None,
                via: None,
            });
        }
        return;
    }
    let sources = match_sources(c, s, p.from.as_ref());
    let to_text = p.to.as_ref().map_or("*", |t| t.value.as_str());
    let target_pat = match TargetPattern::parse(to_text) {
        Ok(TargetPattern::Name(_)) => {
            if let Some(to) = &p.to {
                c.err(Code::Conflict, to, "`dns:` targets are resolution probes")
                    .help("write `resolve: <name>` to test name resolution");
            }
            return;
        }
        Ok(t) => t,
        Err(msg) => {
            if let Some(to) = &p.to {
                c.err(Code::InvalidPattern, to, msg);
            }
            return;
        }
    };
    let via = p.via.as_ref().map_or(Via::Ip, |v| v.value);
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
                TargetPattern::Pod(pp) => report_no_pod(c, s, to, pp),
                TargetPattern::External(g) if g.is_literal() => {
                    c.err(
                        Code::UnknownExternal,
                        to,
                        format!("external endpoint `{}` is not declared", g.as_str()),
                    )
                    .help("declare it under `external:`");
                }
                _ => {
                    c.err(
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
            c.err(
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
                c.err(Code::InvalidPort, sp, msg);
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
                || p.to.as_ref().map_or(Pos::UNKNOWN, |t| c.pos(t)),
                |sp| c.pos(sp),
            );
            let list: Vec<String> = served.iter().map(|s| s.port.to_string()).collect();
            let msg = if port_pat == PortPattern::Any {
                format!("`{t}` serves no ports, so nothing can be probed on it")
            } else {
                format!("`{t}` does not serve port {port_pat}")
            };
            c.err_pos(Code::PortNotServed, at, msg)
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
            .map(|sp| c.pos(sp))
            .or_else(|| p.to.as_ref().map(|t| c.pos(t)))
            .or_else(|| p.from.as_ref().map(|f| c.pos(f)))
            .unwrap_or(Pos::UNKNOWN);
        let msg = if port_pat == PortPattern::Any {
            format!("no target matching `{to_text}` serves any port, so this probes nothing")
        } else {
            format!("no target matching `{to_text}` serves port {port_pat}")
        };
        c.err_pos(Code::PortNotServed, at, msg)
            .help("check the port and the targets' `ports:`");
    }
}

pub(crate) fn port_pattern(sp: &Sp<RawPortRef>) -> Result<PortPattern, String> {
    match &sp.value {
        RawPortRef::Number(n) => PortPattern::from_number(*n),
        RawPortRef::Text(t) => PortPattern::parse(t),
    }
}

/// Policy files already read: (path, default namespace) -> policies (or `None` when invalid).
#[derive(Default)]
struct PolicyFiles(BTreeMap<(PathBuf, Option<String>), Option<Vec<NetworkPolicy>>>);

#[allow(clippy::too_many_arguments)]
fn check_step(
    c: &mut Checker<'_>,
    s: &Scenario,
    pcx: &PolicyContext<'_>,
    rs: &RawStep,
    index: usize,
    in_force: &mut BTreeSet<PolicyRef>,
    files: &mut PolicyFiles,
    base: &Path,
    reader: &dyn FileReader,
    world: &mut crate::engine::World,
) -> Step {
    let line = c.pos(&rs.expect).line;
    let name = rs.name.clone().unwrap_or_else(|| format!("step {index}"));
    let mut actions = Vec::new();

    for d in &rs.delete {
        let Some((ns, pname)) = d
            .value
            .split_once('/')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        else {
            c.err(
                Code::InvalidStep,
                d,
                format!("`{}` is not a policy reference", d.value),
            )
            .help("write `namespace/policy-name`");
            continue;
        };
        let r = PolicyRef {
            ns: ns.to_owned(),
            name: pname.to_owned(),
        };
        if !in_force.remove(&r) {
            let list: Vec<String> = in_force.iter().map(ToString::to_string).collect();
            c.err(
                Code::InvalidStep,
                d,
                format!("step {index} deletes policy `{r}`, which is not in force at that point"),
            )
            .help(if list.is_empty() {
                "no policy is in force yet".to_owned()
            } else {
                format!("in force: {}", list.join(", "))
            });
            continue;
        }
        actions.push(Action::DeletePolicy(r));
    }
    let mut replaced_here = BTreeSet::new();
    for src in &rs.replace {
        for (pol, pos) in read_sources(c, pcx, src, files, base, reader) {
            let r = pol.reference();
            if !replaced_here.insert(r.clone()) {
                c.err_pos(
                    Code::InvalidStep,
                    pos,
                    format!("policy `{r}` is replaced twice in step {index}"),
                )
                .help("a step replaces a policy once; put the final version in one entry");
            } else if in_force.contains(&r) {
                actions.push(Action::ReplacePolicy(pol));
            } else {
                c.err_pos(Code::InvalidStep, pos, format!("step {index} replaces policy `{r}`, which is not in force"))
                    .help("use `apply:` to create a policy; `replace:` is for a new version of one in force");
            }
        }
    }
    let mut applied_here = BTreeSet::new();
    for src in &rs.apply {
        for (pol, pos) in read_sources(c, pcx, src, files, base, reader) {
            let r = pol.reference();
            if in_force.contains(&r) {
                let msg = if applied_here.contains(&r) {
                    format!("policy `{r}` is applied twice in step {index}")
                } else {
                    format!("step {index} applies policy `{r}`, which is already in force")
                };
                c.err_pos(Code::InvalidStep, pos, msg)
                    .help("use `replace:` for a new version of a policy in force, or give it another name");
                continue;
            }
            in_force.insert(r.clone());
            applied_here.insert(r);
            actions.push(Action::ApplyPolicy(pol));
        }
    }
    for rl in &rs.relabel {
        let mut bad = false;
        for (k, v) in &rl.labels.value.0 {
            if let Err(e) = check_label_key(&k.value) {
                c.err(
                    Code::InvalidLabel,
                    k,
                    format!("label key `{}` {e}", k.value),
                );
                bad = true;
            }
            if let Some(val) = &v.value
                && let Err(e) = check_label_value(val)
            {
                c.err(Code::InvalidLabel, v, format!("label value `{val}` {e}"));
                bad = true;
            }
            if k.value == NAMESPACE_NAME_LABEL && rl.namespace.is_some() {
                c.err(
                    Code::InvalidLabel,
                    k,
                    format!("`{NAMESPACE_NAME_LABEL}` is managed by Kubernetes"),
                )
                .help("it always equals the namespace's name; change another label");
                bad = true;
            }
        }
        match (&rl.pod, &rl.namespace) {
            (Some(p), None) => {
                let id = p.value.split_once('/').map(|(a, b)| PodId::new(a, b));
                match id.filter(|id| s.pod(id).is_some()) {
                    Some(id) if !bad => actions.push(Action::RelabelPod {
                        pod: id,
                        labels: rl.labels.value.plain(),
                    }),
                    Some(_) => {}
                    None => {
                        c.err(
                            Code::UnknownPod,
                            p,
                            format!("relabel names pod `{}`, which is not declared", p.value),
                        )
                        .help("write `namespace/pod` of a declared pod");
                    }
                }
            }
            (None, Some(ns)) => match s.namespace(&ns.value) {
                None => {
                    c.err(
                        Code::UnknownNamespace,
                        ns,
                        format!(
                            "relabel names namespace `{}`, which is not declared",
                            ns.value
                        ),
                    );
                }
                Some(n) if n.existing => {
                    c.err(
                        Code::ExistingNamespace,
                        ns,
                        format!(
                            "`{}` is an existing namespace; netreach never relabels it",
                            ns.value
                        ),
                    );
                }
                Some(_) if !bad => {
                    actions.push(Action::RelabelNamespace {
                        ns: ns.value.clone(),
                        labels: rl.labels.value.plain(),
                    });
                }
                Some(_) => {}
            },
            _ => {
                c.err(
                    Code::Conflict,
                    &rl.labels,
                    "a relabel needs exactly one of `pod` or `namespace`",
                )
                .help("write one relabel entry per pod or namespace");
            }
        }
    }

    let mut sink = Sink {
        file: c.file,
        out: c.out,
    };
    // The state after this step's actions, for `computed` expectations and contradiction checks.
    world.apply(&actions);
    let expected = expect::expand(&mut sink, s, &rs.expect, index, world);
    Step {
        index,
        name,
        line,
        actions,
        expected,
    }
}

/// Reads a policy source into validated policies, each with the position to blame for step
/// errors.
fn read_sources(
    c: &mut Checker<'_>,
    pcx: &PolicyContext<'_>,
    src: &RawPolicySource,
    files: &mut PolicyFiles,
    base: &Path,
    reader: &dyn FileReader,
) -> Vec<(NetworkPolicy, Pos)> {
    if let Some(ns) = &src.namespace {
        let mut sink = Sink {
            file: c.file,
            out: c.out,
        };
        if !policy::check_namespace(ns, "the policy source", pcx, &mut sink) {
            return Vec::new();
        }
    }
    match (&src.file, &src.inline) {
        (Some(f), None) => {
            let pos = c.pos(f);
            let path = base.join(&f.value);
            let key = (
                path.clone(),
                src.namespace.as_ref().map(|n| n.value.clone()),
            );
            if !files.0.contains_key(&key) {
                let loaded = read_policy_file(c, pcx, f, &path, src.namespace.as_ref(), reader);
                files.0.insert(key.clone(), loaded);
            }
            files.0[&key]
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p, pos))
                .collect()
        }
        (None, Some(inline)) => {
            let pos = c.pos(&inline.metadata.name);
            let raw = (**inline).clone();
            let origin = format!("{}:{}", c.file.path.display(), pos.line);
            let mut sink = Sink {
                file: c.file,
                out: c.out,
            };
            policy::check_policy(raw, src.namespace.as_ref(), origin, pcx, &mut sink)
                .map(|p| (p, pos))
                .into_iter()
                .collect()
        }
        (Some(f), Some(_)) => {
            c.err(
                Code::Conflict,
                f,
                "a policy source has both `file` and `inline`",
            )
            .help("use one of them per entry");
            Vec::new()
        }
        (None, None) => {
            let at = src.namespace.as_ref().map_or(Pos::UNKNOWN, |n| c.pos(n));
            c.err_pos(
                Code::MissingField,
                at,
                "a policy source needs `file:` or `inline:`",
            )
            .help("e.g. `- file: policies/deny-all.yaml`");
            Vec::new()
        }
    }
}

fn read_policy_file(
    c: &mut Checker<'_>,
    pcx: &PolicyContext<'_>,
    at: &Sp<String>,
    path: &Path,
    default_ns: Option<&Sp<String>>,
    reader: &dyn FileReader,
) -> Option<Vec<NetworkPolicy>> {
    let text = match reader.read(path) {
        Ok(t) => t,
        Err(e) => {
            c.err(
                Code::PolicyFile,
                at,
                format!("cannot read policy file `{}`: {e}", path.display()),
            )
            .help("policy paths are relative to the scenario file's folder");
            return None;
        }
    };
    let pf = SourceFile::new(path, text);
    // First tell NetworkPolicies from other documents, leniently, so a Deployment is reported as
    // "not a NetworkPolicy" rather than by its first field a NetworkPolicy does not have.
    if let Ok(headers) = parse_yaml_multi::<policy::raw::RawHeader>(&pf) {
        let mut sink = Sink {
            file: &pf,
            out: c.out,
        };
        let mut foreign = false;
        for h in &headers {
            match (&h.api_version, &h.kind) {
                (Some(v), Some(k))
                    if v.value == "networking.k8s.io/v1" && k.value == "NetworkPolicy" => {}
                (_, Some(k)) if k.value != "NetworkPolicy" => {
                    sink.error_at(Code::InvalidPolicy, k, format!("this document is a `{}`, not a NetworkPolicy", k.value))
                        .help("policy files hold only `networking.k8s.io/v1` NetworkPolicy manifests, separated by `---`");
                    foreign = true;
                }
                (Some(v), Some(_)) => {
                    sink.error_at(
                        Code::InvalidPolicy,
                        v,
                        format!(
                            "apiVersion `{}` is not a NetworkPolicy API version",
                            v.value
                        ),
                    )
                    .help("NetworkPolicies use `apiVersion: networking.k8s.io/v1`");
                    foreign = true;
                }
                _ => {} // Missing fields: the strict parse below says which.
            }
        }
        if foreign {
            c.err(
                Code::PolicyFile,
                at,
                format!("policy file `{}` is not valid", path.display()),
            );
            return None;
        }
    }
    let docs = match parse_yaml_multi::<RawNetworkPolicy>(&pf) {
        Ok(d) => d,
        Err(d) => {
            let mut d = *d;
            if d.code == Code::UnknownField
                || d.code == Code::MissingField
                || d.code == Code::WrongType
            {
                d.code = Code::InvalidPolicy;
                d.help = Some("policy files hold `networking.k8s.io/v1` NetworkPolicy manifests, separated by `---`".into());
            }
            c.out.push(d);
            c.err(
                Code::PolicyFile,
                at,
                format!("policy file `{}` is not valid", path.display()),
            );
            return None;
        }
    };
    if docs.is_empty() {
        c.err(
            Code::PolicyFile,
            at,
            format!("policy file `{}` holds no documents", path.display()),
        )
        .help("put one or more NetworkPolicy manifests in it, separated by `---`");
        return None;
    }
    let mut sink = Sink {
        file: &pf,
        out: c.out,
    };
    let mut out = Vec::new();
    let mut ok = true;
    for raw in docs {
        let line = Pos::from_location(&pf, &raw.metadata.name.referenced).line;
        let origin = format!("{}:{line}", path.display());
        match policy::check_policy(raw, default_ns, origin, pcx, &mut sink) {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}
