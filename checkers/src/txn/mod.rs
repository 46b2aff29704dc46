//! Transactional consistency, Elle-style: infer a dependency graph between the transactions
//! of a history and find the anomalies each consistency model forbids.
//!
//! * [`transactions`] — the history of transactions, paired from a generic [`History`].
//! * [`list_append`], [`rw_register`] — per workload: version orders, non-cycle anomalies,
//!   ww/wr/rw dependencies.
//! * [`order`] — process and real-time order edges.
//! * [`graph`] — the graph, strongly connected components, the cycle search.
//! * [`anomaly`] — Elle's anomaly names and how a cycle is named.
//! * [`consistency`] — models and the anomalies they forbid.
//! * [`explain`] — anomalies as data and text.
//! * [`generate`] — strict-serializable-by-construction histories and anomalous patterns.
//!
//! The search follows Elle: Tarjan's components of the whole graph first, then inside each
//! component with more than one transaction a breadth-first search per anomaly shape (G0,
//! G1c, G-single, G-nonadjacent, G2-item, each plain, with process and with real-time
//! edges), at most one example of each per component.

pub mod anomaly;
pub mod consistency;
pub mod explain;
pub mod generate;
pub mod graph;
pub mod list_append;
pub mod order;
pub mod read;
pub mod rw_register;
pub mod transactions;

use crate::history::History;
use crate::verdict::Verdict;
use anomaly::AnomalyKind;
use consistency::ConsistencyModel;
use explain::{Anomaly, EdgeReason, Step, TxnSummary};
use graph::{CycleSpec, EdgeBuffer, Graph, LocalIndex, Rels, RwRule};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use transactions::{Outcome, TxnHistory, TxnId};

pub use transactions::{from_history, TxnDataError, Workload};

/// How to check.
#[derive(Debug, Clone)]
pub struct TxnCheckOptions {
    pub workload: Workload,
    pub consistency: ConsistencyModel,
    /// Stop with `unknown` after this long.
    pub time_limit: Option<Duration>,
    /// Stop with `unknown` when the graph would need more than this many bytes.
    pub memory_budget: Option<u64>,
    /// Examples kept per anomaly kind (all are counted).
    pub max_examples: usize,
}

impl TxnCheckOptions {
    pub fn new(workload: Workload, consistency: ConsistencyModel) -> Self {
        TxnCheckOptions {
            workload,
            consistency,
            time_limit: None,
            memory_budget: None,
            max_examples: 8,
        }
    }
}

