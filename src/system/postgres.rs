//! PostgreSQL 15 (Debian's `postgresql` package) as a system under test, for the
//! transactional workloads (`list-append`, `rw-register`).
//!
//! # Nodes
//!
//! Each node is the harness's own `postgres` process (never Debian's service), in the
//! node's namespace and cgroup, with its own data directory (the node's `data/`), listening
//! on the node's address, port 5432, without a Unix socket (nodes of several runs share
//! the file system). PostgreSQL refuses to run as root: the data directory is created by
//! `initdb` run as an unprivileged user (`postgres`, which Debian's package creates, by
//! default), and the server is started through `setpriv` (util-linux) as that user, so
//! the node's process is `postgres` itself, which kills and pauses reach. That user must
//! be able to reach the data directory: every directory above it must be searchable by
//! others (`o+x`), which the launch checks. Authentication is `trust`, for the cluster
//! network only.
//!
//! Readiness: `psql` creates the table (idempotently) on the node; the node is ready when
//! that succeeds.
//!
//! # Client
//!
//! tokio-postgres, one connection per client. The table is one row per key,
//! `kv (k bigint primary key, list bigint[], reg bigint)`: list-append appends with an
//! upsert (`INSERT … ON CONFLICT (k) DO UPDATE SET list = kv.list || v`), rw-register
//! writes with an upsert of `reg`, reads select the row. A transaction runs as
//! `BEGIN ISOLATION LEVEL <isolation>`, its micro-operations in order, `COMMIT`.
//!
//! Outcomes, nothing retried: an error before `COMMIT` was sent (a serialization failure,
//! a deadlock, a lost connection, a timeout) is `fail` — a transaction whose `COMMIT` was
//! never sent cannot commit; a rollback answer to `COMMIT` (a serialization failure at
//! commit) is `fail`; a connection lost, a timeout or any other error answer (the server
//! shutting down) after `COMMIT` was sent is `info`.

use super::txn::{completed_txn_value, parse_txn, MicroOp, ReadValue};
use super::{
    BoxFuture, Client, ClusterSpec, Function, LaunchSpec, NodeSpec, Outcome, Readiness, Request,
    System,
};
use serde::{Deserialize, Serialize};
use splitbrain_checkers::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

/// Where Debian's `postgresql-15` puts the server's programs.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// Where Debian puts each installed major version (`<version>/bin`).
const DEBIAN_VERSIONS_DIR: &str = "/usr/lib/postgresql";

/// The server programs' directory when the campaign names none: Debian's for the newest
/// installed major version, else [`DEFAULT_BIN_DIR`].
pub fn default_bin_dir() -> PathBuf {
    newest_version_bin(Path::new(DEBIAN_VERSIONS_DIR))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR))
}

/// `<versions>/<highest numeric version>/bin`, if it holds `postgres`.
fn newest_version_bin(versions: &Path) -> Option<PathBuf> {
    std::fs::read_dir(versions)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}
/// The unprivileged user the server runs as (created by Debian's package).
pub const DEFAULT_USER: &str = "postgres";
/// The port every node listens on (each node has its own address).
pub const PORT: u16 = 5432;

/// The table of the transactional workloads: one row per key.
const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS kv (k bigint PRIMARY KEY, list bigint[], reg bigint)";
const READ: &str = "SELECT list, reg FROM kv WHERE k = $1";
const APPEND: &str = "INSERT INTO kv (k, list) VALUES ($1, ARRAY[$2::bigint]) \
     ON CONFLICT (k) DO UPDATE SET list = COALESCE(kv.list, '{}') || $2::bigint";
const WRITE: &str =
    "INSERT INTO kv (k, reg) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET reg = EXCLUDED.reg";

/// `system: {postgres: {…}}` in a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// The isolation level of every transaction.
    #[serde(default)]
    pub isolation: Isolation,
    /// The directory of `initdb`, `postgres` and `psql` (default: Debian's, for 15).
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
    /// The unprivileged user the server runs as (default `postgres`).
    #[serde(default)]
    pub user: Option<String>,
    /// With more than one node (`n1` the primary, the others its hot standbys): clients
    /// bound to a standby run their read-only transactions there.
    #[serde(default)]
    pub read_from_standbys: bool,
}

