//! The commands that read only files, never a cluster: `validate`, `lint`, `explain` and `diff`.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::diag::Diagnostics;
use crate::exit;
use crate::scenario;

/// How `validate` prints.
#[derive(Debug, Clone, Copy)]
pub struct ValidateOutput {
    pub short: bool,
    pub verbose: bool,
    pub json: bool,
    pub all: bool,
}

/// Contradictions shown per scenario in text mode without `--all`.
const CONTRADICTIONS_SHOWN: usize = 5;

fn diagnostic_json(d: &crate::diag::Diagnostic) -> serde_json::Value {
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

/// `netreach validate`: the exit code.
pub fn validate(paths: &[PathBuf], out: &ValidateOutput, allow: &[PathBuf]) -> anyhow::Result<i32> {
    let ValidateOutput {
        short,
        verbose,
        json,
        all,
    } = *out;
    let Some(options) = crate::cli::load_options("validate", allow) else {
        return Ok(exit::USAGE);
    };
    let (files, skipped) = match scenario::discover_all(paths) {
        Ok(d) if !d.scenarios.is_empty() => (d.scenarios, d.skipped),
        Ok(_) => {
            eprintln!(
                "netreach validate: no scenario files (*.yaml, *.yml) under {}",
                shown(paths)
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
        let summary = loaded.scenario.as_ref().map(crate::expect::spec_summary);
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
fn lint_rules(flag: &str, names: &[String]) -> Result<Vec<crate::lint::LintRule>, String> {
    use crate::lint::LintRule;
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

/// `netreach lint`: the exit code.
pub fn lint(
    paths: &[PathBuf],
    json: bool,
    skip: &[String],
    deny: &[String],
    allow: &[String],
    allow_paths: &[PathBuf],
) -> anyhow::Result<i32> {
    use crate::lint::LintSeverity;
    let Some(options) = crate::cli::load_options("lint", allow_paths) else {
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
    let mut report = crate::lint::LintReport::default();
    for f in &files {
        let loaded = scenario::load_with_options(f, &options);
        match loaded.scenario {
            Some(s) => report.scenarios.push(crate::lint::ScenarioLint::of(&s)),
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
        crate::lint::render_text(&report)
    };
    print_out(&text)?;
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

/// Arguments of `netreach explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The scenario file, or a snapshot folder (`netreach snapshot -o DIR`: its scenario).
    /// Leave it out to read bare manifests with `--policies` and `--pods`.
    #[arg(required_unless_present = "policies")]
    pub scenario: Option<PathBuf>,
    /// Source pod, `ns/pod`.
    #[arg(long, required_unless_present = "target", requires = "to")]
    pub from: Option<String>,
    /// Target: `ns/pod`, `ext:<name>` or `dns:<name>`.
    #[arg(long, required_unless_present = "target", requires = "from")]
    pub to: Option<String>,
    /// Instead of one connection: every policy that selects this pod (`ns/pod`) for ingress
    /// and for egress, with each of its rules in words and their lines.
    #[arg(long, value_name = "POD", conflicts_with_all = ["from", "to", "port", "via"])]
    pub target: Option<String>,
    /// Port, e.g. `80/tcp` (default: every port the target serves).
    #[arg(long)]
    pub port: Option<String>,
    /// Route: ip, service or dns (default ip).
    #[arg(long)]
    pub via: Option<String>,
    /// Only this step (1-based; default: every step).
    #[arg(long)]
    pub step: Option<usize>,
    /// Without a scenario: NetworkPolicy manifests, a file or a folder (repeatable). Other
    /// objects in them count too.
    #[arg(long, value_name = "PATH", conflicts_with = "scenario")]
    pub policies: Vec<PathBuf>,
    /// With `--policies`: the pods they apply to, as manifests (Pods, Deployments, StatefulSets,
    /// … — one pod per workload, named after it — and Namespaces with their labels), a file or a
    /// folder (repeatable).
    #[arg(long, value_name = "PATH", requires = "policies")]
    pub pods: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A folder outside the scenario's repository that policy `file:` paths may read from
    /// (repeatable).
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_paths: Vec<PathBuf>,
}

/// `netreach explain`: the exit code.
pub fn explain(a: &ExplainArgs) -> anyhow::Result<i32> {
    let via = match a.via.as_deref() {
        None | Some("ip") => None,
        Some("service") => Some(crate::model::Via::Service),
        Some("dns") => Some(crate::model::Via::Dns),
        Some(other) => {
            eprintln!("netreach explain: --via {other}: write ip, service or dns");
            return Ok(exit::USAGE);
        }
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let s = if a.policies.is_empty() {
        let Some(options) = crate::cli::load_options("explain", &a.allow_paths) else {
            return Ok(exit::USAGE);
        };
        let Some(path) = &a.scenario else {
            eprintln!("netreach explain: give a scenario, or --policies and --pods");
            return Ok(exit::USAGE);
        };
        // A snapshot folder: its scenario.
        let path = if path.is_dir() {
            path.join(crate::audit::snapshot::SCENARIO_FILE)
        } else {
            path.clone()
        };
        let loaded = scenario::load_with_options(&path, &options);
        let Some(s) = loaded.scenario else {
            print_diagnostics(&loaded.diagnostics, false, color);
            return Ok(exit::INVALID);
        };
        s
    } else {
        let paths: Vec<PathBuf> = a.policies.iter().chain(&a.pods).cloned().collect();
        match super::audit::from_files("explain", &paths)? {
            Some(inv) if !inv.pods.is_empty() => inv.as_scenario(),
            Some(_) => {
                eprintln!(
                    "netreach explain: no pods or workloads in {}; give them with --pods",
                    shown(&paths)
                );
                return Ok(exit::USAGE);
            }
            None => return Ok(exit::INVALID),
        }
    };
    let text = match &a.target {
        Some(pod) => match crate::explain::target(&s, pod, a.step) {
            Ok(t) if a.json => serde_json::to_string_pretty(&t)? + "\n",
            Ok(t) => crate::explain::render_target(&t),
            Err(e) => {
                eprintln!("netreach explain: {e}");
                return Ok(exit::USAGE);
            }
        },
        None => {
            let q = crate::explain::Query {
                from: a.from.clone().unwrap_or_default(),
                to: a.to.clone().unwrap_or_default(),
                port: a.port.clone(),
                via,
                step: a.step,
            };
            match crate::explain::answer(&s, &q) {
                Ok(ans) if a.json => serde_json::to_string_pretty(&ans)? + "\n",
                Ok(ans) => crate::explain::render(&ans),
                Err(e) => {
                    eprintln!("netreach explain: {e}");
                    return Ok(exit::USAGE);
                }
            }
        }
    };
    print_out(&text)?;
    Ok(exit::SUCCESS)
}

/// `netreach diff`: the exit code.
pub fn diff(old: &std::path::Path, new: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    use crate::report::diff;
    let read = |p: &std::path::Path| -> Result<_, String> {
        // A snapshot folder, or a scenario: what its expectations say.
        let scenario = if p.is_dir() {
            Some(p.join(crate::audit::snapshot::SCENARIO_FILE))
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
                    crate::audit::snapshot::SCENARIO_FILE
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

/// `paths` for a message: `a, b`.
fn shown(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) -> std::io::Result<()> {
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
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
