//! The cluster network of one run: a switch namespace holding a bridge, and one namespace
//! per node wired to it by a veth pair.
//!
//! ```text
//!   sb-<run>-n1 [eth0 10.73.0.11] ──veth── n1 ┐
//!   sb-<run>-n2 [eth0 10.73.0.12] ──veth── n2 ├─ br0 10.73.0.1   (sb-<run>-sw)
//!   sb-<run>-n3 [eth0 10.73.0.13] ──veth── n3 ┘
//! ```
//!
//! The addresses exist only inside these namespaces; the controller's own namespace gets no
//! interface, route or rule, so it cannot reach the nodes and nothing leaks to it. IPv6 is
//! disabled in every namespace so that a partition cannot be bypassed over v6. Clients run
//! in the switch namespace ([`Topology::client_runtime`]).
//!
//! A [`Topology`] is a guard: dropping it deletes the namespaces (which deletes the veths).

use crate::netns::{self, IpBatch, NetnsError};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// A run's id and the prefix of every name it makes: defined with the run records that
/// name them.
pub use crate::cleanup::{RunId, NAME_PREFIX};
/// The cluster subnet (a /24), private and used only inside the run's namespaces.
pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 73, 0, 0);
pub const PREFIX_LEN: u8 = 24;
/// The bridge's address in the switch namespace (the source of client traffic).
pub const SWITCH_IP: Ipv4Addr = Ipv4Addr::new(10, 73, 0, 1);
/// Node `i` (1-based) gets `10.73.0.(FIRST_NODE_HOST + i)`.
pub const FIRST_NODE_HOST: u8 = 10;
/// Largest cluster the /24 holds with this numbering.
pub const MAX_NODES: usize = 254 - FIRST_NODE_HOST as usize;
/// The bridge's name inside the switch namespace.
pub const BRIDGE: &str = "br0";
/// The node's interface name inside its namespace.
pub const NODE_IFACE: &str = "eth0";

/// Errors of building or tearing down a topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("a cluster needs 1 to {MAX_NODES} nodes, not {0}")]
    NodeCount(usize),
    #[error("network namespace {0} already exists (a leftover of a crashed run? try `splitbrain cleanup`)")]
    AlreadyExists(String),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("namespaces left after teardown: {0:?}")]
    Leftover(Vec<String>),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("recording what run {run} makes (in {dir}): {source}")]
    Record {
        run: String,
        dir: String,
        source: std::io::Error,
    },
}

/// The conventional name of node `i` (1-based).
pub fn node_name(i: usize) -> String {
    format!("n{i}")
}

/// The address of node `i` (1-based).
pub fn node_ip(i: usize) -> Ipv4Addr {
    let [a, b, c, _] = SUBNET.octets();
    Ipv4Addr::new(a, b, c, FIRST_NODE_HOST + i as u8)
}

/// One node's place in the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNet {
    /// `n1`, `n2`, ...
    pub name: String,
    /// 1-based.
    pub id: usize,
    pub netns: String,
    pub ip: Ipv4Addr,
}

/// The plain-data plan of a topology: every name and address, nothing applied yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyPlan {
    pub run: RunId,
    pub switch_netns: String,
    pub nodes: Vec<NodeNet>,
}

impl TopologyPlan {
    pub fn new(run: RunId, node_count: usize) -> Result<Self, TopologyError> {
        if node_count == 0 || node_count > MAX_NODES {
            return Err(TopologyError::NodeCount(node_count));
        }
        let nodes = (1..=node_count)
            .map(|id| {
                let name = node_name(id);
                NodeNet {
                    netns: run.node_netns(&name),
                    ip: node_ip(id),
                    name,
                    id,
                }
            })
            .collect();
        Ok(TopologyPlan {
            switch_netns: run.switch_netns(),
            nodes,
            run,
        })
    }

    /// Every namespace of the plan, switch first.
    pub fn all_netns(&self) -> Vec<String> {
        std::iter::once(self.switch_netns.clone())
            .chain(self.nodes.iter().map(|n| n.netns.clone()))
            .collect()
    }

    /// The `ip` batch run in the controller's namespace: it creates the namespaces, the
    /// bridge and the veth pairs straight inside them (no interface ever appears in the
    /// controller's namespace).
    pub fn create_batch(&self) -> IpBatch {
        let mut batch = IpBatch::new(None);
        for ns in self.all_netns() {
            batch.line(format!("netns add {ns}"));
        }
        batch.line(format!(
            "link add {BRIDGE} netns {} type bridge",
            self.switch_netns
        ));
        for node in &self.nodes {
            batch.line(format!(
                "link add {NODE_IFACE} netns {} type veth peer name {} netns {}",
                node.netns, node.name, self.switch_netns
            ));
        }
        batch
    }

    /// The per-namespace batches that address the interfaces and bring them up.
    pub fn configure_batches(&self) -> Vec<IpBatch> {
        let mut switch = IpBatch::new(Some(&self.switch_netns));
        switch.line("link set lo up");
        switch.line(format!("addr add {SWITCH_IP}/{PREFIX_LEN} dev {BRIDGE}"));
        switch.line(format!("link set {BRIDGE} up"));
        for node in &self.nodes {
            switch.line(format!("link set {} master {BRIDGE}", node.name));
            switch.line(format!("link set {} up", node.name));
        }
        let mut batches = vec![switch];
        for node in &self.nodes {
            let mut b = IpBatch::new(Some(&node.netns));
            b.line("link set lo up");
            b.line(format!(
                "addr add {}/{PREFIX_LEN} dev {NODE_IFACE}",
                node.ip
            ));
            b.line(format!("link set {NODE_IFACE} up"));
            batches.push(b);
        }
        batches
    }
}

