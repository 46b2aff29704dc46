//! Packet faults at target nodes: `loss` (nftables drops in and out), and `delay`,
//! `reorder`, `duplicate` of what a node sends to its peers (netem, or NFQUEUE with a
//! holder thread / nft `dup`), through [`crate::nemesis::packet`]. Drop counters, round
//! trips and duplicate counters are the evidence.

use super::{
    need, Applied, AppliedFault, Failed, FaultKind, FaultRequest, FaultType, Holds, PlanError,
    PlannedFault, Targets, Undone,
};
use crate::capability::{self, Capability};
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::packet::{self, AppliedShaping, Shaping, ShapingBackend, ShapingTarget};
use crate::nemesis::record::FaultRecord;
use crate::nemesis::{NemesisError, NemesisSpec};
use crate::system::System;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Settings of packet loss (`loss:`).
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

/// Settings of packet delay (`delay:`): each packet held `mean ± jitter` (uniform), order
/// kept.
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

/// Settings of packet reordering (`reorder:`): each packet held a uniform random time up
/// to `max_delay`.
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

/// Settings of packet duplication (`duplicate:`).
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

mod defaults {
    use std::time::Duration;
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
}

/// The longest hold a delay or reorder may ask for: beyond it TCP's retransmission timers
/// fire and the fault turns into loss, which is what `loss` is for.
const MAX_PACKET_HOLD: Duration = Duration::from_secs(2);
/// How many connect round trips a delay or reorder's evidence measures.
pub(crate) const SHAPING_PROBES: usize = 5;
/// How long the evidence's round trips may take.
pub(crate) const SHAPING_PROBE_LIMIT: Duration = Duration::from_secs(3);
/// How many datagrams a duplication's evidence sends (at 1% nearly half of the bursts see a
/// copy; at the default 10% all but 1 in 200).
const DUP_PROBE_DATAGRAMS: usize = 50;

/// Checks a percentage of packets is 1 to 100.
fn check_percent(kind: &'static str, percent: u8) -> Result<u8, PlanError> {
    if (1..=100).contains(&percent) {
        Ok(percent)
    } else {
        Err(PlanError::Fault {
            kind,
            message: format!("percent {percent}: expected 1 to 100"),
        })
    }
}

// ---------------------------------------------------------------------------------------
// loss

/// The `loss` kind.
pub struct Loss;

impl FaultType for Loss {
    fn name(&self) -> &'static str {
        "loss"
    }

    fn start_event(&self) -> &'static str {
        "start-loss"
    }

    fn stop_event(&self) -> &'static str {
        "stop-loss"
    }

    fn check_host(&self, _: &NemesisSpec, _: &dyn System, _: usize) -> Result<(), NemesisError> {
        need(self.name(), Capability::Nftables)
    }

    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        let percent = check_percent("loss", request.percent.unwrap_or(request.spec.loss.percent))?;
        Ok(Box::new(LossPlan {
            targets: request.targets()?,
            percent,
        }))
    }
}

/// A planned loss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LossPlan {
    pub targets: Targets,
    pub percent: u8,
}

impl PlannedFault for LossPlan {
    fn kind(&self) -> FaultKind {
        FaultKind(&Loss)
    }

    fn describe(&self) -> FaultRecord {
        FaultRecord {
            targets: Some(self.targets.planned()),
            percent: Some(i64::from(self.percent)),
            ..FaultRecord::default()
        }
    }

    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed> {
        let (nodes, note) = self.targets.resolve(leadership);
        let namespaces: Vec<String> = nodes
            .iter()
            .filter_map(|n| ctx.net(n).map(|n| n.netns.clone()))
            .collect();
        packet::apply_loss(&namespaces, self.percent).map_err(Failed::nothing_applied)?;
        Ok(Applied {
            record: FaultRecord {
                nodes: nodes.clone(),
                rules: vec![format!(
                    "nft table {} drops {}% in and out",
                    packet::LOSS_TABLE,
                    self.percent
                )],
                note,
                ..FaultRecord::default()
            },
            fault: Box::new(AppliedLoss { nodes, namespaces }),
        })
    }
}

/// Loss tables in the target namespaces, until deleted.
struct AppliedLoss {
    nodes: Vec<String>,
    /// Emptied by the undo.
    namespaces: Vec<String>,
}

