//! Who leads: each [`System`](super::System) says how to ask its nodes
//! ([`System::role_query`](super::System::role_query)), so faults can target the
//! leader/primary and record every node's role before and after.

use std::net::SocketAddr;
use std::time::Duration;

/// What one node says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: String,
    /// The node leads (etcd: its member id is the leader id; clusterkv: role `leader`).
    pub is_leader: bool,
    /// The term (raft) the node is in, to break ties between two self-declared leaders.
    pub term: u64,
    /// The node's wall clock in ms since the epoch, if it reports it (clock evidence).
    pub time_ms: Option<u64>,
}

/// Asks one node about its role. Blocking; called from a thread inside the network the
/// clients use (the node's readiness address is reachable from there), or inside the node's
/// own namespace when [`RoleQuery::asks_from_node_namespace`] says so.
pub trait RoleQuery: Send + Sync {
    /// The system's name, for notes.
    fn system(&self) -> &str;
    fn status(&self, node: &str, addr: SocketAddr, timeout: Duration)
        -> Result<NodeStatus, String>;
    /// Whether [`RoleQuery::status`] is called from inside the node's own network namespace
    /// (the `command` system's role command) rather than from the clients' (the default).
    fn asks_from_node_namespace(&self) -> bool {
        false
    }
}
