//! `splitbrain check`: offline linearizability checking of history files.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// History files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(_args: CheckArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not written yet")
}
