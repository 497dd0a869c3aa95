//! Invalid scenarios must be rejected with exactly the diagnostics their fixtures announce.
//!
//! Every `*.yaml` directly in `fixtures/invalid/` starts with comment lines
//!
//! ```text
//! # expect: <code-name> <line>:<col>
//! # expect: <code-name> <path/relative/to/fixtures/invalid>:<line>:<col>
//! ```
//!
//! (the second form for diagnostics located in another file, e.g. a policy file under
//! `fixtures/invalid/policies/`). The fixture is loaded with [`netreach_core::scenario::load`]; the set
//! of reported *errors* (code, file, line, column) must equal the annotated set exactly. All
//! fixtures are checked before the test fails, and the failure lists, per fixture, what was
//! missing and what was unexpected.
//!
//! `fixtures/warnings/` holds scenarios that are valid but warned about, annotated the same way:
//! each must be accepted, with no error, and the set of its *warnings* must equal the annotated
//! set exactly.
//!
//! The second half is a property test: whatever text `load_str` gets — arbitrary strings or
//! mutations of a small valid scenario — it does not panic, rejects with at least one error, and
//! points every diagnostic at a line that exists.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use netreach_core::diag::{Code, Diagnostic, Severity};
use netreach_core::scenario::{self, MemReader};
use proptest::prelude::*;

/// Fewest fixtures the folder must hold.
const MIN_FIXTURES: usize = 25;
/// Fewest fixtures that must assert three or more diagnostics at once.
const MIN_MULTI_ERROR_FIXTURES: usize = 5;

fn fixtures_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/invalid");
    fs::canonicalize(&dir).unwrap_or_else(|e| panic!("cannot open {}: {e}", dir.display()))
}

/// One diagnostic as fixtures state it: code, file (`None`: the fixture itself), line, column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    code: Code,
    file: Option<String>,
    line: usize,
    col: usize,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            None => write!(f, "{} {}:{}", self.code.name(), self.line, self.col),
            Some(p) => write!(f, "{} {p}:{}:{}", self.code.name(), self.line, self.col),
        }
    }
}

/// Parses the `# expect:` annotations of a fixture.
///
/// Annotations must sit in the leading comment block; an `expect` comment anywhere else, a
/// malformed one, an unknown code name, or a fixture with none is an error.
fn parse_annotations(text: &str) -> Result<Vec<Expected>, String> {
    let mut out = Vec::new();
    let mut in_header = true;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        let Some(comment) = trimmed.strip_prefix('#').map(str::trim_start) else {
            if !trimmed.is_empty() {
                in_header = false;
            }
            // `key: value # expect: ...` would silently never be read.
            if line
                .split_once('#')
                .is_some_and(|(_, c)| c.trim_start().starts_with("expect"))
            {
                return Err(format!(
                    "line {n}: `expect` annotations must be whole comment lines at the top of the file"
                ));
            }
            continue;
        };
        // Anything that looks like an attempt at an annotation is held to the format.
        let Some(rest) = comment.strip_prefix("expect") else {
            continue;
        };
        if !in_header {
            return Err(format!(
                "line {n}: `# expect:` after the first non-comment line; annotations go at the top"
            ));
        }
        let Some(body) = rest.strip_prefix(':') else {
            return Err(format!(
                "line {n}: malformed annotation `{trimmed}`; write `# expect: <code> <line>:<col>`"
            ));
        };
        out.push(parse_expect(body.trim()).map_err(|e| format!("line {n}: {e} (`{trimmed}`)"))?);
    }
    if out.is_empty() {
        return Err(
            "no `# expect: <code> <line>:<col>` annotation; every invalid fixture must state its diagnostics"
                .into(),
        );
    }
    Ok(out)
}

