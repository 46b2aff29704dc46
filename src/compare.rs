//! `splitbrain compare`: one workload under one fault schedule against several systems,
//! turned into measurements — per system and fault kind: verdict, availability (overall,
//! during the fault, while healthy), p99 latency.
//!
//! Each fault kind of the campaign gets its own run per system (the same seed, so the same
//! schedule), so that a fault one system cannot take — clock skew on etcd, whose Go binary
//! libfaketime cannot skew — is refused for that cell alone and marked as such in the table,
//! while the other cells are still measured.

use crate::campaign::{Campaign, ClusterKvSpec, EtcdSpec, SystemSpec};
use crate::run::{run, RunOptions};
use crate::system::clusterkv::Arch;
use serde::Serialize;
use splitbrain_checkers::Verdict;
use std::path::PathBuf;
use tabled::{builder::Builder, settings::Style};
use tokio_util::sync::CancellationToken;

/// A `--systems` list that names no system we know.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("unknown system `{0}`: expected etcd, raft, caspaxos, primary-backup, dynamo, postgres-serializable, postgres-repeatable-read or postgres-read-committed")]
    UnknownSystem(String),
    #[error("no systems given")]
    NoSystems,
}

/// Parses `raft,caspaxos,etcd`: the shipped clusterkv architectures and etcd.
pub fn parse_systems(list: &str) -> Result<Vec<SystemSpec>, CompareError> {
    let mut systems = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let postgres = crate::system::postgres::Isolation::ALL
            .into_iter()
            .find(|level| name.strip_prefix("postgres-") == Some(level.name()));
        let spec = if name == "etcd" {
            SystemSpec::Etcd(EtcdSpec::default())
        } else if let Some(isolation) = postgres {
            SystemSpec::Postgres(crate::system::postgres::PostgresSpec {
                isolation,
                ..Default::default()
            })
        } else {
            let arch: Arch = serde_json::from_value(serde_json::Value::String(name.to_owned()))
                .map_err(|_| CompareError::UnknownSystem(name.to_owned()))?;
            SystemSpec::Clusterkv(ClusterKvSpec {
                arch,
                replication: None,
                n: None,
                r: None,
                w: None,
                heartbeat: None,
                election_timeout: None,
            })
        };
        systems.push(spec);
    }
    if systems.is_empty() {
        return Err(CompareError::NoSystems);
    }
    Ok(systems)
}

/// The campaign split by fault kind: one campaign per kind (only that kind's faults), or
/// the campaign itself, labelled `none`, when it has no faults.
pub fn split_by_fault(campaign: &Campaign) -> Vec<(String, Campaign)> {
    let kinds = campaign.nemesis.kinds();
    if kinds.is_empty() {
        return vec![("none".to_owned(), campaign.clone())];
    }
    kinds
        .into_iter()
        .map(|kind| {
            let mut c = campaign.clone();
            c.nemesis.faults.retain(|k| *k == kind);
            c.nemesis.timeline.retain(|t| t.fault == kind);
            (kind.name().to_owned(), c)
        })
        .collect()
}

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

/// Settings of a comparison.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub systems: Vec<SystemSpec>,
    /// Run settings shared by every cell; its seed (or one drawn now) is used everywhere.
    pub run: RunOptions,
}

/// Runs every (system, fault kind) cell in turn; `on_row` sees each row as it is done.
pub fn compare(
    campaign: &Campaign,
    opts: &CompareOptions,
    cancel: &CancellationToken,
    mut on_row: impl FnMut(&Row),
) -> Vec<Row> {
    let seed = opts.run.seed.or(campaign.seed).unwrap_or_else(rand::random);
    let mut rows = Vec::new();
    for system in &opts.systems {
        for (fault, variant) in split_by_fault(campaign) {
            if cancel.is_cancelled() {
                return rows;
            }
            let mut c = variant;
            c.system = system.clone();
            c.name = format!("{}-{}-{}", campaign.name, system.name(), fault);
            let cell = match crate::nemesis::validate(&c) {
                Err(refused) => Cell::Refused {
                    reason: refused.to_string(),
                },
                Ok(()) => {
                    let run_opts = RunOptions {
                        seed: Some(seed),
                        ..opts.run.clone()
                    };
                    match run(&c, &run_opts, cancel.clone()) {
                        Ok(report) => cell_of(&report),
                        Err(e) => Cell::Error {
                            reason: format!("{e:#}"),
                        },
                    }
                }
            };
            let row = Row {
                system: system.name(),
                fault,
                cell,
            };
            on_row(&row);
            rows.push(row);
        }
    }
    rows
}

fn cell_of(report: &crate::run::RunReport) -> Cell {
    let results = &report.results;
    let during = &results.availability.during_faults;
    let faulted = during.operations > 0;
    Cell::Ran {
        verdict: report.verdict,
        operations: results.operation_count(),
        availability: results.operations.availability,
        during_fault: faulted.then_some(during.availability),
        healthy: Some(results.availability.healthy.availability),
        p99_ms: results.operations.latency_ms.p99,
        p99_during_fault_ms: faulted.then_some(during.p99_ms),
        faults: results.fault_effect.faults as u64,
        faults_not_in_effect: results.fault_effect.not_in_effect as u64,
        dir: report.dir.clone(),
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |a| format!("{:.1}%", a * 100.0))
}

fn millis(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |m| format!("{m:.1}ms"))
}

/// `2 of 4` faults that did not take effect, `0 of 4`, or `-` without faults.
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
