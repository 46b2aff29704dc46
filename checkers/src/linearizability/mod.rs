//! The linearizability search.
//!
//! # Semantics (Jepsen's)
//!
//! Client events are paired per process, invocation with the next completion, in history
//! order, which is real-time order; nemesis events are ignored. An operation spans from its
//! invocation to its completion, and operation A precedes B when A completes before B is
//! invoked.
//!
//! * `ok` — took effect within its span; its completion's value is what it observed (for a
//!   read) or did.
//! * `info`, or no completion at all — indeterminate: it may take effect once, at any point
//!   after its invocation, or never. A process that invokes again while its previous
//!   operation is open leaves that operation indeterminate. Indeterminate operations that
//!   cannot change the state (crashed reads) constrain nothing and are dropped.
//! * `fail` — did not take effect, and by default is dropped, as Jepsen and Knossos do.
//!
//! A completion with no open invocation of its process is a [`PrepareError`].
//!
//! ## Two readings of a failed cas
//!
//! By default a failed cas is dropped. With [`CheckOptions::failed_cas_observes`] it is also
//! read as an observation: at some point within its span the register did *not* hold the
//! expected value (Porcupine's reading). That is only sound when the client knows the
//! compare failed; so regardless of the option, a failed cas whose `error` is the keyword or
//! string `compare-failed` or `mismatch` is always read as that observation — the history
//! itself says the compare failed.
//!
//! # Keys and parallelism
//!
//! Operations are partitioned by key (P-compositionality: a history is linearizable if and
//! only if each key's sub-history is) and keys are checked in parallel on
//! [`CheckOptions::jobs`] threads, largest first (the calling thread alone while the check
//! is young, so that small histories pay for no thread). Keys take turns in slices of search steps
//! that double on each turn, so one hard key cannot delay the verdict of a key that is
//! quickly found invalid, even on one thread. Verdicts combine as invalid beats unknown
//! beats valid. By default every key is checked (within the limits), so that every anomaly
//! of a history is reported; with [`CheckOptions::first_failure`] the first invalid key
//! decides the verdict, keys still running stop and keys not yet started are skipped, each
//! reported as `unknown` with that cause.
//!
//! # Nothing checked is not valid
//!
//! A history without client operations is `unknown` with the cause "no operations" (in a
//! test, an empty history means a broken test, not a correct system); so is a history that
//! would be valid but in which no client operation completed `ok` (nothing was observed).
//! [`CheckResult::cause`] says so.
//!
//! # Nil reads
//!
//! [`CheckOptions::nil_reads`] chooses how registers (register, cas-register, kv) read an
//! `ok` read that returned nil: by default as the value nil (the register was never
//! written), or, with [`NilReads::Unknown`], as Knossos does: a read of nil matches any
//! state (it observed nothing).
//!
//! # Progress
//!
//! [`CheckOptions::progress`], when set, is updated as the check goes (keys done of total,
//! configurations explored, memo bytes held), for a caller that reports progress while a
//! long check runs.
//!
//! The search itself, its memo and its pruning rules are described in `search.rs`.
//!
//! # Limits
//!
//! [`CheckOptions::time_limit`] (for the whole check) and [`CheckOptions::memory_budget`]
//! (estimated bytes of memo held by all running searches) end a key's search with
//! `unknown` and a cause. `None` means unlimited.

mod prepare;
mod search;

