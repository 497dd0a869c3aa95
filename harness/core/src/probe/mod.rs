//! Probe commands and their results, as pure functions.
//!
//! Each probe is a command run inside the source pod: `curl` for TCP (the pod's server answers
//! HTTP on every TCP port; curl's exit code says connected 0, refused 7, timed out 28, name not
//! resolved 6), `nc -u` with a datagram for UDP (judged by the server's answer: `nc -u -z`
//! succeeds whether or not anything listens), `dig` for name resolution. A batch of probes runs
//! as one shell script in one exec: every probe in the background, each bounded by its own
//! timeout, each reporting `@@<index> <exit code> <elapsed ms> <output lines joined by " | ">`.

use std::fmt::Write as _;

use crate::bind::{BoundProbe, ProbeAction};
use crate::model::Protocol;
use crate::outcome::{Observation, Outcome, ProbeDetail, ProbeError};

/// How long one probe may take inside the pod, in whole seconds (tools take whole seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeTimeout(pub u32);

impl Default for ProbeTimeout {
    fn default() -> Self {
        ProbeTimeout(2)
    }
}

/// Which layer refuses an SCTP probe, for the "unsupported" reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SctpRefusal {
    /// netreach's probe image has no SCTP client: nothing runs, so the kernel is never asked.
    ProbeImage,
    /// An SCTP client ran and the kernel refused an SCTP socket (no SCTP in the kernel).
    Kernel,
}

impl SctpRefusal {
    /// The reason an unsupported SCTP cell carries; `output` is the tool's first line, if any.
    pub fn reason(self, output: &str) -> String {
        let mut r = match self {
            SctpRefusal::ProbeImage => "SCTP: refused by the probe image: it has no SCTP client \
                 (the kernel was not asked whether it carries SCTP)"
                .to_owned(),
            SctpRefusal::Kernel => {
                "SCTP: refused by the kernel: the source pod's node has no SCTP support".to_owned()
            }
        };
        if !output.is_empty() {
            r.push_str(&format!(" ({output})"));
        }
        r
    }
}

/// What runs for one probe: an argv, or nothing when the probe cannot run at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run this argv in the source pod.
    Run(Vec<String>),
    /// Do not run; this is the outcome.
    Decided(Outcome),
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The argv for one probe.
pub fn command(action: &ProbeAction, t: ProbeTimeout) -> Command {
    let secs = t.0.max(1).to_string();
    match action {
        ProbeAction::Connect {
            host,
            port,
            protocol: Protocol::Tcp,
            ..
        } => Command::Run(vec![
            "curl".into(),
            // --verbose says why a connect failed ("Connection refused"), which curl's own
            // error message ("Couldn't connect to server") does not.
            "--verbose".into(),
            "--silent".into(),
            "--show-error".into(),
            "--output".into(),
            "/dev/null".into(),
            "--connect-timeout".into(),
            secs.clone(),
            "--max-time".into(),
            (t.0.max(1) + 1).to_string(),
            format!("http://{}:{port}/", host_for_url(host)),
        ]),
        ProbeAction::Connect {
            host,
            port,
            protocol: Protocol::Udp,
            ..
        } => Command::Run(vec![
            "sh".into(),
            "-c".into(),
            format!("printf ping | nc -u -w {secs} {host} {port}"),
        ]),
        ProbeAction::Connect {
            protocol: Protocol::Sctp,
            ..
        } => Command::Decided(Outcome::Unsupported(SctpRefusal::ProbeImage.reason(""))),
        ProbeAction::Resolve { name } => Command::Run(vec![
            "dig".into(),
            "+search".into(),
            format!("+time={secs}"),
            "+tries=1".into(),
            name.clone(),
        ]),
    }
}

/// Quotes one word for `sh`.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=+,@%".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A command a person can paste to reproduce one probe.
pub fn repro(context: Option<&str>, p: &BoundProbe, t: ProbeTimeout) -> Option<String> {
    let Command::Run(argv) = command(&p.action, t) else {
        return None;
    };
    let mut s = String::from("kubectl");
    if let Some(c) = context {
        let _ = write!(s, " --context {}", sh_quote(c));
    }
    let _ = write!(
        s,
        " -n {} exec {} --",
        sh_quote(&p.namespace),
        sh_quote(&p.pod)
    );
    for a in argv {
        let _ = write!(s, " {}", sh_quote(&a));
    }
    Some(s)
}

/// The shell script that runs `probes` (indices into the batch) concurrently and reports each.
pub fn batch_script(probes: &[(usize, Vec<String>)]) -> String {
    // bash: $EPOCHREALTIME and ${o//…} need no extra processes, so a probe costs one fork for
    // `&`, one for `$(…)` and the tool itself.
    let mut s = String::from(
        "r() { local i=$1; shift; local s=${EPOCHREALTIME/./} o c e; o=$(\"$@\" 2>&1); c=$?; \
         e=${EPOCHREALTIME/./}; o=${o//$'\\r'/}; o=${o//$'\\n'/ | }; \
         printf '@@%s %s %s %s\\n' \"$i\" \"$c\" \"$(( (e - s) / 1000 ))\" \"$o\"; }\n",
    );
    for (i, argv) in probes {
        let words: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
        let _ = writeln!(s, "r {i} {} &", words.join(" "));
    }
    s.push_str("wait\n");
    s
}

