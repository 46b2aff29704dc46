//! Synthetic register histories for tests and benchmarks.
//!
//! The generator simulates real clients against a real, correct register per key: every
//! operation is invoked, takes effect at one instant between its invocation and its
//! completion, and completes with what the register really did. The resulting history is
//! therefore linearizable by construction, with genuine concurrency between the processes
//! that share a key. Crashed operations behave like real timeouts: the client gives up
//! (an `info` completion, or no completion at all), the operation may still take effect
//! later or never, and the slot continues under a fresh process id.
//!
//! [`inject_stale_read`] then turns such a history into one that is certainly not
//! linearizable, by making one late read return a value that had already been overwritten
//! before the read began.
//!
//! Everything is deterministic in the seed (ChaCha8, portable across platforms).

use crate::history::{Event, EventType, History, Process, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Nanoseconds between two consecutive simulation steps (the `time` of each event).
const STEP_NANOS: u64 = 1_000;

/// How operations choose their key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAssignment {
    /// Jepsen's independent-keys shape: process slots work in groups of `group_size`; a
    /// group works on one key until `ops_per_key` operations were invoked on it, then
    /// takes a fresh key. The number of keys is `operations / ops_per_key` (rounded up).
    Groups {
        group_size: usize,
        ops_per_key: usize,
    },
    /// Every operation picks one of `keys` keys uniformly at random.
    Random { keys: usize },
}

/// Relative weights of the three register functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpMix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
}

impl Default for OpMix {
    /// Jepsen's cas-register workload: reads, writes and cas in equal parts.
    fn default() -> Self {
        OpMix {
            read: 1,
            write: 1,
            cas: 1,
        }
    }
}

/// What to generate: a cas-register workload (read / write / cas `[expected new]`) per key.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterWorkload {
    pub seed: u64,
    /// Operations invoked in total (crashed ones included).
    pub operations: usize,
    /// Concurrent client slots. With [`KeyAssignment::Groups`] it must be a multiple of the
    /// group size.
    pub concurrency: usize,
    pub keys: KeyAssignment,
    pub mix: OpMix,
    /// Probability that an operation crashes: its client never learns the outcome.
    pub crash_probability: f64,
}

impl RegisterWorkload {
    /// The 1,000,000-operation benchmark shape: 1,000 keys of 1,000 operations, groups of 5
    /// processes per key (10 groups at a time), 1% of operations crashed.
    pub fn independent_keys_million(seed: u64) -> Self {
        RegisterWorkload {
            seed,
            operations: 1_000_000,
            concurrency: 50,
            keys: KeyAssignment::Groups {
                group_size: 5,
                ops_per_key: 1_000,
            },
            mix: OpMix::default(),
            crash_probability: 0.01,
        }
    }
}

/// Parameters the generator cannot work with, or a history without a place for a stale read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid workload: {0}")]
    InvalidWorkload(String),
    #[error(
        "no read in the history has two completed writes before it on its key to go stale against"
    )]
    NoStaleReadCandidate,
}

/// The function of one generated operation, with its invocation argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegisterOp {
    Read,
    Write(i64),
    Cas { expected: i64, new: i64 },
}

impl RegisterOp {
    fn name(self) -> &'static str {
        match self {
            RegisterOp::Read => "read",
            RegisterOp::Write(_) => "write",
            RegisterOp::Cas { .. } => "cas",
        }
    }
    fn argument(self) -> Value {
        match self {
            RegisterOp::Read => Value::Nil,
            RegisterOp::Write(v) => Value::Int(v),
            RegisterOp::Cas { expected, new } => {
                Value::List(vec![Value::Int(expected), Value::Int(new)])
            }
        }
    }
}

/// What applying an operation to the register did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Read this value (`None` = never written).
    Read(Option<i64>),
    Wrote,
    CasFailed,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    key: i64,
    op: RegisterOp,
    crashes: bool,
    /// Set once the operation took effect on the register.
    effect: Option<Effect>,
}

struct Slot {
    process: u64,
    in_flight: Option<InFlight>,
}

/// A key a group is working on and how many operations it may still invoke there.
struct GroupKey {
    key: i64,
    budget: usize,
}

