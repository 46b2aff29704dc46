//! Disk faults, through the lazy disk layer mounted under each node's data directory
//! ([`crate::disk`]): `disk-lose-unsynced` (kill the node and drop what it had not synced:
//! a power loss of that node), `disk-torn-write` (the same, but each file's unsynced writes
//! reach the disk up to the last, cut at a block boundary), `disk-fsync-error` (syncs fail
//! with EIO until healed), `disk-enospc` (writes fail with ENOSPC until healed),
//! `disk-slow` (each sync takes longer); `disk` is any of them, drawn per fault. The layer's
//! own account (bytes and entries dropped, syncs failed) is the evidence.

use super::{
    need, Applied, AppliedFault, ApplyLog, Failed, FaultKind, FaultRequest, FaultType, Holds,
    PlanError, PlannedFault, Targets, UndoLog, Undone,
};
use crate::capability::Capability;
use crate::disk::lazy_fs::Dropped;
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::process::{self, RESTART_READY_TIMEOUT};
use crate::nemesis::record::FaultRecord;
use crate::nemesis::{NemesisError, NemesisSpec};
use crate::node::Node;
use crate::system::System;
use rand::Rng;
use serde::Serialize;
use std::time::Duration;

/// The block size torn writes are cut at.
pub const TORN_BLOCK: u64 = 4096;
/// How much longer each sync takes under `disk-slow` unless the timeline item gives `delay`.
pub const DEFAULT_SYNC_DELAY: Duration = Duration::from_millis(200);

/// What a disk fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskMode {
    LoseUnsynced,
    TornWrite,
    FsyncError,
    Enospc,
    Slow,
}

impl DiskMode {
    const ALL: [DiskMode; 5] = [
        DiskMode::LoseUnsynced,
        DiskMode::TornWrite,
        DiskMode::FsyncError,
        DiskMode::Enospc,
        DiskMode::Slow,
    ];

    /// Whether the node is killed (and its cache dropped) while the fault is in force.
    fn kills(self) -> bool {
        matches!(self, DiskMode::LoseUnsynced | DiskMode::TornWrite)
    }
}

/// A disk fault kind: one mode, or any (drawn per fault).
pub struct DiskFault {
    mode: Option<DiskMode>,
}

pub static DISK: DiskFault = DiskFault { mode: None };
pub static LOSE_UNSYNCED: DiskFault = DiskFault {
    mode: Some(DiskMode::LoseUnsynced),
};
pub static TORN_WRITE: DiskFault = DiskFault {
    mode: Some(DiskMode::TornWrite),
};
pub static FSYNC_ERROR: DiskFault = DiskFault {
    mode: Some(DiskMode::FsyncError),
};
pub static ENOSPC: DiskFault = DiskFault {
    mode: Some(DiskMode::Enospc),
};
pub static SLOW: DiskFault = DiskFault {
    mode: Some(DiskMode::Slow),
};

/// Whether a campaign's faults need the disk layer under its nodes.
pub fn wanted(spec: &NemesisSpec) -> bool {
    spec.kinds()
        .iter()
        .any(|k| k.holds() == Holds::Shared(HOLDS))
}

pub(super) const HOLDS: &str = "a node's disk layer";

impl FaultType for DiskFault {
    fn name(&self) -> &'static str {
        match self.mode {
            None => "disk",
            Some(DiskMode::LoseUnsynced) => "disk-lose-unsynced",
            Some(DiskMode::TornWrite) => "disk-torn-write",
            Some(DiskMode::FsyncError) => "disk-fsync-error",
            Some(DiskMode::Enospc) => "disk-enospc",
            Some(DiskMode::Slow) => "disk-slow",
        }
    }

    fn acts_on_processes(&self) -> bool {
        true
    }

    fn start_event(&self) -> &'static str {
        "disk-fault"
    }

    fn stop_event(&self) -> &'static str {
        "disk-heal"
    }

    fn holds(&self) -> Holds {
        Holds::Shared(HOLDS)
    }

    fn check_host(&self, _: &NemesisSpec, _: &dyn System, _: usize) -> Result<(), NemesisError> {
        need(self.name(), Capability::Fuse)
    }

    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        let mode = match self.mode {
            Some(mode) => mode,
            None => DiskMode::ALL[request.rng.gen_range(0..DiskMode::ALL.len())],
        };
        let sync_delay =
            (mode == DiskMode::Slow).then(|| request.delay.unwrap_or(DEFAULT_SYNC_DELAY));
        Ok(Box::new(DiskPlan {
            mode,
            targets: request.targets()?,
            sync_delay,
        }))
    }
}

/// A planned disk fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskPlan {
    pub mode: DiskMode,
    #[serde(flatten)]
    pub targets: Targets,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub sync_delay: Option<Duration>,
}

