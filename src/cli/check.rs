//! `splitbrain check`: offline checking of history files: linearizability against a model,
//! or, with `--model list-append|rw-register`, transactional anomalies against a
//! consistency model (`--consistency`, see docs/transactions.md).
//!
//! Each file is read (format detected unless named), checked against the model, and
//! reported: a table per key (or a summary line for many keys), the counterexample of an
//! invalid key in words, the reader's warnings, parse and check times. `--json` prints one
//! JSON document instead. Exit codes: 0 valid, 1 invalid, 2 unknown (a limit reached, or
//! nothing to check), 64 bad usage, 65 bad data (a file malformed, or not fitting the
//! model), 66 a file missing or unreadable.
//!
//! Every key is checked (within the limits) unless `--first-failure`; the text output
//! counts the invalid keys and shows the first counterexample, `--json` carries them all.
//! A check that lasts over [`PROGRESS_AFTER`] prints a progress line on stderr every
//! [`PROGRESS_EVERY`], so a slow search is not mistaken for a hang.

use crate::exit;
use anyhow::Context;
use clap::Args;
use serde::Serialize;
use splitbrain_checkers::formats::{self, Format, Independent, ReadError, ReadOptions, ReadOutput};
use splitbrain_checkers::linearizability::{self, CheckOptions, CheckProgress, NilReads};
use splitbrain_checkers::models::{ModelKind, ModelSpec};
use splitbrain_checkers::txn::consistency::ConsistencyModel;
use splitbrain_checkers::txn::{self, TxnCheckOptions, TxnCheckResult, Workload};
use splitbrain_checkers::verdict::OpSummary;
use splitbrain_checkers::{CheckResult, Counterexample, History, KeyResult, Value, Verdict};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tabled::builder::Builder;
use tabled::settings::Style;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// History files to check: our JSON Lines, Jepsen EDN, or Jepsen log lines. A run
    /// directory (results/<campaign>/<run>) is checked again with the run's own settings.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The model to check against: register, cas-register, kv, kv-append, mutex, set,
    /// fifo-queue (linearizability); list-append, rw-register (transactions, see
    /// --consistency).
    #[arg(long, default_value = "cas-register", value_parser = parse_model)]
    pub model: CheckModel,
    /// For transactional models: the consistency model to check, one of
    /// strict-serializable (default), serializable, snapshot-isolation, repeatable-read,
    /// read-committed, read-uncommitted.
    #[arg(long, value_parser = parse_consistency)]
    pub consistency: Option<ConsistencyModel>,
    /// The history format (jsonl, edn, jepsen-log); detected from the content if not given.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Client values are Jepsen independent tuples `[key value]`: split them into keys.
    /// Without this flag tuples are split only when the history unambiguously uses them.
    #[arg(long)]
    pub independent: bool,
    /// Print one JSON document (per-file results and the overall verdict) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Keys checked in parallel (default: the number of CPUs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Give up with `unknown` after this long per file, e.g. `30s`, `2m` (default: no limit).
    #[arg(long, value_parser = super::duration::parse_duration)]
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` when the search's memo exceeds this, e.g. `4GiB`, `512MiB`
    /// (default: half the RAM, at most 8 GiB).
    #[arg(long, value_parser = parse_size)]
    pub memory_budget: Option<u64>,
    /// The initial value of each register (EDN: `0`, `nil`, `"x"`; default nil).
    #[arg(long, value_parser = parse_initial_value)]
    pub initial_value: Option<Value>,
    /// Also read every failed cas as an observation that the register did not hold the
    /// expected value (a failed cas whose error is compare-failed/mismatch is always read so).
    #[arg(long)]
    pub failed_cas_observes: bool,
    /// Stop at the first invalid key instead of checking every key (faster; the keys left
    /// are `unknown`).
    #[arg(long)]
    pub first_failure: bool,
    /// How register, cas-register and kv read a read that returned nil: `value` (the
    /// register held nil, i.e. was never written) or `unknown` (Knossos' reading: a nil read
    /// matches any state).
    #[arg(long, value_name = "READING", default_value = "value", value_parser = parse_nil_reads)]
    pub nil_reads: NilReads,
    /// A line (or EDN top-level form) longer than this is bad data, e.g. `1MiB` (default
    /// 256MiB; at least 1KiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_limit_size)]
    pub max_line_size: Option<u64>,
    /// A larger input is bad data, e.g. `64GiB` (default 16GiB for a regular file, 1GiB for
    /// a pipe or device; at least 1KiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_limit_size)]
    pub max_input_size: Option<u64>,
}

fn parse_nil_reads(s: &str) -> Result<NilReads, String> {
    s.parse()
}

/// What `--model` names: a sequential model checked for linearizability, or a
/// transactional workload checked for the anomalies a consistency model forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckModel {
    Operations(ModelKind),
    Transactions(Workload),
}

fn parse_model(s: &str) -> Result<CheckModel, String> {
    if let Ok(workload) = s.parse::<Workload>() {
        return Ok(CheckModel::Transactions(workload));
    }
    s.parse::<ModelKind>()
        .map(CheckModel::Operations)
        .map_err(|e| format!("{e}; or a transactional workload: list-append, rw-register"))
}

fn parse_consistency(s: &str) -> Result<ConsistencyModel, String> {
    s.parse()
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("expected a size such as 4GiB or 512MiB: {e}"))
}

/// The smallest `--max-line-size` and `--max-input-size`: one op line of a real history is
/// a few hundred bytes.
const MIN_LINE_SIZE: u64 = 1 << 10;

fn parse_limit_size(s: &str) -> Result<u64, String> {
    let size = parse_size(s)?;
    if size < MIN_LINE_SIZE {
        return Err(format!(
            "expected at least 1KiB ({MIN_LINE_SIZE} bytes), found {size} bytes"
        ));
    }
    Ok(size)
}

fn parse_initial_value(s: &str) -> Result<Value, String> {
    formats::edn::parse_value(s).map_err(|e| format!("expected an EDN value: {e}"))
}

/// What became of one file.
#[derive(Debug, Serialize)]
struct FileReport {
    file: PathBuf,
    format: Option<&'static str>,
    events: usize,
    independent: bool,
    parse_seconds: f64,
    check_seconds: f64,
    warnings: Vec<String>,
    /// `None` when the file could not be checked (see `error`).
    verdict: Option<Verdict>,
    result: Option<CheckResult>,
    error: Option<String>,
    /// The exit code `error` calls for (65 bad data, 66 missing input).
    #[serde(skip)]
    error_code: u8,
    /// The first counterexample is a nil read, and its key is valid when re-checked with
    /// `--nil-reads unknown` (Knossos' reading): worth a note.
    #[serde(skip)]
    valid_as_knossos_reads_nil: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    model: &'static str,
    files: Vec<FileReport>,
    verdict: Option<Verdict>,
    exit_code: u8,
}

pub fn run(args: CheckArgs) -> super::Outcome {
    if let [dir] = args.files.as_slice() {
        if dir.is_dir() {
            return recheck_run_dir(dir, args.json);
        }
    }
    let kind = match args.model {
        CheckModel::Transactions(workload) => return run_transactions(&args, workload),
        CheckModel::Operations(_) if args.consistency.is_some() => {
            crate::stderr_line!(
                "splitbrain: --consistency applies to transactional models (--model list-append or rw-register)"
            );
            return Ok(exit::USAGE);
        }
        CheckModel::Operations(kind) => kind,
    };
    let spec = ModelSpec {
        kind,
        initial: args.initial_value.clone().unwrap_or_default(),
    };
    let registers = [ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv];
    if args.nil_reads != NilReads::Value && !registers.contains(&spec.kind) {
        return Err(exit::Failure::usage(format!(
            "--nil-reads applies to register, cas-register and kv, not {}",
            spec.kind.name()
        )));
    }
    let defaults = CheckOptions::default();
    let opts = CheckOptions {
        time_limit: args.time_limit,
        memory_budget: Some(
            args.memory_budget
                .unwrap_or_else(crate::analysis::default_memory_budget),
        ),
        jobs: args.jobs.map_or(defaults.jobs, |j| j as usize),
        failed_cas_observes: args.failed_cas_observes,
        first_failure: args.first_failure,
        nil_reads: args.nil_reads,
        progress: None,
        witness: false,
    };
    let read_opts = read_options(
        &args,
        if args.independent {
            Independent::Force
        } else {
            Independent::Auto
        },
    );

    // Knossos' reading is worth suggesting only where it applies and is not already asked.
    let suggest_nil_reads = args.nil_reads == NilReads::Value && registers.contains(&spec.kind);
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let report = check_file(path, &read_opts, &spec, &opts, suggest_nil_reads);
        if !args.json {
            print_file(&report);
        }
        files.push(report);
    }

    let (verdict, exit_code) = overall(
        files
            .iter()
            .map(|f| (f.verdict, f.error.as_ref().map(|_| f.error_code))),
    );
    let report = Report {
        model: spec.kind.name(),
        files,
        verdict,
        exit_code,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("rendering the JSON report")?;
        super::emit(&format!("{text}\n"));
    } else {
        print_overall(&report);
    }
    Ok(exit_code)
}

fn check_file(
    path: &Path,
    read_opts: &ReadOptions,
    spec: &ModelSpec,
    opts: &CheckOptions,
    suggest_nil_reads: bool,
) -> FileReport {
    let mut report = FileReport {
        file: path.to_owned(),
        format: None,
        events: 0,
        independent: false,
        parse_seconds: 0.0,
        check_seconds: 0.0,
        warnings: Vec::new(),
        verdict: None,
        result: None,
        error: None,
        error_code: exit::DATA_ERR,
        valid_as_knossos_reads_nil: false,
    };
    let (read, parse_seconds) = read_timed(path, read_opts);
    report.parse_seconds = parse_seconds;
    let read: ReadOutput = match read {
        Ok(read) => read,
        Err((error, code)) => {
            report.error_code = code;
            report.error = Some(error);
            return report;
        }
    };
    report.format = Some(read.format.name());
    report.events = read.history.events.len();
    report.independent = read.independent;
    report.warnings = read.warnings.clone();

    let check_start = Instant::now();
    let progress = Arc::new(CheckProgress::default());
    let opts = CheckOptions {
        progress: Some(progress.clone()),
        ..opts.clone()
    };
    let reporter = ProgressReporter::start(path, progress);
    let checked = linearizability::check(&read.history, spec, &opts);
    reporter.stop();
    report.check_seconds = check_start.elapsed().as_secs_f64();
    match checked {
        Ok(result) => {
            let first = result.keys.iter().find_map(|k| k.counterexample.as_ref());
            report.valid_as_knossos_reads_nil = suggest_nil_reads
                && first.is_some_and(|cex| {
                    is_nil_read(&cex.operation)
                        && valid_as_knossos_reads_nil(&read.history, cex, spec, &opts)
                });
            report.verdict = Some(result.verdict);
            report.result = Some(result);
        }
        Err(e) => {
            // The event index is dense in file order, so it maps back to a line.
            let location = read
                .line_of(e.index)
                .map_or_else(String::new, |line| format!("{line}:"));
            report.error = Some(format!(
                "{}:{location} event {}: {}",
                path.display(),
                e.index,
                e.message
            ));
        }
    }
    // Freeing a large history (hundreds of MiB of events) takes a noticeable fraction of a
    // second: do it beside the next file's work, or let the process exit first.
    std::thread::spawn(move || drop(read));
    report
}

/// A check lasting longer than this prints progress on stderr (shorter ones print none).
const PROGRESS_AFTER: Duration = Duration::from_secs(2);
/// How often a long check prints progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Prints a progress line on stderr every [`PROGRESS_EVERY`] once a check has lasted
/// [`PROGRESS_AFTER`], whether stderr is a terminal or a CI log (stdout, and so `--json`,
/// is left alone).
struct ProgressReporter {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressReporter {
    fn start(path: &Path, progress: Arc<CheckProgress>) -> ProgressReporter {
        let (stop, stopped) = mpsc::channel::<()>();
        let name = path.display().to_string();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut wait = PROGRESS_AFTER;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                let p = progress.snapshot();
                let memory = resident_bytes()
                    .map_or_else(|| "?".to_owned(), |b| bytesize::ByteSize(b).to_string());
                crate::stderr_line!(
                    "splitbrain: checking {name}: {:.0}s, keys {} of {} done, {} configurations explored, memory {memory} (search memo {})",
                    started.elapsed().as_secs_f64(),
                    p.keys_done,
                    p.keys_total,
                    p.configurations,
                    bytesize::ByteSize(p.memo_bytes)
                );
                wait = PROGRESS_EVERY;
            }
        });
        ProgressReporter { stop, thread }
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// The resident memory of this process (`VmRSS`), when /proc tells it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// A short duration for tables: `850 µs`, `12.3 ms`, `4.56 s`.
fn seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn key_name(key: &Option<Value>) -> String {
    key.as_ref()
        .map_or_else(|| "(single)".to_owned(), Value::to_string)
}

/// Keys listed one per row up to this many; beyond it, a summary line.
const MAX_KEY_ROWS: usize = 20;

fn key_table(keys: &[&KeyResult]) -> String {
    let mut builder = Builder::default();
    builder.push_record([
        "key",
        "operations",
        "verdict",
        "time",
        "configurations",
        "note",
    ]);
    for k in keys {
        builder.push_record([
            key_name(&k.key),
            k.operations.to_string(),
            k.verdict.to_string(),
            seconds(k.elapsed.as_secs_f64()),
            k.configurations.to_string(),
            k.cause.clone().unwrap_or_default(),
        ]);
    }
    builder.build().with(Style::rounded()).to_string()
}

fn print_file(report: &FileReport) {
    let mut out = String::new();
    let name = report.file.display();
    let _ = writeln!(out, "== {name}");
    // The error is said once, on stderr; the verdict line below only says "not checked".
    if let Some(error) = &report.error {
        crate::stderr_line!("splitbrain: {error}");
    }
    if let Some(format) = report.format {
        let _ = writeln!(
            out,
            "read {} events ({format}{}) in {}",
            report.events,
            if report.independent {
                ", independent keys"
            } else {
                ""
            },
            seconds(report.parse_seconds)
        );
    }
    if let Some(result) = &report.result {
        let _ = writeln!(
            out,
            "checked {} operations on {} key(s) with model {} in {}; {} configurations explored",
            result.operations,
            result.keys.len(),
            result.model,
            seconds(report.check_seconds),
            result.configurations
        );
        if result.keys.is_empty() {
            // Nothing to tabulate; the verdict line says why.
        } else if result.keys.len() <= MAX_KEY_ROWS {
            let all: Vec<&KeyResult> = result.keys.iter().collect();
            let _ = writeln!(out, "{}", key_table(&all));
        } else {
            let count = |v: Verdict| result.keys.iter().filter(|k| k.verdict == v).count();
            let _ = writeln!(
                out,
                "{} keys: {} valid, {} invalid, {} unknown",
                result.keys.len(),
                count(Verdict::Valid),
                count(Verdict::Invalid),
                count(Verdict::Unknown)
            );
            let not_valid: Vec<&KeyResult> = result
                .keys
                .iter()
                .filter(|k| k.verdict != Verdict::Valid)
                .take(MAX_KEY_ROWS)
                .collect();
            if !not_valid.is_empty() {
                let _ = writeln!(out, "{}", key_table(&not_valid));
            }
        }
        let mut counterexamples = result.keys.iter().filter_map(|k| k.counterexample.as_ref());
        if let Some(first) = counterexamples.next() {
            let invalid = 1 + counterexamples.count();
            if invalid > 1 {
                let _ = writeln!(
                    out,
                    "{invalid} of {} keys invalid; the first counterexample (--json carries all {invalid}):",
                    result.keys.len()
                );
            } else {
                let _ = writeln!(out, "1 of {} key(s) invalid:", result.keys.len());
            }
            out.push_str(&describe_counterexample(first));
            if report.valid_as_knossos_reads_nil {
                let _ = writeln!(
                    out,
                    "note: that read returned nil; this key is valid when a nil read matches any state, as Knossos reads it (ask for that reading with --nil-reads unknown)"
                );
            }
        }
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let cause = report.result.as_ref().and_then(|r| r.cause.as_deref());
    let verdict = match (&report.verdict, cause) {
        (Some(v), Some(cause)) => format!("{v}: {cause}"),
        (Some(v), None) => v.to_string(),
        (None, _) => "not checked".to_owned(),
    };
    let _ = writeln!(out, "{name}: {verdict}");
    super::emit(&out);
}

/// Whether the key of `cex` is valid when checked again with `--nil-reads unknown`.
fn valid_as_knossos_reads_nil(
    history: &History,
    cex: &Counterexample,
    spec: &ModelSpec,
    opts: &CheckOptions,
) -> bool {
    let events = history
        .events
        .iter()
        .filter(|e| e.key == cex.key)
        .cloned()
        .collect();
    let opts = CheckOptions {
        nil_reads: NilReads::Unknown,
        first_failure: true,
        progress: None,
        ..opts.clone()
    };
    linearizability::check(&History::new(events), spec, &opts)
        .is_ok_and(|r| r.verdict == Verdict::Valid)
}

/// An `ok` read that returned nil: the reading `--nil-reads` is about.
fn is_nil_read(op: &OpSummary) -> bool {
    op.f == "read" && op.outcome == "ok" && op.output.as_ref().is_some_and(Value::is_nil)
}

/// A counterexample under its key's heading, in the words of
/// [`crate::analysis::CounterexampleText`], indented.
fn describe_counterexample(cex: &Counterexample) -> String {
    let mut out = format!("counterexample (key {}):\n", key_name(&cex.key));
    for line in crate::analysis::CounterexampleText(cex).to_string().lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn print_overall(report: &Report) {
    let count = |v: Verdict| report.files.iter().filter(|f| f.verdict == Some(v)).count();
    let errors = report.files.iter().filter(|f| f.error.is_some()).count();
    let verdict = if report.exit_code == exit::NO_INPUT {
        "input missing".to_owned()
    } else if errors > 0 {
        "bad data".to_owned()
    } else {
        report
            .verdict
            .map_or_else(|| "valid".to_owned(), |v| v.to_string())
    };
    super::emit(&format!(
        "overall: {verdict} ({} file(s): {} valid, {} invalid, {} unknown, {} not checked)\n",
        report.files.len(),
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown),
        errors
    ));
}

/// `check RUN_DIR`: the stored history checked again with the model, time limit and
/// evidence threshold of the run's `campaign.json`; the run directory is left unchanged.
/// A directory that is not a run (no `history.jsonl` or `campaign.json`) is missing input
/// (66). A run without `results.json` never finished (its controller was killed): its
/// history is a prefix, so it is never `valid` (`unknown`, unless invalid).
fn recheck_run_dir(dir: &Path, json: bool) -> super::Outcome {
    let (_, mut checked) = match crate::report::recheck_run(dir) {
        Ok(done) => done,
        Err(e) => {
            let kind = match e {
                crate::report::ReportError::NotARun { .. } => exit::FailureKind::NoInput,
                _ => exit::FailureKind::BadData,
            };
            return Err(exit::Failure::new(kind, e));
        }
    };
    let finished = dir.join(crate::results::files::RESULTS).is_file();
    let mut table = std::mem::take(&mut checked.table);
    if !finished {
        crate::stderr_line!("splitbrain: warning: {}: {UNFINISHED_RUN}", dir.display());
        let _ = writeln!(table, "warning: {UNFINISHED_RUN}");
        if checked.verdict == Verdict::Valid {
            checked.verdict = Verdict::Unknown;
            checked.results.verdict = Verdict::Unknown;
            checked.results.cause = Some(UNFINISHED_RUN_CAUSE.to_owned());
            let _ = writeln!(table, "{}: unknown: {UNFINISHED_RUN_CAUSE}", dir.display());
        }
        checked.results.finished = false;
    }
    if json {
        super::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&checked.results)?
        ));
    } else {
        super::emit(&table);
    }
    Ok(checked.verdict.exit_code() as u8)
}

/// One file checked for transactional anomalies.
#[derive(Debug, Serialize)]
struct TxnFileReport {
    file: PathBuf,
    format: Option<&'static str>,
    events: usize,
    parse_seconds: f64,
    check_seconds: f64,
    warnings: Vec<String>,
    /// `None` when the file could not be checked (see `error`).
    verdict: Option<Verdict>,
    result: Option<TxnCheckResult>,
    error: Option<String>,
    /// The exit code `error` calls for (65 bad data, 66 missing input).
    #[serde(skip)]
    error_code: u8,
}

#[derive(Debug, Serialize)]
struct TxnReport {
    model: &'static str,
    consistency: ConsistencyModel,
    files: Vec<TxnFileReport>,
    verdict: Option<Verdict>,
    exit_code: u8,
}

/// The verdict over every file, and the exit code: the first unreadable file's (65 or 66),
/// else the combined verdict's. Each file gives its verdict, or the exit code of its error.
fn overall(files: impl Iterator<Item = (Option<Verdict>, Option<u8>)>) -> (Option<Verdict>, u8) {
    let mut verdict: Option<Verdict> = None;
    let mut first_error = None;
    for (file_verdict, error_code) in files {
        first_error = first_error.or(error_code);
        if let Some(v) = file_verdict {
            verdict = Some(verdict.map_or(v, |all| all.combine(v)));
        }
    }
    let exit_code = match (first_error, verdict) {
        (Some(code), _) => code,
        (None, Some(v)) => v.exit_code() as u8,
        // Every file has a verdict or an error, and there is at least one file.
        (None, None) => exit::SOFTWARE,
    };
    (verdict, exit_code)
}

/// Reads one history file, timed; a failure is its message and exit code (66 when the file
/// cannot be read at all, 65 for bad data).
fn read_timed(path: &Path, read_opts: &ReadOptions) -> (Result<ReadOutput, (String, u8)>, f64) {
    let started = Instant::now();
    let read = formats::read_file(path, read_opts).map_err(|e| {
        let code = if matches!(e, ReadError::Io { .. }) {
            exit::NO_INPUT
        } else {
            exit::DATA_ERR
        };
        (e.to_string(), code)
    });
    (read, started.elapsed().as_secs_f64())
}

/// How the command line asks for histories to be read.
fn read_options(args: &CheckArgs, independent: Independent) -> ReadOptions {
    ReadOptions {
        format: args.format,
        independent,
        max_line_bytes: args.max_line_size.map_or(formats::MAX_LINE_BYTES, |size| {
            usize::try_from(size).unwrap_or(usize::MAX)
        }),
        max_input_bytes: args.max_input_size,
    }
}

/// `check FILE… --model list-append|rw-register [--consistency MODEL]`.
fn run_transactions(args: &CheckArgs, workload: Workload) -> super::Outcome {
    let mut opts = TxnCheckOptions::new(
        workload,
        args.consistency
            .unwrap_or(ConsistencyModel::StrictSerializable),
    );
    opts.time_limit = args.time_limit;
    opts.memory_budget = Some(
        args.memory_budget
            .unwrap_or_else(crate::analysis::default_memory_budget),
    );
    // A transaction's value is a list of micro-operations, never an independent tuple.
    let read_opts = read_options(args, Independent::Off);
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let report = check_txn_file(path, &read_opts, &opts);
        if !args.json {
            print_txn_file(&report);
        }
        files.push(report);
    }
    let (verdict, exit_code) = overall(
        files
            .iter()
            .map(|f| (f.verdict, f.error.as_ref().map(|_| f.error_code))),
    );
    let report = TxnReport {
        model: workload.name(),
        consistency: opts.consistency,
        files,
        verdict,
        exit_code,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("rendering the JSON report")?;
        super::emit(&format!("{text}\n"));
    } else {
        let count = |v: Verdict| report.files.iter().filter(|f| f.verdict == Some(v)).count();
        let errors = report.files.iter().filter(|f| f.error.is_some()).count();
        let overall = if errors > 0 {
            "bad data".to_owned()
        } else {
            verdict.map_or_else(|| "valid".to_owned(), |v| v.to_string())
        };
        super::emit(&format!(
            "overall: {overall} ({} file(s): {} valid, {} invalid, {} unknown, {} not checked)\n",
            report.files.len(),
            count(Verdict::Valid),
            count(Verdict::Invalid),
            count(Verdict::Unknown),
            errors
        ));
    }
    Ok(exit_code)
}

fn check_txn_file(path: &Path, read_opts: &ReadOptions, opts: &TxnCheckOptions) -> TxnFileReport {
    let mut report = TxnFileReport {
        file: path.to_owned(),
        format: None,
        events: 0,
        parse_seconds: 0.0,
        check_seconds: 0.0,
        warnings: Vec::new(),
        verdict: None,
        result: None,
        error: None,
        error_code: exit::DATA_ERR,
    };
    // Read straight into transactions (streamed for JSON Lines).
    let started = Instant::now();
    let read = txn::read::read_file(path, read_opts, opts.workload);
    report.parse_seconds = started.elapsed().as_secs_f64();
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            report.error_code = match e {
                txn::read::TxnReadError::Read(ReadError::Io { .. }) => exit::NO_INPUT,
                _ => exit::DATA_ERR,
            };
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.format = Some(read.format.name());
    report.events = read.events;
    report.warnings = read.warnings.clone();
    let check_start = Instant::now();
    let checked = txn::check_txns(&read.history, opts);
    report.check_seconds = check_start.elapsed().as_secs_f64();
    match checked {
        Ok(result) => {
            report.verdict = Some(result.verdict);
            report.result = Some(result);
        }
        Err(e) => {
            let location = read
                .line_of(e.index)
                .map_or_else(String::new, |line| format!("{line}:"));
            report.error = Some(format!("{}:{location} {e}", path.display()));
        }
    }
    std::thread::spawn(move || drop(read));
    report
}

fn print_txn_file(report: &TxnFileReport) {
    let mut out = String::new();
    let name = report.file.display();
    let _ = writeln!(out, "== {name}");
    if let Some(error) = &report.error {
        crate::stderr_line!("splitbrain: {error}");
    }
    if let Some(format) = report.format {
        let _ = writeln!(
            out,
            "read {} events ({format}) in {}",
            report.events,
            seconds(report.parse_seconds)
        );
    }
    if let Some(result) = &report.result {
        out.push_str(&result.text());
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let verdict = match (&report.verdict, &report.error) {
        (Some(v), _) => v.to_string(),
        (None, Some(error)) => format!("not checked: {error}"),
        (None, None) => "not checked".to_owned(),
    };
    let _ = writeln!(out, "{name}: {verdict}");
    super::emit(&out);
}

/// Said of a run directory without `results.json`.
const UNFINISHED_RUN: &str = "the run did not finish (no results.json; its controller was probably killed): the history is a prefix of the run";
/// The cause of an unfinished run's `unknown` verdict.
const UNFINISHED_RUN_CAUSE: &str = "the run did not finish: the history is a prefix";
