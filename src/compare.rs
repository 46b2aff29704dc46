//! `splitbrain compare`: one workload under one fault schedule against several systems,
//! turned into measurements — per system and fault kind: verdict, availability (overall,
//! during the fault, while healthy), p99 latency.
//!
//! Each fault kind of the campaign gets its own run per system (the same seed, so the same
//! schedule), so that a fault one system cannot take — clock skew on etcd, whose Go binary
//! libfaketime cannot skew — is refused for that cell alone and marked as such in the table,
//! while the other cells are still measured.

use crate::campaign::{Campaign, ClusterKvSpec, EtcdSpec, SystemSpec};
/// The comparison's rows and their table, with everything else people read.
pub use crate::report::compare::{table, Cell, Row};
use crate::run::{run, RunError, RunOptions};
use crate::system::clusterkv::{Arch, Bug};
use tokio_util::sync::CancellationToken;

/// A `--systems` list that names no system we know.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("unknown system `{0}`: expected etcd, raft, caspaxos, primary-backup, dynamo, a bug variant (raft-stale-local-read, …, caspaxos-ack-before-quorum), postgres-serializable, postgres-repeatable-read or postgres-read-committed")]
    UnknownSystem(String),
    #[error("no systems given")]
    NoSystems,
}

/// Parses `raft,caspaxos,etcd`: the shipped clusterkv architectures, their bug variants
/// (`raft-stale-local-read`, …), etcd and PostgreSQL's isolation levels.
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
            let bug = Bug::ALL.into_iter().find(|bug| bug.variant_name() == name);
            let arch: Arch = match bug {
                Some(bug) => bug.arch(),
                None => serde_json::from_value(serde_json::Value::String(name.to_owned()))
                    .map_err(|_| CompareError::UnknownSystem(name.to_owned()))?,
            };
            SystemSpec::Clusterkv(ClusterKvSpec {
                arch,
                bug,
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
            let run_opts = RunOptions {
                seed: Some(seed),
                ..opts.run.clone()
            };
            // A fault this machine cannot do is refused before anything starts.
            let cell = match run(&c, &run_opts, cancel.clone()) {
                Ok(report) => cell_of(&report),
                Err(RunError::Refused(refused)) => Cell::Refused {
                    reason: refused.to_string(),
                },
                Err(e) => Cell::Error {
                    reason: format!("{e:#}"),
                },
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
