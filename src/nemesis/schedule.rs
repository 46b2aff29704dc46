//! Fault schedules: when each fault starts and how long it holds, computed up front from
//! the campaign's `nemesis:` section and the seed, so the same seed and campaign give the
//! same schedule. What each fault does is its kind's plan ([`super::faults`]); only what
//! depends on the running cluster (who leads right now) is resolved when a fault starts,
//! and for that case a fallback node is drawn up front too.
//!
//! Two modes: a seeded random schedule (fault kinds, targets and shapes drawn from the
//! campaign's lists, one fault at a time: `interval` of calm, then a fault for `hold`), or
//! a scripted timeline (`at: 5s, fault: partition, shape: halves, for: 10s`).

pub use super::faults::{FaultKind, PlanError, Targets};
pub use super::spec::{NemesisSpec, TargetSpec, TimelineItem};

use super::faults::{ChosenBy, FaultRequest, Holds, PlannedFault};
use super::feedback::{Aim, Arm, FeedbackChooser};
use super::partition::Shape;
use super::record::FaultRecord;
use super::spec::NemesisMode;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Duration;

/// One fault of the schedule.
#[derive(Debug)]
pub struct ScheduledFault {
    pub id: usize,
    /// Start, from the start of the main phase.
    pub at: Duration,
    pub hold: Duration,
    /// What the fault does, planned by its kind.
    pub fault: Box<dyn PlannedFault>,
    /// Why the feedback mode chose it (absent in the random and scripted modes).
    pub chosen_for: Option<String>,
}

impl ScheduledFault {
    pub fn end(&self) -> Duration {
        self.at + self.hold
    }

    pub fn kind(&self) -> FaultKind {
        self.fault.kind()
    }

    /// The record of the fault's start invocation: its id, how long it holds, and its plan.
    pub fn describe(&self) -> FaultRecord {
        FaultRecord {
            id: Some(self.id as i64),
            hold_ms: Some(self.hold.as_millis() as i64),
            chosen_for: self.chosen_for.clone(),
            ..self.fault.describe()
        }
    }
}

impl Clone for ScheduledFault {
    fn clone(&self) -> Self {
        ScheduledFault {
            id: self.id,
            at: self.at,
            hold: self.hold,
            fault: self.fault.clone_box(),
            chosen_for: self.chosen_for.clone(),
        }
    }
}

impl PartialEq for ScheduledFault {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.at == other.at
            && self.hold == other.hold
            && self.kind() == other.kind()
            && self.fault.to_json() == other.fault.to_json()
            && self.chosen_for == other.chosen_for
    }
}

impl Eq for ScheduledFault {}

/// In `nemesis.json`: `{id, at, hold, kind, plan}`, and `chosen_for` in the feedback mode.
impl Serialize for ScheduledFault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("ScheduledFault", 6)?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("at", &self.at)?;
        out.serialize_field("hold", &self.hold)?;
        out.serialize_field("kind", &self.kind())?;
        out.serialize_field("plan", &self.fault.to_json())?;
        if let Some(why) = &self.chosen_for {
            out.serialize_field("chosen_for", why)?;
        }
        out.end()
    }
}

/// The whole plan, ordered by start time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub faults: Vec<ScheduledFault>,
}

/// Salt, so the nemesis' random stream differs from the workload's under the same seed.
const NEMESIS_SALT: u64 = 0x6e65_6d65_7369_7321;

