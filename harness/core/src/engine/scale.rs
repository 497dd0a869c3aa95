//! A synthetic cluster the size of a live audit, and the engine's figures on it.
//!
//! Size: one generator of a realistic synthetic world (namespaces, workloads, policies of each
//! shape) and its benchmarks; split, the generator's shapes would be spread over files.
//!
//! `synthetic(namespaces, pods, policies, blocks)` builds a world shaped like a real cluster: a
//! `monitoring` and a `kube-system` namespace (CoreDNS), application namespaces labelled by
//! team and environment, Deployments (replicas share their labels, some mid-rollout with two
//! `pod-template-hash`es) and a StatefulSet per namespace (every pod its own
//! `statefulset.kubernetes.io/pod-name`), named ports, and per namespace a default deny, DNS
//! egress, ingress from the internet by ipBlock, tier-to-tier rules on named ports, metrics from
//! the monitoring namespace, egress by ipBlock with except, and cross-team rules with
//! `matchExpressions`. Addresses are known, as in an audit of a live cluster: pods spread over
//! eight nodes, a /24 each. [`Blocks`] says whether the ipBlocks stay clear of the pod network,
//! as ipBlocks are meant to (cluster-external addresses), or cut through it node by node.
//!
//! The benchmark (BENCHMARKS.md, "The policy engine at cluster scale"):
//! `cargo test -p netreach-core --release --lib engine::scale -- --ignored --nocapture`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use super::*;
use crate::model::{Target, Via};
use crate::policy::{
    AddrExpr, IpBlock, LabelSelector, NAMESPACE_NAME_LABEL, NetworkPolicy, Operator, Peer,
    PolicyPort, PortValue, Requirement, Rule,
};

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn sel(kv: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(kv),
        match_expressions: vec![],
    }
}

fn tcp(n: u16, name: &str) -> ServedPort {
    ServedPort {
        port: PortProto {
            port: n,
            protocol: Protocol::Tcp,
        },
        name: Some(name.to_owned()),
    }
}

fn named(name: &str) -> PolicyPort {
    PolicyPort {
        protocol: Protocol::Tcp,
        port: Some(PortValue::Name(name.to_owned())),
        end_port: None,
    }
}

fn number(protocol: Protocol, n: u16) -> PolicyPort {
    PolicyPort {
        protocol,
        port: Some(PortValue::Number(n)),
        end_port: None,
    }
}

fn pods_peer(kv: &[(&str, &str)]) -> Peer {
    Peer::Selectors {
        pods: Some(sel(kv)),
        namespaces: None,
    }
}

fn cidr(s: &str) -> AddrExpr {
    AddrExpr::Literal(s.parse().expect("cidr"))
}

fn policy(ns: &str, name: &str, types: &[PolicyType], pods: LabelSelector) -> NetworkPolicy {
    NetworkPolicy {
        ns: ns.to_owned(),
        name: name.to_owned(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        pod_selector: pods,
        policy_types: Some(types.to_vec()),
        ingress: None,
        egress: None,
        origin: format!("synthetic:{ns}/{name}"),
    }
}

/// What the synthetic ipBlocks are about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Blocks {
    /// Addresses outside the cluster, or all of it: every pod gets the same answer (from the
    /// internet but the metadata service; egress to 10.0.0.0/8 but the pod network).
    External,
    /// Per-node ranges of the pod network in `except`: pods of one workload on different nodes
    /// get different answers, so a workload splits by node.
    ByNode,
}

