//! The host side of the kit: preflight checks, the Docker engine, the build tools.
//!
//! Size: ~960 lines of preflight facts and Docker decisions plus ~270 of unit tests that inject those facts; the rule reads best in one file.
//!
//! The rule for the Docker engine (README, "The offline kit"):
//! - An engine that **xtask installed or started itself** is xtask's to configure: where the
//!   host's capability bounding set lacks CAP_SYS_RESOURCE (bit 24 of `CapBnd`), xtask installs
//!   the runtime wrapper `xtask/kit/runc-nosysres`, registers it as dockerd's default runtime in
//!   /etc/docker/daemon.json and starts (or reloads) dockerd with it. Without the wrapper Docker
//!   20.10 cannot start privileged containers (kind nodes) on such hosts.
//! - An engine **the user runs** (or installed and left stopped) is never changed unless the user
//!   says so with `--configure-docker` (or `NETREACH_CONFIGURE_DOCKER=1`). Without it, a host that
//!   needs the wrapper stops in [`preflight`] — before any build — with the exact command to run.
//! - "xtask's" is recorded, not guessed: `/var/lib/netreach-xtask/docker-installed` when xtask
//!   installed Debian's `docker.io`, `/run/netreach-xtask/dockerd.pid` when it started dockerd
//!   (only while that process lives).
//!
//! [`decide`] is the whole decision, pure and unit-tested with injected [`Facts`];
//! [`prepare`] carries it out through [`HostOps`], so a test can prove that nothing runs before a
//! stop. [`preflight`] prints one line per cheap check (root, disk, Go, cgroups, ports, Docker)
//! before anything long starts.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::kit::Kit;
use crate::ui::{self, note};
use crate::util::{is_root, output, succeeds, write_atomic};

pub const WRAPPER_NAME: &str = "runc-nosysres";
const WRAPPER_PATH: &str = "/usr/local/libexec/runc-nosysres";
const DAEMON_JSON: &str = "/etc/docker/daemon.json";
/// Written when xtask installs Debian's docker.io: that engine is xtask's.
const INSTALLED_MARK: &str = "/var/lib/netreach-xtask/docker-installed";
/// Written when xtask starts dockerd (the pid); valid while that dockerd lives.
const STARTED_MARK: &str = "/run/netreach-xtask/dockerd.pid";
/// The flag that lets xtask change a Docker engine it did not install or start.
pub const CONFIGURE_FLAG: &str = "--configure-docker";
/// Free disk space a cold kit needs (Go caches, Kubernetes binaries, images), and a warm one.
const COLD_DISK_BYTES: u64 = 15 << 30;
const WARM_DISK_BYTES: u64 = 3 << 30;

/// Whether xtask may change a Docker engine the user runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DockerPermission {
    /// Only an engine xtask installed or started is configured (the default).
    #[default]
    OwnEngineOnly,
    /// `--configure-docker`: the user's engine may get the wrapper too (config merged and backed
    /// up, dockerd reloaded).
    MayConfigureUsers,
}

impl DockerPermission {
    /// `--configure-docker` among `args`, or `NETREACH_CONFIGURE_DOCKER=1`.
    pub fn from_args(args: &[String]) -> Self {
        let env = std::env::var("NETREACH_CONFIGURE_DOCKER").is_ok_and(|v| v == "1" || v == "true");
        if env || args.iter().any(|a| a == CONFIGURE_FLAG) {
            Self::MayConfigureUsers
        } else {
            Self::OwnEngineOnly
        }
    }
}

/// The Docker engine as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// `docker info` does not answer.
    NotRunning {
        /// `dockerd` is installed.
        dockerd_installed: bool,
        /// xtask installed it (its mark is there).
        installed_by_xtask: bool,
    },
    /// `docker info` answers.
    Running {
        /// `docker info`'s DefaultRuntime.
        default_runtime: String,
        /// xtask installed it, or started the dockerd that answers.
        ours: bool,
    },
}

/// What the host is, as far as the kit cares. Gathered by [`Facts::gather`] without changing
/// anything; tests build it by hand.
#[derive(Debug, Clone)]
pub struct Facts {
    pub root: bool,
    /// `CapBnd` of /proc/self/status, hex.
    pub capbnd: String,
    /// CAP_SYS_RESOURCE is in the capability bounding set.
    pub cap_sys_resource: bool,
    pub engine: Engine,
    /// Debian packages the kit needs and the host lacks (docker.io not included).
    pub missing_packages: Vec<&'static str>,
    pub apt_get: bool,
    /// `go env GOVERSION`, if Go is installed.
    pub go_version: Option<String>,
    /// daemon.json already names the wrapper as default runtime (whoever put it there).
    pub wrapper_configured: bool,
}

/// What to do with the Docker engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnginePlan {
    /// Use it as it is.
    AsIs,
    /// Install docker.io if needed, register the wrapper if needed, start dockerd.
    Start {
        install_package: bool,
        install_wrapper: bool,
    },
    /// Register the wrapper in a running engine and reload it (SIGHUP). `users`: the engine is
    /// the user's and `--configure-docker` allowed it.
    Reconfigure { users: bool },
}

