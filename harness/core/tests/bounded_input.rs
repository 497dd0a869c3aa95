//! Bounded input, on a real file system: discovery through symlink loops, policy files confined
//! to the scenario's repository, and only regular files of at most 8 MiB read. Symlinks, FIFOs
//! and large files cannot be committed as fixtures portably, so each test makes them in a
//! temporary folder of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use netreach_core::diag::{Code, Severity};
use netreach_core::scenario::{self, LoadOptions, Loaded, MAX_FILE_SIZE};

/// A temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("netreach-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        // Canonical, so that paths compare with what the loader resolves.
        TempDir(fs::canonicalize(&dir).expect("canonical temp dir"))
    }

    /// A folder that counts as a repository (it holds `.git`).
    fn repo(name: &str) -> TempDir {
        let t = TempDir::new(name);
        fs::create_dir(t.0.join(".git")).expect(".git");
        t
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).expect("parent");
        }
        fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

/// A scenario applying the policy files `files` (as written after `file:`).
fn scenario_with(files: &[&str]) -> String {
    let mut s = String::from(
        "version: 1\nnamespaces: [{name: x}]\npods:\n  - {name: a, namespace: x, ports: [80/tcp]}\nsteps:\n  - apply:\n",
    );
    for f in files {
        s.push_str(&format!("      - file: \"{f}\"\n"));
    }
    s.push_str("    expect: [{default: allow}]\n");
    s
}

const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}}\n";

/// Loads on another thread, so that a read that blocks fails the test instead of hanging it.
fn load_within(path: &Path, options: LoadOptions, limit: Duration) -> Loaded {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(scenario::load_with_options(&path, &options));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("loading did not finish within {limit:?}"))
}

/// (code, message) of every error.
fn errors(l: &Loaded) -> Vec<(Code, String)> {
    l.diagnostics
        .0
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.code, d.message.clone()))
        .collect()
}

/// The one error of a load, which must be a `policy-file` error saying `what`.
fn assert_policy_file_error(l: &Loaded, what: &str) {
    let e = errors(l);
    assert!(
        e.len() == 1 && e[0].0 == Code::PolicyFile && e[0].1.contains(what),
        "want one policy-file error saying `{what}`, got {e:?}"
    );
}

#[cfg(unix)]
#[test]
fn discovery_follows_no_symlink_loop_and_finds_every_file_once() {
    let t = TempDir::new("loops");
    let a = t.write("s/a.yaml", &scenario_with(&[]));
    t.write("s/deep/b.yaml", &scenario_with(&[]));
    symlink(".", t.path("s/loop"));
    symlink(".", t.path("s/loop2"));
    symlink("..", t.path("s/deep/up"));
    symlink("a.yaml", t.path("s/same-as-a.yaml"));
    let (tx, rx) = mpsc::channel();
    let dirs = vec![t.path("s"), t.path("s"), a.clone()];
    std::thread::spawn(move || {
        let _ = tx.send(scenario::discover(&dirs));
    });
    let found = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("discovery finishes")
        .expect("readable");
    assert_eq!(found, vec![a, t.path("s/deep/b.yaml")]);
}

#[cfg(unix)]
#[test]
fn policy_files_stay_inside_the_repository_unless_allowed() {
    let repo = TempDir::repo("confined");
    let outside = TempDir::new("outside");
    let elsewhere = outside.write("k8s/p.yaml", POLICY);
    repo.write("k8s/p.yaml", POLICY);
    symlink("/proc/self/environ", repo.path("k8s/environ.yaml"));
    symlink(&elsewhere, repo.path("k8s/link-out.yaml"));
    // From tests/ to the repository's k8s/ folder: allowed.
    let s = repo.write("tests/ok.yaml", &scenario_with(&["../k8s/p.yaml"]));
    let l = scenario::load(&s);
    assert!(l.scenario.is_some(), "{}", l.diagnostics.render(false));
    for (file, what) in [
        ("/proc/self/environ", "outside the scenario's repository"),
        ("../k8s/environ.yaml", "outside the scenario's repository"),
        ("../k8s/link-out.yaml", "outside the scenario's repository"),
        (
            elsewhere.to_str().expect("utf-8"),
            "outside the scenario's repository",
        ),
    ] {
        let s = repo.write("tests/out.yaml", &scenario_with(&[file]));
        assert_policy_file_error(&scenario::load(&s), what);
    }
    // `--allow-path` widens it, to that folder only.
    let allow = LoadOptions::allowing(&[outside.path("k8s")]).expect("a folder");
    let s = repo.write(
        "tests/allowed.yaml",
        &scenario_with(&[elsewhere.to_str().expect("utf-8")]),
    );
    let l = scenario::load_with_options(&s, &allow);
    assert!(l.scenario.is_some(), "{}", l.diagnostics.render(false));
    assert!(LoadOptions::allowing(&[outside.path("nope")]).is_err());
    assert!(LoadOptions::allowing(&[elsewhere]).is_err(), "a file");
}

