//! `netreach gc`: what crashed or interrupted runs left behind.
//!
//! One rule for namespaces and containers: a run is alive while any of its namespaces
//! (labelled [`RUN_LABEL`]) has a heartbeat younger than `stale`; a live run's heartbeat is
//! renewed every [`crate::HEARTBEAT_EVERY`] from before its first namespace on. Runs kept on
//! purpose ([`KEPT_LABEL`]) are left unless asked (`kept`, or kept longer than an age). A
//! container of a run (labelled with its id) goes with the run's namespaces; a container whose
//! run has no namespace left goes once it is older than `stale`. Nothing without netreach's
//! label is ever touched.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams};

use netreach_core::cluster::InfraError;

use crate::client::{Req, api_error, client_for, small_runtime, unreachable};
use crate::external::{self, Labelled};
use crate::session::delete_namespaces;
use crate::{HEARTBEAT_ANNOTATION, KEPT_LABEL, RUN_LABEL, now_secs};

/// What gc may delete.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// A run whose newest heartbeat is older than this is gone.
    pub stale: Duration,
    /// Also runs kept on purpose (`--keep`).
    pub kept: bool,
    /// Also runs kept on purpose longer than this.
    pub kept_older_than: Option<Duration>,
    /// Only say what would be deleted.
    pub dry_run: bool,
    /// Look for run records only in these namespaces (for users without cluster-wide list
    /// permissions, e.g. who run in namespaces they were given); empty: everywhere.
    pub namespaces: Vec<String>,
}

/// What gc found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Namespaces deleted (or, dry run, that would be).
    pub namespaces: Vec<String>,
    /// Containers removed (or that would be).
    pub containers: Vec<String>,
    /// Namespaces left because their run was kept on purpose.
    pub kept: Vec<String>,
    /// Namespaces of live runs.
    pub live: Vec<String>,
    /// Why containers were not looked at (no Docker here), if so.
    pub docker: Option<String>,
    /// Run records undone (namespace), in namespaces the runs did not own.
    pub records: Vec<String>,
    /// What could not be removed or undone.
    pub errors: Vec<String>,
}

/// A namespace as gc sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunNamespace {
    /// Name.
    pub name: String,
    /// The run id label.
    pub run_id: String,
    /// Newest heartbeat, unix seconds (`None`: no heartbeat annotation: not ours to judge).
    pub heartbeat: Option<u64>,
    /// Kept on purpose.
    pub kept: bool,
    /// Already terminating.
    pub terminating: bool,
}

/// The decision, pure: which namespaces, containers and run records go, at time `now`. Run
/// records (in namespaces a run did not own) count as the run's namespaces for liveness; the
/// record's name is its namespace.
pub fn decide(
    namespaces: &[RunNamespace],
    records: &[RunNamespace],
    containers: &[Labelled],
    o: &GcOptions,
    now: u64,
) -> GcReport {
    let all: Vec<RunNamespace> = namespaces.iter().chain(records).cloned().collect();
    let mut r = decide_namespaces(&all, containers, o, now);
    let is_record = |n: &String| records.iter().any(|x| &x.name == n);
    r.records = r
        .namespaces
        .iter()
        .filter(|n| is_record(n))
        .cloned()
        .collect();
    r.namespaces.retain(|n| !is_record(n));
    r.live.retain(|n| !is_record(n));
    r.kept.retain(|n| !is_record(n));
    r
}

