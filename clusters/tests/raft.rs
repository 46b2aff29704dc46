mod common;

use common::{exercise_all_operations, until_ok, Cluster};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FAST: &[&str] = &["--heartbeat", "50ms", "--election-timeout", "300ms"];

/// The leader every running node (but `except`) agrees on, in one term, with its status. A
/// leader deposed in a start-up election may still call itself leader of its old term for a
/// moment, so one node's word is not enough.
fn leader(cluster: &Cluster, except: Option<usize>) -> (usize, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let statuses: Vec<(usize, Option<Value>)> = cluster
            .statuses()
            .into_iter()
            .filter(|(id, _)| Some(*id) != except)
            .collect();
        let leader = statuses.iter().find_map(|(id, s)| {
            s.as_ref()
                .filter(|s| s["role"] == json!("leader"))
                .map(|s| (*id, s.clone()))
        });
        if let Some((id, status)) = leader {
            let agreed = statuses.iter().all(|(_, s)| {
                s.as_ref().is_some_and(|s| {
                    s["leader"] == json!(format!("n{id}")) && s["term"] == status["term"]
                })
            });
            if agreed {
                return (id, status);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no leader all running nodes agree on within 10 s");
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
    let (new, status) = leader(&cluster, Some(old));
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
