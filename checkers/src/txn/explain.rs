//! Anomalies as data and as text: the transactions involved, and for a cycle each edge with
//! the reason it exists ("T2 read 3 at key 7, which T1 appended: wr").

use super::anomaly::AnomalyKind;
use super::graph::Rel;
use super::transactions::{MicroOp, Outcome, TxnHistory, TxnId};
use serde::Serialize;
use std::fmt::{self, Write as _};

/// One transaction as shown in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxnSummary {
    /// `T<id>` in the text.
    pub id: TxnId,
    pub process: u64,
    pub outcome: Outcome,
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
    /// The micro-operations, EDN-like: `[append 7 3] [r 7 [1 2 3]]`.
    pub ops: String,
}

impl TxnSummary {
    pub fn of(history: &TxnHistory, id: TxnId) -> TxnSummary {
        let t = &history.txns[id as usize];
        let mut ops = String::new();
        for (i, m) in history.mops_of(id).iter().enumerate() {
            if i > 0 {
                ops.push(' ');
            }
            let _ = match *m {
                MicroOp::Append { key, value } => write!(ops, "[append {key} {value}]"),
                MicroOp::Write { key, value } => write!(ops, "[w {key} {value}]"),
                MicroOp::ReadList { key, elements } => match elements {
                    None => write!(ops, "[r {key} nil]"),
                    Some(r) => {
                        let items: Vec<String> =
                            history.list(r).iter().map(|v| v.to_string()).collect();
                        write!(ops, "[r {key} [{}]]", items.join(" "))
                    }
                },
                MicroOp::ReadRegister { key, value } => match value {
                    None | Some(None) => write!(ops, "[r {key} nil]"),
                    Some(Some(v)) => write!(ops, "[r {key} {v}]"),
                },
            };
        }
        TxnSummary {
            id,
            process: t.process,
            outcome: t.outcome,
            invoke_index: t.invoke_index,
            complete_index: t.complete_index,
            ops,
        }
    }
}

impl fmt::Display for TxnSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            Outcome::Committed => "ok",
            Outcome::Indeterminate => "info",
            Outcome::Aborted => "fail",
        };
        write!(
            f,
            "T{} (process {}, {outcome}, event {}): {}",
            self.id, self.process, self.invoke_index, self.ops
        )
    }
}

/// Why one edge of a cycle exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rel", rename_all = "lowercase")]
pub enum EdgeReason {
    /// `to` wrote `value` at `key` right after `from` wrote `previous` (None: the initial
    /// state of a register).
    Ww {
        key: i64,
        previous: Option<i64>,
        value: i64,
    },
    /// `to` read `value` at `key`, which `from` wrote.
    Wr { key: i64, value: i64 },
    /// `from` read the version of `key` ending in `read` (None: empty / nil), which `to`
    /// overwrote with `value`.
    Rw {
        key: i64,
        read: Option<i64>,
        value: i64,
    },
    /// The same process ran `from`, then `to`.
    Process { process: u64 },
    /// `from` completed at event `completed` before `to` was invoked at event `invoked`.
    Realtime { completed: u64, invoked: u64 },
}

/// One edge of a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub from: TxnId,
    pub to: TxnId,
    pub rels: Vec<Rel>,
    pub reasons: Vec<EdgeReason>,
}

/// One anomaly found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    #[serde(rename = "type")]
    pub kind: AnomalyKind,
    /// The key concerned, for anomalies about one key.
    pub key: Option<i64>,
    /// The transactions involved; for a cycle, in cycle order.
    pub txns: Vec<TxnSummary>,
    /// For a cycle: its edges, `txns[i] → txns[i+1]` and the last back to the first.
    pub cycle: Vec<Step>,
    /// The explanation in words.
    pub explanation: String,
}

/// Text for one edge reason, naming the transactions `T<from>` and `T<to>`.
pub fn reason_text(from: TxnId, to: TxnId, reason: &EdgeReason, verb: &str) -> String {
    match reason {
        EdgeReason::Ww {
            key,
            previous,
            value,
        } => match previous {
            Some(p) => format!("T{from} {verb} {p} at key {key}, T{to} {verb} {value} right after it: ww"),
            None => format!("T{to} {verb} {value} at key {key}, after the initial nil T{from} read: ww"),
        },
        EdgeReason::Wr { key, value } => {
            format!("T{to} read {value} at key {key}, which T{from} {verb}: wr")
        }
        EdgeReason::Rw { key, read, value } => match (read, verb) {
            (Some(r), "appended") => format!(
                "T{from} read key {key} up to {r}, T{to} {verb} {value} right after it: rw"
            ),
            (Some(r), _) => {
                format!("T{from} read {r} at key {key}, T{to} {verb} {value} after it: rw")
            }
            (None, "appended") => format!(
                "T{from} read key {key} empty, T{to} {verb} {value}, its first value: rw"
            ),
            (None, _) => format!(
                "T{from} read nil at key {key}, T{to} {verb} {value} after the initial state: rw"
            ),
        },
        EdgeReason::Process { process } => {
            format!("T{from} and T{to} ran on process {process}, T{from} first: process")
        }
        EdgeReason::Realtime { completed, invoked } => format!(
            "T{from} completed (event {completed}) before T{to} was invoked (event {invoked}): realtime"
        ),
    }
}

/// The text of a cycle: its transactions, then one line per edge.
pub fn cycle_text(kind: AnomalyKind, txns: &[TxnSummary], steps: &[Step], verb: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{kind}: a cycle of {} transactions", txns.len());
    for t in txns {
        let _ = writeln!(s, "  {t}");
    }
    for step in steps {
        let rels: Vec<&str> = step.rels.iter().map(|r| r.name()).collect();
        match step.reasons.first() {
            Some(r) => {
                let _ = writeln!(s, "  {}", reason_text(step.from, step.to, r, verb));
            }
            None => {
                let _ = writeln!(s, "  T{} -> T{}: {}", step.from, step.to, rels.join(","));
            }
        }
    }
    s.trim_end().to_owned()
}
