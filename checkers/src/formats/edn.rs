//! Jepsen's EDN histories: a small EDN reader with line numbers, and a writer.
//!
//! Accepted shapes, freely mixed: op maps one after another (usually one per line, as Jepsen
//! and Porcupine's kv files write them; a map may span lines), tagged records such as
//! `#jepsen.history.Op{:index 0 :type :invoke …}` (Jepsen 0.3), and vectors or lists of op
//! maps (Knossos' data files). Op fields: `:process` (integer or `:nemesis`), `:type`, `:f`,
//! `:value`, `:key`, `:index`, `:time`, `:node`, `:error`; other fields are ignored.
//!
//! The reader is a recursive-descent parser written here rather than a crate: the EDN crates
//! evaluated (e.g. `edn-format`) give a position only for syntax errors, not for each parsed
//! form, and we need the line of every op and field to point at bad data. It covers the EDN
//! that histories use: nil, booleans, integers (with an `N` suffix), floats (rejected later
//! when used as a value), strings with escapes, characters, keywords, symbols, lists,
//! vectors, maps, sets, tagged elements, `;` comments and `#_` discards.

use super::{DataError, RawEvents};
use crate::history::{Event, EventType, Process, Value};
use std::io::{self, Write};

/// One item of a history's top level (see [`Parser::top_item`]).
#[derive(Debug)]
pub(crate) enum TopItem {
    /// A form (an op, or else bad data) and the offset where it starts.
    Form(Form, usize),
    /// A vector or list of ops opens, on `line`; `close` is the byte that closes it.
    Open { close: u8, line: usize },
    /// The vector or list being read closes.
    Close,
    /// The end of the input.
    End,
}

/// An EDN form with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub line: usize,
    pub kind: FormKind,
}

/// The EDN data model (what histories need of it).
#[derive(Debug, Clone, PartialEq)]
pub enum FormKind {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer beyond 64 bits, kept as written (an error if used as a value).
    BigInt(String),
    Float(f64),
    Str(String),
    Char(char),
    Keyword(String),
    Symbol(String),
    List(Vec<Form>),
    Vector(Vec<Form>),
    Map(Vec<(Form, Form)>),
    Set(Vec<Form>),
    Tagged(String, Box<Form>),
}

impl FormKind {
    fn describe(&self) -> String {
        match self {
            FormKind::Nil => "nil".into(),
            FormKind::Bool(b) => b.to_string(),
            FormKind::Int(i) => i.to_string(),
            FormKind::BigInt(s) => s.clone(),
            FormKind::Float(x) => format!("the float {x}"),
            FormKind::Str(s) => format!("{s:?}"),
            FormKind::Char(c) => format!("the character {c:?}"),
            FormKind::Keyword(k) => format!(":{k}"),
            FormKind::Symbol(s) => format!("the symbol {s}"),
            FormKind::List(_) => "a list".into(),
            FormKind::Vector(_) => "a vector".into(),
            FormKind::Map(_) => "a map".into(),
            FormKind::Set(_) => "a set".into(),
            FormKind::Tagged(t, _) => format!("a #{t} element"),
        }
    }
}

/// A syntax error; `at_end` when the input ended inside a form (what a truncated write
/// looks like).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub error: DataError,
    pub at_end: bool,
}

/// A recursive-descent EDN parser over bytes, tracking the line.
pub struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
    /// Offset of the current line's first byte, for columns.
    line_start: usize,
    depth: usize,
}

/// Deeper nesting than this (collections, tagged elements, `#_` discards, counted
/// together) is rejected instead of overflowing the stack.
pub const MAX_DEPTH: usize = 64;

/// Which items of a collection must be distinct.
#[derive(Debug, Clone, Copy)]
enum Distinct {
    No,
    /// Every other item, starting with the first: a map's keys.
    MapKeys,
    /// Every item: a set's elements.
    Elements,
}

/// The items of a collection seen so far, by a hash of their value, to find a repeat.
#[derive(Default)]
struct DistinctForms {
    by_hash: std::collections::HashMap<u64, Vec<usize>>,
}

