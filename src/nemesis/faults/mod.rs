//! Fault kinds as values: one file per kind, one line per kind in [`REGISTRY`].
//!
//! A kind ([`FaultType`]) is a small constructor: it checks that this machine can do it,
//! and plans one fault from the campaign's request (pure, seeded). The plan
//! ([`PlannedFault`]) describes itself for the history and applies itself to the live
//! cluster, which gives back an [`AppliedFault`]: it holds whatever it needs to prove that
//! it bit ([`AppliedFault::evidence`]) and to take itself back ([`AppliedFault::undo`],
//! idempotent). The runner only keeps the schedule's clock and the guard that undoes
//! whatever is still in force.
//!
//! * [`partition`] — network partitions of some shape;
//! * [`process`] — pause / resume and kill / start again;
//! * [`clock`] — clock bumps and strobes (libfaketime);
//! * [`packet`] — loss, delay, reorder, duplication;
//! * [`disk`] — lost unsynced writes, torn writes, failing syncs, a full or slow disk;
//! * [`corrupt`] — a file of a node's disk corrupted while the node is down;
//! * [`remote`] — partitions, pauses and kills of nodes on remote hosts (over SSH).
//!
//! Effects go through the nemesis' effectful modules (`net`, `netlink`, `nfqueue`,
//! `process`, `clock`, `packet`), one per mechanism; what is here decides and records.

pub mod clock;
pub mod corrupt;
pub mod disk;
pub mod packet;
pub mod partition;
pub mod process;
pub mod remote;
pub mod remote_disk;

use super::context::{Leadership, NemesisContext};
use super::process::ProcessEvidence;
use super::record::{FaultRecord, PlannedTargets};
use super::spec::{NemesisSpec, SignedDuration, TargetSpec};
use super::{NemesisError, Shape};
use crate::capability::{self, Capability};
use crate::node::NodeError;
use crate::system::System;
use rand::seq::SliceRandom;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Every fault kind a campaign can name, in the order error messages list them. Adding a
/// kind is one file in this directory and one line here.
pub static REGISTRY: &[&dyn FaultType] = &[
    &partition::Partition,
    &process::PAUSE,
    &process::KILL,
    &clock::CLOCK,
    &clock::BUMP,
    &clock::STROBE,
    &packet::Loss,
    &packet::DELAY,
    &packet::REORDER,
    &packet::DUPLICATE,
    &disk::DISK,
    &disk::LOSE_UNSYNCED,
    &disk::TORN_WRITE,
    &disk::FSYNC_ERROR,
    &disk::ENOSPC,
    &disk::SLOW,
    &corrupt::CORRUPT,
];

/// A kind of fault: checks this machine can do it, and plans one. Kinds are constants
/// (campaigns hold them), hence `Sync` and unwind-safe.
pub trait FaultType: Sync + std::panic::RefUnwindSafe {
    /// The kind's name in campaigns and records (`partition`, `clock-bump`, …).
    fn name(&self) -> &'static str;
    /// The history's `f` of the events that start and undo a fault of this kind.
    fn start_event(&self) -> &'static str;
    fn stop_event(&self) -> &'static str;
    /// Which kernel or node state faults of this kind hold while in force: two faults
    /// holding the same may not overlap (undoing one would undo the other).
    fn holds(&self) -> Holds {
        Holds::Own(self.name())
    }
    /// Whether nodes must start with libfaketime preloaded (their clocks skewed later).
    fn needs_clock(&self) -> bool {
        false
    }
    /// Whether faults of this kind stop, freeze or restart node processes. A random
    /// schedule never overlaps two such faults: a node killed while frozen would start
    /// again frozen.
    fn acts_on_processes(&self) -> bool {
        false
    }
    /// How a fault of this kind picks its nodes: by a [`TargetSpec`] (`target:`), or, for
    /// partitions, by a [`Shape`] (`shape:`). A timeline item giving the other one is
    /// refused, never ignored.
    fn chosen_by(&self) -> ChosenBy {
        ChosenBy::Target
    }
    /// Checks, before anything starts, that this machine can do faults of this kind to
    /// `nodes` nodes of `system`; the error names what is missing.
    fn check_host(
        &self,
        spec: &NemesisSpec,
        system: &dyn System,
        nodes: usize,
    ) -> Result<(), NemesisError> {
        let _ = (spec, system, nodes);
        Ok(())
    }
    /// Plans one fault (pure: only `request` and its random source decide).
    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError>;
}

