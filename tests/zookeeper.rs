//! ZooKeeper as a built-in system: campaigns load, and real ensembles run in namespaces —
//! the baseline is valid, a partition campaign ends with a verdict and its faults in the
//! history. Needs root and Debian's `zookeeper` (skips otherwise, see `common::skip`).

mod common;

use common::runs::{baseline_then_faults, workload};
use common::{skip, Need};
use splitbrain::campaign::SystemSpec;
use std::path::Path;
use std::process::Command;

/// Why ZooKeeper cannot run here, if it cannot.
fn zookeeper_missing() -> Option<String> {
    let jar = Path::new(splitbrain::system::zookeeper::DEBIAN_JAR);
    if !jar.exists() {
        return Some(format!("no {} (apt-get install zookeeper)", jar.display()));
    }
    match Command::new("java").arg("-version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`java -version` failed: {}", out.status)),
        Err(e) => Some(format!("no `java` ({e})")),
    }
}

#[test]
fn zookeeper_campaigns_load_with_their_options() {
    let campaign = splitbrain::campaign::load(&workload("zookeeper-register.yaml")).unwrap();
    match campaign.system {
        SystemSpec::Zookeeper(z) => assert!(z.sync_reads),
        other => panic!("not zookeeper: {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: t\nsystem: {zookeeper: {sync_read: true}}\nworkload: {kind: kv}\n",
    )
    .unwrap();
    let err = splitbrain::campaign::load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("sync_read") && err.contains("sync_reads"),
        "{err}"
    );
}

/// One test runs both ensembles, one after the other: the JVMs are heavy for a small machine.
#[test]
fn zookeeper_ensembles_serve_and_survive_partitions() {
    let test = "zookeeper_ensembles_serve_and_survive_partitions";
    if !common::have_root(test) {
        return;
    }
    if let Some(reason) = zookeeper_missing() {
        skip(test, Need::Zookeeper, reason);
        return;
    }
    let results = tempfile::tempdir().unwrap();

    let history = baseline_then_faults(
        "zookeeper-register.yaml",
        "zookeeper-partition-sync.yaml",
        results.path(),
    );
    assert!(
        history.contains(":nemesis") && history.contains("partition"),
        "no partition in the history"
    );
}