impl DistinctForms {
    /// Records `form`, item `index` of `items`-to-be; returns the index of an equal earlier
    /// item, if any.
    fn insert(&mut self, form: &Form, index: usize, items: &[Form]) -> Option<usize> {
        let same_hash = self.by_hash.entry(value_hash(&form.kind)).or_default();
        if let Some(&first) = same_hash
            .iter()
            .find(|&&i| same_value(&items[i].kind, &form.kind))
        {
            return Some(first);
        }
        same_hash.push(index);
        None
    }
}

/// Equality of EDN values as Clojure sees them: positions ignored, lists equal to vectors,
/// maps and sets compared without regard to order.
fn same_value(a: &FormKind, b: &FormKind) -> bool {
    use FormKind::*;
    match (a, b) {
        (List(x) | Vector(x), List(y) | Vector(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(&a.kind, &b.kind))
        }
        (Set(x), Set(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|a| y.iter().any(|b| same_value(&a.kind, &b.kind)))
        }
        (Map(x), Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter().any(|(k2, v2)| {
                        same_value(&k.kind, &k2.kind) && same_value(&v.kind, &v2.kind)
                    })
                })
        }
        (Tagged(t, x), Tagged(u, y)) => t == u && same_value(&x.kind, &y.kind),
        (Float(x), Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// A hash consistent with [`same_value`].
fn value_hash(kind: &FormKind) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match kind {
        FormKind::Nil => 0u8.hash(&mut h),
        FormKind::Bool(b) => (1u8, b).hash(&mut h),
        FormKind::Int(i) => (2u8, i).hash(&mut h),
        FormKind::BigInt(s) => (3u8, s).hash(&mut h),
        FormKind::Float(x) => (4u8, x.to_bits()).hash(&mut h),
        FormKind::Str(s) => (5u8, s).hash(&mut h),
        FormKind::Char(c) => (6u8, c).hash(&mut h),
        FormKind::Keyword(k) => (7u8, k).hash(&mut h),
        FormKind::Symbol(s) => (8u8, s).hash(&mut h),
        FormKind::List(items) | FormKind::Vector(items) => {
            9u8.hash(&mut h);
            for item in items {
                value_hash(&item.kind).hash(&mut h);
            }
        }
        FormKind::Set(items) => {
            let sum = items
                .iter()
                .fold(0u64, |acc, i| acc.wrapping_add(value_hash(&i.kind)));
            (10u8, sum).hash(&mut h);
        }
        FormKind::Map(pairs) => {
            let sum = pairs.iter().fold(0u64, |acc, (k, v)| {
                acc.wrapping_add(value_hash(&k.kind) ^ value_hash(&v.kind).rotate_left(1))
            });
            (11u8, sum).hash(&mut h);
        }
        FormKind::Tagged(tag, inner) => (12u8, tag, value_hash(&inner.kind)).hash(&mut h),
    }
    h.finish()
}

/// Ends a token. A backslash does too: it starts a character, as in Clojure's reader.
pub(crate) fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';' | b'\\'
        )
}

