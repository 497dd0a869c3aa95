//! The command line, one module per subcommand that needs more than a few lines.

pub mod doctor;
pub mod gc;
pub mod run;
pub mod synthesize;