/// PostgreSQL's isolation levels (`read uncommitted` is `read committed` in PostgreSQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    #[default]
    Serializable,
    RepeatableRead,
    ReadCommitted,
}

impl Isolation {
    pub const ALL: [Isolation; 3] = [
        Isolation::Serializable,
        Isolation::RepeatableRead,
        Isolation::ReadCommitted,
    ];

    /// The name in campaign files.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Serializable => "serializable",
            Isolation::RepeatableRead => "repeatable-read",
            Isolation::ReadCommitted => "read-committed",
        }
    }

    /// The level as SQL writes it.
    pub fn sql(self) -> &'static str {
        match self {
            Isolation::Serializable => "SERIALIZABLE",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::ReadCommitted => "READ COMMITTED",
        }
    }
}

/// Errors of the postgres system (version, launch), as opposed to operation outcomes.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("cannot run `{program} --version`: {error}")]
    VersionSpawn {
        program: String,
        error: std::io::Error,
    },
    #[error("`{program} --version` printed no `postgres (PostgreSQL)` line: {output:?}")]
    VersionParse { program: String, output: String },
    #[error("user `{0}` (the server's; PostgreSQL refuses to run as root) does not exist: install Debian's `postgresql` or name another user in `system.postgres.user`")]
    NoSuchUser(String),
    #[error("user `{user}` cannot reach the data directory {data_dir}: {blocking} is not searchable by others (chmod o+x it, or write results elsewhere)")]
    Unreachable {
        user: String,
        data_dir: PathBuf,
        blocking: PathBuf,
    },
    #[error("preparing {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("`initdb` for {data_dir} failed ({status}): {output}")]
    Initdb {
        data_dir: PathBuf,
        status: String,
        output: String,
    },
}

/// PostgreSQL as a system under test.
#[derive(Debug, Clone)]
pub struct PostgresSystem {
    pub spec: PostgresSpec,
}

impl PostgresSystem {
    pub fn new(spec: PostgresSpec) -> Self {
        PostgresSystem { spec }
    }

    fn bin(&self, program: &str) -> PathBuf {
        self.spec
            .bin_dir
            .clone()
            .unwrap_or_else(default_bin_dir)
            .join(program)
    }

    fn user_name(&self) -> &str {
        self.spec.user.as_deref().unwrap_or(DEFAULT_USER)
    }

    fn user(&self) -> Result<nix::unistd::User, PostgresError> {
        nix::unistd::User::from_name(self.user_name())
            .ok()
            .flatten()
            .ok_or_else(|| PostgresError::NoSuchUser(self.user_name().to_owned()))
    }

    /// Creates the node's data directory with `initdb`, unless it already holds one.
    fn init_data_dir(&self, data_dir: &Path) -> Result<(), PostgresError> {
        let user = self.user()?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |error| PostgresError::Io { path, error }
        };
        if data_dir.join("PG_VERSION").exists() {
            return Ok(());
        }
        crate::results::create_dirs(data_dir).map_err(io(data_dir))?;
        check_reachable(data_dir, &user)?;
        nix::unistd::chown(data_dir, Some(user.uid), Some(user.gid))
            .map_err(|e| io(data_dir)(e.into()))?;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(data_dir))?;
        // As the user, like the server (`setpriv`: no supplementary groups either).
        let output = std::process::Command::new("setpriv")
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .args(["--clear-groups", "--"])
            .arg(self.bin("initdb"))
            .arg("--pgdata")
            .arg(data_dir)
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .current_dir(data_dir)
            .env_remove("PGDATA")
            .output()
            .map_err(io(&self.bin("initdb")))?;
        if !output.status.success() {
            return Err(PostgresError::Initdb {
                data_dir: data_dir.to_owned(),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&[output.stdout, output.stderr].concat())
                    .trim()
                    .to_owned(),
            });
        }
        // Clients come from the cluster network, without passwords.
        let hba = data_dir.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).map_err(io(&hba))?;
        text.push_str("\n# splitbrain: the cluster network\nhost all all 0.0.0.0/0 trust\nhost replication all 0.0.0.0/0 trust\n");
        std::fs::write(&hba, text).map_err(io(&hba))?;
        Ok(())
    }
}

