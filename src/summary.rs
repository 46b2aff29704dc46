//! After a run: run the checkers on the history and summarise what happened in a table.

use crate::campaign::{Campaign, WorkloadKind};
use serde::Serialize;
use splitbrain_checkers::linearizability::{self, CheckOptions};
use splitbrain_checkers::models::ModelSpec;
use splitbrain_checkers::set_checker;
use splitbrain_checkers::{EventType, History, Process, Value, Verdict};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tabled::{builder::Builder, settings::Style};

/// What the summary needs to know about the run besides its history.
pub struct RunFacts<'a> {
    pub campaign: &'a Campaign,
    pub seed: u64,
    pub run_id: &'a str,
    pub nodes: Vec<String>,
    pub main_elapsed: Duration,
    pub interrupted: bool,
}

/// Operation counts and latencies of client operations.
#[derive(Debug, Default, Clone, Serialize)]
pub struct OpStats {
    /// `f` → (ok, fail, info, pending).
    pub by_function: BTreeMap<String, [u64; 4]>,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub pending: u64,
    /// ok / all operations.
    pub availability: f64,
    /// Latency of completed operations, milliseconds: p50, p95, p99, max.
    pub latency_ms: [f64; 4],
    /// ok operations per key.
    pub ok_per_key: BTreeMap<String, u64>,
}

/// Counts operations by function and outcome, and their latencies.
pub fn op_stats(history: &History) -> OpStats {
    let mut stats = OpStats::default();
    let mut open: HashMap<u64, (u64, &str, Option<&Value>)> = HashMap::new();
    let mut latencies: Vec<u64> = Vec::new();
    for e in &history.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p, (e.time.unwrap_or(0), e.f.as_str(), e.key.as_ref()));
            continue;
        }
        let Some((t0, f, key)) = open.remove(&p) else {
            continue;
        };
        let slot = match e.kind {
            EventType::Ok => 0,
            EventType::Fail => 1,
            _ => 2,
        };
        stats.by_function.entry(f.to_owned()).or_default()[slot] += 1;
        if e.kind == EventType::Ok {
            let key = key.map_or_else(|| "-".to_owned(), |k| k.to_string());
            *stats.ok_per_key.entry(key).or_default() += 1;
        }
        if let Some(t1) = e.time {
            latencies.push(t1.saturating_sub(t0));
        }
    }
    for (_, f, _) in open.values() {
        stats.by_function.entry((*f).to_owned()).or_default()[3] += 1;
    }
    for counts in stats.by_function.values() {
        stats.ok += counts[0];
        stats.fail += counts[1];
        stats.info += counts[2];
        stats.pending += counts[3];
    }
    let all = stats.ok + stats.fail + stats.info + stats.pending;
    stats.availability = if all == 0 {
        0.0
    } else {
        stats.ok as f64 / all as f64
    };
    latencies.sort_unstable();
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i] as f64 / 1e6
    };
    stats.latency_ms = [pct(0.5), pct(0.95), pct(0.99), pct(1.0)];
    stats
}

/// The outcome of one checker.
#[derive(Debug, Serialize)]
pub struct CheckerOutcome {
    pub checker: String,
    pub verdict: Verdict,
    pub detail: String,
    pub result: serde_json::Value,
}

/// What the checkers said, rendered.
pub struct Checked {
    pub verdict: Verdict,
    pub table: String,
    pub json: serde_json::Value,
}

