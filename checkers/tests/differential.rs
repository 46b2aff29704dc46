//! `check()` against a brute-force oracle on many small random histories, plus targeted
//! tests of verdicts, limits and counterexamples.
//!
//! The oracle shares no code with the engine: it pairs events itself, enumerates every subset
//! of the indeterminate operations and every order of the chosen operations that respects
//! real time, and runs each order through its own reference model on `Value`s.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use splitbrain_checkers::history::{Event, EventType, History, Process, Value};
use splitbrain_checkers::linearizability::{check, CheckOptions};
use splitbrain_checkers::models::{ModelKind, ModelSpec};
use splitbrain_checkers::Verdict;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Reference models on values.

#[derive(Debug, Clone, PartialEq)]
enum RefState {
    Register(Value),
    Str(String),
    Set(BTreeSet<Value>),
    Queue(VecDeque<Value>),
    Mutex(bool),
}

fn initial_state(kind: ModelKind) -> RefState {
    match kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            RefState::Register(Value::Nil)
        }
        ModelKind::KvAppend => RefState::Str(String::new()),
        ModelKind::Set => RefState::Set(BTreeSet::new()),
        ModelKind::FifoQueue => RefState::Queue(VecDeque::new()),
        ModelKind::Mutex => RefState::Mutex(false),
    }
}

/// One operation for the oracle: `output` is `None` when the op's result is unknown.
#[derive(Debug, Clone)]
struct RefOp {
    f: String,
    input: Value,
    output: Option<Value>,
    /// A failed cas read as "the register did not hold the expected value".
    cas_mismatch: bool,
    call: usize,
    /// `None`: indeterminate.
    ret: Option<usize>,
    index: u64,
}

fn as_string(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Nil => String::new(),
        other => panic!("not a string: {other}"),
    }
}

/// Applies `op` to `state`; `None` when illegal.
fn ref_step(state: &RefState, op: &RefOp) -> Option<RefState> {
    let out = op.output.as_ref();
    match (state, op.f.as_str()) {
        (RefState::Register(v), "read") => match out {
            None => Some(state.clone()),
            Some(o) => (o == v).then(|| state.clone()),
        },
        (RefState::Register(_), "write") => Some(RefState::Register(op.input.clone())),
        (RefState::Register(v), "cas") => {
            let pair = op.input.as_list().unwrap();
            if op.cas_mismatch {
                (v != &pair[0]).then(|| state.clone())
            } else {
                (v == &pair[0]).then(|| RefState::Register(pair[1].clone()))
            }
        }
        (RefState::Str(s), "get") => match out {
            None => Some(state.clone()),
            Some(o) => (as_string(o) == *s).then(|| state.clone()),
        },
        (RefState::Str(_), "put") => Some(RefState::Str(as_string(&op.input))),
        (RefState::Str(s), "append") => Some(RefState::Str(format!("{s}{}", as_string(&op.input)))),
        (RefState::Set(s), "add") => {
            let mut s = s.clone();
            s.insert(op.input.clone());
            Some(RefState::Set(s))
        }
        (RefState::Set(s), "read") => match out {
            None => Some(state.clone()),
            Some(o) => {
                let seen: BTreeSet<Value> = o.as_list().unwrap_or(&[]).iter().cloned().collect();
                (seen == *s).then(|| state.clone())
            }
        },
        (RefState::Queue(q), "enqueue") => {
            let mut q = q.clone();
            q.push_back(op.input.clone());
            Some(RefState::Queue(q))
        }
        (RefState::Queue(q), "dequeue") => {
            let mut q = q.clone();
            match out {
                None => {
                    q.pop_front();
                    Some(RefState::Queue(q))
                }
                Some(Value::Nil) => q.is_empty().then_some(RefState::Queue(q)),
                Some(v) => (q.pop_front().as_ref() == Some(v)).then_some(RefState::Queue(q)),
            }
        }
        (RefState::Mutex(held), "acquire") => (!held).then_some(RefState::Mutex(true)),
        (RefState::Mutex(held), "release") => held.then_some(RefState::Mutex(false)),
        (s, f) => panic!("reference model {s:?} has no {f}"),
    }
}

// ---------------------------------------------------------------------------------------
// The oracle.

/// Pairs events into oracle operations (one key), under the given failed-cas reading.
fn ref_ops(history: &History, failed_cas_observes: bool) -> Vec<RefOp> {
    let mut open: HashMap<u64, RefOp> = HashMap::new();
    let mut ops = Vec::new();
    for (pos, e) in history.events.iter().enumerate() {
        let Process::Client(p) = e.process else {
            continue;
        };
        match e.kind {
            EventType::Invoke => {
                if let Some(abandoned) = open.insert(
                    p,
                    RefOp {
                        f: e.f.clone(),
                        input: e.value.clone(),
                        output: None,
                        cas_mismatch: false,
                        call: pos,
                        ret: None,
                        index: e.index,
                    },
                ) {
                    ops.push(abandoned);
                }
            }
            EventType::Ok => {
                let mut op = open.remove(&p).unwrap();
                op.output = Some(e.value.clone());
                op.ret = Some(pos);
                ops.push(op);
            }
            EventType::Info => ops.push(open.remove(&p).unwrap()),
            EventType::Fail => {
                let mut op = open.remove(&p).unwrap();
                let says = matches!(&e.error, Some(Value::Keyword(k) | Value::Str(k)) if k == "compare-failed" || k == "mismatch");
                if op.f == "cas" && (failed_cas_observes || says) {
                    op.cas_mismatch = true;
                    op.ret = Some(pos);
                    ops.push(op);
                }
            }
        }
    }
    ops.extend(open.into_values());
    ops.sort_by_key(|o| o.call);
    ops
}

/// Whether some order of `chosen` ops (all of them) respecting real time is legal.
fn some_order_is_legal(ops: &[&RefOp], placed: &mut Vec<bool>, state: &RefState) -> bool {
    if placed.iter().all(|&p| p) {
        return true;
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // i may go next only if no unplaced op returned before i was invoked.
        let blocked = (0..ops.len())
            .any(|j| !placed[j] && j != i && ops[j].ret.is_some_and(|r| r < ops[i].call));
        if blocked {
            continue;
        }
        if let Some(next) = ref_step(state, ops[i]) {
            placed[i] = true;
            if some_order_is_legal(ops, placed, &next) {
                return true;
            }
            placed[i] = false;
        }
    }
    false
}