/// The Docker decision (see the module docs). `Err` is the stop message, with the command to
/// run; it is returned before anything was changed or built.
pub fn decide(facts: &Facts, perm: DockerPermission) -> Result<EnginePlan, String> {
    let needs_wrapper = !facts.cap_sys_resource;
    let allowed = perm == DockerPermission::MayConfigureUsers;
    let stop = |what: &str| {
        format!(
            "this host's capability bounding set ({}) lacks CAP_SYS_RESOURCE, so Docker can only start \
             privileged containers (kind nodes) through the {WRAPPER_NAME} runtime wrapper, and {what}. \
             It is yours, so xtask does not change it unasked. Run the same command with `{CONFIGURE_FLAG}` \
             (e.g. `cargo xtask run {CONFIGURE_FLAG}`): xtask then installs {WRAPPER_PATH}, merges it into \
             {DAEMON_JSON} as default-runtime (backing the file up) and reloads dockerd; or make your \
             runtime drop CAP_SYS_RESOURCE yourself. Nothing was built or changed.",
            facts.capbnd
        )
    };
    match &facts.engine {
        Engine::Running {
            default_runtime,
            ours,
        } => {
            if !needs_wrapper || default_runtime == WRAPPER_NAME {
                Ok(EnginePlan::AsIs)
            } else if *ours {
                Ok(EnginePlan::Reconfigure { users: false })
            } else if allowed {
                Ok(EnginePlan::Reconfigure { users: true })
            } else {
                Err(stop(&format!(
                    "the running Docker engine (default runtime `{default_runtime}`) was not installed or started by xtask"
                )))
            }
        }
        Engine::NotRunning {
            dockerd_installed,
            installed_by_xtask,
        } => {
            let ours = !dockerd_installed || *installed_by_xtask;
            let install_wrapper = needs_wrapper && !facts.wrapper_configured;
            if install_wrapper && !ours && !allowed {
                return Err(stop(
                    "the installed (stopped) Docker engine was not installed by xtask",
                ));
            }
            Ok(EnginePlan::Start {
                install_package: !dockerd_installed,
                install_wrapper,
            })
        }
    }
}

/// The wrapper is already dockerd's default runtime in daemon.json.
fn wrapper_registered() -> bool {
    std::fs::read(DAEMON_JSON)
        .ok()
        .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
        .is_some_and(|v| v["default-runtime"] == WRAPPER_NAME)
}

/// The actions [`prepare`] may take (a test double records them).
pub trait HostOps {
    fn install_packages(&mut self, packages: &[&str]) -> Result<()>;
    fn create_lib_modules(&mut self) -> Result<()>;
    fn install_wrapper(&mut self) -> Result<()>;
    fn start_dockerd(&mut self) -> Result<()>;
    fn reload_dockerd(&mut self) -> Result<()>;
}

/// Carries out the host part of the kit, then `build`: checks what must hold (root, Go, apt),
/// decides about the Docker engine, installs and starts what is missing, and only then calls
/// `build` (the kit's steps). Every stop happens before the first action, so before any build.
pub fn prepare<T>(
    facts: &Facts,
    perm: DockerPermission,
    min_go: &str,
    ops: &mut dyn HostOps,
    build: impl FnOnce(&EnginePlan) -> Result<T>,
) -> Result<T> {
    if !facts.root {
        bail!(
            "the kit builds root filesystems (debootstrap, chroot) and may install packages: \
             run it as root (CI does)"
        );
    }
    match &facts.go_version {
        None => bail!(
            "the kit builds kind and Kubernetes with Go from the module proxy: install Go >= {min_go} \
             (`go env GOVERSION` failed)"
        ),
        Some(v) => check_go(v, min_go)?,
    }
    let plan = decide(facts, perm).map_err(anyhow::Error::msg)?;
    let mut packages = facts.missing_packages.clone();
    if matches!(
        plan,
        EnginePlan::Start {
            install_package: true,
            ..
        }
    ) {
        packages.push("docker.io");
    }
    if !packages.is_empty() && !facts.apt_get {
        bail!(
            "the kit needs these Debian packages and there is no apt-get to install them: {}",
            packages.join(" ")
        );
    }
    if !packages.is_empty() {
        ops.install_packages(&packages)?;
    }
    ops.create_lib_modules()?;
    match &plan {
        EnginePlan::AsIs => {}
        EnginePlan::Start {
            install_wrapper, ..
        } => {
            if *install_wrapper {
                ops.install_wrapper()?;
            }
            ops.start_dockerd()?;
        }
        EnginePlan::Reconfigure { .. } => {
            ops.install_wrapper()?;
            ops.reload_dockerd()?;
        }
    }
    build(&plan)
}

