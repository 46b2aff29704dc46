//! The systems under test: how to run a system's nodes and how to talk to them.
//!
//! A [`System`] turns a node's place in the cluster (name, address, peers, data directory)
//! into a command line, says how to tell that the node is ready, and opens clients. Clients
//! speak the harness's small operation vocabulary ([`Request`] → [`Outcome`]); each system
//! maps it onto its own protocol.

pub mod clusterkv;
pub mod command;
pub mod etcd;
pub mod in_memory;
pub mod postgres;
pub mod redis;
pub mod roles;
pub mod spec;
pub mod txn;
pub mod zookeeper;

pub use roles::{NodeStatus, RoleQuery};
pub use spec::SystemSpec;

use splitbrain_checkers::Value;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// One node of a cluster, as the harness laid it out.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Short name, e.g. `n1`.
    pub name: String,
    /// 1-based position in the cluster.
    pub id: usize,
    /// The node's address on the cluster bridge.
    pub ip: Ipv4Addr,
    /// The node's own data directory (kept across restarts).
    pub data_dir: PathBuf,
}

/// The whole cluster, so a node can name its peers.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub nodes: Vec<NodeSpec>,
}

/// How to start one node: a program and its argv (never through a shell).
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// How to tell that a node is ready to serve.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// A TCP connect to this address succeeds (from inside the cluster network).
    TcpPort(SocketAddr),
    /// This command, run inside the node's namespace, exits 0.
    Command(LaunchSpec),
    /// The `command` system's client program, bound to the node and run where clients
    /// run, answers `ok` to a read.
    ClientRead(command::ClientReadProbe),
}

/// The operations a client can be asked to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Read,
    Write,
    Cas,
    /// Add an element to a set.
    Add,
    /// Read the whole set.
    ReadSet,
    /// A transaction: the value is its micro-operations (see [`txn::MicroOp`]).
    Txn,
}

impl Function {
    /// The `f` recorded in the history.
    pub fn name(self) -> &'static str {
        match self {
            Function::Read => "read",
            Function::Write => "write",
            Function::Cas => "cas",
            Function::Add => "add",
            Function::ReadSet => "read",
            Function::Txn => "txn",
        }
    }
}

/// One operation to perform. `value` is the write's value, the cas's `[expected new]`, the
/// added element, or nil for reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub f: Function,
    pub key: Value,
    pub value: Value,
    /// Give up after this long; a write or cas that gives up is indeterminate.
    pub timeout: Duration,
}

/// What happened, in Jepsen's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Took effect; the value read (reads) or written (writes, cas, add).
    Ok(Value),
    /// Certainly did not take effect (e.g. a cas whose compare failed, a refused request).
    Fail(String),
    /// May or may not have taken effect (timeout, connection cut mid-request).
    Info(String),
}

/// A boxed future, so clients can live behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connection to one node. Clients never retry a non-idempotent request on their own.
pub trait Client: Send {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome>;
}

/// How to run a system's nodes and talk to them.
pub trait System: Send + Sync {
    /// Short name for tables and paths (`etcd`, `raft`, ...).
    fn name(&self) -> &str;
    /// The version of the system's binary, recorded with each run.
    fn version(&self) -> anyhow::Result<String>;
    /// The command line that starts `node` in `cluster`.
    fn launch(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec>;
    /// How to tell that `node` is ready.
    fn readiness(&self, node: &NodeSpec) -> Readiness;
    /// A client bound to `node`. Called on the client runtime (inside the cluster network).
    fn client(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<Box<dyn Client>>;
    /// How to ask a node of `cluster` who leads (at its [`System::role_address`]); `None` when the
    /// system cannot say (faults aimed at the leader then hit a random node).
    fn role_query(&self, cluster: &ClusterSpec) -> Option<std::sync::Arc<dyn RoleQuery>>;
    /// Where `node` answers role queries: by default its [`Readiness::TcpPort`] address
    /// (`None`: the node is not asked).
    fn role_address(&self, node: &NodeSpec) -> Option<SocketAddr> {
        match self.readiness(node) {
            Readiness::TcpPort(addr) => Some(addr),
            Readiness::Command(_) | Readiness::ClientRead(_) => None,
        }
    }
}

/// Builds the [`System`] a campaign names: the one place systems are made from a campaign
/// (a run builds it once and hands `&dyn System` to whatever needs it). The in-memory
/// system has no nodes and so no [`System`]: an error.
pub fn system_for(spec: &SystemSpec) -> anyhow::Result<Box<dyn System>> {
    Ok(match spec {
        SystemSpec::Etcd(e) => {
            let mut etcd = etcd::EtcdSystem::default();
            if let Some(binary) = &e.binary {
                etcd.binary = binary.clone();
            }
            etcd.client_options.serializable_reads = e.serializable_reads;
            Box::new(etcd)
        }
        SystemSpec::Clusterkv(c) => {
            let mut kv = clusterkv::ClusterKv::new(c.arch);
            let o = &mut kv.options;
            o.replication = c.replication.unwrap_or(o.replication);
            o.bug = c.bug;
            o.n = c.n.unwrap_or(o.n);
            o.r = c.r.unwrap_or(o.r);
            o.w = c.w.unwrap_or(o.w);
            o.heartbeat = c.heartbeat.unwrap_or(o.heartbeat);
            o.election_timeout = c.election_timeout.unwrap_or(o.election_timeout);
            Box::new(kv)
        }
        SystemSpec::Command(c) => Box::new(command::CommandSystem::new(c.clone())?),
        SystemSpec::Postgres(p) => Box::new(postgres::PostgresSystem::new(p.clone())),
        SystemSpec::Zookeeper(z) => {
            let mut zookeeper = zookeeper::ZooKeeperSystem::default();
            zookeeper.java = z.java.clone().unwrap_or(zookeeper.java);
            zookeeper.jar = z.jar.clone().unwrap_or(zookeeper.jar);
            zookeeper.client_options.sync_reads = z.sync_reads;
            Box::new(zookeeper)
        }
        SystemSpec::Redis(r) => {
            let mut redis = redis::RedisSystem::default();
            redis.client_options.replica_reads = r.replica_reads;
            redis.client_options.wait = r.wait.as_ref().map(|w| redis::WaitOptions {
                replicas: w.replicas as u32,
                timeout: Duration::from_millis(w.timeout_ms),
            });
            Box::new(redis)
        }
        SystemSpec::InMemory(_) => anyhow::bail!("the in-memory system has no nodes"),
    })
}

/// `n` nodes `n1`, `n2`, … at 10.77.0.2, 10.77.0.3, …, data directories `root/n1`, … (the
/// systems' unit tests).
#[cfg(test)]
pub(crate) fn test_cluster(n: usize, root: &std::path::Path) -> ClusterSpec {
    ClusterSpec {
        nodes: (1..=n)
            .map(|id| NodeSpec {
                name: format!("n{id}"),
                id,
                ip: Ipv4Addr::new(10, 77, 0, id as u8 + 1),
                data_dir: root.join(format!("n{id}")),
            })
            .collect(),
    }
}
