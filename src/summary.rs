//! After a run: run the checkers on the history and summarise what happened in a table.

use crate::campaign::{Campaign, WorkloadKind};
use crate::nemesis::record::{is_stop_event, kind_of_start, FaultRecord};
use serde::{Deserialize, Serialize};
use splitbrain_checkers::linearizability::{self, CheckOptions};
use splitbrain_checkers::models::ModelSpec;
use splitbrain_checkers::set_checker;
use splitbrain_checkers::verdict::{Linearization, OpSummary};
use splitbrain_checkers::{Counterexample, EventType, History, Process, Value, Verdict};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tabled::{builder::Builder, settings::Style};

/// What the summary needs to know about the run besides its history.
pub struct RunFacts<'a> {
    pub campaign: &'a Campaign,
    pub seed: u64,
    pub run_id: &'a str,
    pub nodes: Vec<String>,
    pub main_elapsed: Duration,
    pub interrupted: bool,
    /// Nodes that exited without the harness asking (crashes), each with its log tail.
    pub node_deaths: Vec<String>,
}

/// How a client operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpOutcome {
    Ok,
    Fail,
    Info,
    /// Invoked, never completed (counts as `info` for the checkers).
    Pending,
}

impl OpOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Ok => "ok",
            OpOutcome::Fail => "fail",
            OpOutcome::Info => "info",
            OpOutcome::Pending => "pending",
        }
    }
}

/// One client operation: an invocation paired with its completion.
#[derive(Debug, Clone, Serialize)]
pub struct ClientOp {
    /// Index of the invocation event (what counterexamples refer to).
    pub index: u64,
    pub process: u64,
    pub f: String,
    pub key: Option<Value>,
    /// What was asked.
    pub value: Value,
    /// What an `ok` completion observed or wrote.
    pub output: Option<Value>,
    pub outcome: OpOutcome,
    /// Nanoseconds since the run started.
    pub start_ns: u64,
    /// `None` while pending.
    pub end_ns: Option<u64>,
    pub error: Option<Value>,
    /// The node the client sent it to, when recorded.
    pub node: Option<String>,
}

impl ClientOp {
    pub fn latency_ns(&self) -> Option<u64> {
        self.end_ns.map(|end| end.saturating_sub(self.start_ns))
    }
}

/// Pairs every client invocation with its process's next completion, in invocation order.
pub fn client_ops(history: &History) -> Vec<ClientOp> {
    let mut ops: Vec<ClientOp> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for e in &history.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p, ops.len());
            ops.push(ClientOp {
                index: e.index,
                process: p,
                f: e.f.clone(),
                key: e.key.clone(),
                value: e.value.clone(),
                output: None,
                outcome: OpOutcome::Pending,
                start_ns: e.time.unwrap_or(0),
                end_ns: None,
                error: None,
                node: e.node.clone(),
            });
            continue;
        }
        let Some(i) = open.remove(&p) else {
            continue;
        };
        let op = &mut ops[i];
        op.outcome = match e.kind {
            EventType::Ok => OpOutcome::Ok,
            EventType::Fail => OpOutcome::Fail,
            _ => OpOutcome::Info,
        };
        if e.kind == EventType::Ok {
            op.output = Some(e.value.clone());
        }
        op.end_ns = Some(e.time.unwrap_or(op.start_ns));
        op.error = e.error.clone();
    }
    ops
}

/// The last timestamp of a history (ns), the end of every open interval.
pub fn history_end_ns(history: &History) -> u64 {
    history
        .events
        .iter()
        .filter_map(|e| e.time)
        .max()
        .unwrap_or(0)
}

/// Latency of completed operations, milliseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "LatencyOnDisk")]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// How `latency_ms` is stored: named (format 2) or `[p50, p95, p99, max]` (format 1).
#[derive(Deserialize)]
#[serde(untagged)]
enum LatencyOnDisk {
    Named {
        p50: f64,
        p95: f64,
        p99: f64,
        max: f64,
    },
    Positional([f64; 4]),
}

impl From<LatencyOnDisk> for Latency {
    fn from(stored: LatencyOnDisk) -> Latency {
        match stored {
            LatencyOnDisk::Named { p50, p95, p99, max }
            | LatencyOnDisk::Positional([p50, p95, p99, max]) => Latency { p50, p95, p99, max },
        }
    }
}

/// Operation counts and latencies of client operations.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OpStats {
    /// `f` → (ok, fail, info, pending).
    pub by_function: BTreeMap<String, [u64; 4]>,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub pending: u64,
    /// ok / all operations.
    pub availability: f64,
    /// Latency of completed operations.
    pub latency_ms: Latency,
    /// ok operations per key.
    pub ok_per_key: BTreeMap<String, u64>,
}

impl OpStats {
    pub fn operations(&self) -> u64 {
        self.ok + self.fail + self.info + self.pending
    }
}

/// Counts operations by function and outcome, and their latencies.
pub fn op_stats(history: &History) -> OpStats {
    stats_of(client_ops(history).iter())
}