use crate::history::{EventType, History};
use crate::models::{
    FifoQueueModel, KvAppendModel, Model, ModelKind, ModelSpec, MutexModel, RegisterModel, SetModel,
};
use crate::verdict::{
    CheckResult, Counterexample, KeyResult, Linearization, LinearizedOp, OpSummary, Verdict,
};
use prepare::PairedOp;
use search::{HashMode, Limits, Search, SearchOutcome, StopCause};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a check runs.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Give up with `unknown` after this long (per whole check).
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` when the search's memo tables exceed this many bytes.
    pub memory_budget: Option<u64>,
    /// Keys checked in parallel.
    pub jobs: usize,
    /// Also read every failed cas as an observation that the register did not hold the
    /// expected value (opt-in; Jepsen and Knossos drop failed operations).
    pub failed_cas_observes: bool,
    /// Stop at the first invalid key (the verdict is then decided) instead of checking
    /// every key; the keys not finished are `unknown`. Default: check every key.
    pub first_failure: bool,
    /// How registers read an `ok` read that returned nil.
    pub nil_reads: NilReads,
    /// Updated as the check goes, when set.
    pub progress: Option<Arc<CheckProgress>>,
    /// Give every `valid` key its linearization ([`KeyResult::linearization`]): the order
    /// in which the search placed the operations, each with the model state after it, and
    /// the indeterminate operations left out. Off by default: it holds a summary of every
    /// operation of the key, which large histories need not pay for. The search itself is
    /// the same either way (the order is read off its stack once, when it succeeds).
    pub witness: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_limit: None,
            memory_budget: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            failed_cas_observes: false,
            first_failure: false,
            nil_reads: NilReads::default(),
            progress: None,
            witness: false,
        }
    }
}

/// How registers read an `ok` read that returned nil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NilReads {
    /// As the value nil: the register was never written (or holds nil). A nil read after a
    /// completed write is lost data.
    #[default]
    Value,
    /// As Knossos does: a nil read observed nothing and matches any state.
    Unknown,
}

impl NilReads {
    pub const ALL: [NilReads; 2] = [NilReads::Value, NilReads::Unknown];

    pub fn name(self) -> &'static str {
        match self {
            NilReads::Value => "value",
            NilReads::Unknown => "unknown",
        }
    }
}

impl std::str::FromStr for NilReads {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NilReads::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| format!("unknown nil-read reading `{s}`; expected value or unknown"))
    }
}

/// How far a running check is; every figure only grows.
#[derive(Debug, Default)]
pub struct CheckProgress {
    keys_total: AtomicUsize,
    keys_done: AtomicUsize,
    configurations: AtomicU64,
    memo_bytes: AtomicU64,
}

/// A reading of [`CheckProgress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Keys of the history (0 until the history is prepared).
    pub keys_total: usize,
    /// Keys with a verdict.
    pub keys_done: usize,
    /// Configurations explored so far, all keys together.
    pub configurations: u64,
    /// Estimated bytes of memo held by the running searches.
    pub memo_bytes: u64,
}

impl CheckProgress {
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            keys_total: self.keys_total.load(Ordering::Relaxed),
            keys_done: self.keys_done.load(Ordering::Relaxed),
            configurations: self.configurations.load(Ordering::Relaxed),
            memo_bytes: self.memo_bytes.load(Ordering::Relaxed),
        }
    }
}

/// A history that does not fit the model (wrong functions or value shapes).
#[derive(Debug, thiserror::Error)]
#[error("event {index}: {message}")]
pub struct PrepareError {
    pub index: u64,
    pub message: String,
}

/// Checks `history` for linearizability against `model`, independent keys separately.
pub fn check(
    history: &History,
    model: &ModelSpec,
    opts: &CheckOptions,
) -> Result<CheckResult, PrepareError> {
    check_with(history, model, opts, HashMode::Zobrist)
}

fn check_with(
    history: &History,
    spec: &ModelSpec,
    opts: &CheckOptions,
    hash_mode: HashMode,
) -> Result<CheckResult, PrepareError> {
    let start = Instant::now();
    let name = spec.kind.name();
    let run = Run {
        history,
        spec,
        opts,
        start,
        hash_mode,
    };
    let nil_reads = opts.nil_reads;
    let (keys, operations) = match spec.kind {
        ModelKind::Register => {
            run.keys(|| RegisterModel::new(name, false).with_nil_reads(nil_reads))?
        }
        ModelKind::CasRegister | ModelKind::Kv => {
            run.keys(|| RegisterModel::new(name, true).with_nil_reads(nil_reads))?
        }
        ModelKind::KvAppend => run.keys(KvAppendModel::new)?,
        ModelKind::Mutex => run.keys(|| MutexModel)?,
        ModelKind::Set => run.keys(SetModel::new)?,
        ModelKind::FifoQueue => run.keys(FifoQueueModel::new)?,
    };
    let mut verdict = keys
        .iter()
        .fold(Verdict::Valid, |v, k| v.combine(k.verdict));
    let cause = nothing_checked(history, verdict);
    if cause.is_some() {
        verdict = Verdict::Unknown;
    }
    Ok(CheckResult {
        verdict,
        cause,
        model: name.to_owned(),
        operations,
        configurations: keys.iter().map(|k| k.configurations).sum(),
        keys,
        elapsed: start.elapsed(),
    })
}