struct Simulation<'w> {
    workload: &'w RegisterWorkload,
    rng: ChaCha8Rng,
    registers: HashMap<i64, Option<i64>>,
    /// Last value handed out per key; written values are unique per key.
    last_value: HashMap<i64, i64>,
    slots: Vec<Slot>,
    group_keys: Vec<Option<GroupKey>>,
    next_key: i64,
    next_process: u64,
    invoked: usize,
    step: u64,
    /// Crashed operations still able to take effect, by the step at which they will.
    ghosts: BinaryHeap<Reverse<(u64, i64, GhostOp)>>,
    events: Vec<Event>,
}

/// A crashed write or cas that will still reach the register (reads have no effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GhostOp {
    Write(i64),
    Cas { expected: i64, new: i64 },
}

/// Generates a linearizable cas-register history (see the module documentation).
pub fn generate(workload: &RegisterWorkload) -> Result<History, GenerateError> {
    validate(workload)?;
    let mut sim = Simulation::new(workload);
    sim.run();
    Ok(History::new(sim.events))
}

fn validate(w: &RegisterWorkload) -> Result<(), GenerateError> {
    let invalid = |m: &str| Err(GenerateError::InvalidWorkload(m.to_owned()));
    if w.concurrency == 0 {
        return invalid("concurrency must be at least 1");
    }
    if w.mix.read + w.mix.write + w.mix.cas == 0 {
        return invalid("the operation mix has no weight");
    }
    if !(0.0..=1.0).contains(&w.crash_probability) {
        return invalid("crash probability must lie in [0, 1]");
    }
    match w.keys {
        KeyAssignment::Groups {
            group_size,
            ops_per_key,
        } => {
            if group_size == 0 || ops_per_key == 0 {
                return invalid("group size and operations per key must be at least 1");
            }
            if w.concurrency % group_size != 0 {
                return invalid("concurrency must be a multiple of the group size");
            }
        }
        KeyAssignment::Random { keys } => {
            if keys == 0 {
                return invalid("there must be at least one key");
            }
        }
    }
    Ok(())
}

impl<'w> Simulation<'w> {
    fn new(workload: &'w RegisterWorkload) -> Self {
        let slots = (0..workload.concurrency as u64)
            .map(|process| Slot {
                process,
                in_flight: None,
            })
            .collect();
        let groups = match workload.keys {
            KeyAssignment::Groups { group_size, .. } => workload.concurrency / group_size,
            KeyAssignment::Random { .. } => 0,
        };
        Simulation {
            workload,
            rng: ChaCha8Rng::seed_from_u64(workload.seed),
            registers: HashMap::new(),
            last_value: HashMap::new(),
            slots,
            group_keys: (0..groups).map(|_| None).collect(),
            next_key: 0,
            next_process: workload.concurrency as u64,
            invoked: 0,
            step: 0,
            ghosts: BinaryHeap::new(),
            // Two events per operation, fewer for crashed ones left without completion.
            events: Vec::with_capacity(workload.operations * 2),
        }
    }

    fn run(&mut self) {
        // Slots that still have something to do; a slot leaves when it is idle and every
        // operation has been invoked.
        let mut active: Vec<usize> = (0..self.slots.len()).collect();
        while !active.is_empty() {
            self.step += 1;
            self.apply_due_ghosts();
            let pick = self.rng.gen_range(0..active.len());
            let slot = active[pick];
            if !self.advance(slot) {
                active.swap_remove(pick);
            }
        }
    }

    /// Moves one slot one step forward: invoke, take effect, or complete. Returns false when
    /// the slot is idle and has nothing left to invoke.
    fn advance(&mut self, slot: usize) -> bool {
        match self.slots[slot].in_flight {
            None => self.invoke(slot),
            Some(InFlight { effect: None, .. }) => {
                self.take_effect(slot);
                true
            }
            Some(InFlight {
                effect: Some(effect),
                ..
            }) => {
                self.complete(slot, effect);
                true
            }
        }
    }

    fn invoke(&mut self, slot: usize) -> bool {
        if self.invoked >= self.workload.operations {
            return false;
        }
        let Some(key) = self.choose_key(slot) else {
            return false;
        };
        self.invoked += 1;
        let op = self.choose_op(key);
        let crashes = self.rng.gen_bool(self.workload.crash_probability);
        self.slots[slot].in_flight = Some(InFlight {
            key,
            op,
            crashes,
            effect: None,
        });
        let process = self.slots[slot].process;
        self.emit(
            process,
            EventType::Invoke,
            key,
            op.name(),
            op.argument(),
            None,
        );
        true
    }

