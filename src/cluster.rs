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
    /// Nodes on remote hosts over SSH ([`RemoteCluster`]).
    Remote(Box<RemoteCluster>),
}

/// A cluster whose nodes run on remote hosts, one node per host, driven over SSH
/// ([`crate::remote::hosts`]). Clients run on this machine and connect to the hosts'
/// addresses. Dropping it stops the nodes and removes the run's directories on the hosts.
pub struct RemoteCluster {
    pub system: Arc<dyn System>,
    pub spec: ClusterSpec,
    /// Declared before the hosts: nodes are stopped while the connections are open.
    pub nodes: Arc<Vec<crate::remote::RemoteNode>>,
    pub hosts: Arc<crate::remote::RemoteHosts>,
    /// The disk layers under the nodes (when the campaign has disk faults): stopped after
    /// the nodes.
    pub disks: crate::remote::disk::RemoteDisks,
    /// Polls the nodes for deaths nobody asked for (stopped first at the teardown).
    watcher: Option<DeathWatch>,
    pub nodes_ready_in: Duration,
    /// Where the nodes' logs are fetched to (`<run dir>/nodes/<node>/node.log`).
    run_dir: std::path::PathBuf,
    torn_down: bool,
}

impl RemoteCluster {
    /// Starts one node of `system` per host of `hosts` (each host named like its node),
    /// after recording, connecting, checking that every host has the programs `needs`
    /// names (with what needs each), and installing the system's program on each host;
    /// each launch gets `node_env` of its host and node directory. With `disk_layer`, each
    /// node's data directory is a disk layer on its host ([`crate::remote::disk`]), checked
    /// possible on every host before any node starts, started before its node. Waits until
    /// every node accepts connections at its readiness port, from this machine.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        system: Arc<dyn System>,
        hosts: &[crate::remote::HostSpec],
        ssh: &crate::remote::SshSpec,
        needs: &[(&str, &str)],
        disk_layer: bool,
        node_env: Option<RemoteNodeEnv<'_>>,
        run: &RunId,
        run_dir: &Path,
        ready_timeout: Duration,
        events: Option<crate::node::EventSender>,
    ) -> anyhow::Result<RemoteCluster> {
        let started = Instant::now();
        let root = crate::remote::hosts::run_root(ssh.run_parent(), run);
        let spec = ClusterSpec {
            nodes: hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    Ok(NodeSpec {
                        name: h.name.clone(),
                        id: i + 1,
                        ip: ipv4_of(&h.address)?,
                        data_dir: Path::new(&root).join(&h.name).join("data"),
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        };
        let remote = crate::remote::RemoteHosts::connect(run, hosts, ssh)?;
        // From here on, dropping the cluster (an error) removes whatever it made.
        let mut cluster = RemoteCluster {
            system,
            spec,
            nodes: Arc::new(Vec::new()),
            hosts: Arc::new(remote),
            disks: Default::default(),
            watcher: None,
            nodes_ready_in: Duration::ZERO,
            run_dir: run_dir.to_owned(),
            torn_down: false,
        };
        for (program, why) in needs {
            let missing = cluster.hosts.hosts_without(program)?;
            if !missing.is_empty() {
                anyhow::bail!(crate::remote::RemoteError::Host {
                    host: missing.join(", "),
                    what: match program.split_once('|') {
                        Some((a, b)) =>
                            format!("neither `{a}` nor `{b}` is on the host's PATH; {why} need one"),
                        None => format!("`{program}` is not on the host's PATH; {why} need it"),
                    },
                });
            }
        }
        // `tc` is needed for netem only: the kernel must have it too.
        if let Some((_, why)) = needs.iter().find(|(program, _)| *program == "tc") {
            let missing = cluster.hosts.hosts_without_netem()?;
            if !missing.is_empty() {
                anyhow::bail!(crate::remote::RemoteError::Host {
                    host: missing.join(", "),
                    what: format!("a netem qdisc cannot be added; {why} need it"),
                });
            }
        }
        if disk_layer {
            // One node per host, named like it.
            let nodes: Vec<(String, String)> = cluster
                .spec
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.name.clone()))
                .collect();
            cluster.disks = crate::remote::disk::RemoteDisks::install(&cluster.hosts, &nodes)?;
        }
        for node in &cluster.spec.nodes {
            let mut launch = cluster.system.launch(node, &cluster.spec)?;
            let crate::system::Readiness::TcpPort(ready_at) = cluster.system.readiness(node) else {
                anyhow::bail!(
                    "{}: on remote hosts a node's readiness is checked by a TCP connect, which this system does not offer",
                    cluster.system.name()
                );
            };
            let dir = cluster.hosts.make_node_dir(&node.name, &node.name)?;
            if let Some(node_env) = node_env {
                launch
                    .env
                    .extend(node_env(&cluster.hosts, &node.name, &dir)?);
            }
            let program = cluster
                .hosts
                .install_program(&node.name, &launch.program, &dir)?;
            let remote_node = crate::remote::RemoteNode::new(
                node.name.clone(),
                node.name.clone(),
                dir,
                program,
                launch.args,
                launch.env,
                ready_at,
            );
            cluster.disks.start(&cluster.hosts, &node.name)?;
            // In the cluster before it starts: a failed start is stopped like the rest.
            Arc::get_mut(&mut cluster.nodes)
                .expect("not shared before the nodes are up")
                .push(remote_node);
            cluster
                .nodes
                .last()
                .expect("pushed")
                .start(&cluster.hosts)?;
        }
        for node in cluster.nodes.iter() {
            node.wait_ready(&cluster.hosts, ready_timeout)?;
        }
        cluster.nodes_ready_in = started.elapsed();
        if let Some(events) = events {
            cluster.watcher = Some(DeathWatch::start(
                cluster.nodes.clone(),
                cluster.hosts.clone(),
                events,
            ));
        }
        Ok(cluster)
    }

    /// Stops every node, fetches the logs (`fetch_logs`), removes the run's directories
    /// from the hosts and, when all went well, the run's ownership record. The first error.
    fn teardown(&mut self, fetch_logs: bool) -> anyhow::Result<()> {
        if std::mem::replace(&mut self.torn_down, true) {
            return Ok(());
        }
        if let Some(watcher) = self.watcher.take() {
            watcher.stop();
        }
        let mut first_error = None;
        for node in self.nodes.iter() {
            if let Err(e) = node.stop(&self.hosts) {
                first_error.get_or_insert(anyhow::Error::from(e));
            }
        }
        // The layers after their nodes (a layer's log next to its node's).
        let logs = self.run_dir.join(crate::results::files::NODES);
        let logs = fetch_logs.then_some(logs.as_path());
        if let Err(e) = self.disks.stop_all(&self.hosts, logs) {
            first_error.get_or_insert(anyhow::Error::from(e));
        }
        if let Err(e) = self.hosts.heal_all() {
            first_error.get_or_insert(anyhow::Error::from(e));
        }
        if fetch_logs {
            for node in self.nodes.iter() {
                let local = self
                    .run_dir
                    .join(crate::results::files::NODES)
                    .join(&node.name);
                if let Err(e) = node.fetch_log(&self.hosts, &local) {
                    first_error.get_or_insert(anyhow::Error::from(e));
                }
            }
        }
        if let Err(e) = self.hosts.remove_run_dirs() {
            first_error.get_or_insert(anyhow::Error::from(e));
        }
        if first_error.is_none() {
            crate::cleanup::forget_if_done(self.hosts.run());
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// How often the death watch looks at each remote node (one command per host).
const DEATH_WATCH_PERIOD: Duration = Duration::from_secs(1);

/// A thread that polls each remote node's process over its host's shell and reports one
/// that died without the harness asking, as a local node's death is reported
/// ([`crate::node::NodeEventKind::Exited`], unexpected, with the tail of its log). Its exit
/// status is not knowable there: nothing of ours waits for it on the host.
struct DeathWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl DeathWatch {
    fn start(
        nodes: Arc<Vec<crate::remote::RemoteNode>>,
        hosts: Arc<crate::remote::RemoteHosts>,
        events: crate::node::EventSender,
    ) -> DeathWatch {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            while !flag.load(Ordering::SeqCst) {
                for node in nodes.iter() {
                    if flag.load(Ordering::SeqCst) {
                        return;
                    }
                    // A failed poll (a host unreachable for a moment) says nothing.
                    let Ok(Some(pid)) = node.died_unexpectedly(&hosts) else {
                        continue;
                    };
                    let report = crate::node::ExitReport {
                        node: node.name.clone(),
                        pid: pid as i32,
                        generation: node.generation(),
                        code: None,
                        signal: None,
                        expected: false,
                        stdout_tail: node.log_tail(&hosts, crate::node::LOG_TAIL_LINES),
                        stderr_tail: Vec::new(),
                    };
                    let _ = events.send(crate::node::NodeEvent {
                        at: Instant::now(),
                        kind: crate::node::NodeEventKind::Exited(report),
                    });
                }
                let until = Instant::now() + DEATH_WATCH_PERIOD;
                while Instant::now() < until && !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        DeathWatch { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

impl Drop for RemoteCluster {
    fn drop(&mut self) {
        if let Err(e) = self.teardown(false) {
            eprintln!("splitbrain: warning: tearing down the remote nodes: {e:#}");
        }
    }
}

/// A host's IPv4 address: the address itself, or the first IPv4 address its name resolves to.
fn ipv4_of(address: &str) -> anyhow::Result<std::net::Ipv4Addr> {
    use std::net::ToSocketAddrs;
    if let Ok(ip) = address.parse() {
        return Ok(ip);
    }
    (address, 0)
        .to_socket_addrs()
        .with_context(|| format!("resolving host address {address}"))?
        .find_map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        })
        .with_context(|| {
            format!("host address {address}: no IPv4 address (nodes are addressed by IPv4)")
        })
}

/// Extra environment for one node's launch, given the node's directory (which exists when
/// it is called): the clock's libfaketime preload and offset file, say. The caller decides
/// what a node needs; the cluster only adds it to every launch.
pub type NodeEnv<'a> = &'a dyn Fn(&Path) -> anyhow::Result<Vec<(String, String)>>;

/// [`NodeEnv`] for a node on a remote host: given the hosts, the host and the node's
/// directory there (which exists when it is called).
pub type RemoteNodeEnv<'a> =
    &'a dyn Fn(&crate::remote::RemoteHosts, &str, &str) -> anyhow::Result<Vec<(String, String)>>;

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
            Deployment::Remote(c) => c.spec.nodes.iter().map(|n| n.name.clone()).collect(),
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
            Deployment::Remote(c) => {
                let node = &c.spec.nodes[index % c.spec.nodes.len()];
                Ok((Some(node.name.clone()), c.system.client(node, &c.spec)?))
            }
        }
    }

    /// A runtime for clients: inside the switch namespace for a real cluster; in this
    /// process's own network for remote hosts.
    pub fn client_runtime(&self, threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
        match self {
            Deployment::InMemory(_) | Deployment::Remote(_) => {
                Ok(tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .enable_all()
                    .thread_name("client")
                    .build()?)
            }
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
            Deployment::Remote(mut c) => c.teardown(true),
        }
    }
}
