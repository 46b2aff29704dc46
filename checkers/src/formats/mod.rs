//! Readers and writers of histories.
//!
//! Three formats are read, each into the same [`History`]:
//!
//! * [`jsonl`] — splitbrain's own JSON Lines, one event per line (also written);
//! * [`edn`] — Jepsen's EDN: one op map per line (Jepsen, Porcupine's kv files), tagged
//!   records (`#jepsen.history.Op{…}`, Jepsen 0.3), or one vector of op maps (Knossos' data
//!   files) (also written);
//! * [`jepsen_log`] — the `INFO  jepsen.util - <process> <type> <f> <value>` lines of
//!   Jepsen's logs, as in Porcupine's etcd corpus.
//!
//! [`read_file`] detects the format from the content unless told, applies Jepsen's
//! *independent* tuples (`[key value]` values → keyed events) when asked or when the history
//! unambiguously uses them, and renumbers event indexes densely in file order. Malformed
//! input is a [`ReadError`] naming the file, the 1-based line (and column, for syntax
//! errors), the field and what was expected. The one thing forgiven is a *truncated* last
//! record of a history our own recorder wrote (see [`jsonl`]): it is dropped with a warning.
//! Nothing else is ever skipped or repaired.
//!
//! Reading is bounded: a line (or, in EDN, one top-level form) longer than
//! [`ReadOptions::max_line_bytes`] (default [`MAX_LINE_BYTES`]) is bad data, found while
//! reading, so an endless line such as `/dev/zero` ends in an error after that many bytes;
//! every recursive reader stops at a nesting depth (EDN: [`edn::MAX_DEPTH`]).

pub mod edn;
pub(crate) mod edn_txn;
pub mod jepsen_log;
pub mod jsonl;
pub(crate) mod jsonl_fast;
pub(crate) mod txn_fast;

use crate::history::{Event, EventType, History, Process, Value};
use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// splitbrain's JSON Lines.
    Jsonl,
    /// Jepsen EDN (op maps, tagged records, or a vector of op maps).
    Edn,
    /// Jepsen log lines (`INFO  jepsen.util - …`).
    JepsenLog,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Jsonl, Format::Edn, Format::JepsenLog];

    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        }
    }

    /// Guesses the format from the content: a JSON object on the first line, or `{`
    /// followed by a string → jsonl; `{` otherwise → EDN; a `jepsen.util - ` line in the first megabyte → Jepsen log; `[`,
    /// `(`, `#` or `;` first → EDN. `None` when none applies (including an empty input).
    pub fn detect(data: &[u8]) -> Option<Format> {
        let start = data.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &data[start..];
        let head = &data[..data.len().min(DETECTION_WINDOW)];
        match rest[0] {
            b'{' => {
                let line_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                let first_line = &rest[..line_end];
                // Op maps in EDN have keyword keys; a string key after `{` is JSON (perhaps
                // broken, which the JSON reader then explains).
                let string_key = rest[1..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|&b| b == b'"');
                if string_key || serde_json::from_slice::<serde::de::IgnoredAny>(first_line).is_ok()
                {
                    Some(Format::Jsonl)
                } else {
                    Some(Format::Edn)
                }
            }
            // Log lines may start with anything (a timestamp in brackets, say), so the
            // marker is looked for before the EDN openers.
            _ if memchr::memmem::find(head, jepsen_log::MARKER.as_bytes()).is_some() => {
                Some(Format::JepsenLog)
            }
            b'[' | b'(' | b'#' | b';' => Some(Format::Edn),
            _ => None,
        }
    }
}

/// How far into the content format detection looks for a Jepsen log marker.
const DETECTION_WINDOW: usize = 1 << 20;

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown format `{s}`; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// How to treat Jepsen's independent tuples (`:value [key value]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Independent {
    /// Split tuples only when the history unambiguously uses them (EDN and log formats):
    /// every client invocation's value is a 2-vector, and every cas's inner value is itself
    /// a 2-vector. Our JSONL has real keys and is never split automatically.
    #[default]
    Auto,
    /// Every client invocation's value must be a `[key value]` tuple.
    Force,
    /// Never split.
    Off,
}

