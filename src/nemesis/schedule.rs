//! Fault schedules as data: computed up front from the campaign and the seed, so the same
//! seed and campaign give the same schedule. Only what depends on the running cluster (who
//! leads right now) is resolved when a fault starts; for that case a fallback node is drawn
//! up front too.
//!
//! Two modes: a seeded random schedule (fault kinds, targets and shapes drawn from the
//! campaign's lists, one fault at a time: `interval` of calm, then a fault for `hold`), or
//! a scripted timeline (`at: 5s, fault: partition, shape: halves, for: 10s`).

use super::net::NetBackend;
use super::partition::{self, Grudge, Shape};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The kinds of fault a campaign can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A network partition of some [`Shape`].
    Partition,
    /// Freeze processes (cgroup.freeze), thaw at the end.
    Pause,
    /// Kill processes (cgroup.kill), start them again at the end.
    Kill,
    /// Either a clock bump or a clock strobe.
    Clock,
    /// Step the wall clock of nodes by an offset, reset at the end.
    ClockBump,
    /// Flip the wall clock of nodes between two offsets, reset at the end.
    ClockStrobe,
    /// Drop a percentage of packets at nodes.
    Loss,
    /// Delay packets a node sends to its peers (netem, or NFQUEUE and a holder thread).
    Delay,
    /// Hold each packet a node sends to its peers for a random time, so later ones overtake
    /// earlier ones (netem, or NFQUEUE and a holder thread).
    Reorder,
    /// Duplicate a percentage of the packets a node sends to its peers (netem, or nft `dup`).
    Duplicate,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Clock => "clock",
            FaultKind::ClockBump => "clock-bump",
            FaultKind::ClockStrobe => "clock-strobe",
            FaultKind::Loss => "loss",
            FaultKind::Delay => "delay",
            FaultKind::Reorder => "reorder",
            FaultKind::Duplicate => "duplicate",
        }
    }

    pub fn is_clock(self) -> bool {
        matches!(
            self,
            FaultKind::Clock | FaultKind::ClockBump | FaultKind::ClockStrobe
        )
    }
}

/// Which nodes a process, clock or packet fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetSpec {
    /// One random node.
    One,
    /// A random minority (at least one node).
    Minority,
    /// A random majority.
    Majority,
    All,
    /// The current leader/primary (resolved when the fault starts).
    Primaries,
    /// A node by name.
    Node(String),
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetSpec::One => "one",
            TargetSpec::Minority => "minority",
            TargetSpec::Majority => "majority",
            TargetSpec::All => "all",
            TargetSpec::Primaries => "primaries",
            TargetSpec::Node(name) => name,
        })
    }
}

impl std::str::FromStr for TargetSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "one" => TargetSpec::One,
            "minority" => TargetSpec::Minority,
            "majority" => TargetSpec::Majority,
            "all" => TargetSpec::All,
            "primaries" | "primary" | "leader" => TargetSpec::Primaries,
            name if name.starts_with('n') && name[1..].parse::<usize>().is_ok_and(|i| i > 0) => {
                TargetSpec::Node(name.to_owned())
            }
            other => {
                return Err(format!(
                    "unknown target `{other}`: expected one, minority, majority, all, primaries or a node name (n1, n2, …)"
                ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for TargetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for TargetSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A duration with a sign, written like `-30s` or `+1m 30s` (clock offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDuration {
    pub millis: i64,
}

impl std::str::FromStr for SignedDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (sign, rest) = match s.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, s.strip_prefix('+').unwrap_or(s)),
        };
        let d = humantime::parse_duration(rest.trim()).map_err(|e| format!("`{s}`: {e}"))?;
        Ok(SignedDuration {
            millis: sign * d.as_millis() as i64,
        })
    }
}

impl<'de> Deserialize<'de> for SignedDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for SignedDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sign = if self.millis < 0 { "-" } else { "+" };
        let abs = Duration::from_millis(self.millis.unsigned_abs());
        s.collect_str(&format_args!("{sign}{}", humantime::format_duration(abs)))
    }
}

