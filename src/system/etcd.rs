//! etcd 3.4 as a system under test, and a client for its v3 JSON gateway.
//!
//! # Nodes
//!
//! Every node of a static cluster is started with the same `--initial-cluster`, so the
//! cluster forms without discovery. Timing defaults are tuned for tests on one machine:
//! a 50 ms heartbeat and a 500 ms election timeout (etcd's defaults are 100 ms / 1000 ms).
//! A leader that stops heartbeating is replaced within about half a second, which keeps
//! failover visible in short runs; the 10× ratio between the two is what etcd's tuning
//! guide recommends, so a busy (2-core) machine does not trigger spurious elections.
//!
//! # Client
//!
//! The client speaks HTTP/1.1 (one keep-alive connection per client, re-opened after any
//! error) to the gateway's `POST /v3/kv/range`, `/v3/kv/put` and `/v3/kv/txn`. Keys and
//! values travel base64-encoded; values are integers written as decimal strings.
//!
//! Key layout: the register `k` lives at `r/<k>`; the set `k` is every key under
//! `s/<k>/`, one per element (`s/<k>/<element>` holding the element), so adding an
//! element is a single idempotent put that can never clobber another element, and reading
//! the set is one range over the prefix.
//!
//! Transactions (`list-append`, `rw-register`): the key `k` lives at `t/<k>`, a list as
//! `[1,2,3]`, a register as `3`. A transaction is one read of every key it touches, all in
//! one etcd `Txn` (a consistent snapshot, with each key's mod revision), then the
//! micro-operations applied to that snapshot in the client, then — unless it only reads —
//! one `Txn` that puts every written key if and only if no key it touched changed since
//! (a compare on each key's mod revision). A changed key fails the transaction
//! (`conflict`); nothing is retried. The first round has no effect, so its failure is
//! `fail`; a commit whose reply never came is `info`.
//!
//! Outcomes: a request that certainly never reached etcd (refused connection, connect
//! timeout) is `fail`; a write, cas or add whose reply never came (timeout, connection
//! cut after sending, unreadable reply) is `info`; a read that did not complete is `fail`,
//! since reads have no effect. A cas whose compare fails is `fail` with `compare-failed`.

use super::roles::{NodeStatus, RoleQuery};
use super::{
    BoxFuture, Client, ClusterSpec, Function, LaunchSpec, NodeSpec, Outcome, Readiness, Request,
    System,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use splitbrain_checkers::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

/// Errors of the etcd system (launch, version), as opposed to operation outcomes.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    // The io error is in the message, not a `source`: said once in `{:#}`.
    #[error("cannot run `{binary} --version`: {error}")]
    VersionSpawn {
        binary: String,
        error: std::io::Error,
    },
    #[error("`{binary} --version` printed no `etcd Version:` line: {output:?}")]
    VersionParse { binary: String, output: String },
    #[error("node {0} is not part of the cluster it is launched in")]
    NodeNotInCluster(String),
}

/// The two ports of one etcd node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdPorts {
    /// Client (gateway and gRPC) port, 2379 by convention.
    pub client: u16,
    /// Raft peer port, 2380 by convention.
    pub peer: u16,
}

impl Default for EtcdPorts {
    fn default() -> Self {
        EtcdPorts {
            client: 2379,
            peer: 2380,
        }
    }
}

/// Raft timing of the cluster, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdTiming {
    pub heartbeat_ms: u32,
    pub election_ms: u32,
}

impl Default for EtcdTiming {
    fn default() -> Self {
        EtcdTiming {
            heartbeat_ms: 50,
            election_ms: 500,
        }
    }
}

/// How the client reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EtcdClientOptions {
    /// Serve reads from the contacted member's local state without a quorum round
    /// (`serializable: true`). Fast, but may return stale values: not linearizable.
    pub serializable_reads: bool,
}

/// etcd (Debian's `etcd-server`, 3.4) as a system under test.
#[derive(Debug, Clone)]
pub struct EtcdSystem {
    /// The etcd binary (looked up in `PATH` when relative).
    pub binary: PathBuf,
    /// Ports of every node, unless overridden in `node_ports`.
    pub ports: EtcdPorts,
    /// Per-node port overrides by node name; needed when several nodes share an address
    /// (e.g. tests on loopback).
    pub node_ports: BTreeMap<String, EtcdPorts>,
    pub timing: EtcdTiming,
    /// `--initial-cluster-token`: keeps members of different runs from joining each other.
    pub cluster_token: String,
    pub client_options: EtcdClientOptions,
}

