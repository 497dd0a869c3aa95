//! `netreach audit -f`: the fixture folder (ordinary workloads and the four classic mistakes),
//! through the binary, with no cluster.

use std::path::Path;
use std::process::Command;

fn netreach(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("NETREACH_CONTEXT")
        .output()
        .expect("the netreach binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_fixture_folder_reports_the_four_mistakes_and_the_reachability() {
    let (code, out, err) = netreach(&["audit", "-f", "fixtures/audit"]);
    assert_eq!(code, 1, "{err}\n{out}");
    for want in [
        // 1: `ingress: []` / `egress: []` allow nothing.
        "fixtures/audit/policies.yaml:29: warning[lint::isolates-without-rules]: web/audit isolates the pods it selects for ingress and egress and allows nothing there",
        // 2: the `name` label nothing sets.
        "fixtures/audit/policies.yaml:45: error[lint::selector-label-unset]: ingress rule 1 of web/frontend-from-ingress: peer 1's namespaceSelector {name=ingress-nginx} requires label `name`",
        // 3: `to: []` on 443.
        "fixtures/audit/policies.yaml:90: warning[lint::egress-to-anywhere]: egress rule 1 of web/api-egress admits every destination in and outside the cluster on 443/tcp",
        // 4: DNS on UDP only.
        "fixtures/audit/policies.yaml:83: warning[lint::dns-blocked]: web/api-egress isolates web/api for egress, and its egress does not admit the cluster DNS (kube-system pods labelled k8s-app=kube-dns) on 53/tcp",
        "  web/api -> data/database 5432/tcp: allowed by data/db-from-api (ingress rule 1 at fixtures/audit/policies.yaml:18); allowed by web/api-egress (egress rule 2 at fixtures/audit/policies.yaml:92) [1 -> 1 pod(s)]",
        "  ingress-nginx/ingress-nginx-controller -> web/frontend 8080/tcp: blocked: ingress isolated by web/audit, web/frontend-from-ingress and no rule admits it [1 -> 1 pod(s)]",
        "  fixtures/audit/other.yaml:8: policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy cluster-baseline: not supported yet",
    ] {
        assert!(out.contains(want), "missing\n{want}\nin\n{out}");
    }
    assert!(
        err.contains("4 finding(s) (1 error(s), 3 warning(s), 0 info); 2 object(s) not modelled"),
        "{err}"
    );
    // --allow for all four leaves the unmodelled AdminNetworkPolicy: exit 5.
    let (code, _, err) = netreach(&[
        "audit",
        "-f",
        "fixtures/audit",
        "--allow",
        "isolates-without-rules",
        "--allow",
        "selector-label-unset",
        "--allow",
        "egress-to-anywhere",
        "--allow",
        "dns-blocked",
    ]);
    assert_eq!(code, 5, "{err}");
    // JSON.
    let (_, out, _) = netreach(&["audit", "-f", "fixtures/audit", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "isolates-without-rules",
            "selector-label-unset",
            "dns-blocked",
            "egress-to-anywhere"
        ]
    );
}

#[test]
fn invalid_manifests_name_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("netreach-audit-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("p.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: a}\nspec:\n  podSelector: {}\n  ingres: []\n",
    )
    .expect("write");
    let (code, _, err) = netreach(&["audit", "-f", dir.to_str().expect("utf-8")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("p.yaml:6:3"), "{err}");
    assert!(err.contains("ingres"), "{err}");
}

/// `netreach snapshot -f` writes a scenario that validates; `netreach diff` of it and a copy
/// with a candidate change names what the change closes, by the specification.
#[test]
fn a_snapshot_validates_and_diff_names_what_a_change_closes() {
    let tmp = std::env::temp_dir().join(format!("netreach-snap-{}", std::process::id()));
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    let _ = std::fs::remove_dir_all(&tmp);
    let a_s = a.display().to_string();
    let (code, out, err) = netreach(&[
        "snapshot",
        "-f",
        "fixtures/audit",
        "--namespace",
        "web",
        "--namespace",
        "data",
        "-o",
        &a_s,
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(err.contains("3 probe pod(s)"), "{err}");
    let (code, out, err) = netreach(&["validate", &format!("{a_s}/snapshot.yaml")]);
    assert_eq!(code, 0, "{err}\n{out}");
    // The candidate change: the database's rule moves to another port.
    std::fs::create_dir_all(b.join("policies")).expect("b/policies");
    for f in ["snapshot.yaml", "policies/web.yaml", "policies/data.yaml"] {
        let t = std::fs::read_to_string(a.join(f)).expect("a file of the snapshot");
        let t = if f == "policies/data.yaml" {
            t.replace("port: 5432\n", "port: 5433\n")
        } else {
            t
        };
        std::fs::write(b.join(f), t).expect("write b");
    }
    let b_s = b.display().to_string();
    let (code, out, err) = netreach(&["diff", &a_s, &b_s]);
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(code, 6, "{err}\n{out}");
    assert!(
        out.contains("1 closed")
            && out.contains("CLOSED  snapshot step 1 web/api -> data/database 5432/tcp"),
        "{out}"
    );
}
