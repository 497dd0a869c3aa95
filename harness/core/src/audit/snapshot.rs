//! `netreach snapshot`: a scenario that reproduces some live namespaces on a test cluster, so
//! that `netreach run` tests the live policies against a real enforcer without touching the
//! live cluster.
//!
//! From an [`Inventory`] (a cluster read with get/list only, or manifests): each snapshotted
//! namespace with its labels; one probe pod per workload (its name, the labels and declared
//! ports of one of its pods); the namespaces the policies name through
//! `kubernetes.io/metadata.name` (cluster namespaces such as `kube-system` as `existing`, the
//! others created with their labels and no pods); the namespaces' policies as files
//! (`policies/<ns>.yaml`), applied in one step whose expectations are computed by the
//! engine (`computed: {}`). What is left out is listed in the scenario's header: other
//! namespaces' pods, the per-pod labels of controllers, pods beyond one per workload,
//! Services, and everything that is not a label or a port (no Secret, env or image is ever
//! read or copied).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Inventory, Owner, Pod};
use crate::policy::{NAMESPACE_NAME_LABEL, NetworkPolicy};
use crate::synthesize::render::{namespace_labels, policy_lines, scalar};

/// The scenario file's name in [`Snapshot::files`].
pub const SCENARIO_FILE: &str = "snapshot.yaml";

/// Namespaces a test cluster has of its own: declared `existing`, never created.
const CLUSTER_NAMESPACES: [&str; 4] = ["kube-system", "default", "kube-public", "kube-node-lease"];

/// Labels controllers set per pod or per revision: no policy should select on them, and they
/// would make the probe pod look like one pod of a live revision.
const PER_POD_LABELS: [&str; 4] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
];

/// Why no snapshot can be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// No namespace was named.
    #[error("name the namespaces to snapshot with --namespace (one or more)")]
    NoNamespace,
    /// A named namespace does not exist.
    #[error("namespace {0} is not in {1}; the namespaces there: {2}")]
    UnknownNamespace(String, String, String),
    /// The namespaces hold no workload.
    #[error("the namespaces {0} hold no pod and no workload: nothing to probe")]
    Empty(String),
}

/// The files of a snapshot, and what it leaves out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Relative path → text: [`SCENARIO_FILE`] and `policies/<ns>.yaml`.
    pub files: BTreeMap<String, String>,
    /// Probe pod (`ns/name`) → the live workload it stands for (`ns/name`).
    pub pods: BTreeMap<String, String>,
    /// What the scenario does not reproduce, one sentence each (also in its header).
    pub left_out: Vec<String>,
}

/// A DNS label from a workload name (dots and other characters become `-`, at most 63).
fn pod_name(s: &str) -> String {
    let mut n: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    n.truncate(63);
    let n = n.trim_matches('-').to_owned();
    if n.is_empty() { "pod".into() } else { n }
}

/// Namespace names a policy's namespaceSelectors name through `kubernetes.io/metadata.name`.
fn named_namespaces(p: &NetworkPolicy, out: &mut BTreeSet<String>) {
    for r in p.ingress.iter().flatten().chain(p.egress.iter().flatten()) {
        for peer in r.peers.iter().flatten() {
            if let crate::policy::Peer::Selectors {
                namespaces: Some(sel),
                ..
            } = peer
            {
                if let Some(v) = sel.match_labels.get(NAMESPACE_NAME_LABEL) {
                    out.insert(v.clone());
                }
                for e in &sel.match_expressions {
                    if e.key == NAMESPACE_NAME_LABEL {
                        out.extend(e.values.iter().cloned());
                    }
                }
            }
        }
    }
}