fn stats_of<'a>(ops: impl Iterator<Item = &'a ClientOp>) -> OpStats {
    let mut stats = OpStats::default();
    let mut latencies: Vec<u64> = Vec::new();
    for op in ops {
        let slot = match op.outcome {
            OpOutcome::Ok => 0,
            OpOutcome::Fail => 1,
            OpOutcome::Info => 2,
            OpOutcome::Pending => 3,
        };
        stats.by_function.entry(op.f.clone()).or_default()[slot] += 1;
        // Every key an operation touched is listed, also those that never saw an ok.
        let key = op
            .key
            .as_ref()
            .map_or_else(|| "-".to_owned(), Value::to_string);
        *stats.ok_per_key.entry(key).or_default() += u64::from(op.outcome == OpOutcome::Ok);
        latencies.extend(op.latency_ns());
    }
    for counts in stats.by_function.values() {
        stats.ok += counts[0];
        stats.fail += counts[1];
        stats.info += counts[2];
        stats.pending += counts[3];
    }
    let all = stats.operations();
    stats.availability = if all == 0 {
        0.0
    } else {
        stats.ok as f64 / all as f64
    };
    latencies.sort_unstable();
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i] as f64 / 1e6
    };
    stats.latency_ms = Latency {
        p50: pct(0.5),
        p95: pct(0.95),
        p99: pct(0.99),
        max: pct(1.0),
    };
    stats
}

/// A fault as the history tells it: from its start invocation to its undo's completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The nemesis' fault id (pairs a start with its stop).
    pub id: Option<i64>,
    /// `partition`, `pause`, `kill`, `clock-bump`, `clock-strobe`, `loss`, …
    pub kind: String,
    /// The start's invocation (ns since the run started).
    pub start_ns: u64,
    /// When the fault was in force (the start's completion).
    pub in_force_ns: Option<u64>,
    /// When the undo completed; `None` when the history never saw it healed.
    pub end_ns: Option<u64>,
    /// What was done: shape, nodes, offsets.
    pub description: String,
    /// What the nemesis read back to show the fault took effect, then the heal's evidence.
    pub evidence: Vec<String>,
    /// How long applying took (µs).
    pub took_us: Option<i64>,
    /// Applying or undoing failed.
    pub error: Option<String>,
    /// What the evidence read back says: in effect, not in effect (also when applying
    /// failed), or `None` when the fault records no verdict on itself (loss is statistical;
    /// another tool's history).
    pub effective: Option<bool>,
    /// Every node's role just before the fault and once healed (`n1: leader (term 3)`),
    /// when the system can say.
    pub roles_before: Vec<String>,
    pub roles_after: Vec<String>,
}

impl FaultWindow {
    /// The end of the window, open windows running to `history_end`.
    pub fn end_or(&self, history_end: u64) -> u64 {
        self.end_ns.unwrap_or(history_end).max(self.start_ns)
    }
}

/// How many faults the evidence shows in effect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEffect {
    pub faults: usize,
    /// Evidence says it took effect.
    pub in_effect: usize,
    /// Evidence says it did not take effect (or applying it failed).
    pub not_in_effect: usize,
    /// No verdict recorded (e.g. packet loss, which is statistical).
    pub unverified: usize,
    /// Whether a fault not in effect makes the run `unknown` (the campaign's
    /// `nemesis.require_effect`).
    pub required: bool,
}

impl FaultEffect {
    /// Counts `faults`; `required` is the campaign's `nemesis.require_effect`.
    pub fn of(faults: &[FaultWindow], required: bool) -> FaultEffect {
        let mut effect = FaultEffect {
            faults: faults.len(),
            required,
            ..FaultEffect::default()
        };
        for w in faults {
            if w.effective == Some(false) {
                effect.not_in_effect += 1;
            } else if w.effective == Some(true) {
                effect.in_effect += 1;
            } else {
                effect.unverified += 1;
            }
        }
        effect
    }

