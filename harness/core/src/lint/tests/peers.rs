//! What a rule's peers and ports reach: `*-from/to-anywhere`, `selector-label-unset`,
//! `dead-named-port`.

use super::*;

fn ingress(rule: &str) -> Vec<Finding> {
    one_step(
        "",
        &[("p", &format!("{{podSelector: {{}}, ingress: [{rule}]}}"))],
    )
}

fn egress(rule: &str) -> Vec<Finding> {
    one_step(
        "",
        &[(
            "p",
            &format!("{{podSelector: {{}}, policyTypes: [Egress], egress: [{rule}]}}"),
        )],
    )
}

#[test]
fn anywhere_forms() {
    let everything = [
        (
            "{}",
            "every source in and outside the cluster on every port",
        ),
        ("{from: []}", "its `from` is empty, which means everything"),
        (
            "{from: [{namespaceSelector: {}}]}",
            "every pod of every namespace on every port (peer 1",
        ),
        (
            "{from: [{namespaceSelector: {}, podSelector: {}}]}",
            "every pod of every namespace",
        ),
        (
            "{from: [{podSelector: {matchLabels: {app: web}}}, {ipBlock: {cidr: 0.0.0.0/0}}]}",
            "every IPv4 address in and outside the cluster on every port (peer 2 is ipBlock 0.0.0.0/0",
        ),
        (
            "{from: [{ipBlock: {cidr: '::/0'}}], ports: []}",
            "every IPv6 address",
        ),
        (
            "{ports: [{port: 80}]}",
            "every source in and outside the cluster on 80/tcp (it has no `from`)",
        ),
        (
            "{from: [], ports: [{port: 80}, {port: 53, protocol: UDP}]}",
            "on 80/tcp, 53/udp",
        ),
    ];
    for (rule, says) in everything {
        let f = ingress(rule);
        assert_eq!(rules(&f), [("ingress-from-anywhere", "x/p")], "{rule}");
        assert!(f[0].message.contains(says), "{rule}: {}", f[0].message);
        assert!(!f[0].message.contains("exfiltration"), "{}", f[0].message);
        assert_eq!(f[0].severity, LintSeverity::Warning);
    }
    let narrower = [
        "{from: [{podSelector: {}}]}",
        "{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}]}",
        "{from: [{namespaceSelector: {matchLabels: {team: x}}}]}",
        "{from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}",
        "{from: [{ipBlock: {cidr: 0.0.0.0/1}}]}",
    ];
    for rule in narrower {
        assert_eq!(rules(&ingress(rule)), [], "{rule}");
    }
    // Egress rules of a policy that is not an Egress policy take no effect.
    let f = one_step(
        "",
        &[(
            "p",
            "{podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{podSelector: {}}]}], egress: [{}]}",
        )],
    );
    assert_eq!(rules(&f), []);
}

#[test]
fn egress_to_anywhere_names_ports_and_exfiltration() {
    let f = only(
        &egress("{to: [], ports: [{port: 443, protocol: TCP}]}"),
        LintRule::EgressToAnywhere,
    );
    assert_eq!(f.len(), 1);
    assert!(
        f[0].message.starts_with(
            "egress rule 1 of x/p admits every destination in and outside the cluster on 443/tcp (its `to` is empty, which means everything): an exfiltration path"
        ),
        "{}",
        f[0].message
    );
    // The finding points at the rule, not at the policy.
    let s = &f[0];
    assert!(s.line > 0 && s.origin.ends_with(&format!(":{}", s.line)));
    let f = only(
        &egress("{to: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: 443}]}"),
        LintRule::EgressToAnywhere,
    );
    assert!(f[0].message.contains("exfiltration"), "{}", f[0].message);
    // Every pod of the cluster is not outside it.
    let f = only(
        &egress("{to: [{namespaceSelector: {}}], ports: [{port: 443}]}"),
        LintRule::EgressToAnywhere,
    );
    assert!(!f[0].message.contains("exfiltration"), "{}", f[0].message);
    let f = only(&egress("{}"), LintRule::EgressToAnywhere);
    assert!(
        f[0].message
            .contains("every other egress rule for the pods it selects becomes irrelevant"),
        "{}",
        f[0].message
    );
    assert_eq!(
        rules(&only(
            &egress("{to: [{podSelector: {}}], ports: [{port: 443}]}"),
            LintRule::EgressToAnywhere
        )),
        []
    );
}