/// What faults of a kind hold while in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// State of the kind's own (its routes, its table, a node's freezer).
    Own(&'static str),
    /// State shared with other kinds, and why (`a node's one netem qdisc`).
    Shared(&'static str),
}

/// One fault, planned: what it will do, in terms of nodes by name (or a role resolved
/// when it starts).
pub trait PlannedFault: fmt::Debug + Send + Sync + PlanData {
    /// The kind recorded (a `clock` fault plans as `clock-bump` or `clock-strobe`).
    fn kind(&self) -> FaultKind;
    /// The plan, as recorded when the fault starts: targets, shape, offsets, percentages.
    fn describe(&self) -> FaultRecord;
    /// Puts the fault in force on the live cluster. `leadership` is who led just before.
    /// On failure, whatever part did go in comes back too, so it is undone all the same.
    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed>;
}

/// A fault in force.
pub trait AppliedFault: Send {
    /// Reads back, after the fault went in, what shows it bit: probes, counters, clocks.
    /// `effective` says whether it did (absent when it cannot tell).
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let _ = ctx;
        FaultRecord::default()
    }
    /// Takes the fault back, with what shows it is gone. Idempotent: a second call does
    /// nothing and reports nothing.
    fn undo(&mut self, ctx: &NemesisContext) -> Undone;
}

/// A fault that went in: its undo, and the record of what was done.
pub struct Applied {
    pub fault: Box<dyn AppliedFault>,
    pub record: FaultRecord,
}

/// A fault that did not go in (or only in part).
pub struct Failed {
    /// What did go in, to be undone like a fault.
    pub partial: Option<Box<dyn AppliedFault>>,
    pub message: String,
}

impl Failed {
    pub fn nothing_applied(message: impl fmt::Display) -> Failed {
        Failed {
            partial: None,
            message: message.to_string(),
        }
    }
}

/// What undoing did: the record (nodes, evidence), and the first error.
#[derive(Debug, Default)]
pub struct Undone {
    pub record: FaultRecord,
    pub error: Option<String>,
}

/// What applying a fault node after node has done so far: the nodes it hit, their
/// evidence, and whether every piece of evidence says the fault took. On a failure the
/// nodes hit so far are the part to undo.
pub struct ApplyLog<F: Fn(Vec<String>) -> Box<dyn AppliedFault>> {
    /// Makes the applied fault (or the failure's part to undo) of the nodes hit.
    applied: F,
    hit: Vec<String>,
    evidence: Vec<String>,
    in_effect: bool,
}

impl<F: Fn(Vec<String>) -> Box<dyn AppliedFault>> ApplyLog<F> {
    pub fn new(applied: F) -> Self {
        ApplyLog {
            applied,
            hit: Vec::new(),
            evidence: Vec::new(),
            in_effect: true,
        }
    }

    /// `node` is hit: from now on it is part of what must be undone.
    pub fn hit(&mut self, node: &str) {
        self.hit.push(node.to_owned());
    }

    /// A line of evidence, and whether it shows the fault in effect.
    pub fn evidence(&mut self, line: String, in_effect: bool) {
        self.evidence.push(line);
        self.in_effect &= in_effect;
    }

    /// The fault stopped part way: what was hit is handed back to be undone.
    pub fn failed(self, message: impl fmt::Display) -> Failed {
        Failed {
            partial: Some((self.applied)(self.hit)),
            message: message.to_string(),
        }
    }

    /// Every target was handled: the fault is in effect when some node was hit and every
    /// piece of evidence says so.
    pub fn applied(self, nodes: Vec<String>, note: Option<String>) -> Applied {
        let effective = self.in_effect && !self.hit.is_empty();
        Applied {
            fault: (self.applied)(self.hit),
            record: FaultRecord {
                nodes,
                evidence: self.evidence,
                effective: Some(effective),
                note,
                ..FaultRecord::default()
            },
        }
    }
}

