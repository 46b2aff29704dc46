//! Recording the history: every invocation and completion, streamed to disk as it happens.
//!
//! [`Recorder::record`] stamps an event with the next index and the time since the run
//! started *under one lock*, so index order is real-time order: an invocation is recorded
//! before its request leaves, a completion after its reply arrived. A writer thread appends
//! whole lines only (it serialises complete events into a buffer and writes the buffer when
//! the queue runs dry), so if the controller dies, the file up to then is a readable,
//! checkable history.

use splitbrain_checkers::formats::jsonl;
use splitbrain_checkers::{Event, EventType, History, Process, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// What a caller knows about an event; the recorder adds index and time.
#[derive(Debug, Clone)]
pub struct Entry {
    pub process: Process,
    pub kind: EventType,
    pub f: String,
    pub key: Option<Value>,
    pub value: Value,
    pub node: Option<String>,
    pub error: Option<Value>,
}

struct Inner {
    next_index: u64,
    tx: Option<mpsc::Sender<Event>>,
    /// When each client process's open operation was invoked (ns since the start).
    open: HashMap<u64, u64>,
    tally: Tally,
}

/// Running counts of the clients' completions, for whoever watches the run as it goes
/// (the feedback nemesis): what the history shows so far, without reading it back.
/// Differences of two tallies describe the window between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Client operations completed `ok`.
    pub ok: u64,
    /// Completed `fail` (did not take effect).
    pub failed: u64,
    /// Completed `info` (indeterminate: timed out, connection lost).
    pub indeterminate: u64,
    /// Sum and maximum of the `ok` operations' latencies, ns.
    pub ok_latency_ns: u64,
    pub max_latency_ns: u64,
}

impl Tally {
    /// Every completion.
    pub fn completed(&self) -> u64 {
        self.ok + self.failed + self.indeterminate
    }

    /// What happened between `earlier` and `self` (the maximum is the later one's when it
    /// grew, else unknown: 0).
    pub fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            ok: self.ok.saturating_sub(earlier.ok),
            failed: self.failed.saturating_sub(earlier.failed),
            indeterminate: self.indeterminate.saturating_sub(earlier.indeterminate),
            ok_latency_ns: self.ok_latency_ns.saturating_sub(earlier.ok_latency_ns),
            max_latency_ns: if self.max_latency_ns > earlier.max_latency_ns {
                self.max_latency_ns
            } else {
                0
            },
        }
    }

    /// Mean latency of the `ok` operations, ns (`None`: none completed).
    pub fn mean_ok_latency_ns(&self) -> Option<u64> {
        (self.ok > 0).then(|| self.ok_latency_ns / self.ok)
    }

    fn count(&mut self, kind: EventType, latency_ns: Option<u64>) {
        match kind {
            EventType::Invoke => {}
            EventType::Ok => {
                self.ok += 1;
                if let Some(l) = latency_ns {
                    self.ok_latency_ns += l;
                    self.max_latency_ns = self.max_latency_ns.max(l);
                }
            }
            EventType::Fail => self.failed += 1,
            EventType::Info => self.indeterminate += 1,
        }
    }
}

/// A cheap handle; clone it into every client task.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    start: Instant,
    writer: Arc<Mutex<Option<WriterThread>>>,
}

/// The writer thread; it hands back every event it wrote.
type WriterThread = JoinHandle<std::io::Result<Vec<Event>>>;

/// Flush the buffer once it holds this much, even while events keep coming.
const FLUSH_BYTES: usize = 256 * 1024;

