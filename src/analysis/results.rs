//! `results.json`: the typed results document of one run, and how stored ones load
//! (every earlier format version still does).

use super::faults::{FaultEffect, FaultWindow};
use super::ops::{OpStats, PhaseStats};
use super::{Analysis, RunFacts};
use serde::{Deserialize, Serialize};
use splitbrain_checkers::verdict::Linearization;
use splitbrain_checkers::{Counterexample, Value, Verdict};
use std::collections::BTreeMap;

/// The outcome of one checker.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckerOutcome {
    pub checker: String,
    #[serde(with = "verdict_text")]
    pub verdict: Verdict,
    /// One line: what the checker found.
    pub detail: String,
    #[serde(default)]
    pub result: serde_json::Value,
    /// The first counterexample of an `invalid` linearizability check.
    #[serde(skip)]
    pub counterexample: Option<Counterexample>,
    /// Every key a linearizability check found invalid (in `results.json` as the run's
    /// `invalid_keys`).
    #[serde(skip)]
    pub invalid_keys: Vec<Value>,
    /// For a `valid` linearizability check of a history small enough to draw (see
    /// [`drawable_keys`]): each key's linearization, in key order. Not in `results.json`.
    #[serde(skip)]
    pub linearizations: Vec<(Option<Value>, Linearization)>,
    /// The anomalies a transactional check found, explained (the HTML report draws each
    /// cycle). Not a field of its own in `results.json`: `result` holds them.
    #[serde(skip)]
    pub anomalies: Vec<splitbrain_checkers::txn::explain::Anomaly>,
}

/// The version of `results.json` this build writes. 1: no `format` field, `latency_ms` as
/// `[p50, p95, p99, max]`; 2: `format` and named latencies. Every earlier version still loads.
pub const RESULTS_FORMAT: u32 = 2;

fn format_1() -> u32 {
    1
}

/// The results document of one run (`results.json`): written once at the end of the run,
/// handed to whoever needs it in the same process and read back with [`RunResults::load`]
/// from a stored run.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// [`RESULTS_FORMAT`] when written; 1 for run directories from before it was recorded.
    #[serde(default = "format_1")]
    pub format: u32,
    #[serde(with = "verdict_text")]
    pub verdict: Verdict,
    pub campaign: String,
    pub system: String,
    #[serde(default)]
    pub nodes: Vec<String>,
    pub model: String,
    pub seed: u64,
    pub run_id: String,
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub node_deaths: Vec<String>,
    /// Length of the main phase (seconds).
    #[serde(default)]
    pub main_phase_s: f64,
    pub operations: OpStats,
    #[serde(default)]
    pub availability: Availability,
    /// The kinds of the faults the history shows.
    #[serde(default)]
    pub fault_kinds: std::collections::BTreeSet<String>,
    #[serde(default)]
    pub fault_effect: FaultEffect,
    /// Faults across which the leader changed (`None` when the system cannot say).
    #[serde(default)]
    pub leader_changes: Option<usize>,
    /// The keys any linearizability check found invalid.
    #[serde(default)]
    pub invalid_keys: Vec<Value>,
    #[serde(default)]
    pub faults: Vec<FaultWindow>,
    #[serde(default)]
    pub checkers: Vec<CheckerOutcome>,
    /// False for a run re-checked from a directory without `results.json`: its controller
    /// was killed, so the history is a prefix of the run.
    #[serde(default = "finished_default")]
    pub finished: bool,
    /// Why the verdict is `unknown` when no checker says it (an unfinished run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

fn finished_default() -> bool {
    true
}

impl RunResults {
    /// The document of a checked run: its facts, the history's analysis, the combined
    /// verdict and each checker's outcome.
    pub fn new(
        facts: &RunFacts,
        analysis: &Analysis,
        verdict: Verdict,
        checkers: Vec<CheckerOutcome>,
    ) -> RunResults {
        let campaign = facts.campaign;
        RunResults {
            format: RESULTS_FORMAT,
            verdict,
            campaign: campaign.name.clone(),
            system: campaign.system.name(),
            nodes: facts.nodes.clone(),
            model: campaign.model().name().to_owned(),
            seed: facts.seed,
            run_id: facts.run_id.to_owned(),
            interrupted: facts.interrupted,
            node_deaths: facts.node_deaths.clone(),
            main_phase_s: facts.main_elapsed.as_secs_f64(),
            operations: analysis.ops.clone(),
            availability: Availability {
                overall: analysis.ops.availability,
                during_faults: analysis.during_faults.clone(),
                healthy: analysis.healthy.clone(),
                by_fault: analysis.by_fault.clone(),
            },
            fault_kinds: analysis.faults.iter().map(|w| w.kind.clone()).collect(),
            fault_effect: FaultEffect::of(&analysis.faults, campaign.nemesis.require_effect),
            leader_changes: super::faults::leader_changes(&analysis.faults),
            invalid_keys: checkers
                .iter()
                .flat_map(|o| o.invalid_keys.iter().cloned())
                .collect(),
            faults: analysis.faults.clone(),
            checkers,
            finished: true,
            cause: None,
        }
    }

    /// Reads a stored `results.json`, whichever format version wrote it.
    pub fn load(path: &std::path::Path) -> Result<RunResults, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
            path: path.to_owned(),
            source,
        })?;
        let results: RunResults =
            serde_json::from_str(&text).map_err(|source| ResultsError::Json {
                path: path.to_owned(),
                source,
            })?;
        if results.format > RESULTS_FORMAT {
            return Err(ResultsError::NewerFormat {
                path: path.to_owned(),
                format: results.format,
            });
        }
        Ok(results)
    }

    /// Client operations of every outcome.
    pub fn operation_count(&self) -> u64 {
        self.operations.operations()
    }
}

/// Reading a stored `results.json` failed.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: results format {format} is newer than this build reads ({RESULTS_FORMAT})", path.display())]
    NewerFormat {
        path: std::path::PathBuf,
        format: u32,
    },
}

/// Availability overall, in and out of faults, and per fault kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Availability {
    pub overall: f64,
    pub during_faults: PhaseStats,
    pub healthy: PhaseStats,
    pub by_fault: BTreeMap<String, PhaseStats>,
}

/// A [`Verdict`] as its lowercase name (`valid`, `invalid`, `unknown`).
mod verdict_text {
    use splitbrain_checkers::Verdict;

    pub fn serialize<S: serde::Serializer>(v: &Verdict, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(v, s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        [Verdict::Valid, Verdict::Invalid, Verdict::Unknown]
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "verdict `{text}`: expected valid, invalid or unknown"
                ))
            })
    }
}
