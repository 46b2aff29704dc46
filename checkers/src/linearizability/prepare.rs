//! One pass over the history: pairing invocations with completions, grouping operations by
//! key, and compiling each operation for its key's model.

use super::search::{KeyOps, SearchOp};
use super::PrepareError;
use crate::history::{Event, EventType, History, Process, Value};
use crate::models::{Compiled, Model, Outcome, RawOp, StateId};
use rustc_hash::FxHashMap;

/// One client operation: its invocation and, when it completed, its completion (positions in
/// `History::events`, which is real-time order).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairedOp {
    pub invoke: usize,
    /// `None`: never completed, or abandoned by a process that invoked again.
    pub completion: Option<usize>,
    /// Index of its key in [`Prepared::keys`] before sorting.
    key: u32,
}

/// One key, compiled for its model.
pub(crate) struct PreparedKey<'h, M: Model<'h>> {
    pub key: Option<&'h Value>,
    pub model: M,
    pub initial: StateId,
    pub ops: KeyOps<M::Op>,
}

pub(crate) struct Prepared<'h, M: Model<'h>> {
    /// Every client operation, in invocation order; search ops refer to these by index.
    pub ops: Vec<PairedOp>,
    /// Sorted by key (`None` first).
    pub keys: Vec<PreparedKey<'h, M>>,
}

static NIL: Value = Value::Nil;

/// Pairs every client invocation with the next completion of the same process and compiles
/// the operation once its outcome is known.
///
/// * An invocation while the process's previous operation is still open leaves that one
///   indeterminate (some recorders reuse a process after a timeout).
/// * A completion with no open invocation is an error naming the event.
/// * Nemesis events are ignored.
///
/// The history is read in order, once, so a large history streams through the cache.
pub(crate) fn prepare<'h, M: Model<'h>>(
    history: &'h History,
    initial: &'h Value,
    failed_cas_observes: bool,
    jobs: usize,
    make: impl Fn() -> M,
) -> Result<Prepared<'h, M>, PrepareError> {
    let events = &history.events;
    let mut ops: Vec<PairedOp> = Vec::with_capacity(events.len() / 2 + 1);
    let mut open: FxHashMap<u64, u32> = FxHashMap::default();
    let mut key_ids: FxHashMap<Option<&'h Value>, u32> = FxHashMap::default();
    let mut keys: Vec<PreparedKey<'h, M>> = Vec::new();
    // Per key, the operations to compile, each with its place in the order in which
    // outcomes became known (which decides which of several errors is reported).
    let mut to_compile: Vec<Vec<(u32, u32)>> = Vec::new();
    let mut queued = 0u32;
    let mut compile = |to_compile: &mut Vec<Vec<(u32, u32)>>, ops: &[PairedOp], id: u32| {
        to_compile[ops[id as usize].key as usize].push((queued, id));
        queued += 1;
    };
    for (pos, event) in events.iter().enumerate() {
        let Process::Client(process) = event.process else {
            continue;
        };
        if event.kind == EventType::Invoke {
            let id = u32::try_from(ops.len()).map_err(|_| PrepareError {
                index: event.index,
                message: "more than 2^32 operations in one history".to_owned(),
            })?;
            let key_ref = event.key.as_ref();
            let key = *key_ids.entry(key_ref).or_insert_with(|| {
                let mut model = make();
                let initial = model.initial(initial);
                keys.push(PreparedKey {
                    key: key_ref,
                    model,
                    initial,
                    ops: KeyOps {
                        required: Vec::new(),
                        optional: Vec::new(),
                    },
                });
                to_compile.push(Vec::new());
                (keys.len() - 1) as u32
            });
            ops.push(PairedOp {
                invoke: pos,
                completion: None,
                key,
            });
            if let Some(abandoned) = open.insert(process, id) {
                compile(&mut to_compile, &ops, abandoned);
            }
        } else {
            let Some(id) = open.remove(&process) else {
                return Err(PrepareError {
                    index: event.index,
                    message: format!(
                        "`{}` completion of process {process} has no invocation before it",
                        event.kind.as_str()
                    ),
                });
            };
            ops[id as usize].completion = Some(pos);
            compile(&mut to_compile, &ops, id);
        }
    }
    let mut never_completed: Vec<u32> = open.into_values().collect();
    never_completed.sort_unstable();
    for id in never_completed {
        compile(&mut to_compile, &ops, id);
    }
    compile_keys(
        events,
        &ops,
        &mut keys,
        to_compile,
        failed_cas_observes,
        jobs,
    )?;
    keys.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(Prepared { ops, keys })
}

