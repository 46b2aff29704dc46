//! A deployed system: the network, the supervised node processes, and how to open clients.
//!
//! [`Deployment::start`] builds one of two things: an in-process store (no privileges), or
//! a real cluster — a [`Topology`] of namespaces and one [`Node`] per namespace running the
//! system's command line. Dropping a deployment kills every node and removes the network,
//! which is what makes Ctrl-C, errors and panics leave nothing behind.

use crate::campaign::{Campaign, SystemSpec};
use crate::node::{EventSender, Node, NodeConfig};
use crate::system::in_memory::InMemory;
use crate::system::{Client, ClusterSpec, NodeSpec, System};
use crate::topology::{RunId, Topology};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a node may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A real cluster of processes in namespaces.
pub struct Cluster {
    pub system: Arc<dyn System>,
    pub spec: ClusterSpec,
    /// Declared before the topology: nodes are killed before their namespaces go.
    pub nodes: Vec<Node>,
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

/// Builds the [`System`] a campaign names.
pub fn system_for(spec: &SystemSpec) -> anyhow::Result<Arc<dyn System>> {
    Ok(match spec {
        SystemSpec::Etcd(e) => {
            let mut etcd = crate::system::etcd::EtcdSystem::default();
            if let Some(binary) = &e.binary {
                etcd.binary = binary.clone();
            }
            etcd.client_options.serializable_reads = e.serializable_reads;
            Arc::new(etcd)
        }
        SystemSpec::Zookeeper(z) => {
            let mut zookeeper = crate::system::zookeeper::ZooKeeperSystem::default();
            zookeeper.java = z.java.clone().unwrap_or(zookeeper.java);
            zookeeper.jar = z.jar.clone().unwrap_or(zookeeper.jar);
            zookeeper.client_options.sync_reads = z.sync_reads;
            Arc::new(zookeeper)
        }
        SystemSpec::Redis(r) => {
            let mut redis = crate::system::redis::RedisSystem::default();
            redis.client_options.replica_reads = r.replica_reads;
            redis.client_options.wait =
                r.wait.as_ref().map(|w| crate::system::redis::WaitOptions {
                    replicas: w.replicas as u32,
                    timeout: Duration::from_millis(w.timeout_ms),
                });
            Arc::new(redis)
        }
        SystemSpec::Clusterkv(c) => {
            let mut kv = crate::system::clusterkv::ClusterKv::new(c.arch);
            let o = &mut kv.options;
            o.replication = c.replication.unwrap_or(o.replication);
            o.n = c.n.unwrap_or(o.n);
            o.r = c.r.unwrap_or(o.r);
            o.w = c.w.unwrap_or(o.w);
            o.heartbeat = c.heartbeat.unwrap_or(o.heartbeat);
            o.election_timeout = c.election_timeout.unwrap_or(o.election_timeout);
            Arc::new(kv)
        }
        SystemSpec::Command(c) => Arc::new(crate::system::command::CommandSystem::new(c.clone())?),
        SystemSpec::InMemory(_) => anyhow::bail!("the in-memory system has no nodes"),
    })
}

impl Deployment {
    /// Starts what `campaign` describes; node directories go under `run_dir/nodes/<node>/`.
    pub fn start(
        campaign: &Campaign,
        run: &RunId,
        run_dir: &Path,
        events: Option<EventSender>,
    ) -> anyhow::Result<Deployment> {
        if !campaign.system.needs_cluster() {
            return Ok(Deployment::InMemory(InMemory::new()));
        }
        let system = system_for(&campaign.system)?;
        let started = Instant::now();
        let topology = Topology::create(run.clone(), campaign.nodes)
            .context("creating the cluster network")?;
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
                    data_dir: run_dir.join("nodes").join(&n.name).join("data"),
                })
                .collect(),
        };
        let mut cluster = Cluster {
            system,
            spec,
            nodes: Vec::new(),
            topology,
            network_ready_in,
            nodes_ready_in: Duration::ZERO,
        };
        for node in &cluster.spec.nodes {
            let mut launch = cluster.system.launch(node, &cluster.spec)?;
            let log_dir = run_dir.join("nodes").join(&node.name);
            if campaign.nemesis.needs_clock() {
                // libfaketime is preloaded from the first start, so clock faults can move
                // the node's clock later by rewriting its offset file.
                crate::results::create_dirs(&log_dir)
                    .with_context(|| format!("creating {}", log_dir.display()))?;
                launch.env.extend(crate::nemesis::clock_env(&log_dir)?);
            }
            crate::results::create_dirs(&node.data_dir)
                .with_context(|| format!("creating {}", node.data_dir.display()))?;
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
            node.wait_ready(READY_TIMEOUT)?;
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
                if let Err(e) = c.topology.destroy() {
                    first_error.get_or_insert(anyhow::Error::from(e));
                }
                first_error.map_or(Ok(()), Err)
            }
        }
    }
}
