//! Process and real-time order between transactions.
//!
//! * process: consecutive transactions of one process (failed ones skipped), the earlier
//!   committed;
//! * realtime: `a → b` when `a` committed (`ok`) before `b` was invoked. Only a transitive
//!   reduction's worth is added: each invocation links from the *frontier*, the committed
//!   transactions not yet known to precede another committed one, so the edge count stays
//!   near transactions × concurrency.
//!
//! Indeterminate transactions may be targets (if they took effect, it was after their
//! invocation) but never sources. Failed transactions take no part.

use super::graph::{EdgeBuffer, Rels};
use super::transactions::{Outcome, TxnHistory, TxnId};
use rustc_hash::FxHashMap as HashMap;

pub fn process_edges(h: &TxnHistory, edges: &mut EdgeBuffer) {
    let mut last: HashMap<u64, TxnId> = HashMap::default();
    for (t, txn) in h.txns.iter().enumerate() {
        if txn.outcome == Outcome::Aborted {
            continue;
        }
        if let Some(prev) = last.insert(txn.process, t as TxnId) {
            edges.add(prev, t as TxnId, Rels::PROCESS);
        }
    }
}

pub fn realtime_edges(h: &TxnHistory, edges: &mut EdgeBuffer) {
    let mut frontier: Vec<TxnId> = Vec::new();
    // For each transaction, the frontier members that precede it (a range in `preds`).
    let mut pred_range: Vec<(u32, u32)> = vec![(0, 0); h.txns.len()];
    let mut preds: Vec<TxnId> = Vec::new();
    let mut stamp: Vec<TxnId> = vec![TxnId::MAX; h.txns.len()];
    for &(_, t, is_invoke) in &h.timeline {
        let txn = &h.txns[t as usize];
        if txn.outcome == Outcome::Aborted {
            continue;
        }
        if is_invoke {
            let start = preds.len() as u32;
            for &f in &frontier {
                edges.add(f, t, Rels::REALTIME);
                preds.push(f);
            }
            pred_range[t as usize] = (start, preds.len() as u32);
        } else {
            // Committed: everything that preceded it is now covered by it.
            let (a, b) = pred_range[t as usize];
            for &p in &preds[a as usize..b as usize] {
                stamp[p as usize] = t;
            }
            frontier.retain(|&f| stamp[f as usize] != t);
            frontier.push(t);
        }
    }
}
