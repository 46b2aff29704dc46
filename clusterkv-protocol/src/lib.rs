//! The `clusterkv` cluster architectures and their client protocol, defined once: the
//! clusters (`splitbrain-clusters`, binary `clusterkv`) serve it and the harness's client
//! (`splitbrain::system::clusterkv`) speaks it.
//!
//! # Architectures
//!
//! [`Arch`] names each architecture as campaigns and the node's `--arch` flag spell it;
//! [`Replication`] is primary-backup's acknowledgement mode.
//!
//! # Client protocol
//!
//! JSON lines, one request line → one response line.
//!
//! Values are JSON (`null` = absent). A set is stored as a JSON array under its key.
//! An error's `definite` says whether the operation certainly did not take effect (`true`)
//! or may have (`false`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A cluster architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    PrimaryBackup,
    Raft,
    Dynamo,
    Caspaxos,
}

impl Arch {
    /// Every architecture, in the order the docs list them.
    pub const ALL: [Arch; 4] = [
        Arch::PrimaryBackup,
        Arch::Raft,
        Arch::Dynamo,
        Arch::Caspaxos,
    ];

    /// The name campaigns, `--arch` and tables use.
    pub fn name(self) -> &'static str {
        match self {
            Arch::PrimaryBackup => "primary-backup",
            Arch::Raft => "raft",
            Arch::Dynamo => "dynamo",
            Arch::Caspaxos => "caspaxos",
        }
    }

    /// Whether the architecture claims linearizability.
    pub fn claims_linearizability(self) -> bool {
        matches!(self, Arch::Raft | Arch::Caspaxos)
    }
}

/// A seeded bug of the bug zoo: a variant of a correct architecture that is linearizable
/// while no fault happens and broken by one specific kind of fault (`--bug`, campaign
/// `system: {clusterkv: {arch: raft, bug: stale-local-read}}`). clusters/README.md says what
/// each one gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// raft: the leader answers reads from its own state, without a read index or a lease.
    StaleLocalRead,
    /// raft: reads under a leader lease measured with the wall clock.
    LeaseClock,
    /// raft: the lease is checked before a blocking step and trusted after it.
    LeasePause,
    /// raft: acknowledges before the log is durable (no fsync).
    NoFsync,
    /// raft: a timed-out proposal is proposed again without a request id.
    RetryReapply,
    /// caspaxos: the proposer answers after the first accept, not a quorum of them.
    AckBeforeQuorum,
}

impl Bug {
    /// Every bug, in the order the docs list them.
    pub const ALL: [Bug; 6] = [
        Bug::StaleLocalRead,
        Bug::LeaseClock,
        Bug::LeasePause,
        Bug::NoFsync,
        Bug::RetryReapply,
        Bug::AckBeforeQuorum,
    ];

    /// The name campaigns, `--bug` and tables use.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleLocalRead => "stale-local-read",
            Bug::LeaseClock => "lease-clock",
            Bug::LeasePause => "lease-pause",
            Bug::NoFsync => "no-fsync",
            Bug::RetryReapply => "retry-reapply",
            Bug::AckBeforeQuorum => "ack-before-quorum",
        }
    }

    /// The architecture the bug is a variant of.
    pub fn arch(self) -> Arch {
        match self {
            Bug::AckBeforeQuorum => Arch::Caspaxos,
            _ => Arch::Raft,
        }
    }

    /// The campaign fault kinds (`faults: [...]`) that expose the bug, each on its own.
    pub fn exposed_by(self) -> &'static [&'static str] {
        match self {
            Bug::StaleLocalRead => &["partition"],
            Bug::LeaseClock => &["clock-bump"],
            Bug::LeasePause => &["pause"],
            Bug::NoFsync => &["disk-lose-unsynced"],
            Bug::RetryReapply => &["delay", "loss"],
            Bug::AckBeforeQuorum => &["partition", "loss"],
        }
    }

    /// `arch` + `bug` as tables and result paths name the variant, e.g. `raft-stale-local-read`.
    pub fn variant_name(self) -> &'static str {
        match self {
            Bug::StaleLocalRead => "raft-stale-local-read",
            Bug::LeaseClock => "raft-lease-clock",
            Bug::LeasePause => "raft-lease-pause",
            Bug::NoFsync => "raft-no-fsync",
            Bug::RetryReapply => "raft-retry-reapply",
            Bug::AckBeforeQuorum => "caspaxos-ack-before-quorum",
        }
    }
}

/// When the primary of `primary-backup` acknowledges a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Replication {
    /// Before any backup has it.
    #[default]
    Async,
    /// After every backup it could reach has it.
    Sync,
}

