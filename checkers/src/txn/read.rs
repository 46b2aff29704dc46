//! Reading a history file straight into a [`TxnHistory`].
//!
//! JSON Lines stream through the file a chunk at a time: each chunk's lines are typed in
//! parallel straight into compact micro-operations (no generic values, no event kept), then
//! paired into transactions in file order by a [`TxnBuilder`]. A line of another shape (a
//! nemesis event, an unusual field) is read by the generic reader and paired the same way;
//! a malformed line is explained by it. What is read, accepted, warned about and rejected
//! is exactly what [`formats::read_file`] then [`from_history`] would do; only faster and in
//! a fraction of the memory. EDN streams the same way (the common line typed, any other read
//! by the generic EDN parser from there, with the same result); Jepsen logs and
//! pipes are read by [`formats::read_file`], then paired.
//!
//! [`from_history`]: super::from_history

use super::transactions::{RawMop, TxnBuilder, TxnDataError, TxnHistory, Workload};
use crate::formats::edn::{self, Parser, TopItem};
use crate::formats::jsonl::{self, ChunkSink, LineSpan};
use crate::formats::jsonl_fast;
use crate::formats::txn_fast::TxnOp;
use crate::formats::{
    self, edn_txn, DataError, Format, Independent, IndexOrder, ReadError, ReadOptions,
};
use crate::history::{Event, EventType};
use rayon::prelude::*;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// A history of transactions as read, with what the reader noticed.
#[derive(Debug)]
pub struct TxnReadOutput {
    pub history: TxnHistory,
    pub format: Format,
    pub warnings: Vec<String>,
    /// Events read (clients' and the nemesis's).
    pub events: usize,
    /// The 1-based line where each event starts.
    lines: Vec<usize>,
}

impl TxnReadOutput {
    /// The 1-based file line of the event at `index`, when known.
    pub fn line_of(&self, index: u64) -> Option<usize> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.lines.get(i).copied())
    }
}

/// Why a file is not a history of transactions.
#[derive(Debug, thiserror::Error)]
pub enum TxnReadError {
    /// Unreadable, or not a history (see [`ReadError`]).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A history, but not of transactions of the workload.
    #[error("{}:{} {error}", path.display(), line.map_or_else(String::new, |l| format!("{l}:")))]
    Txn {
        path: PathBuf,
        /// The line of the offending event.
        line: Option<usize>,
        error: TxnDataError,
    },
}

/// Reads a history file of transactions of `workload`.
pub fn read_file(
    path: &Path,
    opts: &ReadOptions,
    workload: Workload,
) -> Result<TxnReadOutput, TxnReadError> {
    // Every regular file that may be JSON Lines is streamed, whatever its size (checked
    // against the input limit when opened); what has no size (a pipe) is read whole, with
    // the limit enforced while reading.
    let mut opened = formats::open(path, opts, 1)?;
    if !opened.streamable && edn_streamable(&opened, opts) {
        return read_edn(path, opened, opts, workload);
    }
    if !opened.streamable {
        let read = formats::read_whole(path, opened, opts)?;
        let history =
            super::from_history(&read.history, workload).map_err(|error| TxnReadError::Txn {
                path: path.to_owned(),
                line: read.line_of(error.index),
                error,
            })?;
        return Ok(TxnReadOutput {
            history,
            format: read.format,
            warnings: read.warnings,
            events: read.history.events.len(),
            lines: read.lines,
        });
    }
    let mut reader = Reader::new(workload, opts.max_line_bytes);
    // About 140 bytes per event, two events per transaction.
    reader
        .builder
        .reserve(usize::try_from(opened.size / 280).unwrap_or(0));
    reader
        .lines
        .reserve(usize::try_from(opened.size / 140).unwrap_or(0));
    let head = std::mem::take(&mut opened.head);
    jsonl::stream_into(&mut reader, head, &mut opened.file, opts.max_line_bytes)
        .map_err(|e| formats::stream_error(path, e))?;
    if let Some(error) = reader.txn_error.take() {
        return Err(TxnReadError::Txn {
            path: path.to_owned(),
            line: reader.lines.get(error.index as usize).copied(),
            error,
        });
    }
    reader
        .finish(Format::Jsonl)
        .map_err(|(error, line)| TxnReadError::Txn {
            path: path.to_owned(),
            line,
            error,
        })
}

/// One line, typed.
enum Parsed {
    Typed(TxnOp),
    /// Read by the generic reader (its `index` is the one the line gives, or
    /// [`jsonl::NO_INDEX`]).
    Generic(Box<Event>),
    Malformed,
}

/// The typed lines of a part of a chunk, with their micro-operations and read lists.
#[derive(Default)]
struct Part {
    lines: Vec<Parsed>,
    mops: Vec<RawMop>,
    elements: Vec<i64>,
}

fn parse_part(chunk: &[u8], spans: &[LineSpan], workload: Workload) -> Part {
    let mut part = Part {
        lines: Vec::with_capacity(spans.len()),
        mops: Vec::with_capacity(spans.len() * 3),
        elements: Vec::with_capacity(spans.len() * 4),
    };
    for span in spans {
        let line = &chunk[span.start..span.end];
        let parsed =
            match jsonl_fast::parse_txn_line(line, workload, &mut part.mops, &mut part.elements) {
                Some(typed) => Parsed::Typed(typed),
                None => match jsonl::parse_line(line) {
                    Some(event) => Parsed::Generic(Box::new(event)),
                    None => Parsed::Malformed,
                },
            };
        part.lines.push(parsed);
    }
    part
}

/// Lines per part of a chunk parsed on one thread.
const PART_LINES: usize = 4096;

/// Streams JSON Lines into a [`TxnBuilder`].
struct Reader {
    workload: Workload,
    builder: TxnBuilder,
    max_line_bytes: usize,
    lines_before: usize,
    spans: Vec<LineSpan>,
    /// Line of each event.
    lines: Vec<usize>,
    order: IndexOrder,
    /// Whether every event so far is in our recorder's form (see [`jsonl`]).
    recorded: bool,
    warnings: Vec<String>,
    /// The first event that does not fit the workload: pairing stops there, reading goes
    /// on (a malformed line anywhere is the error to report, as when reading first).
    txn_error: Option<TxnDataError>,
}

