mod common;

use common::{exercise_all_operations, until_ok, Cluster};
use serde_json::json;
use std::time::Duration;

#[test]
fn three_nodes_serve_every_operation() {
    let cluster = Cluster::start("dynamo", 3, &["--n", "3", "--r", "2", "--w", "2"]);
    exercise_all_operations(&cluster);
}

#[test]
fn five_nodes_serve_every_operation() {
    let cluster = Cluster::start("dynamo", 5, &["--n", "3", "--r", "2", "--w", "2"]);
    exercise_all_operations(&cluster);
}

#[test]
fn a_quorum_survives_one_dead_replica_and_status_says_peer() {
    let mut cluster = Cluster::start("dynamo", 3, &["--n", "3", "--r", "2", "--w", "2"]);
    assert_eq!(cluster.client(1).write("k", 5)["ok"], json!(true));
    cluster.kill(3);
    let mut client = cluster.client(2);
    assert_eq!(client.read("k")["value"], json!(5));
    assert_eq!(client.write("k", 6)["ok"], json!(true));
    assert_eq!(cluster.client(1).read("k")["value"], json!(6));
    let status = client.call(json!({"op": "status"}));
    assert_eq!(status["role"], json!("peer"));
    assert_eq!(status["leader"], json!(null));
    // Without a read quorum a read is refused, definitely.
    cluster.kill(2);
    let refused = cluster.client(1).read("k");
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert_eq!(refused["definite"], json!(true));
    // A restarted replica serves its persisted data again.
    cluster.start_node(2);
    cluster.wait_ready(2);
    let mut client = cluster.client(1);
    let read = until_ok(Duration::from_secs(5), || Some(client.read("k")));
    assert_eq!(read["value"], json!(6));
}

#[test]
fn bad_quorum_settings_are_refused_at_start() {
    let output = std::process::Command::new(common::BINARY)
        .args(["--arch", "dynamo", "--id", "1", "--listen", "127.0.0.1:0"])
        .args(["--peers", "n1=127.0.0.1:1,n2=127.0.0.1:2"])
        .args(["--data-dir", "/nonexistent-unused", "--n", "3"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dynamo needs"), "{stderr}");
}
