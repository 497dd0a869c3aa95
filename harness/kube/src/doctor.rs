//! `netreach doctor`: the preflight a person runs before trusting a cluster's verdicts.
//!
//! In order, each a [`Check`]: the API server answers (and its version); every permission the
//! chosen way of running needs (SelfSubjectAccessReview, from the same table as the shipped
//! RBAC manifests); the PodSecurity level of given namespaces; then a small scenario run through
//! the same code as `netreach run`, in a throwaway namespace labelled PodSecurity `restricted`
//! (or a given one): the probe image starts, DNS resolves, and NetworkPolicy is enforced — a
//! connection works, a default-deny ingress policy blocks it, deleting the policy restores it.
//! A cluster that does not enforce is said so plainly: every verdict on it would be meaningless.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde::Serialize;
use serde_json::json;

use netreach_core::model::Scenario;
use netreach_core::names::Naming;
use netreach_core::probe::ProbeTimeout;
use netreach_core::report::ScenarioReport;
use netreach_core::run::{RunOptions, new_run_id, run_scenario};
use netreach_core::scenario::{MemReader, load_str};
use netreach_core::verdict::Status;

use crate::client::{client_for, small_runtime};
use crate::rbac::Mode;
use crate::{KubeCluster, KubeOptions};

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Fine.
    Ok,
    /// Worth knowing; verdicts are still meaningful.
    Warn,
    /// Verdicts on this cluster would be wrong or impossible.
    Fail,
    /// Not run (an earlier check failed).
    Skip,
}

/// One line of the doctor's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `api`, `rbac`, `pod-security`, `probe-image`, `dns`, `enforcement`.
    pub name: &'static str,
    /// How it ended.
    pub state: State,
    /// What was found.
    pub detail: String,
}

/// What the doctor found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// The context.
    pub context: String,
    /// The API server's version, if it answered.
    pub server_version: Option<String>,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// Any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.state == State::Fail)
    }

    /// The API server could not be reached at all.
    pub fn unreachable(&self) -> bool {
        self.checks
            .first()
            .is_some_and(|c| c.name == "api" && c.state == State::Fail)
    }

    fn push(&mut self, name: &'static str, state: State, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            state,
            detail: detail.into(),
        });
    }
}

/// What to check.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// Namespaces netreach was given (empty: it creates its own).
    pub namespaces: Vec<String>,
    /// The probe image and pod options.
    pub kube: KubeOptions,
    /// Skip the live part (probe pods, DNS, enforcement).
    pub no_pods: bool,
}

/// The scenario the live checks run: a client and a server, name resolution, and the
/// default-deny round trip.
const SCENARIO: &str = "version: 1
description: netreach doctor - probe image, DNS and NetworkPolicy enforcement
namespaces:
  - {name: doctor, labels: {pod-security.kubernetes.io/enforce: restricted}}
pods:
  - {name: client, namespace: doctor, labels: {role: client}}
  - {name: server, namespace: doctor, labels: {role: server}, ports: [80/tcp]}
probes:
  - {from: doctor/client, to: doctor/server, port: 80/tcp}
  - {from: doctor/client, resolve: kubernetes.default.svc.cluster.local}
steps:
  - name: no policy
    expect: [{default: allow}]
  - name: default-deny ingress
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: doctor-deny, namespace: doctor}
          spec: {podSelector: {}, policyTypes: [Ingress]}
    expect:
      - default: allow
      - block: {to: doctor/server}
  - name: policy deleted
    delete: [doctor/doctor-deny]
    expect: [{default: allow}]
";

fn scenario(given: bool) -> Result<Scenario, String> {
    let text = if given {
        // A given namespace carries whatever PodSecurity label it has: declare none.
        SCENARIO.replace(
            "{name: doctor, labels: {pod-security.kubernetes.io/enforce: restricted}}",
            "{name: doctor}",
        )
    } else {
        SCENARIO.to_owned()
    };
    let l = load_str(Path::new("doctor.yaml"), &text, &MemReader::default());
    l.scenario.ok_or_else(|| {
        format!(
            "the doctor's scenario is invalid: {}",
            l.diagnostics.render(false)
        )
    })
}

