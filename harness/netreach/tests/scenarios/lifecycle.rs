//! Cluster tests of netreach's own lifecycle (reports, cleanup, safety), grouped `lifecycle`.
//! Like the scenario tests they run only against `NETREACH_CONTEXT`.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use libtest_mimic::{Completion, Failed, Trial};
use serde_json::json;

use netreach::kube::{self as nk, KubeOptions};
use netreach::names::Naming;
use netreach::outcome::Outcome;
use netreach::report::{ScenarioStatus, text};
use netreach::run::{RunOptions, run_scenario};
use netreach::scenario;
use netreach::verdict::{Observed, Status};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/lifecycle")
        .join(name)
}

type Body = fn(&str) -> Result<(), Failed>;

pub fn trials(context: Option<String>) -> Vec<Trial> {
    let tests: [(&str, Body); 8] = [
        ("user-crate", user_crate),
        ("placement", placement),
        ("drift-between-two-runs", drift_between_two_runs),
        ("wrong-expectation", wrong_expectation),
        ("computed-expectations", computed_expectations),
        ("interrupt-cleans-up", interrupt_cleans_up),
        ("verbatim-refuses-existing", verbatim_refuses_existing),
        ("gc-removes-only-stale-runs", gc_removes_only_stale_runs),
    ];
    tests
        .into_iter()
        .map(|(name, body)| {
            let context = context.clone();
            Trial::ignorable_test(name, move || match context {
                None => Ok(Completion::ignored_with(
                    "NETREACH_CONTEXT is not set; cluster tests run only against a context named explicitly",
                )),
                Some(c) => body(&c).map(|()| Completion::Completed),
            })
            .with_kind("lifecycle")
        })
        .collect()
}

fn check(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

/// Runs the wrong-expectation fixture, judged by its own expectations or by the engine.
fn run_wrong_fixture(
    context: &str,
    expect_computed: bool,
) -> Result<netreach::report::ScenarioReport, Failed> {
    let s = scenario::load(&fixture("wrong-expectation.yaml"))
        .scenario
        .ok_or("fixture is invalid")?;
    let mut c =
        netreach::kube::connect(context, KubeOptions::default()).map_err(|e| e.to_string())?;
    let opts = RunOptions {
        expect_computed,
        ..RunOptions::new(Naming::PerRun {
            run_id: netreach::run::new_run_id(),
        })
    };
    Ok(run_scenario(&s, c.as_mut(), &opts, &mut |_| {}))
}

fn wrong_expectation(context: &str) -> Result<(), Failed> {
    let r = run_wrong_fixture(context, false)?;
    let txt = text::render_scenario(&r);
    check(
        r.status == ScenarioStatus::Failed,
        format!("expected a failed scenario:\n{txt}"),
    )?;
    let fails: Vec<_> = r.steps[0]
        .results
        .iter()
        .filter(|c| c.status == Status::Fail)
        .collect();
    check(
        fails.len() == 1,
        format!("expected exactly one failed cell:\n{txt}"),
    )?;
    let f = fails[0];
    check(
        f.cell.to_string() == "x/a -> x/b 80/tcp",
        format!("wrong cell {}", f.cell),
    )?;
    check(
        f.observed == Observed::Blocked,
        format!("observed {}", f.observed),
    )?;
    check(
        matches!(f.outcome, Outcome::Refused | Outcome::TimedOut),
        format!("outcome {}", f.outcome),
    )?;
    let cmd = f.detail.command.clone().unwrap_or_default();
    check(
        cmd.starts_with(&format!("kubectl --context {context} -n x-"))
            && cmd.contains(" exec a -- curl ")
            && cmd.ends_with(":80/"),
        format!("repro command: {cmd}"),
    )?;
    check(
        txt.contains("comparison x/a x/b\n    x/a        .   X"),
        format!("comparison table:\n{txt}"),
    )?;
    check(
        txt.contains("MISMATCH x/a -> x/b 80/tcp: expected allowed (default at line"),
        format!("mismatch line:\n{txt}"),
    )?;
    // One mismatch fits in one screen.
    let lines = txt.lines().count();
    check(
        lines <= 40,
        format!("the report of one mismatch takes {lines} lines (at most 40):\n{txt}"),
    )?;
    // Three-way: the specification sides with the cluster.
    check(
        f.three_way()
            == Some("the expectation disagrees with the specification; the cluster follows it")
            && txt.contains("specification: block: egress of x/a: not isolated"),
        format!("three-way verdict:\n{txt}"),
    )?;
    check(
        r.teardown_error.is_none(),
        format!("teardown: {:?}", r.teardown_error),
    )
}

/// The same wrong fixture judged by the specification instead (`--expect-computed`): the
/// engine's expectation is right and the cluster agrees with it on every cell.
fn computed_expectations(context: &str) -> Result<(), Failed> {
    let r = run_wrong_fixture(context, true)?;
    let txt = text::render_scenario(&r);
    check(
        r.status == ScenarioStatus::Passed,
        format!("expected a pass:\n{txt}"),
    )?;
    let cell = r.steps[0]
        .results
        .iter()
        .find(|c| c.cell.to_string() == "x/a -> x/b 80/tcp")
        .ok_or("cell missing")?;
    check(
        cell.expected.origin.kind == "computed" && cell.observed == Observed::Blocked,
        format!("cell: {cell:?}"),
    )
}

/// `node:` holds on the cluster: the `same` clients run on the server's node, the `different`
/// ones on another, the report names every pod's node, and the policy holds on both paths.
fn placement(context: &str) -> Result<(), Failed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/node-paths.yaml");
    let s = scenario::load(&path)
        .scenario
        .ok_or("scenarios/node-paths.yaml is invalid")?;
    let mut c =
        netreach::kube::connect(context, KubeOptions::default()).map_err(|e| e.to_string())?;
    let opts = RunOptions::new(Naming::PerRun {
        run_id: netreach::run::new_run_id(),
    });
    let r = run_scenario(&s, c.as_mut(), &opts, &mut |_| {});
    let txt = text::render_scenario_with(&r, text::TextOptions { verbose: true });
    check(
        r.status == ScenarioStatus::Passed,
        format!("expected a pass:\n{txt}"),
    )?;
    let node = |pod: &str| -> Result<&str, Failed> {
        r.nodes
            .get(&format!("paths/{pod}"))
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("no node for paths/{pod} in the report:\n{txt}").into())
    };
    let server = node("server")?;
    for near in ["near-allowed", "near-denied"] {
        check(
            node(near)? == server,
            format!("{near} is not on the server's node {server}:\n{txt}"),
        )?;
    }
    for far in ["far-allowed", "far-denied"] {
        check(
            node(far)? != server,
            format!("{far} is on the server's node {server}:\n{txt}"),
        )?;
    }
    check(
        txt.contains("  nodes: ") && txt.contains(server),
        format!("the text report names no nodes:\n{txt}"),
    )
}

