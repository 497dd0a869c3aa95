use super::*;
use crate::diag::{Diagnostics, SourceFile};
use crate::engine::Spec;
use crate::lint::{LintRule, LintSeverity};

fn fixture() -> Vec<SourceFile> {
    [
        (
            "fixtures/audit/namespaces.yaml",
            include_str!("../../../../fixtures/audit/namespaces.yaml"),
        ),
        (
            "fixtures/audit/workloads.yaml",
            include_str!("../../../../fixtures/audit/workloads.yaml"),
        ),
        (
            "fixtures/audit/services.yaml",
            include_str!("../../../../fixtures/audit/services.yaml"),
        ),
        (
            "fixtures/audit/policies.yaml",
            include_str!("../../../../fixtures/audit/policies.yaml"),
        ),
        (
            "fixtures/audit/other.yaml",
            include_str!("../../../../fixtures/audit/other.yaml"),
        ),
    ]
    .into_iter()
    .map(|(p, t)| SourceFile::new(p, t))
    .collect()
}

fn read(files: &[SourceFile]) -> (Inventory, Diagnostics) {
    let mut d = Diagnostics::default();
    let inv = manifests::read(files, "test", &mut d);
    (inv, d)
}

fn finding<'r>(r: &'r AuditReport, rule: LintRule, policy: &str) -> &'r AuditFinding {
    r.findings
        .iter()
        .find(|f| f.rule == rule && f.policy == policy)
        .unwrap_or_else(|| panic!("no {rule} on {policy} in {:#?}", r.findings))
}

