//! Finding scenario files under the paths given: files are kept, folders are searched
//! recursively. Symlinks are followed, but every folder is searched once and every file found
//! once (by canonical path), so a link back up the tree (`ln -s . loop`) neither loops nor finds
//! the same scenario again.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// Expands paths: files are kept; folders are searched recursively for `*.yaml`/`*.yml`, sorted
/// for a stable order. Folders named `policies` are skipped: they hold policy files that
/// scenarios refer to, not scenarios. A file reached twice (twice named, or through a symlink)
/// is listed once, under the first path it was found by; special files (FIFOs, devices) found
/// in folders are left out.
///
/// # Errors
/// When a path does not exist or a folder cannot be read.
pub fn discover(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut walk = Walk::default();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            walk.dir(p)?;
        } else {
            walk.file(p);
        }
    }
    Ok(walk.found)
}

#[derive(Default)]
struct Walk {
    /// Canonical folders searched so far.
    dirs: BTreeSet<PathBuf>,
    /// Canonical files found so far.
    files: BTreeSet<PathBuf>,
    /// Files found, as reached.
    found: Vec<PathBuf>,
}

impl Walk {
    fn file(&mut self, p: &Path) {
        let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if self.files.insert(canonical) {
            self.found.push(p.to_path_buf());
        }
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
            let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => {
                    if p.file_name().is_some_and(|n| n != "policies") {
                        self.dir(&p)?;
                    }
                }
                Ok(m) if m.is_file() && yaml => self.file(&p),
                // A dangling symlink: listed, so that loading says what is wrong with it.
                Err(_) if yaml => self.file(&p),
                _ => {}
            }
        }
        Ok(())
    }
}
