//! `cargo xtask kit [--configure-docker]`: builds and caches everything a kind cluster needs, from package
//! registries only (Debian via apt/debootstrap, the Go module proxy, the crate registry).
//!
//! Size: one short builder per kit step around the shared cache keys, stamps and timings; split per step it would scatter the caching rule.
//!
//! The work is a list of steps. Most are bash scripts in `xtask/kit/` (a step is a sequence of
//! commands); this module decides which steps run, runs them under `nice -n 19` with their output
//! in `<kit>/logs/<step>.log`, checks what they produced and records it.
//!
//! Caching: each step has a key, the SHA-256 of its inputs: the values of the `versions.env` pins
//! (and host facts) it uses, its script, `lib.sh`, its other assets and the keys of the steps it
//! builds on. A finished step writes `<kit>/stamps/<step>.json` with that key and its outputs
//! (file SHA-256s, Docker image IDs). A step is skipped when its stamp has the current key and its
//! outputs are still there (files present, images present with the same ID); otherwise its stamp
//! is removed first and the step re-runs, so a failed or interrupted step always re-runs. Go's
//! build and module caches live in the kit too, so a re-run after a version change rebuilds only
//! what changed.
//!
//! The kit directory is `$NETREACH_KIT_DIR`, by default `~/.cache/netreach-kit`: outside the
//! repository, so every checkout (and CI on the same machine) shares it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::host;
use crate::ui::{self, note};
use crate::util::{fmt_duration, sha256_files, sha256_hex, unix_now, write_atomic};

/// Where the probe image's name starts; the tag is a hash of binary and recipe.
pub const PROBE_REPO: &str = "netreach-probe";

/// Debian packages of the probe image.
const PROBE_PACKAGES: &str = "curl,netcat-openbsd,bind9-dnsutils,ca-certificates,coreutils";

/// `versions.env` keys that must be present.
const REQUIRED: &[&str] = &[
    "KIND_VERSION",
    "K8S_VERSION",
    "K8S_STAGING_VERSION",
    "ETCD_VERSION",
    "ETCD_IMAGE_TAG",
    "COREDNS_VERSION",
    "PAUSE_TAG",
    "KIND_SANDBOX_PAUSE_TAG",
    "CRICTL_VERSION",
    "CNI_PLUGINS_VERSION",
    "KUBE_ROUTER_VERSION",
    "KUBE_ROUTER_NETLINK_VERSION",
    "GO_MIN_VERSION",
    "DEBIAN_SUITE",
    "PUBLISHED_NODE_IMAGE",
];

/// The kit: its directory, its recipe (`xtask/kit/`) and the pinned versions.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The cache directory (`$NETREACH_KIT_DIR`).
    pub dir: PathBuf,
    /// `xtask/kit/`: scripts, manifests, `versions.env`.
    pub src: PathBuf,
    /// The workspace root.
    pub root: PathBuf,
    versions: BTreeMap<String, String>,
}

