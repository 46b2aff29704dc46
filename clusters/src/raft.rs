//! Raft: leader-based and linearizable, on the `openraft` library.
//!
//! * Every node is initialised with the full membership on its first start (openraft
//!   allows several nodes to initialise with the same membership); later starts resume
//!   from the data directory.
//! * Writes, cas and add are log entries; the state machine applies them in log order, so
//!   a cas is atomic. A compare that fails is decided by the state machine and answered as a
//!   definite failure.
//! * Reads are linearizable through `ensure_linearizable` (a read index confirmed by a
//!   quorum of heartbeats), then served from the local state machine.
//! * Followers forward client requests to the leader they know; a forwarded request is not
//!   forwarded again.
//! * Durability: the vote and every log entry are fsynced before openraft is told they are
//!   stored. The state machine lives in memory and is rebuilt by re-applying the log after a
//!   restart; logs are never compacted (snapshots are off), which suits test-length runs.
//!   With `--bug no-fsync` the log appends and truncations are written but not fsynced
//!   before openraft is told they are stored, so an entry is acknowledged (and committed
//!   once a majority "stored" it) while it may still sit in the page cache: a power loss of
//!   a majority loses acknowledged writes. The vote and membership entries are still
//!   fsynced (the bug is in the data path, as in systems that sync their vote and cluster
//!   configuration but skip the syncs of ordinary log appends).
//! * Peer messages use the shared JSON-lines port (`rpc` = `raft_append`, `raft_vote`,
//!   `raft_snapshot`, `forward`).

use crate::config::Config;
use crate::log;
use crate::net::{Node, Peers, RpcError};
use crate::protocol::{failure_for, read_answer, ClientRequest, Mutation, Response, Status};
use crate::storage::{StorageError as WalError, Wal};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{
    Adaptor, LogState, RaftLogReader, RaftSnapshotBuilder, RaftStorage, Snapshot,
};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftTypeConfig, ServerState, SnapshotMeta,
    SnapshotPolicy, StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One replicated command: a mutation of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub key: String,
    pub mutation: Mutation,
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

type NodeId = <TypeConfig as RaftTypeConfig>::NodeId;
type Raft = openraft::Raft<TypeConfig>;

/// How long a node without a usable leader waits before asking openraft again.
const LEADER_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(20);

// ---------------------------------------------------------------------------------------
// Storage

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LogRecord {
    Append(Entry<TypeConfig>),
    /// Drop every entry from this index on (a conflicting suffix).
    Truncate(u64),
    /// Drop every entry up to and including this log id (after a snapshot).
    Purge(LogId<NodeId>),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct StateMachine {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    data: HashMap<String, Json>,
}

#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

struct Inner {
    vote_path: PathBuf,
    vote: Option<Vote<NodeId>>,
    log: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    wal: Arc<Wal>,
    /// Whether log records are fsynced before they count as stored (false: `no-fsync`).
    sync_log: bool,
    machine: StateMachine,
    snapshot: Option<StoredSnapshot>,
    snapshots_built: u64,
}

/// The log, vote and state machine, shared by openraft's log and state-machine halves.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
}

fn io_error(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write(&e).into()
}

