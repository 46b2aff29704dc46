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

/// Dense ids of the keys of a history, so that what is kept per key is a vector indexed
/// by id rather than a hash table: one hash lookup per micro-operation, at the start.
#[derive(Debug, Default)]
struct Keys {
    ids: HashMap<i64, u32>,
    /// The key of each id.
    keys: Vec<i64>,
    /// The key id of each micro-operation of the history, in [`TxnHistory::mops`] order.
    of_mop: Vec<u32>,
}

impl Keys {
    fn new(h: &TxnHistory) -> Keys {
        let mut k = Keys {
            ids: HashMap::default(),
            keys: Vec::new(),
            of_mop: Vec::with_capacity(h.mops.len()),
        };
        for m in &h.mops {
            let key = m.key();
            let next = k.keys.len() as u32;
            let id = *k.ids.entry(key).or_insert(next);
            if id == next {
                k.keys.push(key);
            }
            k.of_mop.push(id);
        }
        k
    }
    fn len(&self) -> usize {
        self.keys.len()
    }
    /// The key ids of transaction `t`'s micro-operations.
    fn of(&self, h: &TxnHistory, t: TxnId) -> &[u32] {
        let (a, b) = h.txns[t as usize].mops;
        &self.of_mop[a as usize..b as usize]
    }
}

/// The writer of every appended element, grouped by key id and sorted by element within a
/// key: a lookup is a search among the few elements of one key, near each other in
/// memory, rather than a hash lookup in a table of every element of the history.
#[derive(Debug, Default)]
struct Writers {
    /// The elements of key id `k` are `entries[starts[k]..starts[k + 1]]`.
    starts: Vec<u32>,
    entries: Vec<(i64, Writer)>,
}

impl Writers {
    /// The entries of key id `key`.
    fn of(&self, key: u32) -> &[(i64, Writer)] {
        &self.entries[self.starts[key as usize] as usize..self.starts[key as usize + 1] as usize]
    }
    /// The position in `entries` of `value`'s writer at key id `key`.
    fn find(&self, key: u32, value: i64) -> Option<usize> {
        let of = self.of(key);
        let at = if of.len() <= 16 {
            of.iter().position(|&(v, _)| v == value)
        } else {
            of.binary_search_by_key(&value, |&(v, _)| v).ok()
        };
        at.map(|i| self.starts[key as usize] as usize + i)
    }
    fn get(&self, key: u32, value: i64) -> Option<Writer> {
        self.find(key, value).map(|i| self.entries[i].1)
    }
}

/// What inference learned, kept to explain edges afterwards.
#[derive(Debug, Default)]
pub struct ListAppendIndex {
    keys: Keys,
    writers: Writers,
    /// The version order of each key id read: its longest read, duplicates dropped.
    orders: Vec<Option<KeyOrder>>,
    /// Elements of each ordered key that no read contains, with their (not failed) writer:
    /// they were appended after every version read. Sorted by element.
    unobserved: Vec<Vec<(i64, TxnId)>>,
}

