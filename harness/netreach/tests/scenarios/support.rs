//! What the cluster tests need besides netreach itself: an admin client (as a user's kubectl
//! would be), ServiceAccounts bound to exactly the shipped RBAC, kubeconfigs for them, and
//! netreach-testkit's fault proxy in front of the API server (delay, hang, cut: faults that a
//! real cluster cannot be asked to produce on demand) with a kubeconfig that talks through it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use libtest_mimic::Failed;
use serde_json::{Value, json};

/// A single-threaded runtime for the test's own API calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An admin client for `context` (the kubeconfig of `KUBECONFIG`).
pub async fn client(context: &str) -> Result<kube::Client, Failed> {
    let opts = kube::config::KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_kubeconfig(&opts)
        .await
        .map_err(|e| e.to_string())?;
    Ok(kube::Client::try_from(cfg).map_err(|e| e.to_string())?)
}

/// `Err(msg)` unless `cond`.
pub fn check(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where tests write files of their own (kubeconfigs, reports).
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/netreach-tests");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// A `fixtures/lifecycle/` scenario with each of its `namespaces` renamed `<tag><name>`, and the
/// prefixes of the namespaces its runs create (`<tag><name>-`). Tests that interrupt, wait for or
/// gc a run tell its namespaces apart by these prefixes: with the fixtures' own names, two tests
/// running at once took each other's namespaces for their own (an interrupt "left" the other
/// test's run).
pub fn renamed_fixture(
    file: &str,
    tag: &str,
    namespaces: &[&str],
) -> Result<(PathBuf, Vec<String>), Failed> {
    let src = root().join("fixtures/lifecycle").join(file);
    let mut text = std::fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    for ns in namespaces {
        let declared = format!("- name: {ns}\n");
        check(
            text.matches(&declared).count() == 1,
            format!("{}: expected namespace `{ns}` declared once", src.display()),
        )?;
        text = text.replace(&declared, &format!("- name: {tag}{ns}\n"));
        for end in [",", "}"] {
            text = text.replace(
                &format!("namespace: {ns}{end}"),
                &format!("namespace: {tag}{ns}{end}"),
            );
        }
    }
    let path = scratch(&format!("{tag}-{file}"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((
        path,
        namespaces.iter().map(|ns| format!("{tag}{ns}-")).collect(),
    ))
}

/// `slow.yaml` (a run long enough to interrupt), renamed for one test: see [`renamed_fixture`].
pub fn slow_fixture(tag: &str) -> Result<(PathBuf, Vec<String>), Failed> {
    renamed_fixture("slow.yaml", tag, &["p", "q"])
}

/// The kubeconfig files in use (`KUBECONFIG`, else ~/.kube/config), parsed.
fn kubeconfigs() -> Result<Vec<Value>, Failed> {
    let paths: Vec<PathBuf> = match std::env::var_os("KUBECONFIG") {
        Some(v) => std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => vec![PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".kube/config")],
    };
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_saphyr::from_str::<Value>(&text)
                .map_err(|e| Failed::from(format!("{}: {e}", p.display())))
        })
        .collect()
}

/// The named entry (`context`, `cluster`, `user`) of a kubeconfig list.
fn entry(kcs: &[Value], list: &str, name: &str) -> Option<Value> {
    kcs.iter()
        .flat_map(|k| k[list].as_array().cloned().unwrap_or_default())
        .find(|e| e["name"] == name)
}

/// The admin context's cluster entry (server, CA) from the kubeconfig in use.
fn cluster_of(context: &str) -> Result<(String, Value), Failed> {
    let kcs = kubeconfigs()?;
    let ctx = entry(&kcs, "contexts", context).ok_or("no such context")?;
    let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or_default();
    let cluster = entry(&kcs, "clusters", cluster_name).ok_or("no cluster for the context")?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or("no server")?
        .to_owned();
    Ok((
        server,
        cluster["cluster"]["certificate-authority-data"].clone(),
    ))
}

/// Writes a kubeconfig (JSON is YAML) with one context `name` for `server` and `user`.
pub fn write_kubeconfig(
    admin_context: &str,
    name: &str,
    server: Option<&str>,
    user: Value,
) -> Result<PathBuf, Failed> {
    let (admin_server, ca) = cluster_of(admin_context)?;
    let cfg = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server.unwrap_or(&admin_server), "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    });
    let path = scratch(&format!("kubeconfig-{name}.json"));
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&cfg).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

/// The admin user of `context`, for a kubeconfig that only changes the server (the proxy).
pub fn admin_user(context: &str) -> Result<Value, Failed> {
    let kcs = kubeconfigs()?;
    let ctx = entry(&kcs, "contexts", context).ok_or("no such context")?;
    let user = ctx["context"]["user"].as_str().unwrap_or_default();
    let u = entry(&kcs, "users", user).ok_or("no user for the context")?;
    Ok(u["user"].clone())
}