/// Whether `user` can reach `dir`: every directory above it searchable by the user.
fn check_reachable(dir: &Path, user: &nix::unistd::User) -> Result<(), PostgresError> {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    for ancestor in absolute.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue;
        };
        let mode = meta.mode();
        let searchable = mode & 0o001 != 0
            || (meta.uid() == user.uid.as_raw() && mode & 0o100 != 0)
            || (meta.gid() == user.gid.as_raw() && mode & 0o010 != 0);
        if !searchable {
            return Err(PostgresError::Unreachable {
                user: user.name.clone(),
                data_dir: absolute.clone(),
                blocking: ancestor.to_owned(),
            });
        }
    }
    Ok(())
}

/// Extracts `15.18` from `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
pub fn parse_version(output: &str) -> Option<String> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("postgres (PostgreSQL)"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

impl PostgresSystem {
    fn version_text(&self) -> anyhow::Result<String> {
        let program = self.bin("postgres");
        let output = std::process::Command::new(&program)
            .arg("--version")
            .output()
            .map_err(|error| PostgresError::VersionSpawn {
                program: program.display().to_string(),
                error,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = parse_version(&text).ok_or_else(|| PostgresError::VersionParse {
            program: program.display().to_string(),
            output: text.to_string(),
        })?;
        // The server cannot run without its user: unavailable, like a missing binary.
        self.user()?;
        Ok(format!("postgres {version}"))
    }

    fn launch_node(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        let data_dir = std::path::absolute(&node.data_dir)?;
        let user = self.user()?;
        let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
        match cluster.nodes.first() {
            Some(primary) if primary.name != node.name => {
                self.prepare_standby_dir(&data_dir, &user)?;
                Ok(self.standby_launch(node, primary, &data_dir, uid, gid))
            }
            _ => {
                self.init_data_dir(&data_dir)?;
                Ok(self.server_launch(node, &data_dir, uid, gid))
            }
        }
    }

    /// An empty data directory for a standby, owned by the user, unless it holds one.
    fn prepare_standby_dir(
        &self,
        data_dir: &Path,
        user: &nix::unistd::User,
    ) -> Result<(), PostgresError> {
        let io = |error| PostgresError::Io {
            path: data_dir.to_owned(),
            error,
        };
        if data_dir.join("PG_VERSION").exists() {
            return Ok(());
        }
        crate::results::create_dirs(data_dir).map_err(io)?;
        check_reachable(data_dir, user)?;
        nix::unistd::chown(data_dir, Some(user.uid), Some(user.gid)).map_err(|e| io(e.into()))?;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
    }

    /// A hot standby of `primary`: on its first start `pg_basebackup` copies the primary
    /// (retried until the primary answers, `-R`: streaming from it), then the node's
    /// process becomes `postgres` itself (`exec`). The values reach the fixed script as
    /// arguments, never as script text.
    pub fn standby_launch(
        &self,
        node: &NodeSpec,
        primary: &NodeSpec,
        data_dir: &Path,
        uid: u32,
        gid: u32,
    ) -> LaunchSpec {
        const SCRIPT: &str = r#"if [ ! -f "$3/PG_VERSION" ]; then
  until "$1" -h "$2" -p "$4" -U postgres -D "$3" -R -X stream -c fast; do
    find "$3" -mindepth 1 -delete; sleep 0.3
  done
fi
shift 4
exec "$@""#;
        let server = self.server_launch(node, data_dir, uid, gid);
        // `setpriv … --` as the server's, then the shell in place of `postgres`.
        let split = server
            .args
            .iter()
            .position(|a| a == "--")
            .expect("server_launch has --")
            + 1;
        let mut args = server.args[..split].to_vec();
        args.extend([
            "sh".to_owned(),
            "-c".to_owned(),
            SCRIPT.to_owned(),
            "sh".to_owned(),
            self.bin("pg_basebackup").display().to_string(),
            primary.ip.to_string(),
            data_dir.display().to_string(),
            PORT.to_string(),
        ]);
        args.extend(server.args[split..].iter().cloned());
        LaunchSpec {
            program: server.program,
            args,
            env: Vec::new(),
        }
    }

    /// `setpriv` starting `postgres` as `uid`:`gid` on `data_dir`, listening on the node's
    /// address only.
    pub fn server_launch(
        &self,
        node: &NodeSpec,
        data_dir: &Path,
        uid: u32,
        gid: u32,
    ) -> LaunchSpec {
        let setting = |name: &str, value: String| ["-c".to_owned(), format!("{name}={value}")];
        let mut args = vec![
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".to_owned(),
            "--".to_owned(),
            self.bin("postgres").display().to_string(),
            "-D".to_owned(),
            data_dir.display().to_string(),
        ];
        args.extend(
            [
                setting("listen_addresses", node.ip.to_string()),
                setting("port", PORT.to_string()),
                // No socket file: nodes of concurrent runs share the file system.
                setting("unix_socket_directories", String::new()),
                setting("max_connections", "300".to_owned()),
                setting("logging_collector", "off".to_owned()),
                // A standby cut off by a partition catches up from the primary's WAL.
                setting("wal_keep_size", "512MB".to_owned()),
            ]
            .into_iter()
            .flatten(),
        );
        LaunchSpec {
            program: PathBuf::from("setpriv"),
            args,
            env: Vec::new(),
        }
    }
}

impl System for PostgresSystem {
    /// Not asked yet: the primary is the first node by configuration (there is no
    /// failover), but no query confirms it, so faults aimed at the leader hit a random node
    /// and their records say so.
    fn role_query(
        &self,
        _cluster: &super::ClusterSpec,
    ) -> Option<std::sync::Arc<dyn super::RoleQuery>> {
        None
    }

    fn name(&self) -> &str {
        "postgres"
    }

    fn version(&self) -> anyhow::Result<String> {
        self.version_text()
    }

    fn launch(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        self.launch_node(node, cluster)
    }

    fn readiness(&self, node: &NodeSpec) -> Readiness {
        Readiness::Command(LaunchSpec {
            program: self.bin("psql"),
            args: vec![
                "-X".to_owned(),
                "-q".to_owned(),
                "-v".to_owned(),
                "ON_ERROR_STOP=1".to_owned(),
                "-h".to_owned(),
                node.ip.to_string(),
                "-p".to_owned(),
                PORT.to_string(),
                "-U".to_owned(),
                "postgres".to_owned(),
                "-d".to_owned(),
                "postgres".to_owned(),
                "-c".to_owned(),
                // The primary (`n1`) creates the table; a standby is ready once it has it.
                if node.id == 1 {
                    CREATE_TABLE.to_owned()
                } else {
                    "SELECT 1 FROM kv LIMIT 0".to_owned()
                },
            ],
            env: vec![("PGCONNECT_TIMEOUT".to_owned(), "2".to_owned())],
        })
    }

    fn client(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<Box<dyn Client>> {
        let primary = cluster.nodes.first().unwrap_or(node);
        let standby = (self.spec.read_from_standbys && primary.name != node.name)
            .then(|| node.ip.to_string());
        Ok(Box::new(PostgresClient::new(
            primary.ip.to_string(),
            standby,
            self.spec.isolation,
        )))
    }
}

/// An open connection and its prepared statements; the connection's task dies with it.
struct Connection {
    client: tokio_postgres::Client,
    read: tokio_postgres::Statement,
    append: tokio_postgres::Statement,
    write: tokio_postgres::Statement,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One server a client talks to, and its connection once open.
struct Endpoint {
    host: String,
    conn: Option<Connection>,
}

/// Why a transaction did not commit, and whether its `COMMIT` had been sent.
struct TxnFailure {
    commit_sent: bool,
    error: tokio_postgres::Error,
}

impl Endpoint {
    fn new(host: String) -> Self {
        Endpoint { host, conn: None }
    }

    async fn connect(&self, deadline: Instant) -> Result<Connection, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(PORT)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(deadline.saturating_duration_since(Instant::now()));
        let open = async {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("connect to {}: {e}", self.host))?;
            let driver = tokio::spawn(async move {
                // Ends with an error whenever the server goes away; the client sees that
                // as a failed query.
                let _ = connection.await;
            });
            let prepare = async {
                Ok::<_, tokio_postgres::Error>((
                    client.prepare(READ).await?,
                    client.prepare(APPEND).await?,
                    client.prepare(WRITE).await?,
                ))
            };
            match prepare.await {
                Ok((read, append, write)) => Ok(Connection {
                    client,
                    read,
                    append,
                    write,
                    driver,
                }),
                Err(e) => {
                    driver.abort();
                    Err(format!("preparing statements on {}: {e}", self.host))
                }
            }
        };
        timeout_at(deadline, open)
            .await
            .unwrap_or_else(|_| Err(format!("connect to {} timed out", self.host)))
    }

    /// The open connection, or a new one; a failure here happens before anything is sent.
    async fn connected(&mut self, deadline: Instant) -> Result<&Connection, String> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect(deadline).await?);
        }
        Ok(self.conn.as_ref().expect("connected above"))
    }

    /// The harness's probe that the server serves (before the run): the table is there.
    async fn probe(&mut self, deadline: Instant) -> Outcome {
        let conn = match self.connected(deadline).await {
            Ok(conn) => conn,
            Err(e) => return Outcome::Fail(e),
        };
        match timeout_at(
            deadline,
            conn.client.simple_query("SELECT 1 FROM kv LIMIT 1"),
        )
        .await
        {
            Ok(Ok(_)) => Outcome::Ok(Value::Nil),
            Ok(Err(e)) => Outcome::Fail(describe(&e)),
            Err(_) => {
                self.conn = None;
                Outcome::Fail("timed out".to_owned())
            }
        }
    }

    async fn transaction(
        &mut self,
        isolation: Isolation,
        ops: &[MicroOp],
        deadline: Instant,
    ) -> Outcome {
        let conn = match self.connected(deadline).await {
            Ok(conn) => conn,
            // Nothing was sent: no effect.
            Err(e) => return Outcome::Fail(e),
        };
        let mut commit_sent = false;
        let run = run_transaction(conn, isolation, ops, &mut commit_sent);
        let result = timeout_at(deadline, run).await;
        match result {
            Ok(Ok(reads)) => Outcome::Ok(completed_txn_value(ops, &reads)),
            Err(_) => {
                // The connection's state is unknown: a fresh one for the next request.
                self.conn = None;
                if commit_sent {
                    Outcome::Info("timed out after COMMIT was sent".to_owned())
                } else {
                    Outcome::Fail("timed out before COMMIT was sent".to_owned())
                }
            }
            Ok(Err(TxnFailure { commit_sent, error })) => {
                // An error answer to `COMMIT` that is not a rollback (the server shutting
                // down, crashing, out of resources) leaves the commit unknown.
                if commit_sent
                    && error
                        .as_db_error()
                        .is_some_and(|db| !rolled_back_at_commit(db.code().code()))
                {
                    self.conn = None;
                    return Outcome::Info(describe(&error));
                }
                // The server answered: the transaction is rolled back (at `COMMIT` the
                // server has already aborted it; before, roll back to reuse the
                // connection).
                if error.as_db_error().is_some() {
                    if !commit_sent {
                        let conn = self.conn.as_ref().expect("connected above");
                        let rolled_back =
                            timeout_at(deadline, conn.client.batch_execute("ROLLBACK")).await;
                        if !matches!(rolled_back, Ok(Ok(()))) {
                            self.conn = None;
                        }
                    }
                    return Outcome::Fail(describe(&error));
                }
                // No answer (a lost connection): whether a sent COMMIT took effect is
                // unknown.
                self.conn = None;
                if commit_sent {
                    Outcome::Info(describe(&error))
                } else {
                    Outcome::Fail(describe(&error))
                }
            }
        }
    }
}

