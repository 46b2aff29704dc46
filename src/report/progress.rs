//! The progress of a running campaign on stderr: on a terminal one line updated in place
//! (`ops 1234, 98.2% ok, faults active 1, 12s/30s`); otherwise a plain line every few
//! seconds, which reads well in CI logs.
//!
//! It follows the history file as the recorder streams it, so it needs no hook into the
//! clients or the nemesis and costs them nothing.

use serde::Deserialize;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    Off,
    /// A line redrawn in place (stderr is a terminal).
    Live,
    /// A plain line every [`PLAIN_INTERVAL`].
    Plain,
}

impl ProgressStyle {
    /// Live on a terminal, plain lines otherwise.
    pub fn for_stderr() -> ProgressStyle {
        if std::io::stderr().is_terminal() {
            ProgressStyle::Live
        } else {
            ProgressStyle::Plain
        }
    }
}

const LIVE_INTERVAL: Duration = Duration::from_millis(250);
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// Counts read from the history so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub invoked: u64,
    pub ok: u64,
    pub not_ok: u64,
    pub faults_active: i64,
    pub faults_started: u64,
}

impl Counts {
    pub fn line(&self, elapsed: Duration, planned: Duration) -> String {
        let done = self.ok + self.not_ok;
        let ok = if done == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", self.ok as f64 * 100.0 / done as f64)
        };
        format!(
            "ops {}, {ok} ok, faults active {} ({} so far), {:.0}s/{:.0}s",
            self.invoked,
            self.faults_active.max(0),
            self.faults_started,
            elapsed.as_secs_f64(),
            planned.as_secs_f64()
        )
    }

    /// Takes one history line into account.
    pub fn observe(&mut self, line: &str) {
        #[derive(Deserialize)]
        struct Line<'a> {
            process: serde_json::Value,
            #[serde(rename = "type")]
            kind: &'a str,
            f: &'a str,
        }
        let Ok(l) = serde_json::from_str::<Line>(line) else {
            return;
        };
        if l.process.as_str() == Some("nemesis") {
            // A fault counts as active from its start's completion to its undo's.
            if l.kind != "invoke" {
                if crate::nemesis::record::is_stop_event(l.f) {
                    self.faults_active -= 1;
                } else {
                    self.faults_active += 1;
                    self.faults_started += 1;
                }
            }
            return;
        }
        match l.kind {
            "invoke" => self.invoked += 1,
            "ok" => self.ok += 1,
            _ => self.not_ok += 1,
        }
    }
}

/// A running progress display; stopping it (or dropping it) ends the line.
pub struct Progress {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Follows `history` and reports until stopped; `planned` is the main phase's length.
    pub fn start(history: PathBuf, style: ProgressStyle, planned: Duration) -> Progress {
        if style == ProgressStyle::Off {
            return Progress {
                stop: None,
                handle: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || follow(history, style, planned, rx))
            .ok();
        Progress {
            stop: Some(tx),
            handle,
        }
    }

    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn follow(history: PathBuf, style: ProgressStyle, planned: Duration, stop: mpsc::Receiver<()>) {
    let started = Instant::now();
    let interval = if style == ProgressStyle::Live {
        LIVE_INTERVAL
    } else {
        PLAIN_INTERVAL
    };
    let mut counts = Counts::default();
    let mut offset = 0u64;
    let mut partial = String::new();
    loop {
        let stopped = !matches!(
            stop.recv_timeout(interval),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if let Ok(mut file) = std::fs::File::open(&history) {
            let mut fresh = String::new();
            if file.seek(SeekFrom::Start(offset)).is_ok() {
                if let Ok(n) = file.read_to_string(&mut fresh) {
                    offset += n as u64;
                }
            }
            partial.push_str(&fresh);
            // Only whole lines: the recorder may be mid-write.
            if let Some(last) = partial.rfind('\n') {
                for line in partial[..last].lines() {
                    counts.observe(line);
                }
                partial.drain(..=last);
            }
        }
        let line = counts.line(started.elapsed(), planned);
        let mut err = std::io::stderr().lock();
        match style {
            ProgressStyle::Live if stopped => {
                let _ = write!(err, "\r\x1b[K");
            }
            ProgressStyle::Live => {
                let _ = write!(err, "\r\x1b[K{line}");
            }
            _ if stopped => {}
            _ => {
                let _ = writeln!(err, "splitbrain: {line}");
            }
        }
        let _ = err.flush();
        if stopped {
            return;
        }
    }
}
