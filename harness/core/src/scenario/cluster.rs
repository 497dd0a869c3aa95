//! The scenario's `cluster:` section: what it knows about the cluster it runs on.

use ipnet::IpNet;

use super::raw::RawCluster;
use crate::diag::{Code, DiagExt, Sink};
use crate::engine::{PodNetwork, PodNetworkSource};
use crate::policy::{self, AddrExpr};

/// The declared pod CIDRs (`cluster.podCIDR`: one, or one per family separated by commas);
/// empty when there are none or they are invalid (each problem is reported).
pub(super) fn pod_cidrs(c: &mut Sink<'_>, raw: Option<&RawCluster>) -> Vec<IpNet> {
    let Some(text) = raw.and_then(|r| r.pod_cidr.as_ref()) else {
        return Vec::new();
    };
    let mut cidrs = Vec::new();
    let mut ok = true;
    for part in text.value.split(',') {
        match policy::parse_addr(part) {
            Ok(AddrExpr::Literal(n)) => cidrs.push(n),
            Ok(_) => {
                c.error_at(
                    Code::InvalidCidr,
                    text,
                    format!(
                        "`{}`: a pod CIDR is a literal network, not an address placeholder",
                        part.trim()
                    ),
                )
                .help("write the cluster's pod network, e.g. `podCIDR: 10.244.0.0/16`");
                ok = false;
            }
            Err(msg) => {
                c.error_at(Code::InvalidCidr, text, format!("`cluster.podCIDR`: {msg}"))
                    .help("write the cluster's pod network, e.g. `podCIDR: 10.244.0.0/16`, or one per family for a dual-stack cluster: `10.244.0.0/16,fd00:10:244::/56`");
                ok = false;
            }
        }
    }
    if !ok {
        return Vec::new();
    }
    if let Err(e) = PodNetwork::new(&cidrs, PodNetworkSource::Scenario) {
        c.error_at(Code::InvalidCidr, text, format!("`cluster.podCIDR`: {e}"))
            .help("a cluster has one pod network per address family; a dual-stack one is written `10.244.0.0/16,fd00:10:244::/56`");
        return Vec::new();
    }
    cidrs
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::diag::Code;
    use crate::scenario::{MemReader, load_str};

    fn load(cluster: &str) -> crate::scenario::Loaded {
        let yaml = format!(
            "version: 1\n{cluster}\nnamespaces: [{{name: x}}]\npods: [{{name: a, namespace: x, ports: [80/tcp]}}]\nsteps: [{{expect: [{{default: allow}}]}}]\n"
        );
        load_str(Path::new("t/cluster.yaml"), &yaml, &MemReader::default())
    }

    #[test]
    fn pod_cidrs_one_per_family() {
        // (section, the CIDRs read)
        let ok: [(&str, &[&str]); 5] = [
            ("", &[]),
            ("cluster: {}", &[]),
            ("cluster: {podCIDR: 10.244.0.0/16}", &["10.244.0.0/16"]),
            ("cluster: {podCIDR: '::/0'}", &["::/0"]),
            (
                "cluster: {podCIDR: '10.244.0.0/16, fd00:10:244::/56'}",
                &["10.244.0.0/16", "fd00:10:244::/56"],
            ),
        ];
        for (section, want) in ok {
            let l = load(section);
            let s = l
                .scenario
                .unwrap_or_else(|| panic!("{section}: {}", l.diagnostics.render(false)));
            let want: Vec<ipnet::IpNet> = want.iter().map(|c| c.parse().expect("cidr")).collect();
            assert_eq!(s.pod_cidrs, want, "{section}");
        }
    }

    #[test]
    fn bad_pod_cidrs_are_invalid_cidr_errors_at_the_field() {
        // (podCIDR, a part of the message)
        let bad = [
            (
                "10.244.1.0/16",
                "has host bits set; the network is `10.244.0.0/16`",
            ),
            ("10.244.0.1", "is an address, not a CIDR"),
            ("pods", "`pods` is not a CIDR"),
            ("''", "is not a CIDR"),
            ("'${ip x/a}/16'", "not an address placeholder"),
            (
                "10.0.0.0/8,10.244.0.0/16",
                "at most one CIDR per address family",
            ),
        ];
        for (cidr, msg) in bad {
            let l = load(&format!("cluster:\n  podCIDR: {cidr}"));
            assert!(l.scenario.is_none(), "{cidr} accepted");
            let errors: Vec<_> = l.diagnostics.0.iter().collect();
            assert_eq!(errors.len(), 1, "{cidr}: {}", l.diagnostics.render(false));
            let d = errors[0];
            assert_eq!(d.code, Code::InvalidCidr, "{cidr}");
            assert_eq!((d.pos.line, d.pos.col), (3, 12), "{cidr}");
            assert!(d.message.contains(msg), "{cidr}: {}", d.message);
        }
        // An unknown field in the section is a shape error.
        let l = load("cluster: {serviceCIDR: 10.96.0.0/12}");
        assert!(l.scenario.is_none());
        assert_eq!(l.diagnostics.0[0].code, Code::UnknownField);
    }
}
