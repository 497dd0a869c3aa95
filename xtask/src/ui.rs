//! Progress and step logs for long tasks.
//!
//! A long step runs with its output going to a log file; on a terminal a spinner names the step,
//! shows the elapsed time and the log's last line. Without a terminal, or with `CI=true`, plain
//! lines are printed instead (a start line, a heartbeat every minute, an end line). A failed step
//! is reported with its name, its exit status, the last lines of its log and the log's path.

use std::fs::File;
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::util::{fmt_duration, show, tail};

/// Lines of the log quoted when a step fails.
const TAIL_LINES: usize = 30;

/// Whether progress is drawn (a terminal, not CI) or printed as plain lines.
pub fn fancy() -> bool {
    std::io::stderr().is_terminal() && std::env::var("CI").map_or(true, |v| v != "true")
}

/// A message line of xtask.
pub fn note(msg: impl std::fmt::Display) {
    eprintln!("xtask: {msg}");
}

/// Runs `cmd` as step `name` ("what" says what it does), its stdout and stderr appended to `log`
/// (which is truncated first). Returns how long it took.
pub fn run_step(name: &str, what: &str, log: &Path, cmd: &mut Command) -> Result<Duration> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    {
        use std::io::Write as _;
        let mut f = &file;
        let _ = writeln!(f, "$ {}", show(cmd));
    }
    let err_file = file
        .try_clone()
        .with_context(|| format!("cannot reopen {}", log.display()))?;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err_file))
        .spawn()
        .with_context(|| format!("step `{name}`: cannot start `{}`", show(cmd)))?;

    let spinner = fancy().then(|| {
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner:.cyan} {prefix:.bold} {elapsed_precise} {wide_msg:.dim}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_prefix(format!("{name}: {what}"));
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    if spinner.is_none() {
        note(format!("{name}: {what} (log: {})", log.display()));
    }
    let mut last_beat = Instant::now();
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .with_context(|| format!("step `{name}`: lost its process"))?
        {
            break st;
        }
        std::thread::sleep(Duration::from_millis(250));
        match &spinner {
            Some(pb) => pb.set_message(last_line(log)),
            None if last_beat.elapsed() >= Duration::from_secs(60) => {
                last_beat = Instant::now();
                note(format!(
                    "{name}: still running ({}): {}",
                    fmt_duration(start.elapsed()),
                    last_line(log)
                ));
            }
            None => {}
        }
    };
    let took = start.elapsed();
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    if !status.success() {
        bail!(
            "step `{name}` ({what}) failed after {} ({status}).\n\
             --- last {TAIL_LINES} lines of its log:\n{}\n--- full log: {}",
            fmt_duration(took),
            tail(log, TAIL_LINES),
            log.display()
        );
    }
    note(format!("{name}: done in {}", fmt_duration(took)));
    Ok(took)
}

/// The last non-empty line of the log, shortened for the spinner.
fn last_line(log: &Path) -> String {
    let t = tail(log, 3);
    let line = t.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(160).collect()
}

/// A spinner (or a plain line) for a wait that is not a child process, e.g. polling a cluster.
#[derive(Debug)]
pub struct Waiting {
    pb: Option<ProgressBar>,
    start: Instant,
}

impl Waiting {
    pub fn new(what: &str) -> Self {
        let pb = fancy().then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:.bold} {elapsed_precise} {wide_msg:.dim}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(what.to_owned());
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        if pb.is_none() {
            note(format!("{what} ..."));
        }
        Self {
            pb,
            start: Instant::now(),
        }
    }

    pub fn message(&self, msg: &str) {
        if let Some(pb) = &self.pb {
            pb.set_message(msg.to_owned());
        }
    }

    /// Clears the spinner; returns the elapsed time.
    pub fn done(self) -> Duration {
        if let Some(pb) = &self.pb {
            pb.finish_and_clear();
        }
        self.start.elapsed()
    }
}
