//! A deployed system: the network, the supervised node processes, and how to open clients.
//!
//! A deployment is one of two things: an in-process store ([`Deployment::in_memory`], no
//! privileges), or a real cluster ([`Deployment::start`]) — a [`Topology`] of namespaces
//! and one [`Node`] per namespace running the system's command line. Dropping a deployment
//! kills every node and removes the network, which is what makes Ctrl-C, errors and panics
//! leave nothing behind.
//!
//! The caller hands in the system and whatever each node's launch needs beyond the
//! system's own command line ([`NodeEnv`]): the cluster knows neither campaigns nor faults.

use crate::cleanup::Resource;
use crate::node::{EventSender, Node, NodeConfig};
use crate::system::in_memory::InMemory;
use crate::system::{Client, ClusterSpec, NodeSpec, System};
use crate::topology::{RunId, Topology};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A real cluster of processes in namespaces.
pub struct Cluster {
    pub system: Arc<dyn System>,
    pub spec: ClusterSpec,
    /// Declared before the topology: nodes are killed before their namespaces go.
    pub nodes: Vec<Node>,
    /// The disk layers mounted as the nodes' data directories (when the campaign has disk
    /// faults); after the nodes, so they are unmounted once the nodes are gone.
    pub disks: crate::disk::NodeDisks,
    pub topology: Topology,
    /// How long creating the network took, and how long until every node was ready.
    pub network_ready_in: Duration,
    pub nodes_ready_in: Duration,
}

/// What the runner drives.
pub enum Deployment {
    InMemory(InMemory),
    Cluster(Cluster),
}

/// Extra environment for one node's launch, given the node's directory (which exists when
/// it is called): the clock's libfaketime preload and offset file, say. The caller decides
/// what a node needs; the cluster only adds it to every launch.
pub type NodeEnv<'a> = &'a dyn Fn(&Path) -> anyhow::Result<Vec<(String, String)>>;

impl Deployment {
    /// The in-process store: nothing to start.
    pub fn in_memory() -> Deployment {
        Deployment::InMemory(InMemory::new())
    }

    /// Starts `nodes` nodes of `system` on a fresh network; node directories go under
    /// `run_dir/nodes/<node>/`, and each launch gets `node_env` of its node's directory.
    /// With `disk_layer`, each node's data directory is a lazy disk layer (`crate::disk`),
    /// for disk faults. Each node may take `ready_timeout` to pass its readiness check; one
    /// that exits before is an error at once.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        system: Arc<dyn System>,
        nodes: usize,
        run: &RunId,
        run_dir: &Path,
        node_env: Option<NodeEnv<'_>>,
        disk_layer: bool,
        events: Option<EventSender>,
        ready_timeout: Duration,
    ) -> anyhow::Result<Deployment> {
        let started = Instant::now();
        let topology =
            Topology::create(run.clone(), nodes).context("creating the cluster network")?;
        let network_ready_in = started.elapsed();
        let spec = ClusterSpec {
            nodes: topology
                .nodes()
                .iter()
                .enumerate()
                .map(|(i, n)| NodeSpec {
                    name: n.name.clone(),
                    id: i + 1,
                    ip: n.ip,
                    data_dir: run_dir
                        .join(crate::results::files::NODES)
                        .join(&n.name)
                        .join("data"),
                })
                .collect(),
        };
        let mut cluster = Cluster {
            system,
            spec,
            nodes: Vec::new(),
            disks: crate::disk::NodeDisks::default(),
            topology,
            network_ready_in,
            nodes_ready_in: Duration::ZERO,
        };
        for node in &cluster.spec.nodes {
            crate::results::create_dirs(&node.data_dir)
                .with_context(|| format!("creating {}", node.data_dir.display()))?;
            // The layer first: what the launch writes into the data directory (a
            // configuration, an `initdb`) must be on the node's disk, not hidden under it.
            if disk_layer {
                cluster
                    .disks
                    .mount_node(&node.name, &node.data_dir, |mount| {
                        crate::cleanup::record(run, &[Resource::Mount(mount.to_owned())])
                    })
                    .with_context(|| format!("mounting the disk layer of {}", node.name))?;
            }
            let mut launch = cluster.system.launch(node, &cluster.spec)?;
            // What the harness installed before the node's first start is durable, as a
            // real machine's configuration would be: no power loss takes it back.
            if let Some(layer) = cluster.disks.get(&node.name) {
                layer.sync_all().with_context(|| {
                    format!("syncing what the launch of {} wrote to its disk", node.name)
                })?;
            }
            let log_dir = run_dir.join(crate::results::files::NODES).join(&node.name);
            if let Some(node_env) = node_env {
                crate::results::create_dirs(&log_dir)
                    .with_context(|| format!("creating {}", log_dir.display()))?;
                launch.env.extend(node_env(&log_dir)?);
            }
            let config = NodeConfig::for_topology(
                &cluster.topology,
                &node.name,
                launch,
                cluster.system.readiness(node),
                node.data_dir.clone(),
                log_dir,
            )
            .with_context(|| format!("node {} is not in the topology", node.name))?;
            cluster.nodes.push(Node::start(config, events.clone())?);
        }
        // Nodes of a cluster often wait for each other; check readiness after all started.
        for node in &cluster.nodes {
            node.wait_ready(ready_timeout).map_err(|e| match e {
                crate::node::NodeError::NotReady { .. } => anyhow::Error::from(e).context(format!(
                    "startup.ready_timeout ({}) ran out",
                    humantime::format_duration(ready_timeout)
                )),
                other => other.into(),
            })?;
        }
        cluster.nodes_ready_in = started.elapsed();
        Ok(Deployment::Cluster(cluster))
    }

    /// Node names, in order (empty for the in-memory system).
    pub fn node_names(&self) -> Vec<String> {
        match self {
            Deployment::InMemory(_) => Vec::new(),
            Deployment::Cluster(c) => c.spec.nodes.iter().map(|n| n.name.clone()).collect(),
        }
    }

    /// A client bound to node `index % nodes`. Call it on the client runtime: the
    /// connection must originate inside the cluster network.
    pub fn client(&self, index: usize) -> anyhow::Result<(Option<String>, Box<dyn Client>)> {
        match self {
            Deployment::InMemory(store) => Ok((None, store.client())),
            Deployment::Cluster(c) => {
                let node = &c.spec.nodes[index % c.spec.nodes.len()];
                Ok((Some(node.name.clone()), c.system.client(node, &c.spec)?))
            }
        }
    }

    /// A runtime for clients: inside the switch namespace for a real cluster.
    pub fn client_runtime(&self, threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
        match self {
            Deployment::InMemory(_) => Ok(tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .thread_name("client")
                .build()?),
            Deployment::Cluster(c) => Ok(c.topology.client_runtime(threads)?),
        }
    }

    /// Stops every node and removes the network, reporting the first error.
    pub fn shutdown(self) -> anyhow::Result<()> {
        match self {
            Deployment::InMemory(_) => Ok(()),
            Deployment::Cluster(mut c) => {
                let mut first_error = None;
                for node in &mut c.nodes {
                    if let Err(e) = node.shutdown() {
                        first_error.get_or_insert(anyhow::Error::from(e));
                    }
                }
                c.nodes.clear();
                if let Err(e) = c.disks.unmount_all() {
                    first_error.get_or_insert(anyhow::Error::from(e));
                }
                if let Err(e) = c.topology.destroy() {
                    first_error.get_or_insert(anyhow::Error::from(e));
                }
                first_error.map_or(Ok(()), Err)
            }
        }
    }
}
