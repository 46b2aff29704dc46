//! Campaign files: which system, how many nodes, what workload, which faults, checked how.
//!
//! YAML is parsed in exactly one place, [`load`]; everything else works on the typed
//! [`Campaign`]. Unknown or misspelt fields are rejected with their line and column and the
//! list of valid names (serde's `deny_unknown_fields`), durations are written like `30s` or
//! `500ms`. Every duration and count is range-checked while parsing ([`limits`]), and the
//! file's size and its YAML aliases are bounded before parsing, so a campaign that loads
//! cannot overflow or exhaust anything once the cluster is up.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A campaign as written in a YAML file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Used for the results directory (`results/<name>/<timestamp>/`).
    #[serde(deserialize_with = "limits::path_name")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub system: SystemSpec,
    /// Cluster size.
    #[serde(
        default = "defaults::nodes",
        deserialize_with = "limits::usize_in::<_, 1, { limits::MAX_NODES as u64 }>"
    )]
    pub nodes: usize,
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub nemesis: NemesisSpec,
    #[serde(default)]
    pub checker: CheckerSpec,
    /// How long the cluster may take to start, before the run gives up.
    #[serde(default)]
    pub startup: StartupSpec,
    /// The lazy disk layer under each node's data directory, without faults.
    #[serde(default, skip_serializing_if = "DiskSpec::is_default")]
    pub disk: DiskSpec,
    /// Seed of every random choice (operations, keys, fault schedule). `--seed` overrides it;
    /// without either a fresh one is drawn and recorded.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The machines that run the nodes, one per node; empty: namespaces on this machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostSpec>,
    /// How to log in to `hosts` (absent: root on port 22 with OpenSSH's default key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSpec>,
}

pub use crate::remote::{HostSpec, SshSpec};

pub use crate::system::spec::{
    ClusterKvSpec, EtcdSpec, InMemorySpec, RedisSpec, RedisWaitSpec, SystemSpec, ZooKeeperSpec,
};

/// The deadlines of a cluster's start: every node ready, then a read served through every
/// node. A node that exits before it is ready stops the run at once, whatever these say.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StartupSpec {
    /// How long each node may take to pass its readiness check (after all were started).
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "startup_timeout",
        default = "defaults::startup_timeout"
    )]
    pub ready_timeout: Duration,
    /// How long, once every node is ready, a read through each node may take to succeed
    /// (retried every 100 ms) before the main phase begins.
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "startup_timeout",
        default = "defaults::startup_timeout"
    )]
    pub first_read_timeout: Duration,
}

impl Default for StartupSpec {
    fn default() -> Self {
        StartupSpec {
            ready_timeout: defaults::startup_timeout(),
            first_read_timeout: defaults::startup_timeout(),
        }
    }
}

/// Shortest startup deadline.
pub const MIN_STARTUP_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest startup deadline.
pub const MAX_STARTUP_TIMEOUT: Duration = Duration::from_secs(3600);

/// A startup deadline: a duration from [`MIN_STARTUP_TIMEOUT`] to [`MAX_STARTUP_TIMEOUT`].
fn startup_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = limits::duration(d)?;
    if !(MIN_STARTUP_TIMEOUT..=MAX_STARTUP_TIMEOUT).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "expected 1s to 1h, found {}",
            humantime::format_duration(value)
        )));
    }
    Ok(value)
}

/// What the clients do.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// Client processes running at once.
    #[serde(
        default = "defaults::concurrency",
        deserialize_with = "limits::usize_in::<_, 1, { limits::MAX_CONCURRENCY as u64 }>"
    )]
    pub concurrency: usize,
    /// Processes sharing one key at a time (multi-key workloads: kv, set). Jepsen's
    /// independent-keys shape: every key sees real concurrency, no key's history grows
    /// beyond what a search can handle.
    /// Default: 5, or the concurrency when that is smaller.
    #[serde(
        default,
        deserialize_with = "limits::option_usize_in::<_, 1, { limits::MAX_CONCURRENCY as u64 }>"
    )]
    pub group_size: Option<usize>,
    /// Operations per key before its group moves on to a fresh key (kv, set).
    #[serde(
        default = "defaults::ops_per_key",
        deserialize_with = "limits::u64_in::<_, 1, { limits::MAX_OPS }>"
    )]
    pub ops_per_key: u64,
    /// Target rate over all clients, operations per second (unlimited when absent).
    #[serde(default, deserialize_with = "limits::option_rate")]
    pub rate: Option<f64>,
    /// Relative weights of the functions; defaults depend on the kind.
    #[serde(default)]
    pub mix: Option<Mix>,
    /// Length of the main phase.
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "limits::duration",
        default = "defaults::duration"
    )]
    pub duration: Duration,
    /// Cap on the operations of the main phase.
    #[serde(
        default,
        deserialize_with = "limits::option_u64_in::<_, 1, { limits::MAX_OPS }>"
    )]
    pub max_ops: Option<u64>,
    /// Per-operation timeout; a write that times out is indeterminate (`info`).
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "limits::duration",
        default = "defaults::op_timeout"
    )]
    pub timeout: Duration,
    /// After the main phase every fault is healed; then the harness waits this long before
    /// the final reads.
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "limits::duration",
        default = "defaults::recovery"
    )]
    pub recovery: Duration,
    /// Read every key once more after recovery (a set's final read is what lost adds are
    /// judged by).
    #[serde(default = "defaults::yes")]
    pub final_reads: bool,
    /// Transactional workloads: keys in the active pool at any time.
    #[serde(
        default = "defaults::key_count",
        deserialize_with = "limits::usize_in::<_, 1, { limits::MAX_TXN_KEYS as u64 }>"
    )]
    pub key_count: usize,
    /// Transactional workloads: micro-operations per transaction, at most (at least 1).
    #[serde(
        default = "defaults::max_txn_length",
        deserialize_with = "limits::usize_in::<_, 1, { limits::MAX_TXN_LENGTH as u64 }>"
    )]
    pub max_txn_length: usize,
    /// Transactional workloads: writes (appends) to a key before it retires from the pool.
    #[serde(
        default = "defaults::max_writes_per_key",
        deserialize_with = "limits::u64_in::<_, 1, { limits::MAX_OPS }>"
    )]
    pub max_writes_per_key: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// Reads and writes of one register.
    Register,
    /// Reads, writes and compare-and-set of one register.
    CasRegister,
    /// Reads, writes and cas on many independent keys.
    Kv,
    /// Unique adds to sets, whole-set reads.
    Set,
    /// Transactions of appends to lists and reads of whole lists (Elle's list-append).
    ListAppend,
    /// Transactions of writes and reads of registers (Elle's rw-register).
    RwRegister,
}

