//! A fast path for the common shape of a JSON Lines event: a flat object whose values are
//! integers, plain strings (no escapes), null, booleans and arrays of those.
//!
//! It accepts a strict subset of what the serde path accepts and builds the same event;
//! anything else (escapes, floats, objects, unknown or repeated fields, odd spacing it does
//! not expect) returns `None`, and the caller falls back to serde, which either parses the
//! line or explains what is wrong with it. serde_json alone costs several times more per
//! line than this, and a recorded million-operation history has two million lines.

use super::txn_fast::{op_fields, or_rolled_back, OpSyntax, TxnOp};
use crate::history::{Event, EventType, Process, Value};
use crate::txn::transactions::RawMop;
use crate::txn::Workload;

/// Parses one line, or `None` when the line needs the full parser. Returns the event and
/// the index given in the line, if any.
pub(crate) fn parse_line(line: &[u8]) -> Option<(Event, Option<u64>)> {
    let mut c = Cursor { b: line, i: 0 };
    c.ws();
    c.eat(b'{')?;
    let mut index = None;
    let mut time = None;
    let mut process = None;
    let mut kind = None;
    let mut f = None;
    let mut key = None;
    let mut value = None;
    let mut node = None;
    let mut error = None;
    // One bit per field: a repeated field is left to serde (which rejects it).
    let mut seen = 0u16;
    c.ws();
    if c.peek() == Some(b'}') {
        return None;
    }
    loop {
        c.ws();
        let name = c.plain_bytes()?;
        c.ws();
        c.eat(b':')?;
        c.ws();
        let bit = match name {
            b"index" => {
                index = c.opt_u64()?;
                1
            }
            b"time" => {
                time = c.opt_u64()?;
                2
            }
            b"process" => {
                process = Some(if c.peek() == Some(b'"') {
                    match c.plain_bytes()? {
                        b"nemesis" => Process::Nemesis,
                        _ => return None,
                    }
                } else {
                    Process::Client(c.u64()?)
                });
                4
            }
            b"type" => {
                kind = Some(match c.plain_bytes()? {
                    b"invoke" => EventType::Invoke,
                    b"ok" => EventType::Ok,
                    b"fail" => EventType::Fail,
                    b"info" => EventType::Info,
                    _ => return None,
                });
                8
            }
            b"f" => {
                f = Some(c.plain_str()?.to_owned());
                16
            }
            b"key" => {
                key = Some(c.value(0)?);
                32
            }
            b"value" => {
                value = Some(c.value(0)?);
                64
            }
            b"node" => {
                node = if c.null() {
                    None
                } else {
                    Some(c.plain_str()?.to_owned())
                };
                128
            }
            b"error" => {
                error = Some(c.value(0)?);
                256
            }
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        c.ws();
        match c.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    c.ws();
    if c.i != line.len() {
        return None;
    }
    let event = Event {
        index: 0,
        time,
        process: process?,
        kind: kind?,
        f: f?,
        // `null` means absent for the optional fields, as with serde's `Option`.
        key: key.filter(|k| !k.is_nil()),
        value: value?,
        node,
        error: error.filter(|e| !e.is_nil()),
    };
    Some((event, index))
}

/// Parses one line of a transactional history straight into micro-operations (appended to
/// `mops`, read lists to `elements`), or `None` — buffers as they were — when the line is
/// not of the common shape ([`txn_fast`](super::txn_fast)): a client event of `f` `"txn"`,
/// no key, a value of micro-operations that fit `workload`, written as JSON
/// (`["append", k, v]`, `["r", k, [1, 2]]`, `null`). Everything else — nemesis events, other
/// shapes, errors — is the generic reader's to read or explain.
pub(crate) fn parse_txn_line(
    line: &[u8],
    workload: Workload,
    mops: &mut Vec<RawMop>,
    elements: &mut Vec<i64>,
) -> Option<TxnOp> {
    or_rolled_back(mops, elements, |mops, elements| {
        let mut c = Cursor { b: line, i: 0 };
        c.ws();
        c.eat(b'{')?;
        let op = op_fields(&mut c, workload, mops, elements)?;
        c.ws();
        (c.i == line.len()).then_some(op)
    })
}

/// Nesting deeper than this goes to serde.
const MAX_DEPTH: u32 = 16;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }
    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }
    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }
    fn null(&mut self) -> bool {
        self.literal(b"null")
    }

    /// The bytes of a string without escapes or control characters; field names and
    /// enumerated values are compared as bytes, without a UTF-8 check.
    fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[len] != b'"' {
            return None;
        }
        let bytes = &rest[..len];
        if bytes.iter().any(|&b| b < 0x20) {
            return None;
        }
        self.i += len + 1;
        Some(bytes)
    }

    /// A string without escapes or control characters, as text.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.plain_bytes()
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// An integer as JSON writes it (no leading zeros), not followed by a fraction or an
    /// exponent; `None` for anything else, including overflow.
    fn i64(&mut self) -> Option<i64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let start = self.i;
        let mut magnitude: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            magnitude = magnitude
                .checked_mul(10)?
                .checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    fn value(&mut self, depth: u32) -> Option<Value> {
        match self.peek()? {
            b'n' => self.null().then_some(Value::Nil),
            b't' => self.literal(b"true").then_some(Value::Bool(true)),
            b'f' => self.literal(b"false").then_some(Value::Bool(false)),
            b'"' => self.plain_str().map(|s| Value::Str(s.to_owned())),
            b'[' if depth < MAX_DEPTH => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Some(Value::List(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.next()? {
                        b',' => continue,
                        b']' => return Some(Value::List(items)),
                        _ => return None,
                    }
                }
            }
            b'-' | b'0'..=b'9' => self.i64().map(Value::Int),
            _ => None,
        }
    }
}

