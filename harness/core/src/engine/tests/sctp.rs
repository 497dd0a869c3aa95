//! SCTP ports in policies: by number, name and range, and never confused with TCP.

use super::*;

#[test]
fn sctp_ports_numbers_names_and_ranges() {
    let pol = |ports: &str| {
        world(&format!(
            "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: p, namespace: x}}
    spec:
      podSelector: {{}}
      ingress: [{{ports: [{ports}]}}]"
        ))
    };
    let ok = |w: &World, p: &str| v(w, "y/a", "x/b", p) == Spec::Allow;
    let all = [
        "80/tcp",
        "81/tcp",
        "53/udp",
        "9000/sctp",
        "9001/sctp",
        "9000/tcp",
    ];
    // (ports of the rule, what it admits among `all`)
    let cases: [(&str, &[&str]); 8] = [
        ("{port: 9000, protocol: SCTP}", &["9000/sctp"]),
        // TCP by default: an SCTP port is not admitted by a rule without a protocol ...
        ("{port: 9000}", &["9000/tcp"]),
        // ... nor a TCP one by an SCTP rule (upstream: "should not mistakenly treat 'protocol:
        // SCTP' as 'protocol: TCP'").
        ("{port: 80, protocol: SCTP}", &[]),
        ("{port: sig, protocol: SCTP}", &["9000/sctp"]),
        ("{port: sig}", &[]),
        (
            "{port: 9000, endPort: 9001, protocol: SCTP}",
            &["9000/sctp", "9001/sctp"],
        ),
        ("{protocol: SCTP}", &["9000/sctp", "9001/sctp"]),
        (
            "{protocol: SCTP, port: 9001}, {port: 80}",
            &["80/tcp", "9001/sctp"],
        ),
    ];
    for (ports, want) in cases {
        let w = pol(ports);
        let got: Vec<&str> = all.iter().copied().filter(|p| ok(&w, p)).collect();
        assert_eq!(got, want, "{ports}");
    }
    // Egress: a named SCTP port resolves against the destination pod.
    let w = world(
        "- inline:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{ports: [{port: sig, protocol: SCTP}]}]",
    );
    assert_eq!(v(&w, "x/a", "y/b", "9000/sctp"), Spec::Allow);
    assert_eq!(v(&w, "x/a", "y/b", "9001/sctp"), Spec::Block);
    assert_eq!(v(&w, "x/a", "y/b", "80/tcp"), Spec::Block);
    let e = explain(&w, &cell("x/a", "y/b", "9000/sctp", Via::Ip));
    assert!(
        e.short().contains("allowed by x/p egress rule 1"),
        "{}",
        e.short()
    );
}