/// The longest line (or EDN top-level form) read by default: 256 MiB.
pub const MAX_LINE_BYTES: usize = 256 << 20;

/// The largest regular file read by default: 16 GiB.
pub const MAX_FILE_BYTES: u64 = 16 << 30;
/// The most read by default from an input that is not a regular file (a pipe, a device):
/// 1 GiB, so that an endless pipe of short lines ends in bad data within seconds rather
/// than filling the memory.
pub const MAX_STREAM_BYTES: u64 = 1 << 30;

/// How to read a history.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// `None` detects the format from the content.
    pub format: Option<Format>,
    pub independent: Independent,
    /// A longer line, or EDN top-level form, is bad data (default [`MAX_LINE_BYTES`]).
    pub max_line_bytes: usize,
    /// A larger input is bad data; `None` means [`MAX_FILE_BYTES`] for a regular file and
    /// [`MAX_STREAM_BYTES`] for anything else.
    pub max_input_bytes: Option<u64>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            independent: Independent::default(),
            max_line_bytes: MAX_LINE_BYTES,
            max_input_bytes: None,
        }
    }
}

/// A history as read, with what the reader noticed along the way.
#[derive(Debug, Clone)]
pub struct ReadOutput {
    pub history: History,
    /// The format that was read (detected or forced).
    pub format: Format,
    /// Things worth telling the user that did not stop the reading (a dropped unfinished
    /// last line, operations that never completed, indexes out of order, …).
    pub warnings: Vec<String>,
    /// The 1-based line where each event starts (parallel to `history.events`), so that
    /// later errors about an event can point into the file.
    pub lines: Vec<usize>,
    /// Whether independent tuples were split into keys.
    pub independent: bool,
}

impl ReadOutput {
    /// The 1-based file line of the event at `index`, when known.
    pub fn line_of(&self, index: u64) -> Option<usize> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.lines.get(i).copied())
    }
}

/// Malformed content, located: the 1-based line (and byte column, when known), the field
/// (when one is at fault) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}{}: {}expected {expected}{}", column_suffix(.column), field_prefix(.field), found_suffix(.found))]
pub struct DataError {
    pub line: usize,
    /// The 1-based byte column in the line, for syntax errors.
    pub column: Option<usize>,
    /// The field as written in the format (`type`, `:process`, …), when one is at fault.
    pub field: Option<String>,
    pub expected: String,
    /// What was there instead, when it helps.
    pub found: Option<String>,
}

fn column_suffix(column: &Option<usize>) -> String {
    column.map_or_else(String::new, |c| format!(":{c}"))
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_ref()
        .map_or_else(String::new, |f| format!("field {f}: "))
}

fn found_suffix(found: &Option<String>) -> String {
    found
        .as_ref()
        .map_or_else(String::new, |f| format!(", found {f}"))
}

impl DataError {
    pub fn new(line: usize, expected: impl Into<String>) -> Self {
        DataError {
            line,
            column: None,
            field: None,
            expected: expected.into(),
            found: None,
        }
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }
    pub fn column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }
}

/// Why a history file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot tell the history format (expected JSON Lines, Jepsen EDN or Jepsen log lines); name it with --format", .path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}:{error}", .path.display())]
    Data {
        path: PathBuf,
        #[source]
        error: DataError,
    },
}

/// Events as a reader produced them, before the common post-processing.
#[derive(Debug, Default)]
pub(crate) struct RawEvents {
    pub events: Vec<Event>,
    /// 1-based line of each event.
    pub lines: Vec<usize>,
    /// Whether the file's own indexes increase.
    pub order: IndexOrder,
    pub warnings: Vec<String>,
}

impl RawEvents {
    pub fn push(&mut self, event: Event, line: usize, given_index: Option<u64>) {
        self.order.note(given_index, line);
        self.events.push(event);
        self.lines.push(line);
    }
}

