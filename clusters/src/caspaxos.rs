//! CASPaxos: leaderless, linearizable. One single-decree Paxos register per key, rewritten
//! by a change function on every round.
//!
//! * Every member is an acceptor; any member proposes. A round picks a ballot higher than
//!   any it has seen, collects promises from a majority (each carrying the acceptor's last
//!   accepted value and ballot), applies the change function to the value with the highest
//!   ballot, and asks every acceptor to accept the result.
//! * Reads are full rounds with the identity function, so a read never returns a value that
//!   a majority has not accepted. A cas whose compare fails also writes back the value it
//!   saw, so its refusal rests on an accepted value.
//! * Acceptors persist promises and accepted values (fsync) before they answer. A ballot is
//!   (counter, incarnation, node): the incarnation is bumped and persisted at every start,
//!   so a restarted proposer can never reuse a ballot of its previous life.
//! * One round trip when uncontended (the CASPaxos paper's piggybacked prepare): a node's
//!   rounds on one key take turns, and an accept also carries the proposer's next ballot,
//!   which an acceptor that accepts promises. A proposer whose accept a majority took holds
//!   that promise and the value it wrote, so its next round on the key skips the prepare
//!   phase; a refused accept drops the hold.
//! * Contention: a rejected round backs off for a random time and retries, a bounded number
//!   of times. Only a round that certainly reached no acceptor's accepted state is retried;
//!   an accept that may have landed somewhere is reported as indeterminate.
//! * `--bug ack-before-quorum`: the proposer takes acceptors that stay silent (no answer
//!   within the RPC timeout) to agree, so it answers after the first accept when nobody
//!   refused, and holds the next promise as if a majority had taken it. While every
//!   acceptor answers, a refused accept still fails the round; a proposer cut off from the
//!   majority keeps answering from its own acceptor, and the majority side overwrites what
//!   it acknowledged.

use crate::config::{Bug, Config};
use crate::log;
use crate::net::{Node, Peers, RpcError};
use crate::protocol::{read_answer, ClientRequest, Mutation, Response, Status};
use crate::storage::{StorageError, Wal};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// Rounds a proposer tries before giving up on a request.
const MAX_ROUNDS: u32 = 12;

/// Totally ordered, unique per proposal attempt: fields compare in declaration order.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    pub counter: u64,
    pub incarnation: u64,
    pub node: u64,
}

/// What one acceptor holds for one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub promised: Ballot,
    pub accepted: Ballot,
    pub value: Json,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "rpc", rename_all = "snake_case")]
enum Rpc {
    Prepare {
        key: String,
        ballot: Ballot,
    },
    Accept {
        key: String,
        ballot: Ballot,
        value: Json,
        /// Promised along with the accept: the proposer's next ballot for this key.
        #[serde(default)]
        next: Option<Ballot>,
    },
}

/// An acceptor's answer to prepare or accept: `ok`, and its slot after the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    slot: Slot,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    key: String,
    slot: Slot,
}

/// A promise a proposer holds for its next round on a key: the ballot the acceptors that
/// took its last accept promised, and the value they accepted.
#[derive(Debug, Clone)]
struct Held {
    ballot: Ballot,
    value: Json,
}

/// The change a round applies to the register.
enum Change {
    Identity,
    Apply(Mutation),
}

pub struct CasPaxos {
    config: Arc<Config>,
    peers: Arc<Peers>,
    incarnation: u64,
    /// Highest ballot counter seen anywhere; the next proposal goes above it.
    highest_counter: AtomicU64,
    slots: Mutex<HashMap<String, Slot>>,
    /// Per key, the promise this proposer holds from its last successful accept.
    held: Mutex<HashMap<String, Held>>,
    /// Per key, a lock that makes this node's rounds on the key take turns, so they use
    /// the held promise one after another instead of preempting each other.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    wal: Wal,
}

