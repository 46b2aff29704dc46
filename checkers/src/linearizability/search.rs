//! The Wing–Gong/Lowe search over one key's operations.
//!
//! Operations that must be linearized (`ok`, and failed cas read as observations) sit in a
//! doubly linked list of call and return entries in real-time order; indeterminate ones sit
//! in a second list of call entries only (they have no return: nothing has to wait for them).
//! The candidates at a configuration are the calls before the first return entry — first the
//! ones of the main list, then the indeterminate ones invoked before that return. Taking a
//! candidate applies it to the model, lifts it out of its list and restarts from the head;
//! reaching that first return means the operation returning there cannot be placed, and the
//! search backtracks.
//!
//! # Memo and pruning
//!
//! Every configuration entered is recorded in a memo keyed by a hash of (set of linearized
//! `ok` operations, model state). The set's part of the hash is a Zobrist hash, updated in
//! O(1) per step. A hash hit is only a hint: an entry counts only after its full set and state
//! compare equal, so a collision can never prune a configuration that was not seen.
//!
//! A configuration is stored compactly: the number `prefix` of leading `ok` operations (in
//! call order) that are all linearized, the bit window above it, and the bit set of
//! linearized indeterminate operations. The window ends where the first unlinearized
//! operation returns: every linearized operation was a candidate while that operation was
//! still unlinearized, so its call precedes that return. Two configurations with equal
//! prefixes therefore have equal window lengths, and the window holds every other bit.
//!
//! **Dominance of indeterminate operations.** A configuration (C, I, s) — C the linearized
//! `ok` operations, I the linearized indeterminate ones, s the state — is pruned when the
//! memo holds (C, I', s) with I' ⊆ I. Soundness: any sequence that completes (C, I, s) also
//! completes (C, I', s): it uses only operations outside I ⊇ I', the state is the same, and
//! the real-time constraints depend on C alone (indeterminate operations return nowhere, so
//! nothing waits for them). Suppose the search ended without success although some
//! completable configuration was entered; among those with the largest |C| pick one whose
//! completion puts the fewest indeterminate operations before the next `ok` one. Walking
//! that completion, the first configuration not entered was pruned by an entered one that
//! dominates it, hence is completable with the same C and fewer leading indeterminate
//! operations, or a larger C — contradicting the choice. Equal (C, I, s) is the special case
//! I' = I, the classic memo.
//!
//! **Stop at the last `ok` operation.** The search succeeds as soon as every operation of
//! the main list is linearized: indeterminate operations may never take effect, so the ones
//! left over are simply not linearized. They are never pushed to the end of the history.

use crate::models::{Model, StateId};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchOp<O> {
    /// Position of the invocation in real-time order.
    pub call: u64,
    /// Position of the completion (`u64::MAX` for indeterminate operations).
    pub ret: u64,
    pub op: O,
    /// Caller's id of the operation, reported back in counterexamples.
    pub origin: u32,
}

/// One key's operations, each list sorted by call position.
#[derive(Debug)]
pub(crate) struct KeyOps<O> {
    /// Operations that must be linearized within their interval.
    pub required: Vec<SearchOp<O>>,
    /// Operations that may be linearized once after their call, or never.
    pub optional: Vec<SearchOp<O>>,
}

/// How hashes are made. `Constant` gives every configuration the same hash, which makes
/// every look-up a collision: tests use it to show that hits are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashMode {
    Zobrist,
    #[cfg_attr(not(test), allow(dead_code))]
    Constant,
}

/// What may stop a search before it decides.
#[derive(Debug)]
pub(crate) struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub memory_budget: Option<u64>,
    /// Estimated bytes held by all searches running now (shared by parallel searches).
    pub memory_in_use: &'a AtomicU64,
    /// Set when the check's verdict is already decided (another key is invalid).
    pub cancel: &'a AtomicBool,
    pub hash_mode: HashMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopCause {
    TimeLimit,
    MemoryBudget,
    Cancelled,
}

/// Where an invalid search got stuck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blocked {
    /// The operation whose return the search could not get past, at the deepest point.
    pub op: u32,
    /// The linearization reaching that point (origins, in order).
    pub prefix: Vec<u32>,
    /// Model states seen there (distinct, at most [`MAX_STATES`]).
    pub states: Vec<StateId>,
}

const MAX_STATES: usize = 16;

#[derive(Debug)]
pub(crate) enum SearchOutcome {
    Valid,
    Invalid(Blocked),
    Stopped(StopCause),
}

