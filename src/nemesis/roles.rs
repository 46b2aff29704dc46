//! Who leads, asked of every node at once. Each system says how to ask one node
//! ([`System::role_query`](crate::system::System::role_query)); this module asks them all.
//!
//! Queries run from the switch namespace, like clients (the controller's own namespace
//! cannot reach the nodes), on a short-lived thread each, nodes in parallel.

use crate::netns;
pub use crate::system::{NodeStatus, RoleQuery};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One node to ask: its name, where it answers, and its own network namespace.
#[derive(Debug, Clone)]
pub struct RoleTarget {
    pub node: String,
    pub addr: SocketAddr,
    pub netns: String,
}

/// Queries every `(node, addr)` in parallel from namespace `from_netns`.
pub fn statuses(
    query: &Arc<dyn RoleQuery>,
    from_netns: &str,
    nodes: &[(String, SocketAddr)],
    timeout: Duration,
) -> Vec<Result<NodeStatus, String>> {
    let targets: Vec<RoleTarget> = nodes
        .iter()
        .map(|(node, addr)| RoleTarget {
            node: node.clone(),
            addr: *addr,
            netns: from_netns.to_owned(),
        })
        .collect();
    statuses_of(query, from_netns, &targets, timeout)
}

/// Queries every target in parallel from namespace `from_netns` (or from each node's own
/// namespace when the query says so).
pub fn statuses_of(
    query: &Arc<dyn RoleQuery>,
    from_netns: &str,
    nodes: &[RoleTarget],
    timeout: Duration,
) -> Vec<Result<NodeStatus, String>> {
    let handles: Vec<_> = nodes
        .iter()
        .map(|target| {
            let query = query.clone();
            let (node, addr) = (target.node.clone(), target.addr);
            let netns = match query.asks_from_node_namespace() {
                true => &target.netns,
                false => from_netns,
            };
            netns::spawn_in(netns, move || query.status(&node, addr, timeout))
                .map_err(|e| e.to_string())
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.and_then(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("status query panicked".to_owned()))
            })
        })
        .collect()
}

/// Queries every target in parallel from this process's own network namespace (nodes on
/// remote hosts, reached like any other machine).
pub fn statuses_here(
    query: &Arc<dyn RoleQuery>,
    nodes: &[RoleTarget],
    timeout: Duration,
) -> Vec<Result<NodeStatus, String>> {
    let handles: Vec<_> = nodes
        .iter()
        .map(|target| {
            let query = query.clone();
            let (node, addr) = (target.node.clone(), target.addr);
            std::thread::spawn(move || query.status(&node, addr, timeout))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err("status query panicked".to_owned()))
        })
        .collect()
}

/// The leader among `statuses`: the self-declared leader with the highest term.
pub fn leader_of(statuses: &[Result<NodeStatus, String>]) -> Option<String> {
    statuses
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .filter(|s| s.is_leader)
        .max_by_key(|s| s.term)
        .map(|s| s.node.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(node: &str, is_leader: bool, term: u64) -> Result<NodeStatus, String> {
        Ok(NodeStatus {
            node: node.into(),
            is_leader,
            term,
            time_ms: None,
        })
    }

    #[test]
    fn the_newest_self_declared_leader_wins() {
        assert_eq!(
            leader_of(&[st("n1", false, 3), st("n2", true, 3), Err("down".into())]),
            Some("n2".into())
        );
        // A deposed leader behind a partition still believes it leads, in an older term.
        assert_eq!(
            leader_of(&[st("n1", true, 2), st("n3", true, 4)]),
            Some("n3".into())
        );
        assert_eq!(leader_of(&[st("n1", false, 1), Err("x".into())]), None);
    }
}