/// The snapshot of `namespaces` of `inv`; `source` says where it was read (`context prod`).
///
/// # Errors
/// No namespace named, one that does not exist, or nothing to probe.
pub fn snapshot(inv: &Inventory, namespaces: &[String]) -> Result<Snapshot, SnapshotError> {
    if namespaces.is_empty() {
        return Err(SnapshotError::NoNamespace);
    }
    let known: BTreeMap<&str, &BTreeMap<String, String>> = inv
        .namespaces
        .iter()
        .map(|n| (n.name.as_str(), &n.labels))
        .collect();
    let chosen: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
    for n in &chosen {
        let has_objects = inv.pods.iter().any(|p| p.ns == *n);
        if !known.contains_key(n) && !has_objects {
            return Err(SnapshotError::UnknownNamespace(
                (*n).to_owned(),
                inv.source.clone(),
                known.keys().copied().collect::<Vec<_>>().join(", "),
            ));
        }
    }
    // One pod per workload: the first of its pods by name, and how many it has.
    let mut by_workload: BTreeMap<(&str, Owner), (&Pod, usize)> = BTreeMap::new();
    for p in inv.pods.iter().filter(|p| chosen.contains(p.ns.as_str())) {
        let e = by_workload
            .entry((p.ns.as_str(), Owner::of(p)))
            .or_insert((p, 0));
        e.1 += 1;
        if p.name < e.0.name {
            e.0 = p;
        }
    }
    if by_workload.is_empty() {
        return Err(SnapshotError::Empty(
            chosen.iter().copied().collect::<Vec<_>>().join(", "),
        ));
    }
    let policies: Vec<&NetworkPolicy> = inv
        .policies
        .iter()
        .filter(|p| chosen.contains(p.ns.as_str()))
        .collect();
    let mut named = BTreeSet::new();
    for p in &policies {
        named_namespaces(p, &mut named);
    }
    let mut left_out = vec![
        "Secrets, environment, images, commands and volumes: never read, never copied; probe pods serve the declared ports only.".to_owned(),
        "Services: pods are probed by address, not through Services.".to_owned(),
    ];
    let mut extra: Vec<&str> = named
        .iter()
        .map(String::as_str)
        .filter(|n| !chosen.contains(n))
        .collect();
    extra.sort_unstable();
    let others: Vec<&str> = known
        .keys()
        .copied()
        .filter(|n| !chosen.contains(n))
        .collect();
    if !others.is_empty() {
        left_out.push(format!(
            "The pods of the {} other namespace(s) ({}): namespaceSelectors on other labels than kubernetes.io/metadata.name select no namespace of theirs here.",
            others.len(),
            others.iter().take(8).copied().collect::<Vec<_>>().join(", ")
                + if others.len() > 8 { ", …" } else { "" }
        ));
    }
    let many: Vec<String> = by_workload
        .iter()
        .filter(|(_, (_, n))| *n > 1)
        .map(|((ns, o), (_, n))| format!("{ns}/{} ({n} pods)", o.name))
        .collect();
    if !many.is_empty() {
        left_out.push(format!(
            "One probe pod stands for each workload; pods beyond the first: {}.",
            many.join(", ")
        ));
    }
    if policies.iter().any(|p| {
        p.ingress
            .iter()
            .flatten()
            .chain(p.egress.iter().flatten())
            .flat_map(|r| r.peers.iter().flatten())
            .any(|x| matches!(x, crate::policy::Peer::IpBlock(_)))
    }) {
        left_out.push(
            "ipBlock peers are kept as written: addresses on the test cluster differ from the live ones, so cells they decide may differ.".into(),
        );
    }

    // The scenario.
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# A snapshot of namespace(s) {} of {}, written by `netreach snapshot`.\n\
         # Replay it on a test cluster (never the live one):\n\
         #   netreach run --context kind-netreach <this folder>\n\
         # Add a step with a candidate change to see what it opens and closes.\n#\n# Left out:",
        chosen.iter().copied().collect::<Vec<_>>().join(", "),
        inv.source
    );
    for l in &left_out {
        let _ = writeln!(s, "#   - {l}");
    }
    s.push_str("version: 1\n");
    let _ = writeln!(
        s,
        "name: {}",
        scalar(&format!("Snapshot of {}", inv.source))
    );
    s.push_str("loopback: ignore\nnamespaces:\n");
    for n in &chosen {
        ns_entry(&mut s, n, known.get(n).copied(), false);
    }
    for n in &extra {
        let existing = CLUSTER_NAMESPACES.contains(n);
        ns_entry(&mut s, n, known.get(n).copied(), existing);
    }
    s.push_str("pods:\n");
    let mut pods = BTreeMap::new();
    let mut taken: BTreeSet<(String, String)> = BTreeSet::new();
    for ((ns, owner), (p, _)) in &by_workload {
        let base = pod_name(&owner.name);
        let mut name = base.clone();
        let mut k = 2;
        while !taken.insert(((*ns).to_owned(), name.clone())) {
            name = format!("{}-{k}", &base[..base.len().min(60)]);
            k += 1;
        }
        pods.insert(format!("{ns}/{name}"), format!("{ns}/{}", owner.name));
        let _ = writeln!(
            s,
            "  # {} {}/{}\n  - name: {}\n    namespace: {}",
            owner.kind,
            ns,
            owner.name,
            scalar(&name),
            scalar(ns)
        );
        let labels: BTreeMap<&String, &String> = p
            .labels
            .iter()
            .filter(|(k, _)| {
                !PER_POD_LABELS.contains(&k.as_str())
                    && !crate::names::OWN_LABELS.contains(&k.as_str())
            })
            .collect();
        if !labels.is_empty() {
            s.push_str("    labels:\n");
            for (k, v) in labels {
                let _ = writeln!(s, "      {}: {}", scalar(k), scalar(v));
            }
        }
        let mut seen = BTreeSet::new();
        let ports: Vec<_> = p
            .ports
            .iter()
            .filter(|c| seen.insert((c.port, c.protocol)))
            .collect();
        if !ports.is_empty() {
            s.push_str("    ports:\n");
            for c in ports {
                let name = c.name.as_ref().map(|n| format!(", name: {}", scalar(n)));
                let _ = writeln!(
                    s,
                    "      - {{port: {}, protocol: {}{}}}",
                    c.port,
                    c.protocol.k8s_name(),
                    name.unwrap_or_default()
                );
            }
        }
    }
    s.push_str("steps:\n  - name: the live policies\n");
    let mut files = BTreeMap::new();
    let by_ns: BTreeMap<&str, Vec<&NetworkPolicy>> =
        policies.iter().fold(BTreeMap::new(), |mut m, p| {
            m.entry(p.ns.as_str()).or_insert_with(Vec::new).push(*p);
            m
        });
    if !by_ns.is_empty() {
        s.push_str("    apply:\n");
    }
    for (ns, ps) in &by_ns {
        let path = format!("policies/{ns}.yaml");
        let _ = writeln!(s, "      - file: {}", scalar(&path));
        let mut t = format!(
            "# The NetworkPolicies of namespace {ns} in {}, as read (spec only).\n",
            inv.source
        );
        let mut ps = ps.clone();
        ps.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, p) in ps.iter().enumerate() {
            if i > 0 {
                t.push_str("---\n");
            }
            for l in policy_lines(p, &[]) {
                t.push_str(&l);
                t.push('\n');
            }
        }
        files.insert(path, t);
    }
    s.push_str(
        "    # What the NetworkPolicy specification says of these policies and labels, cell by cell.\n    expect:\n      - computed: {}\n",
    );
    files.insert(SCENARIO_FILE.to_owned(), s);
    Ok(Snapshot {
        files,
        pods,
        left_out,
    })
}

