//! `run`'s and `report`'s command line: what is a usage error (64), what is missing (66),
//! what cannot be created (73). No privileges needed: an in-memory campaign.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MEM_KV: &str = "name: mem-cli\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 2, \
     group_size: 2, ops_per_key: 10, duration: 1s, max_ops: 50, recovery: 0s}\nchecker: {min_ok_per_key: 1}\n";

fn splitbrain(args: &[&str], extra: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
    command.args(args).args(extra);
    command.output().unwrap()
}

fn write_campaign(dir: &Path) -> PathBuf {
    let path = dir.join("mem-cli.yaml");
    std::fs::write(&path, MEM_KV).unwrap();
    path
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_absurd_time_limit_is_a_usage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    for limit in ["500000000000y", "99999999", "8d"] {
        let out = splitbrain(
            &["run", "--time-limit", limit, "--results"],
            &[dir.path(), &file],
        );
        assert_eq!(out.status.code(), Some(64), "{limit}: {}", text(&out));
        assert!(
            text(&out).contains("out of range"),
            "{limit}: {}",
            text(&out)
        );
    }
}

#[test]
fn a_test_count_of_zero_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    let out = splitbrain(
        &["run", "--test-count", "0", "--results"],
        &[dir.path(), &file],
    );
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}

#[test]
fn a_results_directory_that_cannot_be_created_is_73() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    // A file where the results directory should be.
    let out = splitbrain(&["run", "--results"], &[&file, &file]);
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(
        text(&out).contains("cannot create the run directory"),
        "{}",
        text(&out)
    );
    let out = splitbrain(&["run", "--results", "/proc/nope"], &[&file]);
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
}

#[test]
fn a_results_directory_without_permission_is_77() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
    command
        .arg("run")
        .arg(&file)
        .arg("--results")
        .arg(locked.join("results"));
    if nix::unistd::geteuid().is_root() {
        // Root ignores modes: run as nobody, which may read the campaign but not write.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        command.uid(65534).gid(65534);
    }
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
}

#[test]
fn a_missing_campaign_file_or_results_directory_is_missing_input_66() {
    let dir = tempfile::tempdir().unwrap();
    let out = splitbrain(&["run"], &[&dir.path().join("missing.yaml")]);
    assert_eq!(out.status.code(), Some(66), "{}", text(&out));
    let out = splitbrain(&["report"], &[&dir.path().join("missing")]);
    assert_eq!(out.status.code(), Some(66), "{}", text(&out));
}