impl Replication {
    /// The name campaigns and `--replication` use.
    pub fn name(self) -> &'static str {
        match self {
            Replication::Async => "async",
            Replication::Sync => "sync",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientRequest {
    Read {
        key: String,
    },
    Write {
        key: String,
        #[serde(default)]
        value: Json,
    },
    Cas {
        key: String,
        #[serde(default)]
        from: Json,
        #[serde(default)]
        to: Json,
    },
    Add {
        key: String,
        element: Json,
    },
    ReadSet {
        key: String,
    },
    Status,
}

impl ClientRequest {
    /// The key, or `None` for `status`.
    pub fn key(&self) -> Option<&str> {
        match self {
            ClientRequest::Read { key }
            | ClientRequest::Write { key, .. }
            | ClientRequest::Cas { key, .. }
            | ClientRequest::Add { key, .. }
            | ClientRequest::ReadSet { key } => Some(key),
            ClientRequest::Status => None,
        }
    }

    /// What the request does to its key's value; `None` for reads and `status`.
    pub fn mutation(&self) -> Option<Mutation> {
        match self {
            ClientRequest::Write { value, .. } => Some(Mutation::Write(value.clone())),
            ClientRequest::Cas { from, to, .. } => Some(Mutation::Cas {
                from: from.clone(),
                to: to.clone(),
            }),
            ClientRequest::Add { element, .. } => Some(Mutation::Add(element.clone())),
            _ => None,
        }
    }
}

/// A change to one key's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mutation {
    Write(Json),
    Cas { from: Json, to: Json },
    Add(Json),
}

/// Why a mutation cannot apply to the current value (it certainly had no effect).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("compare-failed")]
    CompareFailed,
    #[error("not-a-set")]
    NotASet,
}

impl Mutation {
    /// The new value, given the current one.
    pub fn apply(&self, current: &Json) -> Result<Json, Rejected> {
        match self {
            Mutation::Write(value) => Ok(value.clone()),
            Mutation::Cas { from, to } => {
                if current == from {
                    Ok(to.clone())
                } else {
                    Err(Rejected::CompareFailed)
                }
            }
            Mutation::Add(element) => match current {
                Json::Null => Ok(Json::Array(vec![element.clone()])),
                Json::Array(items) if items.contains(element) => Ok(current.clone()),
                Json::Array(items) => {
                    let mut items = items.clone();
                    items.push(element.clone());
                    Ok(Json::Array(items))
                }
                _ => Err(Rejected::NotASet),
            },
        }
    }

    /// The value an `ok` response carries: what was written.
    pub fn acknowledged_value(&self) -> Json {
        match self {
            Mutation::Write(value) => value.clone(),
            Mutation::Cas { to, .. } => to.clone(),
            Mutation::Add(element) => element.clone(),
        }
    }
}

/// What a read of `stored` answers: the register's value, or the set's elements.
pub fn read_answer(request: &ClientRequest, stored: &Json) -> Response {
    match request {
        ClientRequest::ReadSet { .. } => match stored {
            Json::Null => Response::ok(Json::Array(Vec::new())),
            Json::Array(_) => Response::ok(stored.clone()),
            _ => Response::fail(Rejected::NotASet.to_string(), true),
        },
        _ => Response::ok(stored.clone()),
    }
}

/// The `status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    /// `leader`, `follower`, `candidate`, or `peer` (leaderless architectures).
    pub role: String,
    /// The node this one believes leads, if any.
    pub leader: Option<String>,
    pub term: u64,
    /// The node's wall clock, ms since the Unix epoch (clock faults show here).
    pub time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// Present on every `ok` answer but `status`; `Some(null)` is a read of an absent key,
    /// so a `null` here must not collapse into `None`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub value: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definite: Option<bool>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

fn present_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

impl Response {
    pub fn ok(value: Json) -> Self {
        Response {
            ok: true,
            value: Some(value),
            error: None,
            definite: None,
            status: None,
        }
    }

    /// An error; `definite` = the operation certainly did not take effect.
    pub fn fail(error: impl Into<String>, definite: bool) -> Self {
        Response {
            ok: false,
            value: None,
            error: Some(error.into()),
            definite: Some(definite),
            status: None,
        }
    }

    pub fn status(status: Status) -> Self {
        Response {
            ok: true,
            value: None,
            error: None,
            definite: None,
            status: Some(status),
        }
    }
}