#[test]
fn the_fixture_folder_shows_the_four_classic_mistakes() {
    let (inv, d) = read(&fixture());
    assert!(d.0.is_empty(), "{:?}", d.0);
    let r = AuditReport::of(&inv);
    // 1: `ingress: []` / `egress: []` allow nothing.
    let f = finding(&r, LintRule::IsolatesWithoutRules, "web/audit");
    assert_eq!(f.origin, "fixtures/audit/policies.yaml:29");
    assert!(
        f.message.contains("`ingress: []` is a list of no rules"),
        "{}",
        f.message
    );
    // 2: `name` is never set; Kubernetes sets kubernetes.io/metadata.name.
    let f = finding(
        &r,
        LintRule::SelectorLabelUnset,
        "web/frontend-from-ingress",
    );
    assert_eq!(f.severity, LintSeverity::Error);
    assert!(
        f.message
            .contains("did you mean `kubernetes.io/metadata.name`?"),
        "{}",
        f.message
    );
    // 3: `to: []` on 443 is everywhere.
    let f = finding(&r, LintRule::EgressToAnywhere, "web/api-egress");
    assert_eq!(f.origin, "fixtures/audit/policies.yaml:90");
    assert!(f.message.contains("on 443/tcp"), "{}", f.message);
    // 4: DNS on UDP only.
    let f = finding(&r, LintRule::DnsBlocked, "web/api-egress");
    assert!(f.message.contains("on 53/tcp:"), "{}", f.message);
    // The frontend's DNS has both protocols: no finding.
    assert!(
        !r.findings
            .iter()
            .any(|f| f.rule == LintRule::DnsBlocked && f.policy == "web/frontend-egress")
    );

    let text = render_text(&r);
    for line in [
        "  web/api -> data/database 5432/tcp: allowed by data/db-from-api (ingress rule 1 at fixtures/audit/policies.yaml:18); allowed by web/api-egress (egress rule 2 at fixtures/audit/policies.yaml:92) [1 -> 1 pod(s)]",
        "  web/frontend -> web/api 9090/tcp: allowed by web/api-from-frontend (ingress rule 1 at fixtures/audit/policies.yaml:76); allowed by web/frontend-egress (egress rule 1 at fixtures/audit/policies.yaml:58) [1 -> 1 pod(s)]",
        // Mistake 2's consequence: the ingress controller never reaches the frontend.
        "  ingress-nginx/ingress-nginx-controller -> web/frontend 8080/tcp: blocked: ingress isolated by web/audit, web/frontend-from-ingress and no rule admits it [1 -> 1 pod(s)]",
        "  web/api -> ingress-nginx/ingress-nginx-controller 443/tcp: allowed by web/api-egress (egress rule 1 at fixtures/audit/policies.yaml:90); ingress not isolated [1 -> 1 pod(s)]",
        "  web/frontend -> data/database 5432/tcp: blocked: ingress isolated by data/db-from-api, data/default-deny and no rule admits it; egress isolated by web/audit, web/frontend-egress and no rule admits it [1 -> 1 pod(s)]",
        "  data/database (StatefulSet, 1 pod(s) from its template): ports 5432/tcp (postgres); services data/database (ClusterIP 5432->postgres/tcp)",
        "    from other namespaces: web/api on 5432/tcp",
        "  ingress-nginx: policies -; workloads ingress-nginx-controller",
        "    ingress not isolated: ingress-nginx-controller; egress not isolated: ingress-nginx-controller; no policy applies: ingress-nginx-controller",
        "  fixtures/audit/other.yaml:8: policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy cluster-baseline: not supported yet: it decides what connects before NetworkPolicies do, so what this report says about the pods it selects may be wrong",
    ] {
        assert!(text.contains(line), "missing\n{line}\nin\n{text}");
    }
    let api = r
        .workloads
        .iter()
        .find(|w| w.name == "web/api")
        .expect("web/api");
    assert_eq!(
        api.to_outside,
        ["anywhere on 443/tcp (web/api-egress egress rule 1 at fixtures/audit/policies.yaml:90)"]
    );
    assert!(api.from_outside.is_empty());
    let nginx = r
        .workloads
        .iter()
        .find(|w| w.name == "ingress-nginx/ingress-nginx-controller")
        .expect("the controller");
    assert_eq!(nginx.from_outside, ["anywhere (ingress not isolated)"]);
    assert_eq!(
        r.unsupported
            .iter()
            .map(|u| (u.kind.as_str(), u.affects_reachability))
            .collect::<Vec<_>>(),
        [
            ("v1/ConfigMap", false),
            ("policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy", true)
        ]
    );
    // lint's exit rule; then an unmodelled AdminNetworkPolicy is what is left.
    let mut r = r;
    assert_eq!(r.exit_code(), crate::exit::MISMATCH);
    for rule in LintRule::ALL {
        r.set_severity(rule, LintSeverity::Info);
    }
    assert_eq!(r.exit_code(), crate::exit::UNSUPPORTED);
    let json = serde_json::to_value(&r).expect("JSON");
    assert_eq!(json["counts"]["workloads"], 4);
    assert_eq!(json["findings"][0]["rule"], "isolates-without-rules");
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn pod(ns: &str, name: &str, app: &str, ip: &str, port: u16, owner: Option<&str>) -> Pod {
    Pod {
        ns: ns.into(),
        name: name.into(),
        labels: labels(&[("app", app)]),
        ip: Some(ip.parse().expect("an address")),
        ports: vec![ContainerPort {
            name: Some("p".into()),
            port,
            protocol: Protocol::Tcp,
        }],
        owner: owner.map(|o| Owner {
            kind: "Deployment".into(),
            name: o.into(),
        }),
    }
}

#[test]
fn an_in_memory_world_by_workload_with_addresses_and_ip_blocks() {
    let np = manifests::policy_from_json(
        r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "db-policy", "namespace": "b"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                     "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                  "ports": [{"port": 5432}]}]}}"#,
        "networkpolicy b/db-policy",
    )
    .expect("valid");
    let inv = Inventory {
        source: "memory".into(),
        namespaces: vec![Namespace {
            name: "a".into(),
            labels: labels(&[("team", "x")]),
        }],
        pods: vec![
            pod("a", "web-1", "web", "10.244.0.5", 80, Some("web")),
            pod("a", "web-2", "web", "192.168.0.5", 80, Some("web")),
            pod("b", "db", "db", "10.244.1.7", 5432, None),
        ],
        services: vec![],
        policies: vec![np],
        unsupported: vec![],
    };
    let r = AuditReport::of(&inv);
    let text = render_text(&r);
    for line in [
        "  a/web -> b/db 5432/tcp: allowed by b/db-policy (ingress rule 1 at networkpolicy b/db-policy); egress not isolated [1 -> 1 pod(s), 1 of 2 pod pairs]",
        "  a/web -> b/db 5432/tcp: blocked: ingress isolated by b/db-policy and no rule admits it [1 -> 1 pod(s), 1 of 2 pod pairs]",
        "  b/db (Pod, 1 pod(s)): ports 5432/tcp (p); services -",
        "    from other namespaces: a/web on 5432/tcp",
        "    from outside: 10.0.0.0/8 except 10.1.0.0/16 on 5432/tcp (b/db-policy ingress rule 1 at networkpolicy b/db-policy)",
        "  a: policies -; workloads web",
        "    ingress not isolated: web; egress not isolated: web; no policy applies: web",
    ] {
        assert!(text.contains(line), "missing\n{line}\nin\n{text}");
    }
    // Pods of one workload reach each other: no policy, so not listed, but counted.
    let inner: Vec<&Reach> = r
        .reach
        .iter()
        .filter(|x| x.from == "a/web" && x.to == "a/web")
        .collect();
    assert_eq!(inner.len(), 1);
    assert_eq!(
        (inner[0].verdict, inner[0].pairs, inner[0].by_policy),
        (Spec::Allow, 2, false)
    );
    assert_eq!(r.exit_code(), crate::exit::SUCCESS);
}

#[test]
fn an_unknown_policy_field_is_an_error_at_its_position() {
    let f = SourceFile::new(
        "p.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: a}\nspec:\n  podSelector: {}\n  ingres: []\n",
    );
    let (inv, d) = read(&[f]);
    assert!(inv.policies.is_empty());
    assert_eq!(d.0.len(), 1, "{:?}", d.0);
    assert!(
        d.0[0].location().starts_with("p.yaml:6:"),
        "{}",
        d.0[0].location()
    );
    assert!(d.0[0].message.contains("ingres"), "{}", d.0[0].message);
    let e = manifests::policy_from_json(
        r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "x", "namespace": "a"}, "spec": {"podSelector": {}, "foo": 1}}"#,
        "networkpolicy a/x",
    )
    .expect_err("foo is not a field");
    assert!(e[0].contains("foo"), "{e:?}");
}

