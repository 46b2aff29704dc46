//! The leaderless part of the bug zoo, end to end: each flawed variant is valid with no
//! fault, invalid under the fault that exposes it, and correct caspaxos stays valid under
//! the same faulted campaign.
//!
//! * `caspaxos-ack-before-quorum` (`workloads/zoo/caspaxos-ack-before-quorum*.yaml`):
//!   partitions that isolate one node;
//! * `dynamo` with reads and writes only (`workloads/zoo/dynamo-*.yaml`): clock bumps (last
//!   write wins by wall clock) and partitions (sloppy quorums).
//!
//! Needs root and the `clusterkv` binary (built by `cargo test --workspace`).

mod common;

use common::runs::{run, text, workload};
use std::path::Path;

/// The tests' campaigns run one at a time: side by side they would slow each other down on
/// a small machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn can_run(test: &str) -> bool {
    common::can_run_clusterkv(test, false)
}

/// Runs `campaign` with `seed` for `time_limit` of main phase; its exit code (0 valid,
/// 1 invalid) and what it printed.
fn verdict(campaign: &Path, results: &Path, seed: u64, time_limit: &str) -> (i32, String) {
    let out = run(
        campaign,
        results,
        &["--seed", &seed.to_string(), "--time-limit", time_limit],
    );
    (out.status.code().unwrap_or(-1), text(&out))
}

/// `campaign` with its `system` line replaced by correct caspaxos, written under `dir`.
fn with_correct_caspaxos(campaign: &str, system: &str, dir: &Path) -> std::path::PathBuf {
    let yaml = std::fs::read_to_string(workload(campaign)).unwrap();
    let line = format!("system: {system}\n");
    assert!(yaml.contains(&line), "{campaign} has no `{line}`");
    let correct = yaml
        .replace(&line, "system: {clusterkv: {arch: caspaxos}}\n")
        .replacen("name: ", "name: correct-", 1);
    let path = dir.join(campaign.replace('/', "-"));
    std::fs::write(&path, correct).unwrap();
    path
}

fn assert_code(expected: i32, what: &str, (code, output): (i32, String)) {
    assert_eq!(code, expected, "{what}:\n{output}");
}

#[test]
fn ack_before_quorum_is_found_by_partitions_only() {
    let test = "ack_before_quorum_is_found_by_partitions_only";
    if !can_run(test) {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let results = tempfile::tempdir().unwrap();
    let baseline = workload("zoo/caspaxos-ack-before-quorum-baseline.yaml");
    assert_code(
        0,
        "ack-before-quorum, no fault",
        verdict(&baseline, results.path(), 1, "20s"),
    );
    // The bug is a race its partitions make likely, not certain (a cut-off node must hold a
    // key's promise when the cut comes; the campaign finds it in most seeds, not all:
    // clusters/README.md), so it must be found in one of three seeds.
    let faulted = workload("zoo/caspaxos-ack-before-quorum.yaml");
    let mut outputs = Vec::new();
    let found = (2..=4).any(|seed: u64| {
        let (code, output) = verdict(&faulted, results.path(), seed, "20s");
        outputs.push(format!("seed {seed}: exit {code}\n{output}"));
        code == 1
    });
    assert!(
        found,
        "ack-before-quorum under partitions: not found in seeds 2 to 4\n{}",
        outputs.join("\n")
    );
    let correct = with_correct_caspaxos(
        "zoo/caspaxos-ack-before-quorum.yaml",
        "{clusterkv: {arch: caspaxos, bug: ack-before-quorum}}",
        results.path(),
    );
    assert_code(
        0,
        "correct caspaxos under the same partitions",
        verdict(&correct, results.path(), 1, "20s"),
    );
}

#[test]
fn dynamo_reads_and_writes_are_found_by_clock_bumps_and_partitions_only() {
    let test = "dynamo_reads_and_writes_are_found_by_clock_bumps_and_partitions_only";
    if !can_run(test) {
        return;
    }
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let results = tempfile::tempdir().unwrap();
    assert_code(
        0,
        "dynamo, no fault",
        verdict(
            &workload("zoo/dynamo-baseline.yaml"),
            results.path(),
            1,
            "20s",
        ),
    );
    for faults in ["clock", "partition"] {
        let campaign = format!("zoo/dynamo-{faults}.yaml");
        assert_code(
            1,
            &format!("dynamo under {faults} faults"),
            verdict(&workload(&campaign), results.path(), 1, "20s"),
        );
        let correct = with_correct_caspaxos(
            &campaign,
            "{clusterkv: {arch: dynamo, n: 3, r: 2, w: 2}}",
            results.path(),
        );
        // 10 s: caspaxos's indeterminate writes under 5-node contention make a longer
        // history costly to check on a small machine. Correct caspaxos must never be found
        // invalid; the checker giving up at its time limit (unknown) is not a verdict on it.
        let (code, output) = verdict(&correct, results.path(), 1, "10s");
        let undecided = code == 2 && output.contains("time limit");
        assert!(
            code == 0 || undecided,
            "correct caspaxos under the same {faults} faults (exit {code}):\n{output}"
        );
    }
}