fn oracle(kind: ModelKind, history: &History, failed_cas_observes: bool) -> bool {
    let ops = ref_ops(history, failed_cas_observes);
    let required: Vec<&RefOp> = ops.iter().filter(|o| o.ret.is_some()).collect();
    let optional: Vec<&RefOp> = ops.iter().filter(|o| o.ret.is_none()).collect();
    assert!(
        optional.len() < 16,
        "too many indeterminate ops for the oracle"
    );
    (0u32..1 << optional.len()).any(|subset| {
        let mut chosen = required.clone();
        chosen.extend(
            optional
                .iter()
                .enumerate()
                .filter(|(i, _)| subset & (1 << i) != 0)
                .map(|(_, o)| *o),
        );
        some_order_is_legal(
            &chosen,
            &mut vec![false; chosen.len()],
            &initial_state(kind),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Random histories.

fn event(process: u64, kind: EventType, f: &str, value: Value, error: Option<Value>) -> Event {
    Event {
        index: 0,
        time: None,
        process: Process::Client(process),
        kind,
        f: f.to_owned(),
        key: None,
        value,
        node: None,
        error,
    }
}

fn finish(mut events: Vec<Event>) -> History {
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    History::new(events)
}

/// A random invocation for `kind`: (f, value).
fn random_invocation(rng: &mut StdRng, kind: ModelKind) -> (&'static str, Value) {
    let small = |rng: &mut StdRng| Value::Int(rng.gen_range(0..3));
    match kind {
        ModelKind::Register => {
            if rng.gen_bool(0.5) {
                ("read", Value::Nil)
            } else {
                ("write", small(rng))
            }
        }
        ModelKind::CasRegister | ModelKind::Kv => match rng.gen_range(0..3) {
            0 => ("read", Value::Nil),
            1 => ("write", small(rng)),
            _ => {
                let expected = if rng.gen_bool(0.2) {
                    Value::Nil
                } else {
                    small(rng)
                };
                ("cas", Value::List(vec![expected, small(rng)]))
            }
        },
        ModelKind::KvAppend => match rng.gen_range(0..3) {
            0 => ("get", Value::Nil),
            1 => (
                "put",
                Value::Str(["x", "y"][rng.gen_range(0..2)].to_owned()),
            ),
            _ => (
                "append",
                Value::Str(["a", "b", "c"][rng.gen_range(0..3)].to_owned()),
            ),
        },
        ModelKind::Set => {
            if rng.gen_bool(0.4) {
                ("read", Value::Nil)
            } else {
                ("add", Value::Int(rng.gen_range(0..5)))
            }
        }
        ModelKind::FifoQueue => {
            if rng.gen_bool(0.5) {
                ("dequeue", Value::Nil)
            } else {
                ("enqueue", Value::Int(rng.gen_range(0..4)))
            }
        }
        ModelKind::Mutex => {
            if rng.gen_bool(0.5) {
                ("acquire", Value::Nil)
            } else {
                ("release", Value::Nil)
            }
        }
    }
}

/// What a correct system would answer: (took effect, output). `None` output = op fails.
fn execute(state: &mut RefState, f: &str, input: &Value) -> Option<Value> {
    let probe = RefOp {
        f: f.to_owned(),
        input: input.clone(),
        output: None,
        cas_mismatch: false,
        call: 0,
        ret: None,
        index: 0,
    };
    let output = match (&*state, f) {
        (RefState::Register(v), "read") => v.clone(),
        (RefState::Str(s), "get") => Value::Str(s.clone()),
        (RefState::Set(s), "read") => Value::List(s.iter().cloned().collect()),
        (RefState::Queue(q), "dequeue") => q.front().cloned().unwrap_or(Value::Nil),
        _ => input.clone(),
    };
    let next = ref_step(
        state,
        &RefOp {
            output: Some(output.clone()),
            ..probe
        },
    )?;
    *state = next;
    Some(output)
}

fn random_output(rng: &mut StdRng, kind: ModelKind) -> Value {
    match kind {
        ModelKind::KvAppend => {
            Value::Str(["", "a", "ab", "x", "xa", "b"][rng.gen_range(0..6)].to_owned())
        }
        ModelKind::Set => Value::List(
            (0..rng.gen_range(0..3))
                .map(|_| Value::Int(rng.gen_range(0..5)))
                .collect(),
        ),
        _ => {
            if rng.gen_bool(0.2) {
                Value::Nil
            } else {
                Value::Int(rng.gen_range(0..4))
            }
        }
    }
}

/// A small random history: operations take effect at a random point of their span in a
/// correct system; some outputs are then corrupted, some completions are `fail`, `info` or
/// missing.
fn random_history(rng: &mut StdRng, kind: ModelKind, max_ops: usize) -> History {
    let slots = rng.gen_range(2..=4);
    let mut process_of_slot: Vec<u64> = (0..slots as u64).collect();
    let mut next_process = slots as u64;
    let mut open: Vec<Option<(&'static str, Value)>> = vec![None; slots];
    let mut state = initial_state(kind);
    let mut events = Vec::new();
    let mut invoked = 0;
    let corrupt = rng.gen_range(0.0..0.25);
    // Percent of completions that are not `ok`: fail, info or never.
    let trouble: u32 = rng.gen_range(15..60);
    loop {
        let idle: Vec<usize> = (0..slots).filter(|&s| open[s].is_none()).collect();
        let busy: Vec<usize> = (0..slots).filter(|&s| open[s].is_some()).collect();
        let can_invoke = invoked < max_ops && !idle.is_empty();
        if busy.is_empty() && !can_invoke {
            break;
        }
        if can_invoke && (busy.is_empty() || rng.gen_bool(0.5)) {
            let slot = idle[rng.gen_range(0..idle.len())];
            let (f, value) = random_invocation(rng, kind);
            events.push(event(
                process_of_slot[slot],
                EventType::Invoke,
                f,
                value.clone(),
                None,
            ));
            open[slot] = Some((f, value));
            invoked += 1;
            continue;
        }
        let slot = busy[rng.gen_range(0..busy.len())];
        let (f, input) = open[slot].take().unwrap();
        let p = process_of_slot[slot];
        let roll = rng.gen_range(0..100);
        if roll >= trouble {
            match execute(&mut state, f, &input) {
                Some(mut output) => {
                    if rng.gen_bool(corrupt) {
                        output = random_output(rng, kind);
                    }
                    events.push(event(p, EventType::Ok, f, output, None));
                }
                // A buggy system may claim success for an operation that was not legal.
                None if rng.gen_bool(corrupt) => {
                    events.push(event(p, EventType::Ok, f, input, None));
                }
                None => {
                    let error = (f == "cas" && rng.gen_bool(0.5))
                        .then(|| Value::Keyword("compare-failed".into()));
                    events.push(event(p, EventType::Fail, f, input, error));
                }
            }
        } else if roll < trouble / 3 {
            events.push(event(p, EventType::Fail, f, input, None));
        } else {
            if rng.gen_bool(0.5) {
                execute(&mut state, f, &input);
            }
            if roll < trouble * 2 / 3 {
                events.push(event(
                    p,
                    EventType::Info,
                    f,
                    Value::Keyword("timed-out".into()),
                    None,
                ));
            }
            // The slot continues under a fresh process; a pending op never completes.
            process_of_slot[slot] = next_process;
            next_process += 1;
        }
    }
    finish(events)
}

fn opts(failed_cas_observes: bool) -> CheckOptions {
    CheckOptions {
        time_limit: None,
        memory_budget: None,
        jobs: 1,
        failed_cas_observes,
        ..CheckOptions::default()
    }
}

/// Histories per model and their largest number of operations: by default enough to run in
/// a few seconds per model in a debug build; `SPLITBRAIN_DIFFERENTIAL_CASES` and
/// `SPLITBRAIN_DIFFERENTIAL_MAX_OPS` ask for more (say 30000 and 12, in a release build).
fn differential_size() -> (usize, usize) {
    let var = |name: &str, default: usize| match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
        Err(_) => default,
    };
    (
        var("SPLITBRAIN_DIFFERENTIAL_CASES", 1000),
        var("SPLITBRAIN_DIFFERENTIAL_MAX_OPS", 10),
    )
}

fn differential(kind: ModelKind, seed: u64) {
    let (histories, largest) = differential_size();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = [0usize; 2];
    for n in 0..histories {
        let max_ops = rng.gen_range(1..=largest);
        let history = random_history(&mut rng, kind, max_ops);
        for observes in [false, true] {
            let expected = oracle(kind, &history, observes);
            let result = check(&history, &ModelSpec::new(kind), &opts(observes)).unwrap();
            let got = match result.verdict {
                Verdict::Valid => true,
                Verdict::Invalid => false,
                // Nothing observed (no ok completion): the search found no violation, and
                // the check says `unknown` rather than a vacuous `valid`.
                Verdict::Unknown if result.cause.is_some() => true,
                Verdict::Unknown => panic!("unknown without limits"),
            };
            assert_eq!(
                got,
                expected,
                "{} history #{n} (failed cas observes: {observes}) disagrees with the oracle:\n{}",
                kind.name(),
                render(&history)
            );
            counts[usize::from(got)] += 1;
            if let Some(ce) = result.keys.iter().find_map(|k| k.counterexample.as_ref()) {
                check_counterexample(kind, &history, observes, ce);
            }
        }
    }
    // Both verdicts must be well represented, or the comparison proves little.
    assert!(
        counts[0] >= histories / 10 && counts[1] >= histories / 10,
        "{} verdicts (invalid, valid) = {counts:?}",
        kind.name()
    );
}

/// The counterexample's prefix must be a legal sequential run that respects real time among
/// its own operations, ending in one of the reported states, and its operation must be one
/// that has to be linearized.
fn check_counterexample(
    kind: ModelKind,
    history: &History,
    observes: bool,
    ce: &splitbrain_checkers::Counterexample,
) {
    let ops = ref_ops(history, observes);
    let by_index: HashMap<u64, &RefOp> = ops.iter().map(|o| (o.index, o)).collect();
    let blocked = by_index[&ce.operation.index];
    assert!(
        blocked.ret.is_some(),
        "the blocking op must be one that completed"
    );
    assert!(ce.prefix.iter().all(|p| p.index != ce.operation.index));
    let mut state = initial_state(kind);
    for (i, summary) in ce.prefix.iter().enumerate() {
        let op = by_index[&summary.index];
        state = ref_step(&state, op)
            .unwrap_or_else(|| panic!("prefix step {i} illegal: {}", render(history)));
        for later in &ce.prefix[i + 1..] {
            assert!(
                by_index[&later.index].ret.is_none_or(|r| r > op.call),
                "prefix breaks real time"
            );
        }
    }
    assert!(!ce.states.is_empty());
}

fn render(history: &History) -> String {
    history
        .events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}{}",
                e.index,
                e.process,
                e.kind.as_str(),
                e.f,
                e.value,
                e.error
                    .as_ref()
                    .map(|x| format!(" error {x}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn register_agrees_with_the_oracle() {
    differential(ModelKind::Register, 1);
}

#[test]
fn cas_register_agrees_with_the_oracle() {
    differential(ModelKind::CasRegister, 2);
}

#[test]
fn kv_append_agrees_with_the_oracle() {
    differential(ModelKind::KvAppend, 3);
}

#[test]
fn set_agrees_with_the_oracle() {
    differential(ModelKind::Set, 4);
}

#[test]
fn fifo_queue_agrees_with_the_oracle() {
    differential(ModelKind::FifoQueue, 5);
}

#[test]
fn mutex_agrees_with_the_oracle() {
    differential(ModelKind::Mutex, 6);
}

// ---------------------------------------------------------------------------------------
// Targeted tests.

/// Builds a single-key history from (process, type, f, value) rows.
fn rows(rows: &[(u64, EventType, &str, Value)]) -> History {
    finish(
        rows.iter()
            .map(|(p, t, f, v)| event(*p, *t, f, v.clone(), None))
            .collect(),
    )
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn verdict(kind: ModelKind, history: &History) -> Verdict {
    let v = check(history, &ModelSpec::new(kind), &opts(false))
        .unwrap()
        .verdict;
    assert_eq!(
        v == Verdict::Valid,
        oracle(kind, history, false),
        "oracle disagrees"
    );
    v
}

/// Two crashed writes A (1) and B (2); reads see 2 then 1, so only B, read, A, read works.
/// The search first explores A then B, reaching (read 2 done, {A, B}, state 2) which fails;
/// the later configuration ({B}, state 2) has fewer indeterminate ops and must not be pruned
/// by it (only supersets of a seen configuration may be).
#[test]
fn dominance_prunes_only_supersets_of_indeterminate_ops() {
    use EventType::*;
    let h = rows(&[
        (0, Invoke, "write", int(1)),
        (1, Invoke, "write", int(2)),
        (2, Invoke, "read", Value::Nil),
        (2, Ok, "read", int(2)),
        (2, Invoke, "read", Value::Nil),
        (2, Ok, "read", int(1)),
    ]);
    assert_eq!(verdict(ModelKind::Register, &h), Verdict::Valid);
}

#[test]
fn a_valid_and_an_invalid_history_per_model() {
    use EventType::*;
    let nil = Value::Nil;
    let s = |x: &str| Value::Str(x.to_owned());
    let list = |xs: &[i64]| Value::List(xs.iter().map(|&x| Value::Int(x)).collect());
    // (model, valid history, invalid history)
    let cases: Vec<(ModelKind, History, History)> = vec![
        (
            ModelKind::Register,
            rows(&[
                (0, Invoke, "write", int(1)),
                (1, Invoke, "read", nil.clone()),
                (1, Ok, "read", int(1)),
                (0, Ok, "write", int(1)),
            ]),
            rows(&[
                (0, Invoke, "write", int(1)),
                (0, Ok, "write", int(1)),
                (1, Invoke, "read", nil.clone()),
                (1, Ok, "read", nil.clone()),
            ]),
        ),
        (
            ModelKind::CasRegister,
            rows(&[
                (0, Invoke, "write", int(1)),
                (0, Ok, "write", int(1)),
                (1, Invoke, "cas", list(&[1, 2])),
                (1, Ok, "cas", list(&[1, 2])),
                (0, Invoke, "read", nil.clone()),
                (0, Ok, "read", int(2)),
            ]),
            rows(&[
                (0, Invoke, "write", int(1)),
                (0, Ok, "write", int(1)),
                (1, Invoke, "cas", list(&[2, 3])),
                (1, Ok, "cas", list(&[2, 3])),
            ]),
        ),
        (
            ModelKind::KvAppend,
            rows(&[
                (0, Invoke, "append", s("a")),
                (1, Invoke, "append", s("b")),
                (0, Ok, "append", s("a")),
                (1, Ok, "append", s("b")),
                (2, Invoke, "get", nil.clone()),
                (2, Ok, "get", s("ba")),
            ]),
            rows(&[
                (0, Invoke, "append", s("a")),
                (0, Ok, "append", s("a")),
                (1, Invoke, "append", s("b")),
                (1, Ok, "append", s("b")),
                (2, Invoke, "get", nil.clone()),
                (2, Ok, "get", s("ba")),
            ]),
        ),
        (
            ModelKind::Set,
            rows(&[
                (0, Invoke, "add", int(1)),
                (1, Invoke, "read", nil.clone()),
                (1, Ok, "read", list(&[1])),
                (0, Ok, "add", int(1)),
            ]),
            rows(&[
                (0, Invoke, "add", int(1)),
                (0, Ok, "add", int(1)),
                (1, Invoke, "read", nil.clone()),
                (1, Ok, "read", list(&[])),
            ]),
        ),
        (
            ModelKind::FifoQueue,
            rows(&[
                (0, Invoke, "enqueue", int(1)),
                (0, Ok, "enqueue", int(1)),
                (0, Invoke, "enqueue", int(2)),
                (1, Invoke, "dequeue", nil.clone()),
                (1, Ok, "dequeue", int(1)),
                (0, Ok, "enqueue", int(2)),
            ]),
            rows(&[
                (0, Invoke, "enqueue", int(1)),
                (0, Ok, "enqueue", int(1)),
                (0, Invoke, "enqueue", int(2)),
                (0, Ok, "enqueue", int(2)),
                (1, Invoke, "dequeue", nil.clone()),
                (1, Ok, "dequeue", int(2)),
            ]),
        ),
        (
            ModelKind::Mutex,
            rows(&[
                (0, Invoke, "acquire", nil.clone()),
                (0, Ok, "acquire", nil.clone()),
                (1, Invoke, "acquire", nil.clone()),
                (0, Invoke, "release", nil.clone()),
                (0, Ok, "release", nil.clone()),
                (1, Ok, "acquire", nil.clone()),
            ]),
            rows(&[
                (0, Invoke, "acquire", nil.clone()),
                (0, Ok, "acquire", nil.clone()),
                (1, Invoke, "acquire", nil.clone()),
                (1, Ok, "acquire", nil.clone()),
            ]),
        ),
    ];
    for (kind, valid, invalid) in cases {
        assert_eq!(verdict(kind, &valid), Verdict::Valid, "{}", kind.name());
        assert_eq!(verdict(kind, &invalid), Verdict::Invalid, "{}", kind.name());
    }
}

#[test]
fn keys_are_checked_separately_and_invalid_beats_valid() {
    use EventType::*;
    let mut h = rows(&[
        (0, Invoke, "write", int(1)),
        (0, Ok, "write", int(1)),
        (1, Invoke, "read", Value::Nil),
        (1, Ok, "read", int(1)),
        (2, Invoke, "read", Value::Nil),
        (2, Ok, "read", int(1)),
    ]);
    // Key "a" holds the write and the first read; key "b" was never written but read 1.
    for (e, key) in h.events.iter_mut().zip(["a", "a", "a", "a", "b", "b"]) {
        e.key = Some(Value::Str(key.to_owned()));
    }
    let result = check(&h, &ModelSpec::new(ModelKind::Kv), &opts(false)).unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
    assert_eq!(result.operations, 3);
    let keys: Vec<_> = result
        .keys
        .iter()
        .map(|k| (k.key.clone(), k.verdict))
        .collect();
    // Key "b" may be reported invalid or, if "a" finished later, "a" valid; with one job the
    // order is fixed: the larger key first, then "b".
    assert_eq!(
        keys,
        vec![
            (Some(Value::Str("a".into())), Verdict::Valid),
            (Some(Value::Str("b".into())), Verdict::Invalid)
        ]
    );
    let ce = result.keys[1].counterexample.as_ref().unwrap();
    assert_eq!(ce.key, Some(Value::Str("b".into())));
}

#[test]
fn failed_cas_readings() {
    use EventType::*;
    // The register holds 1 throughout the failed cas expecting 1: dropped by default, a
    // contradiction when read as an observation.
    let mut h = rows(&[
        (0, Invoke, "write", int(1)),
        (0, Ok, "write", int(1)),
        (1, Invoke, "cas", Value::List(vec![int(1), int(2)])),
        (1, Fail, "cas", Value::List(vec![int(1), int(2)])),
    ]);
    let spec = ModelSpec::new(ModelKind::CasRegister);
    assert_eq!(
        check(&h, &spec, &opts(false)).unwrap().verdict,
        Verdict::Valid
    );
    assert_eq!(
        check(&h, &spec, &opts(true)).unwrap().verdict,
        Verdict::Invalid
    );
    // An error saying the compare failed makes it an observation even by default.
    h.events[3].error = Some(Value::Keyword("compare-failed".into()));
    assert_eq!(
        check(&h, &spec, &opts(false)).unwrap().verdict,
        Verdict::Invalid
    );
    h.events[3].error = Some(Value::Str("mismatch".into()));
    assert_eq!(
        check(&h, &spec, &opts(false)).unwrap().verdict,
        Verdict::Invalid
    );
    h.events[3].error = Some(Value::Keyword("timeout".into()));
    assert_eq!(
        check(&h, &spec, &opts(false)).unwrap().verdict,
        Verdict::Valid
    );
}

#[test]
fn initial_value_is_honoured() {
    use EventType::*;
    let h = rows(&[(0, Invoke, "read", Value::Nil), (0, Ok, "read", int(0))]);
    let mut spec = ModelSpec::new(ModelKind::Register);
    assert_eq!(
        check(&h, &spec, &opts(false)).unwrap().verdict,
        Verdict::Invalid
    );
    spec.initial = int(0);
    assert_eq!(
        check(&h, &spec, &opts(false)).unwrap().verdict,
        Verdict::Valid
    );
}

#[test]
fn bad_shapes_and_orphan_completions_are_prepare_errors() {
    use EventType::*;
    let h = rows(&[
        (0, Invoke, "write", int(1)),
        (0, Ok, "write", int(1)),
        (1, Invoke, "cas", int(3)),
        (1, Ok, "cas", int(3)),
    ]);
    let err = check(&h, &ModelSpec::new(ModelKind::CasRegister), &opts(false)).unwrap_err();
    assert_eq!(err.index, 2);
    assert!(err.message.contains("[expected new]"), "{err}");
    let err = check(&h, &ModelSpec::new(ModelKind::Set), &opts(false)).unwrap_err();
    assert_eq!(err.index, 0);
    assert!(err.message.contains("add or read"), "{err}");
    let h = rows(&[(0, Ok, "write", int(1))]);
    let err = check(&h, &ModelSpec::new(ModelKind::Register), &opts(false)).unwrap_err();
    assert_eq!(err.index, 0);
}

#[test]
fn counterexample_names_the_stuck_operation_prefix_and_states() {
    use EventType::*;
    let h = rows(&[
        (0, Invoke, "write", int(1)),
        (0, Ok, "write", int(1)),
        (1, Invoke, "write", int(2)),
        (1, Ok, "write", int(2)),
        (0, Invoke, "read", Value::Nil),
        (0, Ok, "read", int(1)),
    ]);
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &opts(false)).unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
    let ce = result.keys[0].counterexample.as_ref().unwrap();
    assert_eq!(ce.key, None);
    assert_eq!((ce.operation.index, ce.operation.f.as_str()), (4, "read"));
    assert_eq!(ce.operation.output, Some(int(1)));
    assert_eq!(ce.operation.outcome, "ok");
    let prefix: Vec<u64> = ce.prefix.iter().map(|o| o.index).collect();
    assert_eq!(prefix, vec![0, 2]);
    assert_eq!(ce.states, vec!["2".to_owned()]);
}

/// `n` writes all concurrent with each other, then a read of a value
/// nobody wrote: invalid, but only after trying every subset and order of the writes.
fn explosive_history(n: u64) -> History {
    let mut r = Vec::new();
    for p in 0..n {
        r.push((p, EventType::Invoke, "write", int(p as i64)));
    }
    for p in 0..n {
        r.push((p, EventType::Ok, "write", int(p as i64)));
    }
    r.push((n, EventType::Invoke, "read", Value::Nil));
    r.push((n, EventType::Ok, "read", int(-1)));
    rows(&r)
}

#[test]
fn time_limit_gives_unknown() {
    let h = explosive_history(22);
    let options = CheckOptions {
        time_limit: Some(Duration::from_millis(50)),
        ..opts(false)
    };
    let started = std::time::Instant::now();
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &options).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(result.verdict, Verdict::Unknown);
    let cause = result.keys[0].cause.as_deref().unwrap();
    assert!(cause.contains("time limit"), "{cause}");
    assert!(result.configurations > 0);
}

#[test]
fn memory_budget_gives_unknown() {
    let h = explosive_history(22);
    let options = CheckOptions {
        memory_budget: Some(1 << 20),
        ..opts(false)
    };
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &options).unwrap();
    assert_eq!(result.verdict, Verdict::Unknown);
    let cause = result.keys[0].cause.as_deref().unwrap();
    assert!(cause.contains("memory budget"), "{cause}");
    // And a small explosive history still decides within the same budget.
    let small = explosive_history(6);
    let result = check(&small, &ModelSpec::new(ModelKind::Register), &options).unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
}

// ---------------------------------------------------------------------------------------
// Self-measurement (release build, run by hand):
// cargo test --release -p splitbrain-checkers --test differential -- --ignored --nocapture

/// With `first_failure`, on one thread, a key whose search would take very long is scheduled first (it is the
/// largest); keys take turns, so a small invalid key behind it still decides the verdict
/// quickly, and the hard key is reported as stopped for that reason.
#[test]
fn keys_take_turns_so_a_hard_key_cannot_hide_an_invalid_one() {
    let mut h = explosive_history(26);
    for e in &mut h.events {
        e.key = Some(Value::Str("hard".into()));
    }
    let mut events = h.events;
    for (kind, value) in [(EventType::Invoke, Value::Nil), (EventType::Ok, int(7))] {
        let mut e = event(100, kind, "read", value, None);
        e.key = Some(Value::Str("small".into()));
        events.push(e);
    }
    let h = finish(events);
    let started = std::time::Instant::now();
    let first_failure = CheckOptions {
        first_failure: true,
        ..opts(false)
    };
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &first_failure).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(result.verdict, Verdict::Invalid);
    let hard = &result.keys[0];
    assert_eq!(hard.key, Some(Value::Str("hard".into())));
    assert_eq!(hard.verdict, Verdict::Unknown);
    assert!(
        hard.cause
            .as_deref()
            .unwrap()
            .contains("another key was found invalid"),
        "{:?}",
        hard.cause
    );
    let small = &result.keys[1];
    assert_eq!(small.verdict, Verdict::Invalid);
    assert_eq!(
        small.counterexample.as_ref().unwrap().operation.output,
        Some(int(7))
    );
}

// ---------------------------------------------------------------------------------------
// Limits and causes, exactly.

/// `n` writes of one process, one after the other, on `key`: the search enters one
/// configuration per write but the last, each costing 48 bytes of memo.
fn sequential_writes(n: u64, key: &str) -> Vec<Event> {
    (0..n as i64)
        .flat_map(|i| {
            [EventType::Invoke, EventType::Ok].map(|kind| {
                let mut e = event(0, kind, "write", int(i), None);
                e.key = Some(Value::Str(key.to_owned()));
                e
            })
        })
        .collect()
}

const ENTRY_BYTES: u64 = 48;

#[test]
fn the_memory_budget_cause_names_the_budget_the_configurations_and_the_memo() {
    let h = finish(sequential_writes(3, "k"));
    let spec = ModelSpec::new(ModelKind::Register);
    let options = |budget| CheckOptions {
        memory_budget: Some(budget),
        ..opts(false)
    };
    // The first configuration after the start costs 48 bytes; the second write completes.
    let result = check(&h, &spec, &options(ENTRY_BYTES - 1)).unwrap();
    assert_eq!(result.verdict, Verdict::Unknown);
    assert_eq!(
        result.keys[0].cause.as_deref(),
        Some(
            "memory budget of 47 bytes exhausted after 2 configurations (this key's memo: about 48 bytes)"
        )
    );
    assert_eq!(result.configurations, 2);
    let result = check(&h, &spec, &options(2 * ENTRY_BYTES)).unwrap();
    assert_eq!(result.verdict, Verdict::Valid);
    assert_eq!(result.keys[0].cause, None);
    assert_eq!(result.configurations, 3);
}

/// Two keys of ten writes each need 9 × 48 = 432 bytes apiece. Checked one after the other
/// under a budget of 500, both fit only if the first key's memory is released when its search
/// ends.
#[test]
fn a_finished_key_releases_its_memory_for_the_next() {
    let mut events = sequential_writes(10, "a");
    events.extend(sequential_writes(10, "b"));
    let h = finish(events);
    let options = CheckOptions {
        memory_budget: Some(500),
        ..opts(false)
    };
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &options).unwrap();
    let keys: Vec<_> = result
        .keys
        .iter()
        .map(|k| (k.verdict, k.cause.clone()))
        .collect();
    assert_eq!(keys, vec![(Verdict::Valid, None), (Verdict::Valid, None)]);
    assert_eq!(result.configurations, 20);
    assert_eq!(result.operations, 20);
    assert_eq!(
        result.keys.iter().map(|k| k.operations).collect::<Vec<_>>(),
        vec![10, 10]
    );
}

/// A search looks at the clock before its first step: a time limit of zero leaves even a
/// one-operation history `unknown`, after the one configuration it starts from; a generous
/// limit changes nothing.
#[test]
fn a_time_limit_is_checked_before_the_first_step() {
    let spec = ModelSpec::new(ModelKind::Register);
    for n in [1, 3] {
        let h = finish(sequential_writes(n, "k"));
        let zero = CheckOptions {
            time_limit: Some(Duration::ZERO),
            ..opts(false)
        };
        let result = check(&h, &spec, &zero).unwrap();
        assert_eq!(result.verdict, Verdict::Unknown, "{n} writes");
        assert_eq!(
            result.keys[0].cause.as_deref(),
            Some("time limit of 0ns reached after 1 configurations")
        );
        let hour = CheckOptions {
            time_limit: Some(Duration::from_secs(3600)),
            ..opts(false)
        };
        let result = check(&h, &spec, &hour).unwrap();
        assert_eq!(result.verdict, Verdict::Valid, "{n} writes");
        assert_eq!(result.configurations, n);
    }
}

/// With `first_failure`, once a key is invalid, a key whose search never started is reported
/// as not checked; one that had started (see
/// `keys_take_turns_so_a_hard_key_cannot_hide_an_invalid_one`) as stopped.
#[test]
fn a_key_not_yet_started_when_another_is_invalid_is_not_checked() {
    use EventType::*;
    // Key "a" (the larger, checked first) reads a value nobody wrote; key "b" is valid.
    let mut h = rows(&[
        (0, Invoke, "write", int(1)),
        (0, Ok, "write", int(1)),
        (1, Invoke, "read", Value::Nil),
        (1, Ok, "read", int(2)),
        (2, Invoke, "write", int(3)),
        (2, Ok, "write", int(3)),
    ]);
    for (e, key) in h.events.iter_mut().zip(["a", "a", "a", "a", "b", "b"]) {
        e.key = Some(Value::Str(key.to_owned()));
    }
    let first_failure = CheckOptions {
        first_failure: true,
        ..opts(false)
    };
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &first_failure).unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
    let b = &result.keys[1];
    assert_eq!(b.verdict, Verdict::Unknown);
    assert_eq!(
        b.cause.as_deref(),
        Some(
            "not checked: another key was already found invalid, which decides the verdict \
             (first failure asked)"
        )
    );
    assert_eq!(b.configurations, 0);
    assert_eq!(result.keys[0].operations, 2);
    // By default every key is checked: "b" is decided on its own.
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &opts(false)).unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
    assert_eq!(result.keys[1].verdict, Verdict::Valid);
    assert!(result.keys[1].configurations > 0);
}

