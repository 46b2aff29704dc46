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
}

/// A missing input is EX_NOINPUT (66), said once.
#[test]
fn missing_file_exits_66_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist.jsonl");
    let out = splitbrain(&["check", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 66, "{}{}", text(&out.stdout), text(&out.stderr));
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert!(stderr.contains("cannot read"), "{stderr}");
    let both = format!("{stdout}{stderr}");
    assert_eq!(both.matches("No such file").count(), 1, "{both}");
}

/// Runs `check` on `content` written to `name`, with `extra` arguments first.
fn check_content(name: &str, content: &[u8], extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    splitbrain(&args)
}

/// The bad data of the issue: each was once dropped and judged valid; each is now 65,
/// naming the file, the line and (for syntax) the column.
#[test]
fn bad_data_anywhere_exits_65_naming_line_and_column() {
    let write_then_bad_read = |last: &str| {
        format!(
            "{}\n{}\n{}\n{last}",
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}"#,
            r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"read","value":null}"#,
        )
    };
    let deep_discards = format!(
        "{}{{:process 0 :type :invoke :f :read :value nil}}\n",
        "#_".repeat(9_100)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        // pr-str's one line, no trailing newline, with a ratio.
        (
            "ratio.edn",
            "[{:process 0 :type :invoke :f :write :value 1/2} {:process 0 :type :ok :f :write :value 1/2}]".to_owned(),
            ":1:48: expected a number",
        ),
        // A complete last JSONL line with a misspelt field, taking the violating read.
        (
            "eror.jsonl",
            write_then_bad_read(
                r#"{"index":3,"time":4,"process":1,"type":"ok","f":"read","value":2,"eror":null}"#,
            ),
            ":4: field eror: expected one of the fields",
        ),
        // An EDN last line with ##NaN, the same way.
        (
            "nan.edn",
            "{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value 1}\n{:process 1 :type :invoke :f :read :value nil}\n{:process 1 :type :ok :f :read :value ##NaN}".to_owned(),
            ":4:39: expected a set `#{`, a discard `#_` or a tag after `#`",
        ),
        ("hash.edn", "#".to_owned(), ":1:1: expected a set"),
        ("brackets.edn", "[".repeat(100_000), ":1:66: expected at most 64 levels of nesting"),
        ("brace.edn", "{".to_owned(), ":1:2: expected `}` closing the map"),
        ("set.edn", "#{".to_owned(), ":1:3: expected `}` closing the set"),
        ("discards.edn", deep_discards, ":1:131: expected at most 64 levels of nesting"),
        (
            "number.jsonl",
            format!(r#"{{"process":0,{}"#, "9".repeat(100_000)),
            ":1:14: expected a JSON object",
        ),
    ];
    for (name, content, expected) in cases {
        let out = check_content(name, content.as_bytes(), &[]);
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 65, "{name}: {}{stderr}", text(&out.stdout));
        assert!(
            stderr.contains(&format!("{name}{expected}")),
            "{name}: {stderr}"
        );
        assert!(!text(&out.stdout).contains(": valid"), "{name}");
    }
    // The same deep chain as an --initial-value is a usage error, not a crash.
    let out = check_content(
        "valid.jsonl",
        VALID.as_bytes(),
        &["--initial-value", &"#_".repeat(9_100)],
    );
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
}

/// Only a record of our recorder cut mid-write is forgiven, with a warning.
#[test]
fn a_truncated_recorder_line_is_a_warning() {
    let history = concat!(
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#,
        "\n",
        r#"{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}"#,
        "\n",
        r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"read","va"#,
    );
    let out = check_content("cut.jsonl", history.as_bytes(), &[]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("warning: line 3: unfinished last line dropped"),
        "{}",
        text(&out.stdout)
    );
}