impl<'a> Parser<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            pos: 0,
            line: 1,
            line_start: 0,
            depth: 0,
        }
    }

    /// A parser of `data` from `pos`, which is on 1-based line `line`, starting at
    /// `line_start`, inside `depth` levels of nesting.
    pub(crate) fn resume(
        data: &'a [u8],
        pos: usize,
        line: usize,
        line_start: usize,
        depth: usize,
    ) -> Self {
        Parser {
            data,
            pos,
            line,
            line_start,
            depth,
        }
    }

    /// The current 1-based line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The current byte offset and the offset of its line's first byte.
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.pos, self.line_start)
    }

    /// Whether the rest of the current line is blank (whitespace, commas, a comment).
    pub(crate) fn rest_of_line_blank(&self) -> bool {
        for &b in &self.data[self.pos..] {
            match b {
                b'\n' | b';' => return true,
                b',' => {}
                b if b.is_ascii_whitespace() => {}
                _ => return false,
            }
        }
        true
    }

    /// The next item of a history's top level, a top-level vector or list of ops read item
    /// by item rather than whole: `inside` is the byte closing the vector or list being
    /// read, and the line it was opened on. Reads what [`Parser::next_form`] then the
    /// sequence's own reading would, with the same errors.
    pub(crate) fn top_item(&mut self, inside: Option<(u8, usize)>) -> Result<TopItem, SyntaxError> {
        self.depth = usize::from(inside.is_some());
        if !self.skip_to_form()? {
            return match inside {
                None => Ok(TopItem::End),
                Some((close, opened)) => Err(self.end_error(format!(
                    "`{}` closing the {} opened on line {opened}",
                    close as char,
                    if close == b']' { "vector" } else { "list" }
                ))),
            };
        }
        let b = self.peek().unwrap_or(0);
        match inside {
            Some((close, _)) if b == close => {
                self.pos += 1;
                Ok(TopItem::Close)
            }
            None if b == b'[' || b == b'(' => {
                let line = self.line;
                self.pos += 1;
                Ok(TopItem::Open {
                    close: if b == b'[' { b']' } else { b')' },
                    line,
                })
            }
            _ => {
                let start = self.pos;
                Ok(TopItem::Form(self.form()?, start))
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
            self.line_start = self.pos;
        }
        Some(b)
    }

    /// The 1-based byte column of the current position.
    pub fn column(&self) -> usize {
        self.pos.saturating_sub(self.line_start) + 1
    }

    fn error(&self, expected: impl Into<String>, found: impl Into<String>) -> SyntaxError {
        SyntaxError {
            error: DataError::new(self.line, expected)
                .column(self.column())
                .found(found),
            at_end: false,
        }
    }

    fn end_error(&self, expected: impl Into<String>) -> SyntaxError {
        SyntaxError {
            error: DataError::new(self.line, expected)
                .column(self.column())
                .found("the end of the input"),
            at_end: true,
        }
    }

    /// Skips whitespace, commas and comments. `#_` discards are handled by the form parser.
    fn skip_blank(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.bump();
            } else if b == b';' {
                while let Some(b) = self.peek() {
                    if b == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// Skips blanks and discarded forms; true when a form follows.
    pub(crate) fn skip_to_form(&mut self) -> Result<bool, SyntaxError> {
        loop {
            self.skip_blank();
            if self.data[self.pos..].starts_with(b"#_") {
                self.pos += 2;
                // A chain `#_#_#_…` recurses once per discard: it counts as nesting.
                self.nested(|p| p.form())?;
                continue;
            }
            return Ok(self.peek().is_some());
        }
    }

    /// The next top-level form, or `None` at the end of the input.
    pub fn next_form(&mut self) -> Result<Option<Form>, SyntaxError> {
        if !self.skip_to_form()? {
            return Ok(None);
        }
        self.form().map(Some)
    }

    /// Parses one form; blanks before it are skipped.
    pub fn form(&mut self) -> Result<Form, SyntaxError> {
        if !self.skip_to_form()? {
            return Err(self.end_error("an EDN form"));
        }
        let line = self.line;
        let b = self.peek().unwrap_or(0);
        let kind = match b {
            b'(' => FormKind::List(self.sequence(b')', "list", Distinct::No)?),
            b'[' => FormKind::Vector(self.sequence(b']', "vector", Distinct::No)?),
            b'{' => self.map()?,
            b'"' => FormKind::Str(self.string()?),
            b'\\' => FormKind::Char(self.character()?),
            b'#' => self.dispatch()?,
            b':' => {
                self.pos += 1;
                let name = self.token()?;
                if name.is_empty() {
                    return Err(self.error("a keyword name after `:`", "nothing"));
                }
                FormKind::Keyword(name.to_owned())
            }
            b')' | b']' | b'}' => {
                return Err(self.error("a form", format!("an unmatched `{}`", b as char)))
            }
            _ => self.atom()?,
        };
        Ok(Form { line, kind })
    }

    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, SyntaxError>,
    ) -> Result<T, SyntaxError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("at most {MAX_DEPTH} levels of nesting"), "more"));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// Forms up to `close`; the opening delimiter is at `pos`. `distinct` says which items
    /// must differ from each other (as Clojure's reader rejects a map with a duplicate key
    /// or a set with a duplicate element); a repeat is a syntax error at its position.
    fn sequence(
        &mut self,
        close: u8,
        what: &str,
        distinct: Distinct,
    ) -> Result<Vec<Form>, SyntaxError> {
        let opened = self.line;
        self.pos += 1;
        self.nested(|p| {
            let mut items = Vec::new();
            let mut seen = DistinctForms::default();
            loop {
                if !p.skip_to_form()? {
                    return Err(p.end_error(format!(
                        "`{}` closing the {what} opened on line {opened}",
                        close as char
                    )));
                }
                if p.peek() == Some(close) {
                    p.pos += 1;
                    return Ok(items);
                }
                let (line, column) = (p.line, p.column());
                let form = p.form()?;
                let checked = match distinct {
                    Distinct::No => None,
                    Distinct::MapKeys => (items.len() % 2 == 0).then_some("key"),
                    Distinct::Elements => Some("element"),
                };
                if let Some(role) = checked {
                    if let Some(first) = seen.insert(&form, items.len(), &items) {
                        return Err(SyntaxError {
                            error: DataError::new(
                                line,
                                format!("a {what} without a duplicate {role}"),
                            )
                            .column(column)
                            .found(format!(
                                "{} again (first on line {})",
                                form.kind.describe(),
                                items[first].line
                            )),
                            at_end: false,
                        });
                    }
                }
                items.push(form);
            }
        })
    }

    fn map(&mut self) -> Result<FormKind, SyntaxError> {
        let opened = self.line;
        let items = self.sequence(b'}', "map", Distinct::MapKeys)?;
        if items.len() % 2 != 0 {
            let last = items.last().map_or(opened, |f| f.line);
            return Err(SyntaxError {
                error: DataError::new(
                    last,
                    format!("a value for every key of the map opened on line {opened}"),
                )
                .found("a key without a value"),
                at_end: false,
            });
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(FormKind::Map(pairs))
    }

    /// `#{…}` sets, `#_` is handled by `skip_to_form`, `#tag form` tagged elements.
    fn dispatch(&mut self) -> Result<FormKind, SyntaxError> {
        match self.data.get(self.pos + 1) {
            Some(b'{') => {
                self.pos += 1;
                Ok(FormKind::Set(self.sequence(
                    b'}',
                    "set",
                    Distinct::Elements,
                )?))
            }
            Some(b) if b.is_ascii_alphabetic() => {
                self.pos += 1;
                let tag = self.token()?.to_owned();
                let inner = self.nested(|p| p.form())?;
                Ok(FormKind::Tagged(tag, Box::new(inner)))
            }
            Some(&b) => Err(self.error(
                "a set `#{`, a discard `#_` or a tag after `#`",
                format!("`#{}`", b as char),
            )),
            None => Err(self.end_error("a set, a discard or a tag after `#`")),
        }
    }

    /// The symbol-like token at `pos` (up to a delimiter).
    fn token(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| !is_delimiter(b)) {
            self.pos += 1;
        }
        // Tokens end at ASCII delimiters, so they are whole UTF-8 sequences of valid input.
        std::str::from_utf8(&self.data[start..self.pos]).map_err(|e| {
            self.pos = start + e.valid_up_to();
            self.error("UTF-8 text", "invalid bytes")
        })
    }

    fn atom(&mut self) -> Result<FormKind, SyntaxError> {
        let token = self.token()?;
        if token.is_empty() {
            let found = self
                .peek()
                .map_or("nothing".to_owned(), |b| format!("{:?}", b as char));
            return Err(self.error("an EDN form", found));
        }
        let bytes = token.as_bytes();
        let numeric = bytes[0].is_ascii_digit()
            || (matches!(bytes[0], b'+' | b'-') && bytes.get(1).is_some_and(u8::is_ascii_digit));
        if numeric {
            return self.number(token);
        }
        Ok(match token {
            "nil" => FormKind::Nil,
            "true" => FormKind::Bool(true),
            "false" => FormKind::Bool(false),
            _ => FormKind::Symbol(token.to_owned()),
        })
    }

    fn number(&self, token: &str) -> Result<FormKind, SyntaxError> {
        let digits = token.strip_suffix('N').unwrap_or(token);
        if let Ok(i) = digits.parse::<i64>() {
            return Ok(FormKind::Int(i));
        }
        let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
        if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(FormKind::BigInt(token.to_owned()));
        }
        let float = token.strip_suffix('M').unwrap_or(token);
        float
            .parse::<f64>()
            .map(FormKind::Float)
            .map_err(|_| self.error("a number", format!("`{token}`")))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let opened = self.line;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.bump() else {
                return Err(
                    self.end_error(format!("`\"` closing the string opened on line {opened}"))
                );
            };
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.bump() else {
                        return Err(self.end_error("an escape after `\\`"));
                    };
                    let c = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'u' => self.unicode_escape()?,
                        other => {
                            return Err(self.error(
                                "one of the escapes \\n \\t \\r \\b \\f \\\" \\\\ \\uXXXX",
                                format!("`\\{}`", other as char),
                            ))
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("UTF-8 text in a string", "invalid bytes"))
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let hex = self
            .data
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.end_error("four hex digits after \\u"))?;
        let code = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .ok_or_else(|| {
                self.error(
                    "four hex digits of a Unicode scalar after \\u",
                    String::from_utf8_lossy(hex).into_owned(),
                )
            })?;
        self.pos += 4;
        Ok(code)
    }

    fn character(&mut self) -> Result<char, SyntaxError> {
        self.pos += 1;
        // A character's first byte may itself be a delimiter (`\(`, `\ `… are not allowed,
        // but `\"` is), so take it unconditionally, then the rest of the token.
        let start = self.pos;
        let Some(first) = self.peek() else {
            return Err(self.end_error("a character after `\\`"));
        };
        let width = match first {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        if first == b'\n' {
            // `\` then a newline is the newline character: the line still ends there.
            self.bump();
        } else {
            self.pos = (self.pos + width).min(self.data.len());
        }
        while self.peek().is_some_and(|b| !is_delimiter(b)) {
            self.pos += 1;
        }
        let token = std::str::from_utf8(&self.data[start..self.pos])
            .map_err(|_| self.error("a character", "invalid UTF-8"))?;
        let mut chars = token.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => return Ok(c),
            (Some('u'), Some(_)) if token.len() == 5 => {
                if let Some(c) = u32::from_str_radix(&token[1..], 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    return Ok(c);
                }
            }
            _ => {}
        }
        match token {
            "newline" => Ok('\n'),
            "return" => Ok('\r'),
            "space" => Ok(' '),
            "tab" => Ok('\t'),
            _ => Err(self.error(
                "a character such as \\a, \\newline, \\space, \\tab or \\uXXXX",
                format!("`\\{token}`"),
            )),
        }
    }
}

