//! `cargo xtask cluster up | down | status | selftest`: the kind cluster netreach's cluster tests
//! run against, and [`ensure_up`] for the other tasks.
//!
//! Size: the kind lifecycle and the negative-control selftest, which share the node and image helpers; each function is short.
//!
//! - `up [--configure-docker]` creates the cluster `netreach` from `kind-config.yaml` unless it exists, waits
//!   for nodes and kube-system pods, loads the current probe image (where missing) and runs the
//!   default-deny sanity check (`sanity.rs`) every time; a cluster that fails it is reported broken
//!   and `up` exits non-zero. kind always gets `--kubeconfig <kit>/kubeconfig`: the user's
//!   ~/.kube/config and current context are never touched.
//! - Node image: the kit's (the default; built here, no registry needed), whose default CNI is
//!   kube-router (routes + NetworkPolicy firewall). `NETREACH_NODE_IMAGE=published` (opt-in; no
//!   network probe decides it) uses kind's published node image, pulled from a registry, and its
//!   kindnetd; if the sanity check shows kindnetd does not enforce (kernels without the nftables
//!   `queue` statement), kube-router is added in firewall-only mode and the check re-run. Never two
//!   enforcers: the firewall is only added where the first check failed. THE PUBLISHED-IMAGE PATH
//!   IS UNTESTED on our machines (no registry there).
//! - `--configure-docker` is the permission to change a Docker engine xtask did not start
//!   (`host.rs`); it has nothing to do with the node image.
//! - `down` deletes only our clusters (`netreach`, and a leftover `netreach-noenforce`) and
//!   containers labelled as ours; never the `kind` Docker network, images or anything else.
//! - `selftest` is the negative control: a throwaway cluster without an enforcer must fail the
//!   sanity check; with kube-router firewall-only added it must pass; then it is deleted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::host::DockerPermission;
use crate::kit::{self, Kit, Scope};
use crate::sanity::{self, Kube, Verdict};
use crate::ui::{self, Waiting, note};
use crate::util::{fmt_duration, output, output_with_input, succeeds};

/// Our cluster's name (also in kind-config.yaml) and its kubeconfig context.
pub const NAME: &str = "netreach";
pub const CONTEXT: &str = "kind-netreach";
/// The negative control's throwaway cluster.
const NOENFORCE: &str = "netreach-noenforce";
/// Label on containers the harness starts itself (e.g. the "external endpoint"): `down` removes them.
pub const CONTAINER_LABEL: &str = "app.kubernetes.io/managed-by=netreach";

/// What a test run needs to reach the cluster.
#[derive(Debug, Clone)]
pub struct ClusterEnv {
    /// Our own kubeconfig (`<kit>/kubeconfig`), never ~/.kube/config.
    pub kubeconfig: PathBuf,
    /// `kind-netreach`.
    pub context: String,
    /// `netreach-probe:<tag>`, loaded on every node.
    pub probe_image: String,
    /// The documented deviations of the kit's enforcer, kube-router
    /// (`fixtures/known-deviations/kube-router.yaml`, see docs/known-deviations.md).
    pub known_deviations: PathBuf,
}

