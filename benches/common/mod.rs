//! What the benchmarks that run campaigns over many seeds measure of each run (the
//! architectures and the bug zoo share it): the verdict, the time from the start of the
//! main phase to the first operation the checker could not linearize, the `ok` operations,
//! and the faults that showed they took effect.

#![allow(dead_code)]

use splitbrain::nemesis::record::is_stop_event;
use splitbrain_checkers::linearizability::{check, CheckOptions};
use splitbrain_checkers::models::ModelSpec;
use splitbrain_checkers::{EventType, History, Process, Value, Verdict};
use std::collections::HashMap;

pub struct RunFigures {
    pub verdict: Verdict,
    /// From the first client event to the invocation of the first operation no order
    /// can place, over every invalid key.
    pub first_anomaly_s: Option<f64>,
    pub min_ok_complete_key: u64,
    /// Client operations completed `ok`.
    pub ok: u64,
    /// Fault starts, and those whose evidence says they took effect.
    pub faults: usize,
    pub effective: usize,
    pub availability: f64,
}

pub fn figures(history: &History, model: &ModelSpec, ops_per_key: u64) -> RunFigures {
    let start = history
        .events
        .iter()
        .find(|e| matches!(e.process, Process::Client(_)))
        .and_then(|e| e.time)
        .unwrap_or(0);
    let result = check(history, model, &CheckOptions::default()).expect("history fits the model");
    let first_anomaly_s = result
        .keys
        .iter()
        .filter_map(|k| k.counterexample.as_ref())
        .filter_map(|c| history.events.get(c.operation.index as usize)?.time)
        .min()
        .map(|t| t.saturating_sub(start) as f64 / 1e9);
    // Per key: invocations and ok completions.
    let mut per_key: HashMap<String, (u64, u64)> = HashMap::new();
    let mut open: HashMap<u64, String> = HashMap::new();
    let (mut faults, mut effective, mut ok, mut all) = (0, 0, 0u64, 0u64);
    for e in &history.events {
        match e.process {
            Process::Client(p) => {
                let key = e.key.as_ref().map(|k| k.to_string()).unwrap_or_default();
                if e.kind == EventType::Invoke {
                    per_key.entry(key.clone()).or_default().0 += 1;
                    open.insert(p, key);
                    all += 1;
                } else if let Some(key) = open.remove(&p) {
                    if e.kind == EventType::Ok {
                        per_key.entry(key).or_default().1 += 1;
                        ok += 1;
                    }
                }
            }
            Process::Nemesis => {
                if e.kind == EventType::Info && !is_stop_event(&e.f) {
                    faults += 1;
                    if let Value::Map(fields) = &e.value {
                        if fields.iter().any(|(k, v)| {
                            k.as_str() == Some("effective") && *v == Value::Bool(true)
                        }) {
                            effective += 1;
                        }
                    }
                }
            }
        }
    }
    let min_ok_complete_key = per_key
        .values()
        .filter(|(invoked, _)| *invoked >= ops_per_key)
        .map(|(_, ok)| *ok)
        .min()
        .unwrap_or(0);
    RunFigures {
        verdict: result.verdict,
        first_anomaly_s,
        min_ok_complete_key,
        ok,
        faults,
        effective,
        availability: if all == 0 {
            0.0
        } else {
            ok as f64 / all as f64
        },
    }
}

pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    (!xs.is_empty()).then(|| xs[xs.len() / 2])
}

/// The value below which 90% of `xs` lie (nearest rank).
pub fn p90(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    (!xs.is_empty()).then(|| xs[((xs.len() * 9).div_ceil(10)).saturating_sub(1)])
}
