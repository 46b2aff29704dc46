//! Redis 7 with Sentinel (Debian's `redis-server` and `redis-sentinel`) as a system under
//! test, with a client that finds the primary through Sentinel.
//!
//! # Nodes
//!
//! Every node runs `redis-server` on port 6379 of its address; `n1` starts as the primary,
//! the others as its replicas (`replicaof`). The first three nodes also run a Sentinel on
//! port 26379 (quorum 2, a primary is down after 2 s of silence, failover timeout 10 s).
//! Both processes of a node start from one command line (`sh -c`, the configuration paths
//! passed as arguments), so they share the node's namespace, cgroup and process group: a
//! pause or kill of the node stops its Sentinel too, as when a host fails. `launch` writes
//! `redis.conf` and `sentinel.conf` into the node's data directory; Redis and Sentinel
//! rewrite them as they fail over, and a restarted node starts from what they wrote, as a
//! real host would. Persistence: append-only file, `fsync` every second (Redis's default).
//!
//! A node is ready when `redis-server` is the primary or a replica whose link to the
//! primary is up (a replica accepts connections before its first sync, serving an empty
//! data set), and, where a Sentinel runs, when `SENTINEL CKQUORUM` says the Sentinels can
//! reach their quorum and authorise a failover.
//!
//! # Client
//!
//! The `redis` crate: the client asks the Sentinels for the primary (`SENTINEL MASTERS`,
//! then `ROLE` on the answer), as real clients do. Each harness client lists the Sentinels
//! starting with its own node's, so clients of different nodes may be told different
//! primaries while the Sentinels disagree. A connection that breaks, or a `READONLY` reply
//! (the primary was demoted), makes the client ask again.
//!
//! * read: `GET r:<k>` on the primary, or on a replica the Sentinels list with
//!   `replica_reads: true`;
//! * write: `SET`, then `WAIT n timeout` when `wait` is set: fewer acknowledgements than
//!   asked make the write `info` (it happened on the primary, but may be lost on failover);
//! * cas: one Lua script comparing and setting atomically; `[nil new]` is `SET NX`;
//! * add / read set: `SADD` / `SMEMBERS` on `s:<k>`.
//!
//! Redis replicates asynchronously and Sentinel promotes whichever replica it finds best,
//! so acknowledged writes can be lost when a partition cuts the primary off (Redis's own
//! documentation says so): `WAIT` narrows the window but does not make Redis a CP system.

use super::{
    BoxFuture, Client, ClusterSpec, Function, LaunchSpec, NodeSpec, Outcome, Readiness, Request,
    System,
};
use super::{NodeStatus, RoleQuery};
use redis::aio::MultiplexedConnection;
use redis::sentinel::Sentinel;
use splitbrain_checkers::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// The name the Sentinels monitor the primary under.
pub const SERVICE_NAME: &str = "splitbrain";

/// How many nodes run a Sentinel (the first ones).
pub const SENTINELS: usize = 3;

/// Errors of the Redis system (launch, version), as opposed to operation outcomes.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("cannot run `{binary} --version`: {error}")]
    VersionSpawn {
        binary: String,
        error: std::io::Error,
    },
    #[error("`{binary} --version` printed no `v=` version: {output:?}")]
    VersionParse { binary: String, output: String },
    #[error("node {0} is not part of the cluster it is launched in")]
    NodeNotInCluster(String),
    #[error("writing {path}: {error}")]
    Config {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// `WAIT numreplicas timeout` after every write, cas and add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    pub replicas: u32,
    pub timeout: Duration,
}

/// How the client writes and reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisClientOptions {
    pub wait: Option<WaitOptions>,
    /// Read from a replica the Sentinels list instead of the primary.
    pub replica_reads: bool,
}