impl Facts {
    /// Reads the host without changing it.
    pub fn gather() -> Result<Self> {
        let (capbnd, cap_sys_resource) = capbnd()?;
        let engine = if docker_answers() {
            Engine::Running {
                default_runtime: docker_default_runtime().unwrap_or_default(),
                ours: Path::new(INSTALLED_MARK).exists() || started_dockerd_alive(),
            }
        } else {
            Engine::NotRunning {
                dockerd_installed: have("dockerd"),
                installed_by_xtask: Path::new(INSTALLED_MARK).exists(),
            }
        };
        let mut missing_packages = Vec::new();
        for (cmd, pkg) in [
            ("debootstrap", "debootstrap"),
            ("jq", "jq"),
            ("gcc", "gcc"),
            ("curl", "curl"),
        ] {
            if !have(cmd) {
                missing_packages.push(pkg);
            }
        }
        if !static_libc_present() {
            missing_packages.push("libc6-dev");
        }
        Ok(Self {
            root: is_root(),
            capbnd,
            cap_sys_resource,
            engine,
            missing_packages,
            apt_get: have("apt-get"),
            go_version: output(Command::new("go").args(["env", "GOVERSION"])).ok(),
            wrapper_configured: wrapper_registered(),
        })
    }

    /// The facts recorded in the kit manifest.
    pub fn to_json(&self) -> Value {
        let (server, runtime, cgroup) = docker_summary();
        json!({
            "docker_server": server,
            "docker_default_runtime": runtime,
            "docker_cgroup": cgroup,
            "go": self.go_version,
            "capbnd": self.capbnd,
            "cap_sys_resource_in_bounding_set": self.cap_sys_resource,
        })
    }
}

/// The capability bounding set (hex) and whether it has CAP_SYS_RESOURCE (bit 24).
pub fn capbnd() -> Result<(String, bool)> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    parse_capbnd(&status)
}

fn parse_capbnd(status: &str) -> Result<(String, bool)> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(str::trim)
        .context("no CapBnd line in /proc/self/status")?;
    let bits = u64::from_str_radix(hex, 16).with_context(|| format!("bad CapBnd `{hex}`"))?;
    Ok((hex.to_owned(), bits & (1 << 24) != 0))
}

fn have(cmd: &str) -> bool {
    succeeds(Command::new("sh").args(["-c", &format!("command -v {cmd}")]))
}

fn docker_answers() -> bool {
    succeeds(Command::new("docker").arg("info"))
}

fn started_dockerd_alive() -> bool {
    std::fs::read_to_string(STARTED_MARK)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "dockerd")
        })
}

/// (server version, default runtime, cgroup driver/version) of the running engine.
fn docker_summary() -> (String, String, String) {
    let info = output(Command::new("docker").args([
        "info",
        "--format",
        "{{.ServerVersion}}|{{.DefaultRuntime}}|{{.CgroupDriver}}/v{{.CgroupVersion}}",
    ]))
    .unwrap_or_default();
    let mut parts = info.split('|').map(str::to_owned);
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

fn static_libc_present() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/libc.a",
        "/usr/lib/aarch64-linux-gnu/libc.a",
        "/usr/lib/libc.a",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

fn check_go(version: &str, min: &str) -> Result<()> {
    let num = |s: &str| -> Vec<u32> {
        s.trim_start_matches("go")
            .split(['.', '-', ' '])
            .map_while(|p| p.parse().ok())
            .collect()
    };
    if num(version) < num(min) {
        bail!("the kit needs Go >= {min} (kube-router declares it); found {version}");
    }
    Ok(())
}

fn docker_default_runtime() -> Option<String> {
    output(Command::new("docker").args(["info", "--format", "{{.DefaultRuntime}}"])).ok()
}

/// The real [`HostOps`].
#[derive(Debug)]
pub struct RealHost<'a> {
    pub kit: &'a Kit,
}

impl HostOps for RealHost<'_> {
    fn install_packages(&mut self, packages: &[&str]) -> Result<()> {
        let script = format!(
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {}",
            packages.join(" ")
        );
        ui::run_step(
            "host-packages",
            &format!("apt-get install {}", packages.join(" ")),
            &self.kit.log("host-packages"),
            Command::new("sh").args(["-c", &script]),
        )?;
        if packages.contains(&"docker.io") {
            mark(
                INSTALLED_MARK,
                "installed by `cargo xtask` (apt-get install docker.io)\n",
            )?;
        }
        Ok(())
    }

    fn create_lib_modules(&mut self) -> Result<()> {
        // kind bind-mounts /lib/modules into its nodes; kernels without loadable modules lack it.
        if !Path::new("/lib/modules").exists() {
            std::fs::create_dir_all("/lib/modules")
                .context("cannot create /lib/modules (kind mounts it)")?;
            note("host: created the empty /lib/modules (kind bind-mounts it into its nodes)");
        }
        Ok(())
    }

    fn install_wrapper(&mut self) -> Result<()> {
        install_wrapper(self.kit)
    }

    fn start_dockerd(&mut self) -> Result<()> {
        start_dockerd(self.kit)
    }

    fn reload_dockerd(&mut self) -> Result<()> {
        reload_dockerd()
    }
}

fn mark(path: &str, text: &str) -> Result<()> {
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {path}"))
}