impl Default for EtcdSystem {
    fn default() -> Self {
        EtcdSystem {
            binary: PathBuf::from("etcd"),
            ports: EtcdPorts::default(),
            node_ports: BTreeMap::new(),
            timing: EtcdTiming::default(),
            cluster_token: "splitbrain".to_owned(),
            client_options: EtcdClientOptions::default(),
        }
    }
}

impl EtcdSystem {
    /// Gives `node_name` its own ports.
    pub fn with_node_ports(mut self, node_name: &str, ports: EtcdPorts) -> Self {
        self.node_ports.insert(node_name.to_owned(), ports);
        self
    }

    /// The ports `node` listens on.
    pub fn ports_of(&self, node: &NodeSpec) -> EtcdPorts {
        self.node_ports
            .get(&node.name)
            .copied()
            .unwrap_or(self.ports)
    }

    /// Where clients reach `node`.
    pub fn client_addr(&self, node: &NodeSpec) -> SocketAddr {
        SocketAddr::new(node.ip.into(), self.ports_of(node).client)
    }

    fn peer_url(&self, node: &NodeSpec) -> String {
        format!("http://{}:{}", node.ip, self.ports_of(node).peer)
    }

    fn client_url(&self, node: &NodeSpec) -> String {
        format!("http://{}", self.client_addr(node))
    }

    /// The gateway's health check: `true` once `node` has a leader and can serve a quorum
    /// read, which an open port alone does not promise. Call it from inside the cluster
    /// network, like a client.
    pub async fn healthy(&self, node: &NodeSpec, timeout: Duration) -> bool {
        probe_http_get(
            self.client_addr(node),
            "/health",
            Some(r#""health":"true""#),
            timeout,
        )
        .await
    }
}

/// etcd 3.4 refuses to start on architectures other than amd64, arm64 (and ppc64le)
/// unless `ETCD_UNSUPPORTED_ARCH` names the Go architecture it runs on.
fn unsupported_arch_env() -> Option<(String, String)> {
    let goarch = match std::env::consts::ARCH {
        "x86_64" | "aarch64" | "powerpc64" => return None,
        "x86" => "386",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" => "mips64le",
        "loongarch64" => "loong64",
        other => other,
    };
    Some(("ETCD_UNSUPPORTED_ARCH".to_owned(), goarch.to_owned()))
}

/// Extracts `3.4.23` from `etcd --version` output (`etcd Version: 3.4.23`).
pub fn parse_version(output: &str) -> Option<String> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl System for EtcdSystem {
    fn name(&self) -> &str {
        "etcd"
    }

    fn role_query(&self, _cluster: &ClusterSpec) -> Option<std::sync::Arc<dyn RoleQuery>> {
        Some(std::sync::Arc::new(EtcdRoles))
    }

    fn version(&self) -> anyhow::Result<String> {
        let binary = self.binary.display().to_string();
        let output = std::process::Command::new(&self.binary)
            .arg("--version")
            .envs(unsupported_arch_env())
            .output()
            .map_err(|error| EtcdError::VersionSpawn {
                binary: binary.clone(),
                error,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = parse_version(&text).ok_or_else(|| EtcdError::VersionParse {
            binary,
            output: text.to_string(),
        })?;
        Ok(format!("etcd {version}"))
    }

    fn launch(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        if !cluster.nodes.iter().any(|n| n.name == node.name) {
            return Err(EtcdError::NodeNotInCluster(node.name.clone()).into());
        }
        let initial_cluster = cluster
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.name, self.peer_url(n)))
            .collect::<Vec<_>>()
            .join(",");
        let flag = |name: &str, value: String| [format!("--{name}"), value];
        let args = [
            flag("name", node.name.clone()),
            // Absolute: the node runs in its data directory, so a relative path would nest.
            flag(
                "data-dir",
                std::path::absolute(&node.data_dir)
                    .unwrap_or_else(|_| node.data_dir.clone())
                    .display()
                    .to_string(),
            ),
            flag("listen-peer-urls", self.peer_url(node)),
            flag("initial-advertise-peer-urls", self.peer_url(node)),
            flag("listen-client-urls", self.client_url(node)),
            flag("advertise-client-urls", self.client_url(node)),
            flag("initial-cluster", initial_cluster),
            // Ignored by etcd when the data directory already holds a member, so the same
            // command line also restarts a killed node.
            flag("initial-cluster-state", "new".to_owned()),
            flag("initial-cluster-token", self.cluster_token.clone()),
            flag("heartbeat-interval", self.timing.heartbeat_ms.to_string()),
            flag("election-timeout", self.timing.election_ms.to_string()),
            // The default capnslog logger is deprecated in 3.4 and warns on every start.
            flag("logger", "zap".to_owned()),
            flag("log-outputs", "stderr".to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(LaunchSpec {
            program: self.binary.clone(),
            args,
            env: unsupported_arch_env().into_iter().collect(),
        })
    }

    fn readiness(&self, node: &NodeSpec) -> Readiness {
        // An open port only says the process is up; [`EtcdSystem::healthy`] says more.
        Readiness::TcpPort(self.client_addr(node))
    }

    fn client(&self, node: &NodeSpec, _cluster: &ClusterSpec) -> anyhow::Result<Box<dyn Client>> {
        Ok(Box::new(EtcdClient::new(
            self.client_addr(node),
            self.client_options,
        )))
    }
}

/// One HTTP/1.1 GET to `addr` `path`: true when it answers 200 and (if given) the body
/// contains `expect_body`. Everything that goes wrong, including the deadline, is `false`.
pub async fn probe_http_get(
    addr: SocketAddr,
    path: &str,
    expect_body: Option<&str>,
    timeout: Duration,
) -> bool {
    let probe = async {
        let mut conn = Connection::open(addr).await.ok()?;
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))
            .ok()?;
        let response = conn.sender.send_request(request).await.ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let body_ok = expect_body
            .map(|needle| String::from_utf8_lossy(&body).contains(needle))
            .unwrap_or(true);
        Some(status == hyper::StatusCode::OK && body_ok)
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}

/// A keep-alive HTTP/1.1 connection; its driver task dies with it.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        let driver = tokio::spawn(async move {
            // The connection ends with an error whenever the peer goes away; the sender
            // sees that as a failed request, so there is nothing to report here.
            let _ = conn.await;
        });
        Ok(Connection { sender, driver })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Why a gateway call did not produce a reply body, split by whether etcd may have acted.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// The request certainly never reached etcd.
    #[error("{0}")]
    NotSent(String),
    /// The request may have reached etcd; its reply is unknown.
    #[error("{0}")]
    MaybeSent(String),
    /// etcd answered with an error.
    #[error("etcd error (http {status}, code {code}): {message}")]
    Server {
        status: u16,
        code: i64,
        message: String,
    },
}