impl AppliedFault for AppliedLoss {
    /// Each target sends probe datagrams to another node; its drop counter shows loss.
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let names = ctx.node_names();
        let probes: Vec<(String, std::net::Ipv4Addr)> = self
            .nodes
            .iter()
            .filter_map(|n| {
                let own = ctx.net(n)?;
                let peer = names
                    .iter()
                    .filter(|m| *m != n)
                    .find_map(|m| ctx.net(m))
                    .unwrap_or(own);
                Some((own.netns.clone(), peer.ip))
            })
            .collect();
        let (evidence, effective) = packet::loss_evidence(&probes);
        FaultRecord {
            evidence,
            effective: Some(effective),
            ..FaultRecord::default()
        }
    }

    fn undo(&mut self, _: &NemesisContext) -> Undone {
        let namespaces = std::mem::take(&mut self.namespaces);
        if namespaces.is_empty() {
            return Undone::default();
        }
        // What the rules dropped over the whole fault, read before they go.
        let dropped: Vec<String> = namespaces
            .iter()
            .map(|ns| match packet::loss_dropped(ns) {
                Ok(n) => format!("{ns}: {n} packets dropped while in force (nft counter)"),
                Err(e) => format!("{ns}: could not read the loss counter: {e}"),
            })
            .collect();
        let error = packet::heal_loss(&namespaces).err().map(|e| e.to_string());
        Undone {
            record: FaultRecord {
                nodes: self.nodes.clone(),
                evidence: dropped,
                ..FaultRecord::default()
            },
            error,
        }
    }
}

// ---------------------------------------------------------------------------------------
// delay, reorder, duplicate

/// Which shaping a kind does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShapingKind {
    Delay,
    Reorder,
    Duplicate,
}

/// A packet shaping kind (delay, reorder or duplicate).
pub struct ShapingFault {
    shaping: ShapingKind,
}

/// The `delay` kind.
pub static DELAY: ShapingFault = ShapingFault {
    shaping: ShapingKind::Delay,
};
/// The `reorder` kind.
pub static REORDER: ShapingFault = ShapingFault {
    shaping: ShapingKind::Reorder,
};
/// The `duplicate` kind.
pub static DUPLICATE: ShapingFault = ShapingFault {
    shaping: ShapingKind::Duplicate,
};

impl FaultType for ShapingFault {
    fn name(&self) -> &'static str {
        match self.shaping {
            ShapingKind::Delay => "delay",
            ShapingKind::Reorder => "reorder",
            ShapingKind::Duplicate => "duplicate",
        }
    }

    fn start_event(&self) -> &'static str {
        match self.shaping {
            ShapingKind::Delay => "start-delay",
            ShapingKind::Reorder => "start-reorder",
            ShapingKind::Duplicate => "start-duplicate",
        }
    }

    fn stop_event(&self) -> &'static str {
        match self.shaping {
            ShapingKind::Delay => "stop-delay",
            ShapingKind::Reorder => "stop-reorder",
            ShapingKind::Duplicate => "stop-duplicate",
        }
    }

    fn holds(&self) -> Holds {
        Holds::Shared("delay, reorder and duplicate faults take turns (one netem qdisc per node)")
    }

    /// netem, or else the netfilter pieces of the fallback: an NFQUEUE rule (nft's `queue`
    /// or iptables' NFQUEUE target) for delay and reorder, nft `dup` for duplication.
    fn check_host(&self, _: &NemesisSpec, _: &dyn System, _: usize) -> Result<(), NemesisError> {
        // Also settles (once per process) which backend the faults will use, so that the
        // probes are not paid when the first fault goes in.
        if packet::shaping_backend() == ShapingBackend::Netem {
            return Ok(());
        }
        let netem = capability::probe(Capability::TcNetem);
        let duplicate = self.shaping == ShapingKind::Duplicate;
        let (fallback, missing) = if duplicate {
            (
                Capability::NftDup,
                "tc netem or nft `dup` (install nftables)",
            )
        } else {
            (
                Capability::Nfqueue,
                "tc netem or an NFQUEUE rule (nft with nft_queue, or iptables: apt-get install iptables)",
            )
        };
        let probe = capability::probe(fallback);
        if probe.is_ok() && (duplicate || packet::queue_tool().is_ok()) {
            return Ok(());
        }
        Err(NemesisError::Unavailable {
            fault: self.name(),
            missing,
            detail: format!(
                "netem: {}; {}: {}",
                netem.detail,
                fallback.name(),
                probe.detail
            ),
        })
    }

    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        let spec = request.spec;
        let shaping = match self.shaping {
            ShapingKind::Delay => {
                let mean = request.delay.unwrap_or(spec.delay.mean);
                let jitter = request.jitter.unwrap_or(spec.delay.jitter);
                if mean.is_zero() || mean > MAX_PACKET_HOLD || jitter > mean {
                    return Err(PlanError::Fault {
                        kind: "delay",
                        message: format!(
                            "mean {mean:?} ± jitter {jitter:?}: expected a mean above 0 and up to {MAX_PACKET_HOLD:?}, jitter at most the mean"
                        ),
                    });
                }
                Shaping::Delay { mean, jitter }
            }
            ShapingKind::Reorder => {
                let max_delay = request.max_delay.unwrap_or(spec.reorder.max_delay);
                if max_delay < Duration::from_millis(1) || max_delay > MAX_PACKET_HOLD {
                    return Err(PlanError::Fault {
                        kind: "reorder",
                        message: format!(
                            "max_delay {max_delay:?}: expected 1ms to {MAX_PACKET_HOLD:?}"
                        ),
                    });
                }
                Shaping::Reorder { max_delay }
            }
            ShapingKind::Duplicate => Shaping::Duplicate {
                percent: check_percent(
                    "duplicate",
                    request.percent.unwrap_or(spec.duplicate.percent),
                )?,
            },
        };
        Ok(Box::new(ShapingPlan {
            targets: request.targets()?,
            shaping,
        }))
    }
}