impl<'a> OpSyntax<'a> for Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        Cursor::peek(self)
    }
    fn eat(&mut self, want: u8) -> Option<()> {
        Cursor::eat(self, want)
    }
    fn ws(&mut self) {
        Cursor::ws(self)
    }
    fn next_field(&mut self, first: bool) -> Option<Option<&'a [u8]>> {
        self.ws();
        if first {
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Some(None);
            }
        } else {
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(None),
                _ => return None,
            }
        }
        let name = self.plain_bytes()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(Some(name))
    }
    fn name(&mut self) -> Option<&'a [u8]> {
        self.plain_bytes()
    }
    fn nil(&mut self) -> bool {
        self.null()
    }
    fn i64(&mut self) -> Option<i64> {
        Cursor::i64(self)
    }
    fn skip_node(&mut self) -> Option<()> {
        self.plain_str().map(drop)
    }
    fn skip_error(&mut self) -> Option<()> {
        self.value(0).map(drop)
    }
    fn separator(&mut self) -> Option<()> {
        self.ws();
        self.eat(b',')?;
        self.ws();
        Some(())
    }
    fn more_items(&mut self, first: bool) -> Option<bool> {
        self.ws();
        if first {
            if self.peek() == Some(b']') {
                self.i += 1;
                return Some(false);
            }
            return Some(true);
        }
        match self.next()? {
            b',' => Some(true),
            b']' => Some(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_path(line: &str) -> Option<Event> {
        let raw = super::super::jsonl::read_serde_only(line.as_bytes())?;
        Some(raw)
    }

    #[test]
    fn agrees_with_serde_where_it_answers() {
        let lines = [
            r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":3,"value":7,"node":"n1"}"#,
            r#"{"process":"nemesis","type":"info","f":"partition","value":["n1",["n2","n3"]]}"#,
            r#" { "process" : 4 , "type" : "ok" , "f" : "cas" , "value" : [ -1 , 0 ] , "error" : null } "#,
            r#"{"process":4,"type":"fail","f":"cas","value":[1,2],"error":"compare-failed","key":null}"#,
            r#"{"process":4,"type":"ok","f":"read","value":[],"node":null,"time":null}"#,
            r#"{"process":4,"type":"ok","f":"read","value":true}"#,
            r#"{"process":4,"type":"ok","f":"read","value":-9223372036854775808}"#,
            r#"{"process":4,"type":"ok","f":"read","value":"é✓"}"#,
        ];
        for line in lines {
            let (fast, _) = parse_line(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(Some(fast), serde_path(line), "{line}");
        }
    }

    #[test]
    fn leaves_the_rest_to_serde() {
        let lines = [
            r#"{"process":0,"type":"ok","f":"read","value":1.5}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1e3}"#,
            r#"{"process":0,"type":"ok","f":"read","value":01}"#,
            r#"{"process":0,"type":"ok","f":"read","value":"a\"b"}"#,
            r#"{"process":0,"type":"ok","f":"read","value":{"a":1}}"#,
            r#"{"process":0,"type":"ok","f":"read","value":9223372036854775808}"#,
            r#"{"process":-1,"type":"ok","f":"read","value":1}"#,
            r#"{"process":0,"type":"done","f":"read","value":1}"#,
            r#"{"process":0,"type":"ok","f":"read"}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1,"value":2}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1,"colour":2}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1} x"#,
            r#"{"process":0,"type":"ok","f":"read","value":1"#,
            r#"{"process":0,"type":"ok","f":"read","value":[1,]}"#,
            r#"{"process":0,"type":"ok","f":"read","value":nul}"#,
        ];
        for line in lines {
            assert!(parse_line(line.as_bytes()).is_none(), "{line}");
        }
    }
}
