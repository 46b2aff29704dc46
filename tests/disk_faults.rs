//! clusterkv's raft and caspaxos fsync what they acknowledge: under kills that lose every
//! unsynced write (the lazy disk layer under each node) their histories stay valid, and
//! the history records what each kill dropped.
//!
//! Needs root, FUSE and the `clusterkv` binary (built by `cargo test --workspace`).

mod common;

use splitbrain::campaign;
use splitbrain::run::{run, RunOptions};
use splitbrain_checkers::Verdict;
use std::path::Path;
use tokio_util::sync::CancellationToken;

fn stays_valid_under_lost_unsynced_writes(test: &str, arch: &str) {
    if !common::can_run_clusterkv(test, true) {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let c = campaign::parse(
        &format!(
            "name: {arch}-lose-unsynced\nsystem: {{clusterkv: {{arch: {arch}}}}}\nnodes: 3\n\
             workload: {{kind: kv, concurrency: 4, rate: 100, duration: 8s, \
             ops_per_key: 100, recovery: 2s}}\nchecker: {{min_ok_per_key: 5}}\n\
             nemesis: {{faults: [disk-lose-unsynced], interval: 1500ms, hold: 1s}}\n"
        ),
        Path::new("test.yaml"),
    )
    .unwrap();
    let opts = RunOptions {
        results_root: results.path().to_owned(),
        seed: Some(7),
        ..RunOptions::default()
    };
    let report = run(&c, &opts, CancellationToken::new()).unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Valid,
        "{arch}:\n{}",
        report.summary
    );
    let history = std::fs::read_to_string(report.dir.join("history.jsonl")).unwrap();
    let kills = history.matches("\"disk-fault\"").count();
    assert!(kills >= 2, "{arch}: {kills} disk fault events\n{history}");
    let faults: Vec<&str> = history.lines().filter(|l| l.contains("disk-")).collect();
    assert!(
        history.contains("unsynced bytes of"),
        "{arch}: the evidence counts what was dropped:\n{}",
        faults.join("\n")
    );
    assert!(
        !splitbrain::disk::is_our_mount(&report.dir.join("nodes/n1/data")),
        "{arch}: the layer is unmounted at the end"
    );
}

#[test]
fn raft_stays_valid_under_lost_unsynced_writes() {
    stays_valid_under_lost_unsynced_writes("raft_stays_valid_under_lost_unsynced_writes", "raft");
}

#[test]
fn caspaxos_stays_valid_under_lost_unsynced_writes() {
    stays_valid_under_lost_unsynced_writes(
        "caspaxos_stays_valid_under_lost_unsynced_writes",
        "caspaxos",
    );
}

/// `disk-corrupt` flips bits of raft's vote file while the node is down: the node refuses
/// to start on it (raft must not forget a vote), and the run reports the crash and ends on
/// time instead of hanging; the history names the file, the bytes and their checksums.
#[test]
fn a_node_refusing_its_corrupted_vote_is_reported_and_the_run_ends() {
    let test = "a_node_refusing_its_corrupted_vote_is_reported_and_the_run_ends";
    if !common::can_run_clusterkv(test, true) {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let c = campaign::parse(
        "name: raft-corrupt-vote\nsystem: {clusterkv: {arch: raft}}\nnodes: 3\n\
         workload: {kind: kv, concurrency: 4, rate: 100, duration: 6s, ops_per_key: 100, \
         recovery: 2s}\nchecker: {min_ok_per_key: 5}\n\
         nemesis: {faults: [disk-corrupt], interval: 2s, hold: 1s, targets: [one], \
         corrupt: {styles: [bit-flip], files: raft-vote.json}}\n",
        Path::new("test.yaml"),
    )
    .unwrap();
    let opts = RunOptions {
        results_root: results.path().to_owned(),
        seed: Some(1),
        ..RunOptions::default()
    };
    let started = std::time::Instant::now();
    let report = run(&c, &opts, CancellationToken::new()).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(90),
        "the run hung"
    );
    let history = std::fs::read_to_string(report.dir.join("history.jsonl")).unwrap();
    let corrupted: Vec<&str> = history
        .lines()
        .filter(|l| l.contains("raft-vote.json: bit-flip of "))
        .collect();
    assert!(!corrupted.is_empty(), "{history}");
    assert!(corrupted[0].contains("fnv1a64 0x"), "{}", corrupted[0]);
    assert!(
        report.summary.contains("node crashes"),
        "the refusal to start is reported:\n{}",
        report.summary
    );
    let refused = ["n1", "n2", "n3"].iter().any(|n| {
        std::fs::read_to_string(report.dir.join(format!("nodes/{n}/stderr.log")))
            .is_ok_and(|log| log.contains("unreadable vote"))
    });
    assert!(refused, "a node refused its corrupted vote");
}

/// What the harness writes into a node's data directory before its first start (here
/// Redis's and Sentinel's configuration) is on the node's disk, synced: a power loss of
/// every node does not take it back, and each node starts again from it.
#[test]
fn a_power_loss_keeps_the_configuration_the_harness_wrote() {
    let test = "a_power_loss_keeps_the_configuration_the_harness_wrote";
    if !common::can_use_the_disk_layer(test) {
        return;
    }
    use splitbrain::system::System;
    if let Err(e) = splitbrain::system::redis::RedisSystem::default().version() {
        common::skip(
            test,
            common::Need::Redis,
            format!("Redis is not installed: {e:#}"),
        );
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let c = campaign::parse(
        "name: redis-lose-unsynced\nsystem: {redis: {}}\nnodes: 3\n\
         workload: {kind: kv, concurrency: 4, rate: 50, duration: 6s, ops_per_key: 100, \
         recovery: 3s}\nchecker: {min_ok_per_key: 1}\n\
         nemesis: {faults: [disk-lose-unsynced], interval: 3s, hold: 1s, targets: [all]}\n",
        Path::new("test.yaml"),
    )
    .unwrap();
    let opts = RunOptions {
        results_root: results.path().to_owned(),
        seed: Some(1),
        ..RunOptions::default()
    };
    let report = run(&c, &opts, CancellationToken::new()).unwrap();
    let history = std::fs::read_to_string(report.dir.join("history.jsonl")).unwrap();
    let restarts: Vec<&str> = history
        .lines()
        .filter(|l| l.contains("running (start #"))
        .collect();
    assert!(!restarts.is_empty(), "no power loss healed:\n{history}");
    for line in &restarts {
        assert!(
            !line.contains("not ready"),
            "a node did not start again on its disk: {line}\n{}",
            report.summary
        );
    }
    for node in ["n1", "n2", "n3"] {
        let conf = report
            .dir
            .join(format!("nodes/{node}/disk/backing/redis.conf"));
        assert!(conf.is_file(), "{} is not on the disk", conf.display());
    }
}
