//! PostgreSQL under the transactional workloads, as real processes in a namespace: at
//! `serializable` under pauses and kills the history is serializable (over several seeds);
//! at `read committed` the checker finds what that level allows; `repeatable read` is
//! snapshot isolation.

mod common;

use common::{have_root, skip, Need};
use splitbrain::run::{run, RunOptions, RunReport};
use splitbrain_checkers::Verdict;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// True when PostgreSQL's server and its user are here; otherwise skips the test.
fn have_postgres(test: &str) -> bool {
    let system = splitbrain::system::postgres::PostgresSystem::new(Default::default());
    match splitbrain::system::System::version(&system) {
        Ok(_) => true,
        Err(e) => {
            skip(
                test,
                Need::Postgres,
                format!("PostgreSQL 15 is not installed (apt-get install postgresql): {e:#}"),
            );
            false
        }
    }
}

/// A results directory the server's unprivileged user can reach (a temporary directory
/// is private to root).
fn results_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A list-append run at `isolation`, checked against `consistency`, with a pause and a
/// kill of the node.
fn run_postgres(isolation: &str, consistency: &str, seed: u64, results: &Path) -> RunReport {
    run_postgres_kind("list-append", isolation, consistency, seed, results)
}

/// A run of workload `kind` at `isolation`, checked against `consistency`, with a pause
/// and a kill of the node.
fn run_postgres_kind(
    kind: &str,
    isolation: &str,
    consistency: &str,
    seed: u64,
    results: &Path,
) -> RunReport {
    let campaign = splitbrain::campaign::parse(
        &format!(
            "name: txn-pg-{isolation}\n\
             system: {{postgres: {{isolation: {isolation}}}}}\n\
             nodes: 1\n\
             workload: {{kind: {kind}, concurrency: 6, key_count: 6, max_txn_length: 4, \
               max_writes_per_key: 16, duration: 7s, timeout: 1s, recovery: 2s}}\n\
             nemesis:\n  timeline:\n  - {{at: 1500ms, fault: pause, target: n1, for: 1500ms}}\n  \
               - {{at: 4s, fault: kill, target: n1, for: 1s}}\n\
             checker: {{consistency: {consistency}}}\n"
        ),
        Path::new("txn-pg.yaml"),
    )
    .unwrap();
    let opts = RunOptions {
        results_root: results.to_owned(),
        seed: Some(seed),
        ..Default::default()
    };
    run(&campaign, &opts, CancellationToken::new()).unwrap()
}

/// The transactional checker's outcome in `results.json`.
fn txn_outcome(report: &RunReport) -> &splitbrain::analysis::CheckerOutcome {
    report
        .results
        .checkers
        .iter()
        .find(|c| c.checker.starts_with("list-append") || c.checker.starts_with("rw-register"))
        .unwrap_or_else(|| panic!("no transactional checker: {}", report.summary))
}

fn anomalies(report: &RunReport) -> Vec<String> {
    txn_outcome(report).result["anomaly_counts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn postgres_serializable_under_pauses_and_kills_is_serializable() {
    let test = "postgres_serializable_under_pauses_and_kills_is_serializable";
    if !have_root(test) || !have_postgres(test) {
        return;
    }
    let results = results_dir();
    for seed in [1, 2] {
        let report = run_postgres("serializable", "serializable", seed, results.path());
        assert_eq!(
            report.verdict,
            Verdict::Valid,
            "seed {seed}: {}",
            report.summary
        );
        let outcome = txn_outcome(&report);
        assert_eq!(outcome.verdict, Verdict::Valid, "{}", outcome.detail);
        assert!(anomalies(&report).is_empty(), "{}", outcome.detail);
        let committed = outcome.result["committed"].as_u64().unwrap();
        assert!(committed > 100, "seed {seed}: {}", outcome.detail);
        // Both faults took effect: the pause and the kill (then a restart).
        assert_eq!(
            report.results.fault_effect.in_effect, 2,
            "{}",
            report.summary
        );
        assert!(
            report.results.fault_kinds.contains("kill"),
            "{}",
            report.summary
        );
    }
}

#[test]
fn postgres_read_committed_shows_the_anomalies_serializability_forbids() {
    let test = "postgres_read_committed_shows_the_anomalies_serializability_forbids";
    if !have_root(test) || !have_postgres(test) {
        return;
    }
    let results = results_dir();
    let report = run_postgres("read-committed", "serializable", 3, results.path());
    assert_eq!(report.verdict, Verdict::Invalid, "{}", report.summary);
    let found = anomalies(&report);
    // Read committed lets a transaction see others' commits between its statements: read
    // skew (G-single) or write skew (G2-item) shows within seconds.
    assert!(
        found.iter().any(|a| a == "G-single" || a == "G2-item"),
        "{found:?}: {}",
        txn_outcome(&report).detail
    );
    // Nothing read committed forbids: no dirty reads or aborted reads.
    assert!(
        !found.iter().any(|a| a == "G1a" || a == "G1b" || a == "G0"),
        "{found:?}"
    );
}

#[test]
fn postgres_repeatable_read_is_snapshot_isolation() {
    let test = "postgres_repeatable_read_is_snapshot_isolation";
    if !have_root(test) || !have_postgres(test) {
        return;
    }
    let results = results_dir();
    let report = run_postgres("repeatable-read", "snapshot-isolation", 4, results.path());
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary);
    // What snapshot isolation allows, if anything showed, is write skew alone.
    let found = anomalies(&report);
    assert!(found.iter().all(|a| a == "G2-item"), "{found:?}");
}

