//! `partition`: nodes stop hearing each other along a [`Shape`]'s grudge, by blackhole
//! routes or nftables drops ([`crate::nemesis::net`]); probes across and beside the cut are
//! the evidence.

use super::{
    need, Applied, AppliedFault, Failed, FaultKind, FaultRequest, FaultType, PlanError,
    PlannedFault, Undone,
};
use crate::capability::Capability;
use crate::nemesis::context::{Leadership, NemesisContext};
use crate::nemesis::net::{self, AppliedCut, NetBackend, Reach};
use crate::nemesis::partition::{self as shapes, Grudge, Shape, ShapeError};
use crate::nemesis::record::FaultRecord;
use crate::nemesis::{NemesisError, NemesisSpec};
use crate::system::System;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a reachability probe waits for an answer (blackholes answer at once).
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// The `partition` kind.
pub struct Partition;

impl FaultType for Partition {
    fn chosen_by(&self) -> super::ChosenBy {
        super::ChosenBy::Shape
    }

    fn name(&self) -> &'static str {
        "partition"
    }

    fn start_event(&self) -> &'static str {
        "start-partition"
    }

    fn stop_event(&self) -> &'static str {
        "stop-partition"
    }

    fn check_host(&self, spec: &NemesisSpec, _: &dyn System, _: usize) -> Result<(), NemesisError> {
        if spec.backend == NetBackend::Nftables {
            need(self.name(), Capability::Nftables)?;
        }
        Ok(())
    }

    fn plan(&self, request: &mut FaultRequest<'_>) -> Result<Box<dyn PlannedFault>, PlanError> {
        let shape = request.shape;
        let grudge = match shape {
            Shape::IsolateLeader => {
                if request.nodes.len() < shape.min_nodes() {
                    return Err(ShapeError::TooFewNodes {
                        shape: shape.name(),
                        needs: 2,
                        has: request.nodes.len(),
                    }
                    .into());
                }
                None
            }
            _ => Some(shapes::grudge(shape, request.nodes, &mut request.rng)?),
        };
        Ok(Box::new(PartitionPlan {
            shape,
            grudge,
            fallback: request.fallback.clone(),
        }))
    }
}

/// A planned partition. `grudge` is `None` for `isolate-leader` (computed at start;
/// `fallback` is isolated when the system cannot say who leads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionPlan {
    pub shape: Shape,
    pub grudge: Option<Grudge>,
    pub fallback: String,
}

/// A grudge as recorded: node → the nodes it does not hear.
fn grudge_record(g: &Grudge) -> BTreeMap<String, Vec<String>> {
    g.0.iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect()
}

impl PartitionPlan {
    /// The grudge to apply now, with a note when it depends on who leads.
    pub fn grudge_now(
        &self,
        nodes: &[String],
        leadership: &Leadership,
    ) -> (Grudge, Option<String>) {
        match &self.grudge {
            Some(g) => (g.clone(), None),
            None => {
                let (leader, note) = leadership.leader_or(&self.fallback);
                (
                    shapes::isolate_node(nodes, &leader),
                    Some(format!("isolated {leader}: {note}")),
                )
            }
        }
    }
}

impl PlannedFault for PartitionPlan {
    fn kind(&self) -> FaultKind {
        FaultKind(&Partition)
    }

    fn describe(&self) -> FaultRecord {
        FaultRecord {
            shape: Some(self.shape.name().to_owned()),
            grudge: self.grudge.as_ref().map(grudge_record),
            ..FaultRecord::default()
        }
    }

    fn apply(&self, ctx: &NemesisContext, leadership: &Leadership) -> Result<Applied, Failed> {
        let (grudge, note) = self.grudge_now(&ctx.node_names(), leadership);
        let nodes = ctx.cluster().topology.nodes();
        let cut = net::apply(ctx.backend, nodes, &grudge, ctx.routes.as_ref())
            .map_err(Failed::nothing_applied)?;
        let rules: Vec<String> = cut
            .changes
            .iter()
            .map(|(ns, lines)| format!("{ns}: {}", lines.join("; ")))
            .collect();
        let record = FaultRecord {
            shape: Some(self.shape.name().to_owned()),
            backend: Some(cut.backend.name().to_owned()),
            grudge: Some(grudge_record(&grudge)),
            rules,
            note,
            ..FaultRecord::default()
        };
        Ok(Applied {
            fault: Box::new(AppliedPartition { cut: Some(cut) }),
            record,
        })
    }
}

