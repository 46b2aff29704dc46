//! Controlling a disk layer that runs as a process of its own (`splitbrain disk-layer
//! serve`, on a remote host): typed requests and replies, one JSON line each, over a Unix
//! socket. [`handle`] answers a request from a mounted [`DiskLayer`]; [`ask`] sends one
//! and reads the reply (`splitbrain disk-layer ctl`).
//!
//! The requests are what the disk fault kinds do to a layer: drop (or tear) what the node
//! did not sync, set and clear the sync and write faults, sync everything, and read its
//! state (faults in force, counters, what is cached) for the evidence; and corrupt a file
//! of the disk while the node is down ([`super::corrupt::corrupt_layer`]).

use super::corrupt::{CorruptStyle, LayerCorruption};
use super::lazy_fs::{Counters, DiskFaults, Dropped, Unsynced};
use super::DiskLayer;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// What a layer is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Variants without fields are empty structs: a unit variant would take any field.
#[serde(tag = "request", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Drop everything not synced (a power loss).
    DropUnsynced {},
    /// Let each file's unsynced writes but the last reach the disk, the last cut at a
    /// multiple of `block` bytes; drop the rest.
    TearUnsynced { block: u64 },
    /// Put these faults in force (replacing those in force).
    SetFaults(FaultSettings),
    /// Take every fault out of force.
    ClearFaults {},
    /// Make everything written so far durable.
    SyncAll {},
    /// The layer's faults, counters and cache, read back.
    Status {},
    /// Corrupt one file of the disk (the node is down): `disk-corrupt`, with the style
    /// and seed its plan drew for this node and the campaign's file pattern.
    Corrupt {
        style: CorruptStyle,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<String>,
        seed: u64,
    },
}

/// The faults of a layer ([`DiskFaults`], with the delay in milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    pub fsync_error: bool,
    pub enospc: bool,
    pub fsync_delay_ms: u64,
}

impl From<&DiskFaults> for FaultSettings {
    fn from(f: &DiskFaults) -> Self {
        FaultSettings {
            fsync_error: f.fsync_error,
            enospc: f.enospc,
            fsync_delay_ms: f.fsync_delay.as_millis() as u64,
        }
    }
}

impl From<FaultSettings> for DiskFaults {
    fn from(f: FaultSettings) -> Self {
        DiskFaults {
            fsync_error: f.fsync_error,
            enospc: f.enospc,
            fsync_delay: Duration::from_millis(f.fsync_delay_ms),
        }
    }
}

/// What was not synced ([`Unsynced`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsyncedReply {
    pub bytes: u64,
    pub files: usize,
    pub entries: usize,
}

impl From<Unsynced> for UnsyncedReply {
    fn from(u: Unsynced) -> Self {
        UnsyncedReply {
            bytes: u.bytes,
            files: u.files,
            entries: u.entries,
        }
    }
}

impl From<UnsyncedReply> for Unsynced {
    fn from(u: UnsyncedReply) -> Self {
        Unsynced {
            bytes: u.bytes,
            files: u.files,
            entries: u.entries,
        }
    }
}

/// What dropping the cache did ([`Dropped`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DroppedReply {
    pub lost: UnsyncedReply,
    pub kept_bytes: u64,
    pub errors: Vec<String>,
}

impl From<Dropped> for DroppedReply {
    fn from(d: Dropped) -> Self {
        DroppedReply {
            lost: d.lost.into(),
            kept_bytes: d.kept_bytes,
            errors: d.errors,
        }
    }
}

impl From<DroppedReply> for Dropped {
    fn from(d: DroppedReply) -> Self {
        Dropped {
            lost: d.lost.into(),
            kept_bytes: d.kept_bytes,
            errors: d.errors,
        }
    }
}

/// A layer's state ([`DiskFaults`], [`Counters`], [`Unsynced`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReply {
    pub faults: FaultSettings,
    pub syncs: u64,
    pub failed_syncs: u64,
    pub written_back_bytes: u64,
    pub unsynced: UnsyncedReply,
}

impl StatusReply {
    fn of(faults: &DiskFaults, counters: &Counters, unsynced: Unsynced) -> StatusReply {
        StatusReply {
            faults: faults.into(),
            syncs: counters.syncs,
            failed_syncs: counters.failed_syncs,
            written_back_bytes: counters.written_back_bytes,
            unsynced: unsynced.into(),
        }
    }
}

/// A layer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Reply {
    /// To `drop-unsynced` and `tear-unsynced`.
    Dropped(DroppedReply),
    /// To `set-faults`, `clear-faults`, `sync-all` and `status`: the state afterwards.
    Status(StatusReply),
    /// To `corrupt`: what was done to which file.
    Corruption(LayerCorruption),
    /// The request could not be done (a sync that failed, a line that is no request).
    Error { message: String },
}