/// Settings of clock faults.
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

impl Default for ClockSpec {
    fn default() -> Self {
        ClockSpec {
            max_offset: defaults::max_offset(),
            strobe_period: defaults::strobe_period(),
        }
    }
}

/// Settings of packet loss.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LossSpec {
    /// Percentage of packets into and out of a target node dropped (1 to 100).
    #[serde(default = "defaults::loss_percent")]
    pub percent: u8,
}

impl Default for LossSpec {
    fn default() -> Self {
        LossSpec {
            percent: defaults::loss_percent(),
        }
    }
}

/// Settings of packet delay: each packet held `mean ± jitter` (uniform), order kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DelaySpec {
    #[serde(with = "humantime_serde", default = "defaults::delay_mean")]
    pub mean: Duration,
    #[serde(with = "humantime_serde", default = "defaults::delay_jitter")]
    pub jitter: Duration,
}

impl Default for DelaySpec {
    fn default() -> Self {
        DelaySpec {
            mean: defaults::delay_mean(),
            jitter: defaults::delay_jitter(),
        }
    }
}

/// Settings of packet reordering: each packet held a uniform random time up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReorderSpec {
    #[serde(with = "humantime_serde", default = "defaults::reorder_max_delay")]
    pub max_delay: Duration,
}

impl Default for ReorderSpec {
    fn default() -> Self {
        ReorderSpec {
            max_delay: defaults::reorder_max_delay(),
        }
    }
}

/// Settings of packet duplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateSpec {
    /// Percentage of a target node's packets to its peers sent twice (1 to 100).
    #[serde(default = "defaults::duplicate_percent")]
    pub percent: u8,
}

impl Default for DuplicateSpec {
    fn default() -> Self {
        DuplicateSpec {
            percent: defaults::duplicate_percent(),
        }
    }
}

/// One entry of a scripted timeline.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineItem {
    /// When the fault starts, from the start of the main phase.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub fault: FaultKind,
    /// How long it lasts.
    #[serde(rename = "for", with = "humantime_serde")]
    pub hold: Duration,
    /// Partition shape (default `halves`).
    #[serde(default)]
    pub shape: Option<Shape>,
    /// Target of process, clock and packet faults (default `one`).
    #[serde(default)]
    pub target: Option<TargetSpec>,
    /// Clock bump offset, or a strobe's offset (default: drawn up to `clock.max_offset`).
    #[serde(default)]
    pub offset: Option<SignedDuration>,
    /// Loss or duplication percentage (default `loss.percent` / `duplicate.percent`).
    #[serde(default)]
    pub percent: Option<u8>,
    /// A delay's mean (default `delay.mean`).
    #[serde(with = "humantime_serde::option", default)]
    pub delay: Option<Duration>,
    /// A delay's jitter (default `delay.jitter`).
    #[serde(with = "humantime_serde::option", default)]
    pub jitter: Option<Duration>,
    /// A reorder's longest hold (default `reorder.max_delay`).
    #[serde(with = "humantime_serde::option", default)]
    pub max_delay: Option<Duration>,
}

/// A timeline item's overrides of the packet fault settings.
#[derive(Debug, Clone, Copy, Default)]
struct PacketOverrides {
    delay: Option<Duration>,
    jitter: Option<Duration>,
    max_delay: Option<Duration>,
}

pub(crate) mod defaults {
    use super::*;
    pub fn max_offset() -> Duration {
        Duration::from_secs(60)
    }
    pub fn require_effect() -> bool {
        true
    }
    pub fn strobe_period() -> Duration {
        Duration::from_millis(200)
    }
    pub fn loss_percent() -> u8 {
        20
    }
    pub fn delay_mean() -> Duration {
        Duration::from_millis(50)
    }
    pub fn delay_jitter() -> Duration {
        Duration::from_millis(10)
    }
    pub fn reorder_max_delay() -> Duration {
        Duration::from_millis(30)
    }
    pub fn duplicate_percent() -> u8 {
        10
    }
    pub fn targets() -> Vec<TargetSpec> {
        vec![TargetSpec::One, TargetSpec::Minority, TargetSpec::Primaries]
    }
}

