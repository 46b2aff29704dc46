//! The whole `splitbrain check` process on large generated histories: wall time and peak
//! memory of the child process, and its verdict.
//!
//! Two cases, each generated deterministically from the seed and written as JSON Lines:
//!
//! * `million` — 1,000,000 operations in Jepsen's independent-keys shape: 1,000 keys, process
//!   groups of 5 sharing a key for 1,000 operations, read/write/cas on a cas-register per
//!   key, 1% of operations crashed and left pending. Linearizable by construction; the
//!   verdict must be `valid`. Target: ≤ 3 s and ≤ 1 GiB.
//! * `stale` — 20,000 operations on 20 keys (each operation on a random key), 10 processes,
//!   1% crashed, and one stale read late in one key. The verdict must be `invalid`.
//!   Target: ≤ 5 s.
//!
//! ```text
//! cargo bench --bench check_scale -- [--case million|stale|all] [--seed N] [--out DIR]
//!     [--enforce-targets]
//! ```
//!
//! The histories stay in the output directory (default `target/bench-results/`) so that
//! other checkers can be timed on the very same files. A wrong verdict always fails the
//! bench; a missed target fails it only with `--enforce-targets` (timings depend on the
//! machine and its load).

use splitbrain_checkers::formats::jsonl;
use splitbrain_checkers::generate::{
    generate, inject_stale_read, KeyAssignment, OpMix, RegisterWorkload,
};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// A check that takes longer than this is killed and reported as failed.
const CHILD_TIME_LIMIT: Duration = Duration::from_secs(120);
const GIB: u64 = 1 << 30;

struct Case {
    name: &'static str,
    workload: RegisterWorkload,
    stale_read: bool,
    expected_exit: i32,
    expected_verdict: &'static str,
    time_target: Duration,
    memory_target: Option<u64>,
}

fn cases(seed: u64) -> Vec<Case> {
    vec![
        Case {
            name: "million",
            workload: RegisterWorkload::independent_keys_million(seed),
            stale_read: false,
            expected_exit: 0,
            expected_verdict: "valid",
            time_target: Duration::from_secs(3),
            memory_target: Some(GIB),
        },
        Case {
            name: "stale",
            workload: RegisterWorkload {
                seed,
                operations: 20_000,
                concurrency: 10,
                keys: KeyAssignment::Random { keys: 20 },
                mix: OpMix::default(),
                crash_probability: 0.01,
            },
            stale_read: true,
            expected_exit: 1,
            expected_verdict: "invalid",
            time_target: Duration::from_secs(5),
            memory_target: None,
        },
    ]
}

