//! `netreach synthesize`: the NetworkPolicies that allow exactly a scenario step's intended
//! reachability, written to a folder and proven with the policy engine.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit;
use crate::scenario;
use crate::synthesize::{self, Intent, Isolation, Options, SynthError};

/// Arguments of `netreach synthesize`.
#[derive(clap::Args, Debug)]
pub struct SynthesizeArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The step whose expectations are the intent (1-based; default: the last).
    #[arg(long)]
    pub step: Option<usize>,
    /// Folder to write `policies/<namespace>.yaml` and `verify.yaml` into (created if needed;
    /// files of the same names are replaced).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// `all`: a default deny (ingress and egress) in every namespace with pods; `needed`:
    /// isolate only the pods and directions a blocked cell needs, for the fewest rules.
    #[arg(long, value_name = "MODE", default_value = "all", value_parser = ["all", "needed"])]
    pub isolate: String,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `netreach synthesize`; returns the exit code (0 proven, 1 some cell not met, 2 bad
/// arguments, 3 invalid scenario).
///
/// # Errors
/// When the files cannot be written, or on an internal error.
pub fn main(a: &SynthesizeArgs) -> anyhow::Result<i32> {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let loaded = scenario::load(&a.scenario);
    let Some(s) = loaded.scenario else {
        eprint!("{}", loaded.diagnostics.render(color));
        return Ok(exit::INVALID);
    };
    let isolation = Isolation::parse(&a.isolate).unwrap_or_default();
    let source = a.scenario.display().to_string();
    let (intent, scenario_world, step) = match Intent::from_scenario(&s, &source, a.step) {
        Ok(x) => x,
        Err(e @ SynthError::BadStep { .. }) => {
            eprintln!("netreach synthesize: {e}");
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    let syn = synthesize::synthesize(&intent, &Options { isolation })?;
    write_files("synthesize", &a.out, &syn.files)?;
    let cmp = synthesize::compare(&intent, &syn.policies, Some(&scenario_world));
    let text = if a.json {
        serde_json::to_string_pretty(&synthesize::Report::new(&syn, &cmp))? + "\n"
    } else {
        synthesize::render_text(&syn, &cmp)
    };
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    let verify = a.out.join(synthesize::VERIFY_FILE);
    if syn.proof.holds() {
        eprintln!(
            "netreach synthesize: step {} proven; wrote {} file(s) to {}. Before a live cluster, run {} on a staging cluster: netreach run --context <staging> {}",
            step.index,
            syn.files.len(),
            a.out.display(),
            synthesize::VERIFY_FILE,
            verify.display()
        );
        Ok(exit::SUCCESS)
    } else {
        eprintln!(
            "netreach synthesize: step {}: {} of {} cell(s) not met; the files in {} are written but do not do what the intent says",
            step.index,
            syn.proof.unmet.len(),
            syn.proof.cells,
            a.out.display()
        );
        Ok(exit::MISMATCH)
    }
}

/// Writes generated files (relative path → text) under `out`, as `netreach synthesize` and
/// `netreach snapshot` (`command`) do, and warns about policy files an earlier run left there.
///
/// # Errors
/// When a folder or file cannot be written.
pub fn write_files(
    command: &str,
    out: &Path,
    files: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for (rel, text) in files {
        let p = out.join(rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
    }
    // A policy file of an earlier run for a namespace that now has none would be applied by
    // `kubectl apply -f <dir>/policies` but not by verify.yaml: say so.
    if let Ok(rd) = std::fs::read_dir(out.join("policies")) {
        let mut stale: Vec<String> = rd
            .flatten()
            .filter_map(|e| {
                let rel = format!("policies/{}", e.file_name().to_string_lossy());
                (!files.contains_key(&rel)).then(|| e.path().display().to_string())
            })
            .collect();
        stale.sort();
        for s in stale {
            eprintln!(
                "netreach {command}: warning: {s} is not written by this {command} (left from an earlier one?); remove it"
            );
        }
    }
    Ok(())
}
