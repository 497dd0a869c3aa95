//! `cargo xtask soak --faults [--runs N] [--seed S]`: runs of a shipped scenario, each with one
//! fault injected at a random instant, summarised into docs/soak.md (between the
//! `soak-faults:begin`/`soak-faults:end` markers).
//!
//! Size: the four faults, the checks of each and the table, in one place (each function is
//! short; 60 lines are the unit tests).
//!
//! Faults, a quarter of the runs each (in a random order from the seed):
//! - `pod-deleted`: one of the run's probe pods is deleted once it is ready;
//! - `exec-cut`: netreach talks to the API server through netreach-testkit's proxy, which cuts
//!   every open connection (exec streams included) twice;
//! - `apiserver-stopped`: `crictl stop` of the kube-apiserver container inside the kit's own
//!   control-plane container (`netreach-control-plane`: only ever the kit's cluster), repeated
//!   whenever the kubelet restarts it, for 5–30 s;
//! - `sigint`: SIGINT to netreach at a random instant.
//!
//! Per run it checks: the exit code is one the fault allows (0 or 4; 130 after SIGINT); no
//! failed cell (a cell judged as policy while a fault touched it would be one: the scenario has no
//! known deviation on the kit's enforcer); after `pod-deleted`, no cell of that pod in the last
//! step is judged at all (all errors); after SIGINT, nothing of the run left 35 s later. At the end
//! `netreach gc --stale-after 1` must leave no namespace labelled `netreach.dev/run` and no
//! container of netreach's. Reports are kept under target/soak-faults/.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cluster::{CONTAINER_LABEL, ClusterEnv};
use crate::kit::Kit;
use crate::sanity::Kube;
use crate::util::{flag_value, utc_minute};
use crate::{cluster, project_root, replace_section};

/// The scenario every run uses: three steps, 25 cells each, no known deviation on kube-router.
const SCENARIO: &str = "scenarios/three-tier.yaml";
const CONTROL_PLANE: &str = "netreach-control-plane";
const RUN_LABEL: &str = "netreach.dev/run";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    PodDeleted,
    ExecCut,
    ApiServerStopped,
    Sigint,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::PodDeleted => "pod-deleted",
            Fault::ExecCut => "exec-cut",
            Fault::ApiServerStopped => "apiserver-stopped",
            Fault::Sigint => "sigint",
        }
    }
}

/// A small deterministic generator (xorshift64*), so a seed replays a soak's plan.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The plan: `runs` faults, each kind as often as the others (±1), shuffled.
fn plan(runs: usize, rng: &mut Rng) -> Vec<Fault> {
    let kinds = [
        Fault::PodDeleted,
        Fault::ExecCut,
        Fault::ApiServerStopped,
        Fault::Sigint,
    ];
    let mut v: Vec<Fault> = (0..runs).map(|i| kinds[i % kinds.len()]).collect();
    for i in (1..v.len()).rev() {
        let j = usize::try_from(rng.next() % (i as u64 + 1)).unwrap_or(0);
        v.swap(i, j);
    }
    v
}

/// One run's outcome.
struct Outcome {
    fault: Fault,
    /// What was done, when (seconds after start), e.g. "deleted x-ab12c/b at 14 s".
    did: String,
    exit: i32,
    cells: u64,
    pass: u64,
    fail: u64,
    error: u64,
    /// Cells of a deleted pod, or of any pod, judged as policy where the fault forbids it.
    judged_under_fault: u64,
    left_behind: usize,
    problems: Vec<String>,
    wall_s: f64,
}

