//! Scenario files: reading, parsing (serde-saphyr, spans kept) and validation into the
//! [`crate::model`].
//!
//! Shape errors (YAML syntax, unknown fields, wrong types) stop the parse of that file: serde
//! reports the first. Everything after the parse — names, references, ports, CIDRs, tables,
//! steps — is checked completely, so one run of `netreach validate` lists every such problem.

mod cluster;
pub mod raw;
mod validate;

pub(crate) use validate::port_pattern as port_pattern_of;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, Diagnostics, Pos, SourceFile};
use crate::model::Scenario;

/// The format version this netreach reads.
pub const FORMAT_VERSION: u32 = 1;

/// The result of loading one scenario file: the model when it is valid, and every diagnostic
/// (warnings can accompany a valid scenario).
#[derive(Debug)]
pub struct Loaded {
    /// The file as given.
    pub path: PathBuf,
    /// The scenario, when there were no errors.
    pub scenario: Option<Scenario>,
    /// Errors and warnings, in file order.
    pub diagnostics: Diagnostics,
}

/// Reads files for the loader; a seam so tests can load from memory.
pub trait FileReader {
    /// Reads a whole file.
    ///
    /// # Errors
    /// The IO error.
    fn read(&self, path: &Path) -> io::Result<String>;
}

/// Reads from the file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsReader;

impl FileReader for FsReader {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Files held in memory (for tests and fuzzing).
#[derive(Debug, Clone, Default)]
pub struct MemReader(pub BTreeMap<PathBuf, String>);

impl FileReader for MemReader {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }
}

/// Loads and validates a scenario file from disk.
pub fn load(path: &Path) -> Loaded {
    load_with(path, &FsReader)
}

/// Loads and validates a scenario file through `reader` (which also reads policy files).
pub fn load_with(path: &Path, reader: &dyn FileReader) -> Loaded {
    match reader.read(path) {
        Ok(text) => load_str(path, &text, reader),
        Err(e) => {
            let file = SourceFile::new(path, "");
            let d = Diagnostic::error(
                Code::Io,
                &file,
                Pos::UNKNOWN,
                format!("cannot read scenario: {e}"),
            )
            .with_help(
                "check the path; `netreach validate` takes scenario files or folders of them",
            );
            Loaded {
                path: path.to_owned(),
                scenario: None,
                diagnostics: Diagnostics(vec![d]),
            }
        }
    }
}

/// Loads and validates scenario text as if read from `path` (policy files are read through
/// `reader`, relative to `path`'s folder). Never panics, whatever the input.
pub fn load_str(path: &Path, text: &str, reader: &dyn FileReader) -> Loaded {
    let file = SourceFile::new(path, text);
    let mut diagnostics = Diagnostics::default();
    let scenario = match parse_yaml::<raw::RawScenario>(&file) {
        Ok(raw) => validate::validate(raw, &file, reader, &mut diagnostics),
        Err(d) => {
            diagnostics.push(*d);
            None
        }
    };
    diagnostics.sort();
    let scenario = if diagnostics.has_errors() {
        None
    } else {
        scenario
    };
    Loaded {
        path: path.to_owned(),
        scenario,
        diagnostics,
    }
}

/// Parses one YAML document into `T`, turning serde-saphyr's error into a diagnostic.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &SourceFile,
) -> Result<T, Box<Diagnostic>> {
    if file.text.trim().is_empty()
        || file
            .text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Box::new(
            Diagnostic::error(Code::MissingField, file, Pos::UNKNOWN, "the file is empty")
                .with_help("a scenario needs at least `version: 1`, `pods:` and `steps:`; see docs/scenarios.md"),
        ));
    }
    serde_saphyr::from_str_with_options::<T>(&file.text, yaml_options())
        .map_err(|e| Box::new(yaml_diagnostic(&e, file)))
}

/// Parser options: only YAML 1.2 booleans are booleans (`yes`, `y`, `on` are strings, so a
/// namespace may be called `y`; `existing: yes` is an error, not `true`).
pub fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.strict_booleans = true;
    o
}