/// A world of `pods` pods in `namespaces` namespaces and `policies` policies (at most 8 per
/// application namespace), addresses known (pods in 10.244.0.0/16).
pub(crate) fn synthetic(namespaces: usize, pods: usize, policies: usize, blocks: Blocks) -> World {
    let mut w = World::default();
    let app_ns = namespaces.saturating_sub(2).max(1);
    let app_pods = pods.saturating_sub(4);
    let add_ns = |w: &mut World, name: &str, extra: &[(&str, &str)]| {
        let mut l = labels(extra);
        l.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
        w.namespaces.insert(name.to_owned(), l);
    };
    add_ns(&mut w, "monitoring", &[("team", "platform")]);
    add_ns(&mut w, "kube-system", &[]);
    let add_pod = |w: &mut World,
                   ns: &str,
                   name: String,
                   l: BTreeMap<String, String>,
                   ports: Vec<ServedPort>| {
        let id = PodId::new(ns, name);
        w.pods.insert(
            id.clone(),
            PodState {
                id,
                labels: l,
                ports,
            },
        );
    };
    for i in 0..2 {
        add_pod(
            &mut w,
            "monitoring",
            format!("prometheus-{i}"),
            labels(&[("app", "prometheus")]),
            vec![tcp(9090, "web")],
        );
        add_pod(
            &mut w,
            "kube-system",
            format!("coredns-{i}"),
            labels(&[("k8s-app", "kube-dns")]),
            vec![
                ServedPort {
                    port: PortProto {
                        port: 53,
                        protocol: Protocol::Udp,
                    },
                    name: Some("dns".into()),
                },
                tcp(53, "dns-tcp"),
            ],
        );
    }
    let envs = ["prod", "staging", "dev"];
    let mut nss = Vec::new();
    for n in 0..app_ns {
        let per_ns = app_pods / app_ns + usize::from(n < app_pods % app_ns);
        let ns = format!("team{}-{}-{n}", n % 10, envs[n % 3]);
        let team = format!("t{}", n % 10);
        add_ns(&mut w, &ns, &[("team", &team), ("env", envs[n % 3])]);
        // Workloads: (tier, replicas, ports); the db is a StatefulSet.
        let web = vec![tcp(8080, "http"), tcp(9100, "metrics")];
        let api = vec![tcp(8080, "http"), tcp(9090, "grpc"), tcp(9100, "metrics")];
        let plan: [(&str, usize, Vec<ServedPort>); 6] = [
            ("web", per_ns * 3 / 10, web.clone()),
            ("api", per_ns * 2 / 10, api.clone()),
            ("api2", per_ns / 10, api),
            ("worker", per_ns * 2 / 10, vec![tcp(9100, "metrics")]),
            (
                "cache",
                per_ns / 10,
                vec![tcp(6379, "redis"), tcp(9100, "metrics")],
            ),
            (
                "db",
                per_ns / 10,
                vec![tcp(5432, "postgres"), tcp(9100, "metrics")],
            ),
        ];
        let mut placed = 0;
        for (k, (tier, replicas, ports)) in plan.iter().enumerate() {
            let replicas = if k == 0 {
                // The web tier takes the remainder.
                per_ns - plan[1..].iter().map(|p| p.1).sum::<usize>()
            } else {
                *replicas
            };
            for r in 0..replicas {
                let t = if tier.starts_with("api") { "api" } else { tier };
                let app = format!("{tier}-{n}");
                let mut l = labels(&[("app", &app), ("tier", t), ("team", &team)]);
                if *tier == "db" {
                    l.insert(
                        "statefulset.kubernetes.io/pod-name".into(),
                        format!("{app}-{r}"),
                    );
                } else {
                    // Mid-rollout in every fourth namespace: two ReplicaSets.
                    let hash = if n % 4 == 0 && r % 2 == 1 {
                        "7d9f"
                    } else {
                        "5c8b"
                    };
                    l.insert("pod-template-hash".into(), format!("{hash}{k}"));
                    l.insert(
                        "version".into(),
                        if hash == "7d9f" { "v2" } else { "v1" }.into(),
                    );
                }
                add_pod(&mut w, &ns, format!("{app}-{r}"), l, ports.clone());
                placed += 1;
            }
        }
        debug_assert_eq!(placed, per_ns);
        nss.push((ns, team));
    }
    // Addresses, as a live cluster reports them: pods spread over 8 nodes, a /24 each, so the
    // replicas of one workload are on different nodes.
    for (i, id) in w.pods.keys().enumerate() {
        let ip = format!("10.244.{}.{}", i % 8, i / 8 + 2);
        w.pod_ips.insert(id.clone(), ip.parse().expect("ip"));
    }
    let w = w
        .with_pod_cidrs(&["10.244.0.0/16".parse().expect("cidr")])
        .expect("one CIDR");
    with_policies(w, &nss, policies, blocks)
}

