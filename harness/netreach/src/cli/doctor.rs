//! `netreach doctor` and `netreach rbac`.

use std::path::PathBuf;

use crate::exit;
use crate::kube::doctor::{self, DoctorOptions, State};
use crate::kube::rbac::{self, Mode};
use crate::kube::{KubeOptions, deploy::PodSpecOptions};

/// Arguments of `netreach doctor`.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// The kubeconfig context to check.
    #[arg(long, env = "NETREACH_CONTEXT")]
    pub context: Option<String>,
    /// Check for running inside this namespace you were given (repeatable), with the Role of
    /// docs/rbac/netreach-runner.role.yaml, instead of netreach creating its own namespaces.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Probe image (default: `NETREACH_PROBE_IMAGE`, else `netreach-probe:latest`).
    #[arg(long, env = "NETREACH_PROBE_IMAGE")]
    pub probe_image: Option<String>,
    /// An image pull Secret for the probe pods (repeatable).
    #[arg(long = "image-pull-secret", value_name = "NAME")]
    pub image_pull_secrets: Vec<String>,
    /// Only the API and permission checks: start no pod.
    #[arg(long)]
    pub no_pods: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `netreach doctor`: exit 0 when every check passes, 1 when one fails (verdicts on this
/// cluster would be wrong or impossible), 4 when the API server cannot be reached.
///
/// # Errors
/// When the report cannot be written.
pub fn main(args: &DoctorArgs) -> anyhow::Result<i32> {
    let Some(context) = super::run::require_context(args.context.as_deref()) else {
        return Ok(exit::USAGE);
    };
    let mut kube = KubeOptions {
        pods: PodSpecOptions {
            image_pull_secrets: args.image_pull_secrets.clone(),
            ..PodSpecOptions::default()
        },
        ..KubeOptions::default()
    };
    if let Some(i) = &args.probe_image {
        kube.probe_image = i.clone();
    }
    let o = DoctorOptions {
        namespaces: args.namespaces.clone(),
        kube,
        no_pods: args.no_pods,
    };
    if !args.json {
        eprintln!("netreach doctor: checking context {context} ...");
    }
    let r = doctor::doctor(context, &o);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for c in &r.checks {
            let mark = match c.state {
                State::Ok => "ok  ",
                State::Warn => "warn",
                State::Fail => "FAIL",
                State::Skip => "skip",
            };
            println!("{mark} {:<13} {}", c.name, c.detail);
        }
        let verdict = if r.unreachable() {
            "the cluster cannot be reached"
        } else if r.failed() {
            "do not trust netreach's verdicts on this cluster until the FAIL lines are fixed"
        } else {
            "this cluster can be tested"
        };
        println!("netreach doctor: {context}: {verdict}");
    }
    Ok(if r.unreachable() {
        exit::INFRASTRUCTURE
    } else if r.failed() {
        exit::MISMATCH
    } else {
        exit::SUCCESS
    })
}

/// Arguments of `netreach rbac`.
#[derive(clap::Args, Debug)]
pub struct RbacArgs {
    /// `own` (netreach creates its namespaces: a ClusterRole), `given` (it runs in namespaces
    /// you give it: a Role for each), `audit` (read only: a ClusterRole).
    #[arg(default_value = "own")]
    pub mode: String,
    /// Write all three manifests into this folder instead (docs/rbac/ holds them).
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

/// Prints (or writes) the RBAC manifests.
///
/// # Errors
/// When a file cannot be written.
pub fn rbac_main(args: &RbacArgs) -> anyhow::Result<i32> {
    let all = [Mode::OwnNamespaces, Mode::GivenNamespaces, Mode::Audit];
    if let Some(dir) = &args.write {
        std::fs::create_dir_all(dir)?;
        for m in all {
            let p = dir.join(m.file());
            std::fs::write(&p, rbac::manifest(m))?;
            eprintln!("wrote {}", p.display());
        }
        return Ok(exit::SUCCESS);
    }
    let mode = match args.mode.as_str() {
        "own" => Mode::OwnNamespaces,
        "given" => Mode::GivenNamespaces,
        "audit" => Mode::Audit,
        other => {
            eprintln!("netreach rbac: `{other}`: write own, given or audit");
            return Ok(exit::USAGE);
        }
    };
    print!("{}", rbac::manifest(mode));
    Ok(exit::SUCCESS)
}