impl Kit {
    /// Reads `versions.env`; does not build anything.
    pub fn open() -> Result<Self> {
        let root = crate::project_root();
        let src = root.join("xtask/kit");
        let dir = match std::env::var_os("NETREACH_KIT_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => {
                let home = std::env::var_os("HOME")
                    .context("HOME is not set (and NETREACH_KIT_DIR is not either)")?;
                PathBuf::from(home).join(".cache/netreach-kit")
            }
        };
        let dir = if dir.is_absolute() {
            dir
        } else {
            root.join(dir)
        };
        let versions = parse_versions(&src.join("versions.env"))?;
        Ok(Self {
            dir,
            src,
            root,
            versions,
        })
    }

    /// A pinned value of `versions.env` (all of [`REQUIRED`] are checked on open).
    pub fn v(&self, key: &str) -> &str {
        self.versions.get(key).map_or("", String::as_str)
    }

    pub fn versions(&self) -> &BTreeMap<String, String> {
        &self.versions
    }

    pub fn kind_bin(&self) -> PathBuf {
        self.dir.join("bin/kind")
    }

    fn k8s_bin_dir(&self) -> PathBuf {
        self.dir.join("k8s").join(self.v("K8S_VERSION")).join("bin")
    }

    /// kubectl of the pinned Kubernetes version (the distribution's kubectl may be too old).
    pub fn kubectl(&self) -> PathBuf {
        self.k8s_bin_dir().join("kubectl")
    }

    /// The node image the kit builds.
    pub fn node_image(&self) -> String {
        format!("netreach-kit/node:{}", self.v("K8S_VERSION"))
    }

    pub fn kube_router_image(&self) -> String {
        format!("netreach-kit/kube-router:{}", self.v("KUBE_ROUTER_VERSION"))
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    fn stamp_path(&self, step: &str) -> PathBuf {
        self.dir.join("stamps").join(format!("{step}.json"))
    }

    fn component_images_map(&self) -> PathBuf {
        self.dir.join("out/component-images.map")
    }

    fn component(&self, name: &str, version_key: &str, bin: &str) -> PathBuf {
        self.dir
            .join("components")
            .join(format!("{name}-{}", self.v(version_key)))
            .join(bin)
    }

    /// The environment every step script gets (see `xtask/kit/lib.sh`).
    fn script_env(&self, restrict_oom: bool, go_version: &str) -> BTreeMap<String, String> {
        let p = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut env = self.versions.clone();
        if let Ok(m) = std::env::var("DEBIAN_MIRROR")
            && !m.is_empty()
        {
            env.insert("DEBIAN_MIRROR".into(), m);
        }
        let d = &self.dir;
        for (k, v) in [
            ("KIT_DIR", p(d.clone())),
            ("KIT_SRC", p(self.src.clone())),
            ("GOCACHE", p(d.join("go/cache"))),
            ("GOMODCACHE", p(d.join("go/mod"))),
            ("GOPATH", p(d.join("go/path"))),
            ("GOTOOLCHAIN", "local".into()),
            // -modcacherw: the module cache can be deleted with rm -rf.
            ("GOFLAGS", "-modcacherw -buildvcs=false".into()),
            ("DOCKER_BUILDKIT", "0".into()),
            ("KIND_BIN", p(self.kind_bin())),
            ("K8S_BIN_DIR", p(self.k8s_bin_dir())),
            (
                "PAUSE_BIN",
                p(d.join("k8s")
                    .join(self.v("K8S_VERSION"))
                    .join("pause/pause")),
            ),
            (
                "ETCD_BIN",
                p(self.component("etcd", "ETCD_VERSION", "etcd")),
            ),
            (
                "COREDNS_BIN",
                p(self.component("coredns", "COREDNS_VERSION", "coredns")),
            ),
            (
                "CRICTL_BIN",
                p(self.component("crictl", "CRICTL_VERSION", "crictl")),
            ),
            (
                "CNI_BIN_DIR",
                p(self.component("cni-plugins", "CNI_PLUGINS_VERSION", "")),
            ),
            (
                "KUBE_ROUTER_BIN",
                p(self.component("kube-router", "KUBE_ROUTER_VERSION", "kube-router")),
            ),
            ("COMPONENT_IMAGES_MAP", p(self.component_images_map())),
            (
                "NETBASE_IMAGE",
                format!("netreach-kit/netbase:{}", self.v("DEBIAN_SUITE")),
            ),
            (
                "BASE_IMAGE",
                format!("netreach-kit/kind-base:{}", self.v("KIND_VERSION")),
            ),
            ("NODE_IMAGE", self.node_image()),
            ("KUBE_ROUTER_IMAGE", self.kube_router_image()),
            (
                "PROBE_BASE_IMAGE",
                format!("netreach-kit/probe-base:{}", self.v("DEBIAN_SUITE")),
            ),
            ("PROBE_PACKAGES", PROBE_PACKAGES.into()),
            ("RESTRICT_OOM_SCORE_ADJ", restrict_oom.to_string()),
            ("GO_VERSION", go_version.into()),
        ] {
            env.insert(k.into(), v);
        }
        env
    }
}

fn parse_versions(path: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!(
                "{}:{}: expected KEY=VALUE, found `{line}`",
                path.display(),
                i + 1
            );
        };
        map.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    for k in REQUIRED {
        if !map.contains_key(*k) {
            bail!("{}: {k} is not set", path.display());
        }
    }
    Ok(map)
}

/// What a step produces (checked after it ran, and before it is skipped).
#[derive(Debug, Default)]
struct Outputs {
    files: Vec<PathBuf>,
    images: Vec<String>,
}

/// One step of the kit.
#[derive(Debug)]
struct Step {
    name: &'static str,
    /// What it does, for the progress line.
    what: &'static str,
    /// Script in `xtask/kit/`, and its argument.
    script: &'static str,
    arg: Option<&'static str>,
    /// Entries of the script environment whose values are part of the key.
    keys: &'static [&'static str],
    /// Further files of `xtask/kit/` that are part of the key.
    assets: &'static [&'static str],
    /// Steps whose outputs this one uses.
    deps: &'static [&'static str],
    outputs: fn(&Kit, &BTreeMap<String, String>) -> Result<Outputs>,
}

