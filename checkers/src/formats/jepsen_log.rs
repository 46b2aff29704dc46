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
//! form after the value is taken as the op's error. Every other line is ignored.

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
    for (number, line, _) in lines(data) {
        let Some(at) = finder.find(line) else {
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
    Ok(raw)
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
