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
    pub took: Duration,
}

fn frozen_state(node: &Node) -> String {
    match node.cgroup().map(|c| c.events()) {
        Some(Ok(events)) => format!("cgroup.events frozen {}", u8::from(events.frozen)),
        Some(Err(e)) => format!("cgroup.events unreadable: {e}"),
        None => "SIGSTOP/SIGCONT sent to the process group (no cgroup)".to_owned(),
    }
}

/// Freezes `node`; the evidence is `cgroup.events` after the freeze.
pub fn pause(node: &Node) -> Result<ProcessEvidence, NodeError> {
    let started = Instant::now();
    node.pause()?;
    let took = started.elapsed();
    Ok(ProcessEvidence {
        node: node.name().to_owned(),
        pid: node.pid(),
        evidence: frozen_state(node),
        took,
    })
}

/// Thaws `node` (a node that died meanwhile is fine: nothing is left paused).
pub fn resume(node: &Node) -> Result<ProcessEvidence, NodeError> {
    let started = Instant::now();
    node.resume()?;
    let took = started.elapsed();
    Ok(ProcessEvidence {
        node: node.name().to_owned(),
        pid: node.pid(),
        evidence: frozen_state(node),
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
            let evidence = match node.wait_ready(remaining) {
                Ok(_) => format!("running (start #{}), ready", node.generation()),
                Err(e) => format!("running (start #{}), not ready: {e}", node.generation()),
            };
            Ok(ProcessEvidence {
                node: node.name().to_owned(),
                pid: node.pid(),
                evidence,
                took: started.elapsed(),
            })
        })
        .collect()
}
