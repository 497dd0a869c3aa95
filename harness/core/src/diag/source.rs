//! Source files and positions in them.

use std::path::PathBuf;
use std::sync::Arc;

use serde_saphyr::Location;

/// A source file as read, shared by every diagnostic that points into it, with an index of its
/// line starts so that positions are found without scanning from the start of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user gave it (relative paths stay relative, for readable output).
    pub path: PathBuf,
    /// The whole text.
    pub text: Arc<str>,
    /// Byte offset of the start of every line (after each `\n`), the first being 0.
    line_starts: Arc<[usize]>,
    /// Whether a `\r` ends a line on its own (miette counts it as a line break, the index does
    /// not: rendering then reads such a file from its start).
    lone_cr: bool,
}

impl SourceFile {
    /// Wraps text read from `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let bytes = text.as_bytes();
        let line_starts = std::iter::once(0)
            .chain(
                bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        let lone_cr = bytes
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        SourceFile {
            path: path.into(),
            text,
            line_starts,
            lone_cr,
        }
    }

    /// The 0-based line a byte offset is on (the number of `\n` before it).
    fn line_index(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset) - 1
    }

    /// The 1-based line and column of a byte offset (columns count characters).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let line = self.line_index(offset);
        let col = self.text[self.line_starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The byte offset of a 1-based line and column (columns count characters). Out-of-range
    /// positions are clamped to the end of the text.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        // Lines as `split_inclusive('\n')` yields them: a final `\n` starts no line.
        let lines = if self.text.ends_with('\n') || self.text.is_empty() {
            self.line_starts.len() - 1
        } else {
            self.line_starts.len()
        };
        if line == 0 || line > lines {
            return self.text.len();
        }
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        let in_line: usize = self.text[start..end]
            .chars()
            .take(col.saturating_sub(1))
            .map(char::len_utf8)
            .sum();
        start + in_line
    }

    /// Where to start reading for a snippet of the span at `offset` with `context_before` lines
    /// above it: the byte offset of the line before the first one shown (miette also looks at the
    /// byte before an empty span) and the number of lines before that. Reading from there gives
    /// the same snippet as reading from the start of the file, in time that does not grow with
    /// the offset.
    pub(crate) fn snippet_start(&self, offset: usize, context_before: usize) -> (usize, usize) {
        if self.lone_cr {
            return (0, 0);
        }
        let first = self
            .line_index(offset)
            .saturating_sub(context_before.saturating_add(1));
        (self.line_starts[first], first)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The scans the index replaced, as the reference.
    fn line_col_by_scan(text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    fn offset_of_by_scan(text: &str, line: usize, col: usize) -> usize {
        let mut offset = 0;
        for (i, l) in text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let n: usize = l
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + n;
            }
            offset += l.len();
        }
        text.len()
    }

    const TEXTS: [&str; 8] = [
        "",
        "\n",
        "a",
        "ab\ncdé\nf",
        "ab\ncdé\nf\n",
        "\n\nx\n\n",
        "a\r\nbé\r\n\r\nc",
        "µ€\n𝄞x\ny",
    ];

    #[test]
    fn the_index_agrees_with_a_scan_everywhere() {
        for text in TEXTS {
            let f = SourceFile::new("t.yaml", text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    f.line_col(offset),
                    line_col_by_scan(text, offset),
                    "{text:?} @ {offset}"
                );
            }
            for line in 0..=text.lines().count() + 2 {
                for col in 0..=8 {
                    assert_eq!(
                        f.offset_of(line, col),
                        offset_of_by_scan(text, line, col),
                        "{text:?} {line}:{col}"
                    );
                }
            }
        }
    }

    #[test]
    fn snippets_start_on_a_line_before_the_span() {
        let f = SourceFile::new("t.yaml", "a\nbb\nccc\ndddd\n");
        assert_eq!(f.snippet_start(0, 2), (0, 0));
        assert_eq!(f.snippet_start(6, 0), (2, 1)); // inside `ccc`: from `bb`
        assert_eq!(f.snippet_start(6, 1), (0, 0));
        assert_eq!(f.snippet_start(11, 1), (2, 1)); // inside `dddd`
        assert_eq!(f.snippet_start(14, 0), (9, 3)); // the end of the text
        // A lone `\r` is a line break to miette, not to the index: read from the start.
        assert_eq!(SourceFile::new("t", "a\rb\nc").snippet_start(4, 0), (0, 0));
    }
}
