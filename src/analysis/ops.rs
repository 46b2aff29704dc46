//! Client operations as the history tells them: each invocation paired with its
//! completion, counted by outcome, with latencies; the same for a part of the run.

use serde::{Deserialize, Serialize};
use splitbrain_checkers::{EventType, History, Process, Value};
use std::collections::{BTreeMap, HashMap};

/// How a client operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpOutcome {
    Ok,
    Fail,
    Info,
    /// Invoked, never completed (counts as `info` for the checkers).
    Pending,
}

impl OpOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Ok => "ok",
            OpOutcome::Fail => "fail",
            OpOutcome::Info => "info",
            OpOutcome::Pending => "pending",
        }
    }
}

/// One client operation: an invocation paired with its completion.
#[derive(Debug, Clone, Serialize)]
pub struct ClientOp {
    /// Index of the invocation event (what counterexamples refer to).
    pub index: u64,
    pub process: u64,
    pub f: String,
    pub key: Option<Value>,
    /// What was asked.
    pub value: Value,
    /// What an `ok` completion observed or wrote.
    pub output: Option<Value>,
    pub outcome: OpOutcome,
    /// Nanoseconds since the run started.
    pub start_ns: u64,
    /// `None` while pending.
    pub end_ns: Option<u64>,
    pub error: Option<Value>,
    /// The node the client sent it to, when recorded.
    pub node: Option<String>,
}

impl ClientOp {
    pub fn latency_ns(&self) -> Option<u64> {
        self.end_ns.map(|end| end.saturating_sub(self.start_ns))
    }
}

/// Pairs every client invocation with its process's next completion, in invocation order.
pub fn client_ops(history: &History) -> Vec<ClientOp> {
    let mut ops: Vec<ClientOp> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for e in &history.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p, ops.len());
            ops.push(ClientOp {
                index: e.index,
                process: p,
                f: e.f.clone(),
                key: e.key.clone(),
                value: e.value.clone(),
                output: None,
                outcome: OpOutcome::Pending,
                start_ns: e.time.unwrap_or(0),
                end_ns: None,
                error: None,
                node: e.node.clone(),
            });
            continue;
        }
        let Some(i) = open.remove(&p) else {
            continue;
        };
        let op = &mut ops[i];
        op.outcome = match e.kind {
            EventType::Ok => OpOutcome::Ok,
            EventType::Fail => OpOutcome::Fail,
            _ => OpOutcome::Info,
        };
        if e.kind == EventType::Ok {
            op.output = Some(e.value.clone());
        }
        op.end_ns = Some(e.time.unwrap_or(op.start_ns));
        op.error = e.error.clone();
    }
    ops
}

/// The last timestamp of a history (ns), the end of every open interval.
pub fn history_end_ns(history: &History) -> u64 {
    history
        .events
        .iter()
        .filter_map(|e| e.time)
        .max()
        .unwrap_or(0)
}

/// Latency of completed operations, milliseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "LatencyOnDisk")]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// How `latency_ms` is stored: named (format 2) or `[p50, p95, p99, max]` (format 1).
#[derive(Deserialize)]
#[serde(untagged)]
enum LatencyOnDisk {
    Named {
        p50: f64,
        p95: f64,
        p99: f64,
        max: f64,
    },
    Positional([f64; 4]),
}

impl From<LatencyOnDisk> for Latency {
    fn from(stored: LatencyOnDisk) -> Latency {
        match stored {
            LatencyOnDisk::Named { p50, p95, p99, max }
            | LatencyOnDisk::Positional([p50, p95, p99, max]) => Latency { p50, p95, p99, max },
        }
    }
}

/// Operation counts and latencies of client operations.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OpStats {
    /// `f` → (ok, fail, info, pending).
    pub by_function: BTreeMap<String, [u64; 4]>,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub pending: u64,
    /// ok / all operations.
    pub availability: f64,
    /// Latency of completed operations.
    pub latency_ms: Latency,
    /// ok operations per key.
    pub ok_per_key: BTreeMap<String, u64>,
}

impl OpStats {
    pub fn operations(&self) -> u64 {
        self.ok + self.fail + self.info + self.pending
    }
}

/// Counts operations by function and outcome, and their latencies.
pub fn op_stats(history: &History) -> OpStats {
    stats_of(client_ops(history).iter())
}