/// Why an acceptor could not answer.
#[derive(Debug, thiserror::Error)]
enum AcceptorError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl CasPaxos {
    pub fn start(config: Arc<Config>) -> Result<Arc<Self>, crate::StartError> {
        let members = config.members()?;
        let incarnation = bump_incarnation(&config.data_dir.join("caspaxos-incarnation"))?;
        let path = config.data_dir.join("caspaxos.jsonl");
        let (slots, wal) = Wal::open_latest_per_key(
            &path,
            |r: Record| (r.key, r.slot),
            |key, slot| Record {
                key: key.clone(),
                slot: slot.clone(),
            },
        )?;
        let highest = slots
            .values()
            .map(|s| s.promised.counter)
            .max()
            .unwrap_or(0);
        log!(
            "peer (incarnation {incarnation}) with {} keys from disk",
            slots.len()
        );
        Ok(Arc::new(CasPaxos {
            peers: Peers::new(config.id, members),
            config,
            incarnation,
            highest_counter: AtomicU64::new(highest),
            slots: Mutex::new(slots),
            held: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            wal,
        }))
    }

    fn next_ballot(&self) -> Ballot {
        let counter = self.highest_counter.fetch_add(1, Ordering::SeqCst) + 1;
        Ballot {
            counter,
            incarnation: self.incarnation,
            node: self.config.id,
        }
    }

    fn saw(&self, ballot: Ballot) {
        self.highest_counter
            .fetch_max(ballot.counter, Ordering::SeqCst);
    }

