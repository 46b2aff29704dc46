//! What a run leaves for people and CI: the summary (availability in and out of faults,
//! faults with evidence, counterexample in words), results.json, history.edn (read back by
//! an independent EDN parser), junit.xml, report.html; `check RUN_DIR`, `report`, and the
//! `run` flags `--quiet`, `--json`, `--junit`. No privileges needed: in-memory runs and
//! synthetic histories.

mod common;

use splitbrain::analysis::{self, RunFacts};
use splitbrain::campaign::{self, Campaign};
use splitbrain::report;
use splitbrain::run::{run, RunOptions};
use splitbrain_checkers::{Event, EventType, History, Process, Value, Verdict};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn campaign(yaml: &str) -> Campaign {
    campaign::parse(yaml, Path::new("test.yaml")).unwrap()
}

const MEM_KV: &str = "name: mem-report\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 4, \
     group_size: 2, ops_per_key: 40, duration: 2s, max_ops: 400, recovery: 0s}\nchecker: {min_ok_per_key: 5}\n";

fn in_memory_run(root: &Path, name: &str, seed: u64) -> PathBuf {
    let c = campaign(&MEM_KV.replace("mem-report", name));
    let opts = RunOptions {
        results_root: root.to_owned(),
        seed: Some(seed),
        ..RunOptions::default()
    };
    let report = run(&c, &opts, CancellationToken::new()).unwrap();
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary);
    report.dir
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_splitbrain"))
}

const MS: u64 = 1_000_000;

/// A history builder: client and nemesis events with times in milliseconds.
#[derive(Default)]
struct Builder {
    events: Vec<Event>,
}

impl Builder {
    fn push(
        &mut self,
        ms: u64,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<i64>,
        value: Value,
    ) -> &mut Self {
        self.events.push(Event {
            index: self.events.len() as u64,
            time: Some(ms * MS),
            process,
            kind,
            f: f.to_owned(),
            key: key.map(Value::Int),
            value,
            node: Some("n1".into()),
            error: None,
        });
        self
    }
    /// One whole client operation on key 1.
    fn op(
        &mut self,
        from: u64,
        to: u64,
        p: u64,
        f: &str,
        kind: EventType,
        value: Value,
    ) -> &mut Self {
        let invoke_value = if f == "read" {
            Value::Nil
        } else {
            value.clone()
        };
        self.push(
            from,
            Process::Client(p),
            EventType::Invoke,
            f,
            Some(1),
            invoke_value,
        );
        self.push(to, Process::Client(p), kind, f, Some(1), value)
    }
    fn nemesis(
        &mut self,
        ms: u64,
        kind: EventType,
        f: &str,
        fields: Vec<(&str, Value)>,
    ) -> &mut Self {
        let map = Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (Value::Str(k.to_owned()), v))
                .collect(),
        );
        self.push(ms, Process::Nemesis, kind, f, None, map)
    }
    fn history(&self) -> History {
        History::new(self.events.clone())
    }
}

fn strs(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::Str((*s).to_owned())).collect())
}

/// Ops before, during and after a partition of n1 (1 s to 2 s): two of the three ops during
/// the partition fail, all others succeed. `invalid` adds a stale read at the end.
fn faulted_history(invalid: bool) -> History {
    let mut b = Builder::default();
    b.op(0, 100, 0, "write", EventType::Ok, Value::Int(1))
        .op(200, 300, 1, "read", EventType::Ok, Value::Int(1))
        .nemesis(
            1000,
            EventType::Invoke,
            "start-partition",
            vec![
                ("id", Value::Int(1)),
                ("shape", Value::Str("isolate-one".into())),
            ],
        )
        .nemesis(
            1010,
            EventType::Info,
            "start-partition",
            vec![
                ("id", Value::Int(1)),
                ("took_us", Value::Int(9000)),
                ("shape", Value::Str("isolate-one".into())),
                (
                    "evidence",
                    strs(&[
                        "n2->n1: blocked (Invalid argument (os error 22))",
                        "n2->n3: reachable",
                    ]),
                ),
            ],
        )
        .op(1100, 1200, 0, "write", EventType::Fail, Value::Int(2))
        .op(1300, 1400, 1, "read", EventType::Fail, Value::Nil)
        .op(1500, 1600, 2, "write", EventType::Ok, Value::Int(3))
        .nemesis(
            2000,
            EventType::Invoke,
            "stop-partition",
            vec![("id", Value::Int(1))],
        )
        .nemesis(
            2020,
            EventType::Info,
            "stop-partition",
            vec![
                ("id", Value::Int(1)),
                ("evidence", strs(&["n2->n1: reachable"])),
            ],
        )
        .op(2100, 2200, 0, "read", EventType::Ok, Value::Int(3));
    if invalid {
        // 1 was overwritten by 3 long before: a stale read no order explains.
        b.op(2300, 2400, 1, "read", EventType::Ok, Value::Int(1));
    } else {
        b.op(2300, 2400, 1, "read", EventType::Ok, Value::Int(3));
    }
    b.history()
}