/// Why a check that found no violation checked nothing: no client operation at all, or
/// none that completed `ok`. `None` when the verdict stands.
fn nothing_checked(history: &History, verdict: Verdict) -> Option<String> {
    let client = || {
        history
            .events
            .iter()
            .filter(|e| e.process != crate::history::Process::Nemesis)
    };
    if !client().any(|e| e.kind == EventType::Invoke) {
        return Some(
            "no operations: the history has no client operations (an empty history means a broken test, not a correct system)"
                .to_owned(),
        );
    }
    if verdict == Verdict::Valid && !client().any(|e| e.kind == EventType::Ok) {
        return Some(
            "no operation completed ok: nothing was observed, so there was nothing to check"
                .to_owned(),
        );
    }
    None
}

/// Steps of a key's first turn; each further turn doubles it. Small, so that the calling
/// thread soon gets to decide whether to start helpers (see [`HELPERS_AFTER`]).
const FIRST_SLICE: u64 = 1 << 12;
/// How long the calling thread checks alone before it starts helper threads.
const HELPERS_AFTER: Duration = Duration::from_micros(500);

/// When the calling thread starts its helper threads: once, after it has checked alone for
/// [`HELPERS_AFTER`], and only if work is still queued (never with one thread).
///
/// Timing only: every key gets the same result whether the calling thread checks it or a
/// helper does, so mutation testing leaves this out (`.cargo/mutants.toml`).
struct HelperStart {
    at: Instant,
    started: bool,
}

impl HelperStart {
    fn new(threads: usize) -> Self {
        HelperStart {
            at: Instant::now() + HELPERS_AFTER,
            started: threads <= 1,
        }
    }

    /// True once: the first time it is asked after [`HELPERS_AFTER`] while work is queued.
    fn due(&mut self, work_queued: impl FnOnce() -> bool) -> bool {
        if self.started || Instant::now() < self.at || !work_queued() {
            return false;
        }
        self.started = true;
        true
    }
}

/// One key waiting for (more) search.
struct Task<'h, M: Model<'h>> {
    /// Position of the key in key order.
    index: usize,
    key: Option<&'h crate::history::Value>,
    operations: usize,
    /// The key until its first turn builds its search from it, so that building searches
    /// (linear in each key's operations) is shared among the threads too.
    prepared: Option<prepare::PreparedKey<'h, M>>,
    search: Option<Search<'h, M>>,
    slice: u64,
    elapsed: Duration,
    /// Configurations of this key already counted in the progress.
    reported_configurations: u64,
}

struct Run<'a, 'h> {
    history: &'h History,
    spec: &'h ModelSpec,
    opts: &'a CheckOptions,
    start: Instant,
    hash_mode: HashMode,
}

