//! rw-register: what can soundly be inferred from reads and writes of registers whose
//! written values are unique per key.
//!
//! * wr: a committed transaction's external read of `v` follows `v`'s writer.
//! * Version order, per key, from two facts only (Elle's defaults): the initial state (nil)
//!   precedes every written version; and writes follow reads: a committed transaction that
//!   read `a` and then wrote `b` to a key puts `a` before `b`. A cyclic version order is
//!   `cyclic-versions` and the key then gives no ww/rw edges.
//! * From each known version pair `a < b`: ww from `a`'s writer to `b`'s writer, and rw from
//!   every committed external reader of `a` to `b`'s writer.
//!
//! A transaction's external read of a key is its first access to the key when that access
//! is a read; its external write is its last write to the key.

use super::anomaly::AnomalyKind;
use super::explain::{Anomaly, EdgeReason, TxnSummary};
use super::graph::{EdgeBuffer, Rels};
use super::transactions::{MicroOp, Outcome, TxnDataError, TxnHistory, TxnId};
use super::Collector;
use rustc_hash::FxHashMap as HashMap;

#[derive(Debug, Clone, Copy)]
struct Writer {
    txn: TxnId,
    last: bool,
}

/// What inference learned, kept to explain edges afterwards.
#[derive(Debug, Default)]
pub struct RwRegisterIndex {
    writers: HashMap<(i64, i64), Writer>,
    /// Known version pairs `a < b` from writes-follow-reads, per key (`a` is never nil).
    successors: HashMap<(i64, i64), Vec<i64>>,
}

/// `(key, value read)` of each external read (`None` = nil).
fn external_reads(mops: &[MicroOp]) -> impl Iterator<Item = (usize, i64, Option<i64>)> + '_ {
    mops.iter().enumerate().filter_map(move |(i, m)| match *m {
        MicroOp::ReadRegister {
            key,
            value: Some(v),
        } if !mops[..i].iter().any(|e| e.key() == key) => Some((i, key, v)),
        _ => None,
    })
}

fn external_write(mops: &[MicroOp], key: i64) -> Option<i64> {
    mops.iter().rev().find_map(|m| match *m {
        MicroOp::Write { key: k, value } if k == key => Some(value),
        _ => None,
    })
}

