//! What the fast paths for transactional histories ([`jsonl_fast`](super::jsonl_fast) for
//! JSON Lines, [`edn_txn`](super::edn_txn) for EDN) share: the typed op, and the reading of
//! an op's fields and of its micro-operations, written once over the few tokens in which
//! the two syntaxes differ ([`OpSyntax`]).
//!
//! The common shape, in either syntax: the fields `index`, `time`, `type`, `process`, `f`,
//! `value`, `key`, `node`, `error`, each at most once; `f` is `txn`; a client process; no key
//! (or nil); a value of micro-operations that fit the workload (`append`/`w` with an integer
//! key and value, `r` with an integer key and nil, a list of integers for list-append or an
//! integer for rw-register). Anything else is `None`: the caller then reads the line with
//! its format's generic reader, which either reads it or explains what is wrong with it.

use crate::history::EventType;
use crate::txn::transactions::{RawMop, RawRead};
use crate::txn::Workload;

/// An op of a transactional history, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxnOp {
    pub index: Option<u64>,
    pub has_time: bool,
    pub process: u64,
    pub kind: EventType,
    /// Range of the op's micro-operations in the caller's buffer.
    pub mops: (u32, u32),
}

/// The tokens of one syntax that an op of the common shape is made of.
pub(crate) trait OpSyntax<'a> {
    fn peek(&self) -> Option<u8>;
    fn eat(&mut self, want: u8) -> Option<()>;
    /// Skips blanks.
    fn ws(&mut self);
    /// After the map's opening brace: the next field's name, ready for its value
    /// (`Some(None)` when the map closes here; `first` for the first field).
    fn next_field(&mut self, first: bool) -> Option<Option<&'a [u8]>>;
    /// A name: an operation's `type` or `f`, a micro-operation's function.
    fn name(&mut self) -> Option<&'a [u8]>;
    /// The null value (`null`, `nil`), consumed when it is there.
    fn nil(&mut self) -> bool;
    fn i64(&mut self) -> Option<i64>;
    /// A node's name or number, read and dropped.
    fn skip_node(&mut self) -> Option<()>;
    /// An error's value (of the shapes the syntax's fast path accepts), read and dropped.
    fn skip_error(&mut self) -> Option<()>;
    /// Between the parts of a micro-operation (`,` in JSON, blanks in EDN).
    fn separator(&mut self) -> Option<()>;
    /// After a list's opening bracket or one of its items: whether an item follows (the
    /// closing bracket consumed when not; `first` right after the opening bracket).
    fn more_items(&mut self, first: bool) -> Option<bool>;

    fn u64(&mut self) -> Option<u64> {
        if self.peek() == Some(b'-') {
            return None;
        }
        self.i64().and_then(|i| u64::try_from(i).ok())
    }

    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.nil() {
            Some(None)
        } else {
            self.u64().map(Some)
        }
    }
}

/// Runs `parse`, leaving `mops` and `elements` as they were when it gives `None`.
pub(crate) fn or_rolled_back<T>(
    mops: &mut Vec<RawMop>,
    elements: &mut Vec<i64>,
    parse: impl FnOnce(&mut Vec<RawMop>, &mut Vec<i64>) -> Option<T>,
) -> Option<T> {
    let (mops_before, elements_before) = (mops.len(), elements.len());
    let parsed = parse(mops, elements);
    if parsed.is_none() {
        mops.truncate(mops_before);
        elements.truncate(elements_before);
    }
    parsed
}

/// The fields of an op map whose opening brace was read, up to and with its closing one.
pub(crate) fn op_fields<'a, S: OpSyntax<'a>>(
    s: &mut S,
    workload: Workload,
    mops: &mut Vec<RawMop>,
    elements: &mut Vec<i64>,
) -> Option<TxnOp> {
    let mut index = None;
    let mut has_time = false;
    let mut process = None;
    let mut kind = None;
    let mut range = None;
    // One bit per field: a repeated one is the generic reader's to reject.
    let mut seen = 0u16;
    let mut first = true;
    while let Some(name) = s.next_field(first)? {
        first = false;
        let bit = match name {
            b"index" => {
                index = s.opt_u64()?;
                1
            }
            b"time" => {
                has_time = s.opt_u64()?.is_some();
                2
            }
            b"process" => {
                process = Some(s.u64()?);
                4
            }
            b"type" => {
                kind = Some(match s.name()? {
                    b"invoke" => EventType::Invoke,
                    b"ok" => EventType::Ok,
                    b"fail" => EventType::Fail,
                    b"info" => EventType::Info,
                    _ => return None,
                });
                8
            }
            b"f" => {
                if s.name()? != b"txn" {
                    return None;
                }
                16
            }
            b"key" => {
                if !s.nil() {
                    return None;
                }
                32
            }
            b"value" => {
                let start = mops.len() as u32;
                txn_mops(s, workload, mops, elements)?;
                range = Some((start, mops.len() as u32));
                64
            }
            b"node" => {
                if !s.nil() {
                    s.skip_node()?;
                }
                128
            }
            b"error" => {
                s.skip_error()?;
                256
            }
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
    }
    if seen & 16 == 0 {
        return None;
    }
    Some(TxnOp {
        index,
        has_time,
        process: process?,
        kind: kind?,
        mops: range?,
    })
}

/// A list of micro-operations of the workload's shape, appended to `mops` (read lists to
/// `elements`).
fn txn_mops<'a, S: OpSyntax<'a>>(
    s: &mut S,
    workload: Workload,
    mops: &mut Vec<RawMop>,
    elements: &mut Vec<i64>,
) -> Option<()> {
    s.eat(b'[')?;
    let mut first = true;
    while s.more_items(first)? {
        first = false;
        s.ws();
        s.eat(b'[')?;
        s.ws();
        let f = s.name()?;
        s.separator()?;
        let key = s.i64()?;
        s.separator()?;
        let mop = match (f, workload) {
            (b"append", Workload::ListAppend) | (b"w", Workload::RwRegister) => RawMop::Write {
                key,
                value: s.i64()?,
            },
            (b"r", _) => {
                let result = if s.nil() {
                    RawRead::Nil
                } else if workload == Workload::RwRegister {
                    RawRead::Int(s.i64()?)
                } else {
                    let start = elements.len() as u32;
                    s.eat(b'[')?;
                    let mut first = true;
                    while s.more_items(first)? {
                        first = false;
                        s.ws();
                        elements.push(s.i64()?);
                    }
                    RawRead::List(start, elements.len() as u32)
                };
                RawMop::Read { key, result }
            }
            _ => return None,
        };
        mops.push(mop);
        s.ws();
        s.eat(b']')?;
    }
    Some(())
}
