//! The feedback-guided nemesis (`mode: feedback`): instead of drawing the whole schedule up
//! front, it chooses each fault after the calm before it, from what the harness already
//! sees of the run — never by instrumenting the system:
//!
//! * the clients' completions since the previous fault started (the recorder's running
//!   [`Tally`]): how many failed or were indeterminate, and the `ok` latency against the
//!   calmest window seen so far;
//! * who led before that fault and who leads now (the role queries leader-targeted faults
//!   already make): a changed leader is a disturbance too;
//! * how long since each fault kind was last tried.
//!
//! Each (fault kind, target) — or (partition, shape) — is an arm of a bandit. A fault's
//! disturbance (a number in 0..=1, [`Observation::disturbance`]) is its arm's reward. The
//! chooser picks the arm with the highest score: its mean disturbance (an untried arm
//! borrows its kind's; a kind never tried counts as 0.5, so every kind is tried early unless
//! one already disturbs more), an exploration bonus that shrinks as the arm is tried (UCB1),
//! a staleness bonus that grows while its kind is not tried, and a small bonus for aiming
//! at the leader. Leader-targeted arms (`primaries`, `isolate-leader`) are always among the
//! arms, whatever the campaign's `targets` and `shapes`. Everything random comes from one
//! seeded generator: the same seed and the same observations give the same choices.

pub use crate::recorder::Tally;

use super::faults::{ChosenBy, FaultKind, PlanError};
use super::partition::Shape;
use super::spec::{FeedbackSpec, NemesisSpec, TargetSpec};
use rand::{Rng, SeedableRng};
use std::fmt;

/// Salt of the chooser's random stream (the random schedule's differs).
const FEEDBACK_SALT: u64 = 0x6665_6564_6261_636b;

/// The disturbance assumed of a kind never tried: optimistic, so that every kind is tried
/// early unless one already disturbs more than this.
const UNTRIED_KIND: f64 = 0.5;

/// What aiming at the leader adds to an arm's score: faults at the leader are those most
/// bugs of leader-based systems need.
const LEADER_BONUS: f64 = 0.05;

/// How a fault picks its nodes: a target, or a partition's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aim {
    Target(TargetSpec),
    Shape(Shape),
}

/// One arm of the bandit: a fault kind and how it aims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    pub kind: FaultKind,
    pub aim: Aim,
}

impl Arm {
    /// Whether the arm hits whoever leads (`primaries`, `isolate-leader`).
    pub fn targets_leader(&self) -> bool {
        matches!(
            self.aim,
            Aim::Target(TargetSpec::Primaries) | Aim::Shape(Shape::IsolateLeader)
        )
    }
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.aim {
            Aim::Target(t) => write!(f, "{} {t}", self.kind),
            Aim::Shape(s) => write!(f, "{} {}", self.kind, s.name()),
        }
    }
}

/// What the harness saw from a fault's start to the end of the calm after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The clients' completions over the window.
    pub window: Tally,
    /// Who led just before the fault and at the end of the window (`None`: nobody claimed
    /// to, or the system cannot say).
    pub leader_before: Option<String>,
    pub leader_after: Option<String>,
}

impl Observation {
    /// The share of completions that failed or were indeterminate (1 when none completed).
    fn error_share(&self) -> f64 {
        let w = &self.window;
        match w.completed() {
            0 => 1.0,
            n => (w.failed + w.indeterminate) as f64 / n as f64,
        }
    }

    /// How much the system was disturbed, 0..=1: half from the share of operations that
    /// failed or were indeterminate above `baseline.error_share` (a cas that finds another
    /// value fails without any fault), a quarter from the latency spike (mean `ok` latency
    /// against `baseline.latency_ns`, log10: 10× is the whole quarter), a quarter from a
    /// change of leader.
    pub fn disturbance(&self, baseline: &Baseline) -> f64 {
        let w = &self.window;
        let baseline_ns = baseline.latency_ns;
        let errors = (self.error_share() - baseline.error_share.unwrap_or(0.0)).max(0.0);
        let spike = match (w.mean_ok_latency_ns(), baseline_ns) {
            (Some(mean), Some(base)) if base > 0 => {
                (mean as f64 / base as f64).log10().clamp(0.0, 1.0)
            }
            // Nothing completed ok: as slow as it gets.
            (None, _) => 1.0,
            _ => 0.0,
        };
        let role = if self.leader_before != self.leader_after {
            1.0
        } else {
            0.0
        };
        0.5 * errors + 0.25 * spike + 0.25 * role
    }
}

/// The calmest window seen so far: what disturbance is measured against.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baseline {
    /// The lowest mean `ok` latency of any window, ns.
    pub latency_ns: Option<u64>,
    /// The lowest share of failed or indeterminate completions of any window.
    pub error_share: Option<f64>,
}

