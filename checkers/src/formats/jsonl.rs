//! splitbrain's JSON Lines history: one event per line.
//!
//! ```text
//! {"index":0,"time":1200,"process":0,"type":"invoke","f":"write","key":3,"value":7,"node":"n1"}
//! {"index":1,"time":5300,"process":0,"type":"ok","f":"write","key":3,"value":7,"node":"n1"}
//! {"index":2,"time":6000,"process":"nemesis","type":"info","f":"partition","value":"halves"}
//! ```
//!
//! Fields: `index` (optional, defaults to line order), `time` (ns, optional), `process`
//! (non-negative integer or `"nemesis"`), `type` (`invoke|ok|fail|info`), `f` (string),
//! `key` (optional, any JSON), `value` (any JSON, required; `null` for none), `node`
//! (optional string), `error` (optional, any JSON). Unknown fields are rejected. See
//! `docs/history-format.md` for the semantics.
//!
//! Reading is a typed serde pass over byte slices of one in-memory buffer; only a line that
//! fails it is parsed again, generically, to say which field is wrong.

use super::{lines, unfinished_line_warning, DataError, RawEvents};
use crate::history::{Event, EventType, Process, Value};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

/// Every field of a JSONL event, in the order the writer emits them.
pub const FIELDS: [&str; 9] = [
    "index", "time", "process", "type", "f", "key", "value", "node", "error",
];

const TYPES: &str = "one of \"invoke\", \"ok\", \"fail\", \"info\"";
const PROCESS: &str = "a non-negative integer or \"nemesis\"";

/// The `process` field: an integer or `"nemesis"`.
struct ProcessField(Process);

