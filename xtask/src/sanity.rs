//! The default-deny sanity check `cluster up` runs every time before it reports a cluster ready.
//!
//! In a throwaway namespace labelled as netreach's: a server pod from the probe image
//! (`netreach serve` on 80/tcp) and a client pod, on different nodes when there are two. A TCP
//! connect from the client must succeed; after a default-deny ingress NetworkPolicy it must fail
//! (polled up to a deadline; whether it is "refused" or a timeout, and how long enforcement took,
//! are recorded); after deleting the policy it must succeed again. The namespace is deleted at the
//! end, whatever happened.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::ui::{Waiting, note};
use crate::util::{fmt_duration, output, output_with_input, unix_now};

/// How long a default-deny policy may take to block, and its deletion to unblock.
const POLICY_DEADLINE: Duration = Duration::from_secs(30);
/// How long the first connection (no policy) may take to work.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// Label of every namespace the check creates (and removes leftovers by).
pub const SANITY_LABEL: &str = "netreach.io/sanity-check";
const PORT: &str = "80";

/// kubectl against one cluster: `--kubeconfig` and `--context` on every call.
#[derive(Debug, Clone)]
pub struct Kube {
    pub kubectl: PathBuf,
    pub kubeconfig: PathBuf,
    pub context: String,
}

impl Kube {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.kubectl);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--context", &self.context]);
        c
    }

    pub fn run(&self, args: &[&str]) -> Result<String> {
        output(self.cmd().args(args))
    }

    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let out = self.run(&[args, &["-o", "json"]].concat())?;
        serde_json::from_str(&out).context("kubectl gave no JSON")
    }

    pub fn apply(&self, doc: &str) -> Result<String> {
        output_with_input(self.cmd().args(["apply", "-f", "-"]), doc)
    }
}

/// What one connection attempt from the client gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Connected,
    Refused,
    TimedOut,
    /// nc failed some other way (e.g. "No route to host"): also blocked.
    OtherFailure(String),
    /// Not nc's answer: kubectl exec itself failed.
    ExecError(String),
}

impl Probe {
    fn blocked(&self) -> bool {
        matches!(self, Self::Refused | Self::TimedOut | Self::OtherFailure(_))
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected => f.write_str("connected"),
            Self::Refused => f.write_str("refused"),
            Self::TimedOut => f.write_str("timeout"),
            Self::OtherFailure(m) => write!(f, "failed: {m}"),
            Self::ExecError(m) => write!(f, "kubectl exec failed: {m}"),
        }
    }
}

/// The check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Enforced,
    /// The policy did not block: the cluster has no working enforcer.
    NotEnforced(String),
    /// Something else is wrong (no connectivity, pods not starting, policy not lifting).
    Broken(String),
}

/// Figures of one run of the check.
#[derive(Debug, Clone)]
pub struct Report {
    pub namespace: String,
    pub client_node: String,
    pub server_node: String,
    /// Time from pods created to both Ready.
    pub pods_ready: Option<Duration>,
    /// How long the first successful connect took (the nc call, including kubectl exec).
    pub connect: Option<Duration>,
    /// What the server answered over HTTP (its identity), if it did.
    pub answer: Option<String>,
    /// How the default-deny policy showed up, how long after the apply, after how many probes.
    pub blocked: Option<(Probe, Duration, u32)>,
    /// Probes that still connected after the policy was applied, and the last probe's time.
    pub still_connected: (u32, Duration),
    /// How long after deleting the policy the connection worked again.
    pub restored: Option<Duration>,
    pub namespace_deleted: bool,
    pub total: Duration,
    pub verdict: Verdict,
}

impl Report {
    pub fn print(&self) {
        note(format!(
            "sanity check in namespace {} (client on {}, server on {}, TCP port {PORT}):",
            self.namespace, self.client_node, self.server_node
        ));
        if let Some(d) = self.pods_ready {
            note(format!("  pods Ready after {}", fmt_duration(d)));
        }
        if let Some(d) = self.connect {
            note(format!(
                "  without a policy: connected ({}){}",
                fmt_duration(d),
                self.answer
                    .as_ref()
                    .map_or_else(String::new, |a| format!(", server answered {a:?}"))
            ));
        }
        match &self.blocked {
            Some((how, after, n)) => note(format!(
                "  default-deny ingress: blocked ({how}) {} after the apply (probe {n})",
                fmt_duration(*after)
            )),
            None if self.connect.is_some() => note(format!(
                "  default-deny ingress: NOT blocked; {} probes still connected, the last {} after the apply",
                self.still_connected.0,
                fmt_duration(self.still_connected.1)
            )),
            None => {}
        }
        if let Some(d) = self.restored {
            note(format!(
                "  policy deleted: connected again {} later",
                fmt_duration(d)
            ));
        }
        note(format!(
            "  namespace {}; check took {}",
            if self.namespace_deleted {
                "deleted"
            } else {
                "NOT deleted"
            },
            fmt_duration(self.total)
        ));
        match &self.verdict {
            Verdict::Enforced => note("  verdict: NetworkPolicy is enforced"),
            Verdict::NotEnforced(why) | Verdict::Broken(why) => {
                note(format!("  verdict: BROKEN: {why}"))
            }
        }
    }
}