// ---------------------------------------------------------------------------------------
// Counterexamples, exactly.

/// The counterexample of a register history: the stuck read, the deepest linearization
/// (the crashed write included, and what it wrote), and the states where the read was stuck.
#[test]
fn a_counterexample_lists_the_crashed_operations_it_used() {
    use EventType::*;
    let h = rows(&[
        (0, Invoke, "write", int(1)),
        (1, Invoke, "write", int(2)),
        (1, Info, "write", Value::Nil),
        (0, Ok, "write", int(1)),
        (2, Invoke, "read", Value::Nil),
        (2, Ok, "read", int(2)),
        (2, Invoke, "read", Value::Nil),
        (2, Ok, "read", int(1)),
    ]);
    let result = check(&h, &ModelSpec::new(ModelKind::Register), &opts(false)).unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
    let ce = result.keys[0].counterexample.as_ref().unwrap();
    assert_eq!(ce.operation.index, 6);
    assert_eq!(ce.operation.output, Some(int(1)));
    let prefix: Vec<_> = ce
        .prefix
        .iter()
        .map(|o| {
            (
                o.index,
                o.outcome.as_str(),
                o.value.clone(),
                o.output.clone(),
            )
        })
        .collect();
    assert_eq!(
        prefix,
        vec![
            (0, "ok", int(1), Some(int(1))),
            (1, "info", int(2), None),
            (4, "ok", Value::Nil, Some(int(2))),
        ]
    );
    assert_eq!(ce.states, vec!["2".to_owned()]);
}

