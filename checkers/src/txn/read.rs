//! Reading a history file straight into a [`TxnHistory`].
//!
//! JSON Lines stream through the file a chunk at a time: each chunk's lines are typed in
//! parallel straight into compact micro-operations (no generic values, no event kept), then
//! paired into transactions in file order by a [`TxnBuilder`]. A line of another shape (a
//! nemesis event, an unusual field) is read by the generic reader and paired the same way;
//! a malformed line is explained by it. What is read, accepted, warned about and rejected
//! is exactly what [`formats::read_file`] then [`from_history`] would do; only faster and in
//! a fraction of the memory. Other formats are read by [`formats::read_file`], then paired.
//!
//! [`from_history`]: super::from_history

use super::transactions::{RawMop, TxnBuilder, TxnDataError, TxnHistory, Workload};
use crate::formats::jsonl::{self, ChunkSink, LineSpan};
use crate::formats::jsonl_fast::{self, TxnLine};
use crate::formats::{self, DataError, Format, IndexOrder, ReadError, ReadOptions};
use crate::history::Event;
use rayon::prelude::*;
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
    reader.finish().map_err(|(error, line)| TxnReadError::Txn {
        path: path.to_owned(),
        line,
        error,
    })
}

/// One line, typed.
enum Parsed {
    Typed(TxnLine),
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
        let index = self.lines.len() as u64;
        let (given, has_time) = match parsed {
            Parsed::Typed(t) => (t.index, t.has_time),
            Parsed::Generic(e) => (
                (e.index != jsonl::NO_INDEX).then_some(e.index),
                e.time.is_some(),
            ),
            Parsed::Malformed => unreachable!("malformed lines are handled by the caller"),
        };
        self.order.note(given, number);
        self.recorded &= given == Some(index) && has_time;
        self.lines.push(number);
        if self.txn_error.is_some() {
            return;
        }
        let pushed = match parsed {
            Parsed::Typed(t) => {
                let (a, b) = t.mops;
                self.builder.push_typed(
                    index,
                    t.process,
                    t.kind,
                    &part.mops[a as usize..b as usize],
                    &part.elements,
                )
            }
            Parsed::Generic(e) => {
                e.index = index;
                self.builder.push_event(e)
            }
            Parsed::Malformed => unreachable!(),
        };
        if let Err(error) = pushed {
            self.txn_error = Some(error);
        }
    }

    fn finish(self) -> Result<TxnReadOutput, (TxnDataError, Option<usize>)> {
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
            format: Format::Jsonl,
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
