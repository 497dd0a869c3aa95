//! The `netreach` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use netreach::diag::Diagnostics;
use netreach::exit;
use netreach::scenario;

#[derive(Parser, Debug)]
#[command(
    name = "netreach",
    version,
    about = "Proves what a Kubernetes cluster's NetworkPolicies really let through."
)]
#[command(after_help = exit_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check scenario files (and the policy files they use); report every problem.
    Validate {
        /// Scenario files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print one line per problem instead of snippets.
        #[arg(long)]
        short: bool,
        /// Also list the YAML files in the folders that are not scenarios, and why.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Print a JSON report on stdout: per scenario its diagnostics, and for a valid one the
        /// cells checked against the specification, every undecided cell with the engine's
        /// reasons and every contradiction.
        #[arg(long)]
        json: bool,
        /// List every contradiction with the specification (text mode shows the first 5 per
        /// scenario).
        #[arg(long)]
        all: bool,
        /// A folder outside the scenario's repository that policy `file:` paths may read from
        /// (repeatable).
        #[arg(long = "allow-path", value_name = "DIR")]
        allow_paths: Vec<PathBuf>,
    },
    /// Report policies that are valid but probably not what was meant (rules open to anywhere,
    /// isolation without rules, unselected pods, blocked DNS, selectors that select nothing or
    /// name unset labels, dead named ports). Errors and warnings fail the exit code, info does
    /// not.
    Lint {
        /// Scenario files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Leave out a rule's findings (repeatable), e.g. `--skip unselected-pods` for test
        /// scenarios that isolate only some pods on purpose.
        #[arg(long, value_name = "RULE")]
        skip: Vec<String>,
        /// Make a rule's findings errors, so they fail the exit code (repeatable), e.g.
        /// `--deny unselected-pods`.
        #[arg(long, value_name = "RULE")]
        deny: Vec<String>,
        /// Make a rule's findings info, so they are reported but never fail the exit code
        /// (repeatable), e.g. `--allow ingress-from-anywhere` for a public endpoint.
        #[arg(long, value_name = "RULE")]
        allow: Vec<String>,
        /// A folder outside the scenario's repository that policy `file:` paths may read from
        /// (repeatable).
        #[arg(long = "allow-path", value_name = "DIR")]
        allow_paths: Vec<PathBuf>,
    },
    /// Run scenarios against a cluster.
    Run(Box<netreach::cli::run::RunArgs>),
    /// What the NetworkPolicy specification says about one connection, step by step, and why:
    /// which policies select the source for egress and the destination for ingress, which rule
    /// and peer admit it, or that none does.
    Explain {
        /// The scenario file.
        scenario: PathBuf,
        /// Source pod, `ns/pod`.
        #[arg(long)]
        from: String,
        /// Target: `ns/pod`, `ext:<name>` or `dns:<name>`.
        #[arg(long)]
        to: String,
        /// Port, e.g. `80/tcp` (default: every port the target serves).
        #[arg(long)]
        port: Option<String>,
        /// Route: ip, service or dns (default ip).
        #[arg(long)]
        via: Option<String>,
        /// Only this step (1-based; default: every step).
        #[arg(long)]
        step: Option<usize>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A folder outside the scenario's repository that policy `file:` paths may read from
        /// (repeatable).
        #[arg(long = "allow-path", value_name = "DIR")]
        allow_paths: Vec<PathBuf>,
    },
    /// Write the NetworkPolicies that allow exactly a step's intended reachability (default
    /// deny, then the fewest rules), and prove them with the policy engine cell by cell.
    Synthesize(netreach::cli::synthesize::SynthesizeArgs),
    /// Measure full matrices, batched against one exec per cell (writes Markdown to stdout).
    #[command(hide = true)]
    Bench {
        /// The kubeconfig context.
        #[arg(long, env = "NETREACH_CONTEXT")]
        context: String,
        /// Pod counts.
        #[arg(long, value_delimiter = ',', default_value = "3,9,30")]
        sizes: Vec<usize>,
        /// Per-probe timeout in seconds.
        #[arg(long, default_value_t = 1)]
        probe_timeout: u32,
        /// Rounds per mode (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Also write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// What a cluster's NetworkPolicies let through, and what looks wrong in them: reachability
    /// between workloads, isolation per namespace and workload, every lint finding. Reads the
    /// cluster of --context with get/list only, or the manifests of -f DIR.
    Audit(netreach::cli::audit::AuditArgs),
    /// Write a scenario that reproduces live namespaces on a test cluster: their labels, one
    /// probe pod per workload (labels, declared ports), their policies as files, and the
    /// expectations the specification computes. Reads with get/list only.
    Snapshot(netreach::cli::audit::SnapshotArgs),
    /// Delete namespaces of netreach runs that are no longer alive (stale heartbeat).
    Gc(netreach::cli::gc::GcArgs),
    /// Check a cluster before trusting it: API, permissions, PodSecurity, the probe image, DNS,
    /// and whether NetworkPolicy is enforced at all.
    Doctor(netreach::cli::doctor::DoctorArgs),
    /// Print the RBAC manifests netreach needs (own namespaces, given namespaces, audit).
    Rbac(netreach::cli::doctor::RbacArgs),
    /// Compare two JSON reports cell by cell: what opened, closed or changed (exit 6 when
    /// something did). Two snapshot folders (or scenarios) compare what their expectations,
    /// the specification's verdicts, say.
    Diff {
        /// The older report (`netreach run --json`), snapshot folder or scenario.
        old: PathBuf,
        /// The newer report.
        new: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the scenario format.
    Schema,
    /// Serve TCP/UDP ports as a probe target (runs inside probe pods).
    Serve {
        /// Who this server is, for its answers (`namespace/pod`).
        #[arg(long, env = "NETREACH_IDENTITY", default_value = "netreach")]
        identity: String,
        /// A port to serve, e.g. `80/tcp`, `53/udp` (repeatable).
        #[arg(long = "port", value_name = "PORT/PROTO")]
        ports: Vec<String>,
        /// Written once every port listens (for readiness probes); removed on exit.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
    },
}

fn exit_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, name, what) in exit::TABLE {
        s.push_str(&format!("  {code}  {name:<15} {what}\n"));
    }
    s
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate {
            paths,
            short,
            verbose,
            json,
            all,
            allow_paths,
        } => validate(
            &paths,
            &ValidateOutput {
                short,
                verbose,
                json,
                all,
            },
            &allow_paths,
        ),
        Command::Lint {
            paths,
            json,
            skip,
            deny,
            allow,
            allow_paths,
        } => lint(&paths, json, &skip, &deny, &allow, &allow_paths),
        Command::Run(args) => netreach::cli::run::main(&args),
        Command::Explain {
            scenario,
            from,
            to,
            port,
            via,
            step,
            json,
            allow_paths,
        } => explain(
            &scenario,
            &allow_paths,
            netreach::explain::Query {
                from,
                to,
                port,
                via: None,
                step,
            },
            via.as_deref(),
            json,
        ),
        Command::Audit(args) => netreach::cli::audit::main(&args),
        Command::Snapshot(args) => netreach::cli::audit::snapshot_main(&args),
        Command::Gc(args) => netreach::cli::gc::main(&args),
        Command::Doctor(args) => netreach::cli::doctor::main(&args),
        Command::Rbac(args) => netreach::cli::doctor::rbac_main(&args),
        Command::Diff { old, new, json } => diff(&old, &new, json),
        Command::Synthesize(args) => netreach::cli::synthesize::main(&args),
        Command::Bench {
            context,
            sizes,
            probe_timeout,
            rounds,
            json,
        } => (|| {
            let results = netreach::bench::run(
                &context,
                &sizes,
                netreach::probe::ProbeTimeout(probe_timeout.max(1)),
                rounds.max(1),
                &mut |l| eprintln!("bench: {l}"),
            )?;
            if let Some(p) = json {
                std::fs::write(p, serde_json::to_string_pretty(&results)?)?;
            }
            print!("{}", netreach::bench::markdown(&results));
            Ok(exit::SUCCESS)
        })(),
        Command::Serve {
            identity,
            ports,
            ready_file,
        } => serve(identity, &ports, ready_file),
        Command::Schema => {
            print!("{}", netreach::scenario::schema_json());
            Ok(exit::SUCCESS)
        }
    };
    match code {
        Ok(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        Err(e) => {
            eprintln!("netreach: error: {e:#}");
            ExitCode::from(exit::INFRASTRUCTURE as u8)
        }
    }
}

