//! Check time on Porcupine's published test histories, one file at a time.
//!
//! Every file is read once; only `check()` is timed (as Porcupine's own Go benchmarks time
//! only `CheckEvents`). Each file is checked repeatedly — at least 3 and at most 15 times,
//! stopping once 3 s were spent on it — and the median is reported. The verdict of every
//! file must match `EXPECTED.tsv`.
//!
//! ```text
//! cargo bench -p splitbrain-checkers --bench corpus -- [--corpus DIR] [--out FILE.tsv]
//!     [--compare OTHER.tsv] [--filter TEXT]
//! ```
//!
//! `--compare` reads another tool's timings of the same files (a TSV with a header line
//! and `file`, `ms` as its first two columns) and adds the ratio column, the total ratio
//! and the worst file.
//!
//! When the corpus directory is absent the bench says so and exits successfully.

use splitbrain_checkers::formats::{self, ReadOptions};
use splitbrain_checkers::linearizability::{check, CheckOptions};
use splitbrain_checkers::models::{ModelKind, ModelSpec};
use splitbrain_checkers::{History, Verdict};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const MIN_REPETITIONS: usize = 3;
const MAX_REPETITIONS: usize = 15;
const TIME_BUDGET_PER_FILE: Duration = Duration::from_secs(3);

struct Args {
    corpus: PathBuf,
    out: PathBuf,
    compare: Option<PathBuf>,
    filter: Option<String>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the checkers crate lives inside the workspace")
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let root = workspace_root();
    let mut args = Args {
        corpus: root.join("../shared/conformance/porcupine"),
        out: root.join("target/bench-results/corpus.tsv"),
        compare: None,
        filter: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--corpus" => args.corpus = value("--corpus")?.into(),
            "--out" => args.out = value("--out")?.into(),
            "--compare" => args.compare = Some(value("--compare")?.into()),
            "--filter" => args.filter = Some(value("--filter")?),
            // Cargo passes `--bench` to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

struct CorpusFile {
    name: String,
    model: ModelKind,
    expected: Verdict,
}

fn read_expected(corpus: &Path) -> Result<Vec<CorpusFile>, String> {
    let path = corpus.join("EXPECTED.tsv");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let [name, model, expected] = cols[..] else {
                return Err(format!("EXPECTED.tsv: malformed line `{line}`"));
            };
            let expected = match expected {
                "valid" => Verdict::Valid,
                "invalid" => Verdict::Invalid,
                other => return Err(format!("EXPECTED.tsv: unknown verdict `{other}`")),
            };
            Ok(CorpusFile {
                name: name.to_owned(),
                model: model.parse()?,
                expected,
            })
        })
        .collect()
}

/// Median check time in milliseconds, and the verdict of the first run.
fn time_check(history: &History, model: &ModelSpec) -> Result<(f64, Verdict), String> {
    // As Porcupine does: stop at the first key proven illegal (the other keys of c50-bad
    // can need an exponential search, which Porcupine never runs either).
    let opts = CheckOptions {
        first_failure: true,
        ..CheckOptions::default()
    };
    let mut samples = Vec::with_capacity(MAX_REPETITIONS);
    let mut first = None;
    let started = Instant::now();
    while samples.len() < MAX_REPETITIONS
        && (samples.len() < MIN_REPETITIONS || started.elapsed() < TIME_BUDGET_PER_FILE)
    {
        let t0 = Instant::now();
        let result = check(history, model, &opts).map_err(|e| e.to_string())?;
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
        first.get_or_insert(result.verdict);
    }
    samples.sort_by(f64::total_cmp);
    Ok((samples[samples.len() / 2], first.expect("at least one run")))
}

/// `file → ms` from another tool's TSV (header line, then `file<TAB>ms[<TAB>…]`).
fn read_comparison(path: &Path) -> Result<HashMap<String, f64>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.split('\t');
            let file = cols.next().unwrap_or_default().to_owned();
            let ms = cols
                .next()
                .and_then(|c| c.trim().parse::<f64>().ok())
                .ok_or_else(|| format!("{}: malformed line `{line}`", path.display()))?;
            Ok((file, ms))
        })
        .collect()
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("corpus bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(dead_code)]
#[path = "../../tests/common/skip.rs"]
mod skip;

fn run() -> Result<ExitCode, String> {
    let args = parse_args()?;
    if !args.corpus.join("EXPECTED.tsv").is_file() {
        skip::skip(
            "corpus",
            skip::Need::Conformance,
            format!(
                "Porcupine's corpus is not at {} (pass --corpus DIR; see docs/conformance.md)",
                args.corpus.display()
            ),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let files = read_expected(&args.corpus)?;
    let comparison = args.compare.as_deref().map(read_comparison).transpose()?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut tsv = std::fs::File::create(&args.out)
        .map(std::io::BufWriter::new)
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    writeln!(tsv, "file\tms\tverdict").map_err(|e| e.to_string())?;

    println!(
        "{:<22} {:>7} {:>11} {:>8}{}",
        "file",
        "ops",
        "check ms",
        "verdict",
        if comparison.is_some() {
            "     other ms    ratio"
        } else {
            ""
        }
    );
    let mut total_ms = 0.0;
    let mut other_total_ms = 0.0;
    // (ratio ours/other, file): the file where we compare worst.
    let mut worst: Option<(f64, String)> = None;
    let mut mismatches = Vec::new();
    for file in files
        .iter()
        .filter(|f| args.filter.as_ref().is_none_or(|t| f.name.contains(t)))
    {
        let read = formats::read_file(&args.corpus.join(&file.name), &ReadOptions::default())
            .map_err(|e| e.to_string())?;
        let history = read.history;
        let operations = history
            .client_events()
            .filter(|e| e.kind == splitbrain_checkers::EventType::Invoke)
            .count();
        let (ms, verdict) = time_check(&history, &ModelSpec::new(file.model))?;
        if verdict != file.expected {
            mismatches.push(format!(
                "{}: {verdict}, expected {}",
                file.name, file.expected
            ));
        }
        total_ms += ms;
        writeln!(tsv, "{}\t{ms:.4}\t{verdict}", file.name).map_err(|e| e.to_string())?;
        let mut line = format!(
            "{:<22} {operations:>7} {ms:>11.3} {:>8}",
            file.name,
            verdict.as_str()
        );
        if let Some(other) = comparison.as_ref().and_then(|c| c.get(&file.name)) {
            other_total_ms += other;
            let ratio = ms / other;
            line += &format!(" {other:>12.3} {ratio:>8.2}");
            if worst.as_ref().is_none_or(|(w, _)| ratio > *w) {
                worst = Some((ratio, file.name.clone()));
            }
        }
        println!("{line}");
    }
    tsv.flush().map_err(|e| e.to_string())?;
    println!("total check time: {total_ms:.3} ms");
    if comparison.is_some() {
        println!(
            "other total: {other_total_ms:.3} ms; speed-up (other / ours): {:.2}x",
            other_total_ms / total_ms
        );
        if let Some((ratio, name)) = worst {
            println!(
                "worst file: {name}, ours / other = {ratio:.2} (speed-up {:.2}x)",
                1.0 / ratio
            );
        }
    }
    println!("timings written to {}", args.out.display());
    if mismatches.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for m in &mismatches {
            eprintln!("verdict mismatch: {m}");
        }
        Ok(ExitCode::FAILURE)
    }
}
