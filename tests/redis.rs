//! Redis with Sentinel as a built-in system: campaigns load, and real clusters run in
//! namespaces — the baseline is valid, a pause/kill campaign that hits the first primary
//! ends with a verdict and its faults in the history. Needs root and Debian's
//! `redis-server` and `redis-sentinel` (skips otherwise, see `common::skip`).

mod common;

use common::runs::{baseline_then_faults, workload};
use common::{skip, Need};
use splitbrain::campaign::SystemSpec;
use std::process::Command;

/// Why Redis with Sentinel cannot run here, if it cannot.
fn redis_missing() -> Option<String> {
    for program in ["redis-server", "redis-sentinel", "redis-cli"] {
        match Command::new(program).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Some(format!("`{program} --version` failed: {}", out.status)),
            Err(e) => {
                return Some(format!(
                    "no `{program}` ({e}; apt-get install redis-server redis-sentinel)"
                ))
            }
        }
    }
    None
}

#[test]
fn redis_campaigns_load_with_their_options() {
    let campaign = splitbrain::campaign::load(&workload("redis-partition.yaml")).unwrap();
    match campaign.system {
        SystemSpec::Redis(r) => {
            let wait = r.wait.expect("wait");
            assert_eq!((wait.replicas, wait.timeout_ms), (1, 100));
            assert!(!r.replica_reads);
        }
        other => panic!("not redis: {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: t\nsystem: {redis: {wait: {replicas: 0, timeout_ms: 10}}}\nworkload: {kind: kv}\n",
    )
    .unwrap();
    let err = splitbrain::campaign::load(&bad).unwrap_err().to_string();
    assert!(err.contains("replicas"), "{err}");
}

/// One test runs both clusters, one after the other.
#[test]
fn redis_serves_and_fails_over() {
    let test = "redis_serves_and_fails_over";
    if !common::have_root(test) {
        return;
    }
    if let Some(reason) = redis_missing() {
        skip(test, Need::Redis, reason);
        return;
    }
    let results = tempfile::tempdir().unwrap();

    let history = baseline_then_faults(
        "redis-register.yaml",
        "redis-pause-kill.yaml",
        results.path(),
    );
    assert!(
        history.contains(":nemesis") && (history.contains("pause") || history.contains("kill")),
        "no pause or kill in the history"
    );
}