/// A round's work in one pod: the script, and which probes its single parallel `curl` runs.
///
/// Plain TCP probes to an address (pod IP, Service IP, external endpoint) all go to ONE `curl
/// --parallel` process: process start-up, not the network, dominates a batch on small nodes
/// (measured in BENCHMARKS.md). curl reports each transfer on a `@@T<n> <exit> <seconds>
/// <message>` line; "Connection refused" appears only in its verbose log, which names the
/// address and port, so refusals are matched back by address. Probes by DNS name, UDP and DNS
/// resolution run one process each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The bash script.
    pub script: String,
    /// Probe indices of the parallel curl's URLs, in order, with the `host port` each connects to.
    pub parallel: Vec<(usize, String)>,
}

/// Builds the script for a pod's probes: `(index, action, argv)`.
pub fn build_batch(items: &[(usize, &ProbeAction, Vec<String>)], t: ProbeTimeout) -> Batch {
    let (tcp, rest): (Vec<_>, Vec<_>) = items.iter().partition(|(_, a, _)| {
        matches!(a, ProbeAction::Connect { host, protocol: Protocol::Tcp, .. } if host.parse::<std::net::IpAddr>().is_ok())
    });
    let singles: Vec<(usize, Vec<String>)> =
        rest.iter().map(|(i, _, argv)| (*i, argv.clone())).collect();
    let mut script = batch_script(&singles);
    let mut parallel = Vec::new();
    if !tcp.is_empty() {
        let secs = t.0.max(1);
        let mut cmd = format!(
            "curl --parallel --parallel-immediate --parallel-max 512 --verbose --silent --show-error \
             --connect-timeout {secs} --max-time {} --write-out '\\n@@T%{{urlnum}} %{{exitcode}} %{{time_total}} %{{errormsg}}\\n'",
            secs + 1
        );
        for (i, a, _) in &tcp {
            if let ProbeAction::Connect { host, port, .. } = a {
                let _ = write!(cmd, " -o /dev/null http://{}:{port}/", host_for_url(host));
                parallel.push((*i, format!("{host} port {port}")));
            }
        }
        // (The format starts with a newline because curl reads `--write-out @file` from a file.)
        // Before `wait`, in the background like the others; stderr (the verbose log) too.
        let at = script.rfind("wait\n").unwrap_or(script.len());
        script.insert_str(at, &format!("{cmd} 2>&1 &\n"));
    }
    Batch { script, parallel }
}

impl Batch {
    /// Parses the script's output into one result per probe that reported.
    pub fn parse(&self, stdout: &str) -> Vec<RawResult> {
        let mut out = parse_batch(stdout);
        if self.parallel.is_empty() {
            return out;
        }
        let refused: std::collections::BTreeSet<String> = stdout
            .lines()
            .filter(|l| l.contains("Connection refused"))
            .filter_map(|l| {
                let rest = &l[l.find("connect to ")? + "connect to ".len()..];
                let mut w = rest.split_whitespace();
                let host = w.next()?;
                (w.next()? == "port").then_some(())?;
                let port = w.next()?;
                Some(format!("{host} port {port}"))
            })
            .collect();
        for l in stdout.lines() {
            let Some(rest) = l.strip_prefix("@@T") else {
                continue;
            };
            let mut it = rest.splitn(4, ' ');
            let (Some(n), Some(code), Some(secs)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let (Ok(n), Ok(code), Ok(secs)) =
                (n.parse::<usize>(), code.parse::<i32>(), secs.parse::<f64>())
            else {
                continue;
            };
            let Some((index, addr)) = self.parallel.get(n) else {
                continue;
            };
            let mut output = it.next().unwrap_or("").to_owned();
            if code == 7 && refused.contains(addr) {
                output = format!("connect to {addr} failed: Connection refused\n{output}");
            }
            out.push(RawResult {
                index: *index,
                exit_code: code,
                elapsed_ms: (secs * 1000.0) as u64,
                output,
            });
        }
        out
    }
}

/// One parsed result line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResult {
    /// Index in the batch.
    pub index: usize,
    /// Exit code of the tool.
    pub exit_code: i32,
    /// Time taken.
    pub elapsed_ms: u64,
    /// What it printed (stdout and stderr).
    pub output: String,
}

/// Parses the script's output; lines that are not results are ignored.
pub fn parse_batch(stdout: &str) -> Vec<RawResult> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("@@").filter(|r| !r.starts_with('T'))?;
            let mut it = rest.splitn(4, ' ');
            let index = it.next()?.parse().ok()?;
            let exit_code = it.next()?.parse().ok()?;
            let elapsed_ms = it.next()?.parse().ok()?;
            // Lines of the tool's output, joined with " | " by the script. (`@@T` lines are the
            // parallel curl's; `Batch::parse` reads those.)
            let output = it.next().unwrap_or("").replace(" | ", "\n");
            Some(RawResult {
                index,
                exit_code,
                elapsed_ms,
                output,
            })
        })
        .collect()
}

