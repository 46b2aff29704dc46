//! The campaign's `system:` section: which system, with its options. Each system's own
//! options that need more than a few fields live in its module (`command`, `postgres`);
//! the campaign ([`crate::campaign`]) re-exports these types.

use crate::limits;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The system under test, e.g. `system: {etcd: {}}` or `system: {clusterkv: {arch: raft}}`.
///
/// Written as a map with exactly one entry (serde_yaml would otherwise want a YAML tag).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", try_from = "SystemSection")]
pub enum SystemSpec {
    /// Debian's `etcd-server`.
    Etcd(EtcdSpec),
    /// Debian's `zookeeper`: an ensemble of JVMs started by the harness.
    Zookeeper(ZooKeeperSpec),
    /// Debian's `redis-server` and `redis-sentinel`: a primary, replicas, three Sentinels.
    Redis(RedisSpec),
    /// The project's own cluster architectures.
    Clusterkv(ClusterKvSpec),
    /// Any system: node command templates and an external JSON-lines client.
    Command(super::command::CommandSpec),
    /// PostgreSQL (Debian's `postgresql`), for the transactional workloads.
    Postgres(super::postgres::PostgresSpec),
    /// An in-process linearizable store: no processes, no namespaces, no privileges. For
    /// measuring the harness itself and for trying campaigns out.
    InMemory(InMemorySpec),
}

/// The YAML shape of [`SystemSpec`]: one optional field per system, exactly one given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SystemSection {
    etcd: Option<EtcdSpec>,
    zookeeper: Option<ZooKeeperSpec>,
    redis: Option<RedisSpec>,
    clusterkv: Option<ClusterKvSpec>,
    command: Option<super::command::CommandSpec>,
    postgres: Option<super::postgres::PostgresSpec>,
    in_memory: Option<InMemorySpec>,
}

impl TryFrom<SystemSection> for SystemSpec {
    type Error = String;
    fn try_from(s: SystemSection) -> Result<Self, String> {
        let mut given = Vec::new();
        if let Some(x) = s.etcd {
            given.push(SystemSpec::Etcd(x));
        }
        if let Some(x) = s.zookeeper {
            given.push(SystemSpec::Zookeeper(x));
        }
        if let Some(x) = s.redis {
            given.push(SystemSpec::Redis(x));
        }
        if let Some(x) = s.clusterkv {
            given.push(SystemSpec::Clusterkv(x));
        }
        if let Some(x) = s.command {
            given.push(SystemSpec::Command(x));
        }
        if let Some(x) = s.postgres {
            given.push(SystemSpec::Postgres(x));
        }
        if let Some(x) = s.in_memory {
            given.push(SystemSpec::InMemory(x));
        }
        if given.len() != 1 {
            return Err(format!(
                "expected exactly one of `etcd`, `zookeeper`, `redis`, `clusterkv`, `command`, `postgres`, `in-memory`, found {}",
                given.len()
            ));
        }
        Ok(given.remove(0))
    }
}

impl SystemSpec {
    pub fn name(&self) -> String {
        match self {
            SystemSpec::Etcd(_) => "etcd".into(),
            SystemSpec::Zookeeper(_) => "zookeeper".into(),
            SystemSpec::Redis(_) => "redis".into(),
            SystemSpec::Clusterkv(c) => match c.bug {
                Some(bug) => bug.variant_name().to_owned(),
                None => c.arch.name().to_owned(),
            },
            SystemSpec::Command(_) => "command".into(),
            SystemSpec::Postgres(p) => format!("postgres-{}", p.isolation.name()),
            SystemSpec::InMemory(_) => "in-memory".into(),
        }
    }

    /// Whether the system's clients run transactions (`list-append`, `rw-register`).
    pub fn runs_transactions(&self) -> bool {
        matches!(
            self,
            SystemSpec::Etcd(_) | SystemSpec::Command(_) | SystemSpec::Postgres(_)
        )
    }

    /// Whether the system's clients run the single-key operations (read, write, cas, add).
    pub fn runs_single_key_operations(&self) -> bool {
        !matches!(self, SystemSpec::Postgres(_))
    }
    /// Whether the system runs real processes in namespaces (and so needs root).
    pub fn needs_cluster(&self) -> bool {
        !matches!(self, SystemSpec::InMemory(_))
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSpec {
    /// Serializable (possibly stale) reads instead of linearizable ones.
    #[serde(default)]
    pub serializable_reads: bool,
    /// Path of the `etcd` binary (default: `etcd` on PATH).
    #[serde(default)]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZooKeeperSpec {
    /// `sync` before every read, so the contacted server catches up with the leader first.
    #[serde(default)]
    pub sync_reads: bool,
    /// Path of the `java` binary (default: `java` on PATH).
    #[serde(default)]
    pub java: Option<PathBuf>,
    /// ZooKeeper's jar (default: Debian's `/usr/share/java/zookeeper.jar`).
    #[serde(default)]
    pub jar: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// `WAIT replicas timeout_ms` after every write; fewer acknowledgements make it `info`.
    #[serde(default)]
    pub wait: Option<RedisWaitSpec>,
    /// Read from a replica (found through Sentinel) instead of the primary.
    #[serde(default)]
    pub replica_reads: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisWaitSpec {
    #[serde(deserialize_with = "limits::u64_in::<_, 1, { limits::MAX_NODES as u64 }>")]
    pub replicas: u64,
    #[serde(deserialize_with = "limits::u64_in::<_, 1, 3_600_000>")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterKvSpec {
    /// `primary-backup`, `raft`, `dynamo` or `caspaxos`.
    pub arch: super::clusterkv::Arch,
    /// primary-backup: acknowledge before (`async`) or after (`sync`) the backups have it.
    #[serde(default)]
    pub replication: Option<super::clusterkv::Replication>,
    /// A seeded bug of the bug zoo: a variant of `arch` broken by one kind of fault.
    #[serde(default)]
    pub bug: Option<super::clusterkv::Bug>,
    /// dynamo: replicas per key, read quorum, write quorum.
    #[serde(
        default,
        deserialize_with = "limits::option_usize_in::<_, 1, { limits::MAX_NODES as u64 }>"
    )]
    pub n: Option<usize>,
    #[serde(
        default,
        deserialize_with = "limits::option_usize_in::<_, 1, { limits::MAX_NODES as u64 }>"
    )]
    pub r: Option<usize>,
    #[serde(
        default,
        deserialize_with = "limits::option_usize_in::<_, 1, { limits::MAX_NODES as u64 }>"
    )]
    pub w: Option<usize>,
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "limits::option_duration",
        default
    )]
    pub heartbeat: Option<Duration>,
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "limits::option_duration",
        default
    )]
    pub election_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InMemorySpec {}
