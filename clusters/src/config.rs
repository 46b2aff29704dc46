//! The node's command line.
//!
//! Client requests and peer messages share one TCP port (`--listen`): every line is a JSON
//! object, and peer messages carry an `rpc` field that client requests never have.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The architectures and primary-backup's replication modes (`--arch`, `--replication`),
/// as campaigns spell them.
pub use clusterkv_protocol::{Arch, Bug, Replication};

/// One member of the cluster: `nK=IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    pub name: String,
    pub addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("peer `{0}`: expected nK=IP:PORT")]
    BadPeer(String),
    #[error("--bug {bug} is a variant of {arch}, not of {given}", bug = .bug.name(), arch = .bug.arch().name(), given = .given.name())]
    BugForOtherArch { bug: Bug, given: Arch },
    #[error("--peers names n{0} twice")]
    DuplicatePeer(u64),
    #[error(
        "dynamo needs 1 <= r, w <= n <= cluster size (n={n}, r={r}, w={w}, cluster={cluster})"
    )]
    BadQuorum {
        n: usize,
        r: usize,
        w: usize,
        cluster: usize,
    },
}

fn parse_peer(text: &str) -> Result<Peer, ConfigError> {
    let bad = || ConfigError::BadPeer(text.to_string());
    let (name, addr) = text.split_once('=').ok_or_else(bad)?;
    let id = name
        .strip_prefix('n')
        .and_then(|digits| digits.parse::<u64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(bad)?;
    let addr = addr.parse().map_err(|_| bad())?;
    Ok(Peer {
        id,
        name: name.to_string(),
        addr,
    })
}

/// `clusterkv`: one node of a key-value cluster built to be tested.
#[derive(Debug, Clone, Parser)]
#[command(name = "clusterkv", version, about)]
pub struct Config {
    /// The architecture to run.
    #[arg(long, value_enum)]
    pub arch: Arch,
    /// A seeded bug of the bug zoo (a variant of `raft` or `caspaxos`; see clusters/README.md).
    #[arg(long, value_enum)]
    pub bug: Option<Bug>,
    /// This node's id (its name is `n<id>`).
    #[arg(long)]
    pub id: u64,
    /// Address for clients and peers alike.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Every member of the cluster, this node included or not: `n1=IP:PORT,n2=IP:PORT,...`.
    #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<Peer>,
    /// Where the node keeps its durable state (kept across restarts).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// primary-backup: when the primary acknowledges a write.
    #[arg(long, value_enum, default_value = "async")]
    pub replication: Replication,
    /// dynamo: replicas per key.
    #[arg(long = "n", default_value_t = 3)]
    pub replicas: usize,
    /// dynamo: read quorum.
    #[arg(long = "r", default_value_t = 2)]
    pub read_quorum: usize,
    /// dynamo: write quorum.
    #[arg(long = "w", default_value_t = 2)]
    pub write_quorum: usize,
    /// Leader heartbeat interval (primary-backup, raft).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "100ms")]
    pub heartbeat: Duration,
    /// Silence after which a follower replaces its leader (primary-backup, raft).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    pub election_timeout: Duration,
    /// How long one message to a peer may take.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    pub rpc_timeout: Duration,
    /// How long a node works on one client request before it answers with an error.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub request_timeout: Duration,
}

impl Config {
    pub fn name(&self) -> String {
        format!("n{}", self.id)
    }

    /// Whether the node runs `bug`.
    pub fn has_bug(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    /// Refuses a bug of another architecture than `--arch`.
    pub fn check_bug(&self) -> Result<(), ConfigError> {
        match self.bug {
            Some(bug) if bug.arch() != self.arch => Err(ConfigError::BugForOtherArch {
                bug,
                given: self.arch,
            }),
            _ => Ok(()),
        }
    }

    /// Every member, this node included, sorted by id, and checked for duplicates.
    pub fn members(&self) -> Result<Vec<Peer>, ConfigError> {
        let mut members = self.peers.clone();
        if !members.iter().any(|p| p.id == self.id) {
            members.push(Peer {
                id: self.id,
                name: self.name(),
                addr: self.listen,
            });
        }
        members.sort_by_key(|p| p.id);
        for pair in members.windows(2) {
            if pair[0].id == pair[1].id {
                return Err(ConfigError::DuplicatePeer(pair[0].id));
            }
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_command_line() {
        let config = Config::try_parse_from([
            "clusterkv",
            "--arch",
            "primary-backup",
            "--id",
            "2",
            "--listen",
            "127.0.0.1:7001",
            "--peers",
            "n1=127.0.0.1:7000,n2=127.0.0.1:7001,n3=127.0.0.1:7002",
            "--data-dir",
            "/tmp/x",
            "--replication",
            "sync",
            "--n",
            "3",
            "--r",
            "1",
            "--w",
            "3",
            "--heartbeat",
            "50ms",
            "--election-timeout",
            "1s",
        ])
        .unwrap();
        assert_eq!(config.arch, Arch::PrimaryBackup);
        assert_eq!(config.replication, Replication::Sync);
        assert_eq!(
            (config.replicas, config.read_quorum, config.write_quorum),
            (3, 1, 3)
        );
        assert_eq!(config.heartbeat, Duration::from_millis(50));
        assert_eq!(config.election_timeout, Duration::from_secs(1));
        let ids: Vec<u64> = config.members().unwrap().iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }

    #[test]
    fn a_bug_belongs_to_one_architecture() {
        let parse = |arch: &str, bug: &str| {
            Config::try_parse_from([
                "clusterkv",
                "--arch",
                arch,
                "--id",
                "1",
                "--listen",
                "127.0.0.1:7000",
                "--peers",
                "n1=127.0.0.1:7000",
                "--data-dir",
                "/tmp/x",
                "--bug",
                bug,
            ])
            .unwrap()
        };
        let raft = parse("raft", "stale-local-read");
        assert!(raft.has_bug(Bug::StaleLocalRead) && !raft.has_bug(Bug::NoFsync));
        assert!(raft.check_bug().is_ok());
        let wrong = parse("caspaxos", "lease-clock");
        assert_eq!(
            wrong.check_bug().unwrap_err().to_string(),
            "--bug lease-clock is a variant of raft, not of caspaxos"
        );
        assert!(parse("caspaxos", "ack-before-quorum").check_bug().is_ok());
    }

    #[test]
    fn rejects_malformed_peers() {
        assert!(parse_peer("x1=127.0.0.1:1").is_err());
        assert!(parse_peer("n0=127.0.0.1:1").is_err());
        assert!(parse_peer("n1=localhost").is_err());
        assert_eq!(parse_peer("n7=10.0.0.7:9").unwrap().id, 7);
    }
}
