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
    /// The probe itself failed: exec lost, pod gone, tool missing, unparseable output.
    Error(String),
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