impl Reader {
    fn new(workload: Workload, max_line_bytes: usize) -> Self {
        Reader {
            workload,
            builder: TxnBuilder::new(workload),
            max_line_bytes,
            lines_before: 0,
            spans: Vec::new(),
            lines: Vec::new(),
            order: IndexOrder::default(),
            recorded: true,
            warnings: Vec::new(),
            txn_error: None,
        }
    }

    /// Takes one typed line (not a malformed one).
    fn take(&mut self, parsed: &mut Parsed, part: &Part, number: usize) {
        match parsed {
            Parsed::Typed(t) => {
                let (a, b) = t.mops;
                self.take_typed(
                    t.index,
                    t.has_time,
                    t.process,
                    t.kind,
                    &part.mops[a as usize..b as usize],
                    &part.elements,
                    number,
                );
            }
            Parsed::Generic(e) => {
                let given = (e.index != jsonl::NO_INDEX).then_some(e.index);
                self.take_event(e, given, number);
            }
            Parsed::Malformed => unreachable!("malformed lines are handled by the caller"),
        }
    }

    /// Notes an event starting on line `number` that gives the index `given`; returns its
    /// index in the history, or `None` when pairing has stopped at an error.
    fn note(&mut self, given: Option<u64>, has_time: bool, number: usize) -> Option<u64> {
        let index = self.lines.len() as u64;
        self.order.note(given, number);
        self.recorded &= given == Some(index) && has_time;
        self.lines.push(number);
        self.txn_error.is_none().then_some(index)
    }

    /// Takes a typed transaction event.
    #[allow(clippy::too_many_arguments)]
    fn take_typed(
        &mut self,
        given: Option<u64>,
        has_time: bool,
        process: u64,
        kind: EventType,
        mops: &[RawMop],
        elements: &[i64],
        number: usize,
    ) {
        let Some(index) = self.note(given, has_time, number) else {
            return;
        };
        if let Err(error) = self
            .builder
            .push_typed(index, process, kind, mops, elements)
        {
            self.txn_error = Some(error);
        }
    }

    /// Takes an event read by a generic reader.
    fn take_event(&mut self, event: &mut Event, given: Option<u64>, number: usize) {
        let Some(index) = self.note(given, event.time.is_some(), number) else {
            return;
        };
        event.index = index;
        if let Err(error) = self.builder.push_event(event) {
            self.txn_error = Some(error);
        }
    }

    fn finish(self, format: Format) -> Result<TxnReadOutput, (TxnDataError, Option<usize>)> {
        let mut warnings = self.warnings;
        if let Some(line) = self.order.unordered_line {
            warnings.push(format!(
                "line {line}: the file's indexes are not increasing; events are kept in file order (taken as real-time order) and renumbered"
            ));
        }
        let never_completed = self.builder.pending();
        if never_completed > 0 {
            warnings.push(format!(
                "{never_completed} operation(s) never completed; they are indeterminate, like info"
            ));
        }
        if self.lines.is_empty() {
            warnings.push("the history is empty".to_owned());
        }
        let lines = self.lines;
        let history = self.builder.finish().map_err(|error| {
            let line = lines.get(error.index as usize).copied();
            (error, line)
        })?;
        Ok(TxnReadOutput {
            history,
            format,
            warnings,
            events: lines.len(),
            lines,
        })
    }
}

impl ChunkSink for Reader {
    fn push_chunk(&mut self, chunk: &[u8], at_end: bool) -> Result<(), DataError> {
        self.lines_before = jsonl::line_spans(
            chunk,
            self.lines_before,
            self.max_line_bytes,
            &mut self.spans,
        )?;
        let workload = self.workload;
        let spans = std::mem::take(&mut self.spans);
        let mut parts: Vec<Part> = if chunk.len() < jsonl::PARALLEL_THRESHOLD {
            vec![parse_part(chunk, &spans, workload)]
        } else {
            spans
                .par_chunks(PART_LINES)
                .map(|s| parse_part(chunk, s, workload))
                .collect()
        };
        let mut result = Ok(());
        let mut span = spans.iter();
        'parts: for part in &mut parts {
            let mut lines = std::mem::take(&mut part.lines);
            for parsed in &mut lines {
                let s = span.next().expect("a span per parsed line");
                if let Parsed::Malformed = parsed {
                    // Forgiven only as the unfinished last line of a recorder's history.
                    let line = &chunk[s.start..s.end];
                    let last = at_end && span.len() == 0 && s.end == chunk.len();
                    if last && jsonl::is_recorder_cut(line, self.lines.len(), self.recorded) {
                        self.warnings
                            .push(formats::truncated_record_warning(s.number));
                    } else {
                        result = Err(jsonl::malformed_line(line, s.number));
                    }
                    break 'parts;
                }
                self.take(parsed, part, s.number);
            }
        }
        self.spans = spans;
        result
    }

    fn lines_before(&self) -> usize {
        self.lines_before
    }
}

/// Whether an opened file that is not JSON Lines is read by the streamed EDN reader: a
/// regular file in EDN (named, or detected in a head that holds a whole line), without
/// independent tuples to split.
fn edn_streamable(opened: &formats::Opened, opts: &ReadOptions) -> bool {
    let format = match opts.format {
        Some(format) => Some(format),
        None if memchr::memchr(b'\n', &opened.head).is_some()
            || opened.head.len() as u64 == opened.size =>
        {
            Format::detect(&opened.head)
        }
        None => None,
    };
    opened.size > 0 && format == Some(Format::Edn) && opts.independent == Independent::Off
}

/// Bytes of an EDN history read at a time.
const EDN_CHUNK: usize = 8 << 20;

/// Reads an EDN history of transactions a chunk at a time (see [`EdnReader`]).
fn read_edn(
    path: &Path,
    mut opened: formats::Opened,
    opts: &ReadOptions,
    workload: Workload,
) -> Result<TxnReadOutput, TxnReadError> {
    let head = std::mem::take(&mut opened.head);
    let read = read_edn_stream(
        head,
        &mut opened.file,
        opened.size,
        opts.max_line_bytes,
        workload,
        EDN_CHUNK,
    );
    read.map_err(|e| match e {
        EdnError::Read(e) => TxnReadError::Read(formats::stream_error(path, e)),
        EdnError::Txn(error, line) => TxnReadError::Txn {
            path: path.to_owned(),
            line,
            error,
        },
    })
}