impl PlannedFault for DiskPlan {
    fn kind(&self) -> FaultKind {
        let kind = match self.mode {
            DiskMode::LoseUnsynced => &LOSE_UNSYNCED,
            DiskMode::TornWrite => &TORN_WRITE,
            DiskMode::FsyncError => &FSYNC_ERROR,
            DiskMode::Enospc => &ENOSPC,
            DiskMode::Slow => &SLOW,
        };
        FaultKind(kind)
    }

    fn describe(&self) -> FaultRecord {
        FaultRecord {
            targets: Some(self.targets.planned()),
            ..FaultRecord::default()
        }
    }

    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed> {
        let (nodes, note) = self.targets.resolve(leadership);
        let mut log = ApplyLog::new(|nodes| -> Box<dyn AppliedFault> {
            Box::new(AppliedDiskFault {
                mode: self.mode,
                nodes,
            })
        });
        for name in &nodes {
            let (Some(node), Some(layer)) = (ctx.node(name), ctx.cluster().disks.get(name)) else {
                return Err(log.failed(format!("node {name} has no disk layer")));
            };
            if self.mode.kills() {
                match process::kill(node) {
                    Ok(e) => log.evidence(e.to_string(), e.in_effect),
                    Err(e) => return Err(log.failed(e)),
                }
                let dropped = drop_cache(self.mode, &mut layer.state());
                log.evidence(dropped_line(name, &dropped), true);
            } else {
                let mut fs = layer.state();
                match self.mode {
                    DiskMode::FsyncError => fs.faults.fsync_error = true,
                    DiskMode::Enospc => fs.faults.enospc = true,
                    _ => fs.faults.fsync_delay = self.sync_delay.unwrap_or(DEFAULT_SYNC_DELAY),
                }
                log.evidence(format!("{name}: {}", faults_line(&fs.faults)), true);
            }
            log.hit(name);
        }
        Ok(log.applied(nodes, note))
    }
}

fn drop_cache(mode: DiskMode, fs: &mut crate::disk::lazy_fs::LazyFs) -> Dropped {
    if mode == DiskMode::TornWrite {
        fs.tear_unsynced(TORN_BLOCK)
    } else {
        fs.drop_unsynced()
    }
}

/// `n1: dropped 8192 unsynced bytes of 2 files and 3 directory entries`.
pub(super) fn dropped_line(node: &str, dropped: &Dropped) -> String {
    let mut line = format!(
        "{node}: dropped {} unsynced bytes of {} files and {} directory entries",
        dropped.lost.bytes, dropped.lost.files, dropped.lost.entries
    );
    if dropped.kept_bytes > 0 {
        line.push_str(&format!(
            ", {} bytes written torn (cut at {TORN_BLOCK}-byte blocks)",
            dropped.kept_bytes
        ));
    }
    for e in &dropped.errors {
        line.push_str(&format!("; {e}"));
    }
    line
}