/// Parses one EDN value from text, e.g. a command-line `--initial-value`.
pub fn parse_value(text: &str) -> Result<Value, DataError> {
    let mut parser = Parser::new(text.as_bytes());
    let form = parser.form().map_err(|e| e.error)?;
    if parser.skip_to_form().map_err(|e| e.error)? {
        return Err(DataError::new(parser.line(), "a single value").found("more after it"));
    }
    to_value(&form, None)
}

/// Converts a form to a history value. Vectors, lists and sets become lists, symbols and
/// characters strings, tagged elements their inner value; floats and big integers are
/// rejected (registers compare values exactly).
pub fn to_value(form: &Form, field: Option<&str>) -> Result<Value, DataError> {
    let err = |expected: &str| {
        let e = DataError::new(form.line, expected).found(form.kind.describe());
        match field {
            Some(f) => e.field(f),
            None => e,
        }
    };
    let list = |items: &[Form]| -> Result<Value, DataError> {
        items
            .iter()
            .map(|f| to_value(f, field))
            .collect::<Result<_, _>>()
            .map(Value::List)
    };
    Ok(match &form.kind {
        FormKind::Nil => Value::Nil,
        FormKind::Bool(b) => Value::Bool(*b),
        FormKind::Int(i) => Value::Int(*i),
        FormKind::BigInt(_) => return Err(err("an integer that fits in 64 signed bits")),
        FormKind::Float(_) => {
            return Err(err(
                "an integer, string, keyword, nil or collection (floating-point values are not supported)",
            ))
        }
        FormKind::Str(s) | FormKind::Symbol(s) => Value::Str(s.clone()),
        FormKind::Char(c) => Value::Str(c.to_string()),
        FormKind::Keyword(k) => Value::Keyword(k.clone()),
        FormKind::List(items) | FormKind::Vector(items) | FormKind::Set(items) => list(items)?,
        FormKind::Map(pairs) => Value::Map(
            pairs
                .iter()
                .map(|(k, v)| Ok((to_value(k, field)?, to_value(v, field)?)))
                .collect::<Result<_, DataError>>()?,
        ),
        FormKind::Tagged(_, inner) => to_value(inner, field)?,
    })
}

