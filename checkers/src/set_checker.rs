//! Jepsen's set checker: cheap, and it catches lost writes without a search.
//!
//! Clients `add` unique elements to a set (one set per key) and `read` the whole set. The
//! successful read invoked last on each key is the *final read* (the harness performs one
//! after healing every fault). Against it:
//!
//! * **lost** — adds acknowledged (`ok`) before the final read was invoked, missing from it
//!   (an add acknowledged later may be ordered after the read: it is not judged);
//! * **unexpected** — elements in the final read that nobody ever tried to add;
//! * **duplicated** — elements that appear more than once in the final read;
//! * **recovered** — indeterminate adds (`info` or never completed) that did take effect
//!   (not an error: they were allowed to).
//!
//! Any lost, unexpected or duplicated element makes the key invalid; a key without a
//! successful read is `unknown` (nothing to judge by).

use crate::history::{EventType, History, Process, Value};
use crate::verdict::Verdict;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The outcome for one set.
#[derive(Debug, Clone, Serialize)]
pub struct SetKeyResult {
    pub key: Option<Value>,
    pub verdict: Verdict,
    pub attempted: usize,
    pub acknowledged: usize,
    /// Elements in the final read.
    pub final_size: Option<usize>,
    pub lost: Vec<Value>,
    pub unexpected: Vec<Value>,
    pub duplicated: Vec<Value>,
    pub recovered: usize,
}

/// The outcome over all sets of a history.
#[derive(Debug, Clone, Serialize)]
pub struct SetResult {
    pub verdict: Verdict,
    pub keys: Vec<SetKeyResult>,
}

