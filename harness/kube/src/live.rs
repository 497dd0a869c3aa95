//! What this process's runs are creating, for cleanup on interrupt.
//!
//! The race this closes: a signal thread that cleans from a snapshot while the main thread keeps
//! creating leaks whatever is created after the snapshot. Here:
//! - every create is announced with [`LiveRun::begin`] *before* the API call, which records the
//!   name and counts the call as in flight; after an interrupt [`LiveRun::begin`] refuses
//!   ([`InfraError::Interrupted`]), so nothing new starts;
//! - [`cleanup_live`] first stops new creates, waits (bounded) for the calls in flight to
//!   return, then deletes what was recorded *and* whatever carries the run's label (namespaces
//!   and containers), so an object whose create raced the interrupt is found either way;
//! - cleanup has a deadline; what it could not confirm gone is returned, with the `netreach gc`
//!   command that removes it later.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams};

use netreach_core::cluster::InfraError;

use crate::RUN_LABEL;
use crate::client::{client_for, small_runtime};

/// Set once an interrupt began cleanup: no run creates anything after it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs of this process.
static RUNS: Mutex<Vec<Arc<LiveRun>>> = Mutex::new(Vec::new());

/// Whether cleanup after an interrupt has begun.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// After an interrupt, the main thread must not end the process (with its own exit code, while
/// cleanup still deletes): it waits here for the signal thread, which exits with 130 once
/// cleanup is done or a second signal comes. Returns at once when there was no interrupt.
pub fn wait_if_interrupted() {
    while interrupted() {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Debug, Default)]
struct State {
    namespaces: BTreeSet<String>,
    containers: BTreeSet<String>,
    /// Namespaces the run does not own that hold its run record.
    records: BTreeSet<String>,
    in_flight: usize,
    /// Torn down (or kept): nothing of it is cleaned up on interrupt.
    finished: bool,
}

/// One run's objects as they are being created.
#[derive(Debug)]
pub struct LiveRun {
    /// The kubeconfig context.
    pub context: String,
    /// The run id (the value of [`RUN_LABEL`] on everything it creates).
    pub run_id: String,
    state: Mutex<State>,
}

/// What kind of object a create makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A namespace (everything inside goes with it).
    Namespace,
    /// A Docker container (an external endpoint).
    Container,
    /// The run record in a namespace the run does not own (the namespace's name).
    Record,
}

/// A create in flight; dropping it ends the call.
#[derive(Debug)]
pub struct InFlight<'a>(&'a LiveRun);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
    }
}

impl LiveRun {
    /// Registers a run.
    pub fn register(context: &str, run_id: &str) -> Arc<LiveRun> {
        let run = Arc::new(LiveRun {
            context: context.to_owned(),
            run_id: run_id.to_owned(),
            state: Mutex::new(State::default()),
        });
        if let Ok(mut runs) = RUNS.lock() {
            runs.push(Arc::clone(&run));
        }
        run
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock still holds the names: keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Announces a create before the API call: records the name; refused after an interrupt.
    ///
    /// # Errors
    /// [`InfraError::Interrupted`] once cleanup has begun.
    pub fn begin(&self, kind: Kind, name: &str) -> Result<InFlight<'_>, InfraError> {
        let mut st = self.lock();
        if interrupted() {
            return Err(InfraError::Interrupted);
        }
        match kind {
            Kind::Namespace => st.namespaces.insert(name.to_owned()),
            Kind::Container => st.containers.insert(name.to_owned()),
            Kind::Record => st.records.insert(name.to_owned()),
        };
        st.in_flight += 1;
        Ok(InFlight(self))
    }

    /// The namespaces recorded so far (created or being created).
    pub fn namespaces(&self) -> Vec<String> {
        self.lock().namespaces.iter().cloned().collect()
    }

    /// A namespace a step removed (and waited for until gone): no heartbeat, no cleanup.
    pub fn forget_namespace(&self, name: &str) {
        self.lock().namespaces.remove(name);
    }

    /// The namespaces holding the run's record (not owned by it).
    pub fn records(&self) -> Vec<String> {
        self.lock().records.iter().cloned().collect()
    }

    /// The run ended (torn down, or kept on purpose): an interrupt leaves it alone.
    pub fn finish(&self) {
        let mut st = self.lock();
        st.finished = true;
    }
}

/// What cleanup after an interrupt did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Objects deleted (or already terminating).
    pub deleted: Vec<String>,
    /// Objects that may be left (deadline passed, or deletion failed), with why.
    pub left: Vec<String>,
    /// Contexts with runs that may have left something (for the `netreach gc` hint).
    pub contexts: Vec<String>,
}

