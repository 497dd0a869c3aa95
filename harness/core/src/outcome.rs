//! What a probe observed, as the prober reports it, before it is judged.

use std::fmt;

use serde::Serialize;

/// The raw result class of one probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "class", content = "reason", rename_all = "kebab-case")]
pub enum Outcome {
    /// A connection was established (TCP handshake, SCTP association, or a UDP answer came back).
    Connected,
    /// A DNS name resolved to an address.
    Resolved,
    /// Nothing answered within the probe's timeout (connection or DNS query).
    TimedOut,
    /// The connection was refused (TCP RST or ICMP port unreachable).
    Refused,
    /// The DNS server answered that the name does not exist.
    NameNotFound,
    /// A connection by DNS name could not start because the name did not resolve.
    DnsFailure(String),
    /// The cluster cannot carry this probe at all (e.g. SCTP on a kernel without it).
    Unsupported(String),
    /// The probe itself failed (exec lost, transport, pod gone, tool missing): never a policy
    /// result.
    Error(ProbeError),
}

/// Why a probe has no answer. Typed, so that code decides by variant (retry a lost exec at once,
/// never retry a refusal by the API server) instead of matching message text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ProbeError {
    /// The exec ended before this probe reported its line: the answer was lost, not the
    /// connection (stream cut, process killed, pod gone mid-round).
    Lost {
        /// What ended it, if known.
        detail: String,
    },
    /// The exec could not start or its transport failed (API server, kubelet, websocket).
    Transport {
        /// The transport's error.
        detail: String,
    },
    /// The exec did not finish within its deadline.
    Deadline {
        /// The deadline, in seconds.
        seconds: u64,
    },
    /// The API server refused the exec: the credentials lack a permission. Not transient.
    Forbidden {
        /// `create pods/exec in namespace x`.
        what: String,
        /// The API server's message.
        detail: String,
    },
    /// A probe tool is missing in the source pod.
    ToolMissing {
        /// `curl`, `nc` or `dig`.
        tool: String,
    },
    /// A probe tool ended in a way that says nothing about policy.
    Tool {
        /// The tool.
        tool: String,
        /// Its exit code.
        exit_code: i32,
        /// The first line it printed.
        output: String,
    },
    /// The DNS server answered with neither addresses nor "no such name" (e.g. SERVFAIL).
    DnsAnswer {
        /// Its status line.
        status: String,
    },
    /// The source or target pod was not live around the probe (deleted, restarted, not
    /// ready): whatever the probe saw says nothing about policy.
    PodNotLive {
        /// `ns/pod` (real names).
        pod: String,
        /// What happened to it.
        what: String,
    },
    /// The prober returned an outcome that does not fit the probe (a bug).
    Unexpected {
        /// What.
        detail: String,
    },
}

impl ProbeError {
    /// The answer was lost on the way (not refused by anyone): worth one immediate retry.
    pub fn is_lost(&self) -> bool {
        matches!(
            self,
            ProbeError::Lost { .. } | ProbeError::Transport { .. } | ProbeError::Deadline { .. }
        )
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Lost { detail } if detail.is_empty() => {
                f.write_str("no result: the probe's exec ended before it reported")
            }
            ProbeError::Lost { detail } => {
                write!(
                    f,
                    "no result: the probe's exec ended before it reported ({detail})"
                )
            }
            ProbeError::Transport { detail } => write!(f, "exec failed: {detail}"),
            ProbeError::Deadline { seconds } => {
                write!(f, "exec did not finish within {seconds} s")
            }
            ProbeError::Forbidden { what, detail } => {
                write!(f, "forbidden: cannot {what} ({detail})")
            }
            ProbeError::ToolMissing { tool } => write!(f, "{tool} is missing in the source pod"),
            ProbeError::Tool {
                tool,
                exit_code,
                output,
            } => write!(f, "{tool} exited {exit_code}: {output}"),
            ProbeError::DnsAnswer { status } => write!(f, "DNS answered: {status}"),
            ProbeError::PodNotLive { pod, what } => write!(f, "pod {pod} {what}"),
            ProbeError::Unexpected { detail } => f.write_str(detail),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Connected => f.write_str("connected"),
            Outcome::Resolved => f.write_str("resolved"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::Refused => f.write_str("refused"),
            Outcome::NameNotFound => f.write_str("name not found"),
            Outcome::DnsFailure(r) => write!(f, "DNS failure: {r}"),
            Outcome::Unsupported(r) => write!(f, "unsupported: {r}"),
            Outcome::Error(r) => write!(f, "probe error: {r}"),
        }
    }
}

/// Facts about how a probe ran, kept so a mismatch can be reproduced and understood.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProbeDetail {
    /// A command a person can paste to reproduce the probe (`kubectl exec -n … -- nc …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Exit status of the probe tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// How long the probe took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// Anything the tool printed that helps (trimmed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// One probe's outcome with its detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The result class.
    pub outcome: Outcome,
    /// How it ran.
    pub detail: ProbeDetail,
}

impl Observation {
    /// An observation without detail (for tests and doubles).
    pub fn bare(outcome: Outcome) -> Self {
        Observation {
            outcome,
            detail: ProbeDetail::default(),
        }
    }
}