impl ListAppendIndex {
    fn id(&self, key: i64) -> Option<u32> {
        self.keys.ids.get(&key).copied()
    }
    fn order(&self, key: i64) -> Option<&[i64]> {
        let id = self.id(key)?;
        self.orders[id as usize].as_ref().map(|o| &o.elements[..])
    }
    fn writer(&self, key: i64, value: i64) -> Option<TxnId> {
        self.writers.get(self.id(key)?, value).map(|w| w.txn)
    }
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

/// The writers of every element, and whether each was its transaction's last to its key;
/// an element appended twice to a key is bad data (the first repeat in history order).
fn writers(h: &TxnHistory, keys: &Keys) -> Result<Writers, TxnDataError> {
    let mut starts = vec![0u32; keys.len() + 1];
    for (m, &k) in h.mops.iter().zip(&keys.of_mop) {
        if let MicroOp::Append { .. } = m {
            starts[k as usize + 1] += 1;
        }
    }
    for k in 0..keys.len() {
        starts[k + 1] += starts[k];
    }
    let appends = starts[keys.len()] as usize;
    let mut cursor: Vec<u32> = starts[..keys.len()].to_vec();
    let unset = Writer {
        txn: 0,
        last: false,
        aborted: false,
        pos: u32::MAX,
    };
    // Each entry with its rank in history order, to name the first repeat.
    let mut entries = vec![((0i64, unset), 0u32); appends];
    let mut rank = 0u32;
    for (t, txn) in h.txns.iter().enumerate() {
        let mops = h.mops_of(t as TxnId);
        let ids = keys.of(h, t as TxnId);
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
                let c = &mut cursor[ids[i] as usize];
                entries[*c as usize] = ((value, w), rank);
                *c += 1;
                rank += 1;
            }
        }
    }
    drop(cursor);
    // Sorted by element within each key; a stable sort keeps repeats in history order.
    let mut first_repeat: Option<(u32, i64, i64, TxnId)> = None;
    for k in 0..keys.len() {
        let slice = &mut entries[starts[k] as usize..starts[k + 1] as usize];
        slice.sort_by_key(|&((v, _), _)| v);
        for pair in slice.windows(2) {
            let (((v, _), _), ((u, w), r)) = (pair[0], pair[1]);
            if v == u && first_repeat.is_none_or(|(best, ..)| r < best) {
                first_repeat = Some((r, keys.keys[k], v, w.txn));
            }
        }
    }
    if let Some((_, key, value, t)) = first_repeat {
        return Err(TxnDataError {
            index: h.txns[t as usize].invoke_index,
            field: Some("value".to_owned()),
            expected: format!(
                "each value appended to a key once (list-append); {value} is appended to key {key} twice"
            ),
            found: None,
        });
    }
    Ok(Writers {
        starts,
        entries: entries.into_iter().map(|(e, _)| e).collect(),
    })
}