    /// `2 of 4 faults did not take effect`.
    pub fn reason(&self) -> String {
        format!(
            "{} of {} faults did not take effect",
            self.not_in_effect, self.faults
        )
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::Keyword(s) => s.clone(),
        Value::List(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Reads the fault windows out of the nemesis events of a history.
pub fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    // Pairing by id; a history without ids (another tool's) pairs a stop with the oldest
    // open fault.
    let mut open: Vec<usize> = Vec::new();
    let find_open = |windows: &[FaultWindow], open: &[usize], id: Option<i64>| -> Option<usize> {
        open.iter()
            .position(|&w| id.is_none() || windows[w].id == id)
    };
    for e in history
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
    {
        let record = FaultRecord::from_value(&e.value);
        let id = record.id;
        let time = e.time.unwrap_or(0);
        let error = e.error.as_ref().map(text_of);
        if is_stop_event(&e.f) {
            if e.kind == EventType::Invoke {
                continue;
            }
            let Some(pos) = find_open(&windows, &open, id) else {
                continue;
            };
            let w = &mut windows[open.remove(pos)];
            w.end_ns = Some(time);
            w.roles_after = record.roles_after;
            if let Some(line) = leader_change(&w.roles_before, &w.roles_after) {
                w.evidence.insert(0, line);
            }
            w.evidence.extend(
                record
                    .evidence
                    .into_iter()
                    .chain(record.observed)
                    .map(|x| format!("after heal: {x}")),
            );
            if error.is_some() {
                w.error = error;
            }
            continue;
        }
        if e.kind == EventType::Invoke {
            let kind = kind_of_start(&e.f);
            open.push(windows.len());
            windows.push(FaultWindow {
                id,
                kind,
                start_ns: time,
                in_force_ns: None,
                end_ns: None,
                description: record.describe(),
                evidence: Vec::new(),
                took_us: None,
                error: None,
                effective: None,
                roles_before: Vec::new(),
                roles_after: Vec::new(),
            });
            continue;
        }
        // The start's completion: in force, with what was done and the evidence.
        let Some(pos) = open
            .iter()
            .rposition(|&w| windows[w].id == id && windows[w].in_force_ns.is_none())
        else {
            continue;
        };
        let w = &mut windows[open[pos]];
        w.in_force_ns = Some(time);
        let detail = record.describe();
        if !detail.is_empty() {
            w.description = detail;
        }
        w.roles_before = record.roles_before;
        w.took_us = record.took_us;
        // Applying failed: whatever part went in, the fault as planned did not.
        w.effective = if error.is_some() {
            Some(false)
        } else {
            record.effective
        };
        w.evidence.extend(record.evidence);
        w.evidence.extend(
            record
                .observed
                .into_iter()
                .map(|x| format!("clock seen: {x}")),
        );
        w.error = error;
    }
    windows
}

/// A node's role in a role line (`n1: leader (term 3)` → (`n1`, `leader`, 3)).
pub fn parse_role(line: &str) -> Option<(&str, &str, Option<u64>)> {
    let (node, rest) = line.split_once(": ")?;
    let role = rest.split_whitespace().next()?;
    let term = rest
        .split_once("(term ")
        .and_then(|(_, t)| t.trim_end_matches(')').parse().ok());
    Some((node, role, term))
}

/// The leader among role lines (the highest term among those claiming to lead).
pub fn leader_of(roles: &[String]) -> Option<(String, Option<u64>)> {
    roles
        .iter()
        .filter_map(|l| parse_role(l))
        .filter(|(_, role, _)| *role == "leader")
        .max_by_key(|(_, _, term)| *term)
        .map(|(node, _, term)| (node.to_owned(), term))
}

/// `leader: n1 (term 2) before, n2 (term 3) after heal: changed`, when roles were recorded.
fn leader_change(before: &[String], after: &[String]) -> Option<String> {
    if before.is_empty() && after.is_empty() {
        return None;
    }
    let show = |l: &Option<(String, Option<u64>)>| match l {
        Some((node, Some(term))) => format!("{node} (term {term})"),
        Some((node, None)) => node.clone(),
        None => "none".to_owned(),
    };
    let (b, a) = (leader_of(before), leader_of(after));
    let verdict = match (&b, &a) {
        (Some((x, _)), Some((y, _))) if x == y => "unchanged",
        (Some(_), Some(_)) => "changed",
        (Some(_), None) => "no node led right after the heal",
        (None, Some(_)) => "no node led right before the fault",
        (None, None) => "no node led either time",
    };
    Some(format!(
        "leader: {} before, {} after heal: {verdict}",
        show(&b),
        show(&a)
    ))
}

/// How many faults saw the leader change (before the fault → after its heal).
pub fn leader_changes(faults: &[FaultWindow]) -> Option<usize> {
    let known: Vec<&FaultWindow> = faults
        .iter()
        .filter(|w| !w.roles_before.is_empty() && !w.roles_after.is_empty())
        .collect();
    if known.is_empty() {
        return None;
    }
    Some(
        known
            .iter()
            .filter(|w| {
                matches!(
                    (leader_of(&w.roles_before), leader_of(&w.roles_after)),
                    (Some((a, _)), Some((b, _))) if a != b
                )
            })
            .count(),
    )
}

fn leader_changes_text(faults: &[FaultWindow]) -> String {
    match leader_changes(faults) {
        Some(n) => format!(", the leader changed across {n}"),
        None => String::new(),
    }
}

/// The "what" of a fault, from its value map: shape, nodes, offsets, note.
/// Operations, availability and tail latency of a part of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseStats {
    pub operations: u64,
    pub ok: u64,
    /// ok / operations (0 when there were none).
    pub availability: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl PhaseStats {
    fn of(stats: &OpStats) -> PhaseStats {
        PhaseStats {
            operations: stats.operations(),
            ok: stats.ok,
            availability: stats.availability,
            p50_ms: stats.latency_ms.p50,
            p99_ms: stats.latency_ms.p99,
        }
    }
}

/// What the history says beyond the checkers' verdicts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    pub ops: OpStats,
    /// Operations overlapping a fault window (from invocation to completion, a pending one
    /// to the end of the history).
    pub during_faults: PhaseStats,
    /// Operations overlapping none.
    pub healthy: PhaseStats,
    /// Per fault kind: operations overlapping a window of that kind.
    pub by_fault: BTreeMap<String, PhaseStats>,
    pub faults: Vec<FaultWindow>,
    /// The end of the history (ns).
    pub end_ns: u64,
}

/// Counts, availability in and out of faults, and the faults themselves.
pub fn analyse(history: &History) -> Analysis {
    let ops = client_ops(history);
    let faults = fault_windows(history);
    let end = history_end_ns(history);
    let overlaps = |op: &ClientOp, w: &FaultWindow| {
        let op_end = op.end_ns.unwrap_or(end);
        op.start_ns <= w.end_or(end) && op_end >= w.start_ns
    };
    let (faulty, healthy): (Vec<&ClientOp>, Vec<&ClientOp>) = ops
        .iter()
        .partition(|op| faults.iter().any(|w| overlaps(op, w)));
    let mut by_fault = BTreeMap::new();
    let kinds: std::collections::BTreeSet<&str> = faults.iter().map(|w| w.kind.as_str()).collect();
    for kind in kinds {
        let of_kind = faulty
            .iter()
            .copied()
            .filter(|op| faults.iter().any(|w| w.kind == kind && overlaps(op, w)));
        by_fault.insert(kind.to_owned(), PhaseStats::of(&stats_of(of_kind)));
    }
    Analysis {
        ops: stats_of(ops.iter()),
        during_faults: PhaseStats::of(&stats_of(faulty.into_iter())),
        healthy: PhaseStats::of(&stats_of(healthy.into_iter())),
        by_fault,
        faults,
        end_ns: end,
    }
}

/// The outcome of one checker.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckerOutcome {
    pub checker: String,
    #[serde(with = "verdict_text")]
    pub verdict: Verdict,
    /// One line: what the checker found.
    pub detail: String,
    #[serde(default)]
    pub result: serde_json::Value,
    /// The first counterexample of an `invalid` linearizability check.
    #[serde(skip)]
    pub counterexample: Option<Counterexample>,
    /// Every key a linearizability check found invalid (in `results.json` as the run's
    /// `invalid_keys`).
    #[serde(skip)]
    pub invalid_keys: Vec<Value>,
    /// For a `valid` linearizability check of a history small enough to draw (see
    /// [`drawable_keys`]): each key's linearization, in key order. Not in `results.json`.
    #[serde(skip)]
    pub linearizations: Vec<(Option<Value>, Linearization)>,
}

