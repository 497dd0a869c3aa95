//! Progress of a run, from the runner's events.
//!
//! Two front ends over one state ([`Status`]):
//! - on a terminal (stderr is a TTY and `CI` is not set): indicatif bars — one line per running
//!   scenario (deploying, step, round, cells disagreeing) and one bar of scenarios done;
//! - anywhere else (CI logs): plain status lines, one at every step boundary and at least one
//!   every [`EVERY`] of run time in between, so a log is never silent for long and never holds
//!   escape codes.
//!
//! [`Status`] is pure and takes the time as an argument: the CI behaviour is tested with an
//! injected clock.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::run::Event;

/// At most this long between two status lines in plain mode.
pub const EVERY: Duration = Duration::from_secs(10);

/// What one running scenario is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// What, in words (`deploying 4 pod(s)`, `step 2/3 "deny": round 4, 1 disagreeing`).
    pub doing: String,
    /// When it started.
    pub since: Option<Instant>,
}

/// The state of a whole run, fed by events; it says which plain lines are due.
#[derive(Debug)]
pub struct Status {
    started: Instant,
    last_line: Instant,
    total: usize,
    done: usize,
    cells_done: usize,
    steps: BTreeMap<String, usize>,
    running: BTreeMap<String, Running>,
}

impl Status {
    /// A run of `total` scenarios starting at `now`.
    pub fn new(total: usize, now: Instant) -> Self {
        Status {
            started: now,
            last_line: now,
            total,
            done: 0,
            cells_done: 0,
            steps: BTreeMap::new(),
            running: BTreeMap::new(),
        }
    }

    fn elapsed(&self, now: Instant) -> String {
        let s = now.saturating_duration_since(self.started).as_secs();
        format!("{}:{:02}", s / 60, s % 60)
    }

    /// The one-line summary of the whole run.
    pub fn summary(&self, now: Instant) -> String {
        let running: Vec<String> = self
            .running
            .iter()
            .map(|(s, r)| format!("{s}: {}", r.doing))
            .collect();
        format!(
            "netreach [{}] {}/{} scenario(s) done, {} cell(s) judged{}{}",
            self.elapsed(now),
            self.done,
            self.total,
            self.cells_done,
            if running.is_empty() { "" } else { "; " },
            running.join("; ")
        )
    }

    /// Takes an event of `scenario`; returns the plain line it calls for (step boundaries and
    /// scenario ends), if any.
    pub fn event(&mut self, scenario: &str, e: &Event, now: Instant) -> Option<String> {
        let r = self.running.entry(scenario.to_owned()).or_default();
        if r.since.is_none() {
            r.since = Some(now);
        }
        let boundary = match e {
            Event::Deploying { pods, .. } => {
                r.doing = format!("deploying {pods} pod(s)");
                Some(format!("{scenario}: deploying {pods} pod(s)"))
            }
            Event::StepStarted { index, name, cells } => {
                let of = self.steps.get(scenario).copied().unwrap_or(0);
                r.doing = format!("step {index}{} \"{name}\": {cells} cell(s)", of_n(of));
                Some(format!(
                    "{scenario}: step {index}{} \"{name}\" started ({cells} cell(s))",
                    of_n(of)
                ))
            }
            Event::Probed {
                index,
                round,
                disagreeing,
                ..
            } => {
                r.doing = format!("step {index}: round {round}, {disagreeing} disagreeing");
                None
            }
            Event::StepFinished { index, counts } => {
                self.cells_done += counts.total();
                let r = self.running.entry(scenario.to_owned()).or_default();
                r.doing = format!("step {index} done");
                Some(format!(
                    "{scenario}: step {index} finished: {} pass, {} fail, {} error, {} unsupported",
                    counts.pass, counts.fail, counts.error, counts.unsupported
                ))
            }
            Event::TearingDown => {
                r.doing = "cleaning up".into();
                None
            }
        };
        boundary.map(|l| {
            self.last_line = now;
            format!("netreach [{}] {l}", self.elapsed(now))
        })
    }

    /// Declares how many steps a scenario has (for "step 2/5").
    pub fn steps_of(&mut self, scenario: &str, steps: usize) {
        self.steps.insert(scenario.to_owned(), steps);
    }

    /// A scenario ended.
    pub fn finished(&mut self, scenario: &str, headline: &str, now: Instant) -> String {
        self.running.remove(scenario);
        self.done += 1;
        self.last_line = now;
        format!("netreach [{}] {headline}", self.elapsed(now))
    }

    /// The status line that is due at `now`, if none was printed for [`EVERY`].
    pub fn tick(&mut self, now: Instant) -> Option<String> {
        if now.saturating_duration_since(self.last_line) >= EVERY {
            self.last_line = now;
            Some(self.summary(now))
        } else {
            None
        }
    }
}

fn of_n(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("/{n}")
    }
}

/// Whether progress is drawn as bars (a terminal, not CI) or printed as plain lines.
pub fn fancy() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// The live progress of a run: shareable between the threads that run scenarios.
#[derive(Clone, Debug)]
pub struct Progress {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    status: Status,
    bars: Option<Bars>,
    stop: bool,
}

#[derive(Debug)]
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    lines: BTreeMap<String, ProgressBar>,
}

