//! Cluster tests of `netreach synthesize`, grouped `synthesized`: for the last step of each
//! shipped scenario (the top of `scenarios/`), the synthesized policies (`--isolate needed`: the
//! set with no more rules than the scenario's own, which `harness/core/tests/synthesize.rs`
//! checks; the default `all` adds default-deny policies) and their `verify.yaml` are written to a
//! temporary folder, exactly as the command writes them, and `verify.yaml` is run on the cluster:
//! the kind cluster must do what the intent says. (The upstream e2e transcriptions are left out here: the engine check in
//! `harness/core/tests/synthesize.rs` covers every one of their steps, and five more nine-pod
//! deployments would cost CI about three minutes.)

use std::path::Path;

use libtest_mimic::Failed;

use netreach::known::{self, KnownDeviations};
use netreach::kube::KubeOptions;
use netreach::names::Naming;
use netreach::report::text;
use netreach::run::{RunOptions, run_scenario};
use netreach::scenario;
use netreach::synthesize::{self, Intent, Isolation, Options};

pub const TESTS: [super::Test; 8] = [
    ("cross-namespace", |c| verify(c, "cross-namespace")),
    ("default-deny", |c| verify(c, "default-deny")),
    ("dns-egress", |c| verify(c, "dns-egress")),
    ("egress-external", |c| verify(c, "egress-external")),
    ("named-ports", |c| verify(c, "named-ports")),
    ("policy-update-delete", |c| {
        verify(c, "policy-update-delete")
    }),
    ("quarantine", |c| verify(c, "quarantine")),
    ("three-tier", |c| verify(c, "three-tier")),
];

fn verify(context: &str, id: &str) -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rel = format!("scenarios/{id}.yaml");
    let l = scenario::load(&root.join(&rel));
    let s = l
        .scenario
        .ok_or_else(|| format!("{rel}: {}", l.diagnostics.render(false)))?;
    let (intent, _, _) = Intent::from_scenario(&s, &rel, None).map_err(|e| e.to_string())?;
    let syn = synthesize::synthesize(
        &intent,
        &Options {
            isolation: Isolation::Needed,
        },
    )
    .map_err(|e| e.to_string())?;
    if !syn.proof.holds() {
        return Err(format!("{rel}: the engine check failed: {:?}", syn.proof.unmet).into());
    }
    let dir = std::env::temp_dir().join(format!(
        "netreach-synth-{id}-{}",
        netreach::run::new_run_id()
    ));
    netreach::cli::synthesize::write_files("synthesize", &dir, &syn.files)
        .map_err(|e| e.to_string())?;
    // Its own name, so that the enforcer's known deviations can name its cells.
    let verify = dir.join(format!("synthesized-{id}.yaml"));
    std::fs::rename(dir.join(synthesize::VERIFY_FILE), &verify)
        .map_err(|e| format!("{}: {e}", verify.display()))?;
    let loaded = scenario::load(&verify);
    let _ = std::fs::remove_dir_all(&dir);
    let v = loaded.scenario.ok_or_else(|| {
        format!(
            "the written {}: {}",
            synthesize::VERIFY_FILE,
            loaded.diagnostics.render(false)
        )
    })?;
    let mut c =
        netreach::kube::connect(context, KubeOptions::default()).map_err(|e| e.to_string())?;
    let r = run_scenario(
        &v,
        c.as_mut(),
        &RunOptions::new(Naming::PerRun {
            run_id: netreach::run::new_run_id(),
        }),
        &mut |_| {},
    );
    let one = std::slice::from_ref(&r);
    let (code, lines) = match std::env::var_os("NETREACH_KNOWN_DEVIATIONS") {
        Some(p) => {
            let k = KnownDeviations::load(Path::new(&p)).map_err(|e| e.to_string())?;
            known::exit_code_with(one, &k)
        }
        None => (netreach::report::exit_code(one), Vec::new()),
    };
    if code != 0 {
        return Err(format!(
            "verify.yaml of {rel} (last step) on the cluster: exit {code}\n{}\n{}",
            text::render_scenario(&r),
            lines.join("\n")
        )
        .into());
    }
    if r.counts.total() == 0 {
        return Err(format!("verify.yaml of {rel} probed nothing").into());
    }
    Ok(())
}
