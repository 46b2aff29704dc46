//! Check time and memory of the transactional checker on generated list-append histories.
//!
//! ```text
//! cargo bench -p splitbrain-checkers --bench txn -- [--txns N] [--keys N] [--write DIR]
//!     [--process SPLITBRAIN] [--rounds N] [--formats jsonl,edn] [--in-process|--no-in-process]
//!     [--parts N] [--baseline OTHER_SPLITBRAIN]
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
//!
//! With `--process SPLITBRAIN` (a release build of the `splitbrain` binary, e.g.
//! `target/release/splitbrain`), the histories are written (JSON Lines, and EDN with
//! `--formats jsonl,edn`) into `--write DIR` (default `target/bench-results/txn`) and the
//! whole `splitbrain check FILE --model list-append --consistency serializable` process is
//! timed on each, side by side: `--rounds` rounds (default 3), the files alternating within
//! each round, so that the machine's changing load falls on all of them alike. Each run
//! prints wall time, the child's CPU time (user + system) and its peak resident set size
//! (`VmHWM`, sampled every millisecond), and fails the bench on a wrong verdict. With
//! `--baseline OTHER_SPLITBRAIN` (e.g. a build of the previous version) each file is also
//! checked by that binary right after `--process`, alternating within each round, and the
//! baseline / process ratios of wall and CPU time are printed per run. Relative paths in
//! `--process`, `--baseline` and `--write` are taken from the repository root.

use splitbrain_checkers::formats::{edn, jsonl};
use splitbrain_checkers::txn::anomaly::AnomalyKind;
use splitbrain_checkers::txn::consistency::ConsistencyModel;
use splitbrain_checkers::txn::generate::{self, GenOptions};
use splitbrain_checkers::txn::{self, TxnCheckOptions, Workload};
use splitbrain_checkers::{History, Verdict};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

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

/// CPU time (user + system) of this process's waited-for children so far, in seconds.
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // cutime and cstime: the 16th and 17th fields.
    (ticks(13) + ticks(14)) / 100.0
}

/// Writes a valid history of `parts` generated histories one after the other (each with
/// its own seed, keys and processes, invoked after the previous one completed), so that a
/// history far larger than what fits in memory as events can be written a part at a time.
fn write_parts(path: &Path, gen: &GenOptions, parts: u64) {
    use splitbrain_checkers::history::{Process, Value};
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut offset = 0u64;
    for part in 0..parts {
        let history = generate::list_append(&GenOptions {
            seed: gen.seed + part,
            ..gen.clone()
        });
        let count = history.events.len() as u64;
        for (i, mut event) in history.events.into_iter().enumerate() {
            event.index = offset + i as u64;
            event.time = event.time.map(|t| t + offset);
            if let Process::Client(p) = event.process {
                event.process = Process::Client(p + part * 1_000_000);
            }
            if let Value::List(mops) = &mut event.value {
                for mop in mops {
                    if let Value::List(parts_of_mop) = mop {
                        if let Some(Value::Int(key)) = parts_of_mop.get_mut(1) {
                            *key += (part * 1_000_000_000) as i64;
                        }
                    }
                }
            }
            jsonl::write_event(&mut w, &event).expect("write");
        }
        offset += count;
        println!("wrote part {} of {parts}", part + 1);
    }
}

/// One whole `splitbrain check` process.
struct ProcessRun {
    wall: Duration,
    cpu: f64,
    peak_kib: u64,
    exit: Option<i32>,
    output: String,
}

/// The child's peak resident set size so far (`VmHWM`).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs `splitbrain check FILE --model list-append --consistency serializable`, killed
/// after 10 minutes.
fn run_process(splitbrain: &Path, file: &Path, log: &Path) -> Result<ProcessRun, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let mut child = Command::new(splitbrain)
        .arg("check")
        .arg(file)
        .args(["--model", "list-append", "--consistency", "serializable"])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", splitbrain.display()))?;
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = vm_hwm_kib(child.id()) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let wall = started.elapsed();
    Ok(ProcessRun {
        wall,
        cpu: children_cpu_seconds() - cpu_before,
        peak_kib: peak,
        exit: status.code(),
        output: std::fs::read_to_string(log).unwrap_or_default(),
    })
}

/// Writes the valid and the G-single history in each format; returns (name, path,
/// expected exit code) per file.
fn write_files(
    dir: &Path,
    valid: &History,
    invalid: &History,
    formats: &[String],
) -> Vec<(String, PathBuf, i32)> {
    std::fs::create_dir_all(dir).expect("create the output directory");
    let mut files = Vec::new();
    for format in formats {
        for (name, history, code) in [("valid", valid, 0), ("g-single", invalid, 1)] {
            let path = dir.join(format!("txn-{name}.{format}"));
            let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
            match format.as_str() {
                "jsonl" => jsonl::write_history(&mut w, &history.events).expect("write"),
                "edn" => edn::write_history(&mut w, &history.events).expect("write"),
                other => panic!("unknown format {other}"),
            }
            drop(w);
            files.push((format!("{name}.{format}"), path, code));
        }
    }
    files
}

