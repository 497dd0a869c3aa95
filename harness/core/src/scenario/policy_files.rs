//! Policy sources of steps (`file:` and `inline:`): reading policy files once each (only from
//! inside the scenario's repository or an allowed folder), telling NetworkPolicies from other
//! documents (other kinds are skipped with a warning; AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy are errors, not supported yet), and validating them into
//! [`NetworkPolicy`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::files::Confinement;
use super::raw::RawPolicySource;
use super::{FileReader, Loader, ReadError};
use crate::diag::{Code, DiagExt, Pos, Sink, SourceFile};
use crate::policy::raw::{RawHeader, RawNetworkPolicy};
use crate::policy::{self, NetworkPolicy, PolicyContext};
use crate::yaml::{Sp, parse_yaml_multi, parse_yaml_multi_text};

/// Reads policy sources for one scenario; each file (with its default namespace) is read and
/// validated once, however many steps use it.
pub(super) struct PolicySources<'a> {
    /// The scenario file's folder: `file:` paths are relative to it.
    base: PathBuf,
    reader: &'a dyn FileReader,
    /// Where policy files may be read from.
    confinement: Confinement,
    /// (canonical path, default namespace) -> policies (`None` when the file is invalid).
    files: BTreeMap<(PathBuf, Option<String>), Option<Vec<NetworkPolicy>>>,
}

impl<'a> PolicySources<'a> {
    /// Sources of the scenario at `scenario_path`.
    pub fn new(scenario_path: &Path, loader: Loader<'a>) -> Self {
        PolicySources {
            base: scenario_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            reader: loader.reader,
            confinement: Confinement::new(
                scenario_path,
                &loader.options.allow_paths,
                loader.reader,
            ),
            files: BTreeMap::new(),
        }
    }

    /// Reads a policy source into validated policies, each with the position to blame for step
    /// errors.
    pub fn read(
        &mut self,
        sink: &mut Sink<'_>,
        pcx: &PolicyContext<'_>,
        src: &RawPolicySource,
    ) -> Vec<(NetworkPolicy, Pos)> {
        if let Some(ns) = &src.namespace
            && !policy::check_namespace(ns, "the policy source", pcx, sink)
        {
            return Vec::new();
        }
        match (&src.file, &src.inline) {
            (Some(f), None) => {
                let pos = sink.pos(f);
                let path = self.base.join(&f.value);
                // A path that does not resolve is reported by the read below.
                let canonical = self.reader.canonicalize(&path).ok();
                if let Some(c) = &canonical
                    && !self.confinement.allows(c)
                {
                    sink.error_at(
                        Code::PolicyFile,
                        f,
                        if path == *c {
                            format!(
                                "policy file `{}` is outside the scenario's repository `{}`",
                                path.display(),
                                self.confinement.repository.display()
                            )
                        } else {
                            format!(
                                "policy file `{}` is `{}`, outside the scenario's repository `{}`",
                                path.display(),
                                c.display(),
                                self.confinement.repository.display()
                            )
                        },
                    )
                    .help("policy files are read from the repository the scenario is in (the nearest folder above it with `.git` or `Cargo.toml`); to read from another folder, pass `--allow-path <folder>`");
                    return Vec::new();
                }
                let key = (
                    canonical.clone().unwrap_or_else(|| path.clone()),
                    src.namespace.as_ref().map(|n| n.value.clone()),
                );
                if !self.files.contains_key(&key) {
                    let read_from = canonical.as_deref().unwrap_or(&path);
                    let loaded = read_policy_file(
                        sink,
                        pcx,
                        f,
                        (&path, read_from),
                        src.namespace.as_ref(),
                        self.reader,
                    );
                    self.files.insert(key.clone(), loaded);
                }
                self.files[&key]
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| (p, pos))
                    .collect()
            }
            (None, Some(inline)) => {
                let pos = sink.pos(&inline.metadata.name);
                let raw = (**inline).clone();
                let origin = format!("{}:{}", sink.file.path.display(), pos.line);
                policy::check_policy(raw, src.namespace.as_ref(), origin, pcx, sink)
                    .map(|p| (p, pos))
                    .into_iter()
                    .collect()
            }
            (Some(f), Some(_)) => {
                sink.error_at(
                    Code::Conflict,
                    f,
                    "a policy source has both `file` and `inline`",
                )
                .help("use one of them per entry");
                Vec::new()
            }
            (None, None) => {
                let at = src.namespace.as_ref().map_or(Pos::UNKNOWN, |n| sink.pos(n));
                sink.error(
                    Code::MissingField,
                    at,
                    "a policy source needs `file:` or `inline:`",
                )
                .help("e.g. `- file: policies/deny-all.yaml`");
                Vec::new()
            }
        }
    }
}