#[test]
fn compare_takes_each_isolation_level_as_a_system_of_its_own() {
    let systems =
        splitbrain::compare::parse_systems("postgres-serializable,postgres-read-committed,etcd")
            .unwrap();
    let names: Vec<String> = systems.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        ["postgres-serializable", "postgres-read-committed", "etcd"]
    );
    let err = splitbrain::compare::parse_systems("postgres-snapshot")
        .unwrap_err()
        .to_string();
    assert!(err.contains("postgres-repeatable-read"), "{err}");
}

#[test]
fn hot_standbys_serve_read_only_transactions_as_snapshots() {
    let test = "hot_standbys_serve_read_only_transactions_as_snapshots";
    if !have_root(test) || !have_postgres(test) {
        return;
    }
    let results = results_dir();
    let campaign = splitbrain::campaign::parse(
        "name: txn-pg-standbys\n\
         system: {postgres: {isolation: serializable, read_from_standbys: true}}\n\
         nodes: 3\n\
         workload: {kind: list-append, concurrency: 6, key_count: 6, duration: 7s, timeout: 1s, \
           recovery: 2s}\n\
         nemesis:\n  timeline:\n  - {at: 1500ms, fault: partition, shape: isolate-one, for: 2s}\n  \
           - {at: 4500ms, fault: kill, target: n1, for: 1s}\n\
         checker: {consistency: snapshot-isolation}\n",
        Path::new("txn-pg-standbys.yaml"),
    )
    .unwrap();
    let opts = RunOptions {
        results_root: results.path().to_owned(),
        seed: Some(5),
        ..Default::default()
    };
    let report = run(&campaign, &opts, CancellationToken::new()).unwrap();
    // A standby's transactions are snapshots of the primary's serial order, at most stale:
    // snapshot isolation holds (strict serializability need not).
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary);
    assert_eq!(
        report.results.fault_effect.in_effect, 2,
        "{}",
        report.summary
    );
    // Read-only transactions committed on the standbys, reads that saw appends among them.
    let history = std::fs::read_to_string(report.dir.join("history.jsonl")).unwrap();
    let standby_reads = history
        .lines()
        .filter(|l| l.contains(r#""type":"ok""#) && !l.contains(r#"["append","#))
        .filter(|l| l.contains(r#""node":"n2""#) || l.contains(r#""node":"n3""#))
        .filter(|l| l.contains(",[1"))
        .count();
    assert!(
        standby_reads > 20,
        "{standby_reads} read-only transactions on standbys"
    );
}

#[test]
fn postgres_rw_register_at_serializable_is_serializable() {
    let test = "postgres_rw_register_at_serializable_is_serializable";
    if !have_root(test) || !have_postgres(test) {
        return;
    }
    let results = results_dir();
    let report = run_postgres_kind(
        "rw-register",
        "serializable",
        "serializable",
        6,
        results.path(),
    );
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary);
    let outcome = txn_outcome(&report);
    assert!(
        outcome.checker.starts_with("rw-register"),
        "{}",
        outcome.checker
    );
    assert!(
        outcome.result["committed"].as_u64().unwrap() > 100,
        "{}",
        outcome.detail
    );
    // Registers were read after being written: the history has something to check.
    let history = std::fs::read_to_string(report.dir.join("history.jsonl")).unwrap();
    assert!(history
        .lines()
        .any(|l| l.contains(r#""type":"ok""#) && l.contains(r#"["r","#) && !l.contains(",null]")));
}