/// A live cluster network. Dropping it tears it down (errors are printed, not returned); call
/// [`Topology::destroy`] to see them.
#[derive(Debug)]
pub struct Topology {
    plan: TopologyPlan,
    created_in: Duration,
    destroyed: bool,
}

impl Topology {
    /// Builds the network for `node_count` nodes (`n1..nN`). On failure, whatever was made
    /// is removed again.
    pub fn create(run: RunId, node_count: usize) -> Result<Self, TopologyError> {
        let started = Instant::now();
        let plan = TopologyPlan::new(run, node_count)?;
        if let Some(existing) = plan.all_netns().into_iter().find(|ns| netns::exists(ns)) {
            return Err(TopologyError::AlreadyExists(existing));
        }
        // Before anything is made: the run's record names what `cleanup` may remove.
        let resources: Vec<_> = plan
            .all_netns()
            .into_iter()
            .map(crate::cleanup::Resource::Netns)
            .collect();
        crate::cleanup::record(&plan.run, &resources).map_err(|source| TopologyError::Record {
            run: plan.run.to_string(),
            dir: crate::cleanup::state_dir().display().to_string(),
            source,
        })?;
        // From here on the guard removes partial state if a step fails.
        let mut topology = Topology {
            plan,
            created_in: Duration::ZERO,
            destroyed: false,
        };
        netns::ip_batch(&topology.plan.create_batch())?;
        // Before any link is up, so no v6 packet is ever sent: `all` also sets `default`.
        netns::set_sysctl(
            &topology.plan.all_netns(),
            "net.ipv6.conf.all.disable_ipv6",
            "1",
        )?;
        netns::ip_batches(&topology.plan.configure_batches())?;
        topology.created_in = started.elapsed();
        Ok(topology)
    }

    pub fn run(&self) -> &RunId {
        &self.plan.run
    }

    pub fn plan(&self) -> &TopologyPlan {
        &self.plan
    }

    pub fn nodes(&self) -> &[NodeNet] {
        &self.plan.nodes
    }

    /// The node called `name`, if any.
    pub fn node(&self, name: &str) -> Option<&NodeNet> {
        self.plan.nodes.iter().find(|n| n.name == name)
    }

    pub fn switch_netns(&self) -> &str {
        &self.plan.switch_netns
    }

    /// How long [`Topology::create`] took.
    pub fn created_in(&self) -> Duration {
        self.created_in
    }

    /// A tokio runtime for clients: all its threads live in the switch namespace. See
    /// [`netns::runtime_in`] for the one pitfall (`block_on` runs outside).
    pub fn client_runtime(
        &self,
        worker_threads: usize,
    ) -> Result<tokio::runtime::Runtime, NetnsError> {
        netns::runtime_in(&self.plan.switch_netns, worker_threads)
    }

    /// Applies `ip` batches, one per namespace, in parallel (the nemesis' fast path).
    pub fn apply(&self, batches: &[IpBatch]) -> Result<(), NetnsError> {
        netns::ip_batches(batches)
    }

    /// Deletes every namespace of the run, and the run's cgroup directory
    /// (`<cgroup2>/splitbrain/<run>`, killing anything still in it), then the run's record
    /// once nothing it names is left. Idempotent.
    pub fn destroy(&mut self) -> Result<(), TopologyError> {
        self.destroyed = true;
        let cgroups = match crate::cgroup::harness_root() {
            Ok(root) => crate::cgroup::remove_tree(&root.join(self.plan.run.as_str())).map(drop),
            // Without cgroup2 no node had a cgroup.
            Err(_) => Ok(()),
        };
        let names = self.plan.all_netns();
        let deleted = netns::delete(&names);
        let left: Vec<String> = names.into_iter().filter(|ns| netns::exists(ns)).collect();
        if !left.is_empty() {
            return Err(TopologyError::Leftover(left));
        }
        deleted?;
        cgroups?;
        crate::cleanup::forget_if_done(&self.plan.run);
        Ok(())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if !self.destroyed {
            if let Err(e) = self.destroy() {
                crate::stderr_line!(
                    "splitbrain: warning: tearing down the network of run {}: {e}",
                    self.plan.run
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_validated() {
        assert!(RunId::parse("a1b2c3").is_ok());
        assert!(RunId::parse("").is_err());
        assert!(RunId::parse("UPPER").is_err());
        assert!(RunId::parse("has-dash").is_err());
        assert!(RunId::parse("toolongtoolong").is_err());
        let random = RunId::random();
        assert_eq!(random.as_str().len(), 6);
        assert!(RunId::parse(random.as_str()).is_ok());
    }

    #[test]
    fn plan_names_and_addresses() {
        let plan = TopologyPlan::new(RunId::parse("abc123").unwrap(), 3).unwrap();
        assert_eq!(plan.switch_netns, "sb-abc123-sw");
        assert_eq!(plan.nodes[0].netns, "sb-abc123-n1");
        assert_eq!(plan.nodes[2].ip, Ipv4Addr::new(10, 73, 0, 13));
        assert_eq!(plan.all_netns().len(), 4);
        let create = plan.create_batch();
        assert!(create.netns.is_none());
        // Every link is created inside a named namespace, never in the controller's.
        assert!(create
            .lines
            .iter()
            .filter(|l| l.starts_with("link add"))
            .all(|l| l.contains(" netns sb-abc123-")));
        let configure = plan.configure_batches();
        assert_eq!(configure.len(), 4);
        assert!(configure.iter().all(|b| b.netns.is_some()));
        assert!(TopologyPlan::new(RunId::parse("x").unwrap(), 0).is_err());
        assert!(TopologyPlan::new(RunId::parse("x").unwrap(), MAX_NODES + 1).is_err());
    }
}