/// Answers `request` from `layer`.
pub fn handle(layer: &DiskLayer, request: &Request) -> Reply {
    let status = |fs: &super::lazy_fs::LazyFs| {
        Reply::Status(StatusReply::of(&fs.faults, &fs.counters, fs.unsynced()))
    };
    match request {
        Request::DropUnsynced {} => Reply::Dropped(layer.state().drop_unsynced().into()),
        Request::TearUnsynced { block } => {
            Reply::Dropped(layer.state().tear_unsynced((*block).max(1)).into())
        }
        Request::SetFaults(settings) => {
            let mut fs = layer.state();
            fs.faults = (*settings).into();
            status(&fs)
        }
        Request::ClearFaults {} => {
            let mut fs = layer.state();
            fs.faults = DiskFaults::default();
            status(&fs)
        }
        Request::SyncAll {} => {
            let mut fs = layer.state();
            match fs.sync_all() {
                Ok(()) => status(&fs),
                Err(e) => Reply::Error {
                    message: format!("syncing everything: {e}"),
                },
            }
        }
        Request::Status {} => status(&layer.state()),
        // Not under the state's lock: the corruption takes it to sync first.
        Request::Corrupt { style, files, seed } => {
            match super::corrupt::corrupt_layer(layer, *style, files.as_deref(), *seed) {
                Ok(done) => Reply::Corruption(done),
                Err(e) => Reply::Error {
                    message: format!("corrupting its disk: {e}"),
                },
            }
        }
    }
}

/// Answers one line (a request) with one line (the reply, without its line break).
pub fn answer_line(layer: &DiskLayer, line: &str) -> String {
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(request) => handle(layer, &request),
        Err(e) => Reply::Error {
            message: format!("not a disk layer request: {e}"),
        },
    };
    serde_json::to_string(&reply).expect("a reply is plain data")
}

/// Serves one connection: a request line in, a reply line out, until the client closes.
pub fn serve_connection(layer: &DiskLayer, stream: UnixStream) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        writeln!(writer, "{}", answer_line(layer, &line))?;
    }
    Ok(())
}

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("connecting to the disk layer at {socket}: {source}")]
    Connect {
        socket: String,
        source: std::io::Error,
    },
    #[error("talking to the disk layer at {socket}: {source}")]
    Io {
        socket: String,
        source: std::io::Error,
    },
    #[error("the disk layer at {socket} answered {line:?}: {source}")]
    Reply {
        socket: String,
        line: String,
        source: serde_json::Error,
    },
}

