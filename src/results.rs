//! The results directory: `results/<campaign>/<timestamp>-<run id>/`, and what is recorded
//! about the environment of each run.

use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Creates a fresh run directory and returns it.
pub fn create_run_dir(root: &Path, campaign: &str, run_id: &str) -> anyhow::Result<PathBuf> {
    // 2026-11-26T20:31:05Z → 20261126T203105Z: sortable, no characters shells dislike.
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let dir = root.join(campaign).join(format!("{stamp}-{run_id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
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
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// What is recorded with each run so it can be understood and repeated later.
#[derive(Debug, Serialize)]
pub struct Environment {
    pub splitbrain_version: &'static str,
    pub system: String,
    pub system_version: Option<String>,
    pub kernel: String,
    pub argv: Vec<String>,
    pub seed: u64,
    pub run_id: String,
    pub started_at: String,
}

impl Environment {
    pub fn capture(
        campaign: &crate::campaign::Campaign,
        seed: u64,
        run_id: &str,
        argv: &[String],
    ) -> Environment {
        let system_version = crate::cluster::system_for(&campaign.system)
            .ok()
            .and_then(|s| s.version().ok());
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
            splitbrain_version: env!("CARGO_PKG_VERSION"),
            system: campaign.system.name(),
            system_version,
            kernel,
            argv: argv.to_vec(),
            seed,
            run_id: run_id.to_owned(),
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}