/// An empty history, or one without client operations, is unknown: nothing was checked.
#[test]
fn empty_history_exits_2_no_operations() {
    let nemesis_only = r#"{"process":"nemesis","type":"info","f":"partition","value":null}"#;
    for (name, content) in [
        ("empty.jsonl", ""),
        ("blank.edn", "\n\n"),
        ("nemesis.jsonl", nemesis_only),
    ] {
        let out = check_content(name, content.as_bytes(), &[]);
        assert_eq!(
            code(&out),
            2,
            "{name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(&format!("{name}: unknown: no operations")),
            "{}",
            text(&out.stdout)
        );
    }
    // Operations, but none completed ok: nothing was observed.
    let unobserved = concat!(
        r#"{"process":0,"type":"invoke","f":"write","value":1}"#,
        "\n",
        r#"{"process":0,"type":"info","f":"write","value":1}"#,
        "\n",
    );
    let out = check_content("unobserved.jsonl", unobserved.as_bytes(), &[]);
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("unobserved.jsonl: unknown: no operation completed ok"),
        "{}",
        text(&out.stdout)
    );
    let out = check_content("empty.jsonl", b"", &["--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["verdict"], "unknown");
    assert!(doc["files"][0]["result"]["cause"]
        .as_str()
        .unwrap()
        .starts_with("no operations"));
}

/// /dev/zero is one endless line: bad data after the line limit, not all the memory.
#[test]
fn dev_zero_exits_65_within_the_line_limit() {
    let started = std::time::Instant::now();
    let out = splitbrain(&["check", "--max-line-size", "4MiB", "/dev/zero"]);
    assert_eq!(code(&out), 65, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("/dev/zero:1: expected a line of at most 4194304 bytes"),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// Two keys are invalid: the text says so and shows the first, --json carries both;
/// --first-failure stops at one.
#[test]
fn every_key_is_checked_and_every_counterexample_is_in_the_json() {
    let mut history = String::new();
    for key in 0..3 {
        let read = if key == 1 { 1 } else { 7 };
        for (kind, f, value) in [
            ("invoke", "write", "1"),
            ("ok", "write", "1"),
            ("invoke", "read", "null"),
            ("ok", "read", &*read.to_string()),
        ] {
            history.push_str(&format!(
                r#"{{"process":{key},"type":"{kind}","f":"{f}","key":{key},"value":{value}}}"#
            ));
            history.push('\n');
        }
    }
    let out = check_content("keys.jsonl", history.as_bytes(), &["--jobs", "1"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("2 of 3 keys invalid"), "{stdout}");
    assert_eq!(stdout.matches("counterexample (key").count(), 1, "{stdout}");

    let out = check_content("keys.jsonl", history.as_bytes(), &["--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = doc["files"][0]["result"]["keys"].as_array().unwrap();
    let with_counterexample = keys
        .iter()
        .filter(|k| k["counterexample"].is_object())
        .count();
    assert_eq!(with_counterexample, 2, "{doc}");

    let out = check_content(
        "keys.jsonl",
        history.as_bytes(),
        &["--json", "--first-failure", "--jobs", "1"],
    );
    assert_eq!(code(&out), 1);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = doc["files"][0]["result"]["keys"].as_array().unwrap();
    let invalid = keys.iter().filter(|k| k["verdict"] == "invalid").count();
    assert_eq!(invalid, 1, "{doc}");
}

/// A nil read after a write: invalid by default, with a one-line hint; valid as Knossos
/// reads it.
#[test]
fn nil_reads_value_or_unknown() {
    let history = concat!(
        r#"{"process":0,"type":"invoke","f":"write","value":1}"#,
        "\n",
        r#"{"process":0,"type":"ok","f":"write","value":1}"#,
        "\n",
        r#"{"process":1,"type":"invoke","f":"read","value":null}"#,
        "\n",
        r#"{"process":1,"type":"ok","f":"read","value":null}"#,
        "\n",
    );
    for model in ["register", "cas-register"] {
        let out = check_content("nil.jsonl", history.as_bytes(), &["--model", model]);
        assert_eq!(code(&out), 1, "{model}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.contains("Knossos") && l.contains("--nil-reads unknown"))
                .count(),
            1,
            "{stdout}"
        );
        let out = check_content(
            "nil.jsonl",
            history.as_bytes(),
            &["--model", model, "--nil-reads", "unknown"],
        );
        assert_eq!(code(&out), 0, "{model}: {}", text(&out.stdout));
    }
    // A nil read whose key stays invalid under Knossos' reading gets no note: write 1,
    // read nil, then read 2 that nobody wrote.
    let still_invalid = format!(
        "{history}{}\n{}\n",
        r#"{"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"process":1,"type":"ok","f":"read","value":2}"#
    );
    for nil_reads in ["value", "unknown"] {
        let out = check_content(
            "still.jsonl",
            still_invalid.as_bytes(),
            &["--model", "register", "--nil-reads", nil_reads],
        );
        assert_eq!(code(&out), 1, "{nil_reads}: {}", text(&out.stdout));
        assert!(
            !text(&out.stdout).contains("Knossos"),
            "{}",
            text(&out.stdout)
        );
    }
    // A violation that is not a nil read gets no such note.
    let out = check_content(
        "invalid.jsonl",
        INVALID.as_bytes(),
        &["--model", "register"],
    );
    assert_eq!(code(&out), 1);
    assert!(!text(&out.stdout).contains("Knossos"));
    // Only registers have that reading.
    let out = check_content(
        "nil.jsonl",
        history.as_bytes(),
        &["--model", "set", "--nil-reads", "unknown"],
    );
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    let out = check_content("nil.jsonl", history.as_bytes(), &["--nil-reads", "maybe"]);
    assert_eq!(code(&out), 64);
}

/// A check that lasts over two seconds says how far it is on stderr, not on stdout.
#[test]
fn a_long_check_prints_progress_on_stderr() {
    // 22 concurrent writes, then a read of a value nobody wrote: the search must try
    // every order of the writes, far more than the time limit allows.
    let mut history = String::new();
    for kind in ["invoke", "ok"] {
        for p in 0..22 {
            history.push_str(&format!(
                r#"{{"process":{p},"type":"{kind}","f":"write","value":{p}}}"#
            ));
            history.push('\n');
        }
    }
    history.push_str(r#"{"process":22,"type":"invoke","f":"read","value":null}"#);
    history.push('\n');
    history.push_str(r#"{"process":22,"type":"ok","f":"read","value":-1}"#);
    history.push('\n');
    let out = check_content(
        "slow.jsonl",
        history.as_bytes(),
        &[
            "--json",
            "--model",
            "register",
            "--time-limit",
            "5s",
            "--jobs",
            "1",
        ],
    );
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("slow.jsonl: ") && stderr.contains("keys 0 of 1 done"),
        "{stderr}"
    );
    assert!(stderr.contains("configurations explored"), "{stderr}");
    assert!(stderr.contains("memory "), "{stderr}");
    // stdout stays one JSON document.
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("one JSON document");
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
        vec!["check", "--max-line-size", "0", path],
        vec!["check", "--max-line-size", "1023B", path],
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

/// A reader that closes early (`check … | head -1`) is no crash: no panic, no 101, the
/// verdict's exit code, for the text and the JSON output and a run directory alike.
#[test]
fn a_closed_stdout_keeps_the_verdicts_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let valid = write(dir.path(), "valid.jsonl", VALID);
    let invalid = write(dir.path(), "invalid.jsonl", INVALID);
    for (file, expected) in [(&valid, 0), (&invalid, 1)] {
        for json in [false, true] {
            let (reader, writer) = std::io::pipe().unwrap();
            // Closed before the process starts: its first write meets a broken pipe.
            drop(reader);
            let mut command = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
            command.arg("check");
            if json {
                command.arg("--json");
            }
            let out = command
                .arg(file)
                .stdout(writer)
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap();
            let stderr = text(&out.stderr);
            assert_eq!(code(&out), expected, "{file:?} json {json}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(!stderr.contains("Broken pipe"), "{stderr}");
        }
    }
}

/// An endless pipe of short lines ends in bad data at the input limit, naming it; so does
/// a regular file over it, before anything is read.
#[test]
fn an_input_over_the_size_limit_exits_65() {
    let started = std::time::Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "yes '{{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}' | {} check --max-input-size 2MiB /dev/stdin",
            env!("CARGO_BIN_EXE_splitbrain")
        ))
        .output()
        .unwrap();
    assert_eq!(code(&out), 65, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("expected an input of at most 2097152 bytes (--max-input-size)"),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    let mut big = String::new();
    while big.len() <= 4096 {
        big.push_str(VALID);
    }
    let out = check_content("big.jsonl", big.as_bytes(), &["--max-input-size", "4KiB"]);
    assert_eq!(code(&out), 65, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("big.jsonl:1: expected an input of at most 4096 bytes"),
        "{}",
        text(&out.stderr)
    );
    let out = check_content(
        "valid.jsonl",
        VALID.as_bytes(),
        &["--max-input-size", "4KiB"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = check_content("valid.jsonl", VALID.as_bytes(), &["--max-input-size", "0"]);
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
}

/// A run directory whose controller was killed has no results.json: its history is a
/// prefix, so a clean check of it is `unknown`, said so, never `valid`. A directory
/// without history.jsonl is missing input (66).
#[test]
fn an_unfinished_run_directory_is_unknown_and_a_non_run_is_66() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let campaign = splitbrain::campaign::parse(
        "name: killed\nsystem: {in-memory: {}}\nworkload: {kind: register, concurrency: 2}\nchecker: {min_ok_per_key: 1}\n",
        Path::new("killed.yaml"),
    )
    .unwrap();
    splitbrain::results::write_json(&dir.join("campaign.json"), &campaign).unwrap();
    let dir_arg = dir.to_str().unwrap();

    let out = splitbrain(&["check", dir_arg]);
    assert_eq!(code(&out), 66, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no history.jsonl"),
        "{}",
        text(&out.stderr)
    );

    let with_time = VALID
        .lines()
        .enumerate()
        .map(|(i, line)| line.replacen('{', &format!("{{\"index\":{i},\"time\":{},", i * 1000), 1))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("history.jsonl"), with_time + "\n").unwrap();
    let out = splitbrain(&["check", dir_arg]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 2, "{stdout}{stderr}");
    assert!(stderr.contains("the run did not finish"), "{stderr}");
    assert!(
        stdout.contains("unknown: the run did not finish: the history is a prefix"),
        "{stdout}"
    );
    let out = splitbrain(&["check", "--json", dir_arg]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["verdict"], "unknown");
    assert_eq!(doc["finished"], false);
    assert_eq!(
        doc["cause"],
        "the run did not finish: the history is a prefix"
    );

    // With results.json (the run finished), the same history is valid.
    std::fs::write(dir.join("results.json"), "{}").unwrap();
    let out = splitbrain(&["check", dir_arg]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!text(&out.stderr).contains("did not finish"));
}
