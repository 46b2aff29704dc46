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
//!
//! # The bug zoo's variants (`--bug`)
//!
//! Each is the kind of shortcut real leader-based systems took, linearizable while no fault
//! happens (clusters/README.md, "The bug zoo", says which fault exposes which):
//!
//! * `stale-local-read`: a node that believes it leads answers reads from its own state
//!   machine, with no read index and no lease: a deposed leader that has not heard of its
//!   successor keeps answering.
//! * `lease-clock`: the leader serves reads locally under a lease whose end is a wall-clock
//!   time ([`Lease::until_wall_ms`], extended by every quorum confirmation and never
//!   shortened); while its lease holds by its clock it sets higher terms aside (no one can
//!   have been elected before its lease ends — if clocks agree), stops renewing the lease and
//!   yields when it lapses; its heartbeats carry their
//!   wall-clock send time, and a follower that finds one older than an election timeout by
//!   its own clock takes the leader's lease for lapsed and stands for election.
//! * `lease-pause`: a background task checks the lease (a quorum confirmation) every
//!   heartbeat and records the answer; reads trust the recorded answer until the next check,
//!   however long the process was stopped in between.
//! * `retry-reapply`: a proposal not committed within `--rpc-timeout` is proposed again, with
//!   nothing to tell the copies apart: both may commit, and a write or cas applies twice.

use crate::config::{Bug, Config};
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
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, InstallSnapshotRequest,
    InstallSnapshotResponse, VoteRequest, VoteResponse,
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
const LEADER_WAIT_STEP: Duration = Duration::from_millis(20);

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
// Leases (the zoo's lease-clock and lease-pause variants only)

/// A leader lease. Correct raft has none: every read goes through a read index.
#[derive(Debug, Default)]
pub struct Lease {
    /// lease-clock: when the lease ends, in ms of this node's wall clock since the epoch;
    /// each quorum confirmation extends it to the confirmation's start plus the lease length,
    /// and it is never shortened.
    until_wall_ms: AtomicU64,
    /// lease-pause: whether the last check found the lease held; reads trust it until the
    /// next check.
    held: AtomicBool,
    /// lease-clock: a higher term was seen and set aside; the lease is no longer renewed,
    /// and the leader yields when it lapses.
    yielding: AtomicBool,
    /// When an ignored higher term was last logged (ms of the wall clock), to log a few.
    ignored_logged_ms: AtomicU64,
    /// lease-clock: when this follower last stood for election over a lapsed lease.
    last_campaign: Mutex<Option<Instant>>,
}

impl Lease {
    /// lease-clock: whether the lease holds by this node's wall clock.
    fn holds_by_wall_clock(&self) -> bool {
        log::wall_clock_ms() < self.until_wall_ms.load(Ordering::SeqCst)
    }

    /// Notes a higher term set aside (the lease will not be renewed) and logs it, at most
    /// once a second.
    fn ignored(&self, what: &str) {
        self.yielding.store(true, Ordering::SeqCst);
        let now = log::wall_clock_ms();
        let last = self.ignored_logged_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1_000
            && self
                .ignored_logged_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log!("lease: {what}");
        }
    }

    /// lease-clock: whether a follower may stand for election again (once per `pause`).
    fn may_campaign(&self, pause: Duration) -> bool {
        let mut last = self.last_campaign.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < pause) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// How long a lease lasts after the quorum confirmation it rests on: half the election
/// timeout, well inside openraft's own leader lease (the election timeout's maximum, twice
/// the minimum here), during which a follower that confirmed the leader grants no vote.
fn lease_length(config: &Config) -> Duration {
    config.election_timeout / 2
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
    /// lease-clock: the sender's wall clock when it sent an append (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at_ms: Option<u64>,
}

const APPEND: &str = "raft_append";
const VOTE: &str = "raft_vote";
const SNAPSHOT: &str = "raft_snapshot";
const FORWARD: &str = "forward";

/// Creates one [`PeerLink`] per target; they share the connection pool.
pub struct Network {
    peers: Arc<Peers>,
    bug: Option<Bug>,
    lease: Arc<Lease>,
}

pub struct PeerLink {
    peers: Arc<Peers>,
    target: NodeId,
    bug: Option<Bug>,
    lease: Arc<Lease>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerLink;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> PeerLink {
        PeerLink {
            peers: Arc::clone(&self.peers),
            target,
            bug: self.bug,
            lease: Arc::clone(&self.lease),
        }
    }
}

