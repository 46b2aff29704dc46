//! A fast path for the common lines of a Jepsen EDN history of transactions: one op map
//! (perhaps a tagged record such as `#jepsen.history.Op{…}`) on one line, perhaps opening
//! or closing the vector that holds a whole history, typed straight into micro-operations.
//!
//! It accepts a strict subset of what [`edn`](super::edn) then the transaction builder
//! accept and means the same by it: keyword keys `:index`, `:time`, `:type`, `:process`,
//! `:f`, `:value`, `:key`, `:node`, `:error`, each once; `:f :txn`; a client process; no
//! key (or nil); a value of micro-operations that fit the workload (`[:append k v]` or
//! `[:w k v]`, `[:r k r]` with `r` nil, a vector of integers for list-append, an integer
//! for rw-register; names as keywords or strings); integers without a suffix; strings
//! without escapes. Anything else — nemesis ops, other fields, lists, sets, discards,
//! maps spanning lines, errors — returns `None`, and the caller reads the line with the
//! generic EDN reader, which either reads it or explains what is wrong with it.

use super::edn::is_delimiter;
use super::txn_fast::TxnOp;
use super::txn_fast::{op_fields, or_rolled_back, OpSyntax};
use crate::txn::transactions::RawMop;
use crate::txn::Workload;

/// One line of the common shape: `[`? op? `]`? (at least one of them), blanks and a
/// trailing comment allowed around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxnLine {
    /// The line opens a vector (`b']'`) or a list (`b')'`) of ops: the byte closing it.
    pub opens: Option<u8>,
    pub op: Option<TxnOp>,
    /// The line closes a vector or list with this byte.
    pub closes: Option<u8>,
}

/// Parses one line (without its newline) of a transactional EDN history, micro-operations
/// appended to `mops` and read lists to `elements`; `None` — buffers as they were — when
/// the line is not of the common shape (see the module documentation).
pub(crate) fn parse_txn_line(
    line: &[u8],
    workload: Workload,
    mops: &mut Vec<RawMop>,
    elements: &mut Vec<i64>,
) -> Option<TxnLine> {
    or_rolled_back(mops, elements, |mops, elements| {
        txn_line(line, workload, mops, elements)
    })
}

