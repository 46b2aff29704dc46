//! The shipped cluster architectures (`clusterkv`, in the `clusters/` crate) as systems
//! under test, and a client for their JSON-lines protocol.
//!
//! # Nodes
//!
//! One `clusterkv` process per node, one port for clients and peers (7400 unless
//! overridden). Members are named `n<id>` after the node's 1-based position, which is
//! also how `clusterkv` orders them (primary-backup starts with the lowest id as primary).
//!
//! # Client
//!
//! One connection per client, opened on first use (so on the client runtime, inside the
//! cluster network) and re-opened after any error. One request line, one reply line, under
//! the request's timeout. Outcomes:
//! * `ok:true` → `ok` (reads: the value read; writes, cas, add: the value written);
//! * `ok:false, definite:true` → `fail` (the operation certainly had no effect);
//! * `definite:false`, a timeout, a cut connection or an unreadable reply → `info` for
//!   write, cas and add, `fail` for reads (a read has no effect);
//! * a connection that could not be opened → `fail` (nothing was sent).
//!
//! The binary is found through `SPLITBRAIN_CLUSTERKV`, else next to the running
//! executable (the same cargo target directory), else in `PATH`.

use super::roles::{NodeStatus, RoleQuery};
use super::{
    BoxFuture, Client, ClusterSpec, Function, LaunchSpec, NodeSpec, Outcome, Readiness, Request,
    System,
};
use clusterkv_protocol::{ClientRequest, Response};
use serde::Deserialize;
use serde_json::Value as Json;
use splitbrain_checkers::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// The environment variable that names the `clusterkv` binary.
pub const BINARY_ENV: &str = "SPLITBRAIN_CLUSTERKV";

/// The port every node listens on unless overridden.
pub const DEFAULT_PORT: u16 = 7400;

#[derive(Debug, thiserror::Error)]
pub enum ClusterKvError {
    #[error("cannot run `{binary} --version`: {source}")]
    VersionSpawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("`{binary} --version` printed nothing recognisable: {output:?}")]
    VersionParse { binary: String, output: String },
    #[error("node {0} is not part of the cluster it is launched in")]
    NodeNotInCluster(String),
}

/// The architectures and primary-backup's replication modes, defined with the protocol
/// the nodes serve.
pub use clusterkv_protocol::{Arch, Bug, Replication};

/// Node options passed on every node's command line.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterKvOptions {
    pub replication: Replication,
    /// A seeded bug of the bug zoo (`--bug`), a variant of the architecture.
    pub bug: Option<Bug>,
    /// dynamo: replicas per key, read and write quorums.
    pub n: usize,
    pub r: usize,
    pub w: usize,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    /// How long a node works on one request before answering with an error.
    pub request_timeout: Duration,
}

impl Default for ClusterKvOptions {
    fn default() -> Self {
        ClusterKvOptions {
            replication: Replication::Async,
            bug: None,
            n: 3,
            r: 2,
            w: 2,
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// `clusterkv` running one architecture.
#[derive(Debug, Clone)]
pub struct ClusterKv {
    pub arch: Arch,
    pub options: ClusterKvOptions,
    pub binary: PathBuf,
    pub port: u16,
    /// Per-node port overrides by node name (several nodes on one address, e.g. loopback).
    pub node_ports: BTreeMap<String, u16>,
}

impl ClusterKv {
    /// `arch` with default options and the binary found by [`locate_binary`].
    pub fn new(arch: Arch) -> Self {
        ClusterKv {
            arch,
            options: ClusterKvOptions::default(),
            binary: locate_binary(),
            port: DEFAULT_PORT,
            node_ports: BTreeMap::new(),
        }
    }

    pub fn with_node_port(mut self, node_name: &str, port: u16) -> Self {
        self.node_ports.insert(node_name.to_owned(), port);
        self
    }

    /// Where `node` listens for clients and peers.
    pub fn addr(&self, node: &NodeSpec) -> SocketAddr {
        let port = self
            .node_ports
            .get(&node.name)
            .copied()
            .unwrap_or(self.port);
        SocketAddr::new(node.ip.into(), port)
    }
}

/// `$SPLITBRAIN_CLUSTERKV`, else `clusterkv` beside the running executable (or beside
/// its parent directory, for test binaries in `target/<profile>/deps`), else `clusterkv`
/// from `PATH`.
pub fn locate_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        return PathBuf::from(path);
    }
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        let candidates = [Some(dir), dir.parent()];
        candidates
            .into_iter()
            .flatten()
            .map(|d| d.join("clusterkv"))
            .find(|candidate| candidate.is_file())
    });
    beside.unwrap_or_else(|| PathBuf::from("clusterkv"))
}

