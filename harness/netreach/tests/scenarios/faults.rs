//! Cluster tests of trust under faults, grouped `faults`: a dead probe pod is never a verdict,
//! gc never takes a live run, an interrupt at any instant leaves nothing, a second interrupt
//! escapes a hung API server, a cut exec stream fails fast. Each reproduces a defect that was
//! found by fault injection; the fault proxy (support.rs) stands in for a slow, hung or broken
//! API server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use libtest_mimic::Failed;

use netreach::bind::{Bindings, BoundProbe};
use netreach::cluster::{Cluster, ClusterAction, DeployPlan, InfraError};
use netreach::kube::{self as nk, KubeOptions};
use netreach::names::Naming;
use netreach::outcome::{Observation, Outcome, ProbeError};
use netreach::probe::ProbeTimeout;
use netreach::report::{self, ScenarioStatus, text};
use netreach::run::{RunOptions, new_run_id, run_scenario};
use netreach::scenario;
use netreach::verdict::Status;

use super::support::{FaultProxy, ProxyMode, check, client, renamed_fixture, rt, slow_fixture};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/lifecycle")
        .join(name)
}

pub type Body = fn(&str) -> Result<(), Failed>;

/// The tests of this group.
pub const TESTS: [(&str, Body); 5] = [
    ("dead-pod-is-an-error", dead_pod_is_an_error),
    (
        "gc-spares-waiting-and-kept-runs",
        gc_spares_waiting_and_kept_runs,
    ),
    ("interrupt-at-any-instant", interrupt_at_any_instant),
    (
        "second-interrupt-escapes-a-hung-api",
        second_interrupt_escapes_a_hung_api,
    ),
    ("cut-exec-stream-fails-fast", cut_exec_stream_fails_fast),
];

/// A cluster that force-deletes a pod right before its `at`-th probe round.
struct DeleteBeforeProbe {
    inner: Box<dyn Cluster>,
    admin: String,
    victim: (String, String),
    rounds: usize,
    at: usize,
    bindings: Option<Bindings>,
}