#[cfg(unix)]
#[test]
fn only_regular_files_are_read_and_none_above_8_mib() {
    let repo = TempDir::repo("regular");
    let fifo = repo.path("k8s/pipe.yaml");
    fs::create_dir_all(repo.path("k8s")).expect("k8s");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo");
    let big = fs::File::create(repo.path("k8s/big.yaml")).expect("create");
    big.set_len(MAX_FILE_SIZE + 1).expect("sparse file");
    symlink("/dev/urandom", repo.path("k8s/random.yaml"));
    let limit = Duration::from_secs(20);
    let s = repo.write("tests/s.yaml", &scenario_with(&["../k8s/pipe.yaml"]));
    assert_policy_file_error(&load_within(&s, LoadOptions::default(), limit), "FIFO");
    let s = repo.write("tests/s.yaml", &scenario_with(&["../k8s/big.yaml"]));
    assert_policy_file_error(
        &load_within(&s, LoadOptions::default(), limit),
        "larger than 8 MiB",
    );
    // Devices: outside the repository, and not regular files even when allowed.
    let s = repo.write(
        "tests/s.yaml",
        &scenario_with(&["/dev/zero", "../k8s/random.yaml"]),
    );
    let l = load_within(&s, LoadOptions::default(), limit);
    assert_eq!(errors(&l).len(), 2, "{:?}", errors(&l));
    let dev = LoadOptions::allowing(&[PathBuf::from("/dev")]).expect("/dev");
    let l = load_within(&s, dev, limit);
    let e = errors(&l);
    assert!(
        e.len() == 2 && e.iter().all(|(_, m)| m.contains("character device")),
        "{e:?}"
    );
    // The scenario itself: a FIFO or a large file is an `io` error, not a hang or a 4 GB read.
    for p in [fifo, repo.path("k8s/big.yaml")] {
        let l = load_within(&p, LoadOptions::default(), limit);
        assert_eq!(errors(&l).len(), 1, "{:?}", errors(&l));
        assert_eq!(errors(&l)[0].0, Code::Io);
    }
}

/// Defect 6 of the reliability issue: rendering diagnostics scanned the file from its start for
/// each one (4,000 errors took 32.6 s, 20,000 never finished). 5,000 errors must load and render,
/// snippets and all, well within a limit that only a quadratic renderer misses.
#[test]
fn five_thousand_errors_load_and_render_within_a_generous_limit() {
    use std::fmt::Write as _;
    let mut text = String::from("version: 1\nname: many errors\nnamespaces: [{name: x}]\npods:\n");
    for i in 0..5_000 {
        let _ = writeln!(text, "  - {{name: Bad_Name_{i}, namespace: x}}");
    }
    text.push_str("steps:\n  - name: one\n    expect: [{default: allow}]\n");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let l = scenario::load_str(
            Path::new("many.yaml"),
            &text,
            &scenario::MemReader::default(),
        );
        let rendered = l.diagnostics.render(false);
        let _ = tx.send((l.diagnostics.0.len(), rendered.len()));
    });
    let (n, len) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("5,000 diagnostics rendered within 20 s (quadratic rendering took minutes)");
    assert!(n >= 5_000, "{n} diagnostics");
    assert!(
        len > 5_000 * 40,
        "every diagnostic rendered with its snippet ({len} bytes)"
    );
}
