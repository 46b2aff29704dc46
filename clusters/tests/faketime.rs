mod common;

use common::Cluster;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Every architecture keeps serving under a preloaded libfaketime whose wall clock is a
/// minute ahead, with the monotonic clock left alone (as the harness's clock faults run
/// it); `status.time_ms` shows the skew.
#[test]
fn nodes_run_and_report_a_skewed_clock_under_libfaketime() {
    if !Path::new(LIBFAKETIME).exists() {
        common::skip::skip(
            "nodes_run_and_report_a_skewed_clock_under_libfaketime",
            common::skip::Need::Libfaketime,
            format!("{LIBFAKETIME} is not installed (apt-get install libfaketime)"),
        );
        return;
    }
    let env = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME", "+60s"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("FAKETIME_NO_CACHE", "1"),
    ];
    for arch in ["primary-backup", "dynamo", "caspaxos", "raft"] {
        let cluster = Cluster::start_with_env(arch, 3, &[], &env);
        for id in 1..=3 {
            let mut client = cluster.client(id);
            let status = client.call(json!({"op": "status"}));
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let skew_ms = status["time_ms"].as_i64().expect("time_ms") - now_ms;
            assert!(
                (55_000..65_000).contains(&skew_ms),
                "{arch} n{id}: skew {skew_ms} ms, status {status}"
            );
        }
        // Timers still fire (elections, heartbeats, timeouts) and requests are served.
        std::thread::sleep(Duration::from_millis(800));
        let mut client = cluster.client(2);
        let written = common::until_ok(Duration::from_secs(10), || Some(client.write("skewed", 1)));
        assert_eq!(written["value"], json!(1), "{arch}");
        assert_eq!(
            cluster.client(3).read("skewed")["value"],
            json!(1),
            "{arch}"
        );
    }
}
