//! The serde layer's common ground: spanned values ([`Sp`], [`SpMap`]) and parsing YAML into
//! serde types with serde-saphyr, turning its errors into [`Diagnostic`]s.
//!
//! Both `scenario::raw` and `policy::raw` build on this; neither imports the other's spans.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Code, Diagnostic, Pos, SourceFile};

/// A value with the place in the file it came from.
pub type Sp<T> = Spanned<T>;

/// A YAML mapping whose keys and values both keep their positions (label maps), in file order.
/// Duplicate keys are rejected by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMap<V>(pub Vec<(Sp<String>, Sp<V>)>);

impl<V> Default for SpMap<V> {
    fn default() -> Self {
        SpMap(Vec::new())
    }
}

impl<V> SpMap<V> {
    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&Sp<V>> {
        self.0.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }

    /// The plain key/value map.
    pub fn plain(&self) -> BTreeMap<String, V>
    where
        V: Clone,
    {
        self.0
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SpMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = SpMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of labels, e.g. `{app: web}`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<SpMap<V>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Sp<String>, Sp<V>>()? {
                    out.push((k, v));
                }
                Ok(SpMap(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
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
    parse_yaml_multi_text(file, &file.text)
}

/// Parses every YAML document of `text` into `T`, reporting errors in `file`: `text` is the
/// file's text with some documents blanked, every other byte in its place.
pub(crate) fn parse_yaml_multi_text<T: serde::de::DeserializeOwned>(
    file: &SourceFile,
    text: &str,
) -> Result<Vec<T>, Box<Diagnostic>> {
    serde_saphyr::from_str_multiple::<T, Vec<T>>(text)
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
