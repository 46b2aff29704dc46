//! Primary-backup replication: leader-based, and flawed the way such systems are.
//!
//! * Node 1 starts as primary. The primary applies every mutation, persists it, and ships
//!   the key's new value to each backup through one FIFO replicator per backup.
//! * `--replication async` acknowledges before any backup has the write; `sync`
//!   acknowledges after every backup that answered within the RPC timeout has it
//!   (unreachable backups are skipped, not waited for).
//! * The primary sends heartbeats. A backup that hears nothing from its primary for the
//!   election timeout asks every other member whether it is alive, and the lowest live id
//!   becomes primary. A primary that hears from a primary with a lower id steps down.
//!   A backup that switches primaries copies the new primary's whole state.
//! * Backups forward every client request (reads included) to the node they believe is
//!   primary; a node that is not primary refuses forwarded requests.
//!
//! There are no terms, no leases and no fencing: an isolated or paused primary keeps
//! serving (split brain, stale reads), a restarted node 1 takes over with whatever it had,
//! and asynchronously acknowledged writes vanish in a failover.

use crate::config::{Config, Replication};
use crate::log;
use crate::net::{Node, Peers};
use crate::protocol::{read_answer, ClientRequest, Response, Status};
use crate::storage::{StorageError, Wal};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "rpc", rename_all = "snake_case")]
enum Rpc {
    /// From a node that believes it is primary.
    Heartbeat { from: u64 },
    /// "Are you alive?" during failover.
    Ping { from: u64 },
    /// A key's new value, from the primary.
    Replicate { from: u64, key: String, value: Json },
    /// The whole state, for a backup that switched primaries.
    Snapshot { from: u64 },
    /// A client request a backup passes on to the primary.
    Forward { request: ClientRequest },
}

#[derive(Debug, Serialize, Deserialize)]
struct HeartbeatReply {
    me: u64,
    primary: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Ack {
    ok: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotReply {
    data: Option<HashMap<String, Json>>,
}

/// One record of the durable log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Set { key: String, value: Json },
    Replace { data: HashMap<String, Json> },
}

struct Membership {
    primary: Option<u64>,
    last_heartbeat: Instant,
    /// Copy the primary's state before trusting it (set on start and on every switch).
    needs_sync: bool,
}

struct ReplicateJob {
    key: String,
    value: Json,
    done: Option<oneshot::Sender<bool>>,
}

pub struct PrimaryBackup {
    config: Arc<Config>,
    peers: Arc<Peers>,
    membership: Mutex<Membership>,
    data: Mutex<HashMap<String, Json>>,
    wal: Wal,
    /// Serializes mutations at the primary so cas is atomic and replication order is
    /// the order of application.
    write_order: tokio::sync::Mutex<()>,
    replicators: HashMap<u64, mpsc::UnboundedSender<ReplicateJob>>,
}

impl PrimaryBackup {
    pub fn start(config: Arc<Config>) -> Result<Arc<Self>, crate::StartError> {
        let peers = Peers::new(config.id, config.members()?);
        let path = config.data_dir.join("primary-backup.jsonl");
        let mut data = HashMap::new();
        for record in Wal::replay::<Record>(&path)? {
            match record {
                Record::Set { key, value } => {
                    data.insert(key, value);
                }
                Record::Replace { data: all } => data = all,
            }
        }
        let wal = Wal::rewrite(&path, &[Record::Replace { data: data.clone() }])?;
        let first = peers.members()[0].id;
        let is_first = config.id == first;
        log!(
            "{} with {} keys from disk",
            if is_first {
                "primary (lowest id starts as primary)"
            } else {
                "backup"
            },
            data.len()
        );
        let mut replicators = HashMap::new();
        let mut queues = Vec::new();
        for peer in peers.others() {
            let (tx, rx) = mpsc::unbounded_channel();
            replicators.insert(peer.id, tx);
            queues.push((peer.id, rx));
        }
        let node = Arc::new(PrimaryBackup {
            membership: Mutex::new(Membership {
                primary: Some(first),
                last_heartbeat: Instant::now(),
                needs_sync: !is_first,
            }),
            data: Mutex::new(data),
            wal,
            write_order: tokio::sync::Mutex::new(()),
            replicators,
            peers,
            config,
        });
        for (peer, rx) in queues {
            tokio::spawn(Arc::clone(&node).replicate_to(peer, rx));
        }
        tokio::spawn(Arc::clone(&node).heartbeat_loop());
        Ok(node)
    }

    fn me(&self) -> u64 {
        self.config.id
    }

