//! The permissions netreach needs, as one table per way of running it. The shipped RBAC
//! manifests (`docs/rbac/*.yaml`, `netreach rbac`) are rendered from these tables, and `netreach
//! doctor` checks exactly these with SelfSubjectAccessReviews, so the three never disagree (a
//! test compares the committed manifests with the rendering).

use std::fmt::Write as _;

/// One rule: verbs on a resource of an API group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resource, with `/subresource` where there is one (`pods/exec`).
    pub resource: &'static str,
    /// Verbs.
    pub verbs: &'static [&'static str],
    /// Why netreach needs it (a comment in the manifest).
    pub why: &'static str,
}

/// How netreach is run, which decides what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// It creates its own namespaces (the default): a ClusterRole.
    OwnNamespaces,
    /// It runs in namespaces it was given (`--namespace logical=real`): a Role in each.
    GivenNamespaces,
    /// `netreach audit`: read only, cluster-wide.
    Audit,
}

impl Mode {
    /// The table for this mode.
    pub fn perms(self) -> &'static [Perm] {
        match self {
            Mode::OwnNamespaces => OWN_NAMESPACES,
            Mode::GivenNamespaces => GIVEN_NAMESPACES,
            Mode::Audit => AUDIT,
        }
    }

    /// The manifest's object name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::OwnNamespaces => "netreach-runner",
            Mode::GivenNamespaces => "netreach-runner",
            Mode::Audit => "netreach-audit",
        }
    }

    /// The file under docs/rbac/.
    pub fn file(self) -> &'static str {
        match self {
            Mode::OwnNamespaces => "netreach-runner.clusterrole.yaml",
            Mode::GivenNamespaces => "netreach-runner.role.yaml",
            Mode::Audit => "netreach-audit.clusterrole.yaml",
        }
    }
}

const RUN_IN_NAMESPACE: [Perm; 6] = [
    Perm {
        group: "",
        resource: "pods",
        verbs: &["get", "list", "create", "patch", "delete"],
        why: "probe pods: create, relabel in steps, liveness before and after each probe round; shadow pods of real workloads",
    },
    Perm {
        group: "",
        resource: "pods/exec",
        verbs: &["get", "create"],
        why: "every probe runs through exec in its source pod (websocket exec needs get, SPDY and newer API servers create)",
    },
    Perm {
        group: "",
        resource: "services",
        verbs: &["get", "create", "delete"],
        why: "a Service in front of pods probed `via: service` or `via: dns`",
    },
    Perm {
        group: "discovery.k8s.io",
        resource: "endpointslices",
        verbs: &["create", "delete"],
        why: "the EndpointSlice of each such Service (no selector: pods keep exactly their scenario labels)",
    },
    Perm {
        group: "networking.k8s.io",
        resource: "networkpolicies",
        verbs: &["get", "list", "create", "patch", "update", "delete"],
        why: "the policies a scenario applies, step by step (server-side apply); candidate policies in a live namespace replace and are restored whole (update)",
    },
    Perm {
        group: "",
        resource: "configmaps",
        verbs: &["get", "list", "create", "patch", "delete"],
        why: "the run record netreach-run-<id> in namespaces it does not own: what it created or changed there, and its heartbeat",
    },
];

const NAMESPACES: Perm = Perm {
    group: "",
    resource: "namespaces",
    verbs: &["get", "list", "create", "patch", "delete"],
    why: "one namespace per scenario namespace and run, labelled netreach.dev/run, heartbeat annotation; gc lists and deletes stale ones",
};

static OWN_NAMESPACES: &[Perm] = &[
    NAMESPACES,
    RUN_IN_NAMESPACE[0],
    RUN_IN_NAMESPACE[1],
    RUN_IN_NAMESPACE[2],
    RUN_IN_NAMESPACE[3],
    RUN_IN_NAMESPACE[4],
    RUN_IN_NAMESPACE[5],
];

static GIVEN_NAMESPACES: &[Perm] = &RUN_IN_NAMESPACE;