    fn choose_key(&mut self, slot: usize) -> Option<i64> {
        match self.workload.keys {
            KeyAssignment::Random { keys } => Some(self.rng.gen_range(0..keys as i64)),
            KeyAssignment::Groups {
                group_size,
                ops_per_key,
            } => {
                let group = slot / group_size;
                let exhausted = self.group_keys[group]
                    .as_ref()
                    .is_none_or(|g| g.budget == 0);
                if exhausted {
                    let total_keys = self.workload.operations.div_ceil(ops_per_key) as i64;
                    if self.next_key >= total_keys {
                        return None;
                    }
                    self.group_keys[group] = Some(GroupKey {
                        key: self.next_key,
                        budget: ops_per_key,
                    });
                    self.next_key += 1;
                }
                let current = self.group_keys[group].as_mut()?;
                current.budget -= 1;
                Some(current.key)
            }
        }
    }

    fn fresh_value(&mut self, key: i64) -> i64 {
        let last = self.last_value.entry(key).or_insert(0);
        *last += 1;
        *last
    }

    fn choose_op(&mut self, key: i64) -> RegisterOp {
        let mix = self.workload.mix;
        let roll = self.rng.gen_range(0..mix.read + mix.write + mix.cas);
        if roll < mix.read {
            RegisterOp::Read
        } else if roll < mix.read + mix.write {
            RegisterOp::Write(self.fresh_value(key))
        } else {
            // Like a client that read the register shortly before: usually the value it
            // holds now (a concurrent operation may still change it before this cas takes
            // effect), sometimes an older or never-written value, so that cas both
            // succeeds and fails.
            let current = self.registers.get(&key).copied().flatten();
            let written_so_far = self.last_value.get(&key).copied().unwrap_or(0);
            let expected = match current {
                Some(v) if self.rng.gen_bool(0.7) => v,
                _ => self.rng.gen_range(0..=written_so_far),
            };
            RegisterOp::Cas {
                expected,
                new: self.fresh_value(key),
            }
        }
    }

    fn take_effect(&mut self, slot: usize) {
        let in_flight = self.slots[slot]
            .in_flight
            .expect("an operation is in flight");
        if in_flight.crashes {
            self.crash(slot, in_flight);
            return;
        }
        let effect = self.apply(in_flight.key, in_flight.op);
        if let Some(f) = self.slots[slot].in_flight.as_mut() {
            f.effect = Some(effect);
        }
    }

    fn apply(&mut self, key: i64, op: RegisterOp) -> Effect {
        let register = self.registers.entry(key).or_insert(None);
        match op {
            RegisterOp::Read => Effect::Read(*register),
            RegisterOp::Write(v) => {
                *register = Some(v);
                Effect::Wrote
            }
            RegisterOp::Cas { expected, new } => {
                if *register == Some(expected) {
                    *register = Some(new);
                    Effect::Wrote
                } else {
                    Effect::CasFailed
                }
            }
        }
    }

    /// The client gives up on the operation: half the time it records `info`, otherwise
    /// nothing (as if the controller died). A crashed write or cas takes effect later with
    /// probability one half, and the slot continues under a fresh process id.
    fn crash(&mut self, slot: usize, in_flight: InFlight) {
        let process = self.slots[slot].process;
        if self.rng.gen_bool(0.5) {
            self.emit(
                process,
                EventType::Info,
                in_flight.key,
                in_flight.op.name(),
                in_flight.op.argument(),
                Some(Value::Keyword("timed-out".to_owned())),
            );
        }
        let ghost = match in_flight.op {
            RegisterOp::Read => None,
            RegisterOp::Write(v) => Some(GhostOp::Write(v)),
            RegisterOp::Cas { expected, new } => Some(GhostOp::Cas { expected, new }),
        };
        if let Some(ghost) = ghost {
            if self.rng.gen_bool(0.5) {
                // Late delivery, e.g. packets that arrive after a partition heals.
                let delay = self
                    .rng
                    .gen_range(1..=(20 * self.workload.concurrency as u64));
                self.ghosts
                    .push(Reverse((self.step + delay, in_flight.key, ghost)));
            }
        }
        self.slots[slot] = Slot {
            process: self.next_process,
            in_flight: None,
        };
        self.next_process += 1;
    }

