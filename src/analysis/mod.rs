//! What a run's history says: the checkers' verdicts and the evidence around them.
//!
//! * [`ops`] — client operations paired, counted, timed; per part of the run.
//! * [`faults`] — fault windows out of the nemesis's records; their effect; leaders.
//! * [`results`] — `results.json`, the typed [`RunResults`] (format-versioned).
//! * [`check`] — the checkers that fit the workload, and the checks of the evidence.
//! * [`txn`] — the transactional check of a `list-append` or `rw-register` run.
//! * [`CounterexampleText`] — the one way a counterexample is put in words (the run's
//!   summary, its HTML and JUnit reports and `splitbrain check` all use it).
//!
//! Nothing here renders tables or pages: that is [`crate::report`].

pub mod counterexample;
pub mod faults;
pub mod ops;
pub mod results;
pub mod txn;

pub use counterexample::CounterexampleText;
pub use faults::{fault_windows, leader_changes, FaultEffect, FaultWindow};
pub use ops::{client_ops, op_stats, ClientOp, Latency, OpOutcome, OpStats, PhaseStats};
pub use results::{Availability, CheckerOutcome, ResultsError, RunResults, RESULTS_FORMAT};

use crate::campaign::{Campaign, WorkloadKind};
use ops::{history_end_ns, stats_of};
use serde::Serialize;
use splitbrain_checkers::linearizability::{self, CheckOptions};
use splitbrain_checkers::models::ModelSpec;
use splitbrain_checkers::set_checker;
use splitbrain_checkers::{EventType, History, Process, Value, Verdict};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// What the checks need to know about the run besides its history.
pub struct RunFacts<'a> {
    pub campaign: &'a Campaign,
    pub seed: u64,
    pub run_id: &'a str,
    pub nodes: Vec<String>,
    pub main_elapsed: Duration,
    pub interrupted: bool,
    /// Nodes that exited without the harness asking (crashes), each with its log tail.
    pub node_deaths: Vec<String>,
}

/// What the history says beyond the checkers' verdicts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    pub ops: OpStats,
    /// Operations overlapping a fault window (from invocation to completion, a pending one
    /// to the end of the history).
    pub during_faults: PhaseStats,
    /// Operations overlapping none.
    pub healthy: PhaseStats,
    /// Per fault kind: operations overlapping a window of that kind.
    pub by_fault: BTreeMap<String, PhaseStats>,
    pub faults: Vec<FaultWindow>,
    /// The end of the history (ns).
    pub end_ns: u64,
}

/// Counts, availability in and out of faults, and the faults themselves.
pub fn analyse(history: &History) -> Analysis {
    let ops = client_ops(history);
    let faults = fault_windows(history);
    let end = history_end_ns(history);
    let overlaps = |op: &ClientOp, w: &FaultWindow| {
        let op_end = op.end_ns.unwrap_or(end);
        op.start_ns <= w.end_or(end) && op_end >= w.start_ns
    };
    let (faulty, healthy): (Vec<&ClientOp>, Vec<&ClientOp>) = ops
        .iter()
        .partition(|op| faults.iter().any(|w| overlaps(op, w)));
    let mut by_fault = BTreeMap::new();
    let kinds: std::collections::BTreeSet<&str> = faults.iter().map(|w| w.kind.as_str()).collect();
    for kind in kinds {
        let of_kind = faulty
            .iter()
            .copied()
            .filter(|op| faults.iter().any(|w| w.kind == kind && overlaps(op, w)));
        by_fault.insert(kind.to_owned(), PhaseStats::of(&stats_of(of_kind)));
    }
    Analysis {
        ops: stats_of(ops.iter()),
        during_faults: PhaseStats::of(&stats_of(faulty.into_iter())),
        healthy: PhaseStats::of(&stats_of(healthy.into_iter())),
        by_fault,
        faults,
        end_ns: end,
    }
}

/// What the checks said about a history.
pub struct Judged {
    pub verdict: Verdict,
    /// The results document (`results.json`).
    pub results: RunResults,
    pub analysis: Analysis,
}

/// Keys whose linearization the report draws at most.
pub const MAX_LINEARIZED_KEYS: usize = 20;
/// Operations of one key whose linearization the report draws at most.
pub const MAX_LINEARIZED_OPS_PER_KEY: usize = 2_000;

