//! Campaign files: which system, how many nodes, what workload, which faults, checked how.
//!
//! YAML is parsed in exactly one place, [`load`]; everything else works on the typed
//! [`Campaign`]. Unknown or misspelt fields are rejected with their line and column and the
//! list of valid names (serde's `deny_unknown_fields`), durations are written like `30s` or
//! `500ms`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A campaign as written in a YAML file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Used for the results directory (`results/<name>/<timestamp>/`).
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub system: SystemSpec,
    /// Cluster size.
    #[serde(default = "defaults::nodes")]
    pub nodes: usize,
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub nemesis: NemesisSpec,
    #[serde(default)]
    pub checker: CheckerSpec,
    /// Seed of every random choice (operations, keys, fault schedule). `--seed` overrides it;
    /// without either a fresh one is drawn and recorded.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The system under test, e.g. `system: {etcd: {}}` or `system: {clusterkv: {arch: raft}}`.
///
/// Written as a map with exactly one entry (serde_yaml would otherwise want a YAML tag).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", try_from = "SystemSection")]
pub enum SystemSpec {
    /// Debian's `etcd-server`.
    Etcd(EtcdSpec),
    /// The project's own cluster architectures.
    Clusterkv(ClusterKvSpec),
    /// Any system: node command templates and an external JSON-lines client.
    Command(crate::system::command::CommandSpec),
    /// An in-process linearizable store: no processes, no namespaces, no privileges. For
    /// measuring the harness itself and for trying campaigns out.
    InMemory(InMemorySpec),
}

/// The YAML shape of [`SystemSpec`]: one optional field per system, exactly one given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SystemSection {
    etcd: Option<EtcdSpec>,
    clusterkv: Option<ClusterKvSpec>,
    command: Option<crate::system::command::CommandSpec>,
    in_memory: Option<InMemorySpec>,
}

impl TryFrom<SystemSection> for SystemSpec {
    type Error = String;
    fn try_from(s: SystemSection) -> Result<Self, String> {
        let mut given = Vec::new();
        if let Some(x) = s.etcd {
            given.push(SystemSpec::Etcd(x));
        }
        if let Some(x) = s.clusterkv {
            given.push(SystemSpec::Clusterkv(x));
        }
        if let Some(x) = s.command {
            given.push(SystemSpec::Command(x));
        }
        if let Some(x) = s.in_memory {
            given.push(SystemSpec::InMemory(x));
        }
        if given.len() != 1 {
            return Err(format!(
                "expected exactly one of `etcd`, `clusterkv`, `command`, `in-memory`, found {}",
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
            SystemSpec::Clusterkv(c) => c.arch.name().to_owned(),
            SystemSpec::Command(_) => "command".into(),
            SystemSpec::InMemory(_) => "in-memory".into(),
        }
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterKvSpec {
    /// `primary-backup`, `raft`, `dynamo` or `caspaxos`.
    pub arch: crate::system::clusterkv::Arch,
    /// primary-backup: acknowledge before (`async`) or after (`sync`) the backups have it.
    #[serde(default)]
    pub replication: Option<crate::system::clusterkv::Replication>,
    /// dynamo: replicas per key, read quorum, write quorum.
    #[serde(default)]
    pub n: Option<usize>,
    #[serde(default)]
    pub r: Option<usize>,
    #[serde(default)]
    pub w: Option<usize>,
    #[serde(with = "humantime_serde", default)]
    pub heartbeat: Option<Duration>,
    #[serde(with = "humantime_serde", default)]
    pub election_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InMemorySpec {}

/// What the clients do.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// Client processes running at once.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// Processes sharing one key at a time (multi-key workloads: kv, set). Jepsen's
    /// independent-keys shape: every key sees real concurrency, no key's history grows
    /// beyond what a search can handle.
    /// Default: 5, or the concurrency when that is smaller.
    #[serde(default)]
    pub group_size: Option<usize>,
    /// Operations per key before its group moves on to a fresh key (kv, set).
    #[serde(default = "defaults::ops_per_key")]
    pub ops_per_key: u64,
    /// Target rate over all clients, operations per second (unlimited when absent).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Relative weights of the functions; defaults depend on the kind.
    #[serde(default)]
    pub mix: Option<Mix>,
    /// Length of the main phase.
    #[serde(with = "humantime_serde", default = "defaults::duration")]
    pub duration: Duration,
    /// Cap on the operations of the main phase.
    #[serde(default)]
    pub max_ops: Option<u64>,
    /// Per-operation timeout; a write that times out is indeterminate (`info`).
    #[serde(with = "humantime_serde", default = "defaults::op_timeout")]
    pub timeout: Duration,
    /// After the main phase every fault is healed; then the harness waits this long before
    /// the final reads.
    #[serde(with = "humantime_serde", default = "defaults::recovery")]
    pub recovery: Duration,
    /// Read every key once more after recovery (a set's final read is what lost adds are
    /// judged by).
    #[serde(default = "defaults::yes")]
    pub final_reads: bool,
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
        })
    }
}

/// Faults and their schedule: the schema lives with the nemesis (`faults`, `interval`,
/// `hold`, `targets`, `shapes`, `backend`, `clock`, `loss`, `timeline`).
pub use crate::nemesis::schedule::NemesisSpec;

/// How the history is checked.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerSpec {
    /// Linearizability model; defaults to the workload's (`cas-register`, `kv`, `set`).
    #[serde(default)]
    pub model: Option<String>,
    /// Give up with `unknown` after this long.
    #[serde(with = "humantime_serde", default = "defaults::check_time_limit")]
    pub time_limit: Duration,
    /// A key with fewer `ok` operations than this makes the verdict `unknown` instead of a
    /// plain `valid`: too little evidence.
    #[serde(default = "defaults::min_ok_per_key")]
    pub min_ok_per_key: usize,
}

