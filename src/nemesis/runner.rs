//! Runs a [`Schedule`] against a live cluster on its own thread, records every fault start
//! and stop in the history, and undoes every fault on every path.
//!
//! The undo machinery is a guard ([`ActiveFaults`]): each applied fault leaves an undo in
//! it, a stop takes its undo out and runs it, and whatever is still inside when the guard is
//! dropped — end of schedule, stop request, panic in the nemesis thread — is undone then.
//! [`Nemesis`] itself stops and joins the thread when dropped, so an error or a panic in the
//! runner also heals before the cluster goes away.

use super::clock;
use super::net::{self, AppliedCut, NetBackend, Reach};
use super::packet;
use super::partition::{self, Grudge, Shape};
use super::process::{self, RESTART_READY_TIMEOUT};
use super::record::{start_event, stop_event, FaultRecord, PlannedTargets};
use super::roles::{self, RoleQuery};
use super::schedule::{Action, FaultKind, Schedule, ScheduledFault, Targets};
use crate::cluster::{Cluster, Deployment};
use crate::nemesis::netlink::RouteWorkers;
use crate::node::Node;
use crate::recorder::{Entry, Recorder};
use crate::system::Readiness;
use crate::topology::NodeNet;
use serde::Serialize;
use splitbrain_checkers::{EventType, Process, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long before its scheduled time a fault resolves who leads (a role query takes
/// milliseconds), so that the fault itself goes in on time.
const PREPARE_AHEAD: Duration = Duration::from_millis(200);
/// How long a reachability probe waits for an answer (blackholes answer at once).
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a role query may take.
const ROLE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("faults need a cluster of processes; the in-memory system has none")]
    NoCluster,
    #[error("starting the nemesis thread: {0}")]
    Thread(std::io::Error),
}

/// Everything the nemesis needs from the run.
pub struct NemesisContext {
    pub deployment: Arc<Deployment>,
    pub recorder: Recorder,
    pub backend: NetBackend,
    /// How to ask nodes who leads (`None`: the system cannot say; random fallback).
    pub roles: Option<Arc<dyn RoleQuery>>,
    /// Netlink threads in the node namespaces for blackhole routes (`None`: `ip -batch`).
    pub routes: Option<RouteWorkers>,
}

impl NemesisContext {
    fn cluster(&self) -> &Cluster {
        match &*self.deployment {
            Deployment::Cluster(c) => c,
            Deployment::InMemory(_) => unreachable!("checked in Nemesis::start"),
        }
    }

    fn node(&self, name: &str) -> Option<&Node> {
        self.cluster().nodes.iter().find(|n| n.name() == name)
    }

    fn net(&self, name: &str) -> Option<&NodeNet> {
        self.cluster().topology.node(name)
    }

    fn node_names(&self) -> Vec<String> {
        self.cluster()
            .topology
            .nodes()
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    fn offset_file(&self, name: &str) -> Option<PathBuf> {
        self.node(name)
            .map(|n| n.config().log_dir.join(clock::OFFSET_FILE))
    }

    /// Where each node answers role queries: its readiness address (the client port of
    /// etcd and clusterkv).
    fn role_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.cluster()
            .spec
            .nodes
            .iter()
            .filter_map(|n| match self.cluster().system.readiness(n) {
                Readiness::TcpPort(addr) => Some((n.name.clone(), addr)),
                Readiness::Command(_) => None,
            })
            .collect()
    }

    /// Every node's status (empty when the system cannot say).
    fn statuses(&self) -> Vec<Result<roles::NodeStatus, String>> {
        match &self.roles {
            Some(query) => roles::statuses(
                query,
                self.cluster().topology.switch_netns(),
                &self.role_addrs(),
                ROLE_TIMEOUT,
            ),
            None => Vec::new(),
        }
    }

    /// Every node's role as one line each (`n1: leader (term 3)`, `n2: follower (term 3)`,
    /// `n3: no answer (…)`); empty when the system cannot say. Evidence of leader changes.
    fn role_lines(&self) -> Vec<String> {
        self.role_lines_of(&self.statuses())
    }

    fn role_lines_of(&self, statuses: &[Result<roles::NodeStatus, String>]) -> Vec<String> {
        statuses
            .iter()
            .zip(self.role_addrs())
            .map(|(status, (node, _))| match status {
                Ok(s) => format!(
                    "{}: {} (term {})",
                    s.node,
                    if s.is_leader { "leader" } else { "follower" },
                    s.term
                ),
                Err(e) => format!("{node}: no answer ({e})"),
            })
            .collect()
    }