fn interrupt_cleans_up(context: &str) -> Result<(), Failed> {
    let before = nk::list_run_namespaces(context).map_err(|e| e.to_string())?;
    let (fix, prefixes) = super::support::slow_fixture("cleanup")?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["run", "--context", context])
        .arg(fix)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start netreach: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ours = Vec::new();
    while Instant::now() < deadline {
        let now = nk::list_run_namespaces(context).map_err(|e| e.to_string())?;
        // Only this run's (cleanupp-<id>, cleanupq-<id>): other runs may share the cluster.
        ours = now
            .difference(&before)
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())))
            .cloned()
            .collect();
        if ours.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if ours.len() != 2 {
        let _ = child.kill();
        return Err(format!("the run's two namespaces never appeared (saw {ours:?})").into());
    }
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    check(st.success(), "kill -INT failed")?;
    let code = child.wait().map_err(|e| e.to_string())?.code();
    check(
        code == Some(130),
        format!("netreach exited {code:?} after SIGINT, expected 130"),
    )?;
    // Terminating counts as gone: list_run_namespaces leaves those out.
    let after = nk::list_run_namespaces(context).map_err(|e| e.to_string())?;
    let left: Vec<&String> = ours.iter().filter(|n| after.contains(*n)).collect();
    check(
        left.is_empty(),
        format!("namespaces left after SIGINT: {left:?}"),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn client(context: &str) -> Result<kube::Client, Failed> {
    let opts = kube::config::KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_kubeconfig(&opts)
        .await
        .map_err(|e| e.to_string())?;
    Ok(kube::Client::try_from(cfg).map_err(|e| e.to_string())?)
}

async fn create_ns(
    api: &Api<Namespace>,
    name: &str,
    labels: serde_json::Value,
    annotations: serde_json::Value,
) -> Result<(), Failed> {
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels, "annotations": annotations}}),
    )
    .map_err(|e| e.to_string())?;
    api.create(&PostParams::default(), &ns)
        .await
        .map_err(|e| format!("create {name}: {e}"))?;
    Ok(())
}