/// Runs the checks.
pub fn doctor(context: &str, o: &DoctorOptions) -> DoctorReport {
    let mut r = DoctorReport {
        context: context.to_owned(),
        ..DoctorReport::default()
    };
    let given = !o.namespaces.is_empty();
    let mode = if given {
        Mode::GivenNamespaces
    } else {
        Mode::OwnNamespaces
    };
    let rt = match small_runtime(context) {
        Ok(rt) => rt,
        Err(e) => {
            r.push("api", State::Fail, e.to_string());
            return r;
        }
    };
    let client = match rt.block_on(async {
        let c = client_for(context).await?;
        let v = tokio::time::timeout(Duration::from_secs(15), c.apiserver_version())
            .await
            .map_err(|_| crate::client::unreachable(context, "no answer within 15 s"))?
            .map_err(|e| crate::client::unreachable(context, e))?;
        Ok::<_, netreach_core::cluster::InfraError>((c, v.git_version))
    }) {
        Ok((c, v)) => {
            r.push(
                "api",
                State::Ok,
                format!("the API server answers: Kubernetes {v}"),
            );
            r.server_version = Some(v);
            c
        }
        Err(e) => {
            r.push("api", State::Fail, e.to_string());
            return r;
        }
    };
    // RBAC, from the shipped table.
    let scopes: Vec<Option<&str>> = if given {
        o.namespaces.iter().map(|n| Some(n.as_str())).collect()
    } else {
        vec![None]
    };
    let mut missing = Vec::new();
    let mut checked = 0;
    for scope in &scopes {
        for p in mode.perms() {
            for verb in p.verbs {
                checked += 1;
                let (resource, sub) = match p.resource.split_once('/') {
                    Some((r, s)) => (r, Some(s)),
                    None => (p.resource, None),
                };
                let review: SelfSubjectAccessReview = match serde_json::from_value(json!({
                    "spec": {"resourceAttributes": {
                        "group": p.group, "resource": resource, "subresource": sub,
                        "verb": verb, "namespace": scope,
                    }}
                })) {
                    Ok(v) => v,
                    Err(e) => {
                        missing.push(format!("{verb} {}: {e}", p.resource));
                        continue;
                    }
                };
                let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
                match rt.block_on(api.create(&PostParams::default(), &review)) {
                    Ok(res) if res.status.as_ref().is_some_and(|s| s.allowed) => {}
                    Ok(_) => missing.push(format!(
                        "{verb} {}{}{}",
                        p.resource,
                        if p.group.is_empty() {
                            String::new()
                        } else {
                            format!(".{}", p.group)
                        },
                        scope.map(|n| format!(" in {n}")).unwrap_or_default()
                    )),
                    Err(e) => missing.push(format!("cannot ask about {verb} {}: {e}", p.resource)),
                }
            }
        }
    }
    if missing.is_empty() {
        r.push(
            "rbac",
            State::Ok,
            format!(
                "all {checked} permission(s) of `{}` ({}) granted",
                mode.name(),
                mode.file()
            ),
        );
    } else {
        r.push(
            "rbac",
            State::Fail,
            format!(
                "missing {} of {checked}: {} (docs/rbac/{}, `netreach rbac {}`)",
                missing.len(),
                missing.join(", "),
                mode.file(),
                if given { "given" } else { "own" }
            ),
        );
    }
    // PodSecurity of given namespaces (the ones netreach creates are labelled restricted here).
    if given {
        let api: Api<Namespace> = Api::all(client.clone());
        for n in &o.namespaces {
            match rt.block_on(api.get_opt(n)) {
                Ok(Some(ns)) => {
                    let l = ns.metadata.labels.unwrap_or_default();
                    let level = l
                        .get("pod-security.kubernetes.io/enforce")
                        .map_or("none (the cluster's default)", String::as_str)
                        .to_owned();
                    r.push(
                        "pod-security",
                        State::Ok,
                        format!("namespace {n} enforces PodSecurity {level}; probe pods are restricted-ready"),
                    );
                }
                Ok(None) => r.push("pod-security", State::Fail, format!("namespace {n} does not exist")),
                Err(kube::Error::Api(e)) if e.code == 403 => r.push(
                    "pod-security",
                    State::Warn,
                    format!("cannot read namespace {n} (no get namespaces): its PodSecurity level is unknown; probe pods are restricted-ready"),
                ),
                Err(e) => r.push("pod-security", State::Warn, format!("namespace {n}: {e}")),
            }
        }
    } else {
        r.push(
            "pod-security",
            State::Ok,
            "the doctor's namespace enforces PodSecurity restricted: the probe pod start below proves probe pods pass it",
        );
    }
    if o.no_pods {
        for n in ["probe-image", "dns", "enforcement"] {
            r.push(n, State::Skip, "--no-pods");
        }
        return r;
    }
    let s = match scenario(given) {
        Ok(s) => s,
        Err(e) => {
            r.push("probe-image", State::Fail, e);
            return r;
        }
    };
    let mut opts = RunOptions::new(Naming::PerRun {
        run_id: new_run_id(),
    });
    opts.probe_timeout = ProbeTimeout(2);
    opts.converge_timeout = Duration::from_secs(20);
    if let Some(n) = o.namespaces.first() {
        opts.given_namespaces = BTreeMap::from([("doctor".to_owned(), n.clone())]);
    }
    let report = match KubeCluster::connect(context, o.kube.clone()) {
        Ok(mut c) => run_scenario(&s, &mut c, &opts, &mut |_| {}),
        Err(e) => ScenarioReport::not_run(&s, e.to_string()),
    };
    live_checks(&mut r, &report, &o.kube.probe_image);
    r
}

