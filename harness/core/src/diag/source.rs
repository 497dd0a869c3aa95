//! Source files and positions in them.

use std::path::PathBuf;
use std::sync::Arc;

use serde_saphyr::Location;

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