/// The version of `results.json` this build writes. 1: no `format` field, `latency_ms` as
/// `[p50, p95, p99, max]`; 2: `format` and named latencies. Every earlier version still loads.
pub const RESULTS_FORMAT: u32 = 2;

fn format_1() -> u32 {
    1
}

/// The results document of one run (`results.json`): written once at the end of the run,
/// handed to whoever needs it in the same process and read back with [`RunResults::load`]
/// from a stored run.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// [`RESULTS_FORMAT`] when written; 1 for run directories from before it was recorded.
    #[serde(default = "format_1")]
    pub format: u32,
    #[serde(with = "verdict_text")]
    pub verdict: Verdict,
    pub campaign: String,
    pub system: String,
    #[serde(default)]
    pub nodes: Vec<String>,
    pub model: String,
    pub seed: u64,
    pub run_id: String,
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub node_deaths: Vec<String>,
    /// Length of the main phase (seconds).
    #[serde(default)]
    pub main_phase_s: f64,
    pub operations: OpStats,
    #[serde(default)]
    pub availability: Availability,
    /// The kinds of the faults the history shows.
    #[serde(default)]
    pub fault_kinds: std::collections::BTreeSet<String>,
    #[serde(default)]
    pub fault_effect: FaultEffect,
    /// Faults across which the leader changed (`None` when the system cannot say).
    #[serde(default)]
    pub leader_changes: Option<usize>,
    /// The keys any linearizability check found invalid.
    #[serde(default)]
    pub invalid_keys: Vec<Value>,
    #[serde(default)]
    pub faults: Vec<FaultWindow>,
    #[serde(default)]
    pub checkers: Vec<CheckerOutcome>,
    /// False for a run re-checked from a directory without `results.json`: its controller
    /// was killed, so the history is a prefix of the run.
    #[serde(default = "finished_default")]
    pub finished: bool,
    /// Why the verdict is `unknown` when no checker says it (an unfinished run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

fn finished_default() -> bool {
    true
}