fn files(env: &BTreeMap<String, String>, keys: &[&str]) -> Vec<PathBuf> {
    keys.iter()
        .map(|k| PathBuf::from(env.get(*k).map_or("", String::as_str)))
        .collect()
}

fn images(env: &BTreeMap<String, String>, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| env.get(*k).cloned().unwrap_or_default())
        .collect()
}

const GO: &str = "GO_VERSION";

static STEPS: &[Step] = &[
    Step {
        name: "kind",
        what: "kind CLI (go install)",
        script: "kind.sh",
        arg: None,
        keys: &["KIND_VERSION", GO],
        assets: &[],
        deps: &[],
        outputs: |_, env| {
            Ok(Outputs {
                files: files(env, &["KIND_BIN"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "kubernetes",
        what: "Kubernetes binaries (go build, wrapper module; cold: minutes)",
        script: "kubernetes.sh",
        arg: None,
        keys: &["K8S_VERSION", "K8S_STAGING_VERSION", GO],
        assets: &[],
        deps: &[],
        outputs: |kit, env| {
            let bin = kit.k8s_bin_dir();
            let mut files: Vec<PathBuf> = [
                "kubeadm",
                "kubelet",
                "kubectl",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kube-proxy",
            ]
            .iter()
            .map(|b| bin.join(b))
            .collect();
            files.extend(self::files(env, &["PAUSE_BIN"]));
            Ok(Outputs {
                files,
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "etcd",
        what: "etcd (go build, wrapper module)",
        script: "components.sh",
        arg: Some("etcd"),
        keys: &["ETCD_VERSION", GO],
        assets: &[],
        deps: &[],
        outputs: |_, env| {
            Ok(Outputs {
                files: files(env, &["ETCD_BIN"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "coredns",
        what: "CoreDNS (go install)",
        script: "components.sh",
        arg: Some("coredns"),
        keys: &["COREDNS_VERSION", GO],
        assets: &[],
        deps: &[],
        outputs: |_, env| {
            Ok(Outputs {
                files: files(env, &["COREDNS_BIN"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "crictl",
        what: "crictl (go build, wrapper module)",
        script: "components.sh",
        arg: Some("crictl"),
        keys: &["CRICTL_VERSION", "K8S_STAGING_VERSION", GO],
        assets: &[],
        deps: &[],
        outputs: |_, env| {
            Ok(Outputs {
                files: files(env, &["CRICTL_BIN"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "cni-plugins",
        what: "CNI plugins (go install)",
        script: "components.sh",
        arg: Some("cni-plugins"),
        keys: &["CNI_PLUGINS_VERSION", GO],
        assets: &[],
        deps: &[],
        outputs: |_, env| {
            let dir = PathBuf::from(env.get("CNI_BIN_DIR").map_or("", String::as_str));
            Ok(Outputs {
                files: ["host-local", "loopback", "portmap", "ptp", "bridge"]
                    .iter()
                    .map(|p| dir.join(p))
                    .collect(),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "kube-router",
        what: "kube-router (go build, wrapper module; cold: minutes)",
        script: "components.sh",
        arg: Some("kube-router"),
        keys: &["KUBE_ROUTER_VERSION", "KUBE_ROUTER_NETLINK_VERSION", GO],
        assets: &[],
        deps: &[],
        outputs: |_, env| {
            Ok(Outputs {
                files: files(env, &["KUBE_ROUTER_BIN"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "netbase-image",
        what: "network tools image (debootstrap, docker import)",
        script: "netbase-image.sh",
        arg: None,
        keys: &["DEBIAN_SUITE"],
        assets: &["iptables-wrapper"],
        deps: &[],
        outputs: |_, env| {
            Ok(Outputs {
                images: images(env, &["NETBASE_IMAGE"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "kube-router-image",
        what: "kube-router image",
        script: "kube-router-image.sh",
        arg: None,
        keys: &["KUBE_ROUTER_IMAGE"],
        assets: &[],
        deps: &["kube-router", "netbase-image"],
        outputs: |_, env| {
            Ok(Outputs {
                images: images(env, &["KUBE_ROUTER_IMAGE"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "component-images",
        what: "control-plane, etcd, CoreDNS, pause images",
        script: "component-images.sh",
        arg: None,
        keys: &[
            "K8S_VERSION",
            "ETCD_IMAGE_TAG",
            "PAUSE_TAG",
            "KIND_SANDBOX_PAUSE_TAG",
        ],
        assets: &[],
        deps: &["kubernetes", "etcd", "coredns", "netbase-image"],
        outputs: |kit, _| {
            let map = kit.component_images_map();
            let text = std::fs::read_to_string(&map)
                .with_context(|| format!("cannot read {}", map.display()))?;
            let mut images: Vec<String> = text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .collect();
            images.sort();
            images.dedup();
            Ok(Outputs {
                files: vec![map],
                images,
            })
        },
    },
    Step {
        name: "base-image",
        what: "kind base image (debootstrap + kind's recipe)",
        script: "base-image.sh",
        arg: None,
        keys: &["KIND_VERSION", "DEBIAN_SUITE", "RESTRICT_OOM_SCORE_ADJ"],
        assets: &[],
        deps: &["kind", "crictl", "cni-plugins"],
        outputs: |_, env| {
            Ok(Outputs {
                images: images(env, &["BASE_IMAGE"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "node-image",
        what: "kind node image (kube-router as CNI, images preloaded)",
        script: "node-image.sh",
        arg: None,
        keys: &["K8S_VERSION"],
        assets: &["manifests/kube-router-cni.yaml"],
        deps: &[
            "base-image",
            "component-images",
            "kube-router-image",
            "kubernetes",
        ],
        outputs: |_, env| {
            Ok(Outputs {
                images: images(env, &["NODE_IMAGE"]),
                ..Outputs::default()
            })
        },
    },
    Step {
        name: "probe-base",
        what: "probe image's OS layer (debootstrap)",
        script: "probe-base.sh",
        arg: None,
        keys: &["DEBIAN_SUITE", "PROBE_PACKAGES"],
        assets: &[],
        deps: &[],
        outputs: |_, env| {
            Ok(Outputs {
                images: images(env, &["PROBE_BASE_IMAGE"]),
                ..Outputs::default()
            })
        },
    },
];

/// Steps a cluster on the kit's node image needs (all of them), in order.
const FULL: &[&str] = &["node-image", "probe-base"];
/// Steps a cluster on kind's published node image needs: the kind CLI, kubectl, the probe image.
const PUBLISHED: &[&str] = &["kind", "kubernetes", "probe-base"];
/// Steps of the firewall-only enforcer image (published node image, when kindnetd does not enforce).
pub const KUBE_ROUTER_ONLY: &[&str] = &["kube-router-image"];

/// How much of the kit to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything a cluster on the kit's node image needs (node image included).
    Full,
    /// kind CLI, kubectl and the probe image (kind's published node image is pulled).
    Published,
}

/// What `ensure` built: the kit and the current probe image.
#[derive(Debug, Clone)]
pub struct Built {
    pub kit: Kit,
    /// `netreach-probe:<tag>`.
    pub probe_image: String,
}

/// The preflight is printed once per process (a task may open several builders).
static PREFLIGHT_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A prepared build: host facts and the script environment.
#[derive(Debug)]
pub struct Builder {
    _lock: host::MachineLock,
    pub kit: Kit,
    env: BTreeMap<String, String>,
    host: host::Facts,
    keys: BTreeMap<&'static str, String>,
    report: Vec<(String, String)>,
}

/// `cargo xtask kit [--configure-docker]`.
pub fn main(args: &[String]) -> Result<()> {
    for a in args {
        match a.as_str() {
            host::CONFIGURE_FLAG => {}
            other => {
                crate::reject_removed_flag(other)?;
                bail!(
                    "usage: cargo xtask kit [{}]\nunknown argument `{other}`",
                    host::CONFIGURE_FLAG
                )
            }
        }
    }
    let start = Instant::now();
    let built = ensure(Scope::Full, host::DockerPermission::from_args(args))?;
    note(format!(
        "kit ready in {}: {} (node image {}, probe image {})",
        fmt_duration(start.elapsed()),
        built.kit.dir.display(),
        built.kit.node_image(),
        built.probe_image
    ));
    note(format!("manifest: {}", built.kit.manifest_path().display()));
    Ok(())
}

/// Builds (or finds cached) what `scope` needs. The host is checked first (preflight, one line
/// per check) and the Docker engine prepared by the rule in `host`; a stop there happens before
/// any step runs. A cold build says beforehand what it will build and about how long that took
/// here, and the total at the end.
pub fn ensure(scope: Scope, perm: host::DockerPermission) -> Result<Built> {
    let _lock = host::machine_lock()?;
    let wanted = match scope {
        Scope::Full => FULL,
        Scope::Published => PUBLISHED,
    };
    let mut b = Builder::new(perm, wanted)?;
    let start = Instant::now();
    b.run_steps(wanted)?;
    let probe_image = b.probe_image()?;
    b.write_manifest(scope, &probe_image)?;
    b.print_report();
    let built: Vec<&str> = b
        .report
        .iter()
        .filter(|(_, what)| what.starts_with("built"))
        .map(|(n, _)| n.as_str())
        .collect();
    if !built.is_empty() {
        note(format!(
            "kit: built {} step(s) in {} ({})",
            built.len(),
            fmt_duration(start.elapsed()),
            built.join(", ")
        ));
    }
    Ok(Built {
        kit: b.kit,
        probe_image,
    })
}

/// Seconds a step took on this project's 2-core machines in a cold build: the fresh-machine run
/// of 2026-12-01 (`cargo xtask run` on a machine without Docker or kit, load average 3-10 from
/// other work; 27m52s for the kit in all). Used for the estimate when this machine has no
/// timing of its own (`<kit>/timings.json`).
fn typical_seconds(step: &str) -> u64 {
    match step {
        "host-packages" => 15,
        "kind" => 31,
        "kubernetes" => 518,
        "etcd" => 45,
        "coredns" => 136,
        "crictl" => 74,
        "cni-plugins" => 13,
        "kube-router" => 205,
        "netbase-image" => 36,
        "kube-router-image" => 2,
        "component-images" => 7,
        "base-image" => 119,
        "node-image" => 29,
        "probe-base" => 92,
        "probe-binary" => 361,
        _ => 60,
    }
}

/// Steps that take minutes cold: a build that includes one needs the cold disk budget.
const HEAVY: &[&str] = &["kubernetes", "kube-router", "coredns", "etcd", "base-image"];

impl Builder {
    /// Checks the host (preflight), prepares the Docker engine, checks that it can start a
    /// privileged container, and prints what `wanted` still needs built.
    pub fn new(perm: host::DockerPermission, wanted: &[&str]) -> Result<Self> {
        let lock = host::machine_lock()?;
        let kit = Kit::open()?;
        for d in ["logs", "stamps", "work", "out"] {
            let p = kit.dir.join(d);
            std::fs::create_dir_all(&p)
                .with_context(|| format!("cannot create {}", p.display()))?;
        }
        let facts = host::Facts::gather()?;
        let go = facts.go_version.clone().unwrap_or_default();
        let env = kit.script_env(!facts.cap_sys_resource, &go);
        let mut b = Self {
            _lock: lock,
            kit,
            env,
            host: facts,
            keys: BTreeMap::new(),
            report: Vec::new(),
        };
        let pending = b.pending(wanted)?;
        let cold = pending.iter().any(|s| HEAVY.contains(s));
        if !PREFLIGHT_DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            host::preflight(&b.kit, &b.host, perm, cold)?;
        }
        let min_go = b.kit.v("GO_MIN_VERSION").to_owned();
        let kit = b.kit.clone();
        let facts = b.host.clone();
        // Nothing of the kit is built before `prepare` has let it through.
        host::prepare(
            &facts,
            perm,
            &min_go,
            &mut host::RealHost { kit: &kit },
            |_| {
                host::check_privileged_now()?;
                b.announce(&pending);
                Ok(b)
            },
        )
    }

    /// The steps of `wanted` (and what they build on) whose stamp does not have the current key,
    /// in build order. Judged from stamps and files only (Docker may not run yet): a step whose
    /// image went missing is found when it runs.
    fn pending(&mut self, wanted: &[&str]) -> Result<Vec<&'static str>> {
        let mut order = Vec::new();
        for w in wanted {
            self.order(Self::step(w)?.name, &mut order)?;
        }
        let mut out = Vec::new();
        for name in order {
            let key = self.key(name)?;
            let stamp = read_json(&self.kit.stamp_path(name));
            let fresh = stamp.as_ref().is_some_and(|st| {
                st["key"].as_str() == Some(key.as_str())
                    && st["files"]
                        .as_object()
                        .is_some_and(|m| m.keys().all(|f| Path::new(f).is_file()))
            });
            if !fresh {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Before a build: each step to build with the time it took here last (or the project's
    /// figure), and the sum.
    fn announce(&self, pending: &[&'static str]) {
        if pending.is_empty() {
            return;
        }
        let timings = read_json(&self.timings_path()).unwrap_or(Value::Null);
        let mut total = 0;
        let mut parts = Vec::new();
        let mut own = 0;
        for s in pending.iter().copied().chain(["probe-binary"]) {
            let secs = match timings[s]["seconds"].as_f64() {
                Some(t) => {
                    own += 1;
                    t as u64
                }
                None => typical_seconds(s),
            };
            total += secs;
            parts.push(format!("{s} ~{}", fmt_duration(Duration::from_secs(secs))));
        }
        note(format!(
            "kit: {} step(s) to build: {}",
            pending.len(),
            parts.join(", ")
        ));
        note(format!(
            "kit: about {} in all ({}); later runs reuse the cache in {}",
            fmt_duration(Duration::from_secs(total)),
            if own == 0 {
                "the project's figures for a cold build on its 2-core machines".to_owned()
            } else {
                format!("{own} of them timed on this machine before")
            },
            self.kit.dir.display()
        ));
    }

    fn timings_path(&self) -> PathBuf {
        self.kit.dir.join("timings.json")
    }

    /// Remembers how long a step took (kept when its stamp goes stale).
    fn record_timing(&self, name: &str, took: Duration) {
        let path = self.timings_path();
        let mut t = read_json(&path).unwrap_or_else(|| json!({}));
        if let Some(obj) = t.as_object_mut() {
            obj.insert(
                name.to_owned(),
                json!({"seconds": (took.as_secs_f64() * 10.0).round() / 10.0, "finished_unix": unix_now()}),
            );
        }
        if let Ok(data) = serde_json::to_string_pretty(&t) {
            let _ = write_atomic(&path, data.as_bytes());
        }
    }

    fn step(name: &str) -> Result<&'static Step> {
        STEPS
            .iter()
            .find(|s| s.name == name)
            .with_context(|| format!("no kit step named `{name}`"))
    }

    /// The cache key of a step (memoised; includes its dependencies' keys).
    fn key(&mut self, name: &'static str) -> Result<String> {
        if let Some(k) = self.keys.get(name) {
            return Ok(k.clone());
        }
        let step = Self::step(name)?;
        let mut text = format!("step={name}\n");
        let mut files = vec![step.script, "lib.sh"];
        files.extend_from_slice(step.assets);
        for f in files {
            let p = self.kit.src.join(f);
            let data = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            text.push_str(&format!("file {f}={}\n", sha256_hex(&data)?));
        }
        if let Some(a) = step.arg {
            text.push_str(&format!("arg={a}\n"));
        }
        for k in step.keys {
            text.push_str(&format!(
                "{k}={}\n",
                self.env.get(*k).map_or("", String::as_str)
            ));
        }
        for d in step.deps {
            let dk = self.key(d)?;
            text.push_str(&format!("dep {d}={dk}\n"));
        }
        let key = sha256_hex(text.as_bytes())?;
        self.keys.insert(name, key.clone());
        Ok(key)
    }

    /// Runs `wanted` and everything they depend on, in dependency order, skipping fresh steps.
    pub fn run_steps(&mut self, wanted: &[&str]) -> Result<()> {
        let mut order: Vec<&'static str> = Vec::new();
        for w in wanted {
            self.order(Self::step(w)?.name, &mut order)?;
        }
        for name in order {
            self.run_step(name)?;
        }
        Ok(())
    }

    fn order(&self, name: &'static str, out: &mut Vec<&'static str>) -> Result<()> {
        if out.contains(&name) {
            return Ok(());
        }
        for d in Self::step(name)?.deps {
            self.order(Self::step(d)?.name, out)?;
        }
        out.push(name);
        Ok(())
    }

    fn run_step(&mut self, name: &'static str) -> Result<()> {
        let step = Self::step(name)?;
        let key = self.key(name)?;
        let stamp_path = self.kit.stamp_path(name);
        if self.fresh(&stamp_path, &key) {
            self.report.push((name.into(), "cached".into()));
            return Ok(());
        }
        // A stale stamp must not survive a failed or interrupted run.
        let _ = std::fs::remove_file(&stamp_path);
        let work = self.kit.dir.join("work").join(name);
        std::fs::create_dir_all(&work)
            .with_context(|| format!("cannot create {}", work.display()))?;
        let info = self.kit.dir.join("work").join(format!("{name}.info"));
        std::fs::write(&info, "").with_context(|| format!("cannot create {}", info.display()))?;

        let mut cmd = Command::new("nice");
        cmd.args(["-n", "19", "bash"])
            .arg(self.kit.src.join(step.script));
        if let Some(a) = step.arg {
            cmd.arg(a);
        }
        cmd.envs(&self.env)
            .env("WORK_DIR", &work)
            .env("STEP_INFO", &info);
        let took = ui::run_step(name, step.what, &self.kit.log(name), &mut cmd)?;

        let outputs = (step.outputs)(&self.kit, &self.env)?;
        let stamp = self.record(name, &key, &outputs, &info, took)?;
        write_atomic(
            &stamp_path,
            serde_json::to_string_pretty(&stamp)?.as_bytes(),
        )?;
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_file(&info);
        self.record_timing(name, took);
        self.report
            .push((name.into(), format!("built in {}", fmt_duration(took))));
        Ok(())
    }

    /// A step's stamp after it ran: key, outputs with their hashes / image IDs, its info lines.
    fn record(
        &self,
        name: &str,
        key: &str,
        outputs: &Outputs,
        info: &Path,
        took: Duration,
    ) -> Result<Value> {
        for f in &outputs.files {
            if !f.is_file() {
                bail!(
                    "step `{name}` finished but did not produce {} (log: {})",
                    f.display(),
                    self.kit.log(name).display()
                );
            }
        }
        let refs: Vec<&Path> = outputs.files.iter().map(PathBuf::as_path).collect();
        let sums = sha256_files(&refs)?;
        let files: serde_json::Map<String, Value> = outputs
            .files
            .iter()
            .zip(sums)
            .map(|(f, s)| (f.to_string_lossy().into_owned(), Value::String(s)))
            .collect();
        let ids = host::image_ids(&outputs.images).with_context(|| {
            format!(
                "step `{name}` finished but its images are not all there: {} (log: {})",
                outputs.images.join(", "),
                self.kit.log(name).display()
            )
        })?;
        let images: serde_json::Map<String, Value> = outputs
            .images
            .iter()
            .zip(ids)
            .map(|(n, id)| (n.clone(), Value::String(id)))
            .collect();
        let mut infos = serde_json::Map::new();
        for line in std::fs::read_to_string(info).unwrap_or_default().lines() {
            if let Some((k, v)) = line.split_once('=') {
                infos.insert(k.to_owned(), Value::String(v.trim().to_owned()));
            }
        }
        let step = Self::step(name)?;
        let inputs: serde_json::Map<String, Value> = step
            .keys
            .iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    Value::String(self.env.get(*k).cloned().unwrap_or_default()),
                )
            })
            .collect();
        Ok(json!({
            "key": key,
            "inputs": inputs,
            "finished_unix": unix_now(),
            "seconds": (took.as_secs_f64() * 10.0).round() / 10.0,
            "files": files,
            "images": images,
            "info": infos,
        }))
    }

    /// The stamp has this key and its outputs are all still there.
    fn fresh(&self, stamp_path: &Path, key: &str) -> bool {
        let Some(stamp) = read_json(stamp_path) else {
            return false;
        };
        if stamp["key"].as_str() != Some(key) {
            return false;
        }
        let files_ok = stamp["files"]
            .as_object()
            .is_some_and(|m| m.keys().all(|f| Path::new(f).is_file()));
        let Some(images) = stamp["images"].as_object() else {
            return false;
        };
        let names: Vec<String> = images.keys().cloned().collect();
        let want: Vec<&str> = images.values().filter_map(Value::as_str).collect();
        files_ok
            && host::image_ids(&names)
                .is_ok_and(|have| have.iter().map(String::as_str).eq(want.iter().copied()))
    }

    /// Builds the release `netreach` binary and, if needed, `netreach-probe:<tag>`, where the tag
    /// is a short hash of the binary and the image recipe (a changed binary gives a new tag).
    pub fn probe_image(&mut self) -> Result<String> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| self.kit.root.join("target"), PathBuf::from);
        let mut cargo = Command::new("nice");
        cargo
            .args(["-n", "19"])
            .arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "netreach",
                "--bin",
                "netreach",
            ])
            .current_dir(&self.kit.root);
        let took = ui::run_step(
            "probe-binary",
            "cargo build --release -p netreach",
            &self.kit.log("probe-binary"),
            &mut cargo,
        )?;
        self.record_timing("probe-binary", took);
        self.report.push((
            "probe-binary".into(),
            format!("cargo build in {}", fmt_duration(took)),
        ));
        let bin = target.join("release/netreach");
        let bin_sha = sha256_files(&[&bin])?.remove(0);
        let mut recipe = String::new();
        for f in ["probe.Dockerfile", "probe-image.sh", "lib.sh"] {
            let p = self.kit.src.join(f);
            let data = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            recipe.push_str(&format!("{f}={}\n", sha256_hex(&data)?));
        }
        recipe.push_str(&format!("probe-base={}\n", self.key("probe-base")?));
        let recipe_sha = sha256_hex(recipe.as_bytes())?;
        let tag = sha256_hex(format!("{bin_sha}\n{recipe_sha}\n").as_bytes())?;
        let image = format!("{PROBE_REPO}:{}", &tag[..12]);
        if host::image_ids(std::slice::from_ref(&image)).is_ok() {
            self.report
                .push(("probe-image".into(), format!("cached ({image})")));
        } else {
            let mut cmd = Command::new("nice");
            cmd.args(["-n", "19", "bash"])
                .arg(self.kit.src.join("probe-image.sh"))
                .envs(&self.env)
                .env("WORK_DIR", self.kit.dir.join("work/probe-image"))
                .env("STEP_INFO", self.kit.dir.join("work/probe-image.info"))
                .env("PROBE_BIN", &bin)
                .env("PROBE_IMAGE", &image)
                .env(
                    "PROBE_LABELS",
                    format!(
                        "org.opencontainers.image.title=netreach-probe netreach.binary.sha256={bin_sha} netreach.recipe.sha256={recipe_sha}"
                    ),
                );
            let took = ui::run_step(
                "probe-image",
                "netreach probe image",
                &self.kit.log("probe-image"),
                &mut cmd,
            )?;
            self.report.push((
                "probe-image".into(),
                format!("built in {} ({image})", fmt_duration(took)),
            ));
        }
        prune_probe_images(&image);
        let id = host::image_ids(std::slice::from_ref(&image))?.remove(0);
        let probe = json!({"name": image, "id": id, "binary": bin, "binary_sha256": bin_sha, "recipe_sha256": recipe_sha});
        write_atomic(
            &self.kit.dir.join("out/probe-image.json"),
            serde_json::to_string_pretty(&probe)?.as_bytes(),
        )?;
        Ok(image)
    }

    /// `<kit>/manifest.json`: versions, host facts, every step's stamp, the probe image.
    fn write_manifest(&self, scope: Scope, probe_image: &str) -> Result<()> {
        let mut steps = serde_json::Map::new();
        for s in STEPS {
            if let Some(v) = read_json(&self.kit.stamp_path(s.name)) {
                steps.insert(s.name.into(), v);
            }
        }
        let manifest = json!({
            "kit_dir": self.kit.dir,
            "written_unix": unix_now(),
            "scope": format!("{scope:?}"),
            "versions": self.kit.versions(),
            "host": self.host.to_json(),
            "node_image": if scope == Scope::Full { Value::String(self.kit.node_image()) } else { Value::Null },
            "kind": self.kit.kind_bin(),
            "kubectl": self.kit.kubectl(),
            "probe_image": read_json(&self.kit.dir.join("out/probe-image.json")).unwrap_or(Value::Null),
            "probe_image_name": probe_image,
            "steps": steps,
        });
        write_atomic(
            &self.kit.manifest_path(),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )
    }

    fn print_report(&self) {
        let width = self.report.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, what) in &self.report {
            note(format!("  {name:<width$}  {what}"));
        }
    }
}

/// Probe images the kit built before, beyond the newest few, are removed from Docker (each
/// changed binary gives a new tag). Images in use by a container stay (`docker rmi` refuses).
fn prune_probe_images(current: &str) {
    const KEEP: usize = 3;
    let Ok(list) = crate::util::output(Command::new("docker").args([
        "images",
        "--filter",
        "label=org.opencontainers.image.title=netreach-probe",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])) else {
        return;
    };
    // newest first
    let old: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with(PROBE_REPO) && *l != current)
        .skip(KEEP - 1)
        .collect();
    if !old.is_empty() {
        let _ = crate::util::output(Command::new("docker").arg("rmi").args(&old));
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The current probe image as recorded by the last `kit` run, if any.
pub fn recorded_probe_image(kit: &Kit) -> Option<String> {
    read_json(&kit.dir.join("out/probe-image.json"))?["name"]
        .as_str()
        .map(str::to_owned)
}
