//! `splitbrain compare CAMPAIGN.yaml --systems raft,caspaxos,etcd`: the same workload and
//! fault schedule against several systems, as one table of measurements.

use crate::compare::{self, Cell, CompareOptions};
use crate::exit::{self, Failure, FailureKind};
use crate::report::progress::ProgressStyle;
use crate::run::RunOptions;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Campaign file (YAML): its workload and faults are used; its system is replaced.
    pub campaign: PathBuf,
    /// Systems to compare: etcd and the clusterkv architectures raft, caspaxos,
    /// primary-backup, dynamo.
    #[arg(long, default_value = "raft,caspaxos,primary-backup,dynamo,etcd")]
    pub systems: String,
    /// Length of each run's main phase, overriding the campaign's (e.g. 20s).
    #[arg(long, value_parser = super::duration::parse_duration)]
    pub time_limit: Option<Duration>,
    /// Seed shared by every run (the same fault schedule for each system).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where runs are written.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Print the rows as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CompareArgs) -> super::Outcome {
    let campaign = match crate::campaign::load(&args.campaign) {
        Ok(c) => c,
        Err(e) => return Err(Failure::usage(e)),
    };
    let systems = match compare::parse_systems(&args.systems) {
        Ok(s) => s,
        Err(e) => return Err(Failure::usage(format!("--systems: {e}"))),
    };
    if systems.iter().any(|s| s.needs_cluster()) {
        crate::capability::require_root()?;
    }
    let cancel = CancellationToken::new();
    super::run::watch_signals(cancel.clone())?;
    let opts = CompareOptions {
        systems,
        run: RunOptions {
            results_root: args.results.clone(),
            seed: args.seed,
            duration: args.time_limit,
            progress: ProgressStyle::for_stderr(),
            ..RunOptions::default()
        },
    };
    let rows = compare::compare(&campaign, &opts, &cancel, |row| {
        let what = match &row.cell {
            Cell::Ran { verdict, dir, .. } => format!("{verdict} ({})", dir.display()),
            Cell::Refused { reason } => format!("refused: {reason}"),
            Cell::Error { reason } => format!("error: {reason}"),
        };
        crate::stderr_line!("splitbrain: {} under {}: {what}", row.system, row.fault);
    });
    if args.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?));
    } else {
        super::emit(&compare::table(&rows).to_string());
    }
    if cancel.is_cancelled() {
        return Err(Failure::new(FailureKind::Interrupted, "interrupted"));
    }
    // Measurements, not a test: an invalid system is a finding, not a failure of the
    // command. The exit code says whether every cell could be measured (or was refused).
    let failed = rows.iter().any(|r| matches!(r.cell, Cell::Error { .. }));
    Ok(if failed {
        exit::UNAVAILABLE
    } else {
        exit::VALID
    })
}