/// What an undo gathers while it heals node after node: evidence lines, and the first
/// error (the undo's error; the other nodes are still healed).
#[derive(Debug, Default)]
pub struct UndoLog {
    evidence: Vec<String>,
    error: Option<String>,
}

impl UndoLog {
    pub fn evidence(&mut self, line: String) {
        self.evidence.push(line);
    }

    /// Records each node's result of being started again or resumed: its evidence after
    /// `started`, or its error. With `failed`, an error is evidence too, after that prefix
    /// (a node that would not start on a corrupted disk is part of what the fault did).
    pub fn restarts(
        &mut self,
        results: Vec<Result<ProcessEvidence, NodeError>>,
        started: &str,
        failed: Option<&str>,
    ) {
        for result in results {
            match result {
                Ok(e) => self.evidence.push(format!("{started}{e}")),
                Err(e) => {
                    if let Some(failed) = failed {
                        self.evidence.push(format!("{failed}{e}"));
                    }
                    self.error.get_or_insert(e.to_string());
                }
            }
        }
    }

    /// Notes an error of one node's heal: the first is the undo's error.
    pub fn error(&mut self, e: impl std::fmt::Display) {
        self.error.get_or_insert(e.to_string());
    }

    pub fn undone(self, nodes: Vec<String>) -> Undone {
        Undone {
            record: FaultRecord {
                nodes,
                evidence: self.evidence,
                ..FaultRecord::default()
            },
            error: self.error,
        }
    }
}

/// The plan as data: cloned into reports, compared in tests, written to `nemesis.json`.
/// Implemented for every plan that is `Serialize + Clone`.
pub trait PlanData {
    fn to_json(&self) -> serde_json::Value;
    fn clone_box(&self) -> Box<dyn PlannedFault>;
    /// The plan as its own type (faults on remote hosts put plans in force their way).
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: PlannedFault + Serialize + Clone + 'static> PlanData for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a plan is plain data")
    }
    fn clone_box(&self) -> Box<dyn PlannedFault> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// How a fault kind picks the nodes it hits (see [`FaultType::chosen_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    /// `target:` (`one`, `minority`, `primaries`, `n3`, …).
    Target,
    /// `shape:` (`halves`, `isolate-one`, `isolate-leader`, …).
    Shape,
}

/// A fault kind of [`REGISTRY`], by name; what campaigns write (`faults: [partition]`).
#[derive(Clone, Copy)]
pub struct FaultKind(&'static dyn FaultType);

impl FaultKind {
    /// The registered kind called `name`.
    pub fn named(name: &str) -> Option<FaultKind> {
        REGISTRY
            .iter()
            .find(|k| k.name() == name)
            .map(|k| FaultKind(*k))
    }

    /// Every registered kind.
    pub fn all() -> impl Iterator<Item = FaultKind> {
        REGISTRY.iter().map(|k| FaultKind(*k))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn start_event(self) -> &'static str {
        self.0.start_event()
    }

    pub fn stop_event(self) -> &'static str {
        self.0.stop_event()
    }

    pub fn holds(self) -> Holds {
        self.0.holds()
    }

    pub fn needs_clock(self) -> bool {
        self.0.needs_clock()
    }

    pub fn acts_on_processes(self) -> bool {
        self.0.acts_on_processes()
    }

    /// Whether faults of this kind and of `other` may be in force at once in a random
    /// schedule: they hold different state and do not both act on node processes.
    pub fn may_overlap(self, other: FaultKind) -> bool {
        self.holds() != other.holds() && !(self.acts_on_processes() && other.acts_on_processes())
    }

    pub fn chosen_by(self) -> ChosenBy {
        self.0.chosen_by()
    }

    pub fn check_host(
        self,
        spec: &NemesisSpec,
        system: &dyn System,
        nodes: usize,
    ) -> Result<(), NemesisError> {
        self.0.check_host(spec, system, nodes)
    }

    pub fn plan(self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        self.0.plan(request)
    }
}

