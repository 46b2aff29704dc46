//! Transactional histories as read from files (JSON Lines, tagged EDN records), bad data,
//! and the limits that end a check in `unknown`.

mod txn_support;

use splitbrain_checkers::formats::{self, Format, Independent, ReadOptions};
use splitbrain_checkers::txn::anomaly::AnomalyKind;
use splitbrain_checkers::txn::consistency::ConsistencyModel;
use splitbrain_checkers::txn::generate::{self, GenOptions};
use splitbrain_checkers::txn::{self, TxnCheckOptions, Workload};
use splitbrain_checkers::verdict::Verdict;
use std::time::Duration;

fn read(data: &str, format: Format) -> splitbrain_checkers::History {
    let opts = ReadOptions {
        format: Some(format),
        independent: Independent::Off,
        ..ReadOptions::default()
    };
    formats::read_bytes(data.as_bytes(), &opts)
        .expect("readable")
        .history
}

const G_SINGLE_JSONL: &str = r#"{"process":0,"type":"invoke","f":"txn","value":[["append",1,1],["append",2,1]]}
{"process":1,"type":"invoke","f":"txn","value":[["append",1,2],["r",2,null]]}
{"process":0,"type":"ok","f":"txn","value":[["append",1,1],["append",2,1]]}
{"process":1,"type":"ok","f":"txn","value":[["append",1,2],["r",2,[]]]}
{"process":2,"type":"invoke","f":"txn","value":[["r",1,null]]}
{"process":2,"type":"ok","f":"txn","value":[["r",1,[1,2]]]}
"#;

#[test]
fn json_lines_with_a_txn_value() {
    let h = read(G_SINGLE_JSONL, Format::Jsonl);
    let opts = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::Serializable);
    let r = txn::check(&h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.forbidden, vec![AnomalyKind::GSingle]);
    assert_eq!(
        r.compatible,
        vec![
            ConsistencyModel::ReadCommitted,
            ConsistencyModel::ReadUncommitted
        ]
    );
    let text = r.text();
    assert!(
        text.starts_with("invalid: 3 transactions (3 ok, 0 info, 0 fail)"),
        "{text}"
    );
    assert!(
        text.contains("T1 read key 2 empty, T0 appended 1, its first value: rw"),
        "{text}"
    );
    assert!(
        text.contains("T0 appended 1 at key 1, T1 appended 2 right after it: ww"),
        "{text}"
    );
    // Read committed allows it: valid, with the anomaly still reported.
    let rc = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::ReadCommitted);
    let r = txn::check(&h, &rc).unwrap();
    assert_eq!(r.verdict, Verdict::Valid);
    assert!(r.anomaly_counts.contains_key(&AnomalyKind::GSingle));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["anomaly_counts"]["G-single"], 1);
    assert_eq!(json["consistency"], "read-committed");
    assert_eq!(json["workload"], "list-append");
}

#[test]
fn tagged_edn_records() {
    let edn = r#"#jepsen.history.Op{:index 0, :time 1, :type :invoke, :process 0, :f :txn, :value [[:w 1 1] [:r 2 nil]]}
#jepsen.history.Op{:index 1, :time 2, :type :invoke, :process 1, :f :txn, :value [[:w 2 1] [:r 1 nil]]}
#jepsen.history.Op{:index 2, :time 3, :type :ok, :process 0, :f :txn, :value [[:w 1 1] [:r 2 1]]}
#jepsen.history.Op{:index 3, :time 4, :type :ok, :process 1, :f :txn, :value [[:w 2 1] [:r 1 1]]}
"#;
    let h = read(edn, Format::Edn);
    let opts = TxnCheckOptions::new(Workload::RwRegister, ConsistencyModel::ReadCommitted);
    let r = txn::check(&h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.forbidden, vec![AnomalyKind::G1c]);
}

#[test]
fn bad_data_names_the_event_and_field() {
    let not_txn = "{:process 0, :type :invoke, :f :read, :value nil}\n";
    let h = read(not_txn, Format::Edn);
    let opts = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::Serializable);
    let e = txn::check(&h, &opts).unwrap_err();
    assert_eq!(e.index, 0);
    assert_eq!(e.field.as_deref(), Some("f"));

    let twice = "{:process 0, :type :invoke, :f :txn, :value [[:append 1 5]]}\n\
                 {:process 0, :type :ok, :f :txn, :value [[:append 1 5]]}\n\
                 {:process 1, :type :invoke, :f :txn, :value [[:append 1 5]]}\n\
                 {:process 1, :type :ok, :f :txn, :value [[:append 1 5]]}\n";
    let e = txn::check(&read(twice, Format::Edn), &opts).unwrap_err();
    assert_eq!(e.index, 2, "{e}");
    assert!(e.to_string().contains("appended to key 1 twice"), "{e}");

    // Of two repeats, the first in history order is named, whatever the keys' order.
    let two_repeats =
        "{:process 0, :type :invoke, :f :txn, :value [[:append 9 5] [:append 9 5]]}\n\
                       {:process 1, :type :invoke, :f :txn, :value [[:append 1 7]]}\n\
                       {:process 2, :type :invoke, :f :txn, :value [[:append 1 7]]}\n";
    let e = txn::check(&read(two_repeats, Format::Edn), &opts).unwrap_err();
    assert_eq!(e.index, 0, "{e}");
    assert!(
        e.to_string().contains("5 is appended to key 9 twice"),
        "{e}"
    );
    let two_repeats = "{:process 3, :type :invoke, :f :txn, :value [[:append 9 1]]}\n\
                       {:process 1, :type :invoke, :f :txn, :value [[:append 1 7]]}\n\
                       {:process 2, :type :invoke, :f :txn, :value [[:append 1 7]]}\n\
                       {:process 0, :type :invoke, :f :txn, :value [[:append 9 1]]}\n";
    let e = txn::check(&read(two_repeats, Format::Edn), &opts).unwrap_err();
    assert_eq!(e.index, 2, "{e}");
    assert!(
        e.to_string().contains("7 is appended to key 1 twice"),
        "{e}"
    );

    let wrong_mop = "{:process 0, :type :invoke, :f :txn, :value [[:w 1 5]]}\n";
    let e = txn::check(&read(wrong_mop, Format::Edn), &opts).unwrap_err();
    assert_eq!(e.index, 0);
    assert!(e.to_string().contains("[append k v]"), "{e}");

    let string_key = "{:process 0, :type :invoke, :f :txn, :value [[:append \"k\" 5]]}\n";
    let e = txn::check(&read(string_key, Format::Edn), &opts).unwrap_err();
    assert!(e.to_string().contains("integer key"), "{e}");

    let double_invoke = "{:process 0, :type :invoke, :f :txn, :value [[:append 1 5]]}\n\
                         {:process 0, :type :invoke, :f :txn, :value [[:append 1 6]]}\n";
    let e = txn::check(&read(double_invoke, Format::Edn), &opts).unwrap_err();
    assert_eq!(e.index, 1);
}

