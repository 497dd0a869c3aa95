//! `cargo xtask <task>`: the project's task runner (see README.md).
//!
//! Tasks shell out to cargo, the built `netreach` binary, Docker, kind and kubectl; there is no
//! logic here that the product needs. One module per task: `kit` (the offline kind kit: no container registry), `cluster`
//! (kind cluster lifecycle and `ensure_up`), `soak` (runs back to back into docs/soak.md), with `sanity` (default-deny check), `host` (Docker
//! engine, build tools), `ui` (progress, step logs) and `util`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod cluster;
mod host;
mod kit;
mod sanity;
mod soak;
mod soak_faults;
mod ui;
mod util;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test     run the whole test suite: brings up the kind cluster (building the kit if needed)
           and runs unit, fixture and cluster tests against it
  run      run the shipped scenarios against the kind cluster (brought up if needed)
  schema   regenerate docs/scenario.schema.json from the Rust types
  bench [--sizes 3,9,30] [--only suite|matrices]
           the shipped suite one scenario at a time and with --jobs 4 (the suite-time ratio),
           and full matrices (batched vs one exec per cell) on the kind cluster; writes the
           results into BENCHMARKS.md
  soak [--runs 20]
           back-to-back runs of the shipped scenarios; writes the summary into docs/soak.md
           (reports under target/soak/)
  soak --faults [--runs 20] [--seed S]
           runs of scenarios/three-tier.yaml, each with one random fault (probe pod deleted,
           exec streams cut, kube-apiserver stopped 5-30 s in the kit's control-plane container,
           SIGINT); writes the table into docs/soak.md (reports under target/soak-faults/)
  kit      build and cache everything a kind cluster needs, from package registries only
           (cache: $NETREACH_KIT_DIR, default ~/.cache/netreach-kit; versions: xtask/kit/versions.env)
  cluster up
           create (unless present) the kind cluster `netreach`, load the probe image, and run the
           default-deny sanity check; prints the KUBECONFIG/NETREACH_CONTEXT to use
  cluster down
           delete our kind clusters and containers (never the `kind` network or images)
  cluster status
           cluster, Kubernetes version, enforcer, probe image, kubeconfig, env
  cluster selftest
           negative control: a throwaway cluster without an enforcer must fail the sanity check

Every task that builds the kit or brings the cluster up takes --configure-docker
(or NETREACH_CONFIGURE_DOCKER=1): permission to give a Docker engine that xtask did not
install or start the runc-nosysres runtime wrapper, on hosts whose capability bounding set
lacks CAP_SYS_RESOURCE. An engine xtask installed or started itself needs no permission.
";

/// `--offline` meant "may configure Docker" while the kit is always offline (no registry): one
/// word, two meanings. It is gone; say what replaced it instead of ignoring it.
pub(crate) fn reject_removed_flag(arg: &str) -> Result<()> {
    if arg == "--offline" {
        bail!(
            "`--offline` was removed: the kit never uses a container registry (that is the default and \
             only mode), and the permission to configure a Docker engine that xtask did not start is \
             now `{}`",
            host::CONFIGURE_FLAG
        );
    }
    Ok(())
}