impl PartialEq for FaultKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for FaultKind {}

impl std::hash::Hash for FaultKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FaultKind {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        FaultKind::named(name).ok_or_else(|| {
            let known: Vec<String> = FaultKind::all().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown fault `{name}`, expected one of {}",
                known.join(", ")
            )
        })
    }
}

impl<'de> Deserialize<'de> for FaultKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for FaultKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What a campaign asks of one fault (a timeline item, or the random schedule's draw),
/// with the random source its plan draws from.
pub struct FaultRequest<'a> {
    pub spec: &'a NemesisSpec,
    /// The cluster's node names, in order.
    pub nodes: &'a [String],
    /// The node hit instead when a role-targeted fault finds no leader (drawn up front).
    pub fallback: String,
    pub shape: Shape,
    pub target: TargetSpec,
    /// Settings a timeline item gives; absent ones come from the spec's sections.
    pub offset: Option<SignedDuration>,
    pub percent: Option<u8>,
    pub delay: Option<Duration>,
    pub jitter: Option<Duration>,
    pub max_delay: Option<Duration>,
    pub rng: &'a mut dyn RngCore,
}

impl FaultRequest<'_> {
    /// The request's target resolved to nodes (drawn now) or to a role (resolved when the
    /// fault starts).
    pub fn targets(&mut self) -> Result<Targets, PlanError> {
        resolve_targets(&self.target, self.nodes, self.fallback.clone(), self.rng)
    }
}

/// Which nodes a fault hits, as far as known before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Targets {
    Nodes(Vec<String>),
    /// The leader at start time; `fallback` when the system cannot say.
    Primaries {
        fallback: String,
    },
}

impl Targets {
    /// As recorded in the plan.
    pub fn planned(&self) -> PlannedTargets {
        match self {
            Targets::Nodes(n) => PlannedTargets::Nodes(n.clone()),
            Targets::Primaries { .. } => PlannedTargets::Role("primaries".to_owned()),
        }
    }

    /// How many nodes the fault will hit (a role is one node).
    pub fn count(&self) -> usize {
        match self {
            Targets::Nodes(n) => n.len(),
            Targets::Primaries { .. } => 1,
        }
    }

    /// The nodes hit, resolved against who leads now, with a note when a role was resolved.
    pub fn resolve(&self, leadership: &Leadership) -> (Vec<String>, Option<String>) {
        match self {
            Targets::Nodes(nodes) => (nodes.clone(), None),
            Targets::Primaries { fallback } => {
                let (leader, note) = leadership.leader_or(fallback);
                (vec![leader], Some(note))
            }
        }
    }
}

/// `target` among `nodes`, drawn from `rng`.
pub fn resolve_targets(
    target: &TargetSpec,
    nodes: &[String],
    fallback: String,
    rng: &mut dyn RngCore,
) -> Result<Targets, PlanError> {
    let n = nodes.len();
    let mut pick = |count: usize| {
        let mut chosen: Vec<String> = nodes.choose_multiple(rng, count).cloned().collect();
        chosen.sort();
        Targets::Nodes(chosen)
    };
    Ok(match target {
        TargetSpec::One => pick(1),
        TargetSpec::Minority => pick(((n - 1) / 2).max(1)),
        TargetSpec::Majority => pick(n / 2 + 1),
        TargetSpec::All => Targets::Nodes(nodes.to_vec()),
        TargetSpec::Primaries => Targets::Primaries { fallback },
        TargetSpec::Node(name) => {
            if !nodes.contains(name) {
                return Err(PlanError::Target {
                    target: name.clone(),
                    message: format!("no such node (the cluster has {})", nodes.join(", ")),
                });
            }
            Targets::Nodes(vec![name.clone()])
        }
    })
}