/// Stops every run of this process from creating more, and deletes what they created, within
/// `deadline`. Blocks (call it from the signal thread).
pub fn cleanup_live(deadline: Duration) -> CleanupReport {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let end = Instant::now() + deadline;
    let runs: Vec<Arc<LiveRun>> = RUNS.lock().map(|r| r.clone()).unwrap_or_default();
    let runs: Vec<Arc<LiveRun>> = runs.into_iter().filter(|r| !r.lock().finished).collect();
    let mut report = CleanupReport::default();
    // Let the creates in flight return (their objects are then found by label too).
    let settle = Instant::now() + Duration::from_secs(5).min(deadline / 3);
    while runs.iter().any(|r| r.lock().in_flight > 0) && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    for run in runs {
        let (namespaces, containers, records, in_flight) = {
            let st = run.lock();
            (
                st.namespaces.clone(),
                st.containers.clone(),
                st.records.clone(),
                st.in_flight,
            )
        };
        if in_flight > 0 {
            report.left.push(format!(
                "{in_flight} create call(s) of run {} had not returned",
                run.run_id
            ));
        }
        for c in crate::external::remove_by_run(&run.run_id, &containers, remaining(end)) {
            match c {
                Ok(name) => report.deleted.push(format!("container {name}")),
                Err(e) => report.left.push(e),
            }
        }
        match undo_records(&run.context, &run.run_id, &records, end) {
            Ok(u) => {
                report.deleted.extend(u.done);
                report.left.extend(u.failed);
            }
            Err(e) => report.left.push(format!(
                "run records of run {} in {}: {e}",
                run.run_id,
                records.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
        match delete_run_namespaces(&run.context, &run.run_id, &namespaces, end) {
            Ok((deleted, left)) => {
                report
                    .deleted
                    .extend(deleted.into_iter().map(|n| format!("namespace {n}")));
                report.left.extend(left);
            }
            Err(e) => report.left.push(format!(
                "namespaces of run {} ({}): {e}",
                run.run_id,
                namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
        if !report.left.is_empty() && !report.contexts.contains(&run.context) {
            report.contexts.push(run.context.clone());
        }
    }
    report
}

/// Undoes the run's records in namespaces it does not own, within the deadline.
fn undo_records(
    context: &str,
    run_id: &str,
    namespaces: &BTreeSet<String>,
    end: Instant,
) -> Result<crate::record::Undone, String> {
    if namespaces.is_empty() {
        return Ok(crate::record::Undone::default());
    }
    let rt = small_runtime(context).map_err(|e| e.to_string())?;
    let work = async {
        let client = client_for(context).await.map_err(|e| e.to_string())?;
        let mut all = crate::record::Undone::default();
        for ns in namespaces {
            let u = crate::record::undo(&client, ns, run_id).await;
            all.done.extend(u.done);
            all.failed.extend(u.failed);
        }
        Ok::<_, String>(all)
    };
    match rt.block_on(async { tokio::time::timeout(remaining(end), work).await }) {
        Ok(r) => r,
        Err(_) => Err("the cleanup deadline passed before the API server answered".into()),
    }
}

fn remaining(end: Instant) -> Duration {
    end.saturating_duration_since(Instant::now())
}

/// Deletes `recorded` and every namespace labelled with the run, within the deadline.
fn delete_run_namespaces(
    context: &str,
    run_id: &str,
    recorded: &BTreeSet<String>,
    end: Instant,
) -> Result<(Vec<String>, Vec<String>), String> {
    let rt = small_runtime(context).map_err(|e| e.to_string())?;
    let work = async {
        let client = client_for(context).await.map_err(|e| e.to_string())?;
        let api: Api<Namespace> = Api::all(client);
        let mut names = recorded.clone();
        let lp = ListParams::default().labels(&format!("{RUN_LABEL}={run_id}"));
        if let Ok(list) = api.list(&lp).await {
            names.extend(list.into_iter().filter_map(|n| n.metadata.name));
        }
        let mut deleted = Vec::new();
        let mut left = Vec::new();
        for n in &names {
            match api.delete(n, &DeleteParams::background()).await {
                Ok(_) => deleted.push(n.clone()),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => left.push(format!("namespace {n}: {e}")),
            }
        }
        Ok::<_, String>((deleted, left))
    };
    match rt.block_on(async { tokio::time::timeout(remaining(end), work).await }) {
        Ok(r) => r,
        Err(_) => Err("the cleanup deadline passed before the API server answered".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once cleanup has begun, no create may start; what was announced is recorded.
    #[test]
    fn begin_records_before_the_call_and_refuses_after_an_interrupt() {
        let run = LiveRun::register("ctx", "abc123");
        {
            let _g = run
                .begin(Kind::Namespace, "x-abc123")
                .expect("not interrupted");
            assert_eq!(run.lock().in_flight, 1);
            assert_eq!(run.namespaces(), ["x-abc123"]);
        }
        assert_eq!(run.lock().in_flight, 0, "the guard ends the call");
        INTERRUPTED.store(true, Ordering::SeqCst);
        let refused = run.begin(Kind::Namespace, "y-abc123");
        INTERRUPTED.store(false, Ordering::SeqCst);
        assert!(matches!(refused, Err(InfraError::Interrupted)));
        assert_eq!(
            run.namespaces(),
            ["x-abc123"],
            "a refused create records nothing"
        );
        run.forget_namespace("x-abc123");
        assert!(
            run.namespaces().is_empty(),
            "a removed namespace is forgotten"
        );
    }
}