static AUDIT: &[Perm] = &[
    Perm {
        group: "",
        resource: "namespaces",
        verbs: &["get", "list", "watch"],
        why: "namespace labels (what namespaceSelectors see)",
    },
    Perm {
        group: "",
        resource: "pods",
        verbs: &["get", "list", "watch"],
        why: "pod labels, IPs, declared container ports, owners",
    },
    Perm {
        group: "",
        resource: "services",
        verbs: &["get", "list", "watch"],
        why: "what fronts the workloads",
    },
    Perm {
        group: "networking.k8s.io",
        resource: "networkpolicies",
        verbs: &["get", "list", "watch"],
        why: "the policies audited",
    },
    Perm {
        group: "apps",
        resource: "replicasets",
        verbs: &["get", "list", "watch"],
        why: "a pod's workload: ReplicaSet -> Deployment",
    },
    Perm {
        group: "apps",
        resource: "deployments",
        verbs: &["get", "list", "watch"],
        why: "workloads by name",
    },
    Perm {
        group: "apps",
        resource: "statefulsets",
        verbs: &["get", "list", "watch"],
        why: "workloads by name",
    },
    Perm {
        group: "apps",
        resource: "daemonsets",
        verbs: &["get", "list", "watch"],
        why: "workloads by name",
    },
    Perm {
        group: "batch",
        resource: "jobs",
        verbs: &["get", "list", "watch"],
        why: "a pod's workload: Job -> CronJob",
    },
];

/// The manifest for a mode: a ClusterRole (own namespaces, audit) or a Role (given
/// namespaces; apply it in each namespace you give netreach), with a binding to a
/// ServiceAccount `netreach` in namespace `netreach` as an example.
pub fn manifest(mode: Mode) -> String {
    let (kind, binding) = match mode {
        Mode::GivenNamespaces => ("Role", "RoleBinding"),
        _ => ("ClusterRole", "ClusterRoleBinding"),
    };
    let mut s = format!(
        "# {} for netreach: {}.\n# Generated from harness/kube/src/rbac.rs (`netreach rbac {}`); `netreach doctor` checks exactly these.\n",
        kind,
        match mode {
            Mode::OwnNamespaces => "it creates its own namespaces (the default)",
            Mode::GivenNamespaces =>
                "it runs inside a namespace it was given (`netreach run --namespace logical=real`); apply this in each such namespace",
            Mode::Audit => "`netreach audit`, read only (get/list/watch)",
        },
        match mode {
            Mode::OwnNamespaces => "own",
            Mode::GivenNamespaces => "given",
            Mode::Audit => "audit",
        }
    );
    let _ = writeln!(
        s,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {}",
        mode.name()
    );
    s.push_str("rules:\n");
    for p in mode.perms() {
        let _ = writeln!(s, "  # {}", p.why);
        let _ = writeln!(
            s,
            "  - apiGroups: [\"{}\"]\n    resources: [\"{}\"]\n    verbs: [{}]",
            p.group,
            p.resource,
            p.verbs
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        s,
        "---\n# Example binding: a ServiceAccount `netreach` in namespace `netreach`{}.\napiVersion: rbac.authorization.k8s.io/v1\nkind: {binding}\nmetadata:\n  name: {}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {kind}\n  name: {}\nsubjects:\n  - kind: ServiceAccount\n    name: netreach\n    namespace: netreach",
        if mode == Mode::GivenNamespaces {
            " (create the RoleBinding in the given namespace)"
        } else {
            ""
        },
        mode.name(),
        mode.name()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed manifests are what the tables render (regenerate with `netreach rbac`).
    #[test]
    fn the_shipped_manifests_are_up_to_date() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rbac");
        for mode in [Mode::OwnNamespaces, Mode::GivenNamespaces, Mode::Audit] {
            let path = root.join(mode.file());
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                committed,
                manifest(mode),
                "{} is stale: `cargo run -q -p netreach -- rbac --write docs/rbac` regenerates it",
                path.display()
            );
        }
    }

    #[test]
    fn audit_is_read_only() {
        for p in Mode::Audit.perms() {
            assert!(
                p.verbs.iter().all(|v| ["get", "list", "watch"].contains(v)),
                "{p:?}"
            );
        }
    }
}