impl ClusterEnv {
    /// The environment for tests and the CLI: `KUBECONFIG`, `NETREACH_CONTEXT`,
    /// `NETREACH_PROBE_IMAGE`, `NETREACH_KNOWN_DEVIATIONS`.
    pub fn vars(&self) -> [(&'static str, String); 4] {
        [
            ("KUBECONFIG", self.kubeconfig.to_string_lossy().into_owned()),
            ("NETREACH_CONTEXT", self.context.clone()),
            ("NETREACH_PROBE_IMAGE", self.probe_image.clone()),
            (
                "NETREACH_KNOWN_DEVIATIONS",
                self.known_deviations.to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Sets [`Self::vars`] on a command.
    pub fn apply(&self, cmd: &mut Command) {
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
    }
}

/// `cargo xtask cluster <up|down|status|selftest> [--configure-docker]`.
pub fn main(args: &[String]) -> Result<()> {
    const USAGE: &str = "usage: cargo xtask cluster up [--configure-docker] | down | status | selftest [--configure-docker]";
    let (sub, rest) = args.split_first().context(USAGE)?;
    for a in rest {
        match a.as_str() {
            crate::host::CONFIGURE_FLAG if sub == "up" || sub == "selftest" => {}
            other => {
                crate::reject_removed_flag(other)?;
                bail!("{USAGE}\nunknown argument `{other}`")
            }
        }
    }
    let perm = DockerPermission::from_args(rest);
    match sub.as_str() {
        "up" => {
            let env = ensure_up(perm)?;
            let vars: Vec<String> = env.vars().iter().map(|(k, v)| format!("{k}={v}")).collect();
            note(format!(
                "cluster `{NAME}` is ready; use it with:\n  {}",
                vars.join(" ")
            ));
            Ok(())
        }
        "down" => down(),
        "status" => status(),
        "selftest" => selftest(perm),
        other => bail!("{USAGE}\nunknown subcommand `{other}`"),
    }
}

/// Where the cluster's node image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeImage {
    /// The kit's node image, built here from package registries (the default).
    Kit,
    /// kind's published node image, pulled from a registry (`NETREACH_NODE_IMAGE=published`).
    /// Untested on our machines.
    Published,
}

/// The kit's node image unless `NETREACH_NODE_IMAGE=published`. No network probe decides it:
/// asking a registry whether it answers is itself traffic to the outside, which air-gapped
/// machines (and this project's) must not send.
fn node_image_source() -> Result<(NodeImage, &'static str)> {
    match std::env::var("NETREACH_NODE_IMAGE").as_deref() {
        Err(_) | Ok("" | "kit") => Ok((
            NodeImage::Kit,
            "the kit's, built here from package registries (no container registry needed)",
        )),
        Ok("published") => Ok((
            NodeImage::Published,
            "kind's published image, pulled from a registry (NETREACH_NODE_IMAGE=published; untested here)",
        )),
        Ok(other) => bail!("NETREACH_NODE_IMAGE must be `kit` or `published`, not `{other}`"),
    }
}

/// A kind cluster: its name and our kubeconfig for it.
#[derive(Debug)]
struct Kind {
    kind: PathBuf,
    name: String,
    kubeconfig: PathBuf,
    kube: Kube,
}

impl Kind {
    fn new(kit: &Kit, name: &str) -> Self {
        let kubeconfig = if name == NAME {
            kit.dir.join("kubeconfig")
        } else {
            kit.dir.join(format!("kubeconfig-{name}"))
        };
        Self {
            kind: kit.kind_bin(),
            name: name.to_owned(),
            kube: Kube {
                kubectl: kit.kubectl(),
                kubeconfig: kubeconfig.clone(),
                context: format!("kind-{name}"),
            },
            kubeconfig,
        }
    }

    fn cmd(&self) -> Command {
        Command::new(&self.kind)
    }

    fn exists(&self) -> Result<bool> {
        let out = output(self.cmd().args(["get", "clusters"]))?;
        Ok(out.lines().any(|l| l.trim() == self.name))
    }

    fn nodes(&self) -> Result<Vec<String>> {
        let out = output(self.cmd().args(["get", "nodes", "--name", &self.name]))?;
        Ok(out
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// `kind create cluster`; `wait`: kind's own wait for a Ready control plane (pointless without a
    /// CNI, where it only times out).
    fn create(&self, kit: &Kit, config: &Path, image: &str, wait: bool) -> Result<Duration> {
        let mut cmd = self.cmd();
        cmd.args(["create", "cluster", "--name", &self.name, "--config"])
            .arg(config)
            .args(["--image", image, "--kubeconfig"])
            .arg(&self.kubeconfig);
        if wait {
            cmd.args(["--wait", "3m"]);
        }
        ui::run_step(
            &format!("create-{}", self.name),
            &format!("kind create cluster --name {} ({image})", self.name),
            &kit.log(&format!("cluster-create-{}", self.name)),
            &mut cmd,
        )
    }

    fn delete(&self) -> Result<()> {
        output(
            self.cmd()
                .args(["delete", "cluster", "--name", &self.name, "--kubeconfig"])
                .arg(&self.kubeconfig),
        )?;
        let _ = std::fs::remove_file(&self.kubeconfig);
        Ok(())
    }

    /// Node containers that exist but do not run (e.g. after a Docker restart).
    fn stopped_nodes(&self) -> Result<Vec<String>> {
        let mut stopped = Vec::new();
        for n in self.nodes()? {
            let running = output(Command::new("docker").args([
                "inspect",
                "--format",
                "{{.State.Running}}",
                &n,
            ]))?;
            if running != "true" {
                stopped.push(n);
            }
        }
        Ok(stopped)
    }
}

/// Brings the cluster `netreach` up (creating it only if it does not exist), loads the current
/// probe image, and runs the default-deny sanity check; returns what a test run needs.
/// `perm` says whether a Docker engine xtask did not start may be given the runtime wrapper
/// (`host.rs`).
pub fn ensure_up(perm: DockerPermission) -> Result<ClusterEnv> {
    let _lock = crate::host::machine_lock()?;
    let start = Instant::now();
    let (mode, why) = node_image_source()?;
    note(format!("cluster: node image: {why}"));
    let scope = if mode == NodeImage::Kit {
        Scope::Full
    } else {
        Scope::Published
    };
    let built = kit::ensure(scope, perm)?;
    let kit = &built.kit;
    let k = Kind::new(kit, NAME);
    let node_image = match mode {
        NodeImage::Kit => kit.node_image(),
        NodeImage::Published => kit.v("PUBLISHED_NODE_IMAGE").to_owned(),
    };

    if k.exists()? {
        let stopped = k.stopped_nodes()?;
        if !stopped.is_empty() {
            // Our own cluster, with nodes stopped (e.g. dockerd restarted): kind nodes do not
            // survive that reliably, so recreate it rather than fail.
            note(format!(
                "cluster: `{NAME}` exists but its node containers are not running ({}): recreating it",
                stopped.join(", ")
            ));
            k.delete()?;
        }
    }
    if k.exists()? {
        note(format!("cluster: `{NAME}` exists: nothing to create"));
        // Refresh our kubeconfig (only that file) in case it was removed or the API port moved.
        output(
            k.cmd()
                .args(["export", "kubeconfig", "--name", NAME, "--kubeconfig"])
                .arg(&k.kubeconfig),
        )?;
        if mode == NodeImage::Kit {
            warn_if_stale(&k, &node_image);
        }
    } else {
        if mode == NodeImage::Kit {
            crate::host::check_privileged(&node_image)?;
        }
        let took = k.create(kit, &kit.root.join("kind-config.yaml"), &node_image, true)?;
        note(format!(
            "cluster: created `{NAME}` in {}",
            fmt_duration(took)
        ));
    }

    wait_ready(&k.kube)?;
    schedulable_control_plane(&k.kube)?;
    no_icmp_rate_limit(&k)?;
    load_image(&k, kit, &built.probe_image)?;
    let mut report = sanity::run(&k.kube, &built.probe_image)?;
    report.print();
    if mode == NodeImage::Published
        && matches!(report.verdict, Verdict::NotEnforced(_))
        && !has_kube_router(&k.kube)?
    {
        note(
            "cluster: kindnetd does not enforce NetworkPolicy here (no nftables `queue` on this kernel?): \
             adding kube-router in firewall-only mode, then checking again",
        );
        add_firewall_enforcer(kit, &k)?;
        report = sanity::run(&k.kube, &built.probe_image)?;
        report.print();
    }
    match &report.verdict {
        Verdict::Enforced => {}
        Verdict::NotEnforced(why) | Verdict::Broken(why) => {
            bail!("cluster `{NAME}` is broken: {why}")
        }
    }
    note(format!(
        "cluster: up and checked in {}",
        fmt_duration(start.elapsed())
    ));
    Ok(ClusterEnv {
        kubeconfig: k.kubeconfig.clone(),
        context: CONTEXT.to_owned(),
        probe_image: built.probe_image.clone(),
        known_deviations: kit.root.join("fixtures/known-deviations/kube-router.yaml"),
    })
}

/// Notes when the cluster runs an older node image than the kit's current one.
fn warn_if_stale(k: &Kind, node_image: &str) {
    let current = crate::host::image_ids(&[node_image.to_owned()])
        .ok()
        .and_then(|v| v.into_iter().next());
    let Some(first) = k.nodes().ok().and_then(|n| n.into_iter().next()) else {
        return;
    };
    let running =
        output(Command::new("docker").args(["inspect", "--format", "{{.Image}}", &first])).ok();
    if current.is_some() && running.is_some() && current != running {
        note(format!(
            "cluster: note: `{NAME}` runs an older node image than the kit's {node_image}; \
             `cargo xtask cluster down && cargo xtask cluster up` recreates it"
        ));
    }
}

/// Nodes Ready, every kube-system DaemonSet and Deployment rolled out, kube-system pods Ready.
/// The control-plane node takes probe pods too: kind keeps its `NoSchedule` taint on a cluster
/// with workers, which would leave one schedulable node, so `node: {different: …}` could never
/// be met and spreading would put every pod on the worker. Removed on each `cluster up`
/// (idempotent, also for a cluster created before this step existed).
fn schedulable_control_plane(kube: &Kube) -> Result<()> {
    const TAINT: &str = "node-role.kubernetes.io/control-plane";
    let nodes = kube.json(&["get", "nodes"])?;
    for n in nodes["items"].as_array().into_iter().flatten() {
        let name = n["metadata"]["name"].as_str().unwrap_or_default();
        let tainted = n["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["key"] == TAINT && t["effect"] == "NoSchedule");
        if tainted {
            kube.run(&["taint", "nodes", name, &format!("{TAINT}:NoSchedule-")])?;
            note(format!(
                "cluster: node {name}: removed the {TAINT}:NoSchedule taint, so probe pods use both nodes"
            ));
        }
    }
    Ok(())
}

fn wait_ready(kube: &Kube) -> Result<()> {
    let wait = Waiting::new("cluster: waiting for nodes and kube-system pods");
    let result = (|| -> Result<()> {
        wait.message("nodes");
        kube.run(&[
            "wait",
            "--for=condition=Ready",
            "nodes",
            "--all",
            "--timeout=300s",
        ])?;
        for kind in ["daemonset", "deployment"] {
            let names = kube.run(&["-n", "kube-system", "get", kind, "-o", "name"])?;
            for n in names.lines() {
                wait.message(n);
                kube.run(&[
                    "-n",
                    "kube-system",
                    "rollout",
                    "status",
                    n,
                    "--timeout=300s",
                ])?;
            }
        }
        wait.message("kube-system pods");
        kube.run(&[
            "-n",
            "kube-system",
            "wait",
            "--for=condition=Ready",
            "pods",
            "--all",
            "--timeout=300s",
        ])?;
        Ok(())
    })();
    let took = wait.done();
    if let Err(e) = result {
        let pods = kube
            .run(&["get", "pods", "-A", "-o", "wide"])
            .unwrap_or_default();
        bail!("the cluster did not become ready: {e:#}\n{pods}");
    }
    note(format!(
        "cluster: nodes and kube-system ready ({})",
        fmt_duration(took)
    ));
    Ok(())
}

/// `kind load docker-image` onto the nodes that do not have `image` yet.
fn load_image(k: &Kind, kit: &Kit, image: &str) -> Result<()> {
    let full = if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    };
    let mut missing = Vec::new();
    for node in k.nodes()? {
        let have = output(
            Command::new("docker")
                .args(["exec", &node, "ctr", "-n", "k8s.io", "images", "list", "-q"]),
        )?;
        if !have.lines().any(|l| l == full) {
            missing.push(node);
        }
    }
    if missing.is_empty() {
        note(format!("cluster: {image} already on every node"));
        return Ok(());
    }
    ui::run_step(
        "load-image",
        &format!("kind load docker-image {image} ({})", missing.join(", ")),
        &kit.log(&format!("load-image-{}", k.name)),
        k.cmd().args([
            "load",
            "docker-image",
            image,
            "--name",
            &k.name,
            "--nodes",
            &missing.join(","),
        ]),
    )?;
    Ok(())
}

/// Lets every node answer every rejected connection at once.
///
/// kube-router REJECTs blocked connections; the node's kernel answers each with an ICMP "port
/// unreachable", but rate-limits those per destination (`net.ipv4.icmp_ratelimit`, 1000 ms: a
/// burst of 6, then one a second). A pod whose probes hit many blocked cells at once would see
/// the first six refused and the rest time out — still "blocked", but each costing a full probe
/// timeout, and fast or slow by accident of order. The sysctl is per network namespace, so this
/// changes only the kind nodes of our own cluster; it is lost when a node restarts, so it is set
/// on every `cluster up`.
fn no_icmp_rate_limit(k: &Kind) -> Result<()> {
    for node in k.nodes()? {
        output(Command::new("docker").args([
            "exec",
            &node,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.icmp_ratelimit=0",
        ]))
        .with_context(|| format!("cannot turn off ICMP rate limiting on node {node}"))?;
    }
    Ok(())
}

fn has_kube_router(kube: &Kube) -> Result<bool> {
    let names = kube.run(&["-n", "kube-system", "get", "daemonset", "-o", "name"])?;
    Ok(names.lines().any(|l| l == "daemonset.apps/kube-router"))
}

/// kube-router in firewall-only mode (`--run-router=false --run-firewall=true
/// --run-service-proxy=false`): the NetworkPolicy enforcer beside a CNI that does not enforce.
fn add_firewall_enforcer(kit: &Kit, k: &Kind) -> Result<()> {
    let mut b = kit::Builder::new(DockerPermission::OwnEngineOnly, kit::KUBE_ROUTER_ONLY)?;
    b.run_steps(kit::KUBE_ROUTER_ONLY)?;
    let image = kit.kube_router_image();
    load_image(k, kit, &image)?;
    let manifest_path = kit.src.join("manifests/kube-router-firewall.yaml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?
        .replace("KUBE_ROUTER_IMAGE", &format!("docker.io/{image}"));
    k.kube.apply(&manifest)?;
    let wait = Waiting::new("cluster: kube-router firewall-only rolling out");
    let r = k.kube.run(&[
        "-n",
        "kube-system",
        "rollout",
        "status",
        "daemonset/kube-router",
        "--timeout=180s",
    ]);
    let took = wait.done();
    r?;
    note(format!(
        "cluster: kube-router firewall-only running ({})",
        fmt_duration(took)
    ));
    Ok(())
}

/// What kind of enforcer the cluster runs, from its kube-system DaemonSets.
fn enforcer(kube: &Kube) -> String {
    let Ok(ds) = kube.json(&["-n", "kube-system", "get", "daemonsets"]) else {
        return "unknown (cannot list kube-system DaemonSets)".into();
    };
    let mut found = Vec::new();
    for d in ds["items"].as_array().into_iter().flatten() {
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let image = c["image"].as_str().unwrap_or_default();
        match name {
            "kube-router" => {
                let args: Vec<&str> = c["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let role = if args.contains(&"--run-router=false") {
                    "firewall-only"
                } else {
                    "CNI + firewall"
                };
                found.push(format!("kube-router ({role}; {image}; NetworkPolicy via iptables + ipset, denies with REJECT)"));
            }
            "kindnet" => found.push(format!(
                "kindnetd ({image}; enforces only where nftables has `queue`)"
            )),
            _ => {}
        }
    }
    if found.is_empty() {
        "none found (no kube-router or kindnet DaemonSet)".into()
    } else {
        found.join(" + ")
    }
}

/// `cluster status`.
fn status() -> Result<()> {
    let kit = Kit::open()?;
    let k = Kind::new(&kit, NAME);
    let probe = kit::recorded_probe_image(&kit);
    if !k.kind.is_file() {
        note(format!(
            "kit: not built in {} (`cargo xtask kit`)",
            kit.dir.display()
        ));
        bail!("cluster `{NAME}`: unknown (no kind CLI yet)");
    }
    if !k.exists()? {
        note(format!(
            "cluster:     `{NAME}` is not present (`cargo xtask cluster up`)"
        ));
        note(format!("kit:         {}", kit.dir.display()));
        bail!("cluster `{NAME}` is not up");
    }
    let nodes = k.nodes()?;
    let mut states = Vec::new();
    for n in &nodes {
        let s = output(Command::new("docker").args([
            "inspect",
            "--format",
            "{{.State.Status}} {{.Config.Image}}",
            n,
        ]))
        .unwrap_or_else(|_| "unknown".into());
        states.push(format!("{n} ({s})"));
    }
    note(format!(
        "cluster:     `{NAME}` present; containers: {}",
        states.join(", ")
    ));
    if !k.kubeconfig.is_file() {
        output(
            k.cmd()
                .args(["export", "kubeconfig", "--name", NAME, "--kubeconfig"])
                .arg(&k.kubeconfig),
        )?;
    }
    let server = k
        .kube
        .json(&["version"])
        .map(|v| {
            v["serverVersion"]["gitVersion"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .unwrap_or_else(|e| format!("unreachable ({e:#})"));
    let pinned = kit.v("K8S_VERSION");
    let mark = if server == pinned {
        "= pinned".to_owned()
    } else {
        format!("pinned: {pinned}")
    };
    note(format!("kubernetes:  server {server} ({mark})"));
    if let Ok(v) = k.kube.json(&["get", "nodes"]) {
        for n in v["items"].as_array().into_iter().flatten() {
            let ready = n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            note(format!(
                "  node {} kubelet {} {} ({})",
                n["metadata"]["name"].as_str().unwrap_or("?"),
                n["status"]["nodeInfo"]["kubeletVersion"]
                    .as_str()
                    .unwrap_or("?"),
                if ready { "Ready" } else { "NotReady" },
                n["status"]["nodeInfo"]["containerRuntimeVersion"]
                    .as_str()
                    .unwrap_or("?"),
            ));
        }
    }
    note(format!("enforcer:    {}", enforcer(&k.kube)));
    match &probe {
        Some(img) => {
            let full = format!("docker.io/library/{img}");
            let mut on = 0;
            for n in &nodes {
                let have = output(
                    Command::new("docker")
                        .args(["exec", n, "ctr", "-n", "k8s.io", "images", "list", "-q"]),
                )
                .unwrap_or_default();
                if have.lines().any(|l| l == full) {
                    on += 1;
                }
            }
            note(format!(
                "probe image: {img} (loaded on {on}/{} nodes)",
                nodes.len()
            ));
        }
        None => note("probe image: none built yet (`cargo xtask kit`)"),
    }
    note(format!("kubeconfig:  {}", k.kubeconfig.display()));
    note(format!(
        "kit:         {} (manifest {})",
        kit.dir.display(),
        kit.manifest_path().display()
    ));
    let mut env = format!(
        "KUBECONFIG={} NETREACH_CONTEXT={CONTEXT}",
        k.kubeconfig.display()
    );
    if let Some(img) = probe {
        env.push_str(&format!(" NETREACH_PROBE_IMAGE={img}"));
    }
    note(format!("env:         {env}"));
    Ok(())
}

/// `cluster down`: our clusters and containers only.
fn down() -> Result<()> {
    let _lock = crate::host::machine_lock()?;
    let kit = Kit::open()?;
    let mut removed = Vec::new();
    for name in [NAME, NOENFORCE] {
        let k = Kind::new(&kit, name);
        if k.kind.is_file() && k.exists()? {
            let t = Instant::now();
            k.delete()?;
            removed.push(format!("cluster `{name}` ({})", fmt_duration(t.elapsed())));
        }
        // Node containers kind did not remove (or kind is not built): by kind's own label.
        let left = docker_ids(&format!("label=io.x-k8s.kind.cluster={name}"))?;
        if !left.is_empty() {
            output(Command::new("docker").args(["rm", "-f", "-v"]).args(&left))?;
            removed.push(format!(
                "{} leftover node container(s) of `{name}`",
                left.len()
            ));
        }
        if name == NAME {
            let _ = std::fs::remove_file(&k.kubeconfig);
        }
    }
    let ours = docker_ids(&format!("label={CONTAINER_LABEL}"))?;
    if !ours.is_empty() {
        output(Command::new("docker").args(["rm", "-f", "-v"]).args(&ours))?;
        removed.push(format!(
            "{} container(s) labelled {CONTAINER_LABEL}",
            ours.len()
        ));
    }
    if succeeds(Command::new("docker").args(["inspect", "netreach-kit-node-build"])) {
        output(Command::new("docker").args(["rm", "-f", "-v", "netreach-kit-node-build"]))?;
        removed.push("the kit's node-image build container".into());
    }
    if removed.is_empty() {
        note("down: nothing of ours was running");
    } else {
        note(format!("down: removed {}", removed.join("; ")));
    }
    note("down: kept the `kind` Docker network, the images and the kit cache");
    Ok(())
}

fn docker_ids(filter: &str) -> Result<Vec<String>> {
    let out = output(Command::new("docker").args(["ps", "-aq", "--filter", filter]))?;
    Ok(out
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect())
}

/// `cluster selftest`: the negative control.
fn selftest(perm: DockerPermission) -> Result<()> {
    let _lock = crate::host::machine_lock()?;
    let start = Instant::now();
    let built = kit::ensure(Scope::Full, perm)?;
    let kit = &built.kit;
    let k = Kind::new(kit, NOENFORCE);
    if k.exists()? {
        note(format!("selftest: deleting a leftover `{NOENFORCE}`"));
        k.delete()?;
    }
    let result = selftest_body(kit, &k, &built.probe_image);
    let t = Instant::now();
    let deleted = k.delete();
    let delete_took = t.elapsed();
    let (without, with, created) = result?;
    deleted?;
    note(format!(
        "selftest: figures ({NOENFORCE}: 1 control-plane + 1 worker, static ptp CNI):"
    ));
    note(format!("  cluster created in {}", fmt_duration(created)));
    note(format!("  without an enforcer: {}", verdict_line(&without)));
    note(format!(
        "  with kube-router firewall-only added: {}",
        verdict_line(&with)
    ));
    note(format!(
        "  cluster deleted in {}; selftest took {}",
        fmt_duration(delete_took),
        fmt_duration(start.elapsed())
    ));
    let caught = matches!(without.verdict, Verdict::NotEnforced(_));
    let passes = with.verdict == Verdict::Enforced;
    if !caught {
        bail!(
            "selftest FAILED: the sanity check did not report the cluster without an enforcer as broken"
        );
    }
    if !passes {
        bail!(
            "selftest FAILED: with kube-router firewall-only the sanity check still did not pass"
        );
    }
    note(
        "selftest: PASSED: a cluster without a working enforcer is caught; the check passes once one runs",
    );
    Ok(())
}

fn verdict_line(r: &sanity::Report) -> String {
    match (&r.verdict, &r.blocked) {
        (Verdict::Enforced, Some((how, after, n))) => format!(
            "enforced: blocked ({how}) {} after the apply (probe {n}), restored {} after the delete",
            fmt_duration(*after),
            r.restored.map_or_else(|| "?".into(), fmt_duration)
        ),
        (Verdict::NotEnforced(why), _) => format!("reported broken, as it must be: {why}"),
        (v, _) => format!("{v:?}"),
    }
}

/// Creates the no-enforcer cluster, checks it, adds the firewall, checks again.
fn selftest_body(
    kit: &Kit,
    k: &Kind,
    probe: &str,
) -> Result<(sanity::Report, sanity::Report, Duration)> {
    // kind's default CNI is off; pod networking comes from a static ptp + host-local conflist per
    // node and routes between the nodes' pod CIDRs (what kindnetd does, without any policy).
    let config = kit.dir.join("out/kind-noenforce.yaml");
    std::fs::write(
        &config,
        format!(
            "# negative control of `cargo xtask cluster selftest`: no NetworkPolicy enforcer\n\
             kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: {NOENFORCE}\n\
             networking:\n  disableDefaultCNI: true\nnodes:\n  - role: control-plane\n  - role: worker\n"
        ),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    crate::host::check_privileged(&kit.node_image())?;
    let created = k.create(kit, &config, &kit.node_image(), false)?;
    static_ptp_cni(k)?;
    wait_ready(&k.kube)?;
    load_image(k, kit, probe)?;
    let without = sanity::run(&k.kube, probe)?;
    without.print();
    doctor_says_not_enforced(kit, k, probe)?;
    add_firewall_enforcer(kit, k)?;
    let with = sanity::run(&k.kube, probe)?;
    with.print();
    Ok((without, with, created))
}

/// `netreach doctor` on the cluster without an enforcer must say plainly that it does not
/// enforce NetworkPolicy (exit 1, the enforcement check failing), as the sanity check did.
fn doctor_says_not_enforced(kit: &Kit, k: &Kind, probe: &str) -> Result<()> {
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| kit.root.join("target"), PathBuf::from)
        .join("release/netreach");
    let out = Command::new(&bin)
        .args(["doctor", "--json", "--context", &k.kube.context])
        .env("KUBECONFIG", &k.kubeconfig)
        .env("NETREACH_PROBE_IMAGE", probe)
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "netreach doctor printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let check = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "enforcement"))
        .cloned()
        .unwrap_or(Value::Null);
    let detail = check["detail"].as_str().unwrap_or_default().to_owned();
    note(format!(
        "selftest: netreach doctor on `{}`: exit {:?}, enforcement {}: {detail}",
        k.name,
        out.status.code(),
        check["state"]
    ));
    if out.status.code() != Some(1)
        || check["state"] != "fail"
        || !detail.contains("does NOT enforce")
    {
        bail!(
            "selftest FAILED: netreach doctor did not report that `{}` does not enforce NetworkPolicy",
            k.name
        );
    }
    Ok(())
}

/// Per node: a ptp conflist with the node's pod CIDR, and routes to the other nodes' pod CIDRs.
fn static_ptp_cni(k: &Kind) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let list = loop {
        match node_cidrs(k) {
            Ok(l) => break l,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    };
    for (name, cidr, _) in &list {
        let conf = serde_json::json!({
            "cniVersion": "0.3.1", "name": "netreach-ptp",
            "plugins": [
                {"type": "ptp", "ipMasq": false, "mtu": 1500,
                 "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state", "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": cidr}]]}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        });
        output_with_input(
            Command::new("docker").args([
                "exec",
                "-i",
                name,
                "sh",
                "-c",
                "cat > /etc/cni/net.d/10-netreach-ptp.conflist",
            ]),
            &conf.to_string(),
        )?;
        for (other, ocidr, oip) in &list {
            if other != name {
                output(
                    Command::new("docker")
                        .args(["exec", name, "ip", "route", "replace", ocidr, "via", oip]),
                )?;
            }
        }
    }
    note(format!(
        "selftest: static ptp CNI written on {} nodes (no policy enforcement)",
        list.len()
    ));
    Ok(())
}

/// (name, pod CIDR, InternalIP) of every node; an error while there are not 2 nodes with both.
fn node_cidrs(k: &Kind) -> Result<Vec<(String, String, String)>> {
    let nodes = k.kube.json(&["get", "nodes"])?;
    let mut list = Vec::new();
    for n in nodes["items"].as_array().into_iter().flatten() {
        let name = n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let cidr = n["spec"]["podCIDR"].as_str().unwrap_or_default().to_owned();
        let ip = n["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .unwrap_or_default()
            .to_owned();
        if cidr.is_empty() || ip.is_empty() {
            bail!("node {name} has no pod CIDR or InternalIP yet");
        }
        list.push((name, cidr, ip));
    }
    if list.len() < 2 {
        bail!("expected 2 nodes, found {}", list.len());
    }
    Ok(list)
}
