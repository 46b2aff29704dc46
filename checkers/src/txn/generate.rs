//! Synthetic transactional histories: a simulated store that runs each transaction
//! atomically at the moment it completes, so every generated history is strict-serializable
//! by construction; and small anomalous patterns to hide in them.

use super::anomaly::AnomalyKind;
use crate::history::{Event, EventType, History, Process, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub txns: usize,
    /// Keys in use at any time; a key that received `appends_per_key` appends is retired
    /// and replaced by a fresh one (so lists stay short, as in Elle's generators).
    pub keys: u64,
    pub appends_per_key: usize,
    /// Micro-operations per transaction: 1 to this many.
    pub max_ops: usize,
    /// Client processes running concurrently.
    pub concurrency: usize,
    /// Fraction of transactions that end `info` (half of them take effect).
    pub indeterminate: f64,
    /// Fraction of transactions that end `fail` (they take no effect).
    pub failed: f64,
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            txns: 1000,
            keys: 10,
            appends_per_key: 8,
            max_ops: 4,
            concurrency: 10,
            indeterminate: 0.01,
            failed: 0.0,
            seed: 1,
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Append(i64, i64),
    Read(i64),
}

/// A valid list-append history.
pub fn list_append(opts: &GenOptions) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut lists: rustc_hash::FxHashMap<i64, Vec<i64>> = Default::default();
    let mut active: Vec<i64> = (0..opts.keys as i64).collect();
    let mut next_key = opts.keys as i64;
    let mut next_value: i64 = 1;
    let mut appends: rustc_hash::FxHashMap<i64, usize> = Default::default();
    // Per slot: its current process id, and its pending transaction.
    let mut slots: Vec<(u64, Option<Vec<Op>>)> =
        (0..opts.concurrency as u64).map(|p| (p, None)).collect();
    let mut next_process = opts.concurrency as u64;
    let mut events: Vec<Event> = Vec::with_capacity(opts.txns * 2 + opts.concurrency);
    let mut invoked = 0usize;
    let mut time = 0u64;
    let event = |process: u64, kind: EventType, value: Value, time: u64| Event {
        index: 0,
        time: Some(time),
        process: Process::Client(process),
        kind,
        f: "txn".to_owned(),
        key: None,
        value,
        node: None,
        error: None,
    };
    loop {
        let pending = slots.iter().filter(|s| s.1.is_some()).count();
        if invoked >= opts.txns && pending == 0 {
            break;
        }
        let s = rng.gen_range(0..slots.len());
        time += 1;
        let (process, txn) = &mut slots[s];
        match txn.take() {
            None => {
                if invoked >= opts.txns {
                    continue;
                }
                invoked += 1;
                let n = rng.gen_range(1..=opts.max_ops.max(1));
                let ops: Vec<Op> = (0..n)
                    .map(|_| {
                        let key = active[rng.gen_range(0..active.len())];
                        if rng.gen_bool(0.5) {
                            let v = next_value;
                            next_value += 1;
                            Op::Append(key, v)
                        } else {
                            Op::Read(key)
                        }
                    })
                    .collect();
                // Keys that had their share of appends are replaced.
                for op in &ops {
                    if let Op::Append(k, _) = op {
                        let c = appends.entry(*k).or_insert(0);
                        *c += 1;
                        if *c == opts.appends_per_key {
                            if let Some(i) = active.iter().position(|a| a == k) {
                                active[i] = next_key;
                                next_key += 1;
                            }
                        }
                    }
                }
                events.push(event(
                    *process,
                    EventType::Invoke,
                    mops_value(&ops, None),
                    time,
                ));
                *txn = Some(ops);
            }
            Some(ops) => {
                let roll: f64 = rng.gen();
                if roll < opts.failed {
                    events.push(event(
                        *process,
                        EventType::Fail,
                        mops_value(&ops, None),
                        time,
                    ));
                    continue;
                }
                let info = roll < opts.failed + opts.indeterminate;
                let apply = !info || rng.gen_bool(0.5);
                let mut reads: Vec<Vec<i64>> = Vec::new();
                if apply {
                    for op in &ops {
                        match *op {
                            Op::Append(k, v) => lists.entry(k).or_default().push(v),
                            Op::Read(k) => reads.push(lists.get(&k).cloned().unwrap_or_default()),
                        }
                    }
                }
                if info {
                    events.push(event(
                        *process,
                        EventType::Info,
                        mops_value(&ops, None),
                        time,
                    ));
                    *process = next_process;
                    next_process += 1;
                } else {
                    events.push(event(
                        *process,
                        EventType::Ok,
                        mops_value(&ops, Some(&reads)),
                        time,
                    ));
                }
            }
        }
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    History::new(events)
}

fn mops_value(ops: &[Op], reads: Option<&[Vec<i64>]>) -> Value {
    let mut r = 0;
    Value::List(
        ops.iter()
            .map(|op| match *op {
                Op::Append(k, v) => Value::List(vec![
                    Value::Keyword("append".into()),
                    Value::Int(k),
                    Value::Int(v),
                ]),
                Op::Read(k) => {
                    let result = match reads {
                        None => Value::Nil,
                        Some(reads) => {
                            r += 1;
                            Value::List(reads[r - 1].iter().map(|&e| Value::Int(e)).collect())
                        }
                    };
                    Value::List(vec![Value::Keyword("r".into()), Value::Int(k), result])
                }
            })
            .collect(),
    )
}

