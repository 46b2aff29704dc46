//! Cluster architectures under test, built to be tested by a Jepsen-style harness.
//!
//! One binary (`clusterkv`) runs one node of one architecture. Every architecture speaks
//! the same client protocol ([`protocol`]) and shares the server plumbing ([`net`]) and the
//! durable write-ahead log ([`storage`]):
//!
//! * [`primary_backup`] — leader-based, flawed on purpose (no terms, no fencing);
//! * [`raft`] — leader-based, correct (openraft);
//! * [`dynamo`] — leaderless N/R/W quorums with last-write-wins timestamps, flawed;
//! * [`caspaxos`] — leaderless single-decree Paxos per key, correct.

pub mod caspaxos;
pub mod config;
pub mod dynamo;
pub mod log;
pub mod net;
pub mod primary_backup;
pub mod protocol;
pub mod raft;
pub mod storage;

use std::sync::Arc;
use tokio::net::TcpListener;

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("raft: {0}")]
    Raft(String),
}

/// Starts the node described by `config` and serves until the process is killed.
pub async fn run(config: config::Config) -> Result<(), StartError> {
    config.check_bug()?;
    let config = Arc::new(config);
    log::set_node_name(config.name());
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    std::fs::create_dir_all(&config.data_dir).map_err(storage::StorageError::from)?;
    log!(
        "starting {}{} on {} with {} peers",
        config.arch.name(),
        config
            .bug
            .map(|bug| format!(" with bug {}", bug.name()))
            .unwrap_or_default(),
        config.listen,
        config.peers.len()
    );
    match config.arch {
        config::Arch::PrimaryBackup => {
            let node = primary_backup::PrimaryBackup::start(config)?;
            net::serve(listener, node).await;
        }
        config::Arch::Dynamo => {
            let node = dynamo::Dynamo::start(config)?;
            net::serve(listener, node).await;
        }
        config::Arch::Caspaxos => {
            let node = caspaxos::CasPaxos::start(config)?;
            net::serve(listener, node).await;
        }
        config::Arch::Raft => {
            let node = raft::RaftNode::start(config).await?;
            net::serve(listener, node).await;
        }
    }
    Ok(())
}
