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
//!     [--rounds N] [--porcupine [--porcupine-src DIR]] [--enforce-targets]
//! ```
//!
//! The histories stay in the output directory (default `target/bench-results/`) so that
//! other checkers can be timed on the very same files. A wrong verdict always fails the
//! bench; a missed target fails it only with `--enforce-targets` (timings depend on the
//! machine and its load).
//!
//! With `--porcupine`, the Go program in `checkers/benches/porcupine/` (Porcupine v1.3.0's
//! `CheckEvents` on the same file, the cas-register of Porcupine's tests partitioned by
//! key) is built with `go build` into `target/porcupine-peer/` and timed the same way, right
//! after or before `splitbrain check` in each round (the order alternates), and the ratios
//! are printed: whole process (wall, CPU, peak RSS) and check phase (Porcupine's
//! `CheckEvents` against our check, reading excluded on both sides). Without Go the peer
//! is skipped with a note. `--porcupine-src DIR` builds against a local copy of Porcupine
//! v1.3.0's source instead of the module proxy (for machines without it).

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
    rounds: usize,
    porcupine: bool,
    porcupine_src: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        case: None,
        seed: 1,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results"),
        enforce_targets: false,
        rounds: 1,
        porcupine: false,
        porcupine_src: None,
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
            "--rounds" => {
                args.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?;
                if args.rounds == 0 {
                    return Err("--rounds must be at least 1".to_owned());
                }
            }
            "--porcupine" => args.porcupine = true,
            "--porcupine-src" => {
                args.porcupine = true;
                args.porcupine_src = Some(value("--porcupine-src")?.into());
            }
            // Cargo passes `--bench` to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// How a child process ended and what it used.
struct ChildRun {
    exit_code: Option<i32>,
    wall: Duration,
    /// User plus system time of the child (all its threads).
    cpu: Duration,
    max_rss_bytes: u64,
    timed_out: bool,
}

/// Runs `command` with its output to `log` and measures its wall time, CPU time and peak
/// resident set size.
///
/// The peak is the child's `VmHWM`, sampled while it runs. Its `ru_maxrss` (from `wait4`)
/// is no good here: the child starts in this process's address space (`vfork` before
/// `exec`), and the kernel carries that address space's high-water mark — the generated
/// history's — into the child's figure. `ru_maxrss` stands in only when the child ended
/// before a sample was taken.
fn run_child(mut command: Command, log: &Path) -> Result<ChildRun, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
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
            let time = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            return Ok(ChildRun {
                exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
                wall,
                cpu: time(usage.ru_utime) + time(usage.ru_stime),
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

/// Runs `splitbrain check FILE --model kv`.
fn run_check(history: &Path, log: &Path) -> Result<ChildRun, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
    command.arg("check").arg(history).args(["--model", "kv"]);
    run_child(command, log)
}

/// Reading and check times as `splitbrain check` prints them (`read N events (…) in 1.23
/// s`, `checked N operations … in 456.7 ms; …`).
fn splitbrain_phases(log: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let after_in = |prefix: &str| {
        let line = text.lines().find(|l| l.starts_with(prefix))?;
        let rest = &line[line.rfind(" in ")? + 4..];
        let figure = rest.split(';').next()?.trim();
        let (number, unit) = figure.split_once(' ')?;
        let number: f64 = number.parse().ok()?;
        Some(match unit {
            "s" => number,
            "ms" => number / 1e3,
            "µs" => number / 1e6,
            _ => return None,
        })
    };
    Some((after_in("read ")?, after_in("checked ")?))
}

/// Porcupine's side: the peer program, built once.
struct Peer {
    binary: PathBuf,
}

/// Builds the peer with `go build`; `Ok(None)` (with a note) when Go is not installed or
/// the build fails (no module proxy, say).
fn build_peer(src: Option<&Path>) -> Result<Option<Peer>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let program = root.join("checkers/benches/porcupine");
    let out = root.join("target/porcupine-peer");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let binary = out.join("porcupine-peer");
    let mut build = Command::new("go");
    build.current_dir(&program).arg("build");
    if let Some(src) = src {
        // A copy of go.mod and go.sum that points the module at the local source.
        let src = std::fs::canonicalize(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let go_mod = std::fs::read_to_string(program.join("go.mod")).map_err(|e| e.to_string())?;
        let replaced = format!(
            "{go_mod}\nreplace github.com/anishathalye/porcupine => {}\n",
            src.display()
        );
        let mod_file = out.join("go.mod");
        std::fs::write(&mod_file, replaced).map_err(|e| e.to_string())?;
        std::fs::copy(program.join("go.sum"), out.join("go.sum")).map_err(|e| e.to_string())?;
        build.arg(format!("-modfile={}", mod_file.display()));
    }
    build.arg("-o").arg(&binary).arg(".");
    match build.status() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "[porcupine] `go` is not installed: Porcupine is not run (see docs/benchmarks.md)"
            );
            Ok(None)
        }
        Err(e) => Err(format!("go build: {e}")),
        Ok(status) if !status.success() => {
            println!(
                "[porcupine] go build of {} failed ({status}): Porcupine is not run; without \
                 the Go module proxy, pass --porcupine-src with a copy of Porcupine v1.3.0's \
                 source",
                program.display()
            );
            Ok(None)
        }
        Ok(_) => Ok(Some(Peer { binary })),
    }
}