impl RunResults {
    /// The document of a checked run: its facts, the history's analysis, the combined
    /// verdict and each checker's outcome.
    pub fn new(
        facts: &RunFacts,
        analysis: &Analysis,
        verdict: Verdict,
        checkers: Vec<CheckerOutcome>,
    ) -> RunResults {
        let campaign = facts.campaign;
        RunResults {
            format: RESULTS_FORMAT,
            verdict,
            campaign: campaign.name.clone(),
            system: campaign.system.name(),
            nodes: facts.nodes.clone(),
            model: campaign.model().name().to_owned(),
            seed: facts.seed,
            run_id: facts.run_id.to_owned(),
            interrupted: facts.interrupted,
            node_deaths: facts.node_deaths.clone(),
            main_phase_s: facts.main_elapsed.as_secs_f64(),
            operations: analysis.ops.clone(),
            availability: Availability {
                overall: analysis.ops.availability,
                during_faults: analysis.during_faults.clone(),
                healthy: analysis.healthy.clone(),
                by_fault: analysis.by_fault.clone(),
            },
            fault_kinds: analysis.faults.iter().map(|w| w.kind.clone()).collect(),
            fault_effect: FaultEffect::of(&analysis.faults, campaign.nemesis.require_effect),
            leader_changes: leader_changes(&analysis.faults),
            invalid_keys: checkers
                .iter()
                .flat_map(|o| o.invalid_keys.iter().cloned())
                .collect(),
            faults: analysis.faults.clone(),
            checkers,
            finished: true,
            cause: None,
        }
    }

    /// Reads a stored `results.json`, whichever format version wrote it.
    pub fn load(path: &std::path::Path) -> Result<RunResults, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
            path: path.to_owned(),
            source,
        })?;
        let results: RunResults =
            serde_json::from_str(&text).map_err(|source| ResultsError::Json {
                path: path.to_owned(),
                source,
            })?;
        if results.format > RESULTS_FORMAT {
            return Err(ResultsError::NewerFormat {
                path: path.to_owned(),
                format: results.format,
            });
        }
        Ok(results)
    }

    /// Client operations of every outcome.
    pub fn operation_count(&self) -> u64 {
        self.operations.operations()
    }
}

/// Reading a stored `results.json` failed.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: results format {format} is newer than this build reads ({RESULTS_FORMAT})", path.display())]
    NewerFormat {
        path: std::path::PathBuf,
        format: u32,
    },
}

/// Availability overall, in and out of faults, and per fault kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Availability {
    pub overall: f64,
    pub during_faults: PhaseStats,
    pub healthy: PhaseStats,
    pub by_fault: BTreeMap<String, PhaseStats>,
}

/// A [`Verdict`] as its lowercase name (`valid`, `invalid`, `unknown`).
mod verdict_text {
    use splitbrain_checkers::Verdict;

    pub fn serialize<S: serde::Serializer>(v: &Verdict, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(v, s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        [Verdict::Valid, Verdict::Invalid, Verdict::Unknown]
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "verdict `{text}`: expected valid, invalid or unknown"
                ))
            })
    }
}

/// What the checkers said, rendered.
pub struct Checked {
    pub verdict: Verdict,
    pub table: String,
    /// The results document (`results.json`).
    pub results: RunResults,
    pub analysis: Analysis,
}

/// Keys whose linearization the report draws at most.
pub const MAX_LINEARIZED_KEYS: usize = 20;
/// Operations of one key whose linearization the report draws at most.
pub const MAX_LINEARIZED_OPS_PER_KEY: usize = 2_000;

/// Whether the history is small enough for the report to draw each key's linearization:
/// at most [`MAX_LINEARIZED_KEYS`] keys of at most [`MAX_LINEARIZED_OPS_PER_KEY`] client
/// operations each.
pub fn drawable_keys(history: &History) -> bool {
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for e in &history.events {
        if e.process != Process::Nemesis && e.kind == EventType::Invoke {
            let key = e.key.as_ref().map_or_else(String::new, Value::to_string);
            let n = per_key.entry(key).or_default();
            *n += 1;
            if *n > MAX_LINEARIZED_OPS_PER_KEY {
                return false;
            }
        }
        if per_key.len() > MAX_LINEARIZED_KEYS {
            return false;
        }
    }
    true
}