/// lease-clock: a higher term a leader ignored because its lease still held by its clock.
#[derive(Debug, thiserror::Error)]
#[error("n{from} answered with a higher vote ({vote}); ignored while this node's lease holds")]
struct IgnoredWhileLeased {
    from: NodeId,
    vote: String,
}

impl PeerLink {
    async fn send<Req, Resp, E>(
        &self,
        rpc: &str,
        body: Req,
        option: &RPCOption,
        sent_at_ms: Option<u64>,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let envelope = Envelope {
            rpc,
            body,
            sent_at_ms,
        };
        let reply: Result<Resp, RaftError<NodeId, E>> = self
            .peers
            .call(self.target, &envelope, option.hard_ttl())
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
        if self.bug != Some(Bug::LeaseClock) {
            return self.send(APPEND, request, &option, None).await;
        }
        let reply = self
            .send(APPEND, request, &option, Some(log::wall_clock_ms()))
            .await;
        // The lease is taken for proof that nobody else leads before it ends, so a higher
        // vote before then is set aside (as if the answer had been lost).
        match reply {
            Ok(AppendEntriesResponse::HigherVote(vote)) if self.lease.holds_by_wall_clock() => {
                let ignored = IgnoredWhileLeased {
                    from: self.target,
                    vote: vote.to_string(),
                };
                self.lease.ignored(&ignored.to_string());
                Err(RPCError::Network(NetworkError::new(&ignored)))
            }
            other => other,
        }
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(SNAPSHOT, request, &option, None).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(VOTE, request, &option, None).await
    }
}

// ---------------------------------------------------------------------------------------
// The node

pub struct RaftNode {
    config: Arc<Config>,
    peers: Arc<Peers>,
    raft: Raft,
    store: Store,
    lease: Arc<Lease>,
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
        let lease = Arc::new(Lease::default());
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            Network {
                peers: Arc::clone(&peers),
                bug: config.bug,
                lease: Arc::clone(&lease),
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
        let keeps_lease = config.has_bug(Bug::LeaseClock) || config.has_bug(Bug::LeasePause);
        let node = Arc::new(RaftNode {
            config,
            peers,
            raft,
            store,
            lease,
        });
        tokio::spawn(Arc::clone(&node).log_role_changes());
        if keeps_lease {
            tokio::spawn(Arc::clone(&node).keep_lease());
        }
        Ok(node)
    }

    /// lease-clock and lease-pause: every heartbeat interval, a leader confirms its
    /// leadership with a quorum (a read index round) and records the lease that gives it.
    async fn keep_lease(self: Arc<Self>) {
        let length = lease_length(&self.config);
        let length_ms = length.as_millis() as u64;
        loop {
            tokio::time::sleep(self.config.heartbeat).await;
            if !self.is_leader() {
                self.lease.held.store(false, Ordering::SeqCst);
                self.lease.yielding.store(false, Ordering::SeqCst);
                continue;
            }
            if self.config.has_bug(Bug::LeasePause) {
                // openraft bounds the check (each heartbeat it sends times out after a
                // heartbeat interval). Its answer stands for the lease until the next check:
                // nothing compares it with a clock when a read trusts it.
                let confirmed = self.raft.ensure_linearizable().await.is_ok();
                self.lease.held.store(confirmed, Ordering::SeqCst);
                continue;
            }
            if self.lease.yielding.load(Ordering::SeqCst) {
                continue;
            }
            let asked_at_ms = log::wall_clock_ms();
            // A confirmation slower than the lease length would give no lease.
            let confirmed = matches!(
                tokio::time::timeout(length, self.raft.ensure_linearizable()).await,
                Ok(Ok(_))
            );
            if confirmed {
                self.lease
                    .until_wall_ms
                    .fetch_max(asked_at_ms + length_ms, Ordering::SeqCst);
            }
        }
    }

    fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Whether this node's variant answers a read from its own state machine now, without a
    /// read index (correct raft never does).
    fn serves_local_read(&self) -> bool {
        match self.config.bug {
            Some(Bug::StaleLocalRead) => self.is_leader(),
            Some(Bug::LeaseClock) => self.lease.holds_by_wall_clock(),
            Some(Bug::LeasePause) => self.lease.held.load(Ordering::SeqCst),
            _ => false,
        }
    }