impl<'h> Run<'_, 'h> {
    /// Prepares every key (all errors are found before any search starts), then searches
    /// them. Returns the key results sorted by key, and the number of client operations.
    fn keys<M: Model<'h>>(
        &self,
        make: impl Fn() -> M,
    ) -> Result<(Vec<KeyResult>, usize), PrepareError> {
        let prepared = prepare::prepare(
            self.history,
            &self.spec.initial,
            self.opts.failed_cas_observes,
            self.opts.jobs,
            make,
        )?;
        let ops = &prepared.ops;
        let cancel = AtomicBool::new(false);
        let memory_in_use = AtomicU64::new(0);
        let limits = Limits {
            deadline: self.opts.time_limit.map(|d| self.start + d),
            memory_budget: self.opts.memory_budget,
            memory_in_use: &memory_in_use,
            cancel: &cancel,
        };
        let mut tasks: Vec<Task<'h, M>> = prepared
            .keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| Task {
                index,
                key: key.key,
                operations: key.ops.required.len() + key.ops.optional.len(),
                prepared: Some(key),
                search: None,
                slice: FIRST_SLICE,
                elapsed: Duration::ZERO,
                reported_configurations: 0,
            })
            .collect();
        let count = tasks.len();
        let progress = self.opts.progress.as_deref();
        if let Some(p) = progress {
            p.keys_total.store(count, Ordering::Relaxed);
        }
        // Largest keys first, so that one big key does not start last.
        tasks.sort_by_key(|t| std::cmp::Reverse(t.operations));
        let queue = Mutex::new(VecDeque::from(tasks));
        let results: Vec<Mutex<Option<KeyResult>>> = (0..count).map(|_| Mutex::new(None)).collect();
        // A turn takes the next key, searches it for one slice and, when the key is not
        // decided, puts it back at the end of the queue with a doubled slice. Keys thus take
        // turns: a hard key cannot delay the verdict of one that is quickly invalid, and the
        // total work is at most about twice that of running each key to the end.
        let take_turn = || {
            let Some(mut task) = queue.lock().expect("no panic holds the queue").pop_front() else {
                return false;
            };
            let outcome = if limits.cancel.load(Ordering::Relaxed) {
                Some(SearchOutcome::Stopped(StopCause::Cancelled))
            } else {
                let slice_start = Instant::now();
                let search = task.search.get_or_insert_with(|| {
                    let key = task
                        .prepared
                        .take()
                        .expect("a key is prepared until searched");
                    let mut search = Search::new(
                        key.model,
                        key.initial,
                        key.ops,
                        self.hash_mode,
                        self.opts.memory_budget,
                    );
                    if self.opts.witness {
                        search.keep_witness();
                    }
                    search
                });
                let outcome = search.run(&limits, task.slice);
                task.elapsed += slice_start.elapsed();
                if let Some(p) = progress {
                    let now = search.configurations();
                    p.configurations.fetch_add(
                        now.saturating_sub(task.reported_configurations),
                        Ordering::Relaxed,
                    );
                    task.reported_configurations = now;
                    p.memo_bytes
                        .store(memory_in_use.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                outcome
            };
            match outcome {
                None => {
                    task.slice = task.slice.saturating_mul(2);
                    queue
                        .lock()
                        .expect("no panic holds the queue")
                        .push_back(task);
                }
                Some(outcome) => {
                    let index = task.index;
                    let result = self.key_result(ops, task, outcome, &limits);
                    *results[index].lock().expect("no panic holds a result") = Some(result);
                    if let Some(p) = progress {
                        p.keys_done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            true
        };
        let threads = self.opts.jobs.max(1).min(count);
        // Most histories are decided in well under a millisecond, where starting threads
        // would cost more than it saves. So the calling thread works alone at first and
        // starts helpers only once the check has lasted a while and work is still queued.
        let mut helpers = HelperStart::new(threads);
        std::thread::scope(|scope| loop {
            if helpers.due(|| !queue.lock().expect("no panic holds the queue").is_empty()) {
                for _ in 1..threads {
                    scope.spawn(|| while take_turn() {});
                }
            }
            if !take_turn() {
                break;
            }
        });
        let results = results
            .into_iter()
            .map(|r| {
                r.into_inner()
                    .expect("no panic holds a result")
                    .expect("every key gets a result")
            })
            .collect();
        Ok((results, ops.len()))
    }

    fn key_result<M: Model<'h>>(
        &self,
        ops: &[PairedOp],
        task: Task<'h, M>,
        outcome: SearchOutcome,
        limits: &Limits<'_>,
    ) -> KeyResult {
        let search = task.search.as_ref();
        let configurations = search.map_or(0, Search::configurations);
        let mut result = KeyResult {
            key: task.key.cloned(),
            verdict: Verdict::Unknown,
            operations: task.operations,
            configurations,
            elapsed: task.elapsed,
            counterexample: None,
            cause: None,
            linearization: None,
        };
        let never_started = configurations <= 1 && task.elapsed.is_zero();
        match outcome {
            SearchOutcome::Valid => {
                result.verdict = Verdict::Valid;
                if let Some((search, witness)) = search.and_then(|s| Some((s, s.witness()?))) {
                    let model = search.model();
                    result.linearization = Some(Linearization {
                        ops: witness
                            .placed
                            .iter()
                            .map(|&(id, state)| LinearizedOp {
                                op: self.summary(ops, id),
                                state: model.render(state),
                            })
                            .collect(),
                        left_out: witness
                            .left_out
                            .iter()
                            .map(|&id| self.summary(ops, id))
                            .collect(),
                    });
                }
            }
            SearchOutcome::Invalid(blocked) => {
                if self.opts.first_failure {
                    limits.cancel.store(true, Ordering::Relaxed);
                }
                result.verdict = Verdict::Invalid;
                let model = search.expect("an invalid key was searched").model();
                result.counterexample = Some(Counterexample {
                    key: task.key.cloned(),
                    operation: self.summary(ops, blocked.op),
                    prefix: blocked
                        .prefix
                        .iter()
                        .map(|&id| self.summary(ops, id))
                        .collect(),
                    states: blocked.states.iter().map(|&s| model.render(s)).collect(),
                });
            }
            SearchOutcome::Stopped(StopCause::TimeLimit) => {
                result.cause =
                    Some(self.time_limit_cause(&format!("after {configurations} configurations")));
            }
            SearchOutcome::Stopped(StopCause::MemoryBudget) => {
                result.cause = Some(format!(
                    "memory budget of {} bytes exhausted after {configurations} configurations (this key's memo: about {} bytes)",
                    limits.memory_budget.unwrap_or_default(),
                    search.map_or(0, Search::memory)
                ));
            }
            SearchOutcome::Stopped(StopCause::Cancelled) if never_started => {
                result.cause = Some(
                    "not checked: another key was already found invalid, which decides the verdict (first failure asked)"
                        .to_owned(),
                );
            }
            SearchOutcome::Stopped(StopCause::Cancelled) => {
                result.cause = Some(
                    "search stopped: another key was found invalid, which decides the verdict (first failure asked)"
                        .to_owned(),
                );
            }
        }
        result
    }

    fn time_limit_cause(&self, when: &str) -> String {
        format!(
            "time limit of {:?} reached {when}",
            self.opts.time_limit.unwrap_or_default()
        )
    }

    fn summary(&self, ops: &[PairedOp], id: u32) -> OpSummary {
        let paired = ops[id as usize];
        let invocation = &self.history.events[paired.invoke];
        let completion = paired.completion.map(|c| &self.history.events[c]);
        OpSummary {
            index: invocation.index,
            process: invocation.process.to_string(),
            f: invocation.f.clone(),
            value: invocation.value.clone(),
            output: completion
                .filter(|c| c.kind == EventType::Ok)
                .map(|c| c.value.clone()),
            outcome: completion.map_or("pending", |c| c.kind.as_str()).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, Process, Value};

    fn history(rows: &[(u64, EventType, &str, Value)]) -> History {
        History::new(
            rows.iter()
                .enumerate()
                .map(|(i, (p, kind, f, value))| Event {
                    index: i as u64,
                    time: None,
                    process: Process::Client(*p),
                    kind: *kind,
                    f: (*f).to_owned(),
                    key: None,
                    value: value.clone(),
                    node: None,
                    error: None,
                })
                .collect(),
        )
    }

    /// Concurrent writes and reads on a register, with a crashed write whose value is read
    /// later, so the search must branch, backtrack and take an optional operation.
    fn busy_history(last_read: i64) -> History {
        use EventType::*;
        let mut rows = Vec::new();
        for round in 0..6i64 {
            let base = round * 10;
            rows.push((0, Invoke, "write", Value::Int(base + 1)));
            rows.push((1, Invoke, "write", Value::Int(base + 2)));
            rows.push((2, Invoke, "read", Value::Nil));
            rows.push((1, Ok, "write", Value::Int(base + 2)));
            rows.push((2, Ok, "read", Value::Int(base + 1)));
            rows.push((0, Ok, "write", Value::Int(base + 1)));
        }
        rows.push((10, Invoke, "write", Value::Int(99)));
        rows.push((10, Info, "write", Value::Nil));
        rows.push((3, Invoke, "read", Value::Nil));
        rows.push((3, Ok, "read", Value::Int(last_read)));
        history(&rows)
    }

    fn keyed(rows: &[(u64, EventType, &str, i64, Value)]) -> History {
        History::new(
            rows.iter()
                .enumerate()
                .map(|(i, (p, kind, f, key, value))| Event {
                    index: i as u64,
                    time: None,
                    process: Process::Client(*p),
                    kind: *kind,
                    f: (*f).to_owned(),
                    key: Some(Value::Int(*key)),
                    value: value.clone(),
                    node: None,
                    error: None,
                })
                .collect(),
        )
    }

    fn one_job() -> CheckOptions {
        CheckOptions {
            jobs: 1,
            ..CheckOptions::default()
        }
    }

    #[test]
    fn no_operations_is_unknown_not_valid() {
        let spec = ModelSpec::new(ModelKind::CasRegister);
        let empty = check(&History::default(), &spec, &one_job()).unwrap();
        assert_eq!(empty.verdict, Verdict::Unknown);
        assert!(empty.cause.as_deref().unwrap().starts_with("no operations"));

        let mut nemesis_only = history(&[(0, EventType::Info, "partition", Value::Nil)]);
        nemesis_only.events[0].process = Process::Nemesis;
        let r = check(&nemesis_only, &spec, &one_job()).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.cause.as_deref().unwrap().starts_with("no operations"));
    }

    #[test]
    fn nothing_completed_ok_is_unknown_unless_invalid() {
        use EventType::*;
        let spec = ModelSpec::new(ModelKind::CasRegister);
        let unobserved = history(&[
            (0, Invoke, "write", Value::Int(1)),
            (0, Info, "write", Value::Nil),
            (1, Invoke, "read", Value::Nil),
            (1, Fail, "read", Value::Nil),
        ]);
        let r = check(&unobserved, &spec, &one_job()).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(
            r.cause.as_deref().unwrap().contains("completed ok"),
            "{r:?}"
        );

        let observed = history(&[
            (0, Invoke, "write", Value::Int(1)),
            (0, Ok, "write", Value::Int(1)),
        ]);
        let r = check(&observed, &spec, &one_job()).unwrap();
        assert_eq!(r.verdict, Verdict::Valid);
        assert_eq!(r.cause, None);

        // Operations that never completed are operations: the cause is that none
        // completed ok, not that there were none.
        let pending = history(&[
            (0, Invoke, "write", Value::Int(1)),
            (1, Invoke, "read", Value::Nil),
        ]);
        let r = check(&pending, &spec, &one_job()).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(
            r.cause
                .as_deref()
                .unwrap()
                .starts_with("no operation completed ok"),
            "{r:?}"
        );
    }

    /// Eight overlapping writes of one value, then a read of a value nobody wrote: every
    /// order of the writes fails, so the search must exhaust them. The memo visits each
    /// set of writes once (2^8 = 256 configurations, plus the state around them); without
    /// it the search would walk every ordered prefix (over 100,000).
    #[test]
    fn the_memo_visits_each_set_of_operations_once() {
        use EventType::*;
        let mut rows = Vec::new();
        for p in 0..8u64 {
            rows.push((p, Invoke, "write", Value::Int(1)));
        }
        for p in 0..8u64 {
            rows.push((p, Ok, "write", Value::Int(1)));
        }
        rows.push((8, Invoke, "read", Value::Nil));
        rows.push((8, Ok, "read", Value::Int(2)));
        let r = check(
            &history(&rows),
            &ModelSpec::new(ModelKind::CasRegister),
            &one_job(),
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert!(
            (256..=1_024).contains(&r.configurations),
            "{} configurations",
            r.configurations
        );
    }

    /// Keys 0 and 2 are invalid (a read of a value never written), key 1 valid.
    fn two_invalid_keys() -> History {
        use EventType::*;
        let mut rows = Vec::new();
        for key in 0..3i64 {
            let p = key as u64;
            let read = if key == 1 { 1 } else { 7 };
            rows.push((p, Invoke, "write", key, Value::Int(1)));
            rows.push((p, Ok, "write", key, Value::Int(1)));
            rows.push((p, Invoke, "read", key, Value::Nil));
            rows.push((p, Ok, "read", key, Value::Int(read)));
        }
        keyed(&rows)
    }

    #[test]
    fn every_key_is_checked_unless_the_first_failure_is_enough() {
        let spec = ModelSpec::new(ModelKind::Kv);
        let all = check(&two_invalid_keys(), &spec, &one_job()).unwrap();
        assert_eq!(all.verdict, Verdict::Invalid);
        let verdicts: Vec<Verdict> = all.keys.iter().map(|k| k.verdict).collect();
        assert_eq!(
            verdicts,
            [Verdict::Invalid, Verdict::Valid, Verdict::Invalid]
        );
        assert_eq!(
            all.keys
                .iter()
                .filter(|k| k.counterexample.is_some())
                .count(),
            2
        );

        let first = CheckOptions {
            first_failure: true,
            ..one_job()
        };
        let r = check(&two_invalid_keys(), &spec, &first).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(
            r.keys
                .iter()
                .filter(|k| k.verdict == Verdict::Invalid)
                .count(),
            1,
            "{r:?}"
        );
        assert!(r
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Unknown)
            .all(|k| k.cause.as_deref().unwrap().contains("first failure")));
    }

    /// A write of 1 completes, then a read returns nil.
    fn nil_after_write() -> History {
        use EventType::*;
        history(&[
            (0, Invoke, "write", Value::Int(1)),
            (0, Ok, "write", Value::Int(1)),
            (1, Invoke, "read", Value::Nil),
            (1, Ok, "read", Value::Nil),
        ])
    }

    #[test]
    fn a_nil_read_after_a_write_is_invalid_unless_read_as_knossos_does() {
        for kind in [ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv] {
            let spec = ModelSpec::new(kind);
            let strict = check(&nil_after_write(), &spec, &one_job()).unwrap();
            assert_eq!(strict.verdict, Verdict::Invalid, "{kind:?}");
            let knossos = CheckOptions {
                nil_reads: NilReads::Unknown,
                ..one_job()
            };
            let r = check(&nil_after_write(), &spec, &knossos).unwrap();
            assert_eq!(r.verdict, Verdict::Valid, "{kind:?}");
        }
        // Only nil reads match anything: a read of a value never written stays invalid.
        let mut wrong = nil_after_write();
        wrong.events[3].value = Value::Int(5);
        let knossos = CheckOptions {
            nil_reads: NilReads::Unknown,
            ..one_job()
        };
        let r = check(&wrong, &ModelSpec::new(ModelKind::Register), &knossos).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!("unknown".parse::<NilReads>(), Ok(NilReads::Unknown));
        assert!("maybe".parse::<NilReads>().is_err());
    }

    #[test]
    fn progress_counts_keys_and_configurations() {
        let progress = Arc::new(CheckProgress::default());
        let opts = CheckOptions {
            progress: Some(progress.clone()),
            ..one_job()
        };
        let r = check(&two_invalid_keys(), &ModelSpec::new(ModelKind::Kv), &opts).unwrap();
        let seen = progress.snapshot();
        assert_eq!((seen.keys_total, seen.keys_done), (3, 3));
        assert_eq!(seen.configurations, r.configurations);
        assert!(seen.configurations > 0);
    }

    /// The completion event index of each operation, by invocation event index (pairing as
    /// the checker does: a process's next event after its invocation).
    fn completions(history: &History) -> std::collections::HashMap<u64, (u64, EventType)> {
        let mut open = std::collections::HashMap::new();
        let mut done = std::collections::HashMap::new();
        for e in &history.events {
            if e.kind == EventType::Invoke {
                open.insert(e.process, e.index);
            } else if let Some(invoke) = open.remove(&e.process) {
                done.insert(invoke, (e.index, e.kind));
            }
        }
        done
    }

    /// Checks a cas-register linearization independently of the search: replayed from nil,
    /// every operation is legal and its output (an `ok` read's value) matches, the state
    /// shown after each is the register's; an operation that completed before another was
    /// invoked comes first; every `ok` operation is placed once, and the left-out ones are
    /// indeterminate.
    fn assert_legal_linearization(history: &History, key: &KeyResult) {
        let lin = key
            .linearization
            .as_ref()
            .expect("a valid key has its linearization");
        let completions = completions(history);
        let mut register = Value::Nil;
        for (n, step) in lin.ops.iter().enumerate() {
            let op = &step.op;
            match (op.f.as_str(), &op.value) {
                ("write", v) => register = v.clone(),
                ("read", _) => {
                    let seen = op.output.as_ref().expect("placed reads completed ok");
                    assert_eq!(seen, &register, "step {n}: read {op:?} in state {register}");
                }
                ("cas", Value::List(pair)) => {
                    assert_eq!(
                        pair[0], register,
                        "step {n}: cas {op:?} in state {register}"
                    );
                    register = pair[1].clone();
                }
                other => panic!("unexpected op {other:?}"),
            }
            assert_eq!(
                step.state,
                register.to_string(),
                "step {n}: state after {op:?}"
            );
        }
        let placed: Vec<u64> = lin.ops.iter().map(|s| s.op.index).collect();
        for (a, earlier) in lin.ops.iter().enumerate() {
            for later in &lin.ops[a + 1..] {
                if let Some(&(done, EventType::Ok)) = completions.get(&later.op.index) {
                    assert!(
                        done > earlier.op.index,
                        "{later:?} completed before {earlier:?} was invoked but comes after it"
                    );
                }
            }
        }
        let mut unique = placed.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), placed.len(), "an operation placed twice");
        let key_of = |index: u64| history.events[index as usize].key.clone();
        for (&invoke, &(_, kind)) in &completions {
            if kind == EventType::Ok && key_of(invoke) == key.key {
                assert!(placed.contains(&invoke), "ok op {invoke} not placed");
            }
        }
        for op in &lin.left_out {
            assert!(
                !placed.contains(&op.index),
                "{op:?} both placed and left out"
            );
            assert!(matches!(op.outcome.as_str(), "info" | "pending"), "{op:?}");
            let kind = completions.get(&op.index).map(|&(_, k)| k);
            assert!(matches!(kind, None | Some(EventType::Info)), "{op:?}");
        }
    }

    #[test]
    fn a_valid_key_carries_a_legal_linearization_when_asked() {
        let spec = ModelSpec::new(ModelKind::CasRegister);
        let h = busy_history(99);
        let plain = check(&h, &spec, &one_job()).unwrap();
        assert_eq!(plain.verdict, Verdict::Valid);
        assert!(plain.keys[0].linearization.is_none(), "only when asked");
        let asked = CheckOptions {
            witness: true,
            ..one_job()
        };
        let r = check(&h, &spec, &asked).unwrap();
        assert_eq!(r.verdict, Verdict::Valid);
        assert_legal_linearization(&h, &r.keys[0]);
        let lin = r.keys[0].linearization.as_ref().unwrap();
        // 19 ok operations and the crashed write of 99, which the last read saw.
        assert_eq!(lin.ops.len(), 20);
        assert_eq!(lin.ops[19].op.f, "read");
        assert_eq!(lin.ops[18].op.outcome, "info");
        assert!(lin.left_out.is_empty());
        // Read 52 instead: the crashed write never took effect and is left out.
        let h = busy_history(52);
        let r = check(&h, &spec, &asked).unwrap();
        assert_legal_linearization(&h, &r.keys[0]);
        let lin = r.keys[0].linearization.as_ref().unwrap();
        assert_eq!(lin.ops.len(), 19);
        assert_eq!(lin.left_out.len(), 1);
        assert_eq!(lin.left_out[0].value, Value::Int(99));
        // Invalid keys have none.
        let r = check(&busy_history(41), &spec, &asked).unwrap();
        assert!(r.keys[0].linearization.is_none());
    }

    /// Random linearizable histories (several keys, concurrency, crashes): every key's
    /// linearization is legal and respects real-time order.
    #[test]
    fn random_valid_histories_have_legal_linearizations() {
        use crate::generate::{generate, KeyAssignment, OpMix, RegisterWorkload};
        let spec = ModelSpec::new(ModelKind::CasRegister);
        let asked = CheckOptions {
            witness: true,
            ..one_job()
        };
        let started = Instant::now();
        let mut checked = 0;
        for seed in 0..200u64 {
            if started.elapsed() > Duration::from_secs(1) && checked >= 20 {
                break;
            }
            let workload = RegisterWorkload {
                seed,
                operations: 20 + (seed as usize % 5) * 30,
                concurrency: 1 + seed as usize % 5,
                keys: KeyAssignment::Random {
                    keys: 1 + seed as usize % 3,
                },
                mix: OpMix::default(),
                crash_probability: [0.0, 0.05, 0.2][seed as usize % 3],
            };
            let h = generate(&workload).unwrap();
            let r = check(&h, &spec, &asked).unwrap();
            assert_eq!(r.verdict, Verdict::Valid, "seed {seed}: {r:?}");
            for key in &r.keys {
                assert_legal_linearization(&h, key);
            }
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} histories in time");
    }

    /// With every configuration hashing alike, each look-up meets every stored entry. A memo
    /// that trusted the hash would prune the first configuration after the start and call a
    /// valid history invalid; confirmation by full comparison keeps the verdicts.
    #[test]
    fn hash_collisions_never_prune_unseen_configurations() {
        let spec = ModelSpec::new(ModelKind::Register);
        let opts = CheckOptions {
            jobs: 1,
            ..CheckOptions::default()
        };
        for (last_read, expected) in [
            (99, Verdict::Valid),
            (52, Verdict::Valid),
            (41, Verdict::Invalid),
        ] {
            let h = busy_history(last_read);
            let normal = check_with(&h, &spec, &opts, HashMode::Zobrist).unwrap();
            let colliding = check_with(&h, &spec, &opts, HashMode::Constant).unwrap();
            assert_eq!(normal.verdict, expected, "read {last_read}");
            assert_eq!(
                colliding.verdict, expected,
                "read {last_read} with colliding hashes"
            );
            assert!(
                colliding.configurations > 2,
                "the search went past the start"
            );
        }
    }
}
