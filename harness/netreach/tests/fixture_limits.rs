//! Bad input never takes unbounded time or memory: every file in `fixtures/invalid/` and
//! `fixtures/warnings/` goes through the real `netreach validate` under `prlimit` — 10 s of CPU
//! and a 500 MB address space — with a 10 s wall-clock guard. A hang, a blow-up (killed by the
//! limit) or a panic fails the test. It prints the slowest file and the peak resident memory
//! (the figures in BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CPU_SECS: u64 = 10;
const ADDRESS_SPACE: u64 = 500 * 1024 * 1024;
const WALL: Duration = Duration::from_secs(10);

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    v.sort();
    v
}

/// GNU time, where installed, measures each run's peak resident memory (`%M`, KiB) on the
/// last line of stderr; without it the limits still hold, only the figure is missing.
const GNU_TIME: &str = "/usr/bin/time";

#[test]
fn every_bad_fixture_is_judged_within_10_s_and_500_mb() {
    let bin = env!("CARGO_BIN_EXE_netreach");
    let mut slowest = (Duration::ZERO, PathBuf::new());
    let mut checked = 0;
    let mut bad = Vec::new();
    let mut peak_kib = 0u64;
    // `validate` judges scenarios: an invalid one is its exit 1 (exit.rs), a warning is not.
    for (dir, want) in [("invalid", 1), ("warnings", 0)] {
        for f in fixtures(dir) {
            let t = Instant::now();
            let timed = Path::new(GNU_TIME).exists();
            let mut cmd = if timed {
                let mut c = Command::new(GNU_TIME);
                c.args(["-f", "%M", "prlimit"]);
                c
            } else {
                Command::new("prlimit")
            };
            let mut child = cmd
                .arg(format!("--cpu={CPU_SECS}"))
                .arg(format!("--as={ADDRESS_SPACE}"))
                .arg("--")
                .arg(bin)
                .args(["validate", "--short"])
                .arg(&f)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("prlimit (util-linux) runs");
            let status = loop {
                if let Some(s) = child.try_wait().expect("wait") {
                    break Some(s);
                }
                if t.elapsed() > WALL {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            let took = t.elapsed();
            let stderr = child
                .stderr
                .take()
                .map(|mut e| {
                    let mut s = String::new();
                    let _ = std::io::Read::read_to_string(&mut e, &mut s);
                    s
                })
                .unwrap_or_default();
            if timed {
                let kib: u64 = stderr
                    .lines()
                    .last()
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0);
                peak_kib = peak_kib.max(kib);
            }
            checked += 1;
            if took > slowest.0 {
                slowest = (took, f.clone());
            }
            match status {
                None => bad.push(format!("{}: still running after {WALL:?}", f.display())),
                Some(s) if s.code() != Some(want) => bad.push(format!(
                    "{}: {s} (want exit {want}){}",
                    f.display(),
                    if stderr.contains("panicked") {
                        " — it panicked"
                    } else {
                        ""
                    }
                )),
                Some(_) => {}
            }
        }
    }
    let peak = if peak_kib > 0 {
        format!("{:.1} MiB", peak_kib as f64 / 1024.0)
    } else {
        format!("not measured (no {GNU_TIME})")
    };
    println!(
        "{checked} fixtures under {CPU_SECS} s CPU / {} MB address space: slowest {} in {:.0} ms; peak resident memory {peak}",
        ADDRESS_SPACE / 1024 / 1024,
        slowest
            .1
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        slowest.0.as_secs_f64() * 1000.0
    );
    assert!(checked > 60, "found only {checked} fixtures");
    assert!(bad.is_empty(), "bad input not bounded:\n{}", bad.join("\n"));
}