fn with_policies(mut w: World, nss: &[(String, String)], total: usize, blocks: Blocks) -> World {
    let all = LabelSelector::default();
    let dns_peer = Peer::Selectors {
        pods: Some(sel(&[("k8s-app", "kube-dns")])),
        namespaces: Some(sel(&[(NAMESPACE_NAME_LABEL, "kube-system")])),
    };
    let mut out: Vec<NetworkPolicy> = Vec::new();
    'kinds: for kind in 0..8 {
        for (n, (ns, team)) in nss.iter().enumerate() {
            if out.len() == total {
                break 'kinds;
            }
            let p = match kind {
                0 => {
                    let mut p = policy(
                        ns,
                        "default-deny",
                        &[PolicyType::Ingress, PolicyType::Egress],
                        all.clone(),
                    );
                    p.ingress = Some(vec![]);
                    p.egress = Some(vec![]);
                    p
                }
                1 => {
                    let mut p = policy(
                        ns,
                        "egress-dns-and-namespace",
                        &[PolicyType::Egress],
                        all.clone(),
                    );
                    p.egress = Some(vec![
                        Rule {
                            peers: Some(vec![dns_peer.clone()]),
                            ports: Some(vec![number(Protocol::Udp, 53), number(Protocol::Tcp, 53)]),
                            line: 0,
                        },
                        Rule {
                            peers: Some(vec![pods_peer(&[])]),
                            ports: Some(vec![named("http"), named("grpc")]),
                            line: 0,
                        },
                    ]);
                    p
                }
                2 => {
                    let mut p = policy(
                        ns,
                        "web-from-internet",
                        &[PolicyType::Ingress],
                        sel(&[("tier", "web")]),
                    );
                    p.ingress = Some(vec![Rule {
                        peers: Some(vec![Peer::IpBlock(IpBlock {
                            cidr: cidr("0.0.0.0/0"),
                            // Not the metadata service (nor, by node, the first node's pods).
                            except: match blocks {
                                Blocks::External => vec![cidr("169.254.169.254/32")],
                                Blocks::ByNode => {
                                    vec![cidr("169.254.169.254/32"), cidr("10.244.0.0/24")]
                                }
                            },
                        })]),
                        ports: Some(vec![named("http")]),
                        line: 0,
                    }]);
                    p
                }
                3 => {
                    let mut p = policy(
                        ns,
                        "api-from-web",
                        &[PolicyType::Ingress],
                        sel(&[("tier", "api")]),
                    );
                    p.ingress = Some(vec![Rule {
                        peers: Some(vec![pods_peer(&[("tier", "web")])]),
                        ports: Some(vec![named("http"), named("grpc")]),
                        line: 0,
                    }]);
                    p
                }
                4 => {
                    let mut p = policy(
                        ns,
                        "db-from-api",
                        &[PolicyType::Ingress],
                        sel(&[("tier", "db")]),
                    );
                    p.ingress = Some(vec![Rule {
                        peers: Some(vec![pods_peer(&[("tier", "api")])]),
                        ports: Some(vec![named("postgres")]),
                        line: 0,
                    }]);
                    p
                }
                5 => {
                    let mut p = policy(ns, "metrics", &[PolicyType::Ingress], all.clone());
                    p.ingress = Some(vec![Rule {
                        peers: Some(vec![Peer::Selectors {
                            pods: Some(sel(&[("app", "prometheus")])),
                            namespaces: Some(sel(&[(NAMESPACE_NAME_LABEL, "monitoring")])),
                        }]),
                        ports: Some(vec![named("metrics")]),
                        line: 0,
                    }]);
                    p
                }
                6 => {
                    let mut p = policy(
                        ns,
                        "api-egress",
                        &[PolicyType::Egress],
                        sel(&[("tier", "api")]),
                    );
                    p.egress = Some(vec![
                        Rule {
                            peers: Some(vec![Peer::Selectors {
                                pods: Some(LabelSelector {
                                    match_labels: BTreeMap::new(),
                                    match_expressions: vec![Requirement {
                                        key: "tier".into(),
                                        operator: Operator::In,
                                        values: vec!["db".into(), "cache".into()],
                                    }],
                                }),
                                namespaces: None,
                            }]),
                            ports: Some(vec![number(Protocol::Tcp, 5432), named("redis")]),
                            line: 0,
                        },
                        Rule {
                            peers: Some(vec![Peer::IpBlock(IpBlock {
                                cidr: cidr("10.0.0.0/8"),
                                except: vec![cidr(&match blocks {
                                    Blocks::External => "10.244.0.0/16".to_owned(),
                                    Blocks::ByNode => format!("10.244.{}.0/24", n % 8),
                                })],
                            })]),
                            ports: Some(vec![PolicyPort {
                                protocol: Protocol::Tcp,
                                port: Some(PortValue::Number(8000)),
                                end_port: Some(8443),
                            }]),
                            line: 0,
                        },
                    ]);
                    p
                }
                _ => {
                    // Cross-team: the web tier of other prod/staging namespaces of the team.
                    let mut p = policy(
                        ns,
                        "api-from-team",
                        &[PolicyType::Ingress],
                        sel(&[("tier", "api")]),
                    );
                    p.ingress = Some(vec![Rule {
                        peers: Some(vec![Peer::Selectors {
                            pods: Some(sel(&[("tier", "web")])),
                            namespaces: Some(LabelSelector {
                                match_labels: labels(&[("team", team)]),
                                match_expressions: vec![Requirement {
                                    key: "env".into(),
                                    operator: Operator::NotIn,
                                    values: vec!["dev".into()],
                                }],
                            }),
                        }]),
                        ports: Some(vec![named("http")]),
                        line: 0,
                    }]);
                    p
                }
            };
            out.push(p);
        }
    }
    for p in out {
        w.policies.insert(p.reference(), p);
    }
    w
}