/// The result of a transactional check.
#[derive(Debug, Clone, Serialize)]
pub struct TxnCheckResult {
    pub verdict: Verdict,
    pub workload: Workload,
    pub consistency: ConsistencyModel,
    pub transactions: usize,
    pub committed: usize,
    pub indeterminate: usize,
    pub aborted: usize,
    /// Edges in the dependency graph (after merging parallel edges).
    pub edges: usize,
    /// Anomaly name → how many were found.
    pub anomaly_counts: BTreeMap<AnomalyKind, usize>,
    /// Anomalies found that the requested model forbids.
    pub forbidden: Vec<AnomalyKind>,
    /// Examples of every anomaly found, explained.
    pub anomalies: Vec<Anomaly>,
    /// Models the history rules out, and those it is still compatible with (not ruled out
    /// by any anomaly found; when the verdict is unknown, only "not ruled out so far").
    pub not: Vec<ConsistencyModel>,
    pub compatible: Vec<ConsistencyModel>,
    /// Models not decided because the check did not look for what they forbid: process
    /// and real-time order are only inferred when the requested model forbids their
    /// anomalies (strict-serializable).
    pub unchecked: Vec<ConsistencyModel>,
    /// Why the verdict is `unknown`.
    pub cause: Option<String>,
    #[serde(serialize_with = "ser_secs")]
    pub elapsed: Duration,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Counts anomalies and keeps the first few examples of each kind.
#[derive(Debug, Default)]
pub struct Collector {
    max_examples: usize,
    counts: BTreeMap<AnomalyKind, usize>,
    examples: Vec<Anomaly>,
}

impl Collector {
    pub fn new(max_examples: usize) -> Self {
        Collector {
            max_examples,
            ..Default::default()
        }
    }
    pub fn add(&mut self, kind: AnomalyKind, make: impl FnOnce() -> Anomaly) {
        let count = self.counts.entry(kind).or_insert(0);
        *count += 1;
        if *count <= self.max_examples {
            self.examples.push(make());
        }
    }
}

/// What a workload's inference keeps to explain edges.
enum WorkloadIndex {
    ListAppend(list_append::ListAppendIndex),
    RwRegister(rw_register::RwRegisterIndex),
}

/// Checks a generic history: reads its transactions, then [`check_txns`].
pub fn check(history: &History, opts: &TxnCheckOptions) -> Result<TxnCheckResult, TxnDataError> {
    let started = Instant::now();
    let txns = from_history(history, opts.workload)?;
    check_txns_from(&txns, opts, started)
}

/// Checks a history of transactions.
pub fn check_txns(
    history: &TxnHistory,
    opts: &TxnCheckOptions,
) -> Result<TxnCheckResult, TxnDataError> {
    check_txns_from(history, opts, Instant::now())
}

/// Bytes per edge while the graph is built (buffer, slots, final arrays).
const BYTES_PER_EDGE: u64 = 12 + 8 + 5;
/// State visits allowed to the cycle search per transaction in non-trivial components, at
/// least.
const SEARCH_VISITS_MIN: u64 = 50_000_000;

fn check_txns_from(
    h: &TxnHistory,
    opts: &TxnCheckOptions,
    started: Instant,
) -> Result<TxnCheckResult, TxnDataError> {
    let deadline = opts.time_limit.map(|l| started + l);
    let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
    let mut found = Collector::new(opts.max_examples);
    let mut edges = EdgeBuffer::default();
    let index = match opts.workload {
        Workload::ListAppend => {
            WorkloadIndex::ListAppend(list_append::infer(h, &mut found, &mut edges)?)
        }
        Workload::RwRegister => {
            WorkloadIndex::RwRegister(rw_register::infer(h, &mut found, &mut edges)?)
        }
    };
    // Like Elle: with no dependency at all there is nothing to judge the history by.
    let empty_graph = edges.is_empty();
    // Process and real-time order matter only to models that forbid their variants.
    let with_order = opts.consistency.forbids(AnomalyKind::G0Process)
        || opts.consistency.forbids(AnomalyKind::G0Realtime);
    if with_order {
        order::process_edges(h, &mut edges);
        order::realtime_edges(h, &mut edges);
    }
    let mut cause: Option<String> = None;
    let n = h.txns.len();
    let needed = edges.len() as u64 * BYTES_PER_EDGE + n as u64 * 24;
    let mut graph = Graph::default();
    if let Some(budget) = opts.memory_budget.filter(|b| needed > *b) {
        cause = Some(format!(
            "the dependency graph needs about {} MiB, over the memory budget of {} MiB",
            needed >> 20,
            budget >> 20
        ));
    } else if past_deadline() {
        cause = Some("time limit reached while inferring dependencies".to_owned());
    } else {
        graph = Graph::build(n, edges);
    }

    if cause.is_none() && empty_graph {
        cause = Some(
            "no dependency between transactions could be inferred (an empty transaction graph)"
                .to_owned(),
        );
    } else if cause.is_none() {
        let sccs = graph.nontrivial_sccs();
        let in_sccs: usize = sccs.iter().map(Vec::len).sum();
        let mut budget = SEARCH_VISITS_MIN.max(in_sccs as u64 * 2000);
        let mut local = LocalIndex::new(n);
        'components: for component in &sccs {
            let mut seen_here: Vec<AnomalyKind> = Vec::new();
            for spec in cycle_specs(with_order) {
                if past_deadline() {
                    cause = Some("time limit reached during the cycle search".to_owned());
                    break 'components;
                }
                match graph::find_cycle(&graph, component, &mut local, spec, &mut budget) {
                    Err(graph::BudgetExhausted) => {
                        cause = Some(format!(
                            "the cycle search gave up in a component of {} transactions",
                            component.len()
                        ));
                        break 'components;
                    }
                    Ok(None) => {}
                    Ok(Some(cycle)) => {
                        let kind = anomaly::classify(&cycle);
                        if seen_here.contains(&kind) {
                            continue;
                        }
                        seen_here.push(kind);
                        found.add(kind, || explain_cycle(h, &index, kind, &cycle));
                    }
                }
            }
        }
    }

    let kinds: Vec<AnomalyKind> = found.counts.keys().copied().collect();
    let forbidden: Vec<AnomalyKind> = kinds
        .iter()
        .copied()
        .filter(|k| opts.consistency.forbids(*k))
        .collect();
    let not: Vec<ConsistencyModel> = ConsistencyModel::ALL
        .into_iter()
        .filter(|m| kinds.iter().any(|k| m.forbids(*k)))
        .collect();
    let decidable = |m: &ConsistencyModel| {
        with_order || !(m.forbids(AnomalyKind::G0Process) || m.forbids(AnomalyKind::G0Realtime))
    };
    let compatible = ConsistencyModel::ALL
        .into_iter()
        .filter(|m| !not.contains(m) && decidable(m))
        .collect();
    let unchecked = ConsistencyModel::ALL
        .into_iter()
        .filter(|m| !not.contains(m) && !decidable(m))
        .collect();
    let verdict = if !forbidden.is_empty() {
        Verdict::Invalid
    } else if cause.is_some() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let count = |o: Outcome| h.txns.iter().filter(|t| t.outcome == o).count();
    let mut anomalies = found.examples;
    anomalies.sort_by_key(|a| a.kind);
    Ok(TxnCheckResult {
        verdict,
        workload: opts.workload,
        consistency: opts.consistency,
        transactions: n,
        committed: count(Outcome::Committed),
        indeterminate: count(Outcome::Indeterminate),
        aborted: count(Outcome::Aborted),
        edges: graph.edge_count(),
        anomaly_counts: found.counts,
        forbidden,
        anomalies,
        not,
        compatible,
        unchecked,
        cause,
        elapsed: started.elapsed(),
    })
}

