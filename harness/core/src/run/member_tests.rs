//! The runner with steps that add and remove pods and namespaces: what the first deploy
//! creates, the cluster actions in order, and where the added pods' probes run.

use super::tests::{load_file, opts};
use super::*;
use crate::cluster::ClusterAction;
use crate::cluster::fake::{Call, FakeCluster};
use crate::outcome::Outcome;
use crate::report::ScenarioStatus;

#[test]
fn pods_and_namespaces_that_steps_add_and_remove_are_created_deleted_and_probed_in_order() {
    let s = load_file("scenarios/pods-come-and-go.yaml");
    let mut c = FakeCluster::following_spec(&s);
    // Record where each probe runs as the double answers it.
    let ran_in = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut answer = std::mem::replace(&mut c.responder, Box::new(|_, _| Outcome::Connected));
    let record = ran_in.clone();
    c.responder = Box::new(move |p, applied| {
        if let Ok(mut seen) = record.lock() {
            seen.insert((p.cell.from.to_string(), p.namespace.clone(), p.pod.clone()));
        }
        answer(p, applied)
    });
    let r = run_scenario(&s, &mut c, &opts(), &mut |_| {});
    assert_eq!(
        r.status,
        ScenarioStatus::Passed,
        "{}",
        crate::report::text::render_scenario(&r)
    );
    let sources = |i: usize| -> Vec<String> {
        let mut v: Vec<String> = r.steps[i]
            .results
            .iter()
            .map(|c| c.cell.from.to_string())
            .collect();
        v.dedup();
        v
    };
    assert_eq!(sources(0), ["shop/client", "shop/old", "shop/web"]);
    assert_eq!(
        sources(1),
        ["late/newcomer", "late/stranger", "shop/client", "shop/web"]
    );
    assert_eq!(sources(2), ["shop/client", "shop/old", "shop/web"]);
    // The first deploy creates only what is present at the start.
    let Call::Deploy(plan) = &c.calls[0] else {
        panic!("deploy expected: {:?}", c.calls[0])
    };
    let present: Vec<String> = plan.pods.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(present, ["shop/web", "shop/client", "shop/old"]);
    assert_eq!(plan.namespaces.len(), 1, "{:?}", plan.namespaces);
    // Each step's changes reach the cluster in the documented order: removals, then additions.
    let applies: Vec<Vec<String>> = c
        .calls
        .iter()
        .filter_map(|c| match c {
            Call::Apply(a) => Some(
                a.iter()
                    .map(|a| match a {
                        ClusterAction::RemovePod { id, .. } => format!("remove pod {id}"),
                        ClusterAction::RemoveNamespace { logical, .. } => {
                            format!("remove ns {logical}")
                        }
                        ClusterAction::AddNamespace(n) => format!("add ns {}", n.real),
                        ClusterAction::AddPod(p) => format!("add pod {} in {}", p.id, p.namespace),
                        ClusterAction::ApplyPolicy { policy, .. } => format!("apply {policy}"),
                        other => format!("{other:?}"),
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        applies,
        [
            vec!["apply shop/web-from-shop-clients".to_owned()],
            vec![
                "remove pod shop/old".to_owned(),
                "add ns late-abc123".to_owned(),
                "add pod late/newcomer in late-abc123".to_owned(),
                "add pod late/stranger in late-abc123".to_owned(),
            ],
            vec![
                "remove ns late".to_owned(),
                "add pod shop/old in shop-abc123".to_owned()
            ],
        ]
    );
    // An added pod's cells are probed from inside it, in its real namespace.
    let newcomer = r.steps[1]
        .results
        .iter()
        .find(|c| c.cell.from.to_string() == "late/newcomer")
        .expect("a cell of the added pod");
    assert_eq!(newcomer.expected.verdict, crate::model::Verdict::Allow);
    let ran_in = ran_in.lock().expect("not poisoned");
    assert!(
        ran_in.contains(&(
            "late/newcomer".to_owned(),
            "late-abc123".to_owned(),
            "newcomer".to_owned()
        )),
        "{ran_in:?}"
    );
    assert!(
        !ran_in
            .iter()
            .any(|(_, ns, _)| ns.starts_with("late") && ns != "late-abc123")
    );
    assert_eq!(r.counts.fail + r.counts.error, 0);
}
