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
use std::marker::PhantomData;
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

/// How a valid search placed the operations (asked for with [`Search::keep_witness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Witness {
    /// The operations in the order the search linearized them (origins), each with the
    /// model state after it: every required operation and the indeterminate ones taken.
    pub placed: Vec<(u32, StateId)>,
    /// Indeterminate operations not linearized (they never took effect), by origin.
    pub left_out: Vec<u32>,
}

#[derive(Debug, Clone)]
pub(crate) enum SearchOutcome {
    Valid,
    Invalid(Blocked),
    Stopped(StopCause),
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

/// A search over one key, resumable: [`Search::run`] works for a bounded number of steps,
/// so that many keys can share few threads in turns (a hard key cannot hold back a key that
/// is quickly found invalid).
pub(crate) struct Search<'h, M: Model<'h>> {
    model: M,
    ops: KeyOps<M::Op>,
    /// Main list: entry 2i is the call of required op i, 2i+1 its return.
    main: Links,
    head: u32,
    side: Links,
    side_head: u32,
    /// Per required op p: the number of words of the window when p is the prefix (see the
    /// module docs).
    window_words: Vec<u32>,
    zobrist: Vec<u64>,
    state_salt: Option<u64>,
    required_bits: Vec<u64>,
    optional_bits: Vec<u64>,
    prefix: usize,
    linearized_required: usize,
    hash_required: u64,
    state: StateId,
    memo: Memo,
    stack: Vec<Frame>,
    cursor: Cursor,
    steps: u64,
    configurations: u64,
    // Memory accounting: flushed to the shared counter in chunks.
    flush_every: u64,
    memory: u64,
    unflushed: u64,
    flushed: u64,
    // The deepest blocking point so far (see `Blocked`), with a copy of the stack kept in
    // step lazily: `snapshot[..snapshot_valid]` always equals the current stack's origins.
    best_depth: Option<usize>,
    best_op: u32,
    best_states: Vec<StateId>,
    snapshot: Vec<u32>,
    snapshot_valid: usize,
    finished: Option<SearchOutcome>,
    /// Whether to keep the linearization when the search succeeds, and the one kept.
    witness_wanted: bool,
    witness: Option<Witness>,
    _history: PhantomData<&'h ()>,
}

impl<'h, M: Model<'h>> Search<'h, M> {
    pub fn new(
        model: M,
        initial: StateId,
        ops: KeyOps<M::Op>,
        hash_mode: HashMode,
        memory_budget: Option<u64>,
    ) -> Self {
        let required = &ops.required;
        let n_required = required.len();
        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(2 * n_required);
        for (i, op) in required.iter().enumerate() {
            entries.push((op.call, 2 * i as u32));
            entries.push((op.ret, 2 * i as u32 + 1));
        }
        entries.sort_unstable();
        let main = Links::new(entries.iter().map(|&(_, e)| e), 2 * n_required);
        let head = (2 * n_required) as u32;
        let side = Links::new(0..ops.optional.len() as u32, ops.optional.len());
        let side_head = ops.optional.len() as u32;
        let window_words = required
            .iter()
            .map(|op| {
                let end = required.partition_point(|o| o.call < op.ret);
                end.div_ceil(64) as u32
            })
            .collect();
        let (zobrist, state_salt) = match hash_mode {
            HashMode::Zobrist => (
                (0..n_required as u64)
                    .map(|i| splitmix64(i ^ 0x5bd1_e995))
                    .collect(),
                Some(0x2545_f491_4f6c_dd1d),
            ),
            HashMode::Constant => (vec![0; n_required], None),
        };
        let mut search = Search {
            model,
            main,
            head,
            side,
            side_head,
            window_words,
            zobrist,
            state_salt,
            required_bits: vec![0; n_required.div_ceil(64)],
            optional_bits: vec![0; ops.optional.len().div_ceil(64)],
            prefix: 0,
            linearized_required: 0,
            hash_required: 0,
            state: initial,
            memo: Memo {
                heads: FxHashMap::default(),
                entries: Vec::new(),
                words: Vec::new(),
            },
            stack: Vec::new(),
            cursor: Cursor::Main(head),
            steps: 0,
            configurations: 0,
            flush_every: memory_budget.map_or(u64::MAX, |b| (b / 16).clamp(1, 1 << 18)),
            memory: 0,
            unflushed: 0,
            flushed: 0,
            best_depth: None,
            best_op: 0,
            best_states: Vec::new(),
            snapshot: Vec::new(),
            snapshot_valid: 0,
            finished: None,
            witness_wanted: false,
            witness: None,
            ops,
            _history: PhantomData,
        };
        if n_required == 0 {
            search.finished = Some(SearchOutcome::Valid);
        } else {
            search.cursor = Cursor::Main(search.main.next[head as usize]);
            let words = search.window(0);
            search.memo.insert_unless_dominated(
                search.state_hash(initial),
                initial,
                0,
                &search.required_bits[words],
                &search.optional_bits,
            );
            search.configurations = 1;
        }
        search
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    /// Keeps the linearization found when the search succeeds (see [`Search::witness`]).
    /// Costs nothing per step: the order is read off the search stack once, at success.
    pub fn keep_witness(&mut self) {
        self.witness_wanted = true;
        if matches!(self.finished, Some(SearchOutcome::Valid)) && self.witness.is_none() {
            // Nothing to linearize: every indeterminate operation is left out.
            self.witness = Some(self.witness_at_success(None));
        }
    }

    /// The linearization of a successful search that was asked to keep it.
    pub fn witness(&self) -> Option<&Witness> {
        self.witness.as_ref()
    }

    /// The stack's operations in order with the state after each, then `last` (the
    /// operation whose step completed the search, not pushed) and the indeterminate
    /// operations never taken.
    fn witness_at_success(&self, last: Option<(u32, StateId)>) -> Witness {
        let mut placed: Vec<(u32, StateId)> = Vec::with_capacity(self.stack.len() + 1);
        for (k, frame) in self.stack.iter().enumerate() {
            let after = self
                .stack
                .get(k + 1)
                .map_or(self.state, |next| next.previous_state);
            placed.push((self.origin_of(frame.chosen), after));
        }
        placed.extend(last);
        let left_out = (0..self.ops.optional.len())
            .filter(|&j| self.optional_bits[j / 64] >> (j % 64) & 1 == 0)
            .map(|j| self.ops.optional[j].origin)
            .collect();
        Witness { placed, left_out }
    }
    /// Configurations entered (memo entries).
    pub fn configurations(&self) -> u64 {
        self.configurations
    }
    /// Estimated peak bytes of the memo.
    pub fn memory(&self) -> u64 {
        self.memory
    }

    fn window(&self, prefix: usize) -> std::ops::Range<usize> {
        prefix / 64..self.window_words[prefix] as usize
    }

    fn state_hash(&self, s: StateId) -> u64 {
        self.state_salt
            .map_or(0, |salt| splitmix64(u64::from(s) ^ salt))
    }

    fn origin_of(&self, c: Chosen) -> u32 {
        match c {
            Chosen::Required(i) => self.ops.required[i as usize].origin,
            Chosen::Optional { at, .. } => self.ops.optional[at as usize].origin,
        }
    }

    /// Records the current configuration with `next_state` unless it is dominated; on
    /// success accounts for its memory. `Err` when the memory budget is exhausted.
    fn enter(&mut self, next_state: StateId, limits: &Limits<'_>) -> Result<bool, StopCause> {
        let words = self.window(self.prefix);
        let added = words.len() + self.optional_bits.len();
        if !self.memo.insert_unless_dominated(
            self.hash_required ^ self.state_hash(next_state),
            next_state,
            self.prefix as u32,
            &self.required_bits[words],
            &self.optional_bits,
        ) {
            return Ok(false);
        }
        self.configurations += 1;
        let bytes = Memo::ENTRY_BYTES + 8 * added as u64;
        self.memory += bytes;
        self.unflushed += bytes;
        if self.unflushed >= self.flush_every {
            let total = limits
                .memory_in_use
                .fetch_add(self.unflushed, Ordering::Relaxed)
                + self.unflushed;
            self.flushed += self.unflushed;
            self.unflushed = 0;
            if limits.memory_budget.is_some_and(|b| total > b) {
                return Err(StopCause::MemoryBudget);
            }
        }
        Ok(true)
    }

    /// Works for at most about `max_steps` steps. `None` when the search is not done yet;
    /// otherwise its outcome (and the memo is released).
    pub fn run(&mut self, limits: &Limits<'_>, max_steps: u64) -> Option<SearchOutcome> {
        if let Some(done) = &self.finished {
            return Some(done.clone());
        }
        let n_required = self.ops.required.len();
        let stop_at = self.steps.saturating_add(max_steps);
        let outcome = loop {
            #[cfg(debug_assertions)]
            self.check_marks();
            self.steps += 1;
            // Also on the first step: a key whose search starts after the deadline (or
            // after another key decided the verdict) is not searched at all.
            if self.steps % CHECK_EVERY == 0 || self.steps == 1 {
                if limits.cancel.load(Ordering::Relaxed) {
                    break SearchOutcome::Stopped(StopCause::Cancelled);
                }
                if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                    break SearchOutcome::Stopped(StopCause::TimeLimit);
                }
                if self.steps >= stop_at {
                    return None;
                }
            }
            match self.cursor {
                Cursor::Main(e) => {
                    debug_assert_ne!(e, self.head, "an unlinearized op's return is listed");
                    let i = (e / 2) as usize;
                    if e % 2 == 1 {
                        // Op i's return: nothing after it may go before it. Try the optional
                        // operations invoked before that point, then give up here.
                        self.cursor = Cursor::Optional {
                            at: self.side.next[self.side_head as usize],
                            limit: self.ops.required[i].ret,
                            blocked: i as u32,
                        };
                        continue;
                    }
                    if let Some(next_state) = self.model.step(self.state, self.ops.required[i].op) {
                        self.required_bits[i / 64] |= 1 << (i % 64);
                        self.hash_required ^= self.zobrist[i];
                        self.linearized_required += 1;
                        let old_prefix = self.prefix;
                        if i == self.prefix {
                            // Bit i is now set, so the first clear bit lies after it.
                            self.prefix = next_clear(&self.required_bits, i, n_required);
                        }
                        if self.prefix == n_required {
                            if self.witness_wanted {
                                let last = (self.ops.required[i].origin, next_state);
                                self.witness = Some(self.witness_at_success(Some(last)));
                            }
                            break SearchOutcome::Valid;
                        }
                        match self.enter(next_state, limits) {
                            Err(cause) => break SearchOutcome::Stopped(cause),
                            Ok(true) => {
                                self.stack.push(Frame {
                                    chosen: Chosen::Required(i as u32),
                                    previous_state: self.state,
                                });
                                self.main.lift(2 * i as u32);
                                self.main.lift(2 * i as u32 + 1);
                                self.state = next_state;
                                self.cursor = Cursor::Main(self.main.next[self.head as usize]);
                                continue;
                            }
                            Ok(false) => {
                                self.required_bits[i / 64] &= !(1 << (i % 64));
                                self.hash_required ^= self.zobrist[i];
                                self.linearized_required -= 1;
                                self.prefix = old_prefix;
                            }
                        }
                    }
                    self.cursor = Cursor::Main(self.main.next[e as usize]);
                }
                Cursor::Optional { at, limit, blocked } => {
                    if at == self.side_head || self.ops.optional[at as usize].call > limit {
                        // Stuck: `blocked` cannot be linearized from here.
                        self.record_block(blocked);
                        if !self.backtrack() {
                            break SearchOutcome::Invalid(Blocked {
                                op: self.ops.required[self.best_op as usize].origin,
                                prefix: std::mem::take(&mut self.snapshot),
                                states: std::mem::take(&mut self.best_states),
                            });
                        }
                        continue;
                    }
                    let j = at as usize;
                    if let Some(next_state) = self.model.step(self.state, self.ops.optional[j].op) {
                        self.optional_bits[j / 64] |= 1 << (j % 64);
                        match self.enter(next_state, limits) {
                            Err(cause) => break SearchOutcome::Stopped(cause),
                            Ok(true) => {
                                self.stack.push(Frame {
                                    chosen: Chosen::Optional { at, limit, blocked },
                                    previous_state: self.state,
                                });
                                self.side.lift(at);
                                self.state = next_state;
                                self.cursor = Cursor::Main(self.main.next[self.head as usize]);
                                continue;
                            }
                            Ok(false) => self.optional_bits[j / 64] &= !(1 << (j % 64)),
                        }
                    }
                    self.cursor = Cursor::Optional {
                        at: self.side.next[j],
                        limit,
                        blocked,
                    };
                }
            }
        };
        limits
            .memory_in_use
            .fetch_sub(self.flushed, Ordering::Relaxed);
        self.flushed = 0;
        self.memo = Memo {
            heads: FxHashMap::default(),
            entries: Vec::new(),
            words: Vec::new(),
        };
        self.stack = Vec::new();
        self.finished = Some(outcome.clone());
        Some(outcome)
    }