/// Installs the wrapper and registers it as dockerd's default runtime in daemon.json (merged;
/// the original is backed up once).
fn install_wrapper(kit: &Kit) -> Result<()> {
    let src = kit.src.join(WRAPPER_NAME);
    std::fs::create_dir_all("/usr/local/libexec").context("cannot create /usr/local/libexec")?;
    output(
        Command::new("install")
            .args(["-m", "0755"])
            .arg(&src)
            .arg(WRAPPER_PATH),
    )?;
    let mut cfg: Value = match std::fs::read(DAEMON_JSON) {
        Ok(data) => {
            let backup = format!("{DAEMON_JSON}.netreach-backup");
            if !Path::new(&backup).exists() {
                std::fs::write(&backup, &data).with_context(|| format!("cannot write {backup}"))?;
            }
            serde_json::from_slice(&data).with_context(|| format!("{DAEMON_JSON} is not JSON"))?
        }
        Err(_) => json!({}),
    };
    let merged = merge_daemon_json(&mut cfg)?;
    std::fs::create_dir_all("/etc/docker").context("cannot create /etc/docker")?;
    if merged {
        write_atomic(
            Path::new(DAEMON_JSON),
            serde_json::to_string_pretty(&cfg)?.as_bytes(),
        )?;
    }
    note(format!(
        "docker: {WRAPPER_PATH} installed and registered as dockerd's default runtime in {DAEMON_JSON} \
         (this host's bounding set lacks CAP_SYS_RESOURCE)"
    ));
    Ok(())
}

/// Adds the wrapper to `runtimes` and makes it `default-runtime`; `Ok(false)` when it already
/// was. A different default runtime is never overridden.
fn merge_daemon_json(cfg: &mut Value) -> Result<bool> {
    let obj = cfg
        .as_object_mut()
        .with_context(|| format!("{DAEMON_JSON} is not a JSON object"))?;
    if let Some(rt) = obj.get("default-runtime").and_then(Value::as_str)
        && rt != WRAPPER_NAME
    {
        bail!(
            "{DAEMON_JSON} already sets default-runtime `{rt}`; not overriding it. This host lacks \
             CAP_SYS_RESOURCE: make that runtime drop it from privileged containers, or use {WRAPPER_PATH}"
        );
    }
    let before = Value::Object(obj.clone());
    let runtimes = obj.entry("runtimes").or_insert_with(|| json!({}));
    let runtimes = runtimes
        .as_object_mut()
        .with_context(|| format!("{DAEMON_JSON}: `runtimes` is not an object"))?;
    runtimes.insert(WRAPPER_NAME.into(), json!({ "path": WRAPPER_PATH }));
    obj.insert("default-runtime".into(), json!(WRAPPER_NAME));
    Ok(Value::Object(obj.clone()) != before)
}

