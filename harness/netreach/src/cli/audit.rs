//! `netreach audit`: what a cluster's NetworkPolicies let through, from the cluster (read only)
//! or from a folder of its manifests.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::audit::{AuditReport, Inventory, manifests, render_text};
use crate::diag::{Diagnostics, SourceFile};
use crate::exit;
use crate::lint::{LintRule, LintSeverity};
use crate::scenario::MAX_FILE_SIZE;

/// Arguments of `netreach audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Audit the manifests under this folder (or file) instead of a cluster: Namespaces,
    /// workloads (one pod per controller, from its template), Services, NetworkPolicies
    /// (`*.yaml`, `*.yml`, `*.json`; repeatable).
    #[arg(short = 'f', long = "filename", value_name = "DIR")]
    pub files: Vec<PathBuf>,
    /// The kubeconfig context of the cluster to read (get/list only: docs/rbac/netreach-audit.clusterrole.yaml).
    #[arg(long, env = "NETREACH_CONTEXT")]
    pub context: Option<String>,
    /// Only these namespaces' pods, Services and policies (repeatable; namespace labels are
    /// read for all).
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the audit as one self-contained HTML page here: findings, namespaces, the
    /// workload matrix with every pair's ports and reasons, the graph.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the graph of who may reach whom as an SVG document here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Leave out a lint rule's findings (repeatable).
    #[arg(long, value_name = "RULE")]
    pub skip: Vec<String>,
    /// Make a lint rule's findings errors (repeatable).
    #[arg(long, value_name = "RULE")]
    pub deny: Vec<String>,
    /// Make a lint rule's findings info, never failing the exit code (repeatable).
    #[arg(long, value_name = "RULE")]
    pub allow: Vec<String>,
}

fn rules(flag: &str, names: &[String]) -> Result<Vec<LintRule>, String> {
    names
        .iter()
        .map(|n| {
            LintRule::from_name(n).ok_or_else(|| {
                let all: Vec<&str> = LintRule::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "netreach audit: --{flag} {n}: no such rule (rules: {})",
                    all.join(", ")
                )
            })
        })
        .collect()
}

/// Runs `netreach audit`. Exit: lint's rule (1 when a finding is an error or a warning), 5 when
/// an object that may change what connects is not modelled, 3 when the manifests are invalid,
/// 4 when the cluster cannot be read (a refused list names its verb and resource).
///
/// # Errors
/// When the report cannot be written.
pub fn main(args: &AuditArgs) -> anyhow::Result<i32> {
    let (skip, deny, allow) = match (
        rules("skip", &args.skip),
        rules("deny", &args.deny),
        rules("allow", &args.allow),
    ) {
        (Ok(s), Ok(d), Ok(a)) => (s, d, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("{e}");
            return Ok(exit::USAGE);
        }
    };
    if let Some(both) = deny.iter().find(|r| allow.contains(r)) {
        eprintln!(
            "netreach audit: `{}` is given to both --deny and --allow; pick one",
            both.name()
        );
        return Ok(exit::USAGE);
    }
    let inv = match inventory(
        "audit",
        &args.files,
        args.context.as_deref(),
        &args.namespaces,
    )? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let mut r = AuditReport::of(&inv);
    r.skip(&skip);
    for x in deny {
        r.set_severity(x, LintSeverity::Error);
    }
    for x in allow {
        r.set_severity(x, LintSeverity::Info);
    }
    if let Some(path) = &args.html {
        let info = crate::report::html::RunInfo {
            context: args
                .files
                .is_empty()
                .then(|| args.context.clone())
                .flatten(),
            cluster_version: if args.files.is_empty() {
                args.context
                    .as_deref()
                    .and_then(|c| crate::kube::server_version(c, None))
            } else {
                None
            },
            started: Some(std::time::SystemTime::now()),
            ..crate::report::html::RunInfo::new()
        };
        write_file(path, &crate::audit::html::render_html(&r, &info), "--html")?;
    }
    if let Some(path) = &args.svg {
        match crate::audit::html::audit_graph(&r) {
            Some(g) => write_file(path, &crate::report::html::svg::svg(&g, "audit"), "--svg")?,
            None => eprintln!(
                "netreach audit: --svg: {} workloads, more than the {} a readable graph holds; not written (audit fewer namespaces)",
                r.workloads.len(),
                crate::audit::html::MAX_GRAPH
            ),
        }
    }
    let text = if args.json {
        serde_json::to_string_pretty(&r)? + "\n"
    } else {
        render_text(&r)
    };
    // A closed pipe (`| head`) is not an error.
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    eprintln!(
        "audited {}: {} finding(s) ({} error(s), {} warning(s), {} info); {} object(s) not modelled",
        r.source,
        r.findings.len(),
        r.count(LintSeverity::Error),
        r.count(LintSeverity::Warning),
        r.count(LintSeverity::Info),
        r.unsupported.len()
    );
    Ok(r.exit_code())
}