impl Progress {
    /// Starts progress for `total` scenarios: bars on a terminal, else plain lines on stderr
    /// (with a ticker thread for the every-10-s line).
    pub fn start(total: usize) -> Self {
        let bars = fancy().then(|| {
            let multi = MultiProgress::new();
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} scenario(s) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            overall.enable_steady_tick(Duration::from_millis(250));
            Bars {
                multi,
                overall,
                lines: BTreeMap::new(),
            }
        });
        let plain = bars.is_none();
        let p = Progress {
            inner: Arc::new(Mutex::new(Inner {
                status: Status::new(total, Instant::now()),
                bars,
                stop: false,
            })),
        };
        if plain {
            let inner = Arc::clone(&p.inner);
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let Ok(mut g) = inner.lock() else { return };
                    if g.stop {
                        return;
                    }
                    if let Some(l) = g.status.tick(Instant::now()) {
                        eprintln!("{l}");
                    }
                }
            });
        }
        p
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut g| f(&mut g))
    }

    /// A scenario with `steps` steps is about to run.
    pub fn begin(&self, scenario: &str, steps: usize) {
        self.with(|g| {
            g.status.steps_of(scenario, steps);
            if let Some(b) = &mut g.bars {
                let pb = b.multi.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("  {spinner:.cyan} {prefix:.bold} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_prefix(scenario.to_owned());
                pb.enable_steady_tick(Duration::from_millis(120));
                b.lines.insert(scenario.to_owned(), pb);
            }
        });
    }

    /// A runner event of `scenario`.
    pub fn event(&self, scenario: &str, e: &Event) {
        self.with(|g| {
            let line = g.status.event(scenario, e, Instant::now());
            match &g.bars {
                Some(b) => {
                    if let (Some(pb), Some(r)) =
                        (b.lines.get(scenario), g.status.running.get(scenario))
                    {
                        pb.set_message(r.doing.clone());
                    }
                    b.overall
                        .set_message(format!("{} cell(s) judged", g.status.cells_done));
                }
                None => {
                    if let Some(l) = line {
                        eprintln!("{l}");
                    }
                }
            }
        });
    }

    /// A scenario ended with this headline (printed above the bars).
    pub fn end(&self, scenario: &str, headline: &str) {
        self.with(|g| {
            let line = g.status.finished(scenario, headline, Instant::now());
            match &mut g.bars {
                Some(b) => {
                    if let Some(pb) = b.lines.remove(scenario) {
                        pb.finish_and_clear();
                    }
                    b.overall.inc(1);
                }
                None => eprintln!("{line}"),
            }
        });
    }

    /// Prints `text` without tearing the bars.
    pub fn print(&self, text: &str) {
        let printed = self.with(|g| match &g.bars {
            Some(b) => {
                b.multi.suspend(|| print!("{text}"));
                true
            }
            None => false,
        });
        if printed != Some(true) {
            print!("{text}");
        }
    }

    /// Ends the display.
    pub fn finish(&self) {
        self.with(|g| {
            g.stop = true;
            if let Some(b) = &g.bars {
                b.overall.finish_and_clear();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Counts;

    /// Plain mode with an injected clock: a line at every step boundary and at least one per
    /// 10 s of run time in between, never an escape code.
    #[test]
    fn ci_mode_says_something_every_ten_seconds_and_at_every_step() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut st = Status::new(2, t0);
        let mut lines: Vec<(u64, String)> = Vec::new();
        let mut push = |s: u64, l: Option<String>| {
            if let Some(l) = l {
                lines.push((s, l));
            }
        };
        st.steps_of("scenarios/a", 2);
        push(
            0,
            st.event(
                "scenarios/a",
                &Event::Deploying {
                    scenario: "scenarios/a".into(),
                    pods: 3,
                },
                at(0),
            ),
        );
        // A long deploy: nothing happens for 35 s, the ticker asks every second.
        for s in 1..=35 {
            push(s, st.tick(at(s)));
        }
        push(
            35,
            st.event(
                "scenarios/a",
                &Event::StepStarted {
                    index: 1,
                    name: "open".into(),
                    cells: 9,
                },
                at(35),
            ),
        );
        for s in 36..=47 {
            push(s, st.tick(at(s)));
        }
        push(
            47,
            st.event(
                "scenarios/a",
                &Event::StepFinished {
                    index: 1,
                    counts: Counts {
                        pass: 9,
                        ..Counts::default()
                    },
                },
                at(47),
            ),
        );
        let times: Vec<u64> = lines.iter().map(|(s, _)| *s).collect();
        assert_eq!(times, [0, 10, 20, 30, 35, 45, 47], "{lines:#?}");
        assert!(lines[1].1.contains("deploying 3 pod(s)"), "{}", lines[1].1);
        assert!(
            lines[4].1.contains("step 1/2 \"open\" started (9 cell(s))"),
            "{}",
            lines[4].1
        );
        assert!(
            lines[6].1.contains("step 1 finished: 9 pass"),
            "{}",
            lines[6].1
        );
        // Never more than 10 s apart, never an escape code.
        for w in times.windows(2) {
            assert!(w[1] - w[0] <= 10, "{times:?}");
        }
        assert!(lines.iter().all(|(_, l)| !l.contains('\u{1b}')));
        let end = st.finished("scenarios/a", "PASS scenarios/a", at(50));
        assert!(end.starts_with("netreach [0:50] PASS"), "{end}");
        assert!(
            st.summary(at(50))
                .contains("1/2 scenario(s) done, 9 cell(s) judged")
        );
    }
}
