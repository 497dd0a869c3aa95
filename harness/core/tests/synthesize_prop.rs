//! Synthesis on intents that are expressible by construction: random labelled pods in a few
//! namespaces, random NetworkPolicies (label selectors, namespace selectors, numeric, named,
//! ranged and all-port rules, DNS rules, ipBlocks for the external endpoint), and the engine's
//! matrix of those as the intent. Some set of policies (the random ones) realizes every such
//! intent, so the synthesizer must succeed with exact equality; one that gives up, or gets a
//! cell wrong, fails.

use std::collections::BTreeMap;

use proptest::prelude::*;

use netreach_core::engine::{PodState, World};
use netreach_core::model::{CellKey, PodId, PortProto, Protocol, ServedPort, Target, Via};
use netreach_core::policy::{
    AddrExpr, IpBlock, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer,
    PolicyPort, PolicyType, PortValue, Requirement, Rule,
};
use netreach_core::synthesize::{self, Intent, Isolation, Options};

const NAMESPACES: [&str; 3] = ["a", "b", "c"];

fn tcp(port: u16) -> PortProto {
    PortProto {
        port,
        protocol: Protocol::Tcp,
    }
}

fn udp(port: u16) -> PortProto {
    PortProto {
        port,
        protocol: Protocol::Udp,
    }
}

fn arb_labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    (
        prop::option::of(prop::sample::select(vec!["x", "y", "z"])),
        prop::option::of(prop::sample::select(vec!["1", "2"])),
    )
        .prop_map(|(app, tier)| {
            let mut l = BTreeMap::new();
            if let Some(a) = app {
                l.insert("app".to_owned(), a.to_owned());
            }
            if let Some(t) = tier {
                l.insert("tier".to_owned(), t.to_owned());
            }
            l
        })
}

/// Ports 80/tcp, 81/tcp, 53/udp, each maybe served, maybe named `http` or `web` (names may
/// mean different numbers on different pods).
fn arb_ports() -> impl Strategy<Value = Vec<ServedPort>> {
    prop::collection::vec((any::<bool>(), 0..3usize), 3).prop_map(|v| {
        let mut out: Vec<ServedPort> = Vec::new();
        for (i, (served, name)) in v.into_iter().enumerate() {
            if !served {
                continue;
            }
            let port = [tcp(80), tcp(81), udp(53)][i];
            let name = ["", "http", "web"][name];
            let taken = out.iter().any(|p| p.name.as_deref() == Some(name));
            out.push(ServedPort {
                port,
                name: (!name.is_empty() && !taken).then(|| name.to_owned()),
            });
        }
        out
    })
}

fn arb_selector() -> impl Strategy<Value = LabelSelector> {
    prop_oneof![
        Just(LabelSelector::default()),
        arb_labels().prop_map(|l| LabelSelector {
            match_labels: l,
            match_expressions: Vec::new(),
        }),
        prop::sample::select(vec!["x", "y", "z"]).prop_map(|v| LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: "app".into(),
                operator: Operator::NotIn,
                values: vec![v.to_owned()],
            }],
        }),
    ]
}

fn arb_ns_selector() -> impl Strategy<Value = LabelSelector> {
    prop_oneof![
        Just(LabelSelector::default()),
        prop::sample::select(NAMESPACES.to_vec()).prop_map(|n| LabelSelector {
            match_labels: BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), n.to_owned())]),
            match_expressions: Vec::new(),
        }),
        Just(LabelSelector {
            match_labels: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
            match_expressions: Vec::new(),
        }),
    ]
}

fn arb_peer(egress: bool) -> BoxedStrategy<Peer> {
    let sel = (
        prop::option::of(arb_selector()),
        prop::option::of(arb_ns_selector()),
    )
        .prop_filter_map("a peer needs a selector", |(pods, namespaces)| {
            (pods.is_some() || namespaces.is_some()).then_some(Peer::Selectors { pods, namespaces })
        });
    if egress {
        prop_oneof![
            4 => sel,
            1 => Just(Peer::IpBlock(IpBlock {
                cidr: AddrExpr::ExternalIp { name: "ext".into(), prefix: 32 },
                except: Vec::new(),
            })),
            1 => Just(Peer::Selectors {
                pods: Some(LabelSelector {
                    match_labels: BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
                    match_expressions: Vec::new(),
                }),
                namespaces: Some(LabelSelector {
                    match_labels: BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), "kube-system".to_owned())]),
                    match_expressions: Vec::new(),
                }),
            }),
        ]
        .boxed()
    } else {
        sel.boxed()
    }
}

fn arb_port() -> impl Strategy<Value = PolicyPort> {
    let p = |protocol, port, end_port| PolicyPort {
        protocol,
        port,
        end_port,
    };
    prop::sample::select(vec![
        p(Protocol::Tcp, Some(PortValue::Number(80)), None),
        p(Protocol::Tcp, Some(PortValue::Number(81)), None),
        p(Protocol::Tcp, Some(PortValue::Number(443)), None),
        p(Protocol::Udp, Some(PortValue::Number(53)), None),
        p(Protocol::Tcp, Some(PortValue::Name("http".into())), None),
        p(Protocol::Tcp, Some(PortValue::Name("web".into())), None),
        p(Protocol::Tcp, Some(PortValue::Number(80)), Some(81)),
        p(Protocol::Tcp, None, None),
    ])
}

