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
//! # Truncation
//!
//! A history is checked only when every line of it parsed, with one exception: the last
//! line of a history written by splitbrain's recorder, when the recorder stopped mid-write.
//! That line is dropped with a warning when all of these hold:
//!
//! * it is the last line and has no newline after it;
//! * it is a strict prefix of valid JSON (the JSON syntax is right up to where the input
//!   ends);
//! * the file is in the recorder's form: every other event gives `index` and `time`, the
//!   indexes are 0, 1, 2, … in line order (the recorder's field order puts them first), and
//!   the cut line starts as the recorder's next line would, `{"index":N,"time":` (or is cut
//!   inside that beginning).
//!
//! Anything else that does not parse is bad data, wherever it is.
//!
//! Reading is a typed pass over byte slices of an in-memory buffer (a large file streams
//! through one chunk at a time); only a line that fails it is parsed again, generically, to
//! say which field is wrong.

use super::{line_too_long, truncated_record_warning, DataError, RawEvents};
use crate::history::{Event, EventType, Process, Value};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

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
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 20;

/// Bytes read and parsed at a time when streaming a file.
const STREAM_CHUNK: usize = 8 << 20;

/// Where a non-blank line is in a chunk.
pub(crate) struct LineSpan {
    pub start: usize,
    pub end: usize,
    /// 1-based line number in the whole input.
    pub number: usize,
}

/// Marks "no index in the file" in `Event::index` between parsing and renumbering, so the
/// parsed events need no side vector (a file that writes this very index loses only the
/// order check of that one event).
pub(crate) const NO_INDEX: u64 = u64::MAX;

