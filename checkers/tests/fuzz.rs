//! Fuzzing the readers and the checker in-process: valid histories of each format are
//! mutated (byte flips, deletions, duplications, truncations, deep nesting, invalid UTF-8,
//! stray delimiters) and read and checked again. Asserted for every mutant:
//!
//! * no panic (a stack overflow would abort the test binary, which fails it too);
//! * a mutant whose syntax is broken is never read, so it can never get a verdict. Whether
//!   the syntax broke is decided by a reference independent of the readers under test:
//!   serde_json for each JSON Lines line, a bracket/string/comment scanner for EDN (an
//!   unbalanced or mismatched form, an unterminated string, invalid UTF-8 outside
//!   comments), and for Jepsen log op lines the same scanner over the fields plus the
//!   process and type tokens. The one exception is the documented one: the truncated last
//!   record of a recorder-written JSON Lines file, dropped with a warning;
//! * reading and checking each mutant finish within a time limit.
//!
//! The test also counts how many mutants were broken and how many read well, and fails if
//! either is too rare for the assertions to mean anything.
//!
//! It runs a few thousand mutants, bounded to a few seconds, in `cargo test`; set
//! `SPLITBRAIN_FUZZ_SECONDS=600` to run for that long instead (and `SPLITBRAIN_FUZZ_SEED`
//! to start from another seed). A failing mutant is written to the temporary directory and
//! its seed printed.

use splitbrain_checkers::formats::{edn, jsonl};
use splitbrain_checkers::formats::{read_bytes, Format, ReadOptions};
use splitbrain_checkers::generate::{generate, KeyAssignment, OpMix, RegisterWorkload};
use splitbrain_checkers::linearizability::{check, CheckOptions};
use splitbrain_checkers::models::{ModelKind, ModelSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Mutants tried in a plain `cargo test` (unless the time bound comes first).
const DEFAULT_MUTANTS: u64 = 3_000;
/// The time bound of a plain `cargo test`.
const DEFAULT_SECONDS: u64 = 8;
/// Reading and checking one mutant must take less than this (generous: the machine may be
/// loaded, and checks are limited to a fraction of it).
const PER_MUTANT_LIMIT: Duration = Duration::from_secs(20);
/// The line limit the readers get here, small enough that size mutations reach it.
const MAX_LINE: usize = 64 << 10;

/// A small, fast, deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

/// Valid histories of every format, each with the format it is in.
fn seeds() -> Vec<(Format, Vec<u8>)> {
    let history = generate(&RegisterWorkload {
        seed: 7,
        operations: 40,
        concurrency: 4,
        keys: KeyAssignment::Random { keys: 3 },
        mix: OpMix::default(),
        crash_probability: 0.05,
    })
    .unwrap();
    let mut recorded = Vec::new();
    jsonl::write_history(&mut recorded, &history.events).unwrap();
    let mut plain = Vec::new();
    for line in recorded.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        // The same events without index and time: not the recorder's form.
        let mut event: serde_json::Value = serde_json::from_slice(line).unwrap();
        let object = event.as_object_mut().unwrap();
        object.remove("index");
        object.remove("time");
        plain.extend_from_slice(event.to_string().as_bytes());
        plain.push(b'\n');
    }
    let mut edn_lines = Vec::new();
    edn::write_history(&mut edn_lines, &history.events).unwrap();
    let seeds = vec![
        (Format::Jsonl, recorded),
        (Format::Jsonl, plain),
        (Format::Edn, edn_lines),
        (Format::Edn, data("jepsen_records.edn")),
        (Format::Edn, data("knossos_vector.edn")),
        (Format::Edn, data("knossos_independent.edn")),
        (Format::JepsenLog, data("etcd_sample.log")),
    ];
    for (format, bytes) in &seeds {
        let opts = ReadOptions {
            format: Some(*format),
            ..ReadOptions::default()
        };
        let read = read_bytes(bytes, &opts).unwrap_or_else(|e| panic!("seed {format}: {e}"));
        assert!(!read.history.events.is_empty());
        assert_eq!(syntax(*format, bytes), Syntax::Intact, "seed {format}");
    }
    seeds
}

