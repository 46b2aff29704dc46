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
pub mod redis;
pub mod zookeeper;

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
}