fn member_name(node: &NodeSpec) -> String {
    format!("n{}", node.id)
}

impl System for ClusterKv {
    fn name(&self) -> &str {
        match self.options.bug {
            Some(bug) => bug.variant_name(),
            None => self.arch.name(),
        }
    }

    fn role_query(&self, _cluster: &ClusterSpec) -> Option<std::sync::Arc<dyn RoleQuery>> {
        Some(std::sync::Arc::new(ClusterKvRoles))
    }

    fn version(&self) -> anyhow::Result<String> {
        let binary = self.binary.display().to_string();
        let output = std::process::Command::new(&self.binary)
            .arg("--version")
            .output()
            .map_err(|source| ClusterKvError::VersionSpawn {
                binary: binary.clone(),
                source,
            })?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() || !text.starts_with("clusterkv ") {
            return Err(ClusterKvError::VersionParse {
                binary,
                output: text,
            }
            .into());
        }
        Ok(format!("{text} ({})", self.name()))
    }

    fn launch(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        if !cluster.nodes.iter().any(|n| n.name == node.name) {
            return Err(ClusterKvError::NodeNotInCluster(node.name.clone()).into());
        }
        let peers = cluster
            .nodes
            .iter()
            .map(|n| format!("{}={}", member_name(n), self.addr(n)))
            .collect::<Vec<_>>()
            .join(",");
        let options = &self.options;
        let flag = |name: &str, value: String| [format!("--{name}"), value];
        let millis = |d: Duration| format!("{}ms", d.as_millis());
        let replication = match options.replication {
            Replication::Async => "async",
            Replication::Sync => "sync",
        };
        let args = [
            flag("arch", self.arch.name().to_owned()),
            flag("id", node.id.to_string()),
            flag("listen", self.addr(node).to_string()),
            flag("peers", peers),
            // Absolute: the node runs in its data directory, so a relative path would nest.
            flag(
                "data-dir",
                std::path::absolute(&node.data_dir)
                    .unwrap_or_else(|_| node.data_dir.clone())
                    .display()
                    .to_string(),
            ),
            flag("replication", replication.to_owned()),
            flag("n", options.n.to_string()),
            flag("r", options.r.to_string()),
            flag("w", options.w.to_string()),
            flag("heartbeat", millis(options.heartbeat)),
            flag("election-timeout", millis(options.election_timeout)),
            flag("request-timeout", millis(options.request_timeout)),
        ]
        .into_iter()
        .flatten()
        .chain(
            options
                .bug
                .into_iter()
                .flat_map(|bug| flag("bug", bug.name().to_owned())),
        )
        .collect();
        Ok(LaunchSpec {
            program: self.binary.clone(),
            args,
            env: Vec::new(),
        })
    }

    fn readiness(&self, node: &NodeSpec) -> Readiness {
        Readiness::TcpPort(self.addr(node))
    }

    fn client(&self, node: &NodeSpec, _cluster: &ClusterSpec) -> anyhow::Result<Box<dyn Client>> {
        Ok(Box::new(ClusterKvClient::new(self.addr(node))))
    }
}

/// Why an exchange with a node failed.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    /// Nothing was sent.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect: timed out")]
    ConnectTimeout,
    /// The request may have been delivered.
    #[error("timed out")]
    Timeout,
    #[error("connection: {0}")]
    Io(std::io::Error),
    #[error("connection closed by the node")]
    Closed,
    #[error("unreadable reply: {0}")]
    BadReply(String),
}

impl ExchangeError {
    fn nothing_sent(&self) -> bool {
        matches!(
            self,
            ExchangeError::Connect(_) | ExchangeError::ConnectTimeout
        )
    }
}

struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Connection {
    async fn open(addr: SocketAddr, deadline: Instant) -> Result<Connection, ExchangeError> {
        let stream = timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| ExchangeError::ConnectTimeout)?
            .map_err(ExchangeError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (read, writer) = stream.into_split();
        Ok(Connection {
            reader: BufReader::new(read),
            writer,
        })
    }

    async fn exchange(&mut self, request: &Json, deadline: Instant) -> Result<Json, ExchangeError> {
        let mut line =
            serde_json::to_vec(request).map_err(|e| ExchangeError::BadReply(e.to_string()))?;
        line.push(b'\n');
        let work = async {
            self.writer
                .write_all(&line)
                .await
                .map_err(ExchangeError::Io)?;
            let mut reply = String::new();
            if self
                .reader
                .read_line(&mut reply)
                .await
                .map_err(ExchangeError::Io)?
                == 0
            {
                return Err(ExchangeError::Closed);
            }
            serde_json::from_str(&reply)
                .map_err(|e| ExchangeError::BadReply(format!("{e}: {}", reply.trim())))
        };
        timeout_at(deadline, work)
            .await
            .map_err(|_| ExchangeError::Timeout)?
    }
}

/// A client bound to one node.
pub struct ClusterKvClient {
    addr: SocketAddr,
    connection: Option<Connection>,
}

impl ClusterKvClient {
    pub fn new(addr: SocketAddr) -> Self {
        ClusterKvClient {
            addr,
            connection: None,
        }
    }

    async fn perform(&mut self, request: &Request) -> Outcome {
        let is_read = matches!(request.f, Function::Read | Function::ReadSet);
        let message = match encode(request) {
            Ok(message) => message,
            Err(error) => return Outcome::Fail(error),
        };
        let deadline = Instant::now() + request.timeout;
        let result = async {
            if self.connection.is_none() {
                self.connection = Some(Connection::open(self.addr, deadline).await?);
            }
            let connection = self.connection.as_mut().ok_or(ExchangeError::Closed)?;
            connection.exchange(&message, deadline).await
        }
        .await;
        let reply = match result {
            Ok(reply) => reply,
            Err(error) => {
                // The connection's state is unknown (a late reply could arrive on it).
                self.connection = None;
                let text = error.to_string();
                return if is_read || error.nothing_sent() {
                    Outcome::Fail(text)
                } else {
                    Outcome::Info(text)
                };
            }
        };
        decode(request, &reply)
    }
}

impl Client for ClusterKvClient {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(self.perform(request))
    }
}