    /// The leader among `statuses`, or `fallback` with a note saying why.
    fn leader_or(
        &self,
        statuses: &[Result<roles::NodeStatus, String>],
        fallback: &str,
    ) -> (String, String) {
        let Some(query) = &self.roles else {
            return (
                fallback.to_owned(),
                "the system cannot say who leads: random node".to_owned(),
            );
        };
        match roles::leader_of(statuses) {
            Some(leader) => (leader, format!("leader per {} status", query.system())),
            None => (
                fallback.to_owned(),
                format!(
                    "no node claims to lead per {} status: random node",
                    query.system()
                ),
            ),
        }
    }

    fn resolve(
        &self,
        statuses: &[Result<roles::NodeStatus, String>],
        targets: &Targets,
    ) -> (Vec<String>, Option<String>) {
        match targets {
            Targets::Nodes(nodes) => (nodes.clone(), None),
            Targets::Primaries { fallback } => {
                let (leader, note) = self.leader_or(statuses, fallback);
                (vec![leader], Some(note))
            }
        }
    }

    /// Resolves what depends on the live cluster (the leader) just before a fault starts,
    /// and notes every node's role then.
    fn prepare(&self, action: &Action) -> Prepared {
        // One query serves both: who leads (for leader-targeted faults) and the roles.
        let statuses = self.statuses();
        Prepared {
            roles: self.role_lines_of(&statuses),
            ..self.targets(&statuses, action)
        }
    }

    fn targets(&self, statuses: &[Result<roles::NodeStatus, String>], action: &Action) -> Prepared {
        match action {
            Action::Partition {
                grudge: Some(g), ..
            } => Prepared {
                grudge: Some(g.clone()),
                ..Prepared::default()
            },
            Action::Partition {
                grudge: None,
                fallback,
                ..
            } => {
                let (leader, note) = self.leader_or(statuses, fallback);
                Prepared {
                    grudge: Some(partition::isolate_node(&self.node_names(), &leader)),
                    note: Some(format!("isolated {leader}: {note}")),
                    ..Prepared::default()
                }
            }
            Action::Pause(t)
            | Action::Kill(t)
            | Action::ClockBump { targets: t, .. }
            | Action::ClockStrobe { targets: t, .. }
            | Action::Loss { targets: t, .. }
            | Action::Delay { targets: t, .. }
            | Action::Reorder { targets: t, .. }
            | Action::Duplicate { targets: t, .. } => {
                let (nodes, note) = self.resolve(statuses, t);
                Prepared {
                    nodes,
                    note,
                    ..Prepared::default()
                }
            }
        }
    }

    fn record(&self, kind: EventType, f: &str, record: &FaultRecord, error: Option<String>) {
        self.recorder.record(Entry {
            process: Process::Nemesis,
            kind,
            f: f.to_owned(),
            key: None,
            value: record.to_value(),
            node: None,
            error: error.map(Value::Str),
        });
    }
}

fn grudge_record(g: &Grudge) -> BTreeMap<String, Vec<String>> {
    g.0.iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect()
}

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

/// A fault's targets, resolved against the live cluster.
#[derive(Debug, Default)]
struct Prepared {
    nodes: Vec<String>,
    grudge: Option<Grudge>,
    note: Option<String>,
    /// Every node's role just before the fault (empty when the system cannot say).
    roles: Vec<String>,
}

/// How one fault went, for the run's report and the timing measurements.
#[derive(Debug, Clone, Serialize)]
pub struct FaultTiming {
    pub id: usize,
    pub kind: &'static str,
    /// From the scheduled start to the fault being in force (µs).
    pub lateness_us: i64,
    /// How long applying took (µs).
    pub took_us: i64,
    /// How long undoing took (µs), once undone.
    pub undo_us: Option<i64>,
    pub error: Option<String>,
}

/// What the nemesis did over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NemesisReport {
    pub schedule: Schedule,
    pub faults: Vec<FaultTiming>,
    /// Undo failures (each also recorded in the history).
    pub undo_errors: Vec<String>,
}

/// How to take one applied fault back.
enum Undo {
    Cut(AppliedCut),
    Resume(Vec<String>),
    Restart(Vec<String>),
    ClockReset {
        nodes: Vec<String>,
        /// The offset each node should show while the fault is in force (a strobe's
        /// non-zero one), for the evidence.
        offsets_ms: Vec<i64>,
        strobe: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    },
    Loss {
        nodes: Vec<String>,
        namespaces: Vec<String>,
    },
    /// Delay, reorder or duplication; dropping it takes the rules out and releases every
    /// held packet.
    Shaping {
        nodes: Vec<String>,
        applied: Box<packet::AppliedShaping>,
    },
}

