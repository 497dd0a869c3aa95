//! Diagnostics: what is wrong with an input file, where, and what would be right.
//!
//! Every problem found while loading or validating a scenario becomes a [`Diagnostic`] with a
//! stable [`Code`], a position (file, line, column, byte span) and, where we know it, a `help`
//! text saying what would be right. Validation collects all of them instead of stopping at the
//! first; [`Diagnostics::render`] prints them through miette with the source snippet.
//!
//! This module is pure: no IO besides what the caller hands in as source text.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

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
    /// A CIDR, an `except` entry or an address placeholder that is not valid.
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
    /// A step action that does not fit the policies in force at that step.
    InvalidStep,
    /// Fields that cannot be used together, or a combination that is missing.
    Conflict,
    /// Something refers to a namespace that exists in the cluster (not the scenario's) in a way
    /// that would create, change or delete it.
    ExistingNamespace,
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
            Code::InvalidStep => "invalid-step",
            Code::Conflict => "conflict",
            Code::ExistingNamespace => "existing-namespace",
        }
    }

    /// Every code, for documentation and for parsing fixture annotations.
    pub const ALL: [Code; 26] = [
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
        Code::InvalidStep,
        Code::Conflict,
        Code::ExistingNamespace,
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

/// How bad a diagnostic is. Only errors make a scenario invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The scenario is unusable until this is fixed.
    Error,
    /// Probably a mistake; the scenario still runs.
    Warning,
}

/// A source file as read, shared by every diagnostic that points into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user gave it (relative paths stay relative, for readable output).
    pub path: PathBuf,
    /// The whole text.
    pub text: Arc<str>,
}

impl SourceFile {
    /// Wraps text read from `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The 1-based line and column of a byte offset (columns count characters).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// The byte offset of a 1-based line and column (columns count characters). Out-of-range
    /// positions are clamped to the end of the text.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let in_line: usize = l
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + in_line;
            }
            offset += l.len();
        }
        self.text.len()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A position in a source file: byte span plus the 1-based line and column of its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    /// Byte offset of the start.
    pub offset: usize,
    /// Length in bytes (0 for a point).
    pub len: usize,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column in characters; 0 when unknown.
    pub col: usize,
}

impl Pos {
    /// An unknown position (diagnostics without one point at the file as a whole).
    pub const UNKNOWN: Pos = Pos {
        offset: 0,
        len: 0,
        line: 0,
        col: 0,
    };

    /// The position of a serde-saphyr location in `file`.
    pub fn from_location(file: &SourceFile, loc: &Location) -> Pos {
        if loc.line() == 0 {
            return Pos::UNKNOWN;
        }
        let line = loc.line() as usize;
        let col = loc.column() as usize;
        let span = loc.span();
        let offset = span
            .byte_offset()
            .map_or_else(|| file.offset_of(line, col), |o| o as usize);
        let len = span.byte_len().unwrap_or(0) as usize;
        Pos {
            offset,
            len,
            line,
            col,
        }
    }

    /// The position of a byte range in `file`.
    pub fn from_range(file: &SourceFile, offset: usize, len: usize) -> Pos {
        let (line, col) = file.line_col(offset);
        Pos {
            offset,
            len,
            line,
            col,
        }
    }

