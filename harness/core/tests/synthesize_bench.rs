//! Benchmark of `synthesize` (with its proof): 100 pods, 10,000 cells. Ignored by default;
//! run in release mode (BENCHMARKS.md):
//!
//! ```sh
//! cargo test --release -p netreach-core --test synthesize_bench -- --ignored --nocapture
//! ```
//!
//! Two intents over the same 100 pods (4 namespaces of 25, each pod serving one TCP port, so
//! the full by-IP matrix is 100 × 100 = 10,000 cells):
//! - *roles*: pods labelled `app` (one of 8) and `tier` (one of 3); the intent is the engine's
//!   matrix of 12 role-based policies (what a real application's intent looks like);
//! - *distinct*: every pod has labels of its own and each cell is allowed with probability 1/4
//!   (a fixed pseudo-random sequence): 100 classes, no structure to exploit.
//!
//! Each is synthesized in both isolation modes; the median of 3 runs must stay under 2 s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use netreach_core::engine::{PodState, World};
use netreach_core::model::{CellKey, PodId, PortProto, Protocol, ServedPort, Target, Verdict, Via};
use netreach_core::policy::{
    LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Peer, PolicyPort, PolicyType, PortValue,
    Rule,
};
use netreach_core::synthesize::{self, Intent, Isolation, Options};

const NS: [&str; 4] = ["shop", "pay", "ops", "data"];

fn sel(pairs: &[(&str, String)]) -> LabelSelector {
    LabelSelector {
        match_labels: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        match_expressions: Vec::new(),
    }
}

fn world(distinct: bool) -> World {
    let mut w = World::default();
    for ns in NS {
        w.namespaces.insert(
            ns.to_owned(),
            BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())]),
        );
    }
    for i in 0..100u16 {
        let id = PodId::new(NS[usize::from(i) / 25], format!("p{i}"));
        let labels = if distinct {
            BTreeMap::from([("pod".to_owned(), format!("p{i}"))])
        } else {
            BTreeMap::from([
                ("app".to_owned(), format!("a{}", i % 8)),
                ("tier".to_owned(), format!("t{}", i % 3)),
            ])
        };
        let port = PortProto {
            port: 8000 + i % 5,
            protocol: Protocol::Tcp,
        };
        w.pods.insert(
            id.clone(),
            PodState {
                id,
                labels,
                ports: vec![ServedPort {
                    port,
                    name: Some(format!("svc{}", i % 5)),
                }],
            },
        );
    }
    w
}

fn cells(w: &World) -> Vec<CellKey> {
    let mut v = Vec::new();
    for s in w.pods.values() {
        for d in w.pods.values() {
            v.push(CellKey {
                from: s.id.clone(),
                to: Target::Pod(d.id.clone()),
                port: Some(d.ports[0].port),
                via: Some(Via::Ip),
            });
        }
    }
    v
}