/// A planned delay, reorder or duplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapingPlan {
    pub targets: Targets,
    pub shaping: Shaping,
}

impl PlannedFault for ShapingPlan {
    fn kind(&self) -> FaultKind {
        FaultKind(match self.shaping {
            Shaping::Delay { .. } => &DELAY,
            Shaping::Reorder { .. } => &REORDER,
            Shaping::Duplicate { .. } => &DUPLICATE,
        })
    }

    fn describe(&self) -> FaultRecord {
        let planned = FaultRecord {
            targets: Some(self.targets.planned()),
            ..FaultRecord::default()
        };
        match self.shaping {
            Shaping::Delay { mean, jitter } => FaultRecord {
                mean_us: Some(super::micros(mean)),
                jitter_us: Some(super::micros(jitter)),
                ..planned
            },
            Shaping::Reorder { max_delay } => FaultRecord {
                max_delay_us: Some(super::micros(max_delay)),
                ..planned
            },
            Shaping::Duplicate { percent } => FaultRecord {
                percent: Some(i64::from(percent)),
                ..planned
            },
        }
    }

    /// Shapes the targets' traffic to their peers with the backend this machine offers
    /// (netem, else netfilter).
    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed> {
        let (nodes, note) = self.targets.resolve(leadership);
        let all = ctx.cluster().topology.nodes();
        let targets: Vec<ShapingTarget> = nodes
            .iter()
            .filter_map(|n| ctx.net(n))
            .map(|target| ShapingTarget {
                netns: target.netns.clone(),
                peers: all
                    .iter()
                    .filter(|p| p.name != target.name)
                    .map(|p| p.ip)
                    .collect(),
            })
            .collect();
        let backend = packet::shaping_backend();
        // The holders' random streams differ per run and fault; reproducing packet timing
        // exactly is not possible anyway (the kernel decides when packets arrive).
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let applied = packet::apply_shaping(self.shaping, targets, backend, seed)
            .map_err(Failed::nothing_applied)?;
        let rules: Vec<String> = applied
            .changes
            .iter()
            .map(|(ns, lines)| format!("{ns}: {}", lines.join("; ")))
            .collect();
        let described = Some(self.shaping.describe());
        let (delay, reorder, duplicate) = match self.shaping {
            Shaping::Delay { .. } => (described, None, None),
            Shaping::Reorder { .. } => (None, described, None),
            Shaping::Duplicate { .. } => (None, None, described),
        };
        let record = FaultRecord {
            nodes: nodes.clone(),
            backend: Some(backend.name().to_owned()),
            delay,
            reorder,
            duplicate,
            rules,
            queues: applied.queues(),
            note,
            ..FaultRecord::default()
        };
        Ok(Applied {
            fault: Box::new(AppliedShapingFault {
                nodes,
                applied: Some(Box::new(applied)),
            }),
            record,
        })
    }
}

/// Shaping rules (and holder threads) in force. Dropping them also takes the rules out and
/// releases every held packet; the undo does it with a record.
struct AppliedShapingFault {
    nodes: Vec<String>,
    /// Taken by the undo.
    applied: Option<Box<AppliedShaping>>,
}