pub fn main(args: &[String]) -> Result<()> {
    let perm = crate::host::DockerPermission::from_args(args);
    let runs: usize = match flag_value(args, "--runs") {
        Some(n) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .context("--runs needs a positive number")?,
        None => 20,
    };
    let seed: u64 = match flag_value(args, "--seed") {
        Some(s) => s.parse().context("--seed needs a number")?,
        None => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        }
    };
    crate::build_release_netreach()?;
    let env = cluster::ensure_up(perm)?;
    if env.context != cluster::CONTEXT {
        bail!("soak --faults runs only against the kit's own cluster");
    }
    let kit = Kit::open()?;
    let kube = Kube {
        kubectl: kit.kubectl(),
        kubeconfig: env.kubeconfig.clone(),
        context: env.context.clone(),
    };
    let root = project_root();
    let dir = root.join("target/soak-faults");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut rng = Rng(seed);
    let faults = plan(runs, &mut rng);
    let started = utc_minute();
    eprintln!("xtask: soak --faults: {runs} run(s) of {SCENARIO}, seed {seed}");
    let mut out = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let n = i + 1;
        let o = one_run(&root, &dir, &env, &kube, *fault, n, &mut rng)?;
        eprintln!(
            "xtask: soak --faults run {n}/{runs}: {} ({}): exit {}, cells {} pass / {} fail / {} error, {} judged under a fault, {} left behind, {:.0} s{}",
            o.fault.name(),
            o.did,
            o.exit,
            o.pass,
            o.fail,
            o.error,
            o.judged_under_fault,
            o.left_behind,
            o.wall_s,
            if o.problems.is_empty() {
                ""
            } else {
                "  <-- PROBLEM"
            }
        );
        for p in &o.problems {
            eprintln!("xtask:   {p}");
        }
        out.push(o);
    }
    // The end: whatever a fault left is garbage once its heartbeat is stale.
    std::thread::sleep(Duration::from_secs(2));
    let mut gc = Command::new(root.join("target/release/netreach"));
    gc.args(["gc", "--stale-after", "1", "--kept"]);
    env.apply(&mut gc);
    let gc_out = gc.output().context("cannot run netreach gc")?;
    let gc_text = String::from_utf8_lossy(&gc_out.stdout).into_owned();
    // Deleted namespaces take the namespace controller some seconds to finish.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut ns_left = run_namespaces(&kube)?.len();
    while ns_left > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        ns_left = run_namespaces(&kube)?.len();
    }
    let containers_left = netreach_containers()?;
    let section = render(
        &out,
        &started,
        seed,
        &gc_text,
        gc_out.status.code().unwrap_or(-1),
        ns_left,
        containers_left,
    );
    let path = root.join("docs/soak.md");
    replace_section(&path, "soak-faults", &section)?;
    eprintln!("xtask: wrote {}", path.display());
    let bad: usize = out.iter().map(|o| o.problems.len()).sum();
    if bad > 0 || ns_left > 0 || containers_left > 0 {
        bail!(
            "soak --faults: {bad} problem(s) in {runs} runs, {ns_left} namespace(s) and {containers_left} container(s) left after gc (see target/soak-faults/, seed {seed})"
        );
    }
    Ok(())
}