struct Args {
    case: Option<String>,
    seed: u64,
    out: PathBuf,
    enforce_targets: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        case: None,
        seed: 1,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results"),
        enforce_targets: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--case" => {
                let case = value("--case")?;
                if case != "all" {
                    args.case = Some(case);
                }
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--out" => args.out = value("--out")?.into(),
            "--enforce-targets" => args.enforce_targets = true,
            // Cargo passes `--bench` to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// How the child process ended and what it used.
struct ChildRun {
    exit_code: Option<i32>,
    wall: Duration,
    max_rss_bytes: u64,
    timed_out: bool,
}

/// Runs `splitbrain check FILE --model kv` and measures its wall time and peak resident set
/// size.
///
/// The peak is the child's `VmHWM`, sampled while it runs. Its `ru_maxrss` (from `wait4`)
/// is no good here: the child starts in this process's address space (`vfork` before
/// `exec`), and the kernel carries that address space's high-water mark — the generated
/// history's — into the child's figure. `ru_maxrss` stands in only when the child ended
/// before a sample was taken.
fn run_check(history: &Path, log: &Path) -> Result<ChildRun, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .arg("check")
        .arg(history)
        .args(["--model", "kv"])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start splitbrain: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut timed_out = false;
    let mut sampled_peak: Option<u64> = None;
    loop {
        // Sampled before reaping: once the child exits, its memory figures are gone.
        if let Some(hwm) = vm_hwm_bytes(pid) {
            sampled_peak = Some(sampled_peak.unwrap_or(0).max(hwm));
        }
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped; the pointers are valid locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            let wall = started.elapsed();
            return Ok(ChildRun {
                exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
                wall,
                // Linux reports ru_maxrss in KiB.
                max_rss_bytes: sampled_peak.unwrap_or(usage.ru_maxrss as u64 * 1024),
                timed_out,
            });
        }
        if reaped == -1 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        if !timed_out && started.elapsed() > CHILD_TIME_LIMIT {
            // SAFETY: signalling our own unreaped child by its pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            timed_out = true;
        }
        // Polling granularity adds at most this much to the measured wall time.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The peak resident set size of a running process (`VmHWM` in `/proc/PID/status`).
fn vm_hwm_bytes(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn write_history(case: &Case, path: &Path) -> Result<(usize, Option<String>), String> {
    let mut history = generate(&case.workload).map_err(|e| e.to_string())?;
    let planted = if case.stale_read {
        let stale = inject_stale_read(&mut history).map_err(|e| e.to_string())?;
        Some(format!(
            "stale read at event {} (key {}): returns {} instead of {}",
            stale.completion_index,
            stale.key.map_or("none".to_owned(), |k| k.to_string()),
            stale.stale,
            stale.original
        ))
    } else {
        None
    };
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    jsonl::write_history(&mut w, &history.events)
        .and_then(|()| w.flush())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((history.events.len(), planted))
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("check_scale bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, String> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut all_good = true;
    for case in cases(args.seed)
        .into_iter()
        .filter(|c| args.case.as_deref().is_none_or(|n| n == c.name))
    {
        let history_path = args
            .out
            .join(format!("{}-seed{}.jsonl", case.name, args.seed));
        let log_path = args
            .out
            .join(format!("{}-seed{}.check.log", case.name, args.seed));
        let t0 = Instant::now();
        let (events, planted) = write_history(&case, &history_path)?;
        println!(
            "[{}] generated {} operations ({events} events) in {:.2} s: {}",
            case.name,
            case.workload.operations,
            t0.elapsed().as_secs_f64(),
            history_path.display()
        );
        if let Some(planted) = planted {
            println!("[{}] {planted}", case.name);
        }

        let run = run_check(&history_path, &log_path)?;
        let verdict_ok = run.exit_code == Some(case.expected_exit);
        let time_ok = run.wall <= case.time_target;
        let memory_ok = case.memory_target.is_none_or(|m| run.max_rss_bytes <= m);
        println!(
            "[{}] splitbrain check: wall {:.3} s (target ≤ {} s{}), peak RSS {:.1} MiB{}, exit {}{}",
            case.name,
            run.wall.as_secs_f64(),
            case.time_target.as_secs(),
            if time_ok { ", met" } else { ", MISSED" },
            run.max_rss_bytes as f64 / (1 << 20) as f64,
            match case.memory_target {
                Some(m) if run.max_rss_bytes <= m => format!(" (target ≤ {} MiB, met)", m >> 20),
                Some(m) => format!(" (target ≤ {} MiB, MISSED)", m >> 20),
                None => String::new(),
            },
            run.exit_code
                .map_or("none (killed)".to_owned(), |c| c.to_string()),
            if run.timed_out {
                format!(" — killed after {} s", CHILD_TIME_LIMIT.as_secs())
            } else {
                String::new()
            }
        );
        if !verdict_ok {
            eprintln!(
                "[{}] expected verdict {} (exit {}); output in {}",
                case.name,
                case.expected_verdict,
                case.expected_exit,
                log_path.display()
            );
            all_good = false;
        }
        if args.enforce_targets && !(time_ok && memory_ok) {
            all_good = false;
        }
    }
    Ok(all_good)
}
