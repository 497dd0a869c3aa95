//! Finding scenario files under the paths given: files are kept, folders are searched
//! recursively and every YAML file in them is looked at: it is a scenario by its content (a
//! top-level `version:` and the scenario's fields), never by the folder it is in. Kubernetes
//! manifests (policy files among them) and other YAML are skipped.
//!
//! Symlinks are followed, but every folder is searched once and every file found once (by
//! canonical path), so a link back up the tree (`ln -s . loop`) neither loops nor finds the same
//! scenario again.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};

use super::files::{FileReader, FsReader, ReadError};

/// What discovery found under the paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Scenario files, in order (files given by name first where they were named, folders'
    /// contents sorted).
    pub scenarios: Vec<PathBuf>,
    /// YAML files in the folders that are not scenarios, and why.
    pub skipped: Vec<(PathBuf, Skipped)>,
}

/// Why a YAML file found in a folder is not taken as a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// A Kubernetes manifest (it has `apiVersion` or `kind`), such as a policy file.
    Manifest(Option<String>),
    /// YAML without a top-level `version:` and the scenario's fields (also: empty).
    NotAScenario,
    /// A FIFO, a device or another special file.
    NotAFile(&'static str),
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skipped::Manifest(Some(kind)) => write!(f, "a Kubernetes manifest (`{kind}`)"),
            Skipped::Manifest(None) => f.write_str("a Kubernetes manifest"),
            Skipped::NotAScenario => {
                f.write_str("not a scenario (no top-level `version:` with scenario fields)")
            }
            Skipped::NotAFile(kind) => write!(f, "a {kind}, not a regular file"),
        }
    }
}

/// Expands paths into scenario files: files given by name are kept (whatever they hold, so that
/// loading says what is wrong with them); folders are searched recursively for `*.yaml` and
/// `*.yml`, sorted for a stable order, and a file in them is a scenario by its content. A file
/// reached twice (twice named, or through a symlink) is listed once, under the first path it was
/// found by.
///
/// # Errors
/// When a path does not exist or a folder cannot be read.
pub fn discover(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    discover_all(paths).map(|d| d.scenarios)
}

/// [`discover`], with the YAML files it skipped and why.
///
/// # Errors
/// When a path does not exist or a folder cannot be read.
pub fn discover_all(paths: &[PathBuf]) -> io::Result<Discovery> {
    let mut walk = Walk::default();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            walk.dir(p)?;
        } else if walk.first_time(p) {
            walk.found.scenarios.push(p.clone());
        }
    }
    Ok(walk.found)
}

#[derive(Default)]
struct Walk {
    /// Canonical folders searched so far.
    dirs: BTreeSet<PathBuf>,
    /// Canonical files seen so far.
    files: BTreeSet<PathBuf>,
    found: Discovery,
}

impl Walk {
    /// Whether `p` is seen for the first time (by its canonical path).
    fn first_time(&mut self, p: &Path) -> bool {
        let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        self.files.insert(canonical)
    }

    fn dir(&mut self, dir: &Path) -> io::Result<()> {
        if !self.dirs.insert(std::fs::canonicalize(dir)?) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for p in entries {
            if std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
                self.dir(&p)?;
                continue;
            }
            let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if !yaml || !self.first_time(&p) {
                continue;
            }
            match classify(&p) {
                None => self.found.scenarios.push(p),
                Some(why) => self.found.skipped.push((p, why)),
            }
        }
        Ok(())
    }
}

/// Why the YAML file at `p` is not a scenario, or `None` when it is one — or when it cannot be
/// told (unreadable, too large, not YAML): loading then says what is wrong with it.
fn classify(p: &Path) -> Option<Skipped> {
    let text = match FsReader.read(p) {
        Ok(t) => t,
        Err(ReadError::NotAFile(kind)) => return Some(Skipped::NotAFile(kind)),
        Err(_) => return None,
    };
    classify_text(&text)
}

/// The top-level keys of a scenario besides `version`; a scenario has at least one.
const SCENARIO_KEYS: [&str; 6] = [
    "namespaces",
    "pods",
    "external",
    "probes",
    "loopback",
    "steps",
];

fn classify_text(text: &str) -> Option<Skipped> {
    // The first document decides; the others are not read.
    let mut input = io::Cursor::new(text.as_bytes());
    let first = serde_saphyr::read::<_, TopLevel>(&mut input).next();
    let doc = match first {
        None => return Some(Skipped::NotAScenario),
        Some(Err(_)) => return None,
        Some(Ok(doc)) => doc,
    };
    let TopLevel::Map { keys, kind } = doc else {
        return Some(Skipped::NotAScenario);
    };
    if keys.contains("apiVersion") || keys.contains("kind") {
        return Some(Skipped::Manifest(kind));
    }
    let scenario = keys.contains("version") && SCENARIO_KEYS.iter().any(|k| keys.contains(*k));
    (!scenario).then_some(Skipped::NotAScenario)
}

/// A document's top level, as far as discovery looks: its keys (and `kind`, when it is text).
enum TopLevel {
    Map {
        keys: BTreeSet<String>,
        kind: Option<String>,
    },
    Other,
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML document")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TopLevel, A::Error> {
                let mut keys = BTreeSet::new();
                let mut kind = None;
                while let Some(k) = m.next_key::<Key>()? {
                    match k.0 {
                        Some(k) if k == "kind" => {
                            kind = m.next_value::<Text>()?.0;
                            keys.insert(k);
                        }
                        Some(k) => {
                            m.next_value::<IgnoredAny>()?;
                            keys.insert(k);
                        }
                        None => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(TopLevel::Map { keys, kind })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<TopLevel, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TopLevel::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_unit<E>(self) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_none<E>(self) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping key: its text when it is text (or a scalar that reads as text), else `None`.
struct Key(Option<String>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(|t| Key(t.0))
    }
}

/// Any value; its text when it is a string.
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(Some(v.to_owned())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_unit<E>(self) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_none<E>(self) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Text, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Text, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_told_by_their_content() {
        let scenario = Some(Skipped::NotAScenario);
        for (text, want) in [
            ("version: 1\npods: []\nsteps: []\n", None),
            ("version: 1\nsteps: [{expect: []}]\n", None),
            // A scenario with a typo is still a scenario: loading reports the typo.
            ("version: 1\npods: []\nstpes: []\n", None),
            ("version: 2\nnamespaces: [{name: x}]\n", None),
            (
                "# yaml-language-server: $schema=x\n---\nversion: 1\npods: []\n",
                None,
            ),
            // Not YAML, or not readable as such: loading says what is wrong.
            ("version: 1\npods: [\n", None),
            (
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n",
                Some(Skipped::Manifest(Some("NetworkPolicy".into()))),
            ),
            (
                "kind: Deployment\nversion: 1\npods: []\n",
                Some(Skipped::Manifest(Some("Deployment".into()))),
            ),
            ("apiVersion: v1\n", Some(Skipped::Manifest(None))),
            (
                "version: \"3\"\nservices: {web: {image: nginx}}\n",
                scenario.clone(),
            ),
            ("pods: []\nsteps: []\n", scenario.clone()),
            ("version: 1\n", scenario.clone()),
            ("", scenario.clone()),
            ("# only a comment\n", scenario.clone()),
            ("- version\n- pods\n", scenario.clone()),
            ("just text\n", scenario.clone()),
            ("{1: a, [x]: b}\n", scenario.clone()),
        ] {
            assert_eq!(classify_text(text), want, "{text:?}");
        }
    }
}