/// Reads an EDN history. Every form must parse: a history cut mid-form is bad data (EDN is
/// never repaired). A top-level form longer than `max_form_bytes` is bad data.
pub(crate) fn read(data: &[u8], max_form_bytes: usize) -> Result<RawEvents, DataError> {
    let mut raw = RawEvents::default();
    let mut parser = Parser::new(data);
    loop {
        match parser.skip_to_form() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(e.error),
        }
        let (start, start_line) = (parser.pos, parser.line());
        let form = parser.form().map_err(|e| e.error)?;
        if parser.pos - start > max_form_bytes {
            return Err(form_too_long(start_line, max_form_bytes));
        }
        add_top_level(&form, &mut raw)?;
    }
    Ok(raw)
}

/// The error for a top-level form (or an op of a top-level vector, when read item by item)
/// over the limit.
pub(crate) fn form_too_long(line: usize, max_form_bytes: usize) -> DataError {
    DataError::new(
        line,
        format!("an EDN form of at most {max_form_bytes} bytes"),
    )
    .found("a longer one")
}

fn add_top_level(form: &Form, raw: &mut RawEvents) -> Result<(), DataError> {
    match &form.kind {
        FormKind::Vector(items) | FormKind::List(items) => {
            for item in items {
                add_op(item, raw)?;
            }
            Ok(())
        }
        _ => add_op(form, raw),
    }
}

