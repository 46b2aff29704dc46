//! `splitbrain check --model list-append|rw-register`: transactional histories end to end,
//! through the built binary: verdicts, exit codes, explanations, JSON, bad data.

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

/// T1 read key 2 empty though T0 appended to it, while T0's append to key 1 precedes T1's:
/// a G-single (snapshot isolation and serializability forbid it, read committed allows it).
const G_SINGLE: &str = "\
{:process 0, :type :invoke, :f :txn, :value [[:append 1 1] [:append 2 1]]}
{:process 1, :type :invoke, :f :txn, :value [[:append 1 2] [:r 2 nil]]}
{:process 0, :type :ok, :f :txn, :value [[:append 1 1] [:append 2 1]]}
{:process 1, :type :ok, :f :txn, :value [[:append 1 2] [:r 2 []]]}
{:process 2, :type :invoke, :f :txn, :value [[:r 1 nil]]}
{:process 2, :type :ok, :f :txn, :value [[:r 1 [1 2]]]}
";

#[test]
fn g_single_is_invalid_under_serializable_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "g-single.edn", G_SINGLE);
    let f = file.to_str().unwrap();
    let out = splitbrain(&[
        "check",
        f,
        "--model",
        "list-append",
        "--consistency",
        "serializable",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 1, "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("forbidden by serializable: G-single"),
        "{stdout}"
    );
    assert!(
        stdout.contains("T1 read key 2 empty, T0 appended 1, its first value: rw"),
        "{stdout}"
    );
    assert!(
        stdout.contains("compatible with: read-committed, read-uncommitted"),
        "{stdout}"
    );
    assert!(stdout.contains("g-single.edn: invalid"), "{stdout}");

    let out = splitbrain(&[
        "check",
        f,
        "--model",
        "list-append",
        "--consistency",
        "read-committed",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));

    let out = splitbrain(&[
        "check",
        f,
        "--model",
        "list-append",
        "--consistency",
        "snapshot-isolation",
        "--json",
    ]);
    assert_eq!(code(&out), 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "invalid");
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["consistency"], "snapshot-isolation");
    let result = &json["files"][0]["result"];
    assert_eq!(result["forbidden"][0], "G-single");
    let anomaly = &result["anomalies"][0];
    assert_eq!(anomaly["type"], "G-single");
    assert_eq!(anomaly["cycle"].as_array().unwrap().len(), 2);
}

#[test]
fn valid_json_lines_history_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let content = concat!(
        r#"{"process":0,"type":"invoke","f":"txn","value":[["w",1,1]]}"#,
        "\n",
        r#"{"process":0,"type":"ok","f":"txn","value":[["w",1,1]]}"#,
        "\n",
        r#"{"process":1,"type":"invoke","f":"txn","value":[["r",1,null]]}"#,
        "\n",
        r#"{"process":1,"type":"ok","f":"txn","value":[["r",1,1]]}"#,
        "\n",
    );
    let file = write(dir.path(), "valid.jsonl", content);
    let out = splitbrain(&["check", file.to_str().unwrap(), "--model", "rw-register"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("no anomalies found"), "{stdout}");
    assert!(stdout.contains("strict-serializable"), "{stdout}");
}

#[test]
fn bad_data_is_65_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let content = "{:process 0, :type :invoke, :f :txn, :value [[:append 1 1]]}\n\
                   {:process 0, :type :ok, :f :txn, :value [[:append 1 1]]}\n\
                   {:process 1, :type :invoke, :f :txn, :value [[:append 1 :x]]}\n";
    let file = write(dir.path(), "bad.edn", content);
    let out = splitbrain(&["check", file.to_str().unwrap(), "--model", "list-append"]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 65, "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("bad.edn:3:"), "{stderr}");
    assert!(stderr.contains("integer value"), "{stderr}");
}

#[test]
fn a_missing_file_is_66() {
    let out = splitbrain(&["check", "/nonexistent/h.edn", "--model", "list-append"]);
    assert_eq!(code(&out), 66, "{}", text(&out.stderr));
}

#[test]
fn consistency_needs_a_transactional_model() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.edn", G_SINGLE);
    let out = splitbrain(&[
        "check",
        file.to_str().unwrap(),
        "--consistency",
        "serializable",
    ]);
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    let out = splitbrain(&[
        "check",
        file.to_str().unwrap(),
        "--model",
        "list-append",
        "--consistency",
        "linearizable",
    ]);
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("strict-serializable"));
}