pub fn infer(
    h: &TxnHistory,
    found: &mut Collector,
    edges: &mut EdgeBuffer,
) -> Result<ListAppendIndex, TxnDataError> {
    let keys = Keys::new(h);
    let writers = writers(h, &keys)?;
    let nkeys = keys.len();
    let mut index = ListAppendIndex {
        orders: (0..nkeys).map(|_| None).collect(),
        unobserved: (0..nkeys).map(|_| Vec::new()).collect(),
        keys,
        writers,
    };

    // Duplicates, internal consistency, and the longest read of each key.
    let mut longest: Vec<Option<((u32, u32), usize)>> = vec![None; nkeys];
    let mut duplicated: rustc_hash::FxHashSet<(u32, u32)> = Default::default();
    for t in ok_txns(h) {
        let mops = h.mops_of(t);
        if !check_internal(h, t, mops, found) {
            continue;
        }
        for (m, &id) in mops.iter().zip(index.keys.of(h, t)) {
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
            let e = longest[id as usize].get_or_insert((r, length));
            if length > e.1 {
                *e = (r, length);
            }
        }
    }
    let is_duplicated = |r: &(u32, u32)| !duplicated.is_empty() && duplicated.contains(r);

    for (id, l) in longest.iter().enumerate() {
        if let Some((r, _)) = *l {
            index.orders[id] = Some(KeyOrder {
                elements: if is_duplicated(&r) {
                    dedup(h.list(r))
                } else {
                    h.list(r).to_vec()
                },
                writers: Vec::new(),
            });
        }
    }
    drop(longest);
    // Every read must be a prefix of the longest.
    let mut incompatible = vec![false; nkeys];
    for t in ok_txns(h) {
        for (m, &id) in h.mops_of(t).iter().zip(index.keys.of(h, t)) {
            let MicroOp::ReadList {
                key,
                elements: Some(r),
            } = *m
            else {
                continue;
            };
            let Some(order) = index.orders[id as usize].as_ref().map(|o| &o.elements) else {
                continue;
            };
            let a = h.list(r);
            let compatible = if is_duplicated(&r) {
                order.starts_with(&dedup(a))
            } else {
                order.starts_with(a)
            };
            if !compatible && !incompatible[id as usize] {
                incompatible[id as usize] = true;
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

    // Garbage, aborted and dirty elements in each version order, and ww edges; keys in
    // order, so that the examples kept do not depend on the ids.
    let mut first_aborted: Vec<Option<(usize, TxnId)>> = vec![None; nkeys];
    let mut ordered: Vec<u32> = (0..nkeys as u32)
        .filter(|&id| index.orders[id as usize].is_some())
        .collect();
    ordered.sort_unstable_by_key(|&id| index.keys.keys[id as usize]);
    for &id in &ordered {
        let key = index.keys.keys[id as usize];
        let o = index.orders[id as usize].as_mut().expect("an ordered key");
        let order = std::mem::take(&mut o.elements);
        let mut order_writers: Vec<Option<Writer>> = Vec::with_capacity(order.len());
        let mut previous: Option<TxnId> = None;
        let mut aborted_seen: Option<TxnId> = None;
        for (pos, &e) in order.iter().enumerate() {
            let Some(at) = index.writers.find(id, e) else {
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
            let w = &mut index.writers.entries[at].1;
            w.pos = pos as u32;
            let w = *w;
            order_writers.push(Some(w));
            if w.aborted {
                first_aborted[id as usize].get_or_insert((pos, w.txn));
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
        let o = index.orders[id as usize].as_mut().expect("an ordered key");
        o.elements = order;
        o.writers = order_writers;
    }

    // Elements nobody read come after the whole known order: ww from the writer of its
    // last element.
    for &id in &ordered {
        let mut unobserved: Vec<(i64, TxnId)> = index
            .writers
            .of(id)
            .iter()
            .filter(|(_, w)| w.pos == u32::MAX && !w.aborted)
            .map(|&(value, w)| (value, w.txn))
            .collect();
        if unobserved.is_empty() {
            continue;
        }
        unobserved.sort_unstable();
        let last_writer = index.orders[id as usize]
            .as_ref()
            .and_then(|o| o.elements.last())
            .and_then(|&e| index.writers.get(id, e))
            .filter(|w| !w.aborted);
        if let Some(lw) = last_writer {
            for &(_, t) in &unobserved {
                edges.add(lw.txn, t, Rels::WW);
            }
        }
        index.unobserved[id as usize] = unobserved;
    }

    // Per committed read: aborted reads, intermediate reads, wr and rw edges, lost updates.
    let mut read_then_appended: HashMap<(u32, u32), TxnId> = HashMap::default();
    for t in ok_txns(h) {
        let mops = h.mops_of(t);
        let ids = index.keys.of(h, t);
        for (i, key, r) in external_reads(mops) {
            let id = ids[i];
            let list = h.list(r);
            let len = list.len();
            if let Some((pos, aborted)) = first_aborted[id as usize] {
                if len > pos {
                    found.add(AnomalyKind::G1a, || Anomaly {
                        kind: AnomalyKind::G1a,
                        key: Some(key),
                        txns: vec![TxnSummary::of(h, t), TxnSummary::of(h, aborted)],
                        cycle: Vec::new(),
                        explanation: format!(
                            "T{t} read {} at key {key}, appended by T{aborted}, which failed",
                            index.orders[id as usize]
                                .as_ref()
                                .expect("an ordered key")
                                .elements[pos]
                        ),
                    });
                }
            }
            let key_order = index.orders[id as usize].as_ref();
            // A read that is a prefix of the order: its elements' writers are known by
            // position, without looking each up.
            let prefix = key_order.filter(|_| !incompatible[id as usize] && !is_duplicated(&r));
            if let Some(&last) = list.last() {
                let last_writer = match prefix {
                    Some(o) => o.writers[len - 1],
                    None => index.writers.get(id, last),
                };
                if let Some(w) = last_writer {
                    if w.txn != t {
                        match w.aborted {
                            true => {
                                if first_aborted[id as usize].is_none() {
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
                        .get(id, *last)
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
                    for &(_, w) in &index.unobserved[id as usize] {
                        edges.add(t, w, Rels::RW);
                    }
                }
                let appends_later = mops[i + 1..]
                    .iter()
                    .any(|m| matches!(m, MicroOp::Append { key: k, .. } if *k == key));
                if appends_later && !incompatible[id as usize] {
                    if let Some(&other) = read_then_appended.get(&(id, len as u32)) {
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
                        read_then_appended.insert((id, len as u32), t);
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
        let writer = |key: i64, e: i64| self.writer(key, e);
        if rels.intersects(Rels::WW) {
            'ww: for m in h.mops_of(to) {
                if let MicroOp::Append { key, value } = *m {
                    if let Some(order) = self.order(key) {
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
                let Some(order) = self.order(key) else {
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
                        .id(key)
                        .and_then(|id| self.unobserved[id as usize].iter().find(|&&(_, w)| w == to))
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
