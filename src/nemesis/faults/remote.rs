//! Faults on remote hosts: the same plans as locally ([`PartitionPlan`], [`ProcessPlan`]),
//! put in force over SSH ([`crate::remote::hosts`]) instead of in namespaces on this
//! machine.
//!
//! * `partition` — on each receiving host, the run's own nftables table drops input from
//!   the addresses of the nodes it must not hear; healing deletes the table. Evidence: a
//!   TCP connect from one host to another's client port across the cut (must time out)
//!   and one beside it (must open), made *from the hosts*.
//! * `pause` — SIGSTOP, SIGCONT at the end; `kill` — SIGKILL, started again at the end.
//!   Evidence: the process state read back from `/proc/PID/stat` on the host.
//! * `clock-bump` — libfaketime's offset file in the node's directory on its host rewritten
//!   (the node was started with libfaketime preloaded; never the host's own clock), `+0`
//!   at the end. Evidence: each node's clock as it reports it, against the controller's.
//!
//! * `loss` — the run's own nftables loss table on each target host drops (and counts) a
//!   share of the packets from and to the other hosts. Evidence: datagrams sent from the
//!   host to a peer, then the drop counter.
//! * `delay`, `reorder`, `duplicate` — netem under the run's own `prio` root qdisc on the
//!   target host's interface toward its peers (a filter per peer). Evidence: connect round
//!   trips from the host to a peer (delay, reorder), the netem qdisc as `tc` shows it
//!   (duplicate: netem counts no duplicates, as locally).
//!
//! * `clock-strobe` (and `clock` when it draws a strobe) — the same offset file flipped
//!   between the offset and `+0` every period by a shell loop of ours on the host (recorded
//!   as a process of the run, killed at the end, before the reset). Evidence: the nodes'
//!   clocks sampled a few times, as locally.
//!
//! * `disk-*` — on the node's disk layer on its host ([`super::remote_disk`]).
//!
//! A kind not listed in [`REMOTE_KINDS`] is refused before the run starts ([`check_kinds`]).

use super::clock::{BumpPlan, StrobePlan};
use super::packet::{
    rtts_show_delay, rtts_show_reorder, LossPlan, ShapingPlan, SHAPING_PROBES, SHAPING_PROBE_LIMIT,
};
use super::partition::PartitionPlan;
use super::process::{ProcessAction, ProcessPlan};
use super::{Applied, AppliedFault, Failed, FaultKind, PlannedFault, UndoLog, Undone};
use crate::cluster::RemoteCluster;
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::net::PROBE_PORT;
use crate::nemesis::packet::{self as packet_rules, Shaping};
use crate::nemesis::partition::Grudge;
use crate::nemesis::process::RESTART_READY_TIMEOUT;
use crate::nemesis::record::FaultRecord;
use crate::nemesis::NemesisError;
use crate::remote::hosts::{NodeAction, ProcessState, Reach};
use crate::remote::RemoteError;
use std::collections::BTreeMap;
use std::time::Duration;

/// The kinds a run on remote hosts can do.
pub const REMOTE_KINDS: &[&str] = &[
    "partition",
    "pause",
    "kill",
    "clock-bump",
    "clock-strobe",
    "clock",
    "loss",
    "delay",
    "reorder",
    "duplicate",
    "disk",
    "disk-lose-unsynced",
    "disk-torn-write",
    "disk-fsync-error",
    "disk-enospc",
    "disk-slow",
    "disk-corrupt",
];

/// The kinds that need `tc` with netem on every host.
pub const NETEM_KINDS: &[&str] = &["delay", "reorder", "duplicate"];

/// How long a probe from a host waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// Refuses, before anything starts, the kinds remote hosts cannot do (yet), naming them.
pub fn check_kinds(kinds: &[FaultKind]) -> Result<(), NemesisError> {
    match kinds.iter().find(|k| !REMOTE_KINDS.contains(&k.name())) {
        None => Ok(()),
        Some(kind) => Err(NemesisError::Unavailable {
            fault: kind.name(),
            missing: "a remote implementation",
            detail: format!(
                "on remote hosts a run can do {} faults; `{kind}` faults run only in namespaces on this machine",
                REMOTE_KINDS.join(", ")
            ),
        }),
    }
}