pub(super) fn faults_line(f: &crate::disk::lazy_fs::DiskFaults) -> String {
    let mut parts = Vec::new();
    if f.fsync_error {
        parts.push("syncs fail with EIO".to_owned());
    }
    if f.enospc {
        parts.push("writes fail with ENOSPC".to_owned());
    }
    if !f.fsync_delay.is_zero() {
        parts.push(format!("syncs take {:?} longer", f.fsync_delay));
    }
    if parts.is_empty() {
        "no disk fault in force".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Disk faults in force, until healed (or, for kills, the nodes started again).
struct AppliedDiskFault {
    mode: DiskMode,
    /// Emptied by the undo.
    nodes: Vec<String>,
}

impl AppliedFault for AppliedDiskFault {
    /// For kills, nothing to add to what applying recorded (the processes reaped, what
    /// each cache dropped); otherwise the fault read back from each node's layer.
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        if self.mode.kills() {
            return FaultRecord::default();
        }
        let evidence = self
            .nodes
            .iter()
            .filter_map(|n| Some((n, ctx.cluster().disks.get(n)?)))
            .map(|(n, layer)| {
                let fs = layer.state();
                let unsynced = fs.unsynced();
                format!(
                    "{n}: {}; {} syncs failed; {} unsynced bytes cached",
                    faults_line(&fs.faults),
                    fs.counters.failed_syncs,
                    unsynced.bytes
                )
            })
            .collect();
        FaultRecord {
            evidence,
            ..FaultRecord::default()
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let nodes = std::mem::take(&mut self.nodes);
        if nodes.is_empty() {
            return Undone::default();
        }
        let mut log = UndoLog::default();
        if self.mode.kills() {
            // Anything the dying node had in flight is dropped too, right before it starts.
            for name in &nodes {
                if let Some(layer) = ctx.cluster().disks.get(name) {
                    let dropped = drop_cache(self.mode, &mut layer.state());
                    if dropped.lost != Default::default() || !dropped.errors.is_empty() {
                        log.evidence(dropped_line(name, &dropped));
                    }
                }
            }
            let refs: Vec<&Node> = nodes.iter().filter_map(|n| ctx.node(n)).collect();
            log.restarts(process::start_all(&refs, RESTART_READY_TIMEOUT), "", None);
        } else {
            for name in &nodes {
                if let Some(layer) = ctx.cluster().disks.get(name) {
                    let mut fs = layer.state();
                    fs.faults = Default::default();
                    log.evidence(format!(
                        "{name}: healed; {} syncs failed since the layer was mounted",
                        fs.counters.failed_syncs
                    ));
                }
            }
            // A node that stopped on the error (as databases do on a failed fsync) starts
            // again on the healed disk.
            let stopped: Vec<&Node> = nodes
                .iter()
                .filter_map(|n| ctx.node(n))
                .filter(|n| !n.is_running())
                .collect();
            log.restarts(
                process::start_all(&stopped, RESTART_READY_TIMEOUT),
                "stopped on the fault, started again: ",
                None,
            );
        }
        log.undone(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{nodes, plan_one};
    use super::*;
    use crate::nemesis::record::PlannedTargets;

    /// A disk campaign is refused as unavailable (exit 69) naming FUSE, exactly when the
    /// FUSE probe fails on this machine.
    #[test]
    fn disk_faults_are_refused_naming_fuse_when_it_is_missing() {
        use crate::capability::{probe, Capability};
        let err = "/dev/fuse is missing".to_owned();
        let refused = crate::nemesis::NemesisError::Unavailable {
            fault: "disk",
            missing: Capability::Fuse.name(),
            detail: err,
        };
        assert_eq!(refused.kind(), crate::exit::FailureKind::Unavailable);
        assert!(refused.to_string().contains("need FUSE"), "{refused}");
        // The disk kinds ask for this capability: what `need` returns for it here.
        let kind = crate::nemesis::faults::FaultKind::named("disk-lose-unsynced").unwrap();
        let system = crate::system::clusterkv::ClusterKv::new(crate::system::clusterkv::Arch::Raft);
        match (
            kind.check_host(&Default::default(), &system, 3),
            probe(Capability::Fuse),
        ) {
            (Ok(()), p) => assert!(p.is_ok(), "accepted without FUSE: {}", p.detail),
            (Err(crate::nemesis::NemesisError::Unavailable { missing, .. }), p) => {
                assert_eq!(missing, "FUSE");
                assert!(!p.is_ok());
            }
            (Err(e), _) => panic!("{e}"),
        }
    }

    #[test]
    fn disk_kinds_plan_their_mode_and_share_the_layer() {
        let spec = NemesisSpec::default();
        let plan = plan_one("disk-lose-unsynced", &spec, &nodes(3), |_| {}).unwrap();
        assert_eq!(plan.kind().name(), "disk-lose-unsynced");
        assert!(matches!(
            plan.describe().targets,
            Some(PlannedTargets::Nodes(ref n)) if n.len() == 1
        ));
        assert_eq!(plan.to_json()["mode"], "lose-unsynced");
        let slow = plan_one("disk-slow", &spec, &nodes(3), |r| {
            r.delay = Some(Duration::from_millis(50))
        })
        .unwrap();
        assert_eq!(slow.to_json()["sync_delay"], "50ms");
        let any = plan_one("disk", &spec, &nodes(3), |_| {}).unwrap();
        assert!(any.kind().name().starts_with("disk-"));
        for kind in ["disk", "disk-torn-write", "disk-fsync-error", "disk-enospc"] {
            let kind = FaultKind::named(kind).unwrap();
            assert_eq!(kind.holds(), Holds::Shared(HOLDS));
        }
        let mut with_disk = NemesisSpec::default();
        assert!(!wanted(&with_disk));
        with_disk.faults = vec![FaultKind::named("kill").unwrap()];
        assert!(!wanted(&with_disk));
        with_disk.faults.push(FaultKind::named("disk").unwrap());
        assert!(wanted(&with_disk));
    }

    #[test]
    fn the_evidence_line_counts_what_was_dropped() {
        let dropped = Dropped {
            lost: crate::disk::lazy_fs::Unsynced {
                bytes: 10,
                files: 1,
                entries: 2,
            },
            kept_bytes: 4096,
            errors: vec![],
        };
        assert_eq!(
            dropped_line("n1", &dropped),
            "n1: dropped 10 unsynced bytes of 1 files and 2 directory entries, \
             4096 bytes written torn (cut at 4096-byte blocks)"
        );
    }
}
