//! `netreach gc`: removes what runs that are no longer alive left behind.

use std::time::Duration;

use crate::exit;
use crate::kube::{self, GcOptions};

/// Arguments of `netreach gc`.
#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// The kubeconfig context.
    #[arg(long, env = "NETREACH_CONTEXT")]
    pub context: Option<String>,
    /// A run whose newest heartbeat is older than this many seconds is gone (a live run renews
    /// it every 15 s, during every wait).
    #[arg(long, value_name = "SECS", default_value_t = kube::DEFAULT_STALE_AFTER.as_secs())]
    pub stale_after: u64,
    /// Also remove runs kept on purpose (`run --keep`, `--keep-on-failure`).
    #[arg(long)]
    pub kept: bool,
    /// Also remove runs kept on purpose longer ago than this many seconds.
    #[arg(long, value_name = "SECS")]
    pub kept_older_than: Option<u64>,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Look for run records only in this namespace (repeatable): for users who run netreach in
    /// namespaces they were given and cannot list namespaces or configmaps cluster-wide.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
}

/// Runs `netreach gc`; returns the exit code.
///
/// # Errors
/// When the cluster cannot be reached.
pub fn main(args: &GcArgs) -> anyhow::Result<i32> {
    let Some(context) = super::run::require_context(args.context.as_deref()) else {
        return Ok(exit::USAGE);
    };
    let o = GcOptions {
        stale: Duration::from_secs(args.stale_after),
        kept: args.kept,
        kept_older_than: args.kept_older_than.map(Duration::from_secs),
        dry_run: args.dry_run,
        namespaces: args.namespaces.clone(),
    };
    eprintln!(
        "netreach gc: a run is gone when its newest heartbeat is older than {} s (live runs renew it every {} s)",
        o.stale.as_secs(),
        kube::HEARTBEAT_EVERY.as_secs()
    );
    let r = kube::gc(context, &o)?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for n in &r.namespaces {
        println!("{verb} namespace {n}");
    }
    for c in &r.containers {
        println!("{verb} container {c}");
    }
    let undone = if args.dry_run { "would undo" } else { "undid" };
    for n in &r.records {
        println!(
            "{undone} the run record in namespace {n} (deleted what the run created there, restored what it changed)"
        );
    }
    for n in &r.kept {
        eprintln!("netreach gc: left kept namespace {n} (--kept or --kept-older-than removes it)");
    }
    if let Some(d) = &r.docker {
        eprintln!("netreach gc: containers not checked: {d}");
    }
    for e in &r.errors {
        eprintln!("netreach gc: {e}");
    }
    eprintln!(
        "netreach gc: {} namespace(s) and {} container(s) {verb}; {} namespace(s) of live runs, {} kept",
        r.namespaces.len(),
        r.containers.len(),
        r.live.len(),
        r.kept.len()
    );
    Ok(if r.errors.is_empty() {
        exit::SUCCESS
    } else {
        exit::INFRASTRUCTURE
    })
}
