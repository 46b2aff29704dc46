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
//! [`CheckOptions::jobs`] threads, largest first. Verdicts combine as invalid beats unknown
//! beats valid; once one key is invalid the verdict is decided, so keys still running stop
//! and keys not yet started are skipped, each reported as `unknown` with that cause.
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

use crate::history::{EventType, History, Value};
use crate::models::{
    Compiled, FifoQueueModel, KvAppendModel, Model, ModelKind, ModelSpec, MutexModel, Outcome,
    RawOp, RegisterModel, SetModel, StateId,
};
use crate::verdict::{CheckResult, Counterexample, KeyResult, OpSummary, Verdict};
use prepare::{KeyGroup, Paired};
use search::{HashMode, KeyOps, Limits, SearchOp, SearchOutcome, StopCause};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
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
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_limit: None,
            memory_budget: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            failed_cas_observes: false,
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
    let paired = prepare::pair(history)?;
    let name = spec.kind.name();
    let run = Run {
        history,
        spec,
        opts,
        paired: &paired,
        start,
        hash_mode,
    };
    let keys = match spec.kind {
        ModelKind::Register => run.keys(|| RegisterModel::new(name, false))?,
        ModelKind::CasRegister | ModelKind::Kv => run.keys(|| RegisterModel::new(name, true))?,
        ModelKind::KvAppend => run.keys(KvAppendModel::new)?,
        ModelKind::Mutex => run.keys(|| MutexModel)?,
        ModelKind::Set => run.keys(SetModel::new)?,
        ModelKind::FifoQueue => run.keys(FifoQueueModel::new)?,
    };
    Ok(CheckResult {
        verdict: keys
            .iter()
            .fold(Verdict::Valid, |v, k| v.combine(k.verdict)),
        model: name.to_owned(),
        operations: paired.ops.len(),
        configurations: keys.iter().map(|k| k.configurations).sum(),
        keys,
        elapsed: start.elapsed(),
    })
}

/// One key, compiled for its model.
struct PreparedKey<'h, M: Model<'h>> {
    model: M,
    initial: StateId,
    ops: KeyOps<M::Op>,
}

static NIL: Value = Value::Nil;

struct Run<'a, 'h> {
    history: &'h History,
    spec: &'h ModelSpec,
    opts: &'a CheckOptions,
    paired: &'a Paired<'h>,
    start: Instant,
    hash_mode: HashMode,
}

