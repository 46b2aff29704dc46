//! Each shipped architecture forms a 3- and a 5-node cluster of real processes in
//! namespaces and serves read, write and cas with no faults: the history is valid.
//!
//! Needs root and the `clusterkv` binary (built by `cargo test --workspace`).

mod common;

use splitbrain::campaign;
use splitbrain::run::{run, RunOptions};
use splitbrain_checkers::Verdict;
use std::path::Path;
use tokio_util::sync::CancellationToken;

fn serves_without_faults(test: &str, arch: &str, concurrency: usize) {
    if !common::can_run_clusterkv(test, false) {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    for nodes in [3, 5] {
        let c = campaign::parse(
            &format!(
                "name: {arch}-{nodes}\nsystem: {{clusterkv: {{arch: {arch}}}}}\nnodes: {nodes}\n\
                 workload: {{kind: kv, concurrency: {concurrency}, rate: 100, duration: 3s, \
                 ops_per_key: 100, recovery: 0s}}\nchecker: {{min_ok_per_key: 5}}\n"
            ),
            Path::new("test.yaml"),
        )
        .unwrap();
        let opts = RunOptions {
            results_root: results.path().to_owned(),
            seed: Some(nodes as u64),
            ..RunOptions::default()
        };
        let report = run(&c, &opts, CancellationToken::new()).unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Valid,
            "{arch}, {nodes} nodes:\n{}",
            report.summary
        );
        assert!(
            report.operations > 100,
            "{arch}, {nodes} nodes: {} ops",
            report.operations
        );
        assert!(
            report.summary.contains(&format!("({nodes} nodes)")),
            "{}",
            report.summary
        );
    }
}

#[test]
fn raft_serves_on_three_and_five_nodes() {
    serves_without_faults("raft_serves_on_three_and_five_nodes", "raft", 5);
}

#[test]
fn caspaxos_serves_on_three_and_five_nodes() {
    serves_without_faults("caspaxos_serves_on_three_and_five_nodes", "caspaxos", 5);
}

#[test]
fn primary_backup_serves_on_three_and_five_nodes() {
    serves_without_faults(
        "primary_backup_serves_on_three_and_five_nodes",
        "primary-backup",
        5,
    );
}

/// One client: dynamo's cas is a read and then a write (no consensus, so not atomic), and
/// concurrent cas lose updates even without faults; one client's reads, writes and cas are
/// linearizable (concurrent reads and writes are too: `tests/zoo_leaderless.rs`).
#[test]
fn dynamo_serves_on_three_and_five_nodes() {
    serves_without_faults("dynamo_serves_on_three_and_five_nodes", "dynamo", 1);
}
