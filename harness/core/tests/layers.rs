//! The layers of ARCHITECTURE.md, held by a test (like rust-analyzer's tidy tests): a forbidden
//! dependency or import fails CI, not a code review.
//!
//! - netreach-core depends (transitively, normal dependencies) on none of kube, k8s-openapi,
//!   tokio, futures, hyper, testcontainers, bollard, signal-hook, clap, netreach-kube, netreach;
//!   and no source file of it names them, spawns a process or opens a socket.
//! - netreach-kube may use the core, never the `netreach` crate (the CLI) or clap.
//! - A core source file over 600 lines says why at its top (`//! Size:`).

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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            pkg,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
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
    let lines = text.lines().count();
    let head: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
    if lines > 600 && !head.contains("//! Size:") {
        bad.push(format!(
            "{name}: {lines} lines and no `//! Size:` line at its top saying why it is not split"
        ));
    }
    bad
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

/// The checks themselves catch what they are for (a check that cannot fail is no check).
#[test]
fn the_source_rules_catch_a_forbidden_import() {
    let bad = source_violations("x.rs", "use kube::Client;\nfn f() {}\n");
    assert_eq!(bad.len(), 1, "{bad:?}");
    let bad = source_violations("x.rs", "let c = std::process::Command::new(\"sh\");\n");
    assert!(!bad.is_empty());
    assert!(source_violations("x.rs", "// tokio is not used here\nfn f() {}\n").is_empty());
    let long = "fn f() {}\n".repeat(601);
    assert_eq!(source_violations("x.rs", &long).len(), 1);
    assert!(source_violations("x.rs", &format!("//! Size: one table.\n{long}")).is_empty());
}
