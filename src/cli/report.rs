//! `splitbrain report [DIR]`: one table over the runs stored under DIR, newest first.

use crate::exit;
use crate::report::runs;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results directory (or one run directory).
    #[arg(default_value = "results")]
    pub dir: PathBuf,
    /// Only the runs of this campaign.
    #[arg(long)]
    pub campaign: Option<String>,
    /// At most this many runs (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the rows as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Check each listed run again with its own settings and write its summary.txt,
    /// results.json, history.edn, junit.xml and report.html anew (e.g. after an upgrade).
    #[arg(long)]
    pub rewrite: bool,
}

pub fn run(args: ReportArgs) -> super::Outcome {
    if !args.dir.exists() {
        return Err(exit::Failure::new(
            exit::FailureKind::NoInput,
            format!("{}: no such directory", args.dir.display()),
        ));
    }
    let mut rows = match runs::scan(&args.dir, args.campaign.as_deref()) {
        Ok(rows) => rows,
        Err(e) => return Err(exit::Failure::usage(e)),
    };
    if let Some(limit) = args.limit {
        rows.truncate(limit);
    }
    if args.rewrite {
        for row in &rows {
            match rewrite(&row.dir) {
                Ok(()) => crate::stderr_line!("splitbrain: rewrote {}", row.dir.display()),
                Err(e) => crate::stderr_line!("splitbrain: {e}"),
            }
        }
    }
    if args.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?));
    } else if rows.is_empty() {
        super::emit(&format!(
            "no runs under {}{}\n",
            args.dir.display(),
            args.campaign
                .as_deref()
                .map_or_else(String::new, |c| format!(" for campaign {c}"))
        ));
    } else {
        super::emit(&runs::table(&rows).to_string());
    }
    // A run that could not be read is bad data: said on stderr too, and not a clean exit.
    let unreadable: Vec<&runs::RunRow> = rows.iter().filter(|r| r.unreadable.is_some()).collect();
    for row in &unreadable {
        crate::stderr_line!(
            "splitbrain: unreadable run {}: {}",
            row.dir.display(),
            row.unreadable.as_deref().unwrap_or_default()
        );
    }
    if !unreadable.is_empty() {
        return Ok(exit::DATA_ERR);
    }
    Ok(exit::VALID)
}

fn rewrite(dir: &std::path::Path) -> Result<(), crate::report::ReportError> {
    let (run, checked) = crate::report::recheck_run(dir)?;
    let history = splitbrain_checkers::formats::read_file(
        &dir.join(crate::results::files::HISTORY),
        &Default::default(),
    )
    .map_err(|e| crate::report::ReportError::History {
        dir: dir.to_owned(),
        message: e.to_string(),
    })?
    .history;
    let facts = run.facts();
    crate::report::write_run_results(dir, &history, &facts, &checked)
}
