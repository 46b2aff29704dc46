//! etcd under the list-append workload, as real processes in namespaces: through the
//! built-in client and through the example client of the `command` system, under
//! partitions, pauses and kills, the history is strictly serializable.

mod common;

use common::{have_root, skip, Need};
use splitbrain::run::{run, RunOptions, RunReport};
use splitbrain_checkers::Verdict;
use std::path::Path;
use tokio_util::sync::CancellationToken;

fn have_etcd(test: &str) -> bool {
    let present = std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        skip(
            test,
            Need::Etcd,
            "etcd is not installed (apt-get install etcd-server)",
        );
    }
    present
}

const FAULTS: &str = "nemesis:\n  timeline:\n  \
    - {at: 1s, fault: partition, shape: isolate-leader, for: 2s}\n  \
    - {at: 4s, fault: pause, target: n2, for: 1500ms}\n  \
    - {at: 6500ms, fault: kill, target: n3, for: 1s}\n";

/// A list-append run of `system` (YAML) with `timeout` per transaction.
fn run_campaign(system: &str, timeout: &str, seed: u64) -> (RunReport, tempfile::TempDir) {
    let results = tempfile::tempdir().unwrap();
    let campaign = splitbrain::campaign::parse(
        &format!(
            "name: txn-etcd\n\
             system: {system}\n\
             nodes: 3\n\
             workload: {{kind: list-append, concurrency: 6, key_count: 6, max_txn_length: 4, \
               max_writes_per_key: 16, duration: 9s, timeout: {timeout}, recovery: 2s}}\n\
             {FAULTS}\
             checker: {{consistency: strict-serializable}}\n"
        ),
        Path::new("txn-etcd.yaml"),
    )
    .unwrap();
    let opts = RunOptions {
        results_root: results.path().to_owned(),
        seed: Some(seed),
        ..Default::default()
    };
    let report = run(&campaign, &opts, CancellationToken::new()).unwrap();
    (report, results)
}

/// Valid, with at least `min_committed` committed transactions and reads that saw appends.
fn assert_strictly_serializable(report: &RunReport, min_committed: u64) {
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary);
    let outcome = report
        .results
        .checkers
        .iter()
        .find(|c| c.checker == "list-append (strict-serializable)")
        .unwrap_or_else(|| panic!("{}", report.summary));
    assert_eq!(outcome.verdict, Verdict::Valid, "{}", outcome.detail);
    assert!(
        outcome.result["committed"].as_u64().unwrap() >= min_committed,
        "{}",
        outcome.detail
    );
    // Reads saw lists: the history has something to check.
    let history = std::fs::read_to_string(report.dir.join("history.jsonl")).unwrap();
    assert!(
        history
            .lines()
            .any(|l| l.contains(r#""type":"ok""#) && l.contains(r#"["r","#) && l.contains(",[1,")),
        "no read observed an append"
    );
    assert_eq!(
        report.results.fault_effect.in_effect, 3,
        "{}",
        report.summary
    );
}

#[test]
fn etcd_list_append_under_partitions_pauses_and_kills_is_strictly_serializable() {
    let test = "etcd_list_append_under_partitions_pauses_and_kills_is_strictly_serializable";
    if !have_root(test) || !have_etcd(test) {
        return;
    }
    let (report, _results) = run_campaign("{etcd: {}}", "1s", 1);
    assert_strictly_serializable(&report, 100);
}

#[test]
fn the_command_protocol_carries_transactions_through_the_example_client() {
    let test = "the_command_protocol_carries_transactions_through_the_example_client";
    if !have_root(test) || !have_etcd(test) {
        return;
    }
    if !std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        skip(test, Need::Python3, "python3 is not installed");
        return;
    }
    let client = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/clients/etcd_gateway_client.py"
    );
    // etcd started from command templates (its `--initial-cluster` wants URLs, so `sh`
    // rewrites `{peers}`), the example client speaking the protocol.
    let system = format!(
        "\n  command:\n    name: etcd-py\n    node:\n      program: sh\n      args:\n        - -c\n        - >-\n          exec etcd --name {{node}} --data-dir {{data_dir}}\n          --listen-client-urls http://{{ip}}:2379 --advertise-client-urls http://{{ip}}:2379\n          --listen-peer-urls http://{{ip}}:2380 --initial-advertise-peer-urls http://{{ip}}:2380\n          --initial-cluster $(echo {{peers}} | sed 's|=|=http://|g')\n          --heartbeat-interval 50 --election-timeout 500 --logger zap\n      port: 2379\n      peer_port: 2380\n      readiness: {{tcp_port: 2379}}\n    client:\n      program: python3\n      args: ['{client}', '{{ip}}', '{{port}}']"
    );
    // A client program's start (Python, on a busy machine) counts against its first
    // request's deadline: a longer one than the built-in client needs.
    let (report, _results) = run_campaign(&system, "5s", 2);
    assert_strictly_serializable(&report, 20);
}
