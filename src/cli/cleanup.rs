//! `splitbrain cleanup`: remove what crashed runs left behind (namespaces, cgroups, ...) —
//! only what a run recorded making, and only when that run's controller is gone.

use crate::topology::RunId;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "\
Only what a run recorded making is removed: every run writes, before it makes anything, a
record in /run/splitbrain/<run id>/ ($SPLITBRAIN_STATE_DIR instead, when set) naming its
controller process and each namespace and cgroup it makes. A run's leftovers are removed
only once its controller is gone (checked by pid and start time, so a reused pid does not
count); runs still in progress are left alone and listed. Namespaces, cgroups and processes
that no record names, e.g. your own `sb-lab-vpn`, are never touched, whatever their names.
Exit 0 when everything recorded is gone, 70 when something could not be removed, 77
without root.")]
pub struct CleanupArgs {
    /// Only this run's leftovers (its id, as in `sb-<id>-n1`). Without it, every recorded
    /// run whose controller is gone.
    #[arg(long = "run", value_name = "ID")]
    pub run: Option<String>,
}

/// Prints what was removed. Exit 0 when everything is gone (also when nothing was left).
pub fn run(args: CleanupArgs) -> super::Outcome {
    let run = match args.run.as_deref().map(RunId::parse).transpose() {
        Ok(run) => run,
        Err(e) => return Err(crate::exit::Failure::usage(e)),
    };
    crate::capability::require_root()?;
    let report = crate::cleanup::cleanup(run.as_ref(), crate::run::CLEANUP_INSIDE_NAMESPACES);
    for line in &report.removed {
        super::emit(&format!("removed {line}\n"));
    }
    for line in &report.left_alone {
        super::emit(&format!("left alone: {line}\n"));
    }
    for line in &report.errors {
        crate::stderr_line!("splitbrain: could not remove: {line}");
    }
    if report.removed.is_empty() && report.errors.is_empty() && report.left_alone.is_empty() {
        super::emit("nothing to clean up\n");
    }
    Ok(if report.errors.is_empty() {
        crate::exit::VALID
    } else {
        crate::exit::SOFTWARE
    })
}