impl NemesisSpec {
    /// Checks the spec against the cluster size (a trial plan with a fixed seed; in the
    /// feedback mode, one trial fault of every arm).
    pub fn validate(&self, node_count: usize) -> Result<(), PlanError> {
        let nodes: Vec<String> = (1..=node_count).map(crate::topology::node_name).collect();
        let hold = self.hold.unwrap_or(self.interval);
        if let Some(max) = self.hold_max {
            if max < hold {
                return Err(PlanError::Fault {
                    kind: "hold_max",
                    message: format!(
                        "{} is shorter than `hold` ({}): each fault holds from `hold` to `hold_max`",
                        humantime::format_duration(max),
                        humantime::format_duration(hold)
                    ),
                });
            }
        }
        if self.concurrency > 1 && (self.mode == NemesisMode::Feedback || !self.timeline.is_empty())
        {
            return Err(PlanError::Fault {
                kind: "concurrency",
                message: format!(
                    "{} faults at once is for the random schedule; the feedback mode and a timeline choose one fault at a time (a timeline's items may overlap by their own times)",
                    self.concurrency
                ),
            });
        }
        if self.mode == NemesisMode::Feedback {
            if !self.timeline.is_empty() {
                return Err(PlanError::Fault {
                    kind: "feedback",
                    message: "`mode: feedback` chooses among `faults` as the run goes; a `timeline` is scripted: give one or the other".into(),
                });
            }
            let chooser = FeedbackChooser::new(self, node_count, 0)?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(0);
            let hold = self.hold.unwrap_or(self.interval);
            if self.interval.is_zero() || hold.is_zero() {
                return Err(PlanError::ZeroDuration);
            }
            for (arm, _, _) in chooser.arms() {
                plan_chosen(self, &nodes, arm, 1, self.interval, String::new(), &mut rng)?;
            }
            return Ok(());
        }
        plan(self, &nodes, 0, Duration::from_secs(3600)).map(|_| ())
    }
}

/// What one fault asks for, before its kind plans it.
struct Ask<'a> {
    kind: FaultKind,
    shape: Shape,
    target: TargetSpec,
    item: Option<&'a TimelineItem>,
}

/// Plans one fault of `ask` with `rng`.
fn plan_fault(
    spec: &NemesisSpec,
    nodes: &[String],
    ask: Ask<'_>,
    rng: &mut rand::rngs::StdRng,
) -> Result<Box<dyn PlannedFault>, PlanError> {
    if nodes.is_empty() {
        return Err(PlanError::Fault {
            kind: ask.kind.name(),
            message: "the system has no nodes to fault".into(),
        });
    }
    let fallback = nodes[rng.gen_range(0..nodes.len())].clone();
    let item = ask.item;
    let mut request = FaultRequest {
        spec,
        nodes,
        fallback,
        shape: ask.shape,
        target: ask.target,
        offset: item.and_then(|i| i.offset),
        percent: item.and_then(|i| i.percent),
        delay: item.and_then(|i| i.delay),
        jitter: item.and_then(|i| i.jitter),
        max_delay: item.and_then(|i| i.max_delay),
        rng,
    };
    ask.kind.plan(&mut request)
}

/// Plans one fault of the feedback mode's `arm`, numbered `id`, starting `at` (from the
/// start of the main phase) and held for the spec's `hold` (or a duration up to `hold_max`).
pub fn plan_chosen(
    spec: &NemesisSpec,
    nodes: &[String],
    arm: &Arm,
    id: usize,
    at: Duration,
    chosen_for: String,
    rng: &mut rand::rngs::StdRng,
) -> Result<ScheduledFault, PlanError> {
    let (shape, target) = match &arm.aim {
        Aim::Shape(shape) => (*shape, TargetSpec::One),
        Aim::Target(target) => (Shape::Halves, target.clone()),
    };
    let ask = Ask {
        kind: arm.kind,
        shape,
        target,
        item: None,
    };
    Ok(ScheduledFault {
        id,
        at,
        hold: draw_hold(spec, spec.hold.unwrap_or(spec.interval), rng),
        fault: plan_fault(spec, nodes, ask, rng)?,
        chosen_for: Some(chosen_for),
    })
}

