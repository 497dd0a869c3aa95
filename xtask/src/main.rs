//! `cargo xtask <task>`: the project's task runner (see README.md).
//!
//! Tasks shell out to cargo, the built `netreach` binary, Docker, kind and kubectl; there is no
//! logic here that the product needs. One module per task: `kit` (offline kind kit), `cluster`
//! (kind cluster lifecycle and `ensure_up`), with `sanity` (default-deny check), `host` (Docker
//! engine, build tools), `ui` (progress, step logs) and `util`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod cluster;
mod host;
mod kit;
mod sanity;
mod ui;
mod util;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test     run the whole test suite (unit, fixtures, cluster tests)
  run      run the shipped scenarios against a kind cluster
  schema   regenerate docs/scenario.schema.json from the Rust types
  kit [--offline]
           build and cache everything a kind cluster needs, from package registries only
           (cache: $NETREACH_KIT_DIR, default ~/.cache/netreach-kit; versions: xtask/kit/versions.env);
           --offline also lets it register a Docker runtime wrapper where the host needs one
  cluster up [--offline]
           create (unless present) the kind cluster `netreach`, load the probe image, and run the
           default-deny sanity check; prints the KUBECONFIG/NETREACH_CONTEXT to use
  cluster down
           delete our kind clusters and containers (never the `kind` network or images)
  cluster status
           cluster, Kubernetes version, enforcer, probe image, kubeconfig, env
  cluster selftest [--offline]
           negative control: a throwaway cluster without an enforcer must fail the sanity check
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().cloned().unwrap_or_default();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match task.as_str() {
        "test" => test(),
        "run" => run(),
        "schema" => schema(&root),
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

/// The whole suite. Cluster tests run when `NETREACH_CONTEXT` names a cluster; bringing up the
/// kind cluster here is not built yet, so without it they are reported as ignored with the
/// reason, never as passed.
fn test() -> Result<()> {
    if std::env::var_os("NETREACH_CONTEXT").is_none() {
        eprintln!(
            "xtask: NETREACH_CONTEXT is not set and `cargo xtask cluster up` is not built yet: \
             cluster tests will be listed as ignored (not passed)"
        );
    }
    status(cargo().args(["test", "--workspace", "--all-targets", "--locked"]))?;
    status(cargo().args(["test", "--workspace", "--doc", "--locked"]))
}

/// Runs the shipped scenarios. Needs a cluster: `NETREACH_CONTEXT` or, once built, the kind
/// cluster of `cargo xtask cluster up`.
fn run() -> Result<()> {
    status(cargo().args(["build", "--quiet", "--locked", "--bin", "netreach"]))?;
    let bin = Path::new("target/debug/netreach");
    status(Command::new(bin).args(["validate", "scenarios"]))?;
    if std::env::var_os("NETREACH_CONTEXT").is_none() {
        bail!(
            "the shipped scenarios are valid, but there is no cluster to run them against yet: \
             `cargo xtask cluster up` (kind, offline kit) is not built; set NETREACH_CONTEXT to a \
             kubeconfig context to try another cluster"
        );
    }
    status(Command::new(bin).args(["run", "scenarios"]))
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