impl Recorder {
    /// Creates `path` and starts the writer thread. `start` is the run's time origin.
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        // A result file: 0644 whatever the umask.
        let file = crate::results::create_file(path)?;
        Ok(Self::with_writer(file, start))
    }

    fn with_writer(mut out: File, start: Instant) -> Recorder {
        let (tx, rx) = mpsc::channel::<Event>();
        let writer = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || {
                let mut events = Vec::new();
                let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_BYTES * 2);
                while let Ok(first) = rx.recv() {
                    let mut next = Some(first);
                    while let Some(event) = next.take() {
                        jsonl::write_event(&mut buf, &event)?;
                        events.push(event);
                        if buf.len() >= FLUSH_BYTES {
                            break;
                        }
                        next = rx.try_recv().ok();
                    }
                    // Only whole lines reach the file.
                    out.write_all(&buf)?;
                    buf.clear();
                }
                out.flush()?;
                out.sync_all()?;
                Ok(events)
            })
            .expect("spawn history writer thread");
        Recorder {
            inner: Arc::new(Mutex::new(Inner {
                next_index: 0,
                tx: Some(tx),
                open: HashMap::new(),
                tally: Tally::default(),
            })),
            start,
            writer: Arc::new(Mutex::new(Some(writer))),
        }
    }

    /// Records one event now; returns its index. After [`Recorder::finish`] it is a no-op.
    pub fn record(&self, entry: Entry) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let index = inner.next_index;
        inner.next_index += 1;
        let now = self.start.elapsed().as_nanos() as u64;
        if let Process::Client(p) = entry.process {
            if entry.kind == EventType::Invoke {
                inner.open.insert(p, now);
            } else {
                let latency = inner.open.remove(&p).map(|t| now.saturating_sub(t));
                inner.tally.count(entry.kind, latency);
            }
        }
        let event = Event {
            index,
            time: Some(now),
            process: entry.process,
            kind: entry.kind,
            f: entry.f,
            key: entry.key,
            value: entry.value,
            node: entry.node,
            error: entry.error,
        };
        if let Some(tx) = &inner.tx {
            // The writer only stops after `finish`; a send error means it died on an I/O
            // error, which `finish` reports.
            let _ = tx.send(event);
        }
        index
    }

    /// The clients' completions so far.
    pub fn tally(&self) -> Tally {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).tally
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Stops recording, waits for the file to be complete and synced, returns the history.
    pub fn finish(&self) -> std::io::Result<History> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).tx = None;
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        match handle {
            Some(h) => {
                let events = h
                    .join()
                    .map_err(|_| std::io::Error::other("history writer panicked"))??;
                Ok(History::new(events))
            }
            None => Err(std::io::Error::other("history already finished")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: u64, kind: EventType) -> Entry {
        Entry {
            process: Process::Client(p),
            kind,
            f: "write".into(),
            key: Some(Value::Int(1)),
            value: Value::Int(p as i64),
            node: Some("n1".into()),
            error: None,
        }
    }

    #[test]
    fn events_stream_to_disk_in_index_order_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path, Instant::now()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        rec.record(entry(p, EventType::Invoke));
                        rec.record(entry(p, EventType::Ok));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let history = rec.finish().unwrap();
        assert_eq!(history.events.len(), 4000);
        let on_disk = splitbrain_checkers::formats::read_file(&path, &Default::default()).unwrap();
        assert_eq!(on_disk.history.events.len(), 4000);
        let mut last_time = 0;
        for (i, e) in on_disk.history.events.iter().enumerate() {
            assert_eq!(e.index, i as u64);
            let t = e.time.unwrap();
            assert!(t >= last_time, "time goes forward with the index");
            last_time = t;
        }
    }

    #[test]
    fn the_tally_counts_client_completions_and_their_latency() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::create(&dir.path().join("history.jsonl"), Instant::now()).unwrap();
        assert_eq!(rec.tally(), Tally::default());
        rec.record(entry(0, EventType::Invoke));
        rec.record(entry(1, EventType::Invoke));
        rec.record(entry(2, EventType::Invoke));
        std::thread::sleep(std::time::Duration::from_millis(5));
        rec.record(entry(0, EventType::Ok));
        let first = rec.tally();
        rec.record(entry(1, EventType::Fail));
        rec.record(entry(2, EventType::Info));
        // Nemesis events are not client completions.
        rec.record(Entry {
            process: Process::Nemesis,
            ..entry(0, EventType::Info)
        });
        let now = rec.tally();
        assert_eq!((now.ok, now.failed, now.indeterminate), (1, 1, 1));
        assert_eq!(now.completed(), 3);
        assert!(now.mean_ok_latency_ns().unwrap() >= 5_000_000);
        let window = now.since(&first);
        assert_eq!((window.ok, window.failed, window.indeterminate), (0, 1, 1));
        assert_eq!(window.mean_ok_latency_ns(), None);
        rec.finish().unwrap();
    }

    #[test]
    fn lines_are_on_disk_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path, Instant::now()).unwrap();
        rec.record(entry(0, EventType::Invoke));
        // The writer flushes as soon as its queue runs dry.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.ends_with('\n') && text.lines().count() == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "event never reached the file");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        rec.finish().unwrap();
    }
}