/// Puts `plan` in force: on the remote hosts when the run has them, else as the plan
/// does itself.
pub fn apply(
    plan: &dyn PlannedFault,
    ctx: &NemesisContext,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let Some(remote) = ctx.remote() else {
        return plan.apply(ctx, leadership);
    };
    let any = plan.as_any();
    if let Some(partition) = any.downcast_ref::<PartitionPlan>() {
        return apply_partition(partition, ctx, remote, leadership);
    }
    if let Some(process) = any.downcast_ref::<ProcessPlan>() {
        return apply_process(process, remote, leadership);
    }
    if let Some(bump) = any.downcast_ref::<BumpPlan>() {
        if remote.hosts.sets_clock() {
            return apply_host_bump(bump, remote, leadership);
        }
        return apply_bump(bump, remote, leadership);
    }
    if let Some(strobe) = any.downcast_ref::<StrobePlan>() {
        if remote.hosts.sets_clock() {
            return apply_host_strobe(strobe, remote, leadership);
        }
        return apply_strobe(strobe, remote, leadership);
    }
    if let Some(loss) = any.downcast_ref::<LossPlan>() {
        return apply_loss(loss, remote, leadership);
    }
    if let Some(shaping) = any.downcast_ref::<ShapingPlan>() {
        return apply_shaping(shaping, remote, leadership);
    }
    if let Some(disk) = any.downcast_ref::<super::disk::DiskPlan>() {
        return super::remote_disk::apply(disk, remote, leadership);
    }
    if let Some(corrupt) = any.downcast_ref::<super::corrupt::CorruptPlan>() {
        return super::remote_disk::apply_corrupt(corrupt, remote, leadership);
    }
    Err(Failed::nothing_applied(format!(
        "`{}` faults are not available on remote hosts",
        plan.kind()
    )))
}

fn address_of(remote: &RemoteCluster, node: &str) -> Option<String> {
    remote
        .spec
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.ip.to_string())
}

