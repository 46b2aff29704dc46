//! list-append: version orders from reads, non-cycle anomalies, and ww/wr/rw dependencies.
//!
//! Every appended value is unique per key, so a committed read of a key is a prefix of the
//! key's version order; the longest read of each key (duplicates dropped) is taken as the
//! known version order, and every other read must be a prefix of it (otherwise
//! `incompatible-order`; like Elle, the longest read still orders the key). Reads of a
//! transaction that contradicts itself (`internal`) do not order anything. Elements
//! appended but never read have no known position and give no edges.
//!
//! A transaction's *external* read of a key is its first read of that key, taken before it
//! appends to the key itself; only external reads give wr and rw edges (Elle's rule).

use super::anomaly::AnomalyKind;
use super::explain::{Anomaly, EdgeReason, TxnSummary};
use super::graph::{EdgeBuffer, Rels};
use super::transactions::{MicroOp, Outcome, TxnDataError, TxnHistory, TxnId};
use super::Collector;
use rustc_hash::FxHashMap as HashMap;

/// Who appended one element.
#[derive(Debug, Clone, Copy)]
struct Writer {
    txn: TxnId,
    /// Whether this was the transaction's last append to the key.
    last: bool,
    /// Whether the transaction failed (kept here: looking it up is a cache miss).
    aborted: bool,
    /// Position in the key's version order, `u32::MAX` when unknown.
    pos: u32,
}

/// What inference learned, kept to explain edges afterwards.
#[derive(Debug, Default)]
pub struct ListAppendIndex {
    writers: HashMap<(i64, i64), Writer>,
    /// The version order of each key read: its longest read, duplicates dropped.
    orders: HashMap<i64, KeyOrder>,
    /// Elements of each ordered key that no read contains, with their (not failed) writer:
    /// they were appended after every version read.
    unobserved: HashMap<i64, Vec<(i64, TxnId)>>,
}

/// One key's known version order and who wrote each element (`None`: nobody).
#[derive(Debug, Default)]
struct KeyOrder {
    elements: Vec<i64>,
    writers: Vec<Option<Writer>>,
}

/// The external read of each key by a committed transaction.
fn external_reads(mops: &[MicroOp]) -> impl Iterator<Item = (usize, i64, (u32, u32))> + '_ {
    mops.iter().enumerate().filter_map(move |(i, m)| match *m {
        MicroOp::ReadList {
            key,
            elements: Some(r),
        } => {
            let earlier = &mops[..i];
            let first = !earlier.iter().any(|e| e.key() == key);
            first.then_some((i, key, r))
        }
        _ => None,
    })
}

fn ok_txns(h: &TxnHistory) -> impl Iterator<Item = TxnId> + '_ {
    (0..h.txns.len() as TxnId).filter(|&t| h.txns[t as usize].outcome == Outcome::Committed)
}