pub(crate) fn stats_of<'a>(ops: impl Iterator<Item = &'a ClientOp>) -> OpStats {
    let mut stats = OpStats::default();
    let mut latencies: Vec<u64> = Vec::new();
    for op in ops {
        let slot = match op.outcome {
            OpOutcome::Ok => 0,
            OpOutcome::Fail => 1,
            OpOutcome::Info => 2,
            OpOutcome::Pending => 3,
        };
        stats.by_function.entry(op.f.clone()).or_default()[slot] += 1;
        // Every key an operation touched is listed, also those that never saw an ok.
        let key = op
            .key
            .as_ref()
            .map_or_else(|| "-".to_owned(), Value::to_string);
        *stats.ok_per_key.entry(key).or_default() += u64::from(op.outcome == OpOutcome::Ok);
        latencies.extend(op.latency_ns());
    }
    for counts in stats.by_function.values() {
        stats.ok += counts[0];
        stats.fail += counts[1];
        stats.info += counts[2];
        stats.pending += counts[3];
    }
    let all = stats.operations();
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
    stats.latency_ms = Latency {
        p50: pct(0.5),
        p95: pct(0.95),
        p99: pct(0.99),
        max: pct(1.0),
    };
    stats
}

/// Operations, availability and tail latency of a part of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseStats {
    pub operations: u64,
    pub ok: u64,
    /// ok / operations (0 when there were none).
    pub availability: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl PhaseStats {
    pub fn of(stats: &OpStats) -> PhaseStats {
        PhaseStats {
            operations: stats.operations(),
            ok: stats.ok,
            availability: stats.availability,
            p50_ms: stats.latency_ms.p50,
            p99_ms: stats.latency_ms.p99,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitbrain_checkers::Event;

    fn event(index: u64, time: u64, process: u64, kind: EventType, f: &str, key: i64) -> Event {
        Event {
            index,
            time: Some(time),
            process: Process::Client(process),
            kind,
            f: f.to_owned(),
            key: Some(Value::Int(key)),
            value: Value::Int(7),
            node: None,
            error: None,
        }
    }

    fn history() -> History {
        History::new(vec![
            event(0, 0, 0, EventType::Invoke, "write", 1),
            event(1, 1_000_000, 1, EventType::Invoke, "read", 1),
            event(2, 2_000_000, 0, EventType::Ok, "write", 1),
            event(3, 4_000_000, 1, EventType::Info, "read", 1),
            event(4, 5_000_000, 2, EventType::Invoke, "write", 2),
            event(5, 6_000_000, 3, EventType::Invoke, "cas", 2),
            event(6, 9_000_000, 3, EventType::Fail, "cas", 2),
        ])
    }

    #[test]
    fn each_invocation_pairs_with_its_process_next_completion() {
        let ops = client_ops(&history());
        let summary: Vec<(u64, &str, OpOutcome, Option<u64>)> = ops
            .iter()
            .map(|o| (o.index, o.f.as_str(), o.outcome, o.end_ns))
            .collect();
        assert_eq!(
            summary,
            [
                (0, "write", OpOutcome::Ok, Some(2_000_000)),
                (1, "read", OpOutcome::Info, Some(4_000_000)),
                (4, "write", OpOutcome::Pending, None),
                (5, "cas", OpOutcome::Fail, Some(9_000_000)),
            ]
        );
        assert_eq!(
            ops[0].output,
            Some(Value::Int(7)),
            "an ok keeps what it saw"
        );
        assert_eq!(ops[1].output, None, "an info saw nothing");
    }

    #[test]
    fn stats_count_outcomes_keys_and_latencies_of_completed_operations() {
        let stats = op_stats(&history());
        assert_eq!(
            (stats.ok, stats.fail, stats.info, stats.pending),
            (1, 1, 1, 1)
        );
        assert_eq!(stats.operations(), 4);
        assert_eq!(stats.availability, 0.25);
        assert_eq!(stats.by_function["write"], [1, 0, 0, 1]);
        assert_eq!(stats.ok_per_key["1"], 1);
        assert_eq!(
            stats.ok_per_key["2"], 0,
            "a key without an ok is still listed"
        );
        // Latencies 2 ms, 3 ms, 3 ms; the pending write has none.
        assert_eq!(stats.latency_ms.p50, 3.0);
        assert_eq!(stats.latency_ms.max, 3.0);
        assert_eq!(op_stats(&History::default()).availability, 0.0);
    }
}
