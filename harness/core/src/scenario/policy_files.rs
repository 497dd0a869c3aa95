//! Policy sources of steps (`file:` and `inline:`): reading policy files once each (only from
//! inside the scenario's repository or an allowed folder), telling NetworkPolicies from other
//! documents, and validating them into [`NetworkPolicy`]s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::files::Confinement;
use super::raw::RawPolicySource;
use super::{FileReader, Loader, ReadError};
use crate::diag::{Code, DiagExt, Pos, Sink, SourceFile};
use crate::policy::raw::{RawHeader, RawNetworkPolicy};
use crate::policy::{self, NetworkPolicy, PolicyContext};
use crate::yaml::{Sp, parse_yaml_multi};

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
    // First tell NetworkPolicies from other documents, leniently, so a Deployment is reported as
    // "not a NetworkPolicy" rather than by its first field a NetworkPolicy does not have.
    if let Ok(headers) = parse_yaml_multi::<RawHeader>(&pf) {
        let mut psink = sink.for_file(&pf);
        let mut foreign = false;
        for h in &headers {
            match (&h.api_version, &h.kind) {
                (Some(v), Some(k))
                    if v.value == "networking.k8s.io/v1" && k.value == "NetworkPolicy" => {}
                (_, Some(k)) if k.value != "NetworkPolicy" => {
                    psink.error_at(Code::InvalidPolicy, k, format!("this document is a `{}`, not a NetworkPolicy", k.value))
                        .help("policy files hold only `networking.k8s.io/v1` NetworkPolicy manifests, separated by `---`");
                    foreign = true;
                }
                (Some(v), Some(_)) => {
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
                    foreign = true;
                }
                _ => {} // Missing fields: the strict parse below says which.
            }
        }
        if foreign {
            sink.error_at(
                Code::PolicyFile,
                at,
                format!("policy file `{}` is not valid", path.display()),
            );
            return None;
        }
    }
    let docs = match parse_yaml_multi::<RawNetworkPolicy>(&pf) {
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