impl Store {
    fn open(dir: &std::path::Path, sync_log: bool) -> Result<Store, WalError> {
        let vote_path = dir.join("raft-vote.json");
        let vote = match std::fs::read_to_string(&vote_path) {
            // A vote that cannot be read must not be forgotten: the node could vote twice.
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: unreadable vote: {e}", vote_path.display()),
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let log_path = dir.join("raft-log.jsonl");
        let mut log = BTreeMap::new();
        let mut last_purged = None;
        for record in Wal::replay::<LogRecord>(&log_path)? {
            match record {
                LogRecord::Append(entry) => {
                    log.insert(entry.log_id.index, entry);
                }
                LogRecord::Truncate(from) => {
                    log.split_off(&from);
                }
                LogRecord::Purge(upto) => {
                    log = log.split_off(&(upto.index + 1));
                    last_purged = Some(upto);
                }
            }
        }
        let mut compacted: Vec<LogRecord> = last_purged.into_iter().map(LogRecord::Purge).collect();
        compacted.extend(log.values().cloned().map(LogRecord::Append));
        let wal = Arc::new(Wal::rewrite(&log_path, &compacted)?);
        Ok(Store {
            inner: Arc::new(Mutex::new(Inner {
                vote_path,
                vote,
                log,
                last_purged,
                wal,
                sync_log,
                machine: StateMachine::default(),
                snapshot: None,
                snapshots_built: 0,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current value of `key` in the state machine.
    fn read(&self, key: &str) -> Json {
        self.lock()
            .machine
            .data
            .get(key)
            .cloned()
            .unwrap_or(Json::Null)
    }

    async fn log_records(&self, records: Vec<LogRecord>) -> Result<(), StorageError<NodeId>> {
        let (wal, sync_log) = {
            let inner = self.lock();
            (Arc::clone(&inner.wal), inner.sync_log)
        };
        for record in &records {
            wal.append(record).map_err(io_error)?;
        }
        let membership = |r: &LogRecord| matches!(r, LogRecord::Append(e) if matches!(e.payload, EntryPayload::Membership(_)));
        if !sync_log && !records.iter().any(membership) {
            // The bug: the records are in the page cache, not on the disk, and are
            // reported stored all the same. (Membership changes, rare, still go through
            // a synced write, as cluster configurations usually do.)
            return Ok(());
        }
        wal.sync().await.map_err(io_error)
    }
}

impl RaftLogReader<TypeConfig> for Store {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self
            .lock()
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Store {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut inner = self.lock();
        let data = serde_json::to_vec(&inner.machine).map_err(io_error)?;
        inner.snapshots_built += 1;
        let meta = SnapshotMeta {
            last_log_id: inner.machine.last_applied,
            last_membership: inner.machine.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                inner.machine.last_applied.map_or(0, |id| id.index),
                inner.snapshots_built
            ),
        };
        inner.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStorage<TypeConfig> for Store {
    type LogReader = Store;
    type SnapshotBuilder = Store;

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let path = self.lock().vote_path.clone();
        let text = serde_json::to_vec(vote).map_err(io_error)?;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let tmp = path.with_extension("tmp");
            {
                use std::io::Write;
                let mut file = std::fs::File::create(&tmp)?;
                file.write_all(&text)?;
                file.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(io_error)?
        .map_err(io_error)?;
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last = inner
            .log
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn append_to_log<I>(&mut self, entries: I) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        self.log_records(entries.iter().cloned().map(LogRecord::Append).collect())
            .await?;
        let mut inner = self.lock();
        for entry in entries {
            inner.log.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    async fn delete_conflict_logs_since(
        &mut self,
        log_id: LogId<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.log_records(vec![LogRecord::Truncate(log_id.index)])
            .await?;
        self.lock().log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge_logs_upto(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log_records(vec![LogRecord::Purge(log_id)]).await?;
        let mut inner = self.lock();
        inner.log = inner.log.split_off(&(log_id.index + 1));
        inner.last_purged = Some(log_id);
        Ok(())
    }

    async fn last_applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let inner = self.lock();
        Ok((inner.machine.last_applied, inner.machine.membership.clone()))
    }

    async fn apply_to_state_machine(
        &mut self,
        entries: &[Entry<TypeConfig>],
    ) -> Result<Vec<Response>, StorageError<NodeId>> {
        let mut inner = self.lock();
        let machine = &mut inner.machine;
        let mut responses = Vec::with_capacity(entries.len());
        for entry in entries {
            machine.last_applied = Some(entry.log_id);
            responses.push(match &entry.payload {
                EntryPayload::Blank => Response::ok(Json::Null),
                EntryPayload::Membership(membership) => {
                    machine.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                    Response::ok(Json::Null)
                }
                EntryPayload::Normal(command) => {
                    let current = machine
                        .data
                        .get(&command.key)
                        .cloned()
                        .unwrap_or(Json::Null);
                    match command.mutation.apply(&current) {
                        Ok(new) => {
                            machine.data.insert(command.key.clone(), new);
                            Response::ok(command.mutation.acknowledged_value())
                        }
                        Err(rejected) => Response::fail(rejected.to_string(), true),
                    }
                }
            });
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let machine: StateMachine = serde_json::from_slice(&data).map_err(io_error)?;
        let mut inner = self.lock();
        inner.machine = StateMachine {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            data: machine.data,
        };
        inner.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.lock().snapshot.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

// ---------------------------------------------------------------------------------------
// Network

/// A peer message: `{"rpc": <kind>, "body": <request>}`. The body is decoded by its own
/// type, not through an internally tagged enum: serde buffers such enums, and the buffer
/// cannot turn the string map keys of JSON back into the numeric node ids of a membership.
#[derive(Debug, Serialize)]
struct Envelope<'a, T> {
    rpc: &'a str,
    body: T,
}

const APPEND: &str = "raft_append";
const VOTE: &str = "raft_vote";
const SNAPSHOT: &str = "raft_snapshot";
const FORWARD: &str = "forward";

/// Creates one [`PeerLink`] per target; they share the connection pool.
pub struct Network {
    peers: Arc<Peers>,
}

pub struct PeerLink {
    peers: Arc<Peers>,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerLink;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> PeerLink {
        PeerLink {
            peers: Arc::clone(&self.peers),
            target,
        }
    }
}

impl PeerLink {
    async fn send<Req, Resp, E>(
        &self,
        rpc: &str,
        body: Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let reply: Result<Resp, RaftError<NodeId, E>> = self
            .peers
            .call(self.target, &Envelope { rpc, body }, option.hard_ttl())
            .await
            .map_err(|e| match e {
                RpcError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                _ => RPCError::Network(NetworkError::new(&e)),
            })?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerLink {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(APPEND, request, &option).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(SNAPSHOT, request, &option).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(VOTE, request, &option).await
    }
}

// ---------------------------------------------------------------------------------------
// The node

pub struct RaftNode {
    config: Arc<Config>,
    peers: Arc<Peers>,
    raft: Raft,
    store: Store,
}

impl RaftNode {
    pub async fn start(config: Arc<Config>) -> Result<Arc<Self>, crate::StartError> {
        let members = config.members()?;
        let peers = Peers::new(config.id, members.clone());
        let store = Store::open(
            &config.data_dir,
            !config.has_bug(crate::config::Bug::NoFsync),
        )?;
        let fresh = {
            let inner = store.lock();
            inner.vote.is_none() && inner.log.is_empty() && inner.last_purged.is_none()
        };
        let election_ms = config.election_timeout.as_millis() as u64;
        let raft_config = openraft::Config {
            cluster_name: "clusterkv".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: election_ms,
            election_timeout_max: election_ms * 2,
            snapshot_policy: SnapshotPolicy::Never,
            ..Default::default()
        }
        .validate()
        .map_err(|e| crate::StartError::Raft(e.to_string()))?;
        let (log_store, state_machine) = Adaptor::new(store.clone());
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            Network {
                peers: Arc::clone(&peers),
            },
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| crate::StartError::Raft(e.to_string()))?;
        if fresh {
            let nodes: BTreeMap<NodeId, BasicNode> = members
                .iter()
                .map(|p| (p.id, BasicNode::new(p.addr.to_string())))
                .collect();
            // Every node initialises with the same membership; openraft allows that, and
            // it spares the cluster a designated bootstrap node.
            if let Err(e) = raft.initialize(nodes).await {
                log!("initialise: {e} (already part of a cluster)");
            }
        }
        log!(
            "raft node starting ({} data dir)",
            if fresh { "fresh" } else { "existing" }
        );
        let node = Arc::new(RaftNode {
            config,
            peers,
            raft,
            store,
        });
        tokio::spawn(Arc::clone(&node).log_role_changes());
        Ok(node)
    }

    /// Logs every change of role, term or leader, as openraft reports them.
    async fn log_role_changes(self: Arc<Self>) {
        let mut metrics = self.raft.metrics();
        let mut last = None;
        loop {
            let seen = {
                let m = metrics.borrow_and_update();
                (m.state, m.current_term, m.current_leader)
            };
            if last != Some(seen) {
                let (state, term, leader) = seen;
                log!(
                    "role {} in term {term}, leader {}",
                    role_name(state),
                    leader.map_or("unknown".to_string(), |id| format!("n{id}"))
                );
                last = Some(seen);
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    fn status(&self) -> Status {
        let metrics = self.raft.metrics().borrow().clone();
        Status {
            node: self.config.name(),
            role: role_name(metrics.state).into(),
            leader: metrics.current_leader.map(|id| format!("n{id}")),
            term: metrics.current_term,
            time_ms: crate::log::wall_clock_ms(),
        }
    }

    /// Serves a request here; `Err(leader)` when this node is not the leader.
    async fn execute(&self, request: &ClientRequest) -> Result<Response, Option<NodeId>> {
        let Some(key) = request.key() else {
            return Ok(Response::status(self.status()));
        };
        match request.mutation() {
            None => match self.raft.ensure_linearizable().await {
                Ok(_) => Ok(read_answer(request, &self.store.read(key))),
                Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                    f,
                ))) => Err(f.leader_id),
                Err(e) => Ok(Response::fail(format!("read: {e}"), true)),
            },
            Some(mutation) => {
                let command = Command {
                    key: key.to_string(),
                    mutation,
                };
                match self.raft.client_write(command).await {
                    Ok(written) => Ok(written.data),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                        Err(f.leader_id)
                    }
                    Err(e) => Ok(Response::fail(format!("write: {e}"), false)),
                }
            }
        }
    }

    async fn forward(&self, leader: Option<NodeId>, request: &ClientRequest) -> Response {
        let Some(leader) = leader.filter(|id| *id != self.config.id) else {
            return Response::fail("no-leader", true);
        };
        let forwarded = Envelope {
            rpc: FORWARD,
            body: request,
        };
        match self
            .peers
            .call::<_, Response>(leader, &forwarded, self.config.request_timeout)
            .await
        {
            Ok(response) => response,
            Err(e) => failure_for(
                request,
                &format!("leader n{leader}: {e}"),
                e.maybe_delivered(),
            ),
        }
    }
}

fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Follower => "follower",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

impl Node for RaftNode {
    async fn handle_client(self: Arc<Self>, request: ClientRequest) -> Response {
        if matches!(request, ClientRequest::Status) {
            return Response::status(self.status());
        }
        let work = async {
            loop {
                match self.execute(&request).await {
                    Ok(response) => return response,
                    Err(Some(leader)) if leader != self.config.id => {
                        return self.forward(Some(leader), &request).await
                    }
                    // No leader known yet, or this node is leader-elect and not yet ready:
                    // nothing was proposed, so asking again shortly is safe.
                    Err(_) => tokio::time::sleep(LEADER_WAIT_STEP).await,
                }
            }
        };
        match tokio::time::timeout(self.config.request_timeout, work).await {
            Ok(response) => response,
            Err(_) => failure_for(&request, "timeout", true),
        }
    }

    async fn handle_peer(self: Arc<Self>, mut message: Json) -> Json {
        let body = message["body"].take();
        let kind = message["rpc"].as_str().unwrap_or_default().to_string();
        match self.dispatch(&kind, body).await {
            Ok(reply) => reply,
            Err(e) => serde_json::json!({"error": format!("{kind}: {e}")}),
        }
    }
}

impl RaftNode {
    async fn dispatch(&self, kind: &str, body: Json) -> Result<Json, serde_json::Error> {
        use serde_json::from_value;
        Ok(match kind {
            APPEND => crate::net::to_json(&self.raft.append_entries(from_value(body)?).await),
            VOTE => crate::net::to_json(&self.raft.vote(from_value(body)?).await),
            SNAPSHOT => crate::net::to_json(&self.raft.install_snapshot(from_value(body)?).await),
            FORWARD => {
                let request: ClientRequest = from_value(body)?;
                let work = self.execute(&request);
                let response = match tokio::time::timeout(self.config.request_timeout, work).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(_)) => Response::fail("not-leader", true),
                    Err(_) => failure_for(&request, "timeout", true),
                };
                crate::net::to_json(&response)
            }
            other => serde_json::json!({"error": format!("unknown rpc {other}")}),
        })
    }
}