/// (model, history, index of the stuck operation, indices of the prefix, states).
type CounterexampleCase = (ModelKind, History, u64, Vec<u64>, Vec<&'static str>);

/// Per model, an invalid history's counterexample: operation, prefix and states.
#[test]
fn each_model_renders_its_counterexample_states() {
    use EventType::*;
    let nil = Value::Nil;
    let s = |x: &str| Value::Str(x.to_owned());
    let cases: Vec<CounterexampleCase> = vec![
        (
            ModelKind::KvAppend,
            rows(&[
                (0, Invoke, "append", s("a")),
                (0, Ok, "append", s("a")),
                (0, Invoke, "append", s("b")),
                (0, Ok, "append", s("b")),
                (1, Invoke, "get", nil.clone()),
                (1, Ok, "get", s("ba")),
            ]),
            4,
            vec![0, 2],
            vec!["\"ab\""],
        ),
        (
            ModelKind::Set,
            rows(&[
                (0, Invoke, "add", int(2)),
                (0, Ok, "add", int(2)),
                (0, Invoke, "add", int(1)),
                (0, Ok, "add", int(1)),
                (1, Invoke, "read", nil.clone()),
                (1, Ok, "read", Value::List(vec![int(2)])),
            ]),
            4,
            vec![0, 2],
            vec!["#{1 2}"],
        ),
        (
            ModelKind::FifoQueue,
            rows(&[
                (0, Invoke, "enqueue", int(1)),
                (0, Ok, "enqueue", int(1)),
                (0, Invoke, "enqueue", int(2)),
                (0, Ok, "enqueue", int(2)),
                (1, Invoke, "dequeue", nil.clone()),
                (1, Ok, "dequeue", int(2)),
            ]),
            4,
            vec![0, 2],
            vec!["[1 2]"],
        ),
        (
            ModelKind::Mutex,
            rows(&[
                (0, Invoke, "acquire", nil.clone()),
                (0, Ok, "acquire", nil.clone()),
                (1, Invoke, "acquire", nil.clone()),
                (1, Ok, "acquire", nil.clone()),
            ]),
            2,
            vec![0],
            vec!["held"],
        ),
        (
            ModelKind::Mutex,
            rows(&[
                (0, Invoke, "release", nil.clone()),
                (0, Ok, "release", nil.clone()),
            ]),
            0,
            vec![],
            vec!["free"],
        ),
        (
            ModelKind::CasRegister,
            rows(&[
                (0, Invoke, "cas", Value::List(vec![nil.clone(), int(1)])),
                (0, Ok, "cas", Value::List(vec![nil.clone(), int(1)])),
                (0, Invoke, "cas", Value::List(vec![nil.clone(), int(2)])),
                (0, Ok, "cas", Value::List(vec![nil.clone(), int(2)])),
            ]),
            2,
            vec![0],
            vec!["1"],
        ),
    ];
    for (kind, h, op, prefix, states) in cases {
        let result = check(&h, &ModelSpec::new(kind), &opts(false)).unwrap();
        assert_eq!(result.verdict, Verdict::Invalid, "{}", kind.name());
        let ce = result.keys[0].counterexample.as_ref().unwrap();
        assert_eq!(ce.operation.index, op, "{}", kind.name());
        let got: Vec<u64> = ce.prefix.iter().map(|o| o.index).collect();
        assert_eq!(got, prefix, "{}", kind.name());
        assert_eq!(ce.states, states, "{}", kind.name());
    }
}

// ---------------------------------------------------------------------------------------
// Models: initial states and the edges of each step.

#[test]
fn model_edge_cases() {
    use EventType::*;
    let nil = Value::Nil;
    let s = |x: &str| Value::Str(x.to_owned());
    // (model, initial value, history, valid?)
    let cases: Vec<(ModelKind, Value, History, bool)> = vec![
        // A mutex starts free: a first release is illegal, a first acquire legal.
        (
            ModelKind::Mutex,
            nil.clone(),
            rows(&[
                (0, Invoke, "release", nil.clone()),
                (0, Ok, "release", nil.clone()),
            ]),
            false,
        ),
        (
            ModelKind::Mutex,
            nil.clone(),
            rows(&[
                (0, Invoke, "lock", nil.clone()),
                (0, Ok, "lock", nil.clone()),
            ]),
            true,
        ),
        // An initial string: a get of the empty string is wrong, appends extend it.
        (
            ModelKind::KvAppend,
            s("x"),
            rows(&[(0, Invoke, "get", nil.clone()), (0, Ok, "get", nil.clone())]),
            false,
        ),
        (
            ModelKind::KvAppend,
            s("x"),
            rows(&[
                (0, Invoke, "append", s("y")),
                (0, Ok, "append", s("y")),
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", s("xy")),
            ]),
            true,
        ),
        // A get of nil reads the empty string; a put replaces, it does not append.
        (
            ModelKind::KvAppend,
            nil.clone(),
            rows(&[
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", nil.clone()),
                (0, Invoke, "append", s("a")),
                (0, Ok, "append", s("a")),
                (0, Invoke, "put", s("b")),
                (0, Ok, "put", s("b")),
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", s("b")),
            ]),
            true,
        ),
        // Strings of equal length that differ, and a prefix of the right string.
        (
            ModelKind::KvAppend,
            nil.clone(),
            rows(&[
                (0, Invoke, "append", s("ab")),
                (0, Ok, "append", s("ab")),
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", s("ba")),
            ]),
            false,
        ),
        (
            ModelKind::KvAppend,
            nil.clone(),
            rows(&[
                (0, Invoke, "append", s("ab")),
                (0, Ok, "append", s("ab")),
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", s("a")),
            ]),
            false,
        ),
        // The same get twice in one state (the second answered from the node's record).
        (
            ModelKind::KvAppend,
            nil.clone(),
            rows(&[
                (0, Invoke, "append", s("ab")),
                (0, Ok, "append", s("ab")),
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", s("ab")),
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", s("ab")),
                (0, Invoke, "append", s("c")),
                (0, Ok, "append", s("c")),
                (0, Invoke, "get", nil.clone()),
                (0, Ok, "get", s("ab")),
            ]),
            false,
        ),
        // A queue starts empty: a dequeue of nil is right, of a value wrong.
        (
            ModelKind::FifoQueue,
            nil.clone(),
            rows(&[
                (0, Invoke, "dequeue", nil.clone()),
                (0, Ok, "dequeue", nil.clone()),
            ]),
            true,
        ),
        (
            ModelKind::FifoQueue,
            nil.clone(),
            rows(&[
                (0, Invoke, "enqueue", int(0)),
                (0, Ok, "enqueue", int(0)),
                (0, Invoke, "dequeue", nil.clone()),
                (0, Ok, "dequeue", nil.clone()),
            ]),
            false,
        ),
        // A crashed dequeue may remove the head.
        (
            ModelKind::FifoQueue,
            nil.clone(),
            rows(&[
                (0, Invoke, "enqueue", int(0)),
                (0, Ok, "enqueue", int(0)),
                (1, Invoke, "dequeue", nil.clone()),
                (1, Info, "dequeue", nil.clone()),
                (0, Invoke, "dequeue", nil.clone()),
                (0, Ok, "dequeue", nil.clone()),
            ]),
            true,
        ),
        // Dequeues of value 0 and enqueues of value 0 are different transitions.
        (
            ModelKind::FifoQueue,
            nil.clone(),
            rows(&[
                (0, Invoke, "enqueue", int(0)),
                (0, Ok, "enqueue", int(0)),
                (0, Invoke, "dequeue", nil.clone()),
                (0, Ok, "dequeue", int(0)),
                (0, Invoke, "enqueue", int(0)),
                (0, Ok, "enqueue", int(0)),
                (0, Invoke, "dequeue", nil.clone()),
                (0, Ok, "dequeue", int(0)),
                (0, Invoke, "dequeue", nil.clone()),
                (0, Ok, "dequeue", nil.clone()),
            ]),
            true,
        ),
        // A set starts empty, and a read of nil is the empty set.
        (
            ModelKind::Set,
            nil.clone(),
            rows(&[
                (0, Invoke, "read", nil.clone()),
                (0, Ok, "read", nil.clone()),
            ]),
            true,
        ),
        (
            ModelKind::Set,
            nil.clone(),
            rows(&[
                (0, Invoke, "add", int(1)),
                (0, Ok, "add", int(1)),
                (0, Invoke, "add", int(1)),
                (0, Ok, "add", int(1)),
                (0, Invoke, "read", nil.clone()),
                (0, Ok, "read", Value::List(vec![int(1), int(1)])),
            ]),
            true,
        ),
        // A register's initial value, for cas and read.
        (
            ModelKind::CasRegister,
            int(5),
            rows(&[
                (0, Invoke, "cas", Value::List(vec![int(5), int(6)])),
                (0, Ok, "cas", Value::List(vec![int(5), int(6)])),
                (0, Invoke, "read", nil.clone()),
                (0, Ok, "read", int(6)),
            ]),
            true,
        ),
        (
            ModelKind::Register,
            int(5),
            rows(&[
                (0, Invoke, "read", nil.clone()),
                (0, Ok, "read", nil.clone()),
            ]),
            false,
        ),
    ];
    for (n, (kind, initial, h, valid)) in cases.into_iter().enumerate() {
        let spec = ModelSpec { kind, initial };
        let result = check(&h, &spec, &opts(false)).unwrap();
        let expected = if valid {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(result.verdict, expected, "case {n}: {}", kind.name());
    }
}

/// An `ok` completion supplies a write's value when the invocation carried none.
#[test]
fn an_ok_completion_supplies_the_written_value() {
    use EventType::*;
    let h = rows(&[
        (0, Invoke, "write", Value::Nil),
        (0, Ok, "write", int(5)),
        (1, Invoke, "read", Value::Nil),
        (1, Ok, "read", int(5)),
    ]);
    let spec = ModelSpec::new(ModelKind::Register);
    assert_eq!(
        check(&h, &spec, &opts(false)).unwrap().verdict,
        Verdict::Valid
    );
}

// ---------------------------------------------------------------------------------------
// Regression cases: histories on which a broken search once disagreed with the oracle,
// found by long differential runs against mutated searches. Written as `render` prints
// them: index, process, type, f, value, and optionally `error` and a keyword.

fn parse_value(text: &str) -> Value {
    let text = text.trim();
    if let Some(items) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return Value::List(items.split_whitespace().map(parse_value).collect());
    }
    if let Some(s) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return Value::Str(s.to_owned());
    }
    if let Some(k) = text.strip_prefix(':') {
        return Value::Keyword(k.to_owned());
    }
    match text {
        "nil" => Value::Nil,
        n => Value::Int(n.parse().unwrap_or_else(|_| panic!("not a value: {n:?}"))),
    }
}

