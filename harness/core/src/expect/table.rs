//! Truth tables as text: the header of columns, then one line per source pod.

/// A cell value in a truth table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableCell {
    /// `.`
    Allow,
    /// `X`
    Block,
    /// `?`: no expectation from this table.
    Unset,
}

/// A truth table as parsed from text, with the byte offset (within the text) of every token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTable {
    /// Column names with their offsets.
    pub columns: Vec<(String, usize)>,
    /// Rows: name, offset, cells with offsets.
    pub rows: Vec<TableRow>,
}

/// One row of a truth table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRow {
    /// Source pod name as written.
    pub name: String,
    /// Offset of the name within the table text.
    pub offset: usize,
    /// Cells with their offsets.
    pub cells: Vec<(TableCell, usize)>,
}

/// A problem in a table's text: offset within the text, length, message.
pub type TableError = (usize, usize, String);

/// Parses a truth table. Blank lines and lines starting with `#` are skipped. The first line
/// lists the columns, optionally after a `-` corner.
///
/// # Errors
/// Every problem found, each with its offset in `text`.
pub fn parse_table(text: &str) -> Result<ParsedTable, Vec<TableError>> {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            lines.push(tokens(line, offset));
        }
        offset += line.len();
    }
    let Some((header, body)) = lines.split_first() else {
        return Err(vec![(
            0,
            0,
            "the table is empty; write a header line of columns, then one line per source pod"
                .into(),
        )]);
    };
    let mut columns: Vec<(String, usize)> = header.clone();
    if columns.first().is_some_and(|(t, _)| t == "-") {
        columns.remove(0);
    }
    if columns.is_empty() {
        errors.push((
            header.first().map_or(0, |t| t.1),
            1,
            "the header line names no columns".into(),
        ));
    }
    let mut rows = Vec::new();
    for line in body {
        let Some(((name, noff), cells)) = line.split_first() else {
            continue;
        };
        if cells.len() != columns.len() {
            errors.push((
                *noff,
                name.len(),
                format!(
                    "row `{name}` has {} cells but the header has {} columns",
                    cells.len(),
                    columns.len()
                ),
            ));
            continue;
        }
        let mut parsed = Vec::new();
        for (cell, coff) in cells {
            let v = match cell.as_str() {
                "." => TableCell::Allow,
                "X" | "x" => TableCell::Block,
                "?" => TableCell::Unset,
                other => {
                    errors.push((*coff, other.len(), format!("`{other}` is not a table cell; use `.` (allowed), `X` (blocked) or `?` (no expectation)")));
                    continue;
                }
            };
            parsed.push((v, *coff));
        }
        rows.push(TableRow {
            name: name.clone(),
            offset: *noff,
            cells: parsed,
        });
    }
    if body.is_empty() && errors.is_empty() {
        errors.push((
            header[0].1,
            header[0].0.len(),
            "the table has a header but no rows".into(),
        ));
    }
    if errors.is_empty() {
        Ok(ParsedTable { columns, rows })
    } else {
        Err(errors)
    }
}

fn tokens(line: &str, base: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, ch) in line.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((line[s..i].to_owned(), base + s));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((line[s..].to_owned(), base + s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables_with_and_without_corner() {
        let t = parse_table("-   x/a x/b\nx/a .   X\nx/b ?   x\n").expect("valid");
        assert_eq!(
            t.columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["x/a", "x/b"]
        );
        assert_eq!(t.rows.len(), 2);
        assert_eq!(
            t.rows[0].cells.iter().map(|c| c.0).collect::<Vec<_>>(),
            [TableCell::Allow, TableCell::Block]
        );
        assert_eq!(
            t.rows[1].cells.iter().map(|c| c.0).collect::<Vec<_>>(),
            [TableCell::Unset, TableCell::Block]
        );
        let t2 = parse_table("  x/a x/b\n\n# comment\n  x/a . .\n").expect("valid");
        assert_eq!(t2.columns.len(), 2);
        assert_eq!(t2.rows[0].offset, "  x/a x/b\n\n# comment\n  ".len());
    }

    #[test]
    fn reports_every_table_problem() {
        let errs = parse_table("x/a x/b\nx/a . \nx/b . Y\n").expect_err("invalid");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].2.contains("has 1 cells but the header has 2"));
        assert!(errs[1].2.contains("`Y` is not a table cell"));
        assert_eq!(errs[1].0, "x/a x/b\nx/a . \nx/b . ".len());
        assert!(parse_table("").is_err());
        assert!(parse_table("x/a\n").is_err());
        assert!(parse_table("-\nx/a\n").is_err());
    }
}