/// Tracks whether the indexes a file gives increase.
#[derive(Debug, Default)]
pub(crate) struct IndexOrder {
    /// The line of the first event whose given index is not above the previous one.
    pub unordered_line: Option<usize>,
    last: Option<u64>,
}

impl IndexOrder {
    pub fn note(&mut self, given_index: Option<u64>, line: usize) {
        if let Some(given) = given_index {
            if self.unordered_line.is_none() && self.last.is_some_and(|p| given <= p) {
                self.unordered_line = Some(line);
            }
            self.last = Some(given);
        }
    }
}

/// JSON Lines files at least this large are streamed (see [`jsonl`]); smaller ones, and
/// the other formats, are read whole.
const STREAM_THRESHOLD: u64 = 16 << 20;
/// How much of a streamed file is read before its format is detected: enough for
/// [`Format::detect`] to see what it would see in the whole file.
const HEAD_BYTES: u64 = 2 * DETECTION_WINDOW as u64;

/// Reads a history file.
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<ReadOutput, ReadError> {
    let mut opened = open(path, opts, STREAM_THRESHOLD)?;
    if opened.streamable {
        let head = std::mem::take(&mut opened.head);
        let raw = jsonl::read_stream(head, &mut opened.file, opened.size, opts.max_line_bytes)
            .map_err(|e| stream_error(path, e))?;
        return finish(raw, Format::Jsonl, opts.independent)
            .map_err(|error| bytes_error(path, BytesError::Data(error)));
    }
    read_whole(path, opened, opts)
}

/// A history file opened, its beginning read when it may be streamed.
pub(crate) struct Opened {
    /// The rest of the file, bounded by the input limit.
    pub file: std::io::Take<std::fs::File>,
    /// The first bytes (up to [`HEAD_BYTES`]), when read.
    pub head: Vec<u8>,
    /// The file's size (0 for what is not a regular file).
    pub size: u64,
    max_input: u64,
    /// Whether the content is JSON Lines that may be read a chunk at a time.
    pub streamable: bool,
}

fn io_error(path: &Path, source: std::io::Error) -> ReadError {
    ReadError::Io {
        path: path.to_owned(),
        source,
    }
}

fn bytes_error(path: &Path, e: BytesError) -> ReadError {
    match e {
        BytesError::UnknownFormat => ReadError::UnknownFormat {
            path: path.to_owned(),
        },
        BytesError::Data(error) => ReadError::Data {
            path: path.to_owned(),
            error,
        },
    }
}

pub(crate) fn stream_error(path: &Path, e: jsonl::StreamError) -> ReadError {
    match e {
        jsonl::StreamError::Io(source) => io_error(path, source),
        jsonl::StreamError::Data(error) => bytes_error(path, BytesError::Data(error)),
    }
}

/// Opens a history file, checks its size against the input limit, and — when it is at
/// least `stream_threshold` bytes and may be JSON Lines — reads its beginning to tell
/// whether it can be streamed.
pub(crate) fn open(
    path: &Path,
    opts: &ReadOptions,
    stream_threshold: u64,
) -> Result<Opened, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let metadata = file.metadata().map_err(|e| io_error(path, e))?;
    let size = metadata.len();
    let max_input = opts.max_input_bytes.unwrap_or(if metadata.is_file() {
        MAX_FILE_BYTES
    } else {
        MAX_STREAM_BYTES
    });
    if metadata.is_file() && size > max_input {
        return Err(bytes_error(
            path,
            BytesError::Data(input_too_large(1, max_input)),
        ));
    }
    let mut file = file.take(max_input.saturating_add(1));
    let mut head = Vec::new();
    let mut streamable = false;
    if size >= stream_threshold && matches!(opts.format, None | Some(Format::Jsonl)) {
        (&mut file)
            .take(HEAD_BYTES)
            .read_to_end(&mut head)
            .map_err(|e| io_error(path, e))?;
        // Detection needs the whole first line; a head without one is read whole instead.
        streamable = memchr::memchr(b'\n', &head).is_some()
            && !head.iter().all(u8::is_ascii_whitespace)
            && opts.format.or_else(|| Format::detect(&head)) == Some(Format::Jsonl);
    }
    Ok(Opened {
        file,
        head,
        size,
        max_input,
        streamable,
    })
}