impl<'de> Deserialize<'de> for ProcessField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ProcessField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(PROCESS)
            }
            fn visit_u64<E>(self, p: u64) -> Result<ProcessField, E> {
                Ok(ProcessField(Process::Client(p)))
            }
            fn visit_i64<E: serde::de::Error>(self, p: i64) -> Result<ProcessField, E> {
                u64::try_from(p)
                    .map(|p| ProcessField(Process::Client(p)))
                    .map_err(|_| E::custom(format!("expected {PROCESS}, found {p}")))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ProcessField, E> {
                if s == "nemesis" {
                    Ok(ProcessField(Process::Nemesis))
                } else {
                    Err(E::custom(format!("expected {PROCESS}, found {s:?}")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn<'a> {
    index: Option<u64>,
    time: Option<u64>,
    process: ProcessField,
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(borrow)]
    f: Cow<'a, str>,
    key: Option<Value>,
    value: Value,
    #[serde(borrow)]
    node: Option<Cow<'a, str>>,
    error: Option<Value>,
}

/// Inputs smaller than this are parsed on the calling thread; larger ones in chunks in
/// parallel (splitting costs more than it saves on small files).
const PARALLEL_THRESHOLD: usize = 4 << 20;

/// Reads JSON Lines. Blank lines are skipped.
pub(crate) fn read(data: &[u8]) -> Result<RawEvents, DataError> {
    if data.len() < PARALLEL_THRESHOLD {
        return read_chunk(data, 1, true);
    }
    // Chunks end at newlines; each is parsed on its own, knowing its first line number
    // (a fast newline count), and the results are appended in order.
    let pieces = rayon::current_num_threads() * 4;
    let mut bounds = Vec::with_capacity(pieces + 1);
    bounds.push(0usize);
    for i in 1..pieces {
        let target = (data.len() * i / pieces).max(*bounds.last().unwrap_or(&0));
        match memchr::memchr(b'\n', &data[target..]) {
            Some(off) if target + off + 1 < data.len() => bounds.push(target + off + 1),
            _ => break,
        }
    }
    bounds.push(data.len());
    bounds.dedup();
    let chunks: Vec<(&[u8], bool)> = bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| (&data[w[0]..w[1]], i + 2 == bounds.len()))
        .collect();
    let first_lines: Vec<usize> = chunks
        .iter()
        .scan(1usize, |next, (chunk, _)| {
            let first = *next;
            *next += memchr::memchr_iter(b'\n', chunk).count();
            Some(first)
        })
        .collect();
    let parsed: Vec<Result<RawEvents, DataError>> = chunks
        .par_iter()
        .zip(first_lines.par_iter())
        .map(|(&(chunk, last), &first_line)| read_chunk(chunk, first_line, last))
        .collect();
    let mut raw = RawEvents::default();
    let total: usize = parsed
        .iter()
        .map(|p| p.as_ref().map_or(0, |r| r.events.len()))
        .sum();
    raw.events.reserve_exact(total);
    raw.lines.reserve_exact(total);
    raw.given_indexes.reserve_exact(total);
    for part in parsed {
        let part = part?;
        raw.events.extend(part.events);
        raw.lines.extend(part.lines);
        raw.given_indexes.extend(part.given_indexes);
        raw.warnings.extend(part.warnings);
    }
    Ok(raw)
}

/// Parses the lines of `data`, the first of which is line `first_line` of the file. Only
/// the chunk that ends the file may have an unfinished last line.
fn read_chunk(data: &[u8], first_line: usize, ends_file: bool) -> Result<RawEvents, DataError> {
    let mut raw = RawEvents::default();
    // A rough pre-size: our events are ~80–120 bytes a line.
    let estimate = data.len() / 96;
    raw.events.reserve(estimate);
    raw.lines.reserve(estimate);
    raw.given_indexes.reserve(estimate);
    for (number, line, unterminated) in lines(data) {
        let number = number + first_line - 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<LineIn>(line) {
            Ok(l) => {
                let event = Event {
                    index: 0,
                    time: l.time,
                    process: l.process.0,
                    kind: l.kind,
                    f: l.f.into_owned(),
                    key: l.key,
                    value: l.value,
                    node: l.node.map(Cow::into_owned),
                    error: l.error,
                };
                raw.push(event, number, l.index);
            }
            Err(e) => {
                let error = diagnose(line, number, &e);
                if unterminated && ends_file {
                    raw.warnings
                        .push(unfinished_line_warning(number, &error.to_string()));
                    break;
                }
                return Err(error);
            }
        }
    }
    Ok(raw)
}

/// Says which field of a line that failed the typed pass is wrong, and what it should be.
fn diagnose(line: &[u8], number: usize, typed_error: &serde_json::Error) -> DataError {
    let generic: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return DataError::new(number, "a JSON object (one event per line)")
                .found(format!("invalid JSON at column {}: {e}", e.column()));
        }
    };
    let Some(object) = generic.as_object() else {
        return DataError::new(number, "a JSON object (one event per line)")
            .found(json_kind(&generic).to_owned());
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return DataError::new(number, format!("one of the fields {}", FIELDS.join(", ")))
            .field(unknown.as_str())
            .found("an unknown field");
    }
    for required in ["process", "type", "f", "value"] {
        if !object.contains_key(required) {
            return DataError::new(number, "to be present").field(required);
        }
    }
    let field_error = |name: &str, expected: &str| {
        let found = object.get(name).map(|v| v.to_string()).unwrap_or_default();
        DataError::new(number, expected).field(name).found(found)
    };
    let non_negative = |name: &str| {
        object
            .get(name)
            .is_some_and(|v| !v.is_null() && v.as_u64().is_none())
    };
    for name in ["index", "time"] {
        if non_negative(name) {
            return field_error(name, "a non-negative integer");
        }
    }
    match &object["process"] {
        serde_json::Value::String(s) if s == "nemesis" => {}
        v if v.as_u64().is_some() => {}
        _ => return field_error("process", PROCESS),
    }
    if !object["type"]
        .as_str()
        .is_some_and(|t| ["invoke", "ok", "fail", "info"].contains(&t))
    {
        return field_error("type", TYPES);
    }
    if !object["f"].is_string() {
        return field_error("f", "a string");
    }
    if object.get("node").is_some_and(|n| !n.is_null() && !n.is_string()) {
        return field_error("node", "a string");
    }
    for name in ["key", "value", "error"] {
        if let Some(v) = object.get(name) {
            if let Err(e) = serde_json::from_value::<Value>(v.clone()) {
                return field_error(name, &e.to_string());
            }
        }
    }
    DataError::new(number, "a valid event").found(typed_error.to_string())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[derive(Serialize)]
struct LineOut<'a> {
    index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
    process: ProcessOut,
    #[serde(rename = "type")]
    kind: EventType,
    f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a Value>,
    value: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Value>,
}

struct ProcessOut(Process);

impl Serialize for ProcessOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Process::Client(p) => s.serialize_u64(p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

/// Writes one event as one line (with its `\n`). Writes whole lines only, so a reader of
/// a file that is being appended to sees at most one unfinished line.
pub fn write_event(w: &mut impl Write, event: &Event) -> io::Result<()> {
    let out = LineOut {
        index: event.index,
        time: event.time,
        process: ProcessOut(event.process),
        kind: event.kind,
        f: &event.f,
        key: event.key.as_ref(),
        value: &event.value,
        node: event.node.as_deref(),
        error: event.error.as_ref(),
    };
    let mut line = serde_json::to_vec(&out).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// Writes every event of a history.
pub fn write_history(w: &mut impl Write, events: &[Event]) -> io::Result<()> {
    for event in events {
        write_event(w, event)?;
    }
    Ok(())
}
