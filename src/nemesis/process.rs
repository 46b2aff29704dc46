//! Process faults: kill / start again, pause / resume, through [`Node`] (cgroup.kill and
//! cgroup.freeze where cgroup v2 is usable, signals to the process group otherwise). Each
//! action returns evidence that it took effect, read back from the kernel.

use crate::node::{Node, NodeError};
use std::time::{Duration, Instant};

/// How long restarted nodes may take to become ready. Past it the restart is recorded with
/// the readiness error and the run goes on: a node that stays down is a finding.
pub const RESTART_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What one process action did to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEvidence {
    pub node: String,
    /// The pid acted on (or started).
    pub pid: Option<i32>,
    /// How it was checked, e.g. `cgroup.events frozen 1`, `not running`, `ready in 120ms`.
    pub evidence: String,
    /// Whether the check shows the action in effect (frozen, gone, thawed, ready).
    pub in_effect: bool,
    pub took: Duration,
}

/// One evidence line: `n1: pid 6799, cgroup.events frozen 1` (`n1: no process, …` when
/// there was none to act on).
impl std::fmt::Display for ProcessEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "{}: pid {pid}, {}", self.node, self.evidence),
            None => write!(f, "{}: no process, {}", self.node, self.evidence),
        }
    }
}

/// What the kernel says of the node's freezer, and whether it is frozen (without a cgroup,
/// what [`Node::is_paused`] verified through `/proc`).
fn frozen_state(node: &Node) -> (String, bool) {
    match node.cgroup().map(|c| c.events()) {
        Some(Ok(events)) => (
            format!("cgroup.events frozen {}", u8::from(events.frozen)),
            events.frozen,
        ),
        Some(Err(e)) => (format!("cgroup.events unreadable: {e}"), false),
        None => (
            "SIGSTOP/SIGCONT sent to the process group (no cgroup)".to_owned(),
            node.is_paused(),
        ),
    }
}

/// Freezes `node`; the evidence is `cgroup.events` after the freeze.
pub fn pause(node: &Node) -> Result<ProcessEvidence, NodeError> {
    freezer(node, Node::pause, true)
}

/// Thaws `node` (a node that died meanwhile is fine: nothing is left paused).
pub fn resume(node: &Node) -> Result<ProcessEvidence, NodeError> {
    freezer(node, Node::resume, false)
}

/// Pauses or resumes `node`, then reads the freezer back: in effect when it says
/// `frozen` as wanted.
fn freezer(
    node: &Node,
    act: fn(&Node) -> Result<(), NodeError>,
    want_frozen: bool,
) -> Result<ProcessEvidence, NodeError> {
    let started = Instant::now();
    act(node)?;
    let took = started.elapsed();
    let (evidence, frozen) = frozen_state(node);
    Ok(ProcessEvidence {
        node: node.name().to_owned(),
        pid: node.pid(),
        evidence,
        in_effect: frozen == want_frozen,
        took,
    })
}

/// Kills `node` and waits until it is reaped.
pub fn kill(node: &Node) -> Result<ProcessEvidence, NodeError> {
    let started = Instant::now();
    let pid = node.pid();
    node.kill()?;
    let took = started.elapsed();
    let evidence = if node.is_running() {
        "still running".to_owned()
    } else {
        "not running (reaped)".to_owned()
    };
    Ok(ProcessEvidence {
        node: node.name().to_owned(),
        pid,
        evidence,
        in_effect: !node.is_running(),
        took,
    })
}

/// Starts every node of `nodes` that is not running again on its data directory, then
/// waits for each to be ready (all are started before any wait: cluster members often need
/// each other to come up).
pub fn start_all(
    nodes: &[&Node],
    ready_timeout: Duration,
) -> Vec<Result<ProcessEvidence, NodeError>> {
    let started = Instant::now();
    let spawned: Vec<Result<(), NodeError>> = nodes.iter().map(|n| n.start_again()).collect();
    let deadline = started + ready_timeout;
    nodes
        .iter()
        .zip(spawned)
        .map(|(node, spawned)| {
            spawned?;
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            let (evidence, ready) = match node.wait_ready(remaining) {
                Ok(_) => (
                    format!("running (start #{}), ready", node.generation()),
                    true,
                ),
                Err(e) => (
                    format!("running (start #{}), not ready: {e}", node.generation()),
                    false,
                ),
            };
            Ok(ProcessEvidence {
                node: node.name().to_owned(),
                pid: node.pid(),
                evidence,
                in_effect: ready,
                took: started.elapsed(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_lines_are_written_for_people_not_in_debug_form() {
        let mut e = ProcessEvidence {
            node: "n2".into(),
            pid: Some(6799),
            evidence: "cgroup.events frozen 1".into(),
            in_effect: true,
            took: Duration::from_millis(3),
        };
        assert_eq!(e.to_string(), "n2: pid 6799, cgroup.events frozen 1");
        e.pid = None;
        e.evidence = "not running".into();
        assert_eq!(e.to_string(), "n2: no process, not running");
        assert!(!e.to_string().contains("Some("));
    }
}
