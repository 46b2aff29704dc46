//! A history of transactions: Jepsen's `:f :txn` operations paired into one record each.
//!
//! Every client invocation is paired with its process's next completion. A transaction's
//! micro-operations come from the completion when it is `ok` (reads then carry what they
//! observed) and from the invocation otherwise (reads of an `info` or `fail` transaction
//! observed nothing we know). Micro-operations are stored flat: one vector of micro-ops for
//! the whole history, one vector of list elements for every read, and ranges into them.

use crate::history::{Event, EventType, History, Process, Value};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

/// Which transactional workload a history is: what its micro-operations mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `[:append k v]` and `[:r k [v1 v2 …]]`: each key is a list, appended values unique per
    /// key, so every read reveals a prefix of the key's version order.
    ListAppend,
    /// `[:w k v]` and `[:r k v]`: each key is a register, written values unique per key.
    RwRegister,
}

impl Workload {
    pub const ALL: [Workload; 2] = [Workload::ListAppend, Workload::RwRegister];
    pub fn name(self) -> &'static str {
        match self {
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown workload `{s}`; expected list-append or rw-register"))
    }
}

/// Dense transaction id: the position of the transaction in [`TxnHistory::txns`].
pub type TxnId = u32;

/// Whether a transaction committed, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// `ok`: committed.
    Committed,
    /// `info` or never completed: may or may not have committed.
    Indeterminate,
    /// `fail`: certainly did not commit.
    Aborted,
}

/// One micro-operation. Keys and values are integers (as in Elle's generators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MicroOp {
    /// `[:append key value]`.
    Append { key: i64, value: i64 },
    /// `[:w key value]`.
    Write { key: i64, value: i64 },
    /// `[:r key …]` of a list: `elements` indexes [`TxnHistory::elements`]; `None` when the
    /// read's result is unknown (an invocation, or an indeterminate/failed transaction).
    ReadList {
        key: i64,
        elements: Option<(u32, u32)>,
    },
    /// `[:r key v]` of a register: `Some(None)` read nil (the initial state), `None` unknown.
    ReadRegister {
        key: i64,
        value: Option<Option<i64>>,
    },
}

impl MicroOp {
    pub fn key(&self) -> i64 {
        match *self {
            MicroOp::Append { key, .. }
            | MicroOp::Write { key, .. }
            | MicroOp::ReadList { key, .. }
            | MicroOp::ReadRegister { key, .. } => key,
        }
    }
    pub fn is_write(&self) -> bool {
        matches!(self, MicroOp::Append { .. } | MicroOp::Write { .. })
    }
}

/// One transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub process: u64,
    pub outcome: Outcome,
    /// History index of the invocation.
    pub invoke_index: u64,
    /// History index of the completion; `None` for a transaction that never completed.
    pub complete_index: Option<u64>,
    /// Range of this transaction's micro-ops in [`TxnHistory::mops`].
    pub mops: (u32, u32),
}

/// A whole history of transactions.
#[derive(Debug, Clone, Default)]
pub struct TxnHistory {
    /// In invocation order.
    pub txns: Vec<Txn>,
    pub mops: Vec<MicroOp>,
    /// Elements of every list read, back to back.
    pub elements: Vec<i64>,
    /// Transaction ids in event order: `(history index, txn, is_invocation)`.
    pub timeline: Vec<(u64, TxnId, bool)>,
}

impl TxnHistory {
    pub fn mops_of(&self, t: TxnId) -> &[MicroOp] {
        let (a, b) = self.txns[t as usize].mops;
        &self.mops[a as usize..b as usize]
    }
    pub fn list(&self, range: (u32, u32)) -> &[i64] {
        &self.elements[range.0 as usize..range.1 as usize]
    }
}