impl Baseline {
    fn note(&mut self, observation: &Observation) {
        if let Some(mean) = observation.window.mean_ok_latency_ns() {
            self.latency_ns = Some(self.latency_ns.map_or(mean, |b| b.min(mean)));
        }
        if observation.window.completed() > 0 {
            let share = observation.error_share();
            self.error_share = Some(self.error_share.map_or(share, |b| b.min(share)));
        }
    }
}

/// Why an arm was chosen, recorded with the fault (`chosen_for`).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub arm: Arm,
    pub score: f64,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct ArmStats {
    arm: Arm,
    tries: u32,
    total: f64,
}

impl ArmStats {
    fn mean(&self) -> Option<f64> {
        (self.tries > 0).then(|| self.total / self.tries as f64)
    }
}

/// The feedback chooser: pure (no clock, no I/O), seeded.
#[derive(Debug)]
pub struct FeedbackChooser {
    arms: Vec<ArmStats>,
    kinds: Vec<FaultKind>,
    /// The step each kind was last chosen at.
    last_tried: Vec<Option<u64>>,
    steps: u64,
    /// The arm chosen last, waiting for its observation.
    pending: Option<usize>,
    /// The calmest of the windows seen (the calm before the first fault included).
    baseline: Baseline,
    settings: FeedbackSpec,
    rng: rand::rngs::StdRng,
}

impl FeedbackChooser {
    /// The arms of `spec` for `node_count` nodes: each kind with each of the campaign's
    /// targets (and `primaries`), partitions with each shape the cluster fits (and
    /// `isolate-leader`).
    pub fn new(spec: &NemesisSpec, node_count: usize, seed: u64) -> Result<Self, PlanError> {
        if spec.faults.is_empty() {
            return Err(PlanError::Fault {
                kind: "feedback",
                message: "the feedback mode chooses among `faults`, which is empty".into(),
            });
        }
        let mut targets = spec.targets.clone();
        if !targets.contains(&TargetSpec::Primaries) {
            targets.push(TargetSpec::Primaries);
        }
        let mut shapes: Vec<Shape> = if spec.shapes.is_empty() {
            Shape::ALL.to_vec()
        } else {
            spec.shapes.clone()
        };
        if !shapes.contains(&Shape::IsolateLeader) {
            shapes.push(Shape::IsolateLeader);
        }
        shapes.retain(|s| node_count >= s.min_nodes());
        let mut kinds: Vec<FaultKind> = Vec::new();
        let mut arms = Vec::new();
        for &kind in &spec.faults {
            if kinds.contains(&kind) {
                continue;
            }
            kinds.push(kind);
            let aims: Vec<Aim> = match kind.chosen_by() {
                ChosenBy::Shape => shapes.iter().map(|s| Aim::Shape(*s)).collect(),
                ChosenBy::Target => targets.iter().cloned().map(Aim::Target).collect(),
            };
            for aim in aims {
                arms.push(ArmStats {
                    arm: Arm { kind, aim },
                    tries: 0,
                    total: 0.0,
                });
            }
        }
        let rng = rand::rngs::StdRng::seed_from_u64(seed ^ FEEDBACK_SALT);
        Ok(FeedbackChooser {
            last_tried: vec![None; kinds.len()],
            arms,
            kinds,
            steps: 0,
            pending: None,
            baseline: Baseline::default(),
            settings: spec.feedback,
            rng,
        })
    }

    /// The random source faults are planned with (targets, offsets), after each choice.
    pub fn rng(&mut self) -> &mut rand::rngs::StdRng {
        &mut self.rng
    }

    /// A window with no fault in it (the calm before the first fault): sets the baseline.
    pub fn calm(&mut self, window: &Tally) {
        self.baseline.note(&Observation {
            window: *window,
            ..Observation::default()
        });
    }

    /// What followed the last chosen fault; returns its disturbance (the arm's reward).
    /// Nothing pending (no fault chosen yet): `None`.
    pub fn observe(&mut self, observation: &Observation) -> Option<f64> {
        let arm = self.pending.take()?;
        let reward = observation.disturbance(&self.baseline);
        self.baseline.note(observation);
        let stats = &mut self.arms[arm];
        stats.tries += 1;
        stats.total += reward;
        Some(reward)
    }

    /// Mean reward of every tried arm of `kind`.
    fn kind_mean(&self, kind: FaultKind) -> Option<f64> {
        let (tries, total) = self
            .arms
            .iter()
            .filter(|a| a.arm.kind == kind)
            .fold((0u32, 0.0), |(n, t), a| (n + a.tries, t + a.total));
        (tries > 0).then(|| total / tries as f64)
    }

