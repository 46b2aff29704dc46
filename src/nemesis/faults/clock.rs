//! `clock-bump` (step nodes' wall clocks by an offset) and `clock-strobe` (flip them
//! between two offsets), reset at the end; `clock` is either, drawn per fault. Offsets go
//! through each node's libfaketime offset file ([`crate::nemesis::clock`]); the clocks the
//! nodes report are the evidence.

use super::{
    need, Applied, AppliedFault, Failed, FaultKind, FaultRequest, FaultType, Holds, PlanError,
    PlannedFault, Targets, Undone,
};
use crate::capability::Capability;
use crate::nemesis::clock;
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::record::FaultRecord;
use crate::nemesis::{NemesisError, NemesisSpec};
use crate::system::{ClusterSpec, NodeSpec, System};
use crate::topology;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Settings of clock faults (`clock:` in the campaign's `nemesis:` section).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// Largest offset a random bump or strobe uses (either sign).
    #[serde(with = "humantime_serde", default = "defaults::max_offset")]
    pub max_offset: Duration,
    /// How often a strobe flips between its two offsets.
    #[serde(with = "humantime_serde", default = "defaults::strobe_period")]
    pub strobe_period: Duration,
}

mod defaults {
    use std::time::Duration;
    pub fn max_offset() -> Duration {
        Duration::from_secs(60)
    }
    pub fn strobe_period() -> Duration {
        Duration::from_millis(200)
    }
}

impl Default for ClockSpec {
    fn default() -> Self {
        ClockSpec {
            max_offset: defaults::max_offset(),
            strobe_period: defaults::strobe_period(),
        }
    }
}

/// How far a node's reported clock may be from the offset set for it and still count as
/// showing it (the status round trip and scheduling take some milliseconds).
const CLOCK_TOLERANCE_MS: i64 = 1_000;

/// Which clock fault: a bump, a strobe, or either (drawn per fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Either,
    Bump,
    Strobe,
}

/// A clock fault kind.
pub struct ClockFault {
    mode: Mode,
}

/// The `clock` kind: a bump or a strobe, drawn per fault.
pub static CLOCK: ClockFault = ClockFault { mode: Mode::Either };
/// The `clock-bump` kind.
pub static BUMP: ClockFault = ClockFault { mode: Mode::Bump };
/// The `clock-strobe` kind.
pub static STROBE: ClockFault = ClockFault { mode: Mode::Strobe };

impl FaultType for ClockFault {
    fn name(&self) -> &'static str {
        match self.mode {
            Mode::Either => "clock",
            Mode::Bump => "clock-bump",
            Mode::Strobe => "clock-strobe",
        }
    }

    fn start_event(&self) -> &'static str {
        match self.mode {
            Mode::Either | Mode::Bump => "clock-bump",
            Mode::Strobe => "clock-strobe",
        }
    }

    fn stop_event(&self) -> &'static str {
        "clock-reset"
    }

    fn needs_clock(&self) -> bool {
        true
    }

    /// `clock`, `clock-bump` and `clock-strobe` all set the same per-node offset file.
    fn holds(&self) -> Holds {
        Holds::Shared("clock faults take turns (one libfaketime offset file per node)")
    }

    /// libfaketime, and node binaries it can skew (not static, not Go).
    fn check_host(
        &self,
        _: &NemesisSpec,
        system: &dyn System,
        nodes: usize,
    ) -> Result<(), NemesisError> {
        need(self.name(), Capability::Libfaketime)?;
        check_binaries(self.name(), system, nodes)
    }

    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        let mode = match self.mode {
            Mode::Either if request.rng.gen_bool(0.5) => Mode::Bump,
            Mode::Either => Mode::Strobe,
            other => other,
        };
        let max_ms = request.spec.clock.max_offset.as_millis().max(1) as i64;
        if mode == Mode::Strobe {
            let period = request.spec.clock.strobe_period;
            if period.is_zero() {
                return Err(PlanError::Fault {
                    kind: "clock-strobe",
                    message: "clock.strobe_period must be positive".into(),
                });
            }
            let targets = request.targets()?;
            let offset_ms = request
                .offset
                .map_or_else(|| draw_offset(request.rng, max_ms), |o| o.millis);
            return Ok(Box::new(StrobePlan {
                targets,
                offset_ms,
                period,
            }));
        }
        let targets = request.targets()?;
        let offsets_ms = (0..targets.count())
            .map(|_| {
                request
                    .offset
                    .map_or_else(|| draw_offset(request.rng, max_ms), |o| o.millis)
            })
            .collect();
        Ok(Box::new(BumpPlan {
            targets,
            offsets_ms,
        }))
    }
}