/// The cycle shapes searched, most severe first: plain, then (when order edges were
/// inferred) with process and with real-time edges.
fn cycle_specs(with_order: bool) -> Vec<CycleSpec> {
    let dep = Rels::WW.union(Rels::WR);
    let base = [
        (Rels::WW, RwRule::None, Rels::NONE),
        (dep, RwRule::None, Rels::WR),
        (dep, RwRule::Single, Rels::NONE),
        (dep, RwRule::Nonadjacent, Rels::NONE),
        (dep, RwRule::Multiple, Rels::NONE),
    ];
    let mut specs = Vec::new();
    let variants: &[Rels] = if with_order {
        &[Rels::NONE, Rels::PROCESS, Rels::REALTIME]
    } else {
        &[Rels::NONE]
    };
    for &variant in variants {
        for (plain, rw, required) in base {
            specs.push(CycleSpec {
                plain: plain.union(variant),
                rw,
                required: required.union(variant),
            });
        }
    }
    specs
}

fn explain_cycle(
    h: &TxnHistory,
    index: &WorkloadIndex,
    kind: AnomalyKind,
    cycle: &graph::Cycle,
) -> Anomaly {
    let verb = match index {
        WorkloadIndex::ListAppend(_) => "appended",
        WorkloadIndex::RwRegister(_) => "wrote",
    };
    let k = cycle.nodes.len();
    let steps: Vec<Step> = (0..k)
        .map(|i| {
            let (from, to, rels) = (cycle.nodes[i], cycle.nodes[(i + 1) % k], cycle.rels[i]);
            Step {
                from,
                to,
                rels: rels.names(),
                reasons: edge_reasons(h, index, from, to, rels),
            }
        })
        .collect();
    let txns: Vec<TxnSummary> = cycle.nodes.iter().map(|&t| TxnSummary::of(h, t)).collect();
    let explanation = explain::cycle_text(kind, &txns, &steps, verb);
    Anomaly {
        kind,
        key: None,
        txns,
        cycle: steps,
        explanation,
    }
}

fn edge_reasons(
    h: &TxnHistory,
    index: &WorkloadIndex,
    from: TxnId,
    to: TxnId,
    rels: Rels,
) -> Vec<EdgeReason> {
    let mut out = match index {
        WorkloadIndex::ListAppend(i) => i.reasons(h, from, to, rels),
        WorkloadIndex::RwRegister(i) => i.reasons(h, from, to, rels),
    };
    let (a, b) = (&h.txns[from as usize], &h.txns[to as usize]);
    if rels.intersects(Rels::PROCESS) {
        out.push(EdgeReason::Process { process: a.process });
    }
    if rels.intersects(Rels::REALTIME) {
        if let Some(completed) = a.complete_index {
            out.push(EdgeReason::Realtime {
                completed,
                invoked: b.invoke_index,
            });
        }
    }
    out
}

impl TxnCheckResult {
    /// The report in words: verdict, counts, and each example explained.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} transactions ({} ok, {} info, {} fail), {} {} checked for {} in {:.3}s",
            self.verdict,
            self.transactions,
            self.committed,
            self.indeterminate,
            self.aborted,
            self.edges,
            if self.edges == 1 { "edge" } else { "edges" },
            self.consistency,
            self.elapsed.as_secs_f64()
        );
        if let Some(c) = &self.cause {
            let _ = writeln!(s, "unknown because {c}");
        }
        if self.anomaly_counts.is_empty() {
            let _ = writeln!(s, "no anomalies found");
        } else {
            let counts: Vec<String> = self
                .anomaly_counts
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            let _ = writeln!(s, "anomalies: {}", counts.join(", "));
            if !self.forbidden.is_empty() {
                let names: Vec<&str> = self.forbidden.iter().map(|k| k.name()).collect();
                let _ = writeln!(s, "forbidden by {}: {}", self.consistency, names.join(", "));
            }
        }
        let names =
            |ms: &[ConsistencyModel]| ms.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ");
        if !self.not.is_empty() {
            let _ = writeln!(s, "ruled out: {}", names(&self.not));
        }
        if !self.unchecked.is_empty() {
            let _ = writeln!(
                s,
                "not checked (needs --consistency strict-serializable): {}",
                names(&self.unchecked)
            );
        }
        let _ = writeln!(
            s,
            "{}: {}",
            if self.cause.is_some() {
                "not ruled out so far"
            } else {
                "compatible with"
            },
            if self.compatible.is_empty() {
                "none of the models checked".to_owned()
            } else {
                names(&self.compatible)
            }
        );
        for a in &self.anomalies {
            let _ = writeln!(s);
            if a.cycle.is_empty() {
                let _ = writeln!(s, "{}: {}", a.kind, a.explanation);
                for t in &a.txns {
                    let _ = writeln!(s, "  {t}");
                }
            } else {
                let _ = writeln!(s, "{}", a.explanation);
            }
        }
        s
    }
}
