//! One table over many stored runs (`splitbrain report`): what ran, what it did, what the
//! checkers said, newest first.

use super::{load_run, ReportError};
use crate::analysis::RunResults;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tabled::{builder::Builder, settings::Style};

/// One run as the report table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub dir: PathBuf,
    /// RFC 3339 start time (from the environment; the directory name's stamp otherwise).
    pub started: String,
    pub campaign: String,
    pub system: String,
    /// Fault kinds injected (the campaign's when the run has no results).
    pub faults: Vec<String>,
    /// `None` for a run that never finished (no `results.json`).
    pub operations: Option<u64>,
    pub availability: Option<f64>,
    pub p99_ms: Option<f64>,
    /// `valid`, `invalid`, `unknown`, or `None` for a run that never finished.
    pub verdict: Option<String>,
    /// Faults injected and how many did not take effect per their evidence (`None` for a
    /// run without results).
    pub faults_injected: Option<u64>,
    pub faults_not_in_effect: Option<u64>,
    /// Why the run could not be read (the file and its parse error); such a run is listed,
    /// never left out or shown as "not finished".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// How deep below the root run directories are looked for (`<root>/<campaign>/<run>`).
const MAX_DEPTH: usize = 3;

fn collect(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if super::is_run_dir(dir) {
        found.push(dir.to_owned());
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // `latest` is a symlink to a run listed anyway.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect(&entry.path(), depth - 1, found);
        }
    }
}

/// Every run below `root` (or `root` itself when it is a run), newest first, optionally only
/// those of one campaign.
pub fn scan(root: &Path, campaign: Option<&str>) -> Result<Vec<RunRow>, ReportError> {
    if !root.is_dir() {
        return Err(ReportError::Io {
            path: root.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        });
    }
    let mut dirs = Vec::new();
    collect(root, MAX_DEPTH, &mut dirs);
    let mut rows = Vec::new();
    for dir in dirs {
        // A run directory that cannot be read is listed as unreadable, with why: hiding it
        // would make the table look better than the runs are.
        match row_of(&dir) {
            Ok(row) => {
                if campaign.is_some_and(|c| c != row.campaign) {
                    continue;
                }
                rows.push(row);
            }
            Err(e) => rows.push(unreadable_row(&dir, e.to_string())),
        }
    }
    rows.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.dir.cmp(&a.dir)));
    Ok(rows)
}

fn unreadable_row(dir: &Path, why: String) -> RunRow {
    RunRow {
        dir: dir.to_owned(),
        started: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        campaign: "?".into(),
        system: "?".into(),
        faults: Vec::new(),
        operations: None,
        availability: None,
        p99_ms: None,
        verdict: None,
        faults_injected: None,
        faults_not_in_effect: None,
        unreadable: Some(why),
    }
}

fn row_of(dir: &Path) -> Result<RunRow, ReportError> {
    let run = load_run(dir)?;
    let env = crate::results::Environment::load(dir);
    // No results.json: the run never finished. One that does not load is unreadable.
    let results_path = dir.join(crate::results::files::RESULTS);
    let results = if results_path.exists() {
        Some(RunResults::load(&results_path).map_err(|e| ReportError::Results(Box::new(e)))?)
    } else {
        None
    };
    let started = env
        .map(|e| e.started_at)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let campaign_faults: Vec<String> = run
        .campaign
        .nemesis
        .kinds()
        .iter()
        .map(|k| k.name().to_owned())
        .collect();
    let (faults, operations, availability, p99_ms, verdict) = match &results {
        Some(r) => (
            r.fault_kinds.iter().cloned().collect(),
            Some(r.operation_count()),
            Some(r.operations.availability),
            Some(r.operations.latency_ms.p99),
            Some(r.verdict.as_str().to_owned()),
        ),
        None => (campaign_faults, None, None, None, None),
    };
    let effect = results.as_ref().map(|r| &r.fault_effect);
    let faults_injected = effect.map(|e| e.faults as u64);
    let faults_not_in_effect = effect.map(|e| e.not_in_effect as u64);
    Ok(RunRow {
        dir: dir.to_owned(),
        started,
        system: run.campaign.system.name(),
        campaign: run.campaign.name,
        faults,
        operations,
        availability,
        p99_ms,
        verdict,
        faults_injected,
        faults_not_in_effect,
        unreadable: None,
    })
}

/// The rows as a table.
pub fn table(rows: &[RunRow]) -> String {
    let mut b = Builder::default();
    b.push_record([
        "started",
        "campaign",
        "system",
        "faults",
        "ops",
        "availability",
        "p99",
        "not in effect",
        "verdict",
        "run",
    ]);
    for r in rows {
        b.push_record([
            r.started.clone(),
            r.campaign.clone(),
            r.system.clone(),
            if r.faults.is_empty() {
                "none".to_owned()
            } else {
                r.faults.join(", ")
            },
            r.operations
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            r.availability
                .map_or_else(|| "-".to_owned(), |a| format!("{:.1}%", a * 100.0)),
            r.p99_ms
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}ms")),
            match (r.faults_injected, r.faults_not_in_effect) {
                (Some(all), Some(not)) => super::compare::not_in_effect(all, not),
                _ => "-".to_owned(),
            },
            match (&r.unreadable, &r.verdict) {
                (Some(why), _) => format!("unreadable: {why}"),
                (None, Some(verdict)) => verdict.clone(),
                (None, None) => "not finished".to_owned(),
            },
            r.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ]);
    }
    let mut table = b.build();
    table.with(Style::sharp());
    format!("{table}\n")
}
