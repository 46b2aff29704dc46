//! The table of `splitbrain compare`: a row per system and fault kind. The rows are what
//! [`crate::compare`] measured.

use serde::Serialize;
use splitbrain_checkers::Verdict;
use std::path::PathBuf;
use tabled::{builder::Builder, settings::Style};

/// How one cell of the comparison went.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Cell {
    Ran {
        verdict: Verdict,
        operations: u64,
        availability: f64,
        /// Availability of operations overlapping the fault's windows.
        during_fault: Option<f64>,
        healthy: Option<f64>,
        p99_ms: f64,
        p99_during_fault_ms: Option<f64>,
        /// Faults injected, and how many of them did not take effect per their evidence.
        faults: u64,
        faults_not_in_effect: u64,
        dir: PathBuf,
    },
    /// The nemesis' validation refused the fault for this system before anything started.
    Refused { reason: String },
    /// The run could not be done (the system missing, a start-up failure).
    Error { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub system: String,
    pub fault: String,
    #[serde(flatten)]
    pub cell: Cell,
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |a| format!("{:.1}%", a * 100.0))
}

fn millis(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |m| format!("{m:.1}ms"))
}

/// `2 of 4` faults that did not take effect, `0 of 4`, or `-` without faults (also in
/// `splitbrain report`'s table).
pub fn not_in_effect(faults: u64, not_in_effect: u64) -> String {
    if faults == 0 {
        "-".to_owned()
    } else {
        format!("{not_in_effect} of {faults}")
    }
}

/// Shortens a refusal to its gist for the table (the full text is in the JSON).
fn gist(reason: &str, width: usize) -> String {
    let first = reason.lines().next().unwrap_or_default();
    if first.chars().count() <= width {
        first.to_owned()
    } else {
        first.chars().take(width).collect::<String>() + "…"
    }
}

/// The comparison as a table: a row per system and fault kind.
pub fn table(rows: &[Row]) -> String {
    let mut b = Builder::default();
    b.push_record([
        "system",
        "fault",
        "verdict",
        "ops",
        "availability",
        "during fault",
        "healthy",
        "p99",
        "p99 during fault",
        "not in effect",
        "note",
    ]);
    for r in rows {
        let mut record = vec![r.system.clone(), r.fault.clone()];
        match &r.cell {
            Cell::Ran {
                verdict,
                operations,
                availability,
                during_fault,
                healthy,
                p99_ms,
                p99_during_fault_ms,
                faults,
                faults_not_in_effect,
                ..
            } => record.extend([
                verdict.to_string(),
                operations.to_string(),
                percent(Some(*availability)),
                percent(*during_fault),
                percent(*healthy),
                millis(Some(*p99_ms)),
                millis(*p99_during_fault_ms),
                not_in_effect(*faults, *faults_not_in_effect),
                String::new(),
            ]),
            Cell::Refused { reason } => {
                record.push("refused".to_owned());
                record.extend(vec!["-".to_owned(); 7]);
                record.push(gist(reason, 110));
            }
            Cell::Error { reason } => {
                record.push("error".to_owned());
                record.extend(vec!["-".to_owned(); 7]);
                record.push(gist(reason, 110));
            }
        }
        b.push_record(record);
    }
    let mut table = b.build();
    table.with(Style::markdown());
    format!("{table}\n")
}