/// Reads the rest of an opened file into memory, then the whole of it.
pub(crate) fn read_whole(
    path: &Path,
    mut opened: Opened,
    opts: &ReadOptions,
) -> Result<ReadOutput, ReadError> {
    read_bounded(
        &mut opened.file,
        &mut opened.head,
        opts.max_line_bytes,
        opened.max_input,
    )
    .map_err(|e| stream_error(path, e))?;
    read_bytes(&opened.head, opts).map_err(|e| bytes_error(path, e))
}

/// Bytes read at a time by [`read_bounded`].
const READ_CHUNK: usize = 1 << 20;

/// Follows line lengths through an input read piecewise; a line longer than the limit is
/// a [`DataError`] as soon as that many of its bytes are seen.
struct LineLimit {
    limit: usize,
    /// Lines completed so far.
    lines: usize,
    /// Offset of the current line's first byte.
    line_start: usize,
    /// Offset up to which the input has been looked at.
    seen: usize,
}

impl LineLimit {
    fn new(limit: usize) -> Self {
        LineLimit {
            limit,
            lines: 0,
            line_start: 0,
            seen: 0,
        }
    }

    /// Looks at `data[self.seen..]`, `data` being the input so far.
    fn scan(&mut self, data: &[u8]) -> Result<(), DataError> {
        for newline in memchr::memchr_iter(b'\n', &data[self.seen..]) {
            let end = self.seen + newline;
            self.check(end - self.line_start)?;
            self.lines += 1;
            self.line_start = end + 1;
        }
        self.seen = data.len();
        self.check(data.len() - self.line_start)
    }

    fn check(&self, length: usize) -> Result<(), DataError> {
        if length > self.limit {
            Err(line_too_long(self.lines + 1, self.limit))
        } else {
            Ok(())
        }
    }
}

/// The error for an input over the limit, found at `line`.
pub(crate) fn input_too_large(line: usize, limit: u64) -> DataError {
    DataError::new(
        line,
        format!("an input of at most {limit} bytes (--max-input-size)"),
    )
    .found("more (an endless input such as a pipe that never ends, or not a history)")
}

/// The error for a line over the limit.
pub(crate) fn line_too_long(line: usize, limit: usize) -> DataError {
    DataError::new(line, format!("a line of at most {limit} bytes"))
        .found("a longer line (an endless input such as /dev/zero, or not a history)")
}

/// Reads `input` to its end after `buffer`, failing as soon as a line exceeds `limit` or
/// the whole input exceeds `max_input`.
fn read_bounded(
    input: &mut impl Read,
    buffer: &mut Vec<u8>,
    limit: usize,
    max_input: u64,
) -> Result<(), jsonl::StreamError> {
    let mut lines = LineLimit::new(limit);
    lines.scan(buffer).map_err(jsonl::StreamError::Data)?;
    loop {
        let got = input
            .by_ref()
            .take(READ_CHUNK as u64)
            .read_to_end(buffer)
            .map_err(jsonl::StreamError::Io)?;
        lines.scan(buffer).map_err(jsonl::StreamError::Data)?;
        if buffer.len() as u64 > max_input {
            return Err(jsonl::StreamError::Data(input_too_large(
                lines.lines + 1,
                max_input,
            )));
        }
        if got == 0 {
            return Ok(());
        }
    }
}

