//! Small helpers shared by the tasks: running commands, hashing, durations.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Runs `cmd` with its output captured; returns trimmed stdout. On failure the error names the
/// command and carries its stderr (and stdout, when stderr is empty).
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !out.status.success() {
        let mut why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if why.is_empty() {
            why = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        bail!("`{shown}` failed ({}): {why}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `cmd` with `input` on its standard input; returns trimmed stdout.
pub fn output_with_input(cmd: &mut Command, input: &str) -> Result<String> {
    let shown = show(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("cannot write to `{shown}`"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("`{shown}` did not finish"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// True when `cmd` runs and exits 0 (output discarded).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `program args...` as a shell-like string, for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// SHA-256 of a byte string, hex (coreutils' sha256sum: no hashing crate needed).
pub fn sha256_hex(data: &[u8]) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run sha256sum")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(data).context("cannot feed sha256sum")?;
    }
    let out = child.wait_with_output().context("sha256sum failed")?;
    first_word(&String::from_utf8_lossy(&out.stdout))
}

/// SHA-256 of each file, hex, in order.
pub fn sha256_files(paths: &[&Path]) -> Result<Vec<String>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let out = output(Command::new("sha256sum").args(paths))?;
    let sums: Vec<String> = out
        .lines()
        .map(first_word)
        .collect::<Result<_>>()
        .context("cannot read sha256sum's output")?;
    if sums.len() != paths.len() {
        bail!(
            "sha256sum gave {} sums for {} files",
            sums.len(),
            paths.len()
        );
    }
    Ok(sums)
}

fn first_word(s: &str) -> Result<String> {
    match s.split_whitespace().next() {
        Some(w) if w.len() == 64 => Ok(w.to_owned()),
        _ => bail!("unexpected sha256sum output `{s}`"),
    }
}

/// "4m54s", "12.3s", "0.15s".
pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2}s")
    } else {
        let whole = d.as_secs();
        let mut s = String::new();
        if whole >= 3600 {
            let _ = write!(s, "{}h", whole / 3600);
        }
        let _ = write!(s, "{}m{:02}s", (whole % 3600) / 60, whole % 60);
        s
    }
}

/// The last `n` lines of a text file (for failure reports).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The value after `--flag` in `args`, if the flag is there.
pub fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

/// The current UTC time as `2026-11-22T08:25Z`, for "measured at" lines in docs.
pub fn utc_minute() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%MZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Writes `data` to `path` through a temporary file, so readers never see half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// True when this process runs as root (the kit's image builds use debootstrap and chroot).
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|u| u == "0")
}