#[test]
fn limits_end_in_unknown() {
    let h = generate::list_append(&GenOptions {
        txns: 2000,
        ..GenOptions::default()
    });
    let mut opts = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::Serializable);
    opts.memory_budget = Some(1024);
    let r = txn::check(&h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.cause.as_deref().unwrap().contains("memory budget"));
    assert!(r.text().contains("not ruled out so far"));

    let mut opts = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::Serializable);
    opts.time_limit = Some(Duration::ZERO);
    let r = txn::check(&h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.cause.as_deref().unwrap().contains("time limit"));

    // A forbidden anomaly found before the limit still makes the verdict invalid.
    let mut h = h;
    generate::inject(&mut h, AnomalyKind::G1a, 10, 1 << 40, 1 << 40);
    let r = txn::check(&h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
}

#[test]
fn indeterminate_transactions_may_or_may_not_have_committed() {
    // T1 is info: its append may have happened (it was read) or not; no anomaly either way.
    let edn = "{:process 0, :type :invoke, :f :txn, :value [[:append 1 1]]}\n\
               {:process 0, :type :info, :f :txn, :value [[:append 1 1]]}\n\
               {:process 1, :type :invoke, :f :txn, :value [[:r 1 nil]]}\n\
               {:process 1, :type :ok, :f :txn, :value [[:r 1 [1]]]}\n\
               {:process 2, :type :invoke, :f :txn, :value [[:r 1 nil]]}\n";
    let opts = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::StrictSerializable);
    let r = txn::check(&read(edn, Format::Edn), &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.text());
    assert_eq!((r.committed, r.indeterminate, r.aborted), (1, 2, 0));
    // The same read of a failed append is an aborted read.
    let failed = edn.replace(":type :info", ":type :fail");
    let r = txn::check(&read(&failed, Format::Edn), &opts).unwrap();
    assert_eq!(r.forbidden, vec![AnomalyKind::G1a]);
}

#[test]
fn register_edges_are_explained_in_register_words() {
    // Write skew on registers: each reads the initial state of what the other writes.
    let edn = "{:process 0, :type :invoke, :f :txn, :value [[:r 1 nil] [:w 2 1]]}\n\
               {:process 1, :type :invoke, :f :txn, :value [[:r 2 nil] [:w 1 1]]}\n\
               {:process 0, :type :ok, :f :txn, :value [[:r 1 nil] [:w 2 1]]}\n\
               {:process 1, :type :ok, :f :txn, :value [[:r 2 nil] [:w 1 1]]}\n";
    let opts = TxnCheckOptions::new(Workload::RwRegister, ConsistencyModel::Serializable);
    let r = txn::check(&read(edn, Format::Edn), &opts).unwrap();
    assert_eq!(r.forbidden, vec![AnomalyKind::G2Item], "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("T0 read nil at key 1, T1 wrote 1 after the initial state: rw"),
        "{text}"
    );
}

/// A key appended to many times (its writers are searched, not scanned): every element
/// read is attributed to its writer, and a missing one is garbage.
#[test]
fn keys_with_many_appends_are_inferred_alike() {
    let mut lines = String::new();
    let n = 40;
    for v in 1..=n {
        // Appended out of order of value, so that order of writing and of value differ.
        let value = (v * 7) % 41;
        lines.push_str(&format!(
            "{{:process 0, :type :invoke, :f :txn, :value [[:append 1 {value}]]}}\n{{:process 0, :type :ok, :f :txn, :value [[:append 1 {value}]]}}\n"
        ));
    }
    let all: Vec<String> = (1..=n).map(|v| ((v * 7) % 41).to_string()).collect();
    let read_all = |extra: &str| {
        format!(
            "{lines}{{:process 1, :type :invoke, :f :txn, :value [[:r 1 nil]]}}\n{{:process 1, :type :ok, :f :txn, :value [[:r 1 [{}{extra}]]]}}\n",
            all.join(" ")
        )
    };
    let opts = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::Serializable);
    let valid = txn::check(&read(&read_all(""), Format::Edn), &opts).unwrap();
    assert_eq!(valid.verdict, Verdict::Valid, "{}", valid.text());
    // ww between consecutive appends, wr from the last: n edges.
    assert_eq!(valid.edges, n, "{}", valid.text());
    let garbage = txn::check(&read(&read_all(" 99"), Format::Edn), &opts).unwrap();
    assert_eq!(
        garbage.anomaly_counts.get(&AnomalyKind::GarbageRead),
        Some(&1),
        "{}",
        garbage.text()
    );
}
