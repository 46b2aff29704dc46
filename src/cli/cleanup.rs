//! `splitbrain cleanup`: remove what crashed runs left behind (namespaces, cgroups, ...).

use crate::topology::RunId;
use clap::Args;

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only this run's leftovers (its id, as in `sb-<id>-n1`). Without it, the resources of
    /// every run are removed, including runs still in progress.
    #[arg(long = "run", value_name = "ID")]
    pub run: Option<String>,
}

/// Prints what was removed. Exit 0 when everything is gone (also when nothing was left).
pub fn run(args: CleanupArgs) -> anyhow::Result<u8> {
    let run = match args.run.as_deref().map(RunId::parse).transpose() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("splitbrain: {e}");
            return Ok(crate::exit::USAGE);
        }
    };
    if let Err(e) = crate::capability::require_root() {
        eprintln!("splitbrain: {e}");
        return Ok(e.exit_code());
    }
    let report = crate::cleanup::cleanup(run.as_ref());
    for line in &report.removed {
        println!("removed {line}");
    }
    for line in &report.errors {
        eprintln!("splitbrain: could not remove: {line}");
    }
    if report.removed.is_empty() && report.errors.is_empty() {
        println!("nothing to clean up");
    }
    Ok(if report.errors.is_empty() {
        crate::exit::VALID
    } else {
        crate::exit::SOFTWARE
    })
}
