//! The feedback nemesis (`nemesis: {mode: feedback}`): its campaign fields are checked at
//! load (64, with line and column), and a real run in namespaces records each fault it
//! chose, with why, in the history and in `nemesis.json`. The chooser's logic itself is
//! unit-tested in `src/nemesis/feedback.rs`.

mod common;

use common::runs::{run, text};
use std::path::Path;

const BASE: &str = "name: t\nsystem: {clusterkv: {arch: raft}}\nworkload: {kind: kv}\n";

fn load_error(dir: &Path, nemesis: &str) -> (Option<i32>, String) {
    let file = dir.join("c.yaml");
    std::fs::write(&file, format!("{BASE}nemesis:\n{nemesis}")).unwrap();
    let out = run(&file, &dir.join("results"), &[]);
    (out.status.code(), text(&out))
}

#[test]
fn bad_feedback_fields_are_usage_errors_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = load_error(dir.path(), "  faults: [pause]\n  mode: bandit\n");
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("nemesis.mode")
            && err.contains("bandit")
            && err.contains("feedback")
            && err.contains("line 6 column"),
        "{err}"
    );
    let (code, err) = load_error(
        dir.path(),
        "  faults: [pause]\n  mode: feedback\n  feedback: {exploration: 11}\n",
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("from 0 to 10") && err.contains("line 7 column"),
        "{err}"
    );
    let (code, err) = load_error(
        dir.path(),
        "  faults: [pause]\n  mode: feedback\n  feedback: {staleness: -1}\n",
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("line 7 column"), "{err}");
    let (code, err) = load_error(
        dir.path(),
        "  faults: [pause]\n  feedback: {exploraton: 1}\n",
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("exploraton") && err.contains("exploration") && err.contains("line 6"),
        "{err}"
    );
    // A scripted timeline has nothing to choose: refused, naming both, at `nemesis`.
    let (code, err) = load_error(
        dir.path(),
        "  mode: feedback\n  timeline: [{at: 1s, fault: pause, for: 1s}]\n",
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("mode: feedback") && err.contains("timeline") && err.contains("line 4"),
        "{err}"
    );
    let (code, err) = load_error(dir.path(), "  mode: feedback\n");
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("`faults`"), "{err}");
}

/// One run of primary-backup under the feedback nemesis: every fault start carries the
/// reason it was chosen, and `nemesis.json` holds what was observed after each fault and the
/// arms' standing.
#[test]
fn a_feedback_run_records_each_choice_and_what_followed_it() {
    let test = "a_feedback_run_records_each_choice_and_what_followed_it";
    if !common::have_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("feedback.yaml");
    std::fs::write(
        &campaign,
        "name: feedback
system: {clusterkv: {arch: primary-backup, replication: async}}
nodes: 3
workload: {kind: kv, concurrency: 6, group_size: 3, ops_per_key: 100, rate: 150, timeout: 1s, recovery: 2s}
nemesis:
  mode: feedback
  faults: [partition, pause, kill]
  interval: 1s
  hold: 1500ms
  targets: [one]
  shapes: [halves]
",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = run(&campaign, &results, &["--time-limit", "14s", "--seed", "3"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run_dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap_or_else(|| panic!("no results directory in: {}", text(&out)));
    let run_dir = Path::new(run_dir.trim());

    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    let starts: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            e["process"] == "nemesis"
                && e["type"] == "invoke"
                && e["value"].get("chosen_for").is_some()
        })
        .collect();
    // 14 s of main phase, a fault every 2.5 s from 1 s: 5 faults.
    assert!(starts.len() >= 4, "{} chosen faults", starts.len());
    let reasons: Vec<&str> = starts
        .iter()
        .map(|e| e["value"]["chosen_for"].as_str().unwrap())
        .collect();
    // Each reason names the arm and its score; the first fault aims at the leader (no kind
    // tried yet: the leader bonus decides).
    for r in &reasons {
        assert!(
            r.contains(": score ") && r.contains("exploration"),
            "{reasons:?}"
        );
    }
    assert!(reasons[0].contains("not tried yet"), "{reasons:?}");
    assert!(
        reasons[0].starts_with("partition isolate-leader")
            || reasons[0].starts_with("pause primaries")
            || reasons[0].starts_with("kill primaries"),
        "{reasons:?}"
    );
    // Leader targeting is among the arms though the campaign names only `one`.
    let nemesis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("nemesis.json")).unwrap())
            .unwrap();
    let arms: Vec<&str> = nemesis["feedback"]["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["arm"].as_str().unwrap())
        .collect();
    assert!(
        arms.contains(&"pause primaries") && arms.contains(&"partition isolate-leader"),
        "{arms:?}"
    );
    let observations = nemesis["feedback"]["observations"].as_array().unwrap();
    assert!(observations.len() >= starts.len() - 1, "{observations:?}");
    for o in observations {
        let d = o["disturbance"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&d), "{o}");
        assert!(o["ok"].as_u64().unwrap() + o["failed"].as_u64().unwrap() > 0 || d > 0.0);
    }
    let faults = nemesis["schedule"]["faults"].as_array().unwrap();
    assert_eq!(faults.len(), starts.len());
    assert!(faults.iter().all(|f| f["chosen_for"].is_string()));
}
