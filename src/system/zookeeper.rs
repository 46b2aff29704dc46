//! ZooKeeper 3.8 (Debian's `zookeeper`) as a system under test, with a native client.
//!
//! # Nodes
//!
//! Every node is the harness's own JVM running `QuorumPeerMain` in the node's namespace and
//! cgroup (never Debian's service). `launch` writes the node's `zoo.cfg` and `myid` into its
//! data directory: the same `server.<id>=<ip>:2888:3888` lines on every node, client port
//! 2181 on the node's address, the `srvr`, `mntr` and `ruok` four-letter words enabled (for
//! readiness and roles), and the admin HTTP server off. Timing is tuned for tests on one
//! machine: a 500 ms tick (ZooKeeper's default is 2 s), followers that lag 5 ticks are
//! dropped, sessions last 4 s. A node is ready when it answers `srvr` with `Mode: leader`
//! or `Mode: follower`: it has joined a quorum that has a leader and it serves clients.
//!
//! # Client
//!
//! The `zookeeper-client` crate (tokio), one session per harness client, connected to its
//! node only (so a client sees what that node serves). The register `k` is the znode
//! `/r/<k>` holding the value as decimal text; the set `k` is the children of `/s/<k>`, one
//! per element.
//!
//! * read: `getData` (after `sync` with `sync_reads: true`); a missing znode reads nil.
//! * write: `setData` without a version, or `create` when the znode does not exist yet.
//! * cas `[old new]`: `getData` (after `sync` with `sync_reads: true`), compare, then
//!   `setData` with the version read — ZooKeeper refuses it (`BadVersion`) if anyone wrote
//!   in between, so a cas that succeeds is atomic even when the read was stale. A failed
//!   compare is reported as `compare-failed`, an observation of the value, only as good as
//!   the read it came from; a refused version is `version-changed`, which observes nothing.
//!   `[nil new]` creates the znode (`compare-failed` if it exists).
//!
//! What ZooKeeper promises: writes are linearizable (they go through the leader's atomic
//! broadcast); plain reads are served by the contacted server from its local state, so they
//! are sequentially consistent per session but may be stale — a node cut off from the quorum
//! keeps answering reads until its session layer notices. `sync` before a read makes the
//! server catch up with the leader first, which closes that window in practice (ZooKeeper
//! documents it as "not strictly linearizable" because the sync and the read are two steps).
//!
//! Outcomes: a read that does not complete is `fail`; a mutation whose reply never came
//! (connection loss, timeout, expired session) is `info`; `NoNode`, `NodeExists` and
//! `BadVersion` are definite refusals.

use super::{
    BoxFuture, Client, ClusterSpec, Function, LaunchSpec, NodeSpec, Outcome, Readiness, Request,
    System,
};
use super::{NodeStatus, RoleQuery};
use splitbrain_checkers::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::{timeout_at, Instant};
use zookeeper_client as zk;

/// Errors of the ZooKeeper system (launch, version), as opposed to operation outcomes.
#[derive(Debug, thiserror::Error)]
pub enum ZooKeeperError {
    #[error("cannot run `{java}` to read ZooKeeper's version: {error}")]
    VersionSpawn { java: String, error: std::io::Error },
    #[error("ZooKeeper's VersionInfoMain printed no version: {output:?}")]
    VersionParse { output: String },
    #[error("node {0} is not part of the cluster it is launched in")]
    NodeNotInCluster(String),
    #[error("writing {path}: {error}")]
    Config {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// How the client reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZooKeeperClientOptions {
    /// `sync` before every `getData`, so the contacted server first catches up with the leader.
    pub sync_reads: bool,
}

/// ZooKeeper's three ports on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZooKeeperPorts {
    pub client: u16,
    pub quorum: u16,
    pub election: u16,
}

impl Default for ZooKeeperPorts {
    fn default() -> Self {
        ZooKeeperPorts {
            client: 2181,
            quorum: 2888,
            election: 3888,
        }
    }
}