/// gRPC status code InvalidArgument: etcd rejected the request before acting on it.
const GRPC_INVALID_ARGUMENT: i64 = 3;

#[derive(Deserialize)]
struct GatewayError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct KeyValue {
    /// Omitted by the gateway when empty.
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct RangeResponse {
    #[serde(default)]
    kvs: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct TxnResponse {
    /// Proto3 JSON omits `false`.
    #[serde(default)]
    succeeded: bool,
}

/// The reply to a `Txn` of range requests.
#[derive(Deserialize)]
struct TxnReadResponse {
    #[serde(default)]
    responses: Vec<TxnReadResponseOp>,
}

#[derive(Deserialize)]
struct TxnReadResponseOp {
    #[serde(default)]
    response_range: RevisionedRange,
}

#[derive(Deserialize, Default)]
struct RevisionedRange {
    #[serde(default)]
    kvs: Vec<RevisionedKeyValue>,
}

#[derive(Deserialize)]
struct RevisionedKeyValue {
    #[serde(default)]
    value: String,
    /// An int64, which proto3 JSON writes as a string.
    #[serde(default)]
    mod_revision: String,
}

/// A transactional key as stored: a list (`[1,2]`) or a register (`2`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum TxnKeyState {
    Absent,
    List(Vec<i64>),
    Register(i64),
}

impl TxnKeyState {
    fn encode(&self) -> String {
        match self {
            TxnKeyState::Absent => String::new(),
            TxnKeyState::List(list) => {
                let items: Vec<String> = list.iter().map(i64::to_string).collect();
                format!("[{}]", items.join(","))
            }
            TxnKeyState::Register(v) => v.to_string(),
        }
    }