/// A client of a PostgreSQL cluster: transactions go to the primary; read-only ones to
/// the node's own hot standby when it has one and reads from standbys are asked for.
pub struct PostgresClient {
    isolation: Isolation,
    primary: Endpoint,
    standby: Option<Endpoint>,
}

impl PostgresClient {
    /// A client of the primary at `primary`:5432, reading from the standby at `standby`
    /// when given; it connects on first use.
    pub fn new(primary: String, standby: Option<String>, isolation: Isolation) -> Self {
        PostgresClient {
            isolation,
            primary: Endpoint::new(primary),
            standby: standby.map(Endpoint::new),
        }
    }

    /// Performs one request; never retries a transaction.
    pub async fn perform(&mut self, request: &Request) -> Outcome {
        let deadline = Instant::now() + request.timeout;
        match request.f {
            Function::Txn => {
                let ops = match parse_txn(&request.value) {
                    Ok(ops) => ops,
                    Err(e) => return Outcome::Fail(e.to_string()),
                };
                let read_only = ops.iter().all(|op| matches!(op, MicroOp::Read { .. }));
                match &mut self.standby {
                    // A hot standby refuses SERIALIZABLE; its snapshots are REPEATABLE
                    // READ at best.
                    Some(standby) if read_only => {
                        let isolation = match self.isolation {
                            Isolation::Serializable => Isolation::RepeatableRead,
                            other => other,
                        };
                        standby.transaction(isolation, &ops, deadline).await
                    }
                    _ => {
                        self.primary
                            .transaction(self.isolation, &ops, deadline)
                            .await
                    }
                }
            }
            Function::Read => match self.primary.probe(deadline).await {
                Outcome::Ok(_) if self.standby.is_some() => {
                    let standby = self.standby.as_mut().expect("checked");
                    standby.probe(deadline).await
                }
                other => other,
            },
            other => Outcome::Fail(format!(
                "postgres runs transactions, not `{}`",
                other.name()
            )),
        }
    }
}

