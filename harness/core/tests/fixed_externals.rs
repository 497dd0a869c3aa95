//! External endpoints with a fixed address (`address:`): an endpoint that exists already outside
//! the cluster is probed where it is, known to the engine before deployment, and never started.

use netreach_core::cluster::fake::FakeCluster;
use netreach_core::diag::Code;
use netreach_core::model::Verdict;
use netreach_core::names::Naming;
use netreach_core::report::ScenarioStatus;
use netreach_core::run::{RunOptions, run_scenario};
use netreach_core::scenario;

const SCENARIO: &str = r#"version: 1
name: fixed outside endpoints
namespaces: [{name: app}]
pods:
  - {name: client, namespace: app, labels: {role: client}}
external:
  - {name: payments, address: 203.0.113.10, ports: [443/tcp]}
  - {name: internal-api, address: "2001:db8::7", ports: [8443/tcp]}
probes:
  - {from: app/client, to: "ext:*"}
steps:
  - name: no policies
    expect:
      - default: allow
  - name: egress to the payment provider's network only
    apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: payments-only, namespace: app}
          spec:
            podSelector: {matchLabels: {role: client}}
            policyTypes: [Egress]
            egress:
              - to: [{ipBlock: {cidr: 203.0.113.0/24}}]
                ports: [{port: 443}]
    expect:
      - computed: {}
"#;

#[test]
fn a_fixed_address_is_probed_where_it_is_and_decided_before_deployment() {
    let l = scenario::load_str(
        std::path::Path::new("fixed.yaml"),
        SCENARIO,
        &scenario::MemReader::default(),
    );
    let s = l
        .scenario
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
    assert_eq!(
        s.externals[0].address,
        Some("203.0.113.10".parse().expect("ip"))
    );
    assert_eq!(
        s.externals[1].address,
        Some("2001:db8::7".parse().expect("ip"))
    );
    // `computed` needs the addresses: with fixed ones the engine decides before deployment, so
    // the scenario validates without an unspecified cell.
    let mut c = FakeCluster::following_spec(&s);
    // The double renders repro commands as the real prober would run them.
    c.repro_context = Some("kind-netreach".into());
    let r = run_scenario(
        &s,
        &mut c,
        &RunOptions::fast(Naming::PerRun {
            run_id: "fx".into(),
        }),
        &mut |_| {},
    );
    assert_eq!(
        r.status,
        ScenarioStatus::Passed,
        "{}",
        netreach_core::report::text::render_scenario(&r)
    );
    let step2 = &r.steps[1];
    let find = |to: &str| {
        step2
            .results
            .iter()
            .find(|c| c.cell.to_string().contains(to))
            .unwrap_or_else(|| panic!("no cell to {to}"))
    };
    let pay = find("ext:payments");
    assert_eq!(pay.expected.verdict, Verdict::Allow);
    let cmd = pay.detail.command.clone().unwrap_or_default();
    assert!(cmd.contains("203.0.113.10:443"), "probe command: {cmd}");
    let api = find("ext:internal-api");
    assert_eq!(api.expected.verdict, Verdict::Block);
    let cmd = api.detail.command.clone().unwrap_or_default();
    assert!(cmd.contains("[2001:db8::7]:8443"), "probe command: {cmd}");
}

#[test]
fn an_address_that_is_not_one_is_an_error_at_its_line() {
    let bad = SCENARIO.replace("address: 203.0.113.10", "address: payments.example.com");
    let l = scenario::load_str(
        std::path::Path::new("fixed.yaml"),
        &bad,
        &scenario::MemReader::default(),
    );
    assert!(l.scenario.is_none());
    let d = l
        .diagnostics
        .0
        .iter()
        .find(|d| d.code == Code::InvalidCidr)
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(false)));
    assert!(
        d.message
            .contains("`payments.example.com` is not an IP address"),
        "{}",
        d.message
    );
    assert_eq!(d.pos.line, 7, "{d:?}");
}
