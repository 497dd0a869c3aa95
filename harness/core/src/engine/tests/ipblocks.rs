//! ipBlocks before the addresses are known: the pod network (assumed IPv4, declared, IPv6,
//! dual-stack), literal blocks and `except`, placeholders, and what stays open.

use super::*;

/// `x/a`'s egress limited to one ipBlock, in a cluster declared by `cluster` (`""`: none).
fn egress_block(cluster: &str, cidr: &str, except: &str) -> World {
    world_in(
        cluster,
        &IPBLOCK
            .replace("CIDR", &format!("'{cidr}'"))
            .replace("EXCEPT", except),
    )
}

fn to_web(w: &World) -> Spec {
    let ext = CellKey {
        from: pod("x/a"),
        to: Target::External("web".into()),
        port: Some(port("80/tcp")),
        via: Some(Via::Ip),
    };
    explain(w, &ext).verdict
}

/// x/a's verdicts to three pods (one of its namespace, two elsewhere) and to ext:web.
fn block_verdicts(w: &World) -> [Spec; 4] {
    [
        v(w, "x/a", "x/b", "80/tcp"),
        v(w, "x/a", "y/b", "80/tcp"),
        v(w, "x/a", "z/c", "80/tcp"),
        to_web(w),
    ]
}

const IPV6: &str = "cluster: {podCIDR: 'fd00:10:244::/56'}";
const DUAL: &str = "cluster: {podCIDR: '10.244.0.0/16,fd00:10:244::/56'}";
const POD_CIDR: &str = "cluster: {podCIDR: 10.244.0.0/16}";

#[test]
fn a_zero_prefix_contains_every_pod_and_external_of_the_cluster_family() {
    use Spec::{Allow as A, Block as B, Unspecified as U};
    // (cluster, cidr, x/b, y/b, z/c, ext:web)
    let cases = [
        // Nothing declared: an IPv4 cluster is assumed.
        ("", "0.0.0.0/0", [A, A, A, A]),
        ("", "::/0", [B, B, B, B]),
        (POD_CIDR, "0.0.0.0/0", [A, A, A, A]),
        // An IPv6 cluster, known from its pod CIDR: pods and what they reach are IPv6.
        (IPV6, "::/0", [A, A, A, A]),
        (IPV6, "0.0.0.0/0", [B, B, B, B]),
        // Dual-stack: the family of a pod's address is the cluster's choice.
        (DUAL, "0.0.0.0/0", [U, U, U, U]),
        (DUAL, "::/0", [U, U, U, U]),
        (
            "cluster: {podCIDR: '0.0.0.0/0,::/0'}",
            "0.0.0.0/0",
            [U, U, U, U],
        ),
    ];
    for (cluster, cidr, want) in cases {
        let w = egress_block(cluster, cidr, "");
        assert_eq!(block_verdicts(&w), want, "{cluster:?} {cidr}");
    }
    // The reason names the pod network.
    let w = egress_block(DUAL, "0.0.0.0/0", "");
    let e = explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Ip));
    assert!(
        e.short().contains(
            "pod addresses: somewhere in 10.244.0.0/16, fd00:10:244::/56 (the scenario's cluster.podCIDR)"
        ),
        "{}",
        e.short()
    );
    // Once the addresses are known they decide, whatever was declared.
    let mut w = w;
    w.pod_ips
        .insert(pod("y/b"), "10.244.3.4".parse().expect("ip"));
    w.pod_ips
        .insert(pod("z/c"), "fd00:10:244::9".parse().expect("ip"));
    assert_eq!(v(&w, "x/a", "y/b", "80/tcp"), A);
    assert_eq!(v(&w, "x/a", "z/c", "80/tcp"), B);
}

#[test]
fn a_declared_pod_cidr_decides_literal_blocks_for_pods() {
    use Spec::{Allow as A, Block as B, Unspecified as U};
    // (cidr, except, pods, ext:web): a block disjoint from the pod network holds no pod, one
    // containing it holds every pod; an external endpoint can be anywhere but in the other
    // family.
    let cases = [
        ("192.168.0.0/16", "", B, U),
        ("10.0.0.0/8", "", A, U),
        ("10.244.0.0/16", "", A, U),
        ("10.244.1.0/24", "", U, U),
        ("0.0.0.0/0", "", A, A),
        ("fd00::/8", "", B, B),
        ("0.0.0.0/0", "10.244.0.0/16", B, U),
        ("0.0.0.0/0", "10.0.0.0/8", B, U),
        ("0.0.0.0/0", "192.168.0.0/16", A, U),
        ("0.0.0.0/0", "192.168.0.0/16, 172.16.0.0/12", A, U),
        ("10.0.0.0/8", "10.244.5.0/24", U, U),
        ("10.244.0.0/16", "10.244.0.0/17", U, U),
        // Sound, not complete: the two halves cover the pod network, but each only maybe holds
        // a pod, and Kleene logic does not add them up.
        ("10.244.0.0/16", "10.244.0.0/17, 10.244.128.0/17", U, U),
    ];
    for (cidr, except, pods, ext) in cases {
        let w = egress_block(POD_CIDR, cidr, except);
        assert_eq!(
            block_verdicts(&w),
            [pods, pods, pods, ext],
            "{cidr} except [{except}]"
        );
    }
    // Undeclared, the same blocks are decided only by their family.
    assert_eq!(
        block_verdicts(&egress_block("", "192.168.0.0/16", "")),
        [U, U, U, U]
    );
    assert_eq!(
        block_verdicts(&egress_block("", "0.0.0.0/0", "10.244.0.0/16")),
        [U, U, U, U]
    );
    // The reason for what stays open says where pods are.
    let w = egress_block(POD_CIDR, "10.244.1.0/24", "");
    let e = explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Ip));
    assert_eq!(
        e.short(),
        "unspecified: egress of x/a: unspecified (whether y/b is in ipBlock 10.244.1.0/24 depends on addresses not known yet (pod addresses: somewhere in 10.244.0.0/16 (the scenario's cluster.podCIDR))); ingress of y/b: not isolated (no policy selects it for ingress)"
    );
    // A pod network the run reports replaces the declared one.
    let w = egress_block(POD_CIDR, "10.42.0.0/16", "")
        .with_pod_cidrs(&["10.42.0.0/16".parse().expect("cidr")])
        .expect("one CIDR");
    assert_eq!(block_verdicts(&w), [A, A, A, U]);
    assert_eq!(w.pod_network.source(), PodNetworkSource::Cluster);
}

