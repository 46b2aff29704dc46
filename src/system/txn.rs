//! A transaction as the systems see it: its micro-operations (`append`, `r`, `w`), the value
//! a client sends (reads `null`) and the one it completes (reads filled in). The
//! transactional workloads (`crate::workload`) make them; every system that runs
//! transactions, and the `command` system's external clients, read and complete them.

use splitbrain_checkers::Value;

/// One micro-operation of a transaction, as planned (reads without their result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MicroOp {
    /// `["append", key, value]` (list-append).
    Append { key: i64, value: i64 },
    /// `["w", key, value]` (rw-register).
    Write { key: i64, value: i64 },
    /// `["r", key, null]`.
    Read { key: i64 },
}

impl MicroOp {
    pub fn key(self) -> i64 {
        match self {
            MicroOp::Append { key, .. } | MicroOp::Write { key, .. } | MicroOp::Read { key } => key,
        }
    }

    /// The function's name in the history (`append`, `w`, `r`).
    pub fn name(self) -> &'static str {
        match self {
            MicroOp::Append { .. } => "append",
            MicroOp::Write { .. } => "w",
            MicroOp::Read { .. } => "r",
        }
    }

    pub(crate) fn to_value(self, read: Option<&ReadValue>) -> Value {
        let third = match (self, read) {
            (MicroOp::Append { value, .. } | MicroOp::Write { value, .. }, _) => Value::Int(value),
            (MicroOp::Read { .. }, None) => Value::Nil,
            (MicroOp::Read { .. }, Some(read)) => read.to_value(),
        };
        Value::List(vec![
            Value::Str(self.name().into()),
            Value::Int(self.key()),
            third,
        ])
    }
}

/// What a read micro-operation observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadValue {
    /// A list's elements in order (empty: never appended to).
    List(Vec<i64>),
    /// A register's value (`None`: never written).
    Register(Option<i64>),
}

impl ReadValue {
    fn to_value(&self) -> Value {
        match self {
            ReadValue::List(elements) => {
                Value::List(elements.iter().copied().map(Value::Int).collect())
            }
            ReadValue::Register(None) => Value::Nil,
            ReadValue::Register(Some(v)) => Value::Int(*v),
        }
    }
}

/// A transaction as invoked: every read's result `null`.
pub fn txn_value(ops: &[MicroOp]) -> Value {
    Value::List(ops.iter().map(|op| op.to_value(None)).collect())
}

/// A committed transaction: `reads[i]` is what micro-operation `i` read (`None` for writes).
pub fn completed_txn_value(ops: &[MicroOp], reads: &[Option<ReadValue>]) -> Value {
    Value::List(
        ops.iter()
            .zip(reads)
            .map(|(op, read)| op.to_value(read.as_ref()))
            .collect(),
    )
}

/// A transaction value that is not a list of `[f, key, value]` micro-operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("micro-operation {index}: expected {expected}, found {found}")]
pub struct TxnValueError {
    pub index: usize,
    pub expected: &'static str,
    pub found: String,
}

/// Reads a transaction's micro-operations (as invoked: a read's third element is ignored).
pub fn parse_txn(value: &Value) -> Result<Vec<MicroOp>, TxnValueError> {
    let Some(items) = value.as_list() else {
        return Err(TxnValueError {
            index: 0,
            expected: "a list of micro-operations",
            found: value.to_string(),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let error = |expected| TxnValueError {
                index,
                expected,
                found: item.to_string(),
            };
            let Some([f, key, third]) = item.as_list() else {
                return Err(error("[f, key, value]"));
            };
            let f = match f {
                Value::Str(f) | Value::Keyword(f) => f.as_str(),
                _ => return Err(error("a function name: append, w or r")),
            };
            let key = key.as_int().ok_or_else(|| error("an integer key"))?;
            match f {
                "r" => Ok(MicroOp::Read { key }),
                "append" | "w" => {
                    let value = third
                        .as_int()
                        .ok_or_else(|| error("an integer value to write"))?;
                    Ok(if f == "append" {
                        MicroOp::Append { key, value }
                    } else {
                        MicroOp::Write { key, value }
                    })
                }
                _ => Err(error("a function name: append, w or r")),
            }
        })
        .collect()
}

/// Checks that `completed` is `requested` with its reads filled in: the same
/// micro-operations in the same order, writes unchanged, each read's result `null`, an
/// integer or a list of integers. What an external client answered is judged by this
/// before it enters the history.
pub fn check_completion(requested: &Value, completed: &Value) -> Result<(), String> {
    let planned = parse_txn(requested).map_err(|e| format!("the request: {e}"))?;
    let done = parse_txn(completed).map_err(|e| e.to_string())?;
    if planned != done {
        return Err(format!(
            "expected the requested micro-operations {requested} with reads filled in, found {completed}"
        ));
    }
    let items = completed.as_list().unwrap_or_default();
    for (index, (op, item)) in planned.iter().zip(items).enumerate() {
        if let (MicroOp::Read { .. }, Some([_, _, read])) = (op, item.as_list()) {
            let fits = match read {
                Value::Nil | Value::Int(_) => true,
                Value::List(elements) => elements.iter().all(|e| e.as_int().is_some()),
                _ => false,
            };
            if !fits {
                return Err(format!(
                    "micro-operation {index}: expected a read's result (null, an integer or a list of integers), found {read}"
                ));
            }
        }
    }
    Ok(())
}