/// ZooKeeper as a system under test.
#[derive(Debug, Clone)]
pub struct ZooKeeperSystem {
    /// The `java` binary (looked up in `PATH` when relative).
    pub java: PathBuf,
    /// ZooKeeper's jar; its manifest names the other jars it needs.
    pub jar: PathBuf,
    pub ports: ZooKeeperPorts,
    /// ZooKeeper's `tickTime`, the unit of its timeouts.
    pub tick: Duration,
    /// Session timeout the client asks for (ZooKeeper bounds it to 2..20 ticks).
    pub session_timeout: Duration,
    pub client_options: ZooKeeperClientOptions,
}

/// Debian's place for ZooKeeper's jar.
pub const DEBIAN_JAR: &str = "/usr/share/java/zookeeper.jar";

impl Default for ZooKeeperSystem {
    fn default() -> Self {
        ZooKeeperSystem {
            java: PathBuf::from("java"),
            jar: PathBuf::from(DEBIAN_JAR),
            ports: ZooKeeperPorts::default(),
            tick: Duration::from_millis(500),
            session_timeout: Duration::from_secs(4),
            client_options: ZooKeeperClientOptions::default(),
        }
    }
}

impl ZooKeeperSystem {
    /// Where clients reach `node`.
    pub fn client_addr(&self, node: &NodeSpec) -> SocketAddr {
        SocketAddr::new(node.ip.into(), self.ports.client)
    }