/// The answer to a request that fails somewhere, for a request that has or may have been
/// applied (`maybe_applied`): reads never have an effect, so a failed read is definite.
pub fn failure_for(request: &ClientRequest, error: &str, maybe_applied: bool) -> Response {
    let definite = request.mutation().is_none() || !maybe_applied;
    Response::fail(error, definite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bugs_are_spelt_as_campaigns_and_flags_spell_them() {
        for bug in Bug::ALL {
            let json = serde_json::to_value(bug).unwrap();
            assert_eq!(json, Json::String(bug.name().to_owned()));
            assert_eq!(serde_json::from_value::<Bug>(json).unwrap(), bug);
            assert!(bug.variant_name().starts_with(bug.arch().name()));
            assert!(bug.variant_name().ends_with(bug.name()));
            assert!(bug.arch().claims_linearizability());
        }
        assert!(serde_json::from_str::<Bug>(r#""no-such-bug""#).is_err());
    }

    #[test]
    fn architectures_are_spelt_as_campaigns_and_flags_spell_them() {
        for arch in Arch::ALL {
            let json = serde_json::to_value(arch).unwrap();
            assert_eq!(json, Json::String(arch.name().to_owned()));
            assert_eq!(serde_json::from_value::<Arch>(json).unwrap(), arch);
        }
        assert!(serde_json::from_str::<Arch>(r#""paxos""#).is_err());
        assert_eq!(
            serde_json::from_str::<Replication>(r#""sync""#).unwrap(),
            Replication::Sync
        );
        assert_eq!(Replication::default().name(), "async");
    }

    #[test]
    fn requests_parse_from_the_documented_lines() {
        let cases = [
            (
                r#"{"op":"read","key":"k"}"#,
                ClientRequest::Read { key: "k".into() },
            ),
            (
                r#"{"op":"write","key":"k","value":3}"#,
                ClientRequest::Write {
                    key: "k".into(),
                    value: json!(3),
                },
            ),
            (
                r#"{"op":"cas","key":"k","from":null,"to":4}"#,
                ClientRequest::Cas {
                    key: "k".into(),
                    from: Json::Null,
                    to: json!(4),
                },
            ),
            (
                r#"{"op":"add","key":"s","element":5}"#,
                ClientRequest::Add {
                    key: "s".into(),
                    element: json!(5),
                },
            ),
            (
                r#"{"op":"read_set","key":"s"}"#,
                ClientRequest::ReadSet { key: "s".into() },
            ),
            (r#"{"op":"status"}"#, ClientRequest::Status),
        ];
        for (line, expected) in cases {
            assert_eq!(
                serde_json::from_str::<ClientRequest>(line).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn responses_serialize_as_documented() {
        assert_eq!(
            serde_json::to_value(Response::ok(Json::Null)).unwrap(),
            json!({"ok": true, "value": null})
        );
        assert_eq!(
            serde_json::to_value(Response::fail("compare-failed", true)).unwrap(),
            json!({"ok": false, "error": "compare-failed", "definite": true})
        );
        let status = Response::status(Status {
            node: "n2".into(),
            role: "follower".into(),
            leader: None,
            term: 3,
            time_ms: 7,
        });
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!({"ok": true, "node": "n2", "role": "follower", "leader": null, "term": 3, "time_ms": 7})
        );
    }

    #[test]
    fn a_null_value_survives_a_round_trip() {
        let line = serde_json::to_string(&Response::ok(Json::Null)).unwrap();
        let back: Response = serde_json::from_str(&line).unwrap();
        assert_eq!(back, Response::ok(Json::Null));
        let failure: Response =
            serde_json::from_str(r#"{"ok":false,"error":"x","definite":true}"#).unwrap();
        assert_eq!(failure.value, None);
    }

    #[test]
    fn mutations_apply_register_and_set_semantics() {
        let cas = Mutation::Cas {
            from: json!(1),
            to: json!(2),
        };
        assert_eq!(cas.apply(&json!(1)), Ok(json!(2)));
        assert_eq!(cas.apply(&json!(3)), Err(Rejected::CompareFailed));
        assert_eq!(cas.apply(&Json::Null), Err(Rejected::CompareFailed));
        let add = Mutation::Add(json!(7));
        assert_eq!(add.apply(&Json::Null), Ok(json!([7])));
        assert_eq!(add.apply(&json!([1])), Ok(json!([1, 7])));
        assert_eq!(add.apply(&json!([7])), Ok(json!([7])));
        assert_eq!(add.apply(&json!(3)), Err(Rejected::NotASet));
    }

    #[test]
    fn failed_reads_are_always_definite() {
        let read = ClientRequest::Read { key: "k".into() };
        let write = ClientRequest::Write {
            key: "k".into(),
            value: json!(1),
        };
        assert_eq!(failure_for(&read, "timeout", true).definite, Some(true));
        assert_eq!(failure_for(&write, "timeout", true).definite, Some(false));
        assert_eq!(
            failure_for(&write, "unreachable", false).definite,
            Some(true)
        );
    }
}
