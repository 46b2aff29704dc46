//! report.html in a real headless browser (Debian's `chromium`): the page renders offline,
//! its script runs without errors, and the rendered DOM holds the verdict, the operations on
//! the timeline, the fault windows and the counterexample. Skipped, with the reason printed,
//! when chromium is not installed.

mod common;

use splitbrain::analysis::RunFacts;
use splitbrain::campaign;
use splitbrain::report;
use splitbrain_checkers::{Event, EventType, History, Process, Value, Verdict};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

/// How long the browser may take before the test gives up on it.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// Loads `page` headless and returns (rendered DOM, browser log).
fn render(browser: &Path, page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let (dom_path, log_path) = (out_dir.path().join("dom"), out_dir.path().join("log"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        std::fs::read_to_string(dom_path).unwrap(),
        std::fs::read_to_string(log_path).unwrap(),
    )
}

const MS: u64 = 1_000_000;

fn event(index: usize, ms: u64, process: Process, kind: EventType, f: &str, value: Value) -> Event {
    Event {
        index: index as u64,
        time: Some(ms * MS),
        process,
        kind,
        f: f.to_owned(),
        key: (process != Process::Nemesis).then_some(Value::Int(1)),
        value,
        node: match process {
            Process::Client(p) => Some(format!("n{}", p % 3 + 1)),
            Process::Nemesis => None,
        },
        error: None,
    }
}

/// Writes, reads and a partition; a stale read at the end makes it invalid.
fn invalid_history() -> History {
    let mut events = Vec::new();
    let op =
        |events: &mut Vec<Event>, from: u64, to: u64, p: u64, f: &str, kind: EventType, v: i64| {
            let invoke = if f == "read" {
                Value::Nil
            } else {
                Value::Int(v)
            };
            let n = events.len();
            events.push(event(
                n,
                from,
                Process::Client(p),
                EventType::Invoke,
                f,
                invoke,
            ));
            events.push(event(n + 1, to, Process::Client(p), kind, f, Value::Int(v)));
        };
    let strs =
        |items: &[&str]| Value::List(items.iter().map(|s| Value::Str((*s).into())).collect());
    let nemesis = |events: &mut Vec<Event>, ms: u64, kind: EventType, f: &str, evidence: &str| {
        let n = events.len();
        let mut fields = vec![
            (Value::Str("id".into()), Value::Int(1)),
            (Value::Str("shape".into()), Value::Str("halves".into())),
            (Value::Str("evidence".into()), strs(&[evidence])),
        ];
        // Roles from the system's role query: n1 leads before, n2 after the heal.
        if kind == EventType::Info && f == "start-partition" {
            fields.push((
                Value::Str("roles_before".into()),
                strs(&[
                    "n1: leader (term 1)",
                    "n2: follower (term 1)",
                    "n3: follower (term 1)",
                ]),
            ));
        }
        if kind == EventType::Info && f == "stop-partition" {
            fields.push((
                Value::Str("roles_after".into()),
                strs(&[
                    "n1: follower (term 2)",
                    "n2: leader (term 2)",
                    "n3: no answer (timed out)",
                ]),
            ));
        }
        let value = Value::Map(fields);
        events.push(event(n, ms, Process::Nemesis, kind, f, value));
    };
    for i in 0..20u64 {
        op(
            &mut events,
            i * 100,
            i * 100 + 60,
            i % 3,
            "write",
            EventType::Ok,
            i as i64,
        );
        if i == 8 {
            nemesis(&mut events, 850, EventType::Invoke, "start-partition", "");
            nemesis(
                &mut events,
                860,
                EventType::Info,
                "start-partition",
                "n1->n2: blocked",
            );
        }
        if i == 14 {
            nemesis(&mut events, 1450, EventType::Invoke, "stop-partition", "");
            nemesis(
                &mut events,
                1460,
                EventType::Info,
                "stop-partition",
                "n1->n2: reachable",
            );
        }
    }
    op(&mut events, 2000, 2050, 0, "write", EventType::Fail, 7);
    op(&mut events, 2100, 2150, 1, "read", EventType::Ok, 19);
    op(&mut events, 2200, 2250, 2, "read", EventType::Ok, 3);
    History::new(events)
}

#[test]
fn report_html_renders_offline_without_script_errors() {
    let Some(browser) = chromium() else {
        common::skip(
            "report_html_renders_offline_without_script_errors",
            common::Need::Chromium,
            "chromium is not installed (apt-get install chromium)",
        );
        return;
    };
    let c = campaign::parse(
        "name: browser\nsystem: {in-memory: {}}\nworkload: {kind: cas-register, concurrency: 3}\nchecker: {min_ok_per_key: 1}\n",
        Path::new("browser.yaml"),
    )
    .unwrap();
    let facts = RunFacts {
        campaign: &c,
        seed: 11,
        run_id: "b0b0b0",
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        main_elapsed: Duration::from_secs(2),
        interrupted: false,
        node_deaths: Vec::new(),
    };
    let history = invalid_history();
    let checked = report::check_and_summarise(&history, &facts).unwrap();
    assert_eq!(checked.verdict, Verdict::Invalid, "{}", checked.table);
    let dir = tempfile::tempdir().unwrap();
    report::write_run_results(dir.path(), &history, &facts, &checked).unwrap();

    let (dom, log) = render(&browser, &dir.path().join("report.html"));
    assert!(
        dom.contains(r#"data-rendered="yes""#),
        "the page script did not finish; browser log:\n{log}"
    );
    let errors = dom
        .split(r#"id="script-errors""#)
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_default();
    assert!(
        errors
            .trim_start_matches(" hidden=\"\"")
            .trim_start_matches('>')
            .is_empty(),
        "script errors on the page: {errors}"
    );
    for bad in ["Uncaught", "ERROR:CONSOLE", "net::ERR_"] {
        assert!(!log.contains(bad), "browser log has {bad}:\n{log}");
    }
    assert!(dom.contains(r#"class="verdict invalid""#));
    assert!(dom.contains("INVALID"));
    // The script counted what the browser actually laid out.
    assert!(
        dom.contains("23 operations and 1 fault windows drawn on the timeline."),
        "{}",
        dom.split("drawn-counts")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>()
    );
    assert!(dom.contains(r#"class="fault-window" data-kind="partition""#));
    assert!(dom.contains(r#"class="cex culprit""#));
    assert!(dom.contains("n1-&gt;n2: blocked"));

    // Fault windows are hatched (a pattern, not the vermillion of failed operations).
    assert!(dom.contains(r#"<pattern id="fault-hatch""#));
    // A nemesis lane, and a lane per node with its role over time.
    assert!(dom.contains(r#"<svg id="lanes""#));
    assert!(dom.contains(r#"class="nemesis-fault" data-kind="partition""#));
    for (role, node) in [
        ("leader", "n1"),
        ("leader", "n2"),
        ("follower", "n3"),
        ("unknown", "n3"),
    ] {
        assert!(
            dom.contains(&format!(r#"class="role {role}" data-node="{node}""#)),
            "{role} lane of {node}"
        );
    }
    // Latency and throughput split by function and outcome.
    assert!(dom.contains(r#"class="pt ok f-write""#));
    assert!(dom.contains(r#"class="pt fail f-write""#));
    for (f, outcome) in [("write", "ok"), ("read", "ok"), ("write", "fail")] {
        assert!(
            dom.contains(&format!(
                r#"class="tp" data-f="{f}" data-outcome="{outcome}""#
            )),
            "throughput series {f} {outcome}"
        );
    }
    // The counterexample's bars carry the operation, and hovering one shows the model
    // state after it.
    assert!(dom.contains(r#"class="cex-label""#));
    assert!(dom.contains("✗ read → 3 @n3"), "the culprit's label");
    assert!(
        dom.contains(r#"data-state="state after it: 19""#),
        "{}",
        dom.split("counterexample")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take(3000)
            .collect::<String>()
    );
    assert!(dom.contains(r#"id="cex-detail""#));
    // The summary table in a monospace font with box-drawing glyphs, lines set tight.
    assert!(dom.contains(r#"<pre class="table">"#));
    assert!(dom.contains(r#"<meta charset="utf-8">"#));
}

/// A valid run: the report draws each key's linearization, every operation placed in it
/// laid out by the browser, each with the model state after it.
#[test]
fn report_html_shows_the_linearization_of_a_valid_run() {
    let Some(browser) = chromium() else {
        common::skip(
            "report_html_shows_the_linearization_of_a_valid_run",
            common::Need::Chromium,
            "chromium is not installed (apt-get install chromium)",
        );
        return;
    };
    let c = campaign::parse(
        "name: browser\nsystem: {in-memory: {}}\nworkload: {kind: cas-register, concurrency: 3}\nchecker: {min_ok_per_key: 1}\nnemesis: {require_effect: false}\n",
        Path::new("browser.yaml"),
    )
    .unwrap();
    let facts = RunFacts {
        campaign: &c,
        seed: 12,
        run_id: "c0c0c0",
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        main_elapsed: Duration::from_secs(2),
        interrupted: false,
        node_deaths: Vec::new(),
    };
    // The same history, but the last read sees the last write: linearizable.
    let mut history = invalid_history();
    let last = history.events.len() - 1;
    history.events[last].value = Value::Int(19);
    let checked = report::check_and_summarise(&history, &facts).unwrap();
    assert_eq!(checked.verdict, Verdict::Valid, "{}", checked.table);
    let dir = tempfile::tempdir().unwrap();
    report::write_run_results(dir.path(), &history, &facts, &checked).unwrap();

    let (dom, log) = render(&browser, &dir.path().join("report.html"));
    assert!(
        dom.contains(r#"data-rendered="yes""#),
        "the page script did not finish; browser log:\n{log}"
    );
    assert!(!dom.contains(r#"id="counterexample""#));
    // 20 ok writes and 2 ok reads; the failed write is not linearized.
    let lane = dom
        .split(r#"<g class="linearization""#)
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_else(|| panic!("no linearization lane in the page"));
    assert!(lane.contains(r#"data-key="1""#), "{lane}");
    assert!(lane.contains(r#"data-ops="22""#), "{lane}");
    assert!(lane.contains(r#"data-drawn="22""#), "laid out: {lane}");
    // In order: the last operation placed is the read of 19, the state after it 19.
    assert!(
        dom.contains(r#"data-order="22" data-state="state after it: 19""#),
        "{}",
        dom.split(r#"id="linearization""#)
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take(3000)
            .collect::<String>()
    );
    let last_title = dom
        .split("<title>linearized 22 of 22: ")
        .nth(1)
        .and_then(|rest| rest.split("</title>").next())
        .expect("the last operation's title");
    assert!(last_title.contains("read nil → 19 — ok"), "{last_title}");
    assert!(dom.contains(r#"id="lin-detail""#));
    assert!(dom.contains("22 operations linearized, 0 indeterminate left out"));
}