pub fn infer(
    h: &TxnHistory,
    found: &mut Collector,
    edges: &mut EdgeBuffer,
) -> Result<ListAppendIndex, TxnDataError> {
    let mut index = ListAppendIndex::default();
    index.writers.reserve(h.mops.len());
    // Writers of every element, and whether each was its transaction's last to its key.
    for (t, txn) in h.txns.iter().enumerate() {
        let mops = h.mops_of(t as TxnId);
        for (i, m) in mops.iter().enumerate() {
            if let MicroOp::Append { key, value } = *m {
                let last = !mops[i + 1..]
                    .iter()
                    .any(|n| matches!(n, MicroOp::Append { key: k, .. } if *k == key));
                let w = Writer {
                    txn: t as TxnId,
                    last,
                    aborted: txn.outcome == Outcome::Aborted,
                    pos: u32::MAX,
                };
                if index.writers.insert((key, value), w).is_some() {
                    return Err(TxnDataError {
                        index: txn.invoke_index,
                        field: Some("value".to_owned()),
                        expected: format!(
                            "each value appended to a key once (list-append); {value} is appended to key {key} twice"
                        ),
                        found: None,
                    });
                }
            }
        }
    }

    // Duplicates, internal consistency, and the longest read of each key.
    let mut longest: HashMap<i64, ((u32, u32), usize)> = HashMap::default();
    let mut duplicated: rustc_hash::FxHashSet<(u32, u32)> = Default::default();
    for t in ok_txns(h) {
        let mops = h.mops_of(t);
        if !check_internal(h, t, mops, found) {
            continue;
        }
        for m in mops {
            let MicroOp::ReadList {
                key,
                elements: Some(r),
            } = *m
            else {
                continue;
            };
            let list = h.list(r);
            let mut length = list.len();
            if let Some(dup) = first_duplicate(list) {
                duplicated.insert(r);
                length = dedup(list).len();
                found.add(AnomalyKind::DuplicateElements, || Anomaly {
                    kind: AnomalyKind::DuplicateElements,
                    key: Some(key),
                    txns: vec![TxnSummary::of(h, t)],
                    cycle: Vec::new(),
                    explanation: format!("T{t} read key {key} holding {dup} more than once"),
                });
            }
            let e = longest.entry(key).or_insert((r, length));
            if length > e.1 {
                *e = (r, length);
            }
        }
    }

    for (key, (r, _)) in longest {
        index.orders.insert(
            key,
            KeyOrder {
                elements: if duplicated.contains(&r) {
                    dedup(h.list(r))
                } else {
                    h.list(r).to_vec()
                },
                writers: Vec::new(),
            },
        );
    }
    // Every read must be a prefix of the longest.
    let mut incompatible: HashMap<i64, ()> = HashMap::default();
    for t in ok_txns(h) {
        for m in h.mops_of(t) {
            let MicroOp::ReadList {
                key,
                elements: Some(r),
            } = *m
            else {
                continue;
            };
            let Some(order) = index.orders.get(&key).map(|o| &o.elements) else {
                continue;
            };
            let a = h.list(r);
            let compatible = if duplicated.contains(&r) {
                order.starts_with(&dedup(a))
            } else {
                order.starts_with(a)
            };
            if !compatible && incompatible.insert(key, ()).is_none() {
                found.add(AnomalyKind::IncompatibleOrder, || Anomaly {
                    kind: AnomalyKind::IncompatibleOrder,
                    key: Some(key),
                    txns: vec![TxnSummary::of(h, t)],
                    cycle: Vec::new(),
                    explanation: format!(
                        "T{t} read key {key} as {a:?}, which is not a prefix of {order:?}, read by another transaction"
                    ),
                });
            }
        }
    }

    // Garbage, aborted and dirty elements in each version order, and ww edges.
    let mut first_aborted: HashMap<i64, (usize, TxnId)> = HashMap::default();
    let mut keys: Vec<i64> = index.orders.keys().copied().collect();
    keys.sort_unstable();
    for &key in &keys {
        let order = std::mem::take(&mut index.orders.get_mut(&key).unwrap().elements);
        let mut order_writers: Vec<Option<Writer>> = Vec::with_capacity(order.len());
        let mut previous: Option<TxnId> = None;
        let mut aborted_seen: Option<TxnId> = None;
        for (pos, &e) in order.iter().enumerate() {
            let Some(w) = index.writers.get_mut(&(key, e)) else {
                order_writers.push(None);
                found.add(AnomalyKind::GarbageRead, || Anomaly {
                    kind: AnomalyKind::GarbageRead,
                    key: Some(key),
                    txns: Vec::new(),
                    cycle: Vec::new(),
                    explanation: format!(
                        "key {key} was read holding {e}, which no transaction appended"
                    ),
                });
                previous = None;
                continue;
            };
            w.pos = pos as u32;
            let w = *w;
            order_writers.push(Some(w));
            if w.aborted {
                first_aborted.entry(key).or_insert((pos, w.txn));
                aborted_seen.get_or_insert(w.txn);
                previous = None;
                continue;
            }
            if let Some(a) = aborted_seen.take() {
                found.add(AnomalyKind::DirtyUpdate, || Anomaly {
                    kind: AnomalyKind::DirtyUpdate,
                    key: Some(key),
                    txns: vec![TxnSummary::of(h, a), TxnSummary::of(h, w.txn)],
                    cycle: Vec::new(),
                    explanation: format!(
                        "at key {key}, T{} appended {e} after the value of failed T{a}",
                        w.txn
                    ),
                });
            }
            if let Some(p) = previous {
                edges.add(p, w.txn, Rels::WW);
            }
            previous = Some(w.txn);
        }
        let o = index.orders.get_mut(&key).unwrap();
        o.elements = order;
        o.writers = order_writers;
    }

    // Elements nobody read come after the whole known order: ww from the writer of its
    // last element.
    for (&(key, value), w) in &index.writers {
        if w.pos == u32::MAX && !w.aborted && index.orders.contains_key(&key) {
            index
                .unobserved
                .entry(key)
                .or_default()
                .push((value, w.txn));
        }
    }
    for (key, list) in index.unobserved.iter_mut() {
        list.sort_unstable();
        let last_writer = index.orders[key]
            .elements
            .last()
            .and_then(|e| index.writers.get(&(*key, *e)))
            .filter(|w| !w.aborted);
        if let Some(lw) = last_writer {
            for &(_, t) in list.iter() {
                edges.add(lw.txn, t, Rels::WW);
            }
        }
    }

    // Per committed read: aborted reads, intermediate reads, wr and rw edges, lost updates.
    let mut read_then_appended: HashMap<(i64, u32), TxnId> = HashMap::default();
    for t in ok_txns(h) {
        let mops = h.mops_of(t);
        for (i, key, r) in external_reads(mops) {
            let list = h.list(r);
            let len = list.len();
            if let Some(&(pos, aborted)) = first_aborted.get(&key) {
                if len > pos {
                    found.add(AnomalyKind::G1a, || Anomaly {
                        kind: AnomalyKind::G1a,
                        key: Some(key),
                        txns: vec![TxnSummary::of(h, t), TxnSummary::of(h, aborted)],
                        cycle: Vec::new(),
                        explanation: format!(
                            "T{t} read {} at key {key}, appended by T{aborted}, which failed",
                            index.orders[&key].elements[pos]
                        ),
                    });
                }
            }
            let key_order = index.orders.get(&key);
            // A read that is a prefix of the order: its elements' writers are known by
            // position, without looking each up.
            let prefix =
                key_order.filter(|_| !incompatible.contains_key(&key) && !duplicated.contains(&r));
            if let Some(&last) = list.last() {
                let last_writer = match prefix {
                    Some(o) => o.writers[len - 1],
                    None => index.writers.get(&(key, last)).copied(),
                };
                if let Some(w) = last_writer {
                    if w.txn != t {
                        match w.aborted {
                            true => {
                                if !first_aborted.contains_key(&key) {
                                    // An aborted element in a key without a usable order.
                                    found.add(AnomalyKind::G1a, || Anomaly {
                                        kind: AnomalyKind::G1a,
                                        key: Some(key),
                                        txns: vec![
                                            TxnSummary::of(h, t),
                                            TxnSummary::of(h, w.txn),
                                        ],
                                        cycle: Vec::new(),
                                        explanation: format!(
                                            "T{t} read {last} at key {key}, appended by T{}, which failed",
                                            w.txn
                                        ),
                                    });
                                }
                            }
                            false => {
                                if !w.last {
                                    found.add(AnomalyKind::G1b, || Anomaly {
                                        kind: AnomalyKind::G1b,
                                        key: Some(key),
                                        txns: vec![
                                            TxnSummary::of(h, t),
                                            TxnSummary::of(h, w.txn),
                                        ],
                                        cycle: Vec::new(),
                                        explanation: format!(
                                            "T{t} read key {key} ending in {last}, which T{} appended but then appended again to the same key",
                                            w.txn
                                        ),
                                    });
                                }
                                edges.add(w.txn, t, Rels::WR);
                            }
                        }
                    }
                }
            }
            if let Some(key_order) = key_order {
                let order = &key_order.elements;
                // The version after the last element read (the first, after an empty read).
                let next_pos = match (list.last(), prefix) {
                    (None, _) => Some(0),
                    (Some(_), Some(_)) => Some(len),
                    (Some(last), None) => index
                        .writers
                        .get(&(key, *last))
                        .filter(|w| w.pos != u32::MAX)
                        .map(|w| w.pos as usize + 1),
                };
                if let Some(p) = next_pos.filter(|&p| p < order.len()) {
                    if let Some(w) = key_order.writers[p] {
                        if !w.aborted {
                            edges.add(t, w.txn, Rels::RW);
                        }
                    }
                } else if next_pos == Some(order.len()) {
                    // Saw the whole known order: every unread element came later.
                    for &(_, w) in index.unobserved.get(&key).map_or(&[][..], |v| v) {
                        edges.add(t, w, Rels::RW);
                    }
                }
                let appends_later = mops[i + 1..]
                    .iter()
                    .any(|m| matches!(m, MicroOp::Append { key: k, .. } if *k == key));
                if appends_later && !incompatible.contains_key(&key) {
                    if let Some(&other) = read_then_appended.get(&(key, len as u32)) {
                        found.add(AnomalyKind::LostUpdate, || Anomaly {
                            kind: AnomalyKind::LostUpdate,
                            key: Some(key),
                            txns: vec![TxnSummary::of(h, other), TxnSummary::of(h, t)],
                            cycle: Vec::new(),
                            explanation: format!(
                                "T{other} and T{t} both read key {key} at the same version ({len} elements) and both appended to it"
                            ),
                        });
                    } else {
                        read_then_appended.insert((key, len as u32), t);
                    }
                }
            }
        }
    }
    Ok(index)
}

