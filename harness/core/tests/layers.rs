//! The layers of ARCHITECTURE.md, held by a test (like rust-analyzer's tidy tests): a forbidden
//! dependency or import fails CI, not a code review.
//!
//! - netreach-core depends (transitively, normal dependencies) on none of kube, k8s-openapi,
//!   tokio, futures, hyper, testcontainers, bollard, signal-hook, clap, netreach-kube, netreach;
//!   and no source file of it names them, spawns a process or opens a socket.
//! - netreach-kube may use the core, never the `netreach` crate (the CLI) or clap.
//! - A core source file over 600 lines says why at its top (`//! Size:`).
//! - The core's top-level modules import each other without cycles, and `model` is the ground
//!   floor: it imports no other module of the crate but `names`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Crates the pure core must never depend on, directly or through another crate.
const FORBIDDEN_IN_CORE: &[&str] = &[
    "kube",
    "kube-client",
    "kube-core",
    "k8s-openapi",
    "tokio",
    "futures",
    "hyper",
    "testcontainers",
    "bollard",
    "signal-hook",
    "clap",
    "netreach-kube",
    "netreach",
];

/// What no core source file may contain (outside comments): other layers' crates, processes,
/// sockets.
const FORBIDDEN_SOURCE: &[&str] = &[
    "kube::",
    "k8s_openapi",
    "tokio",
    "futures",
    "hyper",
    "testcontainers",
    "bollard",
    "signal_hook",
    "netreach_kube",
    "std::process::Command",
    "process::Command",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
];

/// `cargo tree -p <pkg> -e normal` as a list of package names.
fn normal_deps(pkg: &str) -> Vec<String> {
    deps_to_depth(pkg, None)
}

/// `pkg`'s own (direct) normal dependencies.
fn direct_deps(pkg: &str) -> Vec<String> {
    deps_to_depth(pkg, Some(1))
        .into_iter()
        .filter(|d| d != pkg)
        .collect()
}

