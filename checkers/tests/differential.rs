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
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => RefState::Register(Value::Nil),
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
        let Process::Client(p) = e.process else { continue };
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
        let blocked = (0..ops.len()).any(|j| !placed[j] && j != i && ops[j].ret.is_some_and(|r| r < ops[i].call));
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
    assert!(optional.len() < 16, "too many indeterminate ops for the oracle");
    (0u32..1 << optional.len()).any(|subset| {
        let mut chosen = required.clone();
        chosen.extend(optional.iter().enumerate().filter(|(i, _)| subset & (1 << i) != 0).map(|(_, o)| *o));
        some_order_is_legal(&chosen, &mut vec![false; chosen.len()], &initial_state(kind))
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
            if rng.gen_bool(0.5) { ("read", Value::Nil) } else { ("write", small(rng)) }
        }
        ModelKind::CasRegister | ModelKind::Kv => match rng.gen_range(0..3) {
            0 => ("read", Value::Nil),
            1 => ("write", small(rng)),
            _ => {
                let expected = if rng.gen_bool(0.2) { Value::Nil } else { small(rng) };
                ("cas", Value::List(vec![expected, small(rng)]))
            }
        },
        ModelKind::KvAppend => match rng.gen_range(0..3) {
            0 => ("get", Value::Nil),
            1 => ("put", Value::Str(["x", "y"][rng.gen_range(0..2)].to_owned())),
            _ => ("append", Value::Str(["a", "b", "c"][rng.gen_range(0..3)].to_owned())),
        },
        ModelKind::Set => {
            if rng.gen_bool(0.4) { ("read", Value::Nil) } else { ("add", Value::Int(rng.gen_range(0..5))) }
        }
        ModelKind::FifoQueue => {
            if rng.gen_bool(0.5) { ("dequeue", Value::Nil) } else { ("enqueue", Value::Int(rng.gen_range(0..4))) }
        }
        ModelKind::Mutex => {
            if rng.gen_bool(0.5) { ("acquire", Value::Nil) } else { ("release", Value::Nil) }
        }
    }
}

/// What a correct system would answer: (took effect, output). `None` output = op fails.
fn execute(state: &mut RefState, f: &str, input: &Value) -> Option<Value> {
    let probe = RefOp { f: f.to_owned(), input: input.clone(), output: None, cas_mismatch: false, call: 0, ret: None, index: 0 };
    let output = match (&*state, f) {
        (RefState::Register(v), "read") => v.clone(),
        (RefState::Str(s), "get") => Value::Str(s.clone()),
        (RefState::Set(s), "read") => Value::List(s.iter().cloned().collect()),
        (RefState::Queue(q), "dequeue") => q.front().cloned().unwrap_or(Value::Nil),
        _ => input.clone(),
    };
    let next = ref_step(state, &RefOp { output: Some(output.clone()), ..probe })?;
    *state = next;
    Some(output)
}

fn random_output(rng: &mut StdRng, kind: ModelKind) -> Value {
    match kind {
        ModelKind::KvAppend => Value::Str(["", "a", "ab", "x", "xa", "b"][rng.gen_range(0..6)].to_owned()),
        ModelKind::Set => Value::List((0..rng.gen_range(0..3)).map(|_| Value::Int(rng.gen_range(0..5))).collect()),
        _ => {
            if rng.gen_bool(0.2) { Value::Nil } else { Value::Int(rng.gen_range(0..4)) }
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
            events.push(event(process_of_slot[slot], EventType::Invoke, f, value.clone(), None));
            open[slot] = Some((f, value));
            invoked += 1;
            continue;
        }
        let slot = busy[rng.gen_range(0..busy.len())];
        let (f, input) = open[slot].take().unwrap();
        let p = process_of_slot[slot];
        let roll = rng.gen_range(0..100);
        if roll < 68 {
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
                    let error = (f == "cas" && rng.gen_bool(0.5)).then(|| Value::Keyword("compare-failed".into()));
                    events.push(event(p, EventType::Fail, f, input, error));
                }
            }
        } else if roll < 80 {
            events.push(event(p, EventType::Fail, f, input, None));
        } else {
            if rng.gen_bool(0.5) {
                execute(&mut state, f, &input);
            }
            if roll < 92 {
                events.push(event(p, EventType::Info, f, Value::Keyword("timed-out".into()), None));
            }
            // The slot continues under a fresh process; a pending op never completes.
            process_of_slot[slot] = next_process;
            next_process += 1;
        }
    }
    finish(events)
}

fn opts(failed_cas_observes: bool) -> CheckOptions {
    CheckOptions { time_limit: None, memory_budget: None, jobs: 1, failed_cas_observes }
}

fn differential(kind: ModelKind, seed: u64, histories: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = [0usize; 2];
    for n in 0..histories {
        let max_ops = rng.gen_range(1..=7);
        let history = random_history(&mut rng, kind, max_ops);
        for observes in [false, true] {
            let expected = oracle(kind, &history, observes);
            let result = check(&history, &ModelSpec::new(kind), &opts(observes)).unwrap();
            let got = match result.verdict {
                Verdict::Valid => true,
                Verdict::Invalid => false,
                Verdict::Unknown => panic!("unknown without limits"),
            };
            assert_eq!(
                got, expected,
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
    assert!(counts[0] >= histories / 10 && counts[1] >= histories / 10, "{} verdicts (invalid, valid) = {counts:?}", kind.name());
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
    assert!(blocked.ret.is_some(), "the blocking op must be one that completed");
    assert!(ce.prefix.iter().all(|p| p.index != ce.operation.index));
    let mut state = initial_state(kind);
    for (i, summary) in ce.prefix.iter().enumerate() {
        let op = by_index[&summary.index];
        state = ref_step(&state, op).unwrap_or_else(|| panic!("prefix step {i} illegal: {}", render(history)));
        for later in &ce.prefix[i + 1..] {
            assert!(by_index[&later.index].ret.is_none_or(|r| r > op.call) , "prefix breaks real time");
        }
    }
    assert!(!ce.states.is_empty());
}

fn render(history: &History) -> String {
    history
        .events
        .iter()
        .map(|e| format!("{} {} {} {} {}{}", e.index, e.process, e.kind.as_str(), e.f, e.value, e.error.as_ref().map(|x| format!(" error {x}")).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn register_agrees_with_the_oracle() {
    differential(ModelKind::Register, 1, 400);
}

#[test]
fn cas_register_agrees_with_the_oracle() {
    differential(ModelKind::CasRegister, 2, 400);
}

#[test]
fn kv_append_agrees_with_the_oracle() {
    differential(ModelKind::KvAppend, 3, 400);
}

#[test]
fn set_agrees_with_the_oracle() {
    differential(ModelKind::Set, 4, 400);
}

#[test]
fn fifo_queue_agrees_with_the_oracle() {
    differential(ModelKind::FifoQueue, 5, 400);
}

#[test]
fn mutex_agrees_with_the_oracle() {
    differential(ModelKind::Mutex, 6, 400);
}