fn decide_namespaces(
    namespaces: &[RunNamespace],
    containers: &[Labelled],
    o: &GcOptions,
    now: u64,
) -> GcReport {
    let stale = o.stale.as_secs();
    let age = |t: u64| now.saturating_sub(t);
    let mut r = GcReport::default();
    // Per run: alive (any fresh heartbeat) and kept.
    let mut alive: BTreeSet<&str> = BTreeSet::new();
    let mut kept_runs: BTreeMap<&str, u64> = BTreeMap::new();
    for n in namespaces {
        if let Some(b) = n.heartbeat {
            if !n.kept && age(b) <= stale {
                alive.insert(&n.run_id);
            }
            if n.kept {
                let e = kept_runs.entry(&n.run_id).or_insert(b);
                *e = (*e).max(b);
            }
        }
    }
    let kept_goes = |run: &str| -> bool {
        kept_runs
            .get(run)
            .is_some_and(|&b| o.kept || o.kept_older_than.is_some_and(|d| age(b) >= d.as_secs()))
    };
    let mut gone_runs: BTreeSet<&str> = BTreeSet::new();
    for n in namespaces {
        let Some(b) = n.heartbeat else { continue };
        if n.terminating {
            continue;
        }
        if n.kept {
            if kept_goes(&n.run_id) {
                r.namespaces.push(n.name.clone());
                gone_runs.insert(&n.run_id);
            } else {
                r.kept.push(n.name.clone());
            }
        } else if alive.contains(n.run_id.as_str()) || age(b) <= stale {
            r.live.push(n.name.clone());
        } else {
            r.namespaces.push(n.name.clone());
            gone_runs.insert(&n.run_id);
        }
    }
    let has_namespace: BTreeSet<&str> = namespaces
        .iter()
        .filter(|n| n.heartbeat.is_some())
        .map(|n| n.run_id.as_str())
        .collect();
    for c in containers {
        let run = c.run_id.as_str();
        let goes = if alive.contains(run) {
            false
        } else if kept_runs.contains_key(run) {
            kept_goes(run)
        } else if has_namespace.contains(run) {
            gone_runs.contains(run)
        } else {
            age(c.created) > stale
        };
        if goes {
            r.containers.push(c.name.clone());
        }
    }
    r
}

/// Removes what runs no longer alive left behind (see the module docs).
///
/// # Errors
/// When the cluster cannot be reached (Docker being unreachable is reported, not an error:
/// staging machines often have no Docker at all).
pub fn gc(context: &str, o: &GcOptions) -> Result<GcReport, InfraError> {
    let rt = small_runtime(context)?;
    rt.block_on(async {
        let client = client_for(context).await?;
        let lp = ListParams::default().labels(RUN_LABEL);
        let namespaces: Vec<RunNamespace> = if o.namespaces.is_empty() {
            let api: Api<Namespace> = Api::all(client.clone());
            let list = api.list(&lp).await.map_err(|e| {
                api_error(context, Req::cluster("list", "namespaces"), &e, |r| {
                    unreachable(context, r)
                })
            })?;
            list.into_iter()
                .filter_map(|ns| as_run(&ns.metadata, ns.metadata.name.clone()?))
                .collect()
        } else {
            Vec::new()
        };
        let mut record_cms: Vec<ConfigMap> = Vec::new();
        if o.namespaces.is_empty() {
            let api: Api<ConfigMap> = Api::all(client.clone());
            record_cms.extend(api.list(&lp).await.map_err(|e| {
                api_error(context, Req::cluster("list", "configmaps"), &e, |r| {
                    unreachable(context, r)
                })
            })?);
        } else {
            for ns in &o.namespaces {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
                record_cms.extend(api.list(&lp).await.map_err(|e| {
                    api_error(context, Req::ns("list", "configmaps", ns), &e, |r| {
                        unreachable(context, r)
                    })
                })?);
            }
        }
        let records: Vec<RunNamespace> = record_cms
            .iter()
            .filter(|cm| {
                cm.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("netreach-run-"))
            })
            .filter_map(|cm| as_run(&cm.metadata, cm.metadata.namespace.clone()?))
            .collect();
        let (containers, docker) = match external::list(None).await {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut report = decide(&namespaces, &records, &containers, o, now_secs());
        report.docker = docker;
        if !o.dry_run {
            for ns in &report.records {
                let run_id = records
                    .iter()
                    .find(|r| &r.name == ns)
                    .map(|r| r.run_id.clone())
                    .unwrap_or_default();
                let u = crate::record::undo(&client, ns, &run_id).await;
                report.errors.extend(u.failed);
            }
            delete_namespaces(client, &report.namespaces)
                .await
                .map_err(InfraError::Teardown)?;
            for r in external::remove(&report.containers).await {
                if let Err(e) = r {
                    report.errors.push(e);
                }
            }
        }
        Ok(report)
    })
}

/// A namespace or run record as gc judges it, from its metadata.
fn as_run(
    m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    name: String,
) -> Option<RunNamespace> {
    let labels = m.labels.clone().unwrap_or_default();
    Some(RunNamespace {
        name,
        run_id: labels.get(RUN_LABEL).cloned()?,
        heartbeat: m
            .annotations
            .as_ref()
            .and_then(|a| a.get(HEARTBEAT_ANNOTATION))
            .and_then(|b| b.parse::<u64>().ok()),
        kept: labels.get(KEPT_LABEL).is_some_and(|v| v == "true"),
        terminating: m.deletion_timestamp.is_some(),
    })
}