/// RBAC rules from a shipped manifest (its first document: the Role or ClusterRole).
pub fn shipped_rules(file: &str) -> Result<Value, Failed> {
    let path = root().join("docs/rbac").join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let first = text.split("\n---\n").next().unwrap_or("");
    let v: Value = serde_saphyr::from_str(first).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(v["rules"].clone())
}

/// A ServiceAccount with a token, bound to `rules` cluster-wide (a ClusterRole) or in the
/// given namespaces (a Role in each); its kubeconfig has one context, `name`.
#[derive(Debug)]
pub struct Sa {
    /// The context name in [`Sa::kubeconfig`].
    pub context: String,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
}

/// Where test ServiceAccounts live.
pub const SA_NAMESPACE: &str = "netreach-test-sa";

/// Creates (or updates) ServiceAccount `name` bound to exactly `rules`.
pub fn service_account(
    admin: &str,
    name: &str,
    rules: Value,
    namespaces: &[&str],
) -> Result<Sa, Failed> {
    let rt = rt();
    let token = rt.block_on(async {
        let c = client(admin).await?;
        let ssa = PatchParams::apply("netreach-tests").force();
        let nss: Api<Namespace> = Api::all(c.clone());
        nss.patch(
            SA_NAMESPACE,
            &ssa,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SA_NAMESPACE}})),
        )
        .await
        .map_err(|e| format!("namespace {SA_NAMESPACE}: {e}"))?;
        let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), SA_NAMESPACE);
        sas.patch(
            name,
            &ssa,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": SA_NAMESPACE}})),
        )
        .await
        .map_err(|e| format!("serviceaccount {name}: {e}"))?;
        let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": SA_NAMESPACE}]);
        if namespaces.is_empty() {
            let crs: Api<ClusterRole> = Api::all(c.clone());
            crs.patch(
                name,
                &ssa,
                &Patch::Apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})),
            )
            .await
            .map_err(|e| format!("clusterrole {name}: {e}"))?;
            let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
            crbs.patch(
                name,
                &ssa,
                &Patch::Apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}, "subjects": subject})),
            )
            .await
            .map_err(|e| format!("clusterrolebinding {name}: {e}"))?;
        } else {
            for ns in namespaces {
                let roles: Api<Role> = Api::namespaced(c.clone(), ns);
                roles
                    .patch(
                        name,
                        &ssa,
                        &Patch::Apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})),
                    )
                    .await
                    .map_err(|e| format!("role {ns}/{name}: {e}"))?;
                let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), ns);
                rbs.patch(
                    name,
                    &ssa,
                    &Patch::Apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": subject})),
                )
                .await
                .map_err(|e| format!("rolebinding {ns}/{name}: {e}"))?;
            }
        }
        let tr: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 7200}}))
            .map_err(|e| e.to_string())?;
        let got = sas
            .create_token_request(name, &PostParams::default(), &tr)
            .await
            .map_err(|e| format!("token for {name}: {e}"))?;
        got.status
            .map(|s| s.token)
            .ok_or_else(|| Failed::from("no token in the TokenRequest's status"))
    })?;
    let context = format!("netreach-test-{name}");
    let kubeconfig = write_kubeconfig(admin, &context, None, json!({"token": token}))?;
    Ok(Sa {
        context,
        kubeconfig,
    })
}

/// Removes a test ServiceAccount's cluster-wide binding (Roles go with their namespaces).
pub fn remove_cluster_binding(admin: &str, name: &str) {
    let rt = rt();
    let _ = rt.block_on(async {
        let c = client(admin).await?;
        let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
        let _ = crbs.delete(name, &DeleteParams::default()).await;
        let crs: Api<ClusterRole> = Api::all(c);
        let _ = crs.delete(name, &DeleteParams::default()).await;
        Ok::<_, Failed>(())
    });
}

pub use netreach_testkit::ProxyMode;

/// The fault proxy (netreach-testkit) in front of the admin context's API server, with a
/// kubeconfig whose context talks through it.
#[derive(Clone, Debug)]
pub struct FaultProxy {
    proxy: netreach_testkit::FaultProxy,
    /// A kubeconfig whose context talks to the API server through the proxy.
    pub kubeconfig: PathBuf,
    /// That context.
    pub context: String,
}

impl FaultProxy {
    /// Starts a proxy for `admin`'s API server; its kubeconfig uses the admin's credentials.
    pub fn start(admin: &str, name: &str) -> Result<FaultProxy, Failed> {
        let (server, _) = cluster_of(admin)?;
        let upstream = server
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        let proxy = netreach_testkit::FaultProxy::start(&upstream).map_err(|e| e.to_string())?;
        let context = format!("netreach-proxy-{name}");
        let kubeconfig = write_kubeconfig(
            admin,
            &context,
            Some(&format!("https://127.0.0.1:{}", proxy.port)),
            admin_user(admin)?,
        )?;
        Ok(FaultProxy {
            proxy,
            kubeconfig,
            context,
        })
    }

    /// Changes what it does from now on.
    pub fn set(&self, mode: ProxyMode) {
        self.proxy.set(mode);
    }

    /// Cuts every connection open now.
    pub fn cut(&self) {
        self.proxy.cut();
    }
}