fn parse_rendered(text: &str) -> History {
    let events = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (line, error) = match line.split_once(" error ") {
                Some((l, e)) => (l, Some(parse_value(e))),
                None => (line, None),
            };
            let mut words = line.splitn(5, ' ');
            let _index = words.next();
            let process: u64 = words.next().unwrap().parse().unwrap();
            let kind = match words.next().unwrap() {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                "info" => EventType::Info,
                other => panic!("not an event type: {other}"),
            };
            let f = words.next().unwrap();
            event(process, kind, f, parse_value(words.next().unwrap()), error)
        })
        .collect();
    finish(events)
}

/// Checks `text` with the default reading of failed cas, against `valid` and the oracle.
fn regression(kind: ModelKind, text: &str, valid: bool) {
    let h = parse_rendered(text);
    assert_eq!(
        render(&h),
        text.trim().replace("\n    ", "\n"),
        "parsed as written"
    );
    assert_eq!(oracle(kind, &h, false), valid, "the oracle's verdict");
    let result = check(&h, &ModelSpec::new(kind), &opts(false)).unwrap();
    let expected = if valid {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    assert_eq!(result.verdict, expected, "{}:\n{text}", kind.name());
}

/// A step the memo refused left its `ok` operation marked as linearized (the search then
/// skipped it): `valid` for these non-linearizable histories.
#[test]
fn regression_a_refused_step_leaves_no_mark() {
    regression(
        ModelKind::CasRegister,
        "0 1 invoke cas [0 2]
    1 2 invoke write 0
    2 3 invoke cas [nil 0]
    3 0 invoke write 2
    4 0 ok write 2
    5 0 invoke read nil
    6 0 ok read 2
    7 0 invoke write 2
    8 3 fail cas [nil 0]
    9 2 ok write 0
    10 0 ok write 2
    11 3 invoke read nil
    12 1 fail cas [0 2] error :compare-failed
    13 2 invoke cas [0 1]
    14 1 invoke cas [0 0]
    15 1 fail cas [0 0] error :compare-failed
    16 3 ok read 2
    17 2 ok cas [0 1]",
        false,
    );
    regression(
        ModelKind::FifoQueue,
        "0 3 invoke dequeue nil
    1 0 invoke dequeue nil
    2 0 info dequeue :timed-out
    3 3 ok dequeue nil
    4 2 invoke enqueue 2
    5 2 ok enqueue 2
    6 2 invoke enqueue 1
    7 1 invoke enqueue 3
    8 3 invoke dequeue nil
    9 1 info enqueue :timed-out
    10 6 invoke enqueue 1
    11 4 invoke enqueue 2
    12 5 invoke dequeue nil
    13 5 ok dequeue 1
    14 5 invoke enqueue 3
    15 3 ok dequeue 1
    16 6 fail enqueue 1
    17 4 fail enqueue 2
    18 5 info enqueue :timed-out",
        false,
    );
    regression(
        ModelKind::Mutex,
        "0 3 invoke acquire nil
    1 3 fail acquire nil
    2 2 invoke release nil
    3 2 fail release nil
    4 3 invoke acquire nil
    5 1 invoke acquire nil
    6 3 ok acquire 2
    7 3 invoke release nil
    8 0 invoke release nil
    9 2 invoke acquire nil
    10 2 fail acquire nil
    11 2 invoke release nil
    12 3 ok release nil
    13 1 ok acquire nil
    14 1 invoke release nil
    15 2 ok release nil
    16 1 fail release nil
    17 0 ok release nil",
        false,
    );
}

/// Backing out of a crashed operation (other than the first of its key) left it marked as
/// linearized, so the memo wrongly pruned configurations: `invalid` for these
/// linearizable histories.
#[test]
fn regression_an_undone_indeterminate_operation_leaves_no_mark() {
    regression(
        ModelKind::KvAppend,
        r#"0 1 invoke append "c"
    1 1 ok append "c"
    2 1 invoke put "x"
    3 0 invoke get nil
    4 1 ok put "x"
    5 0 ok get "x"
    6 0 invoke get nil
    7 1 invoke put "x"
    8 0 ok get "x"
    9 1 ok put "x"
    10 1 invoke get nil
    11 0 invoke append "c"
    12 0 ok append ""
    13 1 ok get "xc"
    14 0 invoke append "c"
    15 1 invoke put "y"
    16 1 ok put "y"
    17 0 ok append "xa"
    18 0 invoke append "c"
    19 0 info append :timed-out
    20 2 invoke get nil
    21 1 invoke append "c"
    22 2 ok get "yccc""#,
        true,
    );
    regression(
        ModelKind::Register,
        "0 0 invoke write 1
    1 2 invoke write 0
    2 2 ok write 1
    3 3 invoke write 1
    4 4 invoke read nil
    5 1 invoke write 0
    6 4 info read :timed-out
    7 2 invoke read nil
    8 5 invoke write 2
    9 2 ok read 1
    10 2 invoke read nil
    11 5 info write :timed-out
    12 6 invoke read nil
    13 2 fail read nil
    14 6 ok read 2
    15 1 info write :timed-out
    16 2 invoke read nil
    17 2 ok read 0",
        true,
    );
}

/// Histories of more than 64 operations, so that the search's bit sets, prefix and memo
/// windows span several words: rounds of two concurrent writes and a read of either, with a
/// crashed write now and then; the last read sees the value of the last round, or one that
/// was overwritten long before.
#[test]
fn long_histories_span_several_words_of_marks() {
    use EventType::*;
    let long = |last: i64| {
        let mut r = Vec::new();
        for round in 0..30i64 {
            let (a, b) = (2 * round, 2 * round + 1);
            r.push((0, Invoke, "write", int(a)));
            r.push((1, Invoke, "write", int(b)));
            r.push((0, Ok, "write", int(a)));
            r.push((1, Ok, "write", int(b)));
            r.push((2, Invoke, "read", Value::Nil));
            r.push((2, Ok, "read", int(if round % 2 == 0 { a } else { b })));
            if round % 7 == 3 {
                r.push((10 + round as u64, Invoke, "write", int(1000 + round)));
            }
        }
        r.push((3, Invoke, "read", Value::Nil));
        r.push((3, Ok, "read", int(last)));
        rows(&r)
    };
    let spec = ModelSpec::new(ModelKind::Register);
    for (last, expected) in [
        (59, Verdict::Valid),
        (1024, Verdict::Valid),
        (57, Verdict::Invalid),
    ] {
        let result = check(&long(last), &spec, &opts(false)).unwrap();
        assert_eq!(result.verdict, expected, "last read {last}");
    }
    let result = check(&long(5), &spec, &opts(false)).unwrap();
    let ce = result.keys[0].counterexample.as_ref().unwrap();
    assert_eq!(ce.operation.output, Some(int(5)));
    // Every write, read and crashed write but the last read.
    assert_eq!(ce.prefix.len(), 90 + 4);
}