impl Cluster for DeleteBeforeProbe {
    fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError> {
        let b = self.inner.deploy(plan)?;
        self.bindings = Some(b.clone());
        Ok(b)
    }
    fn apply(&mut self, actions: &[ClusterAction]) -> Result<Bindings, InfraError> {
        self.inner.apply(actions)
    }
    fn probe(
        &mut self,
        probes: &[BoundProbe],
        timeout: ProbeTimeout,
    ) -> Result<Vec<Observation>, InfraError> {
        self.rounds += 1;
        if self.rounds == self.at
            && let Some(b) = &self.bindings
        {
            let ns = b.namespace(&self.victim.0).unwrap_or_default().to_owned();
            let pod = self.victim.1.clone();
            let admin = self.admin.clone();
            let _ = rt().block_on(async move {
                let c = client(&admin).await?;
                let api: Api<Pod> = Api::namespaced(c, &ns);
                api.delete(&pod, &DeleteParams::default().grace_period(0))
                    .await
                    .map_err(|e| Failed::from(e.to_string()))?;
                // Until it is gone: what the run then sees is a dead pod, not a dying one.
                for _ in 0..100 {
                    if matches!(api.get_opt(&pod).await, Ok(None)) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok::<_, Failed>(())
            });
        }
        self.inner.probe(probes, timeout)
    }
    fn keep(&mut self) -> Result<(), InfraError> {
        self.inner.keep()
    }
    fn teardown(&mut self) -> Result<(), InfraError> {
        self.inner.teardown()
    }
}

/// Defect 1: force-deleting a target pod while a step probes gave "observed blocked", and where
/// the step expected "blocked", a pass.
fn dead_pod_is_an_error(context: &str) -> Result<(), Failed> {
    let s = scenario::load(&fixture("dead-target.yaml"))
        .scenario
        .ok_or("fixture is invalid")?;
    let inner = nk::connect(context, KubeOptions::default()).map_err(|e| e.to_string())?;
    // Round 1: step 1; round 2: its confirmation; round 3: step 2's first round.
    let mut c = DeleteBeforeProbe {
        inner,
        admin: context.to_owned(),
        victim: ("x".into(), "b".into()),
        rounds: 0,
        at: 3,
        bindings: None,
    };
    let mut opts = RunOptions::new(Naming::PerRun {
        run_id: new_run_id(),
    });
    opts.converge_timeout = Duration::from_secs(5);
    let r = run_scenario(&s, &mut c, &opts, &mut |_| {});
    let txt = text::render_scenario(&r);
    check(
        r.steps[0].counts.pass == 4,
        format!("step 1 should pass:\n{txt}"),
    )?;
    let step = &r.steps[1];
    for cell in &step.results {
        let touches_b = cell.cell.from.name == "b" || cell.cell.to.to_string() == "x/b";
        if touches_b {
            check(
                cell.status == Status::Error
                    && matches!(cell.outcome, Outcome::Error(ProbeError::PodNotLive { .. })),
                format!(
                    "{} is judged {:?} ({}), not an error:\n{txt}",
                    cell.cell, cell.status, cell.outcome
                ),
            )?;
        } else {
            check(
                cell.status == Status::Pass,
                format!("{}:\n{txt}", cell.cell),
            )?;
        }
    }
    check(
        r.status == ScenarioStatus::Error
            && report::exit_code(std::slice::from_ref(&r)) == netreach::exit::INFRASTRUCTURE,
        format!(
            "status {:?}, expected an infrastructure error:\n{txt}",
            r.status
        ),
    )?;
    let junit = report::junit::render(std::slice::from_ref(&r));
    check(
        junit.contains("<error") && !junit.contains("<failure"),
        format!("JUnit must carry an <error>, no <failure>:\n{junit}"),
    )?;
    check(
        txt.contains("is gone"),
        format!("the report names what happened:\n{txt}"),
    )
}

fn run_namespaces(context: &str) -> Result<BTreeSet<String>, Failed> {
    Ok(nk::list_run_namespaces(context).map_err(|e| e.to_string())?)
}

/// Waits until `n` namespaces starting with one of `prefixes` appear that were not in `before`.
fn wait_for_namespaces(
    context: &str,
    before: &BTreeSet<String>,
    prefixes: &[String],
    n: usize,
    within: Duration,
) -> Result<Vec<String>, Failed> {
    let deadline = Instant::now() + within;
    loop {
        let ours: Vec<String> = run_namespaces(context)?
            .difference(before)
            .filter(|x| prefixes.iter().any(|p| x.starts_with(p.as_str())))
            .cloned()
            .collect();
        if ours.len() >= n || Instant::now() > deadline {
            return Ok(ours);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn netreach(args: &[&str], kubeconfig: Option<&Path>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netreach"));
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(k) = kubeconfig {
        c.env("KUBECONFIG", k);
    }
    c
}

fn interrupt(child: &Child) -> Result<(), Failed> {
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    check(st.success(), "kill -INT failed")
}

fn gc(context: &str, extra: &[&str]) -> Result<String, Failed> {
    let mut args = vec!["gc", "--context", context];
    args.extend_from_slice(extra);
    let out = netreach(&args, None).output().map_err(|e| e.to_string())?;
    check(
        out.status.success(),
        format!("gc failed: {}", String::from_utf8_lossy(&out.stderr)),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Defect 2: the heartbeat started only after pods were Ready, so gc (then 120 s) deleted a run
/// that waited for unschedulable pods; and gc deleted `--keep` namespaces.
fn gc_spares_waiting_and_kept_runs(context: &str) -> Result<(), Failed> {
    let before = run_namespaces(context)?;
    let (fix, prefixes) = slow_fixture("gc")?;
    let mut child = netreach(
        &[
            "run",
            "--context",
            context,
            "--node-selector",
            "netreach.dev/no-such-node=true",
            fix.to_str().unwrap_or_default(),
        ],
        None,
    )
    .spawn()
    .map_err(|e| e.to_string())?;
    let ours = wait_for_namespaces(context, &before, &prefixes, 2, Duration::from_secs(30))?;
    if ours.len() != 2 {
        let _ = child.kill();
        return Err(format!("the waiting run's namespaces never appeared ({ours:?})").into());
    }
    // Two heartbeat periods while its pods cannot schedule, then a gc that calls anything
    // without a heartbeat for 25 s stale.
    std::thread::sleep(Duration::from_secs(35));
    let out = gc(context, &["--stale-after", "25"]);
    let after = run_namespaces(context)?;
    interrupt(&child)?;
    let _ = child.wait();
    let out = out?;
    for n in &ours {
        check(
            after.contains(n) && !out.contains(n.as_str()),
            format!("gc deleted {n} of a run that was waiting for its pods:\n{out}"),
        )?;
    }
    // A kept run: gc leaves it unless asked.
    let before = run_namespaces(context)?;
    let (wrong, kept_prefix) = renamed_fixture("wrong-expectation.yaml", "gc", &["x"])?;
    let st = netreach(
        &[
            "run",
            "--context",
            context,
            "--keep",
            wrong.to_str().unwrap_or_default(),
        ],
        None,
    )
    .status()
    .map_err(|e| e.to_string())?;
    check(
        st.code() == Some(1),
        format!("the wrong fixture should exit 1, got {st}"),
    )?;
    let kept = wait_for_namespaces(context, &before, &kept_prefix, 1, Duration::from_secs(5))?;
    check(kept.len() == 1, format!("the kept namespace: {kept:?}"))?;
    let out = gc(context, &["--stale-after", "0", "--dry-run"])?;
    check(
        !out.contains(kept[0].as_str()),
        format!("gc would delete a kept namespace:\n{out}"),
    )?;
    let out = gc(
        context,
        &["--stale-after", "0", "--kept-older-than", "0", "--dry-run"],
    )?;
    check(
        out.contains(kept[0].as_str()),
        format!("gc --kept-older-than 0 would not delete the kept namespace:\n{out}"),
    )?;
    // Clean up only that namespace (other tests' runs may be live).
    let ns = kept[0].clone();
    rt().block_on(async {
        let c = client(context).await?;
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c);
        let _ = api.delete(&ns, &DeleteParams::default()).await;
        Ok::<_, Failed>(())
    })
}

/// Defect 3: Ctrl-C during namespace creation leaked a namespace. Through a proxy that makes
/// every API call slow, SIGINT at many instants of the deploy: nothing may be left.
fn interrupt_at_any_instant(context: &str) -> Result<(), Failed> {
    let proxy = FaultProxy::start(context, "instants")?;
    proxy.set(ProxyMode::Delay(Duration::from_millis(60)));
    let (fix, prefixes) = slow_fixture("instant")?;
    let mut leftovers = Vec::new();
    for ms in [300u64, 600, 900, 1200, 1600, 2200, 3000, 4500] {
        let before = run_namespaces(context)?;
        let child = netreach(
            &[
                "run",
                "--context",
                &proxy.context,
                fix.to_str().unwrap_or_default(),
            ],
            Some(&proxy.kubeconfig),
        )
        .spawn()
        .map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(ms));
        interrupt(&child)?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let left: Vec<String> = run_namespaces(context)?
            .difference(&before)
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())))
            .cloned()
            .collect();
        if !left.is_empty() || !matches!(out.status.code(), Some(130) | Some(0)) {
            leftovers.push(format!(
                "SIGINT after {ms} ms: {}, left {left:?}; its stderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    check(leftovers.is_empty(), leftovers.join("\n"))
}

/// Defect 4: Ctrl-C while the API hung could not be escaped; a second Ctrl-C was ignored.
fn second_interrupt_escapes_a_hung_api(context: &str) -> Result<(), Failed> {
    let proxy = FaultProxy::start(context, "hang")?;
    let before = run_namespaces(context)?;
    let (fix, prefixes) = slow_fixture("hang")?;
    let mut child = netreach(
        &[
            "run",
            "--context",
            &proxy.context,
            fix.to_str().unwrap_or_default(),
        ],
        Some(&proxy.kubeconfig),
    )
    .spawn()
    .map_err(|e| e.to_string())?;
    let ours = wait_for_namespaces(context, &before, &prefixes, 2, Duration::from_secs(60))?;
    proxy.set(ProxyMode::Hang);
    interrupt(&child)?;
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    interrupt(&child)?;
    let mut exited = None;
    while t.elapsed() < Duration::from_secs(5) {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            exited = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.set(ProxyMode::Pass);
    let stderr = match exited {
        Some(_) => {
            let mut s = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut s);
            }
            s
        }
        None => {
            let _ = child.kill();
            String::new()
        }
    };
    // Whatever was left is this test's to remove (other runs may be live: by name only).
    rt().block_on(async {
        let c = client(context).await?;
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c);
        for n in &ours {
            let _ = api.delete(n, &DeleteParams::default()).await;
        }
        Ok::<_, Failed>(())
    })?;
    let st =
        exited.ok_or("a second SIGINT did not make netreach exit within 5 s while the API hung")?;
    check(
        st.code() == Some(130),
        format!("exit {st} after the second SIGINT"),
    )?;
    check(
        stderr.contains("netreach gc --context"),
        format!("the exit names the gc command:\n{stderr}"),
    )
}

/// A cluster whose API connections are cut while a probe round runs.
struct CutDuringProbe {
    inner: Box<dyn Cluster>,
    proxy: FaultProxy,
    rounds: usize,
    took: Vec<Duration>,
}

impl Cluster for CutDuringProbe {
    fn deploy(&mut self, plan: &DeployPlan) -> Result<Bindings, InfraError> {
        self.inner.deploy(plan)
    }
    fn apply(&mut self, actions: &[ClusterAction]) -> Result<Bindings, InfraError> {
        self.inner.apply(actions)
    }
    fn probe(
        &mut self,
        probes: &[BoundProbe],
        timeout: ProbeTimeout,
    ) -> Result<Vec<Observation>, InfraError> {
        self.rounds += 1;
        let cut = self.rounds == 1;
        if cut {
            let p = self.proxy.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(400));
                p.cut();
            });
        }
        let t = Instant::now();
        let r = self.inner.probe(probes, timeout);
        self.took.push(t.elapsed());
        r
    }
    fn teardown(&mut self) -> Result<(), InfraError> {
        self.inner.teardown()
    }
}