/// The nemesis part of a campaign (`nemesis:` in the YAML).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    /// Fault kinds the random schedule draws from. Empty (and no timeline): no faults.
    #[serde(default)]
    pub faults: Vec<FaultKind>,
    /// Calm time before each fault of the random schedule.
    #[serde(
        with = "humantime_serde",
        default = "crate::nemesis::schedule::defaults_interval"
    )]
    pub interval: Duration,
    /// How long each fault of the random schedule lasts (default: `interval`).
    #[serde(with = "humantime_serde::option", default)]
    pub hold: Option<Duration>,
    /// Targets the random schedule draws from for process, clock and packet faults.
    #[serde(default = "defaults::targets")]
    pub targets: Vec<TargetSpec>,
    /// Partition shapes the random schedule draws from (default: every shape the cluster
    /// is large enough for).
    #[serde(default)]
    pub shapes: Vec<Shape>,
    /// How partitions are applied.
    #[serde(default)]
    pub backend: NetBackend,
    #[serde(default)]
    pub clock: ClockSpec,
    #[serde(default)]
    pub loss: LossSpec,
    #[serde(default)]
    pub delay: DelaySpec,
    #[serde(default)]
    pub reorder: ReorderSpec,
    #[serde(default)]
    pub duplicate: DuplicateSpec,
    /// A scripted schedule instead of the random one.
    #[serde(default)]
    pub timeline: Vec<TimelineItem>,
    /// A fault whose evidence says it did not take effect makes the run `unknown` (unless
    /// it is already `invalid`). `false` for faults that cannot be verified on a system.
    #[serde(default = "defaults::require_effect")]
    pub require_effect: bool,
}

pub fn defaults_interval() -> Duration {
    Duration::from_secs(5)
}

impl Default for NemesisSpec {
    fn default() -> Self {
        NemesisSpec {
            faults: Vec::new(),
            interval: defaults_interval(),
            hold: None,
            targets: defaults::targets(),
            shapes: Vec::new(),
            backend: NetBackend::default(),
            clock: ClockSpec::default(),
            loss: LossSpec::default(),
            delay: DelaySpec::default(),
            reorder: ReorderSpec::default(),
            duplicate: DuplicateSpec::default(),
            timeline: Vec::new(),
            require_effect: defaults::require_effect(),
        }
    }
}