/// Computes the schedule for `nodes` over a main phase of `duration` (in the feedback
/// mode, nothing is planned up front: the schedule is empty and the runner asks the
/// chooser as it goes).
pub fn plan(
    spec: &NemesisSpec,
    nodes: &[String],
    seed: u64,
    duration: Duration,
) -> Result<Schedule, PlanError> {
    if !spec.faults.is_empty() && !spec.timeline.is_empty() {
        return Err(PlanError::BothModes);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ NEMESIS_SALT);
    let mut faults = Vec::new();
    if !spec.timeline.is_empty() {
        let mut items: Vec<&TimelineItem> = spec.timeline.iter().collect();
        items.sort_by_key(|t| t.at);
        check_overlap(&items)?;
        for item in items {
            if item.hold.is_zero() {
                return Err(PlanError::ZeroDuration);
            }
            check_chosen_by(item)?;
            let ask = Ask {
                kind: item.fault,
                shape: item.shape.unwrap_or(Shape::Halves),
                target: item.target.clone().unwrap_or(TargetSpec::One),
                item: Some(item),
            };
            faults.push(ScheduledFault {
                id: faults.len() + 1,
                at: item.at,
                hold: item.hold,
                fault: plan_fault(spec, nodes, ask, &mut rng)?,
                chosen_for: None,
            });
        }
        return Ok(Schedule { faults });
    }
    if spec.faults.is_empty() || spec.mode == NemesisMode::Feedback {
        return Ok(Schedule::default());
    }
    let hold = spec.hold.unwrap_or(spec.interval);
    if spec.interval.is_zero() || hold.is_zero() {
        return Err(PlanError::ZeroDuration);
    }
    let shapes: Vec<Shape> = if spec.shapes.is_empty() {
        Shape::ALL
            .into_iter()
            .filter(|s| nodes.len() >= s.min_nodes())
            .collect()
    } else {
        spec.shapes.clone()
    };
    let partitions = spec.faults.iter().any(|k| k.name() == "partition");
    if shapes.is_empty() && partitions {
        return Err(PlanError::Fault {
            kind: "partition",
            message: format!("no partition shape fits {} nodes", nodes.len()),
        });
    }
    if spec.targets.is_empty() {
        return Err(PlanError::Target {
            target: "[]".into(),
            message: "expected at least one target".into(),
        });
    }
    // Each lane is its own round of calm and fault; lanes start staggered across the first
    // round and the next fault is always the earliest lane's, so ids follow start times.
    // One lane with a fixed hold draws exactly what one fault at a time always drew.
    let lanes = spec.concurrency.max(1);
    let round = spec.interval + hold;
    let mut next: Vec<Duration> = (0..lanes)
        .map(|lane| spec.interval + round * lane as u32 / lanes as u32)
        .collect();
    loop {
        let (lane, at) = next
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(lane, at)| (at, lane))
            .expect("at least one lane");
        if at >= duration {
            break;
        }
        let this_hold = draw_hold(spec, hold, &mut rng);
        let in_force: Vec<FaultKind> = faults
            .iter()
            .filter(|f: &&ScheduledFault| f.end() > at)
            .map(|f| f.kind())
            .collect();
        let kind = draw_kind(&spec.faults, &in_force, &mut rng);
        let shape = *shapes.choose(&mut rng).unwrap_or(&Shape::Halves);
        let target = spec
            .targets
            .choose(&mut rng)
            .expect("targets is not empty")
            .clone();
        next[lane] = at + this_hold + spec.interval;
        // No kind may join the faults in force: this lane stays calm for its round.
        let Some(kind) = kind else { continue };
        let ask = Ask {
            kind,
            shape,
            target,
            item: None,
        };
        faults.push(ScheduledFault {
            id: faults.len() + 1,
            at,
            hold: this_hold,
            fault: plan_fault(spec, nodes, ask, &mut rng)?,
            chosen_for: None,
        });
    }
    Ok(Schedule { faults })
}

/// How long a fault holds: `hold`, or with `hold_max` a duration drawn from `hold` to
/// `hold_max` (whole milliseconds).
fn draw_hold(spec: &NemesisSpec, hold: Duration, rng: &mut rand::rngs::StdRng) -> Duration {
    match spec.hold_max {
        Some(max) if max > hold => {
            Duration::from_millis(rng.gen_range(hold.as_millis() as u64..=max.as_millis() as u64))
        }
        _ => hold,
    }
}