    fn apply_due_ghosts(&mut self) {
        while let Some(Reverse((due, key, ghost))) = self.ghosts.peek().copied() {
            if due > self.step {
                break;
            }
            self.ghosts.pop();
            let op = match ghost {
                GhostOp::Write(v) => RegisterOp::Write(v),
                GhostOp::Cas { expected, new } => RegisterOp::Cas { expected, new },
            };
            self.apply(key, op);
        }
    }

    fn complete(&mut self, slot: usize, effect: Effect) {
        let in_flight = self.slots[slot]
            .in_flight
            .take()
            .expect("an operation is in flight");
        let process = self.slots[slot].process;
        let (kind, value) = match effect {
            Effect::Read(v) => (EventType::Ok, v.map_or(Value::Nil, Value::Int)),
            Effect::Wrote => (EventType::Ok, in_flight.op.argument()),
            Effect::CasFailed => (EventType::Fail, in_flight.op.argument()),
        };
        self.emit(
            process,
            kind,
            in_flight.key,
            in_flight.op.name(),
            value,
            None,
        );
    }

    fn emit(
        &mut self,
        process: u64,
        kind: EventType,
        key: i64,
        f: &str,
        value: Value,
        error: Option<Value>,
    ) {
        self.events.push(Event {
            index: self.events.len() as u64,
            time: Some(self.step * STEP_NANOS),
            process: Process::Client(process),
            kind,
            f: f.to_owned(),
            key: Some(Value::Int(key)),
            value,
            node: None,
            error,
        });
    }
}

/// Where [`inject_stale_read`] planted its violation.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleRead {
    pub key: Option<Value>,
    /// Index of the read's completion event, whose value was replaced.
    pub completion_index: u64,
    /// What the read really returned.
    pub original: Value,
    /// The overwritten value it now returns.
    pub stale: Value,
}

/// One completed operation as seen by the stale-read search.
struct CompletedWrite {
    invoked_at: usize,
    completed_at: usize,
    written: Value,
}

/// Makes one late `ok` read return a stale value, which makes the history certainly not
/// linearizable: the read now returns the value of a write A although another write B
/// began after A had completed and completed itself before the read began. Values are
/// unique per key, so nothing else could have written A's value again.
///
/// The read is the hardest such read in the last quarter of the history for a search that
/// must rule out every order: the one with the most crashed operations of its key invoked
/// before it (each may or may not have taken effect), the latest one among equals.
pub fn inject_stale_read(history: &mut History) -> Result<StaleRead, GenerateError> {
    let events = &history.events;
    let crashed = crashed_invocations(events);
    let mut open: HashMap<Process, usize> = HashMap::new();
    // Per key: completed ok writes and successful cas, in completion order.
    let mut writes: HashMap<Option<Value>, Vec<CompletedWrite>> = HashMap::new();
    // Per key: crashed operations invoked so far.
    let mut crashed_so_far: HashMap<Option<Value>, usize> = HashMap::new();
    // (crashed operations before it, completion position, stale value) of the best read.
    let mut best: Option<(usize, usize, Value)> = None;
    let late = events.len() - events.len() / 4;

    for (position, event) in events.iter().enumerate() {
        match event.kind {
            EventType::Invoke => {
                open.insert(event.process, position);
                if crashed[position] {
                    *crashed_so_far.entry(event.key.clone()).or_default() += 1;
                }
            }
            EventType::Ok => {
                let Some(invoked_at) = open.remove(&event.process) else {
                    continue;
                };
                let written = match event.f.as_str() {
                    "write" => Some(event.value.clone()),
                    "cas" => event.value.as_list().and_then(|l| l.get(1)).cloned(),
                    _ => None,
                };
                if let Some(written) = written {
                    writes
                        .entry(event.key.clone())
                        .or_default()
                        .push(CompletedWrite {
                            invoked_at,
                            completed_at: position,
                            written,
                        });
                } else if event.f == "read" && position >= late {
                    let pending = crashed_so_far.get(&event.key).copied().unwrap_or(0);
                    if best.as_ref().is_some_and(|(p, _, _)| *p > pending) {
                        continue;
                    }
                    if let Some(stale) = stale_value_before(
                        writes.get(&event.key).map_or(&[][..], Vec::as_slice),
                        invoked_at,
                        &event.value,
                    ) {
                        best = Some((pending, position, stale));
                    }
                }
            }
            EventType::Fail | EventType::Info => {
                open.remove(&event.process);
            }
        }
    }

    let (_, position, stale) = best.ok_or(GenerateError::NoStaleReadCandidate)?;
    let event = &mut history.events[position];
    let original = std::mem::replace(&mut event.value, stale.clone());
    Ok(StaleRead {
        key: event.key.clone(),
        completion_index: event.index,
        original,
        stale,
    })
}