impl NemesisSpec {
    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        !self.faults.is_empty() || !self.timeline.is_empty()
    }

    /// Every fault kind the campaign may use.
    pub fn kinds(&self) -> Vec<FaultKind> {
        let mut kinds: Vec<FaultKind> = self
            .faults
            .iter()
            .copied()
            .chain(self.timeline.iter().map(|t| t.fault))
            .collect();
        kinds.sort_by_key(|k| k.name());
        kinds.dedup();
        kinds
    }

    pub fn needs_clock(&self) -> bool {
        self.kinds().iter().any(|k| k.is_clock())
    }

    /// Checks the spec against the cluster size (a trial plan with a fixed seed).
    pub fn validate(&self, node_count: usize) -> Result<(), PlanError> {
        let nodes: Vec<String> = (1..=node_count).map(crate::topology::node_name).collect();
        plan(self, &nodes, 0, Duration::from_secs(3600)).map(|_| ())
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

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Action {
    /// `grudge` is `None` for `isolate-leader` (computed at start; `fallback` is isolated
    /// when the system cannot say who leads).
    Partition {
        shape: Shape,
        grudge: Option<Grudge>,
        fallback: String,
    },
    Pause(Targets),
    Kill(Targets),
    /// One offset per target node, in order (a leader target uses the first).
    ClockBump {
        targets: Targets,
        offsets_ms: Vec<i64>,
    },
    /// Flip between 0 and `offset_ms` every `period`.
    ClockStrobe {
        targets: Targets,
        offset_ms: i64,
        period: Duration,
    },
    Loss {
        targets: Targets,
        percent: u8,
    },
    Delay {
        targets: Targets,
        mean: Duration,
        jitter: Duration,
    },
    Reorder {
        targets: Targets,
        max_delay: Duration,
    },
    Duplicate {
        targets: Targets,
        percent: u8,
    },
}

impl Action {
    pub fn kind(&self) -> FaultKind {
        match self {
            Action::Partition { .. } => FaultKind::Partition,
            Action::Pause(_) => FaultKind::Pause,
            Action::Kill(_) => FaultKind::Kill,
            Action::ClockBump { .. } => FaultKind::ClockBump,
            Action::ClockStrobe { .. } => FaultKind::ClockStrobe,
            Action::Loss { .. } => FaultKind::Loss,
            Action::Delay { .. } => FaultKind::Delay,
            Action::Reorder { .. } => FaultKind::Reorder,
            Action::Duplicate { .. } => FaultKind::Duplicate,
        }
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduledFault {
    pub id: usize,
    /// Start, from the start of the main phase.
    pub at: Duration,
    pub hold: Duration,
    pub action: Action,
}

impl ScheduledFault {
    pub fn end(&self) -> Duration {
        self.at + self.hold
    }
}

/// The whole plan, ordered by start time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub faults: Vec<ScheduledFault>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Shape(#[from] partition::ShapeError),
    #[error("target `{target}`: {message}")]
    Target { target: String, message: String },
    #[error("{kind}: {message}")]
    Fault { kind: &'static str, message: String },
    #[error("give either `faults` (a random schedule) or `timeline` (a scripted one), not both")]
    BothModes,
    #[error("interval and hold must be positive")]
    ZeroDuration,
    #[error("{first} at {first_at:?} and {second} at {second_at:?} overlap: delay, reorder and duplicate faults take turns (one netem qdisc per node)")]
    PacketOverlap {
        first: &'static str,
        first_at: Duration,
        second: &'static str,
        second_at: Duration,
    },
    #[error("two {kind} faults at {first_at:?} and {second_at:?} overlap: faults of one kind take turns (they share their kernel state: routes, tables, cgroup files)")]
    SameKindOverlap {
        kind: &'static str,
        first_at: Duration,
        second_at: Duration,
    },
}

/// Salt, so the nemesis' random stream differs from the workload's under the same seed.
const NEMESIS_SALT: u64 = 0x6e65_6d65_7369_7321;

/// Computes the schedule for `nodes` over a main phase of `duration`.
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
        check_packet_overlap(&items)?;
        check_same_kind_overlap(&items)?;
        for item in items {
            if item.hold.is_zero() {
                return Err(PlanError::ZeroDuration);
            }
            let target = item.target.clone().unwrap_or(TargetSpec::One);
            let shape = item.shape.unwrap_or(Shape::Halves);
            let action = action_for(
                spec,
                item.fault,
                shape,
                &target,
                item.offset,
                item.percent,
                PacketOverrides {
                    delay: item.delay,
                    jitter: item.jitter,
                    max_delay: item.max_delay,
                },
                nodes,
                &mut rng,
            )?;
            faults.push(ScheduledFault {
                id: faults.len() + 1,
                at: item.at,
                hold: item.hold,
                action,
            });
        }
        return Ok(Schedule { faults });
    }
    if spec.faults.is_empty() {
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
    if shapes.is_empty() && spec.faults.contains(&FaultKind::Partition) {
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
    let mut at = spec.interval;
    while at < duration {
        let kind = *spec.faults.choose(&mut rng).expect("faults is not empty");
        let shape = *shapes.choose(&mut rng).unwrap_or(&Shape::Halves);
        let target = spec
            .targets
            .choose(&mut rng)
            .expect("targets is not empty")
            .clone();
        let action = action_for(
            spec,
            kind,
            shape,
            &target,
            None,
            None,
            PacketOverrides::default(),
            nodes,
            &mut rng,
        )?;
        faults.push(ScheduledFault {
            id: faults.len() + 1,
            at,
            hold,
            action,
        });
        at += hold + spec.interval;
    }
    Ok(Schedule { faults })
}

#[allow(clippy::too_many_arguments)]
fn action_for(
    spec: &NemesisSpec,
    kind: FaultKind,
    shape: Shape,
    target: &TargetSpec,
    offset: Option<SignedDuration>,
    percent: Option<u8>,
    packet: PacketOverrides,
    nodes: &[String],
    rng: &mut impl Rng,
) -> Result<Action, PlanError> {
    if nodes.is_empty() {
        return Err(PlanError::Fault {
            kind: kind.name(),
            message: "the system has no nodes to fault".into(),
        });
    }
    let fallback = nodes[rng.gen_range(0..nodes.len())].clone();
    let max_ms = spec.clock.max_offset.as_millis().max(1) as i64;
    let draw_offset = |rng: &mut dyn rand::RngCore| -> i64 {
        let magnitude = rng.gen_range((max_ms / 10).max(1)..=max_ms);
        if rng.gen_bool(0.5) {
            magnitude
        } else {
            -magnitude
        }
    };
    let kind = match kind {
        FaultKind::Clock if rng.gen_bool(0.5) => FaultKind::ClockBump,
        FaultKind::Clock => FaultKind::ClockStrobe,
        other => other,
    };
    Ok(match kind {
        FaultKind::Partition => {
            let grudge = match shape {
                Shape::IsolateLeader => {
                    if nodes.len() < shape.min_nodes() {
                        return Err(partition::ShapeError::TooFewNodes {
                            shape: shape.name(),
                            needs: 2,
                            has: nodes.len(),
                        }
                        .into());
                    }
                    None
                }
                _ => Some(partition::grudge(shape, nodes, rng)?),
            };
            Action::Partition {
                shape,
                grudge,
                fallback,
            }
        }
        FaultKind::Pause => Action::Pause(resolve_targets(target, nodes, fallback, rng)?),
        FaultKind::Kill => Action::Kill(resolve_targets(target, nodes, fallback, rng)?),
        FaultKind::ClockBump => {
            let targets = resolve_targets(target, nodes, fallback, rng)?;
            let count = match &targets {
                Targets::Nodes(n) => n.len(),
                Targets::Primaries { .. } => 1,
            };
            let offsets_ms = (0..count)
                .map(|_| offset.map_or_else(|| draw_offset(rng), |o| o.millis))
                .collect();
            Action::ClockBump {
                targets,
                offsets_ms,
            }
        }
        FaultKind::ClockStrobe => {
            if spec.clock.strobe_period.is_zero() {
                return Err(PlanError::Fault {
                    kind: "clock-strobe",
                    message: "clock.strobe_period must be positive".into(),
                });
            }
            let targets = resolve_targets(target, nodes, fallback, rng)?;
            let offset_ms = offset.map_or_else(|| draw_offset(rng), |o| o.millis);
            Action::ClockStrobe {
                targets,
                offset_ms,
                period: spec.clock.strobe_period,
            }
        }
        FaultKind::Loss => {
            let percent = percent.unwrap_or(spec.loss.percent);
            if !(1..=100).contains(&percent) {
                return Err(PlanError::Fault {
                    kind: "loss",
                    message: format!("percent {percent}: expected 1 to 100"),
                });
            }
            Action::Loss {
                targets: resolve_targets(target, nodes, fallback, rng)?,
                percent,
            }
        }
        FaultKind::Delay => {
            let mean = packet.delay.unwrap_or(spec.delay.mean);
            let jitter = packet.jitter.unwrap_or(spec.delay.jitter);
            if mean.is_zero() || mean > MAX_PACKET_HOLD || jitter > mean {
                return Err(PlanError::Fault {
                    kind: "delay",
                    message: format!(
                        "mean {mean:?} ± jitter {jitter:?}: expected a mean above 0 and up to {MAX_PACKET_HOLD:?}, jitter at most the mean"
                    ),
                });
            }
            Action::Delay {
                targets: resolve_targets(target, nodes, fallback, rng)?,
                mean,
                jitter,
            }
        }
        FaultKind::Reorder => {
            let max_delay = packet.max_delay.unwrap_or(spec.reorder.max_delay);
            if max_delay < Duration::from_millis(1) || max_delay > MAX_PACKET_HOLD {
                return Err(PlanError::Fault {
                    kind: "reorder",
                    message: format!(
                        "max_delay {max_delay:?}: expected 1ms to {MAX_PACKET_HOLD:?}"
                    ),
                });
            }
            Action::Reorder {
                targets: resolve_targets(target, nodes, fallback, rng)?,
                max_delay,
            }
        }
        FaultKind::Duplicate => {
            let percent = percent.unwrap_or(spec.duplicate.percent);
            if !(1..=100).contains(&percent) {
                return Err(PlanError::Fault {
                    kind: "duplicate",
                    message: format!("percent {percent}: expected 1 to 100"),
                });
            }
            Action::Duplicate {
                targets: resolve_targets(target, nodes, fallback, rng)?,
                percent,
            }
        }
        FaultKind::Clock => unreachable!("resolved to bump or strobe above"),
    })
}

/// The longest hold a delay or reorder may ask for: beyond it TCP's retransmission timers
/// fire and the fault turns into loss, which is what `loss` is for.
const MAX_PACKET_HOLD: Duration = Duration::from_secs(2);

fn is_packet_shaping(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Delay | FaultKind::Reorder | FaultKind::Duplicate
    )
}

/// Items of one fault kind (sorted by start) must not overlap: undoing one would undo the
/// other's state too (a partition's routes flush, the loss table, a cgroup's freezer).
fn check_same_kind_overlap(items: &[&TimelineItem]) -> Result<(), PlanError> {
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            if a.fault == b.fault && a.at + a.hold > b.at {
                return Err(PlanError::SameKindOverlap {
                    kind: a.fault.name(),
                    first_at: a.at,
                    second_at: b.at,
                });
            }
        }
    }
    Ok(())
}