/// Parses every YAML document of a file into `T`.
pub(crate) fn parse_yaml_multi<T: serde::de::DeserializeOwned>(
    file: &SourceFile,
) -> Result<Vec<T>, Box<Diagnostic>> {
    serde_saphyr::from_str_multiple::<T, Vec<T>>(&file.text)
        .map_err(|e| Box::new(yaml_diagnostic(&e, file)))
}

/// Maps a serde-saphyr error to a diagnostic with a code and a position.
pub(crate) fn yaml_diagnostic(e: &serde_saphyr::Error, file: &SourceFile) -> Diagnostic {
    use serde_saphyr::Error as E;
    let mut e = e;
    while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = e {
        e = error;
    }
    let (code, help) = match e {
        E::SerdeUnknownField { .. } => (
            Code::UnknownField,
            Some(
                "check the spelling; docs/scenarios.md lists every field (the JSON Schema in docs/scenario.schema.json lets editors complete them)",
            ),
        ),
        E::SerdeMissingField { .. } => (
            Code::MissingField,
            Some("add the field; docs/scenarios.md says what it takes"),
        ),
        E::SerdeInvalidType { .. }
        | E::SerdeInvalidValue { .. }
        | E::SerdeInvalidLength { .. }
        | E::SerdeUnknownVariant { .. }
        | E::InvalidScalar { .. }
        | E::NullIntoString { .. }
        | E::InvalidBooleanStrict { .. }
        | E::ExternallyTaggedEnumExpectedScalarOrMapping { .. }
        | E::ExpectedStringKeyForExternallyTaggedEnum { .. }
        | E::UnexpectedValueForUnitEnumVariant { .. }
        | E::Unexpected { .. } => (
            Code::WrongType,
            Some("see docs/scenarios.md for the shape this field takes"),
        ),
        E::QuotingRequired { .. } => (
            Code::WrongType,
            Some("this field takes a string: quote the value, e.g. `\"1\"` or `\"true\"`"),
        ),
        E::DuplicateMappingKey { .. } => (
            Code::Duplicate,
            Some("a key may appear once per mapping; remove or merge the duplicate"),
        ),
        E::Budget { .. } => (
            Code::Syntax,
            Some("the document is too large or too deeply nested to be a scenario"),
        ),
        _ => (Code::Syntax, Some("fix the YAML syntax at this position")),
    };
    let pos = e
        .location()
        .map_or(Pos::UNKNOWN, |l| Pos::from_location(file, &l));
    let mut message = plain_message(e);
    let mut help = help.map(str::to_owned);
    if matches!(e, E::NullIntoString { .. }) {
        message = "a value is missing (null) where text is expected".into();
        help = Some(
            "write the value, quoted if it could be mistaken for something else (`\"\"` for empty)"
                .into(),
        );
    } else if message.contains("anchor or alias") {
        help = Some("`*` and `&` start YAML aliases and anchors: quote patterns with wildcards, e.g. `from: \"*\"`, `to: \"x/*\"`".into());
    }
    let mut d = Diagnostic::error(code, file, pos, message);
    if let Some(h) = help {
        d = d.with_help(h);
    }
    d
}

/// serde-saphyr's message without its own location suffix or snippet (we render our own).
fn plain_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("").trim();
    // Drop a trailing " at line N, column M" that duplicates our position.
    let msg = match first.rfind(" at line ") {
        Some(i) if first[i..].contains("column") => &first[..i],
        _ => first,
    };
    let msg = msg.trim_start_matches("error: ").trim();
    // And a leading "line N column M: ".
    let msg = match msg.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, rest)) if pos.contains("column") => rest,
        _ => msg,
    };
    if msg.is_empty() {
        "invalid YAML".to_owned()
    } else {
        msg.to_owned()
    }
}

/// Expands paths: files are kept; folders are searched recursively for `*.yaml`/`*.yml`, sorted
/// for a stable order. Folders named `policies` are skipped: they hold policy files that
/// scenarios refer to, not scenarios.
///
/// # Errors
/// When a path does not exist or a folder cannot be read.
pub fn discover(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            collect_dir(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "policies") {
                collect_dir(&p, out)?;
            }
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// The JSON Schema of the scenario format, generated from [`raw::RawScenario`] (pretty-printed,
/// with a trailing newline; `docs/scenario.schema.json` holds this text).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(raw::RawScenario);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests;