/// Whether the history is small enough for the report to draw each key's linearization:
/// at most [`MAX_LINEARIZED_KEYS`] keys of at most [`MAX_LINEARIZED_OPS_PER_KEY`] client
/// operations each.
pub fn drawable_keys(history: &History) -> bool {
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for e in &history.events {
        if e.process != Process::Nemesis && e.kind == EventType::Invoke {
            let key = e.key.as_ref().map_or_else(String::new, Value::to_string);
            let n = per_key.entry(key).or_default();
            *n += 1;
            if *n > MAX_LINEARIZED_OPS_PER_KEY {
                return false;
            }
        }
        if per_key.len() > MAX_LINEARIZED_KEYS {
            return false;
        }
    }
    true
}

/// Runs the checkers that fit the workload, then the checks of the evidence: too little of
/// it, faults not shown in effect, an interrupted run.
pub fn check(history: &History, facts: &RunFacts) -> anyhow::Result<Judged> {
    let campaign = facts.campaign;
    let analysis = analyse(history);
    let stats = &analysis.ops;
    let mut outcomes = Vec::new();
    // An interrupted run with no time left for the check (a second signal abandoned it):
    // nothing is searched, the verdict is `unknown`.
    let abandoned = facts.interrupted && campaign.checker.time_limit.is_zero();
    if abandoned {
        outcomes.push(CheckerOutcome {
            checker: "consistency".into(),
            verdict: Verdict::Unknown,
            detail: "not checked: the check was abandoned (interrupted twice)".into(),
            result: serde_json::Value::Null,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
            anomalies: Vec::new(),
        });
    } else if let Some(txn) = txn::check(history, campaign)? {
        outcomes.push(txn);
    } else if campaign.workload.kind == WorkloadKind::Set {
        let r = set_checker::check_sets(history);
        let lost: usize = r.keys.iter().map(|k| k.lost.len()).sum();
        let unexpected: usize = r.keys.iter().map(|k| k.unexpected.len()).sum();
        let duplicated: usize = r.keys.iter().map(|k| k.duplicated.len()).sum();
        outcomes.push(CheckerOutcome {
            checker: "set".into(),
            verdict: r.verdict,
            detail: format!(
                "{} sets; lost {lost}, unexpected {unexpected}, duplicated {duplicated}",
                r.keys.len()
            ),
            result: serde_json::to_value(&r)?,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
            anomalies: Vec::new(),
        });
    } else {
        let model = ModelSpec::new(campaign.model());
        // Every key is checked (the library's default), so every anomaly is reported.
        let opts = CheckOptions {
            time_limit: Some(campaign.checker.time_limit),
            memory_budget: Some(default_memory_budget()),
            first_failure: false,
            // The report draws the linearization of a valid history that is small enough.
            witness: drawable_keys(history),
            ..CheckOptions::default()
        };
        let mut r = linearizability::check(history, &model, &opts)?;
        // Shown in the report only (for a valid history): `results.json` stays the size
        // it was, also when valid keys of an invalid history carry theirs.
        let mut linearizations: Vec<_> = r
            .keys
            .iter_mut()
            .filter_map(|k| Some((k.key.clone(), k.linearization.take()?)))
            .collect();
        if r.verdict != Verdict::Valid {
            linearizations.clear();
        }
        let counterexample = r.keys.iter().find_map(|k| k.counterexample.clone());
        let invalid_keys = r
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Invalid)
            .count();
        let detail = match r.verdict {
            Verdict::Invalid => {
                let first = counterexample
                    .as_ref()
                    .map(|c| CounterexampleText(c).headline())
                    .unwrap_or_else(|| "not linearizable".into());
                format!(
                    "{invalid_keys} of {} keys invalid (every key checked); the first: {first}",
                    r.keys.len()
                )
            }
            Verdict::Unknown => r
                .cause
                .clone()
                .or_else(|| r.keys.iter().find_map(|k| k.cause.clone()))
                .unwrap_or_default(),
            Verdict::Valid => format!(
                "{} keys, {} configurations explored",
                r.keys.len(),
                r.configurations
            ),
        };
        outcomes.push(CheckerOutcome {
            checker: format!("linearizable ({})", model.kind.name()),
            verdict: r.verdict,
            detail,
            result: serde_json::to_value(&r)?,
            counterexample,
            invalid_keys: r
                .keys
                .iter()
                .filter(|k| k.verdict == Verdict::Invalid)
                .map(|k| k.key.clone().unwrap_or(Value::Nil))
                .collect(),
            linearizations,
            anomalies: Vec::new(),
        });
    }

    // No vacuous verdicts: too little evidence is not a plain `valid`.
    let min_ok = campaign.checker.min_ok_per_key as u64;
    let keys = stats.ok_per_key.len();
    let thin = stats.ok_per_key.values().filter(|n| **n < min_ok).count();
    // Indeterminate operations constrain nothing: a run that is mostly `info` says little.
    let determinate = stats.ok + stats.fail;
    let evidence = if stats.ok == 0 {
        Some("no operation succeeded".to_owned())
    } else if stats.info + stats.pending > determinate {
        Some(format!(
            "most operations are indeterminate ({} info or pending against {determinate} ok or fail)",
            stats.info + stats.pending
        ))
    } else if thin * 2 > keys {
        Some(format!(
            "{thin} of {keys} keys saw fewer than {min_ok} ok operations"
        ))
    } else {
        None
    };
    outcomes.push(CheckerOutcome {
        checker: "evidence".into(),
        verdict: if evidence.is_some() {
            Verdict::Unknown
        } else {
            Verdict::Valid
        },
        detail: evidence.unwrap_or_else(|| format!("{} ok operations over {keys} keys", stats.ok)),
        result: serde_json::Value::Null,
        counterexample: None,
        invalid_keys: Vec::new(),
        linearizations: Vec::new(),
        anomalies: Vec::new(),
    });
    // A fault that did not bite was not tested: the run says so instead of passing.
    let fault_effect = FaultEffect::of(&analysis.faults, campaign.nemesis.require_effect);
    if fault_effect.faults > 0 {
        let not_in_effect: Vec<String> = analysis
            .faults
            .iter()
            .filter(|w| w.effective == Some(false))
            .map(|w| {
                format!(
                    "{}{}",
                    w.kind,
                    w.id.map_or_else(String::new, |i| format!(" #{i}"))
                )
            })
            .collect();
        let unverified: Vec<String> = analysis
            .faults
            .iter()
            .filter(|w| w.effective.is_none())
            .map(|w| {
                format!(
                    "{}{}",
                    w.kind,
                    w.id.map_or_else(String::new, |i| format!(" #{i}"))
                )
            })
            .collect();
        let (verdict, detail) = if fault_effect.not_in_effect == 0
            && fault_effect.unverified > 0
            && fault_effect.required
        {
            // No evidence of effect is not evidence of effect: not shown, not tested.
            (
                Verdict::Unknown,
                format!(
                    "{} of {} faults not shown in effect (no evidence): {}",
                    fault_effect.unverified,
                    fault_effect.faults,
                    unverified.join(", ")
                ),
            )
        } else if fault_effect.not_in_effect == 0 {
            (
                Verdict::Valid,
                format!(
                    "{} of {} faults shown in effect{}",
                    fault_effect.in_effect,
                    fault_effect.faults,
                    if fault_effect.unverified > 0 {
                        format!(
                            ", {} not verifiable (not counted: nemesis.require_effect is false)",
                            fault_effect.unverified
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        } else if fault_effect.required {
            (
                Verdict::Unknown,
                format!("{}: {}", fault_effect.reason(), not_in_effect.join(", ")),
            )
        } else {
            (
                Verdict::Valid,
                format!(
                    "{}: {} (not counted: nemesis.require_effect is false)",
                    fault_effect.reason(),
                    not_in_effect.join(", ")
                ),
            )
        };
        outcomes.push(CheckerOutcome {
            checker: "fault effect".into(),
            verdict,
            detail,
            result: serde_json::to_value(&fault_effect)?,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
            anomalies: Vec::new(),
        });
    }
    // A run cut short by a signal did not test what the campaign asked for: `unknown`
    // (cause `interrupted`) unless the history so far is already invalid.
    if facts.interrupted {
        outcomes.push(CheckerOutcome {
            checker: "interrupted".into(),
            verdict: Verdict::Unknown,
            detail: "interrupted: the run was cut short by a signal".into(),
            result: serde_json::Value::Null,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
            anomalies: Vec::new(),
        });
    }
    let verdict = outcomes
        .iter()
        .fold(Verdict::Valid, |v, o| v.combine(o.verdict));
    let cause = (verdict == Verdict::Unknown && facts.interrupted).then_some("interrupted");

    let mut results = RunResults::new(facts, &analysis, verdict, outcomes);
    results.cause = cause.map(str::to_owned);
    Ok(Judged {
        verdict,
        results,
        analysis,
    })
}

/// The memory the linearizability search may use unless told otherwise: half of the
/// machine's memory, at most 8 GiB, 4 GiB when `/proc/meminfo` cannot be read; the search
/// gives up (`unknown`) before the machine does. Runs and `splitbrain check` both use it.
pub fn default_memory_budget() -> u64 {
    const GIB: u64 = 1 << 30;
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
    });
    total.map_or(4 * GIB, |kb| (kb * 1024 / 2).min(8 * GIB))
}