/// Twelve role policies: per namespace a default deny, and for some apps ingress from
/// other apps (some cross-namespace) on their named port, and egress to tiers.
fn role_policies(w: &mut World) {
    let mut n = 0;
    let add = |w: &mut World, p: NetworkPolicy| {
        w.policies.insert(p.reference(), p);
    };
    for (k, ns) in NS.iter().enumerate() {
        n += 1;
        let ingress = vec![
            Rule {
                peers: Some(vec![Peer::Selectors {
                    pods: Some(sel(&[("app", format!("a{}", (k + 1) % 8))])),
                    namespaces: None,
                }]),
                ports: Some(vec![PolicyPort {
                    protocol: Protocol::Tcp,
                    port: Some(PortValue::Name(format!("svc{}", k % 5))),
                    end_port: None,
                }]),
                line: 0,
            },
            Rule {
                peers: Some(vec![Peer::Selectors {
                    pods: Some(sel(&[("tier", format!("t{}", k % 3))])),
                    namespaces: Some(sel(&[(NAMESPACE_NAME_LABEL, NS[(k + 1) % 4].to_owned())])),
                }]),
                ports: None,
                line: 0,
            },
        ];
        add(
            w,
            NetworkPolicy {
                ns: (*ns).to_owned(),
                name: format!("in{n}"),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                pod_selector: sel(&[("app", format!("a{}", k % 8))]),
                policy_types: Some(vec![PolicyType::Ingress]),
                ingress: Some(ingress),
                egress: None,
                origin: String::new(),
            },
        );
        n += 1;
        add(
            w,
            NetworkPolicy {
                ns: (*ns).to_owned(),
                name: format!("eg{n}"),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                pod_selector: sel(&[("tier", format!("t{}", k % 3))]),
                policy_types: Some(vec![PolicyType::Egress]),
                ingress: None,
                egress: Some(vec![Rule {
                    peers: Some(vec![Peer::Selectors {
                        pods: Some(sel(&[("app", format!("a{}", (k + 3) % 8))])),
                        namespaces: Some(LabelSelector::default()),
                    }]),
                    ports: None,
                    line: 0,
                }]),
                origin: String::new(),
            },
        );
        n += 1;
        add(
            w,
            NetworkPolicy {
                ns: (*ns).to_owned(),
                name: format!("iso{n}"),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                pod_selector: sel(&[("app", format!("a{}", (k + 5) % 8))]),
                policy_types: Some(vec![PolicyType::Ingress]),
                ingress: Some(Vec::new()),
                egress: None,
                origin: String::new(),
            },
        );
    }
}

fn intent(distinct: bool) -> Intent {
    let mut w = world(distinct);
    let cs = cells(&w);
    if distinct {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut i = Intent::from_engine("bench distinct", &w, &cs);
        for (c, v) in &mut i.cells {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Loopback cells are always allowed.
            *v = if x.is_multiple_of(4) || c.is_loopback() {
                Verdict::Allow
            } else {
                Verdict::Block
            };
        }
        i
    } else {
        role_policies(&mut w);
        Intent::from_engine("bench roles", &w, &cs)
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark: run in release mode with --ignored (BENCHMARKS.md)"]
fn synthesis_of_100_pods_and_10000_cells() {
    for distinct in [false, true] {
        let i = intent(distinct);
        assert_eq!(i.world.pods.len(), 100);
        assert_eq!(i.cells.len(), 10_000);
        let allowed = i.cells.values().filter(|v| **v == Verdict::Allow).count();
        for isolation in [Isolation::All, Isolation::Needed] {
            let mut times = Vec::new();
            let mut compare_times = Vec::new();
            let mut last = None;
            for _ in 0..3 {
                let t = Instant::now();
                let s = synthesize::synthesize(&i, &Options { isolation }).expect("synthesis");
                times.push(t.elapsed());
                let t = Instant::now();
                let c = synthesize::compare(&i, &s.policies, None);
                compare_times.push(t.elapsed());
                last = Some((s, c));
            }
            let (s, c) = last.expect("ran");
            let t = Instant::now();
            let again = synthesize::prove(&i, &s.policies, &s.notes);
            let proof_alone = t.elapsed();
            assert_eq!(again, s.proof);
            let m = median(times);
            println!(
                "{} intent, isolation {}: {} cells ({allowed} allowed), {} policies, {} rules; synthesis + proof median {:.3} s (the proof alone {:.3} s); measures {:.3} s; proven: {}",
                if distinct { "distinct" } else { "roles" },
                isolation.as_str(),
                i.cells.len(),
                c.synthesized.stats.policies,
                c.synthesized.stats.rules,
                m.as_secs_f64(),
                proof_alone.as_secs_f64(),
                median(compare_times).as_secs_f64(),
                s.proof.holds()
            );
            assert!(
                s.proof.holds(),
                "{:?}",
                &s.proof.unmet[..s.proof.unmet.len().min(5)]
            );
            if !cfg!(debug_assertions) {
                assert!(m < Duration::from_secs(2), "{m:?}");
            }
        }
    }
}