impl AppliedFault for AppliedShapingFault {
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        match &self.applied {
            Some(applied) => shaping_evidence(ctx, &self.nodes, applied),
            None => FaultRecord::default(),
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let Some(applied) = self.applied.take() else {
            return Undone::default();
        };
        let record = FaultRecord {
            nodes: self.nodes.clone(),
            ..FaultRecord::default()
        };
        match packet::heal_shaping(*applied) {
            Ok(healed) => {
                let mut evidence: Vec<String> = healed
                    .holders
                    .iter()
                    .map(|(ns, s)| {
                        format!(
                            "{ns}: {} held, {} released, {} overtaken, mean hold {:.1}ms, {} verdict errors",
                            s.received,
                            s.released,
                            s.overtaken,
                            s.mean_hold().as_secs_f64() * 1000.0,
                            s.verdict_errors
                        )
                    })
                    .collect();
                // Back to normal: the round trip after undo, next to the one in force.
                let (_, after) = shaping_rtts(ctx, &self.nodes);
                evidence.push(after);
                Undone {
                    record: FaultRecord { evidence, ..record },
                    error: None,
                }
            }
            Err(e) => Undone {
                record,
                error: Some(e.to_string()),
            },
        }
    }
}

/// Connect round trips from the first target to a peer (a held SYN shows in them), with a
/// line saying where they were measured.
fn shaping_rtts(ctx: &NemesisContext, nodes: &[String]) -> (Vec<Duration>, String) {
    let pair = nodes.first().and_then(|n| ctx.net(n)).and_then(|from| {
        let to = ctx
            .cluster()
            .topology
            .nodes()
            .iter()
            .find(|p| p.name != from.name)?;
        Some((from, to))
    });
    let Some((from, to)) = pair else {
        return (Vec::new(), "no pair of nodes to measure".into());
    };
    match packet::connect_rtts(&from.netns, to.ip, SHAPING_PROBES, SHAPING_PROBE_LIMIT) {
        Ok(rtts) => {
            let shown: Vec<String> = rtts
                .iter()
                .map(|d| format!("{:.1}ms", d.as_secs_f64() * 1000.0))
                .collect();
            let line = format!(
                "connect round trip {}->{}: {}",
                from.name,
                to.name,
                shown.join(" ")
            );
            (rtts, line)
        }
        Err(e) => (
            Vec::new(),
            format!("connect round trip {}->{}: {e}", from.name, to.name),
        ),
    }
}

/// Whether connect round trips show a delay of `mean`: the median connect waits for its
/// held SYN, at least about half the mean.
pub(crate) fn rtts_show_delay(rtts: &[Duration], mean: Duration) -> bool {
    let mut sorted = rtts.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).is_some_and(|m| *m >= mean / 2)
}

/// Whether connect round trips show reordering up to `max_delay`: holds are uniform in
/// 0..max, so five all below a quarter happen 1 time in 1000.
pub(crate) fn rtts_show_reorder(rtts: &[Duration], max_delay: Duration) -> bool {
    rtts.iter().any(|r| *r >= max_delay / 4)
}