    fn membership(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.membership.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_primary(&self) -> bool {
        self.membership().primary == Some(self.me())
    }

    fn status(&self) -> Status {
        let membership = self.membership();
        Status {
            node: self.config.name(),
            role: if membership.primary == Some(self.me()) {
                "leader"
            } else {
                "follower"
            }
            .into(),
            leader: membership.primary.map(|id| format!("n{id}")),
            term: 0,
            time_ms: crate::log::wall_clock_ms(),
        }
    }

    /// Follows `primary` from now on; logs why.
    fn follow(&self, membership: &mut Membership, primary: u64, why: &str) {
        if membership.primary != Some(primary) {
            log!("following n{primary} as primary: {why}");
            membership.primary = Some(primary);
            membership.needs_sync = true;
        }
        membership.last_heartbeat = Instant::now();
    }

    async fn set_local(&self, key: String, value: Json) -> Result<(), StorageError> {
        {
            let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
            self.wal.append(&Record::Set {
                key: key.clone(),
                value: value.clone(),
            })?;
            data.insert(key, value);
        }
        self.wal.sync().await
    }

    /// Serves a request as primary (or refuses if this node is not primary).
    async fn execute(&self, request: ClientRequest) -> Response {
        let Some(key) = request.key().map(str::to_string) else {
            return Response::status(self.status());
        };
        let Some(mutation) = request.mutation() else {
            if !self.is_primary() {
                return Response::fail("not-leader", true);
            }
            let stored = self
                .data
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned()
                .unwrap_or(Json::Null);
            return read_answer(&request, &stored);
        };
        let waits = {
            let _order = self.write_order.lock().await;
            if !self.is_primary() {
                return Response::fail("not-leader", true);
            }
            let current = self
                .data
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned()
                .unwrap_or(Json::Null);
            let new = match mutation.apply(&current) {
                Ok(new) => new,
                Err(rejected) => return Response::fail(rejected.to_string(), true),
            };
            if let Err(e) = self.set_local(key.clone(), new.clone()).await {
                log!("cannot persist {key}: {e}");
                return Response::fail("storage", false);
            }
            self.enqueue_replication(&key, &new)
        };
        for wait in waits {
            let _ = wait.await;
        }
        Response::ok(mutation.acknowledged_value())
    }

    /// Queues the new value for every backup; in sync mode returns what to wait for.
    fn enqueue_replication(&self, key: &str, value: &Json) -> Vec<oneshot::Receiver<bool>> {
        let mut waits = Vec::new();
        for queue in self.replicators.values() {
            let done = if self.config.replication == Replication::Sync {
                let (tx, rx) = oneshot::channel();
                waits.push(rx);
                Some(tx)
            } else {
                None
            };
            let _ = queue.send(ReplicateJob {
                key: key.to_string(),
                value: value.clone(),
                done,
            });
        }
        waits
    }

    /// Ships values to one backup in order; a value the backup does not take is dropped
    /// (the backup stays behind until it next copies a primary's state).
    async fn replicate_to(
        self: Arc<Self>,
        peer: u64,
        mut jobs: mpsc::UnboundedReceiver<ReplicateJob>,
    ) {
        let mut failing = false;
        while let Some(job) = jobs.recv().await {
            let message = Rpc::Replicate {
                from: self.me(),
                key: job.key,
                value: job.value,
            };
            let result = self
                .peers
                .call::<_, Ack>(peer, &message, self.config.rpc_timeout)
                .await;
            let delivered = matches!(result, Ok(Ack { ok: true }));
            if delivered == failing {
                failing = !delivered;
                match result {
                    Ok(_) => log!("replication to n{peer} works again"),
                    Err(e) => log!("replication to n{peer} failing, dropping writes: {e}"),
                }
            }
            if let Some(done) = job.done {
                let _ = done.send(delivered);
            }
        }
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.config.heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if self.is_primary() {
                for peer in self.peers.others() {
                    tokio::spawn(Arc::clone(&self).send_heartbeat(peer.id));
                }
                continue;
            }
            let (silent_for, primary, needs_sync) = {
                let membership = self.membership();
                (
                    membership.last_heartbeat.elapsed(),
                    membership.primary,
                    membership.needs_sync,
                )
            };
            if silent_for >= self.config.election_timeout {
                self.fail_over(primary, silent_for).await;
            } else if needs_sync {
                if let Some(primary) = primary {
                    self.copy_state_from(primary).await;
                }
            }
        }
    }

    async fn send_heartbeat(self: Arc<Self>, peer: u64) {
        let reply = self
            .peers
            .call::<_, HeartbeatReply>(
                peer,
                &Rpc::Heartbeat { from: self.me() },
                self.config.heartbeat.max(Duration::from_millis(50)),
            )
            .await;
        if let Ok(HeartbeatReply { me, primary }) = reply {
            // The other node is itself primary and has the lower id: it wins.
            if primary == Some(me) && me < self.me() {
                let mut membership = self.membership();
                if membership.primary == Some(self.me()) {
                    self.follow(&mut membership, me, "a primary with a lower id is alive");
                }
            }
        }
    }