#[derive(Debug)]
pub(crate) struct SearchReport {
    pub outcome: SearchOutcome,
    /// Configurations entered (memo entries).
    pub configurations: u64,
    /// Estimated peak bytes of the memo.
    pub memory: u64,
}

const NONE: u32 = u32::MAX;
/// Steps between two looks at the clock and the cancel flag.
const CHECK_EVERY: u64 = 1 << 10;

#[derive(Debug, Clone, Copy)]
struct MemoEntry {
    next: u32,
    state: StateId,
    prefix: u32,
    offset: usize,
}

/// Configurations entered so far, chained per hash.
struct Memo {
    heads: FxHashMap<u64, u32>,
    entries: Vec<MemoEntry>,
    words: Vec<u64>,
}

impl Memo {
    /// Bytes one entry costs besides its words: the entry and its hash-table slot.
    const ENTRY_BYTES: u64 = (std::mem::size_of::<MemoEntry>() + 16) as u64;

    /// Records the configuration unless a recorded one with the same `ok` set and state and
    /// a subset of its indeterminate operations dominates it; true when recorded.
    fn insert_unless_dominated(
        &mut self,
        hash: u64,
        state: StateId,
        prefix: u32,
        window: &[u64],
        optional: &[u64],
    ) -> bool {
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut at = head;
        while at != NONE {
            let entry = self.entries[at as usize];
            // Equal prefixes imply equal window lengths, so the slices line up.
            if entry.state == state && entry.prefix == prefix {
                let stored =
                    &self.words[entry.offset..entry.offset + window.len() + optional.len()];
                let (stored_window, stored_optional) = stored.split_at(window.len());
                if stored_window == window
                    && stored_optional
                        .iter()
                        .zip(optional)
                        .all(|(seen, now)| seen & !now == 0)
                {
                    return false;
                }
            }
            at = entry.next;
        }
        let id = u32::try_from(self.entries.len()).expect("fewer than 2^32 configurations");
        self.entries.push(MemoEntry {
            next: head,
            state,
            prefix,
            offset: self.words.len(),
        });
        self.words.extend_from_slice(window);
        self.words.extend_from_slice(optional);
        self.heads.insert(hash, id);
        true
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The first clear bit at or after `from` (or `limit` when there is none below it).
fn next_clear(bits: &[u64], from: usize, limit: usize) -> usize {
    let mut w = from / 64;
    if w >= bits.len() {
        return limit;
    }
    let mut word = bits[w] | ((1u64 << (from % 64)) - 1);
    loop {
        if word != u64::MAX {
            return (w * 64 + (!word).trailing_zeros() as usize).min(limit);
        }
        w += 1;
        if w == bits.len() {
            return limit;
        }
        word = bits[w];
    }
}

#[derive(Debug, Clone, Copy)]
enum Cursor {
    /// Scanning the main list at this entry.
    Main(u32),
    /// Scanning optional operations at `at`: candidates are those invoked before `limit`,
    /// the return position of required operation `blocked`.
    Optional { at: u32, limit: u64, blocked: u32 },
}

#[derive(Debug, Clone, Copy)]
enum Chosen {
    Required(u32),
    Optional { at: u32, limit: u64, blocked: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    chosen: Chosen,
    previous_state: StateId,
}

/// A doubly linked list over entry ids, with a sentinel; entries are lifted out and put back
/// in reverse order (dancing links).
struct Links {
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Links {
    /// Links `order` (entry ids) in sequence; the sentinel is `order.len()`.
    fn new(order: impl Iterator<Item = u32>, len: usize) -> Links {
        let sentinel = len as u32;
        let mut next = vec![sentinel; len + 1];
        let mut prev = vec![sentinel; len + 1];
        let mut last = sentinel;
        for e in order {
            next[last as usize] = e;
            prev[e as usize] = last;
            last = e;
        }
        next[last as usize] = sentinel;
        prev[sentinel as usize] = last;
        Links { next, prev }
    }
    #[inline]
    fn lift(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }
    #[inline]
    fn restore(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        self.prev[n as usize] = e;
    }
}

/// Searches for a linearization of `ops` from `initial`.
pub(crate) fn search<'h, M: Model<'h>>(
    model: &mut M,
    initial: StateId,
    ops: &KeyOps<M::Op>,
    limits: &Limits<'_>,
) -> SearchReport {
    let required = &ops.required;
    let optional = &ops.optional;
    let n_required = required.len();
    if n_required == 0 {
        return SearchReport {
            outcome: SearchOutcome::Valid,
            configurations: 0,
            memory: 0,
        };
    }

    // Main list: entry 2i is the call of required op i, 2i+1 its return.
    let mut entries: Vec<(u64, u32)> = Vec::with_capacity(2 * n_required);
    for (i, op) in required.iter().enumerate() {
        entries.push((op.call, 2 * i as u32));
        entries.push((op.ret, 2 * i as u32 + 1));
    }
    entries.sort_unstable();
    let mut main = Links::new(entries.iter().map(|&(_, e)| e), 2 * n_required);
    drop(entries);
    let head = (2 * n_required) as u32;
    let mut side = Links::new(0..optional.len() as u32, optional.len());
    let side_head = optional.len() as u32;

    // window_end[p]: required ops invoked before op p returns (see the module docs).
    let window_words: Vec<u32> = required
        .iter()
        .map(|op| {
            let end = required.partition_point(|o| o.call < op.ret);
            end.div_ceil(64) as u32
        })
        .collect();

    let (zobrist, state_salt): (Vec<u64>, Option<u64>) = match limits.hash_mode {
        HashMode::Zobrist => (
            (0..n_required as u64)
                .map(|i| splitmix64(i ^ 0x5bd1_e995))
                .collect(),
            Some(0x2545_f491_4f6c_dd1d),
        ),
        HashMode::Constant => (vec![0; n_required], None),
    };
    let state_hash = |s: StateId| state_salt.map_or(0, |salt| splitmix64(u64::from(s) ^ salt));

    let mut required_bits = vec![0u64; n_required.div_ceil(64)];
    let mut optional_bits = vec![0u64; optional.len().div_ceil(64)];
    let mut prefix = 0usize;
    let mut linearized_required = 0usize;
    let mut hash_required = 0u64;
    let mut state = initial;
    let mut memo = Memo {
        heads: FxHashMap::default(),
        entries: Vec::new(),
        words: Vec::new(),
    };
    let mut stack: Vec<Frame> = Vec::new();

    // Memory accounting: flushed to the shared counter in chunks.
    let flush_every = limits
        .memory_budget
        .map_or(u64::MAX, |b| (b / 16).clamp(1, 1 << 18));
    let mut memory = 0u64;
    let mut unflushed = 0u64;
    let mut flushed = 0u64;

    // The deepest blocking point so far (see `Blocked`), with a copy of the stack kept in
    // step lazily: `snapshot[..snapshot_valid]` always equals the current stack's origins.
    let mut best_depth: Option<usize> = None;
    let mut best_op = 0u32;
    let mut best_states: Vec<StateId> = Vec::new();
    let mut snapshot: Vec<u32> = Vec::new();
    let mut snapshot_valid = 0usize;
    let origin_of = |c: Chosen| match c {
        Chosen::Required(i) => required[i as usize].origin,
        Chosen::Optional { at, .. } => optional[at as usize].origin,
    };

    let window =
        |prefix: usize| -> std::ops::Range<usize> { prefix / 64..window_words[prefix] as usize };

    memo.insert_unless_dominated(
        state_hash(state),
        state,
        0,
        &required_bits[window(0)],
        &optional_bits,
    );
    let mut configurations = 1u64;

    let mut steps = 0u64;
    let mut cursor = Cursor::Main(main.next[head as usize]);
    let outcome = loop {
        steps += 1;
        if steps % CHECK_EVERY == 0 {
            if limits.cancel.load(Ordering::Relaxed) {
                break SearchOutcome::Stopped(StopCause::Cancelled);
            }
            if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                break SearchOutcome::Stopped(StopCause::TimeLimit);
            }
        }
        match cursor {
            Cursor::Main(e) => {
                debug_assert_ne!(e, head, "an unlinearized op's return is always listed");
                let i = (e / 2) as usize;
                if e % 2 == 1 {
                    // Op i's return: nothing after it may go before it. Try the optional
                    // operations invoked before that point, then give up here.
                    cursor = Cursor::Optional {
                        at: side.next[side_head as usize],
                        limit: required[i].ret,
                        blocked: i as u32,
                    };
                    continue;
                }
                if let Some(next_state) = model.step(state, required[i].op) {
                    required_bits[i / 64] |= 1 << (i % 64);
                    hash_required ^= zobrist[i];
                    linearized_required += 1;
                    let old_prefix = prefix;
                    if i == prefix {
                        prefix = next_clear(&required_bits, i + 1, n_required);
                    }
                    if prefix == n_required {
                        break SearchOutcome::Valid;
                    }
                    let words = window(prefix);
                    let added = words.len() + optional_bits.len();
                    if memo.insert_unless_dominated(
                        hash_required ^ state_hash(next_state),
                        next_state,
                        prefix as u32,
                        &required_bits[words],
                        &optional_bits,
                    ) {
                        configurations += 1;
                        let bytes = Memo::ENTRY_BYTES + 8 * added as u64;
                        memory += bytes;
                        unflushed += bytes;
                        if unflushed >= flush_every {
                            let total =
                                limits.memory_in_use.fetch_add(unflushed, Ordering::Relaxed)
                                    + unflushed;
                            flushed += unflushed;
                            unflushed = 0;
                            if limits.memory_budget.is_some_and(|b| total > b) {
                                break SearchOutcome::Stopped(StopCause::MemoryBudget);
                            }
                        }
                        stack.push(Frame {
                            chosen: Chosen::Required(i as u32),
                            previous_state: state,
                        });
                        main.lift(2 * i as u32);
                        main.lift(2 * i as u32 + 1);
                        state = next_state;
                        cursor = Cursor::Main(main.next[head as usize]);
                        continue;
                    }
                    required_bits[i / 64] &= !(1 << (i % 64));
                    hash_required ^= zobrist[i];
                    linearized_required -= 1;
                    prefix = old_prefix;
                }
                cursor = Cursor::Main(main.next[e as usize]);
            }
            Cursor::Optional { at, limit, blocked } => {
                if at == side_head || optional[at as usize].call > limit {
                    // Stuck: `blocked` cannot be linearized from here.
                    let depth = linearized_required;
                    if best_depth.is_none_or(|d| depth > d) {
                        best_depth = Some(depth);
                        best_op = blocked;
                        snapshot.truncate(snapshot_valid);
                        snapshot
                            .extend(stack[snapshot_valid..].iter().map(|f| origin_of(f.chosen)));
                        snapshot_valid = stack.len();
                        best_states.clear();
                        best_states.push(state);
                    } else if best_depth == Some(depth)
                        && best_op == blocked
                        && best_states.len() < MAX_STATES
                        && !best_states.contains(&state)
                    {
                        best_states.push(state);
                    }
                    let Some(frame) = stack.pop() else {
                        break SearchOutcome::Invalid(Blocked {
                            op: required[best_op as usize].origin,
                            prefix: snapshot,
                            states: best_states,
                        });
                    };
                    snapshot_valid = snapshot_valid.min(stack.len());
                    state = frame.previous_state;
                    match frame.chosen {
                        Chosen::Required(i) => {
                            main.restore(2 * i + 1);
                            main.restore(2 * i);
                            let i = i as usize;
                            required_bits[i / 64] &= !(1 << (i % 64));
                            hash_required ^= zobrist[i];
                            linearized_required -= 1;
                            prefix = prefix.min(i);
                            cursor = Cursor::Main(main.next[2 * i]);
                        }
                        Chosen::Optional { at, limit, blocked } => {
                            side.restore(at);
                            optional_bits[at as usize / 64] &= !(1 << (at % 64));
                            cursor = Cursor::Optional {
                                at: side.next[at as usize],
                                limit,
                                blocked,
                            };
                        }
                    }
                    continue;
                }
                let j = at as usize;
                if let Some(next_state) = model.step(state, optional[j].op) {
                    optional_bits[j / 64] |= 1 << (j % 64);
                    let words = window(prefix);
                    let added = words.len() + optional_bits.len();
                    if memo.insert_unless_dominated(
                        hash_required ^ state_hash(next_state),
                        next_state,
                        prefix as u32,
                        &required_bits[words],
                        &optional_bits,
                    ) {
                        configurations += 1;
                        let bytes = Memo::ENTRY_BYTES + 8 * added as u64;
                        memory += bytes;
                        unflushed += bytes;
                        if unflushed >= flush_every {
                            let total =
                                limits.memory_in_use.fetch_add(unflushed, Ordering::Relaxed)
                                    + unflushed;
                            flushed += unflushed;
                            unflushed = 0;
                            if limits.memory_budget.is_some_and(|b| total > b) {
                                break SearchOutcome::Stopped(StopCause::MemoryBudget);
                            }
                        }
                        stack.push(Frame {
                            chosen: Chosen::Optional { at, limit, blocked },
                            previous_state: state,
                        });
                        side.lift(at);
                        state = next_state;
                        cursor = Cursor::Main(main.next[head as usize]);
                        continue;
                    }
                    optional_bits[j / 64] &= !(1 << (j % 64));
                }
                cursor = Cursor::Optional {
                    at: side.next[j],
                    limit,
                    blocked,
                };
            }
        }
    };
    limits.memory_in_use.fetch_sub(flushed, Ordering::Relaxed);
    SearchReport {
        outcome,
        configurations,
        memory,
    }
}
