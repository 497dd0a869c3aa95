//! Scenario files: reading, parsing (serde-saphyr, spans kept) and validation into the
//! [`crate::model`].
//!
//! Shape errors (YAML syntax, unknown fields, wrong types) stop the parse of that file: serde
//! reports the first. Everything after the parse — names, references, ports, CIDRs, tables,
//! steps — is checked completely, so one run of `netreach validate` lists every such problem.

mod cluster;
mod discover;
mod expectations;
mod files;
mod members;
pub(crate) mod policy_files;
mod probes;
pub mod raw;
mod steps;
mod structure;
mod validate;

pub use crate::yaml::yaml_options;
pub use discover::{Discovery, Skipped, discover, discover_all};
pub use files::{FileReader, FsReader, MAX_FILE_SIZE, MemReader, ReadError};

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

/// How scenarios are loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Folders outside the scenario's repository that policy `file:` paths may point into
    /// (`--allow-path`).
    pub allow_paths: Vec<PathBuf>,
}

/// An `--allow-path` that is not a folder.
#[derive(Debug, thiserror::Error)]
#[error("--allow-path {}: {why}", path.display())]
pub struct AllowPathError {
    /// The path as given.
    pub path: PathBuf,
    /// What is wrong with it.
    pub why: String,
}

impl LoadOptions {
    /// Options allowing policy files from these folders too, each checked to be a folder.
    ///
    /// # Errors
    /// The first path that does not exist or is not a folder.
    pub fn allowing(paths: &[PathBuf]) -> Result<LoadOptions, AllowPathError> {
        for p in paths {
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(AllowPathError {
                        path: p.clone(),
                        why: "not a folder".into(),
                    });
                }
                Err(e) => {
                    return Err(AllowPathError {
                        path: p.clone(),
                        why: e.to_string(),
                    });
                }
            }
        }
        Ok(LoadOptions {
            allow_paths: paths.to_vec(),
        })
    }
}

/// Loads and validates a scenario file from disk.
pub fn load(path: &Path) -> Loaded {
    load_with(path, &FsReader)
}

/// Loads and validates a scenario file from disk with `options`.
pub fn load_with_options(path: &Path, options: &LoadOptions) -> Loaded {
    Loader {
        reader: &FsReader,
        options,
    }
    .load(path)
}

/// Loads and validates a scenario file through `reader` (which also reads policy files).
pub fn load_with(path: &Path, reader: &dyn FileReader) -> Loaded {
    Loader {
        reader,
        options: &LoadOptions::default(),
    }
    .load(path)
}

/// Loads and validates scenario text as if read from `path` (policy files are read through
/// `reader`, relative to `path`'s folder). Never panics, whatever the input.
pub fn load_str(path: &Path, text: &str, reader: &dyn FileReader) -> Loaded {
    Loader {
        reader,
        options: &LoadOptions::default(),
    }
    .load_str(path, text)
}

/// A reader and options: what loading needs besides the path.
#[derive(Clone, Copy)]
pub struct Loader<'a> {
    /// Reads the scenario and its policy files.
    pub reader: &'a dyn FileReader,
    /// How to load.
    pub options: &'a LoadOptions,
}

impl std::fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("options", self.options)
            .finish_non_exhaustive()
    }
}

impl Loader<'_> {
    /// Loads and validates the scenario file at `path`.
    pub fn load(&self, path: &Path) -> Loaded {
        match self.reader.read(path) {
            Ok(text) => self.load_str(path, &text),
            Err(e) => {
                let file = SourceFile::new(path, "");
                let help = match e {
                    ReadError::Io(_) => {
                        "check the path; `netreach validate` takes scenario files or folders of them"
                    }
                    ReadError::NotAFile(_) => "a scenario is a regular YAML file",
                    ReadError::TooLarge => {
                        "a scenario is a few kilobytes of YAML; check that the path names the right file"
                    }
                };
                let d = Diagnostic::error(
                    Code::Io,
                    &file,
                    Pos::UNKNOWN,
                    format!("cannot read scenario: {e}"),
                )
                .with_help(help);
                Loaded {
                    path: path.to_owned(),
                    scenario: None,
                    diagnostics: Diagnostics(vec![d]),
                }
            }
        }
    }

    /// Loads and validates scenario text as if read from `path`. Never panics, whatever the
    /// input.
    pub fn load_str(&self, path: &Path, text: &str) -> Loaded {
        let file = SourceFile::new(path, text);
        let mut diagnostics = Diagnostics::default();
        let scenario = match parse_yaml::<raw::RawScenario>(&file) {
            Ok(raw) => {
                let mut sink = Sink {
                    file: &file,
                    out: &mut diagnostics,
                };
                Some(validate::validate(&raw, &mut sink, *self))
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
mod member_tests;
#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod step_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod workload_tests;