    /// The primary went silent: the lowest live id takes over.
    async fn fail_over(&self, silent: Option<u64>, silent_for: Duration) {
        let probes = self
            .peers
            .others()
            .filter(|p| Some(p.id) != silent)
            .map(|p| {
                let peers = Arc::clone(&self.peers);
                let id = p.id;
                let me = self.me();
                let timeout = self.config.rpc_timeout.min(self.config.election_timeout);
                tokio::spawn(async move {
                    peers
                        .call::<_, HeartbeatReply>(id, &Rpc::Ping { from: me }, timeout)
                        .await
                        .ok()
                        .map(|_| id)
                })
            })
            .collect::<Vec<_>>();
        let mut lowest_alive = self.me();
        for probe in probes {
            if let Ok(Some(id)) = probe.await {
                lowest_alive = lowest_alive.min(id);
            }
        }
        let mut membership = self.membership();
        // A heartbeat may have arrived while probing.
        if membership.last_heartbeat.elapsed() < self.config.election_timeout {
            return;
        }
        let why = format!(
            "no heartbeat from {} for {} ms; lowest live id is n{lowest_alive}",
            silent
                .map(|id| format!("n{id}"))
                .unwrap_or_else(|| "anyone".into()),
            silent_for.as_millis()
        );
        if lowest_alive == self.me() {
            log!("becoming primary: {why}");
            membership.primary = Some(self.me());
            membership.needs_sync = false;
        } else {
            self.follow(&mut membership, lowest_alive, &why);
        }
    }

    async fn copy_state_from(&self, primary: u64) {
        let reply = self
            .peers
            .call::<_, SnapshotReply>(
                primary,
                &Rpc::Snapshot { from: self.me() },
                self.config.rpc_timeout,
            )
            .await;
        let Ok(SnapshotReply {
            data: Some(snapshot),
        }) = reply
        else {
            return;
        };
        {
            let mut membership = self.membership();
            if membership.primary != Some(primary) {
                return;
            }
            membership.needs_sync = false;
        }
        let keys = snapshot.len();
        {
            let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.wal.append(&Record::Replace {
                data: snapshot.clone(),
            }) {
                log!("cannot persist the copy from n{primary}: {e}");
            }
            *data = snapshot;
        }
        if let Err(e) = self.wal.sync().await {
            log!("cannot persist the copy from n{primary}: {e}");
        }
        log!("copied {keys} keys from primary n{primary}");
    }
}

impl Node for PrimaryBackup {
    async fn handle_client(self: Arc<Self>, request: ClientRequest) -> Response {
        if matches!(request, ClientRequest::Status) {
            return Response::status(self.status());
        }
        let primary = self.membership().primary;
        match primary {
            Some(primary) if primary == self.me() => self.execute(request).await,
            Some(primary) => {
                let forwarded = Rpc::Forward {
                    request: request.clone(),
                };
                match self
                    .peers
                    .call::<_, Response>(primary, &forwarded, self.config.request_timeout)
                    .await
                {
                    Ok(response) => response,
                    Err(e) => crate::protocol::failure_for(
                        &request,
                        &format!("primary n{primary}: {e}"),
                        e.maybe_delivered(),
                    ),
                }
            }
            None => Response::fail("no-leader", true),
        }
    }

    async fn handle_peer(self: Arc<Self>, message: Json) -> Json {
        let rpc = match serde_json::from_value::<Rpc>(message) {
            Ok(rpc) => rpc,
            Err(e) => return serde_json::json!({"error": e.to_string()}),
        };
        match rpc {
            Rpc::Heartbeat { from } => {
                let mut membership = self.membership();
                if membership.primary == Some(self.me()) {
                    if from < self.me() {
                        self.follow(&mut membership, from, "heard a primary with a lower id");
                    }
                } else if membership.primary == Some(from)
                    || membership.last_heartbeat.elapsed() >= self.config.election_timeout
                    || membership.primary.is_none_or(|p| from < p)
                {
                    self.follow(&mut membership, from, "heartbeat");
                }
                let reply = HeartbeatReply {
                    me: self.me(),
                    primary: membership.primary,
                };
                crate::net::to_json(&reply)
            }
            Rpc::Ping { .. } => crate::net::to_json(&HeartbeatReply {
                me: self.me(),
                primary: self.membership().primary,
            }),
            Rpc::Replicate { key, value, .. } => {
                // No fencing: whoever claims to be primary is obeyed.
                let ok = match self.set_local(key, value).await {
                    Ok(()) => true,
                    Err(e) => {
                        log!("cannot persist a replicated value: {e}");
                        false
                    }
                };
                crate::net::to_json(&Ack { ok })
            }
            Rpc::Snapshot { .. } => {
                let data = self
                    .is_primary()
                    .then(|| self.data.lock().unwrap_or_else(|p| p.into_inner()).clone());
                crate::net::to_json(&SnapshotReply { data })
            }
            Rpc::Forward { request } => {
                if matches!(request, ClientRequest::Status) {
                    return crate::net::to_json(&Response::status(self.status()));
                }
                crate::net::to_json(&self.execute(request).await)
            }
        }
    }
}
