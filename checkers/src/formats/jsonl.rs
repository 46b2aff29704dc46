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

use super::{unfinished_line_warning, DataError, RawEvents};
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

impl LineIn<'_> {
    fn into_event(self) -> Event {
        Event {
            index: 0,
            time: self.time,
            process: self.process.0,
            kind: self.kind,
            f: self.f.into_owned(),
            key: self.key,
            value: self.value,
            node: self.node.map(Cow::into_owned),
            error: self.error,
        }
    }
}

/// The serde path alone, for comparing the fast path against it.
#[cfg(test)]
pub(crate) fn read_serde_only(line: &[u8]) -> Option<Event> {
    serde_json::from_slice::<LineIn>(line)
        .ok()
        .map(LineIn::into_event)
}

/// Inputs smaller than this are parsed on the calling thread; larger ones line by line in
/// parallel (waking the thread pool costs more than it saves on small files).
const PARALLEL_THRESHOLD: usize = 1 << 20;

/// Where a non-blank line is in the input.
struct LineSpan {
    start: usize,
    end: usize,
    /// 1-based line number.
    number: usize,
}

/// Marks "no index in the file" in `Event::index` between parsing and renumbering, so the
/// parsed events need no side vector (a file that writes this very index loses only the
/// order check of that one event).
const NO_INDEX: u64 = u64::MAX;

/// Parses one line by the fast path, else by serde; `None` when the line is malformed.
fn parse_line(line: &[u8]) -> Option<Event> {
    let (mut event, index) = match super::jsonl_fast::parse_line(line) {
        Some(parsed) => parsed,
        None => {
            let l = serde_json::from_slice::<LineIn>(line).ok()?;
            let index = l.index;
            (l.into_event(), index)
        }
    };
    event.index = index.unwrap_or(NO_INDEX);
    Some(event)
}

/// Reads JSON Lines. Blank lines are skipped.
///
/// Lines are located first (a fast newline scan), then parsed independently — in parallel
/// for large inputs — straight into the final vector: a million-operation history is
/// hundreds of megabytes of events, and copying them again would cost as much as parsing.
pub(crate) fn read(data: &[u8]) -> Result<RawEvents, DataError> {
    let mut spans = Vec::with_capacity(data.len() / 96);
    let mut start = 0usize;
    let mut number = 0usize;
    while start < data.len() {
        number += 1;
        let newline = memchr::memchr(b'\n', &data[start..]).map(|off| start + off);
        let next = newline.map_or(data.len(), |n| n + 1);
        let mut end = newline.unwrap_or(data.len());
        if end > start && data[end - 1] == b'\r' {
            end -= 1;
        }
        if !data[start..end].iter().all(u8::is_ascii_whitespace) {
            spans.push(LineSpan { start, end, number });
        }
        start = next;
    }
    let parse = |span: &LineSpan| parse_line(&data[span.start..span.end]);
    let parsed: Vec<Option<Event>> = if data.len() < PARALLEL_THRESHOLD {
        spans.iter().map(parse).collect()
    } else {
        let mut parsed = Vec::new();
        spans.par_iter().map(parse).collect_into_vec(&mut parsed);
        parsed
    };

    let mut raw = RawEvents::default();
    // Malformed lines are rare: find the first, diagnose it, and forgive it only if it is
    // the unfinished last line of the file.
    if let Some(bad) = parsed.iter().position(Option::is_none) {
        let span = &spans[bad];
        let line = &data[span.start..span.end];
        let typed_error = serde_json::from_slice::<LineIn>(line)
            .err()
            .map_or_else(String::new, |e| e.to_string());
        let error = diagnose(line, span.number, &typed_error);
        let unfinished = bad + 1 == spans.len() && span.end == data.len();
        if !unfinished {
            return Err(error);
        }
        raw.warnings
            .push(unfinished_line_warning(span.number, &error.to_string()));
    }
    // The only `None` left is the unfinished last line, so stopping there keeps every
    // event. `map_while` (unlike `flatten`) collects in place: the option uses a niche of
    // `Event`, so no second buffer of hundreds of megabytes is allocated and filled.
    raw.events = parsed.into_iter().map_while(|event| event).collect();
    raw.lines = spans
        .iter()
        .take(raw.events.len())
        .map(|s| s.number)
        .collect();
    for (event, &line) in raw.events.iter().zip(&raw.lines) {
        let given = (event.index != NO_INDEX).then_some(event.index);
        raw.order.note(given, line);
    }
    Ok(raw)
}

/// Says which field of a line that failed the typed pass is wrong, and what it should be.
fn diagnose(line: &[u8], number: usize, typed_error: &str) -> DataError {
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
    if object
        .get("node")
        .is_some_and(|n| !n.is_null() && !n.is_string())
    {
        return field_error("node", "a string");
    }
    for name in ["key", "value", "error"] {
        if let Some(v) = object.get(name) {
            if let Err(e) = serde_json::from_value::<Value>(v.clone()) {
                return field_error(name, &e.to_string());
            }
        }
    }
    DataError::new(number, "a valid event").found(typed_error.to_owned())
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