/// Runs the check with pods from `image` (the probe image, present on the nodes).
pub fn run(kube: &Kube, image: &str) -> Result<Report> {
    let start = Instant::now();
    // Leftovers of an interrupted check.
    let _ = kube.run(&[
        "delete",
        "namespace",
        "-l",
        &format!("{SANITY_LABEL}=true"),
        "--wait=false",
        "--ignore-not-found",
    ]);
    let (client_node, server_node) = pick_nodes(kube)?;
    let namespace = format!(
        "netreach-sanity-{}-{}",
        unix_now() % 1_000_000,
        std::process::id()
    );
    let mut report = Report {
        namespace: namespace.clone(),
        client_node,
        server_node,
        pods_ready: None,
        connect: None,
        answer: None,
        blocked: None,
        still_connected: (0, Duration::ZERO),
        restored: None,
        namespace_deleted: false,
        total: Duration::ZERO,
        verdict: Verdict::Broken("the check did not finish".into()),
    };
    let wait = Waiting::new("sanity check: default-deny NetworkPolicy");
    let result = body(kube, image, &mut report, &wait);
    wait.message("deleting the namespace");
    let deleted = kube.run(&[
        "delete",
        "namespace",
        &namespace,
        "--wait=true",
        "--timeout=120s",
        "--ignore-not-found",
    ]);
    wait.done();
    report.namespace_deleted = deleted.is_ok();
    report.total = start.elapsed();
    match result {
        Ok(verdict) => report.verdict = verdict,
        Err(e) => report.verdict = Verdict::Broken(format!("{e:#}")),
    }
    Ok(report)
}

/// Client on the control-plane node, server on a worker (cross-node), when there is a worker.
fn pick_nodes(kube: &Kube) -> Result<(String, String)> {
    let nodes = kube.json(&["get", "nodes"])?;
    let mut control = Vec::new();
    let mut workers = Vec::new();
    for n in nodes["items"].as_array().into_iter().flatten() {
        let name = n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if n["metadata"]["labels"]
            .get("node-role.kubernetes.io/control-plane")
            .is_some()
        {
            control.push(name);
        } else {
            workers.push(name);
        }
    }
    let client = control
        .first()
        .or(workers.first())
        .cloned()
        .context("the cluster has no nodes")?;
    let server = workers.first().cloned().unwrap_or_else(|| client.clone());
    Ok((client, server))
}

