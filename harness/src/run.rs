//! Orchestration: a scenario's steps through the cluster seam, into reports.

/// The `netreach run` command line.
pub mod cli {
    /// Arguments of `netreach run`.
    #[derive(clap::Args, Debug)]
    pub struct RunArgs {
        /// Scenario files or folders of them.
        #[arg(required = true)]
        pub paths: Vec<std::path::PathBuf>,
    }

    /// Runs `netreach run`.
    ///
    /// # Errors
    /// Infrastructure failures.
    pub fn main(_args: &RunArgs) -> anyhow::Result<i32> {
        anyhow::bail!("not implemented yet")
    }
}
