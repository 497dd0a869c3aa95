//! Real workloads (`workload:` in an `existing` namespace): what validation makes of them.

use std::path::Path;

use super::{MemReader, load_str};
use crate::diag::Code;
use crate::expect::spec_summary;
use crate::model::PodId;

const TEXT: &str = "version: 1
namespaces:
  - {name: prod, existing: true}
  - {name: probe}
pods:
  - {name: api, namespace: prod, workload: {app: api}, ports: [8080/tcp]}
  - {name: db, namespace: prod, workload: {app: db}, labels: {app: db, tier: data}, ports: [5432/tcp]}
  - {name: client, namespace: probe, labels: {app: client}, ports: [80/tcp]}
steps:
  - apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: deny, namespace: probe}
          spec: {podSelector: {}, policyTypes: [Ingress]}
    expect:
      - default: allow
      - computed: {}
";

#[test]
fn a_workload_is_a_pod_with_its_labels_never_probed_to_itself_and_never_computed() {
    let l = load_str(Path::new("scn/w.yaml"), TEXT, &MemReader::default());
    assert!(
        !l.diagnostics.has_errors(),
        "{}",
        l.diagnostics.render(false)
    );
    // No contradiction warning either: the live policies are not in the scenario.
    assert!(
        !l.diagnostics
            .0
            .iter()
            .any(|d| d.code == Code::ContradictsSpec),
        "{}",
        l.diagnostics.render(false)
    );
    let s = l.scenario.expect("valid");
    let api = PodId::new("prod", "api");
    let db = PodId::new("prod", "db");
    assert_eq!(s.workloads[&api]["app"], "api");
    // `labels:` default to the workload's; declared ones stay.
    assert_eq!(s.pod(&api).expect("declared").labels["app"], "api");
    assert_eq!(s.pod(&db).expect("declared").labels["tier"], "data");
    let cells: Vec<String> = s.steps[0]
        .expected
        .cells
        .keys()
        .map(ToString::to_string)
        .collect();
    // Every pod to every other pod's port, and a probe pod to itself; no workload to itself.
    assert_eq!(
        cells,
        [
            "probe/client -> probe/client 80/tcp",
            "probe/client -> prod/api 8080/tcp",
            "probe/client -> prod/db 5432/tcp",
            "prod/api -> probe/client 80/tcp",
            "prod/api -> prod/db 5432/tcp",
            "prod/db -> probe/client 80/tcp",
            "prod/db -> prod/api 8080/tcp",
        ]
    );
    // `computed` leaves every cell of a workload (from or to it) to the `default` before it.
    for (k, e) in &s.steps[0].expected.cells {
        if s.touches_workload(k) {
            assert_eq!(e.origin.kind, "default", "{k}");
        }
    }
    assert_eq!(
        s.steps[0]
            .expected
            .cells
            .keys()
            .filter(|k| s.touches_workload(k))
            .count(),
        6
    );
    // validate's summary names them undecided, with the reason.
    let summary = spec_summary(&s);
    let undecided = &summary.steps[0].undecided;
    assert_eq!(undecided.len(), 6, "{undecided:?}");
    assert!(undecided[0].reasons[0].contains("real workload"));
}

#[test]
fn a_workloads_probes_run_in_the_pod_the_bindings_name_and_go_to_its_address() {
    use crate::bind::{Bindings, bind_probes};
    use std::net::{IpAddr, Ipv4Addr};
    let l = load_str(Path::new("scn/w.yaml"), TEXT, &MemReader::default());
    let s = l.scenario.expect("valid");
    let api = PodId::new("prod", "api");
    let mut b = Bindings {
        namespaces: s.namespace_map(&crate::names::Naming::Verbatim),
        ..Bindings::default()
    };
    for (i, p) in s.pods.iter().enumerate() {
        let i = u8::try_from(i).expect("few pods") + 2;
        b.pod_ips
            .insert(p.id.clone(), IpAddr::V4(Ipv4Addr::new(10, 244, 0, i)));
    }
    b.exec_pods.insert(api.clone(), "nr-abc123-api".into());
    let probes = bind_probes(
        &s,
        &s.steps[0]
            .expected
            .cells
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        &b,
    )
    .expect("bound");
    for p in &probes {
        let want = if p.cell.from == api {
            "nr-abc123-api"
        } else {
            p.cell.from.name.as_str()
        };
        assert_eq!(p.pod, want, "{}", p.cell);
    }
    assert!(probes.iter().any(|p| p.cell.from == api));
    // Removing the namespace forgets the workload's exec pod with its address.
    assert_eq!(b.unbind_namespace("prod").len(), 2);
    assert!(b.exec_pods.is_empty() && !b.pod_ips.contains_key(&api));
}

/// A scenario that tries a candidate policy in a live namespace, `candidates` on or off.
fn candidate(candidates: &str) -> String {
    format!(
        "version: 1
namespaces:
  - {{name: prod, existing: true{candidates}}}
pods:
  - {{name: web, namespace: prod, workload: {{app: web}}, ports: [80/tcp]}}
  - {{name: db, namespace: prod, workload: {{app: db}}, ports: [5432/tcp]}}
steps:
  - name: as it is
    expect:
      - default: block
      - allow: {{from: prod/web, to: prod/db, port: 5432/tcp}}
  - name: candidate
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {{name: deny, namespace: prod}}
          spec: {{podSelector: {{}}, policyTypes: [Ingress]}}
    expect:
      - default: block
"
    )
}

#[test]
fn candidate_policies_go_only_into_live_namespaces_that_say_so() {
    let off = load_str(
        Path::new("scn/c.yaml"),
        &candidate(""),
        &MemReader::default(),
    );
    let d = &off.diagnostics.0;
    assert!(
        d.iter().any(|d| d.code == Code::ExistingNamespace
            && d.help.iter().any(|h| h.contains("candidates: true"))),
        "{}",
        off.diagnostics.render(false)
    );
    let on = load_str(
        Path::new("scn/c.yaml"),
        &candidate(", candidates: true"),
        &MemReader::default(),
    );
    assert!(
        !on.diagnostics.has_errors(),
        "{}",
        on.diagnostics.render(false)
    );
    let s = on.scenario.expect("valid");
    let live = s.live_changes();
    assert_eq!(live.len(), 1, "only the candidate step changes prod");
    assert_eq!(live[0].0.index, 2);
    assert_eq!(live[0].1.iter().copied().collect::<Vec<_>>(), ["prod"]);
    let why = s.live_consent().expect("consent needed");
    assert!(
        why.starts_with("step 2 (\"candidate\", line ") && why.contains("live namespace(s) prod"),
        "{why}"
    );
    let plan = crate::cluster::DeployPlan::new(
        &s,
        &crate::names::Naming::PerRun {
            run_id: "r1".into(),
        },
        "r1",
    );
    assert_eq!(plan.live_namespaces, ["prod"]);
    // A namespace of the scenario's own cannot be a live one.
    let own = load_str(
        Path::new("scn/c.yaml"),
        "version: 1\nnamespaces:\n  - {name: x, candidates: true}\npods:\n  - {name: a, namespace: x, ports: [80/tcp]}\nsteps:\n  - expect:\n      - default: allow\n",
        &MemReader::default(),
    );
    assert!(
        own.diagnostics
            .0
            .iter()
            .any(|d| d.code == Code::Conflict && d.message.contains("not `existing`")),
        "{}",
        own.diagnostics.render(false)
    );
}