/// Why a streamed EDN history was not read.
#[derive(Debug)]
enum EdnError {
    Read(jsonl::StreamError),
    /// Not transactions of the workload: the error and the line of its event.
    Txn(TxnDataError, Option<usize>),
}

/// Reads an EDN history from `head` then the rest of `input`, `chunk` bytes at a time
/// (more while a form is longer than that); `size` (when known) sizes the buffers.
fn read_edn_stream(
    head: Vec<u8>,
    input: &mut impl std::io::Read,
    size: u64,
    max_bytes: usize,
    workload: Workload,
    chunk: usize,
) -> Result<TxnReadOutput, EdnError> {
    let mut edn = EdnReader {
        reader: Reader::new(workload, max_bytes),
        workload,
        max_bytes,
        inside: None,
        bad_op: None,
        spans: Vec::new(),
    };
    // About 120 bytes per event, two events per transaction.
    edn.reader
        .builder
        .reserve(usize::try_from(size / 240).unwrap_or(0));
    edn.reader
        .lines
        .reserve(usize::try_from(size / 120).unwrap_or(0));
    let data_error = |error| EdnError::Read(jsonl::StreamError::Data(error));
    let mut buffer = head;
    let mut lines_before = 0usize;
    let mut resume: Option<Mark> = None;
    loop {
        // A form longer than a chunk is read again with twice the input, not once a chunk.
        let wanted = chunk.max(buffer.len()) as u64;
        let got = input
            .take(wanted)
            .read_to_end(&mut buffer)
            .map_err(|e| EdnError::Read(jsonl::StreamError::Io(e)))?;
        let at_end = (got as u64) < wanted;
        let complete = if at_end {
            buffer.len()
        } else {
            memchr::memrchr(b'\n', &buffer).map_or(0, |i| i + 1)
        };
        if complete == 0 && !at_end {
            if buffer.len() > max_bytes {
                return Err(data_error(formats::line_too_long(
                    lines_before + 1,
                    max_bytes,
                )));
            }
            continue;
        }
        let (stop, last_line) = edn
            .push(&buffer[..complete], lines_before, resume.take(), at_end)
            .map_err(data_error)?;
        match stop {
            Stop::Done(_) if at_end => break,
            Stop::Done(_) => {
                buffer.drain(..complete);
                lines_before = last_line;
            }
            Stop::NeedMore(mark) => {
                if complete - mark.pos > max_bytes {
                    let mut parser =
                        Parser::resume(&buffer, mark.pos, mark.line, mark.line_start, 0);
                    let _ = parser.skip_to_form();
                    return Err(data_error(edn::form_too_long(parser.line(), max_bytes)));
                }
                buffer.drain(..mark.line_start);
                lines_before = mark.line - 1;
                resume = Some(Mark {
                    pos: mark.pos - mark.line_start,
                    line: mark.line,
                    line_start: 0,
                });
            }
        }
    }
    let mut reader = edn.reader;
    if let Some(error) = reader.txn_error.take() {
        let line = reader.lines.get(error.index as usize).copied();
        return Err(EdnError::Txn(error, line));
    }
    reader
        .finish(Format::Edn)
        .map_err(|(error, line)| EdnError::Txn(error, line))
}

/// A position in a piece of EDN input: its offset, its 1-based line, and the offset of
/// that line's first byte.
#[derive(Debug, Clone, Copy)]
struct Mark {
    pos: usize,
    line: usize,
    line_start: usize,
}

/// How far a piece of input was read.
enum Stop {
    /// To its end, or (from the generic parser) to the mark, after which the line is blank.
    Done(Mark),
    /// Up to a form that goes on past it, which starts at the mark (blanks before it
    /// perhaps included).
    NeedMore(Mark),
}

/// The typed lines of a part of a piece of EDN input, with their micro-operations and read
/// lists.
#[derive(Default)]
struct EdnPart {
    lines: Vec<Option<edn_txn::TxnLine>>,
    mops: Vec<RawMop>,
    elements: Vec<i64>,
}

fn parse_edn_part(data: &[u8], spans: &[LineSpan], workload: Workload) -> EdnPart {
    let mut part = EdnPart {
        lines: Vec::with_capacity(spans.len()),
        mops: Vec::with_capacity(spans.len() * 3),
        elements: Vec::with_capacity(spans.len() * 4),
    };
    for span in spans {
        let line = &data[span.start..span.end];
        let parsed = edn_txn::parse_txn_line(line, workload, &mut part.mops, &mut part.elements);
        part.lines.push(parsed);
    }
    part
}

/// Streams an EDN history of transactions into a [`TxnBuilder`].
///
/// Each piece of input (whole lines) is typed a line at a time, in parallel, by the fast
/// path of [`edn_txn`]: one op per line, perhaps opening or closing the vector that holds
/// the whole history. The lines are then taken in order; from the first line the fast path
/// does not take (a nemesis op, an op spanning lines, a comment inside a form, bad data…)
/// the generic EDN parser reads form after form, the ops of a top-level vector one at a
/// time, until a form ends its line; the fast path goes on from the next line. What is
/// read, accepted and rejected is what reading the whole file then pairing does, except
/// that the size limit applies to each op of a top-level vector rather than to the whole
/// vector, so a history of any size may be one vector.
struct EdnReader {
    reader: Reader,
    workload: Workload,
    /// A longer op (or top-level form) is bad data.
    max_bytes: usize,
    /// The top-level vector or list being read: the byte closing it and its line.
    inside: Option<(u8, usize)>,
    /// The first op of the vector being read that is not an op: reported when the vector
    /// closes, as the generic reader, which reads the whole vector first, would (a syntax
    /// error further in the vector comes first).
    bad_op: Option<DataError>,
    spans: Vec<LineSpan>,
}