/// Runs the checkers that fit the workload and builds the summary.
pub fn check_and_summarise(history: &History, facts: &RunFacts) -> anyhow::Result<Checked> {
    let campaign = facts.campaign;
    let stats = op_stats(history);
    let mut outcomes = Vec::new();
    if campaign.workload.kind == WorkloadKind::Set {
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
        });
    } else {
        let model = ModelSpec::new(campaign.model());
        let opts = CheckOptions {
            time_limit: Some(campaign.checker.time_limit),
            memory_budget: Some(default_memory_budget()),
            ..CheckOptions::default()
        };
        let r = linearizability::check(history, &model, &opts)?;
        let detail = match r.verdict {
            Verdict::Invalid => r
                .keys
                .iter()
                .find_map(|k| k.counterexample.as_ref())
                .map(describe_counterexample)
                .unwrap_or_else(|| "not linearizable".into()),
            Verdict::Unknown => r
                .keys
                .iter()
                .find_map(|k| k.cause.clone())
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
        });
    }

    // No vacuous verdicts: too little evidence is not a plain `valid`.
    let min_ok = campaign.checker.min_ok_per_key as u64;
    let keys = stats.ok_per_key.len();
    let thin = stats.ok_per_key.values().filter(|n| **n < min_ok).count();
    let evidence = if stats.ok == 0 {
        Some("no operation succeeded".to_owned())
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
    });
    let verdict = outcomes
        .iter()
        .fold(Verdict::Valid, |v, o| v.combine(o.verdict));

    let table = render(facts, &stats, &outcomes, verdict);
    let json = serde_json::json!({
        "verdict": verdict,
        "campaign": campaign.name,
        "system": campaign.system.name(),
        "seed": facts.seed,
        "run_id": facts.run_id,
        "interrupted": facts.interrupted,
        "main_phase_s": facts.main_elapsed.as_secs_f64(),
        "operations": stats,
        "checkers": outcomes,
    });
    Ok(Checked {
        verdict,
        table,
        json,
    })
}

fn describe_counterexample(c: &splitbrain_checkers::Counterexample) -> String {
    let key = c
        .key
        .as_ref()
        .map_or_else(String::new, |k| format!("key {k}: "));
    let op = &c.operation;
    format!(
        "{key}{} {} by process {} (event {}) fits no order after {} linearized operations; states there: {}",
        op.f,
        op.output.as_ref().unwrap_or(&op.value),
        op.process,
        op.index,
        c.prefix.len(),
        c.states.join(", ")
    )
}

fn render(
    facts: &RunFacts,
    stats: &OpStats,
    outcomes: &[CheckerOutcome],
    verdict: Verdict,
) -> String {
    let c = facts.campaign;
    let mut b = Builder::default();
    b.push_record(["campaign", &c.name]);
    b.push_record([
        "system".to_owned(),
        format!("{} ({} nodes)", c.system.name(), facts.nodes.len()),
    ]);
    b.push_record(["seed".to_owned(), facts.seed.to_string()]);
    b.push_record([
        "main phase".to_owned(),
        format!(
            "{:.1}s{}",
            facts.main_elapsed.as_secs_f64(),
            if facts.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        ),
    ]);
    for (f, [ok, fail, info, pending]) in &stats.by_function {
        b.push_record([
            format!("ops {f}"),
            format!("ok {ok}, fail {fail}, info {info}, pending {pending}"),
        ]);
    }
    b.push_record([
        "availability".to_owned(),
        format!("{:.1}% ok", stats.availability * 100.0),
    ]);
    let [p50, p95, p99, max] = stats.latency_ms;
    b.push_record([
        "latency".to_owned(),
        format!("p50 {p50:.1}ms, p95 {p95:.1}ms, p99 {p99:.1}ms, max {max:.1}ms"),
    ]);
    for o in outcomes {
        b.push_record([
            format!("checker {}", o.checker),
            format!("{}: {}", o.verdict, o.detail),
        ]);
    }
    b.push_record(["verdict".to_owned(), verdict.to_string().to_uppercase()]);
    let mut table = b.build();
    table.with(Style::sharp());
    format!("{table}\n")
}

/// Half of the machine's memory, at most 8 GiB: the search gives up (unknown) before the
/// machine does.
pub fn default_memory_budget() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(4 << 30, |kb| kb * 1024);
    (total / 2).min(8 << 30)
}