/// This thread's CPU time so far (Linux), for figures that do not depend on the machine's load.
fn cpu() -> Option<std::time::Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// Wall and CPU seconds since `(wall, cpu)`.
fn since(start: (Instant, Option<std::time::Duration>)) -> (f64, f64) {
    let wall = start.0.elapsed().as_secs_f64();
    let cpu = match (cpu(), start.1) {
        (Some(now), Some(then)) => (now - then).as_secs_f64(),
        _ => f64::NAN,
    };
    (wall, cpu)
}

fn start() -> (Instant, Option<std::time::Duration>) {
    (Instant::now(), cpu())
}

fn http() -> PortProto {
    PortProto {
        port: 8080,
        protocol: Protocol::Tcp,
    }
}

fn cell(from: &PodId, to: &PodId) -> CellKey {
    CellKey {
        from: from.clone(),
        to: Target::Pod(to.clone()),
        port: Some(http()),
        via: Some(Via::Ip),
    }
}

/// A world a tenth of the size: the matrix, the workload matrix expanded, and `explain` of
/// every cell agree.
#[test]
fn the_matrix_and_the_workloads_agree_with_explain_on_a_synthetic_cluster() {
    for blocks in [Blocks::External, Blocks::ByNode] {
        agree_on(&synthetic(10, 200, 60, blocks), blocks);
    }
}

fn agree_on(w: &World, blocks: Blocks) {
    assert_eq!(w.policies.len(), 60);
    let m = Matrix::compute(w, http());
    let wm = WorkloadMatrix::compute(w, http());
    let expanded = wm.expand();
    // The explanations of the representatives say what the verdicts say.
    let k = wm.workloads.workloads.len();
    for (i, e) in wm.explain_all(w).iter().enumerate() {
        assert_eq!(e.as_ref().map(|e| e.verdict), wm.between(i / k, i % k));
    }
    // Pods alike but for their names and addresses.
    let alike: std::collections::HashSet<_> = w
        .pods
        .values()
        .map(|p| (&p.id.ns, &p.labels, &p.ports))
        .collect();
    let k = wm.workloads.workloads.len();
    match blocks {
        Blocks::External => assert_eq!(k, alike.len(), "no ipBlock tells such pods apart"),
        Blocks::ByNode => assert!(k > alike.len(), "per-node ipBlocks split workloads"),
    }
    assert!(k < w.pods.len(), "replicas share a workload ({blocks:?})");
    let mut seen: std::collections::HashMap<Spec, usize> = std::collections::HashMap::new();
    for from in w.pods.keys() {
        for to in w.pods.keys() {
            let e = explain(w, &cell(from, to)).verdict;
            assert_eq!(m.verdict(from, to), Some(e), "{from} -> {to}");
            assert_eq!(wm.verdict(from, to), Some(e), "{from} -> {to} by workload");
            assert_eq!(
                expanded.verdict(from, to),
                Some(e),
                "{from} -> {to} expanded"
            );
            *seen.entry(e).or_insert(0) += 1;
        }
    }
    // The world is not trivial: both verdicts occur, and the ipBlocks are decided.
    assert!(seen.get(&Spec::Allow).is_some_and(|n| *n > 200), "{seen:?}");
    assert!(seen.get(&Spec::Block).is_some_and(|n| *n > 200), "{seen:?}");
    assert_eq!(seen.get(&Spec::Unspecified), None, "{seen:?}");
}