impl EdnReader {
    /// Reads `data`, whole lines numbered after `lines_before` (the last line perhaps
    /// unterminated when `at_end`), from `resume` if given (a form left unfinished by the
    /// previous piece), else from its start. Returns how far it got and the number of the
    /// last line.
    fn push(
        &mut self,
        data: &[u8],
        lines_before: usize,
        resume: Option<Mark>,
        at_end: bool,
    ) -> Result<(Stop, usize), DataError> {
        let last_line = jsonl::line_spans(data, lines_before, self.max_bytes, &mut self.spans)?;
        let spans = std::mem::take(&mut self.spans);
        let workload = self.workload;
        let parts: Vec<EdnPart> = if data.len() < jsonl::PARALLEL_THRESHOLD {
            vec![parse_edn_part(data, &spans, workload)]
        } else {
            spans
                .par_chunks(PART_LINES)
                .map(|s| parse_edn_part(data, s, workload))
                .collect()
        };
        let start = resume.unwrap_or(Mark {
            pos: 0,
            line: lines_before + 1,
            line_start: 0,
        });
        let result = self.take_lines(data, &spans, &parts, start, resume.is_some(), at_end);
        self.spans = spans;
        Ok((result?, last_line))
    }

    /// Takes the typed lines of `data` in order from `start`, reading with the generic
    /// parser from there first when `resume`, and wherever the fast path did not type a
    /// line or its line does not fit.
    fn take_lines(
        &mut self,
        data: &[u8],
        spans: &[LineSpan],
        parts: &[EdnPart],
        start: Mark,
        resume: bool,
        at_end: bool,
    ) -> Result<Stop, DataError> {
        // Everything before `done.pos` has been read.
        let mut done = start;
        if resume {
            match self.generic(data, start, at_end)? {
                Stop::Done(mark) => done = mark,
                more => return Ok(more),
            }
        }
        let mut span = spans.iter();
        for part in parts {
            for parsed in &part.lines {
                let s = span.next().expect("a span per typed line");
                if s.start < done.pos {
                    continue;
                }
                match parsed {
                    Some(line) if self.fits(line) => {
                        self.take_line(line, part, s.number)?;
                        done = Mark {
                            pos: s.end,
                            line: s.number,
                            line_start: s.start,
                        };
                    }
                    _ => {
                        let from = Mark {
                            pos: s.start,
                            line: s.number,
                            line_start: s.start,
                        };
                        match self.generic(data, from, at_end)? {
                            Stop::Done(mark) => done = mark,
                            more => return Ok(more),
                        }
                    }
                }
            }
        }
        if at_end && self.inside.is_some() {
            // The vector never closes: the generic reader says so, and where.
            self.generic(data, done, at_end)?;
        }
        Ok(Stop::Done(done))
    }

    /// Whether a typed line fits where it is: a vector opens only at the top level and
    /// closes only the vector (or list) open.
    fn fits(&self, line: &edn_txn::TxnLine) -> bool {
        let mut inside = self.inside.map(|(close, _)| close);
        if let Some(close) = line.opens {
            if inside.is_some() {
                return false;
            }
            inside = Some(close);
        }
        match line.closes {
            Some(close) => inside == Some(close),
            None => true,
        }
    }

    fn take_line(
        &mut self,
        line: &edn_txn::TxnLine,
        part: &EdnPart,
        number: usize,
    ) -> Result<(), DataError> {
        if let Some(close) = line.opens {
            self.inside = Some((close, number));
        }
        match &line.op {
            Some(_) if self.bad_op.is_some() => {}
            Some(op) => {
                let (a, b) = op.mops;
                self.reader.take_typed(
                    op.index,
                    op.has_time,
                    op.process,
                    op.kind,
                    &part.mops[a as usize..b as usize],
                    &part.elements,
                    number,
                );
            }
            None => {}
        }
        if line.closes.is_some() {
            self.close()?;
        }
        Ok(())
    }

    /// The vector being read closes.
    fn close(&mut self) -> Result<(), DataError> {
        self.inside = None;
        self.bad_op.take().map_or(Ok(()), Err)
    }