/// Parses one line by the fast path, else by serde; `None` when the line is malformed.
pub(crate) fn parse_line(line: &[u8]) -> Option<Event> {
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

/// Stands in for a malformed line in the output until the line is diagnosed; it allocates
/// nothing and never outlives [`Events::push_chunk`].
fn placeholder() -> Event {
    Event {
        index: NO_INDEX,
        time: None,
        process: Process::Nemesis,
        kind: EventType::Info,
        f: String::new(),
        key: None,
        value: Value::Nil,
        node: None,
        error: None,
    }
}

/// Events parsed from consecutive chunks of whole lines.
///
/// Each chunk's lines are located first (a fast newline scan), then parsed independently —
/// in parallel for large chunks — straight into the final vector: a million-operation
/// history is hundreds of megabytes of events, and copying them again would cost as much as
/// parsing.
struct Events {
    raw: RawEvents,
    /// Lines in the chunks before the current one.
    lines_before: usize,
    spans: Vec<LineSpan>,
    /// A longer line is bad data.
    max_line_bytes: usize,
}

impl Events {
    fn new(max_line_bytes: usize) -> Self {
        Events {
            raw: RawEvents::default(),
            lines_before: 0,
            spans: Vec::new(),
            max_line_bytes,
        }
    }

    /// Parses `chunk`: whole lines, of which the last may lack its newline only when
    /// `at_end` (the end of the input).
    fn push_chunk(&mut self, chunk: &[u8], at_end: bool) -> Result<(), DataError> {
        self.lines_before = line_spans(
            chunk,
            self.lines_before,
            self.max_line_bytes,
            &mut self.spans,
        )?;

        // Malformed lines are rare: parsing notes the first one and goes on; it is then
        // diagnosed, and forgiven only if it is the unfinished last line of the input.
        let first_bad = AtomicUsize::new(usize::MAX);
        let parse = |(i, span): (usize, &LineSpan)| {
            parse_line(&chunk[span.start..span.end]).unwrap_or_else(|| {
                first_bad.fetch_min(i, Ordering::Relaxed);
                placeholder()
            })
        };
        let before = self.raw.events.len();
        if chunk.len() < PARALLEL_THRESHOLD {
            self.raw
                .events
                .extend(self.spans.iter().enumerate().map(parse));
        } else {
            self.raw
                .events
                .par_extend(self.spans.par_iter().enumerate().map(parse));
        }
        let first_bad = first_bad.into_inner();
        if first_bad != usize::MAX {
            let span = &self.spans[first_bad];
            let line = &chunk[span.start..span.end];
            let unfinished = at_end && first_bad + 1 == self.spans.len() && span.end == chunk.len();
            if !(unfinished && is_recorder_truncation(line, &self.raw.events[..before + first_bad]))
            {
                return Err(malformed_line(line, span.number));
            }
            self.raw
                .warnings
                .push(truncated_record_warning(span.number));
            self.raw.events.truncate(before + first_bad);
        }
        let parsed = self.raw.events.len() - before;
        for (event, span) in self.raw.events[before..].iter().zip(&self.spans[..parsed]) {
            let given = (event.index != NO_INDEX).then_some(event.index);
            self.raw.order.note(given, span.number);
            self.raw.lines.push(span.number);
        }
        Ok(())
    }
}

/// Locates the non-blank lines of `chunk` (whole lines, the last perhaps without its
/// newline) into `spans`, numbered after `lines_before`; returns the number of the chunk's
/// last line. A line longer than `max_line_bytes` is bad data.
pub(crate) fn line_spans(
    chunk: &[u8],
    lines_before: usize,
    max_line_bytes: usize,
    spans: &mut Vec<LineSpan>,
) -> Result<usize, DataError> {
    spans.clear();
    let mut start = 0usize;
    let mut number = lines_before;
    while start < chunk.len() {
        number += 1;
        let newline = memchr::memchr(b'\n', &chunk[start..]).map(|off| start + off);
        let next = newline.map_or(chunk.len(), |n| n + 1);
        let mut end = newline.unwrap_or(chunk.len());
        if end > start && chunk[end - 1] == b'\r' {
            end -= 1;
        }
        if end - start > max_line_bytes {
            return Err(line_too_long(number, max_line_bytes));
        }
        if !chunk[start..end].iter().all(u8::is_ascii_whitespace) {
            spans.push(LineSpan { start, end, number });
        }
        start = next;
    }
    Ok(number)
}

/// The error for line `number`, which does not parse: which field is wrong and how.
pub(crate) fn malformed_line(line: &[u8], number: usize) -> DataError {
    let typed_error = serde_json::from_slice::<LineIn>(line)
        .err()
        .map_or_else(String::new, |e| e.to_string());
    diagnose(line, number, &typed_error)
}

/// Whether `line`, the unterminated last line, is a record of our recorder cut mid-write
/// (see the module documentation); `before` are the events of every line before it, with
/// their given indexes.
fn is_recorder_truncation(line: &[u8], before: &[Event]) -> bool {
    let recorded = before
        .iter()
        .enumerate()
        .all(|(i, e)| e.index == i as u64 && e.time.is_some());
    is_recorder_cut(line, before.len(), recorded)
}

/// [`is_recorder_truncation`] given the number of events before the line and whether
/// they are all in the recorder's form (index `i` on the `i`-th, a time on each).
pub(crate) fn is_recorder_cut(line: &[u8], events_before: usize, recorded: bool) -> bool {
    // Parsed into values, so that what is there must be right, numbers in range included,
    // up to where the line ends.
    let cut_json = matches!(
        serde_json::from_slice::<serde_json::Value>(line),
        Err(e) if e.classify() == serde_json::error::Category::Eof
    );
    if !cut_json {
        return false;
    }
    let beginning = format!(r#"{{"index":{},"time":"#, events_before);
    recorded && (line.starts_with(beginning.as_bytes()) || beginning.as_bytes().starts_with(line))
}

/// Reads JSON Lines from memory. Blank lines are skipped.
/// (Line lengths are the caller's to check.)
pub(crate) fn read(data: &[u8]) -> Result<RawEvents, DataError> {
    let mut events = Events::new(usize::MAX);
    events.push_chunk(data, true)?;
    Ok(events.raw)
}

/// Why a streamed read stopped.
#[derive(Debug)]
pub(crate) enum StreamError {
    Io(io::Error),
    Data(DataError),
}

/// Reads JSON Lines from `head` (the start of the input, already read) followed by the
/// rest of `input`, a chunk at a time, so that the whole file is never held in memory:
/// for a large history that saves its size in memory and the time the kernel takes to
/// provide it. `size_hint` (the input's size, when known) sizes the event vector.
/// A line longer than `max_line_bytes` is bad data.
pub(crate) fn read_stream(
    head: Vec<u8>,
    input: &mut impl io::Read,
    size_hint: u64,
    max_line_bytes: usize,
) -> Result<RawEvents, StreamError> {
    read_stream_in_chunks(head, input, size_hint, STREAM_CHUNK, max_line_bytes)
}

fn read_stream_in_chunks(
    head: Vec<u8>,
    input: &mut impl io::Read,
    size_hint: u64,
    chunk_bytes: usize,
    max_line_bytes: usize,
) -> Result<RawEvents, StreamError> {
    let mut events = Events::new(max_line_bytes);
    // About 100 bytes per line in recorded histories; an estimate too high reserves only
    // address space, one too low costs a reallocation.
    let expected_lines = usize::try_from(size_hint / 64).unwrap_or(0);
    events.raw.events.reserve(expected_lines);
    events.raw.lines.reserve(expected_lines);
    stream_chunks(&mut events, head, input, chunk_bytes, max_line_bytes)?;
    Ok(events.raw)
}

/// What takes a streamed input's lines, a chunk of whole lines at a time.
pub(crate) trait ChunkSink {
    /// Takes `chunk`: whole lines, of which the last may lack its newline only when
    /// `at_end` (the end of the input).
    fn push_chunk(&mut self, chunk: &[u8], at_end: bool) -> Result<(), DataError>;
    /// Lines taken so far.
    fn lines_before(&self) -> usize;
}

impl ChunkSink for Events {
    fn push_chunk(&mut self, chunk: &[u8], at_end: bool) -> Result<(), DataError> {
        Events::push_chunk(self, chunk, at_end)
    }
    fn lines_before(&self) -> usize {
        self.lines_before
    }
}

/// Streams `head`, then the rest of `input`, into `sink` in chunks of whole lines of about
/// [`STREAM_CHUNK`] bytes. A line longer than `max_line_bytes` is bad data.
pub(crate) fn stream_into(
    sink: &mut impl ChunkSink,
    head: Vec<u8>,
    input: &mut impl io::Read,
    max_line_bytes: usize,
) -> Result<(), StreamError> {
    stream_chunks(sink, head, input, STREAM_CHUNK, max_line_bytes)
}

fn stream_chunks(
    events: &mut impl ChunkSink,
    head: Vec<u8>,
    input: &mut impl io::Read,
    chunk_bytes: usize,
    max_line_bytes: usize,
) -> Result<(), StreamError> {
    let mut buffer = head;
    let mut chunk = chunk_bytes.max(buffer.len());
    loop {
        let wanted = chunk.saturating_sub(buffer.len()) as u64;
        let got = input
            .by_ref()
            .take(wanted)
            .read_to_end(&mut buffer)
            .map_err(StreamError::Io)?;
        if (got as u64) < wanted {
            events
                .push_chunk(&buffer, true)
                .map_err(StreamError::Data)?;
            return Ok(());
        }
        match memchr::memrchr(b'\n', &buffer) {
            Some(last) => {
                events
                    .push_chunk(&buffer[..=last], false)
                    .map_err(StreamError::Data)?;
                buffer.drain(..=last);
            }
            None if buffer.len() > max_line_bytes => {
                return Err(StreamError::Data(line_too_long(
                    events.lines_before() + 1,
                    max_line_bytes,
                )));
            }
            // A line longer than the chunk: read more of it.
            None => {
                chunk = chunk
                    .saturating_mul(2)
                    .min(max_line_bytes.saturating_add(1))
            }
        }
    }
}

/// Says which field of a line that failed the typed pass is wrong, and what it should be.
fn diagnose(line: &[u8], number: usize, typed_error: &str) -> DataError {
    let generic: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return DataError::new(number, "a JSON object (one event per line)")
                .column(e.column().max(1))
                .found(format!("invalid JSON ({})", json_error_message(&e)));
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
                // serde_json reads an integer beyond 64 bits as a float: say what it was.
                if let Some(integer) = oversized_integer(line) {
                    return DataError::new(number, "an integer of at most 64 bits")
                        .field(name)
                        .found(integer);
                }
                if v.is_f64() {
                    return field_error(
                        name,
                        "an integer, string, boolean, null, array or object (floating-point values are not supported)",
                    );
                }
                return field_error(name, &e.to_string());
            }
        }
    }
    DataError::new(number, "a valid event").found(typed_error.to_owned())
}