    fn kind_index(&self, kind: FaultKind) -> usize {
        self.kinds
            .iter()
            .position(|k| *k == kind)
            .expect("a kind of the arms")
    }

    /// Chooses the next fault.
    pub fn choose(&mut self) -> Choice {
        self.steps += 1;
        let tries: u32 = self.arms.iter().map(|a| a.tries).sum();
        let ln = (tries.max(1) as f64).ln();
        let kinds = self.kinds.len() as f64;
        let mut best: Option<(usize, f64, String)> = None;
        for i in 0..self.arms.len() {
            let a = &self.arms[i];
            let kind = a.arm.kind;
            let (mean, source) = match (a.mean(), self.kind_mean(kind)) {
                (Some(m), _) => (m, format!("disturbance {m:.2} over {} tries", a.tries)),
                (None, Some(m)) => (m, format!("untried, its kind's disturbance {m:.2}")),
                (None, None) => (
                    UNTRIED_KIND,
                    format!("kind not tried yet {UNTRIED_KIND:.2}"),
                ),
            };
            let explore = self.settings.exploration * (2.0 * ln / (a.tries as f64 + 1.0)).sqrt();
            let idle = self.last_tried[self.kind_index(kind)].map_or(self.steps, |s| self.steps - s)
                as f64;
            let stale = self.settings.staleness * (idle / (2.0 * kinds)).min(1.0);
            let leader = if a.arm.targets_leader() {
                LEADER_BONUS
            } else {
                0.0
            };
            // A tiny seeded jitter breaks ties without favouring the list order.
            let score = mean + explore + stale + leader + self.rng.gen_range(0.0..1e-6);
            if best.as_ref().is_none_or(|(_, b, _)| score > *b) {
                let why = format!(
                    "score {score:.2}: {source} + exploration {explore:.2} + staleness {stale:.2}{}",
                    if leader > 0.0 { format!(" + leader {leader:.2}") } else { String::new() }
                );
                best = Some((i, score, why));
            }
        }
        let (index, score, reason) = best.expect("at least one arm");
        let kind = self.arms[index].arm.kind;
        let k = self.kind_index(kind);
        self.last_tried[k] = Some(self.steps);
        self.pending = Some(index);
        Choice {
            arm: self.arms[index].arm.clone(),
            score,
            reason,
        }
    }

