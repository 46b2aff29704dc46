//! Dynamo-style leaderless replication: flawed by design.
//!
//! * Each key lives on `n` replicas: the members that follow the key's hash on a ring of
//!   member ids. Any node coordinates any request.
//! * A write stamps the value with the coordinator's wall clock in microseconds (above the
//!   coordinator's previous stamp; ties broken by node id) and succeeds once `w` replicas
//!   stored it; a replica keeps the newest stamp it has seen (last write wins).
//! * A read asks the replicas, takes the newest of the first `r` replies, and before it
//!   answers writes that version back until `w` replicas hold it (blocking read repair), so
//!   no later read can return something older.
//! * `cas` and `add` read a quorum, compute, and write a quorum — two steps, not atomic:
//!   without consensus there is no atomic read-modify-write.
//!
//! With `r + w > n`, synchronised clocks and no faults, reads and writes are linearizable
//! (the newest stamp is the linearization order, as in ABD's multi-writer register).
//! Concurrent cas or add lose updates, and a skewed clock makes a later write lose to an
//! earlier one.

use crate::config::{Config, ConfigError};
use crate::log;
use crate::net::{Node, Peers, RpcError};
use crate::protocol::{read_answer, ClientRequest, Response, Status};
use crate::storage::{StorageError, Wal};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// A value with the stamp that orders it against other writes of the same key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Json,
    /// Coordinator's wall clock at the write, µs since the epoch (raised above the
    /// coordinator's previous stamp when the clock did not move).
    pub ts: u64,
    /// Coordinator's id: breaks ties between equal clocks.
    pub node: u64,
}

impl Versioned {
    fn stamp(&self) -> (u64, u64) {
        (self.ts, self.node)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "rpc", rename_all = "snake_case")]
