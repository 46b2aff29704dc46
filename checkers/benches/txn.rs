//! Check time and memory of the transactional checker on generated list-append histories.
//!
//! ```text
//! cargo bench -p splitbrain-checkers --bench txn -- [--txns N] [--keys N] [--write DIR]
//! ```
//!
//! Two histories of `--txns` transactions (default 1,000,000; up to 4 micro-operations
//! each, `--keys` keys in use (default 10,000), 1% indeterminate): one valid by
//! construction, and the same with a single G-single hidden in the middle. For each, under
//! serializable and strict-serializable (which adds process and real-time order), the
//! time of `txn::check` (pairing, inference, graph, search) and the peak resident memory
//! during it (the process's high-water mark is reset before the check) are printed. With
//! `--write DIR` both histories are also written as JSON Lines (`txn-valid.jsonl`,
//! `txn-g-single.jsonl`) so that a whole `splitbrain check` process can be measured.

use splitbrain_checkers::formats::jsonl;
use splitbrain_checkers::txn::anomaly::AnomalyKind;
use splitbrain_checkers::txn::consistency::ConsistencyModel;
use splitbrain_checkers::txn::generate::{self, GenOptions};
use splitbrain_checkers::txn::{self, TxnCheckOptions, Workload};
use splitbrain_checkers::{History, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn current_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system) of this process so far, in seconds (clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn measure(
    name: &str,
    history: &History,
    model: ConsistencyModel,
    expect: Verdict,
    expect_kind: Option<AnomalyKind>,
) -> bool {
    let opts = TxnCheckOptions::new(Workload::ListAppend, model);
    reset_peak();
    let before = current_rss_kib().unwrap_or(0);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let result = txn::check(history, &opts).expect("a generated history reads");
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let peak = peak_rss_kib().unwrap_or(0);
    println!(
        "{name} ({model}): {} transactions, {} edges, verdict {}, check {:.3} s wall, {cpu:.2} s CPU ({:.0} txn/s wall), memory during check +{} MiB (peak {} MiB)",
        result.transactions,
        result.edges,
        result.verdict,
        elapsed.as_secs_f64(),
        result.transactions as f64 / elapsed.as_secs_f64(),
        peak.saturating_sub(before) >> 10,
        peak >> 10
    );
    let mut ok = result.verdict == expect;
    if let Some(kind) = expect_kind {
        ok &= result.anomaly_counts.contains_key(&kind);
        if let Some(a) = result.anomalies.iter().find(|a| a.kind == kind) {
            println!("{}", a.explanation);
        }
    }
    if !ok {
        eprintln!("{name}: unexpected result:\n{}", result.text());
    }
    ok
}

fn main() -> ExitCode {
    let mut txns = 1_000_000usize;
    let mut keys = 10_000u64;
    let mut write: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--txns" => txns = args.next().and_then(|s| s.parse().ok()).expect("--txns N"),
            "--keys" => keys = args.next().and_then(|s| s.parse().ok()).expect("--keys N"),
            "--write" => write = args.next().map(PathBuf::from),
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}");
                return ExitCode::from(64);
            }
        }
    }
    let gen = GenOptions {
        txns,
        keys,
        appends_per_key: 8,
        max_ops: 4,
        concurrency: 10,
        indeterminate: 0.01,
        failed: 0.0,
        seed: 42,
    };
    let started = Instant::now();
    let valid = generate::list_append(&gen);
    println!(
        "generated {} events in {:.1} s",
        valid.events.len(),
        started.elapsed().as_secs_f64()
    );
    let mut ok = true;
    for model in [
        ConsistencyModel::Serializable,
        ConsistencyModel::StrictSerializable,
    ] {
        ok &= measure("valid", &valid, model, Verdict::Valid, None);
    }
    let mut invalid = valid;
    let middle = invalid.events.len() / 2;
    generate::inject(&mut invalid, AnomalyKind::GSingle, middle, 1 << 40, 1 << 40);
    for model in [
        ConsistencyModel::Serializable,
        ConsistencyModel::StrictSerializable,
    ] {
        let kind = Some(AnomalyKind::GSingle);
        ok &= measure("g-single", &invalid, model, Verdict::Invalid, kind);
    }
    if let Some(dir) = write {
        let path = dir.join("txn-g-single.jsonl");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        jsonl::write_history(&mut w, &invalid.events).expect("write");
        println!("wrote {}", path.display());
        let valid = generate::list_append(&gen);
        let path = dir.join("txn-valid.jsonl");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        jsonl::write_history(&mut w, &valid.events).expect("write");
        println!("wrote {}", path.display());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
