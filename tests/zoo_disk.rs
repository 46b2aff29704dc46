//! The bug zoo's `no-fsync` raft (acknowledges log appends it did not fsync): valid with no
//! fault, invalid once whole-cluster power losses (`disk-lose-unsynced` kills of every
//! node, through the lazy disk layer) drop what its nodes had only in the page cache.
//!
//! Needs root, FUSE and the `clusterkv` binary (built by `cargo test --workspace`).

mod common;

use common::runs::{history_of, run, text, workload};

#[test]
fn no_fsync_raft_is_valid_without_faults_and_loses_acknowledged_writes_on_power_loss() {
    let test = "no_fsync_raft_is_valid_without_faults_and_loses_acknowledged_writes_on_power_loss";
    if !common::can_run_clusterkv(test, true) {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let baseline = run(
        &workload("zoo/raft-no-fsync-baseline.yaml"),
        &results.path().join("baseline"),
        &["--time-limit", "10s", "--seed", "1"],
    );
    assert_eq!(baseline.status.code(), Some(0), "{}", text(&baseline));
    // Power losses of all three nodes at 5 s and 10 s of the main phase.
    let faults = run(
        &workload("zoo/raft-no-fsync.yaml"),
        &results.path().join("faults"),
        &["--time-limit", "12s", "--seed", "1"],
    );
    assert_eq!(faults.status.code(), Some(1), "{}", text(&faults));
    let history = history_of(&faults);
    assert!(
        history.contains("unsynced bytes of"),
        "the evidence counts what each power loss dropped:\n{}",
        text(&faults)
    );
}
