//! Everything people (and CI) read about runs: built from [`crate::analysis`], never the
//! other way round.
//!
//! * [`check_and_summarise`] — the checks of [`crate::analysis`] and the [`table`] of them:
//!   a [`Checked`] run.
//! * [`table`] — the summary table a run ends with (`summary.txt`, the terminal).
//! * [`write_run_results`] — at the end of a run: `summary.txt`, `results.json`,
//!   `history.edn` (Jepsen's EDN, written from the recorded history), `junit.xml` and
//!   `report.html`.
//! * [`compare`] — the table of `splitbrain compare`.
//! * [`html`] — the self-contained HTML report of one run.
//! * [`junit`] — JUnit XML, a test case per checker.
//! * [`runs`] — one table over many stored runs (`splitbrain report`).
//! * [`progress`] — the progress line while a run is going.
//! * [`recheck_run`] — checks a stored run again with its own settings.

pub mod compare;
pub mod cycle_graph;
pub mod html;
pub mod junit;
pub mod progress;
pub mod runs;
pub mod table;

use crate::analysis::{self, Analysis, RunFacts, RunResults};
use crate::campaign::Campaign;
use crate::results::files;
use splitbrain_checkers::{History, Verdict};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writing or reading a run's results failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("rendering junit.xml: {0}")]
    Junit(#[from] quick_junit::SerializeError),
    #[error(transparent)]
    Results(Box<crate::analysis::ResultsError>),
    #[error("{}: not a run directory (no {missing})", dir.display())]
    NotARun { dir: PathBuf, missing: &'static str },
    #[error("{}: reading the history: {message}", dir.display())]
    History { dir: PathBuf, message: String },
    #[error("checking {}: {message}", dir.display())]
    Check { dir: PathBuf, message: String },
}

/// A checked run: the verdicts, and the table that shows them.
pub struct Checked {
    pub verdict: Verdict,
    /// The summary table ([`table::render`]).
    pub table: String,
    /// The results document (`results.json`).
    pub results: RunResults,
    pub analysis: Analysis,
}

/// Runs the checks of [`analysis::check`] and renders their table.
pub fn check_and_summarise(history: &History, facts: &RunFacts) -> anyhow::Result<Checked> {
    let judged = analysis::check(history, facts)?;
    let table = table::render(
        facts,
        &judged.analysis,
        &judged.results.checkers,
        judged.verdict,
    );
    Ok(Checked {
        verdict: judged.verdict,
        table,
        results: judged.results,
        analysis: judged.analysis,
    })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, data).map_err(io_error(path))
}

/// Writes `summary.txt`, `results.json`, `history.edn`, `junit.xml` and `report.html` into
/// the run directory `dir`.
pub fn write_run_results(
    dir: &Path,
    history: &History,
    facts: &RunFacts,
    checked: &Checked,
) -> Result<(), ReportError> {
    write_file(&dir.join(files::SUMMARY), checked.table.as_bytes())?;
    let json_path = dir.join(files::RESULTS);
    let json =
        serde_json::to_string_pretty(&checked.results).map_err(|source| ReportError::Json {
            path: json_path.clone(),
            source,
        })?;
    write_file(&json_path, (json + "\n").as_bytes())?;
    write_history_edn(&dir.join(files::HISTORY_EDN), history)?;
    let xml = junit::to_xml(&junit::report([junit::suite(facts, checked)]))?;
    write_file(&dir.join(files::JUNIT), xml.as_bytes())?;
    write_file(
        &dir.join(files::REPORT_HTML),
        html::render(facts, history, checked).as_bytes(),
    )?;
    Ok(())
}

/// The history as Jepsen EDN, one op map per line.
pub fn write_history_edn(path: &Path, history: &History) -> Result<(), ReportError> {
    let file = std::fs::File::create(path).map_err(io_error(path))?;
    let mut out = std::io::BufWriter::new(file);
    splitbrain_checkers::formats::edn::write_history(&mut out, &history.events)
        .and_then(|()| out.flush())
        .map_err(io_error(path))
}

/// What was recorded about a stored run, beside its history.
#[derive(Debug)]
pub struct StoredRun {
    pub dir: PathBuf,
    pub campaign: Campaign,
    pub seed: u64,
    pub run_id: String,
    pub nodes: Vec<String>,
    pub main_elapsed: Duration,
    pub interrupted: bool,
    pub node_deaths: Vec<String>,
}

fn read_json(path: &Path) -> Result<serde_json::Value, ReportError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Whether `dir` holds a run (a campaign and a history).
pub fn is_run_dir(dir: &Path) -> bool {
    dir.join(files::CAMPAIGN).is_file() && dir.join(files::HISTORY).is_file()
}

impl StoredRun {
    /// The facts the summary and the reports need.
    pub fn facts(&self) -> RunFacts<'_> {
        RunFacts {
            campaign: &self.campaign,
            seed: self.seed,
            run_id: &self.run_id,
            nodes: self.nodes.clone(),
            main_elapsed: self.main_elapsed,
            interrupted: self.interrupted,
            node_deaths: self.node_deaths.clone(),
        }
    }
}

/// Reads a run directory's campaign and recorded facts.
pub fn load_run(dir: &Path) -> Result<StoredRun, ReportError> {
    if !dir.join(files::HISTORY).is_file() {
        return Err(ReportError::NotARun {
            dir: dir.to_owned(),
            missing: files::HISTORY,
        });
    }
    let campaign_path = dir.join(files::CAMPAIGN);
    if !campaign_path.is_file() {
        return Err(ReportError::NotARun {
            dir: dir.to_owned(),
            missing: files::CAMPAIGN,
        });
    }
    let campaign: Campaign =
        serde_json::from_value(read_json(&campaign_path)?).map_err(|source| ReportError::Json {
            path: campaign_path.clone(),
            source,
        })?;
    // The environment and the results are optional: a run that died before its end has
    // neither results nor a clean end, and is still checkable.
    let env = crate::results::Environment::load(dir);
    let results = RunResults::load(&dir.join(files::RESULTS)).ok();
    let seed = env
        .as_ref()
        .map(|e| e.seed)
        .or(campaign.seed)
        .unwrap_or_default();
    let run_id = env.map(|e| e.run_id).unwrap_or_default();
    let nodes = match results.as_ref().filter(|r| !r.nodes.is_empty()) {
        Some(r) => r.nodes.clone(),
        None => (1..=campaign.nodes)
            .map(crate::topology::node_name)
            .collect(),
    };
    Ok(StoredRun {
        dir: dir.to_owned(),
        seed,
        run_id,
        nodes,
        main_elapsed: Duration::from_secs_f64(
            results.as_ref().map_or(0.0, |r| r.main_phase_s.max(0.0)),
        ),
        interrupted: results.as_ref().is_some_and(|r| r.interrupted),
        node_deaths: results.map(|r| r.node_deaths).unwrap_or_default(),
        campaign,
    })
}

/// Checks a stored run again with its own settings (model, time limit, evidence threshold
/// from its `campaign.json`). Nothing in the run directory is changed.
pub fn recheck_run(dir: &Path) -> Result<(StoredRun, Checked), ReportError> {
    let run = load_run(dir)?;
    let read =
        splitbrain_checkers::formats::read_file(&dir.join(files::HISTORY), &Default::default())
            .map_err(|e| ReportError::History {
                dir: dir.to_owned(),
                message: e.to_string(),
            })?;
    let facts = run.facts();
    let checked = check_and_summarise(&read.history, &facts).map_err(|e| ReportError::Check {
        dir: dir.to_owned(),
        message: format!("{e:#}"),
    })?;
    Ok((run, checked))
}
