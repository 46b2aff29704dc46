//! `splitbrain run`: run a campaign against a real cluster, check it, print the summary.

use crate::exit::{self, Failure, FailureKind};
use crate::report::progress::ProgressStyle;
use crate::run::{run, RunOptions};
use anyhow::Context;
use clap::Args;
use splitbrain_checkers::Verdict;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Campaign file (YAML), e.g. workloads/quickstart.yaml.
    pub campaign: PathBuf,
    /// Length of the main phase, overriding the campaign's `workload.duration`: seconds
    /// (`20`) or with units (`20s`, `1m30s`).
    #[arg(long, value_parser = super::duration::parse_duration)]
    pub time_limit: Option<Duration>,
    /// Seed for every random choice, overriding the campaign's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the campaign this many times (seeds seed, seed+1, …); the worst verdict counts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub test_count: u32,
    /// Where runs are written.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Also write the JUnit XML (a test case per checker, a suite per run) here, for CI.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Print only the verdict line (and no progress).
    #[arg(long, conflicts_with = "json")]
    pub quiet: bool,
    /// Print the results document (results.json) on stdout instead of the summary table;
    /// several runs (--test-count) give a JSON array.
    #[arg(long)]
    pub json: bool,
}

pub fn run_command(args: RunArgs) -> super::Outcome {
    let campaign = match crate::campaign::load(&args.campaign) {
        Ok(c) => c,
        Err(e) => {
            // A campaign file that is not there is missing input (66), as history files are.
            let kind = match &e {
                crate::campaign::CampaignError::Read { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    exit::FailureKind::NoInput
                }
                _ => exit::FailureKind::Usage,
            };
            return Err(Failure::new(kind, e));
        }
    };
    if campaign.system.needs_cluster() {
        crate::capability::require_root()?;
    }
    let cancel = CancellationToken::new();
    let abandon_check = CancellationToken::new();
    watch_signals_twice(cancel.clone(), abandon_check.clone())?;
    let mut overall = Verdict::Valid;
    let progress = if args.quiet {
        ProgressStyle::Off
    } else {
        ProgressStyle::for_stderr()
    };
    let mut suites = Vec::new();
    let mut documents = Vec::new();
    let mut interrupted = false;
    for i in 0..args.test_count {
        let opts = RunOptions {
            results_root: args.results.clone(),
            seed: args.seed.map(|s| s.wrapping_add(i as u64)),
            duration: args.time_limit,
            progress,
            abandon_check: abandon_check.clone(),
            ..RunOptions::default()
        };
        // A fault this machine cannot do, a missing system: refused before anything started.
        let report = run(&campaign, &opts, cancel.clone())?;
        if args.json {
            documents.push(serde_json::to_value(&report.results)?);
        } else if args.quiet {
            super::emit(&format!(
                "{} {} on {}: {}\n",
                report.verdict.as_str().to_uppercase(),
                campaign.name,
                campaign.system.name(),
                report.dir.display()
            ));
        } else {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                super::emit(&crate::report::table::for_terminal(&report.summary).to_string());
            } else {
                super::emit(&report.summary.to_string());
            }
            super::emit(&format!("results: {}\n", report.dir.display()));
        }
        if args.junit.is_some() {
            let path = report.dir.join(crate::results::files::JUNIT);
            let xml = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let run_report = quick_junit::Report::deserialize_from_str(&xml)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("reading {}", path.display()))?;
            suites.extend(run_report.test_suites);
        }
        overall = overall.combine(report.verdict);
        if report.interrupted {
            interrupted = true;
            break;
        }
    }
    if args.json {
        let doc = match documents.len() {
            1 => documents.remove(0),
            _ => serde_json::Value::Array(documents),
        };
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    if let Some(path) = &args.junit {
        let xml = crate::report::junit::to_xml(&crate::report::junit::report(suites))
            .map_err(anyhow::Error::from)?;
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    // What results.json says decides: a signal after the last verdict interrupted nothing.
    if interrupted {
        let message = "interrupted; the cluster is cleaned up and the history so far was checked";
        // A violation found in the partial history is still a violation.
        if overall == Verdict::Invalid {
            crate::stderr_line!("splitbrain: {message}");
            return Ok(exit::INVALID);
        }
        return Err(Failure::new(FailureKind::Interrupted, message));
    }
    Ok(overall.exit_code() as u8)
}

/// Ctrl-C and SIGTERM cancel the run; the run then heals, stops and cleans up.
pub(super) fn watch_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    watch_signals_twice(cancel, CancellationToken::new())
}

/// Like [`watch_signals`]; a second SIGINT or SIGTERM also cancels `then`, which abandons
/// the check of the history so far.
fn watch_signals_twice(cancel: CancellationToken, then: CancellationToken) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    let _ = ready_tx.send(false);
                    return;
                };
                let _ = ready_tx.send(true);
                let why = tokio::select! {
                    _ = int.recv() => "interrupt",
                    _ = term.recv() => "terminated",
                };
                // Cancel first: telling the user must never stand in the way (stderr may be gone).
                cancel.cancel();
                crate::stderr_line!("splitbrain: {why}: stopping the run and cleaning up");
                // Keep the handlers installed: a second signal must not kill the cleanup.
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    if then.is_cancelled() {
                        crate::stderr_line!("splitbrain: still cleaning up");
                    } else {
                        then.cancel();
                        crate::stderr_line!(
                            "splitbrain: second signal: abandoning the check (verdict unknown)"
                        );
                    }
                }
            })
        })?;
    if !ready_rx.recv().unwrap_or(false) {
        anyhow::bail!("cannot install signal handlers");
    }
    Ok(())
}