async fn alive(api: &Api<Namespace>, name: &str) -> Result<bool, Failed> {
    let ns = api.get_opt(name).await.map_err(|e| e.to_string())?;
    Ok(ns.is_some_and(|n| n.metadata.deletion_timestamp.is_none()))
}

async fn wait_gone(api: &Api<Namespace>, name: &str) {
    for _ in 0..120 {
        if matches!(api.get_opt(name).await, Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn verbatim_refuses_existing(context: &str) -> Result<(), Failed> {
    let name = "netreach-lifecycle-verbatim";
    let rt = rt();
    let api: Api<Namespace> = rt.block_on(async { client(context).await.map(Api::all) })?;
    rt.block_on(async {
        let _ = api.delete(name, &DeleteParams::default()).await;
        wait_gone(&api, name).await;
        create_ns(&api, name, json!({"owner": "someone-else"}), json!({})).await
    })?;
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["run", "--verbatim-namespaces", "--context", context])
        .arg(fixture("verbatim.yaml"))
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let still = rt.block_on(alive(&api, name))?;
    rt.block_on(async {
        let _ = api.delete(name, &DeleteParams::default()).await;
    });
    check(
        out.status.code() == Some(netreach::exit::INFRASTRUCTURE),
        format!("exit {:?}:\n{stdout}", out.status.code()),
    )?;
    check(
        stdout.contains("already exists; netreach never adopts"),
        format!("report:\n{stdout}"),
    )?;
    check(
        still,
        "the pre-existing namespace was deleted or is terminating",
    )
}

fn gc_removes_only_stale_runs(context: &str) -> Result<(), Failed> {
    let rt = rt();
    let api: Api<Namespace> = rt.block_on(async { client(context).await.map(Api::all) })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (stale, fresh, foreign) = (
        "netreach-gc-stale",
        "netreach-gc-fresh",
        "netreach-gc-foreign",
    );
    rt.block_on(async {
        for n in [stale, fresh, foreign] {
            let _ = api.delete(n, &DeleteParams::default()).await;
            wait_gone(&api, n).await;
        }
        create_ns(
            &api,
            stale,
            json!({nk::RUN_LABEL: "gcstale"}),
            json!({nk::HEARTBEAT_ANNOTATION: (now - 3600).to_string()}),
        )
        .await?;
        create_ns(
            &api,
            fresh,
            json!({nk::RUN_LABEL: "gcfresh"}),
            json!({nk::HEARTBEAT_ANNOTATION: now.to_string()}),
        )
        .await?;
        create_ns(
            &api,
            foreign,
            json!({"team": "x"}),
            json!({nk::HEARTBEAT_ANNOTATION: (now - 3600).to_string()}),
        )
        .await
    })?;
    let opts = nk::GcOptions {
        stale: Duration::from_secs(120),
        kept: false,
        kept_older_than: None,
        dry_run: false,
        namespaces: Vec::new(),
    };
    let deleted = nk::gc(context, &opts)
        .map(|r| r.namespaces)
        .map_err(|e| e.to_string());
    let (s, f, o) = rt.block_on(async {
        (
            alive(&api, stale).await,
            alive(&api, fresh).await,
            alive(&api, foreign).await,
        )
    });
    rt.block_on(async {
        for n in [stale, fresh, foreign] {
            let _ = api.delete(n, &DeleteParams::default()).await;
        }
    });
    let deleted = deleted?;
    check(
        deleted.contains(&stale.to_owned()),
        format!("gc deleted {deleted:?}"),
    )?;
    check(!s?, "the stale run's namespace survived gc")?;
    check(f?, "gc deleted a live run's namespace")?;
    check(o?, "gc deleted a namespace netreach did not create")
}

/// A user's own crate (fixtures/user-crate: its own workspace, netreach by path, a five-line
/// `tests/netpol.rs`) is built and its `cargo test` run against the cluster: it passes, and
/// with one of its scenarios made wrong it fails, saying which cell and how to reproduce it.
fn user_crate(context: &str) -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let krate = root.join("fixtures/user-crate");
    // The workspace's lock file: the same dependency versions, nothing to fetch (offline).
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).map_err(|e| e.to_string())?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |scenarios: Option<&Path>| -> Result<(bool, String), Failed> {
        let mut c = Command::new(&cargo);
        c.args(["test", "--offline", "--test", "netpol", "--manifest-path"])
            .arg(krate.join("Cargo.toml"))
            // Its own build (its own workspace); `cargo xtask test` keeps it in the kit cache so
            // only a new machine builds it cold.
            .env(
                "CARGO_TARGET_DIR",
                std::env::var_os("NETREACH_USER_CRATE_TARGET")
                    .map_or_else(|| root.join("target/user-crate"), PathBuf::from),
            )
            .env("NETREACH_CONTEXT", context)
            .env_remove("NETREACH_SCENARIOS")
            .env_remove("NETREACH_REPORT_DIR");
        if let Some(d) = scenarios {
            c.env("NETREACH_SCENARIOS", d);
        }
        let out = c.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        Ok((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    };
    let (ok, out) = run(None)?;
    check(ok, format!("the user crate's cargo test failed:\n{out}"))?;
    check(
        out.contains("[netpol] shop") && out.contains("... ok"),
        format!("its scenario test ran and passed:\n{out}"),
    )?;
    // One scenario made wrong: the frontend "may" reach the database.
    let wrong = root.join("target/netreach-tests/user-crate-wrong/netpol");
    std::fs::create_dir_all(&wrong).map_err(|e| e.to_string())?;
    let text =
        std::fs::read_to_string(krate.join("tests/netpol/shop.yaml")).map_err(|e| e.to_string())?;
    let text = text.replace(
        "      - allow: {from: shop/api, to: shop/db}",
        "      - allow: {from: shop/api, to: shop/db}\n      - allow: {from: shop/frontend, to: shop/db}",
    );
    std::fs::write(wrong.join("shop.yaml"), text).map_err(|e| e.to_string())?;
    let (ok, out) = run(Some(&wrong))?;
    check(
        !ok,
        format!("a wrong scenario passed in the user crate:\n{out}"),
    )?;
    check(
        out.contains("MISMATCH shop/frontend -> shop/db 5432/tcp: expected allowed")
            && out.contains("repro: kubectl --context")
            && out.contains("comparison"),
        format!("the failure names the cell, its repro and the table:\n{out}"),
    )
}

/// A policy changed between two runs that both pass (their expectations are computed from
/// the policies) is reported as drift by `--baseline`: the cell that opened, exit 6.
fn drift_between_two_runs(context: &str) -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let base = root.join("target/netreach-tests/drift");
    let scenario = |ingress: &str| {
        format!(
            "version: 1
namespaces: [{{name: x}}]
pods:
  - {{name: a, namespace: x, labels: {{app: a}}}}
  - {{name: b, namespace: x, labels: {{app: b}}, ports: [80/tcp]}}
steps:
  - name: b's ingress
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {{name: b-ingress, namespace: x}}
          spec:
            podSelector: {{matchLabels: {{app: b}}}}
            policyTypes: [Ingress]
            ingress: {ingress}
    expect: [{{computed: {{}}}}]
"
        )
    };
    let run = |night: &str,
               ingress: &str,
               baseline: Option<&Path>|
     -> Result<(Option<i32>, String, PathBuf), Failed> {
        let dir = base.join(night).join("nightly");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("drift.yaml"), scenario(ingress)).map_err(|e| e.to_string())?;
        let json = base.join(format!("{night}.json"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_netreach"));
        c.args(["run", "--context", context, "--json"]).arg(&json);
        if let Some(b) = baseline {
            c.arg("--baseline").arg(b);
        }
        let out = c
            .arg(dir.join("drift.yaml"))
            .output()
            .map_err(|e| e.to_string())?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            json,
        ))
    };
    // Night 1: nothing may reach b. Night 2: a may.
    let (code, out, night1) = run("night1", "[]", None)?;
    check(code == Some(0), format!("night 1 exit {code:?}:\n{out}"))?;
    let (code, out, _) = run(
        "night2",
        "[{from: [{podSelector: {matchLabels: {app: a}}}]}]",
        Some(&night1),
    )?;
    check(
        code == Some(netreach::exit::DRIFT),
        format!("night 2 passed its expectations but drifted: exit {code:?}, expected 6:\n{out}"),
    )?;
    check(
        out.contains("OPENED  nightly/drift step 1 x/a -> x/b 80/tcp: blocked")
            && out.contains("drift: 1 opened, 0 closed"),
        format!("the drift names the cell that opened:\n{out}"),
    )
}