/// One transaction of an injected pattern: outcome and micro-ops (keys relative to the
/// pattern's fresh key base, values unique within it).
type PatternTxn = (EventType, &'static [(&'static str, i64, &'static [i64])]);

/// A small list-append pattern that exhibits `kind` (for the kinds a pattern can show),
/// with no other cycle anomaly than the ones noted in the tests.
pub fn pattern(kind: AnomalyKind) -> Option<Vec<PatternTxn>> {
    use EventType::{Fail, Ok};
    // ("a", key, [value]) appends; ("r", key, [elements]) reads.
    let p: Vec<PatternTxn> = match kind {
        AnomalyKind::G0 => vec![
            (Ok, &[("a", 0, &[1]), ("a", 1, &[1])]),
            (Ok, &[("a", 0, &[2]), ("a", 1, &[2])]),
            (Ok, &[("r", 0, &[1, 2]), ("r", 1, &[2, 1])]),
        ],
        AnomalyKind::G1a => vec![(Fail, &[("a", 0, &[1])]), (Ok, &[("r", 0, &[1])])],
        AnomalyKind::G1b => vec![
            (Ok, &[("a", 0, &[1]), ("a", 0, &[2])]),
            (Ok, &[("r", 0, &[1])]),
            (Ok, &[("r", 0, &[1, 2])]),
        ],
        AnomalyKind::G1c => vec![
            (Ok, &[("a", 0, &[1]), ("r", 1, &[1])]),
            (Ok, &[("a", 0, &[2]), ("a", 1, &[1])]),
            (Ok, &[("r", 0, &[1, 2])]),
        ],
        AnomalyKind::GSingle => vec![
            (Ok, &[("a", 0, &[1]), ("a", 1, &[1])]),
            (Ok, &[("a", 0, &[2]), ("r", 1, &[])]),
            (Ok, &[("r", 0, &[1, 2]), ("r", 1, &[1])]),
        ],
        AnomalyKind::GNonadjacent => vec![
            (Ok, &[("a", 0, &[1])]),
            (Ok, &[("r", 0, &[1]), ("r", 1, &[])]),
            (Ok, &[("a", 1, &[1])]),
            (Ok, &[("r", 1, &[1]), ("r", 0, &[])]),
        ],
        AnomalyKind::G2Item => vec![
            (Ok, &[("a", 0, &[1]), ("r", 1, &[])]),
            (Ok, &[("a", 1, &[1]), ("r", 0, &[])]),
            (Ok, &[("r", 0, &[1]), ("r", 1, &[1])]),
        ],
        AnomalyKind::Internal => vec![(Ok, &[("a", 0, &[1]), ("r", 0, &[])])],
        AnomalyKind::DuplicateElements => {
            vec![(Ok, &[("a", 0, &[1])]), (Ok, &[("r", 0, &[1, 1])])]
        }
        AnomalyKind::GarbageRead => vec![(Ok, &[("r", 0, &[7])])],
        AnomalyKind::IncompatibleOrder => vec![
            (Ok, &[("a", 0, &[1])]),
            (Ok, &[("a", 0, &[2])]),
            (Ok, &[("r", 0, &[1, 2])]),
            (Ok, &[("r", 0, &[2, 1])]),
        ],
        AnomalyKind::DirtyUpdate => vec![
            (Fail, &[("a", 0, &[1])]),
            (Ok, &[("a", 0, &[2])]),
            (Ok, &[("r", 0, &[1, 2])]),
        ],
        AnomalyKind::LostUpdate => vec![
            (Ok, &[("a", 0, &[1])]),
            (Ok, &[("r", 0, &[1]), ("a", 0, &[2])]),
            (Ok, &[("r", 0, &[1]), ("a", 0, &[3])]),
            (Ok, &[("r", 0, &[1, 2, 3])]),
        ],
        _ => return None,
    };
    Some(p)
}

/// Hides `kind`'s pattern in `history` at event position `at`, on fresh keys from
/// `key_base` and fresh processes from `process_base`, as one concurrent block (every
/// invocation, then every completion). Returns false when no pattern exists for `kind`.
pub fn inject(
    history: &mut History,
    kind: AnomalyKind,
    at: usize,
    key_base: i64,
    process_base: u64,
) -> bool {
    let Some(pattern) = pattern(kind) else {
        return false;
    };
    let mops = |txn: &[(&str, i64, &[i64])], observed: bool| {
        Value::List(
            txn.iter()
                .map(|&(f, k, vs)| {
                    let key = Value::Int(key_base + k);
                    if f == "a" {
                        Value::List(vec![
                            Value::Keyword("append".into()),
                            key,
                            Value::Int(vs[0]),
                        ])
                    } else {
                        let result = if observed {
                            Value::List(vs.iter().map(|&v| Value::Int(v)).collect())
                        } else {
                            Value::Nil
                        };
                        Value::List(vec![Value::Keyword("r".into()), key, result])
                    }
                })
                .collect(),
        )
    };
    let time = history.events.get(at).and_then(|e| e.time);
    let make = |i: usize, kind: EventType, value: Value| Event {
        index: 0,
        time,
        process: Process::Client(process_base + i as u64),
        kind,
        f: "txn".to_owned(),
        key: None,
        value,
        node: None,
        error: None,
    };
    let mut block: Vec<Event> = Vec::new();
    for (i, (_, txn)) in pattern.iter().enumerate() {
        block.push(make(i, EventType::Invoke, mops(txn, false)));
    }
    for (i, (outcome, txn)) in pattern.iter().enumerate() {
        block.push(make(i, *outcome, mops(txn, *outcome == EventType::Ok)));
    }
    let at = at.min(history.events.len());
    history.events.splice(at..at, block);
    for (i, e) in history.events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    true
}
