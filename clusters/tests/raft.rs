mod common;

use common::{exercise_all_operations, until_ok, Cluster};
use serde_json::{json, Value};
use std::time::Duration;

const FAST: &[&str] = &["--heartbeat", "50ms", "--election-timeout", "300ms"];

fn leader(cluster: &Cluster, except: Option<usize>) -> (usize, Value) {
    cluster
        .wait_for_status(Duration::from_secs(10), |id, s| {
            Some(id) != except && s["role"] == json!("leader")
        })
        .expect("a leader is elected")
}

#[test]
fn three_nodes_serve_every_operation() {
    let cluster = Cluster::start("raft", 3, FAST);
    leader(&cluster, None);
    exercise_all_operations(&cluster);
}

#[test]
fn five_nodes_serve_every_operation() {
    let cluster = Cluster::start("raft", 5, FAST);
    leader(&cluster, None);
    exercise_all_operations(&cluster);
}

#[test]
fn a_new_leader_is_elected_after_the_leader_is_killed() {
    let mut cluster = Cluster::start("raft", 3, FAST);
    let (old, status) = leader(&cluster, None);
    let old_term = status["term"].as_u64().unwrap();
    let survivor = if old == 1 { 2 } else { 1 };
    assert_eq!(cluster.client(survivor).write("k", 1)["ok"], json!(true));
    cluster.kill(old);
    // A leader deposed before the kill (a start-up election lost to a higher term) may go on
    // calling itself leader of its old term for a moment: the new leader is the one of a
    // later term.
    let (new, status) = cluster
        .wait_for_status(Duration::from_secs(10), |id, s| {
            id != old
                && s["role"] == json!("leader")
                && s["term"].as_u64().is_some_and(|t| t > old_term)
        })
        .expect("a leader of a later term is elected");
    assert_ne!(new, old);
    assert!(status["term"].as_u64().unwrap() > old_term, "{status}");
    let mut client = cluster.client(survivor);
    let read = until_ok(Duration::from_secs(5), || Some(client.read("k")));
    assert_eq!(read["value"], json!(1));
    assert_eq!(client.cas("k", json!(1), 2)["ok"], json!(true));
    // The old leader restarts from its data directory and catches up.
    cluster.start_node(old);
    cluster.wait_ready(old);
    let mut client = cluster.client(old);
    let read = until_ok(Duration::from_secs(10), || Some(client.read("k")));
    assert_eq!(read["value"], json!(2));
}

#[test]
fn committed_writes_survive_a_whole_cluster_restart() {
    let mut cluster = Cluster::start("raft", 3, FAST);
    leader(&cluster, None);
    assert_eq!(cluster.client(1).write("durable", 9)["ok"], json!(true));
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.start_node(id);
    }
    for id in 1..=3 {
        cluster.wait_ready(id);
    }
    let mut client = cluster.client(3);
    let read = until_ok(Duration::from_secs(10), || Some(client.read("durable")));
    assert_eq!(read["value"], json!(9));
}
