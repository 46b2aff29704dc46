//! `splitbrain check`: offline linearizability checking of history files.
//!
//! Each file is read (format detected unless named), checked against the model, and
//! reported: a table per key (or a summary line for many keys), the counterexample of an
//! invalid key in words, the reader's warnings, parse and check times. `--json` prints one
//! JSON document instead. Exit codes: 0 valid, 1 invalid, 2 unknown, 64 bad usage, 65 bad
//! data (a file unreadable or malformed, or not fitting the model).

use crate::exit;
use anyhow::Context;
use clap::Args;
use serde::Serialize;
use splitbrain_checkers::formats::{self, Format, Independent, ReadOptions, ReadOutput};
use splitbrain_checkers::linearizability::{self, CheckOptions};
use splitbrain_checkers::models::{ModelKind, ModelSpec};
use splitbrain_checkers::verdict::OpSummary;
use splitbrain_checkers::{CheckResult, Counterexample, KeyResult, Value, Verdict};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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
    /// fifo-queue.
    #[arg(long, default_value = "cas-register", value_parser = parse_model)]
    pub model: ModelKind,
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
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
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

fn parse_initial_value(s: &str) -> Result<Value, String> {
    formats::edn::parse_value(s).map_err(|e| format!("expected an EDN value: {e}"))
}

/// min(8 GiB, half of MemTotal); 4 GiB when /proc/meminfo cannot be read.
fn default_memory_budget() -> u64 {
    const GIB: u64 = 1 << 30;
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map(|kib| kib * 1024);
    total.map_or(4 * GIB, |t| (t / 2).min(8 * GIB))
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
}

#[derive(Debug, Serialize)]
struct Report {
    model: &'static str,
    files: Vec<FileReport>,
    verdict: Option<Verdict>,
    exit_code: u8,
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    if let [dir] = args.files.as_slice() {
        if dir.is_dir() {
            return recheck_run_dir(dir, args.json);
        }
    }
    let spec = ModelSpec {
        kind: args.model,
        initial: args.initial_value.clone().unwrap_or_default(),
    };
    let defaults = CheckOptions::default();
    let opts = CheckOptions {
        time_limit: args.time_limit,
        memory_budget: Some(args.memory_budget.unwrap_or_else(default_memory_budget)),
        jobs: args.jobs.map_or(defaults.jobs, |j| j as usize),
        failed_cas_observes: args.failed_cas_observes,
    };
    let read_opts = ReadOptions {
        format: args.format,
        independent: if args.independent {
            Independent::Force
        } else {
            Independent::Auto
        },
    };

    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let report = check_file(path, &read_opts, &spec, &opts);
        if !args.json {
            print_file(&report);
        }
        files.push(report);
    }

    let any_error = files.iter().any(|f| f.error.is_some());
    let verdict = files
        .iter()
        .filter_map(|f| f.verdict)
        .reduce(Verdict::combine);
    let exit_code = if any_error {
        exit::DATA_ERR
    } else {
        verdict.map_or(exit::VALID, |v| v.exit_code() as u8)
    };
    let report = Report {
        model: spec.kind.name(),
        files,
        verdict,
        exit_code,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("rendering the JSON report")?;
        println!("{text}");
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
    };
    let parse_start = Instant::now();
    let read = formats::read_file(path, read_opts);
    report.parse_seconds = parse_start.elapsed().as_secs_f64();
    let read: ReadOutput = match read {
        Ok(read) => read,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.format = Some(read.format.name());
    report.events = read.history.events.len();
    report.independent = read.independent;
    report.warnings = read.warnings.clone();

    let check_start = Instant::now();
    let checked = linearizability::check(&read.history, spec, opts);
    report.check_seconds = check_start.elapsed().as_secs_f64();
    match checked {
        Ok(result) => {
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
    if let Some(error) = &report.error {
        eprintln!("splitbrain: {error}");
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
        if result.keys.len() <= MAX_KEY_ROWS {
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
        for key in &result.keys {
            if let Some(cex) = &key.counterexample {
                out.push_str(&describe_counterexample(cex));
            }
        }
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
    print!("{out}");
}

fn describe_op(op: &OpSummary) -> String {
    let output = match &op.output {
        Some(v) => format!(" -> {v}"),
        None => String::new(),
    };
    format!(
        "#{} process {} {} {}{output} ({})",
        op.index, op.process, op.f, op.value, op.outcome
    )
}

/// Ops of the prefix shown before the failing op.
const PREFIX_TAIL: usize = 10;

fn describe_counterexample(cex: &Counterexample) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "counterexample (key {}):", key_name(&cex.key));
    let _ = writeln!(
        out,
        "  no linearization can place {}",
        describe_op(&cex.operation)
    );
    let skipped = cex.prefix.len().saturating_sub(PREFIX_TAIL);
    let _ = writeln!(
        out,
        "  after the longest linearizable prefix ({} ops{}):",
        cex.prefix.len(),
        if skipped > 0 {
            format!(", last {PREFIX_TAIL} shown")
        } else {
            String::new()
        }
    );
    for op in &cex.prefix[skipped..] {
        let _ = writeln!(out, "    {}", describe_op(op));
    }
    let _ = writeln!(
        out,
        "  states reachable there: {}",
        if cex.states.is_empty() {
            "none".to_owned()
        } else {
            cex.states.join(", ")
        }
    );
    out
}

fn print_overall(report: &Report) {
    let count = |v: Verdict| report.files.iter().filter(|f| f.verdict == Some(v)).count();
    let errors = report.files.iter().filter(|f| f.error.is_some()).count();
    let verdict = if errors > 0 {
        "bad data".to_owned()
    } else {
        report
            .verdict
            .map_or_else(|| "valid".to_owned(), |v| v.to_string())
    };
    println!(
        "overall: {verdict} ({} file(s): {} valid, {} invalid, {} unknown, {} not checked)",
        report.files.len(),
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown),
        errors
    );
}

/// `check RUN_DIR`: the stored history checked again with the model, time limit and
/// evidence threshold of the run's `campaign.json`; the run directory is left unchanged.
fn recheck_run_dir(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let (_, checked) = match crate::report::recheck_run(dir) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("splitbrain: {e}");
            return Ok(exit::DATA_ERR);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&checked.json)?);
    } else {
        print!("{}", checked.table);
    }
    Ok(checked.verdict.exit_code() as u8)
}
