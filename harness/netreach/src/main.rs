//! The `netreach` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use netreach::cli::offline;
use netreach::exit;

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
    /// and peer admit it, or that none does. `--target` lists what selects one pod instead;
    /// `--policies`/`--pods` read bare manifests instead of a scenario.
    Explain(netreach::cli::offline::ExplainArgs),
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
        } => offline::validate(
            &paths,
            &offline::ValidateOutput {
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
        } => offline::lint(&paths, json, &skip, &deny, &allow, &allow_paths),
        Command::Run(args) => netreach::cli::run::main(&args),
        Command::Explain(args) => offline::explain(&args),
        Command::Audit(args) => netreach::cli::audit::main(&args),
        Command::Snapshot(args) => netreach::cli::audit::snapshot_main(&args),
        Command::Gc(args) => netreach::cli::gc::main(&args),
        Command::Doctor(args) => netreach::cli::doctor::main(&args),
        Command::Rbac(args) => netreach::cli::doctor::rbac_main(&args),
        Command::Diff { old, new, json } => offline::diff(&old, &new, json),
        Command::Synthesize(args) => netreach::cli::synthesize::main(&args),
        Command::Bench {
            context,
            sizes,
            probe_timeout,
            rounds,
            json,
        } => (|| {
            // Bench deploys namespaces too: an interrupt deletes them, as for `run`.
            netreach::signal::cleanup_on_interrupt();
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
