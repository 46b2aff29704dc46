//! Jepsen log lines, as in Porcupine's etcd corpus:
//!
//! ```text
//! INFO  jepsen.util - 2   :invoke :cas    [3 0]
//! INFO  jepsen.util - 13  :info   :cas    :timed-out
//! ```
//!
//! (usually with tabs between the fields). After the `jepsen.util - ` marker come the
//! process (integer or `:nemesis`), the type, the function and the value, separated by
//! tabs or runs of spaces; the value is EDN (`nil`, integers, `[3 0]`, `:timed-out`) and
//! may itself contain spaces. An optional second EDN
//! form after the value is taken as the op's error.
//!
//! A log holds other lines too (messages of other namespaces, stack traces, blank lines);
//! they are ignored, and their number is reported as a warning. But a line that looks like
//! an op — a process, then `:invoke`, `:ok`, `:fail` or `:info`, then a keyword, as
//! whitespace-separated tokens — without the exact marker before it is bad data: a damaged
//! marker (`jepsen.utll - `, `jepsen.util- `) must not make an op disappear.

use super::edn::{to_value, Parser};
use super::{lines, DataError, RawEvents};
use crate::history::{Event, EventType, Process, Value};

/// Characters that cannot be part of a keyword's name.
const KEYWORD_DELIMITERS: &[char] = &['(', ')', '[', ']', '{', '}', '"', ';', ',', '\\'];

/// What marks an op line.
pub const MARKER: &str = "jepsen.util - ";

pub(crate) fn read(data: &[u8]) -> Result<RawEvents, DataError> {
    let mut raw = RawEvents::default();
    let finder = memchr::memmem::Finder::new(MARKER.as_bytes());
    // Every op line must parse, the last one too: a log cut mid-line is bad data.
    let mut ignored = 0usize;
    let mut first_ignored = None;
    for (number, line, _) in lines(data) {
        let Some(at) = finder.find(line) else {
            if let Some(column) = op_shaped(line) {
                return Err(DataError::new(
                    number,
                    format!("the marker `{MARKER}` before an op (process, type, function, value)"),
                )
                .column(column)
                .found("an op line without it"));
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                ignored += 1;
                first_ignored.get_or_insert(number);
            }
            continue;
        };
        let fields_at = at + MARKER.len();
        let event = parse_op(&line[fields_at..], number).map_err(|mut e| {
            // Columns within the fields become columns within the line.
            e.column = e.column.map(|c| c + fields_at);
            e
        })?;
        raw.push(event, number, None);
    }
    if let Some(first) = first_ignored {
        raw.warnings.push(format!(
            "{ignored} line(s) without the `{MARKER}` marker ignored as log messages (the first is line {first})"
        ));
    }
    Ok(raw)
}

/// The 1-based column where an op starts in a line that looks like one: a process token
/// (integer or `:nemesis`), a type token and a keyword, separated by whitespace.
fn op_shaped(line: &[u8]) -> Option<usize> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && !line[i].is_ascii_whitespace() {
            i += 1;
        }
        tokens.push((start, &line[start..i]));
    }
    tokens.windows(3).find_map(|w| {
        let [(at, process), (_, kind), (_, f)] = w else {
            return None;
        };
        let is_process = *process == b":nemesis"
            || (!process.is_empty() && process.iter().all(u8::is_ascii_digit));
        let is_type = [&b":invoke"[..], b":ok", b":fail", b":info"].contains(kind);
        (is_process && is_type && f.len() > 1 && f[0] == b':').then_some(at + 1)
    })
}

/// Splits off the next whitespace-separated token.
fn token(rest: &[u8]) -> (&[u8], &[u8]) {
    let start = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let rest = &rest[start..];
    let end = rest
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(rest.len());
    (&rest[..end], &rest[end..])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_op(fields: &[u8], line: usize) -> Result<Event, DataError> {
    let (process, rest) = token(fields);
    let process = match process {
        b":nemesis" => Process::Nemesis,
        p => std::str::from_utf8(p)
            .ok()
            .and_then(|p| p.parse::<u64>().ok())
            .map(Process::Client)
            .ok_or_else(|| {
                DataError::new(line, "a non-negative integer or :nemesis")
                    .field("process")
                    .found(format!("`{}`", text(p)))
            })?,
    };
    let (kind, rest) = token(rest);
    let kind = match kind {
        b":invoke" => EventType::Invoke,
        b":ok" => EventType::Ok,
        b":fail" => EventType::Fail,
        b":info" => EventType::Info,
        other => {
            return Err(DataError::new(line, "one of :invoke, :ok, :fail, :info")
                .field("type")
                .found(format!("`{}`", text(other))))
        }
    };
    let (f, rest) = token(rest);
    let f = match f.strip_prefix(b":").map(std::str::from_utf8) {
        // A keyword's name has no EDN delimiter in it.
        Some(Ok(name)) if !name.is_empty() && !name.contains(KEYWORD_DELIMITERS) => name.to_owned(),
        _ => {
            return Err(DataError::new(line, "a keyword such as :read")
                .field("f")
                .found(format!("`{}`", text(f))))
        }
    };
    let (value, error) = parse_value_and_error(fields, rest, line)?;
    Ok(Event {
        index: 0,
        time: None,
        process,
        kind,
        f,
        key: None,
        value,
        node: None,
        error,
    })
}

/// The value (required) and an optional error form after it.
fn parse_value_and_error(
    fields: &[u8],
    rest: &[u8],
    line: usize,
) -> Result<(Value, Option<Value>), DataError> {
    let offset = fields.len() - rest.len();
    let located = |mut e: DataError| {
        // The parser counts lines and columns within the fragment; a value is on one line.
        e.line = line;
        e.column = e.column.map(|c| c + offset);
        e
    };
    let mut parser = Parser::new(rest);
    let value_form = match parser.next_form().map_err(|e| located(e.error))? {
        Some(form) => form,
        None => {
            return Err(
                DataError::new(line, "an EDN value such as nil, 3, [3 0] or :timed-out")
                    .field("value")
                    .found("nothing"),
            )
        }
    };
    let value = to_value(&value_form, Some("value")).map_err(located)?;
    let error = match parser.next_form().map_err(|e| located(e.error))? {
        None => None,
        Some(form) => match to_value(&form, Some("error")).map_err(located)? {
            Value::Nil => None,
            v => Some(v),
        },
    };
    if parser.next_form().map_err(|e| located(e.error))?.is_some() {
        return Err(
            DataError::new(line, "at most a value and an error after the function")
                .found("more fields"),
        );
    }
    Ok((value, error))
}