/// Evidence that delay, reorder or duplication is in force.
fn shaping_evidence(
    ctx: &NemesisContext,
    nodes: &[String],
    applied: &AppliedShaping,
) -> FaultRecord {
    match applied.shaping {
        Shaping::Delay { mean, .. } => {
            let (rtts, line) = shaping_rtts(ctx, nodes);
            FaultRecord {
                evidence: vec![line],
                effective: Some(rtts_show_delay(&rtts, mean)),
                ..FaultRecord::default()
            }
        }
        Shaping::Reorder { max_delay } => {
            let (rtts, line) = shaping_rtts(ctx, nodes);
            FaultRecord {
                evidence: vec![line],
                effective: Some(rtts_show_reorder(&rtts, max_delay)),
                ..FaultRecord::default()
            }
        }
        Shaping::Duplicate { .. } => {
            let Some(target) = applied.targets.first() else {
                return FaultRecord {
                    effective: Some(false),
                    ..FaultRecord::default()
                };
            };
            match applied.backend {
                ShapingBackend::Netfilter => {
                    let copied = target.peers.first().and_then(|peer| {
                        packet::send_udp_burst(&target.netns, *peer, DUP_PROBE_DATAGRAMS).ok()?;
                        packet::table_packets(&target.netns, packet::DUP_TABLE).ok()
                    });
                    let line = match copied {
                        Some(c) => format!(
                            "{}: {c} packets duplicated (nft counter, after {DUP_PROBE_DATAGRAMS} probe datagrams)",
                            target.netns
                        ),
                        None => format!("{}: could not read the dup counter", target.netns),
                    };
                    FaultRecord {
                        duplicated_packets: Some(copied.unwrap_or(0) as i64),
                        evidence: vec![line],
                        effective: Some(copied.is_some_and(|c| c > 0)),
                        ..FaultRecord::default()
                    }
                }
                // netem counts no duplicates; the qdisc being there is what can be shown.
                ShapingBackend::Netem => {
                    let shown = crate::netns::run(
                        &target.netns,
                        "tc",
                        &["qdisc", "show", "dev", crate::topology::NODE_IFACE],
                    )
                    .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                    .unwrap_or_default();
                    FaultRecord {
                        evidence: vec![format!("{}: {shown}", target.netns)],
                        effective: Some(shown.contains("duplicate")),
                        ..FaultRecord::default()
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{nodes, plan_one};
    use super::*;
    use crate::nemesis::record::PlannedTargets;
    use crate::nemesis::TargetSpec;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn packet_faults_describe_their_settings_from_the_spec_or_the_request() {
        let spec: NemesisSpec = serde_yaml::from_str(
            "delay: {mean: 40ms, jitter: 5ms}\nreorder: {max_delay: 25ms}\nduplicate: {percent: 7}\nloss: {percent: 30}",
        )
        .unwrap();
        let all = |r: &mut FaultRequest<'_>| r.target = TargetSpec::All;
        let delay = plan_one("delay", &spec, &nodes(3), all).unwrap().describe();
        assert_eq!(
            delay,
            FaultRecord {
                targets: Some(PlannedTargets::Nodes(nodes(3))),
                mean_us: Some(40_000),
                jitter_us: Some(5_000),
                ..FaultRecord::default()
            }
        );
        let own = plan_one("delay", &spec, &nodes(3), |r| {
            r.delay = Some(ms(100));
            r.jitter = Some(Duration::ZERO);
        })
        .unwrap()
        .describe();
        assert_eq!((own.mean_us, own.jitter_us), (Some(100_000), Some(0)));
        let reorder = plan_one("reorder", &spec, &nodes(3), all).unwrap();
        assert_eq!(reorder.kind().name(), "reorder");
        assert_eq!(reorder.describe().max_delay_us, Some(25_000));
        let duplicate = plan_one("duplicate", &spec, &nodes(3), all).unwrap();
        assert_eq!(duplicate.describe().percent, Some(7));
        let loss = plan_one("loss", &spec, &nodes(3), |r| r.percent = Some(50)).unwrap();
        assert_eq!(loss.kind().name(), "loss");
        assert_eq!(loss.describe().percent, Some(50));
        assert_eq!(
            plan_one("loss", &spec, &nodes(3), all)
                .unwrap()
                .describe()
                .percent,
            Some(30)
        );
    }

    #[test]
    fn bad_packet_settings_are_refused_when_planning() {
        let spec = NemesisSpec::default();
        let refused = |kind: &str, tweak: fn(&mut FaultRequest<'_>)| {
            plan_one(kind, &spec, &nodes(3), tweak)
                .unwrap_err()
                .to_string()
        };
        assert!(refused("delay", |r| {
            r.delay = Some(ms(10));
            r.jitter = Some(ms(20));
        })
        .contains("jitter"));
        assert!(refused("delay", |r| r.delay = Some(ms(0))).contains("delay"));
        assert!(refused("delay", |r| r.delay = Some(ms(2001))).contains("delay"));
        assert!(refused("reorder", |r| r.max_delay = Some(ms(10_000))).contains("max_delay"));
        assert!(refused("duplicate", |r| r.percent = Some(0)).contains("percent"));
        assert!(refused("loss", |r| r.percent = Some(101)).contains("percent"));
    }

    #[test]
    fn shaping_kinds_share_the_qdisc_and_loss_does_not() {
        for kind in ["delay", "reorder", "duplicate"] {
            assert_eq!(FaultKind::named(kind).unwrap().holds(), DELAY.holds());
        }
        assert_eq!(
            FaultKind::named("loss").unwrap().holds(),
            Holds::Own("loss")
        );
    }

    #[test]
    fn round_trips_show_a_delay_or_a_reorder() {
        let rtts = [ms(1), ms(30), ms(60), ms(55), ms(1)];
        assert!(rtts_show_delay(&rtts, ms(50)));
        assert!(!rtts_show_delay(&[ms(1), ms(2), ms(3)], ms(50)));
        assert!(!rtts_show_delay(&[], ms(50)));
        assert!(rtts_show_reorder(&[ms(1), ms(9)], ms(30)));
        assert!(!rtts_show_reorder(&[ms(1), ms(2)], ms(30)));
    }
}