/// The first integer literal of a JSON line (outside strings) that does not fit in 64
/// signed bits, as written.
fn oversized_integer(line: &[u8]) -> Option<String> {
    let mut in_string = false;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < line.len() && line[i].is_ascii_digit() {
                i += 1;
            }
            let fraction_or_exponent = matches!(line.get(i), Some(b'.' | b'e' | b'E'));
            let literal = std::str::from_utf8(&line[start..i]).ok()?;
            if !fraction_or_exponent && literal.len() > 1 && literal.parse::<i64>().is_err() {
                return Some(literal.to_owned());
            }
            while i < line.len() && !matches!(line[i], b',' | b']' | b'}') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    None
}

/// serde_json's message without its position (which counts within the line alone).
fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(lines: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..lines {
            let f = ["read", "write", "cas"][i % 3];
            let value = match f {
                "read" => "null".to_owned(),
                "write" => i.to_string(),
                // A value long enough to span several small chunks.
                _ => format!("[\"{}\", {i}]", "x".repeat(i % 200)),
            };
            let kind = if i % 2 == 0 { "invoke" } else { "ok" };
            data.extend_from_slice(
                format!(
                    r#"{{"index":{i},"time":{i},"process":{},"type":"{kind}","f":"{f}","value":{value}}}"#,
                    i % 7
                )
                .as_bytes(),
            );
            data.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
            if i % 11 == 0 {
                data.extend_from_slice(b"  \n");
            }
        }
        data
    }

    fn streamed(data: &[u8], head: usize, chunk: usize) -> Result<RawEvents, StreamError> {
        let mut rest = &data[head..];
        read_stream_in_chunks(
            data[..head].to_vec(),
            &mut rest,
            data.len() as u64,
            chunk,
            usize::MAX,
        )
    }

    fn same(a: &RawEvents, b: &RawEvents) {
        assert_eq!(a.events, b.events);
        assert_eq!(a.lines, b.lines);
        assert_eq!(a.warnings, b.warnings);
        assert_eq!(a.order.unordered_line, b.order.unordered_line);
    }

    #[test]
    fn streaming_in_any_chunks_reads_what_reading_whole_reads() {
        let data = sample(500);
        let whole = read(&data).unwrap();
        assert_eq!(whole.events.len(), 500);
        for (head, chunk) in [(0, 1), (0, 64), (100, 7), (3000, 1000), (data.len(), 5)] {
            same(&streamed(&data, head, chunk).unwrap(), &whole);
        }
    }

    /// A line over the limit is bad data, whether it ends within a chunk or never ends.
    #[test]
    fn streaming_stops_at_a_line_over_the_limit() {
        let line = br#"{"process":0,"type":"invoke","f":"read","value":null}"#;
        let mut long = line.to_vec();
        long.extend_from_slice(b"\n");
        long.extend_from_slice(&vec![b' '; 500]);
        long.extend_from_slice(line);
        for (data, limit) in [
            (long.clone(), 400),
            ([long.as_slice(), b"\n"].concat(), 400),
        ] {
            let mut rest = &data[..];
            match read_stream_in_chunks(Vec::new(), &mut rest, 0, 64, limit) {
                Err(StreamError::Data(e)) => {
                    assert_eq!(e.line, 2, "{e}");
                    assert!(e.to_string().contains("at most 400 bytes"), "{e}");
                }
                other => panic!("{:?}", other.map(|r| r.events.len())),
            }
        }
        let mut endless = std::io::repeat(b'9');
        match read_stream_in_chunks(b"{\"process\":".to_vec(), &mut endless, 0, 64, 10_000) {
            Err(StreamError::Data(e)) => assert_eq!(e.line, 1, "{e}"),
            other => panic!("{:?}", other.map(|r| r.events.len())),
        }
    }

    #[test]
    fn streaming_forgives_only_an_unfinished_last_line() {
        let mut data = sample(50);
        data.extend_from_slice(br#"{"index":50,"time":50,"process":1,"type":"ok","f":"re"#);
        let whole = read(&data).unwrap();
        assert_eq!(whole.events.len(), 50);
        assert_eq!(whole.warnings.len(), 1, "{:?}", whole.warnings);
        same(&streamed(&data, 0, 100).unwrap(), &whole);

        let mut broken = sample(50);
        broken.extend_from_slice(b"{\"process\":1}\n");
        broken.extend_from_slice(&sample(50));
        let expected = read(&broken).unwrap_err();
        assert_eq!(expected.line, 50 + 5 + 1, "line of the bad event");
        match streamed(&broken, 0, 100) {
            Err(StreamError::Data(e)) => assert_eq!(e, expected),
            other => panic!("{:?}", other.map(|r| r.events.len())),
        }
    }
}
