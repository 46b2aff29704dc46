//! The run directory, `results/<campaign>/<timestamp>-<run id>/`: where it is, the names of
//! its files ([`files`], the one place they are spelt), how they are written (modes that do
//! not depend on the umask), and what is recorded about the environment of each run.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Mode of every result file: readable by all, whatever the umask.
pub const FILE_MODE: u32 = 0o644;
/// Mode of every result directory.
pub const DIR_MODE: u32 = 0o755;

/// The files and directories of a run directory.
pub mod files {
    /// The campaign as run (its seed and duration settled): `campaign.json`.
    pub const CAMPAIGN: &str = "campaign.json";
    /// Versions, kernel, command line, seed: `environment.json`.
    pub const ENVIRONMENT: &str = "environment.json";
    /// The history, one event per line, written as it happens.
    pub const HISTORY: &str = "history.jsonl";
    /// What the nemesis did and any undo that failed.
    pub const NEMESIS: &str = "nemesis.json";
    /// The summary table.
    pub const SUMMARY: &str = "summary.txt";
    /// The typed results document (`RunResults`).
    pub const RESULTS: &str = "results.json";
    /// The history in Jepsen's EDN.
    pub const HISTORY_EDN: &str = "history.edn";
    pub const JUNIT: &str = "junit.xml";
    pub const REPORT_HTML: &str = "report.html";
    /// One directory per node: its log, its data directory, its clock's offset file.
    pub const NODES: &str = "nodes";
}

/// The files the report writes into a run directory at the end of a run.
pub const REPORT_FILES: &[&str] = &[
    files::SUMMARY,
    files::RESULTS,
    files::HISTORY_EDN,
    files::JUNIT,
    files::REPORT_HTML,
];

/// Sets `path`'s mode to `mode` exactly (`chmod` is not subject to the umask).
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}

/// Creates `path` and any missing parents; each directory created gets [`DIR_MODE`],
/// existing ones are left as they are.
pub fn create_dirs(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => set_mode(path, DIR_MODE),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates (or truncates) a result file with [`FILE_MODE`].
pub fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::File::create(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Writes a whole result file with [`FILE_MODE`].
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    create_file(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {}", path.display()))
}

/// Gives the report's files in run directory `dir` [`FILE_MODE`] (they are written by the
/// report, which opens them with the process' umask).
pub fn set_report_modes(dir: &Path) -> anyhow::Result<()> {
    for name in REPORT_FILES {
        let path = dir.join(name);
        if path.exists() {
            set_mode(&path, FILE_MODE).with_context(|| format!("chmod {}", path.display()))?;
        }
    }
    Ok(())
}

/// Creates a fresh run directory and returns it.
pub fn create_run_dir(root: &Path, campaign: &str, run_id: &str) -> anyhow::Result<PathBuf> {
    // 2026-11-26T20:31:05Z → 20261126T203105Z: sortable, no characters shells dislike.
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let dir = root.join(campaign).join(format!("{stamp}-{run_id}"));
    create_dirs(&dir).map_err(|error| ResultsDirError {
        path: dir.clone(),
        error,
    })?;
    Ok(dir)
}

/// The run directory cannot be created (exit 73, or 77 when permission is denied).
#[derive(Debug, thiserror::Error)]
#[error("cannot create the run directory {}: {error}", path.display())]
pub struct ResultsDirError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl ResultsDirError {
    /// No permission (77) when permission is denied, else cannot create (73).
    pub fn kind(&self) -> crate::exit::FailureKind {
        if self.error.kind() == std::io::ErrorKind::PermissionDenied {
            crate::exit::FailureKind::NoPermission
        } else {
            crate::exit::FailureKind::CantCreate
        }
    }
}

/// Points `<root>/latest` at `dir` (a relative symlink), replacing an older one.
pub fn point_latest(root: &Path, dir: &Path) {
    let link = root.join("latest");
    let target = dir.strip_prefix(root).unwrap_or(dir);
    let tmp = root.join(".latest.tmp");
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink(target, &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, &link);
    }
}

pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_file(path, (text + "\n").as_bytes())
}

/// What is recorded with each run so it can be understood and repeated later
/// (`environment.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    pub splitbrain_version: String,
    pub system: String,
    pub system_version: Option<String>,
    pub kernel: String,
    pub argv: Vec<String>,
    pub seed: u64,
    pub run_id: String,
    pub started_at: String,
}

impl Environment {
    /// Reads a run directory's `environment.json`; `None` when it is missing or unreadable
    /// (a run that died before writing it).
    pub fn load(dir: &Path) -> Option<Environment> {
        let text = std::fs::read_to_string(dir.join(files::ENVIRONMENT)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The environment of a run of `system` (its version, when it has nodes) starting now.
    pub fn capture(
        system: String,
        system_version: Option<String>,
        seed: u64,
        run_id: &str,
        argv: &[String],
    ) -> Environment {
        let kernel = nix::sys::utsname::uname()
            .map(|u| {
                format!(
                    "{} {} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy(),
                    u.machine().to_string_lossy()
                )
            })
            .unwrap_or_else(|_| "unknown".into());
        Environment {
            splitbrain_version: env!("CARGO_PKG_VERSION").to_owned(),
            system,
            system_version,
            kernel,
            argv: argv.to_vec(),
            seed,
            run_id: run_id.to_owned(),
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}
