mod common;

use common::{exercise_all_operations, until_ok, Cluster};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn three_nodes_serve_every_operation() {
    let cluster = Cluster::start("caspaxos", 3, &[]);
    exercise_all_operations(&cluster);
}

#[test]
fn five_nodes_serve_every_operation() {
    let cluster = Cluster::start("caspaxos", 5, &[]);
    exercise_all_operations(&cluster);
}

/// Clients on every node increment one counter by cas; each successful cas must be one
/// step, so the final value equals the number of successes (plus any indeterminate ones
/// that took effect, which the bounds account for).
#[test]
fn a_cas_counter_stays_exact_under_concurrent_clients() {
    let cluster = Cluster::start("caspaxos", 3, &[]);
    assert_eq!(cluster.client(1).write("counter", 0)["ok"], json!(true));
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let mut client = cluster.client(worker % 3 + 1);
            std::thread::spawn(move || {
                let (mut succeeded, mut indeterminate) = (0i64, 0i64);
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut attempts = 0;
                while succeeded < 15 && attempts < 400 && Instant::now() < deadline {
                    attempts += 1;
                    let current = client.read("counter");
                    let Some(value) = current["value"].as_i64() else {
                        continue;
                    };
                    let reply = client.cas("counter", json!(value), value + 1);
                    if reply["ok"] == json!(true) {
                        succeeded += 1;
                    } else if reply["definite"] == json!(false) {
                        indeterminate += 1;
                    } else {
                        assert_eq!(reply["definite"], json!(true), "{reply}");
                    }
                }
                (succeeded, indeterminate)
            })
        })
        .collect();
    let (mut succeeded, mut indeterminate) = (0, 0);
    for worker in workers {
        let (s, i) = worker.join().unwrap();
        succeeded += s;
        indeterminate += i;
    }
    assert!(
        succeeded >= 30,
        "too little progress: {succeeded} increments"
    );
    let mut client = cluster.client(2);
    let final_value = until_ok(Duration::from_secs(5), || Some(client.read("counter")))["value"]
        .as_i64()
        .unwrap();
    assert!(
        final_value >= succeeded && final_value <= succeeded + indeterminate,
        "counter {final_value} after {succeeded} ok and {indeterminate} indeterminate increments"
    );
}

#[test]
fn a_minority_down_keeps_serving_and_a_majority_down_refuses() {
    let mut cluster = Cluster::start("caspaxos", 3, &["--request-timeout", "1s"]);
    assert_eq!(cluster.client(1).write("k", 1)["ok"], json!(true));
    cluster.kill(2);
    let mut client = cluster.client(3);
    assert_eq!(client.cas("k", json!(1), 2)["ok"], json!(true));
    cluster.kill(3);
    let refused: Value = cluster.client(1).read("k");
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert_eq!(refused["definite"], json!(true));
    // Both come back from their data directories, and the accepted value is still there.
    cluster.start_node(2);
    cluster.start_node(3);
    cluster.wait_ready(2);
    cluster.wait_ready(3);
    let mut client = cluster.client(2);
    let read = until_ok(Duration::from_secs(5), || Some(client.read("k")));
    assert_eq!(read["value"], json!(2));
}

/// `--bug ack-before-quorum`: a proposer that holds the promise for a key (its last round
/// on the key succeeded) answers a write that only its own acceptor took, once the others
/// are silent; correct caspaxos refuses it (indeterminate: its own acceptor took it).
#[test]
fn ack_before_quorum_answers_a_write_no_majority_has() {
    for (bug, acknowledged) in [(true, true), (false, false)] {
        let args: &[&str] = if bug {
            &["--request-timeout", "1s", "--bug", "ack-before-quorum"]
        } else {
            &["--request-timeout", "1s"]
        };
        let mut cluster = Cluster::start("caspaxos", 3, args);
        let mut client = cluster.client(1);
        assert_eq!(client.write("k", 1)["ok"], json!(true));
        assert_eq!(client.read("k")["value"], json!(1));
        cluster.kill(2);
        cluster.kill(3);
        let reply = client.write("k", 2);
        assert_eq!(reply["ok"], json!(acknowledged), "bug {bug}: {reply}");
        if !acknowledged {
            assert_eq!(reply["definite"], json!(false), "{reply}");
        }
    }
}