/// The list without repeated elements (first occurrences kept).
fn dedup(list: &[i64]) -> Vec<i64> {
    let mut seen = rustc_hash::FxHashSet::default();
    list.iter().copied().filter(|e| seen.insert(*e)).collect()
}

fn first_duplicate(list: &[i64]) -> Option<i64> {
    if list.len() <= 32 {
        for i in 1..list.len() {
            if list[..i].contains(&list[i]) {
                return Some(list[i]);
            }
        }
        None
    } else {
        let mut seen = rustc_hash::FxHashSet::default();
        list.iter().copied().find(|e| !seen.insert(*e))
    }
}

/// A committed transaction's reads must agree with what it read and appended before:
/// after a read, the key holds that read plus the transaction's later appends; after
/// appends alone, the key ends with them. Returns whether the transaction is consistent.
fn check_internal(h: &TxnHistory, t: TxnId, mops: &[MicroOp], found: &mut Collector) -> bool {
    for (i, m) in mops.iter().enumerate() {
        let MicroOp::ReadList {
            key,
            elements: Some(r),
        } = *m
        else {
            continue;
        };
        // What earlier micro-ops of this transaction say the key holds.
        let mut known: Option<Vec<i64>> = None;
        let mut suffix: Vec<i64> = Vec::new();
        for e in &mops[..i] {
            match *e {
                MicroOp::ReadList {
                    key: k,
                    elements: Some(er),
                } if k == key => {
                    known = Some(h.list(er).to_vec());
                    suffix.clear();
                }
                MicroOp::Append { key: k, value } if k == key => match known.as_mut() {
                    Some(list) => list.push(value),
                    None => suffix.push(value),
                },
                _ => {}
            }
        }
        let list = h.list(r);
        let ok = match &known {
            Some(expected) => list == expected.as_slice(),
            None => list.ends_with(&suffix),
        };
        if !ok {
            let expected = match &known {
                Some(e) => format!("{e:?}"),
                None => format!("a list ending in {suffix:?}"),
            };
            found.add(AnomalyKind::Internal, || Anomaly {
                kind: AnomalyKind::Internal,
                key: Some(key),
                txns: vec![TxnSummary::of(h, t)],
                cycle: Vec::new(),
                explanation: format!(
                    "T{t} read key {key} as {list:?}, but its own earlier operations say {expected}"
                ),
            });
            return false;
        }
    }
    true
}

