//! Running the built `splitbrain` on a shipped campaign, and reading what the run reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A campaign shipped in `workloads/`.
pub fn workload(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(name)
}

/// `splitbrain run CAMPAIGN --results RESULTS EXTRA…`, waited for.
pub fn run(campaign: &Path, results: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .arg("run")
        .arg(campaign)
        .arg("--results")
        .arg(results)
        .args(extra)
        .output()
        .unwrap()
}

/// Standard output, then standard error.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The history of the run `out` reports (`results: <dir>`).
pub fn history_of(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap_or_else(|| panic!("no results directory in: {}", text(out)));
    std::fs::read_to_string(Path::new(dir.trim()).join("history.edn")).unwrap()
}

/// Runs the `baseline` campaign (no faults: must be valid) and then the `faults` one (valid
/// or invalid are both findings; unknown or an error are not), each for a short main phase
/// with seed 1, under `results`; the fault run's history.
pub fn baseline_then_faults(baseline: &str, faults: &str, results: &Path) -> String {
    let run_one = |name: &str, dir: &str, time_limit: &str| {
        run(
            &workload(name),
            &results.join(dir),
            &["--time-limit", time_limit, "--seed", "1"],
        )
    };
    let out = run_one(baseline, "baseline", "10s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run_one(faults, "faults", "20s");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    history_of(&out)
}
