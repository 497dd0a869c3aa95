//! The stable codes of diagnostics.

use std::fmt;

/// A stable identifier for a kind of problem. Tests and `fixtures/invalid` annotations assert on
/// these; the string form is `netreach::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The file could not be read.
    Io,
    /// The YAML is not well formed.
    Syntax,
    /// A field the format does not know (typo, or a field of a newer version).
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value has the wrong type or shape (a list where a map belongs, a string for a number).
    WrongType,
    /// The `version` field names a version this netreach does not read.
    Version,
    /// A name is not a valid Kubernetes name (DNS label or subdomain).
    InvalidName,
    /// Two things of one kind share a name.
    Duplicate,
    /// A reference to a namespace the scenario does not declare.
    UnknownNamespace,
    /// A reference to a pod the scenario does not declare.
    UnknownPod,
    /// A reference to an external endpoint the scenario does not declare.
    UnknownExternal,
    /// A port number, port name or protocol that is not valid.
    InvalidPort,
    /// A probe or expectation names a port the target does not serve.
    PortNotServed,
    /// A label key or value that Kubernetes would reject.
    InvalidLabel,
    /// A target or pod pattern that cannot be parsed.
    InvalidPattern,
    /// A pattern that matches nothing (almost always a typo).
    MatchesNothing,
    /// A CIDR, an `except` entry, an address placeholder or an external endpoint's address that
    /// is not valid.
    InvalidCidr,
    /// A truth table whose shape or contents are wrong.
    InvalidTable,
    /// A probed cell that no expectation covers.
    NoExpectation,
    /// A loopback cell whose expectation contradicts the scenario's `loopback` setting.
    LoopbackConflict,
    /// A declared expectation the NetworkPolicy specification contradicts (a warning).
    ContradictsSpec,
    /// A policy file that does not exist or cannot be read.
    PolicyFile,
    /// A policy document that is not a `networking.k8s.io/v1` NetworkPolicy, or is malformed.
    InvalidPolicy,
    /// A document of a policy file that is not a NetworkPolicy (a Deployment, a ConfigMap):
    /// skipped (a warning).
    SkippedDocument,
    /// A policy kind netreach does not apply yet (AdminNetworkPolicy,
    /// BaselineAdminNetworkPolicy).
    UnsupportedPolicy,
    /// A step action that does not fit the policies in force at that step.
    InvalidStep,
    /// Fields that cannot be used together, or a combination that is missing.
    Conflict,
    /// Something refers to a namespace that exists in the cluster (not the scenario's) in a way
    /// that would create, change or delete it.
    ExistingNamespace,
    /// A real workload (`workload:`) declared where it cannot be, or used in a way that would
    /// change it or send it traffic netreach cannot route (a Service netreach would create).
    InvalidWorkload,
}

impl Code {
    /// The short name, as written in fixtures (`unknown-pod`).
    pub fn name(self) -> &'static str {
        match self {
            Code::Io => "io",
            Code::Syntax => "syntax",
            Code::UnknownField => "unknown-field",
            Code::MissingField => "missing-field",
            Code::WrongType => "wrong-type",
            Code::Version => "version",
            Code::InvalidName => "invalid-name",
            Code::Duplicate => "duplicate",
            Code::UnknownNamespace => "unknown-namespace",
            Code::UnknownPod => "unknown-pod",
            Code::UnknownExternal => "unknown-external",
            Code::InvalidPort => "invalid-port",
            Code::PortNotServed => "port-not-served",
            Code::InvalidLabel => "invalid-label",
            Code::InvalidPattern => "invalid-pattern",
            Code::MatchesNothing => "matches-nothing",
            Code::InvalidCidr => "invalid-cidr",
            Code::InvalidTable => "invalid-table",
            Code::NoExpectation => "no-expectation",
            Code::LoopbackConflict => "loopback-conflict",
            Code::ContradictsSpec => "contradicts-spec",
            Code::PolicyFile => "policy-file",
            Code::InvalidPolicy => "invalid-policy",
            Code::SkippedDocument => "skipped-document",
            Code::UnsupportedPolicy => "unsupported-policy",
            Code::InvalidStep => "invalid-step",
            Code::Conflict => "conflict",
            Code::ExistingNamespace => "existing-namespace",
            Code::InvalidWorkload => "invalid-workload",
        }
    }

    /// Every code, for documentation and for parsing fixture annotations.
    pub const ALL: [Code; 29] = [
        Code::Io,
        Code::Syntax,
        Code::UnknownField,
        Code::MissingField,
        Code::WrongType,
        Code::Version,
        Code::InvalidName,
        Code::Duplicate,
        Code::UnknownNamespace,
        Code::UnknownPod,
        Code::UnknownExternal,
        Code::InvalidPort,
        Code::PortNotServed,
        Code::InvalidLabel,
        Code::InvalidPattern,
        Code::MatchesNothing,
        Code::InvalidCidr,
        Code::InvalidTable,
        Code::NoExpectation,
        Code::LoopbackConflict,
        Code::ContradictsSpec,
        Code::PolicyFile,
        Code::InvalidPolicy,
        Code::SkippedDocument,
        Code::UnsupportedPolicy,
        Code::InvalidStep,
        Code::Conflict,
        Code::ExistingNamespace,
        Code::InvalidWorkload,
    ];

    /// Parses the short name (`unknown-pod`), with or without the `netreach::` prefix.
    pub fn from_name(name: &str) -> Option<Code> {
        let name = name.strip_prefix("netreach::").unwrap_or(name);
        Code::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "netreach::{}", self.name())
    }
}