fn body(kube: &Kube, image: &str, report: &mut Report, wait: &Waiting) -> Result<Verdict> {
    let ns = report.namespace.clone();
    let pod = |name: &str, node: &str, container: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "app.kubernetes.io/managed-by": "netreach"}},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 2,
                "tolerations": [{"operator": "Exists"}],
                "containers": [container],
            },
        })
    };
    let server = pod(
        "server",
        &report.server_node,
        json!({
            "name": "serve", "image": image, "imagePullPolicy": "Never",
            "args": ["--identity", format!("{ns}/server"), "--port", format!("{PORT}/tcp"), "--ready-file", "/tmp/netreach-ready"],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/netreach-ready"]}, "periodSeconds": 1},
        }),
    );
    let client = pod(
        "client",
        &report.client_node,
        json!({"name": "client", "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", "trap 'exit 0' TERM; sleep infinity & wait"]}),
    );
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {SANITY_LABEL: "true", "app.kubernetes.io/managed-by": "netreach"}},
    });
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [namespace, server, client]});
    wait.message("starting a server and a client pod");
    let t = Instant::now();
    kube.apply(&list.to_string())?;
    if let Err(e) = kube.run(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=Ready",
        "pod/server",
        "pod/client",
        "--timeout=120s",
    ]) {
        let pods = kube
            .run(&["-n", &ns, "get", "pods", "-o", "wide"])
            .unwrap_or_default();
        let events = kube
            .run(&["-n", &ns, "get", "events", "--sort-by=.lastTimestamp"])
            .unwrap_or_default();
        return Ok(Verdict::Broken(format!(
            "the check's pods did not become Ready within 120 s ({e:#})\n{pods}\n{events}"
        )));
    }
    report.pods_ready = Some(t.elapsed());
    let ip = kube.run(&[
        "-n",
        &ns,
        "get",
        "pod",
        "server",
        "-o",
        "jsonpath={.status.podIP}",
    ])?;
    if ip.is_empty() {
        bail!("the server pod has no IP");
    }

    // 1. Without a policy the connection works.
    wait.message("connect without a policy");
    let t = Instant::now();
    let mut last = Probe::ExecError("no probe ran".into());
    while t.elapsed() < CONNECT_DEADLINE {
        let (p, took) = probe(kube, &ns, &ip);
        if p == Probe::Connected {
            report.connect = Some(took);
            break;
        }
        last = p;
        std::thread::sleep(Duration::from_millis(500));
    }
    if report.connect.is_none() {
        return Ok(Verdict::Broken(format!(
            "pods cannot connect without any policy: client on {} to server {ip}:{PORT} on {}: {last} (for {} s)",
            report.client_node,
            report.server_node,
            CONNECT_DEADLINE.as_secs()
        )));
    }
    report.answer = output(kube.cmd().args([
        "-n",
        &ns,
        "exec",
        "client",
        "--",
        "curl",
        "-sS",
        "--max-time",
        "3",
        &format!("http://{ip}:{PORT}/"),
    ]))
    .ok()
    .and_then(|a| a.lines().next().map(str::to_owned));

    // 2. A default-deny ingress policy blocks it.
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-ingress", "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    });
    wait.message("default-deny ingress applied: waiting for the connection to fail");
    kube.apply(&policy.to_string())?;
    let applied = Instant::now();
    let mut n = 0;
    let mut exec_error = None;
    while applied.elapsed() < POLICY_DEADLINE {
        let (p, _) = probe(kube, &ns, &ip);
        n += 1;
        if p.blocked() {
            report.blocked = Some((p, applied.elapsed(), n));
            break;
        }
        match p {
            Probe::Connected => {
                report.still_connected = (report.still_connected.0 + 1, applied.elapsed())
            }
            Probe::ExecError(m) => exec_error = Some(m),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if report.blocked.is_none() {
        if report.still_connected.0 == 0
            && let Some(m) = exec_error
        {
            return Ok(Verdict::Broken(format!(
                "cannot probe from the client pod: {m}"
            )));
        }
        return Ok(Verdict::NotEnforced(format!(
            "NetworkPolicy is not enforced: connection still succeeded {:.1} s after a default-deny policy \
             ({} of {n} probes connected)",
            report.still_connected.1.as_secs_f64(),
            report.still_connected.0
        )));
    }

    // 3. Deleting the policy restores it.
    wait.message("policy deleted: waiting for the connection to work again");
    kube.run(&["-n", &ns, "delete", "networkpolicy", "default-deny-ingress"])?;
    let deleted = Instant::now();
    let mut last = Probe::ExecError("no probe ran".into());
    while deleted.elapsed() < POLICY_DEADLINE {
        let (p, _) = probe(kube, &ns, &ip);
        if p == Probe::Connected {
            report.restored = Some(deleted.elapsed());
            return Ok(Verdict::Enforced);
        }
        last = p;
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(Verdict::Broken(format!(
        "deleting the default-deny policy did not restore the connection within {} s (last probe: {last})",
        POLICY_DEADLINE.as_secs()
    )))
}

/// One TCP connect from the client pod: `nc -z -v -w 2 <ip> 80`.
fn probe(kube: &Kube, ns: &str, ip: &str) -> (Probe, Duration) {
    let t = Instant::now();
    let out = kube
        .cmd()
        .args([
            "-n", ns, "exec", "client", "--", "nc", "-z", "-v", "-w", "2", ip, PORT,
        ])
        .stdin(Stdio::null())
        .output();
    let took = t.elapsed();
    let p = match out {
        Err(e) => Probe::ExecError(e.to_string()),
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let text = text.trim().replace('\n', " ");
            if o.status.success() {
                Probe::Connected
            } else if !text.contains("nc: ") && !text.contains("Connection") {
                Probe::ExecError(text)
            } else if text.contains("refused") {
                Probe::Refused
            } else if text.contains("timed out") {
                Probe::TimedOut
            } else {
                Probe::OtherFailure(text)
            }
        }
    };
    (p, took)
}