fn deps_to_depth(pkg: &str, depth: Option<u32>) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let depth = depth.map(|d| d.to_string());
    let mut args = vec![
        "tree",
        "--offline",
        "-p",
        pkg,
        "-e",
        "normal",
        "--prefix",
        "none",
    ];
    if let Some(d) = &depth {
        args.extend(["--depth", d.as_str()]);
    }
    let out = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable source dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of Rust source that are code, not comments (good enough for a tidy check: `//` to the
/// end of the line is dropped; string literals are kept, which can only make the check stricter).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let code = l.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// Findings of the source rules in one file's text.
fn source_violations(name: &str, text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for (line, code) in code_lines(text) {
        for f in FORBIDDEN_SOURCE {
            if code.contains(f) {
                bad.push(format!(
                    "{name}:{line}: `{f}` in the pure core: {}",
                    code.trim()
                ));
            }
        }
    }
    bad.extend(size_violation(name, text));
    bad
}

/// A file over 600 lines without a `//! Size:` line in its first 20 saying why it is not split.
fn size_violation(name: &str, text: &str) -> Option<String> {
    let lines = text.lines().count();
    let head: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
    (lines > 600 && !head.contains("//! Size:")).then(|| {
        format!(
            "{name}: {lines} lines and no `//! Size:` line at its top saying why it is not split"
        )
    })
}

#[test]
fn the_core_depends_on_no_kubernetes_runtime_or_cli_crate() {
    let deps = normal_deps("netreach-core");
    let bad: Vec<&String> = deps
        .iter()
        .filter(|d| FORBIDDEN_IN_CORE.contains(&d.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "netreach-core must stay pure, but depends on {bad:?} (full list: {deps:?})"
    );
}

#[test]
fn no_core_source_file_imports_another_layer_or_does_io_beyond_files() {
    let dir = root().join("harness/core/src");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(
        files.len() > 10,
        "found the core's sources in {}",
        dir.display()
    );
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable source");
        let name = f.strip_prefix(root()).unwrap_or(f).display().to_string();
        bad.extend(source_violations(&name, &text));
    }
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn the_kube_crate_does_not_reach_up_into_the_cli() {
    let deps = normal_deps("netreach-kube");
    for up in ["netreach", "clap", "libtest-mimic"] {
        assert!(
            !deps.iter().any(|d| d == up),
            "netreach-kube must not depend on `{up}`"
        );
    }
    assert!(deps.iter().any(|d| d == "netreach-core"));
}

#[test]
fn the_facade_reaches_kubernetes_only_through_the_kube_crate_and_the_testkit_is_std_only() {
    let direct = direct_deps("netreach");
    for k in ["kube", "k8s-openapi", "tokio", "futures", "hyper"] {
        assert!(
            !direct.iter().any(|d| d == k),
            "netreach must use `{k}` only through netreach-kube (direct deps: {direct:?})"
        );
    }
    assert!(direct.iter().any(|d| d == "netreach-kube"));
    let testkit = direct_deps("netreach-testkit");
    assert!(
        testkit.is_empty(),
        "netreach-testkit is std only, but depends on {testkit:?}"
    );
}

/// Every Rust file of the workspace outside the core over 600 lines says why at its top too.
#[test]
fn long_files_outside_the_core_say_why() {
    let mut files = Vec::new();
    for dir in [
        "harness/kube/src",
        "harness/netreach/src",
        "harness/testkit/src",
        "xtask/src",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).expect("readable source");
            size_violation(
                &f.strip_prefix(root()).unwrap_or(f).display().to_string(),
                &text,
            )
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}

/// The top-level module a core source file belongs to (`scenario/steps.rs` -> `scenario`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// The crate's modules a file's code (not its comments, not its `#[cfg(test)]` part) names as
/// `crate::<module>`, also inside `crate::{a::X, b}` groups.
fn crate_imports(text: &str) -> Vec<String> {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or("");
    let code: String = code_lines(before_tests)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (0usize, 0usize);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|n| !n.is_empty());
    out.sort();
    out.dedup();
    out
}

/// A cycle in `edges` (module -> modules it imports), if there is one.
fn find_cycle(edges: &std::collections::BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &std::collections::BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for n in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut Vec::new(), &mut done))
}

#[test]
fn core_modules_import_each_other_without_cycles_and_model_is_the_ground_floor() {
    let src = root().join("harness/core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(f).expect("readable source");
        let m = top_module(&src, f);
        let e = edges.entry(m.clone()).or_default();
        e.extend(crate_imports(&text).into_iter().filter(|i| *i != m));
        e.sort();
        e.dedup();
    }
    assert!(edges.contains_key("model") && edges.contains_key("scenario"));
    assert_eq!(
        edges["model"],
        ["names"],
        "model is the ground floor: it may import only `names`"
    );
    assert_eq!(
        find_cycle(&edges),
        None,
        "import cycle between core modules"
    );
}

/// The checks themselves catch what they are for (a check that cannot fail is no check).
#[test]
fn the_source_rules_catch_a_forbidden_import() {
    let bad = source_violations("x.rs", "use kube::Client;\nfn f() {}\n");
    assert_eq!(bad.len(), 1, "{bad:?}");
    let bad = source_violations("x.rs", "let c = std::process::Command::new(\"sh\");\n");
    assert!(!bad.is_empty());
    assert!(source_violations("x.rs", "// tokio is not used here\nfn f() {}\n").is_empty());
    assert_eq!(
        crate_imports(
            "use crate::model::{A, B};\n// crate::lint\nfn f() { crate::diag::x() }\n#[cfg(test)]\nuse crate::scenario;\n"
        ),
        ["diag", "model"]
    );
    let edges = |pairs: &[(&str, &str)]| {
        let mut e: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (a, b) in pairs {
            e.entry((*a).to_owned()).or_default().push((*b).to_owned());
        }
        e
    };
    assert_eq!(find_cycle(&edges(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let long = "fn f() {}\n".repeat(601);
    assert_eq!(source_violations("x.rs", &long).len(), 1);
    assert!(source_violations("x.rs", &format!("//! Size: one table.\n{long}")).is_empty());
}