impl Default for CheckerSpec {
    fn default() -> Self {
        CheckerSpec {
            model: None,
            time_limit: defaults::check_time_limit(),
            min_ok_per_key: defaults::min_ok_per_key(),
        }
    }
}

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
    pub fn check_time_limit() -> Duration {
        Duration::from_secs(120)
    }
    pub fn min_ok_per_key() -> usize {
        10
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
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        message: String,
    },
}

/// Reads, parses and validates a campaign file: the only YAML parser in the project.
pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
    let text = std::fs::read_to_string(path).map_err(|source| CampaignError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses campaign text; `path` only names the source in errors.
pub fn parse(text: &str, path: &Path) -> Result<Campaign, CampaignError> {
    let campaign: Campaign = serde_yaml::from_str(text).map_err(|e| CampaignError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    campaign.validate(path)?;
    Ok(campaign)
}

impl Campaign {
    fn validate(&self, path: &Path) -> Result<(), CampaignError> {
        let invalid = |field: &'static str, message: String| CampaignError::Invalid {
            path: path.to_owned(),
            field,
            message,
        };
        let w = &self.workload;
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "name",
                format!(
                    "`{}`: expected letters, digits, `-`, `_` or `.` (it names a directory)",
                    self.name
                ),
            ));
        }
        if self.system.needs_cluster() && !(1..=9).contains(&self.nodes) {
            return Err(invalid("nodes", format!("{}: expected 1 to 9", self.nodes)));
        }
        if w.concurrency == 0 || w.concurrency > 1000 {
            return Err(invalid(
                "workload.concurrency",
                format!("{}: expected 1 to 1000", w.concurrency),
            ));
        }
        if let Some(g) = w.group_size {
            if g == 0 || g > w.concurrency {
                return Err(invalid(
                    "workload.group_size",
                    format!("{g}: expected 1 to concurrency ({})", w.concurrency),
                ));
            }
        }
        if w.ops_per_key == 0 {
            return Err(invalid(
                "workload.ops_per_key",
                "0: expected at least 1".into(),
            ));
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
            WorkloadKind::Register => mix.read + mix.write,
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
                        WorkloadKind::Register => "read and write",
                        _ => "read, write and cas",
                    },
                    serde_json::to_string(&w.kind)
                        .unwrap_or_default()
                        .trim_matches('"')
                ),
            ));
        }
        self.nemesis
            .validate(self.nodes)
            .map_err(|e| invalid("nemesis", e.to_string()))?;
        if let Some(model) = &self.checker.model {
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
            WorkloadKind::Kv => ModelKind::Kv,
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
    fn unknown_system_is_rejected_with_choices() {
        let err = parse_str("name: t\nsystem: {zookeeper: {}}\nworkload: {kind: kv}\n")
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
}