enum Rpc {
    Put { key: String, version: Versioned },
    Get { key: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct PutReply {
    stored: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct GetReply {
    version: Option<Versioned>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    key: String,
    version: Versioned,
}

pub struct Dynamo {
    config: Arc<Config>,
    peers: Arc<Peers>,
    store: Mutex<HashMap<String, Versioned>>,
    /// The last stamp this node gave a write, in µs.
    last_stamp: Mutex<u64>,
    wal: Wal,
}

/// FNV-1a: a hash every node computes identically, whatever its build.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `n` members (by position in `ids`) that hold `key`.
pub fn preference_list(key: &str, ids: &[u64], n: usize) -> Vec<u64> {
    let start = (key_hash(key) % ids.len() as u64) as usize;
    (0..n.min(ids.len()))
        .map(|i| ids[(start + i) % ids.len()])
        .collect()
}

impl Dynamo {
    pub fn start(config: Arc<Config>) -> Result<Arc<Self>, crate::StartError> {
        let members = config.members()?;
        let (n, r, w) = (config.replicas, config.read_quorum, config.write_quorum);
        if n == 0 || r == 0 || w == 0 || r > n || w > n || n > members.len() {
            return Err(ConfigError::BadQuorum {
                n,
                r,
                w,
                cluster: members.len(),
            }
            .into());
        }
        let path = config.data_dir.join("dynamo.jsonl");
        let (store, wal) = Wal::open_latest_per_key(
            &path,
            |r: Record| (r.key, r.version),
            |key, version| Record {
                key: key.clone(),
                version: version.clone(),
            },
        )?;
        log!(
            "peer (n={n} r={r} w={w}) with {} keys from disk",
            store.len()
        );
        Ok(Arc::new(Dynamo {
            peers: Peers::new(config.id, members),
            config,
            store: Mutex::new(store),
            last_stamp: Mutex::new(0),
            wal,
        }))
    }

    /// Every member in ring order from `key`'s position: the first `n` are its replicas,
    /// the rest stand in for replicas that do not answer (sloppy quorum).
    fn ring_walk(&self, key: &str) -> Vec<u64> {
        let ids: Vec<u64> = self.peers.members().iter().map(|p| p.id).collect();
        preference_list(key, &ids, ids.len())
    }

    /// Stores `version` if it is newer than what this replica has.
    async fn put_local(&self, key: String, version: Versioned) -> Result<bool, StorageError> {
        let stored = {
            let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            let newer = store
                .get(&key)
                .is_none_or(|old| version.stamp() > old.stamp());
            if newer {
                self.wal.append(&Record {
                    key: key.clone(),
                    version: version.clone(),
                })?;
                store.insert(key, version);
            }
            newer
        };
        if stored {
            self.wal.sync().await?;
        }
        Ok(true)
    }

    fn get_local(&self, key: &str) -> Option<Versioned> {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    async fn put_to(
        self: Arc<Self>,
        replica: u64,
        key: String,
        version: Versioned,
    ) -> Result<bool, RpcError> {
        if replica == self.config.id {
            return Ok(self.put_local(key, version).await.unwrap_or_else(|e| {
                log!("cannot persist: {e}");
                false
            }));
        }
        let reply: PutReply = self
            .peers
            .call(replica, &Rpc::Put { key, version }, self.config.rpc_timeout)
            .await?;
        Ok(reply.stored)
    }

    async fn get_from(
        self: Arc<Self>,
        replica: u64,
        key: String,
    ) -> Result<Option<Versioned>, RpcError> {
        if replica == self.config.id {
            return Ok(self.get_local(&key));
        }
        let reply: GetReply = self
            .peers
            .call(replica, &Rpc::Get { key }, self.config.rpc_timeout)
            .await?;
        Ok(reply.version)
    }

    /// Reads `r` replicas; the newest version among their replies (`Ok(None)` = absent).
    /// A replica that does not answer is replaced by the next member on the ring.
    async fn quorum_read(self: &Arc<Self>, key: &str) -> Result<Option<Versioned>, String> {
        let walk = self.ring_walk(key);
        let mut asked = self.config.replicas.min(walk.len());
        let mut pending = JoinSet::new();
        let ask = |pending: &mut JoinSet<_>, replica: u64| {
            let node = Arc::clone(self);
            let key = key.to_string();
            pending.spawn(async move { (replica, node.get_from(replica, key).await) });
        };
        for &replica in &walk[..asked] {
            ask(&mut pending, replica);
        }
        let mut replies: Vec<(u64, Option<Versioned>)> = Vec::new();
        let mut errors = Vec::new();
        while replies.len() < self.config.read_quorum {
            match pending.join_next().await {
                Some(Ok((replica, Ok(version)))) => replies.push((replica, version)),
                Some(Ok((replica, Err(e)))) => {
                    errors.push(format!("n{replica}: {e}"));
                    if let Some(&stand_in) = walk.get(asked) {
                        ask(&mut pending, stand_in);
                        asked += 1;
                    }
                }
                Some(Err(_)) => errors.push("a read task failed".into()),
                None => {
                    return Err(format!(
                        "no-quorum: {} of {} replicas answered ({})",
                        replies.len(),
                        self.config.read_quorum,
                        errors.join("; ")
                    ))
                }
            }
        }
        let newest = replies
            .iter()
            .filter_map(|(_, v)| v.clone())
            .max_by_key(Versioned::stamp);
        if let Some(newest) = &newest {
            let holding = replies
                .iter()
                .filter(|(_, v)| v.as_ref().map(Versioned::stamp) >= Some(newest.stamp()))
                .count();
            if holding < self.config.write_quorum {
                // Blocking read repair: the version is answered only once a write quorum
                // holds it, so every later quorum read sees it (or something newer).
                self.store_quorum(key, newest.clone())
                    .await
                    .map_err(|(e, _)| format!("read repair: {e}"))?;
            }
        }
        Ok(newest)
    }

    /// A stamp for a new write: the wall clock in µs, above this node's previous stamp.
    fn stamp(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut last = self.last_stamp.lock().unwrap_or_else(|p| p.into_inner());
        *last = now.max(*last + 1);
        *last
    }

    /// Writes `value` stamped with this node's clock to the key's replicas; `Ok` once `w`
    /// stored it, otherwise the error and whether any replica may have stored it.
    async fn quorum_write(self: &Arc<Self>, key: &str, value: Json) -> Result<(), (String, bool)> {
        let version = Versioned {
            value,
            ts: self.stamp(),
            node: self.config.id,
        };
        self.store_quorum(key, version).await
    }

    /// Sends `version` to the key's replicas; `Ok` once `w` hold it (or something newer),
    /// otherwise the error and whether any replica may have stored it. A replica that does
    /// not answer is replaced by the next member on the ring, which keeps the version as
    /// its own (sloppy quorum, without hinted handoff: the replica catches up when a read
    /// repairs it).
    async fn store_quorum(
        self: &Arc<Self>,
        key: &str,
        version: Versioned,
    ) -> Result<(), (String, bool)> {
        let walk = self.ring_walk(key);
        let mut asked = self.config.replicas.min(walk.len());
        let mut pending = JoinSet::new();
        let send = |pending: &mut JoinSet<_>, replica: u64| {
            let node = Arc::clone(self);
            let key = key.to_string();
            let version = version.clone();
            pending.spawn(async move { (replica, node.put_to(replica, key, version).await) });
        };
        for &replica in &walk[..asked] {
            send(&mut pending, replica);
        }
        let mut acks = 0;
        let mut maybe_stored = false;
        let mut errors = Vec::new();
        while acks < self.config.write_quorum {
            match pending.join_next().await {
                Some(Ok((_, Ok(stored)))) => {
                    maybe_stored = true;
                    if stored {
                        acks += 1;
                    }
                }
                Some(Ok((replica, Err(e)))) => {
                    maybe_stored |= e.maybe_delivered();
                    errors.push(format!("n{replica}: {e}"));
                    if let Some(&stand_in) = walk.get(asked) {
                        send(&mut pending, stand_in);
                        asked += 1;
                    }
                }
                Some(Err(_)) => maybe_stored = true,
                None => {
                    return Err((
                        format!(
                            "no-quorum: {acks} of {} replicas stored the write ({})",
                            self.config.write_quorum,
                            errors.join("; ")
                        ),
                        maybe_stored,
                    ))
                }
            }
        }
        // Replicas beyond the quorum keep receiving the write in the background.
        pending.detach_all();
        Ok(())
    }

    fn status(&self) -> Status {
        Status {
            node: self.config.name(),
            role: "peer".into(),
            leader: None,
            term: 0,
            time_ms: crate::log::wall_clock_ms(),
        }
    }
}

impl Node for Dynamo {
    async fn handle_client(self: Arc<Self>, request: ClientRequest) -> Response {
        let Some(key) = request.key().map(str::to_string) else {
            return Response::status(self.status());
        };
        let work = async {
            let current = match request.mutation() {
                // A plain write does not need to read first.
                Some(crate::protocol::Mutation::Write(_)) => None,
                _ => match self.quorum_read(&key).await {
                    Ok(version) => Some(version.map(|v| v.value).unwrap_or(Json::Null)),
                    Err(e) => return Response::fail(e, true),
                },
            };
            let Some(mutation) = request.mutation() else {
                return read_answer(&request, &current.unwrap_or(Json::Null));
            };
            let new = match mutation.apply(&current.unwrap_or(Json::Null)) {
                Ok(new) => new,
                Err(rejected) => return Response::fail(rejected.to_string(), true),
            };
            match self.quorum_write(&key, new).await {
                Ok(()) => Response::ok(mutation.acknowledged_value()),
                Err((error, maybe_stored)) => Response::fail(error, !maybe_stored),
            }
        };
        match tokio::time::timeout(self.config.request_timeout, work).await {
            Ok(response) => response,
            Err(_) => crate::protocol::failure_for(&request, "timeout", true),
        }
    }

    async fn handle_peer(self: Arc<Self>, message: Json) -> Json {
        match serde_json::from_value::<Rpc>(message) {
            Ok(Rpc::Put { key, version }) => {
                let stored = match self.put_local(key, version).await {
                    Ok(stored) => stored,
                    Err(e) => {
                        log!("cannot persist: {e}");
                        false
                    }
                };
                crate::net::to_json(&PutReply { stored })
            }
            Ok(Rpc::Get { key }) => crate::net::to_json(&GetReply {
                version: self.get_local(&key),
            }),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_lists_are_stable_distinct_and_sized() {
        let ids = [1, 2, 3, 4, 5];
        for key in ["a", "b", "k17", ""] {
            let list = preference_list(key, &ids, 3);
            assert_eq!(list.len(), 3);
            let mut unique = list.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), 3, "{list:?}");
            assert_eq!(list, preference_list(key, &ids, 3));
        }
        assert_eq!(preference_list("x", &[1, 2], 3).len(), 2);
    }
}