    /// Changes one slot under the lock, logs the change, then waits until it is durable.
    async fn update_slot(
        &self,
        key: String,
        decide: impl FnOnce(&mut Slot) -> bool,
    ) -> Result<Reply, AcceptorError> {
        let (reply, changed) = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(key.clone()).or_default();
            let before = slot.clone();
            let ok = decide(slot);
            let changed = *slot != before;
            if changed {
                if let Err(e) = self.wal.append(&Record {
                    key,
                    slot: slot.clone(),
                }) {
                    durability_lost(&e);
                }
            }
            (
                Reply {
                    ok,
                    slot: slot.clone(),
                },
                changed,
            )
        };
        if changed {
            if let Err(e) = self.wal.sync().await {
                durability_lost(&e);
            }
        }
        Ok(reply)
    }

    async fn acceptor(&self, rpc: Rpc) -> Result<Reply, AcceptorError> {
        match rpc {
            Rpc::Prepare { key, ballot } => {
                self.saw(ballot);
                // Equal is allowed: ballots are unique per proposal, so an equal ballot is
                // the same proposer asking again.
                self.update_slot(key, |slot| {
                    if ballot >= slot.promised && ballot >= slot.accepted {
                        slot.promised = ballot;
                        true
                    } else {
                        false
                    }
                })
                .await
            }
            Rpc::Accept {
                key,
                ballot,
                value,
                next,
            } => {
                self.saw(ballot);
                if let Some(next) = next {
                    self.saw(next);
                }
                self.update_slot(key, |slot| {
                    if ballot >= slot.promised && ballot >= slot.accepted {
                        slot.promised = next.filter(|n| *n > ballot).unwrap_or(ballot);
                        slot.accepted = ballot;
                        slot.value = value;
                        true
                    } else {
                        false
                    }
                })
                .await
            }
        }
    }

    async fn send(self: Arc<Self>, acceptor: u64, rpc: Rpc) -> Result<Reply, RpcError> {
        if acceptor == self.config.id {
            return self.acceptor(rpc).await.map_err(|e| RpcError::Io {
                peer: acceptor,
                source: std::io::Error::other(e.to_string()),
            });
        }
        self.peers
            .call(acceptor, &rpc, self.config.rpc_timeout)
            .await
    }

    /// Sends `make(acceptor)` to every member and collects replies until `enough` said ok
    /// or everyone answered (or failed).
    async fn broadcast(
        self: &Arc<Self>,
        make: impl Fn() -> Rpc,
        enough: usize,
    ) -> Vec<Result<Reply, RpcError>> {
        let mut pending = JoinSet::new();
        for member in self.peers.members() {
            let node = Arc::clone(self);
            let id = member.id;
            let rpc = make();
            pending.spawn(async move { node.send(id, rpc).await });
        }
        let mut replies = Vec::new();
        let mut oks = 0;
        while oks < enough {
            match pending.join_next().await {
                Some(Ok(reply)) => {
                    if let Ok(reply) = &reply {
                        if reply.ok {
                            oks += 1;
                        }
                        self.saw(reply.slot.promised);
                    }
                    replies.push(reply);
                }
                Some(Err(e)) => replies.push(Err(RpcError::Io {
                    peer: 0,
                    source: std::io::Error::other(e.to_string()),
                })),
                None => break,
            }
        }
        // Late acceptors still get the message; their answers are no longer needed.
        pending.detach_all();
        replies
    }

    /// Runs rounds until one succeeds, a round's outcome becomes uncertain, or the rounds
    /// or the time run out.
    async fn propose(
        self: &Arc<Self>,
        key: &str,
        change: Change,
        request: &ClientRequest,
    ) -> Response {
        let majority = self.peers.majority();
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let turn = Arc::clone(
            self.turns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.to_string())
                .or_default(),
        );
        let Ok(_turn) = tokio::time::timeout_at(deadline, turn.lock_owned()).await else {
            return Response::fail("unavailable: busy", true);
        };
        let mut last_error = String::from("no-quorum");
        for round in 0..MAX_ROUNDS {
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            let (ballot, current) = match self.take_held(key) {
                // A majority promised this ballot when it took our last accept: no prepare.
                Some(held) => (held.ballot, held.value),
                None => {
                    let ballot = self.next_ballot();
                    let promises = self
                        .broadcast(
                            || Rpc::Prepare {
                                key: key.to_string(),
                                ballot,
                            },
                            majority,
                        )
                        .await;
                    let granted: Vec<&Reply> = promises.iter().flatten().filter(|r| r.ok).collect();
                    if granted.len() < majority {
                        last_error = describe("prepare", granted.len(), majority, &promises);
                        self.back_off(round, deadline).await;
                        continue;
                    }
                    let current = granted
                        .iter()
                        .max_by_key(|r| r.slot.accepted)
                        .map(|r| r.slot.value.clone())
                        .unwrap_or(Json::Null);
                    (ballot, current)
                }
            };
            let (new, answer) = match &change {
                Change::Identity => (current.clone(), read_answer(request, &current)),
                Change::Apply(mutation) => match mutation.apply(&current) {
                    Ok(new) => (new, Response::ok(mutation.acknowledged_value())),
                    Err(rejected) => (current.clone(), Response::fail(rejected.to_string(), true)),
                },
            };
            let writes_new_value = answer.ok && matches!(change, Change::Apply(_));
            let next = self.next_ballot();
            let make = || Rpc::Accept {
                key: key.to_string(),
                ballot,
                value: new.clone(),
                next: Some(next),
            };
            let accepts = self.broadcast(make, majority).await;
            let needed = if self.config.has_bug(Bug::AckBeforeQuorum) && !refused(&accepts) {
                // The bug: acceptors that stayed silent are taken to agree, so one accept
                // (in practice the proposer's own) is enough when nobody refused.
                1
            } else {
                majority
            };
            let accepted = accepts.iter().flatten().filter(|r| r.ok).count();
            if accepted >= needed {
                self.hold(
                    key,
                    Held {
                        ballot: next,
                        value: new,
                    },
                );
                return answer;
            }
            let maybe_landed = accepted > 0
                || accepts
                    .iter()
                    .any(|r| matches!(r, Err(e) if e.maybe_delivered()));
            last_error = describe("accept", accepted, majority, &accepts);
            if maybe_landed && writes_new_value {
                // Retrying would apply the change a second time if this accept survives.
                return Response::fail(format!("indeterminate: {last_error}"), false);
            }
            self.back_off(round, deadline).await;
        }
        // Every round failed before any acceptor could have taken our value.
        Response::fail(format!("unavailable: {last_error}"), true)
    }

    /// Takes the promise this proposer holds for `key`, if any: a round uses it once. A hold
    /// whose ballot this node's own acceptor has since promised past (another proposer
    /// prepared) is dropped: its accept would be refused.
    fn take_held(&self, key: &str) -> Option<Held> {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)?;
        let promised = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(|slot| slot.promised);
        (promised == Some(held.ballot)).then_some(held)
    }

    fn hold(&self, key: &str, held: Held) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), held);
    }

    async fn back_off(&self, round: u32, deadline: tokio::time::Instant) {
        let ceiling_ms = (5u64 << round.min(6)).min(250);
        let pause = Duration::from_millis(rand::thread_rng().gen_range(1..=ceiling_ms));
        tokio::time::sleep_until((tokio::time::Instant::now() + pause).min(deadline)).await;
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

/// Whether some acceptor answered and refused.
fn refused(replies: &[Result<Reply, RpcError>]) -> bool {
    replies.iter().flatten().any(|r| !r.ok)
}

fn describe(
    phase: &str,
    oks: usize,
    majority: usize,
    replies: &[Result<Reply, RpcError>],
) -> String {
    let errors: Vec<String> = replies
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    format!(
        "{phase}: {oks} of {majority} needed ({})",
        errors.join("; ")
    )
}

/// An acceptor whose promise or accepted value could not be made durable must not go on:
/// its memory already holds the change, and answering from it would promise what a restart
/// forgets. Stop the process, as databases do on a failed fsync.
fn durability_lost(error: &dyn std::fmt::Display) -> ! {
    eprintln!("caspaxos: cannot persist acceptor state ({error}); stopping");
    std::process::abort();
}

/// Reads, increments and durably stores this node's incarnation number.
fn bump_incarnation(path: &std::path::Path) -> Result<u64, StorageError> {
    let previous = match std::fs::read_to_string(path) {
        // A corrupt number must not restart the count: ballots could repeat.
        Ok(text) => text.trim().parse::<u64>().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not an incarnation number: {e}", path.display()),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e.into()),
    };
    let next = previous + 1;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp)?;
        writeln!(file, "{next}")?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(next)
}

