//! The campaign's `nemesis:` section: which faults, when, against whom, with which
//! settings. Each fault kind's own settings (`clock:`, `loss:`, `delay:`, …) live with the
//! kind, in [`super::faults`].

use super::faults::clock::ClockSpec;
use super::faults::corrupt::CorruptSpec;
use super::faults::packet::{DelaySpec, DuplicateSpec, LossSpec, ReorderSpec};
use super::faults::FaultKind;
use super::net::NetBackend;
use super::partition::Shape;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

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

/// How the faults of `faults:` are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisMode {
    /// Drawn up front from the seed, uniformly (Jepsen's nemesis).
    #[default]
    Random,
    /// Chosen one at a time after each calm, from what the run shows ([`super::feedback`]).
    Feedback,
}

/// Settings of the feedback mode (`feedback:`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackSpec {
    /// Weight of the exploration bonus (UCB1's), 0 to 10: how much an arm tried less often
    /// is favoured over one that disturbed more.
    #[serde(default = "defaults::exploration", deserialize_with = "weight")]
    pub exploration: f64,
    /// Weight of the bonus a fault kind earns while it is not tried, 0 to 10.
    #[serde(default = "defaults::staleness", deserialize_with = "weight")]
    pub staleness: f64,
}

impl Default for FeedbackSpec {
    fn default() -> Self {
        FeedbackSpec {
            exploration: defaults::exploration(),
            staleness: defaults::staleness(),
        }
    }
}

/// A weight of the feedback mode: a number from 0 to 10.
fn weight<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let w = f64::deserialize(d)?;
    if !(0.0..=10.0).contains(&w) {
        return Err(serde::de::Error::custom(format!(
            "expected a weight from 0 to 10, got {w}"
        )));
    }
    Ok(w)
}

pub(crate) mod defaults {
    use super::*;
    pub fn exploration() -> f64 {
        0.5
    }
    pub fn staleness() -> f64 {
        0.3
    }
    pub fn interval() -> Duration {
        Duration::from_secs(5)
    }
    pub fn concurrency() -> usize {
        1
    }
    pub fn require_effect() -> bool {
        true
    }
    pub fn targets() -> Vec<TargetSpec> {
        vec![TargetSpec::One, TargetSpec::Minority, TargetSpec::Primaries]
    }
}

/// The most faults of a random schedule in force at once (`nemesis.concurrency`).
pub const MAX_CONCURRENT_FAULTS: usize = 8;

/// The nemesis part of a campaign (`nemesis:` in the YAML).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    /// Fault kinds the random schedule draws from. Empty (and no timeline): no faults.
    #[serde(default)]
    pub faults: Vec<FaultKind>,
    /// Calm time before each fault of the random schedule.
    #[serde(with = "humantime_serde", default = "defaults::interval")]
    pub interval: Duration,
    /// How long each fault of the random schedule lasts (default: `interval`).
    #[serde(with = "humantime_serde::option", default)]
    pub hold: Option<Duration>,
    /// With it, each fault of the random schedule (and of the feedback mode) lasts a
    /// duration drawn from `hold` to `hold_max`: short faults and long ones in one run.
    #[serde(with = "humantime_serde::option", default)]
    pub hold_max: Option<Duration>,
    /// How many faults of the random schedule may be in force at once: that many lanes,
    /// each its own round of calm and fault, staggered. Faults that overlap never hold the
    /// same state, nor do two of them act on node processes.
    #[serde(
        default = "defaults::concurrency",
        deserialize_with = "crate::limits::usize_in::<_, 1, { MAX_CONCURRENT_FAULTS as u64 }>"
    )]
    pub concurrency: usize,
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
    #[serde(default)]
    pub corrupt: CorruptSpec,
    /// How faults of `faults` are chosen: `random` (up front) or `feedback` (online).
    #[serde(default)]
    pub mode: NemesisMode,
    /// Settings of the feedback mode.
    #[serde(default)]
    pub feedback: FeedbackSpec,
    /// A scripted schedule instead of the random one.
    #[serde(default)]
    pub timeline: Vec<TimelineItem>,
    /// A fault whose evidence says it did not take effect makes the run `unknown` (unless
    /// it is already `invalid`). `false` for faults that cannot be verified on a system.
    #[serde(default = "defaults::require_effect")]
    pub require_effect: bool,
}

impl Default for NemesisSpec {
    fn default() -> Self {
        NemesisSpec {
            faults: Vec::new(),
            interval: defaults::interval(),
            hold: None,
            hold_max: None,
            concurrency: defaults::concurrency(),
            targets: defaults::targets(),
            shapes: Vec::new(),
            backend: NetBackend::default(),
            clock: ClockSpec::default(),
            loss: LossSpec::default(),
            delay: DelaySpec::default(),
            reorder: ReorderSpec::default(),
            duplicate: DuplicateSpec::default(),
            corrupt: CorruptSpec::default(),
            mode: NemesisMode::default(),
            feedback: FeedbackSpec::default(),
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

    /// Every fault kind the campaign may use, by name.
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

    /// Whether nodes must start with libfaketime preloaded (some fault skews clocks).
    pub fn needs_clock(&self) -> bool {
        self.kinds().iter().any(|k| k.needs_clock())
    }
}
