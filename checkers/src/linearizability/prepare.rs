//! Pairing invocations with completions, and grouping operations by key.

use super::PrepareError;
use crate::history::{Event, EventType, History, Process, Value};
use rustc_hash::FxHashMap;

/// One client operation: its invocation and, when it completed, its completion (positions in
/// `History::events`, which is real-time order).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairedOp {
    pub invoke: usize,
    /// `None`: never completed, or abandoned by a process that invoked again.
    pub completion: Option<usize>,
}

/// The operations of one key, in invocation order.
#[derive(Debug)]
pub(crate) struct KeyGroup<'h> {
    pub key: Option<&'h Value>,
    pub ops: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct Paired<'h> {
    pub ops: Vec<PairedOp>,
    /// Sorted by key (`None` first).
    pub keys: Vec<KeyGroup<'h>>,
}

/// Pairs every client invocation with the next completion of the same process.
///
/// * An invocation while the process's previous operation is still open leaves that one
///   indeterminate (some recorders reuse a process after a timeout).
/// * A completion with no open invocation is an error naming the event.
/// * Nemesis events are ignored.
pub(crate) fn pair(history: &History) -> Result<Paired<'_>, PrepareError> {
    let events = &history.events;
    let mut ops: Vec<PairedOp> = Vec::with_capacity(events.len() / 2 + 1);
    let mut open: FxHashMap<u64, u32> = FxHashMap::default();
    for (pos, event) in events.iter().enumerate() {
        let Process::Client(process) = event.process else {
            continue;
        };
        if event.kind == EventType::Invoke {
            let id = u32::try_from(ops.len()).map_err(|_| PrepareError {
                index: event.index,
                message: "more than 2^32 operations in one history".to_owned(),
            })?;
            ops.push(PairedOp {
                invoke: pos,
                completion: None,
            });
            // A previous open operation of this process simply stays without completion.
            open.insert(process, id);
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
        }
    }

    let mut by_key: FxHashMap<Option<&Value>, Vec<u32>> = FxHashMap::default();
    for (id, op) in ops.iter().enumerate() {
        by_key
            .entry(events[op.invoke].key.as_ref())
            .or_default()
            .push(id as u32);
    }
    let mut keys: Vec<KeyGroup<'_>> = by_key
        .into_iter()
        .map(|(key, ops)| KeyGroup { key, ops })
        .collect();
    keys.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(Paired { ops, keys })
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
        ]);
        let p = pair(&h).unwrap();
        assert_eq!(p.ops.len(), 3);
        assert_eq!(p.ops[0].completion, Some(4));
        assert_eq!(p.ops[1].completion, Some(3));
        assert_eq!(p.ops[2].completion, None);
        let keys: Vec<_> = p
            .keys
            .iter()
            .map(|k| (k.key.cloned(), k.ops.clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (Some(Value::Int(1)), vec![1, 2]),
                (Some(Value::Int(2)), vec![0])
            ]
        );
    }

    #[test]
    fn a_second_invocation_abandons_the_first() {
        use EventType::*;
        let h = history(vec![
            ev(Process::Client(0), Invoke, None),
            ev(Process::Client(0), Invoke, None),
            ev(Process::Client(0), Ok, None),
        ]);
        let p = pair(&h).unwrap();
        assert_eq!(p.ops[0].completion, None);
        assert_eq!(p.ops[1].completion, Some(2));
    }

    #[test]
    fn a_completion_without_invocation_names_its_event() {
        use EventType::*;
        let h = history(vec![
            ev(Process::Client(0), Invoke, None),
            ev(Process::Client(0), Ok, None),
            ev(Process::Client(0), Fail, None),
        ]);
        let err = pair(&h).unwrap_err();
        assert_eq!(err.index, 2);
        assert!(
            err.message.contains("`fail` completion of process 0"),
            "{err}"
        );
    }
}
