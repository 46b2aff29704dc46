//! Reading speed of JSON Lines: a 1M-operation history (2,000,000 lines) must parse in well
//! under a second in release builds. Timing-sensitive, so ignored by default; run with
//! `cargo test --release -p splitbrain-checkers --test format_speed -- --ignored --nocapture`.

use splitbrain_checkers::formats::{jsonl, read_bytes, Format, ReadOptions};
use splitbrain_checkers::{Event, EventType, Process, Value};
use std::time::{Duration, Instant};

/// CPU time of this process so far (user + system, all threads), from /proc; the wall
/// clock alone misleads on a machine shared with other work.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // Linux reports in clock ticks of 1/100 s on every common configuration.
    Duration::from_millis(ticks * 10)
}

fn million_op_history() -> Vec<u8> {
    let mut buf = Vec::with_capacity(2_000_000 * 100);
    let mut event = Event {
        index: 0,
        time: None,
        process: Process::Client(0),
        kind: EventType::Invoke,
        f: String::new(),
        key: None,
        value: Value::Nil,
        node: Some("n1".into()),
        error: None,
    };
    for op in 0..1_000_000u64 {
        let process = op % 50;
        let f = ["read", "write", "cas"][(op % 3) as usize];
        let value = match f {
            "read" => Value::Nil,
            "write" => Value::Int(op as i64),
            _ => Value::List(vec![Value::Int(op as i64 - 1), Value::Int(op as i64)]),
        };
        for (i, kind) in [EventType::Invoke, EventType::Ok].into_iter().enumerate() {
            event.index = 2 * op + i as u64;
            event.time = Some(1_000 * event.index);
            event.process = Process::Client(process);
            event.kind = kind;
            event.f = f.to_owned();
            event.key = Some(Value::Int((op / 1000) as i64));
            event.value = value.clone();
            jsonl::write_event(&mut buf, &event).unwrap();
        }
    }
    buf
}

#[test]
#[ignore = "timing; run in release"]
fn two_million_lines_parse_in_well_under_a_second() {
    let data = million_op_history();
    let opts = ReadOptions {
        format: Some(Format::Jsonl),
        ..ReadOptions::default()
    };
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let cpu_start = cpu_time();
        let out = read_bytes(&data, &opts).unwrap();
        best = best.min(start.elapsed());
        println!(
            "wall {:.3} s, cpu {:.2} s",
            start.elapsed().as_secs_f64(),
            (cpu_time() - cpu_start).as_secs_f64()
        );
        assert_eq!(out.history.events.len(), 2_000_000);
    }
    println!(
        "2,000,000 lines ({} MB): best of 3 {:.3} s",
        data.len() / 1_000_000,
        best.as_secs_f64()
    );
    if !cfg!(debug_assertions) {
        assert!(best < Duration::from_millis(900), "took {best:?}");
    }
}

#[test]
#[ignore = "timing experiment"]
fn floor() {
    let data = million_op_history();
    let start = Instant::now();
    let mut n = 0;
    for line in data.split(|&b| b == b'\n') {
        if !line.is_empty() {
            let _: serde::de::IgnoredAny = serde_json::from_slice(line).unwrap();
            n += 1;
        }
    }
    println!("ignored-any {n}: {:?}", start.elapsed());
    let start = Instant::now();
    for line in data.split(|&b| b == b'\n') {
        if !line.is_empty() {
            let _: serde_json::Value = serde_json::from_slice(line).unwrap();
        }
    }
    println!("json value: {:?}", start.elapsed());
}