/// Why a fault or a schedule cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Shape(#[from] super::partition::ShapeError),
    #[error("target `{target}`: {message}")]
    Target { target: String, message: String },
    #[error("{kind}: {message}")]
    Fault { kind: &'static str, message: String },
    #[error("give either `faults` (a random schedule) or `timeline` (a scripted one), not both")]
    BothModes,
    #[error("interval and hold must be positive")]
    ZeroDuration,
    #[error("the {kind} at {at:?} gives `{given}`, which {kind} faults do not read: {hint}")]
    IgnoredOption {
        kind: &'static str,
        at: Duration,
        given: &'static str,
        hint: &'static str,
    },
    #[error("{first} at {first_at:?} and {second} at {second_at:?} overlap: {why}")]
    SharedOverlap {
        first: &'static str,
        first_at: Duration,
        second: &'static str,
        second_at: Duration,
        why: &'static str,
    },
    #[error("two {kind} faults at {first_at:?} and {second_at:?} overlap: faults of one kind take turns (they share their kernel state: routes, tables, cgroup files)")]
    SameKindOverlap {
        kind: &'static str,
        first_at: Duration,
        second_at: Duration,
    },
}

/// Checks that `capability` is here for faults of `kind`.
pub fn need(kind: &'static str, capability: Capability) -> Result<(), NemesisError> {
    let probe = capability::probe(capability);
    if probe.is_ok() {
        Ok(())
    } else {
        Err(NemesisError::Unavailable {
            fault: kind,
            missing: capability.name(),
            detail: probe.detail,
        })
    }
}

/// A duration in whole microseconds, for records.
pub fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

/// Test helpers: planning a fault of one kind from a timeline-like request.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use rand::SeedableRng;

    pub fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Plans one `kind` fault for `nodes` with the settings `tweak` sets.
    pub fn plan_one(
        kind: &str,
        spec: &NemesisSpec,
        nodes: &[String],
        tweak: impl FnOnce(&mut FaultRequest<'_>),
    ) -> Result<Box<dyn PlannedFault>, PlanError> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut request = FaultRequest {
            spec,
            nodes,
            fallback: nodes[0].clone(),
            shape: Shape::Halves,
            target: TargetSpec::One,
            offset: None,
            percent: None,
            delay: None,
            jitter: None,
            max_delay: None,
            rng: &mut rng,
        };
        tweak(&mut request);
        FaultKind::named(kind)
            .expect("a registered kind")
            .plan(&mut request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_kind_has_its_own_name_and_events() {
        let names: std::collections::BTreeSet<&str> = FaultKind::all().map(|k| k.name()).collect();
        assert_eq!(names.len(), REGISTRY.len(), "names are unique");
        for kind in FaultKind::all() {
            assert_eq!(FaultKind::named(kind.name()), Some(kind));
            assert_ne!(kind.start_event(), kind.stop_event(), "{kind}");
        }
        let bump = FaultKind::named("clock-bump").unwrap();
        assert_eq!(serde_json::to_string(&bump).unwrap(), "\"clock-bump\"");
        assert_eq!(
            serde_json::from_str::<FaultKind>("\"clock-bump\"").unwrap(),
            bump
        );
        let err = "earthquake".parse::<FaultKind>().unwrap_err();
        assert!(
            err.contains("earthquake") && err.contains("`partition`"),
            "{err}"
        );
    }

    #[test]
    fn targets_resolve_against_who_leads() {
        let fixed = Targets::Nodes(vec!["n2".into()]);
        assert_eq!(
            fixed.resolve(&Leadership::Unknowable),
            (vec!["n2".to_owned()], None)
        );
        let role = Targets::Primaries {
            fallback: "n3".into(),
        };
        let (nodes, note) = role.resolve(&Leadership::Leader {
            node: "n1".into(),
            system: "etcd".into(),
        });
        assert_eq!(nodes, vec!["n1".to_owned()]);
        assert_eq!(note.as_deref(), Some("leader per etcd status"));
        let (nodes, note) = role.resolve(&Leadership::Unknowable);
        assert_eq!(nodes, vec!["n3".to_owned()]);
        assert!(note.unwrap().contains("random node"));
        assert_eq!(role.planned(), PlannedTargets::Role("primaries".into()));
        assert_eq!(role.count(), 1);
    }
}