    /// The `zoo.cfg` of `node` in `cluster`.
    pub fn config_text(&self, node: &NodeSpec, cluster: &ClusterSpec) -> String {
        let data_dir = absolute(&node.data_dir);
        let mut cfg = format!(
            "tickTime={}\ninitLimit=20\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
             clientPortAddress={}\nmaxClientCnxns=0\n4lw.commands.whitelist=srvr,mntr,ruok\n\
             admin.enableServer=false\nreconfigEnabled=false\nstandaloneEnabled=true\n\
             autopurge.snapRetainCount=3\nautopurge.purgeInterval=0\n",
            self.tick.as_millis(),
            data_dir.display(),
            self.ports.client,
            node.ip,
        );
        if cluster.nodes.len() > 1 {
            for n in &cluster.nodes {
                cfg.push_str(&format!(
                    "server.{}={}:{}:{}\n",
                    n.id, n.ip, self.ports.quorum, self.ports.election
                ));
            }
        }
        cfg
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn write_file(path: &Path, text: &str) -> Result<(), ZooKeeperError> {
    let err = |error| ZooKeeperError::Config {
        path: path.to_owned(),
        error,
    };
    if let Some(dir) = path.parent() {
        crate::results::create_dirs(dir).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

/// Extracts `3.8.0` from `VersionInfoMain` output (`Apache ZooKeeper, version 3.8.0 2024-…`).
pub fn parse_version(output: &str) -> Option<String> {
    let rest = output.split("version").nth(1)?;
    let word = rest.split_whitespace().next()?;
    let version = word.split(['-', ',']).next()?;
    (!version.is_empty() && version.chars().next()?.is_ascii_digit()).then(|| version.to_owned())
}

/// JVM flags for a small test node on a shared machine: a small heap, one GC thread,
/// the fast compiler only.
const JVM_FLAGS: [&str; 5] = [
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.admin.enableServer=false",
];

impl System for ZooKeeperSystem {
    fn name(&self) -> &str {
        "zookeeper"
    }

    /// `srvr` on each node's client port: `Mode: leader`, the zxid's epoch as the term.
    fn role_query(&self, _cluster: &ClusterSpec) -> Option<std::sync::Arc<dyn RoleQuery>> {
        Some(std::sync::Arc::new(ZooKeeperRoles))
    }

    fn role_address(&self, node: &NodeSpec) -> Option<SocketAddr> {
        Some(self.client_addr(node))
    }

    fn version(&self) -> anyhow::Result<String> {
        let output = std::process::Command::new(&self.java)
            .arg("-cp")
            .arg(&self.jar)
            .arg("org.apache.zookeeper.version.VersionInfoMain")
            .output()
            .map_err(|error| ZooKeeperError::VersionSpawn {
                java: self.java.display().to_string(),
                error,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = parse_version(&text).ok_or_else(|| ZooKeeperError::VersionParse {
            output: text.to_string(),
        })?;
        Ok(format!("zookeeper {version}"))
    }

    fn launch(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        if !cluster.nodes.iter().any(|n| n.name == node.name) {
            return Err(ZooKeeperError::NodeNotInCluster(node.name.clone()).into());
        }
        let data_dir = absolute(&node.data_dir);
        let cfg_path = data_dir.join("zoo.cfg");
        write_file(&cfg_path, &self.config_text(node, cluster))?;
        write_file(&data_dir.join("myid"), &format!("{}\n", node.id))?;
        let mut args: Vec<String> = JVM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.extend([
            "-cp".to_owned(),
            self.jar.display().to_string(),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain".to_owned(),
            cfg_path.display().to_string(),
        ]);
        Ok(LaunchSpec {
            program: self.java.clone(),
            args,
            env: Vec::new(),
        })
    }

    fn readiness(&self, node: &NodeSpec) -> Readiness {
        // `srvr` answers `Mode: leader|follower` only once the node is part of a quorum with
        // a leader and serves; before, it says it is "not currently serving requests".
        Readiness::Command(LaunchSpec {
            program: PathBuf::from("bash"),
            args: vec![
                "-c".to_owned(),
                r#"exec 3<>"/dev/tcp/$0/$1" && printf srvr >&3 && grep -Eq '^Mode: (leader|follower|standalone)' <&3"#
                    .to_owned(),
                node.ip.to_string(),
                self.ports.client.to_string(),
            ],
            env: Vec::new(),
        })
    }

    fn client(&self, node: &NodeSpec, _cluster: &ClusterSpec) -> anyhow::Result<Box<dyn Client>> {
        Ok(Box::new(ZooKeeperClient::new(
            self.client_addr(node),
            self.session_timeout,
            self.client_options,
        )))
    }
}

/// A harness client: one ZooKeeper session with one server, opened on first use and again
/// after it breaks.
pub struct ZooKeeperClient {
    addr: SocketAddr,
    session_timeout: Duration,
    options: ZooKeeperClientOptions,
    session: Option<zk::Client>,
}

/// Why an operation did not complete.
#[derive(Debug)]
enum CallError {
    /// Certainly not applied (no session, refused before sending).
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

impl ZooKeeperClient {
    pub fn new(
        addr: SocketAddr,
        session_timeout: Duration,
        options: ZooKeeperClientOptions,
    ) -> Self {
        ZooKeeperClient {
            addr,
            session_timeout,
            options,
            session: None,
        }
    }

    /// Performs `request` before its timeout.
    pub async fn perform(&mut self, request: &Request) -> Outcome {
        let deadline = Instant::now() + request.timeout;
        let result = self.perform_inner(request, deadline).await;
        match result {
            Ok(outcome) => outcome,
            Err(error) => {
                // A broken or timed-out session may hold late replies: start afresh.
                self.session = None;
                classify(request.f, error)
            }
        }
    }

    async fn perform_inner(
        &mut self,
        request: &Request,
        deadline: Instant,
    ) -> Result<Outcome, CallError> {
        let sync_reads = self.options.sync_reads;
        let session = self.connected(deadline).await?;
        let op = async {
            match request.f {
                // Refused when the campaign is loaded; never sent.
                Function::Txn => Ok(Outcome::Fail("zookeeper runs no transactions here".into())),
                Function::Read => read(session, &register_path(&request.key), sync_reads).await,
                Function::Write => {
                    write(session, &register_path(&request.key), &request.value).await
                }
                Function::Cas => {
                    cas(
                        session,
                        &register_path(&request.key),
                        &request.value,
                        sync_reads,
                    )
                    .await
                }
                Function::Add => add(session, &request.key, &request.value).await,
                Function::ReadSet => read_set(session, &request.key, sync_reads).await,
            }
        };
        match timeout_at(deadline, op).await {
            Ok(result) => result,
            Err(_) => Err(CallError::MaybeSent("timed out".to_owned())),
        }
    }

    async fn connected(&mut self, deadline: Instant) -> Result<&zk::Client, CallError> {
        let broken = self
            .session
            .as_ref()
            .is_some_and(|s| s.state().is_terminated());
        if broken {
            self.session = None;
        }
        if self.session.is_none() {
            let connect_string = self.addr.to_string();
            let connect = zk::Client::connector()
                .with_session_timeout(self.session_timeout)
                .with_connection_timeout(self.session_timeout / 2)
                .with_fail_eagerly()
                .connect(&connect_string);
            let session = match timeout_at(deadline, connect).await {
                Err(_) => return Err(CallError::NotSent("connect timed out".to_owned())),
                Ok(Err(e)) => return Err(CallError::NotSent(format!("connect: {e}"))),
                Ok(Ok(session)) => session,
            };
            self.session = Some(session);
        }
        Ok(self.session.as_ref().expect("session was just opened"))
    }
}

impl Client for ZooKeeperClient {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(self.perform(request))
    }
}

/// An error of an operation that was sent: refusals are definite, the rest unknown.
fn sent_error(error: zk::Error) -> CallError {
    match error {
        zk::Error::BadArguments(_) | zk::Error::NoAuth | zk::Error::Throttled => {
            CallError::NotSent(error.to_string())
        }
        other => CallError::MaybeSent(other.to_string()),
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

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn read(session: &zk::Client, path: &str, sync: bool) -> Result<Outcome, CallError> {
    if sync {
        match session.sync(path).await {
            Ok(()) | Err(zk::Error::NoNode) => {}
            Err(e) => return Err(sent_error(e)),
        }
    }
    match session.get_data(path).await {
        Ok((data, _)) => Ok(Outcome::Ok(decode_value(&data))),
        Err(zk::Error::NoNode) => Ok(Outcome::Ok(Value::Nil)),
        Err(e) => Err(sent_error(e)),
    }
}

async fn write(session: &zk::Client, path: &str, value: &Value) -> Result<Outcome, CallError> {
    let data = encode_value(value)?;
    // `NoNode` and `NodeExists` are refusals with no effect, so trying the other call is safe.
    for _ in 0..3 {
        match session.set_data(path, &data, None).await {
            Ok(_) => return Ok(Outcome::Ok(value.clone())),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(sent_error(e)),
        }
        ensure_parent(session, path).await?;
        match session.create(path, &data, &persistent()).await {
            Ok(_) => return Ok(Outcome::Ok(value.clone())),
            Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(sent_error(e)),
        }
    }
    Ok(Outcome::Fail(
        "znode created and deleted concurrently".to_owned(),
    ))
}

/// `compare-failed` is an observation (the value was not the expected one), so it is only
/// said after a read of the same kind as the reads: synced with `sync_reads`. A `setData`
/// refused for its version is a definite failure, but says nothing about the value (the
/// same value may have been written again), so it is `version-changed`.
async fn cas(
    session: &zk::Client,
    path: &str,
    pair: &Value,
    sync: bool,
) -> Result<Outcome, CallError> {
    let (expected, new) = match pair {
        Value::List(items) if items.len() == 2 => (&items[0], &items[1]),
        other => {
            return Err(CallError::NotSent(format!(
                "cas wants [expected new], got {other}"
            )))
        }
    };
    let data = encode_value(new)?;
    if *expected == Value::Nil {
        ensure_parent(session, path).await?;
        return match session.create(path, &data, &persistent()).await {
            Ok(_) => Ok(Outcome::Ok(pair.clone())),
            Err(zk::Error::NodeExists) => Ok(Outcome::Fail("compare-failed".to_owned())),
            Err(e) => Err(sent_error(e)),
        };
    }
    if sync {
        match session.sync(path).await {
            Ok(()) | Err(zk::Error::NoNode) => {}
            // Nothing was changed yet: the cas certainly did not happen.
            Err(e) => return Err(CallError::NotSent(e.to_string())),
        }
    }
    let (current, stat) = match session.get_data(path).await {
        Ok(found) => found,
        Err(zk::Error::NoNode) => return Ok(Outcome::Fail("compare-failed".to_owned())),
        // Nothing was changed yet: the cas certainly did not happen.
        Err(e) => return Err(CallError::NotSent(e.to_string())),
    };
    if decode_value(&current) != *expected {
        return Ok(Outcome::Fail("compare-failed".to_owned()));
    }
    let set = session.set_data(path, &data, Some(stat.version)).await;
    versioned_set_outcome(set.map(|_| ()), pair)
}

/// The outcome of the cas's `setData` with a version.
fn versioned_set_outcome(set: Result<(), zk::Error>, pair: &Value) -> Result<Outcome, CallError> {
    match set {
        Ok(()) => Ok(Outcome::Ok(pair.clone())),
        Err(zk::Error::BadVersion) | Err(zk::Error::NoNode) => {
            Ok(Outcome::Fail("version-changed".to_owned()))
        }
        Err(e) => Err(sent_error(e)),
    }
}

async fn add(session: &zk::Client, key: &Value, element: &Value) -> Result<Outcome, CallError> {
    let encoded = String::from_utf8(encode_value(element)?).expect("decimal text");
    let path = format!("{}/{encoded}", set_path(key));
    ensure_parent(session, &path).await?;
    match session
        .create(&path, encoded.as_bytes(), &persistent())
        .await
    {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(Outcome::Ok(element.clone())),
        Err(e) => Err(sent_error(e)),
    }
}

async fn read_set(session: &zk::Client, key: &Value, sync: bool) -> Result<Outcome, CallError> {
    let path = set_path(key);
    if sync {
        match session.sync(&path).await {
            Ok(()) | Err(zk::Error::NoNode) => {}
            Err(e) => return Err(sent_error(e)),
        }
    }
    let children = match session.list_children(&path).await {
        Ok(children) => children,
        Err(zk::Error::NoNode) => Vec::new(),
        Err(e) => return Err(sent_error(e)),
    };
    let mut elements: Vec<Value> = children
        .iter()
        .map(|c| decode_value(c.as_bytes()))
        .collect();
    elements.sort();
    Ok(Outcome::Ok(Value::List(elements)))
}

/// Creates the ancestors of `path` (`/r`, `/s`, `/s/<k>`) that are missing. Creating a
/// parent is idempotent and has no effect on any register or set the checker sees.
async fn ensure_parent(session: &zk::Client, path: &str) -> Result<(), CallError> {
    let mut prefix = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        prefix.push('/');
        prefix.push_str(part);
        match session.create(&prefix, b"", &persistent()).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(CallError::NotSent(format!("creating {prefix}: {e}"))),
        }
    }
    Ok(())
}

fn key_text(key: &Value) -> String {
    let text = match key {
        Value::Str(s) | Value::Keyword(s) => s.clone(),
        other => other.to_string(),
    };
    // A znode name cannot contain `/`.
    text.replace('/', "_")
}

fn register_path(key: &Value) -> String {
    format!("/r/{}", key_text(key))
}

fn set_path(key: &Value) -> String {
    format!("/s/{}", key_text(key))
}

fn encode_value(value: &Value) -> Result<Vec<u8>, CallError> {
    match value {
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(CallError::NotSent(format!(
            "zookeeper values are integers, got {other}"
        ))),
    }
}

fn decode_value(bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    // Integers are what the harness writes; anything else is reported as it is.
    text.parse::<i64>()
        .map(Value::Int)
        .unwrap_or_else(|_| Value::Str(text.into_owned()))
}

/// What `srvr` says about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMode {
    /// `leader`, `follower`, `observer`, `standalone`, or `not serving`.
    pub mode: String,
    /// The last zxid the server saw; its high 32 bits are the leader's epoch.
    pub zxid: u64,
}

/// Parses the answer to `srvr`.
pub fn parse_srvr(text: &str) -> Option<ServerMode> {
    if text.contains("not currently serving requests") {
        return Some(ServerMode {
            mode: "not serving".to_owned(),
            zxid: 0,
        });
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let mode = field("Mode:")?;
    let zxid = field("Zxid:")
        .and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    Some(ServerMode { mode, zxid })
}

/// Sends a four-letter word to `addr` and returns the whole answer. Blocking.
pub fn four_letter_word(addr: SocketAddr, word: &str, timeout: Duration) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(word.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("reading `{word}`: {e}"))?;
    Ok(text)
}

/// Who leads, from `srvr`: the server in `Mode: leader`; its term is the epoch of its zxid.
pub fn zookeeper_status(
    node: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<NodeStatus, String> {
    let text = four_letter_word(addr, "srvr", timeout)?;
    let mode = parse_srvr(&text).ok_or_else(|| format!("unreadable `srvr` answer: {text:?}"))?;
    Ok(NodeStatus {
        node: node.to_owned(),
        is_leader: mode.mode == "leader",
        term: mode.zxid >> 32,
        time_ms: None,
    })
}

/// ZooKeeper's role query: `srvr` on the node's client port.
pub struct ZooKeeperRoles;

impl RoleQuery for ZooKeeperRoles {
    fn system(&self) -> &str {
        "zookeeper"
    }

    fn status(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        zookeeper_status(node, addr, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::system::test_cluster as cluster;

    #[test]
    fn launch_writes_the_ensemble_config_and_myid() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster(3, dir.path());
        let system = ZooKeeperSystem::default();
        let spec = system.launch(&cluster.nodes[1], &cluster).unwrap();
        let cfg_path = cluster.nodes[1].data_dir.join("zoo.cfg");
        assert_eq!(spec.args.last().unwrap(), &cfg_path.display().to_string());
        assert!(spec.args.iter().any(|a| a.ends_with("QuorumPeerMain")));
        let cfg = std::fs::read_to_string(&cfg_path).unwrap();
        assert!(cfg.contains("server.1=10.77.0.2:2888:3888\n"), "{cfg}");
        assert!(cfg.contains("server.3=10.77.0.4:2888:3888\n"), "{cfg}");
        assert!(cfg.contains("clientPortAddress=10.77.0.3\n"), "{cfg}");
        assert!(
            cfg.contains("4lw.commands.whitelist=srvr,mntr,ruok\n"),
            "{cfg}"
        );
        let myid = std::fs::read_to_string(cluster.nodes[1].data_dir.join("myid")).unwrap();
        assert_eq!(myid, "2\n");
    }

    #[test]
    fn launching_a_stranger_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster(3, dir.path());
        let mut stranger = cluster.nodes[0].clone();
        stranger.name = "n9".to_owned();
        assert!(ZooKeeperSystem::default()
            .launch(&stranger, &cluster)
            .is_err());
    }

    #[test]
    fn srvr_answers_are_understood() {
        let leader = "Zookeeper version: 3.8.0-x, built on 2024\nLatency min/avg/max: 0/0.0/0\n\
                      Zxid: 0x300000007\nMode: leader\nNode count: 5\n";
        assert_eq!(
            parse_srvr(leader),
            Some(ServerMode {
                mode: "leader".to_owned(),
                zxid: 0x3_0000_0007
            })
        );
        let idle = "This ZooKeeper instance is not currently serving requests\n";
        assert_eq!(parse_srvr(idle).unwrap().mode, "not serving");
        assert_eq!(parse_srvr("garbage"), None);
    }

    #[test]
    fn version_is_parsed() {
        assert_eq!(
            parse_version("Apache ZooKeeper, version 3.8.0 2024-12-29 17:54 UTC\n").as_deref(),
            Some("3.8.0")
        );
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn unknown_mutations_are_info_and_failed_reads_fail() {
        let maybe = || CallError::MaybeSent("connection loss".into());
        assert!(matches!(
            classify(Function::Read, maybe()),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            classify(Function::Write, maybe()),
            Outcome::Info(_)
        ));
        assert!(matches!(classify(Function::Cas, maybe()), Outcome::Info(_)));
        assert!(matches!(
            classify(Function::Write, CallError::NotSent("no session".into())),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            sent_error(zk::Error::ConnectionLoss),
            CallError::MaybeSent(_)
        ));
    }

    #[test]
    fn a_refused_version_is_not_a_failed_compare() {
        // `compare-failed` tells the checker the value differed; a version refused by the
        // leader only says someone wrote, possibly the same value.
        let pair = Value::List(vec![Value::Int(1), Value::Int(2)]);
        let refused = versioned_set_outcome(Err(zk::Error::BadVersion), &pair).unwrap();
        assert_eq!(refused, Outcome::Fail("version-changed".to_owned()));
        assert_eq!(
            versioned_set_outcome(Ok(()), &pair).unwrap(),
            Outcome::Ok(pair.clone())
        );
        assert!(matches!(
            versioned_set_outcome(Err(zk::Error::ConnectionLoss), &pair),
            Err(CallError::MaybeSent(_))
        ));
    }

    #[test]
    fn paths_and_values() {
        assert_eq!(register_path(&Value::Str("a/b".into())), "/r/a_b");
        assert_eq!(decode_value(b"-42"), Value::Int(-42));
        assert_eq!(decode_value(b"x"), Value::Str("x".into()));
        assert!(encode_value(&Value::Nil).is_err());
    }
}