fn parse_expect(body: &str) -> Result<Expected, String> {
    let mut words = body.split_whitespace();
    let (Some(code_name), Some(loc), None) = (words.next(), words.next(), words.next()) else {
        return Err(
            "an annotation is `<code> <line>:<col>` or `<code> <file>:<line>:<col>`".into(),
        );
    };
    let code = Code::from_name(code_name).ok_or_else(|| {
        let names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        format!(
            "unknown code `{code_name}`; codes are: {}",
            names.join(", ")
        )
    })?;
    // `line:col` or `file:line:col` (the file may itself not contain ':').
    let mut parts = loc.rsplitn(3, ':');
    let col = parts.next();
    let line = parts.next();
    let file = parts.next();
    let num = |s: Option<&str>, what: &str| -> Result<usize, String> {
        s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("`{loc}` has no valid {what} number"))
    };
    let col = num(col, "column")?;
    let line = num(line, "line")?;
    let file = match file {
        None => None,
        Some("") => return Err(format!("`{loc}` has an empty file name")),
        Some(f) => Some(normalize(Path::new(f))),
    };
    Ok(Expected {
        code,
        file,
        line,
        col,
    })
}

/// A relative path as `a/b/c`, without `.` components.
fn normalize(p: &Path) -> String {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// A reported diagnostic in the annotation's terms.
fn reported(d: &Diagnostic, fixture: &Path, dir: &Path) -> Expected {
    let file = if d.file.path == fixture {
        None
    } else {
        Some(match d.file.path.strip_prefix(dir) {
            Ok(rel) => normalize(rel),
            Err(_) => d.file.path.display().to_string(),
        })
    };
    Expected {
        code: d.code,
        file,
        line: d.pos.line,
        col: d.pos.col,
    }
}

fn fixture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn invalid_fixtures_report_exactly_their_annotated_diagnostics() {
    let dir = fixtures_dir();
    let files = fixture_files(&dir);
    let mut failures: Vec<String> = Vec::new();
    let mut multi = 0;

    for path in &files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: cannot read: {e}"));
                continue;
            }
        };
        let expected = match parse_annotations(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: bad annotations: {e}"));
                continue;
            }
        };
        let expected_set: BTreeSet<Expected> = expected.iter().cloned().collect();
        if expected_set.len() != expected.len() {
            failures.push(format!("{name}: the same annotation is written twice"));
        }
        if expected_set.len() >= 3 {
            multi += 1;
        }

        let loaded = scenario::load(path);
        let errors: Vec<&Diagnostic> = loaded
            .diagnostics
            .0
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        let got: BTreeSet<Expected> = errors.iter().map(|d| reported(d, path, &dir)).collect();

        let mut problems = Vec::new();
        if loaded.scenario.is_some() {
            problems.push("  the scenario was accepted (it must be rejected)".to_owned());
        }
        for e in expected_set.difference(&got) {
            problems.push(format!("  missing:    {e}"));
        }
        for g in got.difference(&expected_set) {
            let messages: Vec<&str> = errors
                .iter()
                .filter(|d| reported(d, path, &dir) == *g)
                .map(|d| d.message.as_str())
                .collect();
            problems.push(format!("  unexpected: {g}  ({})", messages.join(" | ")));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n{}", problems.join("\n")));
        }
    }

    if files.len() < MIN_FIXTURES {
        failures.push(format!(
            "only {} fixtures in {}; at least {MIN_FIXTURES} are required",
            files.len(),
            dir.display()
        ));
    }
    if multi < MIN_MULTI_ERROR_FIXTURES {
        failures.push(format!(
            "only {multi} fixtures assert 3 or more diagnostics; at least {MIN_MULTI_ERROR_FIXTURES} are required"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid fixtures (in {}) failed:\n\n{}\n",
        failures.len(),
        files.len(),
        dir.display(),
        failures.join("\n\n")
    );
}

#[test]
fn warning_fixtures_are_valid_and_report_exactly_their_annotated_warnings() {
    let dir = fixtures_dir().join("../warnings");
    let dir =
        fs::canonicalize(&dir).unwrap_or_else(|e| panic!("cannot open {}: {e}", dir.display()));
    let files = fixture_files(&dir);
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.display().to_string();
        let text = fs::read_to_string(path).expect("readable fixture");
        let expected: BTreeSet<Expected> = match parse_annotations(&text) {
            Ok(v) => v.into_iter().collect(),
            Err(e) => {
                failures.push(format!("{name}: bad annotations: {e}"));
                continue;
            }
        };
        let loaded = scenario::load(path);
        let mut problems = Vec::new();
        if loaded.scenario.is_none() {
            problems.push(format!(
                "  the scenario was rejected (it must be accepted):\n{}",
                loaded.diagnostics.render(false)
            ));
        }
        let got: BTreeSet<Expected> = loaded
            .diagnostics
            .0
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| reported(d, path, &dir))
            .collect();
        for e in expected.difference(&got) {
            problems.push(format!("  missing:    {e}"));
        }
        for g in got.difference(&expected) {
            problems.push(format!("  unexpected: {g}"));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n{}", problems.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn annotation_parser_rejects_what_it_should() {
    let ok = parse_annotations(
        "# expect: unknown-pod 3:7\n# expect: policy-file policies/p.yaml:2:1\nversion: 1\n",
    )
    .expect("valid annotations");
    assert_eq!(
        ok,
        vec![
            Expected {
                code: Code::UnknownPod,
                file: None,
                line: 3,
                col: 7
            },
            Expected {
                code: Code::PolicyFile,
                file: Some("policies/p.yaml".into()),
                line: 2,
                col: 1
            },
        ]
    );
    assert_eq!(
        parse_expect("netreach::syntax ./policies/p.yaml:4:2")
            .expect("prefixed code and ./ path")
            .file
            .as_deref(),
        Some("policies/p.yaml")
    );
    for bad in [
        "version: 1\n",                                              // no annotation
        "# expect: no-such-code 1:1\n",                              // unknown code
        "# expect: syntax\n",                                        // no position
        "# expect: syntax 1\n",                                      // no column
        "# expect: syntax x:1\n",                                    // not a number
        "# expect: syntax 1:1 extra\n",                              // trailing text
        "# expect syntax 1:1\n",                                     // no colon
        "# expect: syntax :1:1\n",                                   // empty file name
        "version: 1\n# expect: syntax 1:1\n",                        // not at the top
        "# expect: syntax 2:1\nversion: 1 # expect: version 2:10\n", // trailing annotation
    ] {
        assert!(parse_annotations(bad).is_err(), "accepted: {bad:?}");
    }
}

// ------------------------------------------------------------------ property test

/// A small valid scenario; the property test mutates it.
const SEED: &str = r#"version: 1
name: seed
namespaces:
  - name: x
    labels: {team: a}
  - name: y
  - name: kube-system
    existing: true
pods:
  - name: a
    namespace: x
    labels: {app: a}
    ports: [80/tcp, {port: 8080, protocol: TCP, name: http}]
  - name: b
    namespace: y
    ports: [80/tcp, 53/udp]
external:
  - name: web
    ports: [443/tcp]
probes:
  - from: "*"
    to: "*"
  - from: x/a
    to: ext:web
  - from: y/b
    resolve: kubernetes.default.svc.cluster.local
steps:
  - name: baseline
    expect:
      - default: allow
  - apply:
      - inline:
          apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: only-x, namespace: y}
          spec:
            podSelector: {matchLabels: {}}
            policyTypes: [Ingress]
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: x}
                  - ipBlock:
                      cidr: 10.0.0.0/8
                      except: [10.1.0.0/16, "${ip x/a}/32"]
                ports:
                  - port: 80
                    protocol: TCP
    relabel:
      - pod: x/a
        labels: {app: z}
    expect:
      - default: allow
      - block: {from: x/a, to: y/b, port: 53/udp}
      - table:
          port: 80/tcp
          rows: |
            -   x/a y/b
            x/a .   .
            y/b .   .
  - delete: [y/only-x]
    expect:
      - default: allow
