//! Disk faults on remote hosts: the same plans as locally ([`DiskPlan`]), put in force on
//! the node's disk layer on its host ([`crate::remote::disk`]) by typed requests over the
//! host's shell, instead of on a layer in this process. The evidence is the layer's own
//! account, as locally:
//!
//! * `disk-lose-unsynced`, `disk-torn-write` — the node is killed (SIGKILL, its state read
//!   back from `/proc` on the host), then its layer drops (or tears) what the node had not
//!   synced: bytes, files, directory entries dropped. At the heal, what the dying node had
//!   in flight is dropped too and the node starts again.
//! * `disk-fsync-error`, `disk-enospc`, `disk-slow` — the layer's faults set, read back
//!   (with the syncs that failed) while in force, cleared at the heal; a node that stopped
//!   on the error starts again.
//! * `disk-corrupt` — the node is killed (as above), then its layer corrupts a file of its
//!   disk with the style and seed the plan drew ([`crate::disk::corrupt::corrupt_layer`], as
//!   locally): which file, which bytes, the checksums before and after. At the heal the
//!   node starts again on its corrupted disk.

use super::corrupt::CorruptPlan;
use super::disk::{dropped_line, faults_line, DiskMode, DiskPlan, DEFAULT_SYNC_DELAY, TORN_BLOCK};
use super::process::ProcessAction;
use super::remote::restart_line;
use super::{Applied, AppliedFault, ApplyLog, Failed, UndoLog, Undone};
use crate::cluster::RemoteCluster;
use crate::disk::control::{FaultSettings, Reply, Request, StatusReply};
use crate::disk::corrupt::LayerCorruption;
use crate::disk::lazy_fs::{DiskFaults, Dropped};
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::record::FaultRecord;
use crate::remote::hosts::ProcessState;
use crate::remote::RemoteError;

fn kills(mode: DiskMode) -> bool {
    matches!(mode, DiskMode::LoseUnsynced | DiskMode::TornWrite)
}

/// The request that drops a node's unsynced data for `mode`.
fn drop_request(mode: DiskMode) -> Request {
    match mode {
        DiskMode::TornWrite => Request::TearUnsynced { block: TORN_BLOCK },
        _ => Request::DropUnsynced {},
    }
}

/// The faults a non-killing `plan` sets.
fn settings(plan: &DiskPlan) -> FaultSettings {
    let mut s = FaultSettings::default();
    match plan.mode {
        DiskMode::FsyncError => s.fsync_error = true,
        DiskMode::Enospc => s.enospc = true,
        _ => s.fsync_delay_ms = plan.sync_delay.unwrap_or(DEFAULT_SYNC_DELAY).as_millis() as u64,
    }
    s
}

/// Asks `node`'s layer to drop (or tear) what is not synced.
fn drop_unsynced(
    remote: &RemoteCluster,
    node: &str,
    mode: DiskMode,
) -> Result<Dropped, RemoteError> {
    let layer = layer_of(remote, node)?;
    match layer.ask(&remote.hosts, &drop_request(mode))? {
        Reply::Dropped(d) => Ok(d.into()),
        other => Err(unexpected(&layer.host, &other)),
    }
}

/// Asks `node`'s layer for its state after `request`.
fn status(
    remote: &RemoteCluster,
    node: &str,
    request: &Request,
) -> Result<StatusReply, RemoteError> {
    let layer = layer_of(remote, node)?;
    match layer.ask(&remote.hosts, request)? {
        Reply::Status(s) => Ok(s),
        other => Err(unexpected(&layer.host, &other)),
    }
}

fn layer_of<'a>(
    remote: &'a RemoteCluster,
    node: &str,
) -> Result<&'a crate::remote::disk::RemoteDiskLayer, RemoteError> {
    remote.disks.get(node).ok_or_else(|| RemoteError::Host {
        host: node.to_owned(),
        what: format!("node {node} has no disk layer"),
    })
}

fn unexpected(host: &str, reply: &Reply) -> RemoteError {
    RemoteError::Host {
        host: host.to_owned(),
        what: format!("disk layer: unexpected reply {reply:?}"),
    }
}

/// Asks `node`'s layer to corrupt a file of its disk.
fn corrupt(
    remote: &RemoteCluster,
    node: &str,
    request: &Request,
) -> Result<LayerCorruption, RemoteError> {
    let layer = layer_of(remote, node)?;
    match layer.ask(&remote.hosts, request)? {
        Reply::Corruption(done) => Ok(done),
        other => Err(unexpected(&layer.host, &other)),
    }
}

/// Kills `name` on its host: the evidence line (the process state read back from
/// `/proc`), and whether it is gone.
fn kill_line(
    remote: &RemoteCluster,
    node: &crate::remote::RemoteNode,
) -> Result<(String, bool), RemoteError> {
    let pid = node.process().map(|p| p.pid).unwrap_or_default();
    let action = node.kill(&remote.hosts)?;
    Ok(super::remote::process_evidence(
        &node.name,
        pid,
        &node.host,
        ProcessAction::Kill,
        &action,
    ))
}

