//! Raw scenario -> validated model, collecting every problem: the format version, the structure
//! ([`super::structure`]: namespaces, pods, externals, probes), then the steps
//! ([`super::steps`]: actions and expectations).

use std::collections::BTreeSet;

use super::policy_files::PolicySources;
use super::raw::{RawScenario, RawStep};
use super::steps::Steps;
use super::{FORMAT_VERSION, Loader, structure};
use crate::diag::{Code, DiagExt, Sink};
use crate::model::{PodId, Scenario};
use crate::policy::PolicyContext;

/// Validates a parsed scenario; problems go to `sink` (whose file is the scenario's).
pub(super) fn validate(raw: &RawScenario, sink: &mut Sink<'_>, loader: Loader<'_>) -> Scenario {
    if raw.version.value != FORMAT_VERSION {
        sink.error_at(
            Code::Version,
            &raw.version,
            format!("format version {} is not supported", raw.version.value),
        )
        .help(format!("this netreach reads `version: {FORMAT_VERSION}`"));
    }
    let structure::Structure {
        mut scenario,
        namespaces,
    } = structure::check(raw, sink);

    let raw_steps: &[RawStep] = raw.steps.as_ref().map_or(&[], |s| s.value.as_slice());
    if raw_steps.is_empty() {
        let at = raw
            .steps
            .as_ref()
            .map_or_else(|| structure::doc_start(sink.file), |s| sink.pos(s));
        sink.error(Code::MissingField, at, "the scenario has no steps")
            .help("add `steps:` with at least one step and its `expect:`");
    }
    scenario.absent_at_start = super::members::absent_at_start(&scenario, raw_steps);
    let pod_ids: BTreeSet<PodId> = scenario.pods.iter().map(|p| p.id.clone()).collect();
    let ext_names: BTreeSet<String> = scenario.externals.iter().map(|e| e.name.clone()).collect();
    let candidates: BTreeSet<String> = scenario
        .namespaces
        .iter()
        .filter(|n| n.existing && n.candidates)
        .map(|n| n.name.clone())
        .collect();
    let pcx = PolicyContext {
        namespaces: &namespaces,
        pods: &pod_ids,
        externals: &ext_names,
        candidates: &candidates,
        any_namespace: false,
    };
    let sources = PolicySources::new(&scenario.path, loader);
    let mut steps = Steps::new(&scenario, pcx, sources);
    let checked = raw_steps
        .iter()
        .enumerate()
        .map(|(i, rs)| steps.check(sink, rs, i + 1))
        .collect();
    scenario.steps = checked;
    scenario
}