fn txn_line(
    line: &[u8],
    workload: Workload,
    mops: &mut Vec<RawMop>,
    elements: &mut Vec<i64>,
) -> Option<TxnLine> {
    let mut c = Cursor { b: line, i: 0 };
    c.ws();
    let opens = match c.peek() {
        Some(b'[') => Some(b']'),
        Some(b'(') => Some(b')'),
        _ => None,
    };
    if opens.is_some() {
        c.i += 1;
        c.ws();
    }
    let op = match c.peek() {
        Some(b'{' | b'#') => Some(c.op(workload, mops, elements)?),
        _ => None,
    };
    c.ws();
    let closes = match c.peek() {
        Some(close @ (b']' | b')')) => {
            c.i += 1;
            c.ws();
            Some(close)
        }
        _ => None,
    };
    if c.i != line.len() || (opens.is_none() && op.is_none() && closes.is_none()) {
        return None;
    }
    Some(TxnLine { opens, op, closes })
}

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
    /// Blanks: whitespace, commas, and a comment to the end of the line.
    fn ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.i += 1;
            } else if b == b';' {
                self.i = self.b.len();
            } else {
                break;
            }
        }
    }
    /// Whether a token ended here.
    fn at_delimiter(&self) -> bool {
        self.peek().is_none_or(is_delimiter)
    }
    /// The bytes of the token (up to a delimiter) at the cursor.
    fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(|b| !is_delimiter(b)) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }
    /// `:name`, the name's bytes.
    fn keyword(&mut self) -> Option<&'a [u8]> {
        self.eat(b':')?;
        let name = self.token();
        // The generic reader rejects a token that is not UTF-8.
        (!name.is_empty() && std::str::from_utf8(name).is_ok()).then_some(name)
    }
    /// A string without escapes, its bytes checked to be UTF-8.
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[len] != b'"' {
            return None;
        }
        let bytes = &rest[..len];
        std::str::from_utf8(bytes).ok()?;
        self.i += len + 1;
        Some(bytes)
    }
    /// A keyword's name or a plain string's bytes.
    fn name(&mut self) -> Option<&'a [u8]> {
        match self.peek()? {
            b':' => self.keyword(),
            b'"' => self.plain_str(),
            _ => None,
        }
    }
    /// `nil` (as a whole token).
    fn nil(&mut self) -> bool {
        if self.b[self.i..].starts_with(b"nil") {
            let after = self.b.get(self.i + 3).copied();
            if after.is_none_or(is_delimiter) {
                self.i += 3;
                return true;
            }
        }
        false
    }
    /// An integer written as digits with an optional minus sign, ending at a delimiter;
    /// `None` for anything else (suffixes, floats, overflow).
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
        if self.i == start || !self.at_delimiter() {
            return None;
        }
        if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
    }
    /// A simple value read and dropped: nil, a boolean, an integer, a keyword, a plain
    /// string, or a vector of those.
    fn skip_simple(&mut self, nested: bool) -> Option<()> {
        match self.peek()? {
            b':' => self.keyword().map(drop),
            b'"' => self.plain_str().map(drop),
            b'-' | b'0'..=b'9' => self.i64().map(drop),
            b'[' if !nested => {
                self.i += 1;
                loop {
                    self.ws();
                    if self.peek()? == b']' {
                        self.i += 1;
                        return Some(());
                    }
                    self.skip_simple(true)?;
                }
            }
            _ => match self.token() {
                b"nil" | b"true" | b"false" => Some(()),
                _ => None,
            },
        }
    }

    /// An op map, perhaps tagged.
    fn op(
        &mut self,
        workload: Workload,
        mops: &mut Vec<RawMop>,
        elements: &mut Vec<i64>,
    ) -> Option<TxnOp> {
        if self.peek() == Some(b'#') {
            self.i += 1;
            if !self.peek()?.is_ascii_alphabetic() {
                return None;
            }
            if !self.token().is_ascii() {
                return None;
            }
            self.ws();
        }
        self.eat(b'{')?;
        op_fields(self, workload, mops, elements)
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
    fn next_field(&mut self, _first: bool) -> Option<Option<&'a [u8]>> {
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(None);
        }
        let name = self.keyword()?;
        self.ws();
        Some(Some(name))
    }
    fn name(&mut self) -> Option<&'a [u8]> {
        Cursor::name(self)
    }
    fn nil(&mut self) -> bool {
        Cursor::nil(self)
    }
    fn i64(&mut self) -> Option<i64> {
        Cursor::i64(self)
    }
    fn skip_node(&mut self) -> Option<()> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => Cursor::i64(self).map(drop),
            _ => Cursor::name(self).map(drop),
        }
    }
    fn skip_error(&mut self) -> Option<()> {
        self.skip_simple(false)
    }
    fn separator(&mut self) -> Option<()> {
        self.ws();
        Some(())
    }
    fn more_items(&mut self, _first: bool) -> Option<bool> {
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(false);
        }
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::txn::transactions::RawRead;

    fn parse(line: &str, workload: Workload) -> Option<(TxnLine, Vec<RawMop>, Vec<i64>)> {
        let (mut mops, mut elements) = (vec![RawMop::Write { key: 0, value: 0 }], vec![9]);
        let parsed = parse_txn_line(line.as_bytes(), workload, &mut mops, &mut elements);
        if parsed.is_none() {
            assert_eq!(
                (mops.len(), elements.len()),
                (1, 1),
                "buffers restored: {line}"
            );
        }
        parsed.map(|p| (p, mops, elements))
    }

    #[test]
    fn reads_the_common_shapes() {
        let (line, mops, elements) = parse(
            "{:index 3, :time 12, :type :ok, :process 2, :f :txn, :value [[:append 1 -7] [:r 1 [4 -7]] [\"r\" 2 nil]], :node \"n1\", :error nil}",
            Workload::ListAppend,
        )
        .unwrap();
        assert_eq!(
            line,
            TxnLine {
                opens: None,
                op: Some(TxnOp {
                    index: Some(3),
                    has_time: true,
                    process: 2,
                    kind: EventType::Ok,
                    mops: (1, 4)
                }),
                closes: None
            }
        );
        assert_eq!(
            &mops[1..],
            &[
                RawMop::Write { key: 1, value: -7 },
                RawMop::Read {
                    key: 1,
                    result: RawRead::List(1, 3)
                },
                RawMop::Read {
                    key: 2,
                    result: RawRead::Nil
                },
            ]
        );
        assert_eq!(&elements[1..], &[4, -7]);

        let (line, mops, _) = parse(
            "  [#jepsen.history.Op {:process 0 :type \"info\" :f \"txn\" :value [[:w 5 6] [:r 5 6]] :error [:timeout \"x\" 1]} ; a comment",
            Workload::RwRegister,
        )
        .unwrap();
        assert_eq!(line.opens, Some(b']'));
        assert_eq!(line.closes, None);
        let op = line.op.unwrap();
        assert_eq!(
            (op.index, op.has_time, op.kind),
            (None, false, EventType::Info)
        );
        assert_eq!(
            &mops[1..],
            &[
                RawMop::Write { key: 5, value: 6 },
                RawMop::Read {
                    key: 5,
                    result: RawRead::Int(6)
                },
            ]
        );
        let (line, _, _) = parse(
            "{:process 1, :type :invoke, :f :txn, :value [], :time nil, :key nil})",
            Workload::ListAppend,
        )
        .unwrap();
        assert_eq!((line.opens, line.closes), (None, Some(b')')));
        let (line, _, _) = parse(" ] ", Workload::ListAppend).unwrap();
        assert_eq!((line.opens, line.op, line.closes), (None, None, Some(b']')));
        let (line, _, _) = parse("(", Workload::ListAppend).unwrap();
        assert_eq!((line.opens, line.op, line.closes), (Some(b')'), None, None));
    }

    #[test]
    fn leaves_the_rest_to_the_generic_reader() {
        let la = Workload::ListAppend;
        let lines = [
            "",
            "   ; only a comment",
            "{:process :nemesis, :type :info, :f :start, :value nil}",
            "{:process 0, :type :ok, :f :read, :value [[:r 1 nil]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :colour 1}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :process 1}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :key 3}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 5]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 (1 2)]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 [1N]]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 [1.5]]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 [9223372036854775808]]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:w 1 2]]}",
            "{:process 0, :type :ok, :f :txn, :value [[r 1 nil]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil 2]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1]]}",
            "{:process 0, :type :ok, :f :txn, :value ([:r 1 nil])}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]]",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]]} {:process 1}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]]} x",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :error {:a 1}}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :error [[1]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :node \"a\\\"b\"}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :node n1}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], :index -1}",
            "{:process -1, :type :ok, :f :txn, :value [[:r 1 nil]]}",
            "{:process 0, :type :done, :f :txn, :value [[:r 1 nil]]}",
            "{:process 0, :type :ok, :value [[:r 1 nil]]}",
            "{:process 0, :type :ok, :f :txn}",
            "{:type :ok, :f :txn, :value []}",
            "{:process 0, :f :txn, :value []}",
            "{:process 0, :type :ok, :f :txn, :value [] #_ 1}",
            "{:process 0, :type :ok, :f :txn, :value []}]]",
            "[[{:process 0, :type :ok, :f :txn, :value []}",
            "#{:process 0, :type :ok, :f :txn, :value []}",
            "#_{:process 0, :type :ok, :f :txn, :value []}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nil]], \"node\" 1}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 [1 2\"x\"]]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 nilly]]}",
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 [1]]], :time 5x}",
        ];
        for line in lines {
            assert!(parse(line, la).is_none(), "{line}");
        }
        assert!(parse(
            "{:process 0, :type :ok, :f :txn, :value [[:append 1 2]]}",
            Workload::RwRegister
        )
        .is_none());
        assert!(parse(
            "{:process 0, :type :ok, :f :txn, :value [[:r 1 [2]]]}",
            Workload::RwRegister
        )
        .is_none());
    }
}