pub fn infer(
    h: &TxnHistory,
    found: &mut Collector,
    edges: &mut EdgeBuffer,
) -> Result<RwRegisterIndex, TxnDataError> {
    let mut index = RwRegisterIndex::default();
    let mut writes_of_key: HashMap<i64, Vec<i64>> = HashMap::default();
    for (t, txn) in h.txns.iter().enumerate() {
        let mops = h.mops_of(t as TxnId);
        for (i, m) in mops.iter().enumerate() {
            if let MicroOp::Write { key, value } = *m {
                let last = !mops[i + 1..]
                    .iter()
                    .any(|n| matches!(n, MicroOp::Write { key: k, .. } if *k == key));
                let w = Writer {
                    txn: t as TxnId,
                    last,
                };
                if index.writers.insert((key, value), w).is_some() {
                    return Err(TxnDataError {
                        index: txn.invoke_index,
                        field: Some("value".to_owned()),
                        expected: format!(
                            "each value written to a key once (rw-register); {value} is written to key {key} twice"
                        ),
                        found: None,
                    });
                }
                if txn.outcome != Outcome::Aborted {
                    writes_of_key.entry(key).or_default().push(value);
                }
            }
        }
    }

    // Internal consistency, aborted/intermediate/garbage reads, wr, writes-follow-reads.
    let mut readers: HashMap<(i64, Option<i64>), Vec<TxnId>> = HashMap::default();
    let mut read_then_wrote: HashMap<(i64, Option<i64>), TxnId> = HashMap::default();
    for t in 0..h.txns.len() as TxnId {
        if h.txns[t as usize].outcome != Outcome::Committed {
            continue;
        }
        let mops = h.mops_of(t);
        check_internal(h, t, mops, found);
        for (_, key, v) in external_reads(mops) {
            readers.entry((key, v)).or_default().push(t);
            if let Some(written) = external_write(mops, key) {
                if let Some(a) = v {
                    let succ = index.successors.entry((key, a)).or_default();
                    if !succ.contains(&written) {
                        succ.push(written);
                    }
                }
                if let Some(&other) = read_then_wrote.get(&(key, v)) {
                    found.add(AnomalyKind::LostUpdate, || Anomaly {
                        kind: AnomalyKind::LostUpdate,
                        key: Some(key),
                        txns: vec![TxnSummary::of(h, other), TxnSummary::of(h, t)],
                        cycle: Vec::new(),
                        explanation: format!(
                            "T{other} and T{t} both read key {key} as {} and both wrote it",
                            show(v)
                        ),
                    });
                } else {
                    read_then_wrote.insert((key, v), t);
                }
            }
            let Some(v) = v else { continue };
            match index.writers.get(&(key, v)) {
                None => found.add(AnomalyKind::GarbageRead, || Anomaly {
                    kind: AnomalyKind::GarbageRead,
                    key: Some(key),
                    txns: vec![TxnSummary::of(h, t)],
                    cycle: Vec::new(),
                    explanation: format!("T{t} read {v} at key {key}, which no transaction wrote"),
                }),
                Some(w) if w.txn == t => {}
                Some(w) => match h.txns[w.txn as usize].outcome {
                    Outcome::Aborted => found.add(AnomalyKind::G1a, || Anomaly {
                        kind: AnomalyKind::G1a,
                        key: Some(key),
                        txns: vec![TxnSummary::of(h, t), TxnSummary::of(h, w.txn)],
                        cycle: Vec::new(),
                        explanation: format!(
                            "T{t} read {v} at key {key}, written by T{}, which failed",
                            w.txn
                        ),
                    }),
                    _ => {
                        if !w.last {
                            found.add(AnomalyKind::G1b, || Anomaly {
                                kind: AnomalyKind::G1b,
                                key: Some(key),
                                txns: vec![TxnSummary::of(h, t), TxnSummary::of(h, w.txn)],
                                cycle: Vec::new(),
                                explanation: format!(
                                    "T{t} read {v} at key {key}, which T{} wrote but then overwrote",
                                    w.txn
                                ),
                            });
                        }
                        edges.add(w.txn, t, Rels::WR);
                    }
                },
            }
        }
    }

    // Cyclic version orders (writes-follow-reads pairs only; nil is always first).
    let mut cyclic: HashMap<i64, ()> = HashMap::default();
    let mut pairs: Vec<(i64, i64)> = index.successors.keys().copied().collect();
    pairs.sort_unstable();
    for &(key, a) in &pairs {
        if cyclic.contains_key(&key) {
            continue;
        }
        if reaches(&index.successors, key, a, a) {
            cyclic.insert(key, ());
            found.add(AnomalyKind::CyclicVersions, || Anomaly {
                kind: AnomalyKind::CyclicVersions,
                key: Some(key),
                txns: Vec::new(),
                cycle: Vec::new(),
                explanation: format!(
                    "the versions of key {key} that transactions read and then overwrote form a cycle through {a}"
                ),
            });
        }
    }

    let usable_writer = |key: i64, v: i64| {
        index
            .writers
            .get(&(key, v))
            .filter(|w| h.txns[w.txn as usize].outcome != Outcome::Aborted)
            .map(|w| w.txn)
    };
    // ww and rw from each known pair a < b.
    for &(key, a) in &pairs {
        if cyclic.contains_key(&key) {
            continue;
        }
        for &b in &index.successors[&(key, a)] {
            let Some(wb) = usable_writer(key, b) else {
                continue;
            };
            if let Some(wa) = usable_writer(key, a) {
                edges.add(wa, wb, Rels::WW);
            }
            if let Some(rs) = readers.get(&(key, Some(a))) {
                for &r in rs {
                    edges.add(r, wb, Rels::RW);
                }
            }
        }
    }
    // nil precedes every version: readers of nil anti-depend on every writer of the key.
    let mut nil_keys: Vec<i64> = readers
        .keys()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    nil_keys.sort_unstable();
    for key in nil_keys {
        let Some(values) = writes_of_key.get(&key) else {
            continue;
        };
        for &r in &readers[&(key, None)] {
            for &b in values {
                if let Some(wb) = usable_writer(key, b) {
                    edges.add(r, wb, Rels::RW);
                }
            }
        }
    }
    Ok(index)
}