"#;

/// The checks every load must pass, whatever the text.
fn check_load(text: &str) -> Result<(), TestCaseError> {
    let loaded = scenario::load_str(Path::new("prop.yaml"), text, &MemReader::default());
    if loaded.scenario.is_none() {
        prop_assert!(
            loaded.diagnostics.has_errors(),
            "rejected without an error diagnostic: {:?}",
            loaded.diagnostics
        );
    }
    for d in &loaded.diagnostics.0 {
        let lines = d.file.text.lines().count();
        prop_assert!(
            d.pos.line <= lines + 1,
            "diagnostic at line {} of a {}-line file: {}",
            d.pos.line,
            lines,
            d.to_short_string()
        );
    }
    // Rendering (miette snippets over the spans) must not panic either.
    let _ = loaded.diagnostics.render(false);
    Ok(())
}

#[test]
fn seed_scenario_is_valid() {
    let loaded = scenario::load_str(Path::new("prop.yaml"), SEED, &MemReader::default());
    assert!(
        loaded.scenario.is_some() && !loaded.diagnostics.has_errors(),
        "the property test's seed must be valid:\n{}",
        loaded.diagnostics.render(false)
    );
}

/// One edit of the seed.
#[derive(Clone, Debug)]
enum Edit {
    /// Delete the char at a position.
    Delete(prop::sample::Index),
    /// Insert a char at a position.
    Insert(prop::sample::Index, char),
    /// Cut the text at a position.
    Truncate(prop::sample::Index),
    /// Delete a whole line.
    DeleteLine(prop::sample::Index),
    /// Repeat a line.
    DuplicateLine(prop::sample::Index),
    /// Indent a line by two more spaces.
    Indent(prop::sample::Index),
    /// Remove up to two leading spaces of a line.
    Dedent(prop::sample::Index),
    /// Replace a run of chars with a short word.
    Replace(prop::sample::Index, String),
}