fn one_run(
    root: &Path,
    dir: &Path,
    env: &ClusterEnv,
    kube: &Kube,
    fault: Fault,
    n: usize,
    rng: &mut Rng,
) -> Result<Outcome> {
    let json = dir.join(format!("run-{n}.json"));
    let _ = std::fs::remove_file(&json);
    // Namespaces an earlier run left (an API-server fault can keep a teardown from finishing)
    // are gc's at the end, not this run's: faults and the cleanup check look at new ones only.
    let before: std::collections::BTreeSet<String> = run_namespaces(kube)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut cmd = Command::new(root.join("target/release/netreach"));
    cmd.args(["run", SCENARIO, "--json"])
        .arg(&json)
        .env("CI", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    env.apply(&mut cmd);
    // exec-cut: the whole run talks to the API server through the proxy.
    let proxy = if fault == Fault::ExecCut {
        let (p, kubeconfig) = proxied_kubeconfig(kube, dir)?;
        cmd.env("KUBECONFIG", &kubeconfig);
        Some(p)
    } else {
        None
    };
    let t = Instant::now();
    let child = cmd.spawn().context("cannot start netreach")?;
    let pid = child.id();
    let waiter = std::thread::spawn(move || wait_output(child));
    let done = |w: &std::thread::JoinHandle<_>| w.is_finished();
    let mut did = String::new();
    let mut deleted: Option<(String, String)> = None;
    match fault {
        Fault::PodDeleted => {
            if let Some((ns, pod)) =
                wait_ready_pod(kube, &before, Duration::from_secs(180), || done(&waiter))
            {
                std::thread::sleep(Duration::from_secs(rng.range(0, 6)));
                if !done(&waiter) {
                    let _ = kube.run(&["delete", "pod", "-n", &ns, &pod, "--wait=false"]);
                    did = format!("deleted {ns}/{pod} at {:.0} s", t.elapsed().as_secs_f64());
                    deleted = Some((ns, pod));
                }
            }
        }
        Fault::ExecCut => {
            let at = [rng.range(5, 15), rng.range(16, 30)];
            let mut cuts = Vec::new();
            for a in at {
                while t.elapsed() < Duration::from_secs(a) && !done(&waiter) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                if done(&waiter) {
                    break;
                }
                if let Some(p) = &proxy {
                    p.cut();
                    cuts.push(format!("{:.0}", t.elapsed().as_secs_f64()));
                }
            }
            if !cuts.is_empty() {
                did = format!("cut every connection at {} s", cuts.join(", "));
            }
        }
        Fault::ApiServerStopped => {
            let start_at = rng.range(5, 20);
            let hold = rng.range(5, 30);
            while t.elapsed() < Duration::from_secs(start_at) && !done(&waiter) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if !done(&waiter) {
                let began = t.elapsed().as_secs_f64();
                let stops = stop_apiserver_for(Duration::from_secs(hold));
                let back = wait_apiserver(kube, Duration::from_secs(180));
                did = format!(
                    "stopped kube-apiserver at {began:.0} s, held {hold} s ({stops} stop(s)), answering again after {back:.0} s"
                );
            }
        }
        Fault::Sigint => {
            let at = rng.range(2, 30);
            while t.elapsed() < Duration::from_secs(at) && !done(&waiter) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if !done(&waiter) {
                let _ = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
                did = format!("SIGINT at {:.0} s", t.elapsed().as_secs_f64());
            }
        }
    }
    // Empty: the run ended before the fault could be injected.
    let fault_happened = !did.is_empty();
    if !fault_happened {
        did = "the run ended before the fault".into();
    }
    let (code, stdout, stderr) = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("the waiter panicked"))??;
    let wall_s = t.elapsed().as_secs_f64();
    std::fs::write(
        dir.join(format!("run-{n}.txt")),
        format!("{did}\n\n{stdout}\n--- stderr ---\n{stderr}"),
    )?;
    let mut problems = Vec::new();
    let allowed: &[i32] = match (fault, fault_happened) {
        (Fault::Sigint, true) => &[130],
        _ => &[0, 4],
    };
    if !allowed.contains(&code) {
        problems.push(format!(
            "exit {code}, expected one of {allowed:?}; stderr tail: {}",
            tail(&stderr, 400)
        ));
    }
    let report: Option<Value> = std::fs::read_to_string(&json)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let (mut cells, mut pass, mut fail, mut error, mut judged) = (0, 0, 0, 0, 0);
    match (&report, fault == Fault::Sigint && fault_happened) {
        (Some(v), _) => {
            let steps: Vec<&Value> = v["scenarios"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["steps"].as_array().into_iter().flatten())
                .collect();
            for st in &steps {
                for r in st["results"].as_array().into_iter().flatten() {
                    cells += 1;
                    match r["status"].as_str() {
                        Some("pass") => pass += 1,
                        Some("fail") => {
                            fail += 1;
                            problems.push(format!(
                                "step {}: {} judged fail ({})",
                                st["index"],
                                r["cell"],
                                r["reason"].as_str().unwrap_or("")
                            ));
                        }
                        _ => error += 1,
                    }
                }
            }
            // The deleted pod is gone for the rest of the run: its cells in the last step are
            // errors, never a verdict.
            if let (Some((ns, pod)), Some(last)) = (&deleted, steps.last()) {
                let logical = format!("{}/{pod}", logical_namespace(ns));
                for r in last["results"].as_array().into_iter().flatten() {
                    let cell = r["cell"].as_str().unwrap_or("");
                    let touches = cell
                        .split(" -> ")
                        .any(|side| side.split_whitespace().next() == Some(logical.as_str()));
                    if touches && r["status"] != "error" {
                        judged += 1;
                        problems.push(format!(
                            "{cell} judged {} after its pod was deleted",
                            r["status"]
                        ));
                    }
                }
            }
        }
        (None, true) => {} // interrupted: no report, by design
        (None, false) => problems.push(format!(
            "no JSON report; stderr tail: {}",
            tail(&stderr, 400)
        )),
    }
    // What is left of this run. After SIGINT the cleanup has 30 s; else teardown has run.
    let new =
        |v: Vec<String>| -> Vec<String> { v.into_iter().filter(|n| !before.contains(n)).collect() };
    let left = if fault == Fault::Sigint && fault_happened {
        let deadline = Instant::now() + Duration::from_secs(35);
        loop {
            let left = new(undeleted_run_namespaces(kube).unwrap_or_default());
            if left.is_empty() || Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    } else {
        new(run_namespaces(kube).unwrap_or_default())
    };
    if fault == Fault::Sigint && fault_happened && !left.is_empty() {
        problems.push(format!("left after SIGINT: {}", left.join(", ")));
    }
    // Whatever else is left goes to gc at the end; before the next run, wait until the control
    // plane answers (an API-server fault may still be recovering).
    wait_apiserver(kube, Duration::from_secs(180));
    if fault == Fault::ApiServerStopped {
        let waited = wait_controllers(kube, Duration::from_secs(300));
        eprintln!("xtask:   controllers working again after {waited:.0} s");
    }
    Ok(Outcome {
        fault,
        did,
        exit: code,
        cells,
        pass,
        fail,
        error,
        judged_under_fault: judged,
        left_behind: left.len(),
        problems,
        wall_s,
    })
}

fn wait_output(child: Child) -> Result<(i32, String, String)> {
    let o = child
        .wait_with_output()
        .context("netreach did not finish")?;
    Ok((
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

fn tail(s: &str, n: usize) -> String {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].replace('\n', " | ")
}

/// `x-ab12c` -> `x`: netreach's real namespace names end in `-<5 characters>`.
fn logical_namespace(real: &str) -> &str {
    real.rsplit_once('-').map_or(real, |(l, _)| l)
}

/// Namespaces of netreach runs (labelled `netreach.dev/run`).
fn run_namespaces(kube: &Kube) -> Result<Vec<String>> {
    namespaces_of_runs(kube, true)
}

/// Run namespaces nobody has deleted yet (a Terminating one is netreach's cleanup done, the
/// namespace controller's work still to do).
fn undeleted_run_namespaces(kube: &Kube) -> Result<Vec<String>> {
    namespaces_of_runs(kube, false)
}

fn namespaces_of_runs(kube: &Kube, terminating_too: bool) -> Result<Vec<String>> {
    let v = kube.json(&["get", "namespaces", "-l", RUN_LABEL])?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| terminating_too || n["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect())
}

/// After an API-server fault: waits until the controllers work again, not just the API server.
/// Stopping kube-apiserver makes kube-controller-manager and kube-scheduler lose their leases
/// and restart (with kubelet's back-off); until then a new namespace gets no `default`
/// ServiceAccount (so no pod can be created in it) and a deleted one never goes away. The check:
/// a scratch namespace gets its ServiceAccount, and is gone after its deletion. Seconds waited.
fn wait_controllers(kube: &Kube, within: Duration) -> f64 {
    let t = Instant::now();
    let ns = format!("netreach-soak-ctl-{}", std::process::id());
    let ok = |args: &[&str]| {
        kube.cmd()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    while t.elapsed() < within && !ok(&["create", "namespace", &ns]) {
        std::thread::sleep(Duration::from_secs(1));
    }
    while t.elapsed() < within && !ok(&["get", "serviceaccount", "default", "-n", &ns]) {
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = ok(&["delete", "namespace", &ns, "--wait=false"]);
    while t.elapsed() < within && ok(&["get", "namespace", &ns]) {
        std::thread::sleep(Duration::from_secs(1));
    }
    t.elapsed().as_secs_f64()
}

/// Containers netreach started (external endpoints), by their label.
fn netreach_containers() -> Result<usize> {
    let out = crate::util::output(Command::new("docker").args([
        "ps",
        "-aq",
        "--filter",
        &format!("label={CONTAINER_LABEL}"),
    ]))?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

/// The first ready probe pod of a run namespace, once there is one.
fn wait_ready_pod(
    kube: &Kube,
    earlier: &std::collections::BTreeSet<String>,
    within: Duration,
    finished: impl Fn() -> bool,
) -> Option<(String, String)> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && !finished() {
        for ns in run_namespaces(kube).unwrap_or_default() {
            if earlier.contains(&ns) {
                continue;
            }
            let Ok(v) = kube.json(&["get", "pods", "-n", &ns]) else {
                continue;
            };
            let ready = v["items"].as_array().into_iter().flatten().find(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            if let Some(name) = ready.and_then(|p| p["metadata"]["name"].as_str()) {
                return Some((ns, name.to_owned()));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

/// Stops the kube-apiserver container inside the kit's control-plane container, again whenever
/// the kubelet restarts it, until `hold` has passed. Returns how many stops it took.
fn stop_apiserver_for(hold: Duration) -> usize {
    let until = Instant::now() + hold;
    let mut stops = 0;
    while Instant::now() < until {
        let ids = Command::new("docker")
            .args([
                "exec",
                CONTROL_PLANE,
                "crictl",
                "ps",
                "-q",
                "--name",
                "kube-apiserver",
                "--state",
                "running",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let ok = Command::new("docker")
                .args([
                    "exec",
                    CONTROL_PLANE,
                    "crictl",
                    "stop",
                    "--timeout",
                    "0",
                    id,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            stops += usize::from(ok);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stops
}

/// Waits until the API server answers `/readyz`; returns the seconds it took.
fn wait_apiserver(kube: &Kube, within: Duration) -> f64 {
    let t = Instant::now();
    while t.elapsed() < within {
        if kube
            .cmd()
            .args(["get", "--raw", "/readyz", "--request-timeout", "3s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    t.elapsed().as_secs_f64()
}

/// A fault proxy in front of the kit cluster's API server, and a kubeconfig (same context name)
/// that talks through it. kind's serving certificate covers 127.0.0.1, so TLS passes through.
fn proxied_kubeconfig(kube: &Kube, dir: &Path) -> Result<(netreach_testkit::FaultProxy, PathBuf)> {
    let server = kube.run(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ])?;
    let upstream = server
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let proxy =
        netreach_testkit::FaultProxy::start(&upstream).context("cannot start the fault proxy")?;
    let kubeconfig = dir.join("kubeconfig-proxy");
    std::fs::copy(&kube.kubeconfig, &kubeconfig).context("cannot copy the kubeconfig")?;
    let cluster_name = kube.run(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].name}",
    ])?;
    crate::util::output(
        Command::new(&kube.kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "config",
                "set-cluster",
                cluster_name.trim(),
                &format!("--server=https://127.0.0.1:{}", proxy.port),
            ]),
    )?;
    Ok((proxy, kubeconfig))
}

fn render(
    runs: &[Outcome],
    started: &str,
    seed: u64,
    gc_text: &str,
    gc_exit: i32,
    ns_left: usize,
    containers_left: usize,
) -> String {
    let mut s = format!(
        "<!-- soak-faults:begin -->\nWritten by `cargo xtask soak --faults --runs {} --seed {seed}` (started {started}; scenario `{SCENARIO}`).\n\n\
         | run | fault | what was done | exit | cells pass | cells fail | cells error | judged under a fault | left behind | wall s |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        runs.len()
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            i + 1,
            r.fault.name(),
            r.did,
            r.exit,
            r.pass,
            r.fail,
            r.error,
            r.judged_under_fault,
            r.left_behind,
            r.wall_s
        );
    }
    let problems: usize = runs.iter().map(|r| r.problems.len()).sum();
    let judged: u64 = runs.iter().map(|r| r.judged_under_fault + r.fail).sum();
    let cells: u64 = runs.iter().map(|r| r.cells).sum();
    let _ = writeln!(
        s,
        "\n**{} runs, {cells} cells: {judged} judged as policy under a fault, {problems} problem(s); after `netreach gc --stale-after 1 --kept` (exit {gc_exit}): {ns_left} namespace(s) and {containers_left} container(s) left.**",
        runs.len()
    );
    let gc_lines: Vec<&str> = gc_text.lines().filter(|l| !l.trim().is_empty()).collect();
    if !gc_lines.is_empty() {
        let _ = writeln!(s, "\ngc said:\n");
        for l in gc_lines.iter().take(20) {
            let _ = writeln!(s, "    {l}");
        }
    }
    for (i, r) in runs.iter().enumerate() {
        for p in &r.problems {
            let _ = writeln!(s, "- run {}: {p}", i + 1);
        }
    }
    s.push_str("<!-- soak-faults:end -->");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_every_fault_equally_often_and_a_seed_replays_it() {
        let a = plan(20, &mut Rng(42));
        assert_eq!(a.len(), 20);
        for f in [
            Fault::PodDeleted,
            Fault::ExecCut,
            Fault::ApiServerStopped,
            Fault::Sigint,
        ] {
            assert_eq!(a.iter().filter(|&&x| x == f).count(), 5, "{f:?}");
        }
        assert_eq!(a, plan(20, &mut Rng(42)));
        assert_ne!(a, plan(20, &mut Rng(7)), "another seed, another order");
    }

    #[test]
    fn real_namespaces_map_back_to_logical_ones() {
        assert_eq!(logical_namespace("x-ab12c"), "x");
        assert_eq!(logical_namespace("web-tier-ab12c"), "web-tier");
    }
}