    /// Takes an op read by the generic parser.
    fn take_form(&mut self, form: &edn::Form) -> Result<(), DataError> {
        if self.bad_op.is_some() {
            return Ok(());
        }
        match edn::op_event(form) {
            Ok((mut event, given)) => {
                self.reader.take_event(&mut event, given, form.line);
                Ok(())
            }
            Err(error) if self.inside.is_some() => {
                self.bad_op = Some(error);
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Reads `data` from `from` with the generic parser, until a form ends its line (or the
    /// input ends).
    fn generic(&mut self, data: &[u8], from: Mark, at_end: bool) -> Result<Stop, DataError> {
        let mut parser = Parser::resume(data, from.pos, from.line, from.line_start, 0);
        loop {
            let (pos, line_start) = parser.position();
            let mark = Mark {
                pos,
                line: parser.line(),
                line_start,
            };
            let item = match parser.top_item(self.inside) {
                Ok(item) => item,
                Err(e) if e.at_end && !at_end => return Ok(Stop::NeedMore(mark)),
                Err(e) => return Err(e.error),
            };
            // A form that took the piece's last newline (a character `\` at the end of a
            // line is the newline character, and its token goes on) may go on too.
            let cut = parser.position().0 == data.len() && !at_end;
            if cut && !matches!(item, TopItem::End) {
                return Ok(Stop::NeedMore(mark));
            }
            match item {
                TopItem::End => {
                    let (pos, line_start) = parser.position();
                    return Ok(Stop::Done(Mark {
                        pos,
                        line: parser.line(),
                        line_start,
                    }));
                }
                TopItem::Open { close, line } => self.inside = Some((close, line)),
                TopItem::Close => self.close()?,
                TopItem::Form(form, start) => {
                    if parser.position().0 - start > self.max_bytes {
                        return Err(edn::form_too_long(form.line, self.max_bytes));
                    }
                    self.take_form(&form)?;
                }
            }
            if parser.rest_of_line_blank() {
                let (pos, line_start) = parser.position();
                return Ok(Stop::Done(Mark {
                    pos,
                    line: parser.line(),
                    line_start,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::jsonl::write_history;
    use crate::txn::anomaly::AnomalyKind;
    use crate::txn::generate::{self, GenOptions};
    use crate::txn::transactions::from_history;

    /// Reads `data` as a file, both ways.
    fn both(data: &[u8], workload: Workload) -> (String, String) {
        let dir = std::env::temp_dir().join(format!(
            "splitbrain-txn-read-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        std::fs::write(&path, data).unwrap();
        let opts = ReadOptions::default();
        let typed = match read_file(&path, &opts, workload) {
            Ok(r) => format!(
                "{:?} {:?} {} {:?}",
                r.history, r.warnings, r.events, r.lines
            ),
            Err(e) => format!("error {e}"),
        };
        let generic = match formats::read_file(&path, &opts) {
            Ok(read) => match from_history(&read.history, workload) {
                Ok(h) => format!(
                    "{h:?} {:?} {} {:?}",
                    read.warnings,
                    read.history.events.len(),
                    read.lines
                ),
                Err(error) => format!(
                    "error {}",
                    TxnReadError::Txn {
                        path: path.clone(),
                        line: read.line_of(error.index),
                        error
                    }
                ),
            },
            Err(e) => format!("error {e}"),
        };
        std::fs::remove_dir_all(&dir).unwrap();
        (typed, generic)
    }

    fn generated(txns: usize, seed: u64, failed: f64) -> Vec<u8> {
        let opts = GenOptions {
            txns,
            keys: 5,
            failed,
            indeterminate: 0.1,
            seed,
            ..GenOptions::default()
        };
        let mut h = generate::list_append(&opts);
        let mid = h.events.len() / 2;
        generate::inject(&mut h, AnomalyKind::GSingle, mid, 1 << 40, 1 << 40);
        let mut out = Vec::new();
        write_history(&mut out, &h.events).unwrap();
        out
    }

    #[test]
    fn typed_reading_equals_generic_reading_then_pairing() {
        for seed in 0..20 {
            let data = generated(300, seed, 0.05);
            let (typed, generic) = both(&data, Workload::ListAppend);
            assert!(!typed.starts_with("error"), "{typed}");
            assert_eq!(typed, generic, "seed {seed}");
        }
    }

    #[test]
    fn large_files_read_in_parallel_parts_equal_generic_reading() {
        // Over the parallel threshold, several parts per chunk.
        let data = generated(20_000, 7, 0.01);
        assert!(data.len() > jsonl::PARALLEL_THRESHOLD);
        let (typed, generic) = both(&data, Workload::ListAppend);
        assert!(!typed.starts_with("error"), "{}", &typed[..200]);
        assert_eq!(typed, generic);
    }

    /// Lines of every shape the typed path leaves to the generic one, and errors: each
    /// file reads (or fails, with the same message) exactly as generic reading does.
    #[test]
    fn every_variation_reads_as_generic_reading_does() {
        let base: Vec<&str> = vec![
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"txn","value":[["append",1,1],["r",1,null]]}"#,
            r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,null]]}"#,
            r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",1,[1]]]}"#,
            r#"{"index":3,"time":4,"process":1,"type":"ok","f":"txn","value":[["r",1,[1]]]}"#,
            r#"{"index":4,"time":5,"process":2,"type":"invoke","f":"txn","value":[["append",2,5]]}"#,
            r#"{"index":5,"time":6,"process":2,"type":"info","f":"txn","value":[["append",2,5]],"error":"timeout"}"#,
            r#"{"index":6,"time":7,"process":3,"type":"invoke","f":"txn","value":[["r",2,null],["append",1,2]]}"#,
        ];
        let variants: Vec<(usize, &str)> = vec![
            (
                1,
                r#"{"process":"nemesis","type":"info","f":"partition","value":"halves"}"#,
            ),
            (
                1,
                r#"{"index":1,"process":1,"type":"invoke","f":"txn","value":[["r",1,null]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,5]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,[7]]],"node":"n1","key":null}"#,
            ),
            (
                1,
                r#"{ "index" : 1 , "process" : 1 , "type" : "invoke" , "f" : "txn" , "value" : [ [ "r" , 1 , null ] ] }"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,{"a":1}]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["w",1,2]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"read","value":[["r",1,null]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","key":3,"value":[["r",1,null]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":"x"}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r","k",null]]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[]}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,null]],"f":"txn"}"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,null]]"#,
            ),
            (
                1,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,null]],"colour":1}"#,
            ),
            (
                1,
                r#"{"index":9,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r",1,null]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",1,[1,1]]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",1,7]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,"x"],["r",1,[1]]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",1,[1.5]]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",1,["1"]]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["append",1,1],["r",1,[]]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":0,"type":"fail","f":"txn","value":[["append",1,1],["r",1,[1]]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":5,"type":"ok","f":"txn","value":[["append",1,1],["r",1,[1]]]}"#,
            ),
            (
                2,
                r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"txn","value":[["append",1,1]]}"#,
            ),
            (
                2,
                r#"{"type":"ok","index":2,"process":0,"f":"txn","time":3,"value":[["append",1,1],["r",1,[1]]]}"#,
            ),
            (
                5,
                r#"{"index":5,"time":6,"process":2,"type":"fail","f":"txn","value":[["append",2,5]]}"#,
            ),
            (
                5,
                r#"{"index":5,"time":6,"process":2,"type":"info","f":"txn","value":[["append",2,5]],"error":["a",{"b":1}]}"#,
            ),
            (
                6,
                r#"{"index":6,"time":7,"process":3,"type":"invoke","f":"txn","value":[["r",2,null],["append",1,"v"]]}"#,
            ),
            (
                6,
                r#"{"index":6,"time":7,"process":3,"type":"invoke","f":"txn","value":[["r",2,null],["append",1,2]"#,
            ),
            (
                6,
                r#"{"index":6,"time":7,"process":3,"type":"invoke","f":"txn","value":[["r",2,null],["append",1,2]],"#,
            ),
            (6, r#"{"index":6,"time":"#),
            (6, r#"{"index":6,"#),
            (6, ""),
        ];
        let mut checked = 0;
        for (at, replacement) in variants {
            for terminated in [true, false] {
                let mut lines = base.clone();
                lines[at] = replacement;
                let mut data = lines.join("\n");
                if terminated {
                    data.push('\n');
                }
                for workload in Workload::ALL {
                    let (typed, generic) = both(data.as_bytes(), workload);
                    assert_eq!(typed, generic, "line {at} = {replacement}, {workload:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 35 * 4);
    }

    /// Reads a named pipe fed `data` by a thread, with an input limit of `max_input` bytes.
    fn through_pipe(
        data: &[u8],
        max_input: u64,
        read: impl FnOnce(&Path, &ReadOptions) -> String,
    ) -> String {
        let dir = std::env::temp_dir().join(format!("splitbrain-txn-pipe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipe");
        let _ = std::fs::remove_file(&path);
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let (feed, data) = (path.clone(), data.to_vec());
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&feed) {
                let _ = f.write_all(&data);
            }
        });
        let opts = ReadOptions {
            max_input_bytes: Some(max_input),
            ..ReadOptions::default()
        };
        let out = read(&path, &opts);
        writer.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    #[test]
    fn a_pipe_is_bounded_like_the_generic_reader_bounds_it() {
        let data = generated(300, 3, 0.0);
        for max_input in [1000, 1 << 30] {
            let typed = through_pipe(&data, max_input, |path, opts| {
                match read_file(path, opts, Workload::ListAppend) {
                    Ok(r) => format!("{:?} {:?}", r.history, r.warnings),
                    Err(e) => format!("error {e}"),
                }
            });
            let generic = through_pipe(&data, max_input, |path, opts| {
                match formats::read_file(path, opts) {
                    Ok(read) => {
                        let h = from_history(&read.history, Workload::ListAppend).unwrap();
                        format!("{h:?} {:?}", read.warnings)
                    }
                    Err(e) => format!("error {e}"),
                }
            });
            assert_eq!(typed, generic);
            assert_eq!(
                typed.contains("at most 1000 bytes"),
                max_input == 1000,
                "{typed}"
            );
        }
    }

    #[test]
    fn register_histories_read_alike() {
        let lines = [
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"txn","value":[["w",1,1],["r",2,null]]}"#,
            r#"{"index":1,"time":2,"process":0,"type":"ok","f":"txn","value":[["w",1,1],["r",2,null]]}"#,
            r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"txn","value":[["r",1,null]]}"#,
            r#"{"index":3,"time":4,"process":1,"type":"ok","f":"txn","value":[["r",1,1]]}"#,
            r#"{"index":4,"time":5,"process":1,"type":"invoke","f":"txn","value":[["r",1,null],["w",2,3]]}"#,
        ];
        let data = lines.join("\n");
        let (typed, generic) = both(data.as_bytes(), Workload::RwRegister);
        assert!(
            typed.contains("ReadRegister { key: 1, value: Some(Some(1)) }"),
            "{typed}"
        );
        assert_eq!(typed, generic);
    }
}

#[cfg(test)]
mod edn_tests {
    use super::*;
    use crate::formats::edn::write_history;
    use crate::txn::anomaly::AnomalyKind;
    use crate::txn::generate::{self, GenOptions};
    use crate::txn::transactions::from_history;

    /// What reading gave, as text: the history, warnings, events and lines, or the error.
    fn typed(data: &[u8], workload: Workload, chunk: usize) -> String {
        let read = read_edn_stream(
            Vec::new(),
            &mut &data[..],
            data.len() as u64,
            formats::MAX_LINE_BYTES,
            workload,
            chunk,
        );
        match read {
            Ok(r) => format!(
                "{:?} {:?} {} {:?} {}",
                r.history, r.warnings, r.events, r.lines, r.format
            ),
            Err(EdnError::Read(jsonl::StreamError::Data(e))) => format!("error {e}"),
            Err(EdnError::Read(jsonl::StreamError::Io(e))) => panic!("{e}"),
            Err(EdnError::Txn(error, line)) => format!(
                "error {}",
                TxnReadError::Txn {
                    path: "h".into(),
                    line,
                    error
                }
            ),
        }
    }

    /// The same, read whole by the generic EDN reader, then paired.
    fn generic(data: &[u8], workload: Workload) -> String {
        let opts = ReadOptions {
            format: Some(Format::Edn),
            independent: Independent::Off,
            ..ReadOptions::default()
        };
        match formats::read_bytes(data, &opts) {
            Ok(read) => match from_history(&read.history, workload) {
                Ok(h) => format!(
                    "{h:?} {:?} {} {:?} {}",
                    read.warnings,
                    read.history.events.len(),
                    read.lines,
                    read.format
                ),
                Err(error) => format!(
                    "error {}",
                    TxnReadError::Txn {
                        path: "h".into(),
                        line: read.line_of(error.index),
                        error
                    }
                ),
            },
            Err(formats::BytesError::Data(e)) => format!("error {e}"),
            Err(e) => format!("error {e}"),
        }
    }

    fn assert_same(data: &[u8], workload: Workload, chunk: usize) -> String {
        let (t, g) = (typed(data, workload, chunk), generic(data, workload));
        assert_eq!(
            t,
            g,
            "chunk {chunk}, {workload:?}, input:\n{}",
            String::from_utf8_lossy(data)
        );
        t
    }

    fn generated(txns: usize, seed: u64) -> Vec<u8> {
        let opts = GenOptions {
            txns,
            keys: 5,
            failed: 0.05,
            indeterminate: 0.1,
            seed,
            ..GenOptions::default()
        };
        let mut h = generate::list_append(&opts);
        let mid = h.events.len() / 2;
        generate::inject(&mut h, AnomalyKind::GSingle, mid, 1 << 40, 1 << 40);
        let mut out = Vec::new();
        write_history(&mut out, &h.events).unwrap();
        out
    }

    /// The same ops as one vector, one op per line (Knossos' data files).
    fn as_vector(data: &[u8]) -> Vec<u8> {
        let mut out = b"[".to_vec();
        out.extend_from_slice(data.strip_suffix(b"\n").unwrap_or(data));
        out.extend_from_slice(b"]\n");
        out
    }

    /// The same ops as Jepsen 0.3's tagged records.
    fn as_records(data: &[u8]) -> Vec<u8> {
        let text = String::from_utf8(data.to_vec()).unwrap();
        text.lines()
            .map(|l| format!("#jepsen.history.Op{l}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn generated_histories_read_as_the_generic_reader_reads_them() {
        for seed in 0..10 {
            let data = generated(200, seed);
            for shaped in [data.clone(), as_vector(&data), as_records(&data)] {
                for chunk in [1, 7, 64, 1000, EDN_CHUNK] {
                    let t = assert_same(&shaped, Workload::ListAppend, chunk);
                    assert!(!t.starts_with("error"), "{t}");
                }
            }
        }
    }

    #[test]
    fn large_histories_typed_in_parallel_read_as_the_generic_reader_reads_them() {
        let data = generated(20_000, 3);
        assert!(data.len() > jsonl::PARALLEL_THRESHOLD);
        for shaped in [data.clone(), as_vector(&data)] {
            let t = assert_same(&shaped, Workload::ListAppend, 1 << 20);
            assert!(!t.starts_with("error"), "{}", &t[..200]);
        }
    }

    /// Every shape the fast path leaves to the generic parser, and errors, at several
    /// places of a small history: each reads (or fails, with the same message) as the
    /// generic reader reads it.
    #[test]
    fn every_variation_reads_as_the_generic_reader_reads_it() {
        let base: Vec<&str> = vec![
            "{:index 0, :time 1, :type :invoke, :process 0, :f :txn, :value [[:append 1 1] [:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 2, :time 3, :type :ok, :process 0, :f :txn, :value [[:append 1 1] [:r 1 [1]]]}",
            "{:index 3, :time 4, :type :ok, :process 1, :f :txn, :value [[:r 1 [1]]]}",
            "{:index 4, :time 5, :type :invoke, :process 2, :f :txn, :value [[:append 2 5]]}",
            "{:index 5, :time 6, :type :info, :process 2, :f :txn, :value [[:append 2 5]], :error :timeout}",
            "{:index 6, :time 7, :type :invoke, :process 3, :f :txn, :value [[:r 2 nil] [:append 1 2]]}",
        ];
        let variants: Vec<&str> = vec![
            "{:process :nemesis, :type :info, :f :partition, :value [\"n1\" [\"n2\"]]}",
            "{:index 1, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn,\n :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]} ; ok",
            "; a comment\n{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "#_{:a 1} {:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]} #_\n{:a\n1}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]} {:process :nemesis, :type :info, :f :kill, :value nil}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :node \"n1\", :colour :red}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [(:r 1 nil)]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 5]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:w 1 2]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :read, :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :key 3, :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value \"x\"}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r :k nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value []}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :f :txn}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]] :error}",
            "{:index 9, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index -1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 1N, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 1, :time 2.5, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process -1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :done, :process 1, :f :txn, :value [[:r 1 nil]]}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :node \"a\nb\"}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :node \"a\\\"b\"}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :error 1.5}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :error [:a {:b 1}]}",
            // A backslash then a newline: the newline character, its token going on.
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :error \\\n}",
            "{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]} \\\nx",
            "\"a string\"",
            "]",
            "[",
            "[[{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}]]",
            "#{1 2}",
            "#_",
            "\"open",
            "",
            "{:index 2, :time 3, :type :ok, :process 0, :f :txn, :value [[:append 1 1] [:r 1 [1 1]]]}",
            "{:index 2, :time 3, :type :ok, :process 0, :f :txn, :value [[:append 1 1] [:r 1 7]]}",
            "{:index 2, :time 3, :type :ok, :process 0, :f :txn, :value [[:append 1 :x] [:r 1 [1]]]}",
            "{:index 2, :time 3, :type :ok, :process 0, :f :txn, :value [[:append 1 1] [:r 1 [9223372036854775808]]]}",
            "{:index 2, :time 3, :type :ok, :process 0, :f :txn, :value [[:append 1 1] [:r 1 #{1}]]}",
            "{:index 2, :time 3, :type :fail, :process 0, :f :txn, :value [[:append 1 1] [:r 1 [1]]]}",
            "{:index 2, :time 3, :type :ok, :process 5, :f :txn, :value [[:append 1 1] [:r 1 [1]]]}",
            "{:index 2, :time 3, :type :invoke, :process 1, :f :txn, :value [[:append 1 1]]}",
            "{:index 2, :time 3, :type \"ok\", :process 0, :f \"txn\", :value [[\"append\" 1 1] [\"r\" 1 [1]]]}",
        ];
        let mut checked = 0;
        for at in [0, 1, 2, 5, 6] {
            for replacement in &variants {
                let mut lines = base.clone();
                lines[at] = replacement;
                let data = lines.join("\n");
                let shapes = [
                    format!("{data}\n"),
                    data.clone(),
                    format!("[{data}]"),
                    format!("(\n{data}\n)\n"),
                    format!("[{data}"),
                    format!("[{data}\n\n"),
                    format!("#jepsen.history.Op{}", lines.join("\n#jepsen.history.Op")),
                ];
                for shaped in shapes {
                    for workload in Workload::ALL {
                        for chunk in [1, 50, EDN_CHUNK] {
                            assert_same(shaped.as_bytes(), workload, chunk);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 5 * variants.len() * 7 * 2 * 3);
        for empty in ["", "  \n\n", "; nothing\n", "[]", "[\n]\n", "#_ [1 2]"] {
            let t = assert_same(empty.as_bytes(), Workload::ListAppend, 8);
            assert!(t.contains("the history is empty"), "{t}");
        }
    }

    /// A piece may end in the middle of a form, of a string, or right after the newline a
    /// character token takes (`\` at the end of a line): read in pieces of every size,
    /// these read as read whole.
    #[test]
    fn pieces_of_every_size_read_alike() {
        let data = concat!(
            "{:index 0, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]], :node \"a\n",
            "b\", :error \\\n}\n",
            "{:index 1, :type :info, :process 1,\n :f :txn, :value [[:r 1 nil]]}\n",
            "{:index 2, :type :invoke, :process 2, :f :txn, :value [[:r 1 nil]]} \\\nx\n",
        );
        let whole = generic(data.as_bytes(), Workload::ListAppend);
        assert!(whole.contains("found `\\\nx`"), "{whole}");
        for chunk in 1..=data.len() {
            assert_same(data.as_bytes(), Workload::ListAppend, chunk);
        }
    }

    /// A small, fast, deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Bytes that change what EDN means.
    const SPICE: &[&[u8]] = &[
        b"[",
        b"]",
        b"(",
        b")",
        b"{",
        b"}",
        b"\"",
        b"\\",
        b";",
        b"#_",
        b"#",
        b"\n",
        b" ",
        b",",
        b"nil",
        b":r",
        b":append",
        b"-",
        b"9223372036854775808",
        b"1N",
        b"1.5",
        b"\xff",
        b":nemesis",
        b"#jepsen.history.Op",
        b"#{",
        b":process 1",
        b":index 0",
    ];

    fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        let at = rng.below(len + 1);
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(40)).min(len);
                bytes.drain(at..end);
            }
            2 => {
                let spice = SPICE[rng.below(SPICE.len())];
                bytes.splice(at..at, spice.iter().copied());
            }
            3 => {
                let end = (at + rng.below(200)).min(len);
                let copy = bytes[at..end].to_vec();
                let to = rng.below(len + 1);
                bytes.splice(to..to, copy);
            }
            4 => bytes.truncate(at),
            _ => {
                // A newline inside a form: ops spanning lines.
                if let Some(i) = (at..len).find(|&i| bytes[i] == b' ') {
                    bytes[i] = b'\n';
                }
            }
        }
    }

    /// Fuzzing, differential: mutants of histories of each shape read by the streamed
    /// reader (in pieces of a random size) exactly as by the generic reader — the same
    /// transactions, warnings and lines, or the same error — and never panic. A few
    /// thousand mutants, a few seconds; `SPLITBRAIN_FUZZ_SECONDS` runs longer and
    /// `SPLITBRAIN_FUZZ_SEED` starts from another seed, as for the other readers.
    #[test]
    fn mutated_histories_read_as_the_generic_reader_reads_them() {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let long_run = env("SPLITBRAIN_FUZZ_SECONDS");
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs(long_run.unwrap_or(8));
        let max_mutants = if long_run.is_some() { u64::MAX } else { 3_000 };
        let data = generated(12, 5);
        let seeds = [data.clone(), as_vector(&data), as_records(&data)];
        let (mut mutants, mut read_ok, mut errors) = (0u64, 0u64, 0u64);
        let mut seed = env("SPLITBRAIN_FUZZ_SEED").unwrap_or(1);
        while mutants < max_mutants && std::time::Instant::now() < deadline {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut bytes = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(2) {
                mutate(&mut rng, &mut bytes);
            }
            let chunk = [1, 2, 13, 100, 4096][rng.below(5)];
            // Mostly the workload the histories are of, so that many mutants read well.
            let workload = if rng.below(8) == 0 {
                Workload::RwRegister
            } else {
                Workload::ListAppend
            };
            let outcome = std::panic::catch_unwind(|| {
                (typed(&bytes, workload, chunk), generic(&bytes, workload))
            });
            match outcome {
                Ok((t, g)) if t == g => {
                    if t.starts_with("error") {
                        errors += 1;
                    } else {
                        read_ok += 1;
                    }
                }
                outcome => {
                    let path = std::env::temp_dir().join(format!("splitbrain-edn-fuzz-{seed}.edn"));
                    std::fs::write(&path, &bytes).unwrap();
                    panic!(
                        "mutant {seed} (chunk {chunk}, {workload:?}, written to {}): {outcome:?}",
                        path.display()
                    );
                }
            }
            mutants += 1;
            seed += 1;
        }
        eprintln!("edn fuzz: {mutants} mutants, {read_ok} read, {errors} errors");
        assert!(mutants >= 200 && read_ok * 10 >= mutants && errors * 5 >= mutants);
    }

    #[test]
    fn a_file_is_streamed_and_a_vector_history_may_exceed_the_form_limit() {
        let data = as_vector(&generated(50, 1));
        let dir = std::env::temp_dir().join(format!("splitbrain-edn-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.edn");
        std::fs::write(&path, &data).unwrap();
        let opts = ReadOptions {
            independent: Independent::Off,
            max_line_bytes: 1000,
            ..ReadOptions::default()
        };
        let streamed = read_file(&path, &opts, Workload::ListAppend);
        let whole = formats::read_file(&path, &opts).map(|r| r.warnings);
        // With independent tuples to look for, the generic reader reads it.
        let auto = read_file(
            &path,
            &ReadOptions {
                independent: Independent::Auto,
                ..opts.clone()
            },
            Workload::ListAppend,
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let streamed = streamed.unwrap();
        assert_eq!(streamed.format, Format::Edn);
        assert_eq!(streamed.line_of(0), Some(1));
        assert!(streamed.history.txns.len() >= 50);
        let error = whole.unwrap_err().to_string();
        assert!(
            error.contains("an EDN form of at most 1000 bytes"),
            "{error}"
        );
        let error = auto.unwrap_err().to_string();
        assert!(
            error.contains("an EDN form of at most 1000 bytes"),
            "{error}"
        );
    }

    #[test]
    fn many_ops_read_the_generic_way_are_each_held_to_the_limit_not_together() {
        // Nemesis ops are not of the fast path's shape: each is a form of the generic
        // reader, far into one large piece, and well under the limit on its own.
        let mut data = generated(5, 1);
        for i in 0..200 {
            data.extend_from_slice(
                format!("{{:process :nemesis, :type :info, :f :start, :value {i}}}\n").as_bytes(),
            );
        }
        assert!(data.len() > 10_000);
        for chunk in [16, 1 << 20] {
            let read = read_edn_stream(
                Vec::new(),
                &mut &data[..],
                0,
                1000,
                Workload::ListAppend,
                chunk,
            );
            assert!(read.is_ok(), "pieces of {chunk} bytes: {read:?}");
        }
    }

    #[test]
    fn an_op_over_the_limit_is_bad_data_where_it_starts() {
        let mut data = generated(5, 1);
        let line = memchr::memchr_iter(b'\n', &data).count() + 1;
        data.extend_from_slice(b"{:process 0, :type :invoke, :f :txn, :node \"\n");
        for _ in 0..200 {
            data.extend_from_slice(b" text\n");
        }
        data.extend_from_slice(b"\"}\n");
        for chunk in [16, 1 << 20] {
            let read = read_edn_stream(
                Vec::new(),
                &mut &data[..],
                0,
                1000,
                Workload::ListAppend,
                chunk,
            );
            let Err(EdnError::Read(jsonl::StreamError::Data(e))) = read else {
                panic!("{read:?}");
            };
            assert_eq!(
                e.to_string(),
                format!("{line}: expected an EDN form of at most 1000 bytes, found a longer one")
            );
        }
    }
}