impl WorkloadKind {
    /// Whether each operation is a transaction (checked Elle-style).
    pub fn is_transactional(self) -> bool {
        matches!(self, WorkloadKind::ListAppend | WorkloadKind::RwRegister)
    }

    /// The name in campaign files.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::CasRegister => "cas-register",
            WorkloadKind::Kv => "kv",
            WorkloadKind::Set => "set",
            WorkloadKind::ListAppend => "list-append",
            WorkloadKind::RwRegister => "rw-register",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub read: u32,
    #[serde(default)]
    pub write: u32,
    #[serde(default)]
    pub cas: u32,
    #[serde(default)]
    pub add: u32,
}

impl WorkloadSpec {
    /// Processes sharing a key: the file's, else 5 (or the concurrency when smaller).
    pub fn effective_group_size(&self) -> usize {
        self.group_size.unwrap_or(self.concurrency.min(5))
    }

    /// The mix to use: the file's, or the kind's default.
    pub fn effective_mix(&self) -> Mix {
        self.mix.unwrap_or(match self.kind {
            WorkloadKind::Register => Mix {
                read: 1,
                write: 1,
                cas: 0,
                add: 0,
            },
            WorkloadKind::CasRegister | WorkloadKind::Kv => Mix {
                read: 2,
                write: 1,
                cas: 1,
                add: 0,
            },
            WorkloadKind::Set => Mix {
                read: 1,
                write: 0,
                cas: 0,
                add: 9,
            },
            // Per micro-operation: reads, and appends or writes.
            WorkloadKind::ListAppend | WorkloadKind::RwRegister => Mix {
                read: 1,
                write: 1,
                cas: 0,
                add: 0,
            },
        })
    }
}

/// Faults and their schedule: the schema lives with the nemesis (`faults`, `interval`,
/// `hold`, `targets`, `shapes`, `backend`, `clock`, `loss`, `timeline`).
pub use crate::nemesis::schedule::NemesisSpec;

/// `disk:` — whether each node's data directory is the lazy disk layer (docs/nemesis.md,
/// "Disk faults") even when no disk fault is named, so that a campaign runs on it as it is
/// (its overhead measured, its faithfulness tested). Disk faults mount it in any case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    #[serde(default)]
    pub layer: bool,
}

impl DiskSpec {
    fn is_default(&self) -> bool {
        *self == DiskSpec::default()
    }
}

/// How the history is checked.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerSpec {
    /// Linearizability model; defaults to the workload's (`cas-register`, `kv`, `set`).
    /// Transactional workloads: the workload's name, or absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Transactional workloads: the consistency model the history must satisfy
    /// (`strict-serializable`, the default, `serializable`, `snapshot-isolation`,
    /// `repeatable-read`, `read-committed`, `read-uncommitted`).
    #[serde(default)]
    pub consistency: Option<String>,
    /// Give up with `unknown` after this long.
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "limits::duration",
        default = "defaults::check_time_limit"
    )]
    pub time_limit: Duration,
    /// A key with fewer `ok` operations than this makes the verdict `unknown` instead of a
    /// plain `valid`: too little evidence.
    #[serde(
        default = "defaults::min_ok_per_key",
        deserialize_with = "limits::usize_in::<_, 0, { limits::MAX_OPS }>"
    )]
    pub min_ok_per_key: usize,
}

impl Default for CheckerSpec {
    fn default() -> Self {
        CheckerSpec {
            model: None,
            consistency: None,
            time_limit: defaults::check_time_limit(),
            min_ok_per_key: defaults::min_ok_per_key(),
        }
    }
}

pub use crate::limits;

mod defaults {
    use std::time::Duration;
    pub fn nodes() -> usize {
        3
    }
    pub fn concurrency() -> usize {
        10
    }
    pub fn ops_per_key() -> u64 {
        200
    }
    pub fn duration() -> Duration {
        Duration::from_secs(30)
    }
    pub fn op_timeout() -> Duration {
        Duration::from_secs(1)
    }
    pub fn recovery() -> Duration {
        Duration::from_secs(5)
    }
    pub fn startup_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn check_time_limit() -> Duration {
        Duration::from_secs(120)
    }
    pub fn min_ok_per_key() -> usize {
        10
    }
    pub fn key_count() -> usize {
        10
    }
    pub fn max_txn_length() -> usize {
        4
    }
    pub fn max_writes_per_key() -> u64 {
        32
    }
    pub fn yes() -> bool {
        true
    }
}

