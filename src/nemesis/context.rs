//! What faults see of the run: the deployed cluster (nodes, namespaces, offset files), the
//! history, the partition backend, and who leads (asked of the system's nodes).

use super::clock;
use super::net::NetBackend;
use super::netlink::RouteWorkers;
use super::roles::{self, NodeStatus, RoleQuery, RoleTarget};
use crate::cluster::{Cluster, Deployment, RemoteCluster};
use crate::node::Node;
use crate::recorder::{Entry, Recorder};
use crate::topology::NodeNet;
use splitbrain_checkers::{EventType, Process, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a role query may take.
const ROLE_TIMEOUT: Duration = Duration::from_millis(500);

/// Everything the nemesis needs from the run.
pub struct NemesisContext {
    pub deployment: Arc<Deployment>,
    pub recorder: Recorder,
    /// How partitions are applied.
    pub backend: NetBackend,
    /// Netlink threads in the node namespaces for blackhole routes (`None`: `ip -batch`).
    pub routes: Option<RouteWorkers>,
}

/// Who leads, as the nodes said just before a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// The system cannot say who leads.
    Unknowable,
    /// `node` claims to lead (the highest term among those that do).
    Leader { node: String, system: String },
    /// The system can say, but no node claims to lead.
    NoLeader { system: String },
}

impl Leadership {
    /// From the nodes' answers; `system` names the role query (`None`: there is none).
    pub fn of(system: Option<&str>, statuses: &[Result<NodeStatus, String>]) -> Leadership {
        let Some(system) = system else {
            return Leadership::Unknowable;
        };
        match roles::leader_of(statuses) {
            Some(node) => Leadership::Leader {
                node,
                system: system.to_owned(),
            },
            None => Leadership::NoLeader {
                system: system.to_owned(),
            },
        }
    }

    /// The leader, or `fallback` with a note saying why.
    pub fn leader_or(&self, fallback: &str) -> (String, String) {
        match self {
            Leadership::Unknowable => (
                fallback.to_owned(),
                "the system cannot say who leads: random node".to_owned(),
            ),
            Leadership::Leader { node, system } => {
                (node.clone(), format!("leader per {system} status"))
            }
            Leadership::NoLeader { system } => (
                fallback.to_owned(),
                format!("no node claims to lead per {system} status: random node"),
            ),
        }
    }
}

/// Every node's role, one line each (`n1: leader (term 3)`, `n3: no answer (…)`).
pub fn role_lines(nodes: &[String], statuses: &[Result<NodeStatus, String>]) -> Vec<String> {
    statuses
        .iter()
        .zip(nodes)
        .map(|(status, node)| match status {
            Ok(s) => format!(
                "{}: {} (term {})",
                s.node,
                if s.is_leader { "leader" } else { "follower" },
                s.term
            ),
            Err(e) => format!("{node}: no answer ({e})"),
        })
        .collect()
}

impl NemesisContext {
    /// The cluster faults act on.
    ///
    /// # Panics
    /// On the in-memory deployment, which [`super::Nemesis::start`] refuses.
    pub fn cluster(&self) -> &Cluster {
        match &*self.deployment {
            Deployment::Cluster(c) => c,
            Deployment::InMemory(_) => unreachable!("checked in Nemesis::start"),
            Deployment::Remote(_) => {
                unreachable!(
                    "faults on remote hosts go through faults::remote (checked when validated)"
                )
            }
        }
    }

    /// The cluster on remote hosts, when the run has one.
    pub fn remote(&self) -> Option<&RemoteCluster> {
        match &*self.deployment {
            Deployment::Remote(c) => Some(c.as_ref()),
            Deployment::Cluster(_) | Deployment::InMemory(_) => None,
        }
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.cluster().nodes.iter().find(|n| n.name() == name)
    }

    pub fn net(&self, name: &str) -> Option<&NodeNet> {
        self.cluster().topology.node(name)
    }