/// Histories with fewer operations than this are compiled on the calling thread.
const PARALLEL_COMPILE: usize = 1 << 16;

/// Compiles every key's operations (in parallel on `jobs` threads for large histories) and
/// sorts them by call, as the search wants them. Keys are independent, so the result is
/// the same in any order; of several errors, the one a sequential pass in history order
/// would have met first is reported.
fn compile_keys<'h, M: Model<'h>>(
    events: &'h [Event],
    ops: &[PairedOp],
    keys: &mut [PreparedKey<'h, M>],
    to_compile: Vec<Vec<(u32, u32)>>,
    failed_cas_observes: bool,
    jobs: usize,
) -> Result<(), PrepareError> {
    // A key's first error, with its op's place in the sequential order.
    let compile_key = |key: &mut PreparedKey<'h, M>, queue: &[(u32, u32)]| {
        // Most operations of a recorded history completed `ok`.
        key.ops.required.reserve(queue.len());
        for (i, &(place, id)) in queue.iter().enumerate() {
            prefetch_ahead(events, ops, queue, i);
            compile_op(events, &ops[id as usize], id, key, failed_cas_observes)
                .map_err(|e| (place, e))?;
        }
        key.ops.required.sort_unstable_by_key(|o| o.call);
        key.ops.optional.sort_unstable_by_key(|o| o.call);
        Ok::<(), (u32, PrepareError)>(())
    };
    let threads = jobs.clamp(1, keys.len().max(1));
    let mut work: Vec<_> = keys.iter_mut().zip(to_compile).collect();
    let first_error = if threads == 1 || ops.len() < PARALLEL_COMPILE {
        work.iter_mut()
            .filter_map(|(key, queue)| compile_key(key, queue).err())
            .min_by_key(|(place, _)| *place)
    } else {
        let per_thread = work.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = work
                .chunks_mut(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter_mut()
                            .filter_map(|(key, queue)| compile_key(key, queue).err())
                            .min_by_key(|(place, _)| *place)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("compiling does not panic"))
                .min_by_key(|(place, _)| *place)
        })
    };
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// How far ahead in a key's queue [`prefetch_ahead`] asks for an operation's pair; its
/// invocation and completion events are asked for half as far ahead (once the pair is
/// likely there), and what the invocation points to (its function's name, a list value)
/// half as far again.
const PREFETCH_PAIR: usize = 16;
const PREFETCH_EVENTS: usize = PREFETCH_PAIR / 2;
const PREFETCH_HEAP: usize = PREFETCH_EVENTS / 2;

/// Asks the processor to load what compiling later operations of the queue will read: a
/// key's operations are spread over the history, so without this each one waits for its
/// pair and its two events to come from memory, one after the other (most of the compile
/// time of a million-operation history). Only a hint: out-of-range positions are ignored
/// and nothing is read or changed.
fn prefetch_ahead(events: &[Event], ops: &[PairedOp], queue: &[(u32, u32)], at: usize) {
    if let Some(&(_, id)) = queue.get(at + PREFETCH_PAIR) {
        if let Some(pair) = ops.get(id as usize) {
            prefetch(pair);
        }
    }
    if let Some(&(_, id)) = queue.get(at + PREFETCH_EVENTS) {
        if let Some(pair) = ops.get(id as usize) {
            for position in std::iter::once(pair.invoke).chain(pair.completion) {
                if let Some(event) = events.get(position) {
                    prefetch(event);
                }
            }
        }
    }
    if let Some(&(_, id)) = queue.get(at + PREFETCH_HEAP) {
        if let Some(invocation) = ops.get(id as usize).and_then(|p| events.get(p.invoke)) {
            prefetch(invocation.f.as_bytes().first().unwrap_or(&0));
            if let Value::List(items) = &invocation.value {
                if let Some(first) = items.first() {
                    prefetch(first);
                }
            }
        }
    }
}

