//! Diagnostics: what is wrong with an input file, where, and what would be right.
//!
//! Every problem found while loading or validating a scenario becomes a [`Diagnostic`] with a
//! stable [`Code`], a position (file, line, column, byte span) and, where we know it, a `help`
//! text saying what would be right. Validation collects all of them instead of stopping at the
//! first; [`Diagnostics::render`] prints them through miette with the source snippet.
//!
//! This module is pure: no IO besides what the caller hands in as source text.

mod code;
mod source;

pub use code::Code;
pub use source::{Pos, SourceFile};

use std::fmt;

use serde_saphyr::Spanned;

/// How bad a diagnostic is. Only errors make a scenario invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The scenario is unusable until this is fixed.
    Error,
    /// Probably a mistake; the scenario still runs.
    Warning,
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
    /// The snippet around `span`, read from the first line it shows rather than from the start of
    /// the file (as `str`'s implementation does), so that rendering N diagnostics of a file takes
    /// time linear in N; the result is the same (`tests::snippets_read_from_their_line_*`).
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let text: &str = &self.file.text;
        let (base, lines_before) = self
            .file
            .snippet_start(span.offset().min(text.len()), context_lines_before);
        let local =
            miette::SourceSpan::new((span.offset().saturating_sub(base)).into(), span.len());
        let inner = text[base..].read_span(&local, context_lines_before, context_lines_after)?;
        let found = inner.span();
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.path.display().to_string(),
            inner.data(),
            miette::SourceSpan::new((found.offset() + base).into(), found.len()),
            inner.line() + lines_before,
            inner.column(),
            inner.line_count() + lines_before,
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

/// Where validation reports problems: the file being checked, and the diagnostics found so far
/// (of every file). The one emitter of loading, policy validation and expectation expansion.
#[derive(Debug)]
pub struct Sink<'a> {
    /// The file being checked.
    pub file: &'a SourceFile,
    /// Where diagnostics go.
    pub out: &'a mut Diagnostics,
}

impl Sink<'_> {
    /// A sink for another file (a policy file a scenario refers to) into the same diagnostics.
    pub fn for_file<'b>(&'b mut self, file: &'b SourceFile) -> Sink<'b> {
        Sink {
            file,
            out: &mut *self.out,
        }
    }

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

    /// Records a warning at a spanned value.
    pub fn warning_at<T>(
        &mut self,
        code: Code,
        at: &Spanned<T>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let pos = Pos::from_location(self.file, &at.referenced);
        self.warning(code, pos, message)
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

    /// Every span of a few awkward texts, with 0-3 context lines: the snippet read from its first
    /// line equals the one `str` reads from the start of the file.
    #[test]
    fn snippets_read_from_their_line_equal_those_read_from_the_start() {
        use miette::SourceCode as _;
        let texts = [
            "",
            "one line",
            "a\nbb\nccc\ndddd\n",
            "a\r\nbé\r\n\r\nc\r\n",
            "x\n\n\ny: 1\n  z: [a, b]\nend",
            "lone\rcr\nhere",
            "µ€\n𝄞x\ny\n",
        ];
        for text in texts {
            let d = Diagnostic::error(
                Code::Syntax,
                &SourceFile::new("t.yaml", text),
                Pos::UNKNOWN,
                "m",
            );
            for offset in 0..=text.len() {
                for len in [0, 1, 3, 7] {
                    let span = miette::SourceSpan::new(offset.into(), len);
                    for ctx in 0..4 {
                        let want = text.read_span(&span, ctx, ctx);
                        let got = d.read_span(&span, ctx, ctx);
                        match (want, got) {
                            (Ok(w), Ok(g)) => {
                                let what = format!("{text:?} {offset}+{len} ctx {ctx}");
                                assert_eq!(g.data(), w.data(), "{what}");
                                assert_eq!(g.span(), w.span(), "{what}");
                                assert_eq!(g.line(), w.line(), "{what}");
                                assert_eq!(g.column(), w.column(), "{what}");
                                assert_eq!(g.line_count(), w.line_count(), "{what}");
                            }
                            (Err(_), Err(_)) => {}
                            (w, g) => panic!(
                                "{text:?} {offset}+{len} ctx {ctx}: {:?} vs {:?}",
                                w.is_ok(),
                                g.is_ok()
                            ),
                        }
                    }
                }
            }
        }
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
