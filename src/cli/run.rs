//! `splitbrain run`: run a campaign against a real cluster, check it, print the summary.

use crate::exit;
use crate::run::{run, RunOptions};
use clap::Args;
use splitbrain_checkers::Verdict;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Campaign file (YAML), e.g. workloads/quickstart.yaml.
    pub campaign: PathBuf,
    /// Length of the main phase, overriding the campaign's `workload.duration` (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub time_limit: Option<Duration>,
    /// Seed for every random choice, overriding the campaign's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the campaign this many times (seeds seed, seed+1, …); the worst verdict counts.
    #[arg(long, default_value_t = 1)]
    pub test_count: u32,
    /// Where runs are written.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

pub fn run_command(args: RunArgs) -> anyhow::Result<u8> {
    let campaign = match crate::campaign::load(&args.campaign) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("splitbrain: {e}");
            return Ok(exit::USAGE);
        }
    };
    if campaign.system.needs_cluster() && !nix::unistd::geteuid().is_root() {
        eprintln!(
            "splitbrain: run needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network \
             namespaces and cgroups for the cluster; try again with sudo"
        );
        return Ok(exit::NO_PERM);
    }
    let cancel = CancellationToken::new();
    watch_signals(cancel.clone())?;
    let mut overall = Verdict::Valid;
    for i in 0..args.test_count {
        let opts = RunOptions {
            results_root: args.results.clone(),
            seed: args.seed.map(|s| s.wrapping_add(i as u64)),
            duration: args.time_limit,
            ..RunOptions::default()
        };
        let report = match run(&campaign, &opts, cancel.clone()) {
            Ok(report) => report,
            // A fault this machine cannot do: refused before anything started.
            Err(e) => match e.downcast_ref::<crate::nemesis::NemesisError>() {
                Some(refused) => {
                    eprintln!("splitbrain: {refused}");
                    return Ok(refused.exit_code());
                }
                None => return Err(e),
            },
        };
        print!("{}", report.summary);
        println!("results: {}", report.dir.display());
        overall = overall.combine(report.verdict);
        if report.interrupted {
            eprintln!("splitbrain: interrupted; the cluster is cleaned up and the history so far was checked");
            return Ok(130);
        }
    }
    Ok(overall.exit_code() as u8)
}

/// Ctrl-C and SIGTERM cancel the run; the run then heals, stops and cleans up.
fn watch_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) =
                    (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
                else {
                    let _ = ready_tx.send(false);
                    return;
                };
                let _ = ready_tx.send(true);
                tokio::select! {
                    _ = int.recv() => eprintln!("splitbrain: interrupt: stopping the run and cleaning up"),
                    _ = term.recv() => eprintln!("splitbrain: terminated: stopping the run and cleaning up"),
                }
                cancel.cancel();
                // Keep the handlers installed: a second signal must not kill the cleanup.
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    eprintln!("splitbrain: still cleaning up");
                }
            })
        })?;
    if !ready_rx.recv().unwrap_or(false) {
        anyhow::bail!("cannot install signal handlers");
    }
    Ok(())
}