/// Why in-memory content could not be read (no file name to give).
#[derive(Debug, thiserror::Error)]
pub enum BytesError {
    #[error("cannot tell the history format")]
    UnknownFormat,
    #[error(transparent)]
    Data(#[from] DataError),
}

/// Reads a history from memory.
pub fn read_bytes(data: &[u8], opts: &ReadOptions) -> Result<ReadOutput, BytesError> {
    LineLimit::new(opts.max_line_bytes).scan(data)?;
    let format = match opts.format {
        Some(f) => f,
        None if data.iter().all(u8::is_ascii_whitespace) => {
            // An empty file is an empty history in every format; say so rather than fail
            // format detection.
            return Ok(ReadOutput {
                history: History::default(),
                format: Format::Jsonl,
                warnings: vec!["the history is empty".to_owned()],
                lines: Vec::new(),
                independent: false,
            });
        }
        None => Format::detect(data).ok_or(BytesError::UnknownFormat)?,
    };
    let raw = match format {
        Format::Jsonl => jsonl::read(data)?,
        Format::Edn => edn::read(data, opts.max_line_bytes)?,
        Format::JepsenLog => jepsen_log::read(data)?,
    };
    Ok(finish(raw, format, opts.independent)?)
}

/// Post-processing common to every reader: independent tuples, dense indexes, warnings.
fn finish(
    mut raw: RawEvents,
    format: Format,
    independent: Independent,
) -> Result<ReadOutput, DataError> {
    let split = match independent {
        Independent::Force => true,
        Independent::Off => false,
        Independent::Auto => format != Format::Jsonl && looks_independent(&raw.events),
    };
    if split {
        split_independent(&mut raw.events, &raw.lines)?;
    }

    if let Some(line) = raw.order.unordered_line {
        raw.warnings.push(format!(
            "line {line}: the file's indexes are not increasing; events are kept in file order (taken as real-time order) and renumbered"
        ));
    }
    for (i, event) in raw.events.iter_mut().enumerate() {
        event.index = i as u64;
    }

    let never_completed = count_never_completed(&raw.events);
    if never_completed > 0 {
        raw.warnings.push(format!(
            "{never_completed} operation(s) never completed; they are indeterminate, like info"
        ));
    }
    if raw.events.is_empty() {
        raw.warnings.push("the history is empty".to_owned());
    }

    Ok(ReadOutput {
        history: History::new(raw.events),
        format,
        warnings: raw.warnings,
        lines: raw.lines,
        independent: split,
    })
}

/// A 2-element list, the shape of an independent tuple.
fn as_pair(value: &Value) -> Option<(&Value, &Value)> {
    match value.as_list() {
        Some([k, v]) => Some((k, v)),
        _ => None,
    }
}

/// True only when splitting is unambiguous: there is at least one client invocation, no
/// event has a key already, every client invocation's value is `[k v]`, and every cas's
/// `v` is itself `[expected new]` (a plain cas-register's cas is a 2-vector too, so a
/// history of cas alone must show the nested shape).
fn looks_independent(events: &[Event]) -> bool {
    let mut invocations = 0usize;
    for e in events {
        if e.key.is_some() {
            return false;
        }
        if e.kind != EventType::Invoke || e.process == Process::Nemesis {
            continue;
        }
        invocations += 1;
        let Some((_, inner)) = as_pair(&e.value) else {
            return false;
        };
        if e.f == "cas" && as_pair(inner).is_none() {
            return false;
        }
    }
    invocations > 0
}

/// Turns `[k v]` values of client events into key `k`, value `v`. A completion whose value
/// is not a tuple (e.g. `:timed-out`) takes the key of its invocation.
fn split_independent(events: &mut [Event], lines: &[usize]) -> Result<(), DataError> {
    let mut open_keys: HashMap<u64, Value> = HashMap::default();
    for (event, &line) in events.iter_mut().zip(lines) {
        let Process::Client(process) = event.process else {
            continue;
        };
        if event.key.is_some() {
            return Err(DataError::new(
                line,
                "no key when values are independent [key value] tuples",
            )
            .field("key")
            .found(
                event
                    .key
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ));
        }
        let value = std::mem::take(&mut event.value);
        match (event.kind, value) {
            (kind, Value::List(mut pair)) if pair.len() == 2 => {
                let inner = pair.pop().unwrap_or_default();
                let key = pair.pop().unwrap_or_default();
                if kind == EventType::Invoke {
                    open_keys.insert(process, key.clone());
                } else if let Some(open) = open_keys.remove(&process) {
                    if open != key {
                        return Err(DataError::new(
                            line,
                            format!("the key of the invocation, {open}"),
                        )
                        .field("value")
                        .found(format!("key {key}")));
                    }
                }
                event.key = Some(key);
                event.value = inner;
            }
            (EventType::Invoke, other) => {
                return Err(DataError::new(line, "an independent [key value] tuple")
                    .field("value")
                    .found(other.to_string()));
            }
            (_, other) => match open_keys.remove(&process) {
                Some(key) => {
                    event.key = Some(key);
                    event.value = other;
                }
                None => {
                    return Err(DataError::new(
                        line,
                        "an independent [key value] tuple (the completion has no invocation to take its key from)",
                    )
                    .field("value")
                    .found(other.to_string()));
                }
            },
        }
    }
    Ok(())
}

fn count_never_completed(events: &[Event]) -> usize {
    let mut open: HashMap<u64, bool> = HashMap::default();
    let mut abandoned = 0usize;
    for e in events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            if open.insert(p, true) == Some(true) {
                abandoned += 1;
            }
        } else {
            open.insert(p, false);
        }
    }
    abandoned + open.values().filter(|&&o| o).count()
}