/// The map of an op, looking through record tags such as `#jepsen.history.Op`.
fn op_map(form: &Form) -> Option<&[(Form, Form)]> {
    match &form.kind {
        FormKind::Map(pairs) => Some(pairs),
        FormKind::Tagged(_, inner) => op_map(inner),
        _ => None,
    }
}

fn add_op(form: &Form, raw: &mut RawEvents) -> Result<(), DataError> {
    let (event, given_index) = op_event(form)?;
    raw.push(event, form.line, given_index);
    Ok(())
}

/// The event an op form stands for (its `index` left 0), and the index the op gives.
pub(crate) fn op_event(form: &Form) -> Result<(Event, Option<u64>), DataError> {
    let Some(pairs) = op_map(form) else {
        return Err(DataError::new(
            form.line,
            "an op map {:process … :type … :f … :value …}, a tagged op record, or a vector of op maps",
        )
        .found(form.kind.describe()));
    };
    let get = |name: &str| {
        pairs.iter().find_map(|(k, v)| match &k.kind {
            FormKind::Keyword(k) if k == name => Some(v),
            _ => None,
        })
    };
    let missing = |name: &str| DataError::new(form.line, "to be present").field(format!(":{name}"));
    let wrong = |name: &str, v: &Form, expected: &str| {
        DataError::new(v.line, expected)
            .field(format!(":{name}"))
            .found(v.kind.describe())
    };

    let process_form = get("process").ok_or_else(|| missing("process"))?;
    let process = match &process_form.kind {
        FormKind::Int(p) if *p >= 0 => Process::Client(*p as u64),
        FormKind::Keyword(k) if k == "nemesis" => Process::Nemesis,
        _ => {
            return Err(wrong(
                "process",
                process_form,
                "a non-negative integer or :nemesis",
            ))
        }
    };
    let type_form = get("type").ok_or_else(|| missing("type"))?;
    let kind = match &type_form.kind {
        FormKind::Keyword(t) | FormKind::Str(t) => match t.as_str() {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| wrong("type", type_form, "one of :invoke, :ok, :fail, :info"))?;
    let f_form = get("f").ok_or_else(|| missing("f"))?;
    let f = match &f_form.kind {
        FormKind::Keyword(f) | FormKind::Str(f) | FormKind::Symbol(f) => f.clone(),
        _ => return Err(wrong("f", f_form, "a keyword such as :read")),
    };
    let value = match get("value") {
        Some(v) => to_value(v, Some(":value"))?,
        None => Value::Nil,
    };
    // A nil key is no key, as in JSON Lines.
    let key = match get("key").map(|k| to_value(k, Some(":key"))).transpose()? {
        Some(Value::Nil) | None => None,
        Some(k) => Some(k),
    };
    let counter = |name: &str| -> Result<Option<u64>, DataError> {
        match get(name) {
            None => Ok(None),
            Some(Form {
                kind: FormKind::Nil,
                ..
            }) => Ok(None),
            Some(Form {
                kind: FormKind::Int(i),
                ..
            }) if *i >= 0 => Ok(Some(*i as u64)),
            Some(v) => Err(wrong(name, v, "a non-negative integer")),
        }
    };
    let index = counter("index")?;
    let time = counter("time")?;
    let node = match get("node") {
        None => None,
        Some(n) => match &n.kind {
            FormKind::Nil => None,
            FormKind::Str(name) | FormKind::Keyword(name) | FormKind::Symbol(name) => {
                Some(name.clone())
            }
            FormKind::Int(number) => Some(number.to_string()),
            _ => return Err(wrong("node", n, "a string naming the node")),
        },
    };
    let error = match get("error") {
        None => None,
        Some(e) => match to_value(e, Some(":error"))? {
            Value::Nil => None,
            v => Some(v),
        },
    };
    Ok((
        Event {
            index: 0,
            time,
            process,
            kind,
            f,
            key,
            value,
            node,
            error,
        },
        index,
    ))
}

/// A keyword name that reads back as the same keyword.
fn is_keyword_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b"*+!-_?<>=".contains(&b))
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*+!-_?<>=./$%&'#".contains(&b))
}