/// Per event position: whether it is the invocation of an operation that crashed (completed
/// with `info`, or never).
fn crashed_invocations(events: &[Event]) -> Vec<bool> {
    let mut crashed = vec![false; events.len()];
    let mut open: HashMap<Process, usize> = HashMap::new();
    for (position, event) in events.iter().enumerate() {
        match event.kind {
            EventType::Invoke => {
                open.insert(event.process, position);
            }
            EventType::Info => {
                if let Some(invoked_at) = open.remove(&event.process) {
                    crashed[invoked_at] = true;
                }
            }
            EventType::Ok | EventType::Fail => {
                open.remove(&event.process);
            }
        }
    }
    for invoked_at in open.into_values() {
        crashed[invoked_at] = true;
    }
    crashed
}

/// The value of write A, where B is the last write completed before the read was invoked
/// and A the last write completed before B was invoked; `None` when there is no such pair
/// or A's value is what the read returned anyway.
fn stale_value_before(
    writes: &[CompletedWrite],
    read_invoked_at: usize,
    observed: &Value,
) -> Option<Value> {
    let b = writes
        .iter()
        .rev()
        .find(|w| w.completed_at < read_invoked_at)?;
    let a = writes
        .iter()
        .rev()
        .find(|w| w.completed_at < b.invoked_at)?;
    (a.written != *observed).then(|| a.written.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn small(seed: u64, keys: KeyAssignment) -> RegisterWorkload {
        RegisterWorkload {
            seed,
            operations: 5_000,
            concurrency: 10,
            keys,
            mix: OpMix::default(),
            crash_probability: 0.02,
        }
    }

    fn groups() -> KeyAssignment {
        KeyAssignment::Groups {
            group_size: 5,
            ops_per_key: 500,
        }
    }

    #[test]
    fn same_seed_same_history_other_seed_other_history() {
        let a = generate(&small(7, groups())).unwrap();
        let b = generate(&small(7, groups())).unwrap();
        let c = generate(&small(8, groups())).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn invokes_the_requested_number_of_operations_per_key() {
        let history = generate(&small(1, groups())).unwrap();
        let mut per_key: HashMap<Value, usize> = HashMap::new();
        for e in history
            .events
            .iter()
            .filter(|e| e.kind == EventType::Invoke)
        {
            *per_key.entry(e.key.clone().unwrap()).or_default() += 1;
        }
        assert_eq!(per_key.len(), 10);
        assert!(per_key.values().all(|&n| n == 500), "{per_key:?}");
    }

    #[test]
    fn processes_are_sequential_and_crashed_processes_never_return() {
        let history = generate(&small(2, KeyAssignment::Random { keys: 3 })).unwrap();
        let mut open: HashSet<Process> = HashSet::new();
        let mut crashed: HashSet<Process> = HashSet::new();
        let mut seen: HashSet<Process> = HashSet::new();
        for e in &history.events {
            assert!(
                !crashed.contains(&e.process),
                "crashed {:?} acts again",
                e.process
            );
            match e.kind {
                EventType::Invoke => {
                    assert!(open.insert(e.process), "{:?} invoked twice", e.process);
                    seen.insert(e.process);
                }
                EventType::Ok | EventType::Fail => assert!(open.remove(&e.process)),
                EventType::Info => {
                    assert!(open.remove(&e.process));
                    crashed.insert(e.process);
                }
            }
        }
        // Processes left open at the end crashed without completion; every crash (with or
        // without an info line) moved its slot to a fresh process id, which invokes unless
        // its slot had nothing left to do.
        let crashes = crashed.len() + open.len();
        assert!(seen.len() <= 10 + crashes && seen.len() + 10 >= 10 + crashes);
        // 2% of 5,000 operations: about 100 crashes.
        assert!((50..=150).contains(&crashes), "{crashes} crashes");
        assert!(!crashed.is_empty() && !open.is_empty());
    }

    #[test]
    fn written_values_are_unique_per_key_and_time_is_monotonic() {
        let history = generate(&small(3, KeyAssignment::Random { keys: 4 })).unwrap();
        let mut written: HashSet<(Value, Value)> = HashSet::new();
        for e in history
            .events
            .iter()
            .filter(|e| e.kind == EventType::Invoke)
        {
            let value = match e.f.as_str() {
                "write" => e.value.clone(),
                "cas" => e.value.as_list().unwrap()[1].clone(),
                _ => continue,
            };
            assert!(written.insert((e.key.clone().unwrap(), value)));
        }
        assert!(history.events.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(history
            .events
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == i as u64));
    }

    #[test]
    fn reads_and_cas_both_succeed_and_fail_with_real_concurrency() {
        let history = generate(&small(4, groups())).unwrap();
        let count = |f: &str, kind: EventType| {
            history
                .events
                .iter()
                .filter(|e| e.f == f && e.kind == kind)
                .count()
        };
        assert!(count("cas", EventType::Ok) > 100);
        assert!(count("cas", EventType::Fail) > 100);
        assert!(history
            .events
            .iter()
            .any(|e| e.f == "read" && e.kind == EventType::Ok && e.value.as_int().is_some()));
        // Some operation is invoked while another of the same key is open.
        let mut open_per_key: HashMap<Value, usize> = HashMap::new();
        let mut max_overlap = 0;
        let mut open: HashMap<Process, Value> = HashMap::new();
        for e in &history.events {
            let key = e.key.clone().unwrap();
            if e.kind == EventType::Invoke {
                let n = open_per_key.entry(key.clone()).or_default();
                *n += 1;
                max_overlap = max_overlap.max(*n);
                open.insert(e.process, key);
            } else if let Some(k) = open.remove(&e.process) {
                *open_per_key.get_mut(&k).unwrap() -= 1;
            }
        }
        assert!(max_overlap >= 3, "max overlap {max_overlap}");
    }

    #[test]
    fn stale_read_replaces_a_late_read_with_an_overwritten_value() {
        let mut history = generate(&small(5, KeyAssignment::Random { keys: 2 })).unwrap();
        let before = history.clone();
        let stale = inject_stale_read(&mut history).unwrap();
        let position = stale.completion_index as usize;
        assert!(position >= history.events.len() * 3 / 4);
        assert_eq!(before.events[position].value, stale.original);
        assert_eq!(history.events[position].value, stale.stale);
        assert_ne!(stale.original, stale.stale);
        let changed = before
            .events
            .iter()
            .zip(&history.events)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 1);
    }

    #[test]
    fn stale_read_needs_two_writes() {
        let mut history = generate(&RegisterWorkload {
            mix: OpMix {
                read: 1,
                write: 0,
                cas: 0,
            },
            ..small(6, KeyAssignment::Random { keys: 2 })
        })
        .unwrap();
        assert_eq!(
            inject_stale_read(&mut history),
            Err(GenerateError::NoStaleReadCandidate)
        );
    }

    fn verdict_of(history: &History) -> crate::Verdict {
        use crate::linearizability::{check, CheckOptions};
        use crate::models::{ModelKind, ModelSpec};
        check(
            history,
            &ModelSpec::new(ModelKind::Kv),
            &CheckOptions::default(),
        )
        .expect("a generated history fits the kv model")
        .verdict
    }

    #[test]
    fn generated_histories_are_linearizable_and_a_stale_read_makes_them_not() {
        // About ten crashed operations per key, pending to the end: enough to exercise
        // indeterminate operations, few enough for a quick search in a debug build.
        for (seed, keys) in [
            (
                11,
                KeyAssignment::Groups {
                    group_size: 5,
                    ops_per_key: 500,
                },
            ),
            (12, KeyAssignment::Random { keys: 4 }),
        ] {
            let workload = RegisterWorkload {
                operations: 2_000,
                crash_probability: 0.01,
                ..small(seed, keys)
            };
            let mut history = generate(&workload).unwrap();
            assert_eq!(verdict_of(&history), crate::Verdict::Valid, "seed {seed}");
            inject_stale_read(&mut history).unwrap();
            assert_eq!(verdict_of(&history), crate::Verdict::Invalid, "seed {seed}");
        }
    }

    #[test]
    fn rejects_impossible_workloads() {
        let w = RegisterWorkload {
            concurrency: 7,
            ..small(1, groups())
        };
        assert!(matches!(
            generate(&w),
            Err(GenerateError::InvalidWorkload(_))
        ));
    }
}