/// A campaign file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// serde_yaml's message carries the line, column and the valid field names.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    TooLarge { path: PathBuf, message: String },
    /// A value that does not fit with another one; `place` is ` at line L column C` when
    /// the field is found in the text.
    #[error("{path}: {field}: {message}{place}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        message: String,
        place: String,
    },
}

/// Reads, parses and validates a campaign file: the only YAML parser in the project.
pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
    use std::io::Read;
    let read_error = |source| CampaignError::Read {
        path: path.to_owned(),
        source,
    };
    // Read one byte past the limit, never more: a huge file or an endless pipe is refused
    // without being read whole.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(limits::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > limits::MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        ))
    })?;
    parse(&text, path)
}

fn too_large(path: &Path) -> CampaignError {
    CampaignError::TooLarge {
        path: path.to_owned(),
        message: format!(
            "larger than {} bytes (a campaign is a few hundred)",
            limits::MAX_FILE_BYTES
        ),
    }
}

/// Parses campaign text; `path` only names the source in errors.
pub fn parse(text: &str, path: &Path) -> Result<Campaign, CampaignError> {
    if text.len() > limits::MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    let aliases = limits::count_aliases(text);
    if aliases > limits::MAX_ALIASES {
        return Err(CampaignError::TooLarge {
            path: path.to_owned(),
            message: format!(
                "{aliases} YAML aliases (`*name`): at most {} are allowed",
                limits::MAX_ALIASES
            ),
        });
    }
    let campaign: Campaign = serde_yaml::from_str(text).map_err(|e| CampaignError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    campaign.validate(path, text)?;
    Ok(campaign)
}

/// The size of timeline item `index`'s clock offset as written in `text` (sign dropped);
/// [`Duration::MAX`] when it is not a duration humantime can hold.
fn written_offset(text: &str, index: usize) -> Duration {
    let value: serde_yaml::Value = serde_yaml::from_str(text).unwrap_or_default();
    let written = value
        .get("nemesis")
        .and_then(|n| n.get("timeline"))
        .and_then(|t| t.get(index))
        .and_then(|item| item.get("offset"))
        .and_then(|o| o.as_str())
        .unwrap_or_default()
        .trim();
    let magnitude = written.trim_start_matches(['+', '-']).trim();
    humantime::parse_duration(magnitude).unwrap_or(Duration::MAX)
}

impl Campaign {
    /// Whether each node's data directory is the lazy disk layer: asked for by `disk.layer`,
    /// or needed by a disk fault.
    pub fn disk_layer(&self) -> bool {
        self.disk.layer || crate::nemesis::faults::disk::wanted(&self.nemesis)
    }

    /// Whether this machine can mount the layer `disk.layer` asks for (disk faults are
    /// checked by the nemesis): the FUSE probe's reason when it cannot.
    pub fn check_disk_host(&self) -> Result<(), String> {
        if !self.disk.layer {
            return Ok(());
        }
        let fuse = crate::capability::probe(crate::capability::Capability::Fuse);
        match fuse.is_ok() {
            true => Ok(()),
            false => Err(format!("disk.layer needs FUSE: {}", fuse.detail)),
        }
    }

    /// The nemesis' durations, against [`limits::MAX_DURATION`]: they are parsed by the
    /// nemesis' own schema, so their place in the file is found again by key.
    fn check_nemesis_durations(&self, path: &Path, text: &str) -> Result<(), CampaignError> {
        let n = &self.nemesis;
        let top = |key: &'static str, d: Duration| (format!("nemesis.{key}"), key, d);
        let mut durations = vec![
            top("interval", n.interval),
            top("max_offset", n.clock.max_offset),
            top("strobe_period", n.clock.strobe_period),
            top("mean", n.delay.mean),
            top("jitter", n.delay.jitter),
            top("max_delay", n.reorder.max_delay),
        ];
        durations.extend(n.hold.map(|d| top("hold", d)));
        durations.extend(n.hold_max.map(|d| top("hold_max", d)));
        for (i, item) in n.timeline.iter().enumerate() {
            let at =
                |key: &'static str, d: Duration| (format!("nemesis.timeline[{i}].{key}"), key, d);
            durations.push(at("at", item.at));
            durations.push(at("for", item.hold));
            if item.offset.is_some() {
                // The nemesis keeps an offset in signed milliseconds, where an enormous one
                // wraps around: check it as written.
                durations.push(at("offset", written_offset(text, i)));
            }
            durations.extend(item.delay.map(|d| at("delay", d)));
            durations.extend(item.jitter.map(|d| at("jitter", d)));
            durations.extend(item.max_delay.map(|d| at("max_delay", d)));
        }
        for (field, key, d) in durations {
            if let Err(message) = limits::check_duration(d) {
                let place = limits::locate_key(text, key, |v| limits::parse_duration(v).is_err())
                    .map(|(line, column)| format!(" at line {line} column {column}"))
                    .unwrap_or_default();
                return Err(CampaignError::Parse {
                    path: path.to_owned(),
                    message: format!(
                        "{field}: {} {message}{place}",
                        humantime::format_duration(d)
                    ),
                });
            }
        }
        Ok(())
    }

    fn validate(&self, path: &Path, text: &str) -> Result<(), CampaignError> {
        let invalid = |field: &'static str, message: String| CampaignError::Invalid {
            path: path.to_owned(),
            field,
            message,
            place: field
                .rsplit('.')
                .next()
                .and_then(|key| limits::locate_key(text, key, |_| true))
                .map(|(line, column)| format!(" at line {line} column {column}"))
                .unwrap_or_default(),
        };
        if self.disk.layer && !self.system.needs_cluster() {
            return Err(invalid(
                "disk.layer",
                "true: the in-memory system has no data directory to put the layer under"
                    .to_owned(),
            ));
        }
        let w = &self.workload;
        if let Some(g) = w.group_size {
            if g > w.concurrency {
                return Err(invalid(
                    "workload.group_size",
                    format!("{g}: expected 1 to concurrency ({})", w.concurrency),
                ));
            }
        }
        if let Some(rate) = w.rate {
            // Each client waits concurrency / rate between operations: at least one
            // operation per client per hour keeps that interval representable.
            let floor = w.concurrency as f64 / 3600.0;
            if !(rate.is_finite() && rate >= floor) {
                return Err(invalid(
                    "workload.rate",
                    format!(
                        "{rate}: expected at least {floor} operations per second (one per client per hour)"
                    ),
                ));
            }
        }
        if w.timeout.is_zero() {
            return Err(invalid(
                "workload.timeout",
                "0s: expected a positive duration".into(),
            ));
        }
        let mix = w.effective_mix();
        let allowed_total = match w.kind {
            WorkloadKind::Set => mix.read + mix.add,
            WorkloadKind::Register | WorkloadKind::ListAppend | WorkloadKind::RwRegister => {
                mix.read + mix.write
            }
            WorkloadKind::CasRegister | WorkloadKind::Kv => mix.read + mix.write + mix.cas,
        };
        const MAX_WEIGHT: u32 = 1_000_000;
        if [mix.read, mix.write, mix.cas, mix.add]
            .iter()
            .any(|w| *w > MAX_WEIGHT)
        {
            return Err(invalid(
                "workload.mix",
                format!("expected weights of at most {MAX_WEIGHT}"),
            ));
        }
        let total = mix.read + mix.write + mix.cas + mix.add;
        if total == 0 || allowed_total != total {
            return Err(invalid(
                "workload.mix",
                format!(
                    "expected positive weights, and only {} for a {} workload",
                    match w.kind {
                        WorkloadKind::Set => "read and add",
                        WorkloadKind::Register
                        | WorkloadKind::ListAppend
                        | WorkloadKind::RwRegister => "read and write",
                        _ => "read, write and cas",
                    },
                    serde_json::to_string(&w.kind)
                        .unwrap_or_default()
                        .trim_matches('"')
                ),
            ));
        }
        self.check_nemesis_durations(path, text)?;
        self.check_hosts(path, text)?;
        self.nemesis.validate(self.nodes).map_err(|e| match e {
            // Said at the field itself.
            crate::nemesis::schedule::PlanError::Fault {
                kind: "hold_max",
                message,
            } => invalid("nemesis.hold_max", message),
            crate::nemesis::schedule::PlanError::Fault {
                kind: "concurrency",
                message,
            } => invalid("nemesis.concurrency", message),
            e => invalid("nemesis", e.to_string()),
        })?;
        self.check_transactions(&invalid)?;
        if let Some(model) = self
            .checker
            .model
            .as_ref()
            .filter(|_| !w.kind.is_transactional())
        {
            use splitbrain_checkers::models::ModelKind;
            let kind = model
                .parse::<ModelKind>()
                .map_err(|e| invalid("checker.model", e))?;
            // The history's functions must be the model's: registers read, write and cas;
            // sets add and read.
            let fits = match w.kind {
                WorkloadKind::Set => kind == ModelKind::Set,
                WorkloadKind::Register | WorkloadKind::CasRegister | WorkloadKind::Kv => {
                    matches!(
                        kind,
                        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
                    )
                }
                WorkloadKind::ListAppend | WorkloadKind::RwRegister => true,
            };
            if !fits {
                return Err(invalid(
                    "checker.model",
                    format!(
                        "`{model}` does not fit a {} workload (expected {})",
                        serde_json::to_string(&w.kind)
                            .unwrap_or_default()
                            .trim_matches('"'),
                        if w.kind == WorkloadKind::Set {
                            "set"
                        } else {
                            "register, cas-register or kv"
                        }
                    ),
                ));
            }
        }
        if let SystemSpec::Clusterkv(kv) = &self.system {
            self.check_clusterkv_timing(kv, &invalid)?;
            if let Some(bug) = kv.bug.filter(|bug| bug.arch() != kv.arch) {
                return Err(invalid(
                    "system.clusterkv.bug",
                    format!(
                        "`{}` is a variant of {}, not of {}",
                        bug.name(),
                        bug.arch().name(),
                        kv.arch.name()
                    ),
                ));
            }
        }
        if let SystemSpec::Postgres(p) = &self.system {
            if p.read_from_standbys && self.nodes == 1 {
                return Err(invalid(
                    "system.postgres.read_from_standbys",
                    "expected more than one node (n1 is the primary, the others its standbys)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The `hosts:` and `ssh:` sections ([`crate::remote::spec::validate`]), the value at
    /// fault located in the file by its key and value.
    fn check_hosts(&self, path: &Path, text: &str) -> Result<(), CampaignError> {
        let Err(problem) =
            crate::remote::spec::validate(&self.hosts, self.ssh.as_ref(), self.nodes)
        else {
            return Ok(());
        };
        let seen = std::cell::Cell::new(0);
        let place = limits::locate_key(text, problem.key, |value| {
            // `locate_key` hands over the value without its leading signs.
            let matches = problem
                .value
                .as_deref()
                .is_none_or(|v| v.trim_start_matches(['+', '-']) == value);
            if matches {
                seen.set(seen.get() + 1);
            }
            matches && seen.get() > problem.occurrence
        })
        .map(|(line, column)| format!(" at line {line} column {column}"))
        .unwrap_or_default();
        Err(CampaignError::Invalid {
            path: path.to_owned(),
            field: problem.field,
            message: problem.message,
            place,
        })
    }

    /// A transactional workload: a system whose clients run transactions, the checker's
    /// model (if given) the workload's own, a known consistency model; the consistency
    /// model only with a transactional workload.
    fn check_transactions(
        &self,
        invalid: &dyn Fn(&'static str, String) -> CampaignError,
    ) -> Result<(), CampaignError> {
        let kind = self.workload.kind;
        if !kind.is_transactional() {
            if !self.system.runs_single_key_operations() {
                return Err(invalid(
                    "workload.kind",
                    format!(
                        "`{}`: the {} system runs transactions: expected list-append or rw-register",
                        kind.name(),
                        self.system.name()
                    ),
                ));
            }
            if self.checker.consistency.is_some() {
                return Err(invalid(
                    "checker.consistency",
                    format!(
                        "a consistency model applies to transactional workloads (list-append, rw-register), not to `{}`",
                        kind.name()
                    ),
                ));
            }
            return Ok(());
        }
        if !self.system.runs_transactions() {
            return Err(invalid(
                "workload.kind",
                format!(
                    "`{}`: the {} system does not run transactions (etcd, postgres and command do)",
                    kind.name(),
                    self.system.name()
                ),
            ));
        }
        if let Some(model) = &self.checker.model {
            if model != kind.name() {
                return Err(invalid(
                    "checker.model",
                    format!(
                        "`{model}` does not fit a {} workload (expected {}, or no model)",
                        kind.name(),
                        kind.name()
                    ),
                ));
            }
        }
        self.consistency()
            .map_err(|e| invalid("checker.consistency", e))?;
        Ok(())
    }

    /// The consistency model a transactional history is checked against: the file's, else
    /// strict serializability (as `splitbrain check` defaults to).
    pub fn consistency(
        &self,
    ) -> Result<splitbrain_checkers::txn::consistency::ConsistencyModel, String> {
        use splitbrain_checkers::txn::consistency::ConsistencyModel;
        self.checker
            .consistency
            .as_deref()
            .map_or(Ok(ConsistencyModel::StrictSerializable), str::parse)
    }

    /// clusterkv's timing, as its nodes need it: a heartbeat of at least 1 ms (they count
    /// whole milliseconds), an election timeout above the heartbeat (what openraft
    /// requires; a follower must hear some heartbeats before it stands), sane maxima.
    fn check_clusterkv_timing(
        &self,
        kv: &ClusterKvSpec,
        invalid: &dyn Fn(&'static str, String) -> CampaignError,
    ) -> Result<(), CampaignError> {
        let defaults = crate::system::clusterkv::ClusterKvOptions::default();
        let heartbeat = kv.heartbeat.unwrap_or(defaults.heartbeat);
        let election = kv.election_timeout.unwrap_or(defaults.election_timeout);
        let ms = |d: Duration| humantime::format_duration(d).to_string();
        if heartbeat < limits::MIN_HEARTBEAT || heartbeat > limits::MAX_HEARTBEAT {
            return Err(invalid(
                "system.clusterkv.heartbeat",
                format!(
                    "{}: expected {} to {}",
                    ms(heartbeat),
                    ms(limits::MIN_HEARTBEAT),
                    ms(limits::MAX_HEARTBEAT)
                ),
            ));
        }
        if election.as_millis() <= heartbeat.as_millis() || election > limits::MAX_ELECTION_TIMEOUT
        {
            return Err(invalid(
                "system.clusterkv.election_timeout",
                format!(
                    "{}: expected more than the heartbeat ({}) and at most {}",
                    ms(election),
                    ms(heartbeat),
                    ms(limits::MAX_ELECTION_TIMEOUT)
                ),
            ));
        }
        Ok(())
    }

    /// The linearizability model for this campaign's history.
    pub fn model(&self) -> splitbrain_checkers::models::ModelKind {
        use splitbrain_checkers::models::ModelKind;
        if let Some(m) = self.checker.model.as_deref().and_then(|m| m.parse().ok()) {
            return m;
        }
        match self.workload.kind {
            WorkloadKind::Register | WorkloadKind::CasRegister => ModelKind::CasRegister,
            // Not a linearizability model: transactional histories go to the txn checker
            // (`crate::txn_check`); `kv` only stands in where a model kind is required.
            WorkloadKind::Kv | WorkloadKind::ListAppend | WorkloadKind::RwRegister => ModelKind::Kv,
            WorkloadKind::Set => ModelKind::Set,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Campaign, CampaignError> {
        parse(s, Path::new("test.yaml"))
    }

    const HOSTS_CAMPAIGN: &str = "name: t\nsystem: {etcd: {}}\nnodes: 3\nworkload: {kind: kv}\n\
hosts:\n  - {name: n1, address: 10.1.0.11}\n  - {name: n2, address: 10.1.0.12}\n  - {name: n3, address: 10.1.0.13}\n\
ssh: {user: root, identity: ~/.ssh/id_ed25519, port: 22, strict_host_key_checking: yes}\n";

    #[test]
    fn hosts_and_ssh_sections_load() {
        let c = parse_str(HOSTS_CAMPAIGN).unwrap();
        assert_eq!(c.hosts.len(), 3);
        assert_eq!(c.hosts[1].address, "10.1.0.12");
        let ssh = c.ssh.unwrap();
        assert_eq!(ssh.identity.as_deref(), Some("~/.ssh/id_ed25519"));
        assert_eq!(
            ssh.strict_host_key_checking,
            crate::remote::StrictHostKeyChecking::Yes
        );
        // Without them: today's local namespaces, and nothing new in what is written back.
        let local = parse_str("name: t\nsystem: {etcd: {}}\nworkload: {kind: kv}\n").unwrap();
        assert!(local.hosts.is_empty() && local.ssh.is_none());
        let yaml = serde_yaml::to_string(&local).unwrap();
        assert!(!yaml.contains("hosts") && !yaml.contains("ssh"), "{yaml}");
    }

    #[test]
    fn bad_hosts_and_ssh_fields_name_their_line_and_column() {
        for (from, to, field, place) in [
            (
                "{name: n3, address: 10.1.0.13}",
                "{name: n7, address: 10.1.0.13}",
                "hosts.name",
                "line 8 column 6",
            ),
            (
                "{name: n3, address: 10.1.0.13}",
                "{name: n1, address: 10.1.0.13}",
                "hosts.name",
                "line 8 column 6",
            ),
            (
                "{name: n2, address: 10.1.0.12}",
                "{name: n2, address: 10.1.0.300}",
                "hosts.address",
                "line 7 column 16",
            ),
            (
                "{name: n3, address: 10.1.0.13}",
                "{name: n3, address: 10.1.0.11}",
                "hosts.address",
                "line 8 column 16",
            ),
            (
                "user: root",
                "user: -oProxyCommand=x",
                "ssh.user",
                "line 9 column 7",
            ),
            ("port: 22", "port: 0", "ssh.port", "line 9 column 48"),
            (
                "identity: ~/",
                "identity: ~bob/",
                "ssh.identity",
                "line 9 column 19",
            ),
            (
                "port: 22",
                "port: 22, dir: srv/sb",
                "ssh.dir",
                "line 9 column 58",
            ),
            ("nodes: 3", "nodes: 4", "hosts", "line 5 column 1"),
        ] {
            let yaml = HOSTS_CAMPAIGN.replace(from, to);
            assert_ne!(yaml, HOSTS_CAMPAIGN, "{from}");
            let err = parse_str(&yaml).expect_err(to).to_string();
            assert!(
                err.starts_with(&format!("test.yaml: {field}: ")) && err.ends_with(place),
                "{to}: {err}"
            );
        }
        // Typos and unknown values are refused by the schema, with their place.
        let err = parse_str(&HOSTS_CAMPAIGN.replace("port: 22", "prot: 22")).unwrap_err();
        assert!(err.to_string().contains("unknown field `prot`"), "{err}");
        let err =
            parse_str(&HOSTS_CAMPAIGN.replace("checking: yes", "checking: maybe")).unwrap_err();
        assert!(err.to_string().contains("accept-new"), "{err}");
        // `ssh:` without `hosts:` is a mistake, not something quietly ignored.
        let err =
            parse_str("name: t\nsystem: {etcd: {}}\nworkload: {kind: kv}\nssh: {user: root}\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("ssh: ") && err.contains("line 4 column 1"),
            "{err}"
        );
    }

    #[test]
    fn clusterkv_timing_is_checked_at_load_with_line_and_column() {
        for (timing, field) in [
            ("heartbeat: 0ms, election_timeout: 0ms", "heartbeat"),
            (
                "heartbeat: 100ms, election_timeout: 50ms",
                "election_timeout",
            ),
            (
                "heartbeat: 100ms, election_timeout: 100ms",
                "election_timeout",
            ),
            ("heartbeat: 3d", "heartbeat"),
            ("heartbeat: 500us", "heartbeat"),
            ("election_timeout: 1h", "election_timeout"),
            ("election_timeout: 50ms", "election_timeout"),
        ] {
            let yaml = format!(
                "name: t\nsystem:\n  clusterkv: {{arch: raft, {timing}}}\nworkload: {{kind: kv}}\n"
            );
            let err = parse_str(&yaml).expect_err(timing).to_string();
            assert!(
                err.contains(&format!("system.clusterkv.{field}")) && err.contains("line 3"),
                "{timing}: {err}"
            );
        }
        parse_str(
            "name: t\nsystem: {clusterkv: {arch: raft, heartbeat: 50ms, election_timeout: 1s}}\nworkload: {kind: kv}\n",
        )
        .unwrap();
    }

    #[test]
    fn a_hold_range_and_lanes_are_refused_at_their_own_field() {
        let err = parse_str(
            "name: t\nsystem: {clusterkv: {arch: raft}}\nworkload: {kind: kv}\nnemesis:\n  faults: [pause]\n  hold: 3s\n  hold_max: 1s\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("nemesis.hold_max: 1s is shorter") && err.contains("line 7 column 3"),
            "{err}"
        );
        let err = parse_str(
            "name: t\nsystem: {clusterkv: {arch: raft}}\nworkload: {kind: kv}\nnemesis:\n  faults: [pause]\n  mode: feedback\n  concurrency: 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("nemesis.concurrency: 2 faults at once")
                && err.contains("line 7 column 3"),
            "{err}"
        );
        let c = parse_str(
            "name: t\nsystem: {clusterkv: {arch: raft}}\nworkload: {kind: kv}\nnemesis: {faults: [pause, partition], concurrency: 2, hold: 1s, hold_max: 4s}\n",
        )
        .unwrap();
        assert_eq!(
            (c.nemesis.concurrency, c.nemesis.hold_max),
            (2, Some(Duration::from_secs(4)))
        );
    }

    #[test]
    fn a_zoo_bug_must_be_a_variant_of_the_campaigns_architecture() {
        let err = parse_str(
            "name: t\nsystem:\n  clusterkv: {arch: caspaxos, bug: stale-local-read}\nworkload: {kind: kv}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("system.clusterkv.bug")
                && err.contains("line 3")
                && err.contains("variant of raft"),
            "{err}"
        );
        let err = parse_str(
            "name: t\nsystem:\n  clusterkv: {arch: raft, bug: typo}\nworkload: {kind: kv}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("stale-local-read"), "{err}");
        let c = parse_str(
            "name: t\nsystem: {clusterkv: {arch: raft, bug: no-fsync}}\nworkload: {kind: kv}\n",
        )
        .unwrap();
        assert_eq!(c.system.name(), "raft-no-fsync");
    }

    #[test]
    fn the_disk_layer_is_mounted_when_asked_for_or_when_a_disk_fault_needs_it() {
        let kv = "system: {clusterkv: {arch: raft}}\nworkload: {kind: kv}\n";
        let plain = parse_str(&format!("name: t\n{kv}")).unwrap();
        assert!(!plain.disk_layer());
        assert!(!serde_json::to_string(&plain).unwrap().contains("disk"));
        let asked = parse_str(&format!("name: t\n{kv}disk: {{layer: true}}\n")).unwrap();
        assert!(asked.disk_layer());
        let faults = parse_str(&format!(
            "name: t\n{kv}nemesis: {{faults: [disk-lose-unsynced]}}\n"
        ))
        .unwrap();
        assert!(faults.disk_layer() && !faults.disk.layer);
        let err = parse_str(&format!("name: t\n{kv}disk: {{layers: true}}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("layer"), "{err}");
        let err = parse_str(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\ndisk: {layer: true}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("disk.layer") && err.contains("in-memory") && err.contains("line 4"),
            "{err}"
        );
    }

    #[test]
    fn minimal_campaign_gets_defaults() {
        let c = parse_str("name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\n").unwrap();
        assert_eq!(c.nodes, 3);
        assert_eq!(c.workload.concurrency, 10);
        assert_eq!(c.workload.duration, Duration::from_secs(30));
        assert_eq!(c.model(), splitbrain_checkers::models::ModelKind::Kv);
    }

    #[test]
    fn durations_parse() {
        let c = parse_str(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: register, duration: 1m 30s, timeout: 250ms}\n",
        )
        .unwrap();
        assert_eq!(c.workload.duration, Duration::from_secs(90));
        assert_eq!(c.workload.timeout, Duration::from_millis(250));
    }

    #[test]
    fn misspelt_field_names_line_column_and_valid_names() {
        let err =
            parse_str("name: t\nsystem: {in-memory: {}}\nworkload:\n  kind: kv\n  concurency: 3\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("test.yaml"), "{err}");
        assert!(err.contains("concurency"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("concurrency"), "names the valid fields: {err}");
    }

    #[test]
    fn a_model_that_does_not_fit_the_workload_or_a_vanishing_rate_is_rejected() {
        let err = parse_str(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: set}\nchecker: {model: cas-register}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("checker.model") && err.contains("set"),
            "{err}"
        );
        let err =
            parse_str("name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv, rate: 1e-300}\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("workload.rate"), "{err}");
    }

    #[test]
    fn transactional_workloads_need_a_system_that_runs_transactions() {
        let c = parse_str(
            "name: t\nsystem: {postgres: {isolation: read-committed}}\nnodes: 1\nworkload: {kind: list-append, key_count: 4}\nchecker: {consistency: serializable}\n",
        )
        .unwrap();
        assert_eq!(c.workload.key_count, 4);
        assert_eq!(c.workload.max_txn_length, 4);
        assert_eq!(
            c.consistency().unwrap(),
            splitbrain_checkers::txn::consistency::ConsistencyModel::Serializable
        );
        for (yaml, field) in [
            (
                "system: {in-memory: {}}\nworkload: {kind: list-append}\n",
                "workload.kind",
            ),
            (
                "system: {clusterkv: {arch: raft}}\nworkload: {kind: rw-register}\n",
                "workload.kind",
            ),
            (
                "system: {postgres: {}}\nnodes: 1\nworkload: {kind: kv}\n",
                "workload.kind",
            ),
            (
                "system: {etcd: {}}\nworkload: {kind: kv}\nchecker: {consistency: serializable}\n",
                "checker.consistency",
            ),
            (
                "system: {etcd: {}}\nworkload: {kind: list-append}\nchecker: {consistency: linearizable}\n",
                "checker.consistency",
            ),
            (
                "system: {etcd: {}}\nworkload: {kind: list-append}\nchecker: {model: rw-register}\n",
                "checker.model",
            ),
            (
                "system: {etcd: {}}\nworkload: {kind: list-append, mix: {read: 1, cas: 1}}\n",
                "workload.mix",
            ),
            (
                "system: {postgres: {read_from_standbys: true}}\nnodes: 1\nworkload: {kind: list-append}\n",
                "read_from_standbys",
            ),
        ] {
            let err = error_of(&format!("name: t\n{yaml}"));
            assert!(err.contains(field), "{yaml}: {err}");
        }
        let err = error_of(
            "name: t\nsystem: {postgres: {isolation: snapshot}}\nnodes: 1\nworkload: {kind: list-append}\n",
        );
        assert!(
            err.contains("serializable") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn unknown_system_is_rejected_with_choices() {
        let err = parse_str("name: t\nsystem: {zookeepr: {}}\nworkload: {kind: kv}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("zookeeper") && err.contains("etcd"), "{err}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let err =
            parse_str("name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv, group_size: 20}\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("workload.group_size"), "{err}");
        assert!(err.contains("at line 3 column 22"), "{err}");
        let err = parse_str(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: set, mix: {read: 1, cas: 1}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("workload.mix"), "{err}");
        let err = parse_str(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nchecker: {model: foo}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("checker.model") && err.contains("cas-register"),
            "{err}"
        );
    }

    fn error_of(s: &str) -> String {
        parse_str(s).unwrap_err().to_string()
    }

    #[test]
    fn an_enormous_duration_is_refused_at_load_with_line_and_column() {
        let err = error_of(
            "name: t\nsystem: {in-memory: {}}\nworkload:\n  kind: kv\n  duration: 500000000000y\n",
        );
        assert!(err.contains("500000000000y"), "{err}");
        assert!(err.contains("line 5 column 13"), "{err}");
        for field in ["timeout", "recovery"] {
            let err = error_of(&format!(
                "name: t\nsystem: {{in-memory: {{}}}}\nworkload: {{kind: kv, {field}: 8days}}\n"
            ));
            assert!(err.contains("at most") && err.contains("line 3"), "{err}");
        }
        let err = error_of(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nchecker:\n  time_limit: 100000d\n",
        );
        assert!(err.contains("line 5"), "{err}");
        let err = error_of(
            "name: t\nsystem: {clusterkv: {arch: raft, heartbeat: 30000d}}\nworkload: {kind: kv}\n",
        );
        assert!(err.contains("line 2"), "{err}");
        // A week is the longest; exactly a week is fine.
        parse_str("name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv, duration: 7days}\n")
            .unwrap();
    }

    #[test]
    fn nemesis_durations_are_bounded_too() {
        let err = error_of(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis:\n  faults: [partition]\n  interval: 500000000000y\n",
        );
        assert!(err.contains("nemesis.interval"), "{err}");
        assert!(err.contains("line 6 column 3"), "{err}");
        let err = error_of(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis:\n  timeline:\n    - {at: 1s, fault: partition, for: 1s}\n    - {at: 2s, fault: partition, for: 900000h}\n",
        );
        assert!(err.contains("nemesis.timeline[1].for"), "{err}");
        assert!(err.contains("line 7"), "{err}");
        // A clock offset so large that signed milliseconds would wrap around.
        let err = error_of(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nnemesis:\n  timeline:\n    - {at: 1s, fault: clock-bump, for: 1s, offset: -500000000000y}\n",
        );
        assert!(err.contains("nemesis.timeline[0].offset"), "{err}");
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn counts_are_bounded_with_line_and_column() {
        for (field, value) in [
            ("concurrency", "0"),
            ("concurrency", "100000"),
            ("ops_per_key", "0"),
            ("ops_per_key", "99999999999999999"),
            ("max_ops", "0"),
            ("group_size", "0"),
            ("rate", "1e300"),
            ("rate", "-5"),
        ] {
            let err = error_of(&format!(
                "name: t\nsystem: {{in-memory: {{}}}}\nworkload:\n  kind: kv\n  {field}: {value}\n"
            ));
            assert!(err.contains("line 5"), "{field}: {value}: {err}");
        }
        let err = error_of("name: t\nsystem: {in-memory: {}}\nnodes: 1000\nworkload: {kind: kv}\n");
        assert!(err.contains("line 3") && err.contains("1 to 9"), "{err}");
        let err =
            error_of("name: t\nsystem: {clusterkv: {arch: dynamo, n: 0}}\nworkload: {kind: kv}\n");
        assert!(err.contains("line 2"), "{err}");
        let err = error_of(
            "name: t\nsystem: {in-memory: {}}\nworkload: {kind: kv}\nchecker: {min_ok_per_key: 99999999999999999}\n",
        );
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn names_that_become_paths_stay_inside_the_results_directory() {
        for name in ["..", ".", "a/b", "'../x'", "''", "\"a\\nb\""] {
            let err = error_of(&format!(
                "name: {name}\nsystem: {{in-memory: {{}}}}\nworkload: {{kind: kv}}\n"
            ));
            assert!(err.contains("line 1"), "{name}: {err}");
            assert!(err.contains("names a directory"), "{name}: {err}");
        }
        parse_str("name: a.b_c-1\nsystem: {in-memory: {}}\nworkload: {kind: kv}\n").unwrap();
        let too_long = "x".repeat(limits::MAX_NAME_LEN + 1);
        assert!(parse_str(&format!(
            "name: {too_long}\nsystem: {{in-memory: {{}}}}\nworkload: {{kind: kv}}\n"
        ))
        .is_err());
    }

    #[test]
    fn alias_bombs_and_huge_files_are_refused_before_parsing() {
        // 300 aliases of a large string: refused by count, before anything expands.
        let big = "x".repeat(100 * 1024);
        let aliases = vec!["*big"; 300].join(", ");
        let text = format!(
            "name: t\ndescription: &big {big}\nsystem: {{in-memory: {{}}}}\nworkload: {{kind: kv}}\nx: [{aliases}]\n"
        );
        let err = error_of(&text);
        assert!(err.contains("300 YAML aliases"), "{err}");
        let aliases = vec!["*a"; 3000].join(", ");
        let err = error_of(&format!("a: &a [1]\nb: [{aliases}]\n"));
        assert!(err.contains("3000 YAML aliases"), "{err}");
        // A file larger than the limit is refused whole.
        let text = format!(
            "name: t\ndescription: {}\nsystem: {{in-memory: {{}}}}\nworkload: {{kind: kv}}\n",
            "y".repeat(limits::MAX_FILE_BYTES)
        );
        assert!(error_of(&text).contains("larger than"));
        // Stars that are not aliases do not count.
        assert_eq!(
            limits::count_aliases("a: 'x *y'\nb: \"*z\"\nc: a*b # *c\nd: *e\ne: [*f, *g]\n"),
            3
        );
    }

    #[test]
    fn a_campaign_file_over_the_limit_is_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, vec![b'#'; limits::MAX_FILE_BYTES * 4]).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