impl Node for CasPaxos {
    async fn handle_client(self: Arc<Self>, request: ClientRequest) -> Response {
        let Some(key) = request.key().map(str::to_string) else {
            return Response::status(self.status());
        };
        let change = match request.mutation() {
            Some(mutation) => Change::Apply(mutation),
            None => Change::Identity,
        };
        self.propose(&key, change, &request).await
    }

    async fn handle_peer(self: Arc<Self>, message: Json) -> Json {
        let rpc = match serde_json::from_value::<Rpc>(message) {
            Ok(rpc) => rpc,
            Err(e) => return serde_json::json!({"error": e.to_string()}),
        };
        match self.acceptor(rpc).await {
            Ok(reply) => crate::net::to_json(&reply),
            Err(e) => {
                log!("acceptor failed: {e}");
                serde_json::json!({"error": e.to_string()})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_counter_then_incarnation_then_node() {
        let b = |counter, incarnation, node| Ballot {
            counter,
            incarnation,
            node,
        };
        assert!(b(2, 1, 1) > b(1, 9, 9));
        assert!(b(1, 2, 1) > b(1, 1, 9));
        assert!(b(1, 1, 2) > b(1, 1, 1));
        assert!(b(0, 0, 1) > Ballot::default());
    }

    #[test]
    fn incarnations_increase_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incarnation");
        assert_eq!(bump_incarnation(&path).unwrap(), 1);
        assert_eq!(bump_incarnation(&path).unwrap(), 2);
    }
}