/// Sends `request` to the layer serving `socket` and reads its reply (waiting at most
/// `timeout` for it).
pub fn ask(socket: &Path, request: &Request, timeout: Duration) -> Result<Reply, AskError> {
    let name = socket.display().to_string();
    let stream = UnixStream::connect(socket).map_err(|source| AskError::Connect {
        socket: name.clone(),
        source,
    })?;
    let io = |source| AskError::Io {
        socket: name.clone(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut writer = stream.try_clone().map_err(io)?;
    let line = serde_json::to_string(request).expect("a request is plain data");
    writeln!(writer, "{line}").map_err(io)?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).map_err(io)?;
    parse_reply(&reply).map_err(|source| AskError::Reply {
        socket: name,
        line: reply.trim().to_owned(),
        source,
    })
}

/// A reply line as [`ask`] (and the controller, from `disk-layer ctl`'s output) reads it.
pub fn parse_reply(line: &str) -> Result<Reply, serde_json::Error> {
    serde_json::from_str(line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_tagged_json_line_each_and_read_back_the_same() {
        let cases = [
            (Request::DropUnsynced {}, r#"{"request":"drop-unsynced"}"#),
            (
                Request::TearUnsynced { block: 4096 },
                r#"{"request":"tear-unsynced","block":4096}"#,
            ),
            (
                Request::SetFaults(FaultSettings {
                    fsync_error: false,
                    enospc: true,
                    fsync_delay_ms: 200,
                }),
                r#"{"request":"set-faults","fsync_error":false,"enospc":true,"fsync_delay_ms":200}"#,
            ),
            (Request::ClearFaults {}, r#"{"request":"clear-faults"}"#),
            (Request::SyncAll {}, r#"{"request":"sync-all"}"#),
            (Request::Status {}, r#"{"request":"status"}"#),
            (
                Request::Corrupt {
                    style: CorruptStyle::OldCopy,
                    files: Some("raft-*".into()),
                    seed: u64::MAX,
                },
                r#"{"request":"corrupt","style":"old-copy","files":"raft-*","seed":18446744073709551615}"#,
            ),
            (
                Request::Corrupt {
                    style: CorruptStyle::BitFlip,
                    files: None,
                    seed: 7,
                },
                r#"{"request":"corrupt","style":"bit-flip","seed":7}"#,
            ),
        ];
        for (request, line) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), line);
            assert_eq!(serde_json::from_str::<Request>(line).unwrap(), request);
        }
        // Unknown requests and fields are refused, not ignored.
        assert!(serde_json::from_str::<Request>(r#"{"request":"format"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"request":"status","now":true}"#).is_err());
        assert!(serde_json::from_str::<Request>(
            r#"{"request":"set-faults","fsync_error":true,"enospc":false}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Request>(
            r#"{"request":"corrupt","style":"shred","seed":1}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<Request>(r#"{"request":"corrupt","style":"truncate"}"#).is_err()
        );
    }

    #[test]
    fn corruption_replies_carry_what_the_local_evidence_prints() {
        let done = crate::disk::corrupt::Corruption {
            file: "raft-log.jsonl".into(),
            style: CorruptStyle::BitFlip,
            offset: 120,
            length: 64,
            bits: 3,
            size_before: 4096,
            size_after: 4096,
            checksum_before: u64::MAX,
            checksum_after: 0x0123_4567_89ab_cdef,
        };
        let reply = Reply::Corruption(LayerCorruption::Corrupted(done.clone()));
        let line = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            line,
            r#"{"reply":"corruption","outcome":"corrupted","file":"raft-log.jsonl","style":"bit-flip","offset":120,"length":64,"bits":3,"size_before":4096,"size_after":4096,"checksum_before":18446744073709551615,"checksum_after":81985529216486895}"#
        );
        let Reply::Corruption(back) = parse_reply(&line).unwrap() else {
            panic!("not a corruption: {line}");
        };
        assert!(back.changed());
        assert_eq!(
            back.to_string(),
            "raft-log.jsonl: bit-flip of 3 bits in bytes 120..184 of 4096; \
             fnv1a64 0xffffffffffffffff -> 0x0123456789abcdef"
        );
        assert_eq!(back, LayerCorruption::Corrupted(done));

        for (outcome, line, evidence) in [
            (
                LayerCorruption::NoFile {
                    pattern: "*.wal".into(),
                },
                r#"{"reply":"corruption","outcome":"no-file","pattern":"*.wal"}"#,
                "no non-empty file matching *.wal to corrupt",
            ),
            (
                LayerCorruption::KeptForLater {
                    file: "raft-vote.json".into(),
                },
                r#"{"reply":"corruption","outcome":"kept-for-later","file":"raft-vote.json"}"#,
                "old-copy: no older copy of any file kept yet; kept raft-vote.json for a later \
                 fault, nothing changed",
            ),
        ] {
            let reply = Reply::Corruption(outcome.clone());
            assert_eq!(serde_json::to_string(&reply).unwrap(), line);
            assert_eq!(parse_reply(line).unwrap(), reply);
            assert!(!outcome.changed());
            assert_eq!(outcome.to_string(), evidence);
        }
        // A corruption without its checksums is no reply.
        assert!(parse_reply(
            r#"{"reply":"corruption","outcome":"corrupted","file":"f","style":"truncate"}"#
        )
        .is_err());
    }

    #[test]
    fn replies_carry_the_layers_own_account_both_ways() {
        let dropped = Dropped {
            lost: Unsynced {
                bytes: 8192,
                files: 2,
                entries: 3,
            },
            kept_bytes: 4096,
            errors: vec!["x: gone".into()],
        };
        let reply = Reply::Dropped(dropped.clone().into());
        let line = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            line,
            r#"{"reply":"dropped","lost":{"bytes":8192,"files":2,"entries":3},"kept_bytes":4096,"errors":["x: gone"]}"#
        );
        let Reply::Dropped(back) = parse_reply(&format!("{line}\n")).unwrap() else {
            panic!("not a drop: {line}");
        };
        let back: Dropped = back.into();
        assert_eq!(back.lost, dropped.lost);
        assert_eq!(back.kept_bytes, 4096);
        assert_eq!(back.errors, dropped.errors);

        let faults = DiskFaults {
            fsync_error: true,
            enospc: false,
            fsync_delay: Duration::from_millis(150),
        };
        let status = StatusReply::of(
            &faults,
            &Counters {
                syncs: 5,
                written_back_bytes: 0,
                failed_syncs: 2,
            },
            Unsynced::default(),
        );
        let line = serde_json::to_string(&Reply::Status(status)).unwrap();
        assert!(line.starts_with(r#"{"reply":"status","faults":{"fsync_error":true,"enospc":false,"fsync_delay_ms":150},"syncs":5,"failed_syncs":2"#), "{line}");
        let Reply::Status(back) = parse_reply(&line).unwrap() else {
            panic!("not a status: {line}");
        };
        let back_faults: DiskFaults = back.faults.into();
        assert_eq!(back_faults.fsync_delay, Duration::from_millis(150));
        assert!(back_faults.fsync_error && !back_faults.enospc);
        assert_eq!(back.failed_syncs, 2);

        let error = Reply::Error {
            message: "syncing everything: EIO".into(),
        };
        let line = serde_json::to_string(&error).unwrap();
        assert_eq!(
            line,
            r#"{"reply":"error","message":"syncing everything: EIO"}"#
        );
        assert_eq!(parse_reply(&line).unwrap(), error);
        assert!(parse_reply(r#"{"reply":"ok"}"#).is_err());
    }
}
