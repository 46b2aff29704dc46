//! Elle's own test cases, transcribed as data (`data/txn/elle_cases.txt`): for each small
//! history, the anomalies that must and must not be found and the verdicts per model.

mod txn_support;

use splitbrain_checkers::txn::anomaly::AnomalyKind;
use splitbrain_checkers::txn::consistency::ConsistencyModel;
use splitbrain_checkers::verdict::Verdict;
use txn_support::{check_edn, parse_cases};

#[test]
fn elle_cases() {
    let text = include_str!("data/txn/elle_cases.txt");
    let cases = parse_cases(text);
    assert!(cases.len() >= 30, "only {} cases read", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let edn = case.edn();
        let result = check_edn(&edn, case.workload, ConsistencyModel::StrictSerializable);
        let found: Vec<AnomalyKind> = result.anomaly_counts.keys().copied().collect();
        for k in &case.expect {
            if !found.contains(k) {
                failures.push(format!("{}: expected {k}, found {found:?}", case.name));
            }
        }
        for k in &case.absent {
            if found.contains(k) {
                failures.push(format!(
                    "{}: {k} must not be reported\n{}",
                    case.name,
                    result.text()
                ));
            }
        }
        for (model, want) in &case.verdicts {
            let r = check_edn(&edn, case.workload, *model);
            if r.verdict != *want {
                failures.push(format!(
                    "{}: under {model} expected {want}, got {} ({found:?})",
                    case.name, r.verdict
                ));
            }
            // The compatible list (models not ruled out) agrees with the verdict.
            assert_eq!(
                r.compatible.contains(model),
                r.verdict != Verdict::Invalid,
                "{}: {model}",
                case.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cycles_are_explained_edge_by_edge() {
    let text = include_str!("data/txn/elle_cases.txt");
    let case = parse_cases(text)
        .into_iter()
        .find(|c| c.name == "g1c")
        .expect("the g1c case");
    let r = check_edn(&case.edn(), case.workload, ConsistencyModel::Serializable);
    let g1c = r
        .anomalies
        .iter()
        .find(|a| a.kind == AnomalyKind::G1c)
        .expect("a G1c example");
    assert_eq!(g1c.txns.len(), 2);
    assert_eq!(g1c.cycle.len(), 2);
    let text = &g1c.explanation;
    assert!(
        text.contains("T0 read 1 at key 2, which T1 appended: wr"),
        "{text}"
    );
    assert!(
        text.contains("T0 appended 1 at key 1, T1 appended 2 right after it: ww"),
        "{text}"
    );
    let json = serde_json::to_value(g1c).unwrap();
    assert_eq!(json["type"], "G1c");
    let rels: Vec<&str> = json["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reasons"][0]["rel"].as_str().unwrap())
        .collect();
    let mut sorted = rels.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["wr", "ww"]);
}