/// Times the whole process of each binary (`--process`, then `--baseline` if given) on
/// each file, `rounds` times, alternating.
fn compare_processes(
    binaries: &[(&str, PathBuf)],
    files: &[(String, PathBuf, i32)],
    rounds: usize,
) -> bool {
    let mut ok = true;
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); files.len()];
    for round in 1..=rounds {
        for (i, (name, path, expect)) in files.iter().enumerate() {
            // (wall, CPU) of each binary on this file in this round.
            let mut runs: Vec<(f64, f64)> = Vec::new();
            for (label, splitbrain) in binaries {
                let log = path.with_extension(format!("{label}.log"));
                match run_process(splitbrain, path, &log) {
                    Ok(run) => {
                        let read = run
                            .output
                            .lines()
                            .find(|l| l.starts_with("read "))
                            .unwrap_or("")
                            .to_owned();
                        println!(
                            "round {round}: {name} [{label}]: whole process {:.2} s wall, {:.2} s CPU, peak {} MiB, exit {:?} ({read})",
                            run.wall.as_secs_f64(),
                            run.cpu,
                            run.peak_kib >> 10,
                            run.exit
                        );
                        if runs.is_empty() {
                            walls[i].push(run.wall.as_secs_f64());
                        }
                        runs.push((run.wall.as_secs_f64(), run.cpu));
                        if run.exit != Some(*expect) {
                            eprintln!("{name} [{label}]: expected exit {expect}:\n{}", run.output);
                            ok = false;
                        }
                    }
                    Err(e) => {
                        eprintln!("{name} [{label}]: {e}");
                        ok = false;
                    }
                }
            }
            if let [(wall, cpu), (base_wall, base_cpu)] = runs[..] {
                println!(
                    "round {round}: {name}: baseline / process: wall {:.2}x, CPU {:.2}x",
                    base_wall / wall,
                    base_cpu / cpu
                );
            }
        }
    }
    // Ratios to the first file, per round (the same load falls on the files of a round).
    for (i, (name, _, _)) in files.iter().enumerate().skip(1) {
        let ratios: Vec<String> = (0..walls[i].len().min(walls[0].len()))
            .map(|r| format!("{:.2}", walls[i][r] / walls[0][r]))
            .collect();
        println!("{name} / {}: {}", files[0].0, ratios.join(", "));
    }
    ok
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

/// The binaries to time: `--process`, then `--baseline` if given.
fn binaries(process: PathBuf, baseline: Option<PathBuf>) -> Vec<(&'static str, PathBuf)> {
    let mut binaries = vec![("process", process)];
    binaries.extend(baseline.map(|b| ("baseline", b)));
    binaries
}

/// A path given on the command line: `cargo bench` runs the bench in the crate's directory,
/// so a relative path is taken from the repository root, where the command was typed.
fn from_repository_root(arg: String) -> PathBuf {
    let path = PathBuf::from(arg);
    if path.is_absolute() {
        path
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }
}

fn main() -> ExitCode {
    let mut txns = 1_000_000usize;
    let mut keys = 10_000u64;
    let mut write: Option<PathBuf> = None;
    let mut process: Option<PathBuf> = None;
    let mut rounds = 3usize;
    let mut formats: Vec<String> = vec!["jsonl".to_owned()];
    let mut in_process = true;
    let mut parts: Option<u64> = None;
    let mut baseline: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--txns" => txns = args.next().and_then(|s| s.parse().ok()).expect("--txns N"),
            "--keys" => keys = args.next().and_then(|s| s.parse().ok()).expect("--keys N"),
            "--write" => write = args.next().map(from_repository_root),
            "--process" => process = args.next().map(from_repository_root),
            "--baseline" => baseline = args.next().map(from_repository_root),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--rounds N")
            }
            "--formats" => {
                formats = args
                    .next()
                    .expect("--formats jsonl,edn")
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--in-process" => in_process = true,
            "--parts" => parts = args.next().and_then(|s| s.parse().ok()),
            "--no-in-process" => in_process = false,
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
    if let Some(parts) = parts {
        // `parts` × `txns` transactions, one file; timed by `--process` when given.
        let dir = write
            .take()
            .unwrap_or_else(|| PathBuf::from("../target/bench-results/txn"));
        std::fs::create_dir_all(&dir).expect("create the output directory");
        let path = dir.join(format!("txn-valid-{}.jsonl", parts * txns as u64));
        write_parts(&path, &gen, parts);
        let ok = match process {
            Some(splitbrain) => compare_processes(
                &binaries(splitbrain, baseline),
                &[("valid".to_owned(), path, 0)],
                rounds,
            ),
            None => true,
        };
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let started = Instant::now();
    let valid = generate::list_append(&gen);
    println!(
        "generated {} events in {:.1} s",
        valid.events.len(),
        started.elapsed().as_secs_f64()
    );
    let mut ok = true;
    let models = [
        ConsistencyModel::Serializable,
        ConsistencyModel::StrictSerializable,
    ];
    if in_process {
        for model in models {
            ok &= measure("valid", &valid, model, Verdict::Valid, None);
        }
    }
    let mut invalid = valid.clone();
    let middle = invalid.events.len() / 2;
    generate::inject(&mut invalid, AnomalyKind::GSingle, middle, 1 << 40, 1 << 40);
    if in_process {
        for model in models {
            let kind = Some(AnomalyKind::GSingle);
            ok &= measure("g-single", &invalid, model, Verdict::Invalid, kind);
        }
    }
    if let Some(splitbrain) = process {
        let dir = write
            .take()
            .unwrap_or_else(|| PathBuf::from("../target/bench-results/txn"));
        let files = write_files(&dir, &valid, &invalid, &formats);
        drop((valid, invalid));
        ok &= compare_processes(&binaries(splitbrain, baseline), &files, rounds);
    } else if let Some(dir) = write {
        for (_, path, _) in write_files(&dir, &valid, &invalid, &formats) {
            println!("wrote {}", path.display());
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