fn start_dockerd(kit: &Kit) -> Result<()> {
    let log_path = kit.log("dockerd");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let err = log.try_clone()?;
    // setsid: its own session, so it outlives this process and the terminal.
    let child = Command::new("setsid")
        .arg("dockerd")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .context("cannot start dockerd")?;
    let wait = ui::Waiting::new("docker: starting dockerd");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !docker_answers() {
        if Instant::now() > deadline {
            wait.done();
            bail!(
                "dockerd did not answer `docker info` within 90 s; its log: {}\n{}",
                log_path.display(),
                crate::util::tail(&log_path, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = wait.done();
    // setsid execs dockerd in place (it is not a group leader when spawned): same pid.
    mark(STARTED_MARK, &format!("{}\n", child.id()))?;
    note(format!(
        "docker: dockerd started by xtask in {} (detached; log {})",
        crate::util::fmt_duration(took),
        log_path.display()
    ));
    Ok(())
}

/// Makes a running dockerd re-read daemon.json (`runtimes` and `default-runtime` are reloadable
/// with SIGHUP), then checks that the wrapper is its default runtime.
fn reload_dockerd() -> Result<()> {
    let pid = std::fs::read_to_string("/var/run/docker.pid")
        .ok()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .or_else(|| output(Command::new("pidof").arg("dockerd")).ok())
        .context("cannot find dockerd's pid (/var/run/docker.pid, pidof dockerd) to reload it")?;
    output(Command::new("kill").args(["-HUP", &pid]))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if docker_default_runtime().as_deref() == Some(WRAPPER_NAME) {
            note(format!(
                "docker: dockerd (pid {pid}) reloaded; default runtime is now {WRAPPER_NAME}"
            ));
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "dockerd (pid {pid}) did not take {WRAPPER_NAME} as its default runtime after SIGHUP \
                 (is `--default-runtime` set on its command line?); restart dockerd so it reads {DAEMON_JSON}"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// One line of the preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub line: String,
}

/// The cheap checks, each one line, run before anything long. `cold`: steps that take minutes
/// are about to be built (more disk needed). Fails (after printing all of them) when one does.
pub fn preflight(kit: &Kit, facts: &Facts, perm: DockerPermission, cold: bool) -> Result<()> {
    let mut checks = Vec::new();
    checks.push(Check {
        name: "root",
        ok: facts.root,
        line: if facts.root {
            "running as root (debootstrap, chroot, Docker)".into()
        } else {
            "not root: the kit needs root (debootstrap, chroot, Docker)".into()
        },
    });
    let need = if cold {
        COLD_DISK_BYTES
    } else {
        WARM_DISK_BYTES
    };
    let mut dirs = vec![kit.dir.clone()];
    dirs.push(match &facts.engine {
        Engine::Running { .. } => {
            output(Command::new("docker").args(["info", "--format", "{{.DockerRootDir}}"]))
                .map_or_else(|_| PathBuf::from("/var/lib/docker"), PathBuf::from)
        }
        Engine::NotRunning { .. } => PathBuf::from("/var/lib/docker"),
    });
    for d in dirs {
        checks.push(disk_check(&d, need, cold));
    }
    let min_go = kit.v("GO_MIN_VERSION");
    checks.push(match &facts.go_version {
        None => Check {
            name: "go",
            ok: false,
            line: format!("Go: not found; the kit needs Go >= {min_go}"),
        },
        Some(v) => match check_go(v, min_go) {
            Ok(()) => Check {
                name: "go",
                ok: true,
                line: format!("Go: {v} (>= {min_go})"),
            },
            Err(e) => Check {
                name: "go",
                ok: false,
                line: format!("Go: {e}"),
            },
        },
    });
    checks.push(cgroup_check(kit.v("K8S_VERSION")));
    checks.push(ports_check(&kit.root.join("kind-config.yaml")));
    checks.push(match decide(facts, perm) {
        Ok(plan) => Check {
            name: "docker",
            ok: true,
            line: format!("Docker: {}", describe_plan(facts, &plan)),
        },
        Err(e) => Check {
            name: "docker",
            ok: false,
            line: format!("Docker: {e}"),
        },
    });
    let mut failed = Vec::new();
    for c in &checks {
        note(format!(
            "preflight: {} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.line
        ));
        if !c.ok {
            failed.push(c.name);
        }
    }
    if !failed.is_empty() {
        bail!(
            "preflight failed ({}): nothing was built; see the FAIL lines above",
            failed.join(", ")
        );
    }
    Ok(())
}

fn describe_plan(facts: &Facts, plan: &EnginePlan) -> String {
    let cap = if facts.cap_sys_resource {
        "the bounding set has CAP_SYS_RESOURCE, no wrapper needed".to_owned()
    } else {
        format!("the bounding set ({}) lacks CAP_SYS_RESOURCE", facts.capbnd)
    };
    match plan {
        EnginePlan::AsIs => match &facts.engine {
            Engine::Running {
                default_runtime, ..
            } => {
                format!("engine running, default runtime `{default_runtime}`; {cap}; used as it is")
            }
            Engine::NotRunning { .. } => format!("{cap}; used as it is"),
        },
        EnginePlan::Start {
            install_package,
            install_wrapper,
        } => format!(
            "no engine running; xtask will {}{}start dockerd itself ({cap}), so it is xtask's to configure",
            if *install_package {
                "install Debian's docker.io, "
            } else {
                ""
            },
            if *install_wrapper {
                format!("register {WRAPPER_NAME}, ")
            } else {
                String::new()
            }
        ),
        EnginePlan::Reconfigure { users: false } => format!(
            "the engine xtask started lacks {WRAPPER_NAME} ({cap}): xtask registers it and reloads dockerd"
        ),
        EnginePlan::Reconfigure { users: true } => format!(
            "{CONFIGURE_FLAG}: your engine gets {WRAPPER_NAME} as default runtime ({cap}); {DAEMON_JSON} is \
             merged (backup {DAEMON_JSON}.netreach-backup) and dockerd reloaded"
        ),
    }
}

/// Free space at `dir` (or the nearest existing parent), from `df`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let mut d = dir.to_path_buf();
    while !d.exists() {
        d = d.parent()?.to_path_buf();
    }
    let out = output(Command::new("df").args(["-Pk"]).arg(&d)).ok()?;
    parse_df_avail(&out)
}

fn parse_df_avail(df: &str) -> Option<u64> {
    let line = df.lines().nth(1)?;
    let kb: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kb * 1024)
}

fn disk_check(dir: &Path, need: u64, cold: bool) -> Check {
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    match free_bytes(dir) {
        Some(free) => Check {
            name: "disk",
            ok: free >= need,
            line: format!(
                "disk: {:.1} GiB free at {} ({} needs {:.0} GiB)",
                gib(free),
                dir.display(),
                if cold { "a cold kit" } else { "a warm kit" },
                gib(need)
            ),
        },
        None => Check {
            name: "disk",
            ok: true,
            line: format!(
                "disk: cannot tell the free space at {} (df failed)",
                dir.display()
            ),
        },
    }
}

/// The cgroup layout, and whether the pinned Kubernetes runs on it.
fn cgroup_check(k8s: &str) -> Check {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let hybrid = Path::new("/sys/fs/cgroup/unified").exists();
    cgroup_verdict(v2, hybrid, k8s)
}

fn cgroup_verdict(v2: bool, hybrid: bool, k8s: &str) -> Check {
    let minor: u32 = k8s
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if v2 {
        return Check {
            name: "cgroup",
            ok: true,
            line: "cgroups: v2 (unified)".into(),
        };
    }
    let layout = if hybrid {
        "v1 (hybrid, cgroup2 at /sys/fs/cgroup/unified)"
    } else {
        "v1"
    };
    Check {
        name: "cgroup",
        ok: minor < 35,
        line: if minor < 35 {
            format!("cgroups: {layout}; kubelet {k8s} accepts v1 with a warning")
        } else {
            format!("cgroups: {layout}; kubelet {k8s} refuses v1 (needs failCgroupV1: false)")
        },
    }
}

/// kind picks a free API server port unless kind-config.yaml pins ports; pinned ones must be free.
fn ports_check(config: &Path) -> Check {
    let text = std::fs::read_to_string(config).unwrap_or_default();
    let ports = pinned_ports(&text);
    if ports.is_empty() {
        return Check {
            name: "ports",
            ok: true,
            line: format!(
                "ports: {} pins none (kind picks a free API server port)",
                config
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ),
        };
    }
    let busy: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err())
        .collect();
    Check {
        name: "ports",
        ok: busy.is_empty(),
        line: if busy.is_empty() {
            format!("ports: {ports:?} (pinned in kind-config.yaml) are free")
        } else {
            format!("ports: {busy:?} (pinned in kind-config.yaml) are in use")
        },
    }
}

/// `apiServerPort:` and `hostPort:` values of a kind config.
fn pinned_ports(text: &str) -> Vec<u16> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| {
            l.strip_prefix("apiServerPort:")
                .or_else(|| l.strip_prefix("hostPort:"))
                .or_else(|| l.strip_prefix("- hostPort:"))
        })
        .filter_map(|v| v.trim().parse().ok())
        .filter(|&p: &u16| p != 0)
        .collect()
}