/// A partition in force: its routes or rules, until undone.
struct AppliedPartition {
    cut: Option<AppliedCut>,
}

impl AppliedFault for AppliedPartition {
    fn evidence(&self, ctx: &NemesisContext) -> FaultRecord {
        let Some(cut) = &self.cut else {
            return FaultRecord::default();
        };
        let evidence = probes(ctx, &cut.grudge, true);
        FaultRecord {
            effective: Some(cut_is_in_force(&evidence)),
            evidence,
            ..FaultRecord::default()
        }
    }

    fn undo(&mut self, ctx: &NemesisContext) -> Undone {
        let Some(cut) = self.cut.take() else {
            return Undone::default();
        };
        match net::heal(&cut, ctx.routes.as_ref()) {
            Ok(_) => Undone {
                record: FaultRecord {
                    backend: Some(cut.backend.name().to_owned()),
                    evidence: probes(ctx, &cut.grudge, false),
                    ..FaultRecord::default()
                },
                error: None,
            },
            Err(e) => {
                // Not healed: a later undo tries again.
                let error = Some(e.to_string());
                self.cut = Some(cut);
                Undone {
                    record: FaultRecord::default(),
                    error,
                }
            }
        }
    }
}

/// In force: the pair across the cut is blocked, the pair on one side is not.
fn cut_is_in_force(evidence: &[String]) -> bool {
    evidence.first().is_some_and(|e| e.contains(": blocked"))
        && evidence.iter().skip(1).all(|e| e.ends_with(": reachable"))
}

/// Probes one pair across the cut (and one pair on the same side while in force).
fn probes(ctx: &NemesisContext, grudge: &Grudge, in_force: bool) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::super::testing::{nodes, plan_one};
    use super::*;
    use crate::nemesis::record::PlannedTargets;

    #[test]
    fn a_partition_plans_its_grudge_and_describes_its_shape() {
        let spec = NemesisSpec::default();
        let plan = plan_one("partition", &spec, &nodes(4), |r| r.shape = Shape::Halves).unwrap();
        assert_eq!(plan.kind().name(), "partition");
        let record = plan.describe();
        assert_eq!(record.shape.as_deref(), Some("halves"));
        let grudge = record.grudge.expect("halves is known up front");
        assert_eq!(grudge["n1"], vec!["n3".to_owned(), "n4".to_owned()]);
        assert_eq!(record.targets, None::<PlannedTargets>);
    }

    #[test]
    fn isolate_leader_is_resolved_when_it_starts() {
        let spec = NemesisSpec::default();
        let names = nodes(3);
        let plan = PartitionPlan {
            shape: Shape::IsolateLeader,
            grudge: None,
            fallback: "n3".into(),
        };
        assert_eq!(plan.describe().grudge, None);
        let (grudge, note) = plan.grudge_now(
            &names,
            &Leadership::Leader {
                node: "n2".into(),
                system: "etcd".into(),
            },
        );
        assert!(grudge.blocks("n2", "n1") && grudge.blocks("n1", "n2"));
        assert!(!grudge.blocks("n1", "n3"));
        assert_eq!(note.as_deref(), Some("isolated n2: leader per etcd status"));
        let (grudge, note) = plan.grudge_now(&names, &Leadership::Unknowable);
        assert!(grudge.blocks("n3", "n1"));
        assert!(note.unwrap().contains("random node"));
        // Too few nodes to isolate anyone is refused when planning.
        let err = plan_one("partition", &spec, &nodes(1), |r| {
            r.shape = Shape::IsolateLeader
        })
        .unwrap_err();
        assert!(err.to_string().contains("isolate-leader"), "{err}");
    }

    #[test]
    fn a_cut_is_in_force_when_across_is_blocked_and_beside_is_not() {
        let blocked = "n1->n3: blocked (no route to host)".to_owned();
        let open = "n1->n2: reachable".to_owned();
        assert!(cut_is_in_force(&[blocked.clone(), open.clone()]));
        assert!(cut_is_in_force(std::slice::from_ref(&blocked)));
        assert!(!cut_is_in_force(std::slice::from_ref(&open)));
        assert!(!cut_is_in_force(&[
            blocked,
            "n1->n2: blocked (timeout)".into()
        ]));
        assert!(!cut_is_in_force(&[]));
    }
}