impl<'h> Run<'_, 'h> {
    /// Compiles every key (all errors are found before any search starts), then searches
    /// them. Results come back sorted by key.
    fn keys<M: Model<'h>>(
        &self,
        make: impl Fn() -> M + Sync,
    ) -> Result<Vec<KeyResult>, PrepareError> {
        let groups = &self.paired.keys;
        let jobs = self.opts.jobs.max(1);
        // Largest keys first, so that one big key does not start last.
        let mut schedule: Vec<usize> = (0..groups.len()).collect();
        schedule.sort_by_key(|&k| std::cmp::Reverse(groups[k].ops.len()));

        let compiled = parallel_map(groups.iter().collect(), &schedule, jobs, |group| {
            self.compile_key(group, make())
        });
        let mut prepared = Vec::with_capacity(compiled.len());
        let mut first_error: Option<PrepareError> = None;
        for result in compiled {
            match result {
                Ok(p) => prepared.push(p),
                Err(e) => {
                    if first_error.as_ref().is_none_or(|f| e.index < f.index) {
                        first_error = Some(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }

        let cancel = AtomicBool::new(false);
        let memory_in_use = AtomicU64::new(0);
        let limits = Limits {
            deadline: self.opts.time_limit.map(|d| self.start + d),
            memory_budget: self.opts.memory_budget,
            memory_in_use: &memory_in_use,
            cancel: &cancel,
            hash_mode: self.hash_mode,
        };
        let work: Vec<_> = groups.iter().zip(prepared).collect();
        Ok(parallel_map(work, &schedule, jobs, |(group, key)| {
            self.search_key(group, key, &limits)
        }))
    }

    fn compile_key<M: Model<'h>>(
        &self,
        group: &KeyGroup<'h>,
        mut model: M,
    ) -> Result<PreparedKey<'h, M>, PrepareError> {
        let events = &self.history.events;
        let initial = model.initial(&self.spec.initial);
        let mut ops = KeyOps {
            required: Vec::new(),
            optional: Vec::new(),
        };
        for &id in &group.ops {
            let paired = self.paired.ops[id as usize];
            let invocation = &events[paired.invoke];
            let completion = paired.completion.map(|c| &events[c]);
            let (outcome, output) = match completion {
                None => (Outcome::Indeterminate, &NIL),
                Some(c) => match c.kind {
                    EventType::Ok => (Outcome::Ok, &c.value),
                    EventType::Fail => (
                        Outcome::Failed {
                            observes: self.opts.failed_cas_observes
                                || prepare::error_says_compare_failed(c),
                        },
                        &NIL,
                    ),
                    EventType::Info | EventType::Invoke => (Outcome::Indeterminate, &NIL),
                },
            };
            // The invocation says what was asked; an `ok` completion may carry it instead.
            let input = match completion {
                Some(c) if outcome == Outcome::Ok && invocation.value.is_nil() => &c.value,
                _ => &invocation.value,
            };
            let raw = RawOp {
                f: &invocation.f,
                input,
                output,
                outcome,
            };
            let compiled = model.compile(&raw).map_err(|message| PrepareError {
                index: invocation.index,
                message,
            })?;
            let Compiled::Op(op) = compiled else {
                continue;
            };
            let call = paired.invoke as u64;
            match (outcome, paired.completion) {
                (Outcome::Ok | Outcome::Failed { .. }, Some(ret)) => ops.required.push(SearchOp {
                    call,
                    ret: ret as u64,
                    op,
                    origin: id,
                }),
                _ => ops.optional.push(SearchOp {
                    call,
                    ret: u64::MAX,
                    op,
                    origin: id,
                }),
            }
        }
        Ok(PreparedKey {
            model,
            initial,
            ops,
        })
    }

    fn search_key<M: Model<'h>>(
        &self,
        group: &KeyGroup<'h>,
        mut key: PreparedKey<'h, M>,
        limits: &Limits<'_>,
    ) -> KeyResult {
        let started = Instant::now();
        let mut result = KeyResult {
            key: group.key.cloned(),
            verdict: Verdict::Unknown,
            operations: key.ops.required.len() + key.ops.optional.len(),
            configurations: 0,
            elapsed: Duration::ZERO,
            counterexample: None,
            cause: None,
        };
        if limits.cancel.load(Ordering::Relaxed) {
            result.cause = Some(
                "not checked: another key was already found invalid, which decides the verdict"
                    .to_owned(),
            );
            return result;
        }
        if limits.deadline.is_some_and(|d| started >= d) {
            result.cause = Some(self.time_limit_cause("before this key was checked"));
            return result;
        }
        let report = search::search(&mut key.model, key.initial, &key.ops, limits);
        result.configurations = report.configurations;
        match report.outcome {
            SearchOutcome::Valid => result.verdict = Verdict::Valid,
            SearchOutcome::Invalid(blocked) => {
                limits.cancel.store(true, Ordering::Relaxed);
                result.verdict = Verdict::Invalid;
                result.counterexample = Some(Counterexample {
                    key: group.key.cloned(),
                    operation: self.summary(blocked.op),
                    prefix: blocked.prefix.iter().map(|&id| self.summary(id)).collect(),
                    states: blocked
                        .states
                        .iter()
                        .map(|&s| key.model.render(s))
                        .collect(),
                });
            }
            SearchOutcome::Stopped(StopCause::TimeLimit) => {
                result.cause =
                    Some(self.time_limit_cause(&format!(
                        "after {} configurations",
                        report.configurations
                    )));
            }
            SearchOutcome::Stopped(StopCause::MemoryBudget) => {
                result.cause = Some(format!(
                    "memory budget of {} bytes exhausted after {} configurations (this key's memo: about {} bytes)",
                    limits.memory_budget.unwrap_or_default(),
                    report.configurations,
                    report.memory
                ));
            }
            SearchOutcome::Stopped(StopCause::Cancelled) => {
                result.cause = Some(
                    "search stopped: another key was found invalid, which decides the verdict"
                        .to_owned(),
                );
            }
        }
        result.elapsed = started.elapsed();
        result
    }

    fn time_limit_cause(&self, when: &str) -> String {
        format!(
            "time limit of {:?} reached {when}",
            self.opts.time_limit.unwrap_or_default()
        )
    }

    fn summary(&self, id: u32) -> OpSummary {
        let paired = self.paired.ops[id as usize];
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

/// Applies `f` to every item on up to `jobs` threads, taking items in `schedule` order;
/// results come back in item order.
fn parallel_map<T: Send, R: Send>(
    items: Vec<T>,
    schedule: &[usize],
    jobs: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let threads = jobs.min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<R>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = schedule.get(k) else {
                    break;
                };
                let item = slots[index]
                    .lock()
                    .expect("no panics while holding the lock")
                    .take()
                    .expect("each item is taken once");
                let result = f(item);
                *results[index]
                    .lock()
                    .expect("no panics while holding the lock") = Some(result);
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("no panics while holding the lock")
                .expect("every item was processed")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, Process};

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