/// Arguments of `netreach snapshot`.
#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    /// Snapshot the manifests under this folder (or file) instead of a cluster (repeatable).
    #[arg(short = 'f', long = "filename", value_name = "DIR")]
    pub files: Vec<PathBuf>,
    /// The kubeconfig context of the cluster to read (get/list only, as `netreach audit`).
    #[arg(long, env = "NETREACH_CONTEXT")]
    pub context: Option<String>,
    /// The namespaces to reproduce (repeatable, at least one).
    #[arg(long = "namespace", value_name = "NAMESPACE", required = true)]
    pub namespaces: Vec<String>,
    /// The folder to write the scenario (`snapshot.yaml`) and its policy files into.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `netreach snapshot`: exit 0 when written, 2 on bad arguments, 3 invalid manifests, 4
/// the cluster cannot be read.
///
/// # Errors
/// When the files cannot be written.
pub fn snapshot_main(args: &SnapshotArgs) -> anyhow::Result<i32> {
    let inv = match inventory(
        "snapshot",
        &args.files,
        args.context.as_deref(),
        &args.namespaces,
    )? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let snap = match crate::audit::snapshot::snapshot(&inv, &args.namespaces) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netreach snapshot: {e}");
            return Ok(exit::USAGE);
        }
    };
    super::synthesize::write_files("snapshot", &args.out, &snap.files)?;
    // What it wrote must load: a scenario that does not is a bug, said as one.
    let scenario = args.out.join(crate::audit::snapshot::SCENARIO_FILE);
    let l = crate::scenario::load(&scenario);
    if l.scenario.is_none() {
        eprint!("{}", l.diagnostics.render(false));
        anyhow::bail!(
            "netreach snapshot: the scenario written to {} does not load (a netreach bug; please report it with the lines above)",
            scenario.display()
        );
    }
    eprintln!(
        "netreach snapshot: {} probe pod(s), one per workload, {} policy file(s); replay with `netreach run --context <test cluster> {}`",
        snap.pods.len(),
        snap.files.len() - 1,
        args.out.display()
    );
    for l in &snap.left_out {
        eprintln!("  left out: {l}");
    }
    Ok(exit::SUCCESS)
}

/// What `netreach <command>` reads: the manifests of `files`, else the cluster of `context`
/// (`namespaces`' objects, every namespace's labels). `Err`: the exit code, the problem said.
fn inventory(
    command: &str,
    files: &[PathBuf],
    context: Option<&str>,
    namespaces: &[String],
) -> anyhow::Result<Result<Inventory, i32>> {
    if !files.is_empty() {
        return Ok(from_files(command, files)?.ok_or(exit::INVALID));
    }
    let Some(context) = super::run::require_context(context) else {
        return Ok(Err(exit::USAGE));
    };
    let o = crate::kube::audit::AuditOptions {
        kubeconfig: None,
        namespaces: namespaces.to_vec(),
    };
    Ok(crate::kube::audit::read_cluster(context, &o).map_err(|e| {
        eprintln!("netreach {command}: {e}");
        exit::INFRASTRUCTURE
    }))
}

/// Writes `text` to `path` (for `flag`), through a temporary file so a reader never sees half.
fn write_file(path: &Path, text: &str, flag: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("netreach audit: {flag} {}: {e}", path.display()))?;
    eprintln!("netreach audit: wrote {}", path.display());
    Ok(())
}

/// The manifests under `paths`; `None` (after printing every problem, as `netreach <command>`)
/// when some are invalid.
pub(super) fn from_files(command: &str, paths: &[PathBuf]) -> anyhow::Result<Option<Inventory>> {
    let mut found = Vec::new();
    for p in paths {
        if let Err(e) = walk(p, &mut found) {
            eprintln!("netreach {command}: cannot read {}: {e}", p.display());
            return Ok(None);
        }
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        eprintln!("netreach {command}: no manifests (*.yaml, *.yml, *.json) under the given paths");
        return Ok(None);
    }
    let mut files = Vec::new();
    for f in &found {
        let size = std::fs::metadata(f)?.len();
        if size > MAX_FILE_SIZE {
            eprintln!(
                "netreach {command}: {}: larger than {MAX_FILE_SIZE} bytes, the most netreach reads; split it",
                f.display()
            );
            return Ok(None);
        }
        match std::fs::read_to_string(f) {
            Ok(t) => files.push(SourceFile::new(f.clone(), t)),
            Err(e) => {
                eprintln!("netreach {command}: cannot read {}: {e}", f.display());
                return Ok(None);
            }
        }
    }
    let source = format!(
        "{} ({} file(s))",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        files.len()
    );
    let mut d = Diagnostics::default();
    let inv = manifests::read(&files, &source, &mut d);
    if !d.0.is_empty() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        d.sort();
        eprint!("{}", d.render(color));
    }
    Ok((!d.has_errors()).then_some(inv))
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(p)?;
    if meta.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for e in entries {
        let m = std::fs::symlink_metadata(&e)?;
        if m.is_dir() {
            walk(&e, out)?;
        } else if m.is_file()
            && e.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
        {
            out.push(e);
        }
    }
    Ok(())
}