#[test]
fn lists_owners_and_templates() {
    let f = SourceFile::new(
        "l.yaml",
        r#"apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: shop, namespace: a}
    spec:
      template:
        metadata: {labels: {app: shop}}
        spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: shop-5d8f
      namespace: a
      ownerReferences: [{kind: Deployment, name: shop, controller: true}]
    spec:
      template:
        metadata: {labels: {app: shop}}
  - apiVersion: v1
    kind: Pod
    metadata:
      name: shop-5d8f-abcde
      namespace: a
      labels: {app: shop}
      ownerReferences: [{kind: ReplicaSet, name: shop-5d8f, controller: true}]
    spec: {containers: [{name: c, ports: [{containerPort: 80, name: http}]}]}
    status: {podIP: 10.244.0.9}
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: agent, namespace: a}
    spec:
      template:
        metadata: {labels: {app: agent}}
        spec: {containers: [{name: c, ports: [{containerPort: 99999}]}]}
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: a}
    spec: {podSelector: {}, egres: []}
---
kind: Service
"#,
    );
    let (inv, d) = read(&[f]);
    // The real pod belongs to the Deployment; neither controller makes another.
    let shop: Vec<&Pod> = inv
        .pods
        .iter()
        .filter(|p| p.labels.get("app").map(String::as_str) == Some("shop"))
        .collect();
    assert_eq!(shop.len(), 1);
    assert_eq!(shop[0].name, "shop-5d8f-abcde");
    assert_eq!(
        shop[0]
            .owner
            .as_ref()
            .map(|o| (o.kind.as_str(), o.name.as_str())),
        Some(("Deployment", "shop"))
    );
    assert_eq!(
        shop[0].ip.map(|i| i.to_string()).as_deref(),
        Some("10.244.0.9")
    );
    // The DaemonSet makes one pod from its template, without the bad port.
    let agent = inv.pods.iter().find(|p| p.name == "agent").expect("agent");
    assert!(agent.ports.is_empty() && agent.ip.is_none());
    let msgs: Vec<String> =
        d.0.iter()
            .map(|x| format!("{}: {}", x.location(), x.message))
            .collect();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert_eq!(
        msgs,
        [
            "l.yaml:29:5: DaemonSet `agent`: `spec.template.spec.containers[0].ports[0].containerPort` is 99999, not a port number (1-65535)",
            "l.yaml:41:1: this `Service` has no `metadata.name`",
            "l.yaml:36:5: NetworkPolicy (List item): unknown field `egres`, expected one of podSelector, policyTypes, ingress, egress",
        ]
    );
}

/// The synthetic 2,000-pod / 300-policy cluster of `engine::scale` as an inventory: pods
/// `<app>-<replica>` belong to workload `<app>` (a StatefulSet for the db tier, else a
/// Deployment), addresses known as a live cluster's.
fn synthetic_inventory(blocks: crate::engine::scale::Blocks) -> Inventory {
    let w = crate::engine::scale::synthetic(40, 2000, 300, blocks);
    let pods = w
        .pods
        .values()
        .map(|p| {
            let app =
                p.id.name
                    .rsplit_once('-')
                    .map_or(p.id.name.as_str(), |(a, _)| a);
            Pod {
                ns: p.id.ns.clone(),
                name: p.id.name.clone(),
                labels: p.labels.clone(),
                ip: w.pod_ips.get(&p.id).copied(),
                ports: p
                    .ports
                    .iter()
                    .map(|s| ContainerPort {
                        name: s.name.clone(),
                        port: s.port.port,
                        protocol: s.port.protocol,
                    })
                    .collect(),
                owner: Some(Owner {
                    kind: if app.starts_with("db-") {
                        "StatefulSet".into()
                    } else {
                        "Deployment".into()
                    },
                    name: app.to_owned(),
                }),
            }
        })
        .collect();
    Inventory {
        source: "synthetic".into(),
        namespaces: w
            .namespaces
            .iter()
            .map(|(n, l)| Namespace {
                name: n.clone(),
                labels: l.clone(),
            })
            .collect(),
        pods,
        services: vec![],
        policies: w.policies.values().cloned().collect(),
        unsupported: vec![],
    }
}

