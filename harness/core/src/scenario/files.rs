//! Reading files, bounded: only regular files, at most [`MAX_FILE_SIZE`] bytes; and where policy
//! files may come from (the scenario's repository, and folders the user allows).
//!
//! [`FileReader`] is the seam: [`FsReader`] reads the file system, [`MemReader`] memory (tests,
//! fuzzing, the bench).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// The largest file netreach reads, scenario or policy: 8 MiB. Scenarios are a few kilobytes;
/// the limit is there so that a path to a device or an endless file cannot take the machine.
pub const MAX_FILE_SIZE: u64 = 8 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The file system said no (missing, permissions, not UTF-8, ...).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not a regular file: a folder, a device, a FIFO or a socket.
    #[error("it is a {0}, not a regular file")]
    NotAFile(&'static str),
    /// Larger than [`MAX_FILE_SIZE`].
    #[error("it is larger than 8 MiB ({MAX_FILE_SIZE} bytes), the most netreach reads")]
    TooLarge,
}

/// Reads files for the loader; a seam so tests can load from memory.
pub trait FileReader {
    /// Reads a whole file: a regular file of at most [`MAX_FILE_SIZE`] bytes, as UTF-8.
    ///
    /// # Errors
    /// When it is not such a file, or cannot be read.
    fn read(&self, path: &Path) -> Result<String, ReadError>;

    /// The path with symlinks, `.` and `..` resolved: where it really points.
    ///
    /// # Errors
    /// When the path does not exist.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;

    /// Whether something (a file or a folder) exists at `path`.
    fn exists(&self, path: &Path) -> bool;
}

/// Reads from the file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsReader;

/// What kind of thing `meta` describes, when it is not a regular file.
fn not_a_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("folder");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("FIFO (named pipe)");
        }
        if t.is_char_device() {
            return Some("character device");
        }
        if t.is_block_device() {
            return Some("block device");
        }
        if t.is_socket() {
            return Some("socket");
        }
    }
    Some("special file")
}

impl FileReader for FsReader {
    fn read(&self, path: &Path) -> Result<String, ReadError> {
        // Look before opening: opening a FIFO blocks until someone writes to it.
        let meta = std::fs::metadata(path)?;
        if let Some(kind) = not_a_file(&meta) {
            return Err(ReadError::NotAFile(kind));
        }
        if meta.len() > MAX_FILE_SIZE {
            return Err(ReadError::TooLarge);
        }
        let file = std::fs::File::open(path)?;
        if let Some(kind) = not_a_file(&file.metadata()?) {
            return Err(ReadError::NotAFile(kind));
        }
        // Files that report no size (procfs) or grow while read stop at the limit too.
        let mut bytes = Vec::new();
        file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(ReadError::TooLarge);
        }
        String::from_utf8(bytes).map_err(|_| {
            ReadError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }
}

/// Files held in memory (for tests and fuzzing). Paths are compared after resolving `.` and
/// `..`; folders exist when a file is in them.
#[derive(Debug, Clone, Default)]
pub struct MemReader(pub BTreeMap<PathBuf, String>);

impl FileReader for MemReader {
    fn read(&self, path: &Path) -> Result<String, ReadError> {
        let want = normalize(path);
        let text = self
            .0
            .get(path)
            .or_else(|| {
                self.0
                    .iter()
                    .find(|(k, _)| normalize(k) == want)
                    .map(|(_, t)| t)
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))?;
        if text.len() as u64 > MAX_FILE_SIZE {
            return Err(ReadError::TooLarge);
        }
        Ok(text.clone())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(normalize(path))
    }