fn ns_entry(s: &mut String, name: &str, labels: Option<&BTreeMap<String, String>>, existing: bool) {
    let _ = writeln!(s, "  - name: {}", scalar(name));
    if existing {
        s.push_str("    existing: true\n");
        return;
    }
    if let Some(l) = labels {
        namespace_labels(s, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::manifests;
    use crate::diag::{Diagnostics, SourceFile};
    use crate::scenario::{MemReader, load_str};

    fn fixture() -> Inventory {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/audit");
        let mut files: Vec<SourceFile> = std::fs::read_dir(&dir)
            .expect("fixtures/audit")
            .map(|e| {
                let p = e.expect("an entry").path();
                let t = std::fs::read_to_string(&p).expect("a fixture");
                SourceFile::new(p, t)
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut d = Diagnostics::default();
        let inv = manifests::read(&files, "fixtures/audit", &mut d);
        assert!(!d.has_errors());
        inv
    }

    /// The snapshot loads as a valid scenario, with a pod per workload and the policies of the
    /// snapshotted namespaces, and its computed expectations are the audit's verdicts.
    #[test]
    fn a_snapshot_is_a_valid_scenario_that_expects_what_the_audit_says() {
        let inv = fixture();
        let chosen = vec!["web".to_owned(), "data".to_owned()];
        let snap = snapshot(&inv, &chosen).expect("a snapshot");
        let reader = MemReader(
            snap.files
                .iter()
                .map(|(k, v)| (std::path::PathBuf::from("snap").join(k), v.clone()))
                .collect(),
        );
        let path = std::path::Path::new("snap").join(SCENARIO_FILE);
        let l = load_str(&path, &snap.files[SCENARIO_FILE], &reader);
        let Some(sc) = l.scenario else {
            panic!(
                "{}\n{}",
                l.diagnostics.render(false),
                snap.files[SCENARIO_FILE]
            );
        };
        assert_eq!(sc.pods.len(), 3, "frontend, api, database");
        let want_policies = inv
            .policies
            .iter()
            .filter(|p| p.ns == "web" || p.ns == "data")
            .count();
        assert_eq!(
            sc.steps[0].actions.len(),
            want_policies,
            "{:?}",
            sc.steps[0].actions
        );
        // The engine's verdicts over the snapshot agree with the audit's.
        let report = crate::audit::AuditReport::of(&inv);
        let mut compared = 0;
        for (cell, e) in &sc.steps[0].expected.cells {
            let (crate::model::Target::Pod(to), Some(port)) = (&cell.to, cell.port) else {
                continue;
            };
            let from = &snap.pods[&cell.from.to_string()];
            let to = &snap.pods[&to.to_string()];
            let Some(r) = report
                .reach
                .iter()
                .find(|r| &r.from == from && &r.to == to && r.port == port)
            else {
                continue;
            };
            let want = r.verdict == crate::engine::Spec::Allow;
            assert_eq!(
                e.verdict == crate::model::Verdict::Allow,
                want,
                "{cell}: {e:?} vs {r:?}"
            );
            compared += 1;
        }
        assert!(compared >= 6, "compared {compared}");
        assert!(snap.left_out.iter().any(|l| l.contains("ingress-nginx")));
    }

    #[test]
    fn no_namespace_or_an_unknown_one_is_an_error() {
        let inv = fixture();
        assert_eq!(snapshot(&inv, &[]), Err(SnapshotError::NoNamespace));
        assert!(matches!(
            snapshot(&inv, &["nope".into()]),
            Err(SnapshotError::UnknownNamespace(..))
        ));
    }

    #[test]
    fn workload_names_become_pod_names() {
        assert_eq!(pod_name("api.v2"), "api-v2");
        assert_eq!(pod_name(&"x".repeat(80)).len(), 63);
        assert_eq!(pod_name("--"), "pod");
    }
}