/// Applies one random mutation.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    let at = if len == 0 { 0 } else { rng.below(len + 1) };
    match rng.below(9) {
        // Byte flips.
        0 if len > 0 => {
            for _ in 0..=rng.below(3) {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        1 if len > 0 => {
            let i = rng.below(len);
            bytes[i] = rng.below(256) as u8;
        }
        // Deletion of a range.
        2 if len > 0 => {
            let end = (at + 1 + rng.below(40)).min(len);
            bytes.drain(at.min(len - 1)..end);
        }
        // Duplication of a range.
        3 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(200)).min(len);
            let copy = bytes[start..end].to_vec();
            bytes.splice(at..at, copy);
        }
        // Truncation.
        4 => bytes.truncate(at),
        // Nesting: many openers (sometimes closed again), up to far beyond any limit.
        5 => {
            let openers: [&[u8]; 6] = [b"[", b"{", b"(", b"#{", b"#_", b"#t "];
            let opener = openers[rng.below(openers.len())];
            let depth = [3, 70, 1_000, 20_000][rng.below(4)];
            let mut insert = opener.repeat(depth);
            if rng.chance(50) && opener != b"#_" && opener != b"#t " {
                insert.extend_from_slice(b"1");
                let closer = match opener {
                    b"[" => b"]",
                    b"(" => b")",
                    _ => b"}",
                };
                insert.extend(std::iter::repeat_n(closer[0], depth));
            }
            bytes.splice(at..at, insert);
        }
        // Invalid UTF-8.
        6 => {
            let invalid: [&[u8]; 4] = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f\x98"];
            bytes.splice(at..at, invalid[rng.below(invalid.len())].iter().copied());
        }
        // A stray delimiter or a character that matters to some syntax.
        7 => {
            let stray = b"\"]})[{(\\;#:,\n\r \t0-N/.e";
            bytes.insert(at, stray[rng.below(stray.len())]);
        }
        // A long line.
        _ => {
            let long = vec![b'9'; MAX_LINE + rng.below(1000)];
            bytes.splice(at..at, long);
        }
    }
}

/// Repeats the first key of an EDN map with another value (`{:f :read …}` becomes
/// `{:f 0 :f :read …}`), a map Clojure's reader rejects. Applied last, so the repeat is
/// known to be there; false when `bytes` has no map starting with a keyword.
fn duplicate_map_key(rng: &mut Rng, bytes: &mut Vec<u8>) -> bool {
    let starts: Vec<usize> = bytes
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"{:")
        .map(|(i, _)| i + 1)
        .collect();
    if starts.is_empty() {
        return false;
    }
    let key_at = starts[rng.below(starts.len())];
    let key_end = bytes[key_at..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b",{}[]()\"\\;".contains(&b))
        .map_or(bytes.len(), |n| key_at + n);
    let mut pair = bytes[key_at..key_end].to_vec();
    pair.extend_from_slice(b" 0 ");
    bytes.splice(key_at..key_at, pair);
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Intact,
    /// Broken only by an unterminated last JSON line that is a prefix of valid JSON: the
    /// one case a reader may forgive (when the file is the recorder's).
    TruncatedLastLine,
    Broken,
}

/// Whether the syntax of `bytes`, as `format`, is intact, by references independent of the
/// readers under test.
fn syntax(format: Format, bytes: &[u8]) -> Syntax {
    match format {
        Format::Jsonl => jsonl_syntax(bytes),
        Format::Edn => {
            if edn_balanced(bytes) {
                Syntax::Intact
            } else {
                Syntax::Broken
            }
        }
        Format::JepsenLog => log_syntax(bytes),
    }
}

fn jsonl_syntax(bytes: &[u8]) -> Syntax {
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len() - 1;
    let mut result = Syntax::Intact;
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(_) => {}
            // `last` is the text after the final newline: unterminated.
            Err(e) if i == last && e.is_eof() => result = Syntax::TruncatedLastLine,
            Err(_) => return Syntax::Broken,
        }
    }
    result
}

