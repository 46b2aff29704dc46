//! splitbrain's checkers: history types, readers and writers, models, and a fast
//! linearizability checker. No async runtime; usable on its own for offline checking.
//!
//! # Layout
//!
//! * [`history`] — events, values, processes: the data every other module speaks.
//! * [`formats`] — readers (our JSON Lines, Jepsen EDN, Jepsen log lines) and writers.
//! * [`models`] — sequential specifications: register, cas-register, kv, kv-append, mutex,
//!   set, FIFO queue.
//! * [`linearizability`] — the Wing–Gong/Lowe search with memoisation, per key, in parallel.
//! * [`generate`] — synthetic, linearizable-by-construction register histories for tests
//!   and benchmarks.
//! * [`txn`] — transactional consistency, Elle-style: list-append and rw-register histories,
//!   dependency graphs, cycle anomalies (G0 … G2-item), consistency models.
//! * [`verdict`] — verdicts as data: valid, invalid with a counterexample, unknown with a
//!   cause.

pub mod formats;
pub mod generate;
pub mod history;
pub mod linearizability;
pub mod models;
pub mod set_checker;
pub mod txn;
pub mod verdict;

pub use history::{Event, EventType, History, Process, Value};
pub use verdict::{CheckResult, Counterexample, KeyResult, Verdict};
