//! The runner end to end on the in-process store: no privileges needed.

use splitbrain::campaign;
use splitbrain::run::{run, RunOptions};
use splitbrain_checkers::{EventType, Process, Verdict};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn campaign(yaml: &str) -> campaign::Campaign {
    campaign::parse(yaml, Path::new("test.yaml")).unwrap()
}

fn options(dir: &Path, seed: u64) -> RunOptions {
    RunOptions {
        results_root: dir.to_owned(),
        seed: Some(seed),
        ..RunOptions::default()
    }
}

#[test]
fn kv_run_records_a_checkable_history_and_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(
        "name: mem-kv\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 6, group_size: 3, \
         ops_per_key: 50, duration: 2s, max_ops: 3000, recovery: 0s}\n",
    );
    let report = run(&c, &options(dir.path(), 1), CancellationToken::new()).unwrap();
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary);
    assert!(!report.interrupted);
    for file in [
        "history.jsonl",
        "campaign.json",
        "environment.json",
        "results.json",
        "summary.txt",
    ] {
        assert!(report.dir.join(file).is_file(), "{file} missing");
    }
    // The document on disk is the one the run handed back, in the current format.
    let stored = splitbrain::analysis::RunResults::load(&report.dir.join("results.json")).unwrap();
    assert_eq!(stored.format, splitbrain::analysis::RESULTS_FORMAT);
    assert_eq!(stored.verdict, report.results.verdict);
    assert_eq!(stored.operation_count(), report.results.operation_count());
    assert!(dir.path().join("latest").join("history.jsonl").is_file());
    let history = splitbrain::run::load_history(&report.dir).unwrap();
    let invokes = history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .count();
    // 3000 main-phase operations plus one final read per key touched.
    let keys: std::collections::HashSet<String> = history
        .events
        .iter()
        .filter_map(|e| e.key.as_ref().map(|k| k.to_string()))
        .collect();
    assert!((60..=62).contains(&keys.len()), "{} keys", keys.len());
    assert_eq!(invokes, 3000 + keys.len());
    // Every key is shared by at most a group of 3 processes.
    let mut procs_per_key =
        std::collections::HashMap::<String, std::collections::HashSet<u64>>::new();
    for e in &history.events {
        if let (Process::Client(p), Some(k)) = (e.process, &e.key) {
            if e.kind == EventType::Invoke && e.f != "read" {
                procs_per_key.entry(k.to_string()).or_default().insert(p);
            }
        }
    }
    assert!(procs_per_key.values().all(|ps| ps.len() <= 3));
    let env: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report.dir.join("environment.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(env["seed"], 1);
}

#[test]
fn set_run_is_checked_by_the_set_checker() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(
        "name: mem-set\nsystem: {in-memory: {}}\nworkload: {kind: set, concurrency: 4, group_size: 2, \
         ops_per_key: 100, duration: 2s, max_ops: 1000, recovery: 0s}\n",
    );
    let report = run(&c, &options(dir.path(), 2), CancellationToken::new()).unwrap();
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary);
    assert!(report.summary.contains("checker set"), "{}", report.summary);
}

#[test]
fn too_few_ok_operations_is_unknown_not_valid() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(
        "name: mem-thin\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 2, group_size: 1, \
         ops_per_key: 3, duration: 2s, max_ops: 40, recovery: 0s}\nchecker: {min_ok_per_key: 10}\n",
    );
    let report = run(&c, &options(dir.path(), 3), CancellationToken::new()).unwrap();
    assert_eq!(report.verdict, Verdict::Unknown, "{}", report.summary);
    assert!(
        report.summary.contains("fewer than 10 ok"),
        "{}",
        report.summary
    );
}

#[test]
fn cancellation_ends_the_run_early_with_a_checkable_history() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(
        "name: mem-cancel\nsystem: {in-memory: {}}\nworkload: {kind: cas-register, concurrency: 3, \
         rate: 200, duration: 60s}\n",
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        trigger.cancel();
    });
    let started = std::time::Instant::now();
    let report = run(&c, &options(dir.path(), 4), cancel).unwrap();
    assert!(report.interrupted);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_ne!(report.verdict, Verdict::Invalid, "{}", report.summary);
    assert!(report.operations > 10);
}

#[test]
fn same_seed_gives_the_same_operations() {
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(
        "name: mem-seed\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 1, group_size: 1, \
         ops_per_key: 10, duration: 5s, max_ops: 100, recovery: 0s, final_reads: false}\n",
    );
    let ops = |seed| {
        let report = run(&c, &options(dir.path(), seed), CancellationToken::new()).unwrap();
        splitbrain::run::load_history(&report.dir)
            .unwrap()
            .events
            .into_iter()
            .filter(|e| e.kind == EventType::Invoke)
            .map(|e| (e.f, e.key, e.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(ops(9), ops(9));
    assert_ne!(ops(9), ops(10));
}