#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = (value as *const T).cast::<i8>();
        // A value may span two or three cache lines (an event is 192 bytes).
        for offset in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: prefetching is a hint that never faults; the addresses lie within
            // `value`.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.wrapping_add(offset),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

fn compile_op<'h, M: Model<'h>>(
    events: &'h [Event],
    paired: &PairedOp,
    id: u32,
    key: &mut PreparedKey<'h, M>,
    failed_cas_observes: bool,
) -> Result<(), PrepareError> {
    let invocation = &events[paired.invoke];
    let completion = paired.completion.map(|c| &events[c]);
    let (outcome, output) = match completion {
        None => (Outcome::Indeterminate, &NIL),
        Some(c) => match c.kind {
            EventType::Ok => (Outcome::Ok, &c.value),
            EventType::Fail => (
                Outcome::Failed {
                    observes: failed_cas_observes || error_says_compare_failed(c),
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
    let compiled = key.model.compile(&raw).map_err(|message| PrepareError {
        index: invocation.index,
        message,
    })?;
    let Compiled::Op(op) = compiled else {
        return Ok(());
    };
    let call = paired.invoke as u64;
    match (outcome, paired.completion) {
        (Outcome::Ok | Outcome::Failed { .. }, Some(ret)) => key.ops.required.push(SearchOp {
            call,
            ret: ret as u64,
            op,
            origin: id,
        }),
        _ => key.ops.optional.push(SearchOp {
            call,
            ret: u64::MAX,
            op,
            origin: id,
        }),
    }
    Ok(())
}

/// Whether a failed operation's error says the compare of a cas failed, so that the failure
/// is an observation of the register (it did not hold the expected value).
pub(crate) fn error_says_compare_failed(completion: &Event) -> bool {
    matches!(
        &completion.error,
        Some(Value::Keyword(e) | Value::Str(e)) if e == "compare-failed" || e == "mismatch"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::RegisterModel;

    fn ev(process: Process, kind: EventType, key: Option<i64>) -> Event {
        Event {
            index: 0,
            time: None,
            process,
            kind,
            f: "write".into(),
            key: key.map(Value::Int),
            value: Value::Int(1),
            node: None,
            error: None,
        }
    }

    fn history(mut events: Vec<Event>) -> History {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        History::new(events)
    }

    fn run(h: &History) -> Result<Prepared<'_, RegisterModel<'_>>, PrepareError> {
        prepare(h, &NIL, false, 1, || RegisterModel::new("register", false))
    }

    /// (origin, call, ret) of each key's required and optional ops.
    type Shape = (Vec<(u32, u64, u64)>, Vec<(u32, u64)>);

    fn shape<'h>(p: &Prepared<'h, RegisterModel<'h>>) -> Vec<(Option<Value>, Shape)> {
        p.keys
            .iter()
            .map(|k| {
                let required = k
                    .ops
                    .required
                    .iter()
                    .map(|o| (o.origin, o.call, o.ret))
                    .collect();
                let optional = k.ops.optional.iter().map(|o| (o.origin, o.call)).collect();
                (k.key.cloned(), (required, optional))
            })
            .collect()
    }

    #[test]
    fn pairs_per_process_and_groups_by_key() {
        use EventType::*;
        let h = history(vec![
            ev(Process::Client(0), Invoke, Some(2)),
            ev(Process::Client(1), Invoke, Some(1)),
            ev(Process::Nemesis, Info, None),
            ev(Process::Client(1), Ok, Some(1)),
            ev(Process::Client(0), Info, Some(2)),
            ev(Process::Client(2), Invoke, Some(1)),
            ev(Process::Client(3), Invoke, Some(1)),
            ev(Process::Client(3), Fail, Some(1)),
        ]);
        let p = run(&h).unwrap();
        assert_eq!(p.ops.len(), 4);
        assert_eq!(p.ops[0].completion, Some(4));
        assert_eq!(p.ops[2].completion, None);
        assert_eq!(
            shape(&p),
            vec![
                // The failed write is dropped; the pending one is optional.
                (Some(Value::Int(1)), (vec![(1, 1, 3)], vec![(2, 5)])),
                (Some(Value::Int(2)), (vec![], vec![(0, 0)])),
            ]
        );
    }

    /// Keys are compiled separately (in parallel when the history is large); of several bad
    /// operations the one whose outcome comes first in the history is reported, as a
    /// single pass in history order would report it, whatever the number of threads.
    #[test]
    fn the_earliest_error_is_reported_whatever_the_threads() {
        use EventType::*;
        for ops_per_key in [10, PARALLEL_COMPILE / 2 + 10] {
            let mut events = Vec::new();
            for i in 0..ops_per_key {
                for key in [1, 2] {
                    for kind in [Invoke, Ok] {
                        let mut e = ev(Process::Client(key as u64), kind, Some(key));
                        // Key 2 (sorted last) goes wrong first; key 1 later.
                        if (key == 2 && i == 3) || (key == 1 && i == ops_per_key - 2) {
                            e.f = "cas".into();
                        }
                        events.push(e);
                    }
                }
            }
            let h = history(events);
            for jobs in [1, 2] {
                let err = prepare(&h, &NIL, false, jobs, || {
                    RegisterModel::new("register", false)
                })
                .err()
                .unwrap();
                assert_eq!(
                    err.index,
                    3 * 4 + 2,
                    "{ops_per_key} ops per key, {jobs} jobs"
                );
                assert!(err.message.contains("no function `cas`"), "{err}");
            }
        }
    }

    /// Prefetching is only a hint: positions past the queue, the operations or the events
    /// are skipped, never read.
    #[test]
    fn prefetching_ignores_what_is_out_of_range() {
        use EventType::*;
        let h = history(vec![ev(Process::Client(0), Invoke, Some(1))]);
        let ops = [
            PairedOp {
                invoke: 0,
                completion: Some(7),
                key: 0,
            },
            PairedOp {
                invoke: 9,
                completion: None,
                key: 0,
            },
        ];
        let queue: Vec<(u32, u32)> = (0..40).map(|i| (i, i % 3)).collect();
        for at in 0..queue.len() + PREFETCH_PAIR {
            prefetch_ahead(&h.events, &ops, &queue, at);
        }
        prefetch_ahead(&h.events, &[], &queue, 0);
        prefetch_ahead(&[], &ops, &queue, 0);
    }

    #[test]
    fn a_second_invocation_abandons_the_first() {
        use EventType::*;
        let h = history(vec![
            ev(Process::Client(0), Invoke, None),
            ev(Process::Client(0), Invoke, None),
            ev(Process::Client(0), Ok, None),
        ]);
        let p = run(&h).unwrap();
        assert_eq!(p.ops[0].completion, None);
        assert_eq!(p.ops[1].completion, Some(2));
        assert_eq!(shape(&p), vec![(None, (vec![(1, 1, 2)], vec![(0, 0)]))]);
    }

    #[test]
    fn a_completion_without_invocation_names_its_event() {
        use EventType::*;
        let h = history(vec![
            ev(Process::Client(0), Invoke, None),
            ev(Process::Client(0), Ok, None),
            ev(Process::Client(0), Fail, None),
        ]);
        let err = run(&h).err().unwrap();
        assert_eq!(err.index, 2);
        assert!(
            err.message.contains("`fail` completion of process 0"),
            "{err}"
        );
    }

    fn event(process: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            f: f.into(),
            value,
            ..ev(Process::Client(process), kind, None)
        }
    }

    /// Per operation, its origin and what it writes as the register renders it (`None` for
    /// a read).
    type Written = Vec<(u32, Option<String>)>;

    /// What each of a key's operations writes: required ones, then optional ones.
    fn writes<'h>(key: &mut PreparedKey<'h, RegisterModel<'h>>) -> (Written, Written) {
        let mut written = |ops: &[SearchOp<_>]| {
            ops.iter()
                .map(|o| {
                    // A read of the initial value leaves it; a write replaces it.
                    let after = key.model.step(u32::MAX, o.op);
                    (o.origin, after.map(|s| key.model.render(s)))
                })
                .collect::<Vec<_>>()
        };
        let required = written(&key.ops.required);
        let optional = written(&key.ops.optional);
        (required, optional)
    }

    /// An `info` leaves its operation indeterminate and frees the process for its next
    /// invocation; an invocation never completed is indeterminate too; failed writes and
    /// indeterminate reads are dropped; nemesis events are skipped.
    #[test]
    fn info_then_invoke_and_pending_at_the_end() {
        use EventType::*;
        let nil = Value::Nil;
        let h = history(vec![
            event(0, Invoke, "write", Value::Int(1)),
            event(0, Info, "write", nil.clone()),
            event(0, Invoke, "write", Value::Int(2)),
            ev(Process::Nemesis, Info, None),
            event(0, Ok, "write", Value::Int(2)),
            event(1, Invoke, "read", nil.clone()),
            event(1, Info, "read", nil.clone()),
            event(2, Invoke, "write", Value::Int(4)),
            event(2, Fail, "write", Value::Int(4)),
            event(3, Invoke, "read", nil.clone()),
            event(3, Ok, "read", Value::Int(2)),
            event(4, Invoke, "write", Value::Int(3)),
        ]);
        let mut p = run(&h).unwrap();
        let completions: Vec<_> = p.ops.iter().map(|o| (o.invoke, o.completion)).collect();
        assert_eq!(
            completions,
            vec![
                (0, Some(1)),
                (2, Some(4)),
                (5, Some(6)),
                (7, Some(8)),
                (9, Some(10)),
                (11, None)
            ]
        );
        assert_eq!(
            shape(&p),
            vec![(None, (vec![(1, 2, 4), (4, 9, 10)], vec![(0, 0), (5, 11)]))]
        );
        assert_eq!(
            writes(&mut p.keys[0]),
            (
                vec![(1, Some("2".into())), (4, None)],
                vec![(0, Some("1".into())), (5, Some("3".into()))]
            )
        );
    }

    /// The invocation says what was asked. Only when it carried nil does an `ok` completion
    /// supply the value; an `info` completion never does.
    #[test]
    fn an_ok_completion_supplies_the_value_a_nil_invocation_lacks() {
        use EventType::*;
        let nil = Value::Nil;
        let h = history(vec![
            event(0, Invoke, "write", nil.clone()),
            event(0, Ok, "write", Value::Int(5)),
            event(1, Invoke, "write", Value::Int(3)),
            event(1, Ok, "write", Value::Int(4)),
            event(2, Invoke, "write", nil.clone()),
            event(2, Info, "write", Value::Int(7)),
        ]);
        let mut p = run(&h).unwrap();
        assert_eq!(
            writes(&mut p.keys[0]),
            (
                vec![(0, Some("5".into())), (1, Some("3".into()))],
                vec![(2, Some("nil".into()))]
            )
        );
    }

    /// With failed cas read as observations a failed cas must be linearized within its
    /// span; otherwise it is dropped.
    #[test]
    fn a_failed_cas_is_required_only_as_an_observation() {
        use EventType::*;
        let cas = Value::List(vec![Value::Int(1), Value::Int(2)]);
        let h = history(vec![
            event(0, Invoke, "cas", cas.clone()),
            event(0, Fail, "cas", cas.clone()),
        ]);
        for (observes, required) in [(false, vec![]), (true, vec![(0, 0, 1)])] {
            let p = prepare(&h, &NIL, observes, 1, || RegisterModel::new("cas", true)).unwrap();
            assert_eq!(shape(&p), vec![(None, (required, vec![]))], "{observes}");
        }
    }
}