/// A kind of `kinds` that may join the faults `in_force` ([`FaultKind::may_overlap`]),
/// drawn at random; `None` when none may. With nothing in force, one plain draw.
fn draw_kind(
    kinds: &[FaultKind],
    in_force: &[FaultKind],
    rng: &mut rand::rngs::StdRng,
) -> Option<FaultKind> {
    if in_force.is_empty() {
        return kinds.choose(rng).copied();
    }
    let fits: Vec<FaultKind> = kinds
        .iter()
        .copied()
        .filter(|k| in_force.iter().all(|f| k.may_overlap(*f)))
        .collect();
    fits.choose(rng).copied()
}

/// Items of a timeline (sorted by start) that hold the same state must not overlap:
/// undoing one would undo the other's too (a partition's routes flush, the loss table, a
/// cgroup's freezer, a node's one netem qdisc).
fn check_overlap(items: &[&TimelineItem]) -> Result<(), PlanError> {
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            if a.fault.holds() != b.fault.holds() || a.at + a.hold <= b.at {
                continue;
            }
            return Err(match a.fault.holds() {
                Holds::Shared(why) => PlanError::SharedOverlap {
                    first: a.fault.name(),
                    first_at: a.at,
                    second: b.fault.name(),
                    second_at: b.at,
                    why,
                },
                Holds::Own(kind) => PlanError::SameKindOverlap {
                    kind,
                    first_at: a.at,
                    second_at: b.at,
                },
            });
        }
    }
    Ok(())
}

