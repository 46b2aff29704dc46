//! History readers and writers: Jepsen EDN (tagged records, multi-line maps, Knossos
//! vectors, independent tuples), Jepsen log lines, our JSON Lines; located errors; the
//! truncated last record, bad data anywhere else, depth and size limits; round trips.

use rand::{Rng, SeedableRng};
use splitbrain_checkers::formats::{
    self, edn, jsonl, read_bytes, read_file, BytesError, DataError, Format, Independent, ReadError,
    ReadOptions,
};
use splitbrain_checkers::{Event, EventType, History, Process, Value};
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> formats::ReadOutput {
    read_file(&data(name), &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn read_with(bytes: &str, format: Option<Format>) -> Result<formats::ReadOutput, DataError> {
    let opts = ReadOptions {
        format,
        ..ReadOptions::default()
    };
    match read_bytes(bytes.as_bytes(), &opts) {
        Ok(out) => Ok(out),
        Err(BytesError::Data(e)) => Err(e),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn kw(s: &str) -> Value {
    Value::Keyword(s.to_owned())
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

#[test]
fn jepsen_tagged_records_multiline_maps_comments_and_discards() {
    let out = read("jepsen_records.edn");
    assert_eq!(out.format, Format::Edn);
    assert!(!out.independent);
    let events = &out.history.events;
    // Nine ops; the `#_` discarded map is not among them.
    assert_eq!(events.len(), 9, "{events:#?}");
    assert!(events.iter().all(|e| e.process != Process::Client(7)));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
    }
    assert_eq!(events[0].kind, EventType::Invoke);
    assert_eq!(events[0].f, "write");
    assert_eq!(events[0].value, Value::Int(1));
    assert_eq!(events[0].time, Some(1000));

    // The multi-line record: its line is where it starts, the comment inside is skipped.
    assert_eq!(out.lines[3], 6);
    assert_eq!(events[3].kind, EventType::Ok);
    assert_eq!(events[3].value, Value::Int(1));
    assert_eq!(events[3].node.as_deref(), Some("n2"));

    let nemesis = &events[4];
    assert_eq!(nemesis.process, Process::Nemesis);
    assert_eq!(nemesis.f, "start-partition");
    assert_eq!(
        nemesis.value,
        list(vec![Value::Str("n1".into()), Value::Str("n2".into())])
    );

    assert_eq!(events[5].value, list(vec![Value::Int(1), Value::Int(2)]));
    assert_eq!(events[6].kind, EventType::Fail);
    assert_eq!(events[6].error, Some(kw("compare-failed")));

    let quoted = Value::Str("a \"quoted\"\tvalue\u{e9}".into());
    assert_eq!(events[7].value, quoted);
    assert_eq!(events[8].kind, EventType::Info);
    assert_eq!(
        events[8].error,
        Some(list(vec![kw("timeout"), Value::Str("after 1s".into())]))
    );
    // Process 3's write ended in info: indeterminate, but completed, so no warning.
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn knossos_vector_of_maps_is_not_split_when_cas_values_are_plain() {
    let out = read("knossos_vector.edn");
    assert_eq!(out.format, Format::Edn);
    assert!(
        !out.independent,
        "a cas-register's [3 4] must not be taken for a tuple"
    );
    let events = &out.history.events;
    assert_eq!(events.len(), 8);
    assert_eq!(out.lines, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(events.iter().all(|e| e.key.is_none()));
    assert_eq!(events[4].f, "cas");
    assert_eq!(events[4].value, list(vec![Value::Int(3), Value::Int(4)]));
    assert_eq!(events[7].value, Value::Int(4));
}

#[test]
fn knossos_independent_tuples_become_keys() {
    let out = read("knossos_independent.edn");
    assert!(out.independent);
    let e = &out.history.events;
    assert_eq!(e.len(), 9);
    assert_eq!(e[0].key, Some(Value::Int(1)));
    assert_eq!(e[0].value, Value::Int(3));
    assert_eq!(e[1].key, Some(Value::Int(2)));
    assert_eq!(e[1].value, Value::Nil);
    assert_eq!(e[4].key, Some(Value::Int(1)));
    assert_eq!(e[4].value, list(vec![Value::Int(3), Value::Int(5)]));
    // The nemesis op is left alone.
    assert_eq!(e[5].process, Process::Nemesis);
    assert_eq!(e[5].key, None);
    // The info completion carries no tuple; it takes the key of its invocation.
    assert_eq!(e[6].key, Some(Value::Int(1)));
    assert_eq!(e[6].value, kw("timed-out"));
    assert_eq!(e[8].key, Some(Value::Int(1)));
    assert_eq!(e[8].value, Value::Int(5));
    assert_eq!(e[8].time, Some(60));
}

#[test]
fn independent_can_be_forced_or_turned_off() {
    let off = read_file(
        &data("knossos_independent.edn"),
        &ReadOptions {
            independent: Independent::Off,
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert!(!off.independent);
    assert_eq!(
        off.history.events[0].value,
        list(vec![Value::Int(1), Value::Int(3)])
    );

    let forced = read_file(
        &data("knossos_vector.edn"),
        &ReadOptions {
            independent: Independent::Force,
            ..ReadOptions::default()
        },
    );
    let err = forced.unwrap_err().to_string();
    assert!(
        err.ends_with(
            "knossos_vector.edn:1: field value: expected an independent [key value] tuple, found 3"
        ),
        "{err}"
    );
}

#[test]
fn jepsen_log_lines_with_tabs_or_spaces() {
    let out = read("etcd_sample.log");
    assert_eq!(out.format, Format::JepsenLog);
    let e = &out.history.events;
    assert_eq!(e.len(), 7);
    assert_eq!(out.lines, vec![2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(e[0].process, Process::Client(0));
    assert_eq!(e[0].kind, EventType::Invoke);
    assert_eq!(e[0].f, "read");
    assert_eq!(e[0].value, Value::Nil);
    assert_eq!(e[1].value, list(vec![Value::Int(3), Value::Int(0)]));
    assert_eq!(e[2].value, Value::Int(3));
    // Runs of spaces instead of tabs, and a value with a space inside.
    assert_eq!(e[3].kind, EventType::Fail);
    assert_eq!(e[3].value, list(vec![Value::Int(3), Value::Int(0)]));
    assert_eq!(e[5].kind, EventType::Info);
    assert_eq!(e[5].value, kw("timed-out"));
    assert_eq!(e[6].process, Process::Nemesis);
    // No tuples here: writes carry plain integers.
    assert!(!out.independent);
    // The two log messages are ignored, and said to be.
    assert!(
        out.warnings.iter().any(|w| w
            .starts_with("2 line(s) without the `jepsen.util - ` marker ignored")
            && w.ends_with("(the first is line 1)")),
        "{:?}",
        out.warnings
    );
}

/// An op line whose marker is damaged is bad data, not a log message: skipping it would
/// lose the read that makes this history invalid.
#[test]
fn a_jepsen_log_op_line_without_the_exact_marker_is_bad_data() {
    let good = "INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
                INFO  jepsen.util - 0\t:ok\t:write\t1\n\
                INFO  jepsen.util - 1\t:invoke\t:read\tnil\n";
    for (damaged, column) in [
        ("INFO  jepsen.utll - 1\t:ok\t:read\t2\n", 21),
        ("INFO  jepsen.util- 1\t:ok\t:read\t2\n", 20),
        ("1\t:ok\t:read\t2\n", 1),
        ("INFO  jepsen.util-  :nemesis :info :start nil\n", 21),
    ] {
        let err = read_with(&format!("{good}{damaged}"), None).unwrap_err();
        assert_eq!(err.line, 4, "{damaged:?}: {err}");
        assert_eq!(err.column, Some(column), "{damaged:?}: {err}");
        assert!(
            err.expected.contains("the marker `jepsen.util - `"),
            "{err}"
        );
    }
    // Log messages that merely mention a type are no ops.
    let out = read_with(
        &format!("{good}INFO  jepsen.core - worker 1 got :ok after 3 tries\nWARN x - 1 :ok\n"),
        None,
    )
    .unwrap();
    assert_eq!(out.history.events.len(), 3);
}

#[test]
fn jepsen_log_errors_name_the_field() {
    let err = read_with(
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:done\t:read\t3\n",
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "2: field type: expected one of :invoke, :ok, :fail, :info, found `:done`"
    );
    let err = read_with("INFO  jepsen.util - x\t:invoke\t:read\tnil\n", None).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("process"));
    let err = read_with("INFO  jepsen.util - 1\t:invoke\t:write\t1.5\n", None).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("value"));
    assert!(err.expected.contains("floating-point"), "{err}");
}

#[test]
fn edn_errors_name_file_line_and_field() {
    let err = read_file(&data("bad_type.edn"), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, ReadError::Data { .. }));
    let message = err.to_string();
    assert!(
        message.ends_with(
            "bad_type.edn:3: field :type: expected one of :invoke, :ok, :fail, :info, found :done"
        ),
        "{message}"
    );

    let missing = read_with("{:process 0 :type :invoke :value 1}\n", None).unwrap_err();
    assert_eq!(missing.to_string(), "1: field :f: expected to be present");

    let unclosed = read_with(
        "{:process 0 :type :invoke :f :read :value nil}\n[{:process 1\n\n{:process 2}\n",
        None,
    )
    .unwrap_err();
    assert!(
        unclosed
            .to_string()
            .contains("expected `}` closing the map opened on line 2"),
        "{unclosed}"
    );

    let float_value = read_with(
        "{:process 0 :type :invoke :f :write\n :value 2.5}\n",
        Some(Format::Edn),
    )
    .unwrap_err();
    assert_eq!(float_value.line, 2);
    assert_eq!(float_value.field.as_deref(), Some(":value"));

    let bad_process =
        read_with("{:process -1 :type :invoke :f :read :value nil}\n", None).unwrap_err();
    assert_eq!(
        bad_process.to_string(),
        "1: field :process: expected a non-negative integer or :nemesis, found -1"
    );

    let not_an_op = read_with("[1 2 3]\n", None).unwrap_err();
    assert!(not_an_op.expected.starts_with("an op map"), "{not_an_op}");

    let odd_map = read_with("{:process 0 :type}\n", None).unwrap_err();
    assert!(
        odd_map.to_string().contains("a value for every key"),
        "{odd_map}"
    );
}

/// Clojure's reader rejects a map with a duplicate key and a set with a duplicate element;
/// taking the first (or last) value silently would judge data nobody wrote.
#[test]
fn edn_duplicate_map_keys_and_set_elements_are_bad_data() {
    let history = "{:process 0 :type :invoke :f :write :value 1}\n\
                   {:process 0 :type :ok :f :write :value 1}\n\
                   {:process 1 :type :invoke :f :read}\n\
                   {:process 1 :type :ok :f :read :value 1 :value 2}\n";
    let err = read_with(history, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "4:41: expected a map without a duplicate key, found :value again (first on line 4)"
    );

    for (text, line, column) in [
        // Keys equal as values: a list and a vector, maps in another order, across lines.
        (
            "{:process 0 :type :invoke :f :read :value {[1 2] 3 (1 2) 4}}\n",
            1,
            52,
        ),
        (
            "{:process 0 :type :invoke :f :read\n :value {{:a 1 :b 2} 3 {:b 2 :a 1} 4}}\n",
            2,
            24,
        ),
        (
            "{:process 0 :type :invoke :f :read :value #{1 2 1}}\n",
            1,
            49,
        ),
        (
            "{:process 0 :type :invoke :f :read :value #{#{1 2} #{2 1}}}\n",
            1,
            52,
        ),
        (
            "[{:process 0 :type :invoke :type :ok :f :read :value nil}]\n",
            1,
            28,
        ),
    ] {
        let err = read_with(text, None).unwrap_err();
        assert_eq!(
            (err.line, err.column),
            (line, Some(column)),
            "{text}: {err}"
        );
        assert!(err.expected.contains("without a duplicate"), "{err}");
    }
    // Equal values are fine where they are not keys or set elements.
    let out = read_with(
        "{:process 0 :type :invoke :f :write :value {:a 1 :b 1 :c [1 1]}}\n",
        None,
    )
    .unwrap();
    assert_eq!(out.history.events.len(), 1);
    assert!(edn::parse_value("#{1 [1] \"1\" :1 \\1}").is_ok());
    assert!(edn::parse_value("{nil 1 false 2}").is_ok());
    assert!(edn::parse_value("{nil 1 nil 2}").is_err());
}

/// serde_json reads an integer beyond 64 bits as a float; the message says what is wrong
/// with what was written.
#[test]
fn jsonl_numbers_out_of_range_or_floating_are_named_as_written() {
    let err = read_with(
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":100000000000000000000}\n",
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "1: field value: expected an integer of at most 64 bits, found 100000000000000000000"
    );
    let err = read_with(
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"node\":\"99999999999999999999\",\"value\":[1,-9223372036854775809]}\n",
        None,
    )
    .unwrap_err();
    assert_eq!(err.found.as_deref(), Some("-9223372036854775809"), "{err}");
    let err = read_with(
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1.5}\n",
        None,
    )
    .unwrap_err();
    assert!(err.expected.starts_with("an integer, string"), "{err}");
    assert!(
        err.expected
            .contains("floating-point values are not supported"),
        "{err}"
    );
    assert_eq!(err.found.as_deref(), Some("1.5"));
}

#[test]
fn edn_values_and_syntax() {
    assert_eq!(
        edn::parse_value(r#"[1 -2 +3 :a "s\n" nil true #{4} (5) {:k 6} \x 7N sym #inst "t"]"#)
            .unwrap(),
        list(vec![
            Value::Int(1),
            Value::Int(-2),
            Value::Int(3),
            kw("a"),
            Value::Str("s\n".into()),
            Value::Nil,
            Value::Bool(true),
            list(vec![Value::Int(4)]),
            list(vec![Value::Int(5)]),
            Value::Map(vec![(kw("k"), Value::Int(6))]),
            Value::Str("x".into()),
            Value::Int(7),
            Value::Str("sym".into()),
            Value::Str("t".into()),
        ])
    );
    assert!(edn::parse_value("1.5").is_err());
    assert!(edn::parse_value("123456789012345678901234567890").is_err());
    assert!(edn::parse_value("1 2").is_err());
    assert!(edn::parse_value("\"open").is_err());
    assert_eq!(edn::parse_value(" #_ 1 2 ").unwrap(), Value::Int(2));
}

#[test]
fn jsonl_reads_every_field() {
    let text = concat!(
        r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"k1","value":7,"node":"n1"}"#,
        "\n\n",
        r#"{"process":"nemesis","type":"info","f":"partition","value":{"n1":["n2"]}}"#,
        "\n",
        r#"{"index":2,"time":30,"process":0,"type":"fail","f":"write","key":"k1","value":7,"error":"compare-failed"}"#,
        "\n",
    );
    let out = read_with(text, None).unwrap();
    assert_eq!(out.format, Format::Jsonl);
    let e = &out.history.events;
    assert_eq!(e.len(), 3);
    assert_eq!(out.lines, vec![1, 3, 4]);
    assert_eq!(e[0].key, Some(Value::Str("k1".into())));
    assert_eq!(e[0].node.as_deref(), Some("n1"));
    assert_eq!(e[1].process, Process::Nemesis);
    assert_eq!(e[1].index, 1);
    assert_eq!(
        e[1].value,
        Value::Map(vec![(
            Value::Str("n1".into()),
            list(vec![Value::Str("n2".into())])
        )])
    );
    assert_eq!(e[2].kind, EventType::Fail);
    assert_eq!(e[2].error, Some(Value::Str("compare-failed".into())));
}

#[test]
fn jsonl_errors_name_line_and_field() {
    let good = r#"{"process":0,"type":"invoke","f":"read","value":null}"#;
    let cases = [
        (
            r#"{"process":0,"type":"invoke","f":"read","value":null,"colour":1}"#,
            "2: field colour: expected one of the fields index, time, process, type, f, key, value, node, error, found an unknown field",
        ),
        (
            r#"{"process":0,"type":"done","f":"read","value":null}"#,
            r#"2: field type: expected one of "invoke", "ok", "fail", "info", found "done""#,
        ),
        (
            r#"{"process":-3,"type":"ok","f":"read","value":null}"#,
            r#"2: field process: expected a non-negative integer or "nemesis", found -3"#,
        ),
        (
            r#"{"process":0,"type":"ok","f":"read"}"#,
            "2: field value: expected to be present",
        ),
        (
            r#"{"process":0,"type":"ok","f":7,"value":null}"#,
            "2: field f: expected a string, found 7",
        ),
        (
            r#"{"process":0,"type":"ok","f":"read","value":1.5}"#,
            "2: field value: expected an integer, string, boolean, null, array or object (floating-point values are not supported), found 1.5",
        ),
        (
            r#"{"process":0,"type":"ok","f":"read","value":null,"time":"soon"}"#,
            r#"2: field time: expected a non-negative integer, found "soon""#,
        ),
        ("[1,2]", "2: expected a JSON object (one event per line), found an array"),
    ];
    for (bad, expected) in cases {
        let text = format!("{good}\n{bad}\n{good}\n");
        let err = read_with(&text, Some(Format::Jsonl)).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    let syntax = read_with(&format!("{good}\n{{\"process\":0,\n{good}\n"), None).unwrap_err();
    assert_eq!(syntax.line, 2);
    assert!(syntax.to_string().contains("invalid JSON"), "{syntax}");
}

/// The one thing forgiven: the last record of a history our recorder wrote, cut mid-write.
#[test]
fn a_truncated_last_record_of_our_recorder_is_dropped_with_a_warning() {
    let recorded = concat!(
        r#"{"index":0,"time":5,"process":0,"type":"invoke","f":"read","value":null}"#,
        "\n",
        r#"{"index":1,"time":9,"process":0,"type":"ok","f":"re"#
    );
    let out = read_with(recorded, None).unwrap();
    assert_eq!(out.history.events.len(), 1);
    assert!(
        out.warnings
            .iter()
            .any(|w| w.starts_with("line 2: unfinished last line dropped")),
        "{:?}",
        out.warnings
    );
    // Cut anywhere in the recorder's beginning of a line, too.
    let first = r#"{"index":0,"time":5,"process":0,"type":"invoke","f":"read","value":null}"#;
    for cut in [r#"{"#, r#"{"ind"#, r#"{"index":1"#, r#"{"index":1,"time":"#] {
        let out =
            read_with(&format!("{first}\n{cut}"), None).unwrap_or_else(|e| panic!("{cut}: {e}"));
        assert_eq!(out.history.events.len(), 1, "{cut}");
    }

    // The same cut line with its newline is not a crash artefact but bad data.
    let err = read_with(&format!("{recorded}\n"), None).unwrap_err();
    assert_eq!((err.line, err.column), (2, Some(51)), "{err}");
}

/// Everything else that does not parse is bad data, the last line included.
#[test]
fn an_unparsable_last_line_is_bad_data() {
    let first = r#"{"index":0,"time":5,"process":0,"type":"invoke","f":"read","value":null}"#;
    let cases = [
        // A complete line with a misspelt field.
        format!(
            r#"{first}
{{"index":1,"time":9,"process":0,"type":"ok","f":"read","value":3,"eror":null}}"#
        ),
        // Not a prefix of valid JSON.
        format!(
            r#"{first}
{{"index":1,"time":9,"process":0,"type":"ok","f":"read","value":3]"#
        ),
        // A prefix of valid JSON, but not in our recorder's form (no index and time).
        concat!(
            r#"{"process":0,"type":"invoke","f":"read","value":null}"#,
            "\n",
            r#"{"process":0,"type":"ok","f":"re"#
        )
        .to_owned(),
        // A prefix, in a file whose indexes are not the recorder's 0, 1, 2, …
        concat!(
            r#"{"index":4,"time":5,"process":0,"type":"invoke","f":"read","value":null}"#,
            "\n",
            r#"{"index":5,"time":9,"process":0,"type":"ok","f":"re"#
        )
        .to_owned(),
        // A prefix whose beginning is not the recorder's next line.
        format!(
            r#"{first}
{{"index":7,"time":9,"process":0,"type":"ok","f":"re"#
        ),
        format!(
            r#"{first}
{{"process":0,"type":"ok","f":"re"#
        ),
        // The 100 MB number of the issue, in small.
        format!(r#"{{"process":0,{}"#, "9".repeat(10_000)),
    ];
    for text in &cases {
        let err = read_with(text, None).unwrap_err();
        assert!(err.line >= 1, "{err}");
    }
    // EDN is never repaired: a cut map, a ratio, ##NaN, on an unterminated last line.
    for text in [
        "{:process 0 :type :invoke :f :read :value nil}\n#jepsen.history.Op{:process 0 :type :ok :f :rea",
        "[{:process 0 :type :invoke :f :write :value 1/2}]",
        "{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value ##NaN}",
        "#",
        "{",
        "#{",
    ] {
        let err = read_with(text, Some(Format::Edn)).unwrap_err();
        assert!(err.column.is_some() || err.line >= 1, "{text}: {err}");
    }
    let err = read_with("[{:process 0 :type :invoke :f :write :value 1/2}]", None).unwrap_err();
    assert_eq!((err.line, err.column), (1, Some(48)), "{err}");
    // Nor are log lines.
    let log = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t[3";
    let err = read_with(log, None).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    assert_eq!(err.column, Some(35), "{err}");

    // A complete last line without a newline is kept.
    let complete = r#"{"process":0,"type":"invoke","f":"read","value":null}"#;
    let out = read_with(complete, None).unwrap();
    assert_eq!(out.history.events.len(), 1);
    assert!(!out.warnings.iter().any(|w| w.contains("unfinished")));
}

/// A backslash ends a token and starts a character, as in Clojure: so a quote after it is
/// a character, not the start of a string (found by the fuzz test).
#[test]
fn a_backslash_ends_a_token() {
    assert_eq!(
        formats::edn::parse_value("[ab\\c]").unwrap(),
        list(vec![Value::Str("ab".into()), Value::Str("c".into())])
    );
    let text = "{:process 0 :type :invoke :f :write :z :value x\\\" :k \"}\n";
    assert!(read_with(text, Some(Format::Edn)).is_err(), "{text}");
}

/// A backslash then a newline is the newline character; the line still ends there, so
/// later lines keep their numbers (found by the differential fuzz test of the streamed
/// transaction reader).
#[test]
fn a_newline_character_still_ends_its_line() {
    let text = "{:process 0 :type :invoke :f :write :value \\\n}\n{:process 1\n";
    let error = read_with(text, Some(Format::Edn)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "4:1: expected `}` closing the map opened on line 3, found the end of the input"
    );
}

/// A log op's function is a keyword: one holding an EDN delimiter is bad data (found by the
/// fuzz test).
#[test]
fn a_log_function_with_a_delimiter_is_bad_data() {
    let log = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:[read\t3\n";
    let err = read_with(log, None).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    assert_eq!(err.field.as_deref(), Some("f"), "{err}");
}

/// Nesting beyond the limit is bad data, never a stack overflow: collections, tagged
/// elements and chains of `#_` discards, in EDN files, log values and single values.
#[test]
fn deep_nesting_is_bad_data() {
    // Half the stack of a test thread (2 MiB), so that the limit keeps a margin even in a
    // debug build.
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(deep_nesting_cases)
        .unwrap()
        .join()
        .unwrap();
}

fn deep_nesting_cases() {
    const DEEP: usize = 10_000;
    let openers = ["[", "(", "{", "#{", "#t ", "#_"];
    for opener in openers {
        let text = format!("{}1", opener.repeat(DEEP));
        let err = read_with(&text, Some(Format::Edn)).unwrap_err();
        assert!(
            err.to_string().contains("levels of nesting"),
            "{opener}: {err}"
        );
        let err = formats::edn::parse_value(&text).unwrap_err();
        assert!(
            err.to_string().contains("levels of nesting"),
            "{opener}: {err}"
        );
        let log = format!("INFO  jepsen.util - 0\t:invoke\t:read\t{text}\n");
        let err = read_with(&log, Some(Format::JepsenLog)).unwrap_err();
        assert!(
            err.to_string().contains("levels of nesting"),
            "{opener}: {err}"
        );
    }
    // The issue's discard chain: `#_` 9,100 times before one op map.
    let text = format!(
        "{}{{:process 0 :type :invoke :f :read :value nil}}\n",
        "#_".repeat(9_100)
    );
    assert!(read_with(&text, None).is_err());
    // 100,000 `[` in JSON Lines and in EDN.
    let brackets = "[".repeat(100_000);
    assert!(read_with(&brackets, Some(Format::Jsonl)).is_err());
    assert!(read_with(&brackets, None).is_err());
    let json = format!(
        r#"{{"process":0,"type":"invoke","f":"read","value":{}}}"#,
        "[".repeat(DEEP)
    );
    assert!(read_with(&json, None).is_err());
    // Within the limit, nesting reads.
    let fine = format!("{}1{}", "[".repeat(50), "]".repeat(50));
    assert!(formats::edn::parse_value(&fine).is_ok());
}

/// A line (or EDN form) over the limit is bad data, found while reading: an endless input
/// ends in an error after that many bytes, in every format and through a file.
#[test]
fn reading_is_bounded() {
    let opts = |format| ReadOptions {
        format,
        max_line_bytes: 1000,
        ..ReadOptions::default()
    };
    let line = r#"{"process":0,"type":"invoke","f":"write","value":"x"}"#;
    let long = line.replace('x', &"x".repeat(2000));
    for format in [None, Some(Format::Jsonl)] {
        let bytes = format!("{line}\n{long}\n");
        match read_bytes(bytes.as_bytes(), &opts(format)) {
            Err(BytesError::Data(e)) => {
                assert_eq!(e.line, 2, "{e}");
                assert!(e.to_string().contains("at most 1000 bytes"), "{e}");
            }
            other => panic!("{:?}", other.map(|o| o.history.events.len())),
        }
        assert!(read_bytes(format!("{line}\n").as_bytes(), &opts(format)).is_ok());
    }
    // An EDN form over the limit, though each of its lines is short.
    let many = format!(
        "[{}]",
        "{:process 0 :type :invoke :f :read :value nil}\n".repeat(100)
    );
    match read_bytes(many.as_bytes(), &opts(Some(Format::Edn))) {
        Err(BytesError::Data(e)) => assert!(e.to_string().contains("EDN form"), "{e}"),
        other => panic!("{:?}", other.map(|o| o.history.events.len())),
    }
    // /dev/zero: one endless line, read only up to the limit.
    let started = std::time::Instant::now();
    let err = read_file(Path::new("/dev/zero"), &opts(None)).unwrap_err();
    assert!(err.to_string().contains("at most 1000 bytes"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn indexes_are_dense_and_disorder_is_reported() {
    let text = concat!(
        r#"{"index":5,"process":0,"type":"invoke","f":"read","value":null}"#,
        "\n",
        r#"{"index":9,"process":0,"type":"ok","f":"read","value":null}"#,
        "\n",
        r#"{"index":7,"process":1,"type":"invoke","f":"read","value":null}"#,
        "\n",
    );
    let out = read_with(text, None).unwrap();
    let indexes: Vec<u64> = out.history.events.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![0, 1, 2]);
    assert!(out
        .warnings
        .iter()
        .any(|w| w.starts_with("line 3: the file's indexes are not increasing")));
    assert!(out
        .warnings
        .iter()
        .any(|w| w.starts_with("1 operation(s) never completed")));
}

#[test]
fn format_detection() {
    assert_eq!(
        Format::detect(b"\n  {\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n"),
        Some(Format::Jsonl)
    );
    assert_eq!(
        Format::detect(b"{:process 0, :type :invoke}"),
        Some(Format::Edn)
    );
    assert_eq!(
        Format::detect(b"{:process 0,\n :type :invoke}"),
        Some(Format::Edn)
    );
    assert_eq!(Format::detect(b"[{:process 0}]"), Some(Format::Edn));
    assert_eq!(Format::detect(b"#jepsen.history.Op{}"), Some(Format::Edn));
    assert_eq!(Format::detect(b"; comment\n{}"), Some(Format::Edn));
    assert_eq!(
        Format::detect(b"INFO  jepsen.core - x\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n"),
        Some(Format::JepsenLog)
    );
    assert_eq!(
        Format::detect(b"[2017-01-01 10:00] INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"),
        Some(Format::JepsenLog)
    );
    assert_eq!(Format::detect(b"hello world\n"), None);
    assert_eq!(Format::detect(b""), None);
    assert_eq!("jepsen-log".parse::<Format>(), Ok(Format::JepsenLog));
    assert!("xml".parse::<Format>().is_err());

    let empty = read_bytes(b"", &ReadOptions::default()).unwrap();
    assert!(empty.history.events.is_empty());
    assert!(empty.warnings.iter().any(|w| w.contains("empty")));
    assert!(matches!(
        read_bytes(b"hello\n", &ReadOptions::default()),
        Err(BytesError::UnknownFormat)
    ));
}

fn random_value(rng: &mut impl Rng, depth: u32, keywords: bool) -> Value {
    let pick = if depth == 0 {
        rng.gen_range(0..5)
    } else {
        rng.gen_range(0..7)
    };
    match pick {
        0 => Value::Nil,
        1 => Value::Int(rng.gen_range(-1_000_000..1_000_000)),
        2 => Value::Bool(rng.gen()),
        3 => {
            let pool = ["", "a b", "quote\"d", "back\\slash", "tab\tnew\nline", "é✓"];
            Value::Str(pool[rng.gen_range(0..pool.len())].to_owned())
        }
        4 if keywords => kw(["timed-out", "compare-failed", "ok"][rng.gen_range(0..3)]),
        4 => Value::Int(rng.gen_range(0..10)),
        5 => Value::List(
            (0..rng.gen_range(0..4))
                .map(|_| random_value(rng, depth - 1, keywords))
                .collect(),
        ),
        _ => Value::Map(
            (0..rng.gen_range(0..3))
                .map(|i| {
                    // JSON object keys are strings; EDN keys may be anything.
                    let key = if keywords {
                        kw(&format!("k{i}"))
                    } else {
                        Value::Str(format!("k{i}"))
                    };
                    (key, random_value(rng, depth - 1, keywords))
                })
                .collect(),
        ),
    }
}

fn random_history(seed: u64, keywords: bool) -> History {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let kinds = [
        EventType::Invoke,
        EventType::Ok,
        EventType::Fail,
        EventType::Info,
    ];
    let events = (0..300u64)
        .map(|index| Event {
            index,
            time: rng.gen_bool(0.8).then(|| rng.gen_range(0..u64::MAX / 2)),
            process: if rng.gen_bool(0.1) {
                Process::Nemesis
            } else {
                Process::Client(rng.gen_range(0..20))
            },
            kind: kinds[rng.gen_range(0..4)],
            f: ["read", "write", "cas", "start-partition", "odd f"][rng.gen_range(0..5)].to_owned(),
            key: rng
                .gen_bool(0.5)
                .then(|| random_value(&mut rng, 1, keywords)),
            value: random_value(&mut rng, 3, keywords),
            node: rng
                .gen_bool(0.3)
                .then(|| format!("n{}", rng.gen_range(1..6))),
            error: rng
                .gen_bool(0.2)
                .then(|| random_value(&mut rng, 1, keywords)),
        })
        // A key of nil would read back as no key: nil keys are not written.
        .map(|mut e| {
            if e.key == Some(Value::Nil) {
                e.key = None;
            }
            if e.error == Some(Value::Nil) {
                e.error = None;
            }
            e
        })
        .collect();
    History::new(events)
}

#[test]
fn jsonl_round_trip() {
    for seed in 0..20 {
        let history = random_history(seed, false);
        let mut buf = Vec::new();
        jsonl::write_history(&mut buf, &history.events).unwrap();
        let opts = ReadOptions {
            format: Some(Format::Jsonl),
            independent: Independent::Off,
            ..ReadOptions::default()
        };
        let back = read_bytes(&buf, &opts).unwrap();
        assert_eq!(back.history, history, "seed {seed}");
        // Auto-detection agrees.
        assert_eq!(Format::detect(&buf), Some(Format::Jsonl));
    }
}

#[test]
fn jsonl_writes_keywords_as_strings() {
    let event = Event {
        index: 0,
        time: None,
        process: Process::Client(1),
        kind: EventType::Info,
        f: "write".into(),
        key: None,
        value: kw("timed-out"),
        node: None,
        error: None,
    };
    let mut buf = Vec::new();
    jsonl::write_event(&mut buf, &event).unwrap();
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "{\"index\":0,\"process\":1,\"type\":\"info\",\"f\":\"write\",\"value\":\"timed-out\"}\n"
    );
}

#[test]
fn edn_round_trip() {
    for seed in 0..20 {
        let history = random_history(seed, true);
        let mut buf = Vec::new();
        edn::write_history(&mut buf, &history.events).unwrap();
        let opts = ReadOptions {
            format: Some(Format::Edn),
            independent: Independent::Off,
            ..ReadOptions::default()
        };
        let back = read_bytes(&buf, &opts).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(back.history, history, "seed {seed}");
        assert_eq!(Format::detect(&buf), Some(Format::Edn));
    }
}

#[test]
fn edn_writer_is_jepsen_style() {
    let event = Event {
        index: 3,
        time: Some(42),
        process: Process::Client(2),
        kind: EventType::Ok,
        f: "cas".into(),
        key: Some(Value::Int(7)),
        value: list(vec![Value::Int(1), Value::Int(2)]),
        node: Some("n1".into()),
        error: None,
    };
    let mut buf = Vec::new();
    edn::write_event(&mut buf, &event).unwrap();
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "{:index 3, :time 42, :type :ok, :process 2, :f :cas, :key 7, :value [1 2], :node \"n1\"}\n"
    );
}