fn yaml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(
            ":-[]{}#&*!|>'\"%@`,? \n\t/.0123456789xyabXY$".chars().collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let idx = any::<prop::sample::Index>;
    prop_oneof![
        4 => idx().prop_map(Edit::Delete),
        4 => (idx(), yaml_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        1 => idx().prop_map(Edit::Truncate),
        2 => idx().prop_map(Edit::DeleteLine),
        2 => idx().prop_map(Edit::DuplicateLine),
        1 => idx().prop_map(Edit::Indent),
        1 => idx().prop_map(Edit::Dedent),
        3 => (
            idx(),
            prop::sample::select(vec![
                "x/zz", "ext:nope", "0", "65536", "*", "X", "null", "~", "[]", "{}", "y/b",
                "10.0.0.1/8", "${ip", "allow", "block", "-", "9999999999999999999999",
            ])
            .prop_map(str::to_owned)
        )
            .prop_map(|(i, s)| Edit::Replace(i, s)),
    ]
}

fn apply_edit(text: &str, e: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match e {
        Edit::Delete(i) => {
            let mut c = chars;
            if !c.is_empty() {
                c.remove(at(i, c.len()));
            }
            c.into_iter().collect()
        }
        Edit::Insert(i, ch) => {
            let mut c = chars;
            let pos = at(i, c.len() + 1);
            c.insert(pos, *ch);
            c.into_iter().collect()
        }
        Edit::Truncate(i) => chars[..at(i, chars.len() + 1)].iter().collect(),
        Edit::Replace(i, word) => {
            let start = at(i, chars.len() + 1);
            let end = (start + word.chars().count()).min(chars.len());
            let mut out: String = chars[..start].iter().collect();
            out.push_str(word);
            out.extend(&chars[end..]);
            out
        }
        Edit::DeleteLine(i) | Edit::DuplicateLine(i) | Edit::Indent(i) | Edit::Dedent(i) => {
            if lines.is_empty() {
                return text.to_owned();
            }
            let n = at(i, lines.len());
            match e {
                Edit::DeleteLine(_) => {
                    lines.remove(n);
                }
                Edit::DuplicateLine(_) => {
                    let l = lines[n].clone();
                    lines.insert(n, l);
                }
                Edit::Indent(_) => lines[n].insert_str(0, "  "),
                _ => {
                    let strip = lines[n].len() - lines[n].trim_start_matches(' ').len();
                    lines[n].drain(..strip.min(2));
                }
            }
            lines.concat()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// Arbitrary (mostly non-YAML) text.
    #[test]
    fn load_never_panics_on_arbitrary_text(text in any::<String>()) {
        check_load(&text)?;
    }

    /// Printable text with YAML punctuation and newlines.
    #[test]
    fn load_never_panics_on_yamlish_text(text in "[ -~\n\t]{0,400}") {
        check_load(&text)?;
    }

    /// The seed with a few random edits: shape errors and, more often, semantic ones.
    #[test]
    fn load_never_panics_on_mutated_scenarios(edits in prop::collection::vec(edit(), 1..6)) {
        let text = edits.iter().fold(SEED.to_owned(), |t, e| apply_edit(&t, e));
        check_load(&text)?;
    }
}
