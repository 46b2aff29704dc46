//! Command-line interface: argument definitions here, one file per subcommand.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod check;
mod cleanup;
mod compare;
mod disk_layer;
mod doctor;
mod duration;
mod report;
mod run;

#[derive(Debug, Parser)]
#[command(
    name = "splitbrain",
    version,
    about = "Jepsen-style fault injection and linearizability checking"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check histories for linearizability (ours, Jepsen EDN, Jepsen log lines).
    Check(check::CheckArgs),
    /// Run a campaign: start the cluster, drive clients, inject faults, check the history.
    Run(run::RunArgs),
    /// Show which capabilities (privileges, kernel features, tools) this machine has.
    Doctor(doctor::DoctorArgs),
    /// Remove what crashed runs left behind: namespaces, cgroups and their processes.
    Cleanup(cleanup::CleanupArgs),
    /// One table over stored runs: campaign, system, faults, operations, availability, p99,
    /// verdict; newest first.
    Report(report::ReportArgs),
    /// Run one workload and fault schedule against several systems and compare them.
    Compare(compare::CompareArgs),
    /// The lazy disk layer as a process of its own (on a remote host, started by the run).
    #[command(hide = true)]
    DiskLayer(disk_layer::DiskLayerArgs),
}

/// What a subcommand returns: its exit code when it reached one (a verdict, 0 for done), or
/// the failure that stopped it.
type Outcome = Result<u8, crate::exit::Failure>;

/// Parses the command line, runs the subcommand, maps failures to exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => crate::exit::USAGE,
            });
        }
    };
    let outcome = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Run(args) => run::run_command(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Cleanup(args) => cleanup::run(args),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::DiskLayer(args) => disk_layer::run(args),
    };
    // The one place a failure becomes an exit code.
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            crate::stderr_line!("splitbrain: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Writes `text` to stdout. A reader that went away (`run … | head -1`) is not an error:
/// the rest of the output is dropped and the exit code stays the verdict's (`print!` would
/// panic). Another failure to write is said once on stderr.
pub(crate) fn emit(text: &str) {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            crate::stderr_line!("splitbrain: cannot write to standard output: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser;
    use std::time::Duration;

    fn time_limit_of(argv: &[&str]) -> Option<Duration> {
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Run(args) => args.time_limit,
            Command::Check(args) => args.time_limit,
            Command::Compare(args) => args.time_limit,
            other => panic!("unexpected subcommand {other:?}"),
        }
    }

    #[test]
    fn every_time_limit_takes_bare_seconds_and_units() {
        let twenty = Some(Duration::from_secs(20));
        for subcommand in [
            &["splitbrain", "run", "c.yaml"][..],
            &["splitbrain", "check", "h.jsonl"][..],
            &["splitbrain", "compare", "c.yaml"][..],
        ] {
            for limit in ["20", "20s"] {
                let argv = [subcommand, &["--time-limit", limit][..]].concat();
                assert_eq!(time_limit_of(&argv), twenty, "{argv:?}");
            }
        }
    }

    #[test]
    fn a_time_limit_without_a_number_is_a_usage_error() {
        let error = Cli::try_parse_from(["splitbrain", "run", "c.yaml", "--time-limit", "soon"])
            .expect_err("rejected");
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(error.to_string().contains("expected seconds"), "{error}");
    }
}
