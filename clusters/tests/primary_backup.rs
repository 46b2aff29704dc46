mod common;

use common::{exercise_all_operations, until_ok, Cluster};
use serde_json::json;
use std::time::Duration;

const FAST: &[&str] = &["--heartbeat", "50ms", "--election-timeout", "300ms"];

#[test]
fn three_nodes_serve_every_operation_async() {
    let cluster = Cluster::start("primary-backup", 3, FAST);
    exercise_all_operations(&cluster);
}

#[test]
fn five_nodes_serve_every_operation_sync() {
    let mut args = FAST.to_vec();
    args.extend(["--replication", "sync"]);
    let cluster = Cluster::start("primary-backup", 5, &args);
    exercise_all_operations(&cluster);
}

#[test]
fn n1_starts_as_primary_and_backups_point_at_it() {
    let cluster = Cluster::start("primary-backup", 3, FAST);
    let status = cluster.client(1).call(json!({"op": "status"}));
    assert_eq!(status["role"], json!("leader"));
    assert_eq!(status["leader"], json!("n1"));
    let status = cluster.client(3).call(json!({"op": "status"}));
    assert_eq!(status["role"], json!("follower"));
    assert_eq!(status["leader"], json!("n1"));
}

#[test]
fn the_next_id_takes_over_when_the_primary_is_killed() {
    let mut args = FAST.to_vec();
    args.extend(["--replication", "sync"]);
    let mut cluster = Cluster::start("primary-backup", 3, &args);
    assert_eq!(cluster.client(3).write("k", 1)["ok"], json!(true));
    cluster.kill(1);
    let (_, status) = cluster
        .wait_for_status(Duration::from_secs(5), |id, s| {
            id == 2 && s["role"] == json!("leader")
        })
        .expect("n2 becomes primary");
    assert_eq!(status["leader"], json!("n2"));
    cluster
        .wait_for_status(Duration::from_secs(5), |id, s| {
            id == 3 && s["leader"] == json!("n2")
        })
        .expect("n3 follows n2");
    // Synchronously replicated data survives the failover, and the new primary serves.
    let mut client = cluster.client(3);
    let read = until_ok(Duration::from_secs(5), || Some(client.read("k")));
    assert_eq!(read["value"], json!(1));
    assert_eq!(client.write("k", 2)["ok"], json!(true));
    assert_eq!(cluster.client(2).read("k")["value"], json!(2));
    assert!(
        cluster.log(2).contains("becoming primary"),
        "{}",
        cluster.log(2)
    );
}

#[test]
fn a_killed_node_restarts_with_its_data() {
    let mut cluster = Cluster::start("primary-backup", 3, FAST);
    assert_eq!(cluster.client(1).write("durable", 7)["ok"], json!(true));
    cluster.kill(1);
    cluster.kill(2);
    cluster.kill(3);
    cluster.start_node(1);
    cluster.wait_ready(1);
    assert_eq!(cluster.client(1).read("durable")["value"], json!(7));
}