/// An offset of either sign, from a tenth of `max_ms` up to it.
fn draw_offset(rng: &mut dyn RngCore, max_ms: i64) -> i64 {
    let magnitude = rng.gen_range((max_ms / 10).max(1)..=max_ms);
    if rng.gen_bool(0.5) {
        magnitude
    } else {
        -magnitude
    }
}

/// Every node's binary must be one libfaketime can skew.
fn check_binaries(
    fault: &'static str,
    system: &dyn System,
    count: usize,
) -> Result<(), NemesisError> {
    let cluster = ClusterSpec {
        nodes: (1..=count)
            .map(|i| NodeSpec {
                name: topology::node_name(i),
                id: i,
                ip: topology::node_ip(i),
                data_dir: std::env::temp_dir()
                    .join("splitbrain-validate")
                    .join(topology::node_name(i)),
            })
            .collect(),
    };
    for node in &cluster.nodes {
        let launch = system
            .launch(node, &cluster)
            .map_err(|e| NemesisError::Unavailable {
                fault,
                missing: "the system's node command line",
                detail: format!("{e:#}"),
            })?;
        clock::check_binary(&node.name, &launch.program)?;
    }
    Ok(())
}

/// A planned clock bump: one offset per target node, in order (a leader target uses the
/// first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BumpPlan {
    pub targets: Targets,
    pub offsets_ms: Vec<i64>,
}

impl BumpPlan {
    /// The offset of the `i`th target (the first when there are fewer offsets).
    pub(super) fn offset_of(&self, i: usize) -> i64 {
        self.offsets_ms
            .get(i)
            .or(self.offsets_ms.first())
            .copied()
            .unwrap_or(0)
    }
}

impl PlannedFault for BumpPlan {
    fn kind(&self) -> FaultKind {
        FaultKind(&BUMP)
    }

    fn describe(&self) -> FaultRecord {
        FaultRecord {
            targets: Some(self.targets.planned()),
            offsets_ms: self.offsets_ms.clone(),
            ..FaultRecord::default()
        }
    }

    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed> {
        let (nodes, note) = self.targets.resolve(leadership);
        let mut applied = AppliedClock::default();
        for (i, name) in nodes.iter().enumerate() {
            let Some(file) = ctx.offset_file(name) else {
                continue;
            };
            let offset = self.offset_of(i);
            if let Err(e) = clock::write_offset(&file, offset) {
                applied.offsets_ms.clear();
                return Err(Failed {
                    partial: Some(Box::new(applied)),
                    message: e.to_string(),
                });
            }
            applied.nodes.push(name.clone());
            applied.files.push(file);
            applied.offsets_ms.push(offset);
        }
        let offsets: Vec<String> = nodes
            .iter()
            .zip(self.offsets_ms.iter().cycle())
            .map(|(n, o)| format!("{n}: {}", clock::offset_spec(*o)))
            .collect();
        Ok(Applied {
            fault: Box::new(applied),
            record: FaultRecord {
                nodes,
                offsets,
                note,
                ..FaultRecord::default()
            },
        })
    }
}

/// A planned clock strobe: flip between 0 and `offset_ms` every `period`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrobePlan {
    pub targets: Targets,
    pub offset_ms: i64,
    pub period: Duration,
}

impl PlannedFault for StrobePlan {
    fn kind(&self) -> FaultKind {
        FaultKind(&STROBE)
    }