/// A history that is not a history of transactions of the workload: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index}: {}expected {expected}{}", field.as_ref().map_or_else(String::new, |f| format!("field {f}: ")), found.as_ref().map_or_else(String::new, |f| format!(", found {f}")))]
pub struct TxnDataError {
    /// History index of the offending event.
    pub index: u64,
    pub field: Option<String>,
    pub expected: String,
    pub found: Option<String>,
}

impl TxnDataError {
    fn new(event: &Event, field: &str, expected: impl Into<String>, found: Option<&Value>) -> Self {
        TxnDataError {
            index: event.index,
            field: Some(field.to_owned()),
            expected: expected.into(),
            found: found.map(|v| truncate(&v.to_string())),
        }
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        s.to_owned()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

fn name_of(v: &Value) -> Option<&str> {
    match v {
        Value::Keyword(s) | Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Reads the transactions of a generic history.
pub fn from_history(history: &History, workload: Workload) -> Result<TxnHistory, TxnDataError> {
    let mut builder = TxnBuilder::new(workload);
    for event in &history.events {
        builder.push_event(event)?;
    }
    builder.finish()
}

/// An invocation waiting for its completion.
#[derive(Debug)]
struct OpenTxn {
    id: TxnId,
    invoke_index: u64,
    /// The invocation's micro-operations (reads unobserved), or why they are malformed: an
    /// error only when they are needed (the completion is not `ok`, or never comes).
    mops: Result<Vec<MicroOp>, TxnDataError>,
}

/// Pairs a history's events into transactions one event at a time, in history order, so
/// that a reader can hand them over as it reads and keep no event.
#[derive(Debug)]
pub struct TxnBuilder {
    workload: Workload,
    out: TxnHistory,
    /// The open invocation of each process.
    open: HashMap<u64, OpenTxn>,
}

/// A micro-operation as a reader typed it, before pairing: what it means depends on the
/// workload and on whether its event is an `ok` completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMop {
    /// `[append k v]` (list-append) or `[w k v]` (rw-register).
    Write { key: i64, value: i64 },
    /// `[r k result]`.
    Read { key: i64, result: RawRead },
}

/// The result of a typed read: nil, an integer (rw-register), or a list of integers
/// (list-append) as a range of the reader's element buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawRead {
    Nil,
    Int(i64),
    List(u32, u32),
}

impl TxnBuilder {
    pub fn new(workload: Workload) -> Self {
        TxnBuilder {
            workload,
            out: TxnHistory::default(),
            open: HashMap::default(),
        }
    }

    /// Room for about this many transactions.
    pub fn reserve(&mut self, txns: usize) {
        self.out.txns.reserve(txns);
        self.out.timeline.reserve(txns * 2);
        self.out.mops.reserve(txns * 3);
    }

    /// Takes the next event of the history (its `index` is its position).
    pub fn push_event(&mut self, event: &Event) -> Result<(), TxnDataError> {
        let Process::Client(process) = event.process else {
            return Ok(());
        };
        if event.f != "txn" {
            return Err(TxnDataError {
                index: event.index,
                field: Some("f".to_owned()),
                expected: "txn (a transaction)".to_owned(),
                found: Some(event.f.clone()),
            });
        }
        if let Some(key) = &event.key {
            return Err(TxnDataError::new(
                event,
                "key",
                "no key (a transaction names its keys in its micro-operations)",
                Some(key),
            ));
        }
        if event.kind == EventType::Invoke {
            let mut mops = Vec::new();
            let parsed = parse_mops(event, self.workload, false, &mut mops, &mut Vec::new());
            self.invoke(event.index, process, parsed.map(|()| mops))
        } else {
            let start = self.out.mops.len() as u32;
            let id = self.complete(event.index, process, event.kind)?;
            if event.kind == EventType::Ok {
                parse_mops(
                    event,
                    self.workload,
                    true,
                    &mut self.out.mops,
                    &mut self.out.elements,
                )?;
            }
            self.set_mops(id, start);
            Ok(())
        }
    }

    /// Takes the next event of the history, typed by a reader: a client event of `f` txn
    /// without a key, whose micro-operations fit the workload (`[append k v]` or `[w k v]`
    /// with an integer value; reads with nil, a list of integers for list-append, an
    /// integer for rw-register), their lists in `elements`.
    pub fn push_typed(
        &mut self,
        index: u64,
        process: u64,
        kind: EventType,
        mops: &[RawMop],
        elements: &[i64],
    ) -> Result<(), TxnDataError> {
        if kind == EventType::Invoke {
            let mut typed = Vec::with_capacity(mops.len());
            for m in mops {
                typed.push(self.typed(m, false, elements));
            }
            self.invoke(index, process, Ok(typed))
        } else {
            let start = self.out.mops.len() as u32;
            let id = self.complete(index, process, kind)?;
            if kind == EventType::Ok {
                for m in mops {
                    let typed = self.typed(m, true, elements);
                    self.out.mops.push(typed);
                }
            }
            self.set_mops(id, start);
            Ok(())
        }
    }

    /// One typed micro-operation as [`parse_mops`] would read it.
    fn typed(&mut self, m: &RawMop, observed: bool, elements: &[i64]) -> MicroOp {
        match (*m, self.workload) {
            (RawMop::Write { key, value }, Workload::ListAppend) => MicroOp::Append { key, value },
            (RawMop::Write { key, value }, Workload::RwRegister) => MicroOp::Write { key, value },
            (RawMop::Read { key, result }, Workload::ListAppend) => {
                let elements = observed.then(|| {
                    let start = self.out.elements.len() as u32;
                    if let RawRead::List(a, b) = result {
                        self.out
                            .elements
                            .extend_from_slice(&elements[a as usize..b as usize]);
                    }
                    (start, self.out.elements.len() as u32)
                });
                MicroOp::ReadList { key, elements }
            }
            (RawMop::Read { key, result }, Workload::RwRegister) => {
                let value = observed.then_some(match result {
                    RawRead::Int(v) => Some(v),
                    _ => None,
                });
                MicroOp::ReadRegister { key, value }
            }
        }
    }

    fn invoke(
        &mut self,
        index: u64,
        process: u64,
        mops: Result<Vec<MicroOp>, TxnDataError>,
    ) -> Result<(), TxnDataError> {
        if let Some(open) = self.open.get(&process) {
            return Err(TxnDataError {
                index,
                field: Some("process".to_owned()),
                expected: format!(
                    "a completion of process {process}'s invocation at event {} first",
                    open.invoke_index
                ),
                found: Some("another invocation".to_owned()),
            });
        }
        let id = TxnId::try_from(self.out.txns.len()).map_err(|_| TxnDataError {
            index,
            field: None,
            expected: "at most 2^32 transactions".to_owned(),
            found: None,
        })?;
        self.out.txns.push(Txn {
            process,
            outcome: Outcome::Indeterminate,
            invoke_index: index,
            complete_index: None,
            mops: (0, 0),
        });
        self.out.timeline.push((index, id, true));
        self.open.insert(
            process,
            OpenTxn {
                id,
                invoke_index: index,
                mops,
            },
        );
        Ok(())
    }

    /// Closes the process's open transaction; unless the completion is `ok`, its
    /// micro-operations are the invocation's, appended here.
    fn complete(
        &mut self,
        index: u64,
        process: u64,
        kind: EventType,
    ) -> Result<TxnId, TxnDataError> {
        let Some(open) = self.open.remove(&process) else {
            return Err(TxnDataError {
                index,
                field: Some("type".to_owned()),
                expected: format!("an invocation by process {process} before its completion"),
                found: Some(kind.as_str().to_owned()),
            });
        };
        let txn = &mut self.out.txns[open.id as usize];
        txn.complete_index = Some(index);
        txn.outcome = match kind {
            EventType::Ok => Outcome::Committed,
            EventType::Fail => Outcome::Aborted,
            _ => Outcome::Indeterminate,
        };
        if kind == EventType::Ok {
            self.out.timeline.push((index, open.id, false));
        } else {
            self.out.mops.extend(open.mops?);
        }
        Ok(open.id)
    }

    fn set_mops(&mut self, id: TxnId, start: u32) {
        self.out.txns[id as usize].mops = (start, self.out.mops.len() as u32);
    }

    /// Transactions still open.
    pub fn pending(&self) -> usize {
        self.open.len()
    }

    /// The history: invocations that never completed are indeterminate, with the
    /// invocation's micro-operations.
    pub fn finish(mut self) -> Result<TxnHistory, TxnDataError> {
        let mut pending: Vec<OpenTxn> = self.open.into_values().collect();
        pending.sort_unstable_by_key(|o| o.id);
        for open in pending {
            let start = self.out.mops.len() as u32;
            self.out.mops.extend(open.mops?);
            self.out.txns[open.id as usize].mops = (start, self.out.mops.len() as u32);
        }
        Ok(self.out)
    }
}

/// Reads an event's micro-operations into `mops`, the lists of observed reads into
/// `elements`.
fn parse_mops(
    event: &Event,
    workload: Workload,
    observed: bool,
    mops_out: &mut Vec<MicroOp>,
    elements_out: &mut Vec<i64>,
) -> Result<(), TxnDataError> {
    let shape = match workload {
        Workload::ListAppend => "a list of micro-operations [append k v] / [r k [v …]]",
        Workload::RwRegister => "a list of micro-operations [w k v] / [r k v]",
    };
    let Some(mops) = event.value.as_list() else {
        return Err(TxnDataError::new(event, "value", shape, Some(&event.value)));
    };
    for mop in mops {
        let bad = || TxnDataError::new(event, "value", shape, Some(mop));
        let parts = mop.as_list().ok_or_else(bad)?;
        if parts.len() != 3 {
            return Err(bad());
        }
        let f = name_of(&parts[0]).ok_or_else(bad)?;
        let key = parts[1].as_int().ok_or_else(|| {
            TxnDataError::new(
                event,
                "value",
                "an integer key in each micro-operation",
                Some(mop),
            )
        })?;
        let int_value = || {
            parts[2].as_int().ok_or_else(|| {
                TxnDataError::new(event, "value", "an integer value to write", Some(mop))
            })
        };
        let parsed = match (workload, f) {
            (Workload::ListAppend, "append") => MicroOp::Append {
                key,
                value: int_value()?,
            },
            (Workload::RwRegister, "w") => MicroOp::Write {
                key,
                value: int_value()?,
            },
            (Workload::ListAppend, "r") => {
                let elements = if !observed {
                    None
                } else {
                    // nil in a committed read: the key was never appended to.
                    let items: &[Value] = match &parts[2] {
                        Value::Nil => &[],
                        Value::List(items) => items,
                        _ => {
                            return Err(TxnDataError::new(
                                event,
                                "value",
                                "a read's result to be a list of integers or nil",
                                Some(mop),
                            ))
                        }
                    };
                    let start = elements_out.len() as u32;
                    for item in items {
                        elements_out.push(item.as_int().ok_or_else(|| {
                            TxnDataError::new(
                                event,
                                "value",
                                "a read's result to be a list of integers or nil",
                                Some(mop),
                            )
                        })?);
                    }
                    Some((start, elements_out.len() as u32))
                };
                MicroOp::ReadList { key, elements }
            }
            (Workload::RwRegister, "r") => {
                let value = if !observed {
                    None
                } else {
                    match &parts[2] {
                        Value::Nil => Some(None),
                        Value::Int(v) => Some(Some(*v)),
                        _ => {
                            return Err(TxnDataError::new(
                                event,
                                "value",
                                "a read's result to be an integer or nil",
                                Some(mop),
                            ))
                        }
                    }
                };
                MicroOp::ReadRegister { key, value }
            }
            _ => return Err(bad()),
        };
        mops_out.push(parsed);
    }
    Ok(())
}