struct ActiveFault {
    id: usize,
    kind: FaultKind,
    undo: Undo,
}

/// The faults in force; dropping it undoes them all.
struct ActiveFaults {
    ctx: Arc<NemesisContext>,
    active: Vec<ActiveFault>,
    report: NemesisReport,
}

impl ActiveFaults {
    fn start(&mut self, fault: &ScheduledFault, mut prepared: Prepared, scheduled: Instant) {
        let kind = fault.action.kind();
        let f = start_event(kind);
        self.ctx
            .record(EventType::Invoke, f, &describe_start(fault), None);
        let roles_before = std::mem::take(&mut prepared.roles);
        let began = Instant::now();
        let outcome = apply(&self.ctx, &fault.action, prepared);
        let in_force = Instant::now();
        // Evidence is gathered after the fault is in force and is not part of its timing.
        let outcome = outcome.map(|(undo, mut details)| {
            details.merge(evidence(&self.ctx, &undo));
            (undo, details)
        });
        let took = in_force - began;
        let lateness = in_force.saturating_duration_since(scheduled);
        let base = FaultRecord {
            id: Some(fault.id as i64),
            took_us: Some(micros(took)),
            lateness_us: Some(micros(lateness)),
            ..FaultRecord::default()
        };
        let timing = |error: Option<String>| FaultTiming {
            id: fault.id,
            kind: kind.name(),
            lateness_us: micros(lateness),
            took_us: micros(took),
            undo_us: None,
            error,
        };
        match outcome {
            Ok((undo, details)) => {
                let mut record = base;
                record.merge(details);
                record.roles_before = roles_before;
                self.ctx.record(EventType::Info, f, &record, None);
                self.report.faults.push(timing(None));
                self.active.push(ActiveFault {
                    id: fault.id,
                    kind,
                    undo,
                });
            }
            Err((undo, message)) => {
                self.ctx
                    .record(EventType::Info, f, &base, Some(message.clone()));
                self.report.faults.push(timing(Some(message)));
                // Whatever part did apply is still undone at the end.
                if let Some(undo) = undo {
                    self.active.push(ActiveFault {
                        id: fault.id,
                        kind,
                        undo,
                    });
                }
            }
        }
    }

    fn stop(&mut self, id: usize) {
        if let Some(pos) = self.active.iter().position(|a| a.id == id) {
            let fault = self.active.remove(pos);
            self.undo(fault);
        }
    }

    /// Undoes everything still in force, newest first.
    fn heal_all(&mut self) {
        while let Some(fault) = self.active.pop() {
            self.undo(fault);
        }
    }

    fn undo(&mut self, fault: ActiveFault) {
        let f = stop_event(fault.kind);
        self.ctx
            .record(EventType::Invoke, f, &FaultRecord::with_id(fault.id), None);
        let began = Instant::now();
        let (details, error) = undo(&self.ctx, fault.undo);
        let took = began.elapsed();
        let mut record = FaultRecord {
            id: Some(fault.id as i64),
            took_us: Some(micros(took)),
            ..FaultRecord::default()
        };
        record.merge(details);
        // Who leads once healed, next to who led before: leader changes, as evidence.
        record.roles_after = self.ctx.role_lines();
        if let Some(e) = &error {
            self.report.undo_errors.push(format!(
                "fault {} ({}): {e}",
                fault.id,
                fault.kind.name()
            ));
        }
        self.ctx.record(EventType::Info, f, &record, error);
        if let Some(t) = self
            .report
            .faults
            .iter_mut()
            .rev()
            .find(|t| t.id == fault.id)
        {
            t.undo_us = Some(micros(took));
        }
    }
}

impl Drop for ActiveFaults {
    fn drop(&mut self) {
        self.heal_all();
    }
}

fn planned_targets(t: &Targets) -> PlannedTargets {
    match t {
        Targets::Nodes(n) => PlannedTargets::Nodes(n.clone()),
        Targets::Primaries { .. } => PlannedTargets::Role("primaries".to_owned()),
    }
}

