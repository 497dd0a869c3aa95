//! The host side of the kit: the Docker engine and the build tools.
//!
//! - A Docker engine that already answers `docker info` is left exactly as it is.
//! - Otherwise Debian's `docker.io` is installed if missing and `dockerd` is started detached
//!   (its log in `<kit>/logs/dockerd.log`).
//! - Only with `--offline`, and only where the host's capability bounding set lacks
//!   CAP_SYS_RESOURCE (bit 24 of `CapBnd` in /proc/self/status), the runtime wrapper
//!   `xtask/kit/runc-nosysres` is installed and registered in /etc/docker/daemon.json (merged into
//!   an existing file, which is backed up; an existing different `default-runtime` is an error),
//!   before dockerd is started. Without it Docker 20.10 cannot start privileged containers (kind
//!   nodes) on such hosts. Nothing rewrites a Docker configuration unasked.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::kit::Kit;
use crate::ui::{self, note};
use crate::util::{is_root, output, succeeds, write_atomic};

const WRAPPER_NAME: &str = "runc-nosysres";
const WRAPPER_PATH: &str = "/usr/local/libexec/runc-nosysres";
const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// What the kit records about the host.
#[derive(Debug, Clone)]
pub struct Facts {
    pub docker_server: String,
    pub docker_runtime: String,
    pub docker_cgroup: String,
    pub go_version: String,
    pub capbnd: String,
    /// CAP_SYS_RESOURCE is in the capability bounding set.
    pub cap_sys_resource: bool,
}

impl Facts {
    pub fn to_json(&self) -> Value {
        json!({
            "docker_server": self.docker_server,
            "docker_default_runtime": self.docker_runtime,
            "docker_cgroup": self.docker_cgroup,
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

/// Makes sure the Docker engine runs and the build tools are there; returns the host facts.
pub fn ensure(kit: &Kit, allow_docker_config: bool) -> Result<Facts> {
    if !is_root() {
        bail!(
            "the kit builds root filesystems (debootstrap, chroot) and may install packages: \
             run it as root (CI does)"
        );
    }
    let (capbnd, cap_sys_resource) = capbnd()?;

    // Build tools, and Docker's package when there is no engine at all.
    let running = docker_answers();
    let mut packages = Vec::new();
    for (cmd, pkg) in [
        ("debootstrap", "debootstrap"),
        ("jq", "jq"),
        ("gcc", "gcc"),
        ("curl", "curl"),
    ] {
        if !have(cmd) {
            packages.push(pkg);
        }
    }
    if !static_libc_present() {
        packages.push("libc6-dev");
    }
    if !running && !have("dockerd") {
        packages.push("docker.io");
    }
    if !packages.is_empty() {
        if !have("apt-get") {
            bail!(
                "the kit needs these Debian packages and there is no apt-get to install them: {}",
                packages.join(" ")
            );
        }
        let script = format!(
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {}",
            packages.join(" ")
        );
        ui::run_step(
            "host-packages",
            &format!("apt-get install {}", packages.join(" ")),
            &kit.log("host-packages"),
            Command::new("sh").args(["-c", &script]),
        )?;
    }

    // kind bind-mounts /lib/modules into its nodes; kernels without loadable modules lack it.
    if !Path::new("/lib/modules").exists() {
        std::fs::create_dir_all("/lib/modules")
            .context("cannot create /lib/modules (kind mounts it)")?;
        note("created the empty /lib/modules (kind bind-mounts it into its nodes)");
    }

    if running {
        if !cap_sys_resource && docker_default_runtime().as_deref() != Some(WRAPPER_NAME) {
            note(format!(
                "warning: this host's capability bounding set ({capbnd}) lacks CAP_SYS_RESOURCE and the \
                 running dockerd has no runtime that drops it: privileged containers (kind nodes) may fail \
                 with `unable to apply caps`. dockerd is running, so it is left alone; stop it and run \
                 `cargo xtask kit --offline` to have the {WRAPPER_NAME} wrapper installed"
            ));
        }
    } else {
        if !cap_sys_resource {
            if allow_docker_config {
                install_wrapper(kit)?;
            } else {
                note(format!(
                    "warning: this host's capability bounding set ({capbnd}) lacks CAP_SYS_RESOURCE: Docker \
                     will likely fail to start privileged containers (kind nodes). Only `--offline` lets \
                     the kit register the {WRAPPER_NAME} runtime wrapper in {DAEMON_JSON}"
                ));
            }
        }
        start_dockerd(kit)?;
    }

    let go_version = output(Command::new("go").args(["env", "GOVERSION"])).context(
        "the kit builds kind and Kubernetes with Go from the module proxy: install Go (see versions.env GO_MIN_VERSION)",
    )?;
    check_go(&go_version, kit.v("GO_MIN_VERSION"))?;

    let info = output(Command::new("docker").args([
        "info",
        "--format",
        "{{.ServerVersion}}|{{.DefaultRuntime}}|{{.CgroupDriver}}/v{{.CgroupVersion}}",
    ]))?;
    let mut parts = info.split('|').map(str::to_owned);
    Ok(Facts {
        docker_server: parts.next().unwrap_or_default(),
        docker_runtime: parts.next().unwrap_or_default(),
        docker_cgroup: parts.next().unwrap_or_default(),
        go_version,
        capbnd,
        cap_sys_resource,
    })
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

/// Installs the wrapper and registers it as dockerd's default runtime (dockerd is not running).
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
    let runtimes = obj.entry("runtimes").or_insert_with(|| json!({}));
    let runtimes = runtimes
        .as_object_mut()
        .with_context(|| format!("{DAEMON_JSON}: `runtimes` is not an object"))?;
    runtimes.insert(WRAPPER_NAME.into(), json!({ "path": WRAPPER_PATH }));
    obj.insert("default-runtime".into(), json!(WRAPPER_NAME));
    std::fs::create_dir_all("/etc/docker").context("cannot create /etc/docker")?;
    write_atomic(
        Path::new(DAEMON_JSON),
        serde_json::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    note(format!(
        "--offline: installed {WRAPPER_PATH} and made it dockerd's default runtime in {DAEMON_JSON} \
         (this host's bounding set lacks CAP_SYS_RESOURCE)"
    ));
    Ok(())
}

fn start_dockerd(kit: &Kit) -> Result<()> {
    let log_path = kit.log("dockerd");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let err = log.try_clone()?;
    // setsid: its own session, so it outlives this process and the terminal.
    Command::new("setsid")
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
    note(format!(
        "docker: dockerd started in {} (detached; log {})",
        crate::util::fmt_duration(took),
        log_path.display()
    ));
    Ok(())
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

/// Checks that Docker can start a privileged container from `image` (kind nodes are privileged).
pub fn check_privileged(image: &str) -> Result<()> {
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--privileged",
            "--entrypoint",
            "/bin/true",
            image,
        ])
        .stdin(Stdio::null())
        .output()
        .context("cannot run docker")?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let hint = if err.contains("unable to apply caps") {
        "\nThis host's capability bounding set lacks a capability Docker gives privileged containers \
         (CAP_SYS_RESOURCE here): run `cargo xtask kit --offline` with dockerd stopped to install the \
         runc-nosysres runtime wrapper, or configure the engine yourself."
    } else {
        ""
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