/// Reads the doctor scenario's report into the probe-image, DNS and enforcement checks.
pub fn live_checks(r: &mut DoctorReport, report: &ScenarioReport, image: &str) {
    if let Some(e) = &report.error {
        r.push(
            "probe-image",
            State::Fail,
            format!("probe pods of {image} did not start: {e}"),
        );
        r.push("dns", State::Skip, "no probe pod");
        r.push("enforcement", State::Skip, "no probe pod");
        return;
    }
    r.push(
        "probe-image",
        State::Ok,
        format!("probe pods of {image} started and served"),
    );
    let cell = |step: usize, resolve: bool| {
        report
            .steps
            .get(step)
            .and_then(|s| s.results.iter().find(|c| c.cell.port.is_none() == resolve))
    };
    match cell(0, true) {
        Some(c) if c.status == Status::Pass => r.push(
            "dns",
            State::Ok,
            "kubernetes.default.svc.cluster.local resolves from a probe pod",
        ),
        Some(c) => r.push(
            "dns",
            State::Fail,
            format!(
                "name resolution from a probe pod: {} ({})",
                c.observed, c.why
            ),
        ),
        None => r.push("dns", State::Fail, "the resolution probe did not run"),
    }
    let conn = [cell(0, false), cell(1, false), cell(2, false)];
    let status: Vec<Option<Status>> = conn.iter().map(|c| c.map(|c| c.status)).collect();
    match status.as_slice() {
        [Some(Status::Pass), Some(Status::Pass), Some(Status::Pass)] => r.push(
            "enforcement",
            State::Ok,
            "NetworkPolicy is enforced: connected, blocked by a default-deny ingress policy, connected again after deleting it",
        ),
        [Some(Status::Pass), Some(Status::Fail), _] => r.push(
            "enforcement",
            State::Fail,
            "this cluster does NOT enforce NetworkPolicy: the connection stayed open under a default-deny ingress policy; every verdict on this cluster would be meaningless (is a NetworkPolicy enforcer installed?)",
        ),
        _ => {
            let first_bad = conn
                .iter()
                .flatten()
                .find(|c| c.status != Status::Pass)
                .map_or_else(|| "a step did not run".to_owned(), |c| format!("{}: {} ({})", c.cell, c.observed, c.why));
            r.push(
                "enforcement",
                State::Fail,
                format!("the enforcement check could not be completed: {first_bad}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netreach_core::cluster::ClusterAction;
    use netreach_core::cluster::fake::FakeCluster;
    use netreach_core::outcome::Outcome;

    fn run(enforcing: bool, dns: bool) -> DoctorReport {
        let s = scenario(false).expect("the doctor's scenario is valid");
        let mut c = FakeCluster::new(move |p, applied: &[ClusterAction]| {
            if p.cell.port.is_none() {
                return if dns {
                    Outcome::Resolved
                } else {
                    Outcome::TimedOut
                };
            }
            let denied = applied.iter().rev().find_map(|a| match a {
                ClusterAction::ApplyPolicy { .. } => Some(true),
                ClusterAction::DeletePolicy { .. } => Some(false),
                _ => None,
            });
            if enforcing && denied == Some(true) {
                Outcome::Refused
            } else {
                Outcome::Connected
            }
        });
        let mut opts = RunOptions::fast(Naming::PerRun {
            run_id: "doc123".into(),
        });
        opts.converge_timeout = Duration::ZERO;
        let report = run_scenario(&s, &mut c, &opts, &mut |_| {});
        let mut r = DoctorReport::default();
        live_checks(&mut r, &report, "img");
        r
    }

    fn state(r: &DoctorReport, name: &str) -> (State, String) {
        let c = r
            .checks
            .iter()
            .find(|c| c.name == name)
            .expect("the check ran");
        (c.state, c.detail.clone())
    }

    #[test]
    fn an_enforcing_cluster_passes_and_a_non_enforcing_one_is_named() {
        let ok = run(true, true);
        assert!(!ok.failed(), "{ok:?}");
        let (st, d) = state(&ok, "enforcement");
        assert_eq!(st, State::Ok, "{d}");
        let bad = run(false, true);
        let (st, d) = state(&bad, "enforcement");
        assert_eq!(st, State::Fail);
        assert!(d.contains("does NOT enforce"), "{d}");
        let (st, _) = state(&run(true, false), "dns");
        assert_eq!(st, State::Fail);
    }

    #[test]
    fn the_scenario_in_a_given_namespace_declares_no_labels() {
        let s = scenario(true).expect("valid");
        assert!(s.namespaces.iter().all(|n| n.labels.is_empty()));
    }
}
