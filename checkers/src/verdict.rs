//! Verdicts as data: `valid`, `invalid` (with a counterexample) or `unknown` (with a cause).
//!
//! Combining results of independent parts (keys, checkers): invalid beats unknown beats valid.

use crate::history::Value;
use serde::Serialize;
use std::time::Duration;

/// The outcome of a check, ordered so that `max` combines parts: Valid < Unknown < Invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Unknown,
    Invalid,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Unknown => "unknown",
            Verdict::Invalid => "invalid",
        }
    }
    /// Exit code of `check` and `run`: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }
    /// Invalid beats unknown beats valid.
    pub fn combine(self, other: Verdict) -> Verdict {
        self.max(other)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation as shown in a counterexample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpSummary {
    /// Index of the invocation event in the history.
    pub index: u64,
    pub process: String,
    pub f: String,
    /// Invocation value (what was asked).
    pub value: Value,
    /// Completion value (what was observed), `None` for indeterminate operations.
    pub output: Option<Value>,
    /// `ok`, `info` or `pending` (never completed).
    pub outcome: String,
}

/// Why a history is not linearizable: the furthest the search got.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterexample {
    pub key: Option<Value>,
    /// An operation that no order can place: it must be linearized before the search can
    /// go on, and no reachable state allows it.
    pub operation: OpSummary,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<OpSummary>,
    /// Model states reachable at the end of that prefix (rendered).
    pub states: Vec<String>,
}

/// One step of a linearization: an operation and the model state after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinearizedOp {
    pub op: OpSummary,
    /// The model state after the operation (rendered).
    pub state: String,
}

/// Why a key is linearizable: the order in which the search placed its operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Linearization {
    /// Every operation that had to be linearized (`ok`, and failed cas read as
    /// observations) and the indeterminate ones that took effect, in linearization order,
    /// from the model's initial state.
    pub ops: Vec<LinearizedOp>,
    /// Indeterminate operations (`info` or never completed) that this order leaves out:
    /// they never took effect. Crashed reads and failed operations, which the check drops,
    /// are in neither list.
    pub left_out: Vec<OpSummary>,
}

/// The result of checking one key (or the whole history when it has no keys).
#[derive(Debug, Clone, Serialize)]
pub struct KeyResult {
    pub key: Option<Value>,
    pub verdict: Verdict,
    /// Client operations of this key considered by the search.
    pub operations: usize,
    /// Configurations (linearized set, model state) explored.
    pub configurations: u64,
    #[serde(serialize_with = "ser_secs")]
    pub elapsed: Duration,
    pub counterexample: Option<Counterexample>,
    /// Why the verdict is `unknown` (time limit, memory budget, ...).
    pub cause: Option<String>,
    /// For a `valid` key, when asked for with `CheckOptions::witness`: a linearization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linearization: Option<Linearization>,
}

/// The result of a whole check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub verdict: Verdict,
    /// Why the whole check is `unknown` when no key says why: nothing was checked (no
    /// client operations, or none completed `ok`).
    pub cause: Option<String>,
    pub model: String,
    pub operations: usize,
    pub keys: Vec<KeyResult>,
    pub configurations: u64,
    #[serde(serialize_with = "ser_secs")]
    pub elapsed: Duration,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