/// The audit figure in BENCHMARKS.md ("`netreach audit` at cluster scale"):
/// `cargo test -p netreach-core --release --lib audit::tests::audit_benchmark -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run in release mode"]
fn audit_benchmark() {
    for blocks in [
        crate::engine::scale::Blocks::External,
        crate::engine::scale::Blocks::ByNode,
    ] {
        let inv = synthetic_inventory(blocks);
        let t = std::time::Instant::now();
        let r = AuditReport::of(&inv);
        let report = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let text = render_text(&r);
        let render = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let json = serde_json::to_string(&r).expect("JSON");
        let json_s = t.elapsed().as_secs_f64();
        let decided = r.reach.iter().filter(|x| x.by_policy).count();
        println!(
            "{blocks:?}: {} pods, {} policies, {} workloads: AuditReport::of {report:.2} s; {} reach entries ({decided} decided by a policy), {} findings; text {render:.2} s ({} KB), JSON {json_s:.2} s ({} KB)",
            r.counts["pods"],
            r.counts["policies"],
            r.counts["workloads"],
            r.reach.len(),
            r.findings.len(),
            text.len() / 1024,
            json.len() / 1024,
        );
        assert_eq!(r.counts["pods"], 2000);
    }
}

/// What `kubectl get networkpolicy -o yaml` adds to a policy: the server's metadata and a
/// status. The audit of such an export says what the audit of the applied files says.
#[test]
fn policies_exported_with_server_metadata_read_as_applied() {
    let files = fixture();
    let clean = AuditReport::of(&read(&files).0);
    let exported: Vec<SourceFile> = files
        .iter()
        .map(|f| {
            let mut t = f.text.replace(
                "\nmetadata:\n",
                "\nmetadata:\n  uid: 3f2c1d7e-8a3b-4c55-9e1f-0a2b3c4d5e6f\n  resourceVersion: \"48211\"\n  generation: 2\n  creationTimestamp: \"2026-11-30T09:12:44Z\"\n  managedFields:\n    - manager: kubectl-client-side-apply\n      operation: Update\n      apiVersion: networking.k8s.io/v1\n      fieldsType: FieldsV1\n      fieldsV1: {f:spec: {}}\n",
            );
            t = t.replace(
                "\nmetadata: {",
                "\nmetadata: {uid: 3f2c1d7e-8a3b-4c55-9e1f-0a2b3c4d5e6f, resourceVersion: \"48211\", generation: 1, creationTimestamp: \"2026-11-30T09:12:44Z\", managedFields: [{manager: kubectl, operation: Update}], ",
            );
            t = t.replace("\n---\n", "\nstatus: {}\n---\n");
            SourceFile::new(f.path.clone(), t)
        })
        .collect();
    assert!(exported[3].text.contains("managedFields"));
    let (inv, d) = read(&exported);
    assert!(d.0.is_empty(), "{:?}", d.0);
    let r = AuditReport::of(&inv);
    let gist = |r: &AuditReport| -> Vec<(LintRule, String, String)> {
        r.findings
            .iter()
            .map(|f| (f.rule, f.policy.clone(), f.message.clone()))
            .collect()
    };
    assert_eq!(gist(&r), gist(&clean));
    assert_eq!(r.reach.len(), clean.reach.len());
    assert_eq!(inv.policies.len(), read(&files).0.policies.len());
}

/// A misspelt metadata field is still an error: only the server's own fields are let through.
#[test]
fn a_misspelt_metadata_field_is_still_an_error() {
    let t = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: x\n  namespace: web\n  lables: {a: b}\nspec:\n  podSelector: {}\n";
    let (_, d) = read(&[SourceFile::new("p.yaml", t.to_owned())]);
    assert!(d.has_errors(), "lables must be rejected");
    assert!(
        d.0.iter().any(|x| x.message.contains("lables")),
        "{:?}",
        d.0
    );
}