/// A timeline item gives the option its kind picks nodes by: `shape` for partitions,
/// `target` for the others (a partition's `target: n3` would otherwise be ignored).
fn check_chosen_by(item: &TimelineItem) -> Result<(), PlanError> {
    let kind = item.fault.name();
    match item.fault.chosen_by() {
        ChosenBy::Shape if item.target.is_some() => Err(PlanError::IgnoredOption {
            kind,
            at: item.at,
            given: "target",
            hint: "a partition's sides come from `shape` (`isolate-one`, `isolate-leader`, `halves`, …)",
        }),
        ChosenBy::Target if item.shape.is_some() => Err(PlanError::IgnoredOption {
            kind,
            at: item.at,
            given: "shape",
            hint: "only partitions have a shape; `target` picks the nodes (`one`, `primaries`, `n3`, …)",
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::record::PlannedTargets;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn kind(name: &str) -> FaultKind {
        FaultKind::named(name).unwrap()
    }

    fn random_spec() -> NemesisSpec {
        NemesisSpec {
            faults: vec![
                kind("partition"),
                kind("pause"),
                kind("kill"),
                kind("clock"),
            ],
            interval: Duration::from_secs(2),
            hold: Some(Duration::from_secs(3)),
            targets: vec![
                TargetSpec::One,
                TargetSpec::Minority,
                TargetSpec::Majority,
                TargetSpec::All,
                TargetSpec::Primaries,
            ],
            ..NemesisSpec::default()
        }
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let spec = random_spec();
        let a = plan(&spec, &nodes(5), 7, Duration::from_secs(60)).unwrap();
        let b = plan(&spec, &nodes(5), 7, Duration::from_secs(60)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.clone(), a);
        let c = plan(&spec, &nodes(5), 8, Duration::from_secs(60)).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn random_schedule_alternates_calm_and_faults_within_the_phase() {
        let spec = random_spec();
        let s = plan(&spec, &nodes(5), 1, Duration::from_secs(30)).unwrap();
        // Starts at 2, 7, 12, 17, 22, 27.
        let starts: Vec<u64> = s.faults.iter().map(|f| f.at.as_secs()).collect();
        assert_eq!(starts, vec![2, 7, 12, 17, 22, 27]);
        for pair in s.faults.windows(2) {
            assert!(
                pair[0].end() < pair[1].at,
                "faults of the random schedule never overlap"
            );
        }
        for f in &s.faults {
            if let Some(PlannedTargets::Nodes(t)) = f.describe().targets {
                assert!(!t.is_empty() && t.len() <= 5);
            }
        }
        // Over many seeds every kind and target appears.
        let mut kinds = std::collections::BTreeSet::new();
        let mut primaries = false;
        for seed in 0..30 {
            for f in plan(&spec, &nodes(5), seed, Duration::from_secs(30))
                .unwrap()
                .faults
            {
                kinds.insert(f.kind().name());
                primaries |= matches!(f.kind().name(), "pause" | "kill")
                    && f.describe().targets == Some(PlannedTargets::Role("primaries".into()));
            }
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(primaries);
    }

    #[test]
    fn lanes_overlap_faults_that_hold_different_state_and_never_two_on_processes() {
        let spec = NemesisSpec {
            faults: [
                "partition",
                "pause",
                "kill",
                "clock",
                "loss",
                "delay",
                "reorder",
            ]
            .map(kind)
            .to_vec(),
            concurrency: 3,
            interval: Duration::from_secs(1),
            hold: Some(Duration::from_secs(1)),
            hold_max: Some(Duration::from_secs(6)),
            ..random_spec()
        };
        spec.validate(5).unwrap();
        let one_lane = NemesisSpec {
            concurrency: 1,
            ..spec.clone()
        };
        let (mut overlaps, mut held) = (0, std::collections::BTreeSet::new());
        for seed in 0..40 {
            let s = plan(&spec, &nodes(5), seed, Duration::from_secs(60)).unwrap();
            assert_eq!(
                s,
                plan(&spec, &nodes(5), seed, Duration::from_secs(60)).unwrap()
            );
            let single = plan(&one_lane, &nodes(5), seed, Duration::from_secs(60)).unwrap();
            assert!(
                s.faults.len() > single.faults.len(),
                "three lanes bring more faults than one (seed {seed})"
            );
            for (i, f) in s.faults.iter().enumerate() {
                assert_eq!(f.id, i + 1);
                assert!(f.at < Duration::from_secs(60));
                assert!(f.hold >= Duration::from_secs(1) && f.hold <= Duration::from_secs(6));
                held.insert(f.hold.as_millis());
                let in_force: Vec<&ScheduledFault> =
                    s.faults[..i].iter().filter(|g| g.end() > f.at).collect();
                assert!(in_force.len() < 3, "at most three at once");
                for g in in_force {
                    overlaps += 1;
                    assert!(
                        f.kind().may_overlap(g.kind()),
                        "{} and {} overlap (seed {seed})",
                        f.kind().name(),
                        g.kind().name()
                    );
                    assert!(g.at <= f.at, "ids follow start times");
                }
            }
        }
        assert!(overlaps > 100, "lanes overlap: {overlaps}");
        assert!(held.len() > 50, "holds are drawn from the range");
        let (pause, kill, clock) = (kind("pause"), kind("kill"), kind("clock"));
        assert!(!pause.may_overlap(kill) && !kill.may_overlap(kill));
        assert!(pause.may_overlap(clock) && kind("partition").may_overlap(kill));
        assert!(!kind("delay").may_overlap(kind("reorder")));
        assert!(!kind("clock").may_overlap(kind("clock-bump")));
        // A timeline may not overlap them either: they set the same offset file.
        let spec: NemesisSpec = serde_yaml::from_str(
            "timeline: [{at: 1s, fault: clock, target: one, for: 5s}, {at: 2s, fault: clock-strobe, target: all, for: 1s}]",
        )
        .unwrap();
        assert!(spec
            .validate(3)
            .unwrap_err()
            .to_string()
            .contains("offset file"));
    }

    #[test]
    fn one_lane_with_a_fixed_hold_is_the_schedule_one_fault_at_a_time() {
        // Starts at 2, 7, 12, …: the first round's calm, then fault and calm in turn.
        let spec = random_spec();
        let s = plan(&spec, &nodes(5), 3, Duration::from_secs(60)).unwrap();
        let starts: Vec<u64> = s.faults.iter().map(|f| f.at.as_secs()).collect();
        assert_eq!(starts, (0..12).map(|i| 2 + 5 * i).collect::<Vec<u64>>());
        // A range of holds: each fault ends calm `interval` before the next starts.
        let ranged = NemesisSpec {
            hold_max: Some(Duration::from_secs(9)),
            ..random_spec()
        };
        let s = plan(&ranged, &nodes(5), 3, Duration::from_secs(60)).unwrap();
        for pair in s.faults.windows(2) {
            assert_eq!(pair[0].end() + Duration::from_secs(2), pair[1].at);
        }
        assert!(s.faults.iter().any(|f| f.hold > Duration::from_secs(3)));
    }

    #[test]
    fn a_hold_max_below_hold_and_lanes_outside_the_random_schedule_are_refused() {
        let refused = |yaml: &str| {
            let spec: NemesisSpec = serde_yaml::from_str(yaml).unwrap();
            spec.validate(3).unwrap_err().to_string()
        };
        assert!(refused("{faults: [pause], hold: 5s, hold_max: 2s}").contains("shorter than"));
        assert!(refused("{faults: [pause], mode: feedback, concurrency: 2}")
            .contains("one fault at a time"));
        assert!(refused(
            "{concurrency: 2, timeline: [{at: 1s, fault: pause, target: one, for: 1s}]}"
        )
        .contains("one fault at a time"));
        assert!(serde_yaml::from_str::<NemesisSpec>("{faults: [pause], concurrency: 9}").is_err());
        assert!(serde_yaml::from_str::<NemesisSpec>("{faults: [pause], concurrency: 0}").is_err());
    }

    #[test]
    fn target_sizes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut size = |t: &TargetSpec, n: usize| match super::super::faults::resolve_targets(
            t,
            &nodes(n),
            "n1".into(),
            &mut rng,
        ) {
            Ok(Targets::Nodes(v)) => Some(v.len()),
            Ok(Targets::Primaries { .. }) => Some(0),
            Err(_) => None,
        };
        assert_eq!(size(&TargetSpec::One, 5), Some(1));
        assert_eq!(size(&TargetSpec::Minority, 5), Some(2));
        assert_eq!(size(&TargetSpec::Minority, 3), Some(1));
        assert_eq!(size(&TargetSpec::Majority, 5), Some(3));
        assert_eq!(size(&TargetSpec::All, 5), Some(5));
        assert_eq!(size(&TargetSpec::Primaries, 5), Some(0));
        assert_eq!(size(&TargetSpec::Node("n7".into()), 3), None);
    }

    /// The schedule → fault records mapping: what each start invocation records.
    #[test]
    fn scripted_timeline_plans_in_order_and_records_each_plan() {
        let yaml = "
timeline:
  - {at: 12s, fault: pause, target: primaries, for: 2s}
  - {at: 5s, fault: partition, shape: halves, for: 10s}
  - {at: 20s, fault: clock-bump, target: n2, offset: -30s, for: 5s}
  - {at: 30s, fault: loss, target: all, percent: 50, for: 1s}
";
        let spec: NemesisSpec = serde_yaml::from_str(yaml).unwrap();
        let s = plan(&spec, &nodes(5), 0, Duration::from_secs(60)).unwrap();
        assert_eq!(s.faults.len(), 4);
        assert_eq!(s.faults[0].at, Duration::from_secs(5));
        let records: Vec<FaultRecord> = s.faults.iter().map(ScheduledFault::describe).collect();
        assert_eq!(records[0].id, Some(1));
        assert_eq!(records[0].hold_ms, Some(10_000));
        assert_eq!(records[0].shape.as_deref(), Some("halves"));
        let grudge = records[0].grudge.as_ref().unwrap();
        assert!(grudge["n3"].contains(&"n1".to_owned()));
        assert_eq!(
            records[1],
            FaultRecord {
                id: Some(2),
                hold_ms: Some(2_000),
                targets: Some(PlannedTargets::Role("primaries".into())),
                ..FaultRecord::default()
            }
        );
        assert_eq!(
            records[2],
            FaultRecord {
                id: Some(3),
                hold_ms: Some(5_000),
                targets: Some(PlannedTargets::Nodes(vec!["n2".into()])),
                offsets_ms: vec![-30_000],
                ..FaultRecord::default()
            }
        );
        assert_eq!(
            records[3],
            FaultRecord {
                id: Some(4),
                hold_ms: Some(1_000),
                targets: Some(PlannedTargets::Nodes(nodes(5))),
                percent: Some(50),
                ..FaultRecord::default()
            }
        );
        let kinds: Vec<&str> = s.faults.iter().map(|f| f.kind().start_event()).collect();
        assert_eq!(
            kinds,
            ["start-partition", "pause", "clock-bump", "start-loss"]
        );
        // The schedule in nemesis.json names each fault's kind next to its plan.
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["faults"][3]["kind"], "loss");
        assert_eq!(json["faults"][3]["plan"]["percent"], 50);
    }

    #[test]
    fn packet_faults_take_their_settings_from_the_spec_or_the_timeline() {
        let yaml = "
delay: {mean: 40ms, jitter: 5ms}
reorder: {max_delay: 25ms}
duplicate: {percent: 7}
timeline:
  - {at: 1s, fault: delay, target: all, for: 1s}
  - {at: 3s, fault: delay, target: n1, delay: 100ms, jitter: 0ms, for: 1s}
  - {at: 5s, fault: reorder, target: n2, for: 1s}
  - {at: 7s, fault: duplicate, target: n3, percent: 30, for: 1s}
";
        let spec: NemesisSpec = serde_yaml::from_str(yaml).unwrap();
        let s = plan(&spec, &nodes(3), 0, Duration::from_secs(60)).unwrap();
        let r: Vec<FaultRecord> = s.faults.iter().map(|f| f.fault.describe()).collect();
        assert_eq!(r[0].targets, Some(PlannedTargets::Nodes(nodes(3))));
        assert_eq!((r[0].mean_us, r[0].jitter_us), (Some(40_000), Some(5_000)));
        assert_eq!((r[1].mean_us, r[1].jitter_us), (Some(100_000), Some(0)));
        assert_eq!(r[1].targets, Some(PlannedTargets::Nodes(vec!["n1".into()])));
        assert_eq!(r[2].max_delay_us, Some(25_000));
        assert_eq!(r[3].percent, Some(30));
        assert_eq!(s.faults[3].kind(), kind("duplicate"));
        // The random schedule draws them too, with the spec's settings.
        let spec: NemesisSpec =
            serde_yaml::from_str("faults: [delay, reorder, duplicate]").unwrap();
        let s = plan(&spec, &nodes(3), 1, Duration::from_secs(60)).unwrap();
        let kinds: std::collections::BTreeSet<&str> =
            s.faults.iter().map(|f| f.kind().name()).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }

    /// A partition's nodes come from its shape, every other kind's from its target: a
    /// timeline item giving the other option is refused, not silently ignored.
    #[test]
    fn an_option_the_kind_does_not_read_is_refused() {
        let refused = |yaml: &str| {
            let spec: NemesisSpec = serde_yaml::from_str(yaml).unwrap();
            plan(&spec, &nodes(3), 0, Duration::from_secs(60))
                .err()
                .map(|e| e.to_string())
        };
        let e = refused("timeline: [{at: 1s, fault: partition, target: n3, for: 5s}]").unwrap();
        assert!(e.contains("partition at 1s gives `target`"), "{e}");
        assert!(e.contains("shape"), "{e}");
        let e = refused("timeline: [{at: 1s, fault: pause, shape: halves, for: 5s}]").unwrap();
        assert!(e.contains("pause at 1s gives `shape`"), "{e}");
        assert_eq!(
            refused("timeline: [{at: 1s, fault: partition, shape: isolate-one, for: 5s}, {at: 7s, fault: pause, target: n3, for: 1s}]"),
            None
        );
    }

    #[test]
    fn overlapping_faults_of_one_kind_are_refused() {
        let spec: NemesisSpec = serde_yaml::from_str(
            "timeline: [{at: 1s, fault: partition, shape: halves, for: 5s}, {at: 3s, fault: partition, shape: isolate-one, for: 1s}]",
        )
        .unwrap();
        let err = plan(&spec, &nodes(3), 1, Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("overlap") && err.contains("partition"),
            "{err}"
        );
        // Different kinds may overlap; one kind may follow another.
        let spec: NemesisSpec = serde_yaml::from_str(
            "timeline: [{at: 1s, fault: partition, shape: halves, for: 2s}, {at: 2s, fault: pause, target: n1, for: 2s}, {at: 3s, fault: partition, shape: halves, for: 1s}]",
        )
        .unwrap();
        plan(&spec, &nodes(3), 1, Duration::from_secs(60)).unwrap();
    }

    #[test]
    fn bad_packet_settings_and_overlaps_are_refused() {
        let refused = |yaml: &str| {
            let spec: NemesisSpec = serde_yaml::from_str(yaml).unwrap();
            spec.validate(3).unwrap_err().to_string()
        };
        assert!(
            refused("timeline: [{at: 1s, fault: delay, delay: 10ms, jitter: 20ms, for: 1s}]")
                .contains("jitter")
        );
        assert!(
            refused("timeline: [{at: 1s, fault: delay, delay: 0ms, for: 1s}]").contains("delay")
        );
        assert!(
            refused("timeline: [{at: 1s, fault: reorder, max_delay: 10s, for: 1s}]")
                .contains("max_delay")
        );
        assert!(
            refused("timeline: [{at: 1s, fault: duplicate, percent: 0, for: 1s}]")
                .contains("percent")
        );
        let overlap = refused(
            "timeline: [{at: 1s, fault: delay, for: 5s}, {at: 3s, fault: duplicate, for: 1s}]",
        );
        assert!(
            overlap.contains("overlap") && overlap.contains("netem qdisc"),
            "{overlap}"
        );
        let spec: NemesisSpec = serde_yaml::from_str(
            "timeline: [{at: 1s, fault: delay, for: 2s}, {at: 3s, fault: reorder, for: 1s}, {at: 2s, fault: pause, for: 5s}]",
        )
        .unwrap();
        assert!(spec.validate(3).is_ok());
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let err = serde_yaml::from_str::<NemesisSpec>("faults: [partition, earthquake]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("earthquake") && err.contains("partition"),
            "{err}"
        );
        let err = serde_yaml::from_str::<NemesisSpec>(
            "timeline: [{at: 1s, fault: kill, target: everyone, for: 1s}]",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("everyone"), "{err}");
        let spec: NemesisSpec =
            serde_yaml::from_str("faults: [partition]\nshapes: [majorities-ring]").unwrap();
        assert!(spec
            .validate(3)
            .unwrap_err()
            .to_string()
            .contains("majorities-ring"));
        assert!(spec.validate(5).is_ok());
        let spec: NemesisSpec =
            serde_yaml::from_str("faults: [kill]\ntimeline: [{at: 1s, fault: kill, for: 1s}]")
                .unwrap();
        assert_eq!(spec.validate(3), Err(PlanError::BothModes));
        let spec: NemesisSpec =
            serde_yaml::from_str("timeline: [{at: 1s, fault: loss, percent: 0, for: 1s}]").unwrap();
        assert!(spec.validate(3).is_err());
        assert_eq!(
            "-1m 30s"
                .parse::<crate::nemesis::spec::SignedDuration>()
                .unwrap()
                .millis,
            -90_000
        );
    }
}