fn show(v: Option<i64>) -> String {
    v.map_or_else(|| "nil".to_owned(), |v| v.to_string())
}

/// Whether `target` is reachable from `from`'s successors at `key`.
fn reaches(succ: &HashMap<(i64, i64), Vec<i64>>, key: i64, from: i64, target: i64) -> bool {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut todo = vec![from];
    while let Some(x) = todo.pop() {
        if let Some(next) = succ.get(&(key, x)) {
            for &n in next {
                if n == target {
                    return true;
                }
                if seen.insert(n) {
                    todo.push(n);
                }
            }
        }
    }
    false
}

/// A committed transaction's reads must return its own latest write to the key, or else
/// its own earlier read of it.
fn check_internal(h: &TxnHistory, t: TxnId, mops: &[MicroOp], found: &mut Collector) {
    for (i, m) in mops.iter().enumerate() {
        let MicroOp::ReadRegister {
            key,
            value: Some(v),
        } = *m
        else {
            continue;
        };
        let expected = mops[..i].iter().rev().find_map(|e| match *e {
            MicroOp::Write { key: k, value } if k == key => Some(Some(value)),
            MicroOp::ReadRegister {
                key: k,
                value: Some(r),
            } if k == key => Some(r),
            _ => None,
        });
        if let Some(expected) = expected {
            if expected != v {
                found.add(AnomalyKind::Internal, || Anomaly {
                    kind: AnomalyKind::Internal,
                    key: Some(key),
                    txns: vec![TxnSummary::of(h, t)],
                    cycle: Vec::new(),
                    explanation: format!(
                        "T{t} read {} at key {key}, but its own earlier operations say {}",
                        show(v),
                        show(expected)
                    ),
                });
                return;
            }
        }
    }
}

impl RwRegisterIndex {
    /// Why `from → to` has the dependency relations in `rels`.
    pub fn reasons(&self, h: &TxnHistory, from: TxnId, to: TxnId, rels: Rels) -> Vec<EdgeReason> {
        let mut out = Vec::new();
        let writer = |key: i64, v: i64| self.writers.get(&(key, v)).map(|w| w.txn);
        if rels.intersects(Rels::WR) {
            for (_, key, v) in external_reads(h.mops_of(to)) {
                if let Some(v) = v {
                    if writer(key, v) == Some(from) {
                        out.push(EdgeReason::Wr { key, value: v });
                        break;
                    }
                }
            }
        }
        let written: Vec<(i64, i64)> = h
            .mops_of(to)
            .iter()
            .filter_map(|m| match *m {
                MicroOp::Write { key, value } => Some((key, value)),
                _ => None,
            })
            .collect();
        if rels.intersects(Rels::WW) {
            'ww: for &(key, b) in &written {
                for m in h.mops_of(from) {
                    if let MicroOp::Write { key: k, value: a } = *m {
                        if k == key
                            && self
                                .successors
                                .get(&(key, a))
                                .is_some_and(|s| s.contains(&b))
                        {
                            out.push(EdgeReason::Ww {
                                key,
                                previous: Some(a),
                                value: b,
                            });
                            break 'ww;
                        }
                    }
                }
            }
        }
        if rels.intersects(Rels::RW) {
            'rw: for (_, key, read) in external_reads(h.mops_of(from)) {
                for &(k, b) in &written {
                    let follows = k == key
                        && match read {
                            None => true,
                            Some(a) => self
                                .successors
                                .get(&(key, a))
                                .is_some_and(|s| s.contains(&b)),
                        };
                    if follows {
                        out.push(EdgeReason::Rw {
                            key,
                            read,
                            value: b,
                        });
                        break 'rw;
                    }
                }
            }
        }
        out
    }
}