    /// Reads a base64 value as stored; anything else is someone else's data, which the
    /// transaction must not build on.
    fn decode(base64_value: &str) -> Result<TxnKeyState, CallError> {
        let bytes = BASE64
            .decode(base64_value)
            .map_err(|e| CallError::NotSent(format!("value is not base64: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let unreadable = || CallError::NotSent(format!("unreadable transactional value {text:?}"));
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if inner.is_empty() {
                return Ok(TxnKeyState::List(Vec::new()));
            }
            return inner
                .split(',')
                .map(|e| e.parse::<i64>().map_err(|_| unreadable()))
                .collect::<Result<_, _>>()
                .map(TxnKeyState::List);
        }
        text.parse()
            .map(TxnKeyState::Register)
            .map_err(|_| unreadable())
    }
}

fn txn_key(key: i64) -> String {
    format!("t/{key}")
}

/// A client of one etcd member over the v3 JSON gateway.
pub struct EtcdClient {
    addr: SocketAddr,
    options: EtcdClientOptions,
    conn: Option<Connection>,
}

impl EtcdClient {
    /// A client of the member at `addr`; it connects on first use.
    pub fn new(addr: SocketAddr, options: EtcdClientOptions) -> Self {
        EtcdClient {
            addr,
            options,
            conn: None,
        }
    }

    /// Performs one request; never retries anything that may have reached etcd.
    pub async fn perform(&mut self, request: &Request) -> Outcome {
        let deadline = Instant::now() + request.timeout;
        let result = match request.f {
            Function::Read => self.read(&request.key, deadline).await,
            Function::Write => self.write(&request.key, &request.value, deadline).await,
            Function::Cas => self.cas(&request.key, &request.value, deadline).await,
            Function::Add => self.add(&request.key, &request.value, deadline).await,
            Function::ReadSet => self.read_set(&request.key, deadline).await,
            Function::Txn => self.txn(&request.value, deadline).await,
        };
        match result {
            Ok(outcome) => outcome,
            Err(error) => classify(request.f, error),
        }
    }

    async fn read(&mut self, key: &Value, deadline: Instant) -> Result<Outcome, CallError> {
        let body = json!({
            "key": BASE64.encode(register_key(key)),
            "serializable": self.options.serializable_reads,
        });
        let reply: RangeResponse = self.call("/v3/kv/range", body, deadline).await?;
        match reply.kvs.first() {
            None => Ok(Outcome::Ok(Value::Nil)),
            Some(kv) => Ok(Outcome::Ok(decode_value(&kv.value)?)),
        }
    }

    async fn write(
        &mut self,
        key: &Value,
        value: &Value,
        deadline: Instant,
    ) -> Result<Outcome, CallError> {
        let encoded = encode_value(value)?;
        let body = json!({
            "key": BASE64.encode(register_key(key)),
            "value": BASE64.encode(encoded),
        });
        let _: serde_json::Value = self.call("/v3/kv/put", body, deadline).await?;
        Ok(Outcome::Ok(value.clone()))
    }

    async fn cas(
        &mut self,
        key: &Value,
        value: &Value,
        deadline: Instant,
    ) -> Result<Outcome, CallError> {
        let (expected, new) = match value.as_list() {
            Some([expected, new]) => (expected, new),
            _ => {
                return Err(CallError::NotSent(format!(
                    "cas needs [expected new], got {value}"
                )))
            }
        };
        let key_b64 = BASE64.encode(register_key(key));
        // Expecting nil means expecting the key to be absent: etcd has no nil value, and
        // an absent key is the only state whose create revision is 0.
        let compare = if expected.is_nil() {
            json!({"key": key_b64, "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
        } else {
            json!({
                "key": key_b64,
                "target": "VALUE",
                "result": "EQUAL",
                "value": BASE64.encode(encode_value(expected)?),
            })
        };
        let body = json!({
            "compare": [compare],
            "success": [{"request_put": {"key": key_b64, "value": BASE64.encode(encode_value(new)?)}}],
        });
        let reply: TxnResponse = self.call("/v3/kv/txn", body, deadline).await?;
        Ok(if reply.succeeded {
            Outcome::Ok(value.clone())
        } else {
            Outcome::Fail("compare-failed".to_owned())
        })
    }

    async fn add(
        &mut self,
        key: &Value,
        element: &Value,
        deadline: Instant,
    ) -> Result<Outcome, CallError> {
        let encoded = encode_value(element)?;
        let body = json!({
            "key": BASE64.encode(format!("{}{encoded}", set_prefix(key))),
            "value": BASE64.encode(&encoded),
        });
        let _: serde_json::Value = self.call("/v3/kv/put", body, deadline).await?;
        Ok(Outcome::Ok(element.clone()))
    }

    async fn read_set(&mut self, key: &Value, deadline: Instant) -> Result<Outcome, CallError> {
        let prefix = set_prefix(key);
        let body = json!({
            "key": BASE64.encode(&prefix),
            "range_end": BASE64.encode(prefix_end(prefix.as_bytes())),
            "serializable": self.options.serializable_reads,
        });
        let reply: RangeResponse = self.call("/v3/kv/range", body, deadline).await?;
        let mut elements = reply
            .kvs
            .iter()
            .map(|kv| decode_value(&kv.value))
            .collect::<Result<Vec<_>, _>>()?;
        elements.sort();
        Ok(Outcome::Ok(Value::List(elements)))
    }

    /// One transaction: a snapshot read of every key it touches, the micro-operations
    /// applied to it, and a commit guarded by the keys' mod revisions (see the module
    /// documentation).
    async fn txn(&mut self, value: &Value, deadline: Instant) -> Result<Outcome, CallError> {
        use super::txn::{completed_txn_value, parse_txn, MicroOp, ReadValue};
        let ops = parse_txn(value).map_err(|e| CallError::NotSent(e.to_string()))?;
        let keys: std::collections::BTreeSet<i64> = ops.iter().map(|op| op.key()).collect();
        let ranges: Vec<_> = keys
            .iter()
            .map(|k| json!({"request_range": {"key": BASE64.encode(txn_key(*k))}}))
            .collect();
        let snapshot: TxnReadResponse = match self
            .call("/v3/kv/txn", json!({"success": ranges}), deadline)
            .await
        {
            Ok(snapshot) => snapshot,
            // Nothing was written yet: the transaction certainly had no effect.
            Err(e) => return Ok(Outcome::Fail(format!("reading the keys: {e}"))),
        };
        if snapshot.responses.len() != keys.len() {
            return Ok(Outcome::Fail(format!(
                "reading the keys: {} answers to {} reads",
                snapshot.responses.len(),
                keys.len()
            )));
        }
        let mut state: BTreeMap<i64, TxnKeyState> = BTreeMap::new();
        let mut revisions: Vec<(i64, String)> = Vec::with_capacity(keys.len());
        for (key, response) in keys.iter().zip(&snapshot.responses) {
            let kv = response.response_range.kvs.first();
            let revision = kv.map_or_else(|| "0".to_owned(), |kv| kv.mod_revision.clone());
            let parsed = match kv {
                None => TxnKeyState::Absent,
                Some(kv) => TxnKeyState::decode(&kv.value)?,
            };
            revisions.push((*key, revision));
            state.insert(*key, parsed);
        }
        let mut reads = Vec::with_capacity(ops.len());
        let mut written = std::collections::BTreeSet::new();
        for op in &ops {
            let current = state.entry(op.key()).or_insert(TxnKeyState::Absent);
            match *op {
                MicroOp::Read { .. } => {
                    reads.push(Some(match current {
                        TxnKeyState::Absent => ReadValue::Register(None),
                        TxnKeyState::List(list) => ReadValue::List(list.clone()),
                        TxnKeyState::Register(v) => ReadValue::Register(Some(*v)),
                    }));
                    continue;
                }
                MicroOp::Append { key, value } => match current {
                    TxnKeyState::Absent => *current = TxnKeyState::List(vec![value]),
                    TxnKeyState::List(list) => list.push(value),
                    TxnKeyState::Register(_) => {
                        return Err(CallError::NotSent(format!(
                            "append to key {key}, which holds a register"
                        )))
                    }
                },
                MicroOp::Write { value, .. } => *current = TxnKeyState::Register(value),
            }
            written.insert(op.key());
            reads.push(None);
        }
        let completed = completed_txn_value(&ops, &reads);
        if written.is_empty() {
            // Read-only: the snapshot is the transaction.
            return Ok(Outcome::Ok(completed));
        }
        let compare: Vec<_> = revisions
            .iter()
            .map(|(k, revision)| {
                json!({
                    "key": BASE64.encode(txn_key(*k)),
                    "target": "MOD",
                    "result": "EQUAL",
                    "mod_revision": revision,
                })
            })
            .collect();
        let puts: Vec<_> = written
            .iter()
            .map(|k| {
                json!({"request_put": {
                    "key": BASE64.encode(txn_key(*k)),
                    "value": BASE64.encode(state[k].encode()),
                }})
            })
            .collect();
        let reply: TxnResponse = self
            .call(
                "/v3/kv/txn",
                json!({"compare": compare, "success": puts}),
                deadline,
            )
            .await?;
        Ok(if reply.succeeded {
            Outcome::Ok(completed)
        } else {
            Outcome::Fail("conflict: a key changed since the transaction read it".to_owned())
        })
    }

    /// POSTs `body` to `path` and parses the reply, all before `deadline`.
    async fn call<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        body: serde_json::Value,
        deadline: Instant,
    ) -> Result<T, CallError> {
        let result = self.call_inner(path, body, deadline).await;
        if result.is_err() {
            // After a timeout or a broken exchange the connection's state is unknown (a
            // late reply could be taken for the next request's): start afresh.
            self.conn = None;
        }
        let bytes = result?;
        // A reply arrived, so etcd acted (or refused, which `Server` covers); a reply we
        // cannot read leaves the effect unknown.
        serde_json::from_slice(&bytes).map_err(|e| {
            CallError::MaybeSent(format!(
                "unreadable reply from etcd ({e}): {}",
                String::from_utf8_lossy(&bytes)
            ))
        })
    }

    async fn call_inner(
        &mut self,
        path: &str,
        body: serde_json::Value,
        deadline: Instant,
    ) -> Result<Bytes, CallError> {
        let mut request = hyper::Request::post(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| CallError::NotSent(format!("cannot build request: {e}")))?;
        // A kept-alive connection may have been closed by the peer while idle; such a
        // request is returned unsent and may go once more over a fresh connection.
        let mut attempts_left = 2;
        let response = loop {
            attempts_left -= 1;
            let conn = self.connected(deadline).await?;
            if timeout_at(deadline, conn.sender.ready()).await.is_err() {
                return Err(CallError::NotSent("timed out before sending".to_owned()));
            }
            match timeout_at(deadline, conn.sender.try_send_request(request)).await {
                Err(_) => return Err(CallError::MaybeSent("timed out".to_owned())),
                Ok(Ok(response)) => break response,
                Ok(Err(mut error)) => match error.take_message() {
                    Some(unsent) if attempts_left > 0 => {
                        self.conn = None;
                        request = unsent;
                    }
                    Some(_) => {
                        return Err(CallError::NotSent(format!(
                            "connection closed before sending: {}",
                            error.error()
                        )))
                    }
                    None => {
                        return Err(CallError::MaybeSent(format!(
                            "connection broken: {}",
                            error.error()
                        )))
                    }
                },
            }
        };
        let status = response.status();
        let bytes = match timeout_at(deadline, response.into_body().collect()).await {
            Err(_) => return Err(CallError::MaybeSent("timed out".to_owned())),
            Ok(Err(e)) => return Err(CallError::MaybeSent(format!("reply cut: {e}"))),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        if !status.is_success() {
            let parsed: Option<GatewayError> = serde_json::from_slice(&bytes).ok();
            let (code, message) = match parsed {
                Some(e) if !e.message.is_empty() => (e.code, e.message),
                Some(e) => (e.code, e.error),
                None => (-1, String::from_utf8_lossy(&bytes).into_owned()),
            };
            return Err(CallError::Server {
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok(bytes)
    }

    /// The open connection, or a new one; a failure here happens before anything is sent.
    async fn connected(&mut self, deadline: Instant) -> Result<&mut Connection, CallError> {
        if self.conn.as_ref().is_some_and(|c| c.sender.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let conn = match timeout_at(deadline, Connection::open(self.addr)).await {
                Err(_) => return Err(CallError::NotSent("connect timed out".to_owned())),
                Ok(Err(e)) => return Err(CallError::NotSent(format!("connect: {e}"))),
                Ok(Ok(conn)) => conn,
            };
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connection was just opened"))
    }
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(self.perform(request))
    }
}

/// Maps a failed call to Jepsen's outcome: reads have no effect, so anything that went
/// wrong is `fail`; a mutation is `info` unless it certainly did not reach etcd or etcd
/// rejected it as malformed.
fn classify(f: Function, error: CallError) -> Outcome {
    let is_read = matches!(f, Function::Read | Function::ReadSet);
    let definite = match &error {
        CallError::NotSent(_) => true,
        CallError::MaybeSent(_) => false,
        CallError::Server { code, .. } => *code == GRPC_INVALID_ARGUMENT,
    };
    if is_read || definite {
        Outcome::Fail(error.to_string())
    } else {
        Outcome::Info(error.to_string())
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::Str(s) | Value::Keyword(s) => s.clone(),
        other => other.to_string(),
    }
}

fn register_key(key: &Value) -> String {
    format!("r/{}", key_text(key))
}

fn set_prefix(key: &Value) -> String {
    format!("s/{}/", key_text(key))
}

/// The smallest key greater than every key starting with `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: "\0" means "to the end of the keyspace".
    vec![0]
}

fn encode_value(value: &Value) -> Result<String, CallError> {
    match value {
        Value::Int(i) => Ok(i.to_string()),
        other => Err(CallError::NotSent(format!(
            "etcd values are integers, got {other}"
        ))),
    }
}

fn decode_value(base64_value: &str) -> Result<Value, CallError> {
    let bytes = BASE64
        .decode(base64_value)
        .map_err(|e| CallError::MaybeSent(format!("value is not base64: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    // Integers are what the harness writes; anything else was written by someone else
    // and is reported as it is, so that a checker sees the surprise.
    Ok(text
        .parse::<i64>()
        .map(Value::Int)
        .unwrap_or_else(|_| Value::Str(text.into_owned())))
}

/// Bounds of a raw client loop.
#[derive(Debug, Clone, Copy)]
pub struct RawLoopLimits {
    pub max_ops: u64,
    pub max_duration: Duration,
    pub op_timeout: Duration,
}

impl Default for RawLoopLimits {
    fn default() -> Self {
        RawLoopLimits {
            max_ops: 2_000,
            max_duration: Duration::from_secs(5),
            op_timeout: Duration::from_secs(1),
        }
    }
}

/// What a raw client loop achieved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawRate {
    /// Operations completed (any outcome).
    pub ops: u64,
    /// Operations that completed `ok`.
    pub ok: u64,
    pub elapsed: Duration,
    /// `ok` operations per second: the ceiling a harness client on one connection can
    /// approach against this member.
    pub ok_per_sec: f64,
}

/// Runs sequential operations (write, read, write, ...) on `key` as fast as one client
/// can, against the member at `addr`, until `limits` stop it. The harness's own rate on
/// one client is compared with this to measure its overhead.
pub async fn measure_raw_rate(
    addr: SocketAddr,
    options: EtcdClientOptions,
    key: Value,
    limits: RawLoopLimits,
) -> RawRate {
    let mut client = EtcdClient::new(addr, options);
    let start = std::time::Instant::now();
    let (mut ops, mut ok) = (0u64, 0u64);
    while ops < limits.max_ops && start.elapsed() < limits.max_duration {
        let request = Request {
            f: if ops % 2 == 0 {
                Function::Write
            } else {
                Function::Read
            },
            key: key.clone(),
            value: Value::Int(ops as i64),
            timeout: limits.op_timeout,
        };
        if matches!(client.perform(&request).await, Outcome::Ok(_)) {
            ok += 1;
        }
        ops += 1;
    }
    let elapsed = start.elapsed();
    RawRate {
        ops,
        ok,
        elapsed,
        ok_per_sec: ok as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
    }
}

/// Who leads, per etcd: `POST /v3/maintenance/status` on the JSON gateway; the member whose
/// id equals the reported leader id leads.
pub struct EtcdRoles;

#[derive(Deserialize)]
struct EtcdStatus {
    header: EtcdStatusHeader,
    #[serde(default)]
    leader: Option<String>,
    #[serde(default, rename = "raftTerm")]
    raft_term: Option<String>,
}

#[derive(Deserialize)]
struct EtcdStatusHeader {
    member_id: String,
}

impl RoleQuery for EtcdRoles {
    fn system(&self) -> &str {
        "etcd"
    }

    fn status(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let body = runtime.block_on(async {
            tokio::time::timeout(timeout, status_post(addr))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
        })?;
        let status: EtcdStatus =
            serde_json::from_slice(&body).map_err(|e| format!("unreadable status: {e}"))?;
        Ok(NodeStatus {
            node: node.to_owned(),
            is_leader: status.leader.as_deref() == Some(status.header.member_id.as_str()),
            term: status.raft_term.and_then(|t| t.parse().ok()).unwrap_or(0),
            time_ms: None,
        })
    }
}

/// `POST /v3/maintenance/status` with an empty JSON body; the reply's body.
async fn status_post(addr: SocketAddr) -> Result<Bytes, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        // Ends with an error whenever the peer goes away; the request sees that itself.
        let _ = conn.await;
    });
    let request = hyper::Request::post("/v3/maintenance/status")
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let ok = response.status().is_success();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    driver.abort();
    if !ok {
        return Err(format!("http error: {}", String::from_utf8_lossy(&bytes)));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_status_json_is_understood() {
        let text = r#"{"header":{"cluster_id":"1","member_id":"42","revision":"3","raft_term":"2"},
                       "version":"3.4.23","leader":"42","raftIndex":"9","raftTerm":"2"}"#;
        let s: EtcdStatus = serde_json::from_str(text).unwrap();
        assert_eq!(s.leader.as_deref(), Some(s.header.member_id.as_str()));
        assert_eq!(s.raft_term.as_deref(), Some("2"));
    }

    fn cluster(n: usize) -> ClusterSpec {
        crate::system::test_cluster(n, std::path::Path::new("/data"))
    }

    fn arg_after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let at = args.iter().position(|a| a == flag).expect(flag);
        &args[at + 1]
    }

    #[test]
    fn launch_names_every_member_and_its_own_urls() {
        let cluster = cluster(3);
        let spec = EtcdSystem::default()
            .launch(&cluster.nodes[1], &cluster)
            .unwrap();
        assert_eq!(arg_after(&spec.args, "--name"), "n2");
        assert_eq!(arg_after(&spec.args, "--data-dir"), "/data/n2");
        assert_eq!(
            arg_after(&spec.args, "--listen-client-urls"),
            "http://10.77.0.3:2379"
        );
        assert_eq!(
            arg_after(&spec.args, "--initial-advertise-peer-urls"),
            "http://10.77.0.3:2380"
        );
        assert_eq!(
            arg_after(&spec.args, "--initial-cluster"),
            "n1=http://10.77.0.2:2380,n2=http://10.77.0.3:2380,n3=http://10.77.0.4:2380"
        );
        assert_eq!(arg_after(&spec.args, "--heartbeat-interval"), "50");
        assert_eq!(arg_after(&spec.args, "--election-timeout"), "500");
    }

    #[test]
    fn per_node_ports_apply_to_urls_and_peers() {
        let cluster = cluster(3);
        let system = EtcdSystem::default().with_node_ports(
            "n3",
            EtcdPorts {
                client: 4001,
                peer: 4002,
            },
        );
        let spec = system.launch(&cluster.nodes[0], &cluster).unwrap();
        assert!(arg_after(&spec.args, "--initial-cluster").ends_with("n3=http://10.77.0.4:4002"));
        assert_eq!(
            system.client_addr(&cluster.nodes[2]),
            "10.77.0.4:4001".parse().unwrap()
        );
    }

    #[test]
    fn launching_a_stranger_is_an_error() {
        let cluster = cluster(3);
        let mut stranger = cluster.nodes[0].clone();
        stranger.name = "n9".to_owned();
        assert!(EtcdSystem::default().launch(&stranger, &cluster).is_err());
    }

    #[test]
    fn version_line_is_parsed() {
        let out = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(out).as_deref(), Some("3.4.23"));
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"s/k/"), b"s/k0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
        assert_eq!(prefix_end(&[0xff]), vec![0]);
    }

    #[test]
    fn failed_reads_are_fail_and_unknown_writes_are_info() {
        let maybe = || CallError::MaybeSent("timed out".into());
        assert!(matches!(
            classify(Function::Read, maybe()),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            classify(Function::ReadSet, maybe()),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            classify(Function::Write, maybe()),
            Outcome::Info(_)
        ));
        assert!(matches!(classify(Function::Cas, maybe()), Outcome::Info(_)));
        assert!(matches!(classify(Function::Add, maybe()), Outcome::Info(_)));
        assert!(matches!(
            classify(Function::Write, CallError::NotSent("refused".into())),
            Outcome::Fail(_)
        ));
        let rejected = CallError::Server {
            status: 400,
            code: GRPC_INVALID_ARGUMENT,
            message: "bad".into(),
        };
        assert!(matches!(
            classify(Function::Write, rejected),
            Outcome::Fail(_)
        ));
        let unavailable = CallError::Server {
            status: 503,
            code: 14,
            message: "etcdserver: request timed out".into(),
        };
        assert!(matches!(
            classify(Function::Cas, unavailable),
            Outcome::Info(_)
        ));
    }

    #[test]
    fn transactional_values_round_trip() {
        for state in [
            TxnKeyState::List(vec![]),
            TxnKeyState::List(vec![1, -2, 30]),
            TxnKeyState::Register(-7),
        ] {
            let stored = BASE64.encode(state.encode());
            assert_eq!(TxnKeyState::decode(&stored).unwrap(), state);
        }
        assert!(TxnKeyState::decode(&BASE64.encode("[1,x]")).is_err());
        assert!(TxnKeyState::decode(&BASE64.encode("hello")).is_err());
    }

    #[test]
    fn values_round_trip_as_decimal_text() {
        let encoded = BASE64.encode(encode_value(&Value::Int(-42)).unwrap());
        assert_eq!(decode_value(&encoded).unwrap(), Value::Int(-42));
        assert!(encode_value(&Value::Nil).is_err());
        let foreign = BASE64.encode("hello");
        assert_eq!(
            decode_value(&foreign).unwrap(),
            Value::Str("hello".to_owned())
        );
    }
}