/// Puts a `disk-corrupt` fault in force: each target killed on its host, then a file of
/// its disk corrupted by its layer; the nodes start again at the heal.
pub fn apply_corrupt(
    plan: &CorruptPlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let mut log =
        ApplyLog::new(|nodes| -> Box<dyn AppliedFault> { Box::new(RemoteCorruption { nodes }) });
    for (i, name) in nodes.iter().enumerate() {
        let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
            return Err(log.failed(format!("node {name} is not in the cluster")));
        };
        if remote.disks.get(name).is_none() {
            return Err(log.failed(format!("node {name} has no disk layer")));
        }
        match kill_line(remote, node) {
            Ok((line, gone)) => log.evidence(line, gone),
            Err(e) => return Err(log.failed(e)),
        }
        log.hit(name);
        let request = Request::Corrupt {
            style: plan.style,
            files: plan.files.clone(),
            seed: plan.seed_of(i),
        };
        match corrupt(remote, name, &request) {
            Ok(done) => log.evidence(format!("{name}: {done}"), done.changed()),
            Err(e) => return Err(log.failed(format!("{name}: corrupting its disk: {e}"))),
        }
    }
    Ok(log.applied(nodes, note))
}

/// Nodes corrupted on their hosts, down until healed.
struct RemoteCorruption {
    /// Emptied by the undo.
    nodes: Vec<String>,
}

impl AppliedFault for RemoteCorruption {
    /// Starts the nodes again on their corrupted disks. A node that refuses to start (a
    /// checksum error, an unreadable file) is the undo's error, reported by the run.
    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let nodes = std::mem::take(&mut self.nodes);
        let Some(remote) = ctx.remote() else {
            return Undone::default();
        };
        let mut log = UndoLog::default();
        for name in &nodes {
            let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
                continue;
            };
            match restart_line(remote, node, "") {
                Ok(line) => log.evidence(line),
                Err(e) => {
                    log.evidence(format!("{name}: did not start on its corrupted disk: {e}"));
                    log.error(e);
                }
            }
        }
        log.undone(nodes)
    }
}

/// Puts a disk fault in force on the targets' layers on their hosts.
pub fn apply(
    plan: &DiskPlan,
    remote: &RemoteCluster,
    leadership: &Leadership,
) -> Result<Applied, Failed> {
    let (nodes, note) = plan.targets.resolve(leadership);
    let mode = plan.mode;
    let mut log = ApplyLog::new(|nodes| -> Box<dyn AppliedFault> {
        Box::new(RemoteDiskFault { mode, nodes })
    });
    for name in &nodes {
        let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
            return Err(log.failed(format!("node {name} is not in the cluster")));
        };
        if remote.disks.get(name).is_none() {
            return Err(log.failed(format!("node {name} has no disk layer")));
        }
        if kills(mode) {
            match kill_line(remote, node) {
                Ok((line, gone)) => log.evidence(line, gone),
                Err(e) => return Err(log.failed(e)),
            }
            log.hit(name);
            match drop_unsynced(remote, name, mode) {
                Ok(dropped) => log.evidence(dropped_line(name, &dropped), true),
                Err(e) => return Err(log.failed(e)),
            }
        } else {
            log.hit(name);
            match status(remote, name, &Request::SetFaults(settings(plan))) {
                Ok(s) => {
                    let faults: DiskFaults = s.faults.into();
                    log.evidence(
                        format!("{name}: {}", faults_line(&faults)),
                        s.faults == settings(plan),
                    )
                }
                Err(e) => return Err(log.failed(e)),
            }
        }
    }
    Ok(log.applied(nodes, note))
}

/// Disk faults in force on remote layers, until healed (or, for kills, the nodes started
/// again).
struct RemoteDiskFault {
    mode: DiskMode,
    /// Emptied by the undo.
    nodes: Vec<String>,
}

impl AppliedFault for RemoteDiskFault {
    /// For kills, nothing to add to what applying recorded; otherwise each layer's faults
    /// read back from it.
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let Some(remote) = ctx.remote() else {
            return FaultRecord::default();
        };
        if kills(self.mode) {
            return FaultRecord::default();
        }
        let evidence = self
            .nodes
            .iter()
            .map(|n| match status(remote, n, &Request::Status {}) {
                Ok(s) => format!(
                    "{n}: {}; {} syncs failed; {} unsynced bytes cached",
                    faults_line(&s.faults.into()),
                    s.failed_syncs,
                    s.unsynced.bytes
                ),
                Err(e) => format!("{n}: reading its disk layer: {e}"),
            })
            .collect();
        FaultRecord {
            evidence,
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
        let mut log = UndoLog::default();
        for name in &nodes {
            let Some(node) = remote.nodes.iter().find(|n| &n.name == name) else {
                continue;
            };
            let restart = if kills(self.mode) {
                // Anything the dying node had in flight is dropped too, right before it starts.
                match drop_unsynced(remote, name, self.mode) {
                    Ok(dropped) => {
                        if dropped.lost != Default::default() || !dropped.errors.is_empty() {
                            log.evidence(dropped_line(name, &dropped));
                        }
                    }
                    Err(e) => log.error(e),
                }
                true
            } else {
                match status(remote, name, &Request::ClearFaults {}) {
                    Ok(s) => log.evidence(format!(
                        "{name}: healed; {} syncs failed since the layer was mounted",
                        s.failed_syncs
                    )),
                    Err(e) => log.error(e),
                }
                // A node that stopped on the error starts again on the healed disk.
                match node.process() {
                    Some(p) => matches!(remote.hosts.state(&node.host, p), Ok(ProcessState::Gone)),
                    None => true,
                }
            };
            if !restart {
                continue;
            }
            let how = if kills(self.mode) {
                ""
            } else {
                "stopped on the fault, "
            };
            match restart_line(remote, node, how) {
                Ok(line) => log.evidence(line),
                Err(e) => log.error(e),
            }
        }
        log.undone(nodes)
    }
}