/// Delay, reorder and duplicate items of a timeline (sorted by start) must not overlap:
/// with netem they share a node's one root qdisc.
fn check_packet_overlap(items: &[&TimelineItem]) -> Result<(), PlanError> {
    let shaping: Vec<&&TimelineItem> = items
        .iter()
        .filter(|i| is_packet_shaping(i.fault))
        .collect();
    for pair in shaping.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.at + a.hold > b.at {
            return Err(PlanError::PacketOverlap {
                first: a.fault.name(),
                first_at: a.at,
                second: b.fault.name(),
                second_at: b.at,
            });
        }
    }
    Ok(())
}

fn resolve_targets(
    target: &TargetSpec,
    nodes: &[String],
    fallback: String,
    rng: &mut impl Rng,
) -> Result<Targets, PlanError> {
    let n = nodes.len();
    let pick = |count: usize, rng: &mut dyn rand::RngCore| {
        let mut chosen: Vec<String> = nodes.choose_multiple(rng, count).cloned().collect();
        chosen.sort();
        Targets::Nodes(chosen)
    };
    Ok(match target {
        TargetSpec::One => pick(1, rng),
        TargetSpec::Minority => pick(((n - 1) / 2).max(1), rng),
        TargetSpec::Majority => pick(n / 2 + 1, rng),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn random_spec() -> NemesisSpec {
        NemesisSpec {
            faults: vec![
                FaultKind::Partition,
                FaultKind::Pause,
                FaultKind::Kill,
                FaultKind::Clock,
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
            if let Action::Pause(Targets::Nodes(t)) | Action::Kill(Targets::Nodes(t)) = &f.action {
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
                kinds.insert(f.action.kind().name());
                primaries |= matches!(
                    f.action,
                    Action::Pause(Targets::Primaries { .. })
                        | Action::Kill(Targets::Primaries { .. })
                );
            }
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(primaries);
    }

    #[test]
    fn target_sizes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let size = |t: &TargetSpec, n: usize, rng: &mut rand::rngs::StdRng| match resolve_targets(
            t,
            &nodes(n),
            "n1".into(),
            rng,
        )
        .unwrap()
        {
            Targets::Nodes(v) => v.len(),
            Targets::Primaries { .. } => 0,
        };
        assert_eq!(size(&TargetSpec::One, 5, &mut rng), 1);
        assert_eq!(size(&TargetSpec::Minority, 5, &mut rng), 2);
        assert_eq!(size(&TargetSpec::Minority, 3, &mut rng), 1);
        assert_eq!(size(&TargetSpec::Majority, 5, &mut rng), 3);
        assert_eq!(size(&TargetSpec::All, 5, &mut rng), 5);
        assert!(resolve_targets(
            &TargetSpec::Node("n7".into()),
            &nodes(3),
            "n1".into(),
            &mut rng
        )
        .is_err());
    }

    #[test]
    fn scripted_timeline_parses_and_plans_in_order() {
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
        assert!(
            matches!(&s.faults[0].action, Action::Partition { shape: Shape::Halves, grudge: Some(g), .. } if g.blocks("n1", "n3"))
        );
        assert!(matches!(
            &s.faults[1].action,
            Action::Pause(Targets::Primaries { .. })
        ));
        assert_eq!(
            s.faults[2].action,
            Action::ClockBump {
                targets: Targets::Nodes(vec!["n2".into()]),
                offsets_ms: vec![-30_000]
            }
        );
        assert_eq!(
            s.faults[3].action,
            Action::Loss {
                targets: Targets::Nodes(nodes(5)),
                percent: 50
            }
        );
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
        assert_eq!(
            s.faults[0].action,
            Action::Delay {
                targets: Targets::Nodes(nodes(3)),
                mean: Duration::from_millis(40),
                jitter: Duration::from_millis(5)
            }
        );
        assert_eq!(
            s.faults[1].action,
            Action::Delay {
                targets: Targets::Nodes(vec!["n1".into()]),
                mean: Duration::from_millis(100),
                jitter: Duration::ZERO
            }
        );
        assert_eq!(
            s.faults[2].action,
            Action::Reorder {
                targets: Targets::Nodes(vec!["n2".into()]),
                max_delay: Duration::from_millis(25)
            }
        );
        assert_eq!(
            s.faults[3].action,
            Action::Duplicate {
                targets: Targets::Nodes(vec!["n3".into()]),
                percent: 30
            }
        );
        assert_eq!(s.faults[3].action.kind(), FaultKind::Duplicate);
        // The random schedule draws them too, with the spec's settings.
        let spec: NemesisSpec =
            serde_yaml::from_str("faults: [delay, reorder, duplicate]").unwrap();
        let s = plan(&spec, &nodes(3), 1, Duration::from_secs(60)).unwrap();
        let kinds: std::collections::BTreeSet<&str> =
            s.faults.iter().map(|f| f.action.kind().name()).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
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
        assert!(overlap.contains("overlap"), "{overlap}");
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
        assert_eq!("-1m 30s".parse::<SignedDuration>().unwrap().millis, -90_000);
        assert_eq!("+250ms".parse::<SignedDuration>().unwrap().millis, 250);
    }
}