/// Runs the peer on a history.
fn run_peer(peer: &Peer, history: &Path, log: &Path) -> Result<ChildRun, String> {
    let mut command = Command::new(&peer.binary);
    command.arg(history);
    run_child(command, log)
}

/// Parse and `CheckEvents` times as the peer prints them.
fn peer_phases(log: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let figure = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((figure("parse_seconds ")?, figure("check_seconds ")?))
}

/// One tool's run in one round.
struct Measured {
    run: ChildRun,
    /// (reading, check) in seconds, as the tool reports them.
    phases: Option<(f64, f64)>,
}

fn describe(tool: &str, case: &str, round: usize, m: &Measured) -> String {
    format!(
        "[{case}] round {round} {tool}: wall {:.3} s, CPU {:.3} s, peak RSS {:.1} MiB, {}exit {}{}",
        m.run.wall.as_secs_f64(),
        m.run.cpu.as_secs_f64(),
        m.run.max_rss_bytes as f64 / (1 << 20) as f64,
        m.phases.map_or(String::new(), |(read, check)| format!(
            "read {read:.3} s, check {check:.3} s, "
        )),
        m.run
            .exit_code
            .map_or("none (killed)".to_owned(), |c| c.to_string()),
        if m.run.timed_out {
            format!(" — killed after {} s", CHILD_TIME_LIMIT.as_secs())
        } else {
            String::new()
        }
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Per round and at the median: Porcupine's figure over ours (above 1: we are faster or
/// smaller).
fn print_ratios(case: &str, ours: &[Measured], theirs: &[Measured]) {
    type Figure = fn(&Measured) -> Option<f64>;
    let figures: [(&str, Figure); 4] = [
        ("check phase", |m| m.phases.map(|p| p.1)),
        ("whole process wall", |m| Some(m.run.wall.as_secs_f64())),
        ("whole process CPU", |m| Some(m.run.cpu.as_secs_f64())),
        ("peak RSS", |m| Some(m.run.max_rss_bytes as f64)),
    ];
    for (name, figure) in figures {
        let ratios: Vec<f64> = ours
            .iter()
            .zip(theirs)
            .filter_map(|(o, t)| Some(figure(t)? / figure(o)?))
            .collect();
        if ratios.is_empty() {
            continue;
        }
        let (o, t): (Vec<f64>, Vec<f64>) = ours
            .iter()
            .zip(theirs)
            .filter_map(|(o, t)| Some((figure(o)?, figure(t)?)))
            .unzip();
        let unit = |v: f64| {
            if name == "peak RSS" {
                format!("{:.0} MiB", v / (1 << 20) as f64)
            } else {
                format!("{v:.3} s")
            }
        };
        println!(
            "[{case}] Porcupine / splitbrain, {name}: {} per round; median {} / {} = {:.2}x",
            ratios
                .iter()
                .map(|r| format!("{r:.2}x"))
                .collect::<Vec<_>>()
                .join(", "),
            unit(median(t)),
            unit(median(o)),
            median(ratios.clone()),
        );
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
    let peer = if args.porcupine {
        build_peer(args.porcupine_src.as_deref())?
    } else {
        None
    };
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
        let peer_log_path = args
            .out
            .join(format!("{}-seed{}.porcupine.log", case.name, args.seed));
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

        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for round in 1..=args.rounds {
            // The order alternates, so that neither tool always runs on a warmer machine.
            let peer_first = round % 2 == 0;
            let mut run_peer_now = |theirs: &mut Vec<Measured>| -> Result<(), String> {
                let Some(peer) = &peer else {
                    return Ok(());
                };
                let run = run_peer(peer, &history_path, &peer_log_path)?;
                let measured = Measured {
                    phases: peer_phases(&peer_log_path),
                    run,
                };
                println!("{}", describe("Porcupine", case.name, round, &measured));
                if measured.run.exit_code != Some(case.expected_exit) && !measured.run.timed_out {
                    eprintln!(
                        "[{}] Porcupine: expected verdict {} (exit {}); output in {}",
                        case.name,
                        case.expected_verdict,
                        case.expected_exit,
                        peer_log_path.display()
                    );
                    all_good = false;
                }
                theirs.push(measured);
                Ok(())
            };
            if peer_first {
                run_peer_now(&mut theirs)?;
            }
            let run = run_check(&history_path, &log_path)?;
            let measured = Measured {
                phases: splitbrain_phases(&log_path),
                run,
            };
            println!("{}", describe("splitbrain", case.name, round, &measured));
            if !peer_first {
                run_peer_now(&mut theirs)?;
            }
            let run = &measured.run;
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
                    Some(m) if run.max_rss_bytes <= m => {
                        format!(" (target ≤ {} MiB, met)", m >> 20)
                    }
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
            ours.push(measured);
        }
        if !theirs.is_empty() {
            print_ratios(case.name, &ours, &theirs);
        }
    }
    Ok(all_good)
}