    /// Debug builds: the marks of linearized operations (bit sets, count, hash, prefix) are
    /// exactly those of the operations on the search stack. Checked before every step, so
    /// after every step taken, step refused by the memo and backtrack. A stray mark makes the
    /// search skip an operation it never applied (a wrong `valid`) or refuse one it never
    /// took (a wrong `invalid`), and random histories rarely expose it; this check does at
    /// once. It costs time linear in the number of operations, so it is made only for
    /// searches small enough for the tests that exercise them.
    #[cfg(debug_assertions)]
    fn check_marks(&self) {
        const CHECKED_UP_TO: usize = 512;
        let n_required = self.ops.required.len();
        if n_required + self.ops.optional.len() > CHECKED_UP_TO {
            return;
        }
        let mut required = vec![0u64; self.required_bits.len()];
        let mut optional = vec![0u64; self.optional_bits.len()];
        let mut hash = 0;
        let mut count = 0;
        for frame in &self.stack {
            match frame.chosen {
                Chosen::Required(i) => {
                    let i = i as usize;
                    assert_eq!(required[i / 64] >> (i % 64) & 1, 0, "op {i} taken twice");
                    required[i / 64] |= 1 << (i % 64);
                    hash ^= self.zobrist[i];
                    count += 1;
                }
                Chosen::Optional { at, .. } => {
                    let j = at as usize;
                    assert_eq!(optional[j / 64] >> (j % 64) & 1, 0, "op {j} taken twice");
                    optional[j / 64] |= 1 << (j % 64);
                }
            }
        }
        assert_eq!(
            self.required_bits, required,
            "marks of linearized ok operations differ from the stack"
        );
        assert_eq!(
            self.optional_bits, optional,
            "marks of linearized indeterminate operations differ from the stack"
        );
        assert_eq!(
            self.linearized_required, count,
            "count of linearized ok operations"
        );
        assert_eq!(self.hash_required, hash, "hash of linearized ok operations");
        assert_eq!(
            self.prefix,
            next_clear(&required, 0, n_required),
            "prefix of linearized ok operations"
        );
    }

