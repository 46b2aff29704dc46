//! `results.json` keeps loading across format versions.

use splitbrain::analysis::{RunResults, RESULTS_FORMAT};
use splitbrain_checkers::Verdict;
use std::path::Path;

const STORED_FORMAT_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/results-format-1.json"
);

#[test]
fn a_results_file_written_before_the_format_field_loads() {
    let results = RunResults::load(Path::new(STORED_FORMAT_1)).unwrap();
    assert_eq!(results.format, 1);
    assert_eq!(results.verdict, Verdict::Valid);
    assert_eq!(results.campaign, "stored-kv");
    assert_eq!(results.seed, 7);
    // Format 1 stored latencies as [p50, p95, p99, max].
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(STORED_FORMAT_1).unwrap()).unwrap();
    let positional = &stored["operations"]["latency_ms"];
    let latency = results.operations.latency_ms;
    assert_eq!(latency.p50, positional[0].as_f64().unwrap());
    assert_eq!(latency.p95, positional[1].as_f64().unwrap());
    assert_eq!(latency.p99, positional[2].as_f64().unwrap());
    assert_eq!(latency.max, positional[3].as_f64().unwrap());
    assert_eq!(
        results.operation_count(),
        results.operations.ok
            + results.operations.fail
            + results.operations.info
            + results.operations.pending
    );
    assert!(results.operation_count() > 0);
    assert_eq!(
        results.checkers.len(),
        stored["checkers"].as_array().unwrap().len()
    );
}

#[test]
fn a_written_results_file_carries_the_current_format_and_loads_back() {
    let mut results = RunResults::load(Path::new(STORED_FORMAT_1)).unwrap();
    results.format = RESULTS_FORMAT;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(written["format"], RESULTS_FORMAT);
    assert!(written["operations"]["latency_ms"]["p99"].is_number());
    let back = RunResults::load(&path).unwrap();
    assert_eq!(back.format, RESULTS_FORMAT);
    assert_eq!(back.operations.latency_ms, results.operations.latency_ms);
}

#[test]
fn a_results_file_from_a_newer_format_is_refused_with_its_path() {
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(STORED_FORMAT_1).unwrap()).unwrap();
    stored["format"] = serde_json::json!(RESULTS_FORMAT + 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, stored.to_string()).unwrap();
    let error = RunResults::load(&path).unwrap_err().to_string();
    assert!(error.contains("results.json"), "{error}");
    assert!(error.contains("newer"), "{error}");
}
