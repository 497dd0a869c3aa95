//! Scenario files: reading, parsing (serde-saphyr, spans kept) and validation into the
//! [`crate::model`].
//!
//! Shape errors (YAML syntax, unknown fields, wrong types) stop the parse of that file: serde
//! reports the first. Everything after the parse — names, references, ports, CIDRs, tables,
//! steps — is checked completely, so one run of `netreach validate` lists every such problem.

mod expectations;
mod policy_files;
mod probes;
pub mod raw;
mod steps;
mod structure;
mod validate;

pub use crate::yaml::yaml_options;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, Diagnostics, Pos, Sink, SourceFile};
use crate::model::Scenario;
use crate::yaml::parse_yaml;

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
        Ok(raw) => {
            let mut sink = Sink {
                file: &file,
                out: &mut diagnostics,
            };
            Some(validate::validate(&raw, &mut sink, reader))
        }
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