fn apply_partition(
    plan: &PartitionPlan,
    ctx: &NemesisContext,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (grudge, note) = plan.grudge_now(&ctx.node_names(), leadership);
    // Every receiving host at once: the partition is in force when the slowest is.
    let per_host: Vec<(String, Vec<String>)> = grudge
        .0
        .iter()
        .filter(|(_, senders)| !senders.is_empty())
        .map(|(receiver, senders)| {
            let addresses = senders
                .iter()
                .filter_map(|s| address_of(remote, s))
                .collect();
            (receiver.clone(), addresses)
        })
        .collect();
    let results: Vec<(String, Result<String, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = per_host
            .iter()
            .map(|(host, addresses)| {
                scope.spawn(move || {
                    (
                        host.clone(),
                        remote
                            .hosts
                            .partition(host, addresses)
                            .map_err(|e| e.to_string()),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("applying a partition does not panic"))
            .collect()
    });
    let mut rules = Vec::new();
    let mut error = None;
    for (host, result) in results {
        match result {
            Ok(rule) => rules.push(format!("{host}: {rule}")),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    let applied = Box::new(RemotePartition {
        grudge: Some(grudge.clone()),
    });
    if let Some(message) = error {
        return Err(Failed {
            partial: Some(applied),
            message,
        });
    }
    Ok(Applied {
        fault: applied,
        record: FaultRecord {
            shape: Some(plan.shape.name().to_owned()),
            backend: Some(
                remote
                    .hosts
                    .firewall_backend(per_host.iter().map(|(h, _)| h.as_str())),
            ),
            grudge: Some(
                grudge
                    .0
                    .iter()
                    .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            rules,
            note,
            ..FaultRecord::default()
        },
    })
}

/// A partition in force on the hosts, until healed.
struct RemotePartition {
    grudge: Option<Grudge>,
}

impl AppliedFault for RemotePartition {
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let (Some(grudge), Some(remote)) = (&self.grudge, ctx.remote()) else {
            return FaultRecord::default();
        };
        let evidence = probes(remote, grudge, &ctx.node_names(), true);
        let effective = evidence.first().is_some_and(|e| e.contains(": blocked"))
            && evidence.iter().skip(1).all(|e| e.ends_with(": reachable"));
        FaultRecord {
            effective: Some(effective),
            evidence,
            ..FaultRecord::default()
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let (Some(grudge), Some(remote)) = (self.grudge.take(), ctx.remote()) else {
            return Undone::default();
        };
        let errors: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = remote
                .hosts
                .hosts()
                .iter()
                .map(|h| scope.spawn(move || remote.hosts.heal(&h.name).err()))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("healing does not panic"))
                .map(|e| e.to_string())
                .collect()
        });
        if let Some(error) = errors.into_iter().next() {
            // Not healed: a later undo tries again.
            self.grudge = Some(grudge);
            return Undone {
                record: FaultRecord::default(),
                error: Some(error),
            };
        }
        Undone {
            record: FaultRecord {
                backend: Some(
                    remote
                        .hosts
                        .firewall_backend(grudge.0.keys().map(String::as_str)),
                ),
                evidence: probes(remote, &grudge, &ctx.node_names(), false),
                ..FaultRecord::default()
            },
            error: None,
        }
    }
}

/// A TCP connect from the sender's host to the receiver's client port, for one pair across
/// the cut (and one pair beside it while in force).
fn probes(
    remote: &RemoteCluster,
    grudge: &Grudge,
    nodes: &[String],
    in_force: bool,
) -> Vec<String> {
    let probe = |from: &str, to: &str| -> Option<String> {
        let target = remote.nodes.iter().find(|n| n.name == to)?.ready_at;
        let reach = remote
            .hosts
            .probe(from, target, PROBE_TIMEOUT)
            .unwrap_or_else(|e| Reach::Blocked(format!("probe failed: {e}")));
        Some(format!("{from}->{to}: {}", reach.describe()))
    };
    let mut evidence = Vec::new();
    if let Some((sender, receiver)) = grudge.a_blocked_pair() {
        evidence.extend(probe(&sender, &receiver));
    }
    if in_force {
        if let Some((a, b)) = grudge.an_open_pair(nodes) {
            evidence.extend(probe(&a, &b));
        }
    }
    evidence
}

/// What a pause or kill on a host shows: the line of evidence, and whether it is in effect
/// (paused: `T`, or frozen by its cgroup with the process still there; killed: the process
/// gone, and its cgroup empty where it has one).
pub(super) fn process_evidence(
    name: &str,
    pid: u32,
    host: &str,
    wanted: ProcessAction,
    action: &NodeAction,
) -> (String, bool) {
    let state = &action.state;
    let expected = match (wanted, action.cgroup) {
        (ProcessAction::Pause, Some(cgroup)) => {
            cgroup.frozen == Some(true) && *state != ProcessState::Gone
        }
        (ProcessAction::Pause, None) => *state == ProcessState::Running('T'),
        (ProcessAction::Kill, Some(cgroup)) => {
            cgroup.procs == Some(0) && *state == ProcessState::Gone
        }
        (ProcessAction::Kill, None) => *state == ProcessState::Gone,
    };
    let cgroup = action
        .cgroup
        .map(|c| format!(", {}", c.describe()))
        .unwrap_or_default();
    let line = format!(
        "{name}: pid {pid} on {host}: {}{cgroup}, /proc/{pid}/stat: {}",
        action.how,
        state.describe()
    );
    (line, expected)
}

fn apply_process(
    plan: &ProcessPlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let mut done = Vec::new();
    let mut evidence = Vec::new();
    let mut in_effect = true;
    for name in &nodes {
        let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
            continue;
        };
        let pid = node.process().map(|p| p.pid).unwrap_or_default();
        let result = match plan.action {
            ProcessAction::Pause => node.pause(&remote.hosts),
            ProcessAction::Kill => node.kill(&remote.hosts),
        };
        match result {
            Ok(action) => {
                let (line, expected) =
                    process_evidence(name, pid, &node.host, plan.action, &action);
                evidence.push(line);
                in_effect &= expected;
                done.push(name.clone());
            }
            Err(e) => {
                return Err(Failed {
                    partial: Some(Box::new(RemoteProcessFault {
                        action: plan.action,
                        nodes: done,
                    })),
                    message: e.to_string(),
                })
            }
        }
    }
    let effective = in_effect && !done.is_empty();
    let backend = supervision_backend(remote, &done);
    Ok(Applied {
        fault: Box::new(RemoteProcessFault {
            action: plan.action,
            nodes: done,
        }),
        record: FaultRecord {
            backend: Some(backend),
            nodes,
            evidence,
            effective: Some(effective),
            note,
            ..FaultRecord::default()
        },
    })
}

/// How `nodes`' hosts supervise them, as a fault's backend says it (`cgroup v2 on the
/// hosts`, `signals on the hosts`, or per host when they differ).
fn supervision_backend(remote: &RemoteCluster, nodes: &[String]) -> String {
    let named: Vec<(String, &str)> = nodes
        .iter()
        .filter_map(|n| remote.nodes.iter().find(|r| &r.name == n))
        .map(|n| (n.host.clone(), remote.hosts.supervision(&n.host).describe()))
        .collect();
    match named.first() {
        Some((_, first)) if named.iter().all(|(_, s)| s == first) => {
            format!("{first} on the hosts")
        }
        _ => named
            .iter()
            .map(|(h, s)| format!("{s} on {h}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Paused or killed remote nodes, until resumed or started again.
struct RemoteProcessFault {
    action: ProcessAction,
    nodes: Vec<String>,
}

impl AppliedFault for RemoteProcessFault {
    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let nodes = std::mem::take(&mut self.nodes);
        let Some(remote) = ctx.remote() else {
            return Undone::default();
        };
        if nodes.is_empty() {
            return Undone::default();
        }
        let mut log = UndoLog::default();
        for name in &nodes {
            let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
                continue;
            };
            let result = match self.action {
                ProcessAction::Pause => node.resume(&remote.hosts).map(|action| {
                    let pid = node.process().map(|p| p.pid).unwrap_or_default();
                    let cgroup = action
                        .cgroup
                        .map(|c| format!(", {}", c.describe()))
                        .unwrap_or_default();
                    format!(
                        "{name}: pid {pid}: {}{cgroup}, /proc/{pid}/stat: {}",
                        action.how,
                        action.state.describe()
                    )
                }),
                ProcessAction::Kill => restart_line(remote, node, ""),
            };
            match result {
                Ok(line) => log.evidence(line),
                Err(e) => log.error(e),
            }
        }
        log.undone(nodes)
    }
}

/// Starts a remote node again and waits until it is ready: the evidence line
/// (`n2: {how}started again as pid 4242, ready in 310 ms`).
pub(super) fn restart_line(
    remote: &RemoteCluster,
    node: &crate::remote::RemoteNode,
    how: &str,
) -> Result<String, RemoteError> {
    let process = node.start(&remote.hosts)?;
    let took = node.wait_ready(&remote.hosts, RESTART_READY_TIMEOUT)?;
    Ok(format!(
        "{}: {how}started again as pid {}, ready in {} ms",
        node.name,
        process.pid,
        took.as_millis()
    ))
}

/// The offset file of a remote node (libfaketime reads it on every clock read).
fn offset_file(node: &crate::remote::RemoteNode) -> String {
    format!("{}/{}", node.dir, crate::nemesis::clock::OFFSET_FILE)
}

fn apply_bump(
    plan: &BumpPlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let mut applied = RemoteClock::default();
    let mut offsets = Vec::new();
    for (i, name) in nodes.iter().enumerate() {
        let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
            continue;
        };
        // A target beyond the planned offsets takes the first, as locally.
        let offset = plan.offset_of(i);
        let spec = crate::nemesis::clock::offset_spec(offset);
        if let Err(e) = remote
            .hosts
            .write_file(&node.host, &offset_file(node), &spec)
        {
            return Err(Failed {
                partial: Some(Box::new(applied)),
                message: e.to_string(),
            });
        }
        applied.nodes.push(name.clone());
        applied.offsets_ms.push(offset);
        offsets.push(format!("{name}: {spec}"));
    }
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

fn apply_strobe(
    plan: &StrobePlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let high = crate::nemesis::clock::offset_spec(plan.offset_ms);
    let mut applied = RemoteClock::default();
    for name in &nodes {
        let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
            continue;
        };
        // Every target is reset at the undo, whatever fails from here on.
        applied.nodes.push(name.clone());
        applied.offsets_ms.push(plan.offset_ms);
        let file = offset_file(node);
        let started = remote
            .hosts
            .write_file(&node.host, &file, &high)
            .and_then(|()| {
                remote
                    .hosts
                    .start_strobe(&node.host, &node.dir, &file, &high, plan.period)
            });
        match started {
            Ok(process) => applied.strobes.push((node.host.clone(), process)),
            Err(e) => {
                return Err(Failed {
                    partial: Some(Box::new(applied)),
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(Applied {
        fault: Box::new(applied),
        record: FaultRecord {
            nodes,
            offsets: vec![format!(
                "0 / {high} every {}ms (a loop on each host)",
                plan.period.as_millis()
            )],
            note,
            ..FaultRecord::default()
        },
    })
}

/// Skewed remote clocks, until their offset files say `+0` again (a strobe's loops on
/// the hosts stopped first).
#[derive(Default)]
struct RemoteClock {
    nodes: Vec<String>,
    offsets_ms: Vec<i64>,
    /// A strobe's flipping loops: host and process.
    strobes: Vec<(String, crate::remote::hosts::RemoteProcess)>,
}

impl AppliedFault for RemoteClock {
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        super::clock::skew_evidence(ctx, &self.nodes, &self.offsets_ms, !self.strobes.is_empty())
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let nodes = std::mem::take(&mut self.nodes);
        self.offsets_ms.clear();
        let strobes = std::mem::take(&mut self.strobes);
        let Some(remote) = ctx.remote() else {
            return Undone::default();
        };
        if nodes.is_empty() {
            return Undone::default();
        }
        let mut error = None;
        for (host, process) in &strobes {
            match remote.hosts.kill(host, *process) {
                Ok(ProcessState::Gone) => {}
                Ok(state) => {
                    error.get_or_insert(format!(
                        "host {host}: the clock strobe loop (pid {}) is still there: {}",
                        process.pid,
                        state.describe()
                    ));
                }
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        for name in &nodes {
            let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
                continue;
            };
            if let Err(e) = remote
                .hosts
                .write_file(&node.host, &offset_file(node), "+0")
            {
                error.get_or_insert(e.to_string());
            }
        }
        super::clock::reset(ctx, nodes, error)
    }
}

/// A clock bump of the target hosts' own clocks (`ssh.set_clock`): each shifted by its
/// offset with `date -s` (recorded first), shifted back by the opposite at the heal.
fn apply_host_bump(
    plan: &BumpPlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let mut applied = HostClock::default();
    let mut offsets = Vec::new();
    for (i, name) in nodes.iter().enumerate() {
        let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
            continue;
        };
        // A target beyond the planned offsets takes the first, as locally.
        let offset = plan.offset_of(i);
        // Put back at the undo whatever fails from here on.
        applied.targets.push((node.host.clone(), offset));
        if let Err(e) = remote.hosts.shift_clock(&node.host, offset) {
            return Err(Failed {
                partial: Some(Box::new(applied)),
                message: e.to_string(),
            });
        }
        offsets.push(format!(
            "{name}: {} (the host's clock)",
            crate::nemesis::clock::offset_spec(offset)
        ));
    }
    Ok(Applied {
        fault: Box::new(applied),
        record: FaultRecord {
            nodes,
            backend: Some("the hosts' own clocks (date -s)".to_owned()),
            offsets,
            note,
            ..FaultRecord::default()
        },
    })
}

/// Hosts' own clocks shifted (host, offset), until shifted back.
#[derive(Default)]
struct HostClock {
    targets: Vec<(String, i64)>,
}

impl HostClock {
    /// Each target host's clock against the controller's, and whether each shows `planned`
    /// (its offset while in force, 0 after).
    fn readings(&self, remote: &RemoteCluster, in_force: bool) -> (Vec<String>, bool) {
        let mut shown = !self.targets.is_empty();
        let observed = self
            .targets
            .iter()
            .map(|(host, offset)| {
                let planned = if in_force { *offset } else { 0 };
                match remote.hosts.clock_skew_ms(host) {
                    Ok(skew) => {
                        shown &= super::clock::shows_offset(skew, planned);
                        format!("{host}: {skew:+}ms (the host's clock, against the controller's)")
                    }
                    Err(e) => {
                        shown = false;
                        format!("{host}: the clock could not be read: {e}")
                    }
                }
            })
            .collect();
        (observed, shown)
    }
}

impl AppliedFault for HostClock {
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let Some(remote) = ctx.remote() else {
            return FaultRecord::default();
        };
        let (observed, effective) = self.readings(remote, true);
        FaultRecord {
            observed,
            effective: Some(effective),
            ..FaultRecord::default()
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let Some(remote) = ctx.remote() else {
            return Undone::default();
        };
        if self.targets.is_empty() {
            return Undone::default();
        }
        let mut error = None;
        let mut unhealed = Vec::new();
        for (host, offset) in &self.targets {
            if let Err(e) = remote.hosts.shift_clock(host, -offset) {
                error.get_or_insert(e.to_string());
                unhealed.push((host.clone(), *offset));
            }
        }
        let (observed, _) = self.readings(remote, false);
        let nodes = self.targets.iter().map(|(h, _)| h.clone()).collect();
        // Not put back: a later undo tries again.
        self.targets = unhealed;
        Undone {
            record: FaultRecord {
                nodes,
                offsets: vec!["+0".to_owned()],
                observed,
                ..FaultRecord::default()
            },
            error,
        }
    }
}

/// A strobe of the target hosts' own clocks (`ssh.set_clock`): on each, a loop of ours
/// shifting the clock by the offset and back every period (recorded first); at the heal
/// the loops end after their next shift back, and whatever net offset is left is undone.
fn apply_host_strobe(
    plan: &StrobePlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let mut applied = HostStrobe {
        offset_ms: plan.offset_ms,
        period: plan.period,
        loops: Vec::new(),
    };
    for name in &nodes {
        let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
            continue;
        };
        match remote
            .hosts
            .start_clock_strobe(&node.host, plan.offset_ms, plan.period)
        {
            Ok(process) => applied.loops.push((node.host.clone(), process)),
            Err(e) => {
                return Err(Failed {
                    partial: Some(Box::new(applied)),
                    message: e.to_string(),
                })
            }
        }
    }
    let offsets = vec![format!(
        "0 / {} every {}ms (the hosts' own clocks, a loop on each)",
        crate::nemesis::clock::offset_spec(plan.offset_ms),
        plan.period.as_millis()
    )];
    Ok(Applied {
        fault: Box::new(applied),
        record: FaultRecord {
            nodes,
            backend: Some("the hosts' own clocks (date -s)".to_owned()),
            offsets,
            note,
            ..FaultRecord::default()
        },
    })
}

/// Strobing loops on hosts (host, loop process), until stopped and the clocks put back.
struct HostStrobe {
    offset_ms: i64,
    period: Duration,
    loops: Vec<(String, crate::remote::hosts::RemoteProcess)>,
}

/// How many times a strobing host's clock is read for the evidence, half a period apart:
/// over two periods, so the reads cannot all fall while the clock is back.
const STROBE_SAMPLES: u32 = 5;

impl AppliedFault for HostStrobe {
    /// Each host's clock read a few times against the controller's: in effect when every
    /// host showed the offset at least once.
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let Some(remote) = ctx.remote() else {
            return FaultRecord::default();
        };
        let mut effective = !self.loops.is_empty();
        let mut observed = Vec::new();
        let gap = (self.period / 2).max(Duration::from_millis(10));
        for (host, _) in &self.loops {
            let mut skews = Vec::new();
            for i in 0..STROBE_SAMPLES {
                if i > 0 {
                    std::thread::sleep(gap);
                }
                match remote.hosts.clock_skew_ms(host) {
                    Ok(skew) => skews.push(skew),
                    Err(e) => observed.push(format!("{host}: the clock could not be read: {e}")),
                }
            }
            effective &= skews
                .iter()
                .any(|&skew| super::clock::shows_offset(skew, self.offset_ms));
            let shown: Vec<String> = skews.iter().map(|s| format!("{s:+}ms")).collect();
            observed.push(format!(
                "{host}: {} (the host's clock, against the controller's, {} ms apart)",
                shown.join(", "),
                gap.as_millis()
            ));
        }
        FaultRecord {
            observed,
            effective: Some(effective),
            ..FaultRecord::default()
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let loops = std::mem::take(&mut self.loops);
        let Some(remote) = ctx.remote() else {
            return Undone::default();
        };
        if loops.is_empty() {
            return Undone::default();
        }
        let mut log = UndoLog::default();
        // Each loop ends after its next shift back: two periods at most, then a margin.
        let deadline = std::time::Instant::now() + self.period * 2 + Duration::from_secs(2);
        for (host, process) in &loops {
            if let Err(e) = remote.hosts.signal(host, *process, "TERM") {
                log.error(e);
            }
        }
        for (host, process) in &loops {
            let ended = loop {
                match remote.hosts.state(host, *process) {
                    Ok(ProcessState::Gone) => break true,
                    Ok(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => break false,
                }
            };
            if !ended {
                // Killed between two shifts at worst: the offset file still follows the clock.
                if let Err(e) = remote.hosts.signal(host, *process, "KILL") {
                    log.error(e);
                }
            }
            match remote.hosts.put_back_clock(host) {
                Ok(()) => match remote.hosts.clock_skew_ms(host) {
                    Ok(skew) => log.evidence(format!(
                        "{host}: strobe stopped{}, clock {skew:+}ms against the controller's",
                        if ended { "" } else { " (killed)" }
                    )),
                    Err(e) => log.error(e),
                },
                Err(e) => log.error(e),
            }
        }
        let mut undone = log.undone(loops.into_iter().map(|(h, _)| h).collect());
        undone.record.offsets = vec!["+0".to_owned()];
        undone
    }
}

/// The addresses of every node but `node`.
fn peers_of(remote: &RemoteCluster, node: &str) -> Vec<String> {
    remote
        .spec
        .nodes
        .iter()
        .filter(|n| n.name != node)
        .map(|n| n.ip.to_string())
        .collect()
}

/// Runs `f` for every node at once (one command per host), each result with its node.
fn on_each<T: Send>(nodes: &[String], f: impl Fn(&str) -> T + Sync) -> Vec<(String, T)> {
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| scope.spawn(move || (n.clone(), f(n))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a remote packet fault does not panic"))
            .collect()
    })
}

fn apply_loss(
    plan: &LossPlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let results = on_each(&nodes, |node| {
        remote
            .hosts
            .apply_loss(node, &peers_of(remote, node), plan.percent)
    });
    let mut applied = RemoteLoss::default();
    let mut rules = Vec::new();
    let mut error = None;
    for (node, result) in results {
        match result {
            Ok(rule) => {
                rules.push(format!("{node}: {rule}"));
                applied.nodes.push(node);
            }
            Err(e) => {
                // The table may be there half made: the undo deletes it too.
                applied.nodes.push(node);
                error.get_or_insert(e.to_string());
            }
        }
    }
    if let Some(message) = error {
        return Err(Failed {
            partial: Some(Box::new(applied)),
            message,
        });
    }
    Ok(Applied {
        fault: Box::new(applied),
        record: FaultRecord {
            backend: Some(
                remote
                    .hosts
                    .firewall_backend(nodes.iter().map(String::as_str)),
            ),
            nodes,
            rules,
            note,
            ..FaultRecord::default()
        },
    })
}

/// Loss tables on the target hosts, until deleted.
#[derive(Default)]
struct RemoteLoss {
    nodes: Vec<String>,
}

impl AppliedFault for RemoteLoss {
    /// Each target host sends probe datagrams to a peer; its drop counter shows loss.
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let Some(remote) = ctx.remote() else {
            return FaultRecord::default();
        };
        let count = packet_rules::LOSS_PROBE_DATAGRAMS;
        let results = on_each(&self.nodes, |node| {
            let peer = peers_of(remote, node)
                .into_iter()
                .next()
                .ok_or_else(|| "no peer to send probe datagrams to".to_owned())?;
            remote
                .hosts
                .send_udp_burst(node, &peer, PROBE_PORT, count)
                .and_then(|()| remote.hosts.loss_dropped(node))
                .map_err(|e| e.to_string())
        });
        let mut effective = !results.is_empty();
        let evidence = results
            .into_iter()
            .map(|(node, dropped)| match dropped {
                Ok(n) => {
                    effective &= n > 0;
                    format!(
                        "{node}: {n} packets dropped ({}, after {count} probe datagrams)",
                        counter_of(remote, &node)
                    )
                }
                Err(e) => {
                    effective = false;
                    format!("{node}: could not read the loss counter: {e}")
                }
            })
            .collect();
        FaultRecord {
            evidence,
            effective: Some(effective),
            ..FaultRecord::default()
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let nodes = std::mem::take(&mut self.nodes);
        let Some(remote) = ctx.remote() else {
            return Undone::default();
        };
        if nodes.is_empty() {
            return Undone::default();
        }
        let results = on_each(&nodes, |node| {
            // What the rules dropped over the whole fault, read before they go.
            let dropped = remote.hosts.loss_dropped(node);
            (dropped, remote.hosts.heal_loss(node))
        });
        let mut evidence = Vec::new();
        let mut error = None;
        let mut unhealed = Vec::new();
        for (node, (dropped, healed)) in results {
            evidence.push(match dropped {
                Ok(n) => format!(
                    "{node}: {n} packets dropped while in force ({})",
                    counter_of(remote, &node)
                ),
                Err(e) => format!("{node}: could not read the loss counter: {e}"),
            });
            if let Err(e) = healed {
                unhealed.push(node);
                error.get_or_insert(e.to_string());
            }
        }
        // Not healed: a later undo tries again.
        self.nodes = unhealed;
        Undone {
            record: FaultRecord {
                nodes,
                evidence,
                ..FaultRecord::default()
            },
            error,
        }
    }
}

/// How `node`'s host counts dropped packets (`nft counter`, `iptables counter`).
fn counter_of(remote: &RemoteCluster, node: &str) -> &'static str {
    remote
        .hosts
        .facts(node)
        .firewall
        .map_or("no firewall", |f| f.counter())
}

/// netem's own arguments for `shaping` (what follows `netem` in the local command).
fn netem_params(shaping: &Shaping) -> Vec<String> {
    packet_rules::netem_args(shaping)
        .into_iter()
        .skip_while(|a| a != "netem")
        .skip(1)
        .collect()
}

fn apply_shaping(
    plan: &ShapingPlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let params = netem_params(&plan.shaping);
    let results = on_each(&nodes, |node| {
        let peers = peers_of(remote, node);
        let dev = peers
            .first()
            .map(|p| remote.hosts.interface_toward(node, p))
            .transpose()?;
        let rule = remote.hosts.apply_netem(node, &peers, &params)?;
        Ok::<_, crate::remote::RemoteError>((dev.unwrap_or_default(), rule))
    });
    let mut applied = RemoteShaping {
        shaping: plan.shaping,
        targets: Vec::new(),
    };
    let mut rules = Vec::new();
    let mut error = None;
    for (node, result) in results {
        match result {
            Ok((dev, rule)) => {
                rules.push(format!("{node}: {rule}"));
                applied.targets.push((node, dev));
            }
            Err(e) => {
                error.get_or_insert(e.to_string());
            }
        }
    }
    if let Some(message) = error {
        return Err(Failed {
            partial: Some(Box::new(applied)),
            message,
        });
    }
    let described = Some(plan.shaping.describe());
    let (delay, reorder, duplicate) = match plan.shaping {
        Shaping::Delay { .. } => (described, None, None),
        Shaping::Reorder { .. } => (None, described, None),
        Shaping::Duplicate { .. } => (None, None, described),
    };
    Ok(Applied {
        fault: Box::new(applied),
        record: FaultRecord {
            nodes,
            backend: Some("netem on the hosts".to_owned()),
            delay,
            reorder,
            duplicate,
            rules,
            note,
            ..FaultRecord::default()
        },
    })
}

/// netem on target hosts (node, interface), until the run's root qdiscs are deleted.
struct RemoteShaping {
    shaping: Shaping,
    targets: Vec<(String, String)>,
}

impl RemoteShaping {
    /// Connect round trips from the first target host to a peer's probe port.
    fn rtts(&self, remote: &RemoteCluster) -> (Vec<std::time::Duration>, String) {
        let Some((from, to)) = self.targets.first().and_then(|(node, _)| {
            let to = remote.spec.nodes.iter().find(|n| &n.name != node)?;
            Some((node.clone(), to))
        }) else {
            return (Vec::new(), "no pair of nodes to measure".into());
        };
        let ip = to.ip.to_string();
        match remote
            .hosts
            .connect_rtts(&from, &ip, PROBE_PORT, SHAPING_PROBES, SHAPING_PROBE_LIMIT)
        {
            Ok(rtts) => {
                let shown: Vec<String> = rtts
                    .iter()
                    .map(|d| format!("{:.1}ms", d.as_secs_f64() * 1000.0))
                    .collect();
                let line = format!(
                    "connect round trip {from}->{} (from the host): {}",
                    to.name,
                    shown.join(" ")
                );
                (rtts, line)
            }
            Err(e) => (
                Vec::new(),
                format!("connect round trip {from}->{}: {e}", to.name),
            ),
        }
    }
}

impl AppliedFault for RemoteShaping {
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let Some(remote) = ctx.remote() else {
            return FaultRecord::default();
        };
        match self.shaping {
            Shaping::Delay { mean, .. } => {
                let (rtts, line) = self.rtts(remote);
                FaultRecord {
                    evidence: vec![line],
                    effective: Some(rtts.len() == SHAPING_PROBES && rtts_show_delay(&rtts, mean)),
                    ..FaultRecord::default()
                }
            }
            Shaping::Reorder { max_delay } => {
                let (rtts, line) = self.rtts(remote);
                FaultRecord {
                    evidence: vec![line],
                    effective: Some(rtts_show_reorder(&rtts, max_delay)),
                    ..FaultRecord::default()
                }
            }
            // netem counts no duplicates; the qdisc being there is what can be shown.
            Shaping::Duplicate { .. } => {
                let Some((node, dev)) = self.targets.first() else {
                    return FaultRecord {
                        effective: Some(false),
                        ..FaultRecord::default()
                    };
                };
                let shown = remote
                    .hosts
                    .qdisc_stats(node, dev)
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|e| e.to_string());
                let netem = shown
                    .lines()
                    .find(|l| l.contains("netem"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                FaultRecord {
                    effective: Some(netem.contains("duplicate")),
                    evidence: vec![format!(
                        "{node}: {dev}: {}",
                        if netem.is_empty() { shown } else { netem }
                    )],
                    ..FaultRecord::default()
                }
            }
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let targets = std::mem::take(&mut self.targets);
        let Some(remote) = ctx.remote() else {
            return Undone::default();
        };
        if targets.is_empty() {
            return Undone::default();
        }
        let nodes: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        let results = on_each(&nodes, |node| {
            let dev = &targets.iter().find(|(n, _)| n == node).expect("a target").1;
            remote.hosts.heal_netem(node, dev)
        });
        let mut error = None;
        for (node, result) in results {
            if let Err(e) = result {
                error.get_or_insert(e.to_string());
                // Not healed: a later undo tries again.
                if let Some(t) = targets.iter().find(|(n, _)| *n == node) {
                    self.targets.push(t.clone());
                }
            }
        }
        let mut evidence = Vec::new();
        if error.is_none() && !matches!(self.shaping, Shaping::Duplicate { .. }) {
            let (_, line) = RemoteShaping {
                shaping: self.shaping,
                targets: targets.clone(),
            }
            .rtts(remote);
            evidence.push(format!("after: {line}"));
        }
        Undone {
            record: FaultRecord {
                nodes,
                backend: Some("netem on the hosts".to_owned()),
                evidence,
                ..FaultRecord::default()
            },
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_remote_implementation() {
        let kinds: Vec<FaultKind> = ["partition", "pause", "kill"]
            .iter()
            .map(|k| FaultKind::named(k).unwrap())
            .collect();
        check_kinds(&kinds).unwrap();
        check_kinds(&[FaultKind::named("clock-bump").unwrap()]).unwrap();
        for kind in ["loss", "delay", "reorder", "duplicate"] {
            check_kinds(&[FaultKind::named(kind).unwrap()]).unwrap();
        }
        for kind in ["clock-strobe", "clock"] {
            check_kinds(&[FaultKind::named(kind).unwrap()]).unwrap();
        }
        for kind in [
            "disk",
            "disk-lose-unsynced",
            "disk-torn-write",
            "disk-slow",
            "disk-corrupt",
        ] {
            check_kinds(&[FaultKind::named(kind).unwrap()]).unwrap();
        }
        check_kinds(&FaultKind::all().collect::<Vec<_>>()).unwrap();
        for name in REMOTE_KINDS {
            assert!(FaultKind::named(name).is_some(), "{name} is no kind");
        }
    }
}
