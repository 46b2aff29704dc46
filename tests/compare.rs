//! `compare`: systems parsed from `--systems`, the campaign split by fault kind, a fault a
//! system cannot take marked `refused` in the table (not skipped), the others measured.
//! Runs here use the in-process store (no privileges); the etcd clock-skew refusal is a
//! validation only, no cluster is started.

mod common;

use splitbrain::campaign::{self, Campaign, SystemSpec};
use splitbrain::compare::{self, Cell, CompareOptions};
use splitbrain::run::RunOptions;
use splitbrain_checkers::Verdict;
use std::path::Path;
use tokio_util::sync::CancellationToken;

fn campaign(yaml: &str) -> Campaign {
    campaign::parse(yaml, Path::new("compare.yaml")).unwrap()
}

#[test]
fn systems_parse_to_clusterkv_architectures_and_etcd() {
    let systems = compare::parse_systems("raft, caspaxos,primary-backup,dynamo,etcd").unwrap();
    let names: Vec<String> = systems.iter().map(SystemSpec::name).collect();
    assert_eq!(
        names,
        ["raft", "caspaxos", "primary-backup", "dynamo", "etcd"]
    );
    let err = compare::parse_systems("raft,zookeeper")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zookeeper") && err.contains("caspaxos"),
        "{err}"
    );
    assert!(compare::parse_systems(" , ").is_err());
    let variants = compare::parse_systems("raft-lease-pause,caspaxos-ack-before-quorum").unwrap();
    let names: Vec<String> = variants.iter().map(SystemSpec::name).collect();
    assert_eq!(names, ["raft-lease-pause", "caspaxos-ack-before-quorum"]);
}

#[test]
fn the_campaign_is_split_into_one_campaign_per_fault_kind() {
    let random = campaign(
        "name: c\nsystem: {etcd: {}}\nworkload: {kind: kv}\nnemesis: {faults: [partition, kill, pause]}\n",
    );
    let scripted = campaign(
        "name: c\nsystem: {etcd: {}}\nworkload: {kind: kv}\nnemesis:\n  timeline:\n    - {at: 1s, fault: pause, for: 1s}\n    - {at: 3s, fault: kill, for: 1s}\n    - {at: 5s, fault: pause, for: 1s}\n",
    );
    for (c, expected) in [
        (random, vec!["kill", "partition", "pause"]),
        (scripted, vec!["kill", "pause"]),
    ] {
        let split = compare::split_by_fault(&c);
        let labels: Vec<&str> = split.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, expected);
        for (label, variant) in &split {
            let kinds: Vec<&str> = variant.nemesis.kinds().iter().map(|k| k.name()).collect();
            assert_eq!(kinds, [label.as_str()], "{label}");
        }
    }
    let calm = campaign("name: c\nsystem: {etcd: {}}\nworkload: {kind: kv}\n");
    let split = compare::split_by_fault(&calm);
    assert_eq!(split.len(), 1);
    assert_eq!(split[0].0, "none");
}

#[test]
fn a_fault_the_system_cannot_take_is_refused_in_the_table_and_the_rest_is_measured() {
    let root = tempfile::tempdir().unwrap();
    let opts = CompareOptions {
        systems: vec![SystemSpec::InMemory(Default::default())],
        run: RunOptions {
            results_root: root.path().to_owned(),
            ..RunOptions::default()
        },
    };
    // The in-memory store has no processes to fault: every fault is refused for it.
    let faulted = campaign(
        "name: cmp\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 4, group_size: 2, duration: 1s, max_ops: 200, recovery: 0s}\nnemesis: {faults: [partition, kill]}\n",
    );
    let mut seen = 0;
    let rows = compare::compare(&faulted, &opts, &CancellationToken::new(), |_| seen += 1);
    assert_eq!(seen, 2);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        match &row.cell {
            Cell::Refused { reason } => assert!(reason.contains("in-memory"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let table = compare::table(&rows);
    assert!(table.contains("| in-memory | kill"), "{table}");
    assert!(table.contains("refused"), "{table}");

    let calm = campaign(
        "name: cmp\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 4, group_size: 2, duration: 1s, max_ops: 300, recovery: 0s}\nchecker: {min_ok_per_key: 5}\n",
    );
    let rows = compare::compare(&calm, &opts, &CancellationToken::new(), |_| {});
    assert_eq!(rows.len(), 1);
    match &rows[0].cell {
        Cell::Ran {
            verdict,
            operations,
            availability,
            during_fault,
            dir,
            ..
        } => {
            assert_eq!(*verdict, Verdict::Valid);
            assert!(*operations >= 300, "{operations}");
            // Failed cas (the compare did not hold) count against it, nothing else does.
            assert!(*availability > 0.5, "{availability}");
            assert_eq!(*during_fault, None);
            assert!(dir.join("report.html").is_file());
            assert!(dir.starts_with(root.path().join("cmp-in-memory-none")));
        }
        other => panic!("expected a run, got {other:?}"),
    }
    let table = compare::table(&rows);
    assert!(table.contains("valid"), "{table}");
}

#[test]
fn clock_skew_on_etcd_is_refused_naming_the_go_binary() {
    let etcd_present = std::process::Command::new("which")
        .arg("etcd")
        .output()
        .is_ok_and(|o| o.status.success());
    if !etcd_present {
        common::skip(
            "clock_skew_on_etcd_is_refused_naming_the_go_binary",
            common::Need::Etcd,
            "etcd is not installed (apt-get install etcd-server)",
        );
        return;
    }
    let c = campaign(
        "name: cmp\nsystem: {etcd: {}}\nworkload: {kind: kv}\nnemesis: {faults: [clock-bump]}\n",
    );
    let etcd = splitbrain::system::etcd::EtcdSystem::default();
    let err = splitbrain::nemesis::validate(&c.nemesis, Some(&etcd), c.nodes)
        .unwrap_err()
        .to_string();
    // Without libfaketime the refusal names that instead; either way the cell is refused.
    assert!(
        err.contains("Go binary") || err.contains("libfaketime"),
        "{err}"
    );
}

#[test]
fn the_table_has_a_column_for_faults_that_did_not_take_effect() {
    let row = |fault: &str, faults: u64, not: u64| compare::Row {
        system: "raft".into(),
        fault: fault.into(),
        cell: Cell::Ran {
            verdict: if not > 0 {
                Verdict::Unknown
            } else {
                Verdict::Valid
            },
            operations: 100,
            availability: 0.9,
            during_fault: Some(0.8),
            healthy: Some(1.0),
            p99_ms: 5.0,
            p99_during_fault_ms: Some(9.0),
            faults,
            faults_not_in_effect: not,
            dir: "results/x".into(),
        },
    };
    let table = compare::table(&[
        row("clock-bump", 4, 2),
        row("partition", 4, 0),
        row("none", 0, 0),
    ]);
    assert!(table.contains("not in effect"), "{table}");
    let line = |fault: &str| {
        table
            .lines()
            .find(|l| l.contains(fault))
            .unwrap()
            .to_owned()
    };
    assert!(line("clock-bump").contains("2 of 4"), "{table}");
    assert!(line("partition").contains("0 of 4"), "{table}");
    let json = serde_json::to_value(row("clock-bump", 4, 2)).unwrap();
    assert_eq!(json["faults_not_in_effect"], 2);
}