#[test]
fn placeholders_against_the_pod_network() {
    use Spec::{Allow as A, Block as B, Unspecified as U};
    // (cluster, cidr, except, [x/b, y/b, z/c, ext:web])
    let cases = [
        // Whatever y/b's address in 10.244.0.0/16, its /8 is 10.0.0.0/8 and holds every pod.
        (POD_CIDR, "${ip y/b}/8", "", [A, A, A, U]),
        (POD_CIDR, "${ip y/b}/16", "", [A, A, A, U]),
        (POD_CIDR, "${ip y/b}/24", "", [U, A, U, U]),
        (POD_CIDR, "${ip y/b}/24", "'${ip y/b}/32'", [U, B, U, U]),
        (POD_CIDR, "${ip y/b}/32", "", [B, A, B, B]),
        (POD_CIDR, "${ip ext:web}/8", "", [U, U, U, A]),
        (POD_CIDR, "0.0.0.0/0", "'${ip y/b}/16'", [B, B, B, U]),
        // Assumed IPv4: only /0 holds every pod.
        ("", "${ip y/b}/8", "", [U, A, U, U]),
        ("", "${ip y/b}/0", "", [A, A, A, A]),
        ("", "${ip ext:web}/0", "", [A, A, A, A]),
        // An IPv6 pod network: /32 is a wide block there, not one address.
        (IPV6, "${ip y/b}/32", "", [A, A, A, U]),
        (IPV6, "${ip y/b}/128", "", [B, A, B, B]),
    ];
    for (cluster, cidr, except, want) in cases {
        let w = egress_block(cluster, cidr, except);
        assert_eq!(
            block_verdicts(&w),
            want,
            "{cluster:?} {cidr} except [{except}]"
        );
    }
}

#[test]
fn a_zero_prefix_through_a_service_or_the_cluster_dns_stays_open() {
    let w = egress_block(POD_CIDR, "0.0.0.0/0", "");
    assert_eq!(v(&w, "x/a", "y/b", "80/tcp"), Spec::Allow);
    // Through a Service policy may see the ClusterIP, which no pod network says anything about.
    assert_eq!(
        explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Service)).verdict,
        Spec::Unspecified
    );
    // By name: resolution goes through the same ipBlock to the cluster DNS's Service.
    assert_eq!(
        explain(&w, &cell("x/a", "y/b", "80/tcp", Via::Dns)).verdict,
        Spec::Unspecified
    );
    let resolve = CellKey {
        from: pod("x/a"),
        to: Target::Name("y-b.example".into()),
        port: None,
        via: None,
    };
    assert_eq!(explain(&w, &resolve).verdict, Spec::Unspecified);
}

#[test]
fn pod_networks_are_one_cidr_per_family_and_report_addresses_outside() {
    let net = |s: &[&str]| {
        PodNetwork::new(
            &s.iter()
                .map(|c| c.parse().expect("cidr"))
                .collect::<Vec<_>>(),
            PodNetworkSource::Scenario,
        )
    };
    assert_eq!(net(&[]), Err(PodNetworkError::Empty));
    assert!(matches!(
        net(&["10.0.0.0/8", "10.244.0.0/16"]),
        Err(PodNetworkError::SameFamily(..))
    ));
    let dual = net(&["fd00::/56", "10.244.0.0/16"]).expect("dual-stack");
    assert_eq!(
        dual.cidrs(),
        [
            "10.244.0.0/16".parse().expect("cidr"),
            "fd00::/56".parse().expect("cidr")
        ]
    );
    assert_eq!(
        PodNetwork::default().describe(),
        "0.0.0.0/0 (assumed: an IPv4 cluster)"
    );
    // A run whose pods are elsewhere than the scenario said: the hook reports them.
    let mut w = world_in(POD_CIDR, "");
    w.pod_ips
        .insert(pod("x/a"), "10.244.0.5".parse().expect("ip"));
    w.pod_ips
        .insert(pod("x/b"), "10.42.0.5".parse().expect("ip"));
    assert_eq!(
        w.addresses_outside_pod_network(),
        [(pod("x/b"), "10.42.0.5".parse().expect("ip"))]
    );
}