    /// Whether the position is known.
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of problem.
    pub code: Code,
    /// How bad.
    pub severity: Severity,
    /// What is wrong, one sentence.
    pub message: String,
    /// The file it is in.
    pub file: SourceFile,
    /// Where in the file.
    pub pos: Pos,
    /// A short label for the snippet ("this pod", "declared here").
    pub label: Option<String>,
    /// What would be right.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `pos` in `file`.
    pub fn error(code: Code, file: &SourceFile, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            file: file.clone(),
            pos,
            label: None,
            help: None,
        }
    }

    /// A warning at `pos` in `file`.
    pub fn warning(code: Code, file: &SourceFile, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, pos, message)
        }
    }

    /// Adds the text saying what would be right.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `path:line:col` (or just `path` when the position is unknown).
    pub fn location(&self) -> String {
        if self.pos.is_known() {
            format!(
                "{}:{}:{}",
                self.file.path.display(),
                self.pos.line,
                self.pos.col
            )
        } else {
            self.file.path.display().to_string()
        }
    }

    /// One line: `path:line:col: error[netreach::code]: message`, then help on the next.
    pub fn to_short_string(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut s = format!(
            "{}: {sev}[{}]: {}",
            self.location(),
            self.code,
            self.message
        );
        if let Some(help) = &self.help {
            s.push_str("\n  help: ");
            s.push_str(help);
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        if self.pos.is_known() {
            Some(self as &dyn miette::SourceCode)
        } else {
            None
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if !self.pos.is_known() {
            return None;
        }
        let offset = self.pos.offset.min(self.file.text.len());
        let len = self.pos.len.min(self.file.text.len() - offset);
        Some(Box::new(std::iter::once(miette::LabeledSpan::new(
            self.label.clone(),
            offset,
            len,
        ))))
    }
}

impl miette::SourceCode for Diagnostic {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .file
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.path.display().to_string(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// An ordered collection of diagnostics, as validation produces them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Whether any is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// How many errors.
    pub fn error_count(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// How many warnings.
    pub fn warning_count(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Sorts by file, then position, keeping the order of equal positions.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (a.file.path.as_path(), a.pos.line, a.pos.col).cmp(&(
                b.file.path.as_path(),
                b.pos.line,
                b.pos.col,
            ))
        });
    }

    /// Renders every diagnostic with miette's graphical handler (colours only when `color`).
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_links(false);
        let mut out = String::new();
        for d in &self.0 {
            // Rendering into a String cannot fail; fall back to the short form if it ever does.
            if handler.render_report(&mut out, d).is_err() {
                out.push_str(&d.to_short_string());
                out.push('\n');
            }
            // miette prints the position in the snippet header; the short form names it
            // even where there is no snippet.
            if !d.pos.is_known() {
                out.push_str(&format!("  --> {}\n", d.location()));
            }
            out.push('\n');
        }
        out
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Helper for validation code: a file plus the diagnostics found in it so far.
#[derive(Debug)]
pub struct Sink<'a> {
    /// The file being checked.
    pub file: &'a SourceFile,
    /// Where diagnostics go.
    pub out: &'a mut Diagnostics,
}

impl Sink<'_> {
    /// Records an error at a spanned value.
    pub fn error_at<T>(
        &mut self,
        code: Code,
        at: &Spanned<T>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let pos = Pos::from_location(self.file, &at.referenced);
        self.error(code, pos, message)
    }

    /// Records an error at a position.
    pub fn error(&mut self, code: Code, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.out
            .push(Diagnostic::error(code, self.file, pos, message));
        self.out.0.last_mut().expect("just pushed")
    }

    /// Records a warning at a position.
    pub fn warning(&mut self, code: Code, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.out
            .push(Diagnostic::warning(code, self.file, pos, message));
        self.out.0.last_mut().expect("just pushed")
    }

    /// The position of a spanned value in this file.
    pub fn pos<T>(&self, at: &Spanned<T>) -> Pos {
        Pos::from_location(self.file, &at.referenced)
    }
}

/// Extension for chaining help onto a just-recorded diagnostic.
pub trait DiagExt {
    /// Sets the help text.
    fn help(&mut self, help: impl Into<String>) -> &mut Self;
    /// Sets the label.
    fn label(&mut self, label: impl Into<String>) -> &mut Self;
}

impl DiagExt for Diagnostic {
    fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
    fn label(&mut self, label: impl Into<String>) -> &mut Self {
        self.label = Some(label.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_and_offset_round_trip() {
        let f = SourceFile::new("a.yaml", "ab\ncdé\nf");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(5), (2, 3));
        assert_eq!(f.offset_of(2, 3), 5);
        assert_eq!(f.offset_of(3, 1), 8);
        assert_eq!(f.offset_of(9, 1), f.text.len());
        // An offset inside a multi-byte character does not panic.
        assert_eq!(f.line_col(6), (2, 3));
    }

    #[test]
    fn code_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.name()), "duplicate code name {}", c.name());
            assert_eq!(Code::from_name(c.name()), Some(c));
            assert_eq!(Code::from_name(&c.to_string()), Some(c));
        }
        assert_eq!(Code::from_name("nope"), None);
    }

    #[test]
    fn render_names_file_line_and_help() {
        let f = SourceFile::new("s.yaml", "version: 1\npods: []\n");
        let d = Diagnostic::error(Code::Version, &f, Pos::from_range(&f, 9, 1), "bad")
            .with_help("write `version: 1`");
        let out = Diagnostics(vec![d]).render(false);
        assert!(out.contains("netreach::version"), "{out}");
        assert!(out.contains("s.yaml:1:10"), "{out}");
        assert!(out.contains("write `version: 1`"), "{out}");
    }
}