/// The planned record of a fault start.
fn describe_start(fault: &ScheduledFault) -> FaultRecord {
    let plan = FaultRecord {
        id: Some(fault.id as i64),
        hold_ms: Some(fault.hold.as_millis() as i64),
        ..FaultRecord::default()
    };
    let targeting = |targets: &Targets| FaultRecord {
        targets: Some(planned_targets(targets)),
        ..plan.clone()
    };
    match &fault.action {
        Action::Partition { shape, grudge, .. } => FaultRecord {
            shape: Some(shape.name().to_owned()),
            grudge: grudge.as_ref().map(grudge_record),
            ..plan
        },
        Action::Pause(t) | Action::Kill(t) => targeting(t),
        Action::ClockBump {
            targets,
            offsets_ms,
        } => FaultRecord {
            offsets_ms: offsets_ms.clone(),
            ..targeting(targets)
        },
        Action::ClockStrobe {
            targets,
            offset_ms,
            period,
        } => FaultRecord {
            offset_ms: Some(*offset_ms),
            period_ms: Some(period.as_millis() as i64),
            ..targeting(targets)
        },
        Action::Loss { targets, percent } | Action::Duplicate { targets, percent } => FaultRecord {
            percent: Some(*percent as i64),
            ..targeting(targets)
        },
        Action::Delay {
            targets,
            mean,
            jitter,
        } => FaultRecord {
            mean_us: Some(micros(*mean)),
            jitter_us: Some(micros(*jitter)),
            ..targeting(targets)
        },
        Action::Reorder { targets, max_delay } => FaultRecord {
            max_delay_us: Some(micros(*max_delay)),
            ..targeting(targets)
        },
    }
}

type Applied = Result<(Undo, FaultRecord), (Option<Undo>, String)>;