/// EDN's delimiters balance and match, every string ends, and the text outside comments
/// is UTF-8. Strings (with `\` escapes), `;` comments and `\c` characters are followed so
/// that delimiters inside them do not count.
fn edn_balanced(bytes: &[u8]) -> bool {
    let mut stack = Vec::new();
    let mut code = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return false,
                        Some(b'"') => break,
                        Some(b'\\') => {
                            code.extend_from_slice(bytes.get(i..i + 2).unwrap_or(&[]));
                            i += 2;
                        }
                        Some(&c) => {
                            code.push(c);
                            i += 1;
                        }
                    }
                }
            }
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\\' => {
                let Some(&c) = bytes.get(i + 1) else {
                    return false;
                };
                code.push(c);
                i += 1;
            }
            b'(' => stack.push(b')'),
            b'[' => stack.push(b']'),
            b'{' => stack.push(b'}'),
            b')' | b']' | b'}' => {
                if stack.pop() != Some(b) {
                    return false;
                }
            }
            _ => code.push(b),
        }
        i += 1;
    }
    stack.is_empty() && std::str::from_utf8(&code).is_ok()
}

const MARKER: &[u8] = b"jepsen.util - ";

fn log_syntax(bytes: &[u8]) -> Syntax {
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(at) = line.windows(MARKER.len()).position(|w| w == MARKER) else {
            continue;
        };
        let fields = &line[at + MARKER.len()..];
        let mut tokens = fields
            .split(u8::is_ascii_whitespace)
            .filter(|t| !t.is_empty());
        let process_ok = tokens.next().is_some_and(|p| {
            p == b":nemesis" || std::str::from_utf8(p).is_ok_and(|p| p.parse::<u64>().is_ok())
        });
        let type_ok = tokens
            .next()
            .is_some_and(|t| [&b":invoke"[..], b":ok", b":fail", b":info"].contains(&t));
        if !process_ok || !type_ok || !edn_balanced(fields) {
            return Syntax::Broken;
        }
    }
    Syntax::Intact
}

#[derive(Default, Debug)]
struct Counts {
    mutants: u64,
    broken: u64,
    read_ok: u64,
    checked: u64,
    forgiven_truncations: u64,
    duplicate_keys: u64,
}