    pub fn node_names(&self) -> Vec<String> {
        if let Some(remote) = self.remote() {
            return remote.spec.nodes.iter().map(|n| n.name.clone()).collect();
        }
        self.cluster()
            .topology
            .nodes()
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    /// The libfaketime offset file of node `name`.
    pub fn offset_file(&self, name: &str) -> Option<PathBuf> {
        self.node(name)
            .map(|n| n.config().log_dir.join(clock::OFFSET_FILE))
    }

    /// The system's way of asking a node who leads.
    fn role_query(&self) -> Option<Arc<dyn RoleQuery>> {
        if let Some(remote) = self.remote() {
            return remote.system.role_query(&remote.spec);
        }
        let cluster = self.cluster();
        cluster.system.role_query(&cluster.spec)
    }

    /// Where each node answers role queries (the system says: etcd's and clusterkv's
    /// client port, ZooKeeper's, Redis's), and the node's namespace.
    fn role_targets(&self) -> Vec<RoleTarget> {
        if let Some(remote) = self.remote() {
            // Asked from this process's own network, like the remote nodes' clients.
            return remote
                .spec
                .nodes
                .iter()
                .filter_map(|n| {
                    Some(RoleTarget {
                        node: n.name.clone(),
                        addr: remote.system.role_address(n)?,
                        netns: String::new(),
                    })
                })
                .collect();
        }
        let cluster = self.cluster();
        cluster
            .spec
            .nodes
            .iter()
            .filter_map(|n| {
                Some(RoleTarget {
                    node: n.name.clone(),
                    addr: cluster.system.role_address(n)?,
                    netns: self.net(&n.name)?.netns.clone(),
                })
            })
            .collect()
    }

    /// Every node's status (empty when the system cannot say).
    pub fn statuses(&self) -> Vec<Result<NodeStatus, String>> {
        match self.role_query() {
            Some(query) if self.remote().is_some() => {
                roles::statuses_here(&query, &self.role_targets(), ROLE_TIMEOUT)
            }
            Some(query) => roles::statuses_of(
                &query,
                self.cluster().topology.switch_netns(),
                &self.role_targets(),
                ROLE_TIMEOUT,
            ),
            None => Vec::new(),
        }
    }

    /// Who leads according to `statuses`.
    pub fn leadership(&self, statuses: &[Result<NodeStatus, String>]) -> Leadership {
        let query = self.role_query();
        Leadership::of(query.as_ref().map(|q| q.system()), statuses)
    }

    /// Every node's role, one line each, from `statuses`.
    pub fn role_lines_of(&self, statuses: &[Result<NodeStatus, String>]) -> Vec<String> {
        let nodes: Vec<String> = self.role_targets().into_iter().map(|t| t.node).collect();
        role_lines(&nodes, statuses)
    }

    /// Every node's role now (empty when the system cannot say): leader changes, as
    /// evidence.
    pub fn role_lines(&self) -> Vec<String> {
        self.role_lines_of(&self.statuses())
    }

    /// Writes one nemesis event into the history.
    pub fn record(
        &self,
        kind: EventType,
        f: &str,
        record: &super::record::FaultRecord,
        error: Option<String>,
    ) {
        self.recorder.record(Entry {
            process: Process::Nemesis,
            kind,
            f: f.to_owned(),
            key: None,
            value: record.to_value(),
            node: None,
            error: error.map(Value::Str),
        });
    }
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
    fn leadership_says_why_a_fallback_was_used() {
        let statuses = [st("n1", false, 2), st("n2", true, 2), Err("timeout".into())];
        assert_eq!(
            Leadership::of(Some("etcd"), &statuses).leader_or("n3"),
            ("n2".to_owned(), "leader per etcd status".to_owned())
        );
        assert_eq!(
            Leadership::of(Some("clusterkv"), &statuses[..1]).leader_or("n3"),
            (
                "n3".to_owned(),
                "no node claims to lead per clusterkv status: random node".to_owned()
            )
        );
        assert_eq!(Leadership::of(None, &statuses), Leadership::Unknowable);
    }

    #[test]
    fn role_lines_name_every_node_and_its_answer() {
        let nodes = ["n1".to_owned(), "n2".to_owned()];
        assert_eq!(
            role_lines(&nodes, &[st("n1", true, 3), Err("refused".into())]),
            vec![
                "n1: leader (term 3)".to_owned(),
                "n2: no answer (refused)".to_owned()
            ]
        );
    }
}