/// Splits `data` into lines (without their `\n`, and without a `\r` before it), with their
/// 1-based numbers, and reports whether the last line is unterminated.
pub(crate) fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8], bool)> {
    let mut start = 0usize;
    let mut number = 0usize;
    std::iter::from_fn(move || {
        if start >= data.len() {
            return None;
        }
        number += 1;
        let (end, next, terminated) = match memchr::memchr(b'\n', &data[start..]) {
            Some(off) => (start + off, start + off + 1, true),
            None => (data.len(), data.len(), false),
        };
        let mut line = &data[start..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        start = next;
        Some((number, line, !terminated))
    })
}

/// The warning for a dropped truncated last record.
pub(crate) fn truncated_record_warning(line: usize) -> String {
    format!("line {line}: unfinished last line dropped: a record of splitbrain's recorder cut mid-write (the recorder probably stopped while writing it)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON Lines file large enough to be streamed reads exactly as the same bytes read
    /// whole, including an unfinished last line.
    #[test]
    fn a_streamed_file_reads_like_the_same_bytes_in_memory() {
        let node = "n".repeat(1000);
        let mut data = Vec::new();
        let mut op = 0u64;
        while (data.len() as u64) < STREAM_THRESHOLD + HEAD_BYTES {
            for kind in ["invoke", "ok"] {
                data.extend_from_slice(
                    format!(
                        r#"{{"index":{},"time":{op},"process":{},"type":"{kind}","f":"write","key":{},"value":{op},"node":"{node}"}}"#,
                        2 * op + u64::from(kind == "ok"),
                        op % 5,
                        op % 3
                    )
                    .as_bytes(),
                );
                data.push(b'\n');
            }
            op += 1;
        }
        data.extend_from_slice(
            format!(r#"{{"index":{},"time":1,"process":1,"type":"invo"#, 2 * op).as_bytes(),
        );
        let path = std::env::temp_dir().join(format!(
            "splitbrain-streamed-read-{}.jsonl",
            std::process::id()
        ));
        std::fs::write(&path, &data).unwrap();
        let from_file = read_file(&path, &ReadOptions::default());
        std::fs::remove_file(&path).unwrap();
        let from_file = from_file.unwrap();
        let in_memory = read_bytes(&data, &ReadOptions::default()).unwrap();
        assert_eq!(from_file.format, Format::Jsonl);
        assert_eq!(from_file.history.events.len(), 2 * op as usize);
        assert_eq!(from_file.history, in_memory.history);
        assert_eq!(from_file.lines, in_memory.lines);
        assert_eq!(from_file.warnings, in_memory.warnings);
        assert!(from_file.warnings[0].contains("unfinished last line"));
    }
}