/// How `validate` prints.
struct ValidateOutput {
    short: bool,
    verbose: bool,
    json: bool,
    all: bool,
}

/// Contradictions shown per scenario in text mode without `--all`.
const CONTRADICTIONS_SHOWN: usize = 5;

fn diagnostic_json(d: &netreach::diag::Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "code": d.code.name(),
        "severity": d.severity,
        "message": d.message,
        "file": d.file.path.display().to_string(),
        "line": d.pos.line,
        "col": d.pos.col,
        "help": d.help,
    })
}

fn validate(paths: &[PathBuf], out: &ValidateOutput, allow: &[PathBuf]) -> anyhow::Result<i32> {
    let ValidateOutput {
        short,
        verbose,
        json,
        all,
    } = *out;
    let Some(options) = netreach::cli::load_options("validate", allow) else {
        return Ok(exit::USAGE);
    };
    let (files, skipped) = match scenario::discover_all(paths) {
        Ok(d) if !d.scenarios.is_empty() => (d.scenarios, d.skipped),
        Ok(_) => {
            eprintln!(
                "netreach validate: no scenario files (*.yaml, *.yml) under {}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(exit::USAGE);
        }
        Err(e) => {
            eprintln!("netreach validate: cannot list scenarios: {e}");
            return Ok(exit::USAGE);
        }
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (mut errors, mut warnings, mut invalid) = (0, 0, 0);
    let mut reports = Vec::new();
    for f in &files {
        let loaded = scenario::load_with_options(f, &options);
        errors += loaded.diagnostics.error_count();
        warnings += loaded.diagnostics.warning_count();
        if loaded.scenario.is_none() {
            invalid += 1;
        }
        let summary = loaded.scenario.as_ref().map(netreach::expect::spec_summary);
        if json {
            reports.push(serde_json::json!({
                "path": f.display().to_string(),
                "valid": loaded.scenario.is_some(),
                "errors": loaded.diagnostics.error_count(),
                "warnings": loaded.diagnostics.warning_count(),
                "diagnostics": loaded.diagnostics.0.iter().map(diagnostic_json).collect::<Vec<_>>(),
                "spec": summary,
            }));
            continue;
        }
        print_diagnostics(&loaded.diagnostics, short, color);
        if let Some(sum) = summary {
            eprintln!("{}", sum.line());
            for l in sum.contradiction_lines((!all).then_some(CONTRADICTIONS_SHOWN)) {
                eprintln!("{l}");
            }
        }
    }
    if json {
        let doc = serde_json::json!({
            "scenarios": reports,
            "valid": files.len() - invalid,
            "invalid": invalid,
            "errors": errors,
            "warnings": warnings,
            "skipped": skipped.iter().map(|(p, why)| serde_json::json!({"path": p.display().to_string(), "why": why.to_string()})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(if invalid > 0 {
            exit::MISMATCH
        } else {
            exit::SUCCESS
        });
    }
    if verbose {
        for (p, why) in &skipped {
            eprintln!("skipped {}: {why}", p.display());
        }
    }
    let others = match skipped.len() {
        0 => String::new(),
        n if verbose => format!("; {n} other YAML file(s) skipped"),
        n => format!("; {n} other YAML file(s) skipped (`--verbose` lists them)"),
    };
    eprintln!(
        "validated {} scenario(s): {} valid, {invalid} invalid; {errors} error(s), {warnings} warning(s){others}",
        files.len(),
        files.len() - invalid
    );
    Ok(if invalid > 0 {
        exit::MISMATCH
    } else {
        exit::SUCCESS
    })
}

/// Parses `--<flag> <rule>` values; `Err` is the usage message.
fn lint_rules(flag: &str, names: &[String]) -> Result<Vec<netreach::lint::LintRule>, String> {
    use netreach::lint::LintRule;
    names
        .iter()
        .map(|name| {
            LintRule::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = LintRule::ALL.iter().map(|r| r.name()).collect();
                let renamed = LintRule::renamed(name)
                    .map(|r| format!("; `{name}` is now {r}"))
                    .unwrap_or_default();
                format!(
                    "netreach lint: --{flag} {name}: no such rule (rules: {}){renamed}",
                    names.join(", ")
                )
            })
        })
        .collect()
}

fn lint(
    paths: &[PathBuf],
    json: bool,
    skip: &[String],
    deny: &[String],
    allow: &[String],
    allow_paths: &[PathBuf],
) -> anyhow::Result<i32> {
    use netreach::lint::LintSeverity;
    let Some(options) = netreach::cli::load_options("lint", allow_paths) else {
        return Ok(exit::USAGE);
    };
    let parsed = (
        lint_rules("skip", skip),
        lint_rules("deny", deny),
        lint_rules("allow", allow),
    );
    let (skipped, denied, allowed) = match parsed {
        (Ok(s), Ok(d), Ok(a)) => (s, d, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("{e}");
            return Ok(exit::USAGE);
        }
    };
    if let Some(both) = denied.iter().find(|r| allowed.contains(r)) {
        eprintln!(
            "netreach lint: `{}` is given to both --deny and --allow; pick one",
            both.name()
        );
        return Ok(exit::USAGE);
    }
    let files = match scenario::discover(paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("netreach lint: no scenario files (*.yaml, *.yml) under the given paths");
            return Ok(exit::USAGE);
        }
        Err(e) => {
            eprintln!("netreach lint: cannot list scenarios: {e}");
            return Ok(exit::USAGE);
        }
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut report = netreach::lint::LintReport::default();
    for f in &files {
        let loaded = scenario::load_with_options(f, &options);
        match loaded.scenario {
            Some(s) => report.scenarios.push(netreach::lint::ScenarioLint::of(&s)),
            None => {
                print_diagnostics(&loaded.diagnostics, false, color);
                report.invalid.push(f.display().to_string());
            }
        }
    }
    report.skip(&skipped);
    for r in denied {
        report.set_severity(r, LintSeverity::Error);
    }
    for r in allowed {
        report.set_severity(r, LintSeverity::Info);
    }
    let text = if json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        netreach::lint::render_text(&report)
    };
    // A closed pipe (`| head`) is not an error.
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    eprintln!(
        "linted {} scenario(s): {} finding(s) ({} error(s), {} warning(s), {} info); {} invalid scenario(s) not linted",
        report.scenarios.len(),
        report.finding_count(),
        report.count(LintSeverity::Error),
        report.count(LintSeverity::Warning),
        report.count(LintSeverity::Info),
        report.invalid.len()
    );
    Ok(report.exit_code())
}
fn explain(
    path: &std::path::Path,
    allow: &[PathBuf],
    mut q: netreach::explain::Query,
    via: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    q.via = match via {
        None | Some("ip") => None,
        Some("service") => Some(netreach::model::Via::Service),
        Some("dns") => Some(netreach::model::Via::Dns),
        Some(other) => {
            eprintln!("netreach explain: --via {other}: write ip, service or dns");
            return Ok(exit::USAGE);
        }
    };
    let Some(options) = netreach::cli::load_options("explain", allow) else {
        return Ok(exit::USAGE);
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let loaded = scenario::load_with_options(path, &options);
    let Some(s) = loaded.scenario else {
        print_diagnostics(&loaded.diagnostics, false, color);
        return Ok(exit::INVALID);
    };
    match netreach::explain::answer(&s, &q) {
        Ok(a) => {
            let text = if json {
                serde_json::to_string_pretty(&a)? + "\n"
            } else {
                netreach::explain::render(&a)
            };
            // A closed pipe (`| head`) is not an error.
            if let Err(e) =
                std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e.into());
            }
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("netreach explain: {e}");
            Ok(exit::USAGE)
        }
    }
}

fn diff(old: &std::path::Path, new: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    use netreach::report::diff;
    let read = |p: &std::path::Path| -> Result<_, String> {
        // A snapshot folder, or a scenario: what its expectations say.
        let scenario = if p.is_dir() {
            Some(p.join(netreach::audit::snapshot::SCENARIO_FILE))
        } else {
            p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml")
                .then(|| p.to_path_buf())
        };
        if let Some(f) = scenario {
            let l = scenario::load(&f);
            return match l.scenario {
                Some(s) => Ok(diff::scenario_cells(&s)),
                None if !f.exists() => Err(format!(
                    "{}: no {} here: give a JSON report, a snapshot folder or a scenario",
                    p.display(),
                    netreach::audit::snapshot::SCENARIO_FILE
                )),
                None => Err(format!(
                    "{} is not a valid scenario:\n{}",
                    f.display(),
                    l.diagnostics.render(false)
                )),
            };
        }
        let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&data).map_err(|e| format!("{}: not JSON: {e}", p.display()))?;
        diff::cells(&v).map_err(|e| format!("{}: {e}", p.display()))
    };
    let (a, b) = match (read(old), read(new)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("netreach diff: {e}");
            return Ok(exit::USAGE);
        }
    };
    let changes = diff::diff(&a, &b);
    if json {
        println!("{}", serde_json::to_string_pretty(&changes)?);
    } else {
        print!("{}", diff::render(&changes));
    }
    Ok(if changes.iter().any(diff::is_drift) {
        exit::DRIFT
    } else {
        exit::SUCCESS
    })
}

fn serve(identity: String, ports: &[String], ready_file: Option<PathBuf>) -> anyhow::Result<i32> {
    let ports = ports
        .iter()
        .map(|p| netreach::pattern::parse_port_proto(p).map_err(|e| anyhow::anyhow!(e)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    netreach::serve::serve(&netreach::serve::ServeConfig {
        identity,
        ports,
        ready_file,
    })?;
    Ok(exit::SUCCESS)
}

fn print_diagnostics(d: &Diagnostics, short: bool, color: bool) {
    if short {
        for x in &d.0 {
            eprintln!("{}", x.to_short_string());
        }
    } else {
        eprint!("{}", d.render(color));
    }
}