    /// Notes a blocking point: a deeper one replaces the record, an equally deep one on the
    /// same operation adds its state.
    fn record_block(&mut self, blocked: u32) {
        let depth = self.linearized_required;
        if self.best_depth.is_none_or(|d| depth > d) {
            self.best_depth = Some(depth);
            self.best_op = blocked;
            self.snapshot.truncate(self.snapshot_valid);
            for k in self.snapshot_valid..self.stack.len() {
                let origin = self.origin_of(self.stack[k].chosen);
                self.snapshot.push(origin);
            }
            self.snapshot_valid = self.stack.len();
            self.best_states.clear();
            self.best_states.push(self.state);
        } else if self.best_depth == Some(depth)
            && self.best_op == blocked
            && self.best_states.len() < MAX_STATES
            && !self.best_states.contains(&self.state)
        {
            self.best_states.push(self.state);
        }
    }

    /// Undoes the last step and moves the cursor past it; false when there is none.
    fn backtrack(&mut self) -> bool {
        let Some(frame) = self.stack.pop() else {
            return false;
        };
        self.snapshot_valid = self.snapshot_valid.min(self.stack.len());
        self.state = frame.previous_state;
        match frame.chosen {
            Chosen::Required(i) => {
                self.main.restore(2 * i + 1);
                self.main.restore(2 * i);
                let i = i as usize;
                self.required_bits[i / 64] &= !(1 << (i % 64));
                self.hash_required ^= self.zobrist[i];
                self.linearized_required -= 1;
                self.prefix = self.prefix.min(i);
                self.cursor = Cursor::Main(self.main.next[2 * i]);
            }
            Chosen::Optional { at, limit, blocked } => {
                self.side.restore(at);
                self.optional_bits[at as usize / 64] &= !(1 << (at % 64));
                self.cursor = Cursor::Optional {
                    at: self.side.next[at as usize],
                    limit,
                    blocked,
                };
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Value;
    use crate::models::{Compiled, Outcome, RawOp, RegisterModel};

    type RegisterOp = <RegisterModel<'static> as Model<'static>>::Op;

    /// A register model with the ops to build searches from.
    struct Ops {
        model: RegisterModel<'static>,
        initial: StateId,
    }

    impl Ops {
        fn new() -> Ops {
            let mut model = RegisterModel::new("cas-register", true);
            let initial = model.initial(&Value::Nil);
            Ops { model, initial }
        }
        fn compile(&mut self, f: &'static str, value: i64) -> RegisterOp {
            let value: &'static Value = Box::leak(Box::new(Value::Int(value)));
            let raw = RawOp {
                f,
                input: value,
                output: value,
                outcome: Outcome::Ok,
            };
            match self.model.compile(&raw).unwrap() {
                Compiled::Op(op) => op,
                Compiled::Drop => unreachable!(),
            }
        }
        fn cas(&mut self, expected: Value, new: i64) -> RegisterOp {
            let value: &'static Value =
                Box::leak(Box::new(Value::List(vec![expected, Value::Int(new)])));
            let raw = RawOp {
                f: "cas",
                input: value,
                output: value,
                outcome: Outcome::Ok,
            };
            match self.model.compile(&raw).unwrap() {
                Compiled::Op(op) => op,
                Compiled::Drop => unreachable!(),
            }
        }
        fn write(&mut self, value: i64) -> RegisterOp {
            self.compile("write", value)
        }
        fn read(&mut self, value: i64) -> RegisterOp {
            self.compile("read", value)
        }
        /// A search over `required` ((call, ret, op), origin = position) and `optional`
        /// ((call, op), origin = 100 + position).
        fn search(
            self,
            required: Vec<(u64, u64, RegisterOp)>,
            optional: Vec<(u64, RegisterOp)>,
            budget: Option<u64>,
        ) -> Search<'static, RegisterModel<'static>> {
            let ops = KeyOps {
                required: required
                    .into_iter()
                    .enumerate()
                    .map(|(i, (call, ret, op))| SearchOp {
                        call,
                        ret,
                        op,
                        origin: i as u32,
                    })
                    .collect(),
                optional: optional
                    .into_iter()
                    .enumerate()
                    .map(|(j, (call, op))| SearchOp {
                        call,
                        ret: u64::MAX,
                        op,
                        origin: 100 + j as u32,
                    })
                    .collect(),
            };
            Search::new(self.model, self.initial, ops, HashMode::Zobrist, budget)
        }
    }

    struct Shared {
        in_use: AtomicU64,
        cancel: AtomicBool,
    }

    impl Shared {
        fn new() -> Shared {
            Shared {
                in_use: AtomicU64::new(0),
                cancel: AtomicBool::new(false),
            }
        }
        fn limits(&self, budget: Option<u64>) -> Limits<'_> {
            Limits {
                deadline: None,
                memory_budget: budget,
                memory_in_use: &self.in_use,
                cancel: &self.cancel,
            }
        }
    }

    /// `n` writes one after the other: the search enters one configuration per write but the
    /// last (the last one completes the history).
    fn sequential_writes(n: u64, budget: Option<u64>) -> Search<'static, RegisterModel<'static>> {
        let mut ops = Ops::new();
        let required = (0..n)
            .map(|i| (2 * i, 2 * i + 1, ops.write(i as i64)))
            .collect();
        ops.search(required, vec![], budget)
    }

    /// Bytes of one memo entry of a search with fewer than 64 operations: the entry, one word
    /// of window and `optional_words` words of indeterminate operations.
    fn entry_bytes(optional_words: u64) -> u64 {
        // A `MemoEntry` is 24 bytes on 64-bit targets; its hash-table slot is counted as 16.
        40 + 8 * (1 + optional_words)
    }

    #[test]
    fn memory_is_accounted_per_configuration_and_released_at_the_end() {
        let shared = Shared::new();
        let mut search = sequential_writes(10, None);
        let outcome = search.run(&shared.limits(None), u64::MAX);
        assert!(matches!(outcome, Some(SearchOutcome::Valid)), "{outcome:?}");
        assert_eq!(search.configurations(), 10);
        assert_eq!(search.memory(), 9 * entry_bytes(0));
        assert_eq!(shared.in_use.load(Ordering::Relaxed), 0);
        // With indeterminate operations, each entry also holds their bit set: a crashed write
        // of 1, then reads of 1 and 2 around a write of 2.
        let mut ops = Ops::new();
        let optional = vec![(0, ops.write(1))];
        let required = vec![
            (1, 2, ops.read(1)),
            (3, 4, ops.write(2)),
            (5, 6, ops.read(2)),
        ];
        let mut with_optional = ops.search(required, optional, None);
        let outcome = with_optional.run(&shared.limits(None), u64::MAX);
        assert!(matches!(outcome, Some(SearchOutcome::Valid)), "{outcome:?}");
        assert_eq!(with_optional.configurations(), 4);
        assert_eq!(with_optional.memory(), 3 * entry_bytes(1));
        // A finished search answers again without searching.
        let again = search.run(&shared.limits(None), u64::MAX);
        assert!(matches!(again, Some(SearchOutcome::Valid)));
        assert_eq!(search.configurations(), 10);
    }

    /// With a budget of 16 to 31 bytes every entry is flushed to the shared counter at once.
    /// Nine entries fit a budget of exactly their size; one byte less stops at the ninth.
    #[test]
    fn the_memory_budget_stops_exactly_when_exceeded() {
        let need = 9 * entry_bytes(0);
        let shared = Shared::new();
        let mut search = sequential_writes(10, Some(need));
        let outcome = search.run(&shared.limits(Some(need)), u64::MAX);
        assert!(matches!(outcome, Some(SearchOutcome::Valid)), "{outcome:?}");
        assert_eq!(shared.in_use.load(Ordering::Relaxed), 0, "released");

        let mut search = sequential_writes(10, Some(need - 1));
        let outcome = search.run(&shared.limits(Some(need - 1)), u64::MAX);
        assert!(
            matches!(
                outcome,
                Some(SearchOutcome::Stopped(StopCause::MemoryBudget))
            ),
            "{outcome:?}"
        );
        assert_eq!(search.configurations(), 10);
        assert_eq!(search.memory(), need);
        assert_eq!(shared.in_use.load(Ordering::Relaxed), 0, "released");

        // Memory other searches hold counts against the same budget.
        // Memory other searches hold counts against the same budget: one byte more than an
        // entry leaves room for 7 of this search's, not 8.
        let others = entry_bytes(0) + 1;
        shared.in_use.store(others, Ordering::Relaxed);
        let mut search = sequential_writes(10, Some(need));
        let outcome = search.run(&shared.limits(Some(need)), u64::MAX);
        assert!(
            matches!(
                outcome,
                Some(SearchOutcome::Stopped(StopCause::MemoryBudget))
            ),
            "{outcome:?}"
        );
        assert_eq!(search.configurations(), 9);
        assert_eq!(shared.in_use.load(Ordering::Relaxed), others);
    }

    /// Flushing happens in chunks of a sixteenth of the budget: while a search pauses, the
    /// shared counter holds what it flushed, at most its memo; the end releases it.
    #[test]
    fn a_paused_search_holds_its_flushed_memory() {
        let mut ops = Ops::new();
        // 10 concurrent writes, then a read of a value nobody wrote: many configurations.
        let n = 10;
        let mut required: Vec<_> = (0..n).map(|i| (i, n + i, ops.write(i as i64))).collect();
        required.push((2 * n, 2 * n + 1, ops.read(-1)));
        let budget = 1 << 20;
        let mut search = ops.search(required, vec![], Some(budget));
        assert_eq!(search.flush_every, budget / 16);
        let mut search_small = sequential_writes(3, Some(16 * entry_bytes(0)));
        assert_eq!(search_small.flush_every, entry_bytes(0));
        let shared = Shared::new();
        let limits = shared.limits(Some(budget));
        assert!(search_small.run(&limits, u64::MAX).is_some());
        let (mut turns, mut held) = (0, 0);
        let outcome = loop {
            turns += 1;
            if let Some(outcome) = search.run(&limits, 1 << 12) {
                break outcome;
            }
            let in_use = shared.in_use.load(Ordering::Relaxed);
            assert_eq!(in_use, search.flushed);
            assert!(in_use <= search.memory());
            assert!(search.memory() - in_use < search.flush_every);
            held = held.max(in_use);
        };
        assert!(turns > 2, "{turns} turns");
        assert!(held > 0, "memory was flushed while paused");
        assert!(matches!(outcome, SearchOutcome::Invalid(_)), "{outcome:?}");
        assert_eq!(shared.in_use.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_search_first_looks_at_the_clock_and_the_cancel_flag() {
        let shared = Shared::new();
        let past = Limits {
            deadline: Some(Instant::now()),
            ..shared.limits(None)
        };
        // One write decides on its first step, unless the deadline has passed.
        let mut search = sequential_writes(1, None);
        let outcome = search.run(&past, u64::MAX);
        assert!(
            matches!(outcome, Some(SearchOutcome::Stopped(StopCause::TimeLimit))),
            "{outcome:?}"
        );
        let future = Limits {
            deadline: Some(Instant::now() + std::time::Duration::from_secs(3600)),
            ..shared.limits(None)
        };
        let mut search = sequential_writes(1, None);
        assert!(matches!(
            search.run(&future, u64::MAX),
            Some(SearchOutcome::Valid)
        ));
        shared.cancel.store(true, Ordering::Relaxed);
        let mut search = sequential_writes(1, None);
        let outcome = search.run(&future, u64::MAX);
        assert!(
            matches!(outcome, Some(SearchOutcome::Stopped(StopCause::Cancelled))),
            "{outcome:?}"
        );
    }

    /// A turn of `max_steps` pauses at the first look at the clock past it.
    #[test]
    fn a_turn_pauses_after_its_steps() {
        let shared = Shared::new();
        let limits = shared.limits(None);
        let mut search = sequential_writes(3, None);
        assert!(search.run(&limits, 1).is_none());
        assert_eq!(search.configurations(), 1);
        assert!(matches!(
            search.run(&limits, CHECK_EVERY),
            Some(SearchOutcome::Valid)
        ));
    }

    fn blocked(
        search: &mut Search<'static, RegisterModel<'static>>,
    ) -> (u32, Vec<u32>, Vec<String>) {
        let shared = Shared::new();
        match search.run(&shared.limits(None), u64::MAX) {
            Some(SearchOutcome::Invalid(b)) => (
                b.op,
                b.prefix,
                b.states.iter().map(|&s| search.model().render(s)).collect(),
            ),
            other => panic!("not invalid: {other:?}"),
        }
    }

    /// Two concurrent writes, then a read of a value neither wrote: the read is stuck after
    /// both orders, at the same depth; the first order reached is the prefix, the states
    /// of both are listed in the order met.
    #[test]
    fn the_counterexample_is_the_deepest_point_with_its_states() {
        let mut ops = Ops::new();
        let required = vec![
            (0, 2, ops.write(1)),
            (1, 3, ops.write(2)),
            (4, 5, ops.read(3)),
        ];
        let mut search = ops.search(required, vec![], None);
        assert_eq!(
            blocked(&mut search),
            (2, vec![0, 1], vec!["2".into(), "1".into()])
        );

        // A read stuck early (depth 1) and, in another branch, a deeper point (depth 2):
        // the deeper one is reported. Write 1 ‖ read 1, then read 2: the order read, write
        // is stuck at the read (depth 0), write, read at the read of 2 (depth 2).
        let mut ops = Ops::new();
        let required = vec![
            (0, 3, ops.write(1)),
            (1, 2, ops.read(1)),
            (4, 5, ops.read(2)),
        ];
        let mut search = ops.search(required, vec![], None);
        assert_eq!(blocked(&mut search), (2, vec![0, 1], vec!["1".into()]));
    }

    /// Indeterminate cas nil → 0, 0 → 1, …, 15 → 16 before a read of a value none wrote:
    /// the read is stuck at depth 0 after each cas of the chain and in the initial state (18
    /// states); at most 16 states are kept, in the order met.
    #[test]
    fn at_most_sixteen_distinct_states_are_kept() {
        let mut ops = Ops::new();
        let optional: Vec<_> = (0..17)
            .map(|i| {
                let expected = if i == 0 {
                    Value::Nil
                } else {
                    Value::Int(i - 1)
                };
                (i as u64, ops.cas(expected, i))
            })
            .collect();
        let required = vec![(20, 21, ops.read(-1))];
        let mut search = ops.search(required, optional, None);
        let (op, prefix, states) = blocked(&mut search);
        assert_eq!(op, 0);
        // The search takes the whole chain before it first finds the read stuck, then backs
        // out of it one cas at a time.
        assert_eq!(prefix, (100..117).collect::<Vec<u32>>());
        let expected: Vec<String> = (1..17).rev().map(|i: i64| i.to_string()).collect();
        assert_eq!(states, expected);
    }

    /// The witness is the search's order at success: a crashed write of 1 that a read saw
    /// is placed before it, a crashed write of 5 nobody saw is left out; the state after
    /// each operation is the register's. Without required operations nothing is placed.
    #[test]
    fn the_witness_is_the_order_at_success_with_the_states() {
        let shared = Shared::new();
        let mut ops = Ops::new();
        let optional = vec![(0, ops.write(1)), (1, ops.write(5))];
        let required = vec![
            (2, 3, ops.read(1)),
            (4, 5, ops.write(2)),
            (6, 7, ops.read(2)),
        ];
        let mut search = ops.search(required, optional, None);
        search.keep_witness();
        assert!(matches!(
            search.run(&shared.limits(None), u64::MAX),
            Some(SearchOutcome::Valid)
        ));
        let witness = search.witness().expect("kept").clone();
        let placed: Vec<(u32, String)> = witness
            .placed
            .iter()
            .map(|&(origin, s)| (origin, search.model().render(s)))
            .collect();
        assert_eq!(
            placed,
            [
                (100, "1".to_owned()),
                (0, "1".to_owned()),
                (1, "2".to_owned()),
                (2, "2".to_owned())
            ]
        );
        assert_eq!(witness.left_out, [101]);

        let mut ops = Ops::new();
        let optional = vec![(0, ops.write(1))];
        let mut only_optional = ops.search(vec![], optional, None);
        only_optional.keep_witness();
        assert_eq!(
            only_optional.witness(),
            Some(&Witness {
                placed: vec![],
                left_out: vec![100]
            })
        );
        // Not asked: none kept.
        let mut plain = sequential_writes(3, None);
        assert!(plain.run(&shared.limits(None), u64::MAX).is_some());
        assert!(plain.witness().is_none());
    }

    #[test]
    fn next_clear_finds_the_first_clear_bit_across_words() {
        let full = u64::MAX;
        assert_eq!(next_clear(&[0b0111], 0, 10), 3);
        assert_eq!(next_clear(&[0b0111], 1, 10), 3);
        assert_eq!(next_clear(&[0b1011], 2, 10), 2);
        assert_eq!(next_clear(&[0b1011], 3, 10), 4);
        assert_eq!(next_clear(&[0b0111], 0, 2), 2, "capped at the limit");
        assert_eq!(next_clear(&[full, 0b1011], 0, 200), 66);
        assert_eq!(next_clear(&[full, 0b1011], 64, 200), 66);
        assert_eq!(next_clear(&[full, 0b1011], 67, 200), 68);
        assert_eq!(next_clear(&[full, full, 0], 5, 200), 128);
        assert_eq!(
            next_clear(&[full, full], 5, 120),
            120,
            "none clear below the limit"
        );
        assert_eq!(
            next_clear(&[full, full], 128, 130),
            130,
            "past the last word"
        );
        assert_eq!(next_clear(&[0, full], 63, 128), 63);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "marks of linearized ok operations differ from the stack")]
    fn a_stray_mark_is_caught_in_debug_builds() {
        let mut search = sequential_writes(3, None);
        search.required_bits[0] |= 1 << 1;
        search.check_marks();
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "marks of linearized indeterminate operations differ")]
    fn a_stray_indeterminate_mark_is_caught_in_debug_builds() {
        let mut ops = Ops::new();
        let optional = vec![(0, ops.write(1)), (1, ops.write(2))];
        let required = vec![(2, 3, ops.read(2))];
        let mut search = ops.search(required, optional, None);
        search.optional_bits[0] |= 1 << 1;
        search.check_marks();
    }
}