/// Reads (as `format`, or detected) and checks one mutant, asserting the rules above.
/// `duplicate_key`: the mutant was last given a repeated map key ([`duplicate_map_key`]),
/// so it must not be read as EDN whatever the syntax reference says.
fn try_mutant(bytes: &[u8], format: Option<Format>, duplicate_key: bool, counts: &mut Counts) {
    let opts = ReadOptions {
        format,
        max_line_bytes: MAX_LINE,
        ..ReadOptions::default()
    };
    let Ok(read) = read_bytes(bytes, &opts) else {
        return;
    };
    counts.read_ok += 1;
    let expected = if duplicate_key && read.format == Format::Edn {
        Syntax::Broken
    } else {
        syntax(read.format, bytes)
    };
    match expected {
        Syntax::Intact => {}
        Syntax::TruncatedLastLine if read.format == Format::Jsonl => {
            assert!(
                read.warnings
                    .iter()
                    .any(|w| w.contains("unfinished last line dropped")),
                "a truncated last line was dropped without a warning: {:?}",
                read.warnings
            );
            counts.forgiven_truncations += 1;
        }
        broken => panic!(
            "read as {} though its syntax is {broken:?}: {} events, warnings {:?}",
            read.format,
            read.history.events.len(),
            read.warnings
        ),
    }
    for kind in [ModelKind::CasRegister, ModelKind::Set] {
        let opts = CheckOptions {
            time_limit: Some(Duration::from_secs(2)),
            memory_budget: Some(64 << 20),
            jobs: 1,
            ..CheckOptions::default()
        };
        // A history that does not fit the model is an error, not a verdict: fine.
        if check(&read.history, &ModelSpec::new(kind), &opts).is_ok() {
            counts.checked += 1;
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn mutated_histories_never_panic_hang_or_pass_with_broken_syntax() {
    let long_run = env_u64("SPLITBRAIN_FUZZ_SECONDS");
    let seconds = long_run.unwrap_or(DEFAULT_SECONDS);
    let max_mutants = if long_run.is_some() {
        u64::MAX
    } else {
        DEFAULT_MUTANTS
    };
    let first_seed = env_u64("SPLITBRAIN_FUZZ_SEED").unwrap_or(1);
    let seeds = seeds();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut counts = Counts::default();
    let mut seed = first_seed;
    while counts.mutants < max_mutants && Instant::now() < deadline {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (format, original) = &seeds[rng.below(seeds.len())];
        let mut bytes = original.clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut bytes);
        }
        let duplicate_key =
            *format == Format::Edn && rng.chance(10) && duplicate_map_key(&mut rng, &mut bytes);
        if duplicate_key {
            counts.duplicate_keys += 1;
        }
        if duplicate_key || syntax(*format, &bytes) == Syntax::Broken {
            counts.broken += 1;
        }
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut local = Counts::default();
            try_mutant(&bytes, Some(*format), duplicate_key, &mut local);
            try_mutant(&bytes, None, duplicate_key, &mut local);
            local
        }));
        let elapsed = started.elapsed();
        let failure = match outcome {
            Ok(local) => {
                counts.read_ok += local.read_ok;
                counts.checked += local.checked;
                counts.forgiven_truncations += local.forgiven_truncations;
                (elapsed >= PER_MUTANT_LIMIT).then(|| format!("took {elapsed:?}"))
            }
            Err(panic) => Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
            ),
        };
        if let Some(why) = failure {
            let path = std::env::temp_dir().join(format!("splitbrain-fuzz-{seed}.{format}"));
            std::fs::write(&path, &bytes).unwrap();
            panic!(
                "mutant of seed {seed} ({format}, written to {}): {why}",
                path.display()
            );
        }
        counts.mutants += 1;
        seed += 1;
    }
    eprintln!("fuzz: {counts:?}");
    // Not vacuous: enough mutants, many of them broken, many still readable and checked.
    assert!(counts.mutants >= 200, "{counts:?}");
    assert!(counts.broken * 5 >= counts.mutants, "{counts:?}");
    assert!(counts.read_ok * 10 >= counts.mutants, "{counts:?}");
    assert!(counts.checked > 0, "{counts:?}");
    assert!(counts.duplicate_keys > 0, "{counts:?}");
}

/// The reference scanners themselves: they must call broken what is broken, or the
/// fuzz assertion above proves nothing.
#[test]
fn the_syntax_references_tell_broken_from_intact() {
    assert!(edn_balanced(br#"{:a "x]" :b \] :c [1 (2)]} ; ]"#));
    for broken in [&b"{:a 1"[..], b"[1 2)", b"\"abc", b"]", b"{:a \xff}", b"\\"] {
        assert!(!edn_balanced(broken), "{}", String::from_utf8_lossy(broken));
    }
    assert_eq!(
        jsonl_syntax(b"{\"a\":1}\n{\"a\":"),
        Syntax::TruncatedLastLine
    );
    assert_eq!(jsonl_syntax(b"{\"a\":1}\n{\"a\":}\n"), Syntax::Broken);
    assert_eq!(jsonl_syntax(b"{\"a\":1}\r\n\n"), Syntax::Intact);
    assert_eq!(
        log_syntax(b"INFO  jepsen.util - 0\t:ok\t:read\t[3\n"),
        Syntax::Broken
    );
    assert_eq!(
        log_syntax(b"INFO  jepsen.util - x\t:ok\t:read\t3\n"),
        Syntax::Broken
    );
    assert_eq!(
        log_syntax(b"other [[[\nINFO  jepsen.util - 1\t:ok\t:read\t3\n"),
        Syntax::Intact
    );
}