/// The protocol's key: strings as they are, anything else in its printed form.
fn key_text(key: &Value) -> String {
    match key {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn to_json(value: &Value) -> Result<Json, String> {
    serde_json::to_value(value).map_err(|e| format!("cannot encode {value}: {e}"))
}

/// The protocol line for `request`.
fn encode(request: &Request) -> Result<Json, String> {
    let key = key_text(&request.key);
    let line = match request.f {
        Function::Read => ClientRequest::Read { key },
        Function::ReadSet => ClientRequest::ReadSet { key },
        Function::Txn => return Err("clusterkv runs no transactions".into()),
        Function::Write => ClientRequest::Write {
            key,
            value: to_json(&request.value)?,
        },
        Function::Add => ClientRequest::Add {
            key,
            element: to_json(&request.value)?,
        },
        Function::Cas => {
            let [from, to] = request
                .value
                .as_list()
                .and_then(|pair| <&[Value; 2]>::try_from(pair).ok())
                .ok_or_else(|| format!("cas needs [expected new], got {}", request.value))?;
            ClientRequest::Cas {
                key,
                from: to_json(from)?,
                to: to_json(to)?,
            }
        }
    };
    serde_json::to_value(&line).map_err(|e| format!("cannot encode {line:?}: {e}"))
}

/// The outcome a reply line means.
fn decode(request: &Request, reply: &Json) -> Outcome {
    let is_read = matches!(request.f, Function::Read | Function::ReadSet);
    let reply = match Response::deserialize(reply) {
        Ok(reply) => reply,
        // May have been applied: the node answered something, but not what it means.
        Err(e) if is_read => return Outcome::Fail(format!("unreadable reply: {e}")),
        Err(e) => return Outcome::Info(format!("unreadable reply: {e}")),
    };
    if reply.ok {
        if !is_read {
            return Outcome::Ok(request.value.clone());
        }
        return match Value::deserialize(reply.value.unwrap_or(Json::Null)) {
            Ok(value) => Outcome::Ok(value),
            Err(e) => Outcome::Fail(format!("unreadable value: {e}")),
        };
    }
    let error = reply
        .error
        .unwrap_or_else(|| "error without a reason".to_owned());
    if reply.definite == Some(true) || is_read {
        Outcome::Fail(error)
    } else {
        Outcome::Info(error)
    }
}

/// Who leads, per clusterkv: the `{"op":"status"}` request of its JSON-lines protocol; a
/// node whose role is `leader` (raft) or `primary` (primary-backup) leads.
pub struct ClusterKvRoles;

#[derive(Deserialize)]
struct StatusReply {
    ok: bool,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    term: Option<u64>,
    #[serde(default)]
    time_ms: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

impl RoleQuery for ClusterKvRoles {
    fn system(&self) -> &str {
        "clusterkv"
    }

    fn status(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"{\"op\":\"status\"}\n")
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        std::io::BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let status: StatusReply =
            serde_json::from_str(&line).map_err(|e| format!("unreadable status {line:?}: {e}"))?;
        if !status.ok {
            return Err(status.error.unwrap_or_else(|| "status refused".to_owned()));
        }
        Ok(NodeStatus {
            node: node.to_owned(),
            is_leader: status
                .role
                .as_deref()
                .is_some_and(|r| r == "leader" || r == "primary"),
            term: status.term.unwrap_or(0),
            time_ms: status.time_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::Ipv4Addr;
    use tokio::net::TcpListener;

    fn node(id: usize) -> NodeSpec {
        NodeSpec {
            name: format!("n{id}"),
            id,
            ip: Ipv4Addr::new(10, 77, 0, id as u8 + 1),
            data_dir: PathBuf::from(format!("/data/n{id}")),
        }
    }

    fn request(f: Function, value: Value) -> Request {
        Request {
            f,
            key: Value::Int(3),
            value,
            timeout: Duration::from_millis(300),
        }
    }

    #[test]
    fn launch_names_every_member_and_passes_the_options() {
        let cluster = ClusterSpec {
            nodes: (1..=3).map(node).collect(),
        };
        let mut system = ClusterKv::new(Arch::Dynamo);
        system.binary = PathBuf::from("/bin/clusterkv");
        system.options.r = 1;
        let launch = system.launch(&cluster.nodes[1], &cluster).unwrap();
        assert_eq!(launch.program, PathBuf::from("/bin/clusterkv"));
        let args = launch.args.join(" ");
        assert!(
            args.contains("--arch dynamo --id 2 --listen 10.77.0.3:7400"),
            "{args}"
        );
        assert!(
            args.contains("--peers n1=10.77.0.2:7400,n2=10.77.0.3:7400,n3=10.77.0.4:7400"),
            "{args}"
        );
        assert!(args.contains("--data-dir /data/n2"), "{args}");
        assert!(args.contains("--r 1"), "{args}");
        assert!(args.contains("--election-timeout 500ms"), "{args}");
        assert_eq!(
            system.readiness(&cluster.nodes[0]),
            Readiness::TcpPort("10.77.0.2:7400".parse().unwrap())
        );
        let stranger = node(9);
        assert!(system.launch(&stranger, &cluster).is_err());
        assert!(!args.contains("--bug"), "{args}");
    }

    #[test]
    fn a_bug_variant_is_named_and_passed_to_every_node() {
        let cluster = ClusterSpec {
            nodes: (1..=3).map(node).collect(),
        };
        let mut system = ClusterKv::new(Arch::Raft);
        system.options.bug = Some(Bug::LeaseClock);
        assert_eq!(system.name(), "raft-lease-clock");
        for n in &cluster.nodes {
            let args = system.launch(n, &cluster).unwrap().args.join(" ");
            assert!(args.ends_with("--bug lease-clock"), "{args}");
        }
    }

    #[test]
    fn a_relative_data_dir_is_handed_to_the_node_absolute() {
        let mut cluster = ClusterSpec {
            nodes: (1..=3).map(node).collect(),
        };
        cluster.nodes[0].data_dir = PathBuf::from("results/c/run/nodes/n1/data");
        let launch = ClusterKv::new(Arch::Raft)
            .launch(&cluster.nodes[0], &cluster)
            .unwrap();
        let at = launch.args.iter().position(|a| a == "--data-dir").unwrap();
        let dir = std::path::Path::new(&launch.args[at + 1]);
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(
            dir.ends_with("results/c/run/nodes/n1/data"),
            "{}",
            dir.display()
        );
    }

    #[test]
    fn requests_encode_to_protocol_lines() {
        let cas = request(Function::Cas, Value::List(vec![Value::Int(1), Value::Nil]));
        assert_eq!(
            encode(&cas).unwrap(),
            json!({"op": "cas", "key": "3", "from": 1, "to": null})
        );
        assert!(encode(&request(Function::Cas, Value::Int(1))).is_err());
        assert_eq!(
            encode(&request(Function::Add, Value::Int(5))).unwrap(),
            json!({"op": "add", "key": "3", "element": 5})
        );
        assert_eq!(
            encode(&request(Function::ReadSet, Value::Nil)).unwrap(),
            json!({"op": "read_set", "key": "3"})
        );
    }

    #[test]
    fn replies_decode_to_jepsen_outcomes() {
        let write = request(Function::Write, Value::Int(4));
        let read = request(Function::Read, Value::Nil);
        let set = request(Function::ReadSet, Value::Nil);
        assert_eq!(
            decode(&write, &json!({"ok": true, "value": 4})),
            Outcome::Ok(Value::Int(4))
        );
        assert_eq!(
            decode(&read, &json!({"ok": true, "value": null})),
            Outcome::Ok(Value::Nil)
        );
        assert_eq!(
            decode(&set, &json!({"ok": true, "value": [1, 2]})),
            Outcome::Ok(Value::List(vec![Value::Int(1), Value::Int(2)]))
        );
        let refused = json!({"ok": false, "error": "compare-failed", "definite": true});
        assert_eq!(
            decode(&write, &refused),
            Outcome::Fail("compare-failed".into())
        );
        let unknown = json!({"ok": false, "error": "timeout", "definite": false});
        assert_eq!(decode(&write, &unknown), Outcome::Info("timeout".into()));
        assert_eq!(decode(&read, &unknown), Outcome::Fail("timeout".into()));
        // A reply that is not the protocol's: maybe applied for a write, nothing for a read.
        let garbled = json!({"value": 4});
        assert!(
            matches!(decode(&write, &garbled), Outcome::Info(e) if e.starts_with("unreadable reply"))
        );
        assert!(
            matches!(decode(&read, &garbled), Outcome::Fail(e) if e.starts_with("unreadable reply"))
        );
    }

    /// A one-connection fake node: answers each request line with the next canned reply,
    /// or stays silent when the reply is `None`.
    async fn fake_node(replies: Vec<Option<Json>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            for reply in replies {
                let Ok(Some(_)) = lines.next_line().await else {
                    return;
                };
                match reply {
                    Some(reply) => write
                        .write_all(format!("{reply}\n").as_bytes())
                        .await
                        .unwrap(),
                    None => tokio::time::sleep(Duration::from_secs(5)).await,
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_client_maps_a_live_exchange_and_a_silent_node() {
        let addr = fake_node(vec![Some(json!({"ok": true, "value": 9})), None]).await;
        let mut client = ClusterKvClient::new(addr);
        let read = request(Function::Read, Value::Nil);
        assert_eq!(client.invoke(&read).await, Outcome::Ok(Value::Int(9)));
        let write = request(Function::Write, Value::Int(1));
        assert!(matches!(client.invoke(&write).await, Outcome::Info(_)));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_definite_failure() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let mut client = ClusterKvClient::new(addr);
        let write = request(Function::Write, Value::Int(1));
        assert!(matches!(client.invoke(&write).await, Outcome::Fail(_)));
    }

    /// A one-request fake node on a thread, for the blocking status query.
    fn status_node(reply: &'static str) -> SocketAddr {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            std::io::BufReader::new(&stream)
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line, "{\"op\":\"status\"}\n");
            (&stream).write_all(reply.as_bytes()).unwrap();
        });
        addr
    }

    #[test]
    fn the_role_query_reads_the_status_answer() {
        let timeout = Duration::from_secs(5);
        let addr = status_node(
            "{\"ok\":true,\"node\":\"n2\",\"role\":\"leader\",\"leader\":\"n2\",\"term\":4,\"time_ms\":1}\n",
        );
        let status = ClusterKvRoles.status("n2", addr, timeout).unwrap();
        assert_eq!(
            status,
            NodeStatus {
                node: "n2".into(),
                is_leader: true,
                term: 4,
                time_ms: Some(1)
            }
        );
        let addr = status_node("{\"ok\":true,\"role\":\"primary\"}\n");
        assert!(
            ClusterKvRoles
                .status("n1", addr, timeout)
                .unwrap()
                .is_leader
        );
        let addr = status_node("{\"ok\":true,\"role\":\"follower\",\"term\":4}\n");
        assert!(
            !ClusterKvRoles
                .status("n3", addr, timeout)
                .unwrap()
                .is_leader
        );
        let addr = status_node("{\"ok\":false,\"error\":\"busy\"}\n");
        assert_eq!(
            ClusterKvRoles.status("n3", addr, timeout),
            Err("busy".into())
        );
    }
}