/// Namespace `x` (team=x) and `kube-system`; pods carry `app`. Peers on keys nobody carries.
#[test]
fn selector_label_unset_forms() {
    let case = |peer: &str| {
        let f = ingress(&format!("{{from: [{peer}], ports: [{{port: 8080}}]}}"));
        only(&f, LintRule::SelectorLabelUnset)
    };
    let unset = [
        (
            "{namespaceSelector: {matchLabels: {name: kube-system}}}",
            "peer 1's namespaceSelector {name=kube-system} requires label `name` (name=kube-system), which no namespace carries, so the peer matches nothing; did you mean `kubernetes.io/metadata.name`? namespace kube-system has kubernetes.io/metadata.name=kube-system (Kubernetes sets this label on every namespace)",
            "write `namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}`",
        ),
        (
            "{namespaceSelector: {matchExpressions: [{key: Team, operator: In, values: [x]}]}}",
            "did you mean `team`? namespace x has team=x",
            "use key `team`",
        ),
        (
            "{namespaceSelector: {matchExpressions: [{key: env, operator: Exists}]}}",
            "requires label `env` (env), which no namespace carries",
            "check the key `env` for typos",
        ),
        (
            "{podSelector: {matchLabels: {app.kubernetes.io/name: web}}}",
            "did you mean `app`? pod x/a has app=web",
            "write `podSelector: {matchLabels: {app: web}}`, or give",
        ),
        (
            "{podSelector: {matchLabels: {App: web}}}",
            "did you mean `app`? pod x/a has app=web",
            "",
        ),
        (
            "{podSelector: {matchLabels: {tier: web}}}",
            "did you mean `app`? pod x/a has app=web",
            "",
        ),
        (
            "{podSelector: {matchLabels: {component: api}}}",
            "did you mean `app.kubernetes.io/component`? the recommended key",
            "",
        ),
    ];
    for (peer, says, helps) in unset {
        let f = case(peer);
        assert_eq!(rules(&f), [("selector-label-unset", "x/p")], "{peer}");
        assert!(f[0].message.contains(says), "{peer}:\n{}", f[0].message);
        assert!(f[0].help.contains(helps), "{peer}:\n{}", f[0].help);
        assert_eq!(f[0].severity, LintSeverity::Error);
    }
    let carried = [
        "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}",
        "{namespaceSelector: {matchLabels: {team: y}}}",
        // NotIn and DoesNotExist match objects without the key.
        "{namespaceSelector: {matchExpressions: [{key: env, operator: DoesNotExist}]}}",
        "{podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [a]}]}}",
        // The cluster DNS pods carry k8s-app.
        "{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}",
        "{podSelector: {matchLabels: {app: nope}}}",
        // kube-system's pods other than the cluster DNS are unknown to the scenario.
        "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {component: etcd}}}",
    ];
    for peer in carried {
        assert_eq!(rules(&case(peer)), [], "{peer}");
    }
    // Where scenario pods are admitted, an unset pod key is reported.
    assert_eq!(
        case("{namespaceSelector: {}, podSelector: {matchLabels: {component: etcd}}}").len(),
        1
    );
    // Two unset keys in one selector: one finding each.
    assert_eq!(
        case("{podSelector: {matchLabels: {tier: a, role: b}}}").len(),
        2
    );
    // A rule in a direction the policy does not have takes no effect.
    let f = one_step(
        "",
        &[(
            "p",
            "{podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{podSelector: {}}]}], egress: [{to: [{podSelector: {matchLabels: {tier: a}}}]}]}",
        )],
    );
    assert_eq!(rules(&f), []);
}

#[test]
fn dead_named_ports_ingress_and_egress() {
    let deny = policy("deny", DENY_ALL);
    let case = |spec: &str| {
        let f = lint(&scenario("", &[&apply(&[deny.clone(), policy("p", spec)])]));
        rules(&f)
            .into_iter()
            .filter(|(r, _)| !r.ends_with("anywhere") && *r != "dns-blocked")
            .map(|(r, p)| format!("{r} {p}"))
            .collect::<Vec<_>>()
    };
    let dead = vec!["dead-named-port x/p".to_owned()];
    // Ingress: some selected pod declares it (TCP), or none does.
    assert!(case("{podSelector: {}, ingress: [{ports: [{port: http}]}]}").is_empty());
    assert_eq!(
        case("{podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: http}]}]}"),
        dead
    );
    assert_eq!(
        case("{podSelector: {}, ingress: [{ports: [{port: http, protocol: UDP}]}]}"),
        dead
    );
    // Egress: resolved against the peers' pods.
    assert!(
        case("{podSelector: {}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: http}]}]}")
            .is_empty()
    );
    assert_eq!(
        case(
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: http}]}]}"
        ),
        dead
    );
    // No peers: any pod; a peer in another namespace: not x's pods.
    assert!(
        case("{podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: http}]}]}")
            .is_empty()
    );
    assert_eq!(
        case(
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}], ports: [{port: http}]}]}"
        ),
        dead
    );
    // The cluster DNS serves `dns` (UDP) and `dns-tcp` (TCP).
    assert!(
        case("{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}], ports: [{port: dns, protocol: UDP}, {port: dns-tcp}]}]}")
            .is_empty()
    );
    assert_eq!(
        case(
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}], ports: [{port: dns}]}]}"
        ),
        dead
    );
    // ipBlocks: a /32 placeholder names one pod; a literal CIDR might be any pod.
    assert_eq!(
        case(
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: '${ip x/b}/32'}}], ports: [{port: http}]}]}"
        ),
        dead
    );
    assert!(
        case("{podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: http}]}]}")
            .is_empty()
    );
    // A policy that selects nothing is `selects-nothing`, not also a dead ingress port.
    assert_eq!(
        case("{podSelector: {matchLabels: {app: none}}, ingress: [{ports: [{port: http}]}]}"),
        vec!["selects-nothing x/p".to_owned()]
    );
}

/// A key that a later step sets is awaited, not misspelt: a scenario does not report it, an
/// audit of the world before the relabel (no hints) does.
#[test]
fn selector_label_unset_waits_for_relabels() {
    let p = policy(
        "p",
        "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {access: granted}}}]}]}",
    );
    let s = scenario(
        "",
        &[
            &apply(&[p]),
            "relabel: [{namespace: x, labels: {access: granted}}]",
        ],
    );
    assert_eq!(rules(&only(&lint(&s), LintRule::SelectorLabelUnset)), []);
    let first = World::per_step(&s).remove(0);
    let f = lint_world(&first, &Hints::default());
    assert!(
        f.iter().any(|f| f.rule == LintRule::SelectorLabelUnset),
        "{f:?}"
    );
    assert!(Hints::of(&s).namespace_keys.contains("access"));
}
