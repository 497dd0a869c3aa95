//! Who is isolated, and with what: `isolates-without-rules`, `unselected-pods`, `dns-blocked`.

use super::*;

#[test]
fn isolates_without_rules_forms() {
    let fires = [
        (
            "{podSelector: {}, policyTypes: [Ingress, Egress], ingress: [], egress: []}",
            "for ingress and egress and allows nothing there: `ingress: []` is a list of no rules, which allows nothing (`ingress: [{}]` would allow everything); `egress: []`",
        ),
        (
            "{podSelector: {}, ingress: []}",
            "for ingress and allows nothing there: `ingress: []`",
        ),
        (
            "{podSelector: {}, policyTypes: [Ingress, Egress], ingress: [{from: [{podSelector: {}}]}]}",
            "for egress and allows nothing there: policyTypes names Egress but it has no egress rules",
        ),
        // `egress: []` without policyTypes: Ingress is implied, and isolates with no rules.
        (
            "{podSelector: {}, egress: []}",
            "for ingress and allows nothing there: without policyTypes, Ingress is implied, and it has no ingress rules (its egress rules do not make it an Egress-only policy)",
        ),
        (
            "{podSelector: {}, policyTypes: [Egress], ingress: [{from: [{podSelector: {}}]}]}",
            "policyTypes names Egress but it has no egress rules",
        ),
    ];
    for (spec, says) in fires {
        let f = only(
            &one_step("", &[("p", spec)]),
            LintRule::IsolatesWithoutRules,
        );
        assert_eq!(rules(&f), [("isolates-without-rules", "x/p")], "{spec}");
        assert!(f[0].message.contains(says), "{spec}:\n{}", f[0].message);
    }
    let quiet = [
        // The default-deny idiom: no rule list written at all.
        DENY_ALL,
        "{podSelector: {}, policyTypes: [Ingress]}",
        "{podSelector: {}}",
        "{podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}",
        "{podSelector: {}, policyTypes: [Ingress, Egress], ingress: [{from: [{podSelector: {}}]}], egress: [{to: [{podSelector: {}}]}]}",
        // `egress: []` in a policy that is not an Egress policy, with ingress rules: no effect.
        "{podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{podSelector: {}}]}], egress: []}",
    ];
    for spec in quiet {
        let f = only(
            &one_step("", &[("p", spec)]),
            LintRule::IsolatesWithoutRules,
        );
        assert_eq!(rules(&f), [], "{spec}");
    }
}

#[test]
fn unselected_pods_by_namespace() {
    let web = policy(
        "web",
        "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {}}]}]}",
    );
    let f = lint(&scenario("", &[&apply(std::slice::from_ref(&web))]));
    assert_eq!(rules(&f), [("unselected-pods", "x/web")]);
    assert!(
        f[0].message.contains("no policy selects x/b:"),
        "{}",
        f[0].message
    );
    assert!(f[0].help.contains("x/b {app=db}"), "{}", f[0].help);
    assert_eq!(f[0].severity, LintSeverity::Info);
    // An Egress-only policy selecting b covers it too.
    let egress = policy(
        "db-egress",
        "{podSelector: {matchLabels: {app: db}}, policyTypes: [Egress]}",
    );
    assert_eq!(rules(&lint(&scenario("", &[&apply(&[web, egress])]))), []);
}

const RESOLVE: &str = "  - {from: x/a, resolve: example.com}\n";

fn dns_rule(ports: &str) -> String {
    format!(
        "{{podSelector: {{}}, policyTypes: [Egress], egress: [{{to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}}}], ports: {ports}}}]}}"
    )
}

#[test]
fn dns_per_protocol() {
    let case = |probes: &str, ports: &str| {
        only(
            &one_step(probes, &[("egress", &dns_rule(ports))]),
            LintRule::DnsBlocked,
        )
    };
    // Without a probe by name too: both pods have egress rules.
    for probes in ["", RESOLVE] {
        let f = case(probes, "[{port: 53, protocol: TCP}]");
        assert_eq!(rules(&f), [("dns-blocked", "x/egress")], "{probes}");
        assert!(
            f[0].message.starts_with(
                "x/egress isolates x/a, x/b for egress, and their egress does not admit the cluster DNS (kube-system pods labelled k8s-app=kube-dns) on 53/udp: without 53/udp names do not resolve"
            ),
            "{}",
            f[0].message
        );
        assert!(
            f[0].help.contains("x/b (egress isolated by x/egress)"),
            "{}",
            f[0].help
        );
    }
    let f = case(RESOLVE, "[{port: 53, protocol: TCP}]");
    assert!(
        f[0].help
            .contains("x/a (egress isolated by x/egress; it probes dns:example.com)"),
        "{}",
        f[0].help
    );
    let f = case("", "[{port: dns, protocol: UDP}]");
    assert_eq!(rules(&f), [("dns-blocked", "x/egress")]);
    assert!(f[0].message.contains("on 53/tcp: "), "{}", f[0].message);
    assert!(f[0].message.contains("truncated"), "{}", f[0].message);
    assert!(!f[0].message.contains("53/udp"), "{}", f[0].message);
    let f = case("", "[{port: 80}]");
    assert!(
        f[0].message.contains("on 53/udp or 53/tcp: "),
        "{}",
        f[0].message
    );
    // Both, by number or by the DNS pods' port names: nothing to say.
    assert_eq!(
        rules(&case(
            "",
            "[{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]"
        )),
        []
    );
    assert_eq!(
        rules(&case(
            "",
            "[{port: dns, protocol: UDP}, {port: dns-tcp, protocol: TCP}]"
        )),
        []
    );
}

#[test]
fn dns_blocked_without_egress_rules_only_for_resolvers() {
    // A rule-less egress deny-all, and no pod resolves names: fine.
    let f = one_step("", &[("deny", DENY_ALL)]);
    assert_eq!(rules(&f), []);
    // A pod that does is reported (and only it); the finding is filed under the policy.
    let f = one_step(RESOLVE, &[("deny", DENY_ALL)]);
    assert_eq!(rules(&f), [("dns-blocked", "x/deny")]);
    assert!(
        f[0].message.contains("isolates x/a for"),
        "{}",
        f[0].message
    );
    assert!(!f[0].message.contains("x/b"), "{}", f[0].message);
    // Isolated by two policies that together allow DNS: fine.
    let f = one_step(
        RESOLVE,
        &[
            ("deny", DENY_ALL),
            (
                "dns",
                &dns_rule("[{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]"),
            ),
        ],
    );
    assert_eq!(rules(&f), []);
    // With a rule-less policy and one with rules, the finding goes to the one with rules.
    let f = one_step(
        RESOLVE,
        &[
            ("a-deny", DENY_ALL),
            ("b-udp", &dns_rule("[{port: 53, protocol: UDP}]")),
        ],
    );
    assert_eq!(rules(&f), [("dns-blocked", "x/b-udp")]);
    assert!(
        f[0].help.contains("egress isolated by x/a-deny, x/b-udp"),
        "{}",
        f[0].help
    );
    // DNS by ipBlock is left to the implementation: not reported.
    let f = one_step(
        RESOLVE,
        &[(
            "egress",
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.96.0.0/12}}], ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}]}",
        )],
    );
    assert_eq!(rules(&f), []);
}