/// The names of namespaces carrying [`RUN_LABEL`] and not terminating (for tests).
///
/// # Errors
/// When the cluster cannot be reached.
pub fn list_run_namespaces(context: &str) -> Result<BTreeSet<String>, InfraError> {
    let rt = small_runtime(context)?;
    rt.block_on(async {
        let client = client_for(context).await?;
        let api: Api<Namespace> = Api::all(client);
        let list = api
            .list(&ListParams::default().labels(RUN_LABEL))
            .await
            .map_err(|e| unreachable(context, e))?;
        Ok(list
            .into_iter()
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .filter_map(|n| n.metadata.name)
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn ns(name: &str, run: &str, beat_age: u64, kept: bool) -> RunNamespace {
        RunNamespace {
            name: name.into(),
            run_id: run.into(),
            heartbeat: Some(NOW - beat_age),
            kept,
            terminating: false,
        }
    }

    fn container(name: &str, run: &str, age: u64) -> Labelled {
        Labelled {
            name: name.into(),
            run_id: run.into(),
            created: NOW - age,
        }
    }

    fn opts() -> GcOptions {
        GcOptions {
            stale: Duration::from_secs(300),
            kept: false,
            kept_older_than: None,
            dry_run: true,
            namespaces: Vec::new(),
        }
    }

    /// A run record in a given namespace goes with its run, and is reported as a record.
    #[test]
    fn records_of_dead_runs_are_undone_and_live_ones_kept() {
        let records = [
            ns("team-a", "dead", 400, false),
            ns("team-b", "live", 5, false),
        ];
        let nss = [ns("x-live", "live", 5, false)];
        let r = decide(&nss, &records, &[], &opts(), NOW);
        assert_eq!(r.records, ["team-a"]);
        assert!(r.namespaces.is_empty(), "{r:?}");
        assert_eq!(r.live, ["x-live"]);
    }

    #[test]
    fn only_runs_without_a_fresh_heartbeat_go_with_their_containers() {
        let nss = [
            ns("a-live", "live", 10, false),
            ns("b-live", "live", 1000, false), // an old namespace of a live run stays
            ns("a-dead", "dead", 301, false),
            ns("a-kept", "kept", 5000, true),
        ];
        let cs = [
            container("ext-live", "live", 5000),
            container("ext-dead", "dead", 5000),
            container("ext-kept", "kept", 5000),
            container("ext-orphan-old", "orphan", 301),
            container("ext-orphan-new", "orphan2", 10),
        ];
        let r = decide(&nss, &[], &cs, &opts(), NOW);
        assert_eq!(r.namespaces, ["a-dead"]);
        assert_eq!(r.live, ["a-live", "b-live"]);
        assert_eq!(r.kept, ["a-kept"]);
        assert_eq!(r.containers, ["ext-dead", "ext-orphan-old"]);
    }

    #[test]
    fn kept_runs_go_only_when_asked() {
        let nss = [ns("a-kept", "kept", 5000, true)];
        let cs = [container("ext-kept", "kept", 5000)];
        let all = GcOptions {
            kept: true,
            ..opts()
        };
        let r = decide(&nss, &[], &cs, &all, NOW);
        assert_eq!((r.namespaces.len(), r.containers.len()), (1, 1));
        let young = GcOptions {
            kept_older_than: Some(Duration::from_secs(6000)),
            ..opts()
        };
        assert!(decide(&nss, &[], &cs, &young, NOW).namespaces.is_empty());
        let old = GcOptions {
            kept_older_than: Some(Duration::from_secs(4000)),
            ..opts()
        };
        assert_eq!(decide(&nss, &[], &cs, &old, NOW).namespaces, ["a-kept"]);
    }

    /// A run waiting for pods that never schedule keeps renewing its heartbeat: never stale.
    #[test]
    fn a_namespace_without_heartbeat_is_not_ours_to_judge() {
        let mut n = ns("foreign", "x", 0, false);
        n.heartbeat = None;
        let r = decide(&[n], &[], &[], &opts(), NOW);
        assert!(r.namespaces.is_empty() && r.live.is_empty());
    }
}