/// The figures in BENCHMARKS.md: 2,000 pods, 40 namespaces, 300 policies. Times are wall
/// seconds and, in brackets, this thread's CPU seconds (the machine may be shared).
#[test]
#[ignore = "a benchmark: run in release mode, see the module docs"]
fn scale_benchmark() {
    print!("{}", bench(Blocks::External, true));
    print!("{}", bench(Blocks::ByNode, false));
}

/// One world's figures; `explain_all` also explains every cell one by one.
fn bench(blocks: Blocks, explain_all: bool) -> String {
    let mut report = String::new();
    let t = start();
    let w = synthetic(40, 2000, 300, blocks);
    let (wall, cpu) = since(t);
    let n = w.pods.len();
    let _ = writeln!(
        report,
        "world ({blocks:?} ipBlocks): {n} pods, {} namespaces, {} policies (built in {wall:.2} s [{cpu:.2} s])",
        w.namespaces.len(),
        w.policies.len(),
    );

    // (a) Every pod -> pod cell on 8080/tcp: the matrix at once ...
    let t = start();
    let m = Matrix::compute(&w, http());
    let (wall, cpu) = since(t);
    let (allow, block, unspecified) = m.counts();
    let _ = writeln!(
        report,
        "(a) Matrix::compute, {} cells: {wall:.3} s [{cpu:.3} s] (allow {allow}, block {block}, unspecified {unspecified})",
        n * n,
    );
    // ... and `explain` of every cell, one by one, checked against it.
    if explain_all {
        let t = start();
        let mut checked = 0usize;
        let mut sample = (0.0, 0.0);
        for (i, from) in m.pods.iter().enumerate() {
            if i == 200 {
                // The first 200 sources: the sample the "before" figure was measured on.
                sample = since(t);
            }
            for (j, to) in m.pods.iter().enumerate() {
                let e = explain(&w, &cell(from, to));
                assert_eq!(e.verdict, m.at(i, j), "{from} -> {to}");
                checked += 1;
            }
        }
        let (wall, cpu) = since(t);
        let _ = writeln!(
            report,
            "(a) explain of every cell: {wall:.2} s [{cpu:.2} s] ({:.2} µs [{:.2} µs] per cell), {checked} cells, all equal to the matrix",
            wall * 1e6 / checked as f64,
            cpu * 1e6 / checked as f64,
        );
        let _ = writeln!(
            report,
            "    of which the first 200 sources ({} cells): {:.2} s [{:.2} s], {:.2} µs [{:.2} µs] per cell",
            200 * n,
            sample.0,
            sample.1,
            sample.0 * 1e6 / (200 * n) as f64,
            sample.1 * 1e6 / (200 * n) as f64,
        );
    }

    // (b) By workload: group, the verdict of every workload pair, expand; then the reasons.
    let t = start();
    let wm = WorkloadMatrix::compute(&w, http());
    let (wall, cpu) = since(t);
    let k = wm.workloads.workloads.len();
    let t = start();
    let expanded = wm.expand();
    let (ewall, ecpu) = since(t);
    assert!(
        expanded == m,
        "the expanded workload matrix differs from the matrix"
    );
    let _ = writeln!(
        report,
        "(b) WorkloadMatrix::compute: {k} workloads, {} pairs: {wall:.3} s [{cpu:.3} s]; expanded to {} cells in {ewall:.3} s [{ecpu:.3} s]; equal to the matrix",
        k * k,
        n * n,
    );
    let t = start();
    let reasons = wm.explain_all(&w);
    let (wall, cpu) = since(t);
    let text: usize = reasons.iter().flatten().map(|e| e.short().len()).sum();
    let explained = reasons.iter().flatten().count();
    let _ = writeln!(
        report,
        "(b) WorkloadMatrix::explain_all: {explained} explained pairs: {wall:.2} s [{cpu:.2} s]"
    );
    let _ = writeln!(
        report,
        "    one-line reasons average {:.0} bytes: {:.1} MB for the workload pairs, {:.1} GB were every cell explained",
        text as f64 / explained as f64,
        text as f64 / 1e6,
        text as f64 / explained as f64 * (n * n) as f64 / 1e9
    );
    report
}