/// The IDs of local Docker images, in order; an error when any is missing.
pub fn image_ids(names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = output(
        Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}"])
            .args(names),
    )?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// Checks, in about a second, that Docker can start a privileged container (kind nodes are
/// privileged): an empty image with the host's /usr bind-mounted read-only runs `/usr/bin/true`.
/// Runs before any build, so a Docker that cannot do it stops the kit at once.
pub fn check_privileged_now() -> Result<()> {
    const IMAGE: &str = "netreach-kit/privileged-check:empty";
    if image_ids(&[IMAGE.to_owned()]).is_err() {
        // An empty layer: `docker import` of a tar archive with no members.
        crate::util::output_with_input(
            Command::new("docker").args(["import", "-", IMAGE]),
            &"\0".repeat(1024),
        )
        .context("cannot create the empty image of the privileged-container check")?;
    }
    let mut args: Vec<String> = Vec::new();
    for dir in ["/usr", "/lib", "/lib64", "/bin"] {
        if Path::new(dir).exists() {
            args.extend(["-v".into(), format!("{dir}:{dir}:ro")]);
        }
    }
    args.extend(["--entrypoint".into(), "/usr/bin/true".into(), IMAGE.into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    check_privileged_with(&refs)?;
    note("preflight: ok   Docker started a privileged container (kind nodes are privileged)");
    Ok(())
}

/// Checks that Docker can start a privileged container from `image` (kind nodes are privileged).
pub fn check_privileged(image: &str) -> Result<()> {
    check_privileged_with(&["--entrypoint", "/bin/true", image])
}

fn check_privileged_with(args: &[&str]) -> Result<()> {
    let out = Command::new("docker")
        .args(["run", "--rm", "--privileged", "--network", "none"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run docker")?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let hint = if err.contains("unable to apply caps") {
        format!(
            "\nThis host's capability bounding set lacks a capability Docker gives privileged containers \
             (CAP_SYS_RESOURCE here) and dockerd's default runtime does not drop it: run the same command \
             with `{CONFIGURE_FLAG}` to have the {WRAPPER_NAME} runtime wrapper registered, or configure \
             the engine yourself."
        )
    } else {
        String::new()
    };
    bail!(
        "Docker cannot start a privileged container (kind nodes are privileged): {}{hint}",
        err.trim()
    )
}

/// The machine-wide lock of the kit and cluster tasks (see [`machine_lock`]), and how many
/// holders in this process share it.
static LOCK: Mutex<Option<(File, usize)>> = Mutex::new(None);

/// Held while a task builds images or changes clusters. Docker image names and kind clusters are
/// per machine (whatever `NETREACH_KIT_DIR` is), so two runs at once (a CI job beside a developer)
/// would overwrite each other's images or create the same cluster twice: the second one waits.
/// Re-entrant within this process; released when the last guard is dropped.
#[derive(Debug)]
pub struct MachineLock(());

pub fn machine_lock() -> Result<MachineLock> {
    let mut held = LOCK
        .lock()
        .map_err(|_| anyhow::anyhow!("the machine lock's state is poisoned"))?;
    if let Some((_, n)) = held.as_mut() {
        *n += 1;
        return Ok(MachineLock(()));
    }
    let path = std::env::temp_dir().join("netreach-xtask.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if file.try_lock().is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let wait = ui::Waiting::new(&format!(
            "waiting for another netreach xtask run ({}) holding {}",
            holder.trim(),
            path.display()
        ));
        let r = file.lock();
        wait.done();
        r.with_context(|| format!("cannot lock {}", path.display()))?;
    }
    let _ = std::fs::write(
        &path,
        format!(
            "pid {} `cargo xtask {}`",
            std::process::id(),
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        ),
    );
    *held = Some((file, 1));
    Ok(MachineLock(()))
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        if let Ok(mut held) = LOCK.lock()
            && let Some((_, n)) = held.as_mut()
        {
            *n -= 1;
            if *n == 0 {
                *held = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This project's machines: no CAP_SYS_RESOURCE in the bounding set.
    const NO_SYSRES: &str = "000001fffeffffff";
    const FULL: &str = "000001ffffffffff";

    fn facts(capbnd: &str, engine: Engine) -> Facts {
        let (capbnd, cap) = parse_capbnd(&format!("Name:\tx\nCapBnd:\t{capbnd}\n")).expect("ok");
        Facts {
            root: true,
            capbnd,
            cap_sys_resource: cap,
            engine,
            missing_packages: vec![],
            apt_get: true,
            go_version: Some("go1.26.8".into()),
            wrapper_configured: false,
        }
    }

    fn running(runtime: &str, ours: bool) -> Engine {
        Engine::Running {
            default_runtime: runtime.into(),
            ours,
        }
    }

    const FRESH: Engine = Engine::NotRunning {
        dockerd_installed: false,
        installed_by_xtask: false,
    };

    /// Records what `prepare` did, and whether the build that follows it ran.
    #[derive(Default, Debug)]
    struct Recorder {
        actions: Vec<String>,
    }

    impl HostOps for Recorder {
        fn install_packages(&mut self, p: &[&str]) -> Result<()> {
            self.actions.push(format!("install {}", p.join(" ")));
            Ok(())
        }
        fn create_lib_modules(&mut self) -> Result<()> {
            self.actions.push("lib-modules".into());
            Ok(())
        }
        fn install_wrapper(&mut self) -> Result<()> {
            self.actions.push("wrapper".into());
            Ok(())
        }
        fn start_dockerd(&mut self) -> Result<()> {
            self.actions.push("start".into());
            Ok(())
        }
        fn reload_dockerd(&mut self) -> Result<()> {
            self.actions.push("reload".into());
            Ok(())
        }
    }

    /// `prepare` with a build that records that it ran: the plan, the host actions, and whether
    /// the build ran.
    fn run(f: &Facts, perm: DockerPermission) -> (Result<EnginePlan>, Vec<String>, bool) {
        let mut rec = Recorder::default();
        let mut built = false;
        let r = prepare(f, perm, "1.26", &mut rec, |plan| {
            built = true;
            Ok(plan.clone())
        });
        (r, rec.actions, built)
    }

    #[test]
    fn capbnd_bit_24() {
        assert!(!parse_capbnd("CapBnd:\t000001fffeffffff\n").expect("ok").1);
        assert!(parse_capbnd("CapBnd:\t000001ffffffffff\n").expect("ok").1);
        assert!(parse_capbnd("Name: x\n").is_err());
    }

    #[test]
    fn fresh_machine_without_the_capability_gets_docker_and_the_wrapper() {
        let (r, actions, built) = run(&facts(NO_SYSRES, FRESH), DockerPermission::OwnEngineOnly);
        assert_eq!(
            r.expect("ok"),
            EnginePlan::Start {
                install_package: true,
                install_wrapper: true
            }
        );
        assert_eq!(
            actions,
            ["install docker.io", "lib-modules", "wrapper", "start"]
        );
        assert!(built);
    }

    #[test]
    fn fresh_machine_with_the_capability_gets_no_wrapper() {
        let (r, actions, _) = run(&facts(FULL, FRESH), DockerPermission::OwnEngineOnly);
        assert_eq!(
            r.expect("ok"),
            EnginePlan::Start {
                install_package: true,
                install_wrapper: false
            }
        );
        assert_eq!(actions, ["install docker.io", "lib-modules", "start"]);
    }

    #[test]
    fn an_engine_xtask_installed_is_started_with_the_wrapper() {
        let f = facts(
            NO_SYSRES,
            Engine::NotRunning {
                dockerd_installed: true,
                installed_by_xtask: true,
            },
        );
        let (r, actions, _) = run(&f, DockerPermission::OwnEngineOnly);
        assert!(matches!(
            r.expect("ok"),
            EnginePlan::Start {
                install_package: false,
                install_wrapper: true
            }
        ));
        assert_eq!(actions, ["lib-modules", "wrapper", "start"]);
    }

    #[test]
    fn a_users_stopped_engine_is_started_as_it_is_or_not_at_all() {
        let users = Engine::NotRunning {
            dockerd_installed: true,
            installed_by_xtask: false,
        };
        let (r, actions, built) = run(
            &facts(NO_SYSRES, users.clone()),
            DockerPermission::OwnEngineOnly,
        );
        assert!(format!("{:#}", r.expect_err("a stop")).contains("not installed by xtask"));
        assert!(actions.is_empty() && !built);
        let mut f = facts(NO_SYSRES, users.clone());
        f.wrapper_configured = true;
        let (r, actions, _) = run(&f, DockerPermission::OwnEngineOnly);
        assert!(matches!(
            r.expect("ok"),
            EnginePlan::Start {
                install_package: false,
                install_wrapper: false
            }
        ));
        assert_eq!(actions, ["lib-modules", "start"]);
        let (r, _, _) = run(&facts(FULL, users), DockerPermission::OwnEngineOnly);
        assert!(matches!(
            r.expect("ok"),
            EnginePlan::Start {
                install_wrapper: false,
                ..
            }
        ));
    }

    #[test]
    fn our_running_engine_without_the_wrapper_is_reconfigured() {
        let (r, actions, _) = run(
            &facts(NO_SYSRES, running("runc", true)),
            DockerPermission::OwnEngineOnly,
        );
        assert_eq!(r.expect("ok"), EnginePlan::Reconfigure { users: false });
        assert_eq!(actions, ["lib-modules", "wrapper", "reload"]);
    }

    #[test]
    fn a_users_engine_that_needs_the_wrapper_stops_before_anything_runs() {
        let (r, actions, built) = run(
            &facts(NO_SYSRES, running("runc", false)),
            DockerPermission::OwnEngineOnly,
        );
        let msg = format!("{:#}", r.expect_err("a stop"));
        assert!(msg.contains("--configure-docker"), "{msg}");
        assert!(msg.contains("cargo xtask run --configure-docker"), "{msg}");
        assert!(msg.contains(NO_SYSRES), "{msg}");
        assert!(actions.is_empty(), "{actions:?}");
        assert!(!built, "no build step may run before the stop");
    }

    #[test]
    fn a_users_engine_is_reconfigured_only_with_the_flag() {
        let (r, actions, _) = run(
            &facts(NO_SYSRES, running("runc", false)),
            DockerPermission::MayConfigureUsers,
        );
        assert_eq!(r.expect("ok"), EnginePlan::Reconfigure { users: true });
        assert_eq!(actions, ["lib-modules", "wrapper", "reload"]);
    }

    #[test]
    fn an_engine_that_does_not_need_the_wrapper_or_has_it_is_left_alone() {
        for f in [
            facts(FULL, running("runc", false)),
            facts(NO_SYSRES, running(WRAPPER_NAME, false)),
            facts(NO_SYSRES, running(WRAPPER_NAME, true)),
        ] {
            let (r, actions, built) = run(&f, DockerPermission::OwnEngineOnly);
            assert_eq!(r.expect("ok"), EnginePlan::AsIs);
            assert_eq!(actions, ["lib-modules"]);
            assert!(built);
        }
    }

    #[test]
    fn missing_go_or_root_stops_before_anything_runs() {
        let mut f = facts(NO_SYSRES, FRESH);
        f.go_version = Some("go1.22.1".into());
        let (r, actions, built) = run(&f, DockerPermission::OwnEngineOnly);
        assert!(format!("{:#}", r.expect_err("a stop")).contains("Go >= 1.26"));
        assert!(actions.is_empty() && !built);
        let mut f = facts(NO_SYSRES, FRESH);
        f.root = false;
        let (r, actions, _) = run(&f, DockerPermission::OwnEngineOnly);
        assert!(format!("{:#}", r.expect_err("a stop")).contains("root"));
        assert!(actions.is_empty());
        let mut f = facts(NO_SYSRES, FRESH);
        f.go_version = None;
        assert!(run(&f, DockerPermission::OwnEngineOnly).0.is_err());
    }

    #[test]
    fn packages_without_apt_stop() {
        let mut f = facts(FULL, FRESH);
        f.apt_get = false;
        let (r, actions, _) = run(&f, DockerPermission::OwnEngineOnly);
        assert!(format!("{:#}", r.expect_err("a stop")).contains("docker.io"));
        assert!(actions.is_empty());
    }

    #[test]
    fn daemon_json_is_merged_never_overridden() {
        let mut cfg = json!({"log-level": "warn", "runtimes": {"other": {"path": "/x"}}});
        assert!(merge_daemon_json(&mut cfg).expect("ok"));
        assert_eq!(cfg["log-level"], "warn");
        assert_eq!(cfg["runtimes"]["other"]["path"], "/x");
        assert_eq!(cfg["default-runtime"], WRAPPER_NAME);
        assert!(
            !merge_daemon_json(&mut cfg).expect("ok"),
            "a second merge changes nothing"
        );
        let mut other = json!({"default-runtime": "crun"});
        assert!(merge_daemon_json(&mut other).is_err());
    }

    #[test]
    fn preflight_parsers() {
        let df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 264000000 12000000 83886080 13% /\n";
        assert_eq!(parse_df_avail(df), Some(83_886_080 * 1024));
        assert_eq!(parse_df_avail("garbage"), None);
        assert_eq!(
            pinned_ports("networking:\n  apiServerPort: 6443 # x\nnodes:\n  - role: worker\n"),
            [6443]
        );
        assert_eq!(
            pinned_ports("extraPortMappings:\n  - containerPort: 80\n    hostPort: 8080\n"),
            [8080]
        );
        assert!(pinned_ports("# apiServerPort: 1\nkind: Cluster\n").is_empty());
        assert!(cgroup_verdict(false, true, "v1.34.10").ok);
        assert!(!cgroup_verdict(false, true, "v1.35.0").ok);
        assert!(cgroup_verdict(true, false, "v1.35.0").ok);
    }
}