/// `BEGIN`, the micro-operations, `COMMIT`; what each read returned. `commit_sent` is set
/// before `COMMIT` may leave.
async fn run_transaction(
    conn: &Connection,
    isolation: Isolation,
    ops: &[MicroOp],
    commit_sent: &mut bool,
) -> Result<Vec<Option<ReadValue>>, TxnFailure> {
    let failed = |error| TxnFailure {
        commit_sent: false,
        error,
    };
    conn.client
        .batch_execute(&format!("BEGIN ISOLATION LEVEL {}", isolation.sql()))
        .await
        .map_err(failed)?;
    let mut reads = Vec::with_capacity(ops.len());
    for op in ops {
        match *op {
            MicroOp::Read { key } => {
                let row = conn
                    .client
                    .query_opt(&conn.read, &[&key])
                    .await
                    .map_err(failed)?;
                let read = match row {
                    None => ReadValue::Register(None),
                    Some(row) => {
                        let list: Option<Vec<i64>> = row.try_get(0).map_err(failed)?;
                        let reg: Option<i64> = row.try_get(1).map_err(failed)?;
                        match (list, reg) {
                            (Some(list), _) => ReadValue::List(list),
                            (None, reg) => ReadValue::Register(reg),
                        }
                    }
                };
                reads.push(Some(read));
            }
            MicroOp::Append { key, value } => {
                conn.client
                    .execute(&conn.append, &[&key, &value])
                    .await
                    .map_err(failed)?;
                reads.push(None);
            }
            MicroOp::Write { key, value } => {
                conn.client
                    .execute(&conn.write, &[&key, &value])
                    .await
                    .map_err(failed)?;
                reads.push(None);
            }
        }
    }
    *commit_sent = true;
    conn.client
        .batch_execute("COMMIT")
        .await
        .map_err(|error| TxnFailure {
            commit_sent: true,
            error,
        })?;
    Ok(reads)
}