fn first_line(s: &str) -> String {
    let l = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut l = l.to_owned();
    l.truncate(200);
    l
}

/// Turns a tool's exit code and output into an outcome.
pub fn classify(action: &ProbeAction, exit_code: i32, output: &str) -> Outcome {
    let lower = output.to_ascii_lowercase();
    match action {
        ProbeAction::Connect {
            protocol: Protocol::Tcp,
            ..
        } => match exit_code {
            0 | 52 | 56 => Outcome::Connected, // 52 empty reply / 56 recv failure: a connection was made
            7 if lower.contains("connection refused") => Outcome::Refused,
            28 if lower.contains("resolving timed out") => Outcome::DnsFailure(first_line(output)),
            28 => Outcome::TimedOut,
            6 => Outcome::DnsFailure(first_line(output)),
            127 => missing("curl"),
            c => tool_error("curl", c, output),
        },
        ProbeAction::Connect {
            protocol: Protocol::Udp,
            ..
        } => {
            if output.contains("netreach ") {
                Outcome::Connected
            } else if lower.contains("refused") {
                Outcome::Refused
            } else if exit_code == 127 {
                missing("nc")
            } else if lower.contains("name or service not known")
                || lower.contains("could not resolve")
            {
                Outcome::DnsFailure(first_line(output))
            } else if exit_code == 0 || exit_code == 1 {
                Outcome::TimedOut
            } else {
                tool_error("nc", exit_code, output)
            }
        }
        // [`command`] never runs an SCTP probe; should one run (a probe image with an SCTP
        // client), say which layer refused it.
        ProbeAction::Connect {
            protocol: Protocol::Sctp,
            ..
        } => {
            let refusal = if lower.contains("protocol not supported")
                || lower.contains("address family not supported")
                || lower.contains("protocol not available")
            {
                SctpRefusal::Kernel
            } else {
                SctpRefusal::ProbeImage
            };
            Outcome::Unsupported(refusal.reason(&first_line(output)))
        }
        ProbeAction::Resolve { .. } => {
            if exit_code == 9
                || lower.contains("connection timed out")
                || lower.contains("no servers could be reached")
            {
                if lower.contains("refused") {
                    Outcome::Refused
                } else {
                    Outcome::TimedOut
                }
            } else if exit_code == 127 {
                missing("dig")
            } else if exit_code != 0 {
                tool_error("dig", exit_code, output)
            } else if lower.contains("status: nxdomain") {
                Outcome::NameNotFound
            } else if lower.contains("status: noerror") {
                if answer_count(&lower) > 0 {
                    Outcome::Resolved
                } else {
                    Outcome::NameNotFound
                }
            } else {
                Outcome::Error(ProbeError::DnsAnswer {
                    status: status_line(output),
                })
            }
        }
    }
}

fn missing(tool: &str) -> Outcome {
    Outcome::Error(ProbeError::ToolMissing { tool: tool.into() })
}

fn tool_error(tool: &str, exit_code: i32, output: &str) -> Outcome {
    Outcome::Error(ProbeError::Tool {
        tool: tool.into(),
        exit_code,
        output: first_line(output),
    })
}

fn answer_count(lower: &str) -> u32 {
    lower
        .split("answer: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn status_line(output: &str) -> String {
    output
        .lines()
        .find(|l| l.contains("status:"))
        .map_or_else(|| first_line(output), |l| l.trim().to_owned())
}

/// Builds the observations of a batch from its results; probes with no result line get an
/// error (the exec ended early), never a policy outcome.
pub fn observations(
    probes: &[BoundProbe],
    commands: &[Command],
    results: &[RawResult],
    context: Option<&str>,
    t: ProbeTimeout,
) -> Vec<Observation> {
    probes
        .iter()
        .zip(commands)
        .enumerate()
        .map(|(i, (p, c))| {
            let command = repro(context, p, t);
            match c {
                Command::Decided(o) => Observation {
                    outcome: o.clone(),
                    detail: ProbeDetail {
                        command,
                        ..ProbeDetail::default()
                    },
                },
                Command::Run(_) => match results.iter().find(|r| r.index == i) {
                    Some(r) => Observation {
                        outcome: classify(&p.action, r.exit_code, &r.output),
                        detail: ProbeDetail {
                            command,
                            exit_code: Some(r.exit_code),
                            elapsed_ms: Some(r.elapsed_ms),
                            output: Some(first_line(&r.output)).filter(|o| !o.is_empty()),
                        },
                    },
                    None => Observation {
                        outcome: Outcome::Error(ProbeError::Lost {
                            detail: String::new(),
                        }),
                        detail: ProbeDetail {
                            command,
                            ..ProbeDetail::default()
                        },
                    },
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