    /// Proposes `command`; retry-reapply proposes it again whenever it is not committed
    /// within the RPC timeout, the earlier copy left in the log.
    async fn propose(
        &self,
        command: Command,
    ) -> Result<
        ClientWriteResponse<TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
    > {
        if !self.config.has_bug(Bug::RetryReapply) {
            return self.raft.client_write(command).await;
        }
        loop {
            let attempt = self.raft.client_write(command.clone());
            match tokio::time::timeout(self.config.rpc_timeout, attempt).await {
                Ok(result) => return result,
                Err(_) => log!(
                    "proposal for key {} not committed within {:?}: proposing it again",
                    command.key,
                    self.config.rpc_timeout
                ),
            }
        }
    }

    /// lease-clock: the lease is taken for proof that nobody else leads before it ends, so
    /// a message of a higher term is refused while it holds by this node's clock.
    fn refused_while_leased(&self, rpc: &str, vote: &Vote<NodeId>) -> Option<Json> {
        if !self.config.has_bug(Bug::LeaseClock) || !self.lease.holds_by_wall_clock() {
            return None;
        }
        let mine = self.raft.metrics().borrow().vote;
        if *vote <= mine {
            return None;
        }
        let what = format!("{rpc} of higher vote {vote} refused while this node's lease holds");
        self.lease.ignored(&what);
        Some(serde_json::json!({ "error": what }))
    }

    /// lease-clock: a follower judges its leader's lease by the age of the leader's heartbeat
    /// on its own wall clock; older than an election timeout, the lease has lapsed, and it
    /// stands for election.
    async fn check_heartbeat_age(&self, vote: &Vote<NodeId>, sent_at_ms: u64) {
        let age_ms = log::wall_clock_ms().saturating_sub(sent_at_ms);
        if age_ms <= self.config.election_timeout.as_millis() as u64 {
            return;
        }
        let (state, leader) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            (m.state, m.current_leader)
        };
        let sender = vote.leader_id().voted_for();
        if state != ServerState::Follower || leader.is_none() || leader != sender {
            return;
        }
        if !self.lease.may_campaign(self.config.election_timeout) {
            return;
        }
        log!(
            "heartbeat of n{} is {age_ms} ms old by this node's clock: its lease has lapsed, standing for election",
            leader.unwrap_or_default()
        );
        if let Err(e) = self.raft.trigger().elect().await {
            log!("cannot stand for election: {e}");
        }
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
            None if self.serves_local_read() => Ok(read_answer(request, &self.store.read(key))),
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
                match self.propose(command).await {
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
            sent_at_ms: None,
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
        let sent_at_ms = message["sent_at_ms"].as_u64();
        match self.dispatch(&kind, body, sent_at_ms).await {
            Ok(reply) => reply,
            Err(e) => serde_json::json!({"error": format!("{kind}: {e}")}),
        }
    }
}

impl RaftNode {
    async fn dispatch(
        &self,
        kind: &str,
        body: Json,
        sent_at_ms: Option<u64>,
    ) -> Result<Json, serde_json::Error> {
        use serde_json::from_value;
        Ok(match kind {
            APPEND => {
                let request: AppendEntriesRequest<TypeConfig> = from_value(body)?;
                if let Some(refusal) = self.refused_while_leased(kind, &request.vote) {
                    return Ok(refusal);
                }
                let vote = request.vote;
                let reply = crate::net::to_json(&self.raft.append_entries(request).await);
                if let (Some(sent_at_ms), true) = (sent_at_ms, self.config.has_bug(Bug::LeaseClock))
                {
                    self.check_heartbeat_age(&vote, sent_at_ms).await;
                }
                reply
            }
            VOTE => {
                let request: VoteRequest<NodeId> = from_value(body)?;
                if let Some(refusal) = self.refused_while_leased(kind, &request.vote) {
                    return Ok(refusal);
                }
                crate::net::to_json(&self.raft.vote(request).await)
            }
            SNAPSHOT => {
                let request: InstallSnapshotRequest<TypeConfig> = from_value(body)?;
                if let Some(refusal) = self.refused_while_leased(kind, &request.vote) {
                    return Ok(refusal);
                }
                crate::net::to_json(&self.raft.install_snapshot(request).await)
            }
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