    /// Every arm with its tries and mean disturbance so far (for the run's report).
    pub fn arms(&self) -> impl Iterator<Item = (&Arm, u32, Option<f64>)> {
        self.arms.iter().map(|a| (&a.arm, a.tries, a.mean()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> NemesisSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn zoo() -> NemesisSpec {
        spec("mode: feedback\nfaults: [partition, pause, kill, clock, loss]\ntargets: [one, minority]")
    }

    fn calm() -> Observation {
        Observation {
            window: Tally {
                ok: 100,
                ok_latency_ns: 100 * 2_000_000,
                max_latency_ns: 5_000_000,
                ..Tally::default()
            },
            leader_before: Some("n1".into()),
            leader_after: Some("n1".into()),
        }
    }

    fn disturbed() -> Observation {
        Observation {
            window: Tally {
                ok: 20,
                failed: 10,
                indeterminate: 70,
                ok_latency_ns: 20 * 200_000_000,
                max_latency_ns: 900_000_000,
            },
            leader_before: Some("n1".into()),
            leader_after: Some("n2".into()),
        }
    }

    /// Runs `steps` choices, answering each with `respond(arm)`.
    fn drive(
        chooser: &mut FeedbackChooser,
        steps: usize,
        respond: impl Fn(&Arm) -> Observation,
    ) -> Vec<Choice> {
        chooser.calm(&calm().window);
        (0..steps)
            .map(|_| {
                let c = chooser.choose();
                chooser.observe(&respond(&c.arm)).unwrap();
                c
            })
            .collect()
    }

    #[test]
    fn disturbance_weighs_errors_latency_and_leader_changes() {
        let base = &Baseline {
            latency_ns: Some(2_000_000),
            error_share: Some(0.0),
        };
        assert_eq!(calm().disturbance(base), 0.0);
        let d = disturbed().disturbance(base);
        // 80% errors (0.4), 100× latency (0.25), a new leader (0.25).
        assert!((d - 0.9).abs() < 1e-9, "{d}");
        // Errors are counted above the calm share: with 40% failing anyway, half of them.
        let noisy = Baseline {
            error_share: Some(0.4),
            ..*base
        };
        let d = disturbed().disturbance(&noisy);
        assert!((d - 0.7).abs() < 1e-9, "{d}");
        // Nothing completed at all: as disturbed as errors and latency get.
        let silent = Observation {
            leader_before: None,
            leader_after: None,
            ..Observation::default()
        };
        assert_eq!(silent.disturbance(base), 0.75);
    }

    #[test]
    fn same_seed_and_observations_give_the_same_choices() {
        let respond = |arm: &Arm| {
            if arm.kind.name() == "pause" {
                disturbed()
            } else {
                calm()
            }
        };
        let a = drive(
            &mut FeedbackChooser::new(&zoo(), 3, 7).unwrap(),
            30,
            respond,
        );
        let b = drive(
            &mut FeedbackChooser::new(&zoo(), 3, 7).unwrap(),
            30,
            respond,
        );
        assert_eq!(a, b);
        let c = drive(
            &mut FeedbackChooser::new(&zoo(), 3, 8).unwrap(),
            30,
            respond,
        );
        assert_ne!(a, c, "another seed, another order");
    }

    #[test]
    fn every_kind_is_tried_while_none_disturbs_then_the_disturbing_one_is_preferred() {
        for seed in 0..10 {
            // Nothing disturbs: the first five choices try the five kinds, leader first.
            let mut chooser = FeedbackChooser::new(&zoo(), 5, seed).unwrap();
            let choices = drive(&mut chooser, 5, |_| calm());
            let first: std::collections::BTreeSet<&str> =
                choices.iter().map(|c| c.arm.kind.name()).collect();
            assert_eq!(first.len(), 5, "seed {seed}: each kind once first");
            assert!(choices.iter().all(|c| c.arm.targets_leader()));
            assert!(choices[0].reason.contains("not tried yet"));
            // Kills disturb: chosen most of the time, yet every kind comes back.
            let mut chooser = FeedbackChooser::new(&zoo(), 5, seed).unwrap();
            let respond = |arm: &Arm| {
                if arm.kind.name() == "kill" {
                    disturbed()
                } else {
                    calm()
                }
            };
            let choices = drive(&mut chooser, 60, respond);
            let kills = choices
                .iter()
                .filter(|c| c.arm.kind.name() == "kill")
                .count();
            assert!(kills > 30, "seed {seed}: kill chosen {kills} of 60 times");
            for kind in ["partition", "pause", "clock", "loss"] {
                let tried = choices.iter().filter(|c| c.arm.kind.name() == kind).count();
                assert!(tried >= 2, "seed {seed}: {kind} tried {tried} times");
            }
        }
    }

    #[test]
    fn prefers_the_aim_that_disturbed_within_a_kind() {
        // Only pausing the leader disturbs.
        let respond = |arm: &Arm| {
            if arm.kind.name() == "pause" && arm.aim == Aim::Target(TargetSpec::Primaries) {
                disturbed()
            } else {
                calm()
            }
        };
        let mut chooser =
            FeedbackChooser::new(&spec("faults: [pause]\ntargets: [one]"), 3, 1).unwrap();
        let choices = drive(&mut chooser, 40, respond);
        let leader = choices[10..]
            .iter()
            .filter(|c| c.arm.aim == Aim::Target(TargetSpec::Primaries))
            .count();
        assert!(
            leader > 20,
            "pause of the leader chosen {leader} of 30 times"
        );
        // Leader targeting was added to the campaign's targets; partitions get
        // `isolate-leader`.
        let arms: Vec<String> = chooser.arms().map(|(a, _, _)| a.to_string()).collect();
        assert_eq!(arms, ["pause one", "pause primaries"]);
        let chooser =
            FeedbackChooser::new(&spec("faults: [partition]\nshapes: [halves]"), 3, 1).unwrap();
        let arms: Vec<String> = chooser.arms().map(|(a, _, _)| a.to_string()).collect();
        assert_eq!(arms, ["partition halves", "partition isolate-leader"]);
    }

    #[test]
    fn reasons_name_the_score_and_what_it_is_made_of() {
        let mut chooser = FeedbackChooser::new(&zoo(), 3, 3).unwrap();
        let choices = drive(&mut chooser, 8, |_| disturbed());
        assert!(choices[0].reason.contains("not tried"));
        assert!(choices[0].reason.contains("+ leader 0.05"));
        for c in &choices {
            assert!(
                c.reason.starts_with(&format!("score {:.2}: ", c.score))
                    && c.reason.contains("exploration")
                    && c.reason.contains("staleness"),
                "{}",
                c.reason
            );
        }
        // Observing with nothing chosen does nothing.
        assert_eq!(
            FeedbackChooser::new(&zoo(), 3, 3).unwrap().observe(&calm()),
            None
        );
        assert!(FeedbackChooser::new(&spec("mode: feedback"), 3, 1).is_err());
    }
}