    fn describe(&self) -> FaultRecord {
        FaultRecord {
            targets: Some(self.targets.planned()),
            offset_ms: Some(self.offset_ms),
            period_ms: Some(self.period.as_millis() as i64),
            ..FaultRecord::default()
        }
    }

    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed> {
        let (nodes, note) = self.targets.resolve(leadership);
        let files: Vec<PathBuf> = nodes.iter().filter_map(|n| ctx.offset_file(n)).collect();
        // Whatever fails from here on leaves every target to be reset.
        let partial = || AppliedClock {
            nodes: nodes.clone(),
            files: files.clone(),
            ..AppliedClock::default()
        };
        for file in &files {
            if let Err(e) = clock::write_offset(file, self.offset_ms) {
                return Err(Failed {
                    partial: Some(Box::new(partial())),
                    message: e.to_string(),
                });
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let (offset, period) = (self.offset_ms, self.period);
        let thread_files = files.clone();
        let strobe = std::thread::Builder::new()
            .name("clock-strobe".into())
            .spawn(move || {
                let mut high = true;
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(period);
                    high = !high;
                    for file in &thread_files {
                        // A failed flip leaves the previous offset; the reset at the end
                        // reports errors.
                        let _ = clock::write_offset(file, if high { offset } else { 0 });
                    }
                }
            })
            .map_err(|e| Failed {
                partial: Some(Box::new(partial())),
                message: e.to_string(),
            })?;
        let record = FaultRecord {
            nodes: nodes.clone(),
            offsets: vec![format!(
                "0 / {} every {}ms",
                clock::offset_spec(offset),
                period.as_millis()
            )],
            note,
            ..FaultRecord::default()
        };
        Ok(Applied {
            fault: Box::new(AppliedClock {
                offsets_ms: vec![offset; nodes.len()],
                nodes,
                files,
                strobe: Some((stop, strobe)),
            }),
            record,
        })
    }
}

/// Skewed clocks, until reset to `+0`.
#[derive(Default)]
struct AppliedClock {
    nodes: Vec<String>,
    /// The offset files written (all reset by the undo).
    files: Vec<PathBuf>,
    /// The offset each node should show while the fault is in force (a strobe's non-zero
    /// one), for the evidence.
    offsets_ms: Vec<i64>,
    /// A strobe's flipping thread and its stop flag.
    strobe: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl AppliedFault for AppliedClock {
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        skew_evidence(ctx, &self.nodes, &self.offsets_ms, self.strobe.is_some())
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        if let Some((stop, handle)) = self.strobe.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
        let nodes = std::mem::take(&mut self.nodes);
        let files = std::mem::take(&mut self.files);
        if nodes.is_empty() && files.is_empty() {
            return Undone::default();
        }
        let mut error = None;
        for file in &files {
            if let Err(e) = clock::write_offset(file, 0) {
                error.get_or_insert(e.to_string());
            }
        }
        reset(ctx, nodes, error)
    }
}

/// The record of resetting `nodes`' clocks: offset +0, and each node's skew as it reports
/// it afterwards (the evidence the reset took); `error`, the first failure to reset one.
pub(super) fn reset(ctx: &NemesisContext, nodes: Vec<String>, error: Option<String>) -> Undone {
    Undone {
        record: FaultRecord {
            offsets: vec!["+0".to_owned()],
            observed: observed_skews(ctx, &nodes)
                .into_iter()
                .map(|(node, skew)| format!("{node}: {skew:+}ms"))
                .collect(),
            nodes,
            ..FaultRecord::default()
        },
        error,
    }
}

/// Whether a node whose clock reads `skew_ms` from ours shows the offset `planned_ms`.
pub(super) fn shows_offset(skew_ms: i64, planned_ms: i64) -> bool {
    (skew_ms - planned_ms).abs() <= CLOCK_TOLERANCE_MS
}

/// The evidence of a clock fault: each of `nodes`' skew as it reports it, and whether every
/// one shows its planned offset (`offsets_ms`, in the order of `nodes`). A strobe flips
/// between 0 and its offset, so with `strobing` it looks a few times to catch it high.
pub(super) fn skew_evidence(
    ctx: &NemesisContext,
    nodes: &[String],
    offsets_ms: &[i64],
    strobing: bool,
) -> FaultRecord {
    let samples = if strobing { 4 } else { 1 };
    let mut observed = Vec::new();
    let mut shown = std::collections::BTreeSet::new();
    for sample in 0..samples {
        if sample > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        for (node, skew) in observed_skews(ctx, nodes) {
            let planned = nodes
                .iter()
                .position(|n| *n == node)
                .and_then(|i| offsets_ms.get(i))
                .copied()
                .unwrap_or(0);
            if shows_offset(skew, planned) {
                shown.insert(node.clone());
            }
            observed.push(format!("{node}: {skew:+}ms"));
        }
    }
    FaultRecord {
        observed,
        effective: Some(!nodes.is_empty() && nodes.iter().all(|n| shown.contains(n))),
        ..FaultRecord::default()
    }
}

/// Each of `nodes`' wall clock as it reports it, minus ours, in milliseconds (empty when
/// the system does not report time).
pub(super) fn observed_skews(ctx: &NemesisContext, nodes: &[String]) -> Vec<(String, i64)> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    ctx.statuses()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|s| nodes.contains(&s.node))
        .filter_map(|s| s.time_ms.map(|t| (s.node, t as i64 - now_ms)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{nodes, plan_one};
    use super::*;
    use crate::nemesis::record::PlannedTargets;
    use crate::nemesis::spec::SignedDuration;
    use crate::nemesis::TargetSpec;

    #[test]
    fn a_bump_plans_one_offset_per_target_within_the_largest() {
        let spec = NemesisSpec::default();
        let bump = plan_one("clock-bump", &spec, &nodes(5), |r| {
            r.target = TargetSpec::All
        })
        .unwrap();
        assert_eq!(bump.kind().name(), "clock-bump");
        let record = bump.describe();
        assert_eq!(record.targets, Some(PlannedTargets::Nodes(nodes(5))));
        assert_eq!(record.offsets_ms.len(), 5);
        for offset in &record.offsets_ms {
            assert!((6_000..=60_000).contains(&offset.abs()), "{offset}");
        }
        let given = plan_one("clock-bump", &spec, &nodes(3), |r| {
            r.target = TargetSpec::Node("n2".into());
            r.offset = Some(SignedDuration { millis: -30_000 });
        })
        .unwrap();
        assert_eq!(given.describe().offsets_ms, vec![-30_000]);
    }

    #[test]
    fn a_strobe_describes_its_offset_and_period_and_refuses_a_zero_period() {
        let mut spec = NemesisSpec::default();
        let strobe = plan_one("clock-strobe", &spec, &nodes(3), |r| {
            r.offset = Some(SignedDuration { millis: 5_000 })
        })
        .unwrap();
        assert_eq!(strobe.kind().name(), "clock-strobe");
        let record = strobe.describe();
        assert_eq!(record.offset_ms, Some(5_000));
        assert_eq!(record.period_ms, Some(200));
        spec.clock.strobe_period = Duration::ZERO;
        let err = plan_one("clock-strobe", &spec, &nodes(3), |_| {}).unwrap_err();
        assert!(err.to_string().contains("strobe_period"), "{err}");
    }

    #[test]
    fn clock_is_a_bump_or_a_strobe() {
        let spec = NemesisSpec::default();
        let kinds: std::collections::BTreeSet<&str> = (0..20u64)
            .map(|seed| {
                let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
                let names = nodes(3);
                let mut request = FaultRequest {
                    spec: &spec,
                    nodes: &names,
                    fallback: "n1".into(),
                    shape: crate::nemesis::Shape::Halves,
                    target: TargetSpec::One,
                    offset: None,
                    percent: None,
                    delay: None,
                    jitter: None,
                    max_delay: None,
                    rng: &mut rng,
                };
                CLOCK.plan(&mut request).unwrap().kind().name()
            })
            .collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            vec!["clock-bump", "clock-strobe"]
        );
        assert_eq!(FaultKind(&CLOCK).start_event(), "clock-bump");
        assert_eq!(FaultKind(&STROBE).stop_event(), "clock-reset");
    }

    #[test]
    fn a_clock_shows_its_offset_within_the_tolerance() {
        assert!(shows_offset(29_400, 30_000));
        assert!(shows_offset(-5_900, -5_000));
        assert!(!shows_offset(0, 30_000));
        assert!(!shows_offset(30_000, -30_000));
    }
}