    fn exists(&self, path: &Path) -> bool {
        let p = normalize(path);
        self.0.keys().any(|k| normalize(k).starts_with(&p))
    }
}

/// `path` with `.` components dropped and `..` applied, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `..` of the root is the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// Where policy files of one scenario may be read from: the scenario's repository (the nearest
/// folder at or above the scenario's own that holds `.git` or `Cargo.toml`; without one, the
/// scenario's folder) and the folders the user allows. Paths are compared canonical, so neither
/// `..` nor a symlink leads out.
#[derive(Debug, Clone)]
pub(super) struct Confinement {
    /// The repository (canonical).
    pub repository: PathBuf,
    /// The repository and the allowed folders (canonical).
    roots: Vec<PathBuf>,
}

impl Confinement {
    /// The confinement of the scenario at `scenario_path`.
    pub fn new(scenario_path: &Path, allow: &[PathBuf], reader: &dyn FileReader) -> Self {
        let dir = scenario_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = reader.canonicalize(dir).unwrap_or_else(|_| normalize(dir));
        let repository = dir
            .ancestors()
            .find(|d| reader.exists(&d.join(".git")) || reader.exists(&d.join("Cargo.toml")))
            .unwrap_or(&dir)
            .to_path_buf();
        let mut roots = vec![repository.clone()];
        roots.extend(
            allow
                .iter()
                .map(|a| reader.canonicalize(a).unwrap_or_else(|_| normalize(a))),
        );
        Confinement { repository, roots }
    }

    /// Whether the canonical path `p` is inside the repository or an allowed folder.
    pub fn allows(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(files: &[&str]) -> MemReader {
        MemReader(
            files
                .iter()
                .map(|f| (PathBuf::from(f), String::new()))
                .collect(),
        )
    }

    #[test]
    fn paths_are_normalized_without_the_file_system() {
        for (p, want) in [
            ("a/./b/../c.yaml", "a/c.yaml"),
            ("./x.yaml", "x.yaml"),
            ("../x.yaml", "../x.yaml"),
            ("/r/a/../../../etc/passwd", "/etc/passwd"),
        ] {
            assert_eq!(normalize(Path::new(p)), PathBuf::from(want), "{p}");
        }
    }

    #[test]
    fn the_repository_is_the_nearest_folder_with_git_or_cargo_toml() {
        let r = mem(&["/w/repo/.git", "/w/repo/k8s/p.yaml", "/w/repo/tests/s.yaml"]);
        let c = Confinement::new(Path::new("/w/repo/tests/s.yaml"), &[], &r);
        assert_eq!(c.repository, PathBuf::from("/w/repo"));
        assert!(c.allows(Path::new("/w/repo/k8s/p.yaml")));
        assert!(!c.allows(Path::new("/w/other/p.yaml")));
        assert!(!c.allows(Path::new("/proc/self/environ")));
        let r = mem(&["/w/crate/Cargo.toml", "/w/crate/a/b/s.yaml"]);
        let c = Confinement::new(Path::new("/w/crate/a/b/s.yaml"), &[], &r);
        assert_eq!(c.repository, PathBuf::from("/w/crate"));
        // Without either, the scenario's own folder.
        let r = mem(&["/tmp/x/s.yaml"]);
        let c = Confinement::new(Path::new("/tmp/x/s.yaml"), &[], &r);
        assert_eq!(c.repository, PathBuf::from("/tmp/x"));
        assert!(!c.allows(Path::new("/tmp/p.yaml")));
        // Allowed folders widen it.
        let c = Confinement::new(Path::new("/tmp/x/s.yaml"), &[PathBuf::from("/srv/k8s")], &r);
        assert!(c.allows(Path::new("/srv/k8s/deep/p.yaml")));
        assert!(!c.allows(Path::new("/srv/k8s-other/p.yaml")));
    }

    #[test]
    fn memory_files_are_bounded_like_real_ones() {
        let big = "x".repeat(usize::try_from(MAX_FILE_SIZE).expect("fits") + 1);
        let r = MemReader(BTreeMap::from([(PathBuf::from("big.yaml"), big)]));
        assert!(matches!(
            r.read(Path::new("big.yaml")),
            Err(ReadError::TooLarge)
        ));
        assert!(matches!(
            r.read(Path::new("nope.yaml")),
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