fn arb_rule(egress: bool) -> impl Strategy<Value = Rule> {
    (
        prop::option::weighted(0.85, prop::collection::vec(arb_peer(egress), 1..3)),
        prop::option::weighted(0.85, prop::collection::vec(arb_port(), 1..3)),
    )
        .prop_map(|(peers, ports)| Rule {
            peers,
            ports,
            line: 0,
        })
}

fn arb_policy() -> impl Strategy<Value = NetworkPolicy> {
    (
        prop::sample::select(NAMESPACES.to_vec()),
        arb_selector(),
        prop::sample::select(vec![
            vec![PolicyType::Ingress],
            vec![PolicyType::Egress],
            vec![PolicyType::Ingress, PolicyType::Egress],
        ]),
        prop::collection::vec(arb_rule(false), 0..3),
        prop::collection::vec(arb_rule(true), 0..3),
    )
        .prop_map(|(ns, pod_selector, types, ingress, egress)| NetworkPolicy {
            ns: ns.to_owned(),
            name: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            pod_selector,
            policy_types: Some(types),
            ingress: Some(ingress),
            egress: Some(egress),
            origin: String::new(),
        })
}

fn arb_world() -> impl Strategy<Value = (World, Vec<CellKey>)> {
    (
        prop::collection::vec(
            (
                prop::sample::select(NAMESPACES.to_vec()),
                arb_labels(),
                arb_ports(),
            ),
            2..7,
        ),
        prop::collection::vec(any::<bool>(), 3),
        prop::collection::vec(arb_policy(), 0..5),
        prop::collection::vec((0..7usize, 0..7usize, 0..3usize, any::<bool>()), 0..6),
    )
        .prop_map(|(pods, prod, policies, extra)| {
            let mut w = World::default();
            for (i, ns) in NAMESPACES.iter().enumerate() {
                let mut l = BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), (*ns).to_owned())]);
                if prod[i] {
                    l.insert("env".into(), "prod".into());
                }
                w.namespaces.insert((*ns).to_owned(), l);
            }
            let ids: Vec<PodId> = pods
                .iter()
                .enumerate()
                .map(|(i, (ns, _, _))| PodId::new(*ns, format!("p{i}")))
                .collect();
            for ((_, labels, ports), id) in pods.into_iter().zip(&ids) {
                w.pods.insert(
                    id.clone(),
                    PodState {
                        id: id.clone(),
                        labels,
                        ports,
                    },
                );
            }
            for (i, mut p) in policies.into_iter().enumerate() {
                p.name = format!("p{i}");
                w.policies.insert(p.reference(), p);
            }
            let mut cells = Vec::new();
            for s in w.pods.values() {
                cells.push(CellKey {
                    from: s.id.clone(),
                    to: Target::Name("kubernetes.default.svc.cluster.local".into()),
                    port: None,
                    via: None,
                });
                for port in [tcp(80), tcp(443)] {
                    cells.push(CellKey {
                        from: s.id.clone(),
                        to: Target::External("ext".into()),
                        port: Some(port),
                        via: Some(Via::Ip),
                    });
                }
                for d in w.pods.values() {
                    for sp in &d.ports {
                        cells.push(CellKey {
                            from: s.id.clone(),
                            to: Target::Pod(d.id.clone()),
                            port: Some(sp.port),
                            via: Some(Via::Ip),
                        });
                    }
                }
            }
            for (a, b, k, dns) in extra {
                let (Some(s), Some(d)) = (ids.get(a), ids.get(b)) else {
                    continue;
                };
                let Some(sp) = w.pods[d].ports.get(k) else {
                    continue;
                };
                cells.push(CellKey {
                    from: s.clone(),
                    to: Target::Pod(d.clone()),
                    port: Some(sp.port),
                    via: Some(if dns { Via::Dns } else { Via::Service }),
                });
            }
            cells.sort();
            cells.dedup();
            (w, cells)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_matrix_of_any_policies_is_synthesized_exactly((w, cells) in arb_world()) {
        let intent = Intent::from_engine("random", &w, &cells);
        for isolation in [Isolation::All, Isolation::Needed] {
            let s = synthesize::synthesize(&intent, &Options { isolation })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let unmet: Vec<String> = s
                .proof
                .unmet
                .iter()
                .map(|u| format!("{}: want {}, got {}: {} {:?}", u.cell, u.want.as_str(), u.got, u.why, u.notes))
                .collect();
            prop_assert!(
                unmet.is_empty(),
                "isolation {}: {} unmet:\n{}\nintent policies: {:#?}\nsynthesized:\n{}",
                isolation.as_str(),
                unmet.len(),
                unmet.join("\n"),
                w.policies.values().collect::<Vec<_>>(),
                s.files.iter().filter(|(k, _)| k.starts_with("policies/")).map(|(_, v)| v.as_str()).collect::<Vec<_>>().join("\n")
            );
            // Least privilege over the universe: nothing beyond the intent, unless a pod with the
            // same labels forces it (noted).
            let c = synthesize::compare(&intent, &s.policies, None);
            prop_assert_eq!(c.synthesized.reach.intent_missed, 0);
            // Never a rule that admits every peer or every port.
            for p in &s.policies {
                for r in p.ingress.iter().flatten().chain(p.egress.iter().flatten()) {
                    prop_assert!(r.peers.as_ref().is_some_and(|v| !v.is_empty()), "{:?}", p);
                    prop_assert!(r.ports.as_ref().is_some_and(|v| !v.is_empty()), "{:?}", p);
                }
            }
        }
    }
}
