//! `pause` (freeze, thaw at the end) and `kill` (kill, start again at the end) of node
//! processes, through [`crate::nemesis::process`]; the kernel's own account (cgroup
//! freezer, reaped process, readiness after the restart) is the evidence.

use super::{
    Applied, AppliedFault, ApplyLog, Failed, FaultKind, FaultRequest, FaultType, PlanError,
    PlannedFault, Targets, UndoLog, Undone,
};
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::process::{self, ProcessEvidence, RESTART_READY_TIMEOUT};
use crate::nemesis::record::FaultRecord;
use crate::node::{Node, NodeError};
use serde::Serialize;

/// What a process fault does to each target, and how it is taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProcessAction {
    /// Freeze (cgroup.freeze); thaw when undone.
    Pause,
    /// Kill (cgroup.kill); start again when undone.
    Kill,
}

/// A process fault kind.
pub struct ProcessFault {
    action: ProcessAction,
}

/// The `pause` kind.
pub static PAUSE: ProcessFault = ProcessFault {
    action: ProcessAction::Pause,
};
/// The `kill` kind.
pub static KILL: ProcessFault = ProcessFault {
    action: ProcessAction::Kill,
};

impl ProcessAction {
    fn kind(self) -> &'static ProcessFault {
        match self {
            ProcessAction::Pause => &PAUSE,
            ProcessAction::Kill => &KILL,
        }
    }

    /// Acts on one node, with the kernel's evidence.
    fn act(self, node: &Node) -> Result<ProcessEvidence, NodeError> {
        match self {
            ProcessAction::Pause => process::pause(node),
            ProcessAction::Kill => process::kill(node),
        }
    }
}

impl FaultType for ProcessFault {
    fn name(&self) -> &'static str {
        match self.action {
            ProcessAction::Pause => "pause",
            ProcessAction::Kill => "kill",
        }
    }

    fn acts_on_processes(&self) -> bool {
        true
    }

    fn start_event(&self) -> &'static str {
        match self.action {
            ProcessAction::Pause => "pause",
            ProcessAction::Kill => "kill",
        }
    }

    fn stop_event(&self) -> &'static str {
        match self.action {
            ProcessAction::Pause => "resume",
            ProcessAction::Kill => "start",
        }
    }

    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        Ok(Box::new(ProcessPlan {
            action: self.action,
            targets: request.targets()?,
        }))
    }
}

/// A planned pause or kill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessPlan {
    #[serde(skip)]
    pub action: ProcessAction,
    #[serde(flatten)]
    pub targets: Targets,
}

impl PlannedFault for ProcessPlan {
    fn kind(&self) -> FaultKind {
        FaultKind(self.action.kind())
    }

    fn describe(&self) -> FaultRecord {
        FaultRecord {
            targets: Some(self.targets.planned()),
            ..FaultRecord::default()
        }
    }

    /// Acts on the targets one by one; on a failure, the nodes done so far come back as
    /// the part to undo.
    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed> {
        let (nodes, note) = self.targets.resolve(leadership);
        let mut log = ApplyLog::new(|nodes| -> Box<dyn AppliedFault> {
            Box::new(AppliedProcessFault {
                action: self.action,
                nodes,
            })
        });
        for name in &nodes {
            let Some(node) = ctx.node(name) else { continue };
            match self.action.act(node) {
                Ok(e) => {
                    log.evidence(e.to_string(), e.in_effect);
                    log.hit(name);
                }
                Err(e) => return Err(log.failed(e)),
            }
        }
        Ok(log.applied(nodes, note))
    }
}

/// Paused or killed nodes, until thawed or started again. The evidence of the fault is
/// taken while applying (the kernel's account of each node).
struct AppliedProcessFault {
    action: ProcessAction,
    /// Emptied by the undo.
    nodes: Vec<String>,
}

impl AppliedFault for AppliedProcessFault {
    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let nodes = std::mem::take(&mut self.nodes);
        if nodes.is_empty() {
            return Undone::default();
        }
        let results = match self.action {
            ProcessAction::Pause => nodes
                .iter()
                .filter_map(|n| ctx.node(n))
                .map(process::resume)
                .collect(),
            ProcessAction::Kill => {
                let refs: Vec<&Node> = nodes.iter().filter_map(|n| ctx.node(n)).collect();
                process::start_all(&refs, RESTART_READY_TIMEOUT)
            }
        };
        undone(nodes, results)
    }
}

/// The record of undoing a process fault: every node's evidence, the first error.
fn undone(nodes: Vec<String>, results: Vec<Result<ProcessEvidence, NodeError>>) -> Undone {
    let mut log = UndoLog::default();
    log.restarts(results, "", None);
    log.undone(nodes)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{nodes, plan_one};
    use super::*;
    use crate::nemesis::record::PlannedTargets;
    use crate::nemesis::{NemesisSpec, TargetSpec};
    use std::time::Duration;

    #[test]
    fn pause_and_kill_plan_their_targets_and_describe_them() {
        let spec = NemesisSpec::default();
        let pause = plan_one("pause", &spec, &nodes(5), |r| {
            r.target = TargetSpec::Majority
        })
        .unwrap();
        assert_eq!(pause.kind().name(), "pause");
        let Some(PlannedTargets::Nodes(hit)) = pause.describe().targets else {
            panic!("a majority is drawn up front");
        };
        assert_eq!(hit.len(), 3);
        let kill = plan_one("kill", &spec, &nodes(3), |r| {
            r.target = TargetSpec::Primaries
        })
        .unwrap();
        assert_eq!(kill.kind().name(), "kill");
        assert_eq!(kill.kind().stop_event(), "start");
        assert_eq!(
            kill.describe(),
            FaultRecord {
                targets: Some(PlannedTargets::Role("primaries".into())),
                ..FaultRecord::default()
            }
        );
        assert!(plan_one("kill", &spec, &nodes(3), |r| {
            r.target = TargetSpec::Node("n9".into())
        })
        .is_err());
    }

    #[test]
    fn the_undo_record_keeps_every_node_and_the_first_error() {
        let ok = |node: &str| {
            Ok(ProcessEvidence {
                node: node.into(),
                pid: Some(7),
                evidence: "cgroup.events frozen 0".into(),
                in_effect: true,
                took: Duration::ZERO,
            })
        };
        let done = undone(
            vec!["n1".into(), "n2".into()],
            vec![
                ok("n1"),
                Err(NodeError::ProgramNotFound {
                    node: "n2".into(),
                    program: "etcd".into(),
                }),
                ok("n2"),
            ],
        );
        assert_eq!(done.record.nodes, vec!["n1".to_owned(), "n2".to_owned()]);
        assert_eq!(done.record.evidence.len(), 2);
        assert!(done.error.unwrap().contains("n2"));
    }
}