impl ListAppendIndex {
    /// Why `from → to` has the dependency relations in `rels`.
    pub fn reasons(&self, h: &TxnHistory, from: TxnId, to: TxnId, rels: Rels) -> Vec<EdgeReason> {
        let mut out = Vec::new();
        let writer = |key: i64, e: i64| self.writers.get(&(key, e)).map(|w| w.txn);
        if rels.intersects(Rels::WW) {
            'ww: for m in h.mops_of(to) {
                if let MicroOp::Append { key, value } = *m {
                    if let Some(order) = self.orders.get(&key).map(|o| &o.elements) {
                        let previous = match order.iter().position(|&e| e == value) {
                            Some(p) if p > 0 => Some(order[p - 1]),
                            Some(_) => None,
                            // Never read: after the last element read.
                            None => order.last().copied(),
                        };
                        if let Some(previous) = previous {
                            if writer(key, previous) == Some(from) {
                                out.push(EdgeReason::Ww {
                                    key,
                                    previous: Some(previous),
                                    value,
                                });
                                break 'ww;
                            }
                        }
                    }
                }
            }
        }
        if rels.intersects(Rels::WR) {
            for (_, key, r) in external_reads(h.mops_of(to)) {
                if let Some(&last) = h.list(r).last() {
                    if writer(key, last) == Some(from) {
                        out.push(EdgeReason::Wr { key, value: last });
                        break;
                    }
                }
            }
        }
        if rels.intersects(Rels::RW) {
            for (_, key, r) in external_reads(h.mops_of(from)) {
                let Some(order) = self.orders.get(&key).map(|o| &o.elements) else {
                    continue;
                };
                let list = h.list(r);
                let next_pos = match list.last() {
                    None => Some(0),
                    Some(last) => order.iter().position(|e| e == last).map(|p| p + 1),
                };
                let next = match next_pos {
                    Some(p) if p < order.len() => {
                        Some(order[p]).filter(|&e| writer(key, e) == Some(to))
                    }
                    Some(_) => self
                        .unobserved
                        .get(&key)
                        .and_then(|u| u.iter().find(|&&(_, w)| w == to))
                        .map(|&(e, _)| e),
                    None => None,
                };
                if let Some(next) = next {
                    out.push(EdgeReason::Rw {
                        key,
                        read: list.last().copied(),
                        value: next,
                    });
                    break;
                }
            }
        }
        out
    }
}
