//! The command line, one module per subcommand that needs more than a few lines.

pub mod audit;
pub mod doctor;
pub mod gc;
pub mod offline;
pub mod run;
pub mod synthesize;

use std::path::PathBuf;

use crate::scenario::LoadOptions;

/// The load options of `--allow-path` flags; `None` (after saying why) when one is not a folder.
pub fn load_options(command: &str, allow_paths: &[PathBuf]) -> Option<LoadOptions> {
    LoadOptions::allowing(allow_paths)
        .map_err(|e| eprintln!("netreach {command}: {e}"))
        .ok()
}