/// Defect 7: a cut exec stream waited its full deadline (24 s) per exec. Probes whose
/// connections are cut are lost answers: retried at once, never policy, and fast.
fn cut_exec_stream_fails_fast(context: &str) -> Result<(), Failed> {
    let proxy = FaultProxy::start(context, "cut")?;
    let s = scenario::load(&fixture("wrong-expectation.yaml"))
        .scenario
        .ok_or("fixture is invalid")?;
    let opts = KubeOptions {
        kubeconfig: Some(proxy.kubeconfig.clone()),
        ..KubeOptions::default()
    };
    let inner = nk::connect(&proxy.context, opts).map_err(|e| e.to_string())?;
    let mut c = CutDuringProbe {
        inner,
        proxy,
        rounds: 0,
        took: Vec::new(),
    };
    let mut opts = RunOptions::new(Naming::PerRun {
        run_id: new_run_id(),
    });
    opts.probe_timeout = ProbeTimeout(1);
    let r = run_scenario(&s, &mut c, &opts, &mut |_| {});
    let txt = text::render_scenario(&r);
    let took = c.took.first().copied().unwrap_or_default();
    check(
        took < Duration::from_secs(8),
        format!(
            "the cut round took {took:?}, not fast (all rounds: {:?}):\n{txt}",
            c.took
        ),
    )?;
    // Lost answers are never policy: every cell is either the cluster's real answer (the
    // fixture's known wrong cell fails, the rest pass) or an error.
    check(
        r.steps[0].counts.fail <= 1,
        format!("a cut stream was judged as policy:\n{txt}"),
    )
}