#[derive(Default)]
struct KeyState<'a> {
    attempted: HashSet<&'a Value>,
    /// Acknowledged adds with the index of their `ok`.
    acknowledged: Vec<(&'a Value, u64)>,
    indeterminate: HashSet<&'a Value>,
    /// The successful read invoked last: its invocation index and what it saw.
    final_read: Option<(u64, &'a [Value])>,
}

/// Checks every set (key) in `history`. Adds are `f = "add"` with the element as value;
/// reads are `f = "read"` whose `ok` value is the list of elements.
pub fn check_sets(history: &History) -> SetResult {
    let mut keys: BTreeMap<Option<&Value>, KeyState> = BTreeMap::new();
    // Invocation value per open process: a completion may omit the element.
    let mut open: HashMap<u64, (&Value, Option<&Value>, &str, u64)> = HashMap::new();
    for event in &history.events {
        let Process::Client(p) = event.process else {
            continue;
        };
        let state = keys.entry(event.key.as_ref()).or_default();
        match event.kind {
            EventType::Invoke => {
                if event.f == "add" {
                    state.attempted.insert(&event.value);
                }
                open.insert(
                    p,
                    (
                        &event.value,
                        event.key.as_ref(),
                        event.f.as_str(),
                        event.index,
                    ),
                );
            }
            EventType::Ok | EventType::Fail | EventType::Info => {
                let invoked = open.remove(&p);
                let f = invoked.map_or(event.f.as_str(), |(_, _, f, _)| f);
                let value = invoked.map_or(&event.value, |(v, _, _, _)| v);
                match (f, event.kind) {
                    ("add", EventType::Ok) => state.acknowledged.push((value, event.index)),
                    ("add", EventType::Info) => {
                        state.indeterminate.insert(value);
                    }
                    ("read", EventType::Ok) => {
                        let invoked_at = invoked.map_or(event.index, |(_, _, _, i)| i);
                        if let Some(items) = event.value.as_list() {
                            if state.final_read.is_none_or(|(at, _)| invoked_at > at) {
                                state.final_read = Some((invoked_at, items));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    // Adds still open at the end are indeterminate too.
    for (value, key, f, _) in open.into_values() {
        if f == "add" {
            keys.entry(key).or_default().indeterminate.insert(value);
        }
    }

    let mut results = Vec::new();
    for (key, state) in keys {
        if state.attempted.is_empty() && state.final_read.is_none() {
            continue;
        }
        let mut result = SetKeyResult {
            key: key.cloned(),
            verdict: Verdict::Unknown,
            attempted: state.attempted.len(),
            acknowledged: state.acknowledged.len(),
            final_size: None,
            lost: Vec::new(),
            unexpected: Vec::new(),
            duplicated: Vec::new(),
            recovered: 0,
        };
        if let Some((read_invoked, read)) = state.final_read {
            let mut seen: HashSet<&Value> = HashSet::with_capacity(read.len());
            let mut duplicated = HashSet::new();
            for v in read {
                if !seen.insert(v) {
                    duplicated.insert(v);
                }
            }
            result.final_size = Some(seen.len());
            let lost: Vec<&Value> = state
                .acknowledged
                .iter()
                .filter(|(v, acked_at)| *acked_at < read_invoked && !seen.contains(*v))
                .map(|(v, _)| *v)
                .collect();
            result.lost = sorted(lost.iter());
            result.unexpected = sorted(seen.iter().filter(|v| !state.attempted.contains(*v)));
            result.duplicated = sorted(duplicated.iter());
            result.recovered = state
                .indeterminate
                .iter()
                .filter(|v| seen.contains(*v))
                .count();
            result.verdict = if result.lost.is_empty()
                && result.unexpected.is_empty()
                && result.duplicated.is_empty()
            {
                Verdict::Valid
            } else {
                Verdict::Invalid
            };
        }
        results.push(result);
    }
    SetResult {
        verdict: results
            .iter()
            .fold(Verdict::Valid, |acc, r| acc.combine(r.verdict)),
        keys: results,
    }
}

fn sorted<'a>(values: impl Iterator<Item = &'a &'a Value>) -> Vec<Value> {
    let mut out: Vec<Value> = values.map(|v| (*v).clone()).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;

    fn ev(p: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time: None,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }
    /// A history whose events are numbered in order, as readers leave them.
    fn numbered(mut events: Vec<Event>) -> History {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        History::new(events)
    }
    fn list(items: &[i64]) -> Value {
        Value::List(items.iter().map(|i| Value::Int(*i)).collect())
    }
    use EventType::*;

    #[test]
    fn all_acknowledged_present_is_valid() {
        let h = numbered(vec![
            ev(0, Invoke, "add", Value::Int(1)),
            ev(0, Ok, "add", Value::Int(1)),
            ev(1, Invoke, "add", Value::Int(2)),
            ev(1, Info, "add", Value::Int(2)),
            ev(0, Invoke, "read", Value::Nil),
            ev(0, Ok, "read", list(&[1, 2])),
        ]);
        let r = check_sets(&h);
        assert_eq!(r.verdict, Verdict::Valid);
        assert_eq!(r.keys[0].recovered, 1);
        assert_eq!(r.keys[0].acknowledged, 1);
    }

    #[test]
    fn lost_unexpected_and_duplicated_are_reported() {
        let h = numbered(vec![
            ev(0, Invoke, "add", Value::Int(1)),
            ev(0, Ok, "add", Value::Int(1)),
            ev(0, Invoke, "add", Value::Int(2)),
            ev(0, Ok, "add", Value::Int(2)),
            ev(0, Invoke, "read", Value::Nil),
            ev(0, Ok, "read", list(&[2, 2, 7])),
        ]);
        let r = check_sets(&h);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.keys[0].lost, vec![Value::Int(1)]);
        assert_eq!(r.keys[0].unexpected, vec![Value::Int(7)]);
        assert_eq!(r.keys[0].duplicated, vec![Value::Int(2)]);
    }

    #[test]
    fn no_successful_read_is_unknown() {
        let h = numbered(vec![
            ev(0, Invoke, "add", Value::Int(1)),
            ev(0, Ok, "add", Value::Int(1)),
            ev(0, Invoke, "read", Value::Nil),
            ev(0, Fail, "read", Value::Nil),
        ]);
        assert_eq!(check_sets(&h).verdict, Verdict::Unknown);
    }

    #[test]
    fn adds_acknowledged_after_the_final_read_began_are_not_lost() {
        // The read is concurrent with the add: it may be ordered before it.
        let h = numbered(vec![
            ev(0, Invoke, "read", Value::Nil),
            ev(1, Invoke, "add", Value::Int(1)),
            ev(1, Ok, "add", Value::Int(1)),
            ev(0, Ok, "read", list(&[])),
        ]);
        assert_eq!(check_sets(&h).verdict, Verdict::Valid);
    }

    #[test]
    fn the_read_invoked_last_is_the_final_one() {
        // An older read that completes last does not hide the newer one's view.
        let h = numbered(vec![
            ev(0, Invoke, "add", Value::Int(1)),
            ev(0, Ok, "add", Value::Int(1)),
            ev(1, Invoke, "read", Value::Nil),
            ev(2, Invoke, "read", Value::Nil),
            ev(2, Ok, "read", list(&[])),
            ev(1, Ok, "read", list(&[1])),
        ]);
        let r = check_sets(&h);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.keys[0].lost, vec![Value::Int(1)]);
    }

    #[test]
    fn the_last_read_is_the_final_one() {
        let h = numbered(vec![
            ev(0, Invoke, "read", Value::Nil),
            ev(0, Ok, "read", list(&[])),
            ev(0, Invoke, "add", Value::Int(1)),
            ev(0, Ok, "add", Value::Int(1)),
            ev(0, Invoke, "read", Value::Nil),
            ev(0, Ok, "read", list(&[1])),
        ]);
        assert_eq!(check_sets(&h).verdict, Verdict::Valid);
    }
}