/// Whether an error answer to `COMMIT` with this SQLSTATE certainly means the transaction
/// was rolled back: a serialization failure or deadlock (class 40), a deferred constraint
/// (23), an invalid transaction state (25). Anything else — the server shutting down (57),
/// a connection problem (08), resources (53), an internal error (XX) — may have come
/// after the commit was durable.
fn rolled_back_at_commit(sqlstate: &str) -> bool {
    ["40", "23", "25"]
        .iter()
        .any(|class| sqlstate.starts_with(class))
}

/// An error as one line: the server's SQLSTATE and message, or the client's.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) if db.code() == &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE => {
            format!("serialization failure: {}", db.message())
        }
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

impl Client for PostgresClient {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(self.perform(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_standby_copies_the_primary_once_then_becomes_the_server() {
        let system = PostgresSystem::new(PostgresSpec::default());
        let node = |id: u8| NodeSpec {
            name: format!("n{id}"),
            id: id as usize,
            ip: Ipv4Addr::new(10, 77, 0, id + 1),
            data_dir: PathBuf::from(format!("/d{id}")),
        };
        let launch = system.standby_launch(&node(2), &node(1), Path::new("/d2"), 101, 104);
        let args = &launch.args;
        assert_eq!(launch.program, PathBuf::from("setpriv"));
        assert_eq!(
            &args[..6],
            [
                "--reuid=101",
                "--regid=104",
                "--clear-groups",
                "--",
                "sh",
                "-c"
            ]
        );
        // The script takes its values as arguments: pg_basebackup, primary, data, port.
        assert!(
            args[7..12]
                .join(" ")
                .ends_with("/pg_basebackup 10.77.0.2 /d2 5432"),
            "{args:?}"
        );
        // Then the server's own command line, on the standby's address.
        let server = args[12..].join(" ");
        assert!(
            server.contains("/postgres -D /d2 ") && server.contains("listen_addresses=10.77.0.3"),
            "{server}"
        );
        // The shell script itself parses.
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", &args[6]])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn the_newest_installed_major_version_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        for (version, with_server) in [("13", true), ("15", true), ("16", false), ("x", true)] {
            let bin = dir.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            if with_server {
                std::fs::write(bin.join("postgres"), "").unwrap();
            }
        }
        assert_eq!(
            newest_version_bin(dir.path()),
            Some(dir.path().join("15").join("bin"))
        );
        assert_eq!(newest_version_bin(&dir.path().join("missing")), None);
    }

    #[test]
    fn only_a_rollback_answer_to_commit_is_a_failure() {
        for rolled_back in ["40001", "40P01", "23505", "25P02"] {
            assert!(rolled_back_at_commit(rolled_back), "{rolled_back}");
        }
        for unknown in ["57P01", "57P02", "08006", "53100", "XX000"] {
            assert!(!rolled_back_at_commit(unknown), "{unknown}");
        }
    }

    #[test]
    fn version_line_is_parsed() {
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").as_deref(),
            Some("15.18")
        );
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn isolation_levels_parse_from_campaign_names() {
        for (name, sql) in [
            ("serializable", "SERIALIZABLE"),
            ("repeatable-read", "REPEATABLE READ"),
            ("read-committed", "READ COMMITTED"),
        ] {
            let level: Isolation = serde_yaml::from_str(name).unwrap();
            assert_eq!(level.sql(), sql);
        }
        assert!(serde_yaml::from_str::<Isolation>("snapshot").is_err());
        assert_eq!(PostgresSpec::default().isolation, Isolation::Serializable);
    }

    #[test]
    fn the_server_runs_as_its_user_on_the_node_address_without_a_socket() {
        let system = PostgresSystem::new(PostgresSpec::default());
        let node = NodeSpec {
            name: "n1".into(),
            id: 1,
            ip: Ipv4Addr::new(10, 77, 0, 2),
            data_dir: PathBuf::from("/nonexistent/data"),
        };
        let launch = system.server_launch(&node, Path::new("/d"), 101, 104);
        assert_eq!(launch.program, PathBuf::from("setpriv"));
        let args = launch.args.join(" ");
        assert!(
            args.starts_with("--reuid=101 --regid=104 --clear-groups -- ")
                && args.contains("/postgres -D /d ")
                && args.contains("-c listen_addresses=10.77.0.2 ")
                && args.contains("-c port=5432 ")
                && args.contains("-c unix_socket_directories= "),
            "{args}"
        );
        // initdb needs the user and a real directory.
        let user = match system.user() {
            Ok(user) => user,
            Err(_) => return,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let hidden = NodeSpec {
            data_dir: dir.path().join("data"),
            ..node.clone()
        };
        if nix::unistd::geteuid().is_root() && user.uid.as_raw() != 0 {
            let err = system
                .launch(&hidden, &ClusterSpec { nodes: vec![] })
                .unwrap_err()
                .to_string();
            assert!(err.contains("not searchable by others"), "{err}");
        }
        match system.readiness(&node) {
            Readiness::Command(spec) => {
                assert!(spec.program.ends_with("psql"));
                assert!(spec.args.contains(&"10.77.0.2".to_owned()));
                assert!(spec.args.contains(&CREATE_TABLE.to_owned()));
            }
            other => panic!("{other:?}"),
        }
    }
}