/// Renders a value as EDN.
pub fn write_value(w: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::Nil => w.write_all(b"nil"),
        Value::Bool(b) => write!(w, "{b}"),
        Value::Int(i) => write!(w, "{i}"),
        Value::Str(s) => write_string(w, s),
        Value::Keyword(k) if is_keyword_name(k) => write!(w, ":{k}"),
        // A keyword that would not read back (e.g. with spaces) is written as a string.
        Value::Keyword(k) => write_string(w, k),
        Value::List(items) => {
            w.write_all(b"[")?;
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b" ")?;
                }
                write_value(w, v)?;
            }
            w.write_all(b"]")
        }
        Value::Map(pairs) => {
            w.write_all(b"{")?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    w.write_all(b", ")?;
                }
                write_value(w, k)?;
                w.write_all(b" ")?;
                write_value(w, v)?;
            }
            w.write_all(b"}")
        }
    }
}

fn write_string(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(b"\"")?;
    for c in s.chars() {
        match c {
            '"' => w.write_all(b"\\\"")?,
            '\\' => w.write_all(b"\\\\")?,
            '\n' => w.write_all(b"\\n")?,
            '\t' => w.write_all(b"\\t")?,
            '\r' => w.write_all(b"\\r")?,
            c if (c as u32) < 0x20 => write!(w, "\\u{:04x}", c as u32)?,
            c => write!(w, "{c}")?,
        }
    }
    w.write_all(b"\"")
}

/// Writes one event as one EDN map on one line, Jepsen style:
/// `{:index 0, :time 12, :type :invoke, :process 0, :f :read, :value nil}`.
pub fn write_event(w: &mut impl Write, event: &Event) -> io::Result<()> {
    let mut line = Vec::with_capacity(128);
    write!(line, "{{:index {}", event.index)?;
    if let Some(t) = event.time {
        write!(line, ", :time {t}")?;
    }
    write!(line, ", :type :{}, :process ", event.kind.as_str())?;
    match event.process {
        Process::Client(p) => write!(line, "{p}")?,
        Process::Nemesis => line.extend_from_slice(b":nemesis"),
    }
    line.extend_from_slice(b", :f ");
    if is_keyword_name(&event.f) {
        write!(line, ":{}", event.f)?;
    } else {
        write_string(&mut line, &event.f)?;
    }
    if let Some(key) = &event.key {
        line.extend_from_slice(b", :key ");
        write_value(&mut line, key)?;
    }
    line.extend_from_slice(b", :value ");
    write_value(&mut line, &event.value)?;
    if let Some(node) = &event.node {
        line.extend_from_slice(b", :node ");
        write_string(&mut line, node)?;
    }
    if let Some(error) = &event.error {
        line.extend_from_slice(b", :error ");
        write_value(&mut line, error)?;
    }
    line.extend_from_slice(b"}\n");
    w.write_all(&line)
}

/// Writes every event of a history.
pub fn write_history(w: &mut impl Write, events: &[Event]) -> io::Result<()> {
    for event in events {
        write_event(w, event)?;
    }
    Ok(())
}
