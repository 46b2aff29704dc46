//! `disk-corrupt`: a node is killed, a file of its disk (the lazy disk layer's backing
//! directory) is corrupted while it is down — bits flipped in a region, the file truncated,
//! or an older copy of it put back ([`crate::disk::corrupt`]) — and the node starts again
//! when the fault heals, as a `kill` does. What the node's process had written reaches the
//! disk first (a crash keeps the page cache: this fault is about the disk, not power).
//! Seeded: the style is drawn when the fault is planned, the file, offset and bits from a
//! seed drawn then too (among the node's files, sorted). On remote hosts the node's layer
//! process does the same ([`super::remote_disk`]). Evidence: which file, which bytes,
//! the file's checksum before and after.

use super::disk::HOLDS;
use super::{
    need, Applied, AppliedFault, ApplyLog, Failed, FaultKind, FaultRequest, FaultType, Holds,
    PlanError, PlannedFault, Targets, UndoLog, Undone,
};
use crate::capability::Capability;
use crate::disk::corrupt::{self, CorruptStyle};
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::process::{self, RESTART_READY_TIMEOUT};
use crate::nemesis::record::FaultRecord;
use crate::nemesis::{NemesisError, NemesisSpec};
use crate::node::Node;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of `disk-corrupt` (`nemesis.corrupt:`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptSpec {
    /// The styles drawn from, per fault (default: all three).
    #[serde(default = "all_styles")]
    pub styles: Vec<CorruptStyle>,
    /// Which files may be corrupted: a glob relative to the node's data directory (`*`,
    /// `**`, `?`); default: any non-empty file in it.
    #[serde(default)]
    pub files: Option<String>,
}

fn all_styles() -> Vec<CorruptStyle> {
    CorruptStyle::ALL.to_vec()
}

impl Default for CorruptSpec {
    fn default() -> Self {
        CorruptSpec {
            styles: all_styles(),
            files: None,
        }
    }
}

/// The `disk-corrupt` kind.
pub struct Corrupt;

pub static CORRUPT: Corrupt = Corrupt;

impl FaultType for Corrupt {
    fn name(&self) -> &'static str {
        "disk-corrupt"
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

    fn check_host(
        &self,
        _: &NemesisSpec,
        _: &dyn crate::system::System,
        _: usize,
    ) -> Result<(), NemesisError> {
        need(self.name(), Capability::Fuse)
    }

    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        let styles = &request.spec.corrupt.styles;
        if styles.is_empty() {
            return Err(PlanError::Fault {
                kind: "disk-corrupt",
                message: "nemesis.corrupt.styles: expected at least one of bit-flip, truncate, \
                          old-copy"
                    .into(),
            });
        }
        let style = styles[request.rng.gen_range(0..styles.len())];
        Ok(Box::new(CorruptPlan {
            style,
            files: request.spec.corrupt.files.clone(),
            seed: request.rng.gen(),
            targets: request.targets()?,
        }))
    }
}

/// A planned corruption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorruptPlan {
    pub style: CorruptStyle,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
    /// Seeds the choice of file, offset and bits.
    pub seed: u64,
    #[serde(flatten)]
    pub targets: Targets,
}

impl PlannedFault for CorruptPlan {
    fn kind(&self) -> FaultKind {
        FaultKind(&CORRUPT)
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
            Box::new(AppliedCorruption { nodes })
        });
        for (i, name) in nodes.iter().enumerate() {
            let (Some(node), Some(layer)) = (ctx.node(name), ctx.cluster().disks.get(name)) else {
                return Err(log.failed(format!("node {name} has no disk layer")));
            };
            match process::kill(node) {
                Ok(e) => log.evidence(e.to_string(), e.in_effect),
                Err(e) => return Err(log.failed(e)),
            }
            log.hit(name);
            match corrupt::corrupt_layer(layer, self.style, self.files.as_deref(), self.seed_of(i))
            {
                Ok(done) => log.evidence(format!("{name}: {done}"), done.changed()),
                Err(e) => return Err(log.failed(format!("{name}: corrupting its disk: {e}"))),
            }
        }
        Ok(log.applied(nodes, note))
    }
}

impl CorruptPlan {
    /// The seed of the `i`th target's corruption.
    pub fn seed_of(&self, i: usize) -> u64 {
        self.seed.wrapping_add(i as u64)
    }
}

/// Corrupted nodes, down until healed.
struct AppliedCorruption {
    /// Emptied by the undo.
    nodes: Vec<String>,
}

impl AppliedFault for AppliedCorruption {
    /// Starts the nodes again on their corrupted disks. A node that refuses to start (a
    /// checksum error, an unreadable file) is the undo's error, reported by the run.
    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let nodes = std::mem::take(&mut self.nodes);
        if nodes.is_empty() {
            return Undone::default();
        }
        let refs: Vec<&Node> = nodes.iter().filter_map(|n| ctx.node(n)).collect();
        let mut log = UndoLog::default();
        log.restarts(
            process::start_all(&refs, RESTART_READY_TIMEOUT),
            "",
            Some("did not start on its corrupted disk: "),
        );
        log.undone(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{nodes, plan_one};
    use super::*;

    #[test]
    fn corruption_plans_a_style_of_the_campaigns_and_a_seed() {
        let mut spec = NemesisSpec {
            corrupt: CorruptSpec {
                styles: vec![CorruptStyle::Truncate],
                files: Some("raft-*".into()),
            },
            ..NemesisSpec::default()
        };
        let plan = plan_one("disk-corrupt", &spec, &nodes(3), |_| {}).unwrap();
        assert_eq!(plan.kind().name(), "disk-corrupt");
        let json = plan.to_json();
        assert_eq!(json["style"], "truncate");
        assert_eq!(json["files"], "raft-*");
        assert!(json["seed"].is_u64());
        assert_eq!(
            FaultKind::named("disk-corrupt").unwrap().holds(),
            Holds::Shared(HOLDS)
        );
        let with = NemesisSpec {
            faults: vec![FaultKind::named("disk-corrupt").unwrap()],
            ..NemesisSpec::default()
        };
        assert!(
            super::super::disk::wanted(&with),
            "the layer is mounted for it"
        );
        spec.corrupt.styles.clear();
        assert!(plan_one("disk-corrupt", &spec, &nodes(3), |_| {}).is_err());
    }
}