const REGISTER: &str = "name: synthetic\nsystem: {in-memory: {}}\nworkload: {kind: cas-register, concurrency: 3}\nchecker: {min_ok_per_key: 1}\n";

fn facts(c: &Campaign) -> RunFacts<'_> {
    RunFacts {
        campaign: c,
        seed: 7,
        run_id: "abc123",
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        main_elapsed: Duration::from_millis(2500),
        interrupted: false,
        node_deaths: Vec::new(),
    }
}

/// Writes a synthetic run directory (as a run leaves it) and returns it.
fn synthetic_run(root: &Path, history: &History) -> PathBuf {
    let c = campaign(REGISTER);
    let dir = root.join("synthetic").join("20250101T000000Z-abc123");
    std::fs::create_dir_all(&dir).unwrap();
    splitbrain::results::write_json(&dir.join("campaign.json"), &c).unwrap();
    let mut jsonl = Vec::new();
    splitbrain_checkers::formats::jsonl::write_history(&mut jsonl, &history.events).unwrap();
    std::fs::write(dir.join("history.jsonl"), jsonl).unwrap();
    let f = facts(&c);
    let checked = report::check_and_summarise(history, &f).unwrap();
    report::write_run_results(&dir, history, &f, &checked).unwrap();
    dir
}

#[test]
fn availability_is_split_by_fault_windows_and_faults_carry_their_evidence() {
    let history = faulted_history(false);
    let a = analysis::analyse(&history);
    assert_eq!(a.faults.len(), 1);
    let w = &a.faults[0];
    assert_eq!(w.kind, "partition");
    assert_eq!(w.id, Some(1));
    assert_eq!(
        (w.start_ns, w.in_force_ns, w.end_ns),
        (1000 * MS, Some(1010 * MS), Some(2020 * MS))
    );
    assert!(w.description.contains("isolate-one"), "{}", w.description);
    assert!(
        w.evidence.iter().any(|e| e.contains("n2->n1: blocked")),
        "{:?}",
        w.evidence
    );
    assert!(
        w.evidence
            .iter()
            .any(|e| e == "after heal: n2->n1: reachable"),
        "{:?}",
        w.evidence
    );
    assert_eq!(a.ops.operations(), 7);
    assert_eq!((a.during_faults.operations, a.during_faults.ok), (3, 1));
    assert_eq!((a.healthy.operations, a.healthy.ok), (4, 4));
    assert!((a.during_faults.availability - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(a.healthy.availability, 1.0);
    assert_eq!(a.by_fault["partition"].operations, 3);
    // Latencies are all 100 ms.
    assert!(
        (a.ops.latency_ms.p99 - 100.0).abs() < 1e-6,
        "{:?}",
        a.ops.latency_ms
    );

    let c = campaign(REGISTER);
    let history = with_partition_shown_in_effect(history);
    let checked = report::check_and_summarise(&history, &facts(&c)).unwrap();
    assert_eq!(checked.verdict, Verdict::Valid, "{}", checked.table);
    let t = &checked.table;
    for needle in [
        "during faults",
        "33.3% ok of 3 ops",
        "while healthy",
        "100.0% ok of 4 ops",
        "1 injected (partition 1)",
        "isolate-one",
        "n2->n1: blocked",
        "p99 100.0ms",
        "VALID",
    ] {
        assert!(t.contains(needle), "summary lacks {needle:?}:\n{t}");
    }
    assert_eq!(
        serde_json::to_value(&checked.results).unwrap()["availability"]["healthy"]["operations"],
        4
    );
    assert_eq!(
        serde_json::to_value(&checked.results).unwrap()["fault_kinds"],
        serde_json::json!(["partition"])
    );
}

#[test]
fn an_invalid_run_explains_itself_in_the_summary_junit_and_html() {
    let root = tempfile::tempdir().unwrap();
    let history = faulted_history(true);
    let dir = synthetic_run(root.path(), &history);

    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("INVALID"), "{summary}");
    assert!(summary.contains("counterexample"), "{summary}");
    assert!(summary.contains("is not linearizable"), "{summary}");
    assert!(summary.contains("✗ process 1 read"), "{summary}");

    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(junit.test_suites.len(), 1);
    let cases = &junit.test_suites[0].test_cases;
    assert_eq!(
        cases.len(),
        3,
        "a case per checker (linearizable, evidence, fault effect): {xml}"
    );
    assert!(
        cases.iter().any(|c| c.name.as_str() == "fault effect"),
        "{xml}"
    );
    let lin = cases
        .iter()
        .find(|c| c.name.as_str().starts_with("linearizable"))
        .unwrap();
    match &lin.status {
        quick_junit::TestCaseStatus::NonSuccess {
            kind: quick_junit::NonSuccessKind::Failure,
            description: Some(text),
            ..
        } => assert!(text.as_str().contains("is not linearizable"), "{text:?}"),
        other => panic!("expected a failure with the counterexample, got {other:?}"),
    }

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(r#"class="verdict invalid""#));
    assert!(html.contains(r#"id="counterexample""#));
    assert!(html.contains(r#"class="cex culprit""#));
    assert!(html.contains(r#"class="cex prefix""#));
    assert!(html.contains(r#"class="fault-window" data-kind="partition""#));
    // Self-contained: nothing fetched from anywhere.
    for remote in ["http://", "https://", "src=\"", "<link"] {
        assert!(!html.contains(remote), "report.html refers to {remote}");
    }

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["verdict"], "invalid");

    // `check RUN_DIR` agrees, with the run's own settings: exit 1.
    let out = binary().arg("check").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("INVALID"), "{stdout}");
}

#[test]
fn unknown_is_a_junit_error_not_a_pass() {
    // Too little evidence: min_ok_per_key 50 with a handful of ok operations.
    let c = campaign(&REGISTER.replace("min_ok_per_key: 1", "min_ok_per_key: 50"));
    let history = faulted_history(false);
    let f = facts(&c);
    let checked = report::check_and_summarise(&history, &f).unwrap();
    assert_eq!(checked.verdict, Verdict::Unknown);
    let xml = report::junit::to_xml(&report::junit::report([report::junit::suite(&f, &checked)]))
        .unwrap();
    assert!(xml.contains("<error"), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn in_memory_run_writes_every_result_and_history_edn_reads_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = in_memory_run(root.path(), "mem-report", 3);
    for file in [
        "summary.txt",
        "results.json",
        "history.edn",
        "junit.xml",
        "report.html",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let latest = std::fs::canonicalize(root.path().join("latest")).unwrap();
    assert_eq!(latest, std::fs::canonicalize(&dir).unwrap());

    // The EDN is the same history as the JSONL, through our reader...
    let read = |name: &str| {
        splitbrain_checkers::formats::read_file(&dir.join(name), &Default::default())
            .unwrap()
            .history
    };
    let (jsonl, edn) = (read("history.jsonl"), read("history.edn"));
    assert!(jsonl.events.len() > 400);
    assert_eq!(jsonl, edn);

    // ...and `check` accepts the run directory and the EDN file alike.
    let out = binary().arg("check").arg(&dir).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = binary()
        .args(["check", "--model", "kv"])
        .arg(dir.join("history.edn"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let cases = &junit.test_suites[0].test_cases;
    assert!(cases
        .iter()
        .all(|c| matches!(c.status, quick_junit::TestCaseStatus::Success { .. })));
}

/// Reads history.edn with Python's `edn_format` (an EDN parser that is not ours) and
/// compares every event with the JSONL.
#[test]
fn history_edn_reads_back_with_an_independent_edn_parser() {
    let probe = Command::new("python3")
        .args(["-c", "import edn_format"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        common::skip(
            "history_edn_reads_back_with_an_independent_edn_parser",
            common::Need::EdnFormat,
            "needs python3 with edn_format (pip install edn_format)",
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // Nemesis events carry nested maps and lists: include some.
    let history = faulted_history(false);
    let dir = synthetic_run(root.path(), &history);
    let run_dir = in_memory_run(root.path(), "mem-edn", 5);
    for dir in [dir, run_dir] {
        let script = r#"
import edn_format, json, sys
from edn_format import Keyword
def plain(v):
    if isinstance(v, Keyword): return v.name
    if isinstance(v, (list, tuple, edn_format.immutable_list.ImmutableList)): return [plain(x) for x in v]
    if isinstance(v, (dict, edn_format.immutable_dict.ImmutableDict)): return {plain(k): plain(x) for k, x in v.items()}
    return v
out = []
for line in open(sys.argv[1]):
    if line.strip():
        out.append(plain(edn_format.loads(line)))
json.dump(out, sys.stdout)
"#;
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(dir.join("history.edn"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let history = splitbrain::run::load_history(&dir).unwrap();
        assert_eq!(parsed.len(), history.events.len());
        for (p, e) in parsed.iter().zip(&history.events) {
            assert_eq!(p["index"], e.index);
            assert_eq!(p["time"], serde_json::json!(e.time));
            assert_eq!(p["type"], e.kind.as_str());
            assert_eq!(p["f"], e.f.as_str());
            match e.process {
                Process::Client(n) => assert_eq!(p["process"], n),
                Process::Nemesis => assert_eq!(p["process"], "nemesis"),
            }
            // Our JSON rendering of the value equals the EDN parser's (keywords as names).
            assert_eq!(
                p["value"],
                serde_json::to_value(&e.value).unwrap(),
                "event {}",
                e.index
            );
            assert_eq!(
                p.get("key").cloned().unwrap_or_default(),
                serde_json::to_value(&e.key).unwrap()
            );
        }
    }
}

#[test]
fn report_lists_runs_newest_first_filters_and_prints_json() {
    let root = tempfile::tempdir().unwrap();
    let first = in_memory_run(root.path(), "mem-a", 1);
    // Run directories are stamped to the second.
    std::thread::sleep(Duration::from_millis(1100));
    let second = in_memory_run(root.path(), "mem-b", 2);
    let out = binary().arg("report").arg(root.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let (a, b) = (text.find("mem-a").unwrap(), text.find("mem-b").unwrap());
    assert!(b < a, "newest first:\n{text}");
    for column in [
        "campaign",
        "system",
        "faults",
        "ops",
        "availability",
        "p99",
        "verdict",
        "in-memory",
        "valid",
    ] {
        assert!(text.contains(column), "{column}:\n{text}");
    }
    // `latest` is not listed twice.
    assert_eq!(text.matches("mem-b").count(), 1, "{text}");

    let out = binary()
        .args(["report", "--json", "--campaign", "mem-a"])
        .arg(root.path())
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["campaign"], "mem-a");
    assert_eq!(rows[0]["verdict"], "valid");
    assert_eq!(PathBuf::from(rows[0]["dir"].as_str().unwrap()), first);
    assert!(rows[0]["operations"].as_u64().unwrap() >= 400);
    let _ = second;
}

fn write_campaign(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, MEM_KV.replace("mem-report", name)).unwrap();
    path
}

#[test]
fn run_quiet_prints_only_the_verdict_line_and_writes_junit() {
    let root = tempfile::tempdir().unwrap();
    let file = write_campaign(root.path(), "mem-quiet");
    let junit = root.path().join("ci.xml");
    let out = binary()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--seed", "4", "--test-count", "2", "--results"])
        .arg(root.path().join("results"))
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one verdict line per run: {stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("VALID mem-quiet on in-memory")),
        "{stdout}"
    );
    assert!(
        out.stderr.is_empty(),
        "quiet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report =
        quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&junit).unwrap())
            .unwrap();
    assert_eq!(report.test_suites.len(), 2, "a suite per run");
    assert_eq!(report.tests, 4);
    assert_eq!(report.failures + report.errors, 0);
}

#[test]
fn run_json_prints_the_results_document_and_progress_goes_to_stderr() {
    let root = tempfile::tempdir().unwrap();
    let file = write_campaign(root.path(), "mem-json");
    let out = binary()
        .arg("run")
        .arg(&file)
        .args(["--json", "--seed", "4", "--results"])
        .arg(root.path().join("results"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["verdict"], "valid");
    assert_eq!(doc["campaign"], "mem-json");
    assert!(doc["operations"]["ok"].as_u64().unwrap() > 0);
    assert!(doc["checkers"].as_array().unwrap().len() >= 2);
}

#[test]
fn progress_counts_operations_and_active_faults_from_history_lines() {
    let mut counts = report::progress::Counts::default();
    let history = faulted_history(false);
    let mut jsonl = Vec::new();
    // Up to the middle of the partition.
    let upto: Vec<Event> = history
        .events
        .iter()
        .filter(|e| e.time.unwrap() <= 1500 * MS)
        .cloned()
        .collect();
    splitbrain_checkers::formats::jsonl::write_history(&mut jsonl, &upto).unwrap();
    for line in String::from_utf8(jsonl).unwrap().lines() {
        counts.observe(line);
    }
    assert_eq!(counts.invoked, 5);
    assert_eq!((counts.ok, counts.not_ok), (2, 2));
    assert_eq!((counts.faults_active, counts.faults_started), (1, 1));
    let line = counts.line(Duration::from_secs(3), Duration::from_secs(10));
    assert_eq!(line, "ops 5, 50.0% ok, faults active 1 (1 so far), 3s/10s");
}

#[test]
fn html_report_of_a_large_run_is_sampled_and_says_so() {
    // 100,000 operations over 100 s with a fault window: the page stays small.
    let mut b = Builder::default();
    b.nemesis(
        40_000,
        EventType::Invoke,
        "kill",
        vec![("id", Value::Int(1))],
    )
    .nemesis(
        40_010,
        EventType::Info,
        "kill",
        vec![
            ("id", Value::Int(1)),
            ("nodes", strs(&["n2"])),
            (
                "evidence",
                strs(&["n2: pid Some(42), cgroup.kill: no task left"]),
            ),
        ],
    )
    .nemesis(
        50_000,
        EventType::Invoke,
        "start",
        vec![("id", Value::Int(1))],
    )
    .nemesis(
        50_500,
        EventType::Info,
        "start",
        vec![("id", Value::Int(1))],
    );
    let mut events = b.events;
    for i in 0..100_000u64 {
        let t = i * MS;
        let p = i % 10;
        for (kind, dt) in [(EventType::Invoke, 0), (EventType::Ok, MS / 2)] {
            events.push(Event {
                index: 0,
                time: Some(t + dt),
                process: Process::Client(p),
                kind,
                f: "write".into(),
                key: Some(Value::Int((i / 100) as i64)),
                value: Value::Int(i as i64),
                node: None,
                error: None,
            });
        }
    }
    events.sort_by_key(|e| e.time);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    let history = History::new(events);
    let c = campaign("name: big\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 10}\n");
    let f = facts(&c);
    let analysis = analysis::analyse(&history);
    assert_eq!(analysis.faults.len(), 1);
    assert_eq!(analysis.during_faults.operations, 10_501);
    let checked = report::Checked {
        verdict: Verdict::Valid,
        table: String::new(),
        results: analysis::RunResults::new(&f, &analysis, Verdict::Valid, Vec::new()),
        analysis,
    };
    let html = report::html::render(&f, &history, &checked);
    let drawn = html.matches(r#"<rect class="op "#).count();
    assert!(drawn <= report::html::MAX_TIMELINE_OPS, "{drawn} ops drawn");
    assert!(
        drawn >= report::html::MAX_TIMELINE_OPS / 2,
        "{drawn} ops drawn"
    );
    assert!(
        html.contains("Sampled: 1 in 34 operations is drawn (2942 of 100000)"),
        "sampling is said"
    );
    eprintln!("report.html of 100,000 operations: {} bytes", html.len());
    assert!(html.len() < 2 << 20, "{} bytes", html.len());
}

/// `faulted_history` plus a pause whose evidence says it did not take effect and a clock
/// bump whose evidence says it did.
fn history_with_a_fault_that_did_not_bite(invalid: bool) -> History {
    let mut b = Builder {
        events: faulted_history(invalid).events,
    };
    let last = b.events.last().and_then(|e| e.time).unwrap_or(0) / MS;
    let (t0, t1) = (last + 10, last + 200);
    b.nemesis(
        t0,
        EventType::Invoke,
        "pause",
        vec![("id", Value::Int(2)), ("targets", strs(&["n3"]))],
    )
    .nemesis(
        t0 + 5,
        EventType::Info,
        "pause",
        vec![
            ("id", Value::Int(2)),
            ("nodes", strs(&["n3"])),
            ("evidence", strs(&["n3: pid 4242, cgroup.events frozen 0"])),
            ("effective", Value::Bool(false)),
        ],
    )
    .nemesis(
        t0 + 50,
        EventType::Invoke,
        "resume",
        vec![("id", Value::Int(2))],
    )
    .nemesis(
        t0 + 55,
        EventType::Info,
        "resume",
        vec![("id", Value::Int(2))],
    )
    .nemesis(
        t1,
        EventType::Invoke,
        "clock-bump",
        vec![("id", Value::Int(3)), ("targets", strs(&["n2"]))],
    )
    .nemesis(
        t1 + 5,
        EventType::Info,
        "clock-bump",
        vec![
            ("id", Value::Int(3)),
            ("nodes", strs(&["n2"])),
            ("observed", strs(&["n2: +30001ms"])),
            ("effective", Value::Bool(true)),
        ],
    )
    .nemesis(
        t1 + 50,
        EventType::Invoke,
        "clock-reset",
        vec![("id", Value::Int(3))],
    )
    .nemesis(
        t1 + 55,
        EventType::Info,
        "clock-reset",
        vec![("id", Value::Int(3))],
    );
    b.history()
}

#[test]
fn a_fault_that_did_not_take_effect_makes_the_run_unknown_and_is_shown() {
    let history = history_with_a_fault_that_did_not_bite(false);
    let a = analysis::analyse(&history);
    let effective: Vec<Option<bool>> = a.faults.iter().map(|w| w.effective).collect();
    assert_eq!(effective, [None, Some(false), Some(true)]);

    let c = campaign(REGISTER);
    let checked = report::check_and_summarise(&history, &facts(&c)).unwrap();
    assert_eq!(checked.verdict, Verdict::Unknown, "{}", checked.table);
    let t = &checked.table;
    for needle in [
        "1 of 3 faults did not take effect: pause #2",
        "NOT IN EFFECT",
        "n3: pid 4242, cgroup.events frozen 0",
        "UNKNOWN",
    ] {
        assert!(t.contains(needle), "summary lacks {needle:?}:\n{t}");
    }
    let effect = &serde_json::to_value(&checked.results).unwrap()["fault_effect"];
    assert_eq!(
        (
            &effect["faults"],
            &effect["in_effect"],
            &effect["not_in_effect"],
            &effect["unverified"],
            &effect["required"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(true)
        )
    );

    // The campaign can relax it for faults it cannot verify; still shown, not counted.
    let relaxed =
        campaign(&REGISTER.replace("checker:", "nemesis: {require_effect: false}\nchecker:"));
    assert!(!relaxed.nemesis.require_effect);
    assert!(campaign(REGISTER).nemesis.require_effect, "default: true");
    let checked = report::check_and_summarise(&history, &facts(&relaxed)).unwrap();
    assert_eq!(checked.verdict, Verdict::Valid, "{}", checked.table);
    assert!(checked.table.contains("not counted"), "{}", checked.table);
    assert!(checked.table.contains("NOT IN EFFECT"), "{}", checked.table);

    // An invalid history stays invalid.
    let invalid = history_with_a_fault_that_did_not_bite(true);
    let checked = report::check_and_summarise(&invalid, &facts(&c)).unwrap();
    assert_eq!(checked.verdict, Verdict::Invalid, "{}", checked.table);

    // The stored run: red in the HTML, a column in `report`, exit 2 from `check RUN_DIR`.
    let root = tempfile::tempdir().unwrap();
    let dir = synthetic_run(root.path(), &history);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(r#"id="faults-not-in-effect""#), "banner");
    assert!(
        html.contains(r#"<tr class="fault not-in-effect">"#),
        "red row"
    );
    assert!(html.contains("n3: pid 4242, cgroup.events frozen 0"));
    assert!(html.contains("1 of 3 faults did not take effect"));
    let out = binary().arg("check").arg(&dir).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = binary().arg("report").arg(root.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not in effect") && text.contains("1 of 3"),
        "{text}"
    );
    let out = binary()
        .args(["report", "--json"])
        .arg(root.path())
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["faults_injected"], 3);
    assert_eq!(rows[0]["faults_not_in_effect"], 1);
}

/// Keys 1 to 4 on a register each: a write of 1, then a write of 2, then a read; keys 2 and
/// 4 read the overwritten 1 (stale, invalid), keys 1 and 3 read 2.
fn history_with_two_invalid_keys() -> History {
    let mut b = Builder::default();
    let mut t = 0;
    for key in 1..=4i64 {
        let read = if key % 2 == 0 { 1 } else { 2 };
        for (f, kind, value) in [
            ("write", EventType::Ok, Value::Int(1)),
            ("write", EventType::Ok, Value::Int(2)),
            ("read", EventType::Ok, Value::Int(read)),
        ] {
            let invoke = if f == "read" {
                Value::Nil
            } else {
                value.clone()
            };
            let p = Process::Client(key as u64);
            b.push(t, p, EventType::Invoke, f, Some(key), invoke);
            b.push(t + 5, p, kind, f, Some(key), value);
            t += 10;
        }
    }
    b.history()
}

#[test]
fn every_key_is_checked_and_every_invalid_key_reported() {
    let history = history_with_two_invalid_keys();
    let c = campaign(REGISTER);
    let checked = report::check_and_summarise(&history, &facts(&c)).unwrap();
    assert_eq!(checked.verdict, Verdict::Invalid, "{}", checked.table);
    let t = &checked.table;
    assert!(t.contains("2 of 4 keys invalid"), "{t}");
    assert!(
        t.contains("key 2 is not linearizable"),
        "first counterexample:\n{t}"
    );
    assert_eq!(
        serde_json::to_value(&checked.results).unwrap()["invalid_keys"],
        serde_json::json!([2, 4]),
        "{}",
        serde_json::to_value(&checked.results).unwrap()
    );
    let document = serde_json::to_value(&checked.results).unwrap();
    let keys = document["checkers"][0]["result"]["keys"]
        .as_array()
        .unwrap();
    let verdicts: Vec<&str> = keys
        .iter()
        .map(|k| k["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["valid", "invalid", "valid", "invalid"]);
    for k in keys.iter().filter(|k| k["verdict"] == "invalid") {
        assert!(k["counterexample"].is_object(), "{k}");
    }
    assert!(!serde_json::to_value(&checked.results)
        .unwrap()
        .to_string()
        .contains("not checked"));
}

#[test]
fn on_a_terminal_the_faults_that_did_not_take_effect_are_red() {
    let history = history_with_a_fault_that_did_not_bite(false);
    let c = campaign(REGISTER);
    let checked = report::check_and_summarise(&history, &facts(&c)).unwrap();
    let coloured = report::table::for_terminal(&checked.table);
    let red: Vec<&str> = coloured
        .lines()
        .filter(|l| l.starts_with("\x1b[31m"))
        .collect();
    assert!(
        red.iter().any(|l| l.contains("NOT IN EFFECT")),
        "{coloured}"
    );
    assert!(red.iter().all(|l| l.ends_with("\x1b[0m")));
    assert!(!checked.table.contains('\x1b'), "summary.txt stays plain");
}

/// A partition whose records carry the roles before it and after its heal.
fn history_with_roles(after: &[&str]) -> History {
    let mut b = Builder::default();
    b.op(0, 100, 0, "write", EventType::Ok, Value::Int(1))
        .nemesis(
            200,
            EventType::Invoke,
            "start-partition",
            vec![("id", Value::Int(1))],
        )
        .nemesis(
            210,
            EventType::Info,
            "start-partition",
            vec![
                ("id", Value::Int(1)),
                (
                    "roles_before",
                    strs(&["n1: leader (term 1)", "n2: follower (term 1)"]),
                ),
            ],
        )
        .nemesis(
            900,
            EventType::Invoke,
            "stop-partition",
            vec![("id", Value::Int(1))],
        )
        .nemesis(
            910,
            EventType::Info,
            "stop-partition",
            vec![("id", Value::Int(1)), ("roles_after", strs(after))],
        )
        .op(1000, 1100, 1, "read", EventType::Ok, Value::Int(1));
    b.history()
}

#[test]
fn leader_changes_are_read_from_the_roles_before_and_after_each_fault() {
    let changed = analysis::analyse(&history_with_roles(&[
        "n1: follower (term 2)",
        "n2: leader (term 2)",
    ]));
    assert_eq!(
        changed.faults[0].evidence[0],
        "leader: n1 (term 1) before, n2 (term 2) after heal: changed"
    );
    assert_eq!(analysis::leader_changes(&changed.faults), Some(1));
    let electing = analysis::analyse(&history_with_roles(&[
        "n1: follower (term 2)",
        "n2: no answer (timed out)",
    ]));
    assert_eq!(
        electing.faults[0].evidence[0],
        "leader: n1 (term 1) before, none after heal: no node led right after the heal"
    );
    assert_eq!(analysis::leader_changes(&electing.faults), Some(0));
    // Without role records (a system that cannot say) nothing is claimed.
    let none = analysis::analyse(&faulted_history(false));
    assert_eq!(analysis::leader_changes(&none.faults), None);
    assert!(!none.faults[0].evidence[0].starts_with("leader:"));
}

#[test]
fn an_interrupted_run_is_unknown_everywhere_unless_already_invalid() {
    let c = campaign(REGISTER);
    let history = with_partition_shown_in_effect(faulted_history(false));
    let f = RunFacts {
        interrupted: true,
        ..facts(&c)
    };
    let checked = report::check_and_summarise(&history, &f).unwrap();
    assert_eq!(checked.verdict, Verdict::Unknown, "{}", checked.table);
    assert_eq!(checked.results.verdict, Verdict::Unknown);
    assert!(checked.results.interrupted);
    assert_eq!(checked.results.cause.as_deref(), Some("interrupted"));
    assert!(checked.table.contains("UNKNOWN"), "{}", checked.table);
    assert!(!checked.table.contains("VALID\n"), "{}", checked.table);
    let root = tempfile::tempdir().unwrap();
    report::write_run_results(root.path(), &history, &f, &checked).unwrap();
    let xml = std::fs::read_to_string(root.path().join("junit.xml")).unwrap();
    assert!(
        xml.contains("<error") && xml.contains("interrupted"),
        "{xml}"
    );
    let html = std::fs::read_to_string(root.path().join("report.html")).unwrap();
    assert!(
        html.contains(r#"class="verdict unknown">UNKNOWN"#),
        "verdict banner"
    );
    assert!(html.contains("(interrupted)"));

    // Not interrupted, the same history is valid; interrupted and invalid stays invalid.
    let checked = report::check_and_summarise(&history, &facts(&c)).unwrap();
    assert_eq!(checked.verdict, Verdict::Valid, "{}", checked.table);
    assert_eq!(checked.results.cause, None);
    let invalid = with_partition_shown_in_effect(faulted_history(true));
    let checked = report::check_and_summarise(&invalid, &f).unwrap();
    assert_eq!(checked.verdict, Verdict::Invalid, "{}", checked.table);
}

/// `history` with its partition's evidence saying it took effect (as a run records it).
fn with_partition_shown_in_effect(history: History) -> History {
    let mut events = history.events;
    for e in events.iter_mut().filter(|e| {
        e.process == Process::Nemesis && e.kind == EventType::Info && e.f == "start-partition"
    }) {
        if let Value::Map(fields) = &mut e.value {
            fields.push((Value::Str("effective".into()), Value::Bool(true)));
        }
    }
    History::new(events)
}

#[test]
fn a_fault_with_no_evidence_of_effect_is_not_shown_in_effect() {
    // faulted_history's partition records no `effective`: nothing shows it took effect.
    let history = faulted_history(false);
    let c = campaign(REGISTER);
    let checked = report::check_and_summarise(&history, &facts(&c)).unwrap();
    assert_eq!(checked.verdict, Verdict::Unknown, "{}", checked.table);
    assert!(
        checked
            .table
            .contains("1 of 1 faults not shown in effect (no evidence): partition #1"),
        "{}",
        checked.table
    );
    // `require_effect: false` relaxes it for faults that cannot be verified.
    let relaxed =
        campaign(&REGISTER.replace("checker:", "nemesis: {require_effect: false}\nchecker:"));
    let checked = report::check_and_summarise(&history, &facts(&relaxed)).unwrap();
    assert_eq!(checked.verdict, Verdict::Valid, "{}", checked.table);
    assert!(
        checked.table.contains("not verifiable"),
        "{}",
        checked.table
    );
    // With evidence it passes under the default.
    let shown = with_partition_shown_in_effect(history);
    let checked = report::check_and_summarise(&shown, &facts(&c)).unwrap();
    assert_eq!(checked.verdict, Verdict::Valid, "{}", checked.table);
}

#[test]
fn report_flags_runs_it_cannot_read_and_exits_65() {
    let root = tempfile::tempdir().unwrap();
    let good = in_memory_run(root.path(), "mem-readable", 5);
    let broken_results = in_memory_run(root.path(), "mem-bad-results", 6);
    std::fs::write(broken_results.join("results.json"), "{\"verdict\": ").unwrap();
    let broken_campaign = in_memory_run(root.path(), "mem-bad-campaign", 7);
    std::fs::write(broken_campaign.join("campaign.json"), "not json").unwrap();
    let out = binary().arg("report").arg(root.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{stdout}{stderr}");
    assert!(!stdout.contains("not finished"), "{stdout}");
    assert_eq!(stdout.matches("unreadable").count(), 2, "{stdout}");
    for dir in [&broken_results, &broken_campaign] {
        assert!(
            stderr.contains(&dir.display().to_string()),
            "{} named: {stderr}",
            dir.display()
        );
    }
    assert!(
        stderr.contains("results.json") && stderr.contains("campaign.json"),
        "{stderr}"
    );
    // The good run alone is still a clean exit.
    let out = binary().arg("report").arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// `keys` keys of `per_key` sequential writes each.
fn writes_on_keys(keys: usize, per_key: usize) -> History {
    let mut events = Vec::new();
    for k in 0..keys {
        for i in 0..per_key {
            for kind in [EventType::Invoke, EventType::Ok] {
                events.push(Event {
                    index: events.len() as u64,
                    time: Some(events.len() as u64 * MS),
                    process: Process::Client(0),
                    kind,
                    f: "write".into(),
                    key: Some(Value::Int(k as i64)),
                    value: Value::Int(i as i64),
                    node: None,
                    error: None,
                });
            }
        }
    }
    History::new(events)
}

#[test]
fn a_valid_run_small_enough_to_draw_carries_its_linearizations_outside_results_json() {
    use analysis::{MAX_LINEARIZED_KEYS, MAX_LINEARIZED_OPS_PER_KEY};
    assert!(analysis::drawable_keys(&writes_on_keys(
        MAX_LINEARIZED_KEYS,
        MAX_LINEARIZED_OPS_PER_KEY
    )));
    assert!(!analysis::drawable_keys(&writes_on_keys(
        MAX_LINEARIZED_KEYS + 1,
        1
    )));
    assert!(!analysis::drawable_keys(&writes_on_keys(
        1,
        MAX_LINEARIZED_OPS_PER_KEY + 1
    )));

    let c = campaign(REGISTER);
    let f = facts(&c);
    let linearizations = |checked: &report::Checked| -> Vec<usize> {
        checked
            .results
            .checkers
            .iter()
            .flat_map(|o| &o.linearizations)
            .map(|(_, lin)| lin.ops.len())
            .collect()
    };
    // Two ok writes and three ok reads are placed; the failed ones are not.
    let valid = report::check_and_summarise(&faulted_history(false), &f).unwrap();
    assert_eq!(linearizations(&valid), [5]);
    let html = report::html::render(&f, &faulted_history(false), &valid);
    assert!(
        html.contains(r#"class="linearization" data-key="1" data-ops="5">"#),
        "{}",
        &html[html.find("id=\"linearization\"").unwrap_or(0)..][..400]
    );
    let json = serde_json::to_string(&valid.results).unwrap();
    assert!(!json.contains("linearization"), "{json}");

    let invalid = report::check_and_summarise(&faulted_history(true), &f).unwrap();
    assert!(linearizations(&invalid).is_empty());
    let html = report::html::render(&f, &faulted_history(true), &invalid);
    assert!(!html.contains(r#"id="linearization""#));
    // An invalid run with valid keys: neither drawn nor in results.json.
    let some_valid = report::check_and_summarise(&history_with_two_invalid_keys(), &f).unwrap();
    assert_eq!(some_valid.verdict, Verdict::Invalid);
    assert!(linearizations(&some_valid).is_empty());
    let json = serde_json::to_string(&some_valid.results).unwrap();
    assert!(!json.contains("linearization"), "{json}");

    // Too many keys to draw: the check is not asked for them.
    let many =
        report::check_and_summarise(&writes_on_keys(MAX_LINEARIZED_KEYS + 1, 2), &f).unwrap();
    assert!(linearizations(&many).is_empty());
}