/// The task's flags: `--configure-docker` and those in `known` (which take a value) are allowed.
fn task_flags(args: &[String], known: &[&str]) -> Result<host::DockerPermission> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == host::CONFIGURE_FLAG {
            continue;
        }
        if known.contains(&a.as_str()) {
            it.next();
            continue;
        }
        reject_removed_flag(a)?;
        bail!("unknown argument `{a}`\n{USAGE}");
    }
    Ok(host::DockerPermission::from_args(args))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().cloned().unwrap_or_default();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match task.as_str() {
        "test" => test(&args[1..]),
        "run" => run(&args[1..]),
        "schema" => schema(&root),
        "bench" => bench(&args[1..]),
        "soak" => soak::main(&args[1..]),
        "kit" => kit::main(&args[1..]),
        "cluster" => cluster::main(&args[1..]),
        "" | "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown task `{other}`")
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The release `netreach` the bench and soak tasks run (`target/release/netreach`).
pub(crate) fn build_release_netreach() -> Result<()> {
    status(cargo().args([
        "build",
        "--release",
        "--quiet",
        "--locked",
        "--bin",
        "netreach",
    ]))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

/// The whole suite, cluster tests included: brings the kind cluster up (building the offline
/// kit if needed, with its default-deny sanity check), then runs every test against it.
/// `NETREACH_CONTEXT` set by the caller means "use that cluster instead" (KUBECONFIG picks the
/// kubeconfig); the kit is then not touched.
fn test(args: &[String]) -> Result<()> {
    let perm = task_flags(args, &[])?;
    let root = project_root();
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--all-targets", "--locked"]);
    cmd.env("NETREACH_REPORT_DIR", root.join("target/netreach-reports"));
    if std::env::var_os("NETREACH_CONTEXT").is_none() {
        let env = cluster::ensure_up(perm)?;
        env.apply(&mut cmd);
        // Our own cluster: the scenario tests run as a ServiceAccount with only the shipped
        // ClusterRole, in namespaces enforcing PodSecurity `restricted` (harness/netreach/tests).
        cmd.env("NETREACH_TEST_RBAC", "1");
        // The example user crate (fixtures/user-crate) is its own workspace: its build is kept
        // with the kit, so warm machines do not rebuild it.
        if let Ok(kit) = kit::Kit::open() {
            cmd.env(
                "NETREACH_USER_CRATE_TARGET",
                kit.dir.join("user-crate-target"),
            );
        }
        eprintln!(
            "xtask: cluster tests run against {} (KUBECONFIG={}, probe image {})",
            env.context,
            env.kubeconfig.display(),
            env.probe_image
        );
    }
    test_tools(&root, &mut cmd);
    status(&mut cmd)?;
    status(cargo().args(["test", "--workspace", "--doc", "--locked"]))?;
    eprintln!(
        "xtask: reports in {}",
        root.join("target/netreach-reports").display()
    );
    Ok(())
}

/// What the browser and JUnit-reader tests need, installed from the package registries when
/// missing (Debian's chromium, playwright-core from npm, junitparser from PyPI); their tests are
/// then switched on. A tool that cannot be installed is said so here, and its test fails (it is
/// switched on all the same): `cargo xtask test` runs every test, never fewer in silence.
fn test_tools(root: &Path, cmd: &mut Command) {
    let sh = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let have_chromium = Path::new("/usr/bin/chromium").exists()
        || sh(
            "apt-get install -y -q --no-install-recommends chromium || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium)",
        );
    let browser = root.join("harness/netreach/tests/browser");
    let have_modules = browser.join("node_modules/playwright-core").exists()
        || sh(&format!(
            "cd '{}' && npm ci --no-audit --no-fund",
            browser.display()
        ));
    let have_junitparser = sh("python3 -c 'import junitparser'")
        || sh("python3 -m pip install --quiet junitparser==5.0.3");
    for (what, ok) in [
        ("chromium (Debian package)", have_chromium),
        (
            "playwright-core (npm ci in harness/netreach/tests/browser)",
            have_modules,
        ),
        ("junitparser (PyPI)", have_junitparser),
    ] {
        eprintln!(
            "xtask: test tool {what}: {}",
            if ok {
                "ready"
            } else {
                "could not be installed; its test will fail"
            }
        );
    }
    cmd.env("NETREACH_BROWSER_TESTS", "1");
    cmd.env("NETREACH_JUNIT_READER", "1");
}

/// Runs the shipped scenarios against the kind cluster (brought up if needed), or against
/// `NETREACH_CONTEXT` when the caller sets it.
fn run(args: &[String]) -> Result<()> {
    let perm = task_flags(args, &[])?;
    let start = std::time::Instant::now();
    // The cluster first: its preflight stops in seconds where the host cannot run it, before
    // any build.
    let env = if std::env::var_os("NETREACH_CONTEXT").is_none() {
        Some(cluster::ensure_up(perm)?)
    } else {
        None
    };
    status(cargo().args(["build", "--quiet", "--locked", "--bin", "netreach"]))?;
    let bin = project_root().join("target/debug/netreach");
    let mut cmd = Command::new(&bin);
    cmd.args(["run", "scenarios"]);
    if let Some(env) = env {
        env.apply(&mut cmd);
    }
    let r = status(&mut cmd);
    eprintln!(
        "xtask: run took {} in all",
        util::fmt_duration(start.elapsed())
    );
    r
}

/// Measures full matrices on the kind cluster and writes the results into BENCHMARKS.md
/// (between the `bench:begin`/`bench:end` markers), with the machine they were taken on.
fn bench(args: &[String]) -> Result<()> {
    let perm = task_flags(args, &["--sizes", "--only"])?;
    let sizes = util::flag_value(args, "--sizes").unwrap_or("3,9,30");
    let only = util::flag_value(args, "--only");
    if let Some(o) = only.filter(|o| *o != "suite" && *o != "matrices") {
        bail!("--only takes `suite` or `matrices`, not `{o}`");
    }
    build_release_netreach()?;
    let env = cluster::ensure_up(perm)?;
    let root = project_root();
    let machine = machine_line();
    let path = root.join("BENCHMARKS.md");
    if only != Some("matrices") {
        let suite = suite_ratio(&root, &env, &machine)?;
        replace_section(&path, "bench-suite", &suite)?;
        eprintln!("xtask: wrote the suite figures into {}", path.display());
        if only == Some("suite") {
            return Ok(());
        }
    }
    let mut cmd = Command::new(root.join("target/release/netreach"));
    cmd.args([
        "bench",
        "--sizes",
        sizes,
        "--probe-timeout",
        "1",
        "--rounds",
        "3",
    ]);
    env.apply(&mut cmd);
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run netreach bench")?;
    if !out.status.success() {
        bail!("netreach bench failed ({})", out.status);
    }
    let table = String::from_utf8_lossy(&out.stdout);
    let section = format!("<!-- bench:begin -->\nMachine: {machine}.\n\n{table}<!-- bench:end -->");
    replace_section(&path, "bench", &section)?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// Replaces the text between `<!-- {name}:begin -->` and `<!-- {name}:end -->` (markers
/// included) in `path` with `section`, or appends it when the markers are missing.
/// The machine a figure was taken on, for BENCHMARKS.md.
fn machine_line() -> String {
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{} cores, {} memory, kernel {}, {}; load average before: {}; measured {}",
        sh("nproc"),
        sh("free -h | awk '/Mem:/{print $2}'"),
        sh("uname -r"),
        sh("kind version 2>/dev/null || echo kind"),
        sh("cut -d' ' -f1-3 /proc/loadavg"),
        util::utc_minute()
    )
}

/// The shipped suite (`netreach run scenarios`) one scenario at a time and with `--jobs 4`
/// (the default on the kit's two-node cluster: twice the schedulable nodes), on the warm
/// cluster; each must pass (known deviations accepted). Returns the BENCHMARKS.md section.
fn suite_ratio(root: &Path, env: &cluster::ClusterEnv, machine: &str) -> Result<String> {
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    for jobs in [1usize, 4] {
        let json = dir.join(format!("suite-jobs{jobs}.json"));
        let mut cmd = Command::new(root.join("target/release/netreach"));
        cmd.args(["run", "scenarios", "--jobs", &jobs.to_string(), "--json"])
            .arg(&json)
            .env("CI", "1")
            .stdout(std::process::Stdio::null());
        env.apply(&mut cmd);
        eprintln!("xtask: bench: the shipped suite with --jobs {jobs}");
        let t = std::time::Instant::now();
        let st = cmd.status().context("cannot run netreach run")?;
        let secs = t.elapsed().as_secs_f64();
        if !st.success() {
            bail!(
                "netreach run scenarios --jobs {jobs} failed ({st}); report in {}",
                json.display()
            );
        }
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
        let cells = v
            .pointer("/summary/cells/pass")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
            + v.pointer("/summary/cells/fail")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
        eprintln!("xtask: bench: --jobs {jobs}: {secs:.0} s, {cells} cells");
        // Where the time went: the scenarios' own durations summed (equal to the wall time
        // when nothing overlaps), and the longest one (the floor no --jobs goes below).
        let durations: Vec<(f64, String)> = v["scenarios"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|sc| {
                let ms = sc["duration_ms"].as_f64().unwrap_or(0.0);
                let name = format!(
                    "{}/{}",
                    sc["group"].as_str().unwrap_or_default(),
                    sc["id"].as_str().unwrap_or_default()
                );
                (ms / 1000.0, name)
            })
            .collect();
        let summed: f64 = durations.iter().map(|d| d.0).sum();
        let longest = durations
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .cloned()
            .unwrap_or_default();
        rows.push((jobs, secs, cells, summed, longest));
    }
    let ratio = rows[0].1 / rows[1].1.max(0.001);
    let mut s = format!(
        "<!-- bench-suite:begin -->\nMachine: {machine}.\n\n| --jobs | wall s | cells | scenario time summed s | longest scenario s |\n|---:|---:|---:|---:|---:|\n"
    );
    for (j, secs, cells, summed, (long_s, long)) in &rows {
        s.push_str(&format!(
            "| {j} | {secs:.0} | {cells} | {summed:.0} | {long_s:.0} ({long}, {:.0}% of the wall time) |\n",
            100.0 * long_s / secs.max(0.001)
        ));
    }
    s.push_str(&format!(
        "\nSuite-time ratio, one at a time / --jobs 4: **{ratio:.2}x**.\n<!-- bench-suite:end -->"
    ));
    Ok(s)
}

pub(crate) fn replace_section(path: &Path, name: &str, section: &str) -> Result<()> {
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{section}{}", &old[..a], &old[b + end.len()..])
        }
        _ => format!("{old}\n{section}\n"),
    };
    std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}

fn schema(root: &Path) -> Result<()> {
    let out = cargo()
        .args([
            "run", "--quiet", "--locked", "--bin", "netreach", "--", "schema",
        ])
        .output()
        .context("cannot run netreach schema")?;
    if !out.status.success() {
        bail!(
            "netreach schema failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = root.join("docs/scenario.schema.json");
    std::fs::write(&path, &out.stdout)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}
