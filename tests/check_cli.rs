//! `splitbrain check` end to end: the built binary on small files, its exit codes, its
//! messages and its JSON document.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn splitbrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .args(args)
        .output()
        .expect("the splitbrain binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

const VALID: &str = concat!(
    r#"{"process":0,"type":"invoke","f":"write","value":1}"#,
    "\n",
    r#"{"process":1,"type":"invoke","f":"read","value":null}"#,
    "\n",
    r#"{"process":0,"type":"ok","f":"write","value":1}"#,
    "\n",
    r#"{"process":1,"type":"ok","f":"read","value":1}"#,
    "\n",
);

/// A write of 1 completes, then a read that starts afterwards sees 2, which nobody wrote.
const INVALID: &str = concat!(
    r#"{"process":0,"type":"invoke","f":"write","value":1}"#,
    "\n",
    r#"{"process":0,"type":"ok","f":"write","value":1}"#,
    "\n",
    r#"{"process":1,"type":"invoke","f":"read","value":null}"#,
    "\n",
    r#"{"process":1,"type":"ok","f":"read","value":2}"#,
    "\n",
);

#[test]
fn valid_history_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "valid.jsonl", VALID);
    let out = splitbrain(&["check", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("valid.jsonl: valid"), "{stdout}");
    assert!(stdout.contains("read 4 events (jsonl)"), "{stdout}");
    assert!(stdout.contains("overall: valid"), "{stdout}");
}

#[test]
fn invalid_history_exits_1_with_a_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "invalid.jsonl", INVALID);
    let out = splitbrain(&["check", "--model", "register", file.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("counterexample"), "{stdout}");
    assert!(stdout.contains("invalid.jsonl: invalid"), "{stdout}");
    assert!(stdout.contains("overall: invalid"), "{stdout}");
}

#[test]
fn malformed_history_exits_65_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = VALID.replace(r#""type":"ok","f":"write""#, r#""type":"done","f":"write""#);
    let file = write(dir.path(), "bad.jsonl", &bad);
    let out = splitbrain(&["check", file.to_str().unwrap()]);
    assert_eq!(code(&out), 65, "{}{}", text(&out.stdout), text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3: field type: expected", file.display())),
        "{stderr}"
    );

    let missing = dir.path().join("does-not-exist.jsonl");
    let out = splitbrain(&["check", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 65);
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn history_that_does_not_fit_the_model_exits_65() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mutex.jsonl",
        concat!(
            r#"{"process":0,"type":"invoke","f":"frobnicate","value":1}"#,
            "\n",
            r#"{"process":0,"type":"ok","f":"frobnicate","value":1}"#,
            "\n"
        ),
    );
    let out = splitbrain(&["check", file.to_str().unwrap()]);
    assert_eq!(code(&out), 65, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stderr).contains("mutex.jsonl:1: event 0"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_usage_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "valid.jsonl", VALID);
    let path = file.to_str().unwrap();
    for args in [
        vec!["check"],
        vec!["check", "--model", "nonsense", path],
        vec!["check", "--format", "xml", path],
        vec!["check", "--time-limit", "soon", path],
        vec!["check", "--memory-budget", "lots", path],
        vec!["check", "--jobs", "0", path],
        vec!["check", "--initial-value", "[1", path],
    ] {
        let out = splitbrain(&args);
        assert_eq!(code(&out), 64, "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn json_report_parses_and_carries_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let valid = write(dir.path(), "valid.jsonl", VALID);
    let invalid = write(dir.path(), "invalid.jsonl", INVALID);
    let out = splitbrain(&[
        "check",
        "--json",
        "--time-limit",
        "30s",
        "--memory-budget",
        "256MiB",
        "--jobs",
        "1",
        valid.to_str().unwrap(),
        invalid.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["verdict"], "invalid");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["model"], "cas-register");
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["verdict"], "valid");
    assert_eq!(files[0]["format"], "jsonl");
    assert_eq!(files[0]["events"], 4);
    assert!(files[0]["parse_seconds"].as_f64().is_some());
    assert!(files[0]["check_seconds"].as_f64().is_some());
    assert_eq!(files[1]["verdict"], "invalid");
    assert!(files[1]["result"]["keys"][0]["counterexample"].is_object());
}

#[test]
fn edn_and_initial_value() {
    let edn =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("checkers/tests/data/knossos_vector.edn");
    let out = splitbrain(&["check", edn.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("(edn)"));

    // A read of 0 before any write is valid only when the register starts at 0.
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "zero.edn",
        "{:process 0 :type :invoke :f :read :value nil}\n{:process 0 :type :ok :f :read :value 0}\n",
    );
    let path = file.to_str().unwrap();
    assert_eq!(code(&splitbrain(&["check", path])), 1);
    assert_eq!(
        code(&splitbrain(&["check", "--initial-value", "0", path])),
        0
    );
}

#[test]
fn time_limit_reached_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "valid.jsonl", VALID);
    let out = splitbrain(&["check", "--time-limit", "1ns", file.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("time limit"), "{stdout}");
    assert!(stdout.contains("overall: unknown"), "{stdout}");
}