/// Redis with Sentinel as a system under test.
#[derive(Debug, Clone)]
pub struct RedisSystem {
    pub server_binary: PathBuf,
    pub sentinel_binary: PathBuf,
    pub port: u16,
    pub sentinel_port: u16,
    /// Sentinel's `down-after-milliseconds`.
    pub down_after: Duration,
    /// Sentinel's `failover-timeout`.
    pub failover_timeout: Duration,
    pub client_options: RedisClientOptions,
}

impl Default for RedisSystem {
    fn default() -> Self {
        RedisSystem {
            server_binary: PathBuf::from("redis-server"),
            sentinel_binary: PathBuf::from("redis-sentinel"),
            port: 6379,
            sentinel_port: 26379,
            down_after: Duration::from_secs(2),
            failover_timeout: Duration::from_secs(10),
            client_options: RedisClientOptions::default(),
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn write_file(path: &Path, text: &str) -> Result<(), RedisError> {
    let err = |error| RedisError::Config {
        path: path.to_owned(),
        error,
    };
    if let Some(dir) = path.parent() {
        crate::results::create_dirs(dir).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

/// Extracts `7.0.15` from `redis-server --version` (`Redis server v=7.0.15 sha=…`).
pub fn parse_version(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl RedisSystem {
    /// Where `redis-server` of `node` listens.
    pub fn server_addr(&self, node: &NodeSpec) -> SocketAddr {
        SocketAddr::new(node.ip.into(), self.port)
    }

    /// The Sentinels of `cluster`, in node order.
    pub fn sentinel_addrs(&self, cluster: &ClusterSpec) -> Vec<SocketAddr> {
        cluster
            .nodes
            .iter()
            .take(SENTINELS)
            .map(|n| SocketAddr::new(n.ip.into(), self.sentinel_port))
            .collect()
    }

    fn hosts_sentinel(node: &NodeSpec) -> bool {
        node.id <= SENTINELS
    }

    /// Sentinel's quorum: a majority of the Sentinels that run.
    fn quorum(cluster: &ClusterSpec) -> usize {
        cluster.nodes.len().min(SENTINELS) / 2 + 1
    }

    /// The `redis.conf` of `node`; `primary` is where replicas replicate from at first.
    pub fn server_config(&self, node: &NodeSpec, primary: Ipv4Addr) -> String {
        let mut cfg = format!(
            "bind {ip}\nport {port}\nprotected-mode no\ndaemonize no\nlogfile \"\"\n\
             dir {dir}\nappendonly yes\nappendfsync everysec\nsave \"\"\n\
             replica-serve-stale-data yes\nreplica-read-only yes\n\
             replica-announce-ip {ip}\n",
            ip = node.ip,
            port = self.port,
            dir = absolute(&node.data_dir).display(),
        );
        if node.ip != primary {
            cfg.push_str(&format!("replicaof {primary} {}\n", self.port));
        }
        cfg
    }

    /// The `sentinel.conf` of a node that hosts a Sentinel.
    pub fn sentinel_config(
        &self,
        node: &NodeSpec,
        cluster: &ClusterSpec,
        primary: Ipv4Addr,
    ) -> String {
        format!(
            "bind {ip}\nport {sport}\nprotected-mode no\ndaemonize no\nlogfile \"\"\n\
             dir {dir}\nsentinel announce-ip {ip}\n\
             sentinel monitor {SERVICE_NAME} {primary} {port} {quorum}\n\
             sentinel down-after-milliseconds {SERVICE_NAME} {down}\n\
             sentinel failover-timeout {SERVICE_NAME} {failover}\n\
             sentinel parallel-syncs {SERVICE_NAME} 1\n",
            ip = node.ip,
            sport = self.sentinel_port,
            port = self.port,
            dir = absolute(&node.data_dir).display(),
            quorum = Self::quorum(cluster),
            down = self.down_after.as_millis(),
            failover = self.failover_timeout.as_millis(),
        )
    }
}

impl System for RedisSystem {
    /// `ROLE` on each node's server, the Sentinels' configuration epoch as the term.
    fn role_query(&self, cluster: &ClusterSpec) -> Option<std::sync::Arc<dyn RoleQuery>> {
        Some(std::sync::Arc::new(RedisRoles::for_cluster(self, cluster)))
    }

    fn role_address(&self, node: &NodeSpec) -> Option<SocketAddr> {
        Some(self.server_addr(node))
    }

    fn name(&self) -> &str {
        "redis"
    }

    fn version(&self) -> anyhow::Result<String> {
        let binary = self.server_binary.display().to_string();
        let output = std::process::Command::new(&self.server_binary)
            .arg("--version")
            .output()
            .map_err(|error| RedisError::VersionSpawn {
                binary: binary.clone(),
                error,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = parse_version(&text).ok_or_else(|| RedisError::VersionParse {
            binary,
            output: text.to_string(),
        })?;
        Ok(format!("redis {version}"))
    }

    fn launch(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        if !cluster.nodes.iter().any(|n| n.name == node.name) {
            return Err(RedisError::NodeNotInCluster(node.name.clone()).into());
        }
        let primary = cluster.nodes[0].ip;
        let dir = absolute(&node.data_dir);
        let server_conf = dir.join("redis.conf");
        write_file(&server_conf, &self.server_config(node, primary))?;
        let sentinel_conf = if Self::hosts_sentinel(node) {
            let path = dir.join("sentinel.conf");
            write_file(&path, &self.sentinel_config(node, cluster, primary))?;
            path.display().to_string()
        } else {
            String::new()
        };
        // $0 sentinel binary, $1 its config (empty: none), $2 server binary, $3 its config.
        let script = r#"if [ -n "$1" ]; then "$0" "$1" & fi; exec "$2" "$3""#;
        Ok(LaunchSpec {
            program: PathBuf::from("sh"),
            args: vec![
                "-c".to_owned(),
                script.to_owned(),
                self.sentinel_binary.display().to_string(),
                sentinel_conf,
                self.server_binary.display().to_string(),
                server_conf.display().to_string(),
            ],
            env: Vec::new(),
        })
    }

    fn readiness(&self, node: &NodeSpec) -> Readiness {
        let script = r#"redis-cli -h "$0" -p "$1" info replication | grep -Eq '^(role:master|master_link_status:up)' && { [ -z "$2" ] || redis-cli -h "$0" -p "$2" sentinel ckquorum "$3" | grep -q '^OK'; }"#;
        Readiness::Command(LaunchSpec {
            program: PathBuf::from("sh"),
            args: vec![
                "-c".to_owned(),
                script.to_owned(),
                node.ip.to_string(),
                self.port.to_string(),
                if Self::hosts_sentinel(node) {
                    self.sentinel_port.to_string()
                } else {
                    String::new()
                },
                SERVICE_NAME.to_owned(),
            ],
            env: Vec::new(),
        })
    }

    fn client(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<Box<dyn Client>> {
        let mut sentinels = self.sentinel_addrs(cluster);
        // The client's own node's Sentinel first (nodes without one start with the next).
        let start = (node.id - 1) % sentinels.len().max(1);
        sentinels.rotate_left(start);
        Ok(Box::new(RedisClient::new(sentinels, self.client_options)))
    }
}

/// A harness client: asks the Sentinels for the primary, keeps one connection to it (and
/// one to a replica for replica reads), and asks again after any connection error.
pub struct RedisClient {
    sentinels: Vec<SocketAddr>,
    options: RedisClientOptions,
    sentinel: Option<Sentinel>,
    primary: Option<MultiplexedConnection>,
    replica: Option<MultiplexedConnection>,
}

#[derive(Debug)]
enum CallError {
    /// Certainly not applied.
    NotSent(String),
    /// Sent; the effect is unknown.
    MaybeSent(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NotSent(m) | CallError::MaybeSent(m) => f.write_str(m),
        }
    }
}

/// An error of a command that was sent: a reply from the server is a definite refusal;
/// anything that cut the exchange leaves the effect unknown.
fn sent_error(error: redis::RedisError) -> CallError {
    if error.is_connection_refusal() {
        CallError::NotSent(error.to_string())
    } else if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
        CallError::MaybeSent(error.to_string())
    } else {
        CallError::NotSent(error.to_string())
    }
}

fn classify(f: Function, error: CallError) -> Outcome {
    let is_read = matches!(f, Function::Read | Function::ReadSet);
    match error {
        CallError::NotSent(m) => Outcome::Fail(m),
        CallError::MaybeSent(m) if is_read => Outcome::Fail(m),
        CallError::MaybeSent(m) => Outcome::Info(m),
    }
}

/// Compares and sets atomically: `KEYS[1]` becomes `ARGV[2]` if it holds `ARGV[1]`.
const CAS_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";

impl RedisClient {
    pub fn new(sentinels: Vec<SocketAddr>, options: RedisClientOptions) -> Self {
        RedisClient {
            sentinels,
            options,
            sentinel: None,
            primary: None,
            replica: None,
        }
    }

    pub async fn perform(&mut self, request: &Request) -> Outcome {
        let deadline = Instant::now() + request.timeout;
        match self.perform_inner(request, deadline).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // The next request asks the Sentinels afresh.
                self.primary = None;
                self.replica = None;
                classify(request.f, error)
            }
        }
    }

    async fn perform_inner(
        &mut self,
        request: &Request,
        deadline: Instant,
    ) -> Result<Outcome, CallError> {
        let is_read = matches!(request.f, Function::Read | Function::ReadSet);
        let from_replica = is_read && self.options.replica_reads;
        let wait = self.options.wait;
        let conn = self.connection(from_replica, deadline).await?;
        let op = async {
            match request.f {
                // Refused when the campaign is loaded; never sent.
                Function::Txn => Ok(Outcome::Fail("redis runs no transactions here".into())),
                Function::Read => {
                    let value: Option<String> = redis::cmd("GET")
                        .arg(register_key(&request.key))
                        .query_async(conn)
                        .await
                        .map_err(sent_error)?;
                    Ok(Outcome::Ok(value.map_or(Value::Nil, |v| decode_value(&v))))
                }
                Function::ReadSet => {
                    let members: Vec<String> = redis::cmd("SMEMBERS")
                        .arg(set_key(&request.key))
                        .query_async(conn)
                        .await
                        .map_err(sent_error)?;
                    let mut elements: Vec<Value> =
                        members.iter().map(|m| decode_value(m)).collect();
                    elements.sort();
                    Ok(Outcome::Ok(Value::List(elements)))
                }
                Function::Write => {
                    let value = encode_value(&request.value)?;
                    let () = redis::cmd("SET")
                        .arg(register_key(&request.key))
                        .arg(value)
                        .query_async(conn)
                        .await
                        .map_err(sent_error)?;
                    after_write(conn, wait, Outcome::Ok(request.value.clone())).await
                }
                Function::Add => {
                    let element = encode_value(&request.value)?;
                    let _: i64 = redis::cmd("SADD")
                        .arg(set_key(&request.key))
                        .arg(element)
                        .query_async(conn)
                        .await
                        .map_err(sent_error)?;
                    after_write(conn, wait, Outcome::Ok(request.value.clone())).await
                }
                Function::Cas => {
                    let (expected, new) = match &request.value {
                        Value::List(items) if items.len() == 2 => (&items[0], &items[1]),
                        other => {
                            return Err(CallError::NotSent(format!(
                                "cas wants [expected new], got {other}"
                            )))
                        }
                    };
                    let new_text = encode_value(new)?;
                    let swapped = if *expected == Value::Nil {
                        let reply: Option<String> = redis::cmd("SET")
                            .arg(register_key(&request.key))
                            .arg(new_text)
                            .arg("NX")
                            .query_async(conn)
                            .await
                            .map_err(sent_error)?;
                        reply.is_some()
                    } else {
                        let reply: i64 = redis::cmd("EVAL")
                            .arg(CAS_SCRIPT)
                            .arg(1)
                            .arg(register_key(&request.key))
                            .arg(encode_value(expected)?)
                            .arg(new_text)
                            .query_async(conn)
                            .await
                            .map_err(sent_error)?;
                        reply == 1
                    };
                    if !swapped {
                        return Ok(Outcome::Fail("compare-failed".to_owned()));
                    }
                    after_write(conn, wait, Outcome::Ok(request.value.clone())).await
                }
            }
        };
        match timeout_at(deadline, op).await {
            Ok(result) => result,
            Err(_) => Err(CallError::MaybeSent("timed out".to_owned())),
        }
    }

    /// A connection to the primary (or a replica), asking the Sentinels when there is none.
    async fn connection(
        &mut self,
        replica: bool,
        deadline: Instant,
    ) -> Result<&mut MultiplexedConnection, CallError> {
        let open = if replica {
            self.replica.is_none()
        } else {
            self.primary.is_none()
        };
        if open {
            let found = timeout_at(deadline, self.discover(replica)).await;
            let conn = match found {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    self.forget_sentinel();
                    return Err(CallError::NotSent(format!("asking the Sentinels: {e}")));
                }
                Err(_) => {
                    self.forget_sentinel();
                    return Err(CallError::NotSent(
                        "timed out asking the Sentinels".to_owned(),
                    ));
                }
            };
            if replica {
                self.replica = Some(conn);
            } else {
                self.primary = Some(conn);
            }
        }
        let conn = if replica {
            self.replica.as_mut()
        } else {
            self.primary.as_mut()
        };
        Ok(conn.expect("connection was just opened"))
    }

    /// Drops the Sentinel connections and tries the next Sentinel first next time, so one
    /// frozen Sentinel does not stall the client forever.
    fn forget_sentinel(&mut self) {
        self.sentinel = None;
        if !self.sentinels.is_empty() {
            self.sentinels.rotate_left(1);
        }
    }

    async fn discover(&mut self, replica: bool) -> redis::RedisResult<MultiplexedConnection> {
        if self.sentinel.is_none() {
            let urls: Vec<String> = self
                .sentinels
                .iter()
                .map(|a| format!("redis://{a}"))
                .collect();
            self.sentinel = Some(Sentinel::build(urls)?);
        }
        let sentinel = self.sentinel.as_mut().expect("sentinel was just built");
        let client = if replica {
            sentinel.async_replica_for(SERVICE_NAME, None).await?
        } else {
            sentinel.async_master_for(SERVICE_NAME, None).await?
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// `WAIT` after a mutation, when asked: fewer acknowledgements than wanted leave the write
/// on the primary only, which a failover may lose, so it is `info`.
async fn after_write(
    conn: &mut MultiplexedConnection,
    wait: Option<WaitOptions>,
    done: Outcome,
) -> Result<Outcome, CallError> {
    let Some(wait) = wait else {
        return Ok(done);
    };
    let acknowledged: i64 = redis::cmd("WAIT")
        .arg(wait.replicas)
        .arg(wait.timeout.as_millis() as u64)
        .query_async(conn)
        .await
        .map_err(|e| CallError::MaybeSent(format!("WAIT: {e}")))?;
    if acknowledged < i64::from(wait.replicas) {
        return Err(CallError::MaybeSent(format!(
            "WAIT: {acknowledged} of {} replicas acknowledged",
            wait.replicas
        )));
    }
    Ok(done)
}

impl Client for RedisClient {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(self.perform(request))
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::Str(s) | Value::Keyword(s) => s.clone(),
        other => other.to_string(),
    }
}

fn register_key(key: &Value) -> String {
    format!("r:{}", key_text(key))
}

fn set_key(key: &Value) -> String {
    format!("s:{}", key_text(key))
}

fn encode_value(value: &Value) -> Result<String, CallError> {
    match value {
        Value::Int(i) => Ok(i.to_string()),
        other => Err(CallError::NotSent(format!(
            "redis values are integers, got {other}"
        ))),
    }
}

fn decode_value(text: &str) -> Value {
    text.parse::<i64>()
        .map(Value::Int)
        .unwrap_or_else(|_| Value::Str(text.to_owned()))
}

/// One RESP reply, as far as the role query needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Resp>),
}

/// Reads one RESP reply from `reader`.
pub fn read_resp(reader: &mut impl BufRead) -> Result<Resp, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at_checked(1).ok_or("empty reply")?;
    let number = || {
        rest.parse::<i64>()
            .map_err(|e| format!("bad length {rest:?}: {e}"))
    };
    match kind {
        "+" => Ok(Resp::Simple(rest.to_owned())),
        "-" => Ok(Resp::Error(rest.to_owned())),
        ":" => Ok(Resp::Int(number()?)),
        "$" => {
            let len = number()?;
            if len < 0 {
                return Ok(Resp::Bulk(None));
            }
            let mut buf = vec![0u8; len as usize + 2];
            std::io::Read::read_exact(reader, &mut buf).map_err(|e| e.to_string())?;
            buf.truncate(len as usize);
            Ok(Resp::Bulk(Some(String::from_utf8_lossy(&buf).into_owned())))
        }
        "*" => {
            let len = number()?;
            let mut items = Vec::new();
            for _ in 0..len.max(0) {
                items.push(read_resp(reader)?);
            }
            Ok(Resp::Array(items))
        }
        other => Err(format!("unknown RESP type {other:?}")),
    }
}

impl Resp {
    fn text(&self) -> Option<&str> {
        match self {
            Resp::Simple(s) | Resp::Bulk(Some(s)) => Some(s),
            _ => None,
        }
    }
}

/// Sends one command (`args`) to `addr` and reads the reply. Blocking.
pub fn command(addr: SocketAddr, args: &[&str], timeout: Duration) -> Result<Resp, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    read_resp(&mut BufReader::new(stream))
}

/// The role `ROLE` reports: `master`, `slave` or `sentinel`.
pub fn parse_role(reply: &Resp) -> Option<&str> {
    match reply {
        Resp::Array(items) => items.first()?.text(),
        _ => None,
    }
}

/// The primary's address and the configuration epoch from a `SENTINEL MASTER` reply.
pub fn parse_sentinel_master(reply: &Resp) -> Option<(String, u64)> {
    let Resp::Array(items) = reply else {
        return None;
    };
    let field = |name: &str| {
        items
            .chunks(2)
            .find(|pair| pair[0].text() == Some(name))
            .and_then(|pair| pair.get(1)?.text())
    };
    let addr = format!("{}:{}", field("ip")?, field("port")?);
    let epoch = field("config-epoch")?.parse().ok()?;
    Some((addr, epoch))
}

/// Who leads, from `ROLE` on the node's server; the term is the highest configuration
/// epoch of the Sentinels (of `sentinels`) that name this node as the primary, so that a
/// deposed primary that still says `master` loses to the one the Sentinels promoted.
pub fn redis_status(
    node: &str,
    addr: SocketAddr,
    sentinels: &[SocketAddr],
    timeout: Duration,
) -> Result<NodeStatus, String> {
    let reply = command(addr, &["ROLE"], timeout)?;
    let role = parse_role(&reply).ok_or_else(|| format!("unreadable ROLE reply: {reply:?}"))?;
    let is_leader = role == "master";
    let mut term = 0;
    if is_leader {
        for sentinel in sentinels {
            if let Ok(reply) = command(*sentinel, &["SENTINEL", "MASTER", SERVICE_NAME], timeout) {
                if let Some((primary, epoch)) = parse_sentinel_master(&reply) {
                    if primary == addr.to_string() {
                        term = term.max(epoch);
                    }
                }
            }
        }
    }
    Ok(NodeStatus {
        node: node.to_owned(),
        is_leader,
        term,
        time_ms: None,
    })
}

/// Redis's role query: `ROLE` on the node's server, Sentinel's epochs for the term.
/// Without Sentinel addresses every primary has term 0.
#[derive(Debug, Clone, Default)]
pub struct RedisRoles {
    pub sentinels: Vec<SocketAddr>,
}

impl RedisRoles {
    /// The query for a cluster of `nodes` node addresses, in node order.
    pub fn for_cluster(system: &RedisSystem, cluster: &ClusterSpec) -> Self {
        RedisRoles {
            sentinels: system.sentinel_addrs(cluster),
        }
    }
}

impl RoleQuery for RedisRoles {
    fn system(&self) -> &str {
        "redis"
    }

    fn status(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        redis_status(node, addr, &self.sentinels, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::system::test_cluster as cluster;

    #[test]
    fn first_node_is_primary_and_three_nodes_run_sentinels() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster(5, dir.path());
        let system = RedisSystem::default();
        let n1 = system.launch(&cluster.nodes[0], &cluster).unwrap();
        let n2 = system.launch(&cluster.nodes[1], &cluster).unwrap();
        let n5 = system.launch(&cluster.nodes[4], &cluster).unwrap();
        assert_eq!(n1.program, PathBuf::from("sh"));
        let conf =
            |n: usize, f: &str| std::fs::read_to_string(cluster.nodes[n].data_dir.join(f)).unwrap();
        assert!(!conf(0, "redis.conf").contains("replicaof"));
        assert!(conf(1, "redis.conf").contains("replicaof 10.77.0.2 6379\n"));
        assert!(conf(1, "sentinel.conf").contains("sentinel monitor splitbrain 10.77.0.2 6379 2\n"));
        assert!(!n2.args[3].is_empty(), "n2 hosts a Sentinel");
        assert!(n5.args[3].is_empty(), "n5 hosts no Sentinel");
        assert!(!cluster.nodes[4].data_dir.join("sentinel.conf").exists());
    }

    #[test]
    fn clients_ask_their_own_nodes_sentinel_first() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster(3, dir.path());
        let system = RedisSystem::default();
        let mut addrs = system.sentinel_addrs(&cluster);
        addrs.rotate_left(1);
        assert_eq!(addrs[0], "10.77.0.3:26379".parse().unwrap());
        assert_eq!(RedisSystem::quorum(&cluster), 2);
    }

    #[test]
    fn version_and_replies_are_parsed() {
        assert_eq!(
            parse_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64\n")
                .as_deref(),
            Some("7.0.15")
        );
        let role = read_resp(&mut "*3\r\n$6\r\nmaster\r\n:42\r\n*0\r\n".as_bytes()).unwrap();
        assert_eq!(parse_role(&role), Some("master"));
        let master = read_resp(
            &mut "*6\r\n$2\r\nip\r\n$9\r\n10.77.0.3\r\n$4\r\nport\r\n$4\r\n6379\r\n$12\r\nconfig-epoch\r\n$1\r\n2\r\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            parse_sentinel_master(&master),
            Some(("10.77.0.3:6379".to_owned(), 2))
        );
        assert!(read_resp(&mut "?x\r\n".as_bytes()).is_err());
    }

    #[test]
    fn unknown_mutations_are_info_and_failed_reads_fail() {
        let maybe = || CallError::MaybeSent("connection reset".into());
        assert!(matches!(
            classify(Function::Read, maybe()),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            classify(Function::Write, maybe()),
            Outcome::Info(_)
        ));
        assert!(matches!(classify(Function::Add, maybe()), Outcome::Info(_)));
        assert!(matches!(
            classify(Function::Cas, CallError::NotSent("READONLY".into())),
            Outcome::Fail(_)
        ));
    }
}