/// Reads and validates the policy file `path` (as the scenario names it; read from `read_from`,
/// its canonical form).
fn read_policy_file(
    sink: &mut Sink<'_>,
    pcx: &PolicyContext<'_>,
    at: &Sp<String>,
    (path, read_from): (&Path, &Path),
    default_ns: Option<&Sp<String>>,
    reader: &dyn FileReader,
) -> Option<Vec<NetworkPolicy>> {
    let text = match reader.read(read_from) {
        Ok(t) => t,
        Err(e) => {
            let help = match e {
                ReadError::Io(_) => "policy paths are relative to the scenario file's folder",
                ReadError::NotAFile(_) => "a policy file is a regular file of YAML manifests",
                ReadError::TooLarge => {
                    "a policy file holds NetworkPolicy manifests; split it, or check that the path names the right file"
                }
            };
            sink.error_at(
                Code::PolicyFile,
                at,
                format!("cannot read policy file `{}`: {e}", path.display()),
            )
            .help(help);
            return None;
        }
    };
    let pf = SourceFile::new(path, text);
    // First tell NetworkPolicies from other documents, leniently: other kinds are skipped (a
    // policy file may be shared with a deployment), policy kinds netreach cannot apply are
    // errors, and neither is then read by the strict parse below.
    let mut blank = BTreeSet::new();
    if let Ok(headers) = parse_yaml_multi::<RawHeader>(&pf) {
        let mut psink = sink.for_file(&pf);
        let (mut invalid, mut policies, mut skipped) = (false, 0, Vec::new());
        for h in &headers {
            match doc_kind(h) {
                DocKind::NetworkPolicy => policies += 1,
                DocKind::WrongApiVersion(v) => {
                    psink
                        .error_at(
                            Code::InvalidPolicy,
                            v,
                            format!(
                                "apiVersion `{}` is not a NetworkPolicy API version",
                                v.value
                            ),
                        )
                        .help("NetworkPolicies use `apiVersion: networking.k8s.io/v1`");
                    invalid = true;
                }
                DocKind::Unsupported(k) => {
                    psink
                        .error_at(
                            Code::UnsupportedPolicy,
                            k,
                            format!("`{}` is not supported yet: netreach applies only `networking.k8s.io/v1` NetworkPolicies", k.value),
                        )
                        .help(format!("it {}, so a scenario without it would test other policies than this file holds; keep it in a file the scenario does not use", if k.value == "AdminNetworkPolicy" { "decides what connects before NetworkPolicies do" } else { "decides what connects where no NetworkPolicy does" }));
                    blank.insert(k.referenced.line() as usize);
                    invalid = true;
                }
                DocKind::Other(k) => {
                    psink
                        .warning_at(
                            Code::SkippedDocument,
                            k,
                            format!("skipped this `{}`: netreach applies only the NetworkPolicies of a policy file", k.value),
                        )
                        .help("netreach deploys only its own probe pods; other manifests may stay in a file shared with a deployment");
                    blank.insert(k.referenced.line() as usize);
                    skipped.push(format!("`{}` at line {}", k.value, k.referenced.line()));
                }
            }
        }
        if invalid {
            sink.error_at(
                Code::PolicyFile,
                at,
                format!("policy file `{}` is not valid", path.display()),
            );
            return None;
        }
        if policies == 0 && !skipped.is_empty() {
            sink.error_at(
                Code::PolicyFile,
                at,
                format!("policy file `{}` holds no NetworkPolicy", path.display()),
            )
            .help(format!(
                "it holds only other kinds ({}); point `file:` at the file with the policies",
                skipped.join(", ")
            ));
            return None;
        }
    }
    let text = if blank.is_empty() {
        pf.text.to_string()
    } else {
        blank_documents(&pf.text, &blank)
    };
    let docs = match parse_yaml_multi_text::<RawNetworkPolicy>(&pf, &text) {
        Ok(d) => d,
        Err(d) => {
            let mut d = *d;
            if d.code == Code::UnknownField
                || d.code == Code::MissingField
                || d.code == Code::WrongType
            {
                d.code = Code::InvalidPolicy;
                d.help = Some("policy files hold `networking.k8s.io/v1` NetworkPolicy manifests, separated by `---`".into());
            }
            sink.out.push(d);
            sink.error_at(
                Code::PolicyFile,
                at,
                format!("policy file `{}` is not valid", path.display()),
            );
            return None;
        }
    };
    if docs.is_empty() {
        sink.error_at(
            Code::PolicyFile,
            at,
            format!("policy file `{}` holds no documents", path.display()),
        )
        .help("put one or more NetworkPolicy manifests in it, separated by `---`");
        return None;
    }
    let mut psink = sink.for_file(&pf);
    let mut out = Vec::new();
    let mut ok = true;
    for raw in docs {
        let line = psink.pos(&raw.metadata.name).line;
        let origin = format!("{}:{line}", path.display());
        match policy::check_policy(raw, default_ns, origin, pcx, &mut psink) {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// What a document of a policy file is, by its `apiVersion` and `kind`.
enum DocKind<'a> {
    /// A `networking.k8s.io/v1` NetworkPolicy (or a document without `kind`: the strict parse
    /// says what it lacks).
    NetworkPolicy,
    /// `kind: NetworkPolicy` under another API version.
    WrongApiVersion(&'a Sp<String>),
    /// AdminNetworkPolicy or BaselineAdminNetworkPolicy: policies netreach does not apply yet.
    Unsupported(&'a Sp<String>),
    /// Any other kind (a Deployment, a ConfigMap): skipped.
    Other(&'a Sp<String>),
}

/// Kinds that decide what connects besides NetworkPolicies, which netreach cannot apply yet.
const UNSUPPORTED_KINDS: [&str; 2] = ["AdminNetworkPolicy", "BaselineAdminNetworkPolicy"];

fn doc_kind(h: &RawHeader) -> DocKind<'_> {
    match (&h.api_version, &h.kind) {
        (_, Some(k)) if UNSUPPORTED_KINDS.contains(&k.value.as_str()) => DocKind::Unsupported(k),
        (Some(v), Some(k)) if k.value == "NetworkPolicy" && v.value != "networking.k8s.io/v1" => {
            DocKind::WrongApiVersion(v)
        }
        (_, Some(k)) if k.value != "NetworkPolicy" => DocKind::Other(k),
        _ => DocKind::NetworkPolicy,
    }
}

/// Whether a line is a document marker (`---` or `...` at the start, then a space or the end).
fn is_document_marker(line: &str) -> bool {
    (line.starts_with("---") || line.starts_with("..."))
        && line[3..].chars().next().is_none_or(char::is_whitespace)
}

/// `text` with the documents that contain the given (1-based) lines blanked: every byte but line
/// breaks becomes a space (after a `---` marker on the document's first line), so that a parse
/// of the rest finds every other document at its own line, column and byte offset.
pub(crate) fn blank_documents(text: &str, lines: &BTreeSet<usize>) -> String {
    // Each line's document: a marker line starts the next one.
    let mut doc_of_line = Vec::new();
    let mut doc = 0;
    for line in text.split_inclusive('\n') {
        if is_document_marker(line) {
            doc += 1;
        }
        doc_of_line.push(doc);
    }
    let blanked: BTreeSet<usize> = lines
        .iter()
        .filter_map(|l| doc_of_line.get(l.wrapping_sub(1)).copied())
        .collect();
    let mut out = String::with_capacity(text.len());
    for (line, doc) in text.split_inclusive('\n').zip(&doc_of_line) {
        if !blanked.contains(doc) {
            out.push_str(line);
            continue;
        }
        let keep = if is_document_marker(line) { 3 } else { 0 };
        out.push_str(&line[..keep]);
        for b in line[keep..].bytes() {
            out.push(if b == b'\n' || b == b'\r' {
                char::from(b)
            } else {
                ' '
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::scenario::{MemReader, load_str};

    /// (severity, code, file, line, col) of every diagnostic of a scenario using `pol/p.yaml`.
    fn diagnostics(policy: &str) -> Vec<(Severity, Code, String, usize, usize)> {
        let scenario = "version: 1\nnamespaces: [{name: x}]\npods: [{name: a, namespace: x, ports: [80/tcp]}]\nsteps:\n  - apply: [{file: pol/p.yaml}]\n    expect: [{default: allow}]\n";
        let reader = MemReader(BTreeMap::from([(
            PathBuf::from("s/pol/p.yaml"),
            policy.to_owned(),
        )]));
        load_str(Path::new("s/t.yaml"), scenario, &reader)
            .diagnostics
            .0
            .iter()
            .filter(|d| d.code != Code::ContradictsSpec)
            .map(|d| {
                let file = d.file.path.display().to_string();
                (d.severity, d.code, file, d.pos.line, d.pos.col)
            })
            .collect()
    }

    #[test]
    fn other_kinds_are_skipped_and_policies_after_them_keep_their_positions() {
        let np = |name: &str, spec: &str| {
            format!(
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: x}}\nspec: {spec}\n"
            )
        };
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: é, namespace: x}\nspec: {replicas: 1}\n";
        let w = |line| {
            (
                Severity::Warning,
                Code::SkippedDocument,
                "s/pol/p.yaml".to_owned(),
                line,
                7,
            )
        };
        // Valid: the Deployment is a warning at its kind.
        let ok = format!("{deployment}---\n{}", np("p", "{podSelector: {}}"));
        assert_eq!(diagnostics(&ok), vec![w(2)]);
        // A NetworkPolicy's own error after the skipped document is reported where it is.
        let bad = format!("{deployment}---\n{}", np("p", "{podSelectr: {}}"));
        assert_eq!(
            diagnostics(&bad),
            vec![
                (
                    Severity::Warning,
                    Code::SkippedDocument,
                    "s/pol/p.yaml".to_owned(),
                    2,
                    7
                ),
                (
                    Severity::Error,
                    Code::InvalidPolicy,
                    "s/pol/p.yaml".to_owned(),
                    9,
                    8
                ),
                (
                    Severity::Error,
                    Code::PolicyFile,
                    "s/t.yaml".to_owned(),
                    5,
                    20
                ),
            ]
        );
        // Only other kinds: no NetworkPolicy.
        let none = format!("{deployment}---\n{deployment}");
        let d = diagnostics(&none);
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!((d[2].1, d[2].3), (Code::PolicyFile, 5));
        // An AdminNetworkPolicy is an error, and so is the file.
        let anp = format!(
            "{}---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: a}}\n",
            np("p", "{podSelector: {}}")
        );
        assert_eq!(
            diagnostics(&anp),
            vec![
                (
                    Severity::Error,
                    Code::UnsupportedPolicy,
                    "s/pol/p.yaml".to_owned(),
                    7,
                    7
                ),
                (
                    Severity::Error,
                    Code::PolicyFile,
                    "s/t.yaml".to_owned(),
                    5,
                    20
                ),
            ]
        );
    }

    #[test]
    fn documents_are_blanked_in_place() {
        let text = "kind: A\nx: é\n---\nkind: B\n--- {kind: C}\n...\n---\nkind: D\n";
        let out = blank_documents(text, &BTreeSet::from([1, 5]));
        assert_eq!(out.len(), text.len());
        assert_eq!(out.lines().count(), text.lines().count());
        assert_eq!(
            out,
            "       \n     \n---\nkind: B\n---          \n...\n---\nkind: D\n"
        );
        // Lines outside the text, or none, change nothing.
        assert_eq!(blank_documents(text, &BTreeSet::from([99])), text);
        assert_eq!(blank_documents(text, &BTreeSet::new()), text);
        assert!(
            is_document_marker("---\n")
                && is_document_marker("--- !x")
                && is_document_marker("...")
        );
        assert!(
            !is_document_marker("----")
                && !is_document_marker(" ---")
                && !is_document_marker("---x")
        );
    }
}