/// Runs the checkers that fit the workload and builds the summary.
pub fn check_and_summarise(history: &History, facts: &RunFacts) -> anyhow::Result<Checked> {
    let campaign = facts.campaign;
    let analysis = analyse(history);
    let stats = &analysis.ops;
    let mut outcomes = Vec::new();
    // An interrupted run with no time left for the check (a second signal abandoned it):
    // nothing is searched, the verdict is `unknown`.
    let abandoned = facts.interrupted && campaign.checker.time_limit.is_zero();
    if abandoned {
        outcomes.push(CheckerOutcome {
            checker: "consistency".into(),
            verdict: Verdict::Unknown,
            detail: "not checked: the check was abandoned (interrupted twice)".into(),
            result: serde_json::Value::Null,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
        });
    } else if let Some(txn) = crate::txn_check::check(history, campaign)? {
        outcomes.push(txn);
    } else if campaign.workload.kind == WorkloadKind::Set {
        let r = set_checker::check_sets(history);
        let lost: usize = r.keys.iter().map(|k| k.lost.len()).sum();
        let unexpected: usize = r.keys.iter().map(|k| k.unexpected.len()).sum();
        let duplicated: usize = r.keys.iter().map(|k| k.duplicated.len()).sum();
        outcomes.push(CheckerOutcome {
            checker: "set".into(),
            verdict: r.verdict,
            detail: format!(
                "{} sets; lost {lost}, unexpected {unexpected}, duplicated {duplicated}",
                r.keys.len()
            ),
            result: serde_json::to_value(&r)?,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
        });
    } else {
        let model = ModelSpec::new(campaign.model());
        // Every key is checked (the library's default), so every anomaly is reported.
        let opts = CheckOptions {
            time_limit: Some(campaign.checker.time_limit),
            memory_budget: Some(default_memory_budget()),
            first_failure: false,
            // The report draws the linearization of a valid history that is small enough.
            witness: drawable_keys(history),
            ..CheckOptions::default()
        };
        let mut r = linearizability::check(history, &model, &opts)?;
        // Shown in the report only (for a valid history): `results.json` stays the size
        // it was, also when valid keys of an invalid history carry theirs.
        let mut linearizations: Vec<_> = r
            .keys
            .iter_mut()
            .filter_map(|k| Some((k.key.clone(), k.linearization.take()?)))
            .collect();
        if r.verdict != Verdict::Valid {
            linearizations.clear();
        }
        let counterexample = r.keys.iter().find_map(|k| k.counterexample.clone());
        let invalid_keys = r
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Invalid)
            .count();
        let detail = match r.verdict {
            Verdict::Invalid => {
                let first = counterexample
                    .as_ref()
                    .map(describe_counterexample)
                    .unwrap_or_else(|| "not linearizable".into());
                format!(
                    "{invalid_keys} of {} keys invalid (every key checked); the first: {first}",
                    r.keys.len()
                )
            }
            Verdict::Unknown => r
                .cause
                .clone()
                .or_else(|| r.keys.iter().find_map(|k| k.cause.clone()))
                .unwrap_or_default(),
            Verdict::Valid => format!(
                "{} keys, {} configurations explored",
                r.keys.len(),
                r.configurations
            ),
        };
        outcomes.push(CheckerOutcome {
            checker: format!("linearizable ({})", model.kind.name()),
            verdict: r.verdict,
            detail,
            result: serde_json::to_value(&r)?,
            counterexample,
            invalid_keys: r
                .keys
                .iter()
                .filter(|k| k.verdict == Verdict::Invalid)
                .map(|k| k.key.clone().unwrap_or(Value::Nil))
                .collect(),
            linearizations,
        });
    }

    // No vacuous verdicts: too little evidence is not a plain `valid`.
    let min_ok = campaign.checker.min_ok_per_key as u64;
    let keys = stats.ok_per_key.len();
    let thin = stats.ok_per_key.values().filter(|n| **n < min_ok).count();
    // Indeterminate operations constrain nothing: a run that is mostly `info` says little.
    let determinate = stats.ok + stats.fail;
    let evidence = if stats.ok == 0 {
        Some("no operation succeeded".to_owned())
    } else if stats.info + stats.pending > determinate {
        Some(format!(
            "most operations are indeterminate ({} info or pending against {determinate} ok or fail)",
            stats.info + stats.pending
        ))
    } else if thin * 2 > keys {
        Some(format!(
            "{thin} of {keys} keys saw fewer than {min_ok} ok operations"
        ))
    } else {
        None
    };
    outcomes.push(CheckerOutcome {
        checker: "evidence".into(),
        verdict: if evidence.is_some() {
            Verdict::Unknown
        } else {
            Verdict::Valid
        },
        detail: evidence.unwrap_or_else(|| format!("{} ok operations over {keys} keys", stats.ok)),
        result: serde_json::Value::Null,
        counterexample: None,
        invalid_keys: Vec::new(),
        linearizations: Vec::new(),
    });
    // A fault that did not bite was not tested: the run says so instead of passing.
    let fault_effect = FaultEffect::of(&analysis.faults, campaign.nemesis.require_effect);
    if fault_effect.faults > 0 {
        let not_in_effect: Vec<String> = analysis
            .faults
            .iter()
            .filter(|w| w.effective == Some(false))
            .map(|w| {
                format!(
                    "{}{}",
                    w.kind,
                    w.id.map_or_else(String::new, |i| format!(" #{i}"))
                )
            })
            .collect();
        let unverified: Vec<String> = analysis
            .faults
            .iter()
            .filter(|w| w.effective.is_none())
            .map(|w| {
                format!(
                    "{}{}",
                    w.kind,
                    w.id.map_or_else(String::new, |i| format!(" #{i}"))
                )
            })
            .collect();
        let (verdict, detail) = if fault_effect.not_in_effect == 0
            && fault_effect.unverified > 0
            && fault_effect.required
        {
            // No evidence of effect is not evidence of effect: not shown, not tested.
            (
                Verdict::Unknown,
                format!(
                    "{} of {} faults not shown in effect (no evidence): {}",
                    fault_effect.unverified,
                    fault_effect.faults,
                    unverified.join(", ")
                ),
            )
        } else if fault_effect.not_in_effect == 0 {
            (
                Verdict::Valid,
                format!(
                    "{} of {} faults shown in effect{}",
                    fault_effect.in_effect,
                    fault_effect.faults,
                    if fault_effect.unverified > 0 {
                        format!(
                            ", {} not verifiable (not counted: nemesis.require_effect is false)",
                            fault_effect.unverified
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        } else if fault_effect.required {
            (
                Verdict::Unknown,
                format!("{}: {}", fault_effect.reason(), not_in_effect.join(", ")),
            )
        } else {
            (
                Verdict::Valid,
                format!(
                    "{}: {} (not counted: nemesis.require_effect is false)",
                    fault_effect.reason(),
                    not_in_effect.join(", ")
                ),
            )
        };
        outcomes.push(CheckerOutcome {
            checker: "fault effect".into(),
            verdict,
            detail,
            result: serde_json::to_value(&fault_effect)?,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
        });
    }
    // A run cut short by a signal did not test what the campaign asked for: `unknown`
    // (cause `interrupted`) unless the history so far is already invalid.
    if facts.interrupted {
        outcomes.push(CheckerOutcome {
            checker: "interrupted".into(),
            verdict: Verdict::Unknown,
            detail: "interrupted: the run was cut short by a signal".into(),
            result: serde_json::Value::Null,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
        });
    }
    let verdict = outcomes
        .iter()
        .fold(Verdict::Valid, |v, o| v.combine(o.verdict));
    let cause = (verdict == Verdict::Unknown && facts.interrupted).then_some("interrupted");

    let table = render(facts, &analysis, &outcomes, verdict);
    let mut results = RunResults::new(facts, &analysis, verdict, outcomes);
    results.cause = cause.map(str::to_owned);
    Ok(Checked {
        verdict,
        table,
        results,
        analysis,
    })
}

fn describe_counterexample(c: &Counterexample) -> String {
    let key = c
        .key
        .as_ref()
        .map_or_else(String::new, |k| format!("key {k}: "));
    let op = &c.operation;
    format!(
        "{key}{} {} by process {} (event {}) fits no order after {} linearized operations; states there: {}",
        op.f,
        op.output.as_ref().unwrap_or(&op.value),
        op.process,
        op.index,
        c.prefix.len(),
        c.states.join(", ")
    )
}

fn describe_op(op: &OpSummary) -> String {
    let observed = match &op.output {
        // A read's invocation value is nil: show what it saw, even when that is nil too.
        Some(out) if *out != op.value || op.value.is_nil() => format!(" -> {out}"),
        _ => String::new(),
    };
    format!(
        "process {} {} {}{observed} ({}, event {})",
        op.process, op.f, op.value, op.outcome, op.index
    )
}

/// Prefix operations spelt out before the one that breaks it.
const PREFIX_SHOWN: usize = 8;

/// A counterexample in words, over several lines: what broke, after what, and why.
pub fn counterexample_text(c: &Counterexample) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let key = c
        .key
        .as_ref()
        .map_or_else(|| "the register".to_owned(), |k| format!("key {k}"));
    let states = if c.states.is_empty() {
        "no state at all".to_owned()
    } else {
        c.states.join(" or ")
    };
    let _ = writeln!(
        out,
        "{key} is not linearizable: {} cannot be placed.",
        describe_op(&c.operation)
    );
    let _ = writeln!(
        out,
        "The longest linearizable prefix has {} operations; after it the value can only be {states}, which this operation contradicts.",
        c.prefix.len()
    );
    let skipped = c.prefix.len().saturating_sub(PREFIX_SHOWN);
    if skipped > 0 {
        let _ = writeln!(out, "  … {skipped} earlier operations");
    }
    for (i, op) in c.prefix.iter().enumerate().skip(skipped) {
        let _ = writeln!(out, "  {}. {}", i + 1, describe_op(op));
    }
    let _ = writeln!(out, "  ✗ {}", describe_op(&c.operation));
    out
}

/// Seconds since the start of the run, for tables.
fn at(ns: u64) -> String {
    format!("{:.1}s", ns as f64 / 1e9)
}

/// Evidence items kept per fault in the table (the full list is in results.json).
const EVIDENCE_SHOWN: usize = 4;

fn render(
    facts: &RunFacts,
    analysis: &Analysis,
    outcomes: &[CheckerOutcome],
    verdict: Verdict,
) -> String {
    let c = facts.campaign;
    let stats = &analysis.ops;
    let mut b = Builder::default();
    b.push_record(["campaign", &c.name]);
    b.push_record([
        "system".to_owned(),
        format!("{} ({} nodes)", c.system.name(), facts.nodes.len()),
    ]);
    b.push_record(["seed".to_owned(), facts.seed.to_string()]);
    b.push_record([
        "main phase".to_owned(),
        format!(
            "{:.1}s{}",
            facts.main_elapsed.as_secs_f64(),
            if facts.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        ),
    ]);
    if !facts.node_deaths.is_empty() {
        b.push_record([
            format!("node crashes: {}", facts.node_deaths.len()),
            facts.node_deaths.join("\n"),
        ]);
    }
    for (f, [ok, fail, info, pending]) in &stats.by_function {
        b.push_record([
            format!("ops {f}"),
            format!("ok {ok}, fail {fail}, info {info}, pending {pending}"),
        ]);
    }
    let pct = |p: &PhaseStats| {
        if p.operations == 0 {
            "no operations".to_owned()
        } else {
            format!(
                "{:.1}% ok of {} ops, p99 {:.1}ms",
                p.availability * 100.0,
                p.operations,
                p.p99_ms
            )
        }
    };
    b.push_record([
        "availability".to_owned(),
        format!(
            "{:.1}% ok of {} ops",
            stats.availability * 100.0,
            stats.operations()
        ),
    ]);
    if !analysis.faults.is_empty() {
        b.push_record(["  during faults".to_owned(), pct(&analysis.during_faults)]);
        b.push_record(["  while healthy".to_owned(), pct(&analysis.healthy)]);
        for (kind, p) in &analysis.by_fault {
            b.push_record([format!("  during {kind}"), pct(p)]);
        }
    }
    let Latency { p50, p95, p99, max } = stats.latency_ms;
    b.push_record([
        "latency".to_owned(),
        format!("p50 {p50:.1}ms, p95 {p95:.1}ms, p99 {p99:.1}ms, max {max:.1}ms"),
    ]);
    if analysis.faults.is_empty() {
        b.push_record(["faults", "none injected"]);
    } else {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for w in &analysis.faults {
            *counts.entry(&w.kind).or_default() += 1;
        }
        let failed = analysis.faults.iter().filter(|w| w.error.is_some()).count();
        let not_in_effect = analysis
            .faults
            .iter()
            .filter(|w| w.effective == Some(false))
            .count();
        b.push_record([
            "faults".to_owned(),
            format!(
                "{} injected ({}){}",
                analysis.faults.len(),
                counts
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if failed > 0 {
                    format!(", {failed} with errors")
                } else {
                    String::new()
                },
            ) + &leader_changes_text(&analysis.faults)
                + &if not_in_effect > 0 {
                    format!(
                        ", {not_in_effect} of {} did not take effect",
                        analysis.faults.len()
                    )
                } else {
                    String::new()
                },
        ]);
        for w in &analysis.faults {
            let span = format!(
                "{}–{}",
                at(w.start_ns),
                w.end_ns.map_or_else(|| "end".to_owned(), at)
            );
            let mut text = format!("{span} {}", w.description);
            if let Some(took) = w.took_us {
                text.push_str(&format!(" (applied in {:.1}ms)", took as f64 / 1e3));
            }
            for e in w.evidence.iter().take(EVIDENCE_SHOWN) {
                text.push_str(&format!("\n  {e}"));
            }
            if w.evidence.len() > EVIDENCE_SHOWN {
                text.push_str(&format!("\n  … {} more", w.evidence.len() - EVIDENCE_SHOWN));
            }
            if w.evidence.is_empty() && w.error.is_none() {
                text.push_str("\n  no evidence recorded");
            }
            if let Some(e) = &w.error {
                text.push_str(&format!("\n  error: {e}"));
            }
            let id = w.id.map_or_else(String::new, |i| format!(" #{i}"));
            let label = if w.effective == Some(false) {
                format!("  {}{id}\n  ✗ NOT IN EFFECT", w.kind)
            } else {
                format!("  {}{id}", w.kind)
            };
            b.push_record([label, text]);
        }
    }
    for o in outcomes {
        b.push_record([
            format!("checker {}", o.checker),
            format!("{}: {}", o.verdict, o.detail),
        ]);
        if let Some(cex) = &o.counterexample {
            b.push_record([
                "counterexample".to_owned(),
                counterexample_text(cex).trim_end().to_owned(),
            ]);
        }
    }
    b.push_record(["verdict".to_owned(), verdict.to_string().to_uppercase()]);
    let mut table = b.build();
    table.with(Style::sharp());
    format!("{table}\n")
}

/// The summary for a terminal: the lines that say a fault did not take effect in red
/// (unless `NO_COLOR` is set). Files and pipes get the plain table.
pub fn for_terminal(table: &str) -> String {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return table.to_owned();
    }
    table
        .lines()
        .map(|line| {
            if line.contains("NOT IN EFFECT") || line.contains("did not take effect") {
                format!("\x1b[31m{line}\x1b[0m\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// Half of the machine's memory, at most 8 GiB: the search gives up (unknown) before the
/// machine does.
pub fn default_memory_budget() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(4 << 30, |kb| kb * 1024);
    (total / 2).min(8 << 30)
}