fn apply(ctx: &NemesisContext, action: &Action, prepared: Prepared) -> Applied {
    let Prepared {
        nodes,
        grudge,
        note,
        ..
    } = prepared;
    match action {
        Action::Partition { shape, .. } => {
            apply_partition(ctx, *shape, grudge.unwrap_or_default(), note)
        }
        Action::Pause(_) => apply_to_processes(ctx, nodes, note, process::pause, Undo::Resume),
        Action::Kill(_) => apply_to_processes(ctx, nodes, note, process::kill, Undo::Restart),
        Action::ClockBump { offsets_ms, .. } => {
            let mut applied = Vec::new();
            for (i, name) in nodes.iter().enumerate() {
                let offset = offsets_ms
                    .get(i)
                    .or(offsets_ms.first())
                    .copied()
                    .unwrap_or(0);
                let Some(file) = ctx.offset_file(name) else {
                    continue;
                };
                if let Err(e) = clock::write_offset(&file, offset) {
                    return Err((
                        Some(Undo::ClockReset {
                            nodes: applied,
                            offsets_ms: Vec::new(),
                            strobe: None,
                        }),
                        e.to_string(),
                    ));
                }
                applied.push(name.clone());
            }
            let offsets: Vec<String> = nodes
                .iter()
                .zip(offsets_ms.iter().cycle())
                .map(|(n, o)| format!("{n}: {}", clock::offset_spec(*o)))
                .collect();
            let fields = FaultRecord {
                nodes: nodes.clone(),
                offsets,
                note,
                ..FaultRecord::default()
            };
            let planned = applied
                .iter()
                .map(|a| {
                    let i = nodes.iter().position(|n| n == a).unwrap_or(0);
                    offsets_ms
                        .get(i)
                        .or(offsets_ms.first())
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            Ok((
                Undo::ClockReset {
                    nodes: applied,
                    offsets_ms: planned,
                    strobe: None,
                },
                fields,
            ))
        }
        Action::ClockStrobe {
            offset_ms, period, ..
        } => {
            let files: Vec<PathBuf> = nodes.iter().filter_map(|n| ctx.offset_file(n)).collect();
            for file in &files {
                if let Err(e) = clock::write_offset(file, *offset_ms) {
                    return Err((
                        Some(Undo::ClockReset {
                            nodes,
                            offsets_ms: Vec::new(),
                            strobe: None,
                        }),
                        e.to_string(),
                    ));
                }
            }
            let stop = Arc::new(AtomicBool::new(false));
            let thread_stop = stop.clone();
            let (offset, period) = (*offset_ms, *period);
            let strobe = std::thread::Builder::new()
                .name("clock-strobe".into())
                .spawn(move || {
                    let mut high = true;
                    while !thread_stop.load(Ordering::Relaxed) {
                        std::thread::sleep(period);
                        high = !high;
                        for file in &files {
                            // A failed flip leaves the previous offset; the reset at the end
                            // reports errors.
                            let _ = clock::write_offset(file, if high { offset } else { 0 });
                        }
                    }
                });
            let strobe = match strobe {
                Ok(handle) => Some((stop, handle)),
                Err(e) => {
                    return Err((
                        Some(Undo::ClockReset {
                            nodes,
                            offsets_ms: Vec::new(),
                            strobe: None,
                        }),
                        e.to_string(),
                    ))
                }
            };
            let fields = FaultRecord {
                nodes: nodes.clone(),
                offsets: vec![format!(
                    "0 / {} every {}ms",
                    clock::offset_spec(offset),
                    period.as_millis()
                )],
                note,
                ..FaultRecord::default()
            };
            let offsets_ms = vec![offset; nodes.len()];
            Ok((
                Undo::ClockReset {
                    nodes,
                    offsets_ms,
                    strobe,
                },
                fields,
            ))
        }
        Action::Loss { percent, .. } => {
            let namespaces: Vec<String> = nodes
                .iter()
                .filter_map(|n| ctx.net(n).map(|n| n.netns.clone()))
                .collect();
            match packet::apply_loss(&namespaces, *percent) {
                Ok(_) => Ok((
                    Undo::Loss {
                        nodes: nodes.clone(),
                        namespaces,
                    },
                    FaultRecord {
                        nodes: nodes.clone(),
                        rules: vec![format!(
                            "nft table {} drops {percent}% in and out",
                            packet::LOSS_TABLE
                        )],
                        note,
                        ..FaultRecord::default()
                    },
                )),
                Err(e) => Err((None, e.to_string())),
            }
        }
        Action::Delay { mean, jitter, .. } => apply_shaping(
            ctx,
            packet::Shaping::Delay {
                mean: *mean,
                jitter: *jitter,
            },
            nodes,
            note,
        ),
        Action::Reorder { max_delay, .. } => apply_shaping(
            ctx,
            packet::Shaping::Reorder {
                max_delay: *max_delay,
            },
            nodes,
            note,
        ),
        Action::Duplicate { percent, .. } => apply_shaping(
            ctx,
            packet::Shaping::Duplicate { percent: *percent },
            nodes,
            note,
        ),
    }
}

/// Delay, reorder or duplication on `nodes`' traffic to their peers, with the backend this
/// machine offers (netem, else netfilter).
fn apply_shaping(
    ctx: &NemesisContext,
    shaping: packet::Shaping,
    nodes: Vec<String>,
    note: Option<String>,
) -> Applied {
    let all = ctx.cluster().topology.nodes();
    let targets: Vec<packet::ShapingTarget> = nodes
        .iter()
        .filter_map(|n| ctx.net(n))
        .map(|target| packet::ShapingTarget {
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
    match packet::apply_shaping(shaping, targets, backend, seed) {
        Ok(applied) => {
            let rules: Vec<String> = applied
                .changes
                .iter()
                .map(|(ns, lines)| format!("{ns}: {}", lines.join("; ")))
                .collect();
            let described = Some(shaping.describe());
            let (delay, reorder, duplicate) = match shaping {
                packet::Shaping::Delay { .. } => (described, None, None),
                packet::Shaping::Reorder { .. } => (None, described, None),
                packet::Shaping::Duplicate { .. } => (None, None, described),
            };
            let fields = FaultRecord {
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
            Ok((
                Undo::Shaping {
                    nodes,
                    applied: Box::new(applied),
                },
                fields,
            ))
        }
        Err(e) => Err((None, e.to_string())),
    }
}

/// How many connect round trips a delay or reorder's evidence measures.
const SHAPING_PROBES: usize = 5;
/// How many datagrams a duplication's evidence sends (at 1% nearly half of the bursts see a
/// copy; at the default 10% all but 1 in 200).
const DUP_PROBE_DATAGRAMS: usize = 50;

/// Connect round trips from the first target to a peer (a held SYN shows in them), with a
/// line saying where they were measured.
fn shaping_rtts(
    ctx: &NemesisContext,
    nodes: &[String],
    limit: Duration,
) -> (Vec<Duration>, String) {
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
    match packet::connect_rtts(&from.netns, to.ip, SHAPING_PROBES, limit) {
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

/// Evidence that delay, reorder or duplication is in force.
fn shaping_evidence(
    ctx: &NemesisContext,
    nodes: &[String],
    applied: &packet::AppliedShaping,
) -> FaultRecord {
    let limit = Duration::from_secs(3);
    match applied.shaping {
        packet::Shaping::Delay { mean, .. } => {
            let (rtts, line) = shaping_rtts(ctx, nodes, limit);
            let mut sorted = rtts.clone();
            sorted.sort();
            // The median connect waits for its held SYN: at least about half the mean.
            let effective = sorted.get(sorted.len() / 2).is_some_and(|m| *m >= mean / 2);
            FaultRecord {
                evidence: vec![line],
                effective: Some(effective),
                ..FaultRecord::default()
            }
        }
        packet::Shaping::Reorder { max_delay } => {
            let (rtts, line) = shaping_rtts(ctx, nodes, limit);
            // Holds are uniform in 0..max: five all below a quarter happen 1 time in 1000.
            let effective = rtts.iter().any(|r| *r >= max_delay / 4);
            FaultRecord {
                evidence: vec![line],
                effective: Some(effective),
                ..FaultRecord::default()
            }
        }
        packet::Shaping::Duplicate { .. } => {
            let Some(target) = applied.targets.first() else {
                return FaultRecord {
                    effective: Some(false),
                    ..FaultRecord::default()
                };
            };
            match applied.backend {
                packet::ShapingBackend::Netfilter => {
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
                packet::ShapingBackend::Netem => {
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

/// Each node's wall clock as it reports it, minus ours (clock evidence; empty when the
/// system does not report time).
fn observed_clocks(ctx: &NemesisContext, nodes: &[String]) -> Vec<String> {
    observed_skews(ctx, nodes)
        .into_iter()
        .map(|(node, skew)| format!("{node}: {skew:+}ms"))
        .collect()
}

/// How far a node's reported clock may be from the offset set for it and still count as
/// showing it (the status round trip and scheduling take some milliseconds).
const CLOCK_TOLERANCE_MS: i64 = 1_000;

/// Each node's wall clock as it reports it, minus ours, in milliseconds.
fn observed_skews(ctx: &NemesisContext, nodes: &[String]) -> Vec<(String, i64)> {
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

/// The record of undoing a process fault: every node's evidence, the first error.
fn process_undo(
    nodes: &[String],
    results: Vec<Result<process::ProcessEvidence, crate::node::NodeError>>,
) -> (FaultRecord, Option<String>) {
    let mut evidence = Vec::new();
    let mut error = None;
    for result in results {
        match result {
            Ok(e) => evidence.push(e.to_string()),
            Err(e) => {
                error.get_or_insert(e.to_string());
            }
        }
    }
    (
        FaultRecord {
            nodes: nodes.to_vec(),
            evidence,
            ..FaultRecord::default()
        },
        error,
    )
}

/// Pauses or kills `nodes` one by one; on a failure, what was done so far is undone.
fn apply_to_processes(
    ctx: &NemesisContext,
    nodes: Vec<String>,
    note: Option<String>,
    act: fn(&Node) -> Result<process::ProcessEvidence, crate::node::NodeError>,
    undo: fn(Vec<String>) -> Undo,
) -> Applied {
    let mut done = Vec::new();
    let mut evidence = Vec::new();
    let mut in_effect = true;
    for name in &nodes {
        let Some(node) = ctx.node(name) else { continue };
        match act(node) {
            Ok(e) => {
                evidence.push(e.to_string());
                in_effect &= e.in_effect;
                done.push(name.clone());
            }
            Err(e) => return Err((Some(undo(done)), e.to_string())),
        }
    }
    let effective = in_effect && !done.is_empty();
    Ok((
        undo(done),
        FaultRecord {
            nodes,
            evidence,
            effective: Some(effective),
            note,
            ..FaultRecord::default()
        },
    ))
}

fn apply_partition(
    ctx: &NemesisContext,
    shape: Shape,
    grudge: Grudge,
    note: Option<String>,
) -> Applied {
    let nodes = ctx.cluster().topology.nodes();
    let cut = net::apply(ctx.backend, nodes, &grudge, ctx.routes.as_ref())
        .map_err(|e| (None, e.to_string()))?;
    let rules: Vec<String> = cut
        .changes
        .iter()
        .map(|(ns, lines)| format!("{ns}: {}", lines.join("; ")))
        .collect();
    let fields = FaultRecord {
        shape: Some(shape.name().to_owned()),
        backend: Some(cut.backend.name().to_owned()),
        grudge: Some(grudge_record(&grudge)),
        rules,
        note,
        ..FaultRecord::default()
    };
    Ok((Undo::Cut(cut), fields))
}

/// Evidence that a fault is in force, read back after it went in.
fn evidence(ctx: &NemesisContext, undo: &Undo) -> FaultRecord {
    match undo {
        Undo::Cut(cut) => {
            let evidence = partition_evidence(ctx, &cut.grudge, true);
            // In force: the pair across the cut is blocked, the pair on one side is not.
            let effective = evidence.first().is_some_and(|e| e.contains(": blocked"))
                && evidence.iter().skip(1).all(|e| e.ends_with(": reachable"));
            FaultRecord {
                evidence,
                effective: Some(effective),
                ..FaultRecord::default()
            }
        }
        Undo::ClockReset {
            nodes,
            offsets_ms,
            strobe,
        } => {
            // A strobe flips between 0 and its offset: look a few times to catch it high.
            let samples = if strobe.is_some() { 4 } else { 1 };
            let mut observed = Vec::new();
            let mut shown: Vec<&String> = Vec::new();
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
                    if (skew - planned).abs() <= CLOCK_TOLERANCE_MS {
                        if let Some(n) = nodes.iter().find(|n| **n == node) {
                            shown.push(n);
                        }
                    }
                    observed.push(format!("{node}: {skew:+}ms"));
                }
            }
            let effective = nodes.iter().all(|n| shown.contains(&n));
            FaultRecord {
                observed,
                effective: Some(effective),
                ..FaultRecord::default()
            }
        }
        Undo::Shaping { nodes, applied } => shaping_evidence(ctx, nodes, applied),
        Undo::Loss { nodes, .. } => {
            // Each target sends probe datagrams to another node; its drop counter shows loss.
            let names = ctx.node_names();
            let probes: Vec<(String, std::net::Ipv4Addr)> = nodes
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
        // Process faults carry their cgroup evidence already.
        Undo::Resume(_) | Undo::Restart(_) => FaultRecord::default(),
    }
}

/// Probes one pair across the cut (and one pair on the same side while in force).
fn partition_evidence(ctx: &NemesisContext, grudge: &Grudge, in_force: bool) -> Vec<String> {
    let mut evidence = Vec::new();
    let probe = |from: &str, to: &str| -> Option<String> {
        let (a, b) = (ctx.net(from)?, ctx.net(to)?);
        let reach = net::probe(a, b, PROBE_TIMEOUT)
            .unwrap_or_else(|e| Reach::Blocked(format!("probe failed: {e}")));
        Some(format!("{from}->{to}: {}", reach.describe()))
    };
    if let Some((sender, receiver)) = grudge.a_blocked_pair() {
        evidence.extend(probe(&sender, &receiver));
    }
    if in_force {
        if let Some((a, b)) = grudge.an_open_pair(&ctx.node_names()) {
            evidence.extend(probe(&a, &b));
        }
    }
    evidence
}

fn undo(ctx: &NemesisContext, undo: Undo) -> (FaultRecord, Option<String>) {
    match undo {
        Undo::Cut(cut) => match net::heal(&cut, ctx.routes.as_ref()) {
            Ok(_) => (
                FaultRecord {
                    backend: Some(cut.backend.name().to_owned()),
                    evidence: partition_evidence(ctx, &cut.grudge, false),
                    ..FaultRecord::default()
                },
                None,
            ),
            Err(e) => (FaultRecord::default(), Some(e.to_string())),
        },
        Undo::Resume(nodes) => {
            let results = nodes
                .iter()
                .filter_map(|n| ctx.node(n))
                .map(process::resume)
                .collect();
            process_undo(&nodes, results)
        }
        Undo::Restart(nodes) => {
            let refs: Vec<&Node> = nodes.iter().filter_map(|n| ctx.node(n)).collect();
            process_undo(&nodes, process::start_all(&refs, RESTART_READY_TIMEOUT))
        }
        Undo::ClockReset { nodes, strobe, .. } => {
            if let Some((stop, handle)) = strobe {
                stop.store(true, Ordering::Relaxed);
                let _ = handle.join();
            }
            let mut error = None;
            for name in &nodes {
                if let Some(file) = ctx.offset_file(name) {
                    if let Err(e) = clock::write_offset(&file, 0) {
                        error.get_or_insert(e.to_string());
                    }
                }
            }
            let fields = FaultRecord {
                offsets: vec!["+0".to_owned()],
                observed: observed_clocks(ctx, &nodes),
                nodes,
                ..FaultRecord::default()
            };
            (fields, error)
        }
        Undo::Loss { nodes, namespaces } => {
            // What the rules dropped over the whole fault, read before they go.
            let dropped: Vec<String> = namespaces
                .iter()
                .map(|ns| match packet::loss_dropped(ns) {
                    Ok(n) => format!("{ns}: {n} packets dropped while in force (nft counter)"),
                    Err(e) => format!("{ns}: could not read the loss counter: {e}"),
                })
                .collect();
            let error = packet::heal_loss(&namespaces).err().map(|e| e.to_string());
            (
                FaultRecord {
                    nodes,
                    evidence: dropped,
                    ..FaultRecord::default()
                },
                error,
            )
        }
        Undo::Shaping { nodes, applied } => {
            let fields = FaultRecord {
                nodes: nodes.clone(),
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
                    let (_, after) = shaping_rtts(ctx, &nodes, Duration::from_secs(3));
                    evidence.push(after);
                    (FaultRecord { evidence, ..fields }, None)
                }
                Err(e) => (fields, Some(e.to_string())),
            }
        }
    }
}

/// Shared between the runner and its thread: a stop request.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl StopSignal {
    fn request(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Sleeps until `deadline`; false if a stop was requested first.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stopped {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            stopped = self
                .changed
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A running nemesis. [`Nemesis::stop`] heals everything and returns the report; dropping
/// it does the same (errors are printed).
pub struct Nemesis {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<NemesisReport>>,
}

impl Nemesis {
    /// Starts executing `schedule`; times are relative to `origin` (the main phase start).
    pub fn start(
        ctx: NemesisContext,
        schedule: Schedule,
        origin: Instant,
    ) -> Result<Nemesis, RunnerError> {
        if matches!(&*ctx.deployment, Deployment::InMemory(_)) {
            return Err(RunnerError::NoCluster);
        }
        let signal = Arc::new(StopSignal::default());
        let thread_signal = signal.clone();
        let ctx = Arc::new(ctx);
        let thread = std::thread::Builder::new()
            .name("nemesis".into())
            .spawn(move || run_schedule(ctx, schedule, origin, &thread_signal))
            .map_err(RunnerError::Thread)?;
        Ok(Nemesis {
            signal,
            thread: Some(thread),
        })
    }

    /// Stops the schedule, undoes every fault in force, waits for that, returns the report.
    pub fn stop(mut self) -> NemesisReport {
        self.finish()
    }

    fn finish(&mut self) -> NemesisReport {
        self.signal.request();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(report)) => report,
            Some(Err(_)) => NemesisReport {
                // The guard inside the thread healed during unwinding.
                undo_errors: vec![
                    "the nemesis thread panicked (its faults were undone while unwinding)".into(),
                ],
                ..NemesisReport::default()
            },
            None => NemesisReport::default(),
        }
    }
}

impl Drop for Nemesis {
    fn drop(&mut self) {
        if self.thread.is_some() {
            for e in self.finish().undo_errors {
                eprintln!("splitbrain: warning: nemesis: {e}");
            }
        }
    }
}

fn run_schedule(
    ctx: Arc<NemesisContext>,
    schedule: Schedule,
    origin: Instant,
    signal: &StopSignal,
) -> NemesisReport {
    enum Step<'a> {
        Start(&'a ScheduledFault),
        Stop(usize),
    }
    let mut steps: Vec<(Duration, u8, Step)> = Vec::new();
    for fault in &schedule.faults {
        // Stops sort before starts at the same instant: a fault ends before the next begins.
        steps.push((fault.at, 1, Step::Start(fault)));
        steps.push((fault.end(), 0, Step::Stop(fault.id)));
    }
    steps.sort_by_key(|(at, order, _)| (*at, *order));
    let mut active = ActiveFaults {
        ctx,
        active: Vec::new(),
        report: NemesisReport::default(),
    };
    let mut previous = Duration::ZERO;
    for (at, _, step) in steps {
        let due = origin + at;
        match step {
            Step::Start(fault) => {
                // Resolve the leader a little ahead, but never before the previous step ran.
                let prepare_at = origin + at.saturating_sub(PREPARE_AHEAD).max(previous);
                if !signal.sleep_until(prepare_at) {
                    break;
                }
                let prepared = active.ctx.prepare(&fault.action);
                if !signal.sleep_until(due) {
                    break;
                }
                active.start(fault, prepared, due);
            }
            Step::Stop(id) => {
                if !signal.sleep_until(due) {
                    break;
                }
                active.stop(id);
            }
        }
        previous = at;
    }
    active.heal_all();
    let mut report = std::mem::take(&mut active.report);
    report.schedule = schedule;
    report
}

/// The role query for a system, by its name (`etcd`, or a clusterkv architecture).
pub fn role_query_for(system: &crate::campaign::SystemSpec) -> Option<Arc<dyn RoleQuery>> {
    use crate::campaign::SystemSpec;
    match system {
        SystemSpec::Etcd(_) => Some(Arc::new(roles::EtcdRoles)),
        SystemSpec::Clusterkv(_) => Some(Arc::new(roles::ClusterKvRoles)),
        SystemSpec::Zookeeper(_) => Some(Arc::new(crate::system::zookeeper::ZooKeeperRoles)),
        SystemSpec::Redis(_) => Some(Arc::new(crate::system::redis::RedisRoles::default())),
        SystemSpec::Command(_) | SystemSpec::InMemory(_) => None,
    }
}
